/* crmsync-import: publishes every row of a CSV file as a ProspectChange with cause IMPORT,
 * which forces a sync of that prospect (docs/PRODUCERS.md).
 *
 * One pass, constant memory: the CSV reader has fixed buffers, rows are encoded one at a
 * time into the producer's queue (cs_producer_send waits by polling when the queue is full),
 * and only the first import.max_errors_shown rejections are kept for the summary.
 *
 * Exit status: 0 every row published; 3 every valid row published, some rows rejected;
 * 1 a delivery failed, the input could not be read, or Kafka was unusable; 2 usage,
 * configuration, a file that cannot be opened or a header that cannot be imported; 4 interrupted
 * (SIGTERM/SIGINT) after the rows read so far were drained. */
#include "import.h"

#include "cs_avro.h"
#include "cs_conf.h"
#include "cs_csv.h"
#include "cs_err.h"
#include "cs_kafka.h"
#include "cs_log.h"
#include "cs_run.h"
#include "cs_topics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_COMP "import"
#define EXIT_REJECTED 3
#define EXIT_INTERRUPTED 4

static const cs_opt_t import_opts[] = {
    {"prospect.key", CS_OPT_STRING, "email", 0, 0, 0,
     "prospect key: email (lower-cased trimmed e-mail) or id (the prospect_id column, where "
     "duplicate e-mails are allowed; the email column is still required)"},
    {"import.unknown_columns", CS_OPT_STRING, "custom", 0, 0, 0,
     "columns that are not prospect fields: custom (kept in custom_fields under the header "
     "name), ignore (dropped with a warning) or error (refuse the file)"},
    {"import.delimiter", CS_OPT_STRING, ",", 0, 0, 0, "field delimiter: one character, or \"tab\""},
    {"import.max_row_bytes", CS_OPT_INT, "1048576", 64, 67108864, 0,
     "longest row accepted (bytes); longer rows are rejected"},
    {"import.max_columns", CS_OPT_INT, "512", 1, IM_MAX_COLUMNS, 0, "most columns per row"},
    {"import.id", CS_OPT_STRING, "", 0, 0, 0,
     "import id in the event ids (import:<id>:<line>); empty = <start time ms>-<pid>"},
    {"import.progress", CS_OPT_STRING, "auto", 0, 0, 0,
     "progress line on stderr: auto (when stderr is a terminal), on or off"},
    {"import.dry_run", CS_OPT_BOOL, "false", 0, 0, 0,
     "read and check every row, publish nothing (no Kafka needed)"},
    {"import.max_errors_shown", CS_OPT_INT, "100", 0, 1000000, 0,
     "rejected rows listed in the summary (all are counted)"},
    {"shutdown.timeout.ms", CS_OPT_INT, "30000", 0, 600000, 0,
     "on SIGTERM, how long to wait for the delivery reports of the rows already sent"},
    CS_OPT_END,
};

static const char usage[] =
    "crmsync-import [options] FILE.csv\n\n"
    "Publishes every row of a CSV file (RFC 4180; header row required, with an email column)\n"
    "as a ProspectChange with cause IMPORT, which forces a sync of each prospect. FILE may be\n"
    "\"-\" for standard input. Prints a summary; rejected rows are listed with their line\n"
    "numbers and skipped. Exit status: 0 all rows published, 3 some rows rejected, 1 a\n"
    "delivery or read failure, 2 usage or an unusable header, 4 interrupted.";

typedef struct rejected_s {
    uint64_t line;
    char reason[200];
} rejected_t;

typedef struct imp_s {
    cs_conf_t *conf;
    const char *path;
    const char *topic;
    cs_producer_t *producer;
    cs_avro_registry_t *reg;
    cs_avro_encoder_t *enc;
    cs_csv_t *csv;
    int fd;
    uint64_t file_size; /* 0 when unknown (a pipe) */
    int dry_run, progress;
    int64_t start_wall, start_mono, last_progress;

    uint64_t rows, published, rejected, blank, delivered, failed;
    rejected_t *shown;
    size_t nshown, max_shown;
    uint64_t first_failed_line;
    char first_failure[160];
} imp_t;

static void note_rejection(imp_t *im, uint64_t line, const char *reason)
{
    im->rejected++;
    CS_DEBUG(LOG_COMP, "line %" PRIu64 ": %s", line, reason);
    if (im->nshown < im->max_shown) {
        im->shown[im->nshown].line = line;
        snprintf(im->shown[im->nshown].reason, sizeof(im->shown[0].reason), "%s", reason);
        im->nshown++;
    }
}

