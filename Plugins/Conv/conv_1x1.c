/*
 * conv2d forward for pointwise (1x1, unpadded) layers: a product per image on
 * the input in place (see conv_1x1.h).
 */
#include "plugin_support.h"

#include "conv_1x1.h"
#include "conv_1x1_avx2.h"
#include "conv_1x1_product.h"

#include <string.h>

// Per image, below this many strips of 32 positions per part, an image's parts split the output
// channels instead of the positions.
#define MIN_STRIPS_PER_PART 4
// At most this many images per group on small planes (see group_images).
#define G_MAX 8

// At the AVX2 level every plane takes conv_1x1_avx2.c's product (the large planes' order): against
// the OpenBLAS path "auto" took there before (conv_gemm.c, Haswell kernels, one thread), cold, load
// ~15 on 2 cores (Benchmarks/pointwise_kernel.c), GFLOPS, one or two rounds: 56x56 64->256 60 / 53,
// 256->64 63 / 59, 256->128 71 / 66, 64->64 53, 53 / 48, 48; 28x28 512->128 69 / 68, 128->512 65 /
// 64, 192->64 60, 58 / 53, 54, 256->128 68, 75 / 59, 61; 14x14 256->1024 70 / 67, 1024->256 72 / 66,
// 480->192 67, 70 / 65, 64; 7x7 512->2048 48 / 47, 832->384 56, 55 / 52, 53, 2048->512 58, 55 / 57,
// 56; stride 2: 56x56 256->512 67 / 55, 14x14 1024->2048 49, 37 / 51, 49; batch 16: 14x14 1024->256
// 72, 70 / 73, 71, 7x7 2048->512 60, 57 / 59, 53, 56x56 64->256 59, 58 / 52, 47. Ahead or equal
// within the noise but on the 7x7 stride-2 layer (ResNet-50's last downsample, ~3% of its FLOPs).
int conv_1x1_fits(const conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->PH == 0 && g->PW == 0 && ply_cpu_level() >= PLY_CPU_AVX2;
}

static int strided(const conv_geom *g) { return g->SH != 1 || g->SW != 1; }


// At the AVX2 level on every plane (its product has one order, the large planes'): read in place, the weights
// are six streams K floats apart for the tile's broadcasts, packed one. Benchmarks/pointwise_kernel.c cold, 1
// thread, AMD EPYC Zen 3 (a helper's build on the other core), GFLOPS in place / packed, 2-4 alternating rounds:
// 7x7 512->2048 37, 40 / 43, 50; 2048->512 39, 59 / 53, 56; 832->384 28, 30 / 33, 35; 14x14 480->192 35, 36 /
// 39, 40; 1024->256 48, 70 / 68, 70; 256->1024 43, 45, 63, 64, 65, 66 / 45, 49, 50, 68, 68, 72; 64->256 23-27 /
// 25-29.
int conv_1x1_packs(const conv_geom *g) {
    return ply_cpu_level() < PLY_CPU_AVX512 || !conv_1x1_small_order(g->C, g->OH * g->OW);
}

// Small planes whose rows (P floats) lie pages apart, at batches above 1: the product packs each strip's
// rows together first (xq, see product), so that a tile's loads do not touch K pages. ResNet-50's
// 56x56 convs on 64 channels and 28x28 on 128 (GoogLeNet's 56x56 64->64): a strip's 64 or 128 rows are
// 64 or ~100 pages, beyond the L1 DTLB, and every tile walks them again for each of the OC/12 blocks
// of output channels. Benchmarks/pointwise_kernel.c cold, 1 thread (taskset -c 0), Intel Xeon model
// 207, loaded machine (load ~20 on 2 cores), alternating rounds, median GFLOPS before -> after, batch
// 16: 56x56 64->256 64.9 -> 79.4 (5 rounds: 63-76 -> 78-91), 64->64 44.7 -> 57.7 (5); 28x28 128->512
// 112.1 -> 124.3 (6 rounds: 107-115 -> 96-128; an earlier 7: 89.8 -> 108.4). The loss was the pages:
// main's build with glibc's hugetlb tunable (huge pages under the planes) ran 56x56 64->256 at 96-105
// against 76-80. At batch 1 (the image back in L2 before the call), 56x56 64->256, 7 rounds gave
// 79.1 -> 67.8 (rounds 67-116 -> 62-90): not taken there. 784: the 28x28 plane, the smallest measured.
#define ROWS_APART_P 784
static int rows_apart(const conv_geom *g) { return g->N > 1 && g->OH * g->OW >= ROWS_APART_P; }

