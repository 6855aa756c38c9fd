/*
 * user_activation's signature parser (user_activation_signature.c), private to the plugin.
 */
#ifndef PLY_USER_ACTIVATION_SIGNATURE_H
#define PLY_USER_ACTIVATION_SIGNATURE_H

#include <stdint.h>

#include "ply/plugin.h"
#include "plugin_support.h"

PLY_INTERNAL_BEGIN

#define UA_MAX_ARGS 8 /* x plus at most 7 extra parameters */

/* The end of every signature error: what is supported. */
#define UA_SUPPORTED                                                                                  \
    "supported signatures: float(float), float(float, float, ...) and double(double[, double, ...]) " \
    "(at most 8 parameters, extra ones taken from `params`), and the vectorised "                     \
    "void(const float *, float *, int64_t)"

typedef enum { UA_F32, UA_F64 } ua_precision;

/* A parsed C type: the normalised base ("float", "double", "void", "int64",
 * or whatever else was written), the pointer depth and whether the pointee is
 * const. */
typedef struct {
    char base[48];
    int pointers;
    int pointee_const;
} ua_type;

typedef struct {
    ua_type ret;
    ua_type params[UA_MAX_ARGS + 1];
    int count;
} ua_signature;

/* The call form of a supported signature. */
typedef struct {
    int vectorised;         /* void(const float *, float *, int64_t): once per tensor */
    ua_precision precision; /* of a scalar form's arguments and result */
    int32_t arity;          /* arguments of a scalar form (x and the params); 3 when vectorised */
} ua_form;

/* Parses "ret [name] (type [name], ...)" into s. Returns 0 with `why` set (a static string) on a
 * syntax error. */
int ua_parse_signature(const char *text, ua_signature *s, const char **why);
/* The call form of a parsed signature; an error naming the text (and what is supported) when it
 * is none. `out` is written only on PLY_OK. */
ply_status ua_classify(const ply_host *host, const ua_signature *s, const char *text, ua_form *out);

PLY_INTERNAL_END

#endif
