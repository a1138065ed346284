/* Component: TLS verification is on by default for every HTTP client (cs_http, and through it
 * cs_oauth and cs_api), and turning it off is explicit and logged.
 *
 * A throw-away self-signed certificate (subjectAltName IP:127.0.0.1) is served by
 * `openssl s_server -www` on 127.0.0.1. Then:
 *   - a default client refuses it: CS_ERR_TRANSPORT, no status, a TLS reason in errstr;
 *   - with that certificate as ca_file it is accepted (verification works, not just fails);
 *   - the same CA under another host name (localhost) is refused: host names are checked;
 *   - tls_insecure = 1 accepts it, and creating that client logged a warning;
 *   - cs_api (the programs' API clients): refused by default, accepted with
 *     http.tls.insecure=true, which warns when the clients are made;
 *   - a real program (crmsync-crm-producer) started with --set http.tls.insecure=true logs
 *     the warning at start, and one without it fails its token fetch on the certificate. */
#include "cs_api.h"
#include "cs_conf.h"
#include "cs_err.h"
#include "cs_http.h"
#include "cs_log.h"
#include "cs_test.h"
#include "testutil_proc.h"
#include "testutil_producer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir_g[64], cert_g[128], key_g[128], base_g[64], logpath_g[128];
static FILE *log_g;
static int port_g;
static pid_t server_g = -1;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0), port;
    REQUIRE(s >= 0);
    REQUIRE(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(getsockname(s, (struct sockaddr *)&a, &l) == 0);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int can_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    if (s >= 0)
        close(s);
    return ok;
}

static void start_server(void)
{
    char cmd[1024];
    REQUIRE(mkdtemp(strcpy(dir_g, "/tmp/crmsync-tls-XXXXXX")));
    snprintf(cert_g, sizeof cert_g, "%s/cert.pem", dir_g);
    snprintf(key_g, sizeof key_g, "%s/key.pem", dir_g);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=crmsync-test "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >%s/req.log 2>&1",
             key_g, cert_g, dir_g);
    REQUIRE(system(cmd) == 0);
    for (int attempt = 0; attempt < 5 && server_g < 0; attempt++) {
        char accept[32], out[160];
        port_g = free_port();
        snprintf(accept, sizeof accept, "127.0.0.1:%d", port_g);
        snprintf(out, sizeof out, "%s/s_server.log", dir_g);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execlp("openssl", "openssl", "s_server", "-accept", accept, "-cert", cert_g, "-key",
                   key_g, "-www", "-quiet", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100 && !can_connect(port_g); i++) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid) { /* port taken meanwhile: try another */
                pid = -1;
                break;
            }
            sleep_ms(50);
        }
        if (pid > 0 && can_connect(port_g))
            server_g = pid;
        else if (pid > 0)
            kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    }
    REQUIRE(server_g > 0);
    snprintf(base_g, sizeof base_g, "https://127.0.0.1:%d", port_g);
}

static void stop_server(void)
{
    char cmd[160];
    if (server_g > 0) {
        kill(server_g, SIGTERM);
        waitpid(server_g, NULL, 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir_g);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir_g);
}

static int has_tls_reason(const char *s)
{
    return strcasestr(s, "certificate") || strcasestr(s, "SSL") || strcasestr(s, "TLS");
}

