/*
 * conv2d as GEMM over the whole batch (see conv_gemm.h for the plans).
 */
#include "plugin_support.h"

#include "conv_gemm.h"

#include "plugin_blas.h"

#include "conv_kernel.h"
#include <string.h>

// im2col floats of one tile (about 1 MB: half of this CPU's L2 per core).
#define TILE_FLOATS (1 << 18)
#define TILE_MIN 64
#define TILE_MAX 4096
// Forward: fewer columns per thread than this and the threads split the rows.
#define ROWS_FORWARD_COLS 192

static int64_t gemm_k(const conv_geom *g) { return g->C * g->KH * g->KW; }
static int64_t gemm_p(const conv_geom *g) { return g->OH * g->OW; }
static int64_t gemm_cols(const conv_geom *g) { return g->N * gemm_p(g); }

static int is_pointwise(const conv_geom *g) {
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PH == 0 && g->PW == 0;
}

// Columns per tile: about TILE_FLOATS of im2col, a multiple of 16.
static int64_t tile_width(const conv_geom *g) {
    int64_t t = TILE_FLOATS / gemm_k(g);
    t = ply_max_i64(TILE_MIN, ply_min_i64(TILE_MAX, t));
    return t - t % CONV_KERNEL_NR;
}

static int64_t round_nr(int64_t n) { return ply_round_up_i64(n, CONV_KERNEL_NR); }

// ----------------------------------------------------------------------------
// im2col / col2im over a range of columns

// The output columns [lo[kj], hi[kj]) of [ow0, ow1) whose input column ow*SW - PW + kj*DW is inside
// the image, for every kj < KW (at most MAX_KW: wider kernels compute it per row).
#define MAX_KW 16
static void column_ranges(const conv_geom *g, int64_t ow0, int64_t ow1, int64_t *lo, int64_t *hi) {
    for (int64_t kj = 0; kj < g->KW && kj < MAX_KW; kj++) {
        ply_conv_out_range(kj * g->DW, g->SW, g->PW, g->W, g->OW, &lo[kj], &hi[kj]);
        // (lo clamped to ow1 too: with padding >= 2 the first live column may lie past a short segment's end)
        lo[kj] = ply_min_i64(ply_max_i64(lo[kj], ow0), ow1);
        hi[kj] = ply_max_i64(ply_min_i64(hi[kj], ow1), lo[kj]);
    }
}

static void column_range(const conv_geom *g, const int64_t *los, const int64_t *his, int64_t kj, int64_t ow0,
                         int64_t ow1, int64_t *lo, int64_t *hi) {
    if (kj < MAX_KW) { *lo = los[kj]; *hi = his[kj]; return; }
    ply_conv_out_range(kj * g->DW, g->SW, g->PW, g->W, g->OW, lo, hi);
    *lo = ply_min_i64(ply_max_i64(*lo, ow0), ow1);
    *hi = ply_max_i64(ply_min_i64(*hi, ow1), *lo);
}

// cols[((c - ch0)*KH + ki)*KW + kj][col - c0] = x[n][c][oh*SH - PH + ki*DH][ow*SW - PW + kj*DW] (0 outside)
// for columns col = n*P + oh*OW + ow in [c0, c1) and channels [ch0, ch1); rows are ld floats apart.
// x[n][c] is the plane at x + (n*XC + c)*H*W: a group's call passes x at its first channel.
// Runs are short (a strip of the kernel's product is 32 columns), so they are copied inline.
static inline __attribute__((always_inline)) void im2col_cols_body(float *cols, int64_t ld, const float *x,
                                                                   const conv_geom *g, int64_t c0, int64_t c1,
                                                                   int64_t ch0, int64_t ch1) {
    const int64_t P = gemm_p(g), KK = g->KH * g->KW, HW = g->H * g->W, SW = g->SW;
    int64_t los[MAX_KW], his[MAX_KW];
    for (int64_t col = c0; col < c1;) {
        int64_t n = col / P, p = col % P, oh = p / g->OW, ow0 = p % g->OW;
        int64_t ow1 = ply_min_i64(g->OW, ow0 + (c1 - col));
        float *base = cols + (col - c0) - ow0; // base[ow] is column (n, oh, ow)
        column_ranges(g, ow0, ow1, los, his);
        for (int64_t c = ch0; c < ch1; c++) {
            const float *xc = x + (n * g->XC + c) * HW;
            for (int64_t ki = 0; ki < g->KH; ki++) {
                int64_t ih = oh * g->SH - g->PH + ki * g->DH;
                int inside = ih >= 0 && ih < g->H;
                for (int64_t kj = 0; kj < g->KW; kj++) {
                    float *dst = base + ((c - ch0) * KK + ki * g->KW + kj) * ld;
                    int64_t lo = ow1, hi = ow1;
                    if (inside) column_range(g, los, his, kj, ow0, ow1, &lo, &hi);
                    for (int64_t ow = ow0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (lo < hi) {
                        const float *src = xc + ih * g->W + kj * g->DW - g->PW;
                        if (SW == 1) for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow];
                        else for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * SW];
                    }
                    for (int64_t ow = hi; ow < ow1; ow++) dst[ow] = 0.0f;
                }
            }
        }
        col += ow1 - ow0;
    }
}

