/*
 * Check 6: a layer type's attribute schema (ABI 1.2 `attr_specs`, plugin.h's
 * ply_attr_spec). The runtime checks every attribute list against it before
 * create, and `ply plugins --describe` prints it, so a faulty schema either
 * refuses attributes the plugin takes or lets typos through:
 *
 *   - the list ends with a NULL name (within MAX_SPECS entries);
 *   - names are identifier-like ([A-Za-z_][A-Za-z0-9_]*), unique, and not a
 *     model file's structural keys (name, type, inputs, if: a model file
 *     could never give them);
 *   - kind is a ply_attr_kind; flags are ply_attr_flags and fit the kind
 *     (PLY_ATTR_PAIR: kind INTS; PLY_ATTR_SCALAR_OR_LIST: INT, INTS, FLOAT or
 *     FLOATS; PLY_ATTR_REQUIRED: no default);
 *   - default_text, when given, reads as a value of the kind the way the host
 *     reads it (AttributeSpec.defaultValue): "3", "1e-05", "true", "[1, 1]",
 *     "[]", a word for a string or a PLY_ATTR_OR_STRING attribute;
 *   - doc is one non-empty line.
 *
 * The entries are read as they are (ply_attr_spec is frozen); the list itself
 * only up to its end or MAX_SPECS entries.
 */
#include "check.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More entries than any real layer takes: a list without its NULL-named end. */
#define MAX_SPECS 256

static bool identifier(const char *s) {
    if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
    return true;
}

static bool reads_int(const char *s) {
    char *end;
    errno = 0;
    (void)strtoll(s, &end, 10);
    return end != s && *end == '\0' && errno == 0;
}

static bool reads_float(const char *s) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    (void)strtod(s, &end);
    return end != s && *end == '\0';
}

/* "[a, b, ...]" (possibly empty) whose items all read as ints (or floats). */
static bool reads_list(const char *s, bool floats) {
    size_t n = strlen(s);
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return false;
    char item[64];
    const char *p = s + 1, *end = s + n - 1;
    while (p < end && isspace((unsigned char)*p)) p++;
    if (p == end) return true; /* [] */
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        while (p < stop && isspace((unsigned char)*p)) p++;
        const char *last = stop;
        while (last > p && isspace((unsigned char)last[-1])) last--;
        if (last == p || (size_t)(last - p) >= sizeof item) return false;
        memcpy(item, p, (size_t)(last - p));
        item[last - p] = '\0';
        if (!(floats ? reads_float(item) : reads_int(item))) return false;
        if (!comma) return true;
        p = comma + 1;
    }
}

static bool is_bool_word(const char *s) { return !strcmp(s, "true") || !strcmp(s, "false"); }

/* Whether `text` (trimmed by the caller) reads as a value `spec` accepts. */
static bool default_fits(const ply_attr_spec *spec, const char *text) {
    bool pair = spec->flags & PLY_ATTR_PAIR, either = spec->flags & PLY_ATTR_SCALAR_OR_LIST;
    if ((spec->flags & PLY_ATTR_OR_STRING) && spec->kind != PLY_ATTR_STRING) {
        /* a word the plugin checks ("same"): anything that is not a malformed number or list */
        if (isalpha((unsigned char)text[0])) return true;
    }
    switch (spec->kind) {
    case PLY_ATTR_INT: return reads_int(text) || is_bool_word(text) || (either && reads_list(text, false));
    case PLY_ATTR_FLOAT: return reads_float(text) || (either && reads_list(text, true));
    case PLY_ATTR_BOOL: return is_bool_word(text);
    case PLY_ATTR_STRING: return true;
    case PLY_ATTR_INTS: return reads_list(text, false) || ((pair || either) && reads_int(text));
    case PLY_ATTR_FLOATS: return reads_list(text, true) || (either && reads_float(text));
    default: return false;
    }
}

static const char *kind_name(int32_t kind) {
    static const char *const names[] = {"?", "INT", "FLOAT", "BOOL", "STRING", "INTS", "FLOATS"};
    return kind >= 1 && kind <= 6 ? names[kind] : "?";
}

