/*
 * conv2d on small planes by live taps (see conv_taps.h).
 */
#include "plugin_support.h"

#include "conv_taps.h"

#include <string.h>

#include "conv_kernel.h"

#define MAX_SIDE 16
#define MAX_GROUPS (MAX_SIDE * MAX_SIDE)
#define MIN_COLS 16

// One group: the output positions whose live taps are rows [ki0, ki0+nki) x columns [kj0, kj0+nkj).
typedef struct {
    int64_t ki0, nki, kj0, nkj;
    int64_t S;        // positions in the group
    int64_t first;    // its positions are plan.pos[first .. first+S)
    int64_t K;        // C*nki*nkj: the product's depth
    size_t w, b, y;   // offsets of W_g [OC, K], Bt_g [N*S, K] and Y_g [OC, N*S] in their areas
} taps_group;

typedef struct {
    int64_t groups;
    taps_group g[MAX_GROUPS];
    int64_t pos[MAX_GROUPS];   // output positions oh*OW + ow, group by group
    int64_t base[MAX_GROUPS];  // the input offset ih*W + iw of each position's first live tap
    size_t w_floats, b_floats, y_floats, k_max;
    int64_t live, all;         // im2col entries inside the input / in all (one image, one channel)
} taps_plan;

// The taps [lo, hi) of a kernel side whose input index o*S - P + k lies in [0, size).
static void live_taps(int64_t o, int64_t K, int64_t S, int64_t P, int64_t size, int64_t *lo, int64_t *hi) {
    *lo = ply_max_i64(0, P - o * S);
    *hi = ply_max_i64(*lo, ply_min_i64(K, size + P - o * S));
}

// Output indices of one side grouped by their live tap range: class c has taps [lo[c], hi[c]) and
// the indices idx[c][0 .. count[c]).
typedef struct {
    int64_t classes, lo[MAX_SIDE], hi[MAX_SIDE], count[MAX_SIDE], idx[MAX_SIDE][MAX_SIDE];
} side_classes;

static void classify(int64_t O, int64_t K, int64_t S, int64_t P, int64_t size, side_classes *sc) {
    sc->classes = 0;
    for (int64_t o = 0; o < O; o++) {
        int64_t lo, hi, c = 0;
        live_taps(o, K, S, P, size, &lo, &hi);
        while (c < sc->classes && !(sc->lo[c] == lo && sc->hi[c] == hi)) c++;
        if (c == sc->classes) { sc->lo[c] = lo; sc->hi[c] = hi; sc->count[c] = 0; sc->classes++; }
        sc->idx[c][sc->count[c]++] = o;
    }
}

// The plan of a geometry; 0 when the plane is too large for one.
static int make_plan(const conv_geom *g, taps_plan *t) {
    if (g->OH > MAX_SIDE || g->OW > MAX_SIDE || g->OH < 1 || g->OW < 1) return 0;
    side_classes rows, cols;
    classify(g->OH, g->KH, g->SH, g->PH, g->H, &rows);
    classify(g->OW, g->KW, g->SW, g->PW, g->W, &cols);
    memset(t, 0, sizeof *t);
    t->all = g->OH * g->OW * g->KH * g->KW;
    int64_t next = 0;
    for (int64_t r = 0; r < rows.classes; r++)
        for (int64_t c = 0; c < cols.classes; c++) {
            taps_group *G = &t->g[t->groups++];
            G->ki0 = rows.lo[r], G->nki = rows.hi[r] - rows.lo[r];
            G->kj0 = cols.lo[c], G->nkj = cols.hi[c] - cols.lo[c];
            G->S = rows.count[r] * cols.count[c];
            G->first = next;
            G->K = g->C * G->nki * G->nkj;
            for (int64_t i = 0; i < rows.count[r]; i++)
                for (int64_t j = 0; j < cols.count[c]; j++) {
                    int64_t oh = rows.idx[r][i], ow = cols.idx[c][j];
                    t->pos[next] = oh * g->OW + ow;
                    t->base[next] = (oh * g->SH - g->PH + G->ki0) * g->W + ow * g->SW - g->PW + G->kj0;
                    next++;
                }
            G->w = t->w_floats;
            G->b = t->b_floats;
            G->y = t->y_floats;
            t->w_floats += (size_t)(g->OC * G->K);
            t->b_floats += (size_t)(G->K * g->N * G->S);
            t->y_floats += (size_t)(g->OC * g->N * G->S);
            t->k_max = (size_t)ply_max_i64((int64_t)t->k_max, G->K);
            t->live += G->S * G->nki * G->nkj;
        }
    return 1;
}

