/*
 * conv2d forward for pointwise (1x1, unpadded) layers: a product per image on
 * the input in place (see conv_1x1.h).
 */
#include "plugin_support.h"

#include "conv_1x1.h"
#include "conv_1x1_avx2.h"

#include <string.h>

// Output channels per register tile: 12 rows x 2 vectors of 16 positions = 24 accumulators, 2
// loads of xs and 12 broadcasts per input channel (MLAS's SGEMM tile on AVX-512).
#define MR 12
// Input channels per pass: a strip's block of xs (KC x 32 floats, 32 KB) stays in L1 while the
// blocks of every output channel's weights stream past it.
// (KC 128 / 256 / 512 / whole K, GFLOPS single thread: 28x28 192->64 136 / 138 / 136 / 136, 14x14
// 1024->256 133 / 136 / 133 / 134, 56x56 256->64 99 / 95 / 98 / 88: flat within the noise but for
// the whole K on the large plane.)
// (With the strip packed, branch rn50, Benchmarks/pointwise_kernel.c cold, load ~16 on 2 cores, GFLOPS
// KC 256 / 128: 56x56 256->64 77 / 77, 256->128 107 / 106, 28x28 512->128 121 / 107, 512->256
// 122 / 124, 1024->256 125 / 121; K blocks outermost or the strips outermost with the K blocks
// inside: equal within the noise.)
#define KC 256
// Large planes: while the first tile of a strip runs, the rows of the strip PXDIST strips ahead are
// prefetched with hint PXHINT (the packing then reads them from L2 instead of waiting on 2*KC
// lines, each in another page, that no hardware prefetcher follows). Cold, load ~16, GFLOPS,
// medians of 3, hint T0 / T1 / T2 at distance 1: 56x56 256->64 80 / 87 / 90, 256->128 103 / 107
// / 111, 28x28 512->128 105 / 113 / 124, 512->256 125 / 132 / 128 (T0 lands in L1 beside the
// packed strip and the weights and is evicted before use); T1 at distance 1 / 2, another round:
// 93 / 103, 109 / 117, 112 / 116, 124 / 121; T2 at distance 2 / 4: 96 / 100, 120 / 118, 98 / 115,
// 126 / 126.
#define PXHINT _MM_HINT_T1
#define PXDIST 2
// Positions per strip: two vectors.
#define NR 32
// Per image, below this many strips of 32 positions per part, an image's parts split the output
// channels instead of the positions.
#define MIN_STRIPS_PER_PART 4
// One image's xs of at most this many floats (1 MB; L2 is 2 MB per core here) is walked with
// every weight row block read once and kept in L2 while all strips pass under it, each over
// the whole K ("small planes": 28x28 and less at GoogLeNet's and ResNet-50's widths); larger
// ones in KC blocks with the strip in L1 and the weights streaming.
// Single thread, GFLOPS at 1 MB / 2 MB / 4 MB: 28x28 512->128 130 / 100 / 95, 56x56 256->64
// 107 / 106 / 69, 28x28 512->256 125 / 100 / 115, batch 16 14x14 1024->256 131 / 108 / 84.
#define PLANE_FLOATS (1 << 18)
// Planes of at most this many floats of xs per image take the small-plane order, larger ones the
// packed strips. Cold, load 11-15, GFLOPS, medians of 3, small order -> packed strips: 56x56
// 64->256 120 -> 98, 64->64 65 -> 78 (noise: main's build ran 104), 28x28 128->512 113 -> 120,
// 14x14 256->1024 125 -> 122, 1024->256 121 -> 119, 7x7 512->2048 106 -> 86, 56x56 stride 2
// 256->512 (two rounds) 99 / 99 -> 112 / 100, 28x28 stride 2 512->1024 121 / 118 -> 109 / 110.
#define SMALL_MAX PLANE_FLOATS
// Small planes: when P mod 16 is at most this, those last positions are done as dot products
// over K (vectors along K, 4 output channels x 4 positions at a time) instead of a 16-lane tile
// mostly masked off: 7x7 (49 = 32 + 16 + 1) and 14x14 (196 = 6*32 + 4).
#define TAIL_MAX 8
// At most this many images per group on small planes (see group_images).
#define G_MAX 8
// Rows of the 3-vector tile (48 positions): 8 x 3 = 24 accumulators. Small planes whose positions
// (less the tail) split into strips of 48 but not of 32 take it: 7x7 (48 = 3 vectors, where the
// 12 x 32 tile leaves a strip of 16 with 13 loads per 12 multiply-adds). Single thread, clang -O2
// build of this file, all in cache, GFLOPS 12 x 32 -> 8 x 48: 7x7 512->2048 122 -> 156, 2048->512
// 127 -> 157, 832->384 129 -> 160. Not taken where 32 divides too: 14x14 (192 = 6*32 = 4*48)
// 256->1024 144 -> 146, 1024->256 147 -> 148, 480->192 153 -> 151 (equal within the noise);
// nor on large planes (56x56 256->64 135 -> 140, 256->128 138 -> 140, 28x28 512->128 147 -> 144).
#define MR3 8
#define NR3 48
// Floats of a worker's packed strip on large planes: KC rows of NR positions.
#define XP_FLOATS (KC * NR)

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

