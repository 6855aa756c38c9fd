/*
 * Depthwise conv2d, direct (see conv_depthwise.h for the index equations and the phase split).
 */
#include "plugin_support.h"

#include "conv_depthwise.h"

#include <string.h>

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>
#endif

// Flat output positions per step: 4 AVX-512 vectors (or 2 x 4 AVX2 vectors) held in registers
// while every tap adds into them. Buffers are padded so that whole blocks may be read and written.
#define BLOCK 64
// Taps summed per kernel call (pointer and weight arrays on the stack); more are summed in turns.
#define TAPS_BATCH 32

// The flat layout of one plane (conv_depthwise.h).
typedef struct {
    int64_t Hq, Wq;    // phase planes
    int64_t phases;    // SH*SW
    int64_t ps;        // floats per phase plane: Hq*Wq plus the reads of a whole last block
    int64_t len;       // output positions computed: OH*Wq rounded up to BLOCK
    int64_t dlen;      // phase positions computed by the backward: Hq*Wq rounded up to BLOCK
    int64_t front;     // dyq's zeros before its first position: covers the largest tap offset
    int64_t dys;       // floats per dyq plane
} dw_plan;

static dw_plan plan_of(const conv_geom *g) {
    dw_plan p;
    int64_t amax = ((g->KH - 1) * g->DH) / g->SH, bmax = ((g->KW - 1) * g->DW) / g->SW;
    p.Hq = g->OH + amax;
    p.Wq = g->OW + bmax;
    p.phases = g->SH * g->SW;
    p.len = ply_round_up_i64(g->OH * p.Wq, BLOCK);
    p.dlen = ply_round_up_i64(p.Hq * p.Wq, BLOCK);
    int64_t off_max = amax * p.Wq + bmax;
    p.ps = ply_round_up_i64(ply_max_i64(off_max + p.len, p.Hq * p.Wq), 16);
    p.front = ply_round_up_i64(off_max, 16);
    p.dys = p.front + ply_max_i64(p.len, p.dlen) + 16;
    return p;
}

// Tap t = ki*KW + kj: its phase plane and its offset in it.
static int64_t tap_phase(const conv_geom *g, int64_t t) {
    return ((t / g->KW) * g->DH % g->SH) * g->SW + (t % g->KW) * g->DW % g->SW;
}
static int64_t tap_offset(const conv_geom *g, const dw_plan *p, int64_t t) {
    return ((t / g->KW) * g->DH / g->SH) * p->Wq + (t % g->KW) * g->DW / g->SW;
}

// Where tap t reads in a plane's phase planes: phase * ps + offset. Kept in the job for kernels of
// up to TAPS_KEPT taps (7x7), since the divisions cost more than a small plane's taps (576x14x14
// stride 2: 0.159 -> 0.132 ms, 960x7x7: 0.121 -> 0.083 ms, conv_dw_forward alone, 1 thread, CPU time).
#define TAPS_KEPT 49
typedef struct { int64_t at[TAPS_KEPT]; } tap_table;

static void tap_table_make(tap_table *tt, const conv_geom *g, const dw_plan *p) {
    for (int64_t t = 0; t < g->KH * g->KW && t < TAPS_KEPT; t++) tt->at[t] = tap_phase(g, t) * p->ps + tap_offset(g, p, t);
}

static int64_t tap_at(const tap_table *tt, const conv_geom *g, const dw_plan *p, int64_t t) {
    return t < TAPS_KEPT ? tt->at[t] : tap_phase(g, t) * p->ps + tap_offset(g, p, t);
}

// ----------------------------------------------------------------------------
// kernels: out[f] = (acc ? out[f] : b) + sum_t w[t] * src[t][f] for f < len (a multiple of BLOCK)

static void taps_sum_generic(float *out, int64_t len, const float *const *src, const float *w, int64_t T, float b,
                             int acc) {
    if (!acc)
        for (int64_t f = 0; f < len; f++) out[f] = b;
    for (int64_t t = 0; t < T; t++) {
        const float *s = src[t];
        float wt = w[t];
        for (int64_t f = 0; f < len; f++) out[f] += wt * s[f];
    }
}

// dw[t] += sum_{f < len} dy[f] * src[t][f]
static void taps_dot_generic(const float *dy, int64_t len, const float *const *src, int64_t T, float *dw) {
    for (int64_t t = 0; t < T; t++) {
        float s = 0.0f;
        for (int64_t f = 0; f < len; f++) s += dy[f] * src[t][f];
        dw[t] += s;
    }
}

