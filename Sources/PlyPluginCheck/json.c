/*
 * A small JSON parser, enough for the golden files: objects, arrays,
 * strings (the usual escapes; \uXXXX becomes UTF-8, surrogate pairs are not
 * joined), numbers, true/false/null. Numbers keep
 * whether they were written as integers (no '.', 'e' or 'E'), which is how
 * an attribute becomes PLY_ATTR_INT rather than PLY_ATTR_FLOAT.
 */
#include "check.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const char *text, *p, *end;
    char *err;
    size_t err_size;
    bool failed;
} parser;

static void fail(parser *ps, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void fail(parser *ps, const char *format, ...) {
    if (ps->failed) return;
    ps->failed = true;
    int line = 1;
    for (const char *q = ps->text; q < ps->p; q++) line += *q == '\n';
    int k = snprintf(ps->err, ps->err_size, "line %d: ", line);
    va_list args;
    va_start(args, format);
    if (k >= 0 && (size_t)k < ps->err_size) vsnprintf(ps->err + k, ps->err_size - (size_t)k, format, args);
    va_end(args);
}

static void skip_space(parser *ps) {
    while (ps->p < ps->end && isspace((unsigned char)*ps->p)) ps->p++;
}

static bool parse_value(parser *ps, jval *out, int depth);

static char *parse_string_raw(parser *ps) {
    /* ps->p is at the opening quote */
    ps->p++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    if (!s) { fail(ps, "out of memory"); return NULL; }
    while (ps->p < ps->end && *ps->p != '"') {
        char c = *ps->p++;
        char buf[4];
        size_t k = 1;
        buf[0] = c;
        if (c == '\\') {
            if (ps->p >= ps->end) break;
            char e = *ps->p++;
            switch (e) {
            case '"': case '\\': case '/': buf[0] = e; break;
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                unsigned cp = 0;
                for (int i = 0; i < 4; i++) {
                    char h = ps->p < ps->end ? *ps->p++ : 0;
                    if (!isxdigit((unsigned char)h)) { fail(ps, "bad \\u escape"); free(s); return NULL; }
                    int digit = isdigit((unsigned char)h) ? h - '0' : tolower((unsigned char)h) - 'a' + 10;
                    cp = cp * 16 + (unsigned)digit;
                }
                if (cp < 0x80) buf[0] = (char)cp;
                else if (cp < 0x800) { buf[0] = (char)(0xC0 | (cp >> 6)); buf[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
                else {
                    buf[0] = (char)(0xE0 | (cp >> 12));
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    buf[2] = (char)(0x80 | (cp & 0x3F));
                    k = 3;
                }
                break;
            }
            default: fail(ps, "bad escape '\\%c'", e); free(s); return NULL;
            }
        }
        if (len + k + 1 > cap) {
            cap *= 2;
            char *t = realloc(s, cap);
            if (!t) { free(s); fail(ps, "out of memory"); return NULL; }
            s = t;
        }
        memcpy(s + len, buf, k);
        len += k;
    }
    if (ps->p >= ps->end) { fail(ps, "unterminated string"); free(s); return NULL; }
    ps->p++; /* closing quote */
    s[len] = '\0';
    return s;
}

/* Arrays and objects grow in place; the element array is trimmed at the end. */
static bool push(parser *ps, jval *v, size_t *cap, bool with_key) {
    if (v->n < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    jval *items = realloc(v->items, ncap * sizeof *items);
    if (!items) { fail(ps, "out of memory"); return false; }
    v->items = items;
    if (with_key) {
        char **keys = realloc(v->keys, ncap * sizeof *keys);
        if (!keys) { fail(ps, "out of memory"); return false; }
        v->keys = keys;
    }
    *cap = ncap;
    return true;
}

static bool parse_container(parser *ps, jval *out, int depth, bool object) {
    char close = object ? '}' : ']';
    size_t cap = 0;
    out->kind = object ? J_OBJ : J_ARR;
    ps->p++;
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == close) { ps->p++; return true; }
    for (;;) {
        skip_space(ps);
        if (!push(ps, out, &cap, object)) return false;
        if (object) {
            if (ps->p >= ps->end || *ps->p != '"') { fail(ps, "expected a key string"); return false; }
            char *key = parse_string_raw(ps);
            if (!key) return false;
            out->keys[out->n] = key;
            skip_space(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected ':' after key \"%s\"", key);
                free(key);
                return false;
            }
            ps->p++;
        }
        memset(&out->items[out->n], 0, sizeof out->items[out->n]);
        out->n++;
        if (!parse_value(ps, &out->items[out->n - 1], depth + 1)) return false;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == close) { ps->p++; return true; }
        fail(ps, "expected ',' or '%c'", close);
        return false;
    }
}

static bool parse_value(parser *ps, jval *out, int depth) {
    memset(out, 0, sizeof *out);
    if (depth > 64) { fail(ps, "nested too deeply"); return false; }
    skip_space(ps);
    if (ps->p >= ps->end) { fail(ps, "unexpected end of file"); return false; }
    char c = *ps->p;
    if (c == '{' || c == '[') return parse_container(ps, out, depth, c == '{');
    if (c == '"') {
        out->kind = J_STR;
        out->str = parse_string_raw(ps);
        return out->str != NULL;
    }
    static const struct { const char *word; jkind kind; bool b; } words[] = {
        {"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(words[i].word);
        if ((size_t)(ps->end - ps->p) >= k && memcmp(ps->p, words[i].word, k) == 0) {
            out->kind = words[i].kind;
            out->b = words[i].b;
            ps->p += k;
            return true;
        }
    }
    if (c == '-' || isdigit((unsigned char)c)) {
        const char *start = ps->p;
        char *stop;
        out->kind = J_NUM;
        out->num = strtod(start, &stop);
        if (stop == start) { fail(ps, "bad number"); return false; }
        out->is_int = true;
        for (const char *q = start; q < stop; q++)
            if (*q == '.' || *q == 'e' || *q == 'E') out->is_int = false;
        ps->p = stop;
        return true;
    }
    fail(ps, "unexpected character '%c'", c);
    return false;
}

static void free_inner(jval *v) {
    if (v->kind == J_STR) free(v->str);
    if (v->kind == J_ARR || v->kind == J_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            free_inner(&v->items[i]);
            if (v->kind == J_OBJ) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
}

void json_free(jval *v) {
    if (!v) return;
    free_inner(v);
    free(v);
}

jval *json_parse_file(const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, err_size, "cannot open"); return NULL; }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    for (;;) {
        if (!text) { fclose(f); snprintf(err, err_size, "out of memory"); return NULL; }
        len += fread(text + len, 1, cap - len, f);
        if (len < cap) break;
        cap *= 2;
        char *t = realloc(text, cap);
        if (!t) free(text);
        text = t;
    }
    fclose(f);
    parser ps = {.text = text, .p = text, .end = text + len, .err = err, .err_size = err_size};
    jval *root = calloc(1, sizeof *root);
    bool ok = root && parse_value(&ps, root, 0);
    if (ok) {
        skip_space(&ps);
        if (ps.p != ps.end) { fail(&ps, "text after the JSON value"); ok = false; }
    }
    if (!root) snprintf(err, err_size, "out of memory");
    free(text);
    if (!ok) { json_free(root); return NULL; }
    return root;
}

const jval *json_get(const jval *object, const char *key) {
    if (!object || object->kind != J_OBJ) return NULL;
    for (size_t i = 0; i < object->n; i++)
        if (strcmp(object->keys[i], key) == 0) return &object->items[i];
    return NULL;
}