// Planes of at least PACK_P positions with at least PACK_K input channels take the packed strips
// even within SMALL_MAX (AVX-512 level): Inception v3's 35x35 and GoogLeNet's 28x28 1x1 convs on 192
// and 256 channels. Small order -> packed strips, Benchmarks/pointwise_kernel.c cold, 1 thread, Intel
// Xeon model 207, load ~24 on 2 cores, 8 alternating runs, best / median GFLOPS: 35x35 192->64 69 /
// 59 -> 119 / 82, 192->32 67 / 39 -> 67 / 60, 28x28 192->64 78 / 60 -> 101 / 78, 256->128 86 / 81
// -> 104 / 92; not below (17x17 768->128 120 / 93 -> 103 / 81, 768->192 116 / 91 -> 107 / 83) nor on
// fewer channels (56x56 64->256 106 / 92 -> 92 / 74, 64->64 77 / 63 -> 72 / 60).
#define PACK_P 784
#define PACK_K 192

// Whether the product takes the small-plane order (every block of weight rows once, each strip over
// the whole K) for K input channels on planes of P positions; else the packed strips.
static int small_order(int64_t K, int64_t P) {
    return K * P <= SMALL_MAX && !(P >= PACK_P && K >= PACK_K && ply_cpu_level() >= PLY_CPU_AVX512);
}

int conv_1x1_packs(const conv_geom *g) { return !small_order(g->C, g->OH * g->OW); }

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

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// acc(r, v) = sum_{k < kc} a[r*lda + k] * xs[k*ldx + 16v .. 16v + 16) for r < R, v < V, then
// y[r][0:16V] (lanes m0, m1; V = 3: all 48) = (first ? bias[r] : y[r]) + acc(r, .) (+ res[r][0:16V] when res is not
// NULL: the residual, rows ldy apart as y's, added last as the residual block's separate pass added it), relu'd when `relu` (NaN
// passes: kept where not v <= 0). R and V are constants in each instance; the accumulators are
// named variables (an array of them is kept in memory by GCC at -O2, a store per FMA).
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = c##r##_0, c##r##_2 = c##r##_0;
// rows r = 4q + i live at a_q + i*lda: three bases, lda and 3*lda as index registers (the
// addressing MLAS uses), instead of twelve row pointers that would not fit the registers
#define ROWPTR(r) ((r) < 4 ? a0 : (r) < 8 ? a4 : a8)[((r) & 3) == 0 ? 0 : ((r) & 3) == 1 ? l1 : ((r) & 3) == 2 ? 2 * l1 : l3]
#define FMA(r)                                                                                                        \
    if (R > (r)) {                                                                                                    \
        __m512 av = _mm512_set1_ps(PK ? a[(r)] : ROWPTR(r));                                                       \
        c##r##_0 = _mm512_fmadd_ps(av, b0, c##r##_0);                                                                 \
        if (V >= 2) c##r##_1 = _mm512_fmadd_ps(av, b1, c##r##_1);                                                     \
        if (V == 3) c##r##_2 = _mm512_fmadd_ps(av, b2, c##r##_2);                                                     \
    }
