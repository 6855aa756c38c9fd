/*
 * conv2d forward for the stems (few input channels, large kernels): direct, on
 * the input split into its column phases (see conv_stem.h).
 */
#include "plugin_support.h"

#include "conv_stem.h"
#include "conv_stem_avx2.h"

// Output channels per register tile: 12 rows x 2 vectors of 16 outputs = 24 accumulators, 2 loads
// and 12 broadcasts per tap (conv_1x1.c's tile; there 0.94-0.97 of peak with its operands in L1).
#define MR 12
// Or 8 rows x 3 vectors (24 accumulators, 3 loads and 8 broadcasts per tap) where OC is a multiple
// of 8 but not of 12 (the stems' 64: 12 x 2 leaves a block of 4 rows). ResNet-50's stem alone
// (3x224x224 -> 64, batch 1, 1 thread, clang -O2, thread CPU time, median of 9, load ~15), GFLOPS
// 12 x 2 / 8 x 3, alternating: 129 / 137, 127 / 137 (im2col + GEMM in the model: 115-118).
#define MR3 8
// Most taps (C*KH*KW) taken: a block of packed weights (MR x taps floats, 12 KB) stays in L1 beside
// the rows of d a tile reads; the stems have 147 (7x7 x 3) and 75 (5x5 x 3).
#define MAX_TAPS 256
// Most input channels: the path is for first layers on images; wider layers have their own.
#define MAX_C 4

static int64_t taps(const conv_geom *g) { return g->C * g->KH * g->KW; }

// Floats of the packed weights: OC rounded up to MR, times the taps.
static int64_t wp_floats(const conv_geom *g) { return (g->OC + MR - 1) / MR * MR * taps(g); }

// Whether the AVX-512 tiles run (else conv_stem_avx2.c's: 6 rows x 2 vectors of 8).
static int avx512(void) { return ply_cpu_level() >= PLY_CPU_AVX512; }
// Whether the 8 x 3 tile is taken (see MR3), and the rows of a block of packed weights.
static int wide(const conv_geom *g) { return avx512() && g->OC % MR3 == 0 && g->OC % MR != 0; }
static int64_t block_rows(const conv_geom *g) { return !avx512() ? CONV_STEM_AVX2_ROWS : wide(g) ? MR3 : MR; }
// Outputs per vector, and vectors per tile.
static int64_t lanes(void) { return avx512() ? 16 : 8; }
static int group_vectors(const conv_geom *g) { return !avx512() ? CONV_STEM_AVX2_VECTORS : wide(g) ? 3 : 2; }

// Rows of each phase plane (the padded rows the outputs read) and its width: the vectors of a row
// (OW rounded up to 16) plus the columns the taps reach beyond them, so that every load of a
// vector stays within its row (the columns past the padded input are zeros).
static int64_t d_rows(const conv_geom *g) { return (g->OH - 1) * g->SH + g->KH; }
static int64_t d_width(const conv_geom *g) { return (g->OW + 15) / 16 * 16 + (g->KW - 1) / g->SW; }
static int64_t d_floats(const conv_geom *g) { return g->C * g->SW * d_rows(g) * d_width(g); }