/* What the logger wrote since offset `from` (0: everything). */
static char *read_log(long from)
{
    static char buf[65536];
    FILE *f = fopen(logpath_g, "r");
    size_t n = 0;
    if (f && fseek(f, from, SEEK_SET) == 0)
        n = fread(buf, 1, sizeof buf - 1, f);
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static int get(cs_http_t *c, const char *url, cs_http_result_t *r)
{
    return cs_http_request(c, "GET", url, NULL, NULL, 0, r);
}

static void test_client(void)
{
    char err[256], url[128];
    cs_http_result_t r;

    /* default: verify, and a self-signed certificate is refused */
    cs_http_opts_t def = {.name = "tls-default", .timeout_ms = 5000};
    cs_http_t *c = cs_http_new(&def, err, sizeof err);
    REQUIRE(c);
    snprintf(url, sizeof url, "%s/", base_g);
    CHECK_INT(get(c, url, &r), CS_ERR_TRANSPORT);
    CHECK_INT(r.status, 0);
    CHECK(has_tls_reason(r.errstr));
    fprintf(stderr, "default client: %s\n", r.errstr);
    cs_http_destroy(c);

    /* the certificate as CA: accepted (verification is real) */
    cs_http_opts_t ca = {.name = "tls-ca", .timeout_ms = 5000, .ca_file = cert_g};
    c = cs_http_new(&ca, err, sizeof err);
    REQUIRE(c);
    CHECK_INT(get(c, url, &r), CS_OK);
    CHECK_INT(r.status, 200);
    /* ... but only for the names in the certificate */
    snprintf(url, sizeof url, "https://localhost:%d/", port_g);
    CHECK_INT(get(c, url, &r), CS_ERR_TRANSPORT);
    CHECK(has_tls_reason(r.errstr) || strcasestr(r.errstr, "localhost"));
    fprintf(stderr, "wrong host name: %s\n", r.errstr);
    cs_http_destroy(c);

    /* explicit opt-out: accepted, and warned about when the client was made */
    cs_http_opts_t ins = {.name = "tls-insecure", .timeout_ms = 5000, .tls_insecure = 1};
    c = cs_http_new(&ins, err, sizeof err);
    REQUIRE(c);
    snprintf(url, sizeof url, "%s/", base_g);
    CHECK_INT(get(c, url, &r), CS_OK);
    CHECK_INT(r.status, 200);
    cs_http_destroy(c);
    const char *log = read_log(0);
    CHECK(strstr(log, "[tls-insecure] TLS verification is OFF") != NULL);
    CHECK(strstr(log, "[tls-default] TLS verification is OFF") == NULL);
    CHECK(strstr(log, "[tls-ca] TLS verification is OFF") == NULL);
}

static cs_api_t *api(int insecure, cs_conf_t **confp)
{
    char err[512], text[1024];
    cs_conf_t *conf = cs_conf_new("test-tls", "test", NULL);
    REQUIRE(conf && cs_conf_add_opts(conf, cs_api_opts) == CS_OK);
    snprintf(text, sizeof text,
             "crm.login_url=%s\ncrm.instance_url=%s\ncrm.client_id=tls-test\n"
             "crm.client_secret=tls-test-secret\nmkt.base_url=%s\ncrm.timeout.ms=2000\n"
             "mkt.timeout.ms=2000\nhttp.tls.insecure=%s\n",
             base_g, base_g, base_g, insecure ? "true" : "false");
    REQUIRE(cs_conf_load_string(conf, text, "test", err, sizeof err) == CS_OK);
    cs_api_t *a = cs_api_new(conf, NULL, err, sizeof err);
    REQUIRE(a);
    *confp = conf; /* cs_api borrows some of its strings: destroy after the api */
    return a;
}

static void test_api(void)
{
    json_t *out = NULL;
    cs_conf_t *conf;
    /* The programs' clients: by default the token fetch fails on the certificate. */
    long from = ftell(log_g);
    cs_api_t *a = api(0, &conf);
    int rc = cs_api_mkt_get_path(a, "objects/prospects?fields=id", &out);
    CHECK_INT(rc, CS_ERR_TRANSPORT);
    fprintf(stderr, "default cs_api: %s (%s)\n", cs_err_name(rc), cs_api_last(a)->errstr);
    json_decref(out);
    cs_api_destroy(a);
    cs_conf_destroy(conf);
    const char *log = read_log(from);
    CHECK(strstr(log, "TLS verification is OFF") == NULL);
    CHECK(strstr(log, "[oauth] token request failed") && strstr(log, "SSL certificate problem"));

    /* http.tls.insecure=true: past TLS (s_server -www answers GET only, so the token POST
     * times out, but not on the certificate), with a warning for each client made. */
    from = ftell(log_g);
    a = api(1, &conf);
    rc = cs_api_mkt_get_path(a, "objects/prospects?fields=id", &out);
    CHECK(rc != CS_ERR_TRANSPORT);
    fprintf(stderr, "insecure cs_api: %s (%s)\n", cs_err_name(rc), cs_api_last(a)->errstr);
    json_decref(out);
    cs_api_destroy(a);
    cs_conf_destroy(conf);
    log = read_log(from);
    CHECK(strstr(log, "[crm] TLS verification is OFF") != NULL);
    CHECK(strstr(log, "[marketing] TLS verification is OFF") != NULL);
    CHECK(strstr(log, "[oauth] TLS verification is OFF") != NULL);
}

/* A program started with the switch warns at start; without it, its token fetch is refused
 * on the certificate. */
static void test_program(void)
{
    const char *bootstrap = cs_test_env("CRMSYNC_BOOTSTRAP", NULL);
    char conf[256], logp[256], text[1024];
    cs_tprod_env_t env; /* topics of its own: the producer waits for its cursor topic */
    if (!bootstrap) {
        fprintf(stderr, "CRMSYNC_BOOTSTRAP unset: skipping the program checks\n");
        return;
    }
    REQUIRE(cs_tprod_env_init(&env, "tls", 1) == 0);
    snprintf(conf, sizeof conf, "%s/crm.conf", dir_g);
    snprintf(text, sizeof text,
             "kafka.bootstrap.servers=%s\ncrm.login_url=%s\ncrm.client_id=tls-test\n"
             "crm.client_secret=tls-test-secret\nmkt.base_url=%s\npoll.interval.ms=200\n"
             "http.port=-1\ncrm.timeout.ms=3000\ntopic.crm=%s\ntopic.cursors=%s\n"
             "topic.errors=%s\n",
             bootstrap, base_g, base_g, env.topics[CS_TOPIC_CRM], env.topics[CS_TOPIC_CURSORS],
             env.topics[CS_TOPIC_ERRORS]);
    FILE *f = fopen(conf, "w");
    REQUIRE(f && fputs(text, f) >= 0);
    fclose(f);
    for (int insecure = 0; insecure < 2; insecure++) {
        cs_tproc_t p;
        const char *args[] = {"--config", conf, "--set",
                              insecure ? "http.tls.insecure=true" : "http.tls.insecure=false",
                              NULL};
        snprintf(logp, sizeof logp, "%s/crm-producer-%d.log", dir_g, insecure);
        REQUIRE(cs_tproc_start(&p, "crm-producer", args, logp) == 0);
        int warned = 0, refused = 0;
        for (int i = 0; i < 150 && !(insecure ? warned : refused); i++) {
            sleep_ms(100);
            warned = cs_tproc_log_count(&p, "TLS verification is OFF");
            refused = cs_tproc_log_count(&p, "certificate") + cs_tproc_log_count(&p, "SSL");
        }
        if (insecure) {
            CHECK(warned > 0);
        } else {
            CHECK_INT(cs_tproc_log_count(&p, "TLS verification is OFF"), 0);
            CHECK(refused > 0);
        }
        cs_tproc_stop(&p, 15000);
    }
    cs_tprod_env_destroy(&env, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    start_server();
    snprintf(logpath_g, sizeof logpath_g, "%s/client.log", dir_g);
    log_g = fopen(logpath_g, "w");
    REQUIRE(log_g);
    setvbuf(log_g, NULL, _IOLBF, 0);
    cs_log_set_output(log_g);
    cs_log_setup("debug", "text");

    test_client();
    test_api();
    cs_log_set_output(NULL);
    fclose(log_g);
    test_program();

    stop_server();
    return cs_test_report();
}
