/* sb_crm_schema: the Lead, Contact and User objects as the sandbox models them, describe output
 * and the shared error/render helpers. */
#include "sb_crm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- computed fields ---- */

static const char *str_of(const json_t *stored, const char *name)
{
    const json_t *v = json_object_get(stored, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *compute_name(const json_t *stored)
{
    const char *f = str_of(stored, "FirstName"), *l = str_of(stored, "LastName");
    if (!f || !*f)
        return l ? json_string(l) : json_null();
    if (!l)
        return json_string(f);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s %s", f, l);
    return json_string(buf);
}

static json_t *compute_email_domain(const json_t *stored)
{
    const char *e = str_of(stored, "Email");
    const char *at = e ? strchr(e, '@') : NULL;
    return at && at[1] ? json_string(at + 1) : json_null();
}

/* ---- the objects ---- */

#define RW (SB_F_CREATE | SB_F_UPDATE)
#define RWN (SB_F_CREATE | SB_F_UPDATE | SB_F_NILLABLE)
#define SYS SB_F_DEFAULTED
#define EMAIL_DOMAIN_FORMULA "SUBSTITUTE(Email, LEFT(Email, FIND(\"@\", Email)), \"\")"

/* clang-format off */
#define SYSTEM_FIELDS                                                                              \
    {"CreatedDate", "Created Date", SB_FT_DATETIME, 0, SYS, NULL, NULL, NULL, NULL, NULL},         \
    {"CreatedById", "Created By ID", SB_FT_REFERENCE, 18, SYS, NULL, "User", "CreatedBy", NULL,    \
     NULL},                                                                                        \
    {"LastModifiedDate", "Last Modified Date", SB_FT_DATETIME, 0, SYS, NULL, NULL, NULL, NULL,     \
     NULL},                                                                                        \
    {"LastModifiedById", "Last Modified By ID", SB_FT_REFERENCE, 18, SYS, NULL, "User",            \
     "LastModifiedBy", NULL, NULL},                                                                \
    {"SystemModstamp", "System Modstamp", SB_FT_DATETIME, 0, SYS, NULL, NULL, NULL, NULL, NULL}
/* clang-format on */

static const sb_field_t lead_fields[] = {
    {"Id", "Lead ID", SB_FT_ID, 18, SYS, NULL, NULL, NULL, NULL, NULL},
    {"IsDeleted", "Deleted", SB_FT_BOOL, 0, SYS, NULL, NULL, NULL, NULL, NULL},
    {"FirstName", "First Name", SB_FT_STRING, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"LastName", "Last Name", SB_FT_STRING, 80, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Name", "Full Name", SB_FT_STRING, 121, SB_F_COMPUTED, NULL, NULL, NULL, NULL, compute_name},
    {"Company", "Company", SB_FT_STRING, 255, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Title", "Title", SB_FT_STRING, 128, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Email", "Email", SB_FT_EMAIL, 80, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Phone", "Phone", SB_FT_PHONE, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Status", "Status", SB_FT_PICKLIST, 40, RW | SYS, NULL, NULL, NULL, "Open - Not Contacted",
     NULL},
    {"LeadSource", "Lead Source", SB_FT_PICKLIST, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"OwnerId", "Owner ID", SB_FT_REFERENCE, 18, RW | SYS, NULL, "User", "Owner", NULL, NULL},
    {"HasOptedOutOfEmail", "Email Opt Out", SB_FT_BOOL, 0, RW | SYS, NULL, NULL, NULL, NULL, NULL},
    {"DoNotCall", "Do Not Call", SB_FT_BOOL, 0, RW | SYS, NULL, NULL, NULL, NULL, NULL},
    {"IsConverted", "Converted", SB_FT_BOOL, 0, SYS, NULL, NULL, NULL, NULL, NULL},
    {"ConvertedContactId", "Converted Contact ID", SB_FT_REFERENCE, 18, SB_F_NILLABLE, NULL,
     "Contact", "ConvertedContact", NULL, NULL},
    {"Crmsync_Prospect_Id__c", "Crmsync Prospect Id", SB_FT_STRING, 40, RWN | SB_F_EXTID, NULL,
     NULL, NULL, NULL, NULL},
    {"Crmsync_Score__c", "Marketing Score", SB_FT_STRING, 18, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Crmsync_Grade__c", "Marketing Grade", SB_FT_STRING, 10, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Crmsync_Last_Activity__c", "Last Marketing Activity", SB_FT_DATETIME, 0, RWN, NULL, NULL,
     NULL, NULL, NULL},
    {"Email_Domain__c", "Email Domain", SB_FT_STRING, 1300,
     SB_F_NILLABLE | SB_F_FORMULA | SB_F_COMPUTED, EMAIL_DOMAIN_FORMULA, NULL, NULL, NULL,
     compute_email_domain},
    SYSTEM_FIELDS,
};

static const sb_field_t contact_fields[] = {
    {"Id", "Contact ID", SB_FT_ID, 18, SYS, NULL, NULL, NULL, NULL, NULL},
    {"IsDeleted", "Deleted", SB_FT_BOOL, 0, SYS, NULL, NULL, NULL, NULL, NULL},
    {"FirstName", "First Name", SB_FT_STRING, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"LastName", "Last Name", SB_FT_STRING, 80, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Name", "Full Name", SB_FT_STRING, 121, SB_F_COMPUTED, NULL, NULL, NULL, NULL, compute_name},
    {"Title", "Title", SB_FT_STRING, 128, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Email", "Email", SB_FT_EMAIL, 80, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Phone", "Business Phone", SB_FT_PHONE, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"LeadSource", "Lead Source", SB_FT_PICKLIST, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"OwnerId", "Owner ID", SB_FT_REFERENCE, 18, RW | SYS, NULL, "User", "Owner", NULL, NULL},
    {"HasOptedOutOfEmail", "Email Opt Out", SB_FT_BOOL, 0, RW | SYS, NULL, NULL, NULL, NULL, NULL},
    {"DoNotCall", "Do Not Call", SB_FT_BOOL, 0, RW | SYS, NULL, NULL, NULL, NULL, NULL},
    {"Crmsync_Prospect_Id__c", "Crmsync Prospect Id", SB_FT_STRING, 40, RWN | SB_F_EXTID, NULL,
     NULL, NULL, NULL, NULL},
    {"Crmsync_Score__c", "Marketing Score", SB_FT_STRING, 18, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Crmsync_Grade__c", "Marketing Grade", SB_FT_STRING, 10, RWN, NULL, NULL, NULL, NULL, NULL},
    {"Crmsync_Last_Activity__c", "Last Marketing Activity", SB_FT_DATETIME, 0, RWN, NULL, NULL,
     NULL, NULL, NULL},
    {"Email_Domain__c", "Email Domain", SB_FT_STRING, 1300,
     SB_F_NILLABLE | SB_F_FORMULA | SB_F_COMPUTED, EMAIL_DOMAIN_FORMULA, NULL, NULL, NULL,
     compute_email_domain},
    SYSTEM_FIELDS,
};

static const sb_field_t user_fields[] = {
    {"Id", "User ID", SB_FT_ID, 18, SYS, NULL, NULL, NULL, NULL, NULL},
    {"Username", "Username", SB_FT_STRING, 80, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"FirstName", "First Name", SB_FT_STRING, 40, RWN, NULL, NULL, NULL, NULL, NULL},
    {"LastName", "Last Name", SB_FT_STRING, 80, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Name", "Full Name", SB_FT_STRING, 121, SB_F_COMPUTED, NULL, NULL, NULL, NULL, compute_name},
    {"Email", "Email", SB_FT_EMAIL, 128, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Alias", "Alias", SB_FT_STRING, 8, RW | SB_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"IsActive", "Active", SB_FT_BOOL, 0, RW | SYS, NULL, NULL, NULL, NULL, NULL},
    SYSTEM_FIELDS,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const sb_sobj_t sobjs[SB_CRM_NOBJ] = {
    {"Lead", "Lead", "Leads", "00Q", lead_fields, N(lead_fields), 1, 0},
    {"Contact", "Contact", "Contacts", "003", contact_fields, N(contact_fields), 1, 1},
    {"User", "User", "Users", "005", user_fields, N(user_fields), 0, 2},
};

const sb_sobj_t *sb_crm_sobj(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        if (!strcasecmp(sobjs[i].name, name))
            return &sobjs[i];
    return NULL;
}

const sb_sobj_t *sb_crm_sobj_at(int idx)
{
    return idx >= 0 && idx < SB_CRM_NOBJ ? &sobjs[idx] : NULL;
}

const sb_field_t *sb_crm_field(const sb_sobj_t *o, const char *name)
{
    if (!o || !name)
        return NULL;
    for (size_t i = 0; i < o->nfields; i++)
        if (!strcasecmp(o->fields[i].name, name))
            return &o->fields[i];
    return NULL;
}

const sb_field_t *sb_crm_ext_field(const sb_sobj_t *o)
{
    for (size_t i = 0; i < o->nfields; i++)
        if (o->fields[i].flags & SB_F_EXTID)
            return &o->fields[i];
    return NULL;
}

/* ---- values and rendering ---- */

json_t *sb_rec_value(const sb_rec_t *r, const sb_field_t *f)
{
    if (f->flags & SB_F_COMPUTED)
        return f->compute(r->v);
    if (f->type == SB_FT_ID)
        return json_string(r->id);
    json_t *v = json_object_get(r->v, f->name);
    return v ? json_incref(v) : json_null();
}

json_t *sb_wire_value(const sb_field_t *f, json_t *v)
{
    if (f->type == SB_FT_DATETIME && json_is_integer(v)) {
        char buf[SB_TIME_BUF];
        json_t *s = json_string(sb_fmt_sf(json_integer_value(v), buf));
        json_decref(v);
        return s;
    }
    return v;
}

json_t *sb_rec_render(const sb_rec_t *r, const sb_field_t *const *fields, size_t n,
                      const char *version)
{
    char url[96];
    snprintf(url, sizeof(url), "/services/data/%s/sobjects/%s/%s", version, r->obj->name, r->id);
    json_t *o = json_object();
    json_object_set_new(o, "attributes", json_pack("{s:s, s:s}", "type", r->obj->name, "url", url));
    if (!fields) {
        for (size_t i = 0; i < r->obj->nfields; i++) {
            const sb_field_t *f = &r->obj->fields[i];
            json_object_set_new(o, f->name, sb_wire_value(f, sb_rec_value(r, f)));
        }
    } else {
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, fields[i]->name,
                                sb_wire_value(fields[i], sb_rec_value(r, fields[i])));
    }
    return o;
}

const sb_field_t **sb_crm_parse_fields(const sb_sobj_t *o, const char *list, size_t *n, char **bad)
{
    *n = 0;
    *bad = NULL;
    size_t cap = 8;
    const sb_field_t **out = malloc(cap * sizeof(*out));
    if (!out)
        return NULL;
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            char name[128];
            const sb_field_t *f = NULL;
            if (len < sizeof(name)) {
                memcpy(name, p, len);
                name[len] = '\0';
                f = sb_crm_field(o, name);
            }
            if (!f) {
                *bad = strndup(p, len > 200 ? 200 : len);
                free(out);
                return NULL;
            }
            int dup = 0;
            for (size_t i = 0; i < *n; i++)
                dup |= out[i] == f;
            if (!dup) {
                if (*n == cap) {
                    cap *= 2;
                    const sb_field_t **nb = realloc(out, cap * sizeof(*out));
                    if (!nb) {
                        free(out);
                        return NULL;
                    }
                    out = nb;
                }
                out[(*n)++] = f;
            }
        }
        p = comma ? comma + 1 : NULL;
    }
    return out;
}

/* ---- errors ---- */

json_t *sb_sf_error(const char *code, const char *message, const char *field)
{
    char *clean = sb_utf8_dup(message); /* messages may echo the caller's bytes */
    json_t *e = json_pack("{s:s, s:s}", "message", clean ? clean : "", "errorCode", code);
    free(clean);
    if (field)
        json_object_set_new(e, "fields", json_pack("[s]", field));
    return json_pack("[o]", e);
}

json_t *sb_err_no_column(const char *field, const char *entity)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "No such column '%.100s' on entity '%s'. If you are attempting to use a custom "
             "field, be sure to append the '__c' after the custom field name. Please reference "
             "your WSDL or the describe call for the appropriate names.",
             field, entity);
    return sb_sf_error("INVALID_FIELD", msg, NULL);
}

/* ---- describe ---- */

static const char *type_name(sb_ftype_t t)
{
    static const char *names[] = {"id",       "string",  "email",    "phone",
                                  "picklist", "boolean", "datetime", "reference"};
    return names[t];
}

static const char *soap_type(sb_ftype_t t)
{
    switch (t) {
    case SB_FT_ID:
    case SB_FT_REFERENCE:
        return "tns:ID";
    case SB_FT_BOOL:
        return "xsd:boolean";
    case SB_FT_DATETIME:
        return "xsd:dateTime";
    default:
        return "xsd:string";
    }
}

static json_t *describe_field(const sb_field_t *f)
{
    int custom = strlen(f->name) > 3 && !strcmp(f->name + strlen(f->name) - 3, "__c");
    json_t *d = json_object();
    json_object_set_new(d, "name", json_string(f->name));
    json_object_set_new(d, "label", json_string(f->label));
    json_object_set_new(d, "type", json_string(type_name(f->type)));
    json_object_set_new(d, "soapType", json_string(soap_type(f->type)));
    json_object_set_new(
        d, "length",
        json_integer(f->type == SB_FT_BOOL || f->type == SB_FT_DATETIME ? 0 : f->length));
    json_object_set_new(d, "custom", json_boolean(custom));
    json_object_set_new(d, "nillable", json_boolean(f->flags & SB_F_NILLABLE));
    json_object_set_new(d, "createable", json_boolean(f->flags & SB_F_CREATE));
    json_object_set_new(d, "updateable", json_boolean(f->flags & SB_F_UPDATE));
    json_object_set_new(d, "calculated", json_boolean(f->flags & SB_F_FORMULA));
    json_object_set_new(d, "calculatedFormula", f->formula ? json_string(f->formula) : json_null());
    json_object_set_new(d, "defaultedOnCreate", json_boolean(f->flags & SB_F_DEFAULTED));
    json_object_set_new(d, "externalId", json_boolean(f->flags & SB_F_EXTID));
    json_object_set_new(d, "unique", json_boolean(f->flags & SB_F_EXTID));
    json_object_set_new(d, "caseSensitive", json_false());
    json_object_set_new(d, "idLookup",
                        json_boolean(f->type == SB_FT_ID || (f->flags & SB_F_EXTID) ||
                                     !strcmp(f->name, "Email") || !strcmp(f->name, "Username")));
    json_object_set_new(d, "filterable", json_true());
    json_object_set_new(d, "sortable", json_true());
    json_object_set_new(d, "referenceTo", f->ref_to ? json_pack("[s]", f->ref_to) : json_array());
    json_object_set_new(d, "relationshipName",
                        f->rel_name ? json_string(f->rel_name) : json_null());
    json_object_set_new(d, "defaultValue", f->def_str ? json_string(f->def_str) : json_null());
    json_t *pv = json_array();
    if (f->def_str)
        json_array_append_new(pv, json_pack("{s:b, s:b, s:s, s:s}", "active", 1, "defaultValue", 1,
                                            "label", f->def_str, "value", f->def_str));
    json_object_set_new(d, "picklistValues", pv);
    return d;
}

static json_t *sobject_basic(const sb_sobj_t *o, const char *version)
{
    char url[128], durl[160];
    snprintf(url, sizeof(url), "/services/data/%s/sobjects/%s", version, o->name);
    snprintf(durl, sizeof(durl), "%s/describe", url);
    json_t *d = json_object();
    json_object_set_new(d, "name", json_string(o->name));
    json_object_set_new(d, "label", json_string(o->label));
    json_object_set_new(d, "labelPlural", json_string(o->label_plural));
    json_object_set_new(d, "keyPrefix", json_string(o->prefix));
    json_object_set_new(d, "custom", json_false());
    json_object_set_new(d, "createable", json_boolean(o->writable));
    json_object_set_new(d, "updateable", json_boolean(o->writable));
    json_object_set_new(d, "deletable", json_boolean(o->writable));
    json_object_set_new(d, "queryable", json_true());
    json_object_set_new(d, "replicateable", json_true());
    json_object_set_new(d, "retrieveable", json_true());
    json_object_set_new(
        d, "urls",
        json_pack("{s:s, s:s, s:s}", "sobject", url, "describe", durl, "rowTemplate", url));
    return d;
}

json_t *sb_crm_describe(sb_crm_t *c, const char *version, const char *type, int *status)
{
    const sb_sobj_t *o = sb_crm_sobj(type);
    if (!o) {
        *status = 404;
        return sb_sf_error("NOT_FOUND", "The requested resource does not exist", NULL);
    }
    json_t *d = sobject_basic(o, version);
    json_t *fields = json_array();
    for (size_t i = 0; i < o->nfields; i++)
        json_array_append_new(fields, describe_field(&o->fields[i]));
    json_object_set_new(d, "fields", fields);
    *status = 200;
    return d;
}

json_t *sb_crm_describe_global(const char *version)
{
    json_t *arr = json_array();
    for (int i = 0; i < SB_CRM_NOBJ; i++)
        json_array_append_new(arr, sobject_basic(&sobjs[i], version));
    return json_pack("{s:s, s:i, s:o}", "encoding", "UTF-8", "maxBatchSize", 200, "sobjects", arr);
}