int conv_taps_fits(const conv_geom *g) {
    return g->OH >= 1 && g->OW >= 1 && g->OH <= MAX_SIDE && g->OW <= MAX_SIDE;
}

int conv_taps_suits(const conv_geom *g, double max_live) {
    taps_plan t;
    if (!make_plan(g, &t)) return 0;
    for (int64_t i = 0; i < t.groups; i++)
        if (g->N * t.g[i].S < MIN_COLS) return 0;
    return (double)t.live <= max_live * (double)t.all;
}

size_t conv_taps_forward_floats(const conv_geom *g) {
    taps_plan t;
    if (!make_plan(g, &t)) return 0;
    return t.w_floats + t.b_floats + t.y_floats;
}

size_t conv_taps_backward_floats(const conv_geom *g) {
    taps_plan t;
    if (!make_plan(g, &t)) return 0;
    // W_g, Bt_g, dY_g, dBt_g, dW_g
    return 2 * t.w_floats + 2 * t.b_floats + t.y_floats;
}

// The range [lo, hi) of part `t` of `parts` of [0, total), in multiples of `align` where possible.
static void split(int64_t total, int64_t parts, int64_t t, int64_t align, int64_t *lo, int64_t *hi) {
    int64_t blocks = (total + align - 1) / align;
    *lo = ply_min_i64(total, blocks * t / parts * align);
    *hi = ply_min_i64(total, blocks * (t + 1) / parts * align);
}

// ----------------------------------------------------------------------------
// gathers and scatters
//
// Bt_g [N*S, K] is B_g transposed: row n*S + s holds image n, position s, every channel's live taps in
// turn, so a gather reads one image's small planes (in L1) and writes one row.

typedef struct {
    const taps_plan *t;
    const conv_geom *g;
    int64_t threads;
    const float *w, *bias, *x, *dy;
    float *y, *dx, *dw, *db;
    int relu;
    int gathered;                 // backward: W_g and Bt_g are the forward's, still in the scratch
    float *W, *Bt, *Y, *dBt, *dW; // areas of the scratch: W_g, Bt_g, Y_g (or dY_g), dBt_g, dW_g
} taps_job;

// W_g of every group for output channels [o0, o1): one pass over the weights.
static void gather_weights_plain(const taps_job *j, int64_t o0, int64_t o1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t KK = g->KH * g->KW;
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c = 0; c < g->C; c++) {
            const float *src = j->w + (oc * g->C + c) * KK;
            for (int64_t gi = 0; gi < t->groups; gi++) {
                const taps_group *G = &t->g[gi];
                float *dst = j->W + G->w + oc * G->K + c * G->nki * G->nkj;
                for (int64_t i = 0; i < G->nki; i++)
                    for (int64_t k = 0; k < G->nkj; k++) *dst++ = src[(G->ki0 + i) * g->KW + G->kj0 + k];
            }
        }
}

// dw += dW_g of every group for output channels [o0, o1): one pass over dw.
static void scatter_weights_plain(const taps_job *j, int64_t o0, int64_t o1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t KK = g->KH * g->KW;
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c = 0; c < g->C; c++) {
            float *dst = j->dw + (oc * g->C + c) * KK;
            for (int64_t gi = 0; gi < t->groups; gi++) {
                const taps_group *G = &t->g[gi];
                const float *src = j->dW + G->w + oc * G->K + c * G->nki * G->nkj;
                for (int64_t i = 0; i < G->nki; i++)
                    for (int64_t k = 0; k < G->nkj; k++) dst[(G->ki0 + i) * g->KW + G->kj0 + k] += *src++;
            }
        }
}

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

