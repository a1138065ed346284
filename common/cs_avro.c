/* cs_avro: embedded schemas, fingerprints, framing, and the fast decoder (see cs_avro.h).
 *
 * Each schema is known twice: as avro-c's avro_schema_t (used to make generic values and
 * to write them with avro_value_write), and as crmsync's own node tree compiled from the
 * same JSON (used for the Parsing Canonical Form, the bounds-checked decoder, defaults and
 * schema resolution, none of which avro-c 1.11.1 gets right or fast). Registry setup checks
 * that both trees agree. */
#include "cs_avro.h"

#include "cs_err.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CS_AVRO_MAX_DEPTH 64                   /* nesting limit for schemas and data */
#define CS_AVRO_MAX_FRAME (256u * 1024 * 1024) /* encoder buffer limit */
#define SO_HDR 10                              /* C3 01 + 8-byte fingerprint */
#define CF_HDR 5                               /* 00 + 4-byte id */

/* ---- Compiled schema nodes --------------------------------------------------------------- */

typedef struct node_s node_t;
struct node_s {
    avro_type_t type;
    char *fullname;    /* named types (record, enum, fixed) */
    size_t n;          /* record fields, union branches, enum symbols */
    node_t **kids;     /* record field types, union branches; array items / map values: kids[0] */
    char **names;      /* record field names, enum symbols */
    json_t **defaults; /* record field defaults, borrowed from the entry's JSON; NULL = none */
    int enum_default;  /* enum: default symbol index, -1 = none */
    int null_branch;   /* union: index of the null branch, -1 = none */
    int64_t size;      /* fixed size */
    size_t min_size;   /* fewest bytes an encoded value takes */
    bool emitted;      /* canonical form: named type already written once */
    node_t *next;      /* the entry's allocation list */
};

typedef struct {
    char *fullname;
    char *json;
    size_t json_len;
    json_t *doc;
    char *pcf;
    uint64_t fp;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    node_t *root;
    node_t *nodes; /* every node, for freeing */
    node_t **named;
    size_t n_named;
    int current; /* index of the current version of this record (itself when current) */
    int32_t id;  /* Confluent id of a current entry, -1 */
    bool old;
} entry_t;

typedef struct {
    int32_t id;
    int entry;
} id_map_t;

struct cs_avro_registry_s {
    entry_t *e; /* [0, CS_AVRO_N_SCHEMAS) are the topic records in id order */
    size_t n, cap;
    id_map_t *ids;
    size_t n_ids, cap_ids;
};

static const char *short_name(const char *fullname)
{
    const char *dot = strrchr(fullname, '.');
    return dot ? dot + 1 : fullname;
}

static int avro_fail(char *err, size_t n, int rc, const char *what)
{
    /* avro_strerror() is one process-wide buffer in Debian's build: copy it at once. */
    char copy[256];
    snprintf(copy, sizeof copy, "%s", avro_strerror());
    return cs_err_set(err, n, CS_ERR_AVRO, "%s: %s (%d)", what, copy, rc);
}

/* ---- Growable text buffer ---------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* ---- Schema compilation (JSON -> nodes) --------------------------------------------------- */

static const struct {
    const char *name;
    avro_type_t type;
    size_t min_size;
} prims[] = {
    {"null", AVRO_NULL, 0},   {"boolean", AVRO_BOOLEAN, 1}, {"int", AVRO_INT32, 1},
    {"long", AVRO_INT64, 1},  {"float", AVRO_FLOAT, 4},     {"double", AVRO_DOUBLE, 8},
    {"bytes", AVRO_BYTES, 1}, {"string", AVRO_STRING, 1},
};

static const char *type_name(avro_type_t t)
{
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i].type == t)
            return prims[i].name;
    switch (t) {
    case AVRO_RECORD:
        return "record";
    case AVRO_ENUM:
        return "enum";
    case AVRO_FIXED:
        return "fixed";
    case AVRO_ARRAY:
        return "array";
    case AVRO_MAP:
        return "map";
    case AVRO_UNION:
        return "union";
    default:
        return "?";
    }
}

typedef struct {
    entry_t *e;
    char *err;
    size_t n;
    int depth;
} cctx_t;

static node_t *node_new(cctx_t *c, avro_type_t t)
{
    node_t *nd = calloc(1, sizeof *nd);
    if (!nd) {
        cs_err_set(c->err, c->n, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    nd->type = t;
    nd->enum_default = -1;
    nd->null_branch = -1;
    nd->next = c->e->nodes;
    c->e->nodes = nd;
    return nd;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

static bool valid_fullname(const char *s)
{
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (!valid_name(s, n))
            return false;
        if (!dot)
            return true;
        s = dot + 1;
    }
}

static node_t *find_named(const entry_t *e, const char *fullname)
{
    for (size_t i = 0; i < e->n_named; i++)
        if (!strcmp(e->named[i]->fullname, fullname))
            return e->named[i];
    return NULL;
}

static bool default_ok(const node_t *nd, const json_t *j, int depth);

static node_t *compile(cctx_t *c, json_t *j, const char *ns);

static node_t *compile_named(cctx_t *c, json_t *j, const char *ns, avro_type_t t)
{
    json_t *jname = json_object_get(j, "name");
    json_t *jns = json_object_get(j, "namespace");
    if (!json_is_string(jname)) {
        cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s without a name", type_name(t));
        return NULL;
    }
    const char *name = json_string_value(jname);
    if (!name)
        return NULL;
    char fullname[1100], newns[512];
    if (strchr(name, '.')) {
        snprintf(fullname, sizeof fullname, "%s", name);
        snprintf(newns, sizeof newns, "%.*s", (int)(strrchr(name, '.') - name), name);
    } else {
        snprintf(newns, sizeof newns, "%s", json_is_string(jns) ? json_string_value(jns) : ns);
        snprintf(fullname, sizeof fullname, "%s%s%s", newns, newns[0] ? "." : "", name);
    }
    if (!valid_fullname(fullname)) {
        cs_err_set(c->err, c->n, CS_ERR_PARSE, "invalid name \"%s\"", fullname);
        return NULL;
    }
    if (find_named(c->e, fullname)) {
        cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s defined twice", fullname);
        return NULL;
    }
    node_t *nd = node_new(c, t);
    if (!nd || !(nd->fullname = strdup(fullname)))
        goto nomem;
    node_t **named = realloc(c->e->named, (c->e->n_named + 1) * sizeof *named);
    if (!named)
        goto nomem;
    c->e->named = named;
    named[c->e->n_named++] = nd; /* registered before its fields: allows recursion */

    if (t == AVRO_RECORD) {
        json_t *fields = json_object_get(j, "fields");
        if (!json_is_array(fields)) {
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: no fields array", fullname);
            return NULL;
        }
        nd->n = json_array_size(fields);
        nd->kids = calloc(nd->n + 1, sizeof *nd->kids);
        nd->names = calloc(nd->n + 1, sizeof *nd->names);
        nd->defaults = calloc(nd->n + 1, sizeof *nd->defaults);
        if (!nd->kids || !nd->names || !nd->defaults)
            goto nomem;
        for (size_t i = 0; i < nd->n; i++) {
            json_t *f = json_array_get(fields, i);
            json_t *fname = json_object_get(f, "name");
            if (!json_is_string(fname) ||
                !valid_name(json_string_value(fname), strlen(json_string_value(fname)))) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: field %zu has no valid name", fullname,
                           i);
                return NULL;
            }
            for (size_t k = 0; k < i; k++)
                if (!strcmp(nd->names[k], json_string_value(fname))) {
                    cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: field %s defined twice", fullname,
                               nd->names[k]);
                    return NULL;
                }
            if (!(nd->names[i] = strdup(json_string_value(fname))))
                goto nomem;
            if (!json_object_get(f, "type")) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s.%s: no type", fullname, nd->names[i]);
                return NULL;
            }
            if (!(nd->kids[i] = compile(c, json_object_get(f, "type"), newns)))
                return NULL;
            nd->defaults[i] = json_object_get(f, "default");
            if (nd->defaults[i] && !default_ok(nd->kids[i], nd->defaults[i], 0)) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s.%s: default does not fit the type",
                           fullname, nd->names[i]);
                return NULL;
            }
            nd->min_size += nd->kids[i]->min_size;
        }
    } else if (t == AVRO_ENUM) {
        json_t *syms = json_object_get(j, "symbols");
        if (!json_is_array(syms) || json_array_size(syms) == 0) {
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: no symbols", fullname);
            return NULL;
        }
        nd->n = json_array_size(syms);
        if (!(nd->names = calloc(nd->n + 1, sizeof *nd->names)))
            goto nomem;
        for (size_t i = 0; i < nd->n; i++) {
            const char *s = json_string_value(json_array_get(syms, i));
            if (!s || !valid_name(s, strlen(s))) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: bad symbol %zu", fullname, i);
                return NULL;
            }
            if (!(nd->names[i] = strdup(s)))
                goto nomem;
        }
        json_t *def = json_object_get(j, "default");
        if (def) {
            for (size_t i = 0; i < nd->n; i++)
                if (json_is_string(def) && !strcmp(nd->names[i], json_string_value(def)))
                    nd->enum_default = (int)i;
            if (nd->enum_default < 0) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: default is not a symbol", fullname);
                return NULL;
            }
        }
        nd->min_size = 1;
    } else { /* fixed */
        json_t *size = json_object_get(j, "size");
        if (!json_is_integer(size) || json_integer_value(size) < 0) {
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s: bad size", fullname);
            return NULL;
        }
        nd->size = json_integer_value(size);
        nd->min_size = (size_t)nd->size;
    }
    return nd;
nomem:
    cs_err_set(c->err, c->n, CS_ERR_NOMEM, "out of memory");
    return NULL;
}

static node_t *compile(cctx_t *c, json_t *j, const char *ns)
{
    node_t *nd = NULL;
    if (++c->depth > CS_AVRO_MAX_DEPTH) {
        cs_err_set(c->err, c->n, CS_ERR_PARSE, "schema nested too deeply");
        goto out;
    }
    if (json_is_string(j)) {
        const char *s = json_string_value(j);
        for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
            if (!strcmp(s, prims[i].name)) {
                if ((nd = node_new(c, prims[i].type)))
                    nd->min_size = prims[i].min_size;
                goto out;
            }
        char full[512];
        snprintf(full, sizeof full, "%s%s%s", strchr(s, '.') ? "" : ns,
                 !strchr(s, '.') && ns[0] ? "." : "", s);
        if (!(nd = find_named(c->e, full)) && !(nd = find_named(c->e, s)))
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "unknown type \"%s\"", s);
    } else if (json_is_array(j)) {
        size_t n = json_array_size(j);
        if (n == 0) {
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "empty union");
            goto out;
        }
        node_t *u = node_new(c, AVRO_UNION);
        if (!u || !(u->kids = calloc(n, sizeof *u->kids))) {
            cs_err_set(c->err, c->n, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        u->n = n;
        u->min_size = 1;
        for (size_t i = 0; i < n; i++) {
            if (!(u->kids[i] = compile(c, json_array_get(j, i), ns)))
                goto out;
            if (u->kids[i]->type == AVRO_UNION) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "union inside a union");
                goto out;
            }
            if (u->kids[i]->type == AVRO_NULL && u->null_branch < 0)
                u->null_branch = (int)i;
        }
        nd = u;
    } else if (json_is_object(j)) {
        json_t *t = json_object_get(j, "type");
        if (json_is_object(t) || json_is_array(t)) {
            nd = compile(c, t, ns);
            goto out;
        }
        const char *ts = json_string_value(t);
        if (!ts) {
            cs_err_set(c->err, c->n, CS_ERR_PARSE, "schema object without a type");
        } else if (!strcmp(ts, "record") || !strcmp(ts, "error")) {
            nd = compile_named(c, j, ns, AVRO_RECORD);
        } else if (!strcmp(ts, "enum")) {
            nd = compile_named(c, j, ns, AVRO_ENUM);
        } else if (!strcmp(ts, "fixed")) {
            nd = compile_named(c, j, ns, AVRO_FIXED);
        } else if (!strcmp(ts, "array") || !strcmp(ts, "map")) {
            bool arr = ts[0] == 'a';
            json_t *sub = json_object_get(j, arr ? "items" : "values");
            if (!sub) {
                cs_err_set(c->err, c->n, CS_ERR_PARSE, "%s without %s", ts,
                           arr ? "items" : "values");
                goto out;
            }
            node_t *a = node_new(c, arr ? AVRO_ARRAY : AVRO_MAP);
            if (!a || !(a->kids = calloc(1, sizeof *a->kids))) {
                cs_err_set(c->err, c->n, CS_ERR_NOMEM, "out of memory");
                goto out;
            }
            a->n = 1;
            a->min_size = 1;
            if ((a->kids[0] = compile(c, sub, ns)))
                nd = a;
        } else {
            nd = compile(c, t, ns); /* primitive with attributes, or a named reference */
        }
    } else {
        cs_err_set(c->err, c->n, CS_ERR_PARSE, "a schema must be a string, array or object");
    }
out:
    c->depth--;
    return nd;
}