// Compiled for the baseline and for AVX2 (PLY_AVX2_CLONE): below the AVX-512 level the forward's
// columns all come from here. GoogLeNet's batch-1 inference at PLY_CPU=avx2, cpu-clock samples
// relative to OpenBLAS's sgemm (two profiles each): 0.71-0.72 SSE2, 0.57-0.58 with this copy.
PLY_AVX2_CLONE(im2col_cols, (float *cols, int64_t ld, const float *x, const conv_geom *g, int64_t c0, int64_t c1,
                             int64_t ch0, int64_t ch1),
               (cols, ld, x, g, c0, c1, ch0, ch1))

// The adjoint: dx[n][c][ih][iw] += every dcols entry that im2col_cols would have read from it.
static void col2im_cols(float *dx, const float *dcols, int64_t ld, const conv_geom *g, int64_t c0, int64_t c1,
                        int64_t ch0, int64_t ch1) {
    const int64_t P = gemm_p(g), KK = g->KH * g->KW, HW = g->H * g->W, SW = g->SW;
    int64_t los[MAX_KW], his[MAX_KW];
    for (int64_t col = c0; col < c1;) {
        int64_t n = col / P, p = col % P, oh = p / g->OW, ow0 = p % g->OW;
        int64_t ow1 = ply_min_i64(g->OW, ow0 + (c1 - col));
        const float *base = dcols + (col - c0) - ow0;
        column_ranges(g, ow0, ow1, los, his);
        for (int64_t c = ch0; c < ch1; c++) {
            float *dxc = dx + (n * g->XC + c) * HW;
            for (int64_t ki = 0; ki < g->KH; ki++) {
                int64_t ih = oh * g->SH - g->PH + ki * g->DH;
                if (ih < 0 || ih >= g->H) continue;
                for (int64_t kj = 0; kj < g->KW; kj++) {
                    const float *src = base + ((c - ch0) * KK + ki * g->KW + kj) * ld;
                    int64_t lo, hi;
                    column_range(g, los, his, kj, ow0, ow1, &lo, &hi);
                    float *dst = dxc + ih * g->W + kj * g->DW - g->PW;
                    if (SW == 1) for (int64_t ow = lo; ow < hi; ow++) dst[ow] += src[ow];
                    else for (int64_t ow = lo; ow < hi; ow++) dst[ow * SW] += src[ow];
                }
            }
        }
        col += ow1 - ow0;
    }
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

// The columns [s0, s1) of one strip (at most NR): a few runs of one output row each
// ("segments"), and per segment and kernel column the lanes whose input column is inside.
typedef struct {
    int64_t nseg, width;
    int64_t x[CONV_KERNEL_NR], ih0[CONV_KERNEL_NR]; // image offset, input row at ki = 0
    int32_t first[CONV_KERNEL_NR];                  // input column of lane 0 at kj = 0 (stride 1)
    uint32_t mask[CONV_KERNEL_NR][MAX_KW];
    __m512i idx0[CONV_KERNEL_NR], idx1[CONV_KERNEL_NR]; // input column of each lane at kj = 0 (strided)
    // stride 2: mask[sg][kj] spread to the even bits (lane L -> bit 2L), the load masks of the 64
    // floats from lane 0's input column on, 16 bits per load
    uint64_t wmask[CONV_KERNEL_NR][MAX_KW];
} strip_map;

// Bit i of b moved to bit 2i (i < 32), the odd bits zero.
static uint64_t spread_even(uint32_t b) {
    uint64_t x = b;
    x = (x | x << 16) & 0x0000FFFF0000FFFFull;
    x = (x | x << 8) & 0x00FF00FF00FF00FFull;
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | x << 2) & 0x3333333333333333ull;
    return (x | x << 1) & 0x5555555555555555ull;
}