static __mmask16 lanes16(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// Full blocks of 16 input channels move by permutes: a block of one output channel's weights is
// 16*KK contiguous floats (KK vectors), W_g's part of it 16*taps contiguous floats. Each destination
// vector takes its lanes from pairs of adjacent source vectors, one two-source permute per pair
// (perm_step). A step: dst[d] lanes `mask` = permutex2var(src[s], idx, src[s + 1]).
// Layer3 of ResNet-18 at 32x32 (2x2 planes, four groups of 2x2 taps) spent most of its gathers and
// scatters in the per-tap gather and scatter instructions (perf, 1 thread: gather_weights512 4.9% and
// scatter_weights512 4.7% of a training step).
// Per call, one thread, best of 15 (standalone harness over gather_weights512 / scatter_weights512, Intel,
// loaded machine, two rounds), per-tap code -> permutes, ms:
//   256->256 2x2 (4 groups of 4 taps):  gather 1.16, 1.16 -> 0.71, 0.53   scatter 0.84, 0.84 -> 0.46, 0.49
//   128->256 4x4 stride 2 (4, 6, 6, 9):  gather 0.88, 0.44 -> 0.29, 0.26   scatter 0.63, 0.48 -> 0.28, 0.23
//   512->512 1x1 (1 group of 1 tap):     gather 1.20, 0.88 -> 1.06, 1.11   scatter 1.14, 1.02 -> 1.52, 1.47
// Groups of a single tap (layer4's 1x1 planes, the centre tap) took the per-tap code after that last row,
// measured while the permutes' vectors went through the stack with a memcpy call per block (see
// perm_weights). Without those calls the permutes win there too: ResNet-18 training 64x3x32x32, AMD EPYC
// Zen 5, img/s, alternating processes, single tap per-tap -> permutes: 1 thread 1.065x (8 rounds,
// 1.051-1.090), 2 threads (with the memcpy fix, against main) 1.076x (6 rounds, 1.002-1.130).
#define PERM_MAX_KK 9
#define PERM_MAX_STEPS 64
typedef struct { int32_t dst, src; __mmask16 mask; int32_t idx[16]; } perm_step;

// Steps filling dst vectors [0, n_dst) from map[d*16 + l] (a source float index, -1: lane untouched).
static int perm_plan(const int32_t *map, int32_t n_dst, perm_step *steps) {
    int n = 0;
    for (int32_t d = 0; d < n_dst; d++) {
        uint32_t left = 0;
        for (int l = 0; l < 16; l++)
            if (map[d * 16 + l] >= 0) left |= 1u << l;
        while (left) {
            if (n == PERM_MAX_STEPS) return -1;
            int32_t lo = INT32_MAX;
            for (int l = 0; l < 16; l++)
                if (left >> l & 1 && map[d * 16 + l] / 16 < lo) lo = map[d * 16 + l] / 16;
            perm_step *st = &steps[n++];
            st->dst = d;
            st->src = lo;
            st->mask = 0;
            for (int l = 0; l < 16; l++) {
                int32_t m = map[d * 16 + l];
                st->idx[l] = 0;
                if (left >> l & 1 && m >= 16 * lo && m < 16 * lo + 32) {
                    st->idx[l] = m - 16 * lo;
                    st->mask |= (__mmask16)(1u << l);
                }
            }
            left &= ~(uint32_t)st->mask;
        }
    }
    return n;
}

// Group G's tap t (t = i*nkj + k) as an offset in a kernel of KW columns.
static int32_t tap_offset(const taps_group *G, int64_t KW, int64_t t) {
    return (int32_t)((G->ki0 + t / G->nkj) * KW + G->kj0 + t % G->nkj);
}

// The gather's steps of group G: W_g lane j of the block (j = c*taps + t) from weight c*KK + offset(t).
static int perm_gather_plan(const taps_group *G, int64_t KK, int64_t KW, perm_step *steps) {
    int32_t taps = (int32_t)(G->nki * G->nkj), map[16 * PERM_MAX_KK];
    for (int32_t j = 0; j < 16 * taps; j++) map[j] = (int32_t)(j / taps * KK) + tap_offset(G, KW, j % taps);
    return perm_plan(map, taps, steps);
}

// The scatter's steps of group G: weight e = c*KK + offset(t) from dW_g lane c*taps + t (other e: none).
static int perm_scatter_plan(const taps_group *G, int64_t KK, int64_t KW, perm_step *steps) {
    int32_t taps = (int32_t)(G->nki * G->nkj), map[16 * PERM_MAX_KK];
    for (int32_t e = 0; e < 16 * (int32_t)KK; e++) map[e] = -1;
    for (int32_t c = 0; c < 16; c++)
        for (int32_t t = 0; t < taps; t++) map[c * KK + tap_offset(G, KW, t)] = c * taps + t;
    return perm_plan(map, (int32_t)KK, steps);
}

// Channels [0, full) of output channels [o0, o1) by permutes (full: C rounded down to 16), else 0.
PLY_TARGET_AVX512 static int64_t perm_weights(const taps_job *j, int64_t o0, int64_t o1, int scatter) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t KK = g->KH * g->KW, C = g->C, full = C / 16 * 16;
    perm_step steps[PERM_MAX_KK][PERM_MAX_STEPS]; // a kernel of at most 9 taps has at most 9 groups
    int nsteps[PERM_MAX_KK];
    if (KK > PERM_MAX_KK || t->groups > PERM_MAX_KK || full == 0) return 0;
    for (int64_t gi = 0; gi < t->groups; gi++) {
        nsteps[gi] = scatter ? perm_scatter_plan(&t->g[gi], KK, g->KW, steps[gi])
                             : perm_gather_plan(&t->g[gi], KK, g->KW, steps[gi]);
        if (nsteps[gi] < 0) return 0;
    }
    // The vectors are read from and written to memory as the steps use them, one destination vector at a time
    // (perm_plan orders a group's steps by destination): kept in arrays indexed by the steps, the vectors lived
    // on the stack and clang copied them in and out with a memcpy call per block (perf, Zen 5: memmove 5% of a
    // ResNet-18 training step under the gather; the step, 1 thread, alternating processes, img/s: 1.039x,
    // 8 rounds, 0.976-1.091; both changes here against main: 1.117x, 6 rounds, 1.057-1.185).
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t c0 = 0; c0 < full; c0 += 16) {
            float *wb = (scatter ? j->dw : (float *)j->w) + (oc * C + c0) * KK;
            if (!scatter) { // W_g's vectors d of each group: lanes picked from pairs of weight vectors
                for (int64_t gi = 0; gi < t->groups; gi++) {
                    const taps_group *G = &t->g[gi];
                    const int64_t taps = G->nki * G->nkj;
                    float *part = j->W + G->w + oc * G->K + c0 * taps;
                    for (int s = 0, d = 0; d < taps; d++) {
                        __m512 v = zero;
                        for (; s < nsteps[gi] && steps[gi][s].dst == d; s++) {
                            const perm_step *st = &steps[gi][s];
                            const __m512 a = _mm512_loadu_ps(wb + 16 * st->src);
                            const __m512 b = st->src + 1 < KK ? _mm512_loadu_ps(wb + 16 * (st->src + 1)) : zero;
                            v = _mm512_mask_mov_ps(v, st->mask, _mm512_permutex2var_ps(a, _mm512_loadu_si512(st->idx), b));
                        }
                        _mm512_storeu_ps(part + 16 * d, v);
                    }
                }
                continue;
            }
            int cursor[PERM_MAX_KK] = {0};
            for (int64_t d = 0; d < KK; d++) { // dw's vector d: the groups' adds in group order, as the per-tap loop's
                __m512 w = _mm512_loadu_ps(wb + 16 * d);
                for (int64_t gi = 0; gi < t->groups; gi++) {
                    const taps_group *G = &t->g[gi];
                    const int64_t taps = G->nki * G->nkj;
                    const float *part = j->dW + G->w + oc * G->K + c0 * taps;
                    for (int s = cursor[gi]; s < nsteps[gi] && steps[gi][s].dst == d; s = ++cursor[gi]) {
                        const perm_step *st = &steps[gi][s];
                        const __m512 a = _mm512_loadu_ps(part + 16 * st->src);
                        const __m512 b = st->src + 1 < taps ? _mm512_loadu_ps(part + 16 * (st->src + 1)) : zero;
                        w = _mm512_mask_add_ps(w, st->mask, w, _mm512_permutex2var_ps(a, _mm512_loadu_si512(st->idx), b));
                    }
                }
                _mm512_storeu_ps(wb + 16 * d, w);
            }
        }
    return full;
}