void check_schema(const type_info *ti) {
    const char *type = ti->t.name;
    const ply_attr_spec *specs = ti->t.attr_specs;
    if (!specs) {
        if (ti->original->struct_size >= offsetof(ply_layer_type, attr_specs) + sizeof specs)
            report_skip("type %s: no attribute schema (attr_specs is NULL): the host passes its attributes unchecked, "
                        "and refuses them under --strict-attributes", type);
        return;
    }
    report_doing("type %s: reading attr_specs", type);
    int count = 0, problems = 0;
    while (count < MAX_SPECS && specs[count].name) count++;
    if (count == MAX_SPECS) {
        report_fail("type %s: attr_specs has no entry with a NULL name within %d entries (the list must end with one)",
                    type, MAX_SPECS);
        return;
    }
    static const char *const structural[] = {"name", "type", "inputs", "if"};
    const int known_flags = PLY_ATTR_REQUIRED | PLY_ATTR_PAIR | PLY_ATTR_OR_STRING | PLY_ATTR_SCALAR_OR_LIST;
    for (int i = 0; i < count; i++) {
        const ply_attr_spec *s = &specs[i];
        const char *name = s->name;
        char at[200];
        snprintf(at, sizeof at, "type %s: attr_specs[%d] (\"%.60s\")", type, i, name);
        report_doing("%s", at);
        if (!identifier(name))
            report_fail("%s: the name must be identifier-like ([A-Za-z_][A-Za-z0-9_]*), as model files and "
                        "PyTorch's arguments spell it", at), problems++;
        for (size_t k = 0; k < sizeof structural / sizeof structural[0]; k++)
            if (!strcmp(name, structural[k]))
                report_fail("%s: '%s' is a layer's structural key in model files, which could never pass it as an "
                            "attribute", at, name), problems++;
        for (int j = 0; j < i; j++)
            if (!strcmp(specs[j].name, name))
                report_fail("%s: the name is also attr_specs[%d]'s (each attribute once)", at, j), problems++;
        if (s->kind < PLY_ATTR_INT || s->kind > PLY_ATTR_FLOATS) {
            report_fail("%s: kind %d is not a ply_attr_kind (PLY_ATTR_INT 1 .. PLY_ATTR_FLOATS 6)", at, (int)s->kind);
            problems++;
            continue; /* the rest depends on the kind */
        }
        if (s->flags & ~known_flags)
            report_fail("%s: flags 0x%x has bits that are not ply_attr_flags (known: 0x%x)", at, (unsigned)s->flags,
                        (unsigned)known_flags), problems++;
        if ((s->flags & PLY_ATTR_PAIR) && s->kind != PLY_ATTR_INTS)
            report_fail("%s: PLY_ATTR_PAIR with kind %s (a pair's kind is PLY_ATTR_INTS)", at, kind_name(s->kind)),
                problems++;
        if ((s->flags & PLY_ATTR_SCALAR_OR_LIST) && (s->kind == PLY_ATTR_BOOL || s->kind == PLY_ATTR_STRING))
            report_fail("%s: PLY_ATTR_SCALAR_OR_LIST with kind %s (it needs INT, INTS, FLOAT or FLOATS)", at,
                        kind_name(s->kind)), problems++;
        if ((s->flags & PLY_ATTR_REQUIRED) && s->default_text)
            report_fail("%s: PLY_ATTR_REQUIRED with default \"%s\" (a required attribute has no default; "
                        "default_text must be NULL)", at, s->default_text), problems++;
        if (s->default_text) {
            const char *d = s->default_text;
            char trimmed[128];
            while (isspace((unsigned char)*d)) d++;
            size_t n = strlen(d);
            while (n && isspace((unsigned char)d[n - 1])) n--;
            if (n == 0 || n >= sizeof trimmed)
                report_fail("%s: default \"%.60s\" is %s (NULL when there is none)", at, s->default_text,
                            n ? "longer than 127 characters" : "empty"), problems++;
            else {
                memcpy(trimmed, d, n);
                trimmed[n] = '\0';
                if (!default_fits(s, trimmed))
                    report_fail("%s: default \"%s\" does not read as kind %s%s%s (e.g. \"3\", \"0.5\", \"true\", "
                                "\"[1, 1]\")", at, trimmed, kind_name(s->kind),
                                (s->flags & PLY_ATTR_PAIR) ? " or a pair" : "",
                                (s->flags & PLY_ATTR_SCALAR_OR_LIST) ? " (scalar or list)" : ""), problems++;
            }
        }
        if (!s->doc || !*s->doc || strchr(s->doc, '\n'))
            report_fail("%s: doc is %s: it must be one line saying what the attribute does", at,
                        !s->doc ? "NULL" : !*s->doc ? "empty" : "more than one line"), problems++;
    }
    if (!problems)
        report_pass("type %s: attribute schema: %d attribute(s), names unique and identifier-like, kinds and flags "
                    "valid, defaults read as their kinds, each with a doc line", type, count);
}