#define STORE1(r, v, m)                                                                                               \
    {                                                                                                                 \
        float *yr = y + (r) * ldy + 16 * (v);                                                                         \
        __m512 s = first ? _mm512_set1_ps(bias ? bias[r] : 0.0f) : _mm512_maskz_loadu_ps(m, yr);                     \
        __m512 t = _mm512_add_ps(c##r##_##v, s);                                                                      \
        if (res) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(m, res + (r) * ldy + 16 * (v)));                          \
        if (relu) t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_NLE_UQ), t);                \
        _mm512_mask_storeu_ps(yr, m, t);                                                                              \
    }
#define STORE(r)                                                                                                      \
    if (R > (r)) {                                                                                                    \
        STORE1(r, 0, m0)                                                                                              \
        if (V >= 2) STORE1(r, 1, m1)                                                                                  \
        if (V == 3) STORE1(r, 2, (__mmask16)0xFFFF)                                                                   \
    }

PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void tile(const int PK, const int R, const int V,
                                                                        int64_t kc,
                                                                        const float *a, int64_t lda, const float *x,
                                                                        int64_t ldx, float *y, int64_t ldy,
                                                                        __mmask16 m0, __mmask16 m1, int first,
                                                                        int relu, const float *bias, const float *res,
                                                                        const float *pf,
                                                                        int64_t pfs, const float *px, int64_t lpx,
                                                                        float *xc) {
    FOR_ROWS(DECL)
    const float *a0 = a, *a4 = a + 4 * lda, *a8 = a + 8 * lda;
    int64_t l1 = lda, l3 = 3 * lda;
    // opaque to the compiler, which would otherwise rebuild the row addresses from one base in
    // every iteration (clang: 10 more integer instructions per 24 multiply-adds)
    if (!PK) __asm__("" : "+r"(a0), "+r"(a4), "+r"(a8), "+r"(l1), "+r"(l3));
    for (int64_t k = 0; k < kc; k++, x += ldx, a += PK ? MR : 0) {
        // the three row bases step here, opaque again: left to itself, clang turns the twelve rows
        // into twelve pointers (five then live on the stack, a reload per broadcast) instead of
        // MLAS's base + index addressing. Single thread, the 12x32 tile alone (weights unpacked,
        // xs contiguous), GFLOPS before -> after: K 256 (in L1) 167 -> 168, K 1024 (weights and
        // xs in L2) 135 -> 152-162; in Benchmarks/pointwise_kernel.c warm, load ~15, medians of
        // 3: 28x28 128->512 134 -> 142, 14x14 256->1024 137 -> 143, 1024->256 131 -> 143,
        // 1024->512 131 -> 138, 7x7 512->2048 142 -> 150, 2048->512 140 -> 147.
        if (!PK && k) {
            a0++, a4++, a8++;
            __asm__("" : "+r"(a0), "+r"(a4), "+r"(a8), "+r"(l1), "+r"(l3));
        }
        // px (when not NULL): the next strip's row k (rows lpx floats apart) into L1 (rows are P floats apart, each in another page for large
        // planes, which the hardware prefetchers do not follow). Single thread, GFLOPS without ->
        // with, gcc build of this file, load 16 on 2 cores: 56x56 256->64 102 -> 119, 28x28
        // 192->64 133 -> 137, 14x14 480->192 153 -> 171, 7x7 2048->512 122 -> 118 (noise: +-5%)
        if (px && PK) {
            _mm_prefetch((const char *)(px + k * lpx), PXHINT);
            _mm_prefetch((const char *)(px + k * lpx + 16), PXHINT);
        } else if (px) {
            _mm_prefetch((const char *)(px + k * lpx), _MM_HINT_T0);
            _mm_prefetch((const char *)(px + k * lpx + 16), _MM_HINT_T0);
            if (V == 3) _mm_prefetch((const char *)(px + k * lpx + 32), _MM_HINT_T0);
        }
        // the next block of weight rows (pfs rows of lda floats, contiguous: lda == K on small
        // planes) into L2, spread over this tile's K steps: on small planes each block is read
        // once per call, straight from memory in a network (4 MB at 7x7 2048->512), which the
        // 12 short row streams do not get prefetched. Single thread, gcc build, weights and
        // outputs out of cache, medians of 3 with load ~20 on 2 cores, GFLOPS without -> with:
        // 7x7 512->2048 82 -> 112, 832->384 82 -> 97, 14x14 256->1024 108 -> 130, 1024->256
        // 125 -> 123 (unchanged within the noise)
        if (pf) _mm_prefetch((const char *)(pf + pfs * k), _MM_HINT_T1);
        __m512 b0 = V >= 2 ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps(m0, x);
        __m512 b1 = V == 3 ? _mm512_loadu_ps(x + 16) : V == 2 ? _mm512_maskz_loadu_ps(m1, x + 16) : b0;
        __m512 b2 = V == 3 ? _mm512_loadu_ps(x + 32) : b0;
        if (xc) { // xc[k*NR + j] = x[k*ldx + j] for j < NR (lanes past m0, m1: zeros): the packed strip
            _mm512_storeu_ps(xc + k * NR, b0);
            _mm512_storeu_ps(xc + k * NR + 16, b1);
        }
        FOR_ROWS(FMA)
    }
    (void)c0_1;
    (void)c0_2;
    FOR_ROWS(STORE)
}