// gather_weights_plain, 16 input channels a vector: per tap a gather from the weights (KK floats
// apart) and a store (one tap) or scatter (taps floats apart) into W_g. The scalar loop spent
// most of a ResNet-18 training step's gathers on loop overhead, one float at a time.
PLY_TARGET_AVX512 static void gather_weights512(const taps_job *j, int64_t o0, int64_t o1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t KK = g->KH * g->KW, C = g->C;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i from = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)KK));
    const int64_t first = perm_weights(j, o0, o1, 0); // the channels left (a part-filled block), per tap:
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            const int64_t taps = G->nki * G->nkj;
            const __m512i to = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)taps));
            for (int64_t c0 = first; c0 < C; c0 += 16) {
                const __mmask16 m = lanes16(C - c0);
                const float *src = j->w + (oc * C + c0) * KK;
                float *dst = j->W + G->w + oc * G->K + c0 * taps;
                for (int64_t i = 0; i < G->nki; i++)
                    for (int64_t k = 0; k < G->nkj; k++) {
                        __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, from,
                                                            src + (G->ki0 + i) * g->KW + G->kj0 + k, 4);
                        if (taps == 1) _mm512_mask_storeu_ps(dst, m, v);
                        else _mm512_mask_i32scatter_ps(dst + i * G->nkj + k, m, to, v, 4);
                    }
            }
        }
}