/* Delivery reports, on the main thread (cs_producer_poll / flush / send's own polling). */
static void on_delivery(void *opaque, void *msg_opaque, int err, const char *errstr,
                        int32_t partition, int64_t offset)
{
    imp_t *im = opaque;
    (void)partition;
    (void)offset;
    if (!err) {
        im->delivered++;
        return;
    }
    im->failed++;
    if (im->failed == 1) {
        im->first_failed_line = (uint64_t)(uintptr_t)msg_opaque;
        snprintf(im->first_failure, sizeof(im->first_failure), "%s",
                 errstr ? errstr : cs_err_str(err));
        CS_ERROR(LOG_COMP, "delivery failed (line %" PRIu64 "): %s", im->first_failed_line,
                 im->first_failure);
    }
}

static void fmt_count(uint64_t v, char *buf, size_t n)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof(tmp), "%" PRIu64, v), o = 0;
    for (int i = 0; i < len && (size_t)o + 2 < n; i++) {
        if (i && (len - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
}

static void show_progress(imp_t *im, int final)
{
    int64_t now = cs_now_ms();
    if (!im->progress || (!final && now - im->last_progress < 200))
        return;
    im->last_progress = now;
    double secs = (double)(now - im->start_mono) / 1000.0;
    double rate = secs > 0 ? (double)im->rows / secs : 0;
    char rows[32], pub[32];
    fmt_count(im->rows, rows, sizeof(rows));
    fmt_count(im->delivered, pub, sizeof(pub));
    if (final) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        return;
    }
    if (im->file_size) {
        uint64_t done = cs_csv_bytes(im->csv);
        int pct = (int)(done * 100 / im->file_size);
        char bar[31];
        int fill = pct * 30 / 100;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K[%s] %3d%%  %s rows  %.0f rows/s  delivered %s  rejected %" PRIu64,
                bar, pct, rows, rate, pub, im->rejected);
    } else {
        fprintf(stderr, "\r\033[K%s rows  %.0f rows/s  delivered %s  rejected %" PRIu64, rows, rate,
                pub, im->rejected);
    }
    fflush(stderr);
}

/* The CSV reader's input: read(2), but a stop request ends a read that would block (a pipe
 * or FIFO that stays open), reported as EINTR. */
static ssize_t read_input(void *opaque, void *buf, size_t n)
{
    imp_t *im = opaque;
    for (;;) {
        if (cs_run_stopping()) {
            errno = EINTR;
            return -1;
        }
        struct pollfd pfd = {im->fd, POLLIN, 0};
        int r = poll(&pfd, 1, 200);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t k = read(im->fd, buf, n);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return k;
    }
}

static int open_input(imp_t *im, char *errstr, size_t n)
{
    struct stat st;
    if (!strcmp(im->path, "-")) {
        im->fd = STDIN_FILENO;
    } else if ((im->fd = open(im->path, O_RDONLY | O_CLOEXEC)) < 0) {
        return cs_err_set(errstr, n, CS_ERR_IO, "cannot open %s: %s", im->path, strerror(errno));
    }
    if (fstat(im->fd, &st) == 0 && S_ISREG(st.st_mode))
        im->file_size = (uint64_t)st.st_size;
    else if (fstat(im->fd, &st) == 0 && S_ISDIR(st.st_mode))
        return cs_err_set(errstr, n, CS_ERR_IO, "%s is a directory", im->path);
#ifdef POSIX_FADV_SEQUENTIAL
    if (im->file_size)
        posix_fadvise(im->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    cs_csv_opts_t o;
    cs_csv_opts_init(&o);
    const char *d = cs_conf_str(im->conf, "import.delimiter");
    if (d && !strcmp(d, "tab"))
        o.delimiter = '\t';
    else if (d && strlen(d) == 1 && *d != '"' && *d != '\r' && *d != '\n')
        o.delimiter = *d;
    else
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "import.delimiter must be one character (not a quote) or \"tab\"");
    o.max_record = (size_t)cs_conf_int(im->conf, "import.max_row_bytes");
    o.max_fields = (size_t)cs_conf_int(im->conf, "import.max_columns");
    if (!(im->csv = cs_csv_new(&o, read_input, im)))
        return cs_err_set(errstr, n, CS_ERR_NOMEM, "out of memory");
    return CS_OK;
}