#define TILE_FN(R, V)                                                                                                 \
    PLY_TARGET_AVX512 static void tile##R##_##V(int64_t kc, const float *a, int64_t lda, const float *x, int64_t ldx, \
                                                float *y, int64_t ldy, __mmask16 m0, __mmask16 m1, int first,         \
                                                int relu, const float *bias, const float *res, const float *pf,       \
                                                int64_t pfs,                                                          \
                                                const float *px, int64_t lpx) {                                       \
        tile(0, R, V, kc, a, lda, x, ldx, y, ldy, m0, m1, first, relu, bias, res, pf, pfs, px, lpx, NULL);                  \
    }
#define TILE_FNS(R) TILE_FN(R, 1) TILE_FN(R, 2)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6) TILE_FNS(7) TILE_FNS(8) TILE_FNS(9)
TILE_FNS(10) TILE_FNS(11) TILE_FNS(12)
TILE_FN(1, 3) TILE_FN(2, 3) TILE_FN(3, 3) TILE_FN(4, 3) TILE_FN(5, 3) TILE_FN(6, 3) TILE_FN(7, 3) TILE_FN(8, 3)

// The same tiles on packed weights (PK: row r of step k at a[k*MR + r], see conv_1x1_pack_weights): one
// stream of weights, broadcast from one pointer, where the unpacked rows take twelve.
#define PTILE_FN(R, V)                                                                                                \
    PLY_TARGET_AVX512 static void ptile##R##_##V(int64_t kc, const float *a, int64_t lda, const float *x,             \
                                                 int64_t ldx, float *y, int64_t ldy, __mmask16 m0, __mmask16 m1,      \
                                                 int first, int relu, const float *bias, const float *res,            \
                                                 const float *pf, int64_t pfs,                                        \
                                                 const float *px, int64_t lpx) {                                      \
        tile(1, R, V, kc, a, lda, x, ldx, y, ldy, m0, m1, first, relu, bias, res, pf, pfs, px, lpx, NULL);                  \
    }
#define PTILE_FNS(R) PTILE_FN(R, 1) PTILE_FN(R, 2)
PTILE_FNS(1) PTILE_FNS(2) PTILE_FNS(3) PTILE_FNS(4) PTILE_FNS(5) PTILE_FNS(6) PTILE_FNS(7) PTILE_FNS(8) PTILE_FNS(9)
PTILE_FNS(10) PTILE_FNS(11) PTILE_FNS(12)

