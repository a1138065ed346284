#include "cs_fields.h"
#include "cs_err.h"

#include <stdio.h>
#include <string.h>

const cs_opt_t cs_fields_opts[] = {
    {"fields.default.wins", CS_OPT_STRING, "most_recent", 0, 0, 0,
     "sync behaviour of every mapped field unless overridden: most_recent, crm_wins or "
     "marketing_wins"},
    {"fields.overrides", CS_OPT_STRING, "", 0, 0, 0,
     "per-field behaviour, comma list of name:behaviour (e.g. company:crm_wins,phone:most_recent)"},
    {"fields.custom", CS_OPT_STRING, "", 0, 0, 0,
     "custom fields, comma list of marketingName:CRM_Name__c[:behaviour]"},
    {"crm.field.score", CS_OPT_STRING, "Crmsync_Score__c", 0, 0, 0,
     "CRM field receiving the marketing score (one-way)"},
    {"crm.field.grade", CS_OPT_STRING, "Crmsync_Grade__c", 0, 0, 0,
     "CRM field receiving the marketing grade (one-way)"},
    {"crm.field.last_activity", CS_OPT_STRING, "Crmsync_Last_Activity__c", 0, 0, 0,
     "CRM field receiving the prospect's last activity time (one-way)"},
    CS_OPT_END,
};

static const cs_field_t defaults[CS_F_DEFAULT_COUNT_] = {
    [CS_F_EMAIL] = {"email", "email", "Email", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_FIRST_NAME] = {"first_name", "firstName", "FirstName", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_LAST_NAME] = {"last_name", "lastName", "LastName", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_COMPANY] = {"company", "company", "Company", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_PHONE] = {"phone", "phone", "Phone", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_TITLE] = {"title", "jobTitle", "Title", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_OPTED_OUT] = {"opted_out", "optedOut", "HasOptedOutOfEmail", CS_WINS_MOST_RECENT, 1, 0,
                        0},
    [CS_F_OWNER] = {"owner", "assignedToId", "OwnerId", CS_WINS_MOST_RECENT, 0, 0, 0},
    [CS_F_SCORE] = {"score", "score", "Crmsync_Score__c", CS_WINS_MARKETING, 0, 1, 0},
    [CS_F_GRADE] = {"grade", "grade", "Crmsync_Grade__c", CS_WINS_MARKETING, 0, 0, 0},
    [CS_F_LAST_ACTIVITY] = {"last_activity", "lastActivityAt", "Crmsync_Last_Activity__c",
                            CS_WINS_MARKETING, 0, 0, 1},
};

const char *cs_wins_name(cs_wins_t w)
{
    switch (w) {
    case CS_WINS_CRM:
        return "crm_wins";
    case CS_WINS_MARKETING:
        return "marketing_wins";
    case CS_WINS_MOST_RECENT:
        break;
    }
    return "most_recent";
}

static int parse_wins(const char *s, size_t len, cs_wins_t *out)
{
    if (len == 11 && !strncmp(s, "most_recent", len))
        *out = CS_WINS_MOST_RECENT;
    else if (len == 8 && !strncmp(s, "crm_wins", len))
        *out = CS_WINS_CRM;
    else if (len == 14 && !strncmp(s, "marketing_wins", len))
        *out = CS_WINS_MARKETING;
    else
        return -1;
    return 0;
}

void cs_fieldmap_defaults(cs_fieldmap_t *fm)
{
    memset(fm, 0, sizeof(*fm));
    memcpy(fm->f, defaults, sizeof(defaults));
    fm->n = CS_F_DEFAULT_COUNT_;
}

int cs_fieldmap_find(const cs_fieldmap_t *fm, const char *name)
{
    for (int i = 0; i < fm->n; i++) {
        const cs_field_t *f = &fm->f[i];
        if (!strcmp(f->name, name) || (f->mkt_name && !strcmp(f->mkt_name, name)) ||
            (f->crm_name && !strcmp(f->crm_name, name)))
            return i;
    }
    return -1;
}