// Kernels of 5x5 and more, and 3x3 of stride 2 (Inception v3's Conv2d_1a, 3->32 on 299x299: im2col +
// GEMM before). One layer, 1 thread, thread CPU time, median of 9 (Benchmarks/spans_kernel.c's stem
// column, loaded machine, load ~15), stem / im2col ms: 3->32 299x299 s2 batch 1 0.53-0.65 / 0.79-1.20
// (4 runs; 0.46 / 0.79 at load ~5), batch 16 12.75 / 17.79; 3->32 224x224 s2 p1 0.26-0.27
// / 0.37-0.41; 4->64 224x224 s2 p1 0.68 / 0.92; 3->24 37x41 s2 p1 0.010 / 0.010. Stride 1 3x3 (VGG's
// first layer) is left where it was: not measured.
// (the tap offsets into d are int32: an image's phase planes stay below 2^31 floats)
//
// At AVX2 (conv_stem_avx2.c's 6 x 2 tile) kernels of 5x5 and more only. Same program, same conditions
// (Benchmarks/spans_kernel.c, Zen 3, 1 thread, stem / im2col ms, 3 runs): ResNet's 3->64 224x224 7x7 s2
// 3.85 / 6.26, 3.74 / 4.85, 4.88 / 7.45; 2x3->16 70x75 7x7 s2 0.20 / 0.41, 0.33 / 0.72; 3->32 64x64 5x5 s1
// 0.33 / 0.36, 0.51 / 0.37; but Inception v3's 3->32 299x299 3x3 s2 1.14 / 1.06, 1.20 / 1.06, 1.23 / 1.07
// (27 taps: each tile's stores weigh more than AVX-512's against its taps).
int conv_stem_suits(const conv_geom *g) {
    const int kernel = (g->KH >= 5 && g->KW >= 5) ||
                       (g->KH == 3 && g->KW == 3 && g->SH == 2 && g->SW == 2 && avx512());
    return ply_cpu_level() >= PLY_CPU_AVX2 && g->C <= MAX_C && kernel && taps(g) <= MAX_TAPS && g->DH == 1 &&
           g->DW == 1 && g->OH >= 1 && g->OW >= 1 && d_floats(g) < INT32_MAX;
}

size_t conv_stem_forward_floats(const conv_geom *g, int64_t threads) {
    return (size_t)(wp_floats(g) + ply_max_i64(threads, 1) * d_floats(g));
}

// wp[(o/B)*B*T + t*B + o%B] = w[o][t] (t = (c*KH + kh)*KW + kw, T taps, B = block_rows; 0 for o >= OC).
static void pack_weights(const conv_geom *g, const float *w, float *wp) {
    const int64_t T = taps(g), B = block_rows(g);
    for (int64_t o = 0; o < g->OC; o += B)
        for (int64_t t = 0; t < T; t++)
            for (int64_t r = 0; r < B; r++) wp[o * T + t * B + r] = o + r < g->OC ? w[(o + r) * T + t] : 0.0f;
}

// d[c][q][r][j] = xp[c][r][j*SW + q] for one image x ([C][H][W]): zero outside x.
static void fill_phases(const conv_geom *g, const float *x, float *d) {
    const int64_t R = d_rows(g), DW = d_width(g);
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t q = 0; q < g->SW; q++)
            for (int64_t r = 0; r < R; r++) {
                float *dst = d + ((c * g->SW + q) * R + r) * DW;
                int64_t h = r - g->PH;
                if (h < 0 || h >= g->H) {
                    for (int64_t j = 0; j < DW; j++) dst[j] = 0.0f;
                    continue;
                }
                // columns j*SW + q - PW inside [0, W) for j in [j0, j1): the rest are padding
                const float *src = x + (c * g->H + h) * g->W + q - g->PW;
                int64_t j0 = ply_min_i64(DW, ply_max_i64(0, (g->PW - q + g->SW - 1) / g->SW));
                int64_t j1 = ply_max_i64(j0, ply_min_i64(DW, (g->W + g->PW - q + g->SW - 1) / g->SW));
                for (int64_t j = 0; j < j0; j++) dst[j] = 0.0f;
                if (g->SW == 2)
                    for (int64_t j = j0; j < j1; j++) dst[j] = src[2 * j];
                else
                    for (int64_t j = j0; j < j1; j++) dst[j] = src[j * g->SW];
                for (int64_t j = j1; j < DW; j++) dst[j] = 0.0f;
            }
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>


// acc(r, v) = sum_{t < T} a[t*MR + r] * b_v[off[t] .. off[t] + 16) for r < R, v < V; then
// y_v[r*P + 0..16) (lanes m_v) = bias[r] + acc(r, v), relu'd when `relu` (NaN passes). R and V are
// constants in each instance; the accumulators are named variables (see conv_1x1.c).
#define FOR_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = c##r##_0, c##r##_2 = c##r##_0;
#define FMA(r)                                                                                                        \
    if (R > (r)) {                                                                                                    \
        __m512 av = _mm512_set1_ps(a[(r)]);                                                                           \
        c##r##_0 = _mm512_fmadd_ps(av, b0, c##r##_0);                                                                 \
        if (V >= 2) c##r##_1 = _mm512_fmadd_ps(av, b1, c##r##_1);                                                     \
        if (V == 3) c##r##_2 = _mm512_fmadd_ps(av, b2, c##r##_2);                                                     \
    }