// The packed-weight tiles reading a strip straight from the plane (rows ldx = P floats apart) and
// storing each row's two vectors into the packed strip xc: the first block of output channels of a
// strip packs it, the later blocks read xc (product's large planes), where a pack_strip pass copied
// it first. pointwise_kernel.c, cold, load ~20 (fma_peak 117 then), GFLOPS, pass -> here: 56x56
// 256->64 97-100 -> 99-107, 256->128 101-105 -> 104-108 (BENCHMARKS.md, branch rn50pw).
#define CTILE_FN(R, V)                                                                                                \
    PLY_TARGET_AVX512 static void ctile##R##_##V(int64_t kc, const float *a, const float *x, int64_t ldx, float *y,   \
                                                 int64_t ldy, __mmask16 m0, __mmask16 m1, int first, int relu,        \
                                                 const float *bias, const float *res, const float *px, int64_t lpx,  \
                                                 float *xc) {                                                         \
        tile(1, R, V, kc, a, 0, x, ldx, y, ldy, m0, m1, first, relu, bias, res, NULL, 0, px, lpx, xc);               \
    }
#define CTILE_FNS(R) CTILE_FN(R, 1) CTILE_FN(R, 2)
CTILE_FNS(1) CTILE_FNS(2) CTILE_FNS(3) CTILE_FNS(4) CTILE_FNS(5) CTILE_FNS(6) CTILE_FNS(7) CTILE_FNS(8) CTILE_FNS(9)
CTILE_FNS(10) CTILE_FNS(11) CTILE_FNS(12)

typedef void (*tile_fn)(int64_t, const float *, int64_t, const float *, int64_t, float *, int64_t, __mmask16,
                        __mmask16, int, int, const float *, const float *, const float *, int64_t, const float *,
                        int64_t);
#define TILE_PAIR(R) {tile##R##_1, tile##R##_2}
static const tile_fn tiles[MR + 1][2] = {{0, 0},        TILE_PAIR(1), TILE_PAIR(2),  TILE_PAIR(3), TILE_PAIR(4),
                                         TILE_PAIR(5),  TILE_PAIR(6), TILE_PAIR(7),  TILE_PAIR(8), TILE_PAIR(9),
                                         TILE_PAIR(10), TILE_PAIR(11), TILE_PAIR(12)};
typedef void (*ctile_fn)(int64_t, const float *, const float *, int64_t, float *, int64_t, __mmask16, __mmask16, int,
                         int, const float *, const float *, const float *, int64_t, float *);
#define CTILE_PAIR(R) {ctile##R##_1, ctile##R##_2}
static const ctile_fn ctiles[MR + 1][2] = {{0, 0},         CTILE_PAIR(1),  CTILE_PAIR(2),  CTILE_PAIR(3),
                                           CTILE_PAIR(4),  CTILE_PAIR(5),  CTILE_PAIR(6),  CTILE_PAIR(7),
                                           CTILE_PAIR(8),  CTILE_PAIR(9),  CTILE_PAIR(10), CTILE_PAIR(11),
                                           CTILE_PAIR(12)};
#define PTILE_PAIR(R) {ptile##R##_1, ptile##R##_2}
static const tile_fn ptiles[MR + 1][2] = {{0, 0},         PTILE_PAIR(1),  PTILE_PAIR(2),  PTILE_PAIR(3),
                                          PTILE_PAIR(4),  PTILE_PAIR(5),  PTILE_PAIR(6),  PTILE_PAIR(7),
                                          PTILE_PAIR(8),  PTILE_PAIR(9),  PTILE_PAIR(10), PTILE_PAIR(11),
                                          PTILE_PAIR(12)};
// Full strips of 48 positions (three vectors), at most MR3 rows: 24 accumulators as the 12 x 32
// tile, with 3 loads and 8 broadcasts per input channel (11 loads per 24 multiply-adds, not 14).
static const tile_fn tiles3[MR3 + 1] = {0, tile1_3, tile2_3, tile3_3, tile4_3, tile5_3, tile6_3, tile7_3, tile8_3};


// out[r][j] = sum_{k < K} a[r*lda + k] * xt[j*K + k] for r < R, j < J (R, J <= 4): dot products
// with vectors along k, summed across lanes at the end.
#define FOR_RJ(X) X(0, 0) X(0, 1) X(0, 2) X(0, 3) X(1, 0) X(1, 1) X(1, 2) X(1, 3) \
                  X(2, 0) X(2, 1) X(2, 2) X(2, 3) X(3, 0) X(3, 1) X(3, 2) X(3, 3)