/* The custom-field spec strings must outlive the map, so they are parsed into a static
 * pool: one field map per process is the rule (the consumer's). */
static char custom_pool[4096];

int cs_fieldmap_init(cs_fieldmap_t *fm, const cs_conf_t *conf, char *errstr, size_t n)
{
    cs_wins_t def;
    const char *s;
    size_t used = 0;

    cs_fieldmap_defaults(fm);
    s = cs_conf_str(conf, "fields.default.wins");
    if (parse_wins(s, strlen(s), &def))
        return cs_err_set(errstr, n, CS_ERR_CONFIG,
                          "fields.default.wins: '%s' is not most_recent, crm_wins or "
                          "marketing_wins",
                          s);
    for (int i = 0; i < CS_F_SCORE; i++) /* score, grade, last activity stay one-way */
        fm->f[i].wins = def;
    fm->f[CS_F_SCORE].crm_name = cs_conf_str(conf, "crm.field.score");
    fm->f[CS_F_GRADE].crm_name = cs_conf_str(conf, "crm.field.grade");
    fm->f[CS_F_LAST_ACTIVITY].crm_name = cs_conf_str(conf, "crm.field.last_activity");

    /* custom fields: mkt:CRM[:wins],... */
    s = cs_conf_str(conf, "fields.custom");
    while (s && *s) {
        const char *end = strchr(s, ','), *c1, *c2;
        size_t len = end ? (size_t)(end - s) : strlen(s);
        cs_wins_t w = def;
        char *mkt, *crm;
        c1 = memchr(s, ':', len);
        if (!c1 || c1 == s || c1 + 1 >= s + len)
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "fields.custom: '%.*s' is not marketingName:CRM_Name__c", (int)len,
                              s);
        c2 = memchr(c1 + 1, ':', (size_t)(s + len - c1 - 1));
        if (c2 && parse_wins(c2 + 1, (size_t)(s + len - c2 - 1), &w))
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: bad behaviour in '%.*s'",
                              (int)len, s);
        if (fm->n >= CS_FIELDS_MAX)
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: more than %d fields",
                              CS_FIELDS_MAX - CS_F_DEFAULT_COUNT_);
        size_t ml = (size_t)(c1 - s), cl = (size_t)((c2 ? c2 : s + len) - c1 - 1);
        if (used + ml + cl + 2 > sizeof(custom_pool))
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: too long");
        mkt = custom_pool + used;
        memcpy(mkt, s, ml);
        mkt[ml] = '\0';
        used += ml + 1;
        crm = custom_pool + used;
        memcpy(crm, c1 + 1, cl);
        crm[cl] = '\0';
        used += cl + 1;
        if (cs_fieldmap_find(fm, mkt) >= 0 || cs_fieldmap_find(fm, crm) >= 0)
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.custom: '%s' is mapped twice", mkt);
        fm->f[fm->n++] = (cs_field_t){mkt, mkt, crm, w, 0, 0, 0};
        s = end ? end + 1 : NULL;
    }

    /* per-field overrides: name:wins,... */
    s = cs_conf_str(conf, "fields.overrides");
    while (s && *s) {
        const char *end = strchr(s, ','), *c1;
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char name[128];
        cs_wins_t w;
        c1 = memchr(s, ':', len);
        if (!c1 || (size_t)(c1 - s) >= sizeof(name) ||
            parse_wins(c1 + 1, (size_t)(s + len - c1 - 1), &w))
            return cs_err_set(errstr, n, CS_ERR_CONFIG,
                              "fields.overrides: '%.*s' is not name:behaviour", (int)len, s);
        memcpy(name, s, (size_t)(c1 - s));
        name[c1 - s] = '\0';
        int i = cs_fieldmap_find(fm, name);
        if (i < 0)
            return cs_err_set(errstr, n, CS_ERR_CONFIG, "fields.overrides: unknown field '%s'",
                              name);
        fm->f[i].wins = w;
        s = end ? end + 1 : NULL;
    }
    return CS_OK;
}