/* Checks that the topic exists before reading anything, so a typo or a missing
 * `crmsync-admin topics create` fails at once rather than after a million rows. */
static int check_topic(imp_t *im, char *errstr, size_t n)
{
    int parts = cs_kafka_partition_count(cs_producer_handle(im->producer), im->topic, 10000);
    if (parts == CS_ERR_NOT_FOUND)
        return cs_err_set(errstr, n, CS_ERR_NOT_FOUND,
                          "topic %s does not exist (create it: crmsync-admin topics create)",
                          im->topic);
    if (parts < 0)
        return cs_err_set(errstr, n, parts, "cannot reach Kafka to look up topic %s: %s", im->topic,
                          cs_err_str(parts));
    return CS_OK;
}

/* Sends one encoded row; waits (polling) while the producer queue is full. */
static int publish(imp_t *im, const char *key, const void *val, size_t len, uint64_t line)
{
    int err = cs_producer_send(im->producer, im->topic, key, strlen(key), val, len, 0,
                               (void *)(uintptr_t)line, -1);
    if (err == CS_OK) {
        im->published++;
        cs_producer_poll(im->producer, 0);
    }
    return err;
}

static int run(imp_t *im)
{
    cs_csv_record_t rec;
    im_map_t *map = calloc(1, sizeof(*map));
    char errstr[512], reason[256], key[256];
    const char *unknown_s = cs_conf_str(im->conf, "import.unknown_columns");
    const char *key_s = cs_conf_str(im->conf, "prospect.key");
    im_unknown_t unknown;
    im_key_mode_t key_mode;
    char import_id[64];
    int rc;

    if (!map)
        return 1;
    if (!strcmp(unknown_s, "custom"))
        unknown = IM_UNKNOWN_CUSTOM;
    else if (!strcmp(unknown_s, "ignore"))
        unknown = IM_UNKNOWN_IGNORE;
    else if (!strcmp(unknown_s, "error"))
        unknown = IM_UNKNOWN_ERROR;
    else {
        CS_ERROR(LOG_COMP, "import.unknown_columns: \"%s\" is not custom, ignore or error",
                 unknown_s);
        free(map);
        return 2;
    }
    if (!strcmp(key_s, "email"))
        key_mode = IM_KEY_EMAIL;
    else if (!strcmp(key_s, "id"))
        key_mode = IM_KEY_ID;
    else {
        CS_ERROR(LOG_COMP, "prospect.key: \"%s\" is not email or id", key_s);
        free(map);
        return 2;
    }
    if (*cs_conf_str(im->conf, "import.id"))
        snprintf(import_id, sizeof(import_id), "%s", cs_conf_str(im->conf, "import.id"));
    else
        snprintf(import_id, sizeof(import_id), "%" PRId64 "-%d", im->start_wall, (int)getpid());

    /* the header: the first record that parses */
    for (;;) {
        rc = cs_csv_next(im->csv, &rec);
        if (rc == 1)
            break;
        if (rc == 0) {
            CS_ERROR(LOG_COMP, "%s: empty file (a header row is required)", im->path);
            free(map);
            return 2;
        }
        if (rc == CS_ERR_IO) {
            free(map);
            if (cs_run_stopping())
                return EXIT_INTERRUPTED;
            CS_ERROR(LOG_COMP, "%s: %s", im->path, cs_csv_error(im->csv));
            return 1;
        }
        CS_ERROR(LOG_COMP, "%s: header row (line %" PRIu64 ") is malformed: %s", im->path, rec.line,
                 cs_csv_error(im->csv));
        free(map);
        return 2;
    }
    if (im_map_header(map, &rec, unknown, key_mode, errstr, sizeof(errstr))) {
        CS_ERROR(LOG_COMP, "%s: %s", im->path, errstr);
        free(map);
        return 2;
    }
    CS_INFO(LOG_COMP, "%s: %zu columns (%zu prospect fields, %zu custom, %zu ignored) -> %s%s",
            im->path, map->ncols, map->nchanged, map->ncustom, map->nignored, im->topic,
            im->dry_run ? " (dry run)" : "");

    im_row_ctx_t ctx = {map, key_mode, import_id, im->start_wall, 0};
    int out = 0;
    while (!cs_run_stopping()) {
        rc = cs_csv_next(im->csv, &rec);
        if (rc == 0)
            break;
        if (rc == CS_ERR_IO) {
            if (cs_run_stopping())
                break; /* a stop interrupted a blocked read */
            CS_ERROR(LOG_COMP, "%s: %s (after line %" PRIu64 ")", im->path, cs_csv_error(im->csv),
                     rec.line);
            out = 1;
            break;
        }
        im->rows++;
        if (rc < 0) {
            note_rejection(im, rec.line, cs_csv_error(im->csv));
            show_progress(im, 0);
            continue;
        }
        /* a row of empty cells (",,,," from a spreadsheet) is not data */
        size_t total = 0;
        for (size_t i = 0; i < rec.nfields; i++)
            total += rec.lens[i];
        if (total == 0) {
            im->rows--;
            im->blank++;
            continue;
        }
        avro_value_t *v = cs_avro_encoder_value(im->enc, CS_AVRO_PROSPECT_CHANGE);
        if (!v) {
            CS_ERROR(LOG_COMP, "out of memory");
            out = 1;
            break;
        }
        ctx.event_time = cs_wall_ms();
        if (im_row_fill(&ctx, &rec, v, key, sizeof(key), reason, sizeof(reason))) {
            note_rejection(im, rec.line, reason);
            show_progress(im, 0);
            continue;
        }
        const void *val;
        size_t len;
        if (cs_avro_encode(im->enc, v, &val, &len)) {
            snprintf(reason, sizeof(reason), "cannot encode: %s", cs_avro_encoder_error(im->enc));
            note_rejection(im, rec.line, reason);
            continue;
        }
        if (!im->dry_run) {
            int err = publish(im, key, val, len, rec.line);
            if (err) {
                /* Not enqueued: a fatal producer error (or an unknown topic). Nothing
                 * later would fare better. */
                CS_ERROR(LOG_COMP, "cannot send line %" PRIu64 ": %s", rec.line, cs_err_str(err));
                im->failed++;
                out = 1;
                break;
            }
        } else {
            im->published++;
            im->delivered++;
        }
        show_progress(im, 0);
    }
    int interrupted = cs_run_stopping();

    /* drain: every row sent gets its delivery report (bounded on SIGTERM) */
    if (!im->dry_run) {
        int64_t limit = interrupted ? cs_conf_int(im->conf, "shutdown.timeout.ms") : -1;
        int64_t deadline = limit < 0 ? -1 : cs_now_ms() + limit;
        while (cs_producer_outq_len(im->producer) > 0) {
            if (deadline >= 0 && cs_now_ms() >= deadline)
                break;
            cs_producer_poll(im->producer, 100);
            show_progress(im, 0);
        }
        if (cs_producer_outq_len(im->producer) > 0)
            CS_ERROR(LOG_COMP, "%d row(s) still undelivered at the shutdown deadline",
                     cs_producer_outq_len(im->producer));
    }
    show_progress(im, 1);
    im_map_free(map);
    free(map);

    uint64_t undelivered = im->published - im->delivered - im->failed;
    if (im->failed || undelivered)
        out = 1;
    if (interrupted && !out)
        out = EXIT_INTERRUPTED;
    if (!out && im->rejected)
        out = EXIT_REJECTED;
    return out;
}