#define DDECL(r, j) __m512 d##r##j = _mm512_setzero_ps();
#define DFMA(r, j) if (R > (r) && J > (j)) d##r##j = _mm512_fmadd_ps(w##r, x##j, d##r##j);
#define DOUT(r, j) if (R > (r) && J > (j)) out[r][j] = _mm512_reduce_add_ps(d##r##j);
#define DLOAD(q, src, cond) __m512 q = (cond) ? _mm512_maskz_loadu_ps(m, (src) + k) : _mm512_setzero_ps();
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void dot(const int R, const int J, int64_t K,
                                                                       const float *a, int64_t lda,
                                                                       const float *xt, float out[4][4]) {
    FOR_RJ(DDECL)
    for (int64_t k = 0; k < K; k += 16) {
        __mmask16 m = ply_lanes16(K - k);
        DLOAD(w0, a, R > 0) DLOAD(w1, a + lda, R > 1) DLOAD(w2, a + 2 * lda, R > 2) DLOAD(w3, a + 3 * lda, R > 3)
        DLOAD(x0, xt, J > 0) DLOAD(x1, xt + K, J > 1) DLOAD(x2, xt + 2 * K, J > 2) DLOAD(x3, xt + 3 * K, J > 3)
        FOR_RJ(DFMA)
    }
    FOR_RJ(DOUT)
}

#define DOT_FN(R, J)                                                                                                  \
    PLY_TARGET_AVX512 static void dot##R##J(int64_t K, const float *a, int64_t lda, const float *xt,                  \
                                            float out[4][4]) {                                                        \
        dot(R, J, K, a, lda, xt, out);                                                                                \
    }
DOT_FN(1, 1) DOT_FN(1, 2) DOT_FN(1, 3) DOT_FN(1, 4) DOT_FN(2, 1) DOT_FN(2, 2) DOT_FN(2, 3) DOT_FN(2, 4)
DOT_FN(3, 1) DOT_FN(3, 2) DOT_FN(3, 3) DOT_FN(3, 4) DOT_FN(4, 1) DOT_FN(4, 2) DOT_FN(4, 3) DOT_FN(4, 4)
typedef void (*dot_fn)(int64_t, const float *, int64_t, const float *, float[4][4]);
static const dot_fn dots[5][5] = {{0},
                                  {0, dot11, dot12, dot13, dot14},
                                  {0, dot21, dot22, dot23, dot24},
                                  {0, dot31, dot32, dot33, dot34},
                                  {0, dot41, dot42, dot43, dot44}};

// The next strip's output lines, rows [0, R) of y (rows P apart, `width` floats each), into L1 a
// tile before they are written (a read prefetch at the baseline target; the line arrives
// exclusive, so the stores need no second trip; past the plane's end it touches lines of y or of
// the next rows only, and prefetches never fault). The first write of a line of y otherwise
// waits for the line from memory: single thread, gcc build of this file, outputs and weights out
// of cache as in a network (input in L2), load ~20 on 2 cores, GFLOPS without -> with: 56x56
// 64->64 89 -> 118, 14x14 256->1024 117 -> 128, 28x28 128->512 131 -> 132.
static inline void prefetch_y(const float *y, int64_t P, int R, int64_t width) {
    for (int q = 0; q < R; q++)
        for (int64_t v = 0; v < width; v += 16) __builtin_prefetch(y + q * P + v, 1, 3);
}

// y[o][j] (rows P apart) = bias[o] + sum_k w[o][k] * xt[j][k] (+ res[o][j], rows P apart, when res is not NULL)
// for o in [0, rows), j in [0, cols), relu'd as the tiles do.
static void tail(const float *w, int64_t K, int64_t rows, const float *xt, int64_t cols, float *y, int64_t P,
                 const float *bias, const float *res, int relu) {
    float out[4][4];
    for (int64_t r = 0; r < rows; r += 4) {
        int R = (int)ply_min_i64(4, rows - r);
        for (int64_t j = 0; j < cols; j += 4) {
            int J = (int)ply_min_i64(4, cols - j);
            dots[R][J](K, w + r * K, K, xt + j * K, out);
            for (int i = 0; i < R; i++)
                for (int q = 0; q < J; q++) {
                    float v = out[i][q] + (bias ? bias[r + i] : 0.0f);
                    if (res) v += res[(r + i) * P + j + q];
                    y[(r + i) * P + j + q] = relu && !(v > 0.0f || v != v) ? 0.0f : v;
                }
        }
    }
}