#define STORE1(r, v)                                                                                                  \
    {                                                                                                                 \
        __m512 t = _mm512_add_ps(c##r##_##v, _mm512_set1_ps(bias ? bias[r] : 0.0f));                                  \
        if (relu) t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_NLE_UQ), t);                \
        _mm512_mask_storeu_ps(y##v + (r) * P, m##v, t);                                                               \
    }
#define STORE(r)                                                                                                      \
    if (R > (r)) {                                                                                                    \
        STORE1(r, 0)                                                                                                  \
        if (V >= 2) STORE1(r, 1)                                                                                      \
        if (V == 3) STORE1(r, 2)                                                                                      \
    }

// (B: the rows of a block of packed weights, the step of `a` per tap.)
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void tile(const int B, const int R, const int V,
                                                                        int64_t T, const float *a,
                                                                        const int32_t *off, const float *const d[3],
                                                                        float *const y[3], int64_t P,
                                                                        const __mmask16 m[3], const float *bias,
                                                                        int relu) {
    FOR_ROWS(DECL)
    const float *d0 = d[0], *d1 = d[1], *d2 = d[2];
    float *y0 = y[0], *y1 = y[1], *y2 = y[2];
    __mmask16 m0 = m[0], m1 = m[1], m2 = m[2];
    for (int64_t t = 0; t < T; t++, a += B) {
        __m512 b0 = _mm512_loadu_ps(d0 + off[t]);
        __m512 b1 = V >= 2 ? _mm512_loadu_ps(d1 + off[t]) : b0;
        __m512 b2 = V == 3 ? _mm512_loadu_ps(d2 + off[t]) : b0;
        FOR_ROWS(FMA)
    }
    (void)c0_1; (void)c0_2; (void)y1; (void)y2; (void)m1; (void)m2;
    FOR_ROWS(STORE)
}

#define TILE_FN(B, R, V)                                                                                              \
    PLY_TARGET_AVX512 static void tile##B##_##R##_##V(int64_t T, const float *a, const int32_t *off,                  \
                                                      const float *const d[3], float *const y[3], int64_t P,          \
                                                      const __mmask16 m[3], const float *bias, int relu) {            \
        tile(B, R, V, T, a, off, d, y, P, m, bias, relu);                                                             \
    }
#define TILE_FNS(R) TILE_FN(12, R, 1) TILE_FN(12, R, 2)
TILE_FNS(1) TILE_FNS(2) TILE_FNS(3) TILE_FNS(4) TILE_FNS(5) TILE_FNS(6) TILE_FNS(7) TILE_FNS(8) TILE_FNS(9)
TILE_FNS(10) TILE_FNS(11) TILE_FNS(12)
TILE_FN(8, 8, 1) TILE_FN(8, 8, 2) TILE_FN(8, 8, 3)
typedef void (*tile_fn)(int64_t, const float *, const int32_t *, const float *const[3], float *const[3], int64_t,
                        const __mmask16[3], const float *, int);
#define TILE_ROW(R) {0, tile12_##R##_1, tile12_##R##_2}
// tiles[R][V]: R rows (blocks of MR), V vectors; wide_tiles[V]: 8 rows (blocks of MR3)
static const tile_fn tiles[MR + 1][3] = {{0, 0, 0},   TILE_ROW(1),  TILE_ROW(2), TILE_ROW(3), TILE_ROW(4),
                                         TILE_ROW(5), TILE_ROW(6),  TILE_ROW(7), TILE_ROW(8), TILE_ROW(9),
                                         TILE_ROW(10), TILE_ROW(11), TILE_ROW(12)};
static const tile_fn wide_tiles[4] = {0, tile8_8_1, tile8_8_2, tile8_8_3};
#endif