#if PLY_HAVE_X86_TARGETS
PLY_TARGET_AVX512 static void taps_sum512(float *out, int64_t len, const float *const *src, const float *w, int64_t T,
                                          float b, int acc) {
    for (int64_t f = 0; f < len; f += BLOCK) {
        __m512 a0, a1, a2, a3;
        if (acc) {
            a0 = _mm512_loadu_ps(out + f); a1 = _mm512_loadu_ps(out + f + 16);
            a2 = _mm512_loadu_ps(out + f + 32); a3 = _mm512_loadu_ps(out + f + 48);
        } else {
            a0 = a1 = a2 = a3 = _mm512_set1_ps(b);
        }
        for (int64_t t = 0; t < T; t++) {
            const float *s = src[t] + f;
            __m512 wt = _mm512_set1_ps(w[t]);
            a0 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(s), a0);
            a1 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(s + 16), a1);
            a2 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(s + 32), a2);
            a3 = _mm512_fmadd_ps(wt, _mm512_loadu_ps(s + 48), a3);
        }
        _mm512_storeu_ps(out + f, a0); _mm512_storeu_ps(out + f + 16, a1);
        _mm512_storeu_ps(out + f + 32, a2); _mm512_storeu_ps(out + f + 48, a3);
    }
}

PLY_TARGET_AVX512 static void taps_dot512(const float *dy, int64_t len, const float *const *src, int64_t T, float *dw) {
    for (int64_t t = 0; t < T; t++) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *s = src[t];
        for (int64_t f = 0; f < len; f += BLOCK) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + f), _mm512_loadu_ps(s + f), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + f + 16), _mm512_loadu_ps(s + f + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + f + 32), _mm512_loadu_ps(s + f + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_loadu_ps(dy + f + 48), _mm512_loadu_ps(s + f + 48), a3);
        }
        dw[t] += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

PLY_TARGET_AVX2 static void taps_sum256(float *out, int64_t len, const float *const *src, const float *w, int64_t T,
                                        float b, int acc) {
    for (int64_t f = 0; f < len; f += 32) {
        __m256 a0, a1, a2, a3;
        if (acc) {
            a0 = _mm256_loadu_ps(out + f); a1 = _mm256_loadu_ps(out + f + 8);
            a2 = _mm256_loadu_ps(out + f + 16); a3 = _mm256_loadu_ps(out + f + 24);
        } else {
            a0 = a1 = a2 = a3 = _mm256_set1_ps(b);
        }
        for (int64_t t = 0; t < T; t++) {
            const float *s = src[t] + f;
            __m256 wt = _mm256_set1_ps(w[t]);
            a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s), a0);
            a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 8), a1);
            a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 16), a2);
            a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 24), a3);
        }
        _mm256_storeu_ps(out + f, a0); _mm256_storeu_ps(out + f + 8, a1);
        _mm256_storeu_ps(out + f + 16, a2); _mm256_storeu_ps(out + f + 24, a3);
    }
}

PLY_TARGET_AVX2 static void taps_dot256(const float *dy, int64_t len, const float *const *src, int64_t T, float *dw) {
    for (int64_t t = 0; t < T; t++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *s = src[t];
        for (int64_t f = 0; f < len; f += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + f), _mm256_loadu_ps(s + f), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + f + 8), _mm256_loadu_ps(s + f + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + f + 16), _mm256_loadu_ps(s + f + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(dy + f + 24), _mm256_loadu_ps(s + f + 24), a3);
        }
        __m256 v = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        dw[t] += _mm_cvtss_f32(h);
    }
}
#endif

static void taps_sum(float *out, int64_t len, const float *const *src, const float *w, int64_t T, float b, int acc) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) { taps_sum512(out, len, src, w, T, b, acc); return; }
    if (ply_cpu_level() >= PLY_CPU_AVX2) { taps_sum256(out, len, src, w, T, b, acc); return; }
#endif
    taps_sum_generic(out, len, src, w, T, b, acc);
}

static void taps_dot(const float *dy, int64_t len, const float *const *src, int64_t T, float *dw) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) { taps_dot512(dy, len, src, T, dw); return; }
    if (ply_cpu_level() >= PLY_CPU_AVX2) { taps_dot256(dy, len, src, T, dw); return; }
#endif
    taps_dot_generic(dy, len, src, T, dw);
}

