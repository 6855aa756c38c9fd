// The ceiling of a blocked channel layout for 1x1 convs (issue #16): a stride-1 1x1 conv with bias
// and relu on NCHW16c activations — a position's 16 channels contiguous, as ONNX Runtime's NCHWc and
// ncnn's pack16 hold them between layers — timed alone like Benchmarks/pointwise_kernel.c (1
// thread, thread CPU time, the median of 9 calls, "cold": a 64 MB buffer read and then the input
// before each call; "xcore": instead the input rewritten from CPU 0 while the calls run on CPU 1, as
// at batch 1 on 2 threads where a layer reads what the other core wrote), so that
// `Benchmarks/pointwise-vs-ort` can set it beside ORT's node. It is a
// measurement of the kernel a blocked layout would allow, not Ply's code: the layers would also
// have to hand such tensors on to each other (the ABI's layout negotiation), which is not built.
//
//   x  [N][C/16][PI][16]    PI = SIZE x SIZE positions, channel c at [c/16][p][c%16]
//   wp [OC/64][C][64]       groups of 4 output blocks: wp[g][c][16 f + j] = w[64 g + 16 f + j][c]
//                           (the last group as wide as the blocks left)
//   y  [N][OC/16][P][16]    P = O x O, O = (SIZE - 1) / STRIDE + 1; output position p = oy O + ox reads
//                           input position q = STRIDE (oy SIZE + ox):
//                           y[n][ob][p][j] = relu(b[16 ob + j] + sum_c w[16 ob + j][c] * x[n][c/16][q][c%16])
//
// Tile: 4 output blocks (64 channels) x 6 positions = 24 accumulators; per input channel 4 weight
// vectors and 6 broadcast inputs feed 24 multiply-adds. Input channels go in chunks of CHUNK (the
// chunk's weights for 4 blocks, 64 x CHUNK floats, stay in L1 while the positions pass); y is
// accumulated across chunks.
//
//   clang -O2 -march=native -pthread -o /tmp/pointwise_nchwc Benchmarks/pointwise_nchwc.c -lm
//   /tmp/pointwise_nchwc 4 64 56 1 256 cold     # N C SIZE STRIDE OC [warm|cold|xcore]; C a multiple of 16
//
// Linux, x86-64 with AVX-512 only. Not used by the build, the tests or CI.
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CHUNK
#define CHUNK 128
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// One tile: NB (1..4) output blocks x NP (1..6) positions from p, input channels [c0, c1) (multiples
// of 16), stride 1 (x holds P positions per channel block). Weights of the tile's group:
// wg[c * NB * 16 + f * 16 + j] (its blocks' vectors adjacent).
static inline void tile(const float *x, const float *wg, const float *b, float *y, long P, long ob, int NB, long p,
                        int NP, long c0, long c1, int first, int last) {
    __m512 acc[4][6];
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++)
            acc[f][i] = first ? _mm512_loadu_ps(b + (ob + f) * 16) : _mm512_loadu_ps(y + ((ob + f) * P + p + i) * 16);
    for (long cb = c0 / 16; cb < c1 / 16; cb++) {
        const float *xb = x + (cb * P + p) * 16;
        const float *wb = wg + cb * 16 * NB * 16;
        for (int j = 0; j < 16; j++) {
            __m512 w[4];
            for (int f = 0; f < NB; f++) w[f] = _mm512_loadu_ps(wb + (j * NB + f) * 16);
            for (int i = 0; i < NP; i++) {
                const __m512 v = _mm512_set1_ps(xb[i * 16 + j]);
                for (int f = 0; f < NB; f++) acc[f][i] = _mm512_fmadd_ps(w[f], v, acc[f][i]);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int f = 0; f < NB; f++)
        for (int i = 0; i < NP; i++)
            _mm512_storeu_ps(y + ((ob + f) * P + p + i) * 16, last ? _mm512_max_ps(acc[f][i], zero) : acc[f][i]);
}

// Tiles with constant sizes, so that the compiler keeps the accumulators in registers: every count of
// blocks (1-4) with 6 positions, and the plane's last positions (1-5) apart.
typedef void tile_fn(const float *, const float *, const float *, float *, long, long, long, long, long, int, int);
#define TILE(NB, NP)                                                                                                  \
    static void tile##NB##x##NP(const float *x, const float *wg, const float *b, float *y, long P, long ob, long p,   \
                                long c0, long c1, int first, int last) {                                              \
        tile(x, wg, b, y, P, ob, NB, p, NP, c0, c1, first, last);                                                     \
    }