/* Whether a JSON default value fits a node (spec: "default values" of record fields). */
static bool default_ok(const node_t *nd, const json_t *j, int depth)
{
    if (depth > CS_AVRO_MAX_DEPTH)
        return false;
    switch (nd->type) {
    case AVRO_NULL:
        return json_is_null(j);
    case AVRO_BOOLEAN:
        return json_is_boolean(j);
    case AVRO_INT32:
        return json_is_integer(j) && json_integer_value(j) >= INT32_MIN &&
               json_integer_value(j) <= INT32_MAX;
    case AVRO_INT64:
        return json_is_integer(j);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return json_is_number(j);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_FIXED:
        return json_is_string(j);
    case AVRO_ENUM:
        if (!json_is_string(j))
            return false;
        for (size_t i = 0; i < nd->n; i++)
            if (!strcmp(nd->names[i], json_string_value(j)))
                return true;
        return false;
    case AVRO_UNION:
        return default_ok(nd->kids[0], j, depth + 1); /* a union's default is its first branch */
    case AVRO_ARRAY: {
        if (!json_is_array(j))
            return false;
        for (size_t i = 0; i < json_array_size(j); i++)
            if (!default_ok(nd->kids[0], json_array_get(j, i), depth + 1))
                return false;
        return true;
    }
    case AVRO_MAP: {
        const char *k;
        json_t *v;
        if (!json_is_object(j))
            return false;
        json_object_foreach((json_t *)j, k, v)
        {
            if (!default_ok(nd->kids[0], v, depth + 1))
                return false;
        }
        return true;
    }
    case AVRO_RECORD:
        if (!json_is_object(j))
            return false;
        for (size_t i = 0; i < nd->n; i++) {
            json_t *v = json_object_get(j, nd->names[i]);
            if (!v)
                v = nd->defaults[i];
            if (!v || !default_ok(nd->kids[i], v, depth + 1))
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* ---- Parsing Canonical Form and fingerprint ----------------------------------------------- */

/* Spec "Parsing Canonical Form for Schemas": primitives as bare names, fullnames, only name /
 * type / fields / symbols / items / values / size kept, in that order, no whitespace; a named
 * type appears in full once and by fullname afterwards. Names and symbols were validated to
 * [A-Za-z0-9_.], so no JSON escaping is needed. */
static void pcf_emit(sbuf_t *b, node_t *nd)
{
    char num[32];
    switch (nd->type) {
    case AVRO_RECORD:
    case AVRO_ENUM:
    case AVRO_FIXED:
        if (nd->emitted) {
            sb_str(b, "\"");
            sb_str(b, nd->fullname);
            sb_str(b, "\"");
            return;
        }
        nd->emitted = true;
        sb_str(b, "{\"name\":\"");
        sb_str(b, nd->fullname);
        sb_str(b, "\",\"type\":\"");
        sb_str(b, type_name(nd->type));
        sb_str(b, "\"");
        if (nd->type == AVRO_RECORD) {
            sb_str(b, ",\"fields\":[");
            for (size_t i = 0; i < nd->n; i++) {
                sb_str(b, i ? ",{\"name\":\"" : "{\"name\":\"");
                sb_str(b, nd->names[i]);
                sb_str(b, "\",\"type\":");
                pcf_emit(b, nd->kids[i]);
                sb_str(b, "}");
            }
            sb_str(b, "]");
        } else if (nd->type == AVRO_ENUM) {
            sb_str(b, ",\"symbols\":[");
            for (size_t i = 0; i < nd->n; i++) {
                sb_str(b, i ? ",\"" : "\"");
                sb_str(b, nd->names[i]);
                sb_str(b, "\"");
            }
            sb_str(b, "]");
        } else {
            snprintf(num, sizeof num, ",\"size\":%lld", (long long)nd->size);
            sb_str(b, num);
        }
        sb_str(b, "}");
        return;
    case AVRO_ARRAY:
    case AVRO_MAP:
        sb_str(b, nd->type == AVRO_ARRAY ? "{\"type\":\"array\",\"items\":"
                                         : "{\"type\":\"map\",\"values\":");
        pcf_emit(b, nd->kids[0]);
        sb_str(b, "}");
        return;
    case AVRO_UNION:
        sb_str(b, "[");
        for (size_t i = 0; i < nd->n; i++) {
            if (i)
                sb_str(b, ",");
            pcf_emit(b, nd->kids[i]);
        }
        sb_str(b, "]");
        return;
    default:
        sb_str(b, "\"");
        sb_str(b, type_name(nd->type));
        sb_str(b, "\"");
    }
}

/* CRC-64-AVRO (Rabin), spec "Schema Fingerprints". */
static uint64_t rabin64(const void *data, size_t n)
{
    const uint64_t empty = 0xc15d213aa4d7a795ULL;
    uint64_t table[256];
    for (int i = 0; i < 256; i++) {
        uint64_t fp = (uint64_t)i;
        for (int j = 0; j < 8; j++)
            fp = (fp >> 1) ^ (empty & (0 - (fp & 1)));
        table[i] = fp;
    }
    const unsigned char *p = data;
    uint64_t fp = empty;
    for (size_t i = 0; i < n; i++)
        fp = (fp >> 8) ^ table[(fp ^ p[i]) & 0xff];
    return fp;
}

/* ---- Entries ------------------------------------------------------------------------------ */

static void entry_free(entry_t *e)
{
    if (!e)
        return;
    if (e->iface)
        avro_value_iface_decref(e->iface);
    if (e->schema)
        avro_schema_decref(e->schema);
    for (node_t *nd = e->nodes, *next; nd; nd = next) {
        next = nd->next;
        if (nd->names)
            for (size_t i = 0; i < nd->n; i++)
                free(nd->names[i]);
        free(nd->names);
        free(nd->kids);
        free(nd->defaults);
        free(nd->fullname);
        free(nd);
    }
    free(e->named);
    free(e->pcf);
    free(e->json);
    free(e->fullname);
    json_decref(e->doc);
    memset(e, 0, sizeof *e);
}

/* Checks that avro-c parsed the schema into the same tree as ours. */
static int agree(const node_t *nd, avro_schema_t s, int depth, char *err, size_t n)
{
    if (depth > CS_AVRO_MAX_DEPTH)
        return 0; /* recursive type: checked once already */
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    if (!s || avro_typeof(s) != nd->type)
        return cs_err_set(err, n, CS_ERR_AVRO, "avro-c sees %s where crmsync sees %s",
                          s ? avro_schema_type_name(s) : "nothing", type_name(nd->type));
    int rc = 0;
    switch (nd->type) {
    case AVRO_RECORD:
        if (avro_schema_record_size(s) != nd->n)
            return cs_err_set(err, n, CS_ERR_AVRO, "%s: field count differs", nd->fullname);
        for (size_t i = 0; i < nd->n && !rc; i++) {
            const char *fn = avro_schema_record_field_name(s, (int)i);
            if (!fn || strcmp(fn, nd->names[i]))
                return cs_err_set(err, n, CS_ERR_AVRO, "%s: field %zu differs", nd->fullname, i);
            rc = agree(nd->kids[i], avro_schema_record_field_get_by_index(s, (int)i), depth + 1,
                       err, n);
        }
        return rc;
    case AVRO_ENUM:
        if ((size_t)avro_schema_enum_number_of_symbols(s) != nd->n)
            return cs_err_set(err, n, CS_ERR_AVRO, "%s: symbol count differs", nd->fullname);
        for (size_t i = 0; i < nd->n; i++)
            if (strcmp(avro_schema_enum_get(s, (int)i), nd->names[i]))
                return cs_err_set(err, n, CS_ERR_AVRO, "%s: symbol %zu differs", nd->fullname, i);
        return 0;
    case AVRO_FIXED:
        return avro_schema_fixed_size(s) == nd->size
                   ? 0
                   : cs_err_set(err, n, CS_ERR_AVRO, "%s: size differs", nd->fullname);
    case AVRO_UNION:
        if (avro_schema_union_size(s) != nd->n)
            return cs_err_set(err, n, CS_ERR_AVRO, "union size differs");
        for (size_t i = 0; i < nd->n && !rc; i++)
            rc = agree(nd->kids[i], avro_schema_union_branch(s, (int)i), depth + 1, err, n);
        return rc;
    case AVRO_ARRAY:
        return agree(nd->kids[0], avro_schema_array_items(s), depth + 1, err, n);
    case AVRO_MAP:
        return agree(nd->kids[0], avro_schema_map_values(s), depth + 1, err, n);
    default:
        return 0;
    }
}

static int entry_init(entry_t *e, const char *json, size_t len, char *err, size_t n)
{
    int rc;
    json_error_t jerr;
    sbuf_t b = {0};
    memset(e, 0, sizeof *e);
    e->id = -1;
    if (!(e->json = malloc(len + 1)))
        return cs_err_set(err, n, CS_ERR_NOMEM, "out of memory");
    memcpy(e->json, json, len);
    e->json[len] = '\0';
    e->json_len = len;
    if (!(e->doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)))
        return cs_err_set(err, n, CS_ERR_PARSE, "line %d: %s", jerr.line, jerr.text);
    cctx_t c = {e, err, n, 0};
    if (!(e->root = compile(&c, e->doc, "")))
        return err && n && err[0] ? CS_ERR_PARSE : cs_err_set(err, n, CS_ERR_PARSE, "bad schema");
    if (e->root->type != AVRO_RECORD)
        return cs_err_set(err, n, CS_ERR_PARSE, "top-level schema must be a record");
    if (!(e->fullname = strdup(e->root->fullname)))
        return cs_err_set(err, n, CS_ERR_NOMEM, "out of memory");
    pcf_emit(&b, e->root);
    if (b.oom) {
        free(b.p);
        return cs_err_set(err, n, CS_ERR_NOMEM, "out of memory");
    }
    e->pcf = b.p;
    e->fp = rabin64(b.p, b.len);
    if ((rc = avro_schema_from_json_length(e->json, len, &e->schema))) {
        e->schema = NULL;
        return avro_fail(err, n, rc, e->fullname);
    }
    if ((rc = agree(e->root, e->schema, 0, err, n)))
        return rc;
    if (!(e->iface = avro_generic_class_from_schema(e->schema)))
        return avro_fail(err, n, ENOMEM, e->fullname);
    return 0;
}

/* ---- Defaults and zero values ------------------------------------------------------------- */

#define AVC(call)                                                                                  \
    do {                                                                                           \
        int avc_rc_ = (call);                                                                      \
        if (avc_rc_)                                                                               \
            return avc_rc_ == ENOMEM ? CS_ERR_NOMEM : CS_ERR_AVRO;                                 \
    } while (0)

static int set_str0(avro_value_t *v, const char *s, size_t len)
{
    /* avro-c strings carry their NUL in the size: pass len + 1 of a NUL-terminated copy. */
    char small[256];
    char *tmp = len < sizeof small ? small : malloc(len + 1);
    if (!tmp)
        return CS_ERR_NOMEM;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    int rc = avro_value_set_string_len(v, tmp, len + 1);
    if (tmp != small)
        free(tmp);
    return rc ? CS_ERR_AVRO : 0;
}

/* JSON default for bytes/fixed: each char is one byte (code points 0-255). */
static int latin1_bytes(const char *s, unsigned char **out, size_t *len)
{
    size_t n = strlen(s), k = 0;
    unsigned char *b = malloc(n + 1);
    if (!b)
        return CS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x80) {
            b[k++] = ch;
        } else if ((ch & 0xe0) == 0xc0 && i + 1 < n && ch <= 0xc3) {
            b[k++] = (unsigned char)(((ch & 0x1f) << 6) | (s[++i] & 0x3f));
        } else {
            free(b);
            return CS_ERR_INVAL;
        }
    }
    *out = b;
    *len = k;
    return 0;
}

static int node_zero(const node_t *nd, avro_value_t *v, int depth);