// scatter_weights_plain, 16 input channels a vector (the 16 addresses of a vector are distinct).
PLY_TARGET_AVX512 static void scatter_weights512(const taps_job *j, int64_t o0, int64_t o1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t KK = g->KH * g->KW, C = g->C;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i to = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)KK));
    const int64_t first = perm_weights(j, o0, o1, 1); // the channels left (a part-filled block), per tap:
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            const int64_t taps = G->nki * G->nkj;
            const __m512i from = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)taps));
            for (int64_t c0 = first; c0 < C; c0 += 16) {
                const __mmask16 m = lanes16(C - c0);
                float *dst = j->dw + (oc * C + c0) * KK;
                const float *src = j->dW + G->w + oc * G->K + c0 * taps;
                for (int64_t i = 0; i < G->nki; i++)
                    for (int64_t k = 0; k < G->nkj; k++) {
                        float *d = dst + (G->ki0 + i) * g->KW + G->kj0 + k;
                        __m512 add = taps == 1 ? _mm512_maskz_loadu_ps(m, src)
                                               : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, from,
                                                                          src + i * G->nkj + k, 4);
                        __m512 cur = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, to, d, 4);
                        _mm512_mask_i32scatter_ps(d, m, to, _mm512_add_ps(cur, add), 4);
                    }
            }
        }
}
#else
static void gather_weights512(const taps_job *j, int64_t o0, int64_t o1) { (void)j; (void)o0; (void)o1; }
static void scatter_weights512(const taps_job *j, int64_t o0, int64_t o1) { (void)j; (void)o0; (void)o1; }
#endif

static void gather_weights(const taps_job *j, int64_t o0, int64_t o1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) gather_weights512(j, o0, o1);
    else gather_weights_plain(j, o0, o1);
}

static void scatter_weights(const taps_job *j, int64_t o0, int64_t o1) {
    if (ply_cpu_level() >= PLY_CPU_AVX512) scatter_weights512(j, o0, o1);
    else scatter_weights_plain(j, o0, o1);
}

// Bt_g of every group for images [n0, n1): Bt_g[n*S + s][c*nki*nkj + i*nkj + k] =
// x[n][c][base_s + i*W + k], base_s the top-left input element of position s's live window.
static inline __attribute__((always_inline)) void gather_columns_body(const taps_job *j, int64_t n0, int64_t n1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t HW = g->H * g->W;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            for (int64_t s = 0; s < G->S; s++) {
                float *dst = j->Bt + G->b + (n * G->S + s) * G->K;
                const float *xc = j->x + n * g->C * HW + t->base[G->first + s];
                if (G->nki == g->H && G->nkj == g->W) // the window is the whole plane: the image as it is
                    memcpy(dst, xc, (size_t)(g->C * HW) * sizeof(float));
                else if (G->nki == 1 && G->nkj == 1)
                    for (int64_t c = 0; c < g->C; c++) dst[c] = xc[c * HW];
                else
                    for (int64_t c = 0; c < g->C; c++, xc += HW)
                        for (int64_t i = 0; i < G->nki; i++)
                            for (int64_t k = 0; k < G->nkj; k++) *dst++ = xc[i * g->W + k];
            }
        }
}

