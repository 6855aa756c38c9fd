/*
 * The pointwise product of conv_1x1.c: AVX-512 register tiles over strips of positions (packed in L1
 * on large planes, read in place on small ones), dot products for the last positions of small planes,
 * and conv_1x1_avx2.c's below the AVX-512 level (see conv_1x1_product.h).
 */
#include "plugin_support.h"

#include "conv_1x1.h"
#include "conv_1x1_avx2.h"
#include "conv_1x1_product.h"

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
    if (conv_1x1_small_order(K, P)) { // (the same test as conv_1x1_packs; group_images keeps ni*K*P within PLANE_FLOATS)
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
void conv_1x1_product(const float *w, const float *wp, int64_t K, int64_t OC, const float *xs, float *y,
                      int64_t P, int64_t ni, int64_t o0, int64_t o1, int64_t p0, int64_t p1, const float *bias,
                      const float *res, int relu, float *xt, float *xp) {
    // (res only at the AVX-512 level: conv_1x1_adds_residual)
    if (ply_cpu_level() >= PLY_CPU_AVX512) product(w, wp, K, OC, xs, y, P, ni, o0, o1, p0, p1, bias, res, relu, xt, xp);
    else conv_1x1_product_avx2(w, wp, K, OC, xs, y, P, ni, o0, o1, p0, p1, bias, relu, xp);
}
#endif
