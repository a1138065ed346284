/* crmsync-admin subcommands. Each returns the process exit status (0 ok, 1 failure,
 * 2 usage error) and prints its own messages. */
#ifndef CS_ADMIN_H
#define CS_ADMIN_H

#include "cs_conf.h"

int admin_topics(cs_conf_t *conf, int argc, char **argv);

#endif