// ----------------------------------------------------------------------------
// rows in and out: short rows (a 7x7 plane's) are most of the work around the taps, so the
// AVX-512 level copies them with masked loads and stores, and strided ones with gathers, rather
// than through memcpy calls or element by element (Benchmarks/depthwise, 1 thread, CPU ms per
// call through `ply bench-model` on a loaded machine: 960x7x7 0.150 -> 0.123, 144x56x56 stride 2 0.432 -> 0.387 with
// gathers; stride 2 then takes two loads and a permute instead of a gather)

// dst[j] = src[j*stride] for j < n
static void get_row_generic(float *dst, const float *src, int64_t n, int64_t stride) {
    if (stride == 1) memcpy(dst, src, (size_t)n * sizeof(float));
    else for (int64_t j = 0; j < n; j++) dst[j] = src[j * stride];
}

// dst[j] = relu ? max(src[j], 0) (NaN passed) : src[j] for j < n
static void put_row_generic(float *dst, const float *src, int64_t n, int relu) {
    if (!relu) { memcpy(dst, src, (size_t)n * sizeof(float)); return; }
    for (int64_t j = 0; j < n; j++) { float v = src[j]; dst[j] = (v > 0.0f || v != v) ? v : 0.0f; }
}

#if PLY_HAVE_X86_TARGETS

PLY_TARGET_AVX512 static void get_row512(float *dst, const float *src, int64_t n, int64_t stride) {
    if (stride == 1) {
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 k = ply_lanes16(n - j);
            _mm512_mask_storeu_ps(dst + j, k, _mm512_maskz_loadu_ps(k, src + j));
        }
        return;
    }
    if (stride == 2) { // MobileNet's strided layers: the even lanes of two loads, no gather
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for (int64_t j = 0; j < n; j += 16) {
            int64_t left = 2 * (n - j) - 1; // elements src[2j .. 2j + left) are read
            __m512 lo = _mm512_maskz_loadu_ps(ply_lanes16(left), src + 2 * j);
            __m512 hi = _mm512_maskz_loadu_ps(left > 16 ? ply_lanes16(left - 16) : 0, src + 2 * j + 16);
            _mm512_mask_storeu_ps(dst + j, ply_lanes16(n - j), _mm512_permutex2var_ps(lo, even, hi));
        }
        return;
    }
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32((int)stride));
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = ply_lanes16(n - j);
        _mm512_mask_storeu_ps(dst + j, k, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, idx, src + j * stride, 4));
    }
}

PLY_TARGET_AVX512 static void put_row512(float *dst, const float *src, int64_t n, int relu) {
    for (int64_t j = 0; j < n; j += 16) {
        __mmask16 k = ply_lanes16(n - j);
        __m512 v = _mm512_maskz_loadu_ps(k, src + j);
        // relu as max(v, 0) with NaN passed: keep v where v > 0 or v is NaN (unordered)
        if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);
        _mm512_mask_storeu_ps(dst + j, k, v);
    }
}
#endif

static void get_row(float *dst, const float *src, int64_t n, int64_t stride) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) { get_row512(dst, src, n, stride); return; }
#endif
    get_row_generic(dst, src, n, stride);
}

static void put_row(float *dst, const float *src, int64_t n, int relu) {
#if PLY_HAVE_X86_TARGETS
    if (ply_cpu_level() >= PLY_CPU_AVX512) { put_row512(dst, src, n, relu); return; }
#endif
    put_row_generic(dst, src, n, relu);
}

// ----------------------------------------------------------------------------
// the phase split and its adjoint

// ph[r][s][i][j] = x[i*SH + r - PH][j*SW + s - PW] for the positions inside the image. The others
// (the padding, and every phase plane past Hq*Wq) are the same for every plane: they must hold
// zeros already (a thread's phase planes are cleared once, before its first plane).
static void split_phases(float *ph, const float *x, const conv_geom *g, const dw_plan *p) {
    for (int64_t r = 0; r < g->SH; r++)
        for (int64_t s = 0; s < g->SW; s++) {
            float *plane = ph + (r * g->SW + s) * p->ps;
            int64_t jlo, jhi;
            ply_conv_out_range(s, g->SW, g->PW, g->W, p->Wq, &jlo, &jhi);
            if (jlo >= jhi) continue;
            for (int64_t i = 0; i < p->Hq; i++) {
                int64_t a = i * g->SH + r - g->PH;
                if (a < 0 || a >= g->H) continue;
                get_row(plane + i * p->Wq + jlo, x + a * g->W + s - g->PW + jlo * g->SW, jhi - jlo, g->SW);
            }
        }
}