PLY_TARGET_AVX512 static void strip_segments(const conv_geom *g, int64_t s0, int64_t s1, strip_map *m) {
    enum { NR = CONV_KERNEL_NR };
    const int64_t P = gemm_p(g), HW = g->H * g->W;
    m->nseg = 0;
    m->width = s1 - s0;
    for (int64_t col = s0; col < s1; m->nseg++) {
        int64_t sg = m->nseg, n = col / P, p = col % P, oh = p / g->OW, ow0 = p % g->OW;
        int64_t ow1 = ply_min_i64(g->OW, ow0 + (s1 - col)), lane = col - s0;
        m->x[sg] = n * g->XC * HW;
        m->ih0[sg] = oh * g->SH - g->PH;
        // lane L reads input column (ow0 + L - lane) * SW - PW + kj*DW
        m->first[sg] = (int32_t)((ow0 - lane) * g->SW - g->PW);
        for (int64_t kj = 0; kj < g->KW; kj++) {
            int64_t lo, hi;
            ply_conv_out_range(kj * g->DW, g->SW, g->PW, g->W, g->OW, &lo, &hi);
            lo = ply_max_i64(lo, ow0); hi = ply_max_i64(ply_min_i64(hi, ow1), lo);
            uint64_t bits = hi > lo ? ((1ull << (hi - lo)) - 1) << (lo - ow0 + lane) : 0;
            m->mask[sg][kj] = (uint32_t)bits;
            m->wmask[sg][kj] = spread_even((uint32_t)bits);
        }
        if (g->SW != 1) {
            int32_t off[NR];
            for (int L = 0; L < NR; L++) off[L] = (int32_t)((ow0 + L - lane) * g->SW - g->PW);
            m->idx0[sg] = _mm512_loadu_si512(off);
            m->idx1[sg] = _mm512_loadu_si512(off + 16);
        }
        col += ow1 - ow0;
    }
}

// im2col of one strip: row k of channels [ch0, ch1) goes to dst + k*ld, lanes [0, width) (the
// rest of the NR lanes too, as zeros, when `full`). One masked load (stride 1) or masked
// gather (other strides) per segment and half-strip instead of element-wise copies; stride 2
// loads the 32 consecutive floats under a half-strip (masked to its live lanes' even
// positions: lane L of the half at v = 0, 1 reads q[32v + 2L], q = the row at lane 0's input
// column) and keeps the even ones with one permute. ResNet-50's 128->128 3x3 stride 2 on 56x56,
// batch 16, 1 thread (`ply bench-layers --cpu-time` of that one layer, loaded machine): gathers
// 42.0-42.9 ms (pack_strip512 22% of the samples, the product 46%), this: see the commit.
PLY_TARGET_AVX512 static void pack_strip512(float *dst, int64_t ld, int full, const strip_map *m, const float *x,
                                            const conv_geom *g, int64_t ch0, int64_t ch1) {
    const int64_t HW = g->H * g->W;
    const uint32_t keep = full ? 0xFFFFFFFFu : (uint32_t)((1ull << m->width) - 1);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int64_t c = ch0; c < ch1; c++) {
        for (int64_t ki = 0; ki < g->KH; ki++) {
            for (int64_t kj = 0; kj < g->KW; kj++, dst += ld) {
                __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
                for (int64_t sg = 0; sg < m->nseg; sg++) {
                    int64_t ih = m->ih0[sg] + ki * g->DH;
                    uint32_t k = m->mask[sg][kj];
                    if (ih < 0 || ih >= g->H || k == 0) continue;
                    const float *r = x + m->x[sg] + c * HW + ih * g->W + kj * g->DW;
                    if (g->SW == 1) {
                        v0 = _mm512_mask_loadu_ps(v0, (__mmask16)k, r + m->first[sg]);
                        v1 = _mm512_mask_loadu_ps(v1, (__mmask16)(k >> 16), r + m->first[sg] + 16);
                    } else if (g->SW == 2) {
                        const float *q = r + m->first[sg];
                        uint64_t wm = m->wmask[sg][kj];
                        __m512 lo = _mm512_maskz_loadu_ps((__mmask16)wm, q);
                        __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(wm >> 16), q + 16);
                        v0 = _mm512_mask_mov_ps(v0, (__mmask16)k, _mm512_permutex2var_ps(lo, even, hi));
                        if (k >> 16) {
                            lo = _mm512_maskz_loadu_ps((__mmask16)(wm >> 32), q + 32);
                            hi = _mm512_maskz_loadu_ps((__mmask16)(wm >> 48), q + 48);
                            v1 = _mm512_mask_mov_ps(v1, (__mmask16)(k >> 16), _mm512_permutex2var_ps(lo, even, hi));
                        }
                    } else {
                        v0 = _mm512_mask_i32gather_ps(v0, (__mmask16)k, m->idx0[sg], r, 4);
                        v1 = _mm512_mask_i32gather_ps(v1, (__mmask16)(k >> 16), m->idx1[sg], r, 4);
                    }
                }
                _mm512_mask_storeu_ps(dst, (__mmask16)keep, v0);
                _mm512_mask_storeu_ps(dst + 16, (__mmask16)(keep >> 16), v1);
            }
        }
    }
}