// Compiled for the baseline and for AVX2 (PLY_AVX2_CLONE): built for SSE2 only, the gather took
// ~30% more of a ResNet-18 training step (batch 64, 32x32, 2 threads; cpu-clock samples relative
// to OpenBLAS's sgemm, two profiles each: 0.051-0.058 with -march=x86-64-v3, 0.070-0.073 SSE2).
PLY_AVX2_CLONE(gather_columns, (const taps_job *j, int64_t n0, int64_t n1), (j, n0, n1))

// dx = the adjoint of gather_columns applied to dBt_g, for images [n0, n1).
static void scatter_columns(const taps_job *j, int64_t n0, int64_t n1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t HW = g->H * g->W;
    memset(j->dx + n0 * g->C * HW, 0, (size_t)((n1 - n0) * g->C * HW) * sizeof(float));
    for (int64_t n = n0; n < n1; n++)
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            for (int64_t s = 0; s < G->S; s++) {
                const float *src = j->dBt + G->b + (n * G->S + s) * G->K;
                float *dxc = j->dx + n * g->C * HW + t->base[G->first + s];
                if (G->nki == g->H && G->nkj == g->W) { // the whole plane
                    for (int64_t e = 0; e < g->C * HW; e++) dxc[e] += src[e];
                    continue;
                }
                for (int64_t c = 0; c < g->C; c++, dxc += HW)
                    for (int64_t i = 0; i < G->nki; i++)
                        for (int64_t k = 0; k < G->nkj; k++) dxc[i * g->W + k] += *src++;
            }
        }
}

// dY_g of every group ([OC, N*S], column n*S + s) and db, for output channels [o0, o1).
static void gather_dy(const taps_job *j, int64_t o0, int64_t o1) {
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t P = g->OH * g->OW;
    for (int64_t oc = o0; oc < o1; oc++)
        for (int64_t n = 0; n < g->N; n++) {
            const float *src = j->dy + (n * g->OC + oc) * P;
            for (int64_t gi = 0; gi < t->groups; gi++) {
                const taps_group *G = &t->g[gi];
                const int64_t *pos = t->pos + G->first;
                float *dst = j->Y + G->y + oc * g->N * G->S + n * G->S;
                for (int64_t s = 0; s < G->S; s++) dst[s] = src[pos[s]];
            }
        }
    if (j->db)
        for (int64_t oc = o0; oc < o1; oc++) {
            double s = 0.0;
            for (int64_t n = 0; n < g->N; n++) {
                const float *src = j->dy + (n * g->OC + oc) * P;
                float acc = 0.0f;
                for (int64_t p = 0; p < P; p++) acc += src[p];
                s += acc;
            }
            j->db[oc] += (float)s;
        }
}

// Thread th's output channels and images.
static void shares(const taps_job *j, int64_t th, int64_t *o0, int64_t *o1, int64_t *n0, int64_t *n1) {
    split(j->g->OC, j->threads, th, 16, o0, o1);
    split(j->g->N, j->threads, th, 1, n0, n1);
}

// ----------------------------------------------------------------------------
// forward

// Step 1, thread th: W_g of its output channels, Bt_g of its images.
static void forward_gather(void *ctx, int64_t t0, int64_t t1) {
    const taps_job *j = ctx;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0, o1, n0, n1;
        shares(j, th, &o0, &o1, &n0, &n1);
        gather_weights(j, o0, o1);
        gather_columns(j, n0, n1);
    }
}

// Step 2, thread th: Y_g = W_g B_g for its output channels, every group, then into y.
static void forward_rows(void *ctx, int64_t t0, int64_t t1) {
    const taps_job *j = ctx;
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    const int64_t P = g->OH * g->OW;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0, o1, n0, n1;
        shares(j, th, &o0, &o1, &n0, &n1);
        if (o0 >= o1) continue;
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            const int64_t ld = g->N * G->S, *pos = t->pos + G->first;
            float *Yg = j->Y + G->y;
            if (G->K > 0)
                conv_kernel_product(0, 1, o1 - o0, ld, G->K, j->W + G->w + o0 * G->K, G->K, j->Bt + G->b, G->K,
                                    Yg + o0 * ld, ld, 0);
            else
                memset(Yg + o0 * ld, 0, (size_t)((o1 - o0) * ld) * sizeof(float));
            for (int64_t oc = o0; oc < o1; oc++) {
                const float b = j->bias ? j->bias[oc] : 0.0f, *src = Yg + oc * ld;
                for (int64_t n = 0; n < g->N; n++) {
                    float *dst = j->y + (n * g->OC + oc) * P;
                    for (int64_t s = 0; s < G->S; s++) {
                        float v = src[n * G->S + s] + b;
                        dst[pos[s]] = !j->relu || v > 0.0f || v != v ? v : 0.0f; // the fused relu: NaN passes
                    }
                }
            }
        }
    }
}