static int set_default(const node_t *nd, const json_t *j, avro_value_t *v, int depth)
{
    avro_value_t child;
    if (depth > CS_AVRO_MAX_DEPTH)
        return CS_ERR_INVAL;
    switch (nd->type) {
    case AVRO_NULL:
        AVC(avro_value_set_null(v));
        return 0;
    case AVRO_BOOLEAN:
        AVC(avro_value_set_boolean(v, json_is_true(j)));
        return 0;
    case AVRO_INT32:
        AVC(avro_value_set_int(v, (int32_t)json_integer_value(j)));
        return 0;
    case AVRO_INT64:
        AVC(avro_value_set_long(v, json_integer_value(j)));
        return 0;
    case AVRO_FLOAT:
        AVC(avro_value_set_float(v, (float)json_number_value(j)));
        return 0;
    case AVRO_DOUBLE:
        AVC(avro_value_set_double(v, json_number_value(j)));
        return 0;
    case AVRO_STRING:
        return set_str0(v, json_string_value(j), strlen(json_string_value(j)));
    case AVRO_BYTES:
    case AVRO_FIXED: {
        unsigned char *b;
        size_t len;
        int rc = latin1_bytes(json_string_value(j), &b, &len);
        if (rc)
            return rc;
        if (nd->type == AVRO_FIXED && (int64_t)len != nd->size)
            rc = CS_ERR_INVAL;
        else if (nd->type == AVRO_FIXED ? avro_value_set_fixed(v, b, len)
                                        : avro_value_set_bytes(v, b, len))
            rc = CS_ERR_AVRO;
        free(b);
        return rc;
    }
    case AVRO_ENUM:
        for (size_t i = 0; i < nd->n; i++)
            if (!strcmp(nd->names[i], json_string_value(j))) {
                AVC(avro_value_set_enum(v, (int)i));
                return 0;
            }
        return CS_ERR_INVAL;
    case AVRO_UNION:
        AVC(avro_value_set_branch(v, 0, &child));
        return set_default(nd->kids[0], j, &child, depth + 1);
    case AVRO_ARRAY: {
        AVC(avro_value_reset(v));
        for (size_t i = 0; i < json_array_size(j); i++) {
            AVC(avro_value_append(v, &child, NULL));
            int rc = set_default(nd->kids[0], json_array_get(j, i), &child, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case AVRO_MAP: {
        const char *k;
        json_t *jv;
        AVC(avro_value_reset(v));
        json_object_foreach((json_t *)j, k, jv)
        {
            AVC(avro_value_add(v, k, &child, NULL, NULL));
            int rc = set_default(nd->kids[0], jv, &child, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case AVRO_RECORD:
        for (size_t i = 0; i < nd->n; i++) {
            const json_t *fj = json_object_get(j, nd->names[i]);
            if (!fj)
                fj = nd->defaults[i];
            AVC(avro_value_get_by_index(v, i, &child, NULL));
            int rc = fj ? set_default(nd->kids[i], fj, &child, depth + 1)
                        : node_zero(nd->kids[i], &child, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    default:
        return CS_ERR_INVAL;
    }
}

/* Record fields take their schema default; everything else null (nullable), 0, false, "",
 * empty, the enum's default symbol or its first one. */
static int node_zero(const node_t *nd, avro_value_t *v, int depth)
{
    avro_value_t child;
    size_t size;
    if (depth > CS_AVRO_MAX_DEPTH)
        return CS_ERR_INVAL;
    switch (nd->type) {
    case AVRO_NULL:
        AVC(avro_value_set_null(v));
        return 0;
    case AVRO_BOOLEAN:
        AVC(avro_value_set_boolean(v, 0));
        return 0;
    case AVRO_INT32:
        AVC(avro_value_set_int(v, 0));
        return 0;
    case AVRO_INT64:
        AVC(avro_value_set_long(v, 0));
        return 0;
    case AVRO_FLOAT:
        AVC(avro_value_set_float(v, 0));
        return 0;
    case AVRO_DOUBLE:
        AVC(avro_value_set_double(v, 0));
        return 0;
    case AVRO_STRING:
        AVC(avro_value_set_string_len(v, "", 1));
        return 0;
    case AVRO_BYTES:
        AVC(avro_value_set_bytes(v, (void *)"", 0));
        return 0;
    case AVRO_FIXED: {
        void *z = calloc(1, (size_t)nd->size + 1);
        if (!z)
            return CS_ERR_NOMEM;
        int rc = avro_value_set_fixed(v, z, (size_t)nd->size);
        free(z);
        return rc ? CS_ERR_AVRO : 0;
    }
    case AVRO_ENUM:
        AVC(avro_value_set_enum(v, nd->enum_default >= 0 ? nd->enum_default : 0));
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP:
        AVC(avro_value_get_size(v, &size));
        if (size)
            AVC(avro_value_reset(v));
        return 0;
    case AVRO_UNION: {
        int k = nd->null_branch >= 0 ? nd->null_branch : 0;
        AVC(avro_value_set_branch(v, k, &child));
        return node_zero(nd->kids[k], &child, depth + 1);
    }
    case AVRO_RECORD:
        for (size_t i = 0; i < nd->n; i++) {
            AVC(avro_value_get_by_index(v, i, &child, NULL));
            int rc = nd->defaults[i] ? set_default(nd->kids[i], nd->defaults[i], &child, depth + 1)
                                     : node_zero(nd->kids[i], &child, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    default:
        return CS_ERR_INVAL;
    }
}

/* ---- Schema resolution (writer node -> reader node) --------------------------------------- */

static bool promotable(avro_type_t w, avro_type_t r)
{
    switch (w) {
    case AVRO_INT32:
        return r == AVRO_INT64 || r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_INT64:
        return r == AVRO_FLOAT || r == AVRO_DOUBLE;
    case AVRO_FLOAT:
        return r == AVRO_DOUBLE;
    case AVRO_STRING:
        return r == AVRO_BYTES;
    case AVRO_BYTES:
        return r == AVRO_STRING;
    default:
        return false;
    }
}

static bool same_kind(const node_t *w, const node_t *r)
{
    if (w->type != r->type)
        return false;
    if (w->type == AVRO_RECORD || w->type == AVRO_ENUM || w->type == AVRO_FIXED)
        return !strcmp(short_name(w->fullname), short_name(r->fullname));
    return true;
}

/* Spec: the first reader branch that matches the writer's type (exact first, then by
 * promotion, as the Java implementation does). */
static int match_branch(const node_t *w, const node_t *ru)
{
    for (size_t k = 0; k < ru->n; k++)
        if (same_kind(w, ru->kids[k]))
            return (int)k;
    for (size_t k = 0; k < ru->n; k++)
        if (promotable(w->type, ru->kids[k]->type))
            return (int)k;
    return -1;
}

static int field_index(const node_t *rec, const char *name)
{
    for (size_t i = 0; i < rec->n; i++)
        if (!strcmp(rec->names[i], name))
            return (int)i;
    return -1;
}

static int resolvable(const node_t *w, const node_t *r, int depth, char *err, size_t n)
{
    int rc = 0;
    if (depth > CS_AVRO_MAX_DEPTH)
        return 0;
    if (w->type == AVRO_UNION) {
        for (size_t k = 0; k < w->n && !rc; k++)
            rc = resolvable(w->kids[k], r, depth + 1, err, n);
        return rc;
    }
    if (r->type == AVRO_UNION) {
        int k = match_branch(w, r);
        if (k < 0)
            return cs_err_set(err, n, CS_ERR_AVRO, "writer %s matches no branch of the union",
                              type_name(w->type));
        return resolvable(w, r->kids[k], depth + 1, err, n);
    }
    if (!same_kind(w, r)) {
        if (promotable(w->type, r->type))
            return 0;
        return cs_err_set(err, n, CS_ERR_AVRO, "writer %s %s cannot be read as %s %s",
                          type_name(w->type), w->fullname ? w->fullname : "", type_name(r->type),
                          r->fullname ? r->fullname : "");
    }
    switch (r->type) {
    case AVRO_RECORD:
        for (size_t i = 0; i < r->n && !rc; i++) {
            int wi = field_index(w, r->names[i]);
            if (wi >= 0) {
                rc = resolvable(w->kids[wi], r->kids[i], depth + 1, err, n);
                if (rc && err && n) {
                    char inner[256];
                    snprintf(inner, sizeof inner, "%s", err);
                    cs_err_set(err, n, rc, "%s.%s: %s", r->fullname, r->names[i], inner);
                }
            } else if (!r->defaults[i]) {
                rc = cs_err_set(err, n, CS_ERR_AVRO,
                                "%s.%s is not in the writer schema and has no default", r->fullname,
                                r->names[i]);
            }
        }
        return rc;
    case AVRO_FIXED:
        return w->size == r->size
                   ? 0
                   : cs_err_set(err, n, CS_ERR_AVRO, "%s: size differs", r->fullname);
    case AVRO_ARRAY:
    case AVRO_MAP:
        return resolvable(w->kids[0], r->kids[0], depth + 1, err, n);
    default:
        return 0; /* enum symbols are matched by name per record (default or error) */
    }
}

typedef struct {
    char *p;
    size_t cap;
} scratch_t;

static char *scratch_get(scratch_t *s, size_t need)
{
    if (need > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p)
            return NULL;
        s->p = p;
        s->cap = cap;
    }
    return s->p;
}

/* Copies a writer-schema value into a reader-schema value (rare path: older versions). */
static int resolve_copy(const node_t *w, avro_value_t *src, const node_t *r, avro_value_t *dst,
                        int depth, char *err, size_t n)
{
    avro_value_t a, b;
    int rc;
    if (depth > CS_AVRO_MAX_DEPTH)
        return cs_err_set(err, n, CS_ERR_AVRO, "nested too deeply");
    if (w->type == AVRO_UNION) {
        int d = -1;
        if (avro_value_get_discriminant(src, &d) || d < 0 || (size_t)d >= w->n ||
            avro_value_get_current_branch(src, &a))
            return cs_err_set(err, n, CS_ERR_AVRO, "writer union without a branch");
        return resolve_copy(w->kids[d], &a, r, dst, depth + 1, err, n);
    }
    if (r->type == AVRO_UNION) {
        int k = match_branch(w, r);
        if (k < 0 || avro_value_set_branch(dst, k, &b))
            return cs_err_set(err, n, CS_ERR_AVRO, "no union branch for writer %s",
                              type_name(w->type));
        return resolve_copy(w, src, r->kids[k], &b, depth + 1, err, n);
    }
    int32_t i32 = 0;
    int64_t i64 = 0;
    float f = 0;
    double d = 0;
    int bo = 0;
    const void *p = NULL;
    size_t size = 0;
    switch (r->type) {
    case AVRO_NULL:
        rc = avro_value_set_null(dst);
        break;
    case AVRO_BOOLEAN:
        rc = avro_value_get_boolean(src, &bo) || avro_value_set_boolean(dst, bo);
        break;
    case AVRO_INT32:
        rc = avro_value_get_int(src, &i32) || avro_value_set_int(dst, i32);
        break;
    case AVRO_INT64:
        if (w->type == AVRO_INT32)
            rc = avro_value_get_int(src, &i32) || avro_value_set_long(dst, i32);
        else
            rc = avro_value_get_long(src, &i64) || avro_value_set_long(dst, i64);
        break;
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        if (w->type == AVRO_INT32)
            rc = avro_value_get_int(src, &i32), d = i32;
        else if (w->type == AVRO_INT64)
            rc = avro_value_get_long(src, &i64), d = (double)i64;
        else if (w->type == AVRO_FLOAT)
            rc = avro_value_get_float(src, &f), d = f;
        else
            rc = avro_value_get_double(src, &d);
        if (!rc)
            rc = r->type == AVRO_FLOAT ? avro_value_set_float(dst, (float)d)
                                       : avro_value_set_double(dst, d);
        break;
    case AVRO_STRING:
    case AVRO_BYTES: {
        const char *s = NULL;
        if (w->type == AVRO_STRING) {
            rc = avro_value_get_string(src, &s, &size);
            p = s;
            if (!rc && size)
                size--; /* avro-c counts the NUL */
        } else {
            rc = avro_value_get_bytes(src, &p, &size);
        }
        if (rc)
            break;
        if (r->type == AVRO_STRING)
            return set_str0(dst, p ? p : "", size) ? cs_err_set(err, n, CS_ERR_AVRO, "string") : 0;
        rc = avro_value_set_bytes(dst, (void *)(p ? p : ""), size);
        break;
    }
    case AVRO_FIXED:
        rc = avro_value_get_fixed(src, &p, &size) || avro_value_set_fixed(dst, (void *)p, size);
        break;
    case AVRO_ENUM: {
        int sym;
        if (avro_value_get_enum(src, &sym) || sym < 0 || (size_t)sym >= w->n)
            return cs_err_set(err, n, CS_ERR_AVRO, "bad enum value");
        int rs = -1;
        for (size_t k = 0; k < r->n && rs < 0; k++)
            if (!strcmp(r->names[k], w->names[sym]))
                rs = (int)k;
        if (rs < 0)
            rs = r->enum_default;
        if (rs < 0)
            return cs_err_set(err, n, CS_ERR_AVRO, "%s: symbol %s unknown to the reader",
                              r->fullname, w->names[sym]);
        rc = avro_value_set_enum(dst, rs);
        break;
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
        rc = avro_value_reset(dst) || avro_value_get_size(src, &size);
        for (size_t k = 0; !rc && k < size; k++) {
            const char *key = NULL;
            rc = avro_value_get_by_index(src, k, &a, &key) ||
                 (r->type == AVRO_ARRAY ? avro_value_append(dst, &b, NULL)
                                        : avro_value_add(dst, key, &b, NULL, NULL));
            if (!rc && (rc = resolve_copy(w->kids[0], &a, r->kids[0], &b, depth + 1, err, n)))
                return rc;
        }
        break;
    case AVRO_RECORD:
        for (size_t i = 0; i < r->n; i++) {
            int wi = field_index(w, r->names[i]);
            if (avro_value_get_by_index(dst, i, &b, NULL))
                return cs_err_set(err, n, CS_ERR_AVRO, "record field");
            if (wi < 0) {
                if ((rc = set_default(r->kids[i], r->defaults[i], &b, depth + 1)))
                    return cs_err_set(err, n, rc, "%s.%s: cannot set default", r->fullname,
                                      r->names[i]);
                continue;
            }
            if (avro_value_get_by_index(src, (size_t)wi, &a, NULL))
                return cs_err_set(err, n, CS_ERR_AVRO, "record field");
            if ((rc = resolve_copy(w->kids[wi], &a, r->kids[i], &b, depth + 1, err, n)))
                return rc;
        }
        return 0;
    default:
        rc = 1;
    }
    return rc ? cs_err_set(err, n, CS_ERR_AVRO, "cannot copy %s", type_name(r->type)) : 0;
}

/* ---- Registry ----------------------------------------------------------------------------- */

static const char *const cs_schema_names[] = {
#define CS_AVRO_NAME_(id, name) name,
    CS_AVRO_SCHEMAS(CS_AVRO_NAME_)
#undef CS_AVRO_NAME_
};

#define CS_FIELD_NAME_(c, n) n,
#define CS_SYM_NAME_(s) #s,
static const char *const pc_fields[] = {CS_AVRO_PROSPECT_CHANGE_FIELDS(CS_FIELD_NAME_)};
static const char *const act_fields[] = {CS_AVRO_ACTIVITY_FIELDS(CS_FIELD_NAME_)};
static const char *const crm_fields[] = {CS_AVRO_CRM_CHANGE_FIELDS(CS_FIELD_NAME_)};
static const char *const ss_fields[] = {CS_AVRO_SYNC_STATE_FIELDS(CS_FIELD_NAME_)};
static const char *const fs_fields[] = {CS_AVRO_FIELD_STATE_FIELDS(CS_FIELD_NAME_)};
static const char *const se_fields[] = {CS_AVRO_SYNC_ERROR_FIELDS(CS_FIELD_NAME_)};
static const char *const ctl_fields[] = {CS_AVRO_CONTROL_FIELDS(CS_FIELD_NAME_)};
static const char *const cause_syms[] = {CS_AVRO_CAUSE_SYMBOLS(CS_SYM_NAME_)};
static const char *const act_syms[] = {CS_AVRO_ACTIVITY_TYPE_SYMBOLS(CS_SYM_NAME_)};
static const char *const obj_syms[] = {CS_AVRO_CRM_OBJECT_SYMBOLS(CS_SYM_NAME_)};
static const char *const side_syms[] = {CS_AVRO_SIDE_SYMBOLS(CS_SYM_NAME_)};
static const char *const dir_syms[] = {CS_AVRO_DIRECTION_SYMBOLS(CS_SYM_NAME_)};
static const char *const cmd_syms[] = {CS_AVRO_COMMAND_SYMBOLS(CS_SYM_NAME_)};

#define NAMES_(a) a, sizeof a / sizeof a[0]
static const struct {
    int schema;
    const char *type; /* named type inside that schema */
    const char *const *names;
    size_t n;
} cs_contract[] = {
    {CS_AVRO_PROSPECT_CHANGE, "crmsync.ProspectChange", NAMES_(pc_fields)},
    {CS_AVRO_PROSPECT_CHANGE, "crmsync.ProspectChangeCause", NAMES_(cause_syms)},
    {CS_AVRO_ACTIVITY, "crmsync.Activity", NAMES_(act_fields)},
    {CS_AVRO_ACTIVITY, "crmsync.ActivityType", NAMES_(act_syms)},
    {CS_AVRO_CRM_CHANGE, "crmsync.CrmChange", NAMES_(crm_fields)},
    {CS_AVRO_CRM_CHANGE, "crmsync.CrmObject", NAMES_(obj_syms)},
    {CS_AVRO_SYNC_STATE, "crmsync.SyncState", NAMES_(ss_fields)},
    {CS_AVRO_SYNC_STATE, "crmsync.FieldState", NAMES_(fs_fields)},
    {CS_AVRO_SYNC_STATE, "crmsync.CrmObject", NAMES_(obj_syms)},
    {CS_AVRO_SYNC_STATE, "crmsync.Side", NAMES_(side_syms)},
    {CS_AVRO_SYNC_ERROR, "crmsync.SyncError", NAMES_(se_fields)},
    {CS_AVRO_SYNC_ERROR, "crmsync.SyncDirection", NAMES_(dir_syms)},
    {CS_AVRO_CONTROL, "crmsync.Control", NAMES_(ctl_fields)},
    {CS_AVRO_CONTROL, "crmsync.ControlCommand", NAMES_(cmd_syms)},
};

static int check_contract(const cs_avro_registry_t *reg, char *err, size_t n)
{
    for (size_t c = 0; c < sizeof cs_contract / sizeof cs_contract[0]; c++) {
        const node_t *nd = find_named(&reg->e[cs_contract[c].schema], cs_contract[c].type);
        if (!nd)
            return cs_err_set(err, n, CS_ERR_CONFIG, "%s: type %s missing",
                              cs_schema_names[cs_contract[c].schema], cs_contract[c].type);
        if (nd->n != cs_contract[c].n)
            return cs_err_set(err, n, CS_ERR_CONFIG,
                              "%s has %zu fields/symbols, cs_avro.h lists %zu: update both",
                              cs_contract[c].type, nd->n, cs_contract[c].n);
        for (size_t i = 0; i < nd->n; i++)
            if (strcmp(nd->names[i], cs_contract[c].names[i]))
                return cs_err_set(err, n, CS_ERR_CONFIG,
                                  "%s: #%zu is %s in the schema, %s in cs_avro.h",
                                  cs_contract[c].type, i, nd->names[i], cs_contract[c].names[i]);
    }
    return 0;
}

/* The shape cs_avro_encode_sync_state() writes: per field, its type and whether it is a
 * ["null", T] union (null first). Checked against the schema at start-up, so an edit of
 * SyncState.avsc cannot make the direct writer produce a body that does not match the
 * fingerprint it is framed with. */
typedef struct {
    avro_type_t type;
    bool nullable;
} shape_t;

static const shape_t ss_shape[CS_SS__COUNT] = {
    [CS_SS_PROSPECT_KEY] = {AVRO_STRING, false},
    [CS_SS_PROSPECT_ID] = {AVRO_INT64, true},
    [CS_SS_MARKETING_WATERMARK] = {AVRO_INT64, false},
    [CS_SS_CRM_WATERMARK] = {AVRO_INT64, false},
    [CS_SS_UPDATED_AT] = {AVRO_INT64, true},
    [CS_SS_LAST_ACTIVITY_AT] = {AVRO_INT64, true},
    [CS_SS_CRM_LAST_MODIFIED] = {AVRO_INT64, true},
    [CS_SS_CRM_OBJECT] = {AVRO_ENUM, true},
    [CS_SS_CRM_ID] = {AVRO_STRING, true},
    [CS_SS_ASSIGNED_USER_ID] = {AVRO_INT64, true},
    [CS_SS_DO_NOT_SYNC] = {AVRO_BOOLEAN, false},
    [CS_SS_FIELDS] = {AVRO_ARRAY, false},
    [CS_SS_LAST_RESULT] = {AVRO_STRING, true},
    [CS_SS_PENDING] = {AVRO_BOOLEAN, false},
};

static const shape_t fs_shape[CS_FS__COUNT] = {
    [CS_FS_NAME] = {AVRO_STRING, false}, [CS_FS_VALUE] = {AVRO_STRING, true},
    [CS_FS_TIME] = {AVRO_INT64, false},  [CS_FS_SIDE] = {AVRO_ENUM, false},
    [CS_FS_HASH] = {AVRO_INT64, false},
};

static bool shape_ok(const node_t *nd, avro_type_t type, bool nullable)
{
    if (nullable)
        return nd->type == AVRO_UNION && nd->n == 2 && nd->kids[0]->type == AVRO_NULL &&
               nd->kids[1]->type == type;
    return nd->type == type;
}

static int check_sync_state_shape(const cs_avro_registry_t *reg, char *err, size_t n)
{
    const node_t *ss = reg->e[CS_AVRO_SYNC_STATE].root, *fs = NULL;
    bool ok = ss->type == AVRO_RECORD && ss->n == CS_SS__COUNT;
    for (size_t i = 0; ok && i < CS_SS__COUNT; i++)
        ok = shape_ok(ss->kids[i], ss_shape[i].type, ss_shape[i].nullable);
    if (ok) {
        fs = ss->kids[CS_SS_FIELDS]->kids[0];
        ok = fs->type == AVRO_RECORD && fs->n == CS_FS__COUNT;
    }
    for (size_t i = 0; ok && i < CS_FS__COUNT; i++)
        ok = shape_ok(fs->kids[i], fs_shape[i].type, fs_shape[i].nullable);
    if (!ok)
        return cs_err_set(err, n, CS_ERR_CONFIG,
                          "crmsync.SyncState no longer has the layout cs_avro_encode_sync_state() "
                          "writes: update both");
    return 0;
}

static entry_t *reg_grow(cs_avro_registry_t *reg)
{
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        entry_t *e = realloc(reg->e, cap * sizeof *e);
        if (!e)
            return NULL;
        reg->e = e;
        reg->cap = cap;
    }
    return &reg->e[reg->n];
}

static int find_current(const cs_avro_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (!reg->e[i].old &&
            (!strcmp(reg->e[i].fullname, name) ||
             (!strchr(name, '.') && !strcmp(short_name(reg->e[i].fullname), name))))
            return (int)i;
    return -1;
}

static int find_fp(const cs_avro_registry_t *reg, uint64_t fp)
{
    for (size_t i = 0; i < reg->n; i++)
        if (reg->e[i].fp == fp)
            return (int)i;
    return -1;
}

static int map_id(cs_avro_registry_t *reg, int32_t id, int entry)
{
    for (size_t i = 0; i < reg->n_ids; i++)
        if (reg->ids[i].id == id) {
            reg->ids[i].entry = entry;
            return 0;
        }
    if (reg->n_ids == reg->cap_ids) {
        size_t cap = reg->cap_ids ? reg->cap_ids * 2 : 8;
        id_map_t *m = realloc(reg->ids, cap * sizeof *m);
        if (!m)
            return CS_ERR_NOMEM;
        reg->ids = m;
        reg->cap_ids = cap;
    }
    reg->ids[reg->n_ids++] = (id_map_t){id, entry};
    return 0;
}

int cs_avro_registry_add_writer(cs_avro_registry_t *reg, const char *json, size_t len, int32_t id,
                                char *errstr, size_t errstr_size)
{
    char err[512] = "";
    entry_t tmp;
    int rc, k;
    if (!reg || !json)
        return cs_err_set(errstr, errstr_size, CS_ERR_INVAL, "no registry or schema");
    if ((rc = entry_init(&tmp, json, len, err, sizeof err)))
        goto out;
    if ((k = find_fp(reg, tmp.fp)) >= 0) { /* already known: just the id */
        rc = id >= 0 ? map_id(reg, id, k) : 0;
        goto out;
    }
    int cur = find_current(reg, tmp.fullname);
    if (cur < 0) {
        rc = cs_err_set(err, sizeof err, CS_ERR_UNKNOWN_SCHEMA, "no current schema named %s",
                        tmp.fullname);
        goto out;
    }
    if ((rc = resolvable(tmp.root, reg->e[cur].root, 0, err, sizeof err)))
        goto out;
    entry_t *slot = reg_grow(reg);
    if (!slot) {
        rc = cs_err_set(err, sizeof err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    tmp.old = true;
    tmp.current = cur;
    *slot = tmp;
    memset(&tmp, 0, sizeof tmp); /* now owned by reg */
    reg->n++;
    rc = id >= 0 ? map_id(reg, id, (int)reg->n - 1) : 0;
out:
    entry_free(&tmp);
    if (rc)
        cs_err_set(errstr, errstr_size, rc, "%s", err);
    return rc;
}

cs_avro_registry_t *cs_avro_registry_new(char *errstr, size_t errstr_size)
{
    char err[512] = "";
    int rc = 0;
    cs_avro_registry_t *reg = calloc(1, sizeof *reg);
    if (!reg) {
        cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* Current versions first, the topic records at their cs_avro_schema_id_t index. */
    for (size_t i = 0; i < cs_avro_embedded_count_g && !rc; i++) {
        const cs_avro_embedded_t *em = &cs_avro_embedded_g[i];
        if (!strncmp(em->path, "old/", 4))
            continue;
        entry_t *e = reg_grow(reg);
        if (!e) {
            rc = cs_err_set(err, sizeof err, CS_ERR_NOMEM, "out of memory");
            break;
        }
        if ((rc = entry_init(e, em->json, em->len, err, sizeof err))) {
            entry_free(e);
            cs_err_set(errstr, errstr_size, rc, "schemas/%s: %s", em->path, err);
            goto fail;
        }
        if (find_current(reg, e->fullname) >= 0) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "schemas/%s: %s defined twice", em->path,
                       e->fullname);
            entry_free(e);
            goto fail;
        }
        e->current = (int)reg->n;
        reg->n++;
    }
    if (rc)
        goto fail_err;
    for (int id = 0; id < CS_AVRO_N_SCHEMAS; id++) {
        int k = find_current(reg, cs_schema_names[id]);
        if (k < 0) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "schema %s missing from schemas/",
                       cs_schema_names[id]);
            goto fail;
        }
        entry_t t = reg->e[id];
        reg->e[id] = reg->e[k];
        reg->e[k] = t;
        reg->e[id].current = id;
        reg->e[k].current = k;
    }
    if ((rc = check_contract(reg, err, sizeof err)))
        goto fail_err;
    if ((rc = check_sync_state_shape(reg, err, sizeof err)))
        goto fail_err;
    /* Every current schema's defaults must be settable (catches a bad default at start). */
    for (size_t i = 0; i < reg->n; i++) {
        avro_value_t v;
        if (cs_avro_value_new(reg, (int)i, &v)) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG, "%s: defaults cannot be set",
                       reg->e[i].fullname);
            goto fail;
        }
        avro_value_decref(&v);
    }
    for (size_t i = 0; i < cs_avro_embedded_count_g; i++) {
        const cs_avro_embedded_t *em = &cs_avro_embedded_g[i];
        if (strncmp(em->path, "old/", 4))
            continue;
        size_t before = reg->n;
        if ((rc = cs_avro_registry_add_writer(reg, em->json, em->len, -1, err, sizeof err))) {
            cs_err_set(errstr, errstr_size, rc, "schemas/%s: %s", em->path, err);
            goto fail;
        }
        if (reg->n == before) {
            cs_err_set(errstr, errstr_size, CS_ERR_CONFIG,
                       "schemas/%s: same canonical form as a known schema", em->path);
            goto fail;
        }
    }
    return reg;
fail_err:
    cs_err_set(errstr, errstr_size, rc, "%s", err);
fail:
    cs_avro_registry_destroy(reg);
    return NULL;
}

void cs_avro_registry_destroy(cs_avro_registry_t *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++)
        entry_free(&reg->e[i]);
    free(reg->e);
    free(reg->ids);
    free(reg);
}

static const entry_t *cur_entry(const cs_avro_registry_t *reg, int schema)
{
    if (!reg || schema < 0 || (size_t)schema >= reg->n || reg->e[schema].old)
        return NULL;
    return &reg->e[schema];
}

avro_schema_t cs_avro_schema(const cs_avro_registry_t *reg, const char *name)
{
    int k = reg && name ? find_current(reg, name) : -1;
    return k < 0 ? NULL : reg->e[k].schema;
}

int cs_avro_schema_lookup(const cs_avro_registry_t *reg, const char *name)
{
    return reg && name ? find_current(reg, name) : -1;
}

const char *cs_avro_schema_name(int schema)
{
    return schema >= 0 && schema < CS_AVRO_N_SCHEMAS ? cs_schema_names[schema] : "?";
}

avro_schema_t cs_avro_schema_by_id(const cs_avro_registry_t *reg, int schema)
{
    const entry_t *e = cur_entry(reg, schema);
    return e ? e->schema : NULL;
}

uint64_t cs_avro_fingerprint(const cs_avro_registry_t *reg, int schema)
{
    const entry_t *e = cur_entry(reg, schema);
    return e ? e->fp : 0;
}

const char *cs_avro_canonical_form(const cs_avro_registry_t *reg, int schema)
{
    const entry_t *e = cur_entry(reg, schema);
    return e ? e->pcf : NULL;
}

const char *cs_avro_schema_json(const cs_avro_registry_t *reg, int schema)
{
    const entry_t *e = cur_entry(reg, schema);
    return e ? e->json : NULL;
}

int cs_avro_fingerprint_json(const char *json, size_t len, uint64_t *fp, char **pcf, char *errstr,
                             size_t errstr_size)
{
    entry_t e;
    json_error_t jerr;
    sbuf_t b = {0};
    int rc = 0;
    memset(&e, 0, sizeof e);
    if (!json || !fp)
        return cs_err_set(errstr, errstr_size, CS_ERR_INVAL, "no schema");
    if (!(e.doc = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr))) {
        rc = cs_err_set(errstr, errstr_size, CS_ERR_PARSE, "line %d: %s", jerr.line, jerr.text);
        goto out;
    }
    cctx_t c = {&e, errstr, errstr_size, 0};
    if (!(e.root = compile(&c, e.doc, ""))) {
        rc = CS_ERR_PARSE;
        goto out;
    }
    pcf_emit(&b, e.root);
    if (b.oom) {
        rc = cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    *fp = rabin64(b.p, b.len);
    if (pcf) {
        *pcf = b.p;
        b.p = NULL;
    }
out:
    free(b.p);
    entry_free(&e);
    return rc;
}

int cs_avro_lookup_fingerprint(const cs_avro_registry_t *reg, uint64_t fp, int *schema,
                               bool *is_old)
{
    int k = reg ? find_fp(reg, fp) : -1;
    if (k < 0)
        return CS_ERR_UNKNOWN_SCHEMA;
    if (schema)
        *schema = reg->e[k].current;
    if (is_old)
        *is_old = reg->e[k].old;
    return 0;
}

int cs_avro_registry_set_id(cs_avro_registry_t *reg, int schema, int32_t id)
{
    const entry_t *e = cur_entry(reg, schema);
    if (!e || id < 0)
        return CS_ERR_INVAL;
    reg->e[schema].id = id;
    return map_id(reg, id, schema);
}

/* ---- Values ------------------------------------------------------------------------------- */

int cs_avro_value_new(const cs_avro_registry_t *reg, int schema, avro_value_t *out)
{
    const entry_t *e = cur_entry(reg, schema);
    if (!e || !out)
        return CS_ERR_INVAL;
    if (avro_generic_value_new(e->iface, out))
        return CS_ERR_NOMEM;
    int rc = node_zero(e->root, out, 0);
    if (rc) {
        avro_value_decref(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* The current entry whose schema the value has (pointer first, then by name + equality). */
static int entry_of_value(const cs_avro_registry_t *reg, const avro_value_t *v)
{
    avro_schema_t s = avro_value_get_schema(v);
    if (!s)
        return -1;
    for (size_t i = 0; i < reg->n; i++)
        if (!reg->e[i].old && reg->e[i].schema == s)
            return (int)i;
    if (!is_avro_record(s))
        return -1;
    const char *ns = avro_schema_namespace(s), *name = avro_schema_name(s);
    char full[512];
    snprintf(full, sizeof full, "%s%s%s", ns && ns[0] ? ns : "", ns && ns[0] ? "." : "", name);
    int k = find_current(reg, full);
    return k >= 0 && avro_schema_equal(reg->e[k].schema, s) ? k : -1;
}

int cs_avro_value_clear(const cs_avro_registry_t *reg, avro_value_t *value)
{
    int k = reg && value ? entry_of_value(reg, value) : -1;
    return k < 0 ? CS_ERR_INVAL : node_zero(reg->e[k].root, value, 0);
}

/* ---- Encoder ------------------------------------------------------------------------------ */

struct cs_avro_encoder_s {
    const cs_avro_registry_t *reg;
    cs_avro_framing_t framing;
    avro_writer_t w;
    unsigned char *buf;
    size_t cap;
    avro_value_t *vals;
    size_t nvals;
    char err[256];
};

cs_avro_encoder_t *cs_avro_encoder_new(const cs_avro_registry_t *reg, cs_avro_framing_t framing)
{
    cs_avro_encoder_t *enc = calloc(1, sizeof *enc);
    if (!enc || !reg)
        goto fail;
    enc->reg = reg;
    enc->framing = framing;
    enc->cap = 4096;
    enc->nvals = reg->n;
    if (!(enc->buf = calloc(1, enc->cap)) || !(enc->vals = calloc(enc->nvals, sizeof *enc->vals)) ||
        !(enc->w = avro_writer_memory((const char *)enc->buf, (int64_t)enc->cap)))
        goto fail;
    return enc;
fail:
    cs_avro_encoder_destroy(enc);
    return NULL;
}

void cs_avro_encoder_destroy(cs_avro_encoder_t *enc)
{
    if (!enc)
        return;
    for (size_t i = 0; enc->vals && i < enc->nvals; i++)
        if (enc->vals[i].iface)
            avro_value_decref(&enc->vals[i]);
    if (enc->w)
        avro_writer_free(enc->w);
    free(enc->vals);
    free(enc->buf);
    free(enc);
}

avro_value_t *cs_avro_encoder_value(cs_avro_encoder_t *enc, int schema)
{
    if (!enc || !cur_entry(enc->reg, schema) || (size_t)schema >= enc->nvals)
        return NULL;
    avro_value_t *v = &enc->vals[schema];
    if (!v->iface)
        return cs_avro_value_new(enc->reg, schema, v) ? NULL : v;
    return node_zero(enc->reg->e[schema].root, v, 0) ? NULL : v;
}

static size_t put_header(const cs_avro_registry_t *reg, cs_avro_framing_t framing, int k,
                         unsigned char *p)
{
    if (framing == CS_AVRO_CONFLUENT) {
        uint32_t id = (uint32_t)reg->e[k].id;
        p[0] = 0;
        p[1] = (unsigned char)(id >> 24);
        p[2] = (unsigned char)(id >> 16);
        p[3] = (unsigned char)(id >> 8);
        p[4] = (unsigned char)id;
        return CF_HDR;
    }
    uint64_t fp = reg->e[k].fp;
    p[0] = 0xc3;
    p[1] = 0x01;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)(fp >> (8 * i));
    return SO_HDR;
}

/* Entry k can be framed as asked (Confluent framing needs its schema-registry id). */
static int framing_check(const cs_avro_registry_t *reg, cs_avro_framing_t framing, int k, char *err,
                         size_t n)
{
    if (framing == CS_AVRO_CONFLUENT && reg->e[k].id < 0)
        return cs_err_set(err, n, CS_ERR_STATE, "%s has no schema-registry id", reg->e[k].fullname);
    return 0;
}

static int encode_check(const cs_avro_registry_t *reg, cs_avro_framing_t framing,
                        avro_value_t *value, int *k, char *err, size_t n)
{
    if (!value || !value->iface || (*k = entry_of_value(reg, value)) < 0)
        return cs_err_set(err, n, CS_ERR_INVAL, "value is not a record of a registry schema");
    return framing_check(reg, framing, *k, err, n);
}

int cs_avro_encode(cs_avro_encoder_t *enc, avro_value_t *value, const void **out, size_t *out_len)
{
    int k, rc;
    if (!enc || !out || !out_len)
        return CS_ERR_INVAL;
    enc->err[0] = '\0';
    if ((rc = encode_check(enc->reg, enc->framing, value, &k, enc->err, sizeof enc->err)))
        return rc;
    for (;;) {
        size_t hdr = put_header(enc->reg, enc->framing, k, enc->buf);
        avro_writer_memory_set_dest(enc->w, (const char *)enc->buf + hdr,
                                    (int64_t)(enc->cap - hdr));
        rc = avro_value_write(enc->w, value);
        if (!rc) {
            *out = enc->buf;
            *out_len = hdr + (size_t)avro_writer_tell(enc->w);
            return 0;
        }
        if (rc != ENOSPC)
            return avro_fail(enc->err, sizeof enc->err, rc, enc->reg->e[k].fullname);
        if (enc->cap >= CS_AVRO_MAX_FRAME)
            return cs_err_set(enc->err, sizeof enc->err, CS_ERR_TOO_LARGE,
                              "record larger than %u bytes", CS_AVRO_MAX_FRAME);
        unsigned char *nb = realloc(enc->buf, enc->cap * 2);
        if (!nb)
            return cs_err_set(enc->err, sizeof enc->err, CS_ERR_NOMEM, "out of memory");
        enc->buf = nb;
        enc->cap *= 2;
    }
}

int cs_avro_encode_to(const cs_avro_registry_t *reg, cs_avro_framing_t framing, avro_value_t *value,
                      void *buf, size_t cap, size_t *out_len, char *errstr, size_t errstr_size)
{
    int k, rc;
    unsigned char hdrbuf[SO_HDR];
    if (!reg || !out_len || (!buf && cap))
        return cs_err_set(errstr, errstr_size, CS_ERR_INVAL, "bad arguments");
    if ((rc = encode_check(reg, framing, value, &k, errstr, errstr_size)))
        return rc;
    size_t hdr = put_header(reg, framing, k, hdrbuf);
    if (cap >= hdr) {
        avro_writer_t w = avro_writer_memory((const char *)buf + hdr, (int64_t)(cap - hdr));
        if (!w)
            return cs_err_set(errstr, errstr_size, CS_ERR_NOMEM, "out of memory");
        rc = avro_value_write(w, value);
        size_t body = (size_t)avro_writer_tell(w);
        avro_writer_free(w);
        if (!rc) {
            memcpy(buf, hdrbuf, hdr);
            *out_len = hdr + body;
            return 0;
        }
        if (rc != ENOSPC)
            return avro_fail(errstr, errstr_size, rc, reg->e[k].fullname);
    }
    size_t need = 0;
    if ((rc = avro_value_sizeof(value, &need)))
        return avro_fail(errstr, errstr_size, rc, reg->e[k].fullname);
    *out_len = hdr + need;
    return cs_err_set(errstr, errstr_size, CS_ERR_TOO_LARGE, "needs %zu bytes, buffer has %zu",
                      hdr + need, cap);
}

const char *cs_avro_encoder_error(const cs_avro_encoder_t *enc)
{
    return enc ? enc->err : "";
}

/* ---- Direct SyncState encoding ------------------------------------------------------------ */

/* Avro long: zig-zag, then base-128 varint, low group first. At most 10 bytes. */
static inline unsigned char *put_long(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v, z = (u << 1) ^ (0 - (u >> 63));
    while (z > 0x7f) {
        *p++ = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    *p++ = (unsigned char)z;
    return p;
}

static inline unsigned char *put_str(unsigned char *p, const char *s, size_t len)
{
    p = put_long(p, (int64_t)len);
    if (len)
        memcpy(p, s, len);
    return p + len;
}

/* ["null", T] union: the branch index, then the value when there is one. */
static inline unsigned char *put_opt_long(unsigned char *p, bool has, int64_t v)
{
    *p++ = has ? 2 : 0; /* zig-zag of 1 / 0 */
    return has ? put_long(p, v) : p;
}

static inline unsigned char *put_opt_str(unsigned char *p, const char *s, size_t len)
{
    *p++ = s ? 2 : 0;
    return s ? put_str(p, s, len) : p;
}

#define LONG_MAX_BYTES 10

int cs_avro_encode_sync_state(cs_avro_encoder_t *enc, const cs_sync_state_rec_t *rec,
                              const void **out, size_t *out_len)
{
    int k = CS_AVRO_SYNC_STATE;
    if (!enc || !rec || !out || !out_len)
        return CS_ERR_INVAL;
    enc->err[0] = '\0';
    if (!rec->prospect_key || (rec->n_fields && !rec->fields))
        return cs_err_set(enc->err, sizeof enc->err, CS_ERR_INVAL, "SyncState without %s",
                          rec->prospect_key ? "its fields" : "a prospect_key");
    if (rec->crm_object < -1 || rec->crm_object > CS_OBJECT_CONTACT)
        return cs_err_set(enc->err, sizeof enc->err, CS_ERR_INVAL,
                          "SyncState.crm_object: no symbol %d", rec->crm_object);
    int rc = framing_check(enc->reg, enc->framing, k, enc->err, sizeof enc->err);
    if (rc)
        return rc;

    /* An upper bound of the frame, so that the writes below need no check. Every length is
     * kept under the frame limit first, so the sum cannot wrap. */
    size_t lim = CS_AVRO_MAX_FRAME, need = SO_HDR + 16 * LONG_MAX_BYTES;
    if (rec->prospect_key_len > lim || (rec->crm_id && rec->crm_id_len > lim) ||
        (rec->last_result && rec->last_result_len > lim) || rec->n_fields > lim)
        goto too_large;
    need += rec->prospect_key_len + (rec->crm_id ? rec->crm_id_len : 0) +
            (rec->last_result ? rec->last_result_len : 0);
    for (size_t i = 0; i < rec->n_fields; i++) {
        const cs_field_state_rec_t *f = &rec->fields[i];
        if (!f->name)
            return cs_err_set(enc->err, sizeof enc->err, CS_ERR_INVAL,
                              "SyncState.fields[%zu] without a name", i);
        if (f->side < CS_SIDE_MARKETING || f->side > CS_SIDE_CRM)
            return cs_err_set(enc->err, sizeof enc->err, CS_ERR_INVAL,
                              "SyncState.fields[%zu].side: no symbol %d", i, f->side);
        if (f->name_len > lim || (f->value && f->value_len > lim))
            goto too_large;
        need += 5 * LONG_MAX_BYTES + f->name_len + (f->value ? f->value_len : 0);
        if (need > lim)
            goto too_large;
    }
    if (need > lim)
        goto too_large;
    if (need > enc->cap) {
        size_t cap = enc->cap;
        while (cap < need)
            cap *= 2;
        unsigned char *nb = realloc(enc->buf, cap);
        if (!nb)
            return cs_err_set(enc->err, sizeof enc->err, CS_ERR_NOMEM, "out of memory");
        enc->buf = nb;
        enc->cap = cap;
    }

    unsigned char *p = enc->buf + put_header(enc->reg, enc->framing, k, enc->buf);
    p = put_str(p, rec->prospect_key, rec->prospect_key_len);
    p = put_opt_long(p, rec->has_prospect_id, rec->prospect_id);
    p = put_long(p, rec->marketing_watermark);
    p = put_long(p, rec->crm_watermark);
    p = put_opt_long(p, rec->has_updated_at, rec->updated_at);
    p = put_opt_long(p, rec->has_last_activity_at, rec->last_activity_at);
    p = put_opt_long(p, rec->has_crm_last_modified, rec->crm_last_modified);
    p = put_opt_long(p, rec->crm_object >= 0, rec->crm_object);
    p = put_opt_str(p, rec->crm_id, rec->crm_id_len);
    p = put_opt_long(p, rec->has_assigned_user_id, rec->assigned_user_id);
    *p++ = rec->do_not_sync ? 1 : 0;
    /* One block of n items then the end marker, as avro-c writes arrays; just 0 when empty. */
    if (rec->n_fields) {
        p = put_long(p, (int64_t)rec->n_fields);
        for (size_t i = 0; i < rec->n_fields; i++) {
            const cs_field_state_rec_t *f = &rec->fields[i];
            p = put_str(p, f->name, f->name_len);
            p = put_opt_str(p, f->value, f->value_len);
            p = put_long(p, f->time);
            p = put_long(p, f->side);
            p = put_long(p, f->hash);
        }
    }
    *p++ = 0;
    p = put_opt_str(p, rec->last_result, rec->last_result_len);
    *p++ = rec->pending ? 1 : 0;
    *out = enc->buf;
    *out_len = (size_t)(p - enc->buf);
    return 0;
too_large:
    return cs_err_set(enc->err, sizeof enc->err, CS_ERR_TOO_LARGE, "record larger than %u bytes",
                      CS_AVRO_MAX_FRAME);
}

/* ---- Decoder ------------------------------------------------------------------------------ */

struct cs_avro_decoder_s {
    const cs_avro_registry_t *reg;
    avro_value_t *vals; /* per entry: current entries hold results, old ones writer scratch */
    size_t nvals;
    scratch_t s;
    int last;              /* entry of the last single-object frame: checked first */
    cs_avro_slot_t *slots; /* cs_avro_decode_flat's record */
    size_t nslots;
    unsigned char *ops; /* per entry known at _new (nops), ops_stride bytes: fl_op_t per field */
    size_t nops, ops_stride;
    size_t nitems; /* elements of the last array/map rd_node checked without a value */
    char msg[256];
    char path[256];
    char err[600];
};

typedef struct {
    const unsigned char *p, *start, *end;
} rd_t;

static void fl_ops(const node_t *root, unsigned char *ops, size_t max);

cs_avro_decoder_t *cs_avro_decoder_new(const cs_avro_registry_t *reg)
{
    cs_avro_decoder_t *dec = calloc(1, sizeof *dec);
    if (!dec || !reg)
        goto fail;
    dec->reg = reg;
    dec->nvals = reg->n;
    for (size_t i = 0; i < reg->n; i++)
        if (reg->e[i].root->type == AVRO_RECORD && reg->e[i].root->n > dec->nslots)
            dec->nslots = reg->e[i].root->n;
    if (!(dec->vals = calloc(dec->nvals, sizeof *dec->vals)) || !scratch_get(&dec->s, 256) ||
        !(dec->slots = calloc(dec->nslots + 1, sizeof *dec->slots)) ||
        !(dec->ops = calloc(reg->n, dec->nslots + 1)))
        goto fail;
    dec->nops = reg->n;
    dec->ops_stride = dec->nslots + 1;
    for (size_t i = 0; i < reg->n; i++)
        fl_ops(reg->e[i].root, dec->ops + i * dec->ops_stride, dec->nslots);
    return dec;
fail:
    cs_avro_decoder_destroy(dec);
    return NULL;
}

void cs_avro_decoder_destroy(cs_avro_decoder_t *dec)
{
    if (!dec)
        return;
    for (size_t i = 0; dec->vals && i < dec->nvals; i++)
        if (dec->vals[i].iface)
            avro_value_decref(&dec->vals[i]);
    free(dec->vals);
    free(dec->slots);
    free(dec->ops);
    free(dec->s.p);
    free(dec);
}

const char *cs_avro_decoder_error(const cs_avro_decoder_t *dec)
{
    return dec ? dec->err : "";
}

static int derr(cs_avro_decoder_t *d, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int derr(cs_avro_decoder_t *d, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    d->path[0] = '\0';
    return rc;
}

static void dpath(cs_avro_decoder_t *d, const char *name)
{
    char tmp[sizeof d->path + 64];
    snprintf(tmp, sizeof tmp, "%s%s%s", name, d->path[0] && d->path[0] != '[' ? "." : "", d->path);
    size_t n = strlen(tmp);
    if (n >= sizeof d->path)
        n = sizeof d->path - 1;
    memcpy(d->path, tmp, n);
    d->path[n] = '\0';
}

static int davro(cs_avro_decoder_t *d, int rc)
{
    char copy[200];
    snprintf(copy, sizeof copy, "%s", avro_strerror());
    return derr(d, rc == ENOMEM ? CS_ERR_NOMEM : CS_ERR_AVRO, "avro-c: %s", copy);
}

static inline int rd_long(cs_avro_decoder_t *d, rd_t *r, int64_t *out)
{
    const unsigned char *p = r->p;
    if (p < r->end && *p < 0x80) { /* one-byte fast path */
        r->p = p + 1;
        *out = (int64_t)(*p >> 1) ^ -(int64_t)(*p & 1);
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; p < r->end; shift += 7) {
        unsigned char b = *p++;
        if (shift == 63 && b > 1)
            return derr(d, CS_ERR_AVRO, "varint overflows 64 bits at byte %td", p - 1 - r->start);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            r->p = p;
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return derr(d, CS_ERR_TRUNCATED, "truncated varint at byte %td", r->p - r->start);
}

/* A length (string, bytes, map key) that must fit in what is left. */
static inline int rd_len(cs_avro_decoder_t *d, rd_t *r, size_t *len)
{
    int64_t n = 0;
    int rc = rd_long(d, r, &n);
    if (rc)
        return rc;
    if (n < 0)
        return derr(d, CS_ERR_AVRO, "negative length %lld at byte %td", (long long)n,
                    r->p - r->start);
    if ((uint64_t)n > (uint64_t)(r->end - r->p))
        return derr(d, CS_ERR_TRUNCATED, "length %lld at byte %td exceeds the %td bytes left",
                    (long long)n, r->p - r->start, r->end - r->p);
    *len = (size_t)n;
    return 0;
}

/* A boolean byte (0 or 1). */
static inline int rd_bool(cs_avro_decoder_t *d, rd_t *r, int64_t *out)
{
    if (r->p >= r->end)
        return derr(d, CS_ERR_TRUNCATED, "truncated boolean at byte %td", r->p - r->start);
    if (*r->p > 1)
        return derr(d, CS_ERR_AVRO, "boolean byte 0x%02x at byte %td", *r->p, r->p - r->start);
    *out = *r->p++;
    return 0;
}

/* An int: a varint within the int32 range. */
static inline int rd_int(cs_avro_decoder_t *d, rd_t *r, int64_t *out)
{
    int rc = rd_long(d, r, out);
    if (rc)
        return rc;
    if (*out < INT32_MIN || *out > INT32_MAX)
        return derr(d, CS_ERR_AVRO, "int out of range before byte %td", r->p - r->start);
    return 0;
}

static inline int rd_str(cs_avro_decoder_t *d, rd_t *r, const char **s, size_t *len)
{
    int rc = rd_len(d, r, len);
    if (rc)
        return rc;
    char *buf = scratch_get(&d->s, *len + 1);
    if (!buf)
        return derr(d, CS_ERR_NOMEM, "out of memory");
    memcpy(buf, r->p, *len);
    buf[*len] = '\0';
    r->p += *len;
    *s = buf;
    return 0;
}

/* Block count of an array or map: returns the count, 0 at the end. */
static int rd_block(cs_avro_decoder_t *d, rd_t *r, const node_t *item, int64_t *count)
{
    int64_t c = 0, bytes = 0;
    int rc = rd_long(d, r, &c);
    if (rc)
        return rc;
    if (c < 0) {
        if (c == INT64_MIN)
            return derr(d, CS_ERR_AVRO, "bad block count at byte %td", r->p - r->start);
        c = -c;
        if ((rc = rd_long(d, r, &bytes)))
            return rc;
        if (bytes < 0)
            return derr(d, CS_ERR_AVRO, "negative block size at byte %td", r->p - r->start);
    }
    /* Each element takes at least min_size bytes (a map key at least 1): a count that cannot
     * fit in what is left is a lie, whatever it would cost to believe it. */
    size_t min = item ? item->min_size : 1;
    size_t left = (size_t)(r->end - r->p);
    if (min ? (uint64_t)c > left / min : c > (1 << 20))
        return derr(d, min ? CS_ERR_TRUNCATED : CS_ERR_AVRO,
                    "block of %lld elements at byte %td cannot fit in %zu bytes", (long long)c,
                    r->p - r->start, left);
    *count = c;
    return 0;
}

/* Reads one value of node nd into v; with v NULL, only checks it (cs_avro_decode_flat), the
 * same checks with the same errors. */
static int rd_node(cs_avro_decoder_t *d, rd_t *r, const node_t *nd, avro_value_t *v, int depth)
{
    avro_value_t child;
    int64_t l = 0;
    size_t len = 0;
    const char *s = NULL;
    int rc;
    if (depth > CS_AVRO_MAX_DEPTH)
        return derr(d, CS_ERR_AVRO, "data nested deeper than %d", CS_AVRO_MAX_DEPTH);
    switch (nd->type) {
    case AVRO_NULL:
        return v && avro_value_set_null(v) ? davro(d, EINVAL) : 0;
    case AVRO_BOOLEAN:
        if ((rc = rd_bool(d, r, &l)))
            return rc;
        rc = v ? avro_value_set_boolean(v, (int)l) : 0;
        return rc ? davro(d, rc) : 0;
    case AVRO_INT32:
        if ((rc = rd_int(d, r, &l)))
            return rc;
        rc = v ? avro_value_set_int(v, (int32_t)l) : 0;
        return rc ? davro(d, rc) : 0;
    case AVRO_INT64:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        rc = v ? avro_value_set_long(v, l) : 0;
        return rc ? davro(d, rc) : 0;
    case AVRO_FLOAT:
    case AVRO_DOUBLE: {
        size_t n = nd->type == AVRO_FLOAT ? 4 : 8;
        uint64_t bits = 0;
        if ((size_t)(r->end - r->p) < n)
            return derr(d, CS_ERR_TRUNCATED, "truncated %s at byte %td", type_name(nd->type),
                        r->p - r->start);
        for (size_t i = 0; i < n; i++)
            bits |= (uint64_t)r->p[i] << (8 * i); /* little-endian on the wire */
        r->p += n;
        if (!v)
            return 0;
        if (n == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            rc = avro_value_set_float(v, f);
        } else {
            double db;
            memcpy(&db, &bits, 8);
            rc = avro_value_set_double(v, db);
        }
        return rc ? davro(d, rc) : 0;
    }
    case AVRO_STRING:
        if (!v) {
            if ((rc = rd_len(d, r, &len)))
                return rc;
            r->p += len;
            return 0;
        }
        if ((rc = rd_str(d, r, &s, &len)))
            return rc;
        rc = avro_value_set_string_len(v, s, len + 1);
        return rc ? davro(d, rc) : 0;
    case AVRO_BYTES:
        if ((rc = rd_len(d, r, &len)))
            return rc;
        rc = v ? avro_value_set_bytes(v, (void *)r->p, len) : 0;
        r->p += len;
        return rc ? davro(d, rc) : 0;
    case AVRO_FIXED:
        if ((uint64_t)(r->end - r->p) < (uint64_t)nd->size)
            return derr(d, CS_ERR_TRUNCATED, "truncated fixed at byte %td", r->p - r->start);
        rc = v ? avro_value_set_fixed(v, (void *)r->p, (size_t)nd->size) : 0;
        r->p += nd->size;
        return rc ? davro(d, rc) : 0;
    case AVRO_ENUM:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        if (l < 0 || (uint64_t)l >= nd->n)
            return derr(d, CS_ERR_AVRO, "enum index %lld out of range (%zu symbols)", (long long)l,
                        nd->n);
        rc = v ? avro_value_set_enum(v, (int)l) : 0;
        return rc ? davro(d, rc) : 0;
    case AVRO_UNION:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        if (l < 0 || (uint64_t)l >= nd->n)
            return derr(d, CS_ERR_AVRO, "union index %lld out of range (%zu branches)",
                        (long long)l, nd->n);
        if (v && (rc = avro_value_set_branch(v, (int)l, &child)))
            return davro(d, rc);
        return rd_node(d, r, nd->kids[l], v ? &child : NULL, depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < nd->n; i++) {
            if (v && (rc = avro_value_get_by_index(v, i, &child, NULL)))
                return davro(d, rc);
            if ((rc = rd_node(d, r, nd->kids[i], v ? &child : NULL, depth + 1))) {
                dpath(d, nd->names[i]);
                return rc;
            }
        }
        return 0;
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool is_map = nd->type == AVRO_MAP;
        size_t k = 0, cur;
        int64_t count = 0;
        if (v && (rc = avro_value_get_size(v, &cur)))
            return davro(d, rc);
        if (v && cur && (rc = avro_value_reset(v))) /* resetting an empty map would allocate */
            return davro(d, rc);
        for (;;) {
            if ((rc = rd_block(d, r, is_map ? NULL : nd->kids[0], &count)))
                return rc;
            if (!count) {
                d->nitems = k;
                return 0;
            }
            for (int64_t i = 0; i < count; i++, k++) {
                if (!v) {
                    rc = 0;
                    if (is_map && !(rc = rd_len(d, r, &len)))
                        r->p += len;
                    if (rc)
                        return rc;
                } else if (is_map) {
                    if ((rc = rd_str(d, r, &s, &len)))
                        return rc;
                    rc = avro_value_add(v, s, &child, NULL, NULL);
                } else {
                    rc = avro_value_append(v, &child, NULL);
                }
                if (rc)
                    return davro(d, rc);
                if ((rc = rd_node(d, r, nd->kids[0], v ? &child : NULL, depth + 1))) {
                    char idx[32];
                    snprintf(idx, sizeof idx, "[%zu]", k);
                    dpath(d, idx);
                    return rc;
                }
            }
        }
    }
    default:
        return derr(d, CS_ERR_AVRO, "unsupported type");
    }
}

static int dec_value(cs_avro_decoder_t *d, int k, avro_value_t **out)
{
    if ((size_t)k >= d->nvals) { /* a writer schema added after this decoder was made */
        avro_value_t *vals = realloc(d->vals, d->reg->n * sizeof *vals);
        if (!vals)
            return derr(d, CS_ERR_NOMEM, "out of memory");
        memset(vals + d->nvals, 0, (d->reg->n - d->nvals) * sizeof *vals);
        d->vals = vals;
        d->nvals = d->reg->n;
    }
    avro_value_t *v = &d->vals[k];
    if (!v->iface && avro_generic_value_new(d->reg->e[k].iface, v)) {
        memset(v, 0, sizeof *v);
        return derr(d, CS_ERR_NOMEM, "out of memory");
    }
    *out = v;
    return 0;
}

/* Decodes a body written with entry k into the current version's value. */
static int dec_body(cs_avro_decoder_t *d, int k, const unsigned char *p, size_t len,
                    avro_value_t **out)
{
    const entry_t *e = &d->reg->e[k];
    avro_value_t *v, *target;
    rd_t r = {p, p, p + len};
    int rc;
    if ((rc = dec_value(d, k, &v)))
        return rc;
    if ((rc = rd_node(d, &r, e->root, v, 0)))
        return rc;
    if (r.p != r.end)
        return derr(d, CS_ERR_AVRO, "%td trailing bytes after the record", r.end - r.p);
    if (!e->old) {
        *out = v;
        return 0;
    }
    if ((rc = dec_value(d, e->current, &target)))
        return rc;
    if ((rc = resolve_copy(e->root, v, d->reg->e[e->current].root, target, 0, d->msg,
                           sizeof d->msg))) {
        d->path[0] = '\0';
        return rc;
    }
    *out = target;
    return 0;
}

static int dec_finish(cs_avro_decoder_t *d, int k, int rc, size_t hdr)
{
    if (rc)
        snprintf(d->err, sizeof d->err, "%s%s%s: %s%s",
                 k >= 0 ? short_name(d->reg->e[k].fullname) : "frame",
                 d->path[0] && d->path[0] != '[' ? "." : "", d->path, d->msg,
                 hdr ? " (offsets count from the body)" : "");
    return rc;
}

/* Reads the frame header: out's metadata, *k the writer's entry and *hdr the header size.
 * Returns 0 or the error, already finished into dec->err. */
static int dec_frame(cs_avro_decoder_t *dec, const unsigned char *p, size_t len,
                     cs_avro_decoded_t *out, int *entry, size_t *hdr)
{
    int k = -1;
    dec->err[0] = dec->path[0] = '\0';
    if (len == 0)
        return dec_finish(dec, -1, derr(dec, CS_ERR_TRUNCATED, "empty record"), 0);
    if (p[0] == 0xc3) {
        out->framing = CS_AVRO_SINGLE_OBJECT;
        out->confluent_id = -1;
        if (len >= 2 && p[1] != 0x01)
            return dec_finish(dec, -1,
                              derr(dec, CS_ERR_AVRO, "bad single-object marker c3 %02x", p[1]), 0);
        if (len < SO_HDR)
            return dec_finish(dec, -1,
                              derr(dec, CS_ERR_TRUNCATED, "%zu-byte single-object header", len), 0);
        uint64_t fp = 0;
        for (int i = 0; i < 8; i++)
            fp |= (uint64_t)p[2 + i] << (8 * i);
        out->fingerprint = fp;
        const cs_avro_registry_t *reg = dec->reg;
        if (dec->last >= 0 && (size_t)dec->last < reg->n && reg->e[dec->last].fp == fp)
            k = dec->last;
        else if ((k = find_fp(reg, fp)) >= 0)
            dec->last = k;
        if (k < 0)
            return dec_finish(dec, -1,
                              derr(dec, CS_ERR_UNKNOWN_SCHEMA, "unknown schema fingerprint %016llx",
                                   (unsigned long long)fp),
                              0);
        *hdr = SO_HDR;
    } else if (p[0] == 0x00) {
        out->framing = CS_AVRO_CONFLUENT;
        if (len < CF_HDR)
            return dec_finish(dec, -1,
                              derr(dec, CS_ERR_TRUNCATED, "%zu-byte Confluent header", len), 0);
        int32_t id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                               ((uint32_t)p[3] << 8) | p[4]);
        out->confluent_id = id;
        for (size_t i = 0; i < dec->reg->n_ids && k < 0; i++)
            if (dec->reg->ids[i].id == id)
                k = dec->reg->ids[i].entry;
        if (k < 0)
            return dec_finish(
                dec, -1, derr(dec, CS_ERR_UNKNOWN_SCHEMA, "unknown schema-registry id %d", id), 0);
        out->fingerprint = dec->reg->e[k].fp;
        *hdr = CF_HDR;
    } else {
        return dec_finish(
            dec, -1,
            derr(dec, CS_ERR_AVRO, "not an Avro frame: first byte 0x%02x (want c3 01 or 00)", p[0]),
            0);
    }
    out->schema = dec->reg->e[k].current;
    out->resolved = dec->reg->e[k].old;
    *entry = k;
    return 0;
}

int cs_avro_decode(cs_avro_decoder_t *dec, const void *buf, size_t len, cs_avro_decoded_t *out)
{
    const unsigned char *p = buf;
    int k = -1, rc;
    size_t hdr = 0;
    if (!dec || !out || (!buf && len))
        return CS_ERR_INVAL;
    out->value = NULL;
    if ((rc = dec_frame(dec, p, len, out, &k, &hdr)))
        return rc;
    rc = dec_body(dec, k, p + hdr, len - hdr, &out->value);
    return dec_finish(dec, k, rc, hdr);
}

int cs_avro_decode_body(cs_avro_decoder_t *dec, int schema, const void *buf, size_t len,
                        avro_value_t **value)
{
    if (!dec || !value || (!buf && len) || !cur_entry(dec->reg, schema))
        return CS_ERR_INVAL;
    dec->err[0] = dec->path[0] = '\0';
    int rc = dec_body(dec, schema, buf, len, value);
    return dec_finish(dec, schema, rc, 0);
}

/* ---- Field accessors ---------------------------------------------------------------------- */

/* The field's value seen through a union: 0 value, 1 null, -1 no such field. */
static int field_get(const avro_value_t *rec, int i, avro_value_t *f)
{
    if (!rec || !rec->iface || i < 0 || avro_value_get_by_index(rec, (size_t)i, f, NULL) ||
        !f->iface)
        return -1;
    if (avro_value_get_type(f) == AVRO_UNION) {
        int d = -1;
        avro_value_t b;
        if (avro_value_get_discriminant(f, &d) || d < 0 || avro_value_get_current_branch(f, &b))
            return 1;
        *f = b;
    }
    return avro_value_get_type(f) == AVRO_NULL ? 1 : 0;
}

static const char *str_of(const avro_value_t *v, size_t *len)
{
    const char *s = NULL;
    size_t size = 0;
    avro_value_t b;
    if (avro_value_get_type(v) == AVRO_UNION) {
        int d = -1;
        if (avro_value_get_discriminant(v, &d) || d < 0 || avro_value_get_current_branch(v, &b))
            return NULL;
        v = &b;
    }
    if (avro_value_get_type(v) != AVRO_STRING || avro_value_get_string(v, &s, &size))
        return NULL;
    if (len)
        *len = size ? size - 1 : 0;
    return s ? s : "";
}

bool cs_avro_is_null(const avro_value_t *rec, int i)
{
    avro_value_t f;
    return field_get(rec, i, &f) != 0;
}

const char *cs_avro_get_str(const avro_value_t *rec, int i, size_t *len)
{
    avro_value_t f;
    return field_get(rec, i, &f) ? NULL : str_of(&f, len);
}

const void *cs_avro_get_bytes(const avro_value_t *rec, int i, size_t *len)
{
    avro_value_t f;
    const void *p = NULL;
    size_t size = 0;
    if (field_get(rec, i, &f) || avro_value_get_type(&f) != AVRO_BYTES ||
        avro_value_get_bytes(&f, &p, &size))
        return NULL;
    if (len)
        *len = size;
    return p ? p : "";
}

bool cs_avro_get_long(const avro_value_t *rec, int i, int64_t *out)
{
    avro_value_t f;
    int32_t i32;
    if (field_get(rec, i, &f))
        return false;
    switch (avro_value_get_type(&f)) {
    case AVRO_INT64:
        return !avro_value_get_long(&f, out);
    case AVRO_INT32:
        if (avro_value_get_int(&f, &i32))
            return false;
        *out = i32;
        return true;
    default:
        return false;
    }
}

bool cs_avro_get_int(const avro_value_t *rec, int i, int32_t *out)
{
    avro_value_t f;
    return !field_get(rec, i, &f) && avro_value_get_type(&f) == AVRO_INT32 &&
           !avro_value_get_int(&f, out);
}

bool cs_avro_get_bool(const avro_value_t *rec, int i, bool *out)
{
    avro_value_t f;
    int b;
    if (field_get(rec, i, &f) || avro_value_get_type(&f) != AVRO_BOOLEAN ||
        avro_value_get_boolean(&f, &b))
        return false;
    *out = b != 0;
    return true;
}

int cs_avro_get_enum(const avro_value_t *rec, int i)
{
    avro_value_t f;
    int sym;
    if (field_get(rec, i, &f) || avro_value_get_type(&f) != AVRO_ENUM ||
        avro_value_get_enum(&f, &sym))
        return -1;
    return sym;
}

int cs_avro_get_field(const avro_value_t *rec, int i, avro_value_t *out)
{
    int rc = field_get(rec, i, out);
    return rc < 0 ? CS_ERR_INVAL : rc ? CS_ERR_NOT_FOUND : 0;
}

size_t cs_avro_count(const avro_value_t *rec, int i)
{
    avro_value_t f;
    size_t n = 0;
    if (field_get(rec, i, &f))
        return 0;
    avro_type_t t = avro_value_get_type(&f);
    if ((t != AVRO_ARRAY && t != AVRO_MAP) || avro_value_get_size(&f, &n))
        return 0;
    return n;
}

int cs_avro_get_item(const avro_value_t *rec, int i, size_t k, avro_value_t *item, const char **key)
{
    avro_value_t f;
    size_t n = 0;
    const char *kk = NULL;
    if (field_get(rec, i, &f))
        return CS_ERR_INVAL;
    avro_type_t t = avro_value_get_type(&f);
    if ((t != AVRO_ARRAY && t != AVRO_MAP) || avro_value_get_size(&f, &n))
        return CS_ERR_INVAL;
    if (k >= n)
        return CS_ERR_NOT_FOUND;
    if (avro_value_get_by_index(&f, k, item, &kk))
        return CS_ERR_AVRO;
    if (key)
        *key = t == AVRO_MAP ? kk : NULL;
    return 0;
}

const char *cs_avro_get_item_str(const avro_value_t *rec, int i, size_t k, size_t *len)
{
    avro_value_t item;
    return cs_avro_get_item(rec, i, k, &item, NULL) ? NULL : str_of(&item, len);
}

bool cs_avro_get_map_entry(const avro_value_t *rec, int i, size_t k, const char **key,
                           const char **value)
{
    avro_value_t item;
    const char *kk = NULL;
    if (cs_avro_get_item(rec, i, k, &item, &kk) || !kk)
        return false;
    if (key)
        *key = kk;
    if (value)
        *value = str_of(&item, NULL);
    return true;
}

bool cs_avro_map_find(const avro_value_t *rec, int i, const char *key, const char **value)
{
    avro_value_t f, child;
    if (!key || field_get(rec, i, &f) || avro_value_get_type(&f) != AVRO_MAP)
        return false;
    memset(&child, 0, sizeof child);
    if (avro_value_get_by_name(&f, key, &child, NULL) || !child.iface)
        return false;
    if (value)
        *value = str_of(&child, NULL);
    return true;
}

static avro_type_t schema_type(avro_schema_t s)
{
    while (s && is_avro_link(s))
        s = avro_schema_link_target(s);
    return s ? avro_typeof(s) : AVRO_LINK;
}

/* The value to set in field i: through a union, the branch of type t1 or t2 (null when
 * want_null), selected. */
static int field_for_set(avro_value_t *rec, int i, bool want_null, avro_type_t t1, avro_type_t t2,
                         avro_value_t *out)
{
    avro_value_t f;
    if (!rec || !rec->iface || i < 0 || avro_value_get_by_index(rec, (size_t)i, &f, NULL) ||
        !f.iface)
        return CS_ERR_INVAL;
    avro_type_t t = avro_value_get_type(&f);
    if (t != AVRO_UNION) {
        if (want_null ? t != AVRO_NULL : (t != t1 && t != t2))
            return CS_ERR_INVAL;
        *out = f;
        return 0;
    }
    avro_schema_t us = avro_value_get_schema(&f);
    size_t nb = avro_schema_union_size(us);
    for (size_t k = 0; k < nb; k++) {
        avro_type_t bt = schema_type(avro_schema_union_branch(us, (int)k));
        if (want_null ? bt == AVRO_NULL : (bt == t1 || bt == t2)) {
            int rc = avro_value_set_branch(&f, (int)k, out);
            return rc ? (rc == ENOMEM ? CS_ERR_NOMEM : CS_ERR_AVRO) : 0;
        }
    }
    return CS_ERR_INVAL;
}

#define AVSET(call) ((call) ? CS_ERR_AVRO : 0)

int cs_avro_set_null(avro_value_t *rec, int i)
{
    avro_value_t f;
    int rc = field_for_set(rec, i, true, AVRO_NULL, AVRO_NULL, &f);
    return rc ? rc : AVSET(avro_value_set_null(&f));
}

int cs_avro_set_strn(avro_value_t *rec, int i, const char *s, size_t len)
{
    avro_value_t f;
    if (!s)
        return cs_avro_set_null(rec, i);
    int rc = field_for_set(rec, i, false, AVRO_STRING, AVRO_STRING, &f);
    return rc ? rc : set_str0(&f, s, len);
}

int cs_avro_set_str(avro_value_t *rec, int i, const char *s)
{
    avro_value_t f;
    if (!s)
        return cs_avro_set_null(rec, i);
    int rc = field_for_set(rec, i, false, AVRO_STRING, AVRO_STRING, &f);
    return rc ? rc : AVSET(avro_value_set_string(&f, s));
}

int cs_avro_set_bytes(avro_value_t *rec, int i, const void *p, size_t len)
{
    avro_value_t f;
    if (!p)
        return cs_avro_set_null(rec, i);
    int rc = field_for_set(rec, i, false, AVRO_BYTES, AVRO_BYTES, &f);
    return rc ? rc : AVSET(avro_value_set_bytes(&f, (void *)p, len));
}

int cs_avro_set_long(avro_value_t *rec, int i, int64_t v)
{
    avro_value_t f;
    int rc = field_for_set(rec, i, false, AVRO_INT64, AVRO_INT32, &f);
    if (rc)
        return rc;
    if (avro_value_get_type(&f) == AVRO_INT64)
        return AVSET(avro_value_set_long(&f, v));
    if (v < INT32_MIN || v > INT32_MAX)
        return CS_ERR_INVAL;
    return AVSET(avro_value_set_int(&f, (int32_t)v));
}

int cs_avro_set_int(avro_value_t *rec, int i, int32_t v)
{
    return cs_avro_set_long(rec, i, v);
}

int cs_avro_set_bool(avro_value_t *rec, int i, bool v)
{
    avro_value_t f;
    int rc = field_for_set(rec, i, false, AVRO_BOOLEAN, AVRO_BOOLEAN, &f);
    return rc ? rc : AVSET(avro_value_set_boolean(&f, v));
}

int cs_avro_set_enum(avro_value_t *rec, int i, int symbol)
{
    avro_value_t f;
    int rc = field_for_set(rec, i, false, AVRO_ENUM, AVRO_ENUM, &f);
    if (rc)
        return rc;
    avro_schema_t s = avro_value_get_schema(&f);
    if (symbol < 0 || symbol >= avro_schema_enum_number_of_symbols(s))
        return CS_ERR_INVAL;
    return AVSET(avro_value_set_enum(&f, symbol));
}

int cs_avro_clear(avro_value_t *rec, int i)
{
    avro_value_t f;
    size_t n = 0;
    int rc = field_for_set(rec, i, false, AVRO_ARRAY, AVRO_MAP, &f);
    if (rc)
        return rc;
    if (avro_value_get_size(&f, &n))
        return CS_ERR_AVRO;
    return n ? AVSET(avro_value_reset(&f)) : 0;
}

/* Zero value from avro-c's schema alone (array elements made by cs_avro_array_add). */
static int zero_by_schema(avro_value_t *v, int depth)
{
    avro_value_t child;
    size_t n = 0;
    if (depth > CS_AVRO_MAX_DEPTH)
        return CS_ERR_INVAL;
    avro_schema_t s = avro_value_get_schema(v);
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        return AVSET(avro_value_set_null(v));
    case AVRO_BOOLEAN:
        return AVSET(avro_value_set_boolean(v, 0));
    case AVRO_INT32:
        return AVSET(avro_value_set_int(v, 0));
    case AVRO_INT64:
        return AVSET(avro_value_set_long(v, 0));
    case AVRO_FLOAT:
        return AVSET(avro_value_set_float(v, 0));
    case AVRO_DOUBLE:
        return AVSET(avro_value_set_double(v, 0));
    case AVRO_STRING:
        return AVSET(avro_value_set_string_len(v, "", 1));
    case AVRO_BYTES:
        return AVSET(avro_value_set_bytes(v, (void *)"", 0));
    case AVRO_ENUM:
        return AVSET(avro_value_set_enum(v, 0));
    case AVRO_FIXED: {
        size_t size = (size_t)avro_schema_fixed_size(s);
        void *z = calloc(1, size + 1);
        int rc = z ? AVSET(avro_value_set_fixed(v, z, size)) : CS_ERR_NOMEM;
        free(z);
        return rc;
    }
    case AVRO_ARRAY:
    case AVRO_MAP:
        if (avro_value_get_size(v, &n))
            return CS_ERR_AVRO;
        return n ? AVSET(avro_value_reset(v)) : 0;
    case AVRO_UNION: {
        size_t nb = avro_schema_union_size(s);
        int k = 0;
        for (size_t b = 0; b < nb; b++)
            if (schema_type(avro_schema_union_branch(s, (int)b)) == AVRO_NULL) {
                k = (int)b;
                break;
            }
        if (avro_value_set_branch(v, k, &child))
            return CS_ERR_AVRO;
        return zero_by_schema(&child, depth + 1);
    }
    case AVRO_RECORD:
        if (avro_value_get_size(v, &n))
            return CS_ERR_AVRO;
        for (size_t i = 0; i < n; i++) {
            int rc;
            if (avro_value_get_by_index(v, i, &child, NULL))
                return CS_ERR_AVRO;
            if ((rc = zero_by_schema(&child, depth + 1)))
                return rc;
        }
        return 0;
    default:
        return CS_ERR_INVAL;
    }
}

int cs_avro_array_add(avro_value_t *rec, int i, avro_value_t *item)
{
    avro_value_t f;
    int rc = field_for_set(rec, i, false, AVRO_ARRAY, AVRO_ARRAY, &f);
    if (rc || !item)
        return rc ? rc : CS_ERR_INVAL;
    if (avro_value_append(&f, item, NULL))
        return CS_ERR_AVRO;
    return zero_by_schema(item, 0);
}

int cs_avro_array_add_str(avro_value_t *rec, int i, const char *s)
{
    avro_value_t item, b;
    int rc;
    if (!s)
        return CS_ERR_INVAL;
    if ((rc = cs_avro_array_add(rec, i, &item)))
        return rc;
    if (avro_value_get_type(&item) == AVRO_UNION) {
        /* a nullable-string item: pick the string branch */
        avro_schema_t us = avro_value_get_schema(&item);
        for (size_t k = 0; k < avro_schema_union_size(us); k++)
            if (schema_type(avro_schema_union_branch(us, (int)k)) == AVRO_STRING) {
                if (avro_value_set_branch(&item, (int)k, &b))
                    return CS_ERR_AVRO;
                return AVSET(avro_value_set_string(&b, s));
            }
        return CS_ERR_INVAL;
    }
    if (avro_value_get_type(&item) != AVRO_STRING)
        return CS_ERR_INVAL;
    return AVSET(avro_value_set_string(&item, s));
}

int cs_avro_map_set_str(avro_value_t *rec, int i, const char *key, const char *value)
{
    avro_value_t f, child, b;
    if (!key)
        return CS_ERR_INVAL;
    int rc = field_for_set(rec, i, false, AVRO_MAP, AVRO_MAP, &f);
    if (rc)
        return rc;
    if (avro_value_add(&f, key, &child, NULL, NULL))
        return CS_ERR_AVRO;
    if (avro_value_get_type(&child) == AVRO_UNION) {
        avro_schema_t us = avro_value_get_schema(&child);
        for (size_t k = 0; k < avro_schema_union_size(us); k++) {
            avro_type_t bt = schema_type(avro_schema_union_branch(us, (int)k));
            if (value ? bt == AVRO_STRING : bt == AVRO_NULL) {
                if (avro_value_set_branch(&child, (int)k, &b))
                    return CS_ERR_AVRO;
                return value ? AVSET(avro_value_set_string(&b, value))
                             : AVSET(avro_value_set_null(&b));
            }
        }
        return CS_ERR_INVAL;
    }
    if (!value || avro_value_get_type(&child) != AVRO_STRING)
        return CS_ERR_INVAL;
    return AVSET(avro_value_set_string(&child, value));
}

/* ---- Flat decoding ------------------------------------------------------------------------ */

/* One top-level field into its slot: rd_node's checks and errors, without a value. */
static int fl_value(cs_avro_decoder_t *d, rd_t *r, const node_t *nd, cs_avro_slot_t *sl, int depth)
{
    int64_t l = 0;
    size_t len = 0;
    int rc;
    if (depth > CS_AVRO_MAX_DEPTH)
        return derr(d, CS_ERR_AVRO, "data nested deeper than %d", CS_AVRO_MAX_DEPTH);
    sl->type = nd->type;
    sl->node = nd;
    switch (nd->type) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        return rd_bool(d, r, &sl->i);
    case AVRO_INT32:
        return rd_int(d, r, &sl->i);
    case AVRO_INT64:
        return rd_long(d, r, &sl->i);
    case AVRO_ENUM:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        if (l < 0 || (uint64_t)l >= nd->n)
            return derr(d, CS_ERR_AVRO, "enum index %lld out of range (%zu symbols)", (long long)l,
                        nd->n);
        sl->i = l;
        return 0;
    case AVRO_STRING:
    case AVRO_BYTES:
        if ((rc = rd_len(d, r, &len)))
            return rc;
        sl->p = r->p;
        sl->len = len;
        r->p += len;
        return 0;
    case AVRO_UNION:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        if (l < 0 || (uint64_t)l >= nd->n)
            return derr(d, CS_ERR_AVRO, "union index %lld out of range (%zu branches)",
                        (long long)l, nd->n);
        sl->branch = (int)l;
        return fl_value(d, r, nd->kids[l], sl, depth + 1);
    default: /* fixed, float, double, record, array, map: checked, kept as encoded */
        sl->p = r->p;
        d->nitems = 0;
        if ((rc = rd_node(d, r, nd, NULL, depth)))
            return rc;
        sl->len = (size_t)(r->p - sl->p);
        sl->count = nd->type == AVRO_ARRAY || nd->type == AVRO_MAP ? d->nitems : 0;
        return 0;
    }
}

/* The common top-level field shapes, decoded without reaching for their schema nodes (which
 * are cold in the consumer's cache); anything else goes through fl_value. */
typedef enum {
    FL_OTHER = 0,
    FL_STRING,
    FL_LONG,
    FL_INT,
    FL_BOOLEAN,
    FL_NULL_STRING, /* ["null", "string"] */
    FL_NULL_LONG,   /* ["null", "long"] */
} fl_op_t;

static void fl_ops(const node_t *root, unsigned char *ops, size_t max)
{
    if (root->type != AVRO_RECORD || root->n > max)
        return; /* all FL_OTHER (calloc'd) */
    for (size_t i = 0; i < root->n; i++) {
        const node_t *nd = root->kids[i];
        fl_op_t op = FL_OTHER;
        if (nd->type == AVRO_STRING)
            op = FL_STRING;
        else if (nd->type == AVRO_INT64)
            op = FL_LONG;
        else if (nd->type == AVRO_INT32)
            op = FL_INT;
        else if (nd->type == AVRO_BOOLEAN)
            op = FL_BOOLEAN;
        else if (nd->type == AVRO_UNION && nd->n == 2 && nd->kids[0]->type == AVRO_NULL &&
                 nd->kids[1]->type == AVRO_STRING)
            op = FL_NULL_STRING;
        else if (nd->type == AVRO_UNION && nd->n == 2 && nd->kids[0]->type == AVRO_NULL &&
                 nd->kids[1]->type == AVRO_INT64)
            op = FL_NULL_LONG;
        ops[i] = (unsigned char)op;
    }
}

/* One top-level field by its op: the same checks and errors as fl_value. */
static inline int fl_field(cs_avro_decoder_t *d, rd_t *r, fl_op_t op, const node_t *nd,
                           cs_avro_slot_t *sl)
{
    int64_t l = 0;
    size_t len = 0;
    int rc;
    sl->branch = -1;
    sl->count = 0;
    switch (op) {
    case FL_NULL_STRING:
    case FL_NULL_LONG:
        if ((rc = rd_long(d, r, &l)))
            return rc;
        if (l < 0 || l > 1)
            return derr(d, CS_ERR_AVRO, "union index %lld out of range (%zu branches)",
                        (long long)l, (size_t)2);
        sl->branch = (int)l;
        if (l == 0) {
            sl->type = AVRO_NULL;
            return 0;
        }
        if (op == FL_NULL_LONG)
            goto long_value;
        /* fall through */
    case FL_STRING:
        if ((rc = rd_len(d, r, &len)))
            return rc;
        sl->type = AVRO_STRING;
        sl->p = r->p;
        sl->len = len;
        r->p += len;
        return 0;
    case FL_LONG:
    long_value:
        sl->type = AVRO_INT64;
        return rd_long(d, r, &sl->i);
    case FL_INT:
        sl->type = AVRO_INT32;
        return rd_int(d, r, &sl->i);
    case FL_BOOLEAN:
        sl->type = AVRO_BOOLEAN;
        return rd_bool(d, r, &sl->i);
    default:
        return fl_value(d, r, nd, sl, 1);
    }
}

int cs_avro_decode_flat(cs_avro_decoder_t *dec, const void *buf, size_t len, cs_avro_flat_t *out)
{
    cs_avro_decoded_t meta;
    const unsigned char *p = buf;
    int k = -1, rc;
    size_t hdr = 0;
    if (!dec || !out || (!buf && len))
        return CS_ERR_INVAL;
    out->value = NULL;
    out->slots = NULL;
    out->n = 0;
    if ((rc = dec_frame(dec, p, len, &meta, &k, &hdr)))
        return rc;
    out->schema = meta.schema;
    out->framing = meta.framing;
    out->fingerprint = meta.fingerprint;
    out->confluent_id = meta.confluent_id;
    out->resolved = meta.resolved;
    const node_t *root = dec->reg->e[k].root;
    if (dec->reg->e[k].old || root->type != AVRO_RECORD) {
        avro_value_t *v = NULL;
        rc = dec_body(dec, k, p + hdr, len - hdr, &v);
        out->value = v;
        return dec_finish(dec, k, rc, hdr);
    }
    if (root->n > dec->nslots) { /* cannot happen: every entry was counted at _new */
        cs_avro_slot_t *sl = realloc(dec->slots, (root->n + 1) * sizeof *sl);
        if (!sl)
            return dec_finish(dec, k, derr(dec, CS_ERR_NOMEM, "out of memory"), hdr);
        dec->slots = sl;
        dec->nslots = root->n;
    }
    rd_t r = {p + hdr, p + hdr, p + len};
    bool have_ops = (size_t)k < dec->nops && root->n < dec->ops_stride;
    const unsigned char *ops = have_ops ? dec->ops + (size_t)k * dec->ops_stride : NULL;
    for (size_t i = 0; i < root->n; i++) {
        cs_avro_slot_t *sl = &dec->slots[i];
        fl_op_t op = have_ops ? (fl_op_t)ops[i] : FL_OTHER;
        if ((rc = fl_field(dec, &r, op, op == FL_OTHER ? root->kids[i] : NULL, sl))) {
            dpath(dec, root->names[i]);
            return dec_finish(dec, k, rc, hdr);
        }
    }
    if (r.p != r.end)
        return dec_finish(
            dec, k, derr(dec, CS_ERR_AVRO, "%td trailing bytes after the record", r.end - r.p),
            hdr);
    out->slots = dec->slots;
    out->n = root->n;
    return 0;
}

static const cs_avro_slot_t *slot_of(const cs_avro_flat_t *rec, int i)
{
    return i >= 0 && (size_t)i < rec->n ? &rec->slots[i] : NULL;
}

bool cs_avro_flat_is_null(const cs_avro_flat_t *rec, int i)
{
    if (rec->value)
        return cs_avro_is_null(rec->value, i);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    return !sl || sl->type == AVRO_NULL;
}

const char *cs_avro_flat_str(const cs_avro_flat_t *rec, int i, size_t *len)
{
    if (rec->value)
        return cs_avro_get_str(rec->value, i, len);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || sl->type != AVRO_STRING)
        return NULL;
    if (len)
        *len = sl->len;
    return (const char *)sl->p;
}

const void *cs_avro_flat_bytes(const cs_avro_flat_t *rec, int i, size_t *len)
{
    if (rec->value)
        return cs_avro_get_bytes(rec->value, i, len);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || sl->type != AVRO_BYTES)
        return NULL;
    if (len)
        *len = sl->len;
    return sl->p;
}

bool cs_avro_flat_long(const cs_avro_flat_t *rec, int i, int64_t *out)
{
    if (rec->value)
        return cs_avro_get_long(rec->value, i, out);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || (sl->type != AVRO_INT64 && sl->type != AVRO_INT32))
        return false;
    *out = sl->i;
    return true;
}

bool cs_avro_flat_int(const cs_avro_flat_t *rec, int i, int32_t *out)
{
    if (rec->value)
        return cs_avro_get_int(rec->value, i, out);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || sl->type != AVRO_INT32)
        return false;
    *out = (int32_t)sl->i;
    return true;
}

bool cs_avro_flat_bool(const cs_avro_flat_t *rec, int i, bool *out)
{
    if (rec->value)
        return cs_avro_get_bool(rec->value, i, out);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || sl->type != AVRO_BOOLEAN)
        return false;
    *out = sl->i != 0;
    return true;
}

int cs_avro_flat_enum(const cs_avro_flat_t *rec, int i)
{
    if (rec->value)
        return cs_avro_get_enum(rec->value, i);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    return sl && sl->type == AVRO_ENUM ? (int)sl->i : -1;
}

size_t cs_avro_flat_count(const cs_avro_flat_t *rec, int i)
{
    if (rec->value)
        return cs_avro_count(rec->value, i);
    const cs_avro_slot_t *sl = slot_of(rec, i);
    return sl && (sl->type == AVRO_ARRAY || sl->type == AVRO_MAP) ? sl->count : 0;
}

/* Unchecked readers over encodings cs_avro_decode_flat has already checked (false only if
 * that did not hold). */
static bool sk_long(rd_t *r, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; r->p < r->end && shift < 64; shift += 7) {
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return true;
        }
    }
    return false;
}