// col2im of one strip (stride 1): dx gets row k of channels [ch0, ch1) from src + k*ld, lanes
// [0, width). Within a row, segments are different output rows, so they touch different dx.
PLY_TARGET_AVX512 static void unpack_strip512(float *dx, const float *src, int64_t ld, const strip_map *m, const conv_geom *g,
                                              int64_t ch0, int64_t ch1) {
    const int64_t HW = g->H * g->W;
    const uint32_t keep = (uint32_t)((1ull << m->width) - 1); // the row may end at the strip's width
    for (int64_t c = ch0; c < ch1; c++) {
        for (int64_t ki = 0; ki < g->KH; ki++) {
            for (int64_t kj = 0; kj < g->KW; kj++, src += ld) {
                __m512 v0 = _mm512_maskz_loadu_ps((__mmask16)keep, src);
                __m512 v1 = _mm512_maskz_loadu_ps((__mmask16)(keep >> 16), src + 16);
                for (int64_t sg = 0; sg < m->nseg; sg++) {
                    int64_t ih = m->ih0[sg] + ki * g->DH;
                    uint32_t k = m->mask[sg][kj];
                    if (ih < 0 || ih >= g->H || k == 0) continue;
                    float *r = dx + m->x[sg] + c * HW + ih * g->W + kj * g->DW + m->first[sg];
                    __mmask16 k0 = (__mmask16)k, k1 = (__mmask16)(k >> 16);
                    _mm512_mask_storeu_ps(r, k0, _mm512_add_ps(_mm512_maskz_loadu_ps(k0, r), v0));
                    _mm512_mask_storeu_ps(r + 16, k1, _mm512_add_ps(_mm512_maskz_loadu_ps(k1, r + 16), v1));
                }
            }
        }
    }
}

// Whether the strip routines run here: the AVX-512 level and kernels at most MAX_KW wide.
static int strips_fast(const conv_geom *g) { return ply_cpu_level() >= PLY_CPU_AVX512 && g->KW <= MAX_KW; }
#endif

// im2col_cols, a strip of NR columns at a time with the AVX-512 routine when it runs here.
static void im2col_fast(float *cols, int64_t ld, const float *x, const conv_geom *g, int64_t c0, int64_t c1,
                        int64_t ch0, int64_t ch1) {
#if PLY_HAVE_X86_TARGETS
    if (strips_fast(g)) {
        strip_map m;
        for (int64_t s = c0; s < c1; s += CONV_KERNEL_NR) {
            int64_t e = ply_min_i64(s + CONV_KERNEL_NR, c1);
            strip_segments(g, s, e, &m);
            pack_strip512(cols + (s - c0), ld, 0, &m, x, g, ch0, ch1);
        }
        return;
    }
#endif
    im2col_cols(cols, ld, x, g, c0, c1, ch0, ch1);
}

// col2im_cols likewise, with the AVX-512 routine for stride 1.
static void col2im_fast(float *dx, const float *dcols, int64_t ld, const conv_geom *g, int64_t c0, int64_t c1,
                        int64_t ch0, int64_t ch1) {
#if PLY_HAVE_X86_TARGETS
    if (strips_fast(g) && g->SW == 1) {
        strip_map m;
        for (int64_t s = c0; s < c1; s += CONV_KERNEL_NR) {
            int64_t e = ply_min_i64(s + CONV_KERNEL_NR, c1);
            strip_segments(g, s, e, &m);
            unpack_strip512(dx, dcols + (s - c0), ld, &m, g, ch0, ch1);
        }
        return;
    }
#endif
    col2im_cols(dx, dcols, ld, g, c0, c1, ch0, ch1);
}

