/*
 * The GEMM plans' columns (conv_gemm.c): im2col and its adjoint col2im over a range of the batch's
 * output columns col = n*P + oh*OW + ow, AVX-512 strip routines where they run, B packed in strips
 * for conv_kernel_gemm, and the scatter of product tiles into y / gather of dy into tiles.
 */
#include "plugin_support.h"

#include <string.h>

#include "conv_gemm.h"
#include "conv_gemm_cols.h"
#include "conv_kernel.h"

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
} strip_map;

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

// Bit L of k moved to bit 2L (the lanes of a stride-2 strip as elements of its input row).
static inline uint64_t spread_even(uint32_t k) {
    uint64_t x = k;
    x = (x | x << 16) & 0x0000FFFF0000FFFFull;
    x = (x | x << 8) & 0x00FF00FF00FF00FFull;
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0Full;
    x = (x | x << 2) & 0x3333333333333333ull;
    x = (x | x << 1) & 0x5555555555555555ull;
    return x;
}

// im2col of one strip: row k of channels [ch0, ch1) goes to dst + k*ld, lanes [0, width) (the
// rest of the NR lanes too, as zeros, when `full`). One masked load (stride 1), two masked loads
// and a permute (stride 2) or a masked gather (other strides) per segment and half-strip instead
// of element-wise copies.
PLY_TARGET_AVX512 static void pack_strip512(float *dst, int64_t ld, int full, const strip_map *m, const float *x,
                                            const conv_geom *g, int64_t ch0, int64_t ch1) {
    const int64_t HW = g->H * g->W;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const uint32_t keep = full ? 0xFFFFFFFFu : (uint32_t)((1ull << m->width) - 1);
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
                        // lane L reads q[2L]: the 64 floats from q by masked loads (element 2L where
                        // lane L is), the even ones picked; in place of the gathers, ResNet-18's 7x7
                        // stem alone 2.33 -> 2.25 ms (1 thread, CPU time, 3 alternating runs)
                        const float *q = r + m->first[sg];
                        uint64_t e = spread_even(k);
                        __m512 t0 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)e, q), even,
                                                           _mm512_maskz_loadu_ps((__mmask16)(e >> 16), q + 16));
                        __m512 t1 = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)(e >> 32), q + 32), even,
                                                           _mm512_maskz_loadu_ps((__mmask16)(e >> 48), q + 48));
                        v0 = _mm512_mask_mov_ps(v0, (__mmask16)k, t0);
                        v1 = _mm512_mask_mov_ps(v1, (__mmask16)(k >> 16), t1);
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
void conv_gemm_im2col(float *cols, int64_t ld, const float *x, const conv_geom *g, int64_t c0, int64_t c1,
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
void conv_gemm_col2im(float *dx, const float *dcols, int64_t ld, const conv_geom *g, int64_t c0, int64_t c1,
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
void conv_gemm_pack_strips(float *bp, const float *x, const conv_geom *g, int64_t c0, int64_t c1, int64_t ch0,
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
void conv_gemm_scatter_out(float *y, const float *tmp, int64_t ld, const float *bias, int relu, const conv_geom *g,
                           int64_t c0, int64_t c1, int64_t o0, int64_t o1) {
    const int64_t P = gemm_p(g);
    for (int64_t col = c0; col < c1;) {
        int64_t n = col / P, p = col % P, len = ply_min_i64(P - p, c1 - col);
        for (int64_t o = o0; o < o1; o++) {
            const float *src = tmp + (o - o0) * ld + (col - c0);
            float *dst = y + (n * g->YC + o) * P + p;
            float b = bias ? bias[o] : 0.0f;
            if (relu) for (int64_t i = 0; i < len; i++) { float v = src[i] + b; dst[i] = v <= 0.0f ? 0.0f : v; } // NaN passes
            else for (int64_t i = 0; i < len; i++) dst[i] = src[i] + b;
        }
        col += len;
    }
}

// tmp[o - o0][col - c0] = dy[n][o][p] for columns [c0, c1) and rows [o0, o1).
void conv_gemm_gather_dy(float *tmp, int64_t ld, const float *dy, const conv_geom *g, int64_t c0, int64_t c1, int64_t o0,
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
int64_t conv_gemm_tile_end(const conv_geom *g, int64_t c, int64_t end, int64_t tile) {
    int64_t P = gemm_p(g), e = ply_min_i64(end, c + tile);
    if (P >= TILE_MIN) e = ply_min_i64(e, (c / P + 1) * P);
    return e;
}