static bool sk_span(rd_t *r, const unsigned char **p, size_t *len)
{
    int64_t n;
    if (!sk_long(r, &n) || n < 0 || (uint64_t)n > (uint64_t)(r->end - r->p))
        return false;
    *p = r->p;
    *len = (size_t)n;
    r->p += n;
    return true;
}

static bool sk_node(rd_t *r, const node_t *nd, int depth)
{
    int64_t l = 0;
    const unsigned char *p;
    size_t len, fixed = 0;
    if (depth > CS_AVRO_MAX_DEPTH)
        return false;
    switch (nd->type) {
    case AVRO_NULL:
        return true;
    case AVRO_BOOLEAN:
        fixed = 1;
        break;
    case AVRO_FLOAT:
        fixed = 4;
        break;
    case AVRO_DOUBLE:
        fixed = 8;
        break;
    case AVRO_FIXED:
        fixed = (size_t)nd->size;
        break;
    case AVRO_INT32:
    case AVRO_INT64:
    case AVRO_ENUM:
        return sk_long(r, &l);
    case AVRO_STRING:
    case AVRO_BYTES:
        return sk_span(r, &p, &len);
    case AVRO_UNION:
        return sk_long(r, &l) && l >= 0 && (uint64_t)l < nd->n &&
               sk_node(r, nd->kids[l], depth + 1);
    case AVRO_RECORD:
        for (size_t i = 0; i < nd->n; i++)
            if (!sk_node(r, nd->kids[i], depth + 1))
                return false;
        return true;
    case AVRO_ARRAY:
    case AVRO_MAP:
        for (;;) {
            int64_t count, bytes;
            if (!sk_long(r, &count))
                return false;
            if (count == 0)
                return true;
            if (count < 0) {
                if (!sk_long(r, &bytes) || bytes < 0 || bytes > r->end - r->p)
                    return false;
                r->p += bytes;
                continue;
            }
            for (int64_t i = 0; i < count; i++)
                if ((nd->type == AVRO_MAP && !sk_span(r, &p, &len)) ||
                    !sk_node(r, nd->kids[0], depth + 1))
                    return false;
        }
    default:
        return false;
    }
    if ((size_t)(r->end - r->p) < fixed)
        return false;
    r->p += fixed;
    return true;
}