// dx[i*SH + r - PH][j*SW + s - PW] = dph[i*Wq + j] for the positions inside the image (phase (r, s)).
static void merge_phase(float *dx, const float *dph, int64_t r, int64_t s, const conv_geom *g, const dw_plan *p) {
    int64_t jlo, jhi;
    ply_conv_out_range(s, g->SW, g->PW, g->W, p->Wq, &jlo, &jhi);
    for (int64_t i = 0; i < p->Hq; i++) {
        int64_t a = i * g->SH + r - g->PH;
        if (a < 0 || a >= g->H) continue;
        float *dst = dx + a * g->W + s - g->PW;
        const float *src = dph + i * p->Wq;
        if (g->SW == 1) memcpy(dst + jlo, src + jlo, (size_t)(jhi - jlo) * sizeof(float));
        else for (int64_t j = jlo; j < jhi; j++) dst[j * g->SW] = src[j];
    }
}

// ----------------------------------------------------------------------------
// forward: thread t takes planes [q0, q1) of the N*C (image, input channel) planes

typedef struct {
    const conv_geom *g;
    dw_plan p;
    const float *w, *bias, *x;
    const float *dy;
    float *y, *dx, *dw, *db, *scratch;
    int64_t parts;
    size_t slice;
    int relu;
    tap_table taps;
} dw_job;

// out = bias + the taps of output channel o over the phases at ph (T = KH*KW, in turns of TAPS_BATCH).
static void plane_forward(float *out, const float *ph, const float *wo, float b, const conv_geom *g, const dw_plan *p,
                          const tap_table *tt) {
    const int64_t KK = g->KH * g->KW;
    const float *src[TAPS_BATCH];
    for (int64_t t0 = 0; t0 < KK; t0 += TAPS_BATCH) {
        int64_t T = ply_min_i64(TAPS_BATCH, KK - t0);
        for (int64_t t = 0; t < T; t++) src[t] = ph + tap_at(tt, g, p, t0 + t);
        taps_sum(out, p->len, src, wo + t0, T, b, t0 > 0);
    }
}

static void forward_planes(void *ctx, int64_t t0, int64_t t1) {
    const dw_job *j = ctx;
    const conv_geom *g = j->g;
    const dw_plan *p = &j->p;
    const int64_t M = g->OC / g->C, HW = g->H * g->W, P = g->OH * g->OW, KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        float *ph = j->scratch + (size_t)t * j->slice, *tmp = ph + p->phases * p->ps;
        int64_t q0, q1;
        ply_share(g->N * g->C, j->parts, t, &q0, &q1);
        memset(ph, 0, (size_t)(p->phases * p->ps) * sizeof(float)); // (split_phases writes the image's positions only)
        for (int64_t q = q0; q < q1; q++) {
            int64_t n = q / g->C, c = q % g->C;
            split_phases(ph, j->x + q * HW, g, p);
            for (int64_t m = 0; m < M; m++) {
                int64_t o = c * M + m;
                plane_forward(tmp, ph, j->w + o * KK, j->bias ? j->bias[o] : 0.0f, g, p, &j->taps);
                float *yo = j->y + (n * g->OC + o) * P;
                for (int64_t oh = 0; oh < g->OH; oh++) put_row(yo + oh * g->OW, tmp + oh * p->Wq, g->OW, j->relu);
            }
        }
    }
}

static int64_t parts_of(int64_t threads, int64_t items) { return ply_max_i64(1, ply_min_i64(threads, items)); }

size_t conv_dw_forward_floats(const conv_geom *g, int64_t threads) {
    dw_plan p = plan_of(g);
    return (size_t)(p.phases * p.ps + p.len) * (size_t)parts_of(threads, g->N * g->C);
}

void conv_dw_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                     int relu, const float *x, float *y, float *scratch) {
    dw_job j = {.g = g, .p = plan_of(g), .w = w, .bias = bias, .x = x, .y = y, .scratch = scratch, .relu = relu};
    j.parts = parts_of(threads, g->N * g->C);
    j.slice = (size_t)(j.p.phases * j.p.ps + j.p.len);
    tap_table_make(&j.taps, g, &j.p);
    if (j.parts > 1) host->parallel_for(host, j.parts, 1, forward_planes, &j);
    else forward_planes(&j, 0, 1);
}

// ----------------------------------------------------------------------------
// backward: thread t takes input channels [c0, c1) (and so output channels [c0*M, c1*M)) of every image