// B packed for conv_kernel_gemm: columns [c0, c1) in strips of NR columns, rows of channels
// [ch0, ch1) only; the columns past c1 in the last strip are zeroed.
static void pack_strips(float *bp, const float *x, const conv_geom *g, int64_t c0, int64_t c1, int64_t ch0,
                        int64_t ch1) {
    const int64_t NR = CONV_KERNEL_NR, K = gemm_k(g), KK = g->KH * g->KW;
    for (int64_t s = c0; s < c1; s += NR) {
        int64_t e = ply_min_i64(s + NR, c1);
        float *strip = bp + (s - c0) / NR * K * NR + ch0 * KK * NR;
#if PLY_HAVE_X86_TARGETS
        if (strips_fast(g)) {
            strip_map m;
            strip_segments(g, s, e, &m);
            pack_strip512(strip, NR, 1, &m, x, g, ch0, ch1);
            continue;
        }
#endif
        im2col_cols(strip, NR, x, g, s, e, ch0, ch1);
        if (e - s < NR)
            for (int64_t k = 0; k < (ch1 - ch0) * KK; k++) memset(strip + k * NR + (e - s), 0, (size_t)(NR - (e - s)) * sizeof(float));
    }
}

// y[n][o][p] = max?(tmp[o - o0][col - c0] + bias[o]) for columns [c0, c1) and rows [o0, o1).
static void scatter_out(float *y, const float *tmp, int64_t ld, const float *bias, int relu, const conv_geom *g,
                        int64_t c0, int64_t c1, int64_t o0, int64_t o1) {
    const int64_t P = gemm_p(g);
    for (int64_t col = c0; col < c1;) {
        int64_t n = col / P, p = col % P, len = ply_min_i64(P - p, c1 - col);
        for (int64_t o = o0; o < o1; o++) {
            const float *src = tmp + (o - o0) * ld + (col - c0);
            float *dst = y + (n * g->YC + o) * P + p;
            float b = bias ? bias[o] : 0.0f;
            if (relu) for (int64_t i = 0; i < len; i++) { float v = src[i] + b; dst[i] = (v > 0.0f || v != v) ? v : 0.0f; }
            else for (int64_t i = 0; i < len; i++) dst[i] = src[i] + b;
        }
        col += len;
    }
}

// tmp[o - o0][col - c0] = dy[n][o][p] for columns [c0, c1) and rows [o0, o1).
static void gather_dy(float *tmp, int64_t ld, const float *dy, const conv_geom *g, int64_t c0, int64_t c1, int64_t o0,
                      int64_t o1) {
    const int64_t P = gemm_p(g);
    for (int64_t col = c0; col < c1;) {
        int64_t n = col / P, p = col % P, len = ply_min_i64(P - p, c1 - col);
        for (int64_t o = o0; o < o1; o++)
            memcpy(tmp + (o - o0) * ld + (col - c0), dy + (n * g->YC + o) * P + p, (size_t)len * sizeof(float));
        col += len;
    }
}

// The end of the tile that starts at column c in [c, end): at most `tile` columns, and cut at the
// image boundary when images are at least TILE_MIN wide, so that such tiles lie in one image.
static int64_t tile_end(const conv_geom *g, int64_t c, int64_t end, int64_t tile) {
    int64_t P = gemm_p(g), e = ply_min_i64(end, c + tile);
    if (P >= TILE_MIN) e = ply_min_i64(e, (c / P + 1) * P);
    return e;
}

// The thread's share [*b, *e) of n items split over `parts`.
static void share(int64_t n, int64_t parts, int64_t t, int64_t *b, int64_t *e) {
    *b = n * t / parts;
    *e = n * (t + 1) / parts;
}

// ----------------------------------------------------------------------------
// forward

typedef struct {
    const conv_geom *g;
    const float *w, *bias, *x;
    float *y, *scratch;
    int64_t parts;
    int relu;
    int kernel;   // conv_kernel_gemm instead of OpenBLAS
    size_t slice; // floats of scratch per thread ("columns" plan)
} fwd_job;

// The fused relu, as the built-in one: max(v, 0), NaN passed through.
static void relu_rows(float *y, int64_t ld, int64_t rows, int64_t len) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < len; i++) {
            float v = y[r * ld + i];
            y[r * ld + i] = (v > 0.0f || v != v) ? v : 0.0f;
        }
}