size_t conv_1x1_packed_floats(const conv_geom *g) { return (size_t)((g->OC + MR - 1) / MR * MR * g->C); }

void conv_1x1_pack_weights(const conv_geom *g, const float *w, float *wp) {
    const int64_t K = g->C;
    for (int64_t o = 0; o < g->OC; o += MR)
        for (int64_t k = 0; k < K; k++)
            for (int64_t r = 0; r < MR; r++) wp[o * K + k * MR + r] = o + r < g->OC ? w[(o + r) * K + k] : 0.0f;
}

// Images a worker takes together on small planes: as many as keep their xs within PLANE_FLOATS,
// so that each block of weight rows is read once per group, not once per image (at batch 16 on
// 7x7, 2048 -> 512 channels: 4 MB of weights, more than L2, read 8 times instead of 16).
static int64_t group_images(const conv_geom *g) {
    return ply_max_i64(1, ply_min_i64(G_MAX, PLANE_FLOATS / ply_max_i64(1, g->C * g->OH * g->OW)));
}

// Floats of a worker's transposed tail positions: TAIL_MAX per image of a group.
static int64_t xt_floats(const conv_geom *g) { return group_images(g) * TAIL_MAX * g->C; }

// Floats of a worker's packed strip (large planes), or of its packed strips of a group of images
// (small planes whose rows lie pages apart: rows_apart), else 0.
// (At the AVX2 level every plane takes the packed strips: conv_1x1_avx2.c's panel.)
static int64_t xp_floats(const conv_geom *g) {
    if (ply_cpu_level() < PLY_CPU_AVX512) return CONV_1X1_AVX2_PANEL_FLOATS;
    if (conv_1x1_packs(g)) return XP_FLOATS;
    return rows_apart(g) ? group_images(g) * g->C * (g->OH * g->OW + NR3) : 0;
}

// Floats of a worker's scratch: its transposed tail positions, then (strided layers) the
// subsampled planes of the images it works on (a group, or one image), not the whole batch's.
static int64_t slot_floats(const conv_geom *g) {
    return xt_floats(g) + xp_floats(g) + (strided(g) ? group_images(g) * g->C * g->OH * g->OW : 0);
}

size_t conv_1x1_forward_floats(const conv_geom *g, int64_t threads) {
    return (size_t)(ply_max_i64(threads, 1) * slot_floats(g));
}


// ----------------------------------------------------------------------------
// threads

typedef struct {
    const conv_geom *g;
    const float *w, *wp, *bias, *x; // wp: w packed (conv_1x1_pack_weights) or NULL
    const float *res;               // the residual added before the relu ([N, OC, OH, OW]) or NULL
    float *y, *scratch; // scratch: slot_floats per worker
    int relu;
    int64_t parts;      // parts per image
    int split_rows;     // parts split the output channels (else the positions)
    int64_t row_align;  // split_rows: the parts' output channels start at multiples of this
    int64_t workers;
    float *shared;      // strided, batch 1, output channels split: the image subsampled once for all workers
    ply_claims claims;  // parts: the tasks (image, part) claimed (ply_claim)
} job_1x1;

