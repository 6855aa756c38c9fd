/*
 * user_activation's `signature` attribute: the C declaration the user writes ("float(float)",
 * "double f(double x, double a)", "void(const float *in, float *out, int64_t n)") parsed into
 * types, then classified into one of the call forms user_activation.c prepares with libffi.
 * Functions of the text alone: no state, no allocation (ua_classify reports through the host).
 */
#include <string.h>

#include "ply/plugin.h"
#include "plugin_support.h"
#include "user_activation_signature.h"

static int is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
static void skip_space(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r') (*p)++;
}

/* Words that belong to a type; any other identifier is a (function or
 * parameter) name and is ignored. */
static int is_type_word(const char *w) {
    static const char *const words[] = {"const", "volatile", "signed", "unsigned", "short", "long", "int", "char",
                                        "float", "double", "void", "int8_t", "int16_t", "int32_t", "int64_t",
                                        "uint8_t", "uint16_t", "uint32_t", "uint64_t", "size_t", "ssize_t",
                                        "ptrdiff_t", "intptr_t", "uintptr_t", "_Bool", "bool"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(w, words[i]) == 0) return 1;
    return 0;
}

/* Parses "[const] words [const] [*[const]]... [name]"; returns 0 on a syntax error. */
static int parse_type(const char **p, ua_type *t, int allow_name) {
    char words[6][16];
    int nwords = 0, is_const = 0, have_name = 0;
    memset(t, 0, sizeof *t);
    for (;;) {
        skip_space(p);
        if (is_ident_start(**p)) {
            char w[32];
            size_t n = 0;
            while (is_ident_char(**p)) {
                if (n + 1 < sizeof w) w[n++] = **p;
                (*p)++;
            }
            w[n] = 0;
            if (have_name) return 0; /* two names in a row */
            if (!is_type_word(w)) {
                if (!allow_name || nwords == 0) {
                    /* an unknown type name: keep it so the message can show it */
                    if (nwords < 6) snprintf(words[nwords++], sizeof words[0], "%s", w);
                    continue;
                }
                have_name = 1;
                continue;
            }
            if (t->pointers > 0) {
                if (strcmp(w, "const") == 0 || strcmp(w, "volatile") == 0) continue; /* `float * const` */
                return 0;
            }
            if (strcmp(w, "const") == 0) { is_const = 1; continue; }
            if (strcmp(w, "volatile") == 0) continue;
            if (nwords == 6) return 0;
            snprintf(words[nwords++], sizeof words[0], "%s", w);
        } else if (**p == '*') {
            if (nwords == 0 || have_name) return 0;
            if (t->pointers == 0) t->pointee_const = is_const;
            t->pointers++;
            (*p)++;
        } else {
            break;
        }
    }
    if (nwords == 0) return 0;
    /* Normalise the integer spellings that are int64_t on LP64 systems. */
    char joined[48] = "";
    for (int i = 0; i < nwords; i++) {
        if (i) strncat(joined, " ", sizeof joined - strlen(joined) - 1);
        strncat(joined, words[i], sizeof joined - strlen(joined) - 1);
    }
    static const char *const int64_spellings[] = {"int64_t", "long", "long int", "signed long", "signed long int",
                                                  "long long", "long long int", "signed long long",
                                                  "signed long long int", "ptrdiff_t", "ssize_t", "intptr_t"};
    for (size_t i = 0; i < sizeof int64_spellings / sizeof int64_spellings[0]; i++) {
        if (strcmp(joined, int64_spellings[i]) == 0) {
            if (sizeof(long) != 8 && strncmp(joined, "long", 4) == 0 && strncmp(joined, "long long", 9) != 0) break;
            snprintf(t->base, sizeof t->base, "int64");
            return 1;
        }
    }
    snprintf(t->base, sizeof t->base, "%s", joined);
    return 1;
}

/* Parses "ret [name] (type [name], ...)". Returns 0 with `why` set on failure. */
int ua_parse_signature(const char *text, ua_signature *s, const char **why) {
    const char *p = text;
    memset(s, 0, sizeof *s);
    *why = "it is not of the form `return_type(parameter, ...)`";
    if (!parse_type(&p, &s->ret, 1)) return 0;
    skip_space(&p);
    if (*p != '(') return 0;
    p++;
    skip_space(&p);
    if (*p == ')') {
        *why = "the function takes no input";
        return 0;
    }
    for (;;) {
        if (s->count == UA_MAX_ARGS + 1) {
            *why = "it has more than 8 parameters";
            return 0;
        }
        if (!parse_type(&p, &s->params[s->count], 1)) return 0;
        s->count++;
        skip_space(&p);
        if (*p == ',') { p++; continue; }
        if (*p == ')') { p++; break; }
        return 0;
    }
    skip_space(&p);
    if (*p == ';') p++;
    skip_space(&p);
    if (*p != 0) {
        *why = "there is text after the parameter list";
        return 0;
    }
    if (s->count == 1 && strcmp(s->params[0].base, "void") == 0 && s->params[0].pointers == 0) {
        *why = "the function takes no input";
        return 0;
    }
    return 1;
}

static int is_scalar(const ua_type *t, const char *base) { return t->pointers == 0 && strcmp(t->base, base) == 0; }

/* Classifies a parsed signature; reports an error naming the text. */
ply_status ua_classify(const ply_host *host, const ua_signature *s, const char *text, ua_form *out) {
    if (is_scalar(&s->ret, "void")) {
        if (s->count == 3 && s->params[0].pointers == 1 && strcmp(s->params[0].base, "float") == 0 &&
            s->params[1].pointers == 1 && strcmp(s->params[1].base, "float") == 0 && !s->params[1].pointee_const &&
            is_scalar(&s->params[2], "int64")) {
            *out = (ua_form){.vectorised = 1, .precision = UA_F32, .arity = 3};
            return PLY_OK;
        }
        if (s->count == 3 && s->params[0].pointers == 1 && s->params[1].pointers == 1 && s->params[2].pointers == 0 &&
            !is_scalar(&s->params[2], "int64"))
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "user_activation: attribute 'signature' \"%s\": the element count must be a 64-bit "
                              "integer (int64_t or long), not '%s'; " UA_SUPPORTED,
                              text, s->params[2].base);
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "user_activation: attribute 'signature' \"%s\" is not supported; " UA_SUPPORTED, text);
    }
    const char *base = is_scalar(&s->ret, "float") ? "float" : is_scalar(&s->ret, "double") ? "double" : NULL;
    if (base) {
        int ok = 1;
        for (int i = 0; i < s->count; i++) ok = ok && is_scalar(&s->params[i], base);
        if (ok && s->count <= UA_MAX_ARGS) {
            *out = (ua_form){.vectorised = 0, .precision = base[0] == 'f' ? UA_F32 : UA_F64, .arity = s->count};
            return PLY_OK;
        }
        if (s->count > UA_MAX_ARGS)
            return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                              "user_activation: attribute 'signature' \"%s\" has %d parameters; at most %d are "
                              "supported",
                              text, s->count, UA_MAX_ARGS);
        return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                          "user_activation: attribute 'signature' \"%s\": every parameter of a scalar %s function "
                          "must be %s too; " UA_SUPPORTED,
                          text, base, base);
    }
    return ply_errorf(host, PLY_ERR_INVALID_ARGUMENT,
                      "user_activation: attribute 'signature' \"%s\" is not supported (return type '%s%s'); " UA_SUPPORTED,
                      text, s->ret.base, s->ret.pointers ? " *" : "");
}