// "columns": thread t computes the columns of its share, tile by tile.
static void forward_columns(void *ctx, int64_t t0, int64_t t1) {
    const fwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), P = gemm_p(g), OC = g->OC, tile = tile_width(g);
    for (int64_t t = t0; t < t1; t++) {
        float *cols = j->scratch + (size_t)t * j->slice, *tmp = cols + K * tile;
        int64_t b, e;
        share(gemm_cols(g), j->parts, t, &b, &e);
        for (int64_t c = b; c < e;) {
            int64_t ce = tile_end(g, c, e, tile), T = ce - c, n = c / P, p = c % P;
            int one_image = (ce - 1) / P == n;
            if (j->kernel) {
                pack_strips(cols, j->x, g, c, ce, 0, g->C);
                float *out = one_image ? j->y + n * g->YC * P + p : tmp;
                int64_t ldc = one_image ? P : T;
                conv_kernel_gemm(j->w, K, 0, OC, j->bias, cols, T, out, ldc, tmp + OC * tile);
                if (one_image && j->relu) relu_rows(out, P, OC, T);
                if (!one_image) scatter_out(j->y, tmp, T, NULL, j->relu, g, c, ce, 0, OC);
                c = ce;
                continue;
            }
            const float *B = cols;
            int64_t ldb = T;
            if (one_image && is_pointwise(g)) {
                B = j->x + n * g->XC * P + p;
                ldb = P;
            } else {
                im2col_fast(cols, T, j->x, g, c, ce, 0, g->C);
            }
            if (one_image) {
                float *out = j->y + n * g->YC * P + p, beta = 0.0f;
                if (j->bias) {
                    for (int64_t o = 0; o < OC; o++)
                        for (int64_t i = 0; i < T; i++) out[o * P + i] = j->bias[o];
                    beta = 1.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)K, 1.0f, j->w, (int)K, B,
                            (int)ldb, beta, out, (int)P);
                if (j->relu) relu_rows(out, P, OC, T);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)OC, (int)T, (int)K, 1.0f, j->w, (int)K, B,
                            (int)ldb, 0.0f, tmp, (int)T);
                scatter_out(j->y, tmp, T, j->bias, j->relu, g, c, ce, 0, OC);
            }
            c = ce;
        }
    }
}

// "rows", step 1: im2col of every column for the thread's channels.
// scratch: [cols K*NC (NC rounded up to strips)][tmp OC*NC][weight packing, one per thread]
static void forward_rows_im2col(void *ctx, int64_t t0, int64_t t1) {
    const fwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1;
        share(g->C, j->parts, t, &c0, &c1);
        if (c0 >= c1) continue;
        if (j->kernel) pack_strips(j->scratch, j->x, g, 0, NC, c0, c1);
        else im2col_fast(j->scratch + c0 * KK * NC, NC, j->x, g, 0, NC, c0, c1);
    }
}

// "rows", step 2: the thread's output channels.
static void forward_rows_gemm(void *ctx, int64_t t0, int64_t t1) {
    const fwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g);
    const float *cols = j->scratch;
    float *tmp = j->scratch + K * round_nr(NC);
    // (OpenBLAS reads cols as K x NC; the kernel as strips, K x round_nr(NC) in all)
    for (int64_t t = t0; t < t1; t++) {
        int64_t o0, o1;
        share(g->OC, j->parts, t, &o0, &o1);
        if (o0 >= o1) continue;
        if (j->kernel) {
            float *apack = tmp + g->OC * NC + (size_t)t * conv_kernel_pack_floats(g->OC);
            if (g->N == 1) {
                conv_kernel_gemm(j->w, K, o0, o1, j->bias, cols, NC, j->y + o0 * NC, NC, apack);
                if (j->relu) relu_rows(j->y + o0 * NC, NC, o1 - o0, NC);
            } else {
                conv_kernel_gemm(j->w, K, o0, o1, j->bias, cols, NC, tmp + o0 * NC, NC, apack);
                scatter_out(j->y, tmp + o0 * NC, NC, NULL, j->relu, g, 0, NC, o0, o1);
            }
            continue;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(o1 - o0), (int)NC, (int)K, 1.0f, j->w + o0 * K,
                    (int)K, cols, (int)NC, 0.0f, tmp + o0 * NC, (int)NC);
        scatter_out(j->y, tmp + o0 * NC, NC, j->bias, j->relu, g, 0, NC, o0, o1);
    }
}

static int forward_uses_rows(const conv_geom *g, int64_t threads) {
    return threads > 1 && gemm_cols(g) < ROWS_FORWARD_COLS * threads && g->OC >= 16 * threads;
}

size_t conv_gemm_forward_floats(const conv_geom *g, int64_t threads) {
    const int64_t K = gemm_k(g), NC = gemm_cols(g);
    size_t pack = conv_kernel_pack_floats(g->OC);
    if (forward_uses_rows(g, threads)) return (size_t)(K * round_nr(NC) + g->OC * NC) + pack * (size_t)threads;
    return ((size_t)((K + g->OC) * tile_width(g)) + pack) * (size_t)ply_max_i64(threads, 1);
}