void conv_taps_forward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *bias,
                       int relu, const float *x, float *y, float *scratch) {
    taps_plan t;
    make_plan(g, &t);
    taps_job j = {.t = &t, .g = g, .threads = threads < 1 ? 1 : threads, .w = w, .bias = bias, .x = x, .y = y,
                  .relu = relu};
    j.W = scratch;
    j.Bt = j.W + t.w_floats;
    j.Y = j.Bt + t.b_floats;
    if (j.threads > 1) {
        host->parallel_for(host, j.threads, 1, forward_gather, &j);
        host->parallel_for(host, j.threads, 1, forward_rows, &j);
    } else {
        forward_gather(&j, 0, 1);
        forward_rows(&j, 0, 1);
    }
}

// ----------------------------------------------------------------------------
// backward

// Step 1, thread th: W_g (unless the forward's are kept) and dY_g (and db) of its output channels,
// Bt_g of its images (likewise).
static void backward_gather(void *ctx, int64_t t0, int64_t t1) {
    const taps_job *j = ctx;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0, o1, n0, n1;
        shares(j, th, &o0, &o1, &n0, &n1);
        if (!j->gathered) gather_weights(j, o0, o1);
        gather_dy(j, o0, o1);
        if (!j->gathered) gather_columns(j, n0, n1);
    }
}

// Step 2, thread th: dW_g = dY_g B_g^T for its output channels (into dw), then
// dBt_g = dY_g^T W_g for its images (into dx).
static void backward_parts(void *ctx, int64_t t0, int64_t t1) {
    const taps_job *j = ctx;
    const taps_plan *t = j->t;
    const conv_geom *g = j->g;
    for (int64_t th = t0; th < t1; th++) {
        int64_t o0, o1, n0, n1;
        shares(j, th, &o0, &o1, &n0, &n1);
        if (o0 < o1) {
            for (int64_t gi = 0; gi < t->groups; gi++) {
                const taps_group *G = &t->g[gi];
                const int64_t ld = g->N * G->S;
                if (G->K > 0)
                    conv_kernel_product(0, 0, o1 - o0, G->K, ld, j->Y + G->y + o0 * ld, ld, j->Bt + G->b, G->K,
                                        j->dW + G->w + o0 * G->K, G->K, 0);
            }
            scatter_weights(j, o0, o1);
        }
        if (!j->dx || n0 >= n1) continue;
        for (int64_t gi = 0; gi < t->groups; gi++) {
            const taps_group *G = &t->g[gi];
            const int64_t ld = g->N * G->S;
            if (G->K > 0)
                conv_kernel_product(1, 0, (n1 - n0) * G->S, G->K, g->OC, j->Y + G->y + n0 * G->S, ld, j->W + G->w,
                                    G->K, j->dBt + G->b + n0 * G->S * G->K, G->K, 0);
        }
        scatter_columns(j, n0, n1);
    }
}

void conv_taps_backward(const ply_host *host, int64_t threads, const conv_geom *g, const float *w, const float *x,
                        const float *dy, float *dx, float *dw, float *db, float *scratch, int gathered) {
    taps_plan t;
    make_plan(g, &t);
    taps_job j = {.t = &t, .g = g, .threads = threads < 1 ? 1 : threads, .w = w, .x = x, .dy = dy, .dx = dx,
                  .dw = dw, .db = db, .gathered = gathered};
    j.W = scratch;
    j.Bt = j.W + t.w_floats;
    j.Y = j.Bt + t.b_floats;
    j.dBt = j.Y + t.y_floats;
    j.dW = j.dBt + t.b_floats;
    if (j.threads > 1) {
        host->parallel_for(host, j.threads, 1, backward_gather, &j);
        host->parallel_for(host, j.threads, 1, backward_parts, &j);
    } else {
        backward_gather(&j, 0, 1);
        backward_parts(&j, 0, 1);
    }
}
