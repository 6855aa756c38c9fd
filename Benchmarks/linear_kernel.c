// linear_rows (Plugins/Linear/linear_rows.c) alone: first a check against a double-precision sum
// for M = 9..32 rows and odd sizes (relative error below 1e-5 of the row's sum of |terms|), then
// the thread CPU time per call on AlexNet's and VGG-16's classifier shapes at 16 rows, against
// OpenBLAS's sgemm (what linear.c called for 9..32 rows before) and two passes of linear_gemv's
// 8 rows. The weights come cold as in a model: each timed call reads the next of enough copies to
// exceed the 260 MB L3. Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Linear -IPlugins/Support -IInclude Benchmarks/linear_kernel.c \
//       Plugins/Linear/linear_rows.c Plugins/Linear/linear_gemv.c -lopenblas -o /tmp/linear_kernel \
//       && OPENBLAS_NUM_THREADS=1 /tmp/linear_kernel
//
// The AVX-512 level, or its AVX2 path with PLY_CPU=avx2 (linear.c keeps OpenBLAS below AVX2). Exits 1
// on a mismatch.
#include "linear_gemv.h"
#include "linear_rows.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned seed = 1;
static float next_float(void) { seed = seed * 1103515245u + 12345u; return (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f; }

static int check(int64_t M, int64_t IN, int64_t OUT) {
    float *x = aligned_alloc(64, ((size_t)(M * IN) * 4 + 127) / 64 * 64), *w = malloc((size_t)(IN * OUT) * 4);
    float *b = malloc((size_t)OUT * 4), *y = malloc((size_t)(M * OUT) * 4);
    float *xp = aligned_alloc(64, (linear_rows_pack_floats(M, IN) * 4 + 63) / 64 * 64);
    for (int64_t i = 0; i < M * IN; i++) x[i] = next_float();
    for (int64_t i = 0; i < IN * OUT; i++) w[i] = next_float();
    for (int64_t i = 0; i < OUT; i++) b[i] = next_float();
    linear_rows_pack(x, M, IN, xp);
    // two calls over [0, OUT/3) and [OUT/3, OUT), as two threads would split it
    linear_rows(y, xp, w, b, M, IN, OUT, 0, OUT / 3);
    linear_rows(y, xp, w, b, M, IN, OUT, OUT / 3, OUT);
    int bad = 0;
    for (int64_t m = 0; m < M && !bad; m++)
        for (int64_t o = 0; o < OUT; o++) {
            double s = b[o], mag = fabs(b[o]);
            for (int64_t k = 0; k < IN; k++) {
                s += (double)x[m * IN + k] * w[o * IN + k];
                mag += fabs((double)x[m * IN + k] * w[o * IN + k]);
            }
            if (!(fabs(y[m * OUT + o] - s) <= 1e-5 * mag)) {
                printf("MISMATCH M=%lld IN=%lld OUT=%lld at m=%lld o=%lld: %g against %g\n", (long long)M,
                       (long long)IN, (long long)OUT, (long long)m, (long long)o, y[m * OUT + o], s);
                bad = 1;
                break;
            }
        }
    free(x); free(w); free(b); free(y); free(xp);
    return bad;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// ms per call (median of `calls`) of kernel k on M x IN -> OUT, weights rotating over `copies`
static void time_shape(const char *name, int64_t M, int64_t IN, int64_t OUT) {
    const size_t wf = (size_t)(IN * OUT);
    int copies = (int)(300e6 / (wf * 4.0)) + 1;
    float **w = malloc(sizeof(float *) * (size_t)copies);
    for (int c = 0; c < copies; c++) {
        w[c] = malloc(wf * 4);
        for (size_t i = 0; i < wf; i++) w[c][i] = (float)((i * 7 + (size_t)c) % 13) * 0.01f;
    }
    float *x = malloc((size_t)(M * IN) * 4), *b = calloc((size_t)OUT, 4), *y = malloc((size_t)(M * OUT) * 4);
    float *xp = aligned_alloc(64, (linear_rows_pack_floats(M, IN) * 4 + 63) / 64 * 64);
    for (int64_t i = 0; i < M * IN; i++) x[i] = next_float();
    const char *names[3] = {"linear_rows", "sgemm", "2x gemv(8)"};
    printf("%s (%lld x %lld -> %lld, %.0f MB of weights, %d copies):", name, (long long)M, (long long)IN,
           (long long)OUT, wf * 4 / 1e6, copies);
    for (int k = 0; k < 3; k++) {
        enum { CALLS = 9 };
        double t[CALLS];
        for (int i = 0; i < CALLS + 2; i++) {
            const float *wc = w[i % copies];
            double t0 = thread_seconds();
            if (k == 0) {
                linear_rows_pack(x, M, IN, xp);
                linear_rows(y, xp, wc, b, M, IN, OUT, 0, OUT);
            } else if (k == 1) {
                for (int64_t m = 0; m < M; m++) memcpy(y + m * OUT, b, (size_t)OUT * 4);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)OUT, (int)IN, 1.0f, x, (int)IN, wc,
                            (int)IN, 1.0f, y, (int)OUT);
            } else {
                for (int64_t m0 = 0; m0 < M; m0 += 8)
                    linear_gemv(y + m0 * OUT, x + m0 * IN, wc, b, M - m0 < 8 ? M - m0 : 8, IN, OUT, 0, OUT);
            }
            if (i >= 2) t[i - 2] = (thread_seconds() - t0) * 1e3;
        }
        qsort(t, CALLS, sizeof t[0], cmp_double);
        printf("  %s %.2f ms (%.1f GB/s)", names[k], t[CALLS / 2], wf * 4 / 1e6 / t[CALLS / 2]);
    }
    printf("\n");
    for (int c = 0; c < copies; c++) free(w[c]);
    free(w); free(x); free(b); free(y); free(xp);
}

int main(void) {
    const int64_t shapes[][3] = {{9, 37, 5}, {16, 100, 33}, {13, 257, 130}, {17, 64, 16}, {24, 300, 129},
                                 {32, 513, 40}, {16, 1, 3}, {31, 1000, 257}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (check(shapes[i][0], shapes[i][1], shapes[i][2])) return 1;
    printf("check: linear_rows matches the double sums on %zu shapes\n", sizeof shapes / sizeof shapes[0]);
    time_shape("AlexNet fc6", 16, 9216, 4096);
    time_shape("VGG-16 fc6", 16, 25088, 4096);
    time_shape("fc7", 16, 4096, 4096);
    time_shape("fc8", 16, 4096, 1000);
    time_shape("AlexNet fc6, 32 rows", 32, 9216, 4096);
    return 0;
}