void conv_gemm_forward(const ply_host *host, int64_t threads, int kernel, const conv_geom *g, const float *w,
                       const float *bias, int relu, const float *x, float *y, float *scratch) {
    threads = ply_max_i64(threads, 1);
    fwd_job j = {g, w, bias, x, y, scratch, threads, relu, kernel && ply_cpu_level() >= PLY_CPU_AVX512,
                 (size_t)((gemm_k(g) + g->OC) * tile_width(g)) + conv_kernel_pack_floats(g->OC)};
    if (forward_uses_rows(g, threads)) {
        host->parallel_for(host, threads, 1, forward_rows_im2col, &j);
        host->parallel_for(host, threads, 1, forward_rows_gemm, &j);
        return;
    }
    // fewer parts when the columns are few: no thread gets less than a minimal tile
    j.parts = ply_max_i64(1, ply_min_i64(threads, gemm_cols(g) / TILE_MIN));
    if (j.parts > 1) host->parallel_for(host, j.parts, 1, forward_columns, &j);
    else forward_columns(&j, 0, 1);
}

// ----------------------------------------------------------------------------
// backward

typedef struct {
    const conv_geom *g;
    const float *w, *x, *dy;
    float *dx, *dw, *db, *scratch;
    int64_t parts;
    size_t slice; // floats of scratch per thread ("images" plan)
} bwd_job;

// "rows" scratch: [cols K*NC][dY OC*NC]

// step 1: im2col of the thread's channels and the gathered dY of its output channels.
static void backward_rows_gather(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g), KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1, o0, o1;
        share(g->C, j->parts, t, &c0, &c1);
        share(g->OC, j->parts, t, &o0, &o1);
        if (c0 < c1) im2col_fast(j->scratch + c0 * KK * NC, NC, j->x, g, 0, NC, c0, c1);
        if (o0 < o1) gather_dy(j->scratch + K * NC + o0 * NC, NC, j->dy, g, 0, NC, o0, o1);
    }
}

// step 2: dW and db of the thread's output channels.
static void backward_rows_dw(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g);
    const float *cols = j->scratch, *dY = j->scratch + K * NC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t o0, o1;
        share(g->OC, j->parts, t, &o0, &o1);
        if (o0 >= o1) continue;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(o1 - o0), (int)K, (int)NC, 1.0f, dY + o0 * NC,
                    (int)NC, cols, (int)NC, 1.0f, j->dw + o0 * K, (int)K);
        if (j->db)
            for (int64_t o = o0; o < o1; o++) {
                float s = 0.0f;
                for (int64_t i = 0; i < NC; i++) s += dY[o * NC + i];
                j->db[o] += s;
            }
    }
}

// step 3: dcols of the thread's input channels (over their im2col rows), then col2im into dx.
static void backward_rows_dx(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t NC = gemm_cols(g), K = gemm_k(g), KK = g->KH * g->KW, HW = g->H * g->W;
    float *dcols = j->scratch;
    const float *dY = j->scratch + K * NC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t c0, c1;
        share(g->C, j->parts, t, &c0, &c1);
        if (c0 >= c1) continue;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)((c1 - c0) * KK), (int)NC, (int)g->OC, 1.0f,
                    j->w + c0 * KK, (int)K, dY, (int)NC, 0.0f, dcols + c0 * KK * NC, (int)NC);
        for (int64_t n = 0; n < g->N; n++) memset(j->dx + (n * g->XC + c0) * HW, 0, (size_t)((c1 - c0) * HW) * sizeof(float));
        col2im_fast(j->dx, dcols + c0 * KK * NC, NC, g, 0, NC, c0, c1);
    }
}