// xp[k*NR + j] = xs[k*P + j] for k < kc, j < min(n, NR) (lanes from n on: zeros): a strip's block
// of rows, P floats apart in the plane, made contiguous.
PLY_TARGET_AVX512 static void pack_strip(const float *xs, int64_t P, int64_t kc, int64_t n, float *xp) {
    __mmask16 m0 = ply_lanes16(n), m1 = ply_lanes16(n - 16);
    for (int64_t k = 0; k < kc; k++, xs += P, xp += NR) {
        _mm512_storeu_ps(xp, _mm512_maskz_loadu_ps(m0, xs));
        _mm512_storeu_ps(xp + 16, _mm512_maskz_loadu_ps(m1, xs + 16));
    }
}

// xq[((n*ns + i)*K + k)*nr + j] = xs[(n*K + k)*P + p0 + i*nr + j] for n < ni, k < K, strips i < ns =
// ceil((pm - p0)/nr), j < nr, where p0 + i*nr + j < pm (else 0): each row read once, in order.
PLY_TARGET_AVX512 static void pack_strips(const float *xs, int64_t K, int64_t P, int64_t ni, int64_t p0, int64_t pm,
                                          int64_t nr, float *xq) {
    const int64_t ns = (pm - p0 + nr - 1) / nr;
    for (int64_t n = 0; n < ni; n++)
        for (int64_t k = 0; k < K; k++) {
            const float *row = xs + (n * K + k) * P + p0;
            float *out = xq + (n * ns * K + k) * nr;
            for (int64_t i = 0; i < ns; i++, out += K * nr)
                for (int64_t v = 0; v < nr; v += 16)
                    _mm512_storeu_ps(out + v, _mm512_maskz_loadu_ps(ply_lanes16(pm - p0 - i * nr - v), row + i * nr + v));
        }
}

