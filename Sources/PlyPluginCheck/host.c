/*
 * The minimal host: every ply_host slot, implemented as plugin.h documents
 * it, with what a checker wants to see on top:
 *  - set_error keeps the status and message per thread, so a check can ask
 *    "did the failing call say why?";
 *  - log goes into the report as an indented line, never to stdout as noise;
 *  - alloc returns 64-byte aligned memory and counts live allocations, so a
 *    check can compare the count before create and after destroy;
 *  - parallel_for really runs chunks on a second thread (one new pthread per
 *    extra chunk), so a callback that is not reentrant shows up;
 *  - create_layer looks types up across every loaded library (the plugin
 *    first, then each --with library in order);
 *  - fill_uniform draws from a seeded SplitMix64, so runs are reproducible.
 */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ errors */

static _Thread_local ply_status error_status;
static _Thread_local bool error_set;
static _Thread_local char error_message[1024];

static void host_set_error(const ply_host *host, ply_status status, const char *message) {
    (void)host;
    error_status = status;
    error_set = true;
    snprintf(error_message, sizeof error_message, "%s", message ? message : "(NULL message)");
}

void host_error_clear(void) {
    error_status = PLY_OK;
    error_set = false;
    error_message[0] = '\0';
}
bool host_error_was_set(void) { return error_set; }
ply_status host_error_status(void) { return error_status; }
const char *host_error_message(void) { return error_set ? error_message : "(no message set)"; }

/* ------------------------------------------------------------ log */

static void host_log(const ply_host *host, ply_log_level level, const char *message) {
    static const char *const names[] = {"debug", "info", "warning", "error"};
    (void)host;
    report_note("plugin log (%s): %s", (unsigned)level < 4 ? names[level] : "?", message ? message : "(NULL)");
}

/* ------------------------------------------------------------ memory */

static atomic_long live_allocations;
static atomic_long bad_frees;

/* Each block carries a header before the 64-byte aligned payload so that
 * free can tell a pointer from alloc from anything else. */
#define HEADER 64
static const uint64_t alloc_magic = 0x504c59414c4c4f43ull; /* "PLYALLOC" */
static const uint64_t freed_magic = 0x504c59465245454full; /* "PLYFREEO" */

static void *host_alloc(const ply_host *host, size_t bytes) {
    (void)host;
    size_t total = HEADER + ((bytes + 63) / 64) * 64;
    if (bytes > SIZE_MAX - 2 * HEADER) return NULL;
    unsigned char *block = aligned_alloc(64, total);
    if (!block) return NULL;
    memcpy(block, &alloc_magic, sizeof alloc_magic);
    atomic_fetch_add(&live_allocations, 1);
    return block + HEADER;
}

static void host_free(const ply_host *host, void *ptr) {
    uint64_t magic;
    (void)host;
    if (!ptr) return;
    unsigned char *block = (unsigned char *)ptr - HEADER;
    memcpy(&magic, block, sizeof magic);
    if (magic != alloc_magic) { /* double free or a foreign pointer: count it, do not crash */
        atomic_fetch_add(&bad_frees, 1);
        return;
    }
    memcpy(block, &freed_magic, sizeof freed_magic);
    atomic_fetch_sub(&live_allocations, 1);
    free(block);
}

long host_live_allocations(void) { return atomic_load(&live_allocations); }
long host_bad_frees(void) { return atomic_load(&bad_frees); }

/* ------------------------------------------------------------ threads */

static int thread_total = 2;

typedef struct chunk {
    ply_parallel_fn fn;
    void *context;
    int64_t begin, end;
} chunk;

static void *run_chunk(void *arg) {
    chunk *c = arg;
    c->fn(c->context, c->begin, c->end);
    return NULL;
}