void cs_avro_iter_init(const cs_avro_flat_t *rec, int i, cs_avro_iter_t *it)
{
    memset(it, 0, sizeof *it);
    it->rec = rec;
    it->field = i;
    if (rec->value)
        return;
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || (sl->type != AVRO_ARRAY && sl->type != AVRO_MAP))
        return;
    it->p = sl->p;
    it->end = sl->p + sl->len;
    it->item = ((const node_t *)sl->node)->kids[0];
    it->is_map = sl->type == AVRO_MAP;
}

static void set_out(const char **p, size_t *len, const void *vp, size_t vlen)
{
    if (p)
        *p = vp;
    if (len)
        *len = vp ? vlen : 0;
}

bool cs_avro_iter_next(cs_avro_iter_t *it, const char **key, size_t *key_len, const char **val,
                       size_t *val_len)
{
    const unsigned char *kp = NULL, *vp = NULL;
    size_t klen = 0, vlen = 0;
    if (it->rec->value) { /* a resolved record: its generic value */
        avro_value_t item;
        const char *gk = NULL, *gv;
        if (cs_avro_get_item(it->rec->value, it->field, it->k, &item, &gk))
            return false;
        it->k++;
        gv = str_of(&item, &vlen);
        set_out(key, key_len, gk, gk ? strlen(gk) : 0);
        set_out(val, val_len, gv, vlen);
        return true;
    }
    if (!it->item)
        return false;
    rd_t r = {it->p, it->p, it->end};
    while (it->left == 0) {
        int64_t count, bytes;
        if (!sk_long(&r, &count) || count == 0) {
            it->item = NULL; /* the end */
            return false;
        }
        if (count < 0 && (count == INT64_MIN || !sk_long(&r, &bytes))) {
            it->item = NULL;
            return false;
        }
        it->left = count < 0 ? -count : count;
    }
    if (it->is_map && !sk_span(&r, &kp, &klen))
        goto bad;
    const node_t *nd = it->item;
    int64_t b;
    if (nd->type == AVRO_UNION) {
        if (!sk_long(&r, &b) || b < 0 || (uint64_t)b >= nd->n)
            goto bad;
        nd = nd->kids[b];
    }
    if (nd->type == AVRO_STRING) {
        if (!sk_span(&r, &vp, &vlen))
            goto bad;
    } else if (!sk_node(&r, nd, 2)) {
        goto bad;
    }
    it->p = r.p;
    it->left--;
    it->k++;
    /* a map key stops at its first NUL, as in avro-c's maps */
    set_out(key, key_len, kp, kp ? strnlen((const char *)kp, klen) : 0);
    set_out(val, val_len, vp, vlen);
    return true;
bad:
    it->item = NULL;
    return false;
}