// dph = the phase (r, s) of the input gradient of one image and channel, from the M dyq planes.
static void plane_dx_phase(float *dph, int64_t phase, const float *dyq, const float *wc, const conv_geom *g,
                           const dw_plan *p) {
    const int64_t M = g->OC / g->C, KK = g->KH * g->KW;
    const float *src[TAPS_BATCH];
    float wt[TAPS_BATCH];
    int64_t T = 0;
    int acc = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t t = 0; t < KK; t++) {
            if (tap_phase(g, t) != phase) continue;
            src[T] = dyq + m * p->dys + p->front - tap_offset(g, p, t);
            wt[T++] = wc[m * KK + t];
            if (T == TAPS_BATCH) { taps_sum(dph, p->dlen, src, wt, T, 0.0f, acc); acc = 1; T = 0; }
        }
    if (T > 0 || !acc) taps_sum(dph, p->dlen, src, wt, T, 0.0f, acc);
}

static void backward_channels(void *ctx, int64_t t0, int64_t t1) {
    const dw_job *j = ctx;
    const conv_geom *g = j->g;
    const dw_plan *p = &j->p;
    const int64_t M = g->OC / g->C, HW = g->H * g->W, P = g->OH * g->OW, KK = g->KH * g->KW;
    for (int64_t t = t0; t < t1; t++) {
        float *ph = j->scratch + (size_t)t * j->slice, *dyq = ph + p->phases * p->ps, *dph = dyq + M * p->dys;
        int64_t c0, c1;
        ply_share(g->C, j->parts, t, &c0, &c1);
        memset(ph, 0, (size_t)(p->phases * p->ps) * sizeof(float)); // (split_phases writes the image's positions only)
        for (int64_t c = c0; c < c1; c++)
            for (int64_t n = 0; n < g->N; n++) {
                split_phases(ph, j->x + (n * g->C + c) * HW, g, p);
                memset(dyq, 0, (size_t)(M * p->dys) * sizeof(float));
                for (int64_t m = 0; m < M; m++) {
                    int64_t o = c * M + m;
                    const float *dyo = j->dy + (n * g->OC + o) * P;
                    float *q = dyq + m * p->dys + p->front, sum = 0.0f;
                    for (int64_t oh = 0; oh < g->OH; oh++) memcpy(q + oh * p->Wq, dyo + oh * g->OW, (size_t)g->OW * sizeof(float));
                    for (int64_t i = 0; i < P; i++) sum += dyo[i];
                    if (j->db) j->db[o] += sum;
                    const float *src[TAPS_BATCH];
                    for (int64_t k0 = 0; k0 < KK; k0 += TAPS_BATCH) {
                        int64_t T = ply_min_i64(TAPS_BATCH, KK - k0);
                        for (int64_t k = 0; k < T; k++) src[k] = ph + tap_at(&j->taps, g, p, k0 + k);
                        taps_dot(q, p->len, src, T, j->dw + o * KK + k0);
                    }
                }
                if (!j->dx) continue;
                float *dxp = j->dx + (n * g->C + c) * HW;
                memset(dxp, 0, (size_t)HW * sizeof(float));
                for (int64_t r = 0; r < g->SH; r++)
                    for (int64_t s = 0; s < g->SW; s++) {
                        plane_dx_phase(dph, r * g->SW + s, dyq, j->w + c * M * KK, g, p);
                        merge_phase(dxp, dph, r, s, g, p);
                    }
            }
    }
}

size_t conv_dw_backward_floats(const conv_geom *g, int64_t threads) {
    dw_plan p = plan_of(g);
    return (size_t)(p.phases * p.ps + (g->OC / g->C) * p.dys + p.dlen) * (size_t)parts_of(threads, g->C);
}

void conv_dw_backward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *x,
                      const float *dy, float *dx, float *dw, float *db, float *scratch) {
    dw_job j = {.g = g, .p = plan_of(g), .w = w, .x = x, .dy = dy, .dx = dx, .dw = dw, .db = db, .scratch = scratch};
    j.parts = parts_of(threads, g->C);
    j.slice = (size_t)(j.p.phases * j.p.ps + (g->OC / g->C) * j.p.dys + j.p.dlen);
    tap_table_make(&j.taps, g, &j.p);
    if (j.parts > 1) host->parallel_for(host, j.parts, 1, backward_channels, &j);
    else backward_channels(&j, 0, 1);
}