typedef struct {
    const conv_geom *g;
    const float *wp, *bias, *x;
    float *y, *d; // d: d_floats per worker
    int relu;
    int64_t workers, groups; // groups of G vectors per image
    int G;                   // vectors per group: 3 (wide) or 2
} job_stem;

// Worker wk: the groups [N*groups*wk/workers, N*groups*(wk+1)/workers) of the batch, in order; the
// phase planes of each image it enters filled first.
static void run_workers(void *ctx, int64_t w0, int64_t w1) {
#if PLY_HAVE_X86_TARGETS
    const job_stem *j = ctx;
    const conv_geom *g = j->g;
    const int64_t L = lanes(), T = taps(g), R = d_rows(g), DW = d_width(g), P = g->OH * g->OW, vpr = (g->OW + L - 1) / L;
    const int64_t nv = g->OH * vpr, total = g->N * j->groups, B = block_rows(g);
    const int top = avx512();
    int32_t off[MAX_TAPS]; // off[t] = (c*SW + kw % SW)*R*DW + kh*DW + kw / SW: tap t's float in d past a vector's base
    for (int64_t c = 0, t = 0; c < g->C; c++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++, t++)
                off[t] = (int32_t)((c * g->SW + kw % g->SW) * R * DW + kh * DW + kw / g->SW);
    for (int64_t wk = w0; wk < w1; wk++) {
        float *d = j->d + wk * d_floats(g);
        int64_t have = -1;
        for (int64_t i = total * wk / j->workers; i < total * (wk + 1) / j->workers; i++) {
            int64_t n = i / j->groups, v = i % j->groups * j->G;
            if (n != have) fill_phases(g, j->x + n * g->C * g->H * g->W, d);
            have = n;
            // vector u: output row u / vpr, columns from L*(u % vpr); its base in d: row oh*SH, column ow0
            const int V = (int)ply_min_i64(j->G, nv - v);
            const float *dv[3] = {d, d, d};
            float *yv[3] = {NULL, NULL, NULL}, *yn = j->y + n * g->OC * P;
            int64_t left[3] = {0, 0, 0}; // lanes of vector u inside its row
            __mmask16 m[3] = {0, 0, 0};
            for (int u = 0; u < V; u++) {
                int64_t oh = (v + u) / vpr, ow0 = (v + u) % vpr * L;
                dv[u] = d + oh * g->SH * DW + ow0;
                yv[u] = yn + oh * g->OW + ow0;
                left[u] = ply_min_i64(L, g->OW - ow0);
                m[u] = ply_lanes16(left[u]);
            }
            for (int64_t o = 0; o < g->OC; o += B) {
                int r = (int)ply_min_i64(B, g->OC - o);
                float *yo[3] = {yv[0] + o * P, V > 1 ? yv[1] + o * P : NULL, V > 2 ? yv[2] + o * P : NULL};
                const float *bias = j->bias ? j->bias + o : NULL;
                if (!top) conv_stem_tile_avx2(r, V, T, j->wp + o * T, off, dv, yo, P, left, bias, j->relu);
                else (B == MR3 ? wide_tiles[V] : tiles[r][V])(T, j->wp + o * T, off, dv, yo, P, m, bias, j->relu);
            }
        }
    }
#else
    (void)ctx; (void)w0; (void)w1;
#endif
}

void conv_stem_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                       int relu, const float *x, float *y, float *scratch) {
    threads = ply_max_i64(threads, 1);
    const int G = group_vectors(g);
    const int64_t vpr = (g->OW + lanes() - 1) / lanes(), groups = (g->OH * vpr + G - 1) / G;
    pack_weights(g, w, scratch);
    job_stem j = {.g = g, .wp = scratch, .bias = bias, .x = x, .y = y, .d = scratch + wp_floats(g), .relu = relu,
                  .groups = groups, .G = G};
    // (whole groups per worker, the batch's in order: each worker fills the phase planes of at most
    // ceil(N/workers) + 1 images)
    j.workers = ply_min_i64(threads, g->N * groups);
    if (j.workers > 1) host->parallel_for(host, j.workers, 1, run_workers, &j);
    else run_workers(&j, 0, 1);
}