static void summary(imp_t *im, int status)
{
    double secs = (double)(cs_now_ms() - im->start_mono) / 1000.0;
    uint64_t undelivered = im->published - im->delivered - im->failed;
    printf("crmsync-import: %s%s\n", im->path, im->dry_run ? " (dry run: nothing published)" : "");
    printf("  rows read        %" PRIu64 "\n", im->rows);
    printf("  published        %" PRIu64 "\n", im->delivered);
    printf("  rejected         %" PRIu64 "\n", im->rejected);
    printf("  delivery failed  %" PRIu64 "\n", im->failed + undelivered);
    if (im->blank)
        printf("  blank rows       %" PRIu64 " (skipped)\n", im->blank);
    printf("  topic            %s\n", im->topic);
    printf("  elapsed          %.1f s (%.0f rows/s)\n", secs, secs > 0 ? im->rows / secs : 0.0);
    if (im->failed)
        printf("  first failure    line %" PRIu64 ": %s\n", im->first_failed_line,
               im->first_failure);
    if (status == EXIT_INTERRUPTED)
        printf("  interrupted      stopped after %" PRIu64 " rows: the rest of the file was not "
               "read\n",
               im->rows);
    if (im->nshown) {
        printf("rejected rows:\n");
        for (size_t i = 0; i < im->nshown; i++)
            printf("  line %" PRIu64 ": %s\n", im->shown[i].line, im->shown[i].reason);
        if (im->rejected > im->nshown)
            printf("  ... and %" PRIu64 " more (import.max_errors_shown=%zu)\n",
                   im->rejected - im->nshown, im->max_shown);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    imp_t im;
    char errstr[512];
    int first = argc, err, status = 1;
    memset(&im, 0, sizeof(im));
    im.fd = -1;

    im.conf = cs_conf_new("crmsync-import", usage, import_opts);
    if (!im.conf || cs_conf_add_opts(im.conf, cs_topics_opts)) {
        fprintf(stderr, "crmsync-import: out of memory\n");
        return 1;
    }
    cs_conf_set_check(im.conf, cs_kafka_check_conf);
    err = cs_conf_from_args(im.conf, argc, argv, &first, errstr, sizeof(errstr));
    if (err) {
        if (err < 0)
            fprintf(stderr, "crmsync-import: %s\n", errstr);
        cs_conf_destroy(im.conf);
        return err < 0 ? 2 : 0;
    }
    if (argc - first != 1) {
        fprintf(stderr, "usage: crmsync-import [options] FILE.csv (--help for the options)\n");
        cs_conf_destroy(im.conf);
        return 2;
    }
    if (cs_log_setup(cs_conf_str(im.conf, "log.level"), cs_conf_str(im.conf, "log.format"))) {
        fprintf(stderr, "crmsync-import: bad log.level or log.format\n");
        cs_conf_destroy(im.conf);
        return 2;
    }
    cs_run_install_signals();
    im.path = argv[first];
    im.topic = cs_topic_name(im.conf, CS_TOPIC_PROSPECT);
    im.dry_run = cs_conf_bool(im.conf, "import.dry_run");
    im.start_wall = cs_wall_ms();
    im.start_mono = cs_now_ms();
    im.max_shown = (size_t)cs_conf_int(im.conf, "import.max_errors_shown");
    const char *prog = cs_conf_str(im.conf, "import.progress");
    if (!strcmp(prog, "on"))
        im.progress = 1;
    else if (!strcmp(prog, "auto"))
        im.progress = isatty(STDERR_FILENO);
    else if (strcmp(prog, "off")) {
        fprintf(stderr, "crmsync-import: import.progress must be auto, on or off\n");
        status = 2;
        goto out;
    }
    if (im.max_shown && !(im.shown = calloc(im.max_shown, sizeof(*im.shown)))) {
        fprintf(stderr, "crmsync-import: out of memory\n");
        goto out;
    }
    if ((err = open_input(&im, errstr, sizeof(errstr)))) {
        CS_ERROR(LOG_COMP, "%s", errstr);
        status = err == CS_ERR_NOMEM ? 1 : 2;
        goto out;
    }
    if (!(im.reg = cs_avro_registry_new(errstr, sizeof(errstr))) ||
        !(im.enc = cs_avro_encoder_new(im.reg, CS_AVRO_SINGLE_OBJECT))) {
        CS_ERROR(LOG_COMP, "Avro setup failed: %s", im.reg ? "out of memory" : errstr);
        goto out;
    }
    if (!im.dry_run) {
        if (!(im.producer = cs_producer_new(im.conf, on_delivery, &im, errstr, sizeof(errstr)))) {
            CS_ERROR(LOG_COMP, "Kafka producer: %s", errstr);
            status = 2;
            goto out;
        }
        if (check_topic(&im, errstr, sizeof(errstr))) {
            CS_ERROR(LOG_COMP, "%s", errstr);
            goto out;
        }
    }
    status = run(&im);
    if (status != 2)
        summary(&im, status);

out:
    if (im.producer) {
        /* everything was drained by run(); this only releases the handle */
        cs_producer_destroy(im.producer);
    }
    cs_avro_encoder_destroy(im.enc);
    cs_avro_registry_destroy(im.reg);
    cs_csv_destroy(im.csv);
    if (im.fd > STDIN_FILENO)
        close(im.fd);
    free(im.shown);
    cs_conf_destroy(im.conf);
    return status;
}