static void host_parallel_for(const ply_host *host, int64_t n, int64_t grain, ply_parallel_fn fn, void *context) {
    (void)host;
    if (n <= 0 || !fn) return;
    int64_t min_chunk = grain > 0 ? grain : 1;
    int64_t chunks = (n + min_chunk - 1) / min_chunk;
    if (chunks > thread_total) chunks = thread_total;
    if (chunks <= 1) {
        fn(context, 0, n);
        return;
    }
    chunk work[8];
    pthread_t threads[8];
    bool started[8] = {false};
    for (int64_t c = 0; c < chunks; c++)
        work[c] = (chunk){.fn = fn, .context = context, .begin = n * c / chunks, .end = n * (c + 1) / chunks};
    for (int64_t c = 1; c < chunks; c++) started[c] = pthread_create(&threads[c], NULL, run_chunk, &work[c]) == 0;
    run_chunk(&work[0]);
    for (int64_t c = 1; c < chunks; c++) {
        if (started[c]) pthread_join(threads[c], NULL);
        else run_chunk(&work[c]); /* no thread to spare: run it here */
    }
}

static int32_t host_thread_count(const ply_host *host) {
    (void)host;
    return thread_total;
}

/* ------------------------------------------------------------ layer types */

static const type_info *registry[1024];
static int registry_count;

void host_copy_type(const ply_layer_type *src, type_info *dst, const char *library) {
    memset(dst, 0, sizeof *dst);
    dst->original = src;
    dst->library = library;
    size_t n = src->struct_size < sizeof dst->t ? src->struct_size : sizeof dst->t;
    memcpy(&dst->t, src, n);
}

void host_register_types(const type_info *types, int count) {
    for (int i = 0; i < count && registry_count < (int)(sizeof registry / sizeof registry[0]); i++)
        registry[registry_count++] = &types[i];
}

const type_info *host_find_type(const char *name) {
    for (int i = 0; i < registry_count; i++)
        if (registry[i]->t.name && strcmp(registry[i]->t.name, name) == 0) return registry[i];
    return NULL;
}

static ply_status host_create_layer(const ply_host *host, const char *type_name, const ply_attrs *attrs,
                                    const ply_layer_type **type_out, ply_layer **layer_out) {
    if (!type_name || !type_out || !layer_out) {
        host_set_error(host, PLY_ERR_INVALID_ARGUMENT, "create_layer: NULL type name or output pointer");
        return PLY_ERR_INVALID_ARGUMENT;
    }
    const type_info *ti = host_find_type(type_name);
    if (!ti || !ti->t.create) {
        char message[300];
        snprintf(message, sizeof message,
                 "no loaded library provides layer type '%s' (load it with --with LIB.so)", type_name);
        host_set_error(host, PLY_ERR_NOT_FOUND, message);
        return PLY_ERR_NOT_FOUND;
    }
    *type_out = &ti->t; /* the zero-padded copy: safe to read in full */
    return ti->t.create(host, attrs, layer_out);
}

/* ------------------------------------------------------------ attributes */

static const char *kind_name(int32_t kind) {
    switch (kind) {
    case PLY_ATTR_INT: return "an integer";
    case PLY_ATTR_FLOAT: return "a float";
    case PLY_ATTR_BOOL: return "a boolean";
    case PLY_ATTR_STRING: return "a string";
    case PLY_ATTR_INTS: return "a list of integers";
    case PLY_ATTR_FLOATS: return "a list of floats";
    default: return "an unknown kind";
    }
}

/* PLY_ERR_NOT_FOUND without a message when absent, as plugin.h says. */
static const ply_attr *find_attr(const ply_attrs *attrs, const char *name) {
    if (!attrs || !name) return NULL;
    for (int32_t i = 0; i < attrs->count; i++)
        if (attrs->items[i].name && strcmp(attrs->items[i].name, name) == 0) return &attrs->items[i];
    return NULL;
}

static ply_status wrong_kind(const ply_host *host, const ply_attr *a, const char *expected) {
    char message[300];
    if (a->kind == PLY_ATTR_INTS)
        snprintf(message, sizeof message, "attribute '%s' must be %s, got a list of %d integers", a->name, expected,
                 (int)a->count);
    else
        snprintf(message, sizeof message, "attribute '%s' must be %s, got %s", a->name, expected, kind_name(a->kind));
    host_set_error(host, PLY_ERR_INVALID_ARGUMENT, message);
    return PLY_ERR_INVALID_ARGUMENT;
}