// Parts that split an image's positions are cut at multiples of this (the kernels take any range of
// positions, one strip of NR a time, the last part-filled). Not NR: a 17x17 plane (289 positions, 9
// strips and 1 position) split 5 + 5 strips gave the caller 160 positions and the worker 129. Inception
// v3 at batch 1, 2 threads (PLY_REGION_TRACE, loaded machine): its 17x17 1x1 convs (768 -> 128-192)
// took 1.24-1.45x the CPU time on the caller (e.g. 423 against 296 us), 40-58 us lost in each of 16.
#define PART_ALIGN 16
// Where an image is split (batch 1 at 2 threads), it is cut in PARTS_PER_WORKER parts per worker,
// claimed one at a time (ply_claim: each worker its own share first, then what is left of the
// others'), not one fixed part per worker: a worker that starts late leaves its parts to the
// caller, which waited for it before. Measured (branch split2t, ResNet-50 batch 1, 2 threads,
// loaded machine, load 12-22; PLY_REGION_TRACE, Benchmarks/region_trace.py --late; one process per
// build per round, alternating; clang -O2 builds of the plugin): with one part per worker the caller
// had finished its part before the worker started in 55-79% of the 2-chunk regions, 53-76% of the
// regions' wall spent waiting there; with 4 parts per worker from one shared counter 34%, 21%, and
// the median forward wall per process, ms, one part / 4: 123 / 71, 99 / 71, 125 / 72, 260 / 91,
// 192 / 88, 728 / 573, 193 / 102, 150 / 357, 202 / 66; own share first (this code): 543 / 193,
// 514 / 92, 159 / 233, 807 / 140 (54% of regions, 59% of their wall waiting). GoogLeNet, whose 1x1
// convs are smaller, did not resolve (one part ahead in 8 of 13 rounds, spreads of 2-6x). 2 and 8
// parts per worker (shared counter, 2 rounds): 177 / 229 and 93 / 481 against 4's 88 / 573.
#define PARTS_PER_WORKER 4

// The share [*b, *e) of part t of n items in `parts` parts, cut at multiples of `align`.
static void share_aligned(int64_t n, int64_t parts, int64_t t, int64_t align, int64_t *b, int64_t *e) {
    int64_t blocks = (n + align - 1) / align;
    *b = ply_min_i64(n, blocks * t / parts * align);
    *e = ply_min_i64(n, blocks * (t + 1) / parts * align);
}

// xs[i][c][oh*OW + ow] = x[n0 + i][c][oh*SH][ow*SW] for images i < ni.
static void subsample(const conv_geom *g, const float *x, int64_t n0, int64_t ni, float *xs) {
    for (int64_t t = 0; t < ni * g->C; t++) {
        const float *src = x + (n0 * g->C + t) * g->H * g->W;
        float *dst = xs + t * g->OH * g->OW;
        for (int64_t oh = 0; oh < g->OH; oh++)
            for (int64_t ow = 0; ow < g->OW; ow++) dst[oh * g->OW + ow] = src[oh * g->SH * g->W + ow * g->SW];
    }
}

// xs[c][p] = x[n][c][oh*SH][ow*SW] for p = oh*OW + ow in [p0, p1) and channels c in [c0, c1) of
// image n, xs laid out as the whole plane ([C][OH*OW]; the other positions are left as they were):
// a part that splits the positions subsamples only its own, and threads that split the output
// channels share one subsampled image, each thread copying a range of its channels (both threads
// subsampled the whole image before: the comment at conv_1x1_forward).
static void subsample_part(const conv_geom *g, const float *x, int64_t n, int64_t c0, int64_t c1, int64_t p0,
                           int64_t p1, float *xs) {
    const int64_t P = g->OH * g->OW;
    for (int64_t c = c0; c < c1; c++) {
        const float *src = x + (n * g->C + c) * g->H * g->W;
        float *dst = xs + c * P;
        for (int64_t p = p0; p < p1;) {
            const int64_t oh = p / g->OW, ow0 = p % g->OW, ow1 = ply_min_i64(g->OW, ow0 + p1 - p);
            const float *row = src + oh * g->SH * g->W;
            for (int64_t ow = ow0; ow < ow1; ow++) dst[oh * g->OW + ow] = row[ow * g->SW];
            p += ow1 - ow0;
        }
    }
}

