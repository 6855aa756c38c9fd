/*
 * A layer's weights in a derived form (Winograd's U, conv_panels.c's packed panels), kept from one
 * forward to the next and made again only when the weights change: the validity check both share.
 */
#ifndef PLY_CONV_WEIGHT_CACHE_H
#define PLY_CONV_WEIGHT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "plugin_support.h"

PLY_INTERNAL_BEGIN

/**
 * Derived weights, kept from one forward to the next. The host writes weights through get_param's
 * pointers between calls (optimizer steps, loading) without telling the layer, and a composite
 * writes its folded children's weights itself, so before each use the cache checks that the
 * weights are still the ones its data was made from:
 *  - when the host's param_generation (ABI 1.3) equals the one of the last check and the caller
 *    says the weights change only through the host or with has_generation cleared since
 *    (`host_only`: conv.c, whose set_training clears it, and every writer that does not move the
 *    generation, ply_fold_write and ConvBatchNormFold, calls set_training after writing), the data
 *    is used as is (ResNet-18's folded convs hashed 44 MB of weights per forward before);
 *  - otherwise a 64-bit hash of the weights (xxHash64's rounds over 4 lanes, on segments of
 *    the weights split over the host's threads, then over the segments' hashes) is compared with
 *    the one the data was made from, and the data is made again when they differ.
 * The hash replaced a full copy of the weights compared with memcmp (1x the layer's weights
 * kept, for the whole life of the layer); two weight versions hashing alike go unnoticed, with
 * a chance of 2^-64 per change. Zero-initialised = empty; owned by the layer, one thread at a
 * time (the layer's).
 */
typedef struct {
    int form;            // what data was made for (Winograd's tile side; 1 for the panels); 0: nothing kept
    float *data;         // the derived weights
    size_t data_floats;  // capacity of data
    uint64_t hash;       // the hash of the weights data was made from
    uint64_t generation; // host param_generation at the last check (valid when has_generation)
    int has_generation;
} conv_weight_cache;

/**
 * The check above for the weights w [0, n) and the form `form` (> 0): *stale = 0 and *data = the
 * kept data when they are the ones it was made from; else *stale = 1 and *data = room for `floats`
 * floats, which the caller MUST fill with that form of w before the cache is used again (the cache
 * already records the form and w's hash). The hash runs on `threads` threads of
 * host->parallel_for. PLY_ERR_OUT_OF_MEMORY (with a message naming `what`: "conv2d: cannot
 * allocate N bytes for <what>") leaves the cache empty but valid.
 */
ply_status conv_weight_cache_check(conv_weight_cache *cache, const ply_host *host, int64_t threads, const float *w,
                                   size_t n, int form, int host_only, size_t floats, const char *what, float **data,
                                   int *stale);

/** A 64-bit hash of n floats' bits (xxHash64's round and avalanche, 4 lanes; not xxHash64's
 *  values). */
uint64_t conv_weight_hash(const float *w, size_t n);

/** Free what the cache holds (host->free) and leave it empty. */
void conv_weight_cache_free(const ply_host *host, conv_weight_cache *cache);

PLY_INTERNAL_END
#endif