#define TILES(NB) TILE(NB, 1) TILE(NB, 2) TILE(NB, 3) TILE(NB, 4) TILE(NB, 5) TILE(NB, 6)
TILES(1)
TILES(2)
TILES(3)
TILES(4)
static tile_fn *const tiles_by[4][6] = {
    {tile1x1, tile1x2, tile1x3, tile1x4, tile1x5, tile1x6},
    {tile2x1, tile2x2, tile2x3, tile2x4, tile2x5, tile2x6},
    {tile3x1, tile3x2, tile3x3, tile3x4, tile3x5, tile3x6},
    {tile4x1, tile4x2, tile4x3, tile4x4, tile4x5, tile4x6},
};

// The weights the next chunk will read (the next group's first chunk after a group's last), as T0
// prefetches spread over this chunk's tiles: on small planes (7x7: 9 tiles per chunk) a chunk's 32 KB
// would otherwise come from memory on demand at the first tile.
static void prefetch_part(const float *next, long floats, long part, long parts) {
    if (!next) return;
    const long lines = floats / 16, from = lines * part / parts, to = lines * (part + 1) / parts;
    for (long l = from; l < to; l++) _mm_prefetch((const char *)(next + l * 16), _MM_HINT_T0);
}

// Stride 1 on x [N][C/16][P][16].
static void conv_s1(const float *x, const float *wp, const float *b, float *y, long N, long C, long P, long OC) {
    const long OB = OC / 16, tiles = (P + 5) / 6;
    for (long n = 0; n < N; n++) {
        const float *xn = x + n * C * P;
        float *yn = y + n * OC * P;
        for (long ob = 0; ob < OB; ob += 4) {
            const int nb = (int)(OB - ob < 4 ? OB - ob : 4);
            const float *wg = wp + ob * 16 * C;
            for (long c0 = 0; c0 < C; c0 += CHUNK) {
                const long c1 = c0 + CHUNK < C ? c0 + CHUNK : C;
                const int first = c0 == 0, last = c1 == C;
                // the next chunk: this group's, else the next group's first (4 blocks or fewer)
                const int nnb = (int)(OB - ob - 4 < 4 ? OB - ob - 4 : 4);
                const float *next = !last ? wg + c1 * nb * 16 : ob + 4 < OB ? wp + (ob + 4) * 16 * C : NULL;
                const long next_floats = !last ? ((C < c1 + CHUNK ? C : c1 + CHUNK) - c1) * nb * 16
                                               : (CHUNK < C ? CHUNK : C) * nnb * 16;
                tile_fn *const full = tiles_by[nb - 1][5];
                long p = 0, t = 0;
                for (; p + 6 <= P; p += 6, t++) {
                    prefetch_part(next, next_floats, t, tiles);
                    full(xn, wg, b, yn, P, ob, p, c0, c1, first, last);
                }
                if (p < P) {
                    prefetch_part(next, next_floats, t, tiles);
                    tiles_by[nb - 1][P - p - 1](xn, wg, b, yn, P, ob, p, c0, c1, first, last);
                }
            }
        }
    }
}

// Any stride: at stride st the input positions an O x O output reads are first copied together into xs
// ([N][C/16][O*O][16], 16 floats per position), as a strided 1x1 in Ply subsamples before its product.
static void conv(const float *x, const float *wp, const float *b, float *y, long N, long C, long S, long st, long O,
                 long OC, float *xs) {
    if (st == 1) {
        conv_s1(x, wp, b, y, N, C, S * S, OC);
        return;
    }
    for (long nc = 0; nc < N * C / 16; nc++)
        for (long oy = 0; oy < O; oy++)
            for (long ox = 0; ox < O; ox++)
                _mm512_storeu_ps(xs + (nc * O * O + oy * O + ox) * 16,
                                 _mm512_loadu_ps(x + (nc * S * S + oy * st * S + ox * st) * 16));
    conv_s1(xs, wp, b, y, N, C, O * O, OC);
}

// Pins the calling thread to one CPU; 0 on success.
static int pin(int cpu) {
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(cpu, &cs);
    return pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
}