// "images": thread t takes images [n0, n1). Its scratch: [cols K*tile][dY OC*tile][dw OC*K][db OC];
// thread 0 adds into the layer's dw / db directly, the others into their partials.
static void backward_images(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), P = gemm_p(g), OC = g->OC, tile = tile_width(g), CHW = g->C * g->H * g->W;
    const int64_t XCHW = g->XC * g->H * g->W; // an image of x and dx (CHW of it are this call's channels)
    for (int64_t t = t0; t < t1; t++) {
        float *cols = j->scratch + (size_t)t * j->slice, *tdy = cols + K * tile;
        float *dw = j->dw, *db = j->db;
        if (t > 0) {
            dw = tdy + OC * tile;
            db = j->db ? dw + OC * K : NULL;
            memset(dw, 0, (size_t)(OC * K + OC) * sizeof(float));
        }
        int64_t n0, n1;
        share(g->N, j->parts, t, &n0, &n1);
        if (j->dx)
            for (int64_t n = n0; n < n1; n++) memset(j->dx + n * XCHW, 0, (size_t)CHW * sizeof(float));
        for (int64_t c = n0 * P, e = n1 * P; c < e;) {
            int64_t ce = tile_end(g, c, e, tile), T = ce - c, n = c / P, p = c % P;
            int one_image = (ce - 1) / P == n;
            const float *B = cols, *dY = tdy;
            int64_t ldb = T, ldy = T;
            if (one_image && is_pointwise(g)) {
                B = j->x + n * XCHW + p;
                ldb = P;
            } else {
                im2col_fast(cols, T, j->x, g, c, ce, 0, g->C);
            }
            if (one_image) {
                dY = j->dy + n * g->YC * P + p;
                ldy = P;
            } else {
                gather_dy(tdy, T, j->dy, g, c, ce, 0, OC);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)OC, (int)K, (int)T, 1.0f, dY, (int)ldy, B,
                        (int)ldb, 1.0f, dw, (int)K);
            if (db)
                for (int64_t o = 0; o < OC; o++) {
                    float s = 0.0f;
                    for (int64_t i = 0; i < T; i++) s += dY[o * ldy + i];
                    db[o] += s;
                }
            if (j->dx) {
                if (one_image && is_pointwise(g)) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)T, (int)OC, 1.0f, j->w, (int)K,
                                dY, (int)ldy, 0.0f, j->dx + n * XCHW + p, (int)P);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)T, (int)OC, 1.0f, j->w, (int)K,
                                dY, (int)ldy, 0.0f, cols, (int)T);
                    col2im_fast(j->dx, cols, T, g, c, ce, 0, g->C);
                }
            }
            c = ce;
        }
    }
}

// Sum the partials of threads 1.. into dw / db, over the weight index range of each thread.
static void backward_reduce(void *ctx, int64_t t0, int64_t t1) {
    const bwd_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t K = gemm_k(g), OC = g->OC, tile = tile_width(g), total = OC * K + OC;
    for (int64_t t = t0; t < t1; t++) {
        int64_t b, e;
        share(total, j->parts, t, &b, &e);
        for (int64_t s = 1; s < j->parts; s++) {
            const float *part = j->scratch + (size_t)s * j->slice + (K + OC) * tile;
            for (int64_t i = b; i < e && i < OC * K; i++) j->dw[i] += part[i];
            if (j->db)
                for (int64_t i = ply_max_i64(b, OC * K); i < e; i++) j->db[i - OC * K] += part[i];
        }
    }
}

// The rows plan pays off where columns are few (small planes or batches: thin per-image tiles);
// with many columns every thread's own images make full-height products and need no
// synchronisation but the final sum (ResNet-18 training 128x3x32x32, 2 threads: 352 -> 419 img/s).
static int backward_uses_rows(const conv_geom *g, int64_t threads, size_t rows_limit) {
    return threads > 1 && gemm_cols(g) < 2048 * threads && (size_t)((gemm_k(g) + g->OC) * gemm_cols(g)) <= rows_limit;
}

size_t conv_gemm_backward_floats(const conv_geom *g, int64_t threads, size_t rows_limit) {
    const int64_t K = gemm_k(g), OC = g->OC;
    if (backward_uses_rows(g, threads, rows_limit)) return (size_t)((K + OC) * gemm_cols(g));
    return (size_t)(((K + OC) * tile_width(g) + OC * K + OC) * ply_max_i64(threads, 1));
}

void conv_gemm_backward(const ply_host *host, int64_t threads, size_t rows_limit, const conv_geom *g, const float *w,
                        const float *x, const float *dy, float *dx, float *dw, float *db, float *scratch) {
    threads = ply_max_i64(threads, 1);
    const int64_t K = gemm_k(g), OC = g->OC;
    bwd_job j = {g, w, x, dy, dx, dw, db, scratch, threads, (size_t)((K + OC) * tile_width(g) + OC * K + OC)};
    if (backward_uses_rows(g, threads, rows_limit)) {
        host->parallel_for(host, threads, 1, backward_rows_gather, &j);
        host->parallel_for(host, threads, 1, backward_rows_dw, &j);
        if (dx) host->parallel_for(host, threads, 1, backward_rows_dx, &j);
        return;
    }
    j.parts = ply_min_i64(threads, g->N);
    if (j.parts <= 1) {
        j.parts = 1;
        backward_images(&j, 0, 1);
        return;
    }
    host->parallel_for(host, j.parts, 1, backward_images, &j);
    host->parallel_for(host, j.parts, 1, backward_reduce, &j);
}