// The planes of images [n, n + ni) as the product reads them: x itself (stride 1), or
// subsampled into the worker's xsub.
static const float *planes(const job_1x1 *j, int64_t n, int64_t ni, float *xsub) {
    const conv_geom *g = j->g;
    if (!strided(g)) return j->x + n * g->C * g->H * g->W;
    subsample(g, j->x, n, ni, xsub);
    return xsub;
}

// Worker w: whole images [N*w/workers, N*(w+1)/workers), or tasks (image, part) claimed one at a
// time, its own share first, until none is left.
static void run_workers(void *ctx, int64_t w0, int64_t w1) {
#if PLY_HAVE_X86_TARGETS
    job_1x1 *j = ctx;
    const conv_geom *g = j->g;
    const int64_t P = g->OH * g->OW, K = g->C, tasks = g->N * j->parts;
    for (int64_t wk = w0; wk < w1; wk++) {
        float *xt = j->scratch + wk * slot_floats(g), *xp = xt + xt_floats(g), *xsub = xp + xp_floats(g);
        if (!xp_floats(g)) xp = NULL; // (small planes: xq, see rows_apart)
        if (j->parts == 1) { // whole images, G at a time
            const int64_t G = group_images(g), n1 = g->N * (wk + 1) / j->workers;
            for (int64_t n = g->N * wk / j->workers; n < n1; n += G) {
                int64_t ni = ply_min_i64(G, n1 - n);
                conv_1x1_product(j->w, j->wp, K, g->OC, planes(j, n, ni, xsub), j->y + n * g->OC * P, P, ni, 0, g->OC, 0,
                                 P, j->bias, j->res ? j->res + n * g->OC * P : NULL, j->relu, xt, xp);
            }
            continue;
        }
        const float *xs = NULL;
        for (int64_t t, have = -1; (t = ply_claim(&j->claims, j->workers, wk, tasks)) < tasks;) {
            int64_t n = t / j->parts, part = t % j->parts, o0 = 0, o1 = g->OC, p0 = 0, p1 = P;
            if (j->split_rows) share_aligned(g->OC, j->parts, part, j->row_align, &o0, &o1);
            else share_aligned(P, j->parts, part, PART_ALIGN, &p0, &p1);
            if (o0 >= o1 || p0 >= p1) continue;
            if (j->shared) {
                xs = j->shared;
            } else if (strided(g) && !j->split_rows) { // the part's own positions only
                subsample_part(g, j->x, n, 0, K, p0, p1, xsub);
                xs = xsub;
            } else {
                if (n != have) xs = planes(j, n, 1, xsub); // (each part of a strided image subsamples it: C*P copies
                have = n;                                  // against the part's OC/parts*C*P multiply-adds)
            }
            conv_1x1_product(j->w, j->wp, K, g->OC, xs, j->y + n * g->OC * P, P, 1, o0, o1, p0, p1, j->bias,
                             j->res ? j->res + n * g->OC * P : NULL, j->relu, xt, xp);
        }
    }
#else
    (void)ctx; (void)w0; (void)w1;
#endif
}

// Where the parts of an image split its output channels, the multiple their shares start at: the
// 12-row tile where the weights are packed by 12 rows, the 8-row tile of the 3-vector strips
// (7x7), else 4, so that the shares come out even. At multiples of 12, 2 threads split ResNet-50's
// 14x14 1024->256 132 + 124 rows (11 tiles against 10 and a 4-row tile) and its 7x7 2048->512 252
// + 260 in 8-row tiles (31 and a 4-row tile against 32 and a 4-row tile; 256 + 256 is 32 each).
// Measured (branch rn50t, ResNet-50 batch 1, 2 threads, 6 alternating rounds, loaded machine,
// Benchmarks/region_trace.py --together: both threads' CPU time in the regions whose threads ran
// apart, medians of ~500 forwards): layer3's 1024->256 convs 766-772 -> 739-756 us, layer4's
// 2048->512 747 -> 728-732 us, 512->2048 724-729 -> 705-712 us.
static int64_t row_align(const conv_geom *g, int packed) {
    if (packed) return MR;
    const int64_t P = g->OH * g->OW, rem = P % 16, pm = rem <= TAIL_MAX ? P - rem : P;
    const int wide = ply_cpu_level() >= PLY_CPU_AVX512 && pm % NR != 0 && pm % NR3 == 0;
    return wide ? MR3 : 4;
}