// xcore: dst[i] = src[i] for i < n, written from CPU 0.
typedef struct {
    float *dst;
    const float *src;
    size_t n;
    int ok;
} rewrite_job;
static void *rewrite(void *p) {
    rewrite_job *j = p;
    j->ok = pin(0) == 0;
    memcpy(j->dst, j->src, j->n * sizeof(float));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 7 ||
        (argc == 7 && strcmp(argv[6], "warm") && strcmp(argv[6], "cold") && strcmp(argv[6], "xcore"))) {
        fprintf(stderr, "usage: pointwise_nchwc N C SIZE STRIDE OC [warm|cold|xcore]   (C a multiple of 16)\n");
        return 2;
    }
    const long N = atol(argv[1]), C = atol(argv[2]), S = atol(argv[3]), st = atol(argv[4]), OC = atol(argv[5]);
    const int xcore = argc == 7 && !strcmp(argv[6], "xcore"), cold = xcore || (argc == 7 && !strcmp(argv[6], "cold"));
    if (xcore && pin(1) != 0) {
        fprintf(stderr, "pointwise_nchwc: xcore needs CPUs 0 and 1\n");
        return 1;
    }
    if (N < 1 || C < 16 || C % 16 || OC < 1 || S < 1 || st < 1 || st > S) {
        fprintf(stderr, "pointwise_nchwc: needs N, OC, SIZE >= 1, 1 <= STRIDE <= SIZE, C a positive multiple of 16\n");
        return 2;
    }
    const long O = (S - 1) / st + 1, P = O * O, PI = S * S;
    float *xs = aligned_alloc(64, sizeof(float) * N * C * P);
    // output channels padded to whole blocks (zero weights and bias), as a blocked layout holds them
    const long OCp = (OC + 15) / 16 * 16;
    float *x = aligned_alloc(64, sizeof(float) * N * C * PI), *y = aligned_alloc(64, sizeof(float) * N * OCp * P);
    float *w = calloc((size_t)(OCp * C), sizeof(float)), *wp = aligned_alloc(64, sizeof(float) * OCp * C);
    float *b = calloc((size_t)OCp, sizeof(float));
    const size_t junk_floats = 16u << 20;
    float *junk = malloc(sizeof(float) * junk_floats);
    float *x0 = xcore ? malloc(sizeof(float) * N * C * PI) : x;
    if (!x || !xs || !y || !w || !wp || !b || !junk || !x0) {
        fprintf(stderr, "pointwise_nchwc: out of memory\n");
        return 1;
    }
    srand(1);
    for (long i = 0; i < N * C * PI; i++) x[i] = (float)((double)rand() / RAND_MAX) - 0.5f;
    for (long i = 0; i < OC * C; i++) w[i] = ((float)((double)rand() / RAND_MAX) - 0.5f) * 0.1f;
    for (long i = 0; i < OC; i++) b[i] = (float)((double)rand() / RAND_MAX) * 0.1f;
    for (size_t i = 0; i < junk_floats; i++) junk[i] = (float)i;
    if (xcore) memcpy(x0, x, sizeof(float) * N * C * PI);
    for (long ob = 0; ob < OCp / 16; ob += 4) {
        const long nb = OCp / 16 - ob < 4 ? OCp / 16 - ob : 4;
        for (long c = 0; c < C; c++)
            for (long f = 0; f < nb; f++)
                for (int j = 0; j < 16; j++) wp[ob * 16 * C + (c * nb + f) * 16 + j] = w[((ob + f) * 16 + j) * C + c];
    }
    const double flop = 2.0 * N * OC * C * P;
    double r[9];
    volatile float sink = 0;
    for (int k = -1; k < 9; k++) {
        if (cold) {
            float s = 0;
            for (size_t i = 0; i < junk_floats; i += 16) s += junk[i];
            if (xcore) {
                rewrite_job rj = {x, x0, (size_t)(N * C * PI), 0};
                pthread_t th;
                if (pthread_create(&th, NULL, rewrite, &rj) != 0 || pthread_join(th, NULL) != 0 || !rj.ok) {
                    fprintf(stderr, "pointwise_nchwc: the xcore writer thread failed\n");
                    return 1;
                }
            } else {
                for (long i = 0; i < N * C * PI; i += 16) s += x[i];
            }
            sink += s;
        }
        const double t0 = now();
        conv(x, wp, b, y, N, C, S, st, O, OCp, xs);
        if (k >= 0) r[k] = now() - t0;
    }
    for (int i = 0; i < 9; i++)
        for (int j = i + 1; j < 9; j++)
            if (r[j] < r[i]) { double t = r[i]; r[i] = r[j]; r[j] = t; }
    double worst = 0;
    for (int t = 0; t < 64; t++) {
        const long n = rand() % N, o = rand() % OC, p = rand() % P, q = (p / O) * st * S + (p % O) * st;
        double s = b[o];
        for (long c = 0; c < C; c++) s += (double)w[o * C + c] * x[((n * (C / 16) + c / 16) * PI + q) * 16 + c % 16];
        if (s < 0) s = 0;
        const double got = y[((n * (OCp / 16) + o / 16) * P + p) * 16 + o % 16];
        const double e = fabs(got - s) / (fabs(s) > 1e-3 ? fabs(s) : 1e-3);
        if (e > worst) worst = e;
    }
    printf("N%ld %ld->%ld %ldx%ld stride %ld %s: nchw16c %.1f GFLOPS, %.3f ms, best %.1f GFLOPS (worst relative error %.1e)\n",
           N, C, OC, O, O, st, xcore ? "xcore" : cold ? "cold" : "warm", flop / r[4] * 1e-9, r[4] * 1e3, flop / r[0] * 1e-9, worst);
    return sink == 12345.f;
}
