/*
 * The derived-weight cache's validity check and hash (see conv_weight_cache.h), shared by
 * Winograd's U (conv_winograd.c) and the panels' packed weights (conv_panels.c).
 */
#include "plugin_support.h"

#include "conv_weight_cache.h"

#include <string.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull

static inline uint64_t rotl64(uint64_t v, int r) { return (v << r) | (v >> (64 - r)); }
static inline uint64_t round64(uint64_t acc, uint64_t v) { return rotl64(acc + v * P2, 31) * P1; }

// Four independent lanes of xxHash64's round over 8-byte words, merged and avalanched as xxHash64
// merges and finishes: every bit of the input reaches every bit of the result.
uint64_t conv_weight_hash(const float *w, size_t n) {
    const unsigned char *p = (const unsigned char *)w;
    size_t bytes = n * sizeof(float), i = 0;
    uint64_t a[4] = {P1 + P2, P2, 0, 0 - P1};
    for (; i + 32 <= bytes; i += 32)
        for (int l = 0; l < 4; l++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * l, 8);
            a[l] = round64(a[l], v);
        }
    uint64_t h = rotl64(a[0], 1) + rotl64(a[1], 7) + rotl64(a[2], 12) + rotl64(a[3], 18);
    for (int l = 0; l < 4; l++) h = (h ^ round64(0, a[l])) * P1 + P4;
    h += (uint64_t)bytes;
    for (; i < bytes; i += 4) {
        uint32_t v;
        memcpy(&v, p + i, 4);
        h = rotl64(h ^ ((uint64_t)v * P1), 23) * P2 + P3;
    }
    h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
    return h;
}

// The weights' check hash on the host's threads: segments of at least HASH_SEGMENT_FLOATS floats
// (at most HASH_MAX_SEGMENTS of them; both fixed by n alone, so the value does not depend on the
// thread count) hashed apart, then their hashes hashed. A folded conv (trainable=false, which
// residual and inception blocks run in evaluation) hashes its weights on every forward, and
// one thread did it alone: 9.5 GB/s measured (thread CPU, min of 50), 62 us for a 128->128 3x3
// conv, 240 us for 256->256, 960 us for 512->512 -- ResNet-18 at batch 1 spent about 250 us
// per forward there with the other thread idle, at batch 16 about 3.9 ms.
// 16K floats (64 KB): a 128->128 conv splits 9 segments 4 + 5 on two threads.
#define HASH_SEGMENT_FLOATS ((size_t)1 << 14)
#define HASH_MAX_SEGMENTS 64

typedef struct {
    const float *w;
    size_t n, seg; // seg floats per segment, the last one shorter
    uint64_t *h;
} hash_job;

static void hash_segments(void *ctx, int64_t s0, int64_t s1) {
    const hash_job *j = ctx;
    for (int64_t s = s0; s < s1; s++) {
        size_t b = (size_t)s * j->seg, e = b + j->seg < j->n ? b + j->seg : j->n;
        j->h[s] = conv_weight_hash(j->w + b, e - b);
    }
}

static uint64_t weights_hash(const ply_host *host, int64_t threads, const float *w, size_t n) {
    size_t segs = (n + HASH_SEGMENT_FLOATS - 1) / HASH_SEGMENT_FLOATS;
    if (segs <= 1) return conv_weight_hash(w, n);
    if (segs > HASH_MAX_SEGMENTS) segs = HASH_MAX_SEGMENTS;
    uint64_t h[HASH_MAX_SEGMENTS];
    hash_job j = {.w = w, .n = n, .seg = (n + segs - 1) / segs, .h = h};
    segs = (n + j.seg - 1) / j.seg;
    if (threads > 1) host->parallel_for(host, (int64_t)segs, 1, hash_segments, &j);
    else hash_segments(&j, 0, (int64_t)segs);
    // the segments' hashes as 2 * segs floats' bits (conv_weight_hash reads bytes through memcpy)
    return conv_weight_hash((const float *)(const void *)h, 2 * segs);
}

ply_status conv_weight_cache_check(conv_weight_cache *cache, const ply_host *host, int64_t threads, const float *w,
                                   size_t n, int form, int host_only, size_t floats, const char *what, float **data,
                                   int *stale) {
    uint64_t gen = 0;
    int has_gen = ply_host_param_generation(host, &gen);
    *stale = 0;
    if (cache->form == form && host_only && has_gen && cache->has_generation && cache->generation == gen) {
        *data = cache->data;
        return PLY_OK;
    }
    uint64_t hash = weights_hash(host, threads, w, n);
    cache->generation = gen;
    cache->has_generation = has_gen;
    if (cache->form == form && cache->hash == hash) {
        *data = cache->data;
        return PLY_OK;
    }
    cache->form = 0;
    if (floats > cache->data_floats) {
        host->free(host, cache->data);
        cache->data = host->alloc(host, floats * sizeof(float));
        cache->data_floats = cache->data ? floats : 0;
        if (!cache->data)
            return ply_errorf(host, PLY_ERR_OUT_OF_MEMORY, "conv2d: cannot allocate %zu bytes for %s",
                              floats * sizeof(float), what);
    }
    // the caller fills data now (conv_weight_cache.h), before the cache is used again
    cache->hash = hash;
    cache->form = form;
    *data = cache->data;
    *stale = 1;
    return PLY_OK;
}

void conv_weight_cache_free(const ply_host *host, conv_weight_cache *cache) {
    host->free(host, cache->data);
    memset(cache, 0, sizeof *cache);
}