// Worker w's channels of the shared subsampled image (batch 1).
static void run_share(void *ctx, int64_t w0, int64_t w1) {
    const job_1x1 *j = ctx;
    const int64_t C = j->g->C, P = j->g->OH * j->g->OW;
    for (int64_t wk = w0; wk < w1; wk++)
        subsample_part(j->g, j->x, 0, C * wk / j->workers, C * (wk + 1) / j->workers, 0, P, j->shared);
}

// Not at the AVX2 level: conv_1x1_avx2.c's tiles adding r last (before the relu, the same bits) were no faster than
// the separate pass on a Zen 3 core (Benchmarks/pointwise_residual.c, fused / separate, 7 alternating runs, batch 1:
// 56x56 64->256 0.88-1.13, 28x28 128->512 0.98-1.13, 14x14 256->1024 0.99-1.20; the same with r's lines
// prefetched into L1 a block ahead or into L2 a strip ahead), and ResNet-50's bottleneck blocks ran 1.02-1.20x
// slower in the model (per-node medians, 1 thread, 4 alternating processes). A strip's r lies in OC rows P floats
// apart, which the separate pass reads as one stream.
int conv_1x1_adds_residual(void) { return ply_cpu_level() >= PLY_CPU_AVX512; }

void conv_1x1_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *wp,
                      const float *bias, int relu, const float *x, float *y, float *scratch) {
    conv_1x1_forward_residual(host, threads, g, w, wp, bias, NULL, relu, x, y, scratch);
}

void conv_1x1_forward_residual(const ply_host *host, int64_t threads, const conv_geom *g, const float *w,
                               const float *wp, const float *bias, const float *res, int relu, const float *x, float *y,
                               float *scratch) {
    threads = ply_max_i64(threads, 1);
    const int64_t P = g->OH * g->OW;
    job_1x1 j = {.g = g, .w = w, .wp = conv_1x1_packs(g) ? wp : NULL, .bias = bias,
                 .res = conv_1x1_adds_residual() ? res : NULL, .x = x, .y = y, .scratch = scratch, .relu = relu,
                 .parts = 1, .workers = threads};
    // Whole images per worker when they divide evenly (batch 16 on 2 threads); else every image in
    // PARTS_PER_WORKER parts per thread, claimed: positions when each thread's share gets enough
    // strips, else output channels (small planes: 7x7 at batch 1 splits 512 channels in 12-row
    // tiles, not 49 positions).
    if (threads > 1 && g->N % threads != 0) {
        j.parts = threads * PARTS_PER_WORKER;
        j.split_rows = (P + NR - 1) / NR < MIN_STRIPS_PER_PART * threads;
        j.row_align = row_align(g, j.wp != NULL);
    }
    j.workers = ply_min_i64(threads, g->N * j.parts);
    // Strided, batch 1, output channels split (ResNet-50's 14x14 and 7x7 downsamples): the workers
    // first subsample the image together into worker 0's slot, a region of its own, then all read
    // it, where each subsampled the whole image for itself before (layer3.0's 512 x 196 floats, read
    // from 800 KB of input, on both threads). Measured as at row_align, the downsample's regions:
    // layer3.0 1711 -> 1483 + 115 us (the subsampling region), layer4.0 1589 -> 1451 + 75 us.
    if (j.workers > 1 && j.split_rows && strided(g) && g->N == 1) {
        j.shared = scratch + xt_floats(g) + xp_floats(g);
        host->parallel_for(host, j.workers, 1, run_share, &j);
    }
    if (j.workers > 1) host->parallel_for(host, j.workers, 1, run_workers, &j);
    else run_workers(&j, 0, 1);
}