bool cs_avro_flat_map_find(const cs_avro_flat_t *rec, int i, const char *key, const char **val,
                           size_t *val_len)
{
    cs_avro_iter_t it;
    const char *k, *v, *found_v = NULL;
    size_t klen, vlen, found_len = 0, want;
    bool found = false;
    if (!key)
        return false;
    if (rec->value) { /* as cs_avro_map_find, with the value's length */
        avro_value_t f, child;
        if (field_get(rec->value, i, &f) || avro_value_get_type(&f) != AVRO_MAP)
            return false;
        memset(&child, 0, sizeof child);
        if (avro_value_get_by_name(&f, key, &child, NULL) || !child.iface)
            return false;
        v = str_of(&child, &vlen);
        set_out(val, val_len, v, vlen);
        return true;
    }
    const cs_avro_slot_t *sl = slot_of(rec, i);
    if (!sl || sl->type != AVRO_MAP)
        return false;
    want = strlen(key);
    cs_avro_iter_init(rec, i, &it);
    while (cs_avro_iter_next(&it, &k, &klen, &v, &vlen))
        if (klen == want && !memcmp(k, key, want)) { /* the last one wins */
            found = true;
            found_v = v;
            found_len = vlen;
        }
    if (found)
        set_out(val, val_len, found_v, found_len);
    return found;
}