static ply_status host_attr_int(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t *out) {
    const ply_attr *a = find_attr(attrs, name);
    if (!a) return PLY_ERR_NOT_FOUND;
    if (a->kind != PLY_ATTR_INT && a->kind != PLY_ATTR_BOOL) return wrong_kind(host, a, "an integer");
    *out = a->v.i;
    return PLY_OK;
}

static ply_status host_attr_float(const ply_host *host, const ply_attrs *attrs, const char *name, double *out) {
    const ply_attr *a = find_attr(attrs, name);
    if (!a) return PLY_ERR_NOT_FOUND;
    if (a->kind == PLY_ATTR_FLOAT) *out = a->v.f;
    else if (a->kind == PLY_ATTR_INT) *out = (double)a->v.i;
    else return wrong_kind(host, a, "a number");
    return PLY_OK;
}

static ply_status host_attr_bool(const ply_host *host, const ply_attrs *attrs, const char *name, int32_t *out) {
    const ply_attr *a = find_attr(attrs, name);
    if (!a) return PLY_ERR_NOT_FOUND;
    if (a->kind == PLY_ATTR_BOOL) *out = a->v.i != 0;
    else if (a->kind == PLY_ATTR_INT && (a->v.i == 0 || a->v.i == 1)) *out = (int32_t)a->v.i;
    else return wrong_kind(host, a, "a boolean (or the integer 0 or 1)");
    return PLY_OK;
}

static ply_status host_attr_string(const ply_host *host, const ply_attrs *attrs, const char *name, const char **out) {
    const ply_attr *a = find_attr(attrs, name);
    if (!a) return PLY_ERR_NOT_FOUND;
    if (a->kind != PLY_ATTR_STRING || !a->v.s) return wrong_kind(host, a, "a string");
    *out = a->v.s;
    return PLY_OK;
}

static ply_status host_attr_pair(const ply_host *host, const ply_attrs *attrs, const char *name, int64_t out[2]) {
    const ply_attr *a = find_attr(attrs, name);
    if (!a) return PLY_ERR_NOT_FOUND;
    if (a->kind == PLY_ATTR_INT) {
        out[0] = out[1] = a->v.i;
    } else if (a->kind == PLY_ATTR_INTS && a->count == 2 && a->v.ints) {
        out[0] = a->v.ints[0];
        out[1] = a->v.ints[1];
    } else {
        return wrong_kind(host, a, "an integer or a list of exactly 2 integers");
    }
    return PLY_OK;
}

/* ------------------------------------------------------------ random */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_state;

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void host_fill_uniform(const ply_host *host, float *data, int64_t n, float low, float high) {
    (void)host;
    if (!data || n <= 0) return;
    pthread_mutex_lock(&rng_lock);
    for (int64_t i = 0; i < n; i++) {
        float u = (float)(splitmix64(&rng_state) >> 40) / 16777216.0f; /* [0, 1) */
        data[i] = low + (high - low) * u;
    }
    pthread_mutex_unlock(&rng_lock);
}

/* ------------------------------------------------------------ the tables */

static ply_host table, other_major;

void host_init(int threads, uint64_t seed) {
    thread_total = threads < 1 ? 1 : threads > 8 ? 8 : threads;
    rng_state = seed;
    table = (ply_host){
        .struct_size = (uint32_t)sizeof(ply_host),
        .abi_version = PLY_ABI_VERSION,
        .host_data = NULL,
        .set_error = host_set_error,
        .log = host_log,
        .alloc = host_alloc,
        .free = host_free,
        .parallel_for = host_parallel_for,
        .thread_count = host_thread_count,
        .create_layer = host_create_layer,
        .attr_int = host_attr_int,
        .attr_float = host_attr_float,
        .attr_bool = host_attr_bool,
        .attr_string = host_attr_string,
        .attr_pair = host_attr_pair,
        .fill_uniform = host_fill_uniform,
    };
    other_major = table;
    other_major.abi_version = ((uint32_t)(PLY_ABI_VERSION_MAJOR + 1) << 16) | 0u;
}

const ply_host *host_table(void) { return &table; }
const ply_host *host_table_other_major(void) { return &other_major; }