// y[n][o][p] = bias[o] + sum_c w[o][c] * xs[n][c][p] (+ res[n][o][p] when res is not NULL) for images n < ni,
// o in [o0, o1), p in [p0, p1); xs [ni][K][P], y and res [ni][OC][P]. xt: scratch of xt_floats(g) floats; xp: of
// xp_floats(g) (on small planes NULL but where rows_apart).
static void product(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y, int64_t P,
                    int64_t ni,
                    int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias, const float *res, int relu,
                    float *xt, float *xp) {
    if (small_order(K, P)) { // (the same test as conv_1x1_packs; group_images keeps ni*K*P within PLANE_FLOATS)
        // small planes: each block of weight rows once (kept in L2), over every strip of the ni
        // images (their xs in L2 too), the whole K at a time
        int64_t rem = (p1 - p0) % 16, pm = rem <= TAIL_MAX ? p1 - rem : p1, r = p1 - pm;
        for (int64_t n = 0; n < ni; n++) // xt[n][j][k] = xs[n][k][pm + j]
            for (int64_t j = 0; j < r; j++)
                for (int64_t k = 0; k < K; k++) xt[(n * r + j) * K + k] = xs[(n * K + k) * P + pm + j];
        const int wide = (pm - p0) % NR != 0 && (pm - p0) % NR3 == 0;
        const int64_t mr = wide ? MR3 : MR, nr = wide ? NR3 : NR, ns = (pm - p0 + nr - 1) / nr;
        // xq[((n*ns + i)*K + k)*nr + j] = xs[n][k][p0 + i*nr + j] (zeros past pm): strip i's rows packed
        float *xq = xp; // (not NULL where rows_apart: run_workers)
        if (xq) pack_strips(xs, K, P, ni, p0, pm, nr, xq);
        for (int64_t o = o0; o < o1; o += mr) {
            int R = (int)ply_min_i64(mr, o1 - o);
            for (int64_t n = 0; n < ni; n++) {
                const float *xn = xs + n * K * P;
                float *yn = y + n * OC * P;
                const float *rn = res ? res + n * OC * P + o * P : NULL;
                for (int64_t s = p0; s < pm; s += nr) {
                    int64_t left = pm - s, next = ply_min_i64(mr, o1 - o - mr);
                    const float *pf = n == 0 && s == p0 && next > 0 ? w + (o + mr) * K : NULL;
                    prefetch_y(yn + o * P + s + nr, P, R, nr);
                    tile_fn f = wide ? tiles3[R] : tiles[R][left > 16];
                    const float *xi = xq ? xq + (n * ns + (s - p0) / nr) * K * nr : xn + s;
                    f(K, w + o * K, K, xi, xq ? nr : P, yn + o * P + s, P, ply_lanes16(left), ply_lanes16(left - 16), 1,
                      relu, bias ? bias + o : NULL, rn ? rn + s : NULL, pf, next, xq ? xi + K * nr : xn + s + nr,
                      xq ? nr : P);
                }
                if (r) tail(w + o * K, K, R, xt + n * r * K, r, yn + o * P + pm, P, bias ? bias + o : NULL,
                            rn ? rn + pm : NULL, relu);
            }
        }
        return;
    }
    for (int64_t n = 0; n < ni; n++, xs += K * P, y += OC * P, res = res ? res + OC * P : NULL)
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        int64_t kc = ply_min_i64(KC, K - k0);
        int first = k0 == 0, last = k0 + kc == K;
        for (int64_t s = p0; s < p1; s += NR) {
            int64_t left = p1 - s;
            if (!wp) pack_strip(xs + k0 * P + s, P, kc, left, xp); // (packed weights: the first tile packs it)
            for (int64_t o = o0; o < o1; o += MR) {
                int R = (int)ply_min_i64(MR, o1 - o);
                if (first) prefetch_y(y + o * P + s + NR, P, R, NR);
                const float *a = wp ? wp + o * K + k0 * MR : w + o * K + k0;
                if (wp && o == o0) { // this block reads the strip from the plane and packs it into xp
                    ctiles[R][left > 16](kc, a, xs + k0 * P + s, P, y + o * P + s, P, ply_lanes16(left),
                                         ply_lanes16(left - 16), first, relu && last, bias ? bias + o : NULL,
                                         res && last ? res + o * P + s : NULL,
                                         s + PXDIST * NR < p1 ? xs + k0 * P + s + PXDIST * NR : NULL, P, xp);
                    continue;
                }
                (wp ? ptiles : tiles)[R][left > 16](kc, a, K, xp, NR, y + o * P + s, P, ply_lanes16(left), ply_lanes16(left - 16),
                                    first, relu && last, bias ? bias + o : NULL,
                                    res && last ? res + o * P + s : NULL, NULL, 0,
                                    o == o0 && s + PXDIST * NR < p1 ? xs + k0 * P + s + PXDIST * NR : NULL, P);
            }
        }
    }
}

// product at the AVX-512 level, conv_1x1_avx2.c's below it (the large planes' order on every plane).
static void product_at_level(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y,
                             int64_t P, int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias,
                             const float *res, int relu, float *xt, float *xp) {
    // (res only at the AVX-512 level: conv_1x1_adds_residual)
    if (ply_cpu_level() >= PLY_CPU_AVX512) product(w, wp, K, OC, xs, y, P, ni, o0, o1, p0, p1, bias, res, relu, xt, xp);
    else conv_1x1_product_avx2(w, wp, K, OC, xs, y, P, ni, o0, o1, p0, p1, bias, relu, xp);
}
#endif

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
                product_at_level(j->w, j->wp, K, g->OC, planes(j, n, ni, xsub), j->y + n * g->OC * P, P, ni, 0, g->OC, 0,
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
            product_at_level(j->w, j->wp, K, g->OC, xs, j->y + n * g->OC * P, P, 1, o0, o1, p0, p1, j->bias,
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
