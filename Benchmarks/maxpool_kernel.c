// maxpool3x3s2_plane512 (Plugins/Pooling/pooling_x86.c) alone: first a check against the plain loop
// (take_max: the first maximum in row-major order, bit for bit, +0/-0 and -inf included) over every
// plane from 3x3 to 40x75, padding 0 and 1, both ceil modes, and that a plane with a NaN is declined;
// then the thread CPU time of the kernel over the planes of GoogLeNet's and ResNet's 3x3 stride-2
// max pools (input warm, the median of 31 timed calls), so that neither the model around it nor
// the time spent descheduled on a busy machine counts. Built as SwiftPM's release builds C (-O2):
//
//   clang -O2 -IPlugins/Pooling -IPlugins/Support -IInclude Benchmarks/maxpool_kernel.c \
//       Plugins/Pooling/pooling_x86.c Plugins/Pooling/pooling_avx2.c -o /tmp/maxpool_kernel && /tmp/maxpool_kernel
//
// The same for avgpool3x3s1_plane512 (the 3x3 / stride 1 / padding 1 average pool with
// count_include_pad): checked against the plain loop (pooling_planes.c's avgpool2d_forward_plane order: rows
// -1, 0, +1, in each the columns -1, 0, +1, the taps inside the plane only, then / 9) bit for bit
// (+0 / -0, infinities and NaNs included) over every plane from 1x1 to 40x75, then timed over the
// planes of Inception v3's nine such pools at 299 (median of 21).
//
// And maxpool3x3s1_plane512 (3x3 / stride 1 / padding 1, GoogLeNet's pool branches): checked against
// the plain loop over every plane from 1x1 to 40x75 (and that a NaN is declined), then GoogLeNet's
// nine such pools timed. Both stride-1 kernels are timed with their edge columns (pool3_edges) made
// once per call, as pool_run does, and once per plane, as before (alternating, in one process).
//
// And maxpool2x2_backward_plane_avx2 (2x2 / stride 2, the ConvNet's two pools' backward, the argmax
// recomputed) and maxpool2x2_forward_plane_avx2: checked against pooling_planes.c's plain loops bit for bit (ties, +0 / -0, -inf and NaN
// windows) over every plane from 2x2 to 40x40, odd sides included, with a guard after din and after the
// inputs (nothing written or read past them); then both timed over the ConvNet's planes at batch 128 (8 of
// 28x28 and 16 of 14x14 per image; median of 31 calls).
//
// Each check and timing runs for every kernel set the CPU has: the AVX-512 ones (pooling_x86.c) and
// their AVX2 ports (pooling_avx2.c: maxpool3x3s2_plane_avx2, avgpool3x3s1_plane_avx2,
// maxpool3x3s1_plane_avx2), so on an AVX2 machine the AVX2 set alone. Each timing is followed by the
// plain loop's (the references below, a window loop per output) over the same planes, once, for
// scale. Exits 1 on a mismatch, 2 below the AVX2 level.
#include "pooling.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// out[i][j] = the first maximum (a NaN wins) of in[2i - P .. 2i - P + 2][2j - P .. 2j - P + 2] inside the plane
static void reference(float *out, const float *in, int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t P) {
    for (int64_t i = 0; i < OH; i++)
        for (int64_t j = 0; j < OW; j++) {
            int64_t h0 = 2 * i - P, w0 = 2 * j - P, h1 = h0 + 3 < H ? h0 + 3 : H, w1 = w0 + 3 < W ? w0 + 3 : W;
            if (h0 < 0) h0 = 0;
            if (w0 < 0) w0 = 0;
            float m = -INFINITY;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) m = take_max(m, in[h * W + w]);
            out[i * OW + j] = m;
        }
}

// out[r][c] = (the sum, in row-major order, of in[r + dr][c + dc] for dr, dc in {-1, 0, 1} inside the plane) / 9
static void reference_avg(float *out, const float *in, int64_t H, int64_t W) {
    for (int64_t r = 0; r < H; r++)
        for (int64_t c = 0; c < W; c++) {
            float s = 0.0f;
            for (int64_t h = r - 1; h <= r + 1; h++)
                for (int64_t w = c - 1; w <= c + 1; w++)
                    if (h >= 0 && h < H && w >= 0 && w < W) s += in[h * W + w];
            out[r * W + c] = s / 9.0f;
        }
}

// PyTorch's pooling output size, kernel 3, stride 2
static int64_t out_size(int64_t in, int64_t p, int ceil_mode) {
    int64_t o = (in + 2 * p - 3 + (ceil_mode ? 1 : 0)) / 2 + 1;
    if (ceil_mode && (o - 1) * 2 >= in + p) o--;
    return o;
}

// one level's three kernels
typedef struct {
    const char *name;
    int (*s2)(float *, const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
    int (*s1)(float *, const float *, const pool3_edges *);
    void (*avg)(float *, const float *, const pool3_edges *);
} kernels;
static const kernels sets[2] = {
    {"AVX-512", maxpool3x3s2_plane512, maxpool3x3s1_plane512, avgpool3x3s1_plane512},
    {"AVX2", maxpool3x3s2_plane_avx2, maxpool3x3s1_plane_avx2, avgpool3x3s1_plane_avx2},
};

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned seed = 1;
static unsigned next_random(void) { return seed = seed * 1103515245u + 12345u; }

// pooling_planes.c's maxpool2x2_backward_plane
static void reference_2x2_backward(float *din, const float *in, const float *dout, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW) {
    if (H != 2 * OH || W != 2 * OW) memset(din, 0, (size_t)(H * W) * sizeof(float));
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
        float *d0 = din + 2 * oh * W, *d1 = d0 + W;
        for (int64_t ow = 0; ow < OW; ow++) {
            float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = a;
            int k = 0;
            if (b > m || b != b) { m = b; k = 1; }
            if (c > m || c != c) { m = c; k = 2; }
            if (d > m || d != d) { k = 3; }
            float g = dout[oh * OW + ow];
            d0[2 * ow] = k == 0 ? g : 0.0f;
            d0[2 * ow + 1] = k == 1 ? g : 0.0f;
            d1[2 * ow] = k == 2 ? g : 0.0f;
            d1[2 * ow + 1] = k == 3 ? g : 0.0f;
        }
    }
}

static int check_2x2_backward(void) {
    int bad = 0, cases = 0;
    for (int64_t H = 2; H <= 40; H++)
        for (int64_t W = 2; W <= 40; W++) {
            const int64_t OH = H / 2, OW = W / 2, G = 16;
            float *in = malloc(sizeof(float) * (size_t)(H * W + G)), *dout = malloc(sizeof(float) * (size_t)(OH * OW + G));
            float *want = malloc(sizeof(float) * (size_t)(H * W + G)), *got = malloc(sizeof(float) * (size_t)(H * W + G));
            for (int64_t k = 0; k < H * W + G; k++) {
                unsigned r = next_random() >> 16;
                in[k] = r % 8 == 0 ? -INFINITY : r % 8 == 1 ? NAN : r % 8 == 2 ? 0.0f : r % 8 == 3 ? -0.0f
                      : (float)(r % 5) - 2.0f;
                want[k] = got[k] = 7.0f;
            }
            for (int64_t k = 0; k < OH * OW + G; k++) dout[k] = (float)(next_random() >> 20) - 2048.0f;
            // guards: values the kernel must not read (a NaN past in would win a window) nor write
            for (int64_t k = 0; k < G; k++) in[H * W + k] = dout[OH * OW + k] = NAN;
            // the forward (maxpool2x2_forward_plane_avx2) against take_max's order, guard after out
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float *r0 = in + 2 * oh * W + 2 * ow, *r1 = r0 + W;
                    float m = r0[0];
                    if (r0[1] > m || r0[1] != r0[1]) m = r0[1];
                    if (r1[0] > m || r1[0] != r1[0]) m = r1[0];
                    if (r1[1] > m || r1[1] != r1[1]) m = r1[1];
                    want[oh * OW + ow] = m;
                }
            maxpool2x2_forward_plane_avx2(got, in, W, OH, OW);
            if (memcmp(want, got, sizeof(float) * (size_t)(OH * OW)) || got[OH * OW] != 7.0f) {
                printf("2x2 forward mismatch: %lldx%lld\n", (long long)H, (long long)W);
                bad++;
            }
            for (int64_t k = 0; k < H * W + G; k++) want[k] = got[k] = 7.0f;
            reference_2x2_backward(want, in, dout, H, W, OH, OW);
            maxpool2x2_backward_plane_avx2(got, in, dout, H, W, OH, OW);
            if (memcmp(want, got, sizeof(float) * (size_t)(H * W + G))) {
                printf("2x2 backward mismatch: %lldx%lld\n", (long long)H, (long long)W);
                bad++;
            }
            cases++;
            free(in); free(dout); free(want); free(got);
        }
    printf("%d 2x2 max pool planes checked (forward and backward), %d wrong\n", cases, bad);
    return bad;
}

static void time_2x2_backward(void) {
    static const int64_t planes[2][2] = {{128 * 8, 28}, {128 * 16, 14}};
    double sum = 0;
    for (int k = 0; k < 2; k++) {
        const int64_t C = planes[k][0], H = planes[k][1], OH = H / 2;
        float *in = malloc(sizeof(float) * (size_t)(C * H * H)), *din = malloc(sizeof(float) * (size_t)(C * H * H));
        float *dout = malloc(sizeof(float) * (size_t)(C * OH * OH));
        for (int64_t i = 0; i < C * H * H; i++) in[i] = (float)(next_random() >> 8);
        for (int64_t i = 0; i < C * OH * OH; i++) dout[i] = (float)(next_random() >> 8);
        double t[31], f[31];
        for (int r = 0; r < 31; r++) {
            double t0 = thread_seconds();
            for (int64_t c = 0; c < C; c++) maxpool2x2_forward_plane_avx2(dout + c * OH * OH, in + c * H * H, H, OH, OH);
            double t1 = thread_seconds();
            for (int64_t c = 0; c < C; c++)
                maxpool2x2_backward_plane_avx2(din + c * H * H, in + c * H * H, dout + c * OH * OH, H, H, OH, OH);
            t[r] = thread_seconds() - t1;
            f[r] = t1 - t0;
        }
        for (int a = 0; a < 31; a++)
            for (int b = a + 1; b < 31; b++)
                if (f[b] < f[a]) { double x = f[a]; f[a] = f[b]; f[b] = x; }
        printf("2x2 max pool forward, %lld planes of %lldx%lld: %.3f ms\n", (long long)C, (long long)H, (long long)H,
               f[15] * 1e3);
        for (int a = 0; a < 31; a++)
            for (int b = a + 1; b < 31; b++)
                if (t[b] < t[a]) { double x = t[a]; t[a] = t[b]; t[b] = x; }
        printf("2x2 max pool backward, %lld planes of %lldx%lld: %.3f ms\n", (long long)C, (long long)H, (long long)H,
               t[15] * 1e3);
        sum += t[15] * 1e3;
        free(in); free(din); free(dout);
    }
    printf("2x2 max pool backward, the ConvNet's two pools: %.3f ms\n", sum);
}

static void time_planes(const kernels *ks, int64_t C, int64_t H, int64_t P, int ceil_mode) {
    const int64_t OH = out_size(H, P, ceil_mode);
    float *in = malloc(sizeof(float) * (size_t)(C * H * H)), *out = malloc(sizeof(float) * (size_t)(C * OH * OH));
    if (!in || !out) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t k = 0; k < C * H * H; k++) in[k] = (float)(next_random() >> 8);
    double t[31];
    for (int r = 0; r < 31; r++) {
        double t0 = thread_seconds();
        for (int64_t c = 0; c < C; c++) ks->s2(out + c * OH * OH, in + c * H * H, H, H, OH, OH, P, P);
        t[r] = thread_seconds() - t0;
    }
    for (int a = 0; a < 31; a++)
        for (int b = a + 1; b < 31; b++)
            if (t[b] < t[a]) { double x = t[a]; t[a] = t[b]; t[b] = x; }
    double t0 = thread_seconds();
    for (int64_t c = 0; c < C; c++) reference(out + c * OH * OH, in + c * H * H, H, H, OH, OH, P);
    double plain = thread_seconds() - t0;
    printf("%s: %lldx%lldx%lld -> %lldx%lld, padding %lld%s: %.3f ms (plain loop %.3f ms)\n", ks->name,
           (long long)C, (long long)H, (long long)H, (long long)OH, (long long)OH, (long long)P,
           ceil_mode ? ", ceil" : "", t[15] * 1e3, plain * 1e3);
    free(in);
    free(out);
}

// out[r][c] = the first maximum (a NaN wins) of in[r - 1 .. r + 1][c - 1 .. c + 1] inside the plane
static void reference_s1(float *out, const float *in, int64_t H, int64_t W) {
    for (int64_t r = 0; r < H; r++)
        for (int64_t c = 0; c < W; c++) {
            float m = -INFINITY;
            for (int64_t h = r - 1; h <= r + 1; h++)
                for (int64_t w = c - 1; w <= c + 1; w++)
                    if (h >= 0 && h < H && w >= 0 && w < W) m = take_max(m, in[h * W + w]);
            out[r * W + c] = m;
        }
}

// Thread CPU ms of a 3x3 stride-1 kernel (avg: ks->avg, else ks->s1) over C planes of H x H (input
// warm, median of 21); the edge columns made once for the C planes, or once per plane (per_plane);
// per_plane 2: the plain loop (reference_avg / reference_s1), once.
static double time_s1(const kernels *ks, int avg, int64_t C, int64_t H, int per_plane) {
    float *in = malloc(sizeof(float) * (size_t)(C * H * H)), *out = malloc(sizeof(float) * (size_t)(C * H * H));
    if (!in || !out) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (int64_t k = 0; k < C * H * H; k++) in[k] = (float)(next_random() >> 8) * (avg ? 1e-6f : 1.0f);
    double t[21];
    pool3_edges e;
    if (per_plane == 2) {
        double t0 = thread_seconds();
        for (int64_t c = 0; c < C; c++) {
            if (avg) reference_avg(out + c * H * H, in + c * H * H, H, H);
            else reference_s1(out + c * H * H, in + c * H * H, H, H);
        }
        t0 = thread_seconds() - t0;
        free(in);
        free(out);
        return t0 * 1e3;
    }
    for (int r = 0; r < 21; r++) {
        double t0 = thread_seconds();
        pool3_edges_make(&e, H, H);
        for (int64_t c = 0; c < C; c++) {
            if (per_plane) pool3_edges_make(&e, H, H);
            if (avg) ks->avg(out + c * H * H, in + c * H * H, &e);
            else ks->s1(out + c * H * H, in + c * H * H, &e);
        }
        t[r] = thread_seconds() - t0;
    }
    for (int a = 0; a < 21; a++)
        for (int b = a + 1; b < 21; b++)
            if (t[b] < t[a]) { double x = t[a]; t[a] = t[b]; t[b] = x; }
    free(in);
    free(out);
    return t[10] * 1e3;
}

// The checks and timings of one kernel set; the number of mismatches.
static int run(const kernels *ks) {
    printf("-- %s\n", ks->name);
    int bad = 0, cases = 0;
    for (int64_t H = 3; H <= 40; H++)
        for (int64_t W = 3; W <= 75; W += W < 40 ? 1 : 7)
            for (int64_t P = 0; P <= 1; P++)
                for (int c = 0; c <= 1; c++) {
                    const int64_t OH = out_size(H, P, c), OW = out_size(W, P, c);
                    float *in = malloc(sizeof(float) * (size_t)(H * W));
                    float *want = malloc(sizeof(float) * (size_t)(OH * OW)), *got = malloc(sizeof(float) * (size_t)(OH * OW));
                    if (!in || !want || !got) { fprintf(stderr, "out of memory\n"); return 1; }
                    for (int64_t k = 0; k < H * W; k++) {
                        unsigned r = next_random();
                        in[k] = (r >> 16) % 4 == 0 ? -INFINITY : (r >> 16) % 4 == 1 ? -1.5f : (r >> 3) & 1 ? 0.0f : -0.0f;
                    }
                    reference(want, in, H, W, OH, OW, P);
                    cases++;
                    if (!ks->s2(got, in, H, W, OH, OW, P, P) ||
                        memcmp(want, got, sizeof(float) * (size_t)(OH * OW))) {
                        printf("mismatch: %lldx%lld, padding %lld, ceil %d\n", (long long)H, (long long)W, (long long)P, c);
                        bad++;
                    }
                    // a NaN declined wherever it is: the middle, the first and the last element (the
                    // AVX2 kernel's masked edge vectors)
                    for (int at = 0; at < 3; at++) {
                        const int64_t k = at == 0 ? H * W / 2 : at == 1 ? 0 : H * W - 1;
                        const float keep = in[k];
                        in[k] = NAN;
                        // (the last element is outside every window when P = 0 and 2 OH < H - 1 or 2 OW < W - 1)
                        const int read = at != 2 || P == 1 || (2 * OH >= H - 1 && 2 * OW >= W - 1);
                        if (read && ks->s2(got, in, H, W, OH, OW, P, P)) {
                            printf("a NaN not declined: %lldx%lld at %lld\n", (long long)H, (long long)W, (long long)k);
                            bad++;
                        }
                        in[k] = keep;
                    }
                    free(in);
                    free(want);
                    free(got);
                }
    printf("%d max pool planes checked, %d wrong\n", cases, bad);
    const int max_bad = bad;
    int s1_bad = 0;
    cases = 0;
    for (int64_t H = 1; H <= 40; H++)
        for (int64_t W = 1; W <= 75; W += W < 40 ? 1 : 7) {
            float *in = malloc(sizeof(float) * (size_t)(H * W));
            float *want = malloc(sizeof(float) * (size_t)(H * W)), *got = malloc(sizeof(float) * (size_t)(H * W));
            if (!in || !want || !got) { fprintf(stderr, "out of memory\n"); return 1; }
            for (int64_t k = 0; k < H * W; k++) {
                unsigned r = next_random() >> 16;
                // signed zeros (a sum of -0s is -0 only from the first tap on), rounding, rare inf / NaN
                in[k] = r % 5 == 0 ? -0.0f : r % 5 == 1 ? 0.0f : (float)((int)(r >> 4) % 2001 - 1000) * 1.37e-3f;
                if (r % 97 == 3) in[k] = r % 2 ? INFINITY : NAN;
            }
            reference_avg(want, in, H, W);
            cases++;
            for (int64_t k = 0; k < H * W; k++) got[k] = 12345.0f;
            pool3_edges e;
            if (!pool3_edges_make(&e, H, W)) {
                printf("declined: %lldx%lld\n", (long long)H, (long long)W);
                bad++;
            } else {
                ks->avg(got, in, &e);
                for (int64_t k = 0; k < H * W; k++) {
                    uint32_t a, b;
                    memcpy(&a, &want[k], 4);
                    memcpy(&b, &got[k], 4);
                    if (a != b && !(isnan(want[k]) && isnan(got[k]))) {
                        printf("mismatch: %lldx%lld at %lld: %g, want %g\n", (long long)H, (long long)W, (long long)k,
                               got[k], want[k]);
                        bad++;
                        break;
                    }
                }
                // the stride-1 max kernel on the same plane: ties of +0 / -0, -inf; then a NaN declined
                for (int64_t k = 0; k < H * W; k++) {
                    unsigned r = next_random();
                    in[k] = (r >> 16) % 4 == 0 ? -INFINITY : (r >> 16) % 4 == 1 ? -1.5f : (r >> 3) & 1 ? 0.0f : -0.0f;
                }
                reference_s1(want, in, H, W);
                if (!ks->s1(got, in, &e) || memcmp(want, got, sizeof(float) * (size_t)(H * W))) {
                    printf("max stride 1 mismatch: %lldx%lld\n", (long long)H, (long long)W);
                    s1_bad++;
                }
                for (int at = 0; at < 3; at++) {
                    const int64_t k = at == 0 ? H * W / 2 : at == 1 ? 0 : H * W - 1;
                    const float keep = in[k];
                    in[k] = NAN;
                    if (ks->s1(got, in, &e)) {
                        printf("max stride 1: a NaN not declined: %lldx%lld at %lld\n", (long long)H, (long long)W,
                               (long long)k);
                        s1_bad++;
                    }
                    in[k] = keep;
                }
            }
            free(in);
            free(want);
            free(got);
        }
    printf("%d average pool planes checked, %d wrong\n", cases, bad - max_bad);
    printf("%d max pool stride-1 planes checked, %d wrong\n", cases, s1_bad);
    bad += s1_bad;
    // GoogLeNet's nine 3x3 stride-1 max pools, the edge columns made once per call (as pool_run) and
    // once per plane (as before), alternating
    static const int64_t s1[9][2] = {{192, 28}, {256, 28}, {480, 14}, {512, 14}, {512, 14},
                                     {512, 14}, {528, 14}, {832, 7},  {832, 7}};
    for (int round = 0; round < 3; round++)
        for (int per_plane = 0; per_plane <= (round ? 1 : 2); per_plane++) {
            double all = 0;
            for (int k = 0; k < 9; k++) all += time_s1(ks, 0, s1[k][0], s1[k][1], per_plane);
            printf("%s: GoogLeNet's nine 3x3 stride-1 max pools, %s: %.3f ms\n", ks->name,
                   per_plane == 2   ? "the plain loop      "
                   : per_plane ? "edges once per plane"
                               : "edges once per call ",
                   all);
        }
    time_planes(ks, 64, 112, 1, 0);  // ResNet's stem
    time_planes(ks, 64, 112, 0, 1);  // GoogLeNet's
    time_planes(ks, 192, 56, 0, 1);
    time_planes(ks, 480, 28, 0, 1);
    time_planes(ks, 832, 14, 0, 1);
    for (int round = 0; round < 2; round++)
        for (int per_plane = 0; per_plane <= (round ? 1 : 2); per_plane++) {
            static const int64_t v3[6][3] = {{192, 35, 1}, {256, 35, 1}, {288, 35, 1}, {768, 17, 4}, {1280, 8, 1}, {2048, 8, 1}};
            double sum = 0;
            for (int k = 0; k < 6; k++) sum += (double)v3[k][2] * time_s1(ks, 1, v3[k][0], v3[k][1], per_plane);
            printf("%s: Inception v3's nine average pools, %s: %.3f ms\n", ks->name,
                   per_plane == 2   ? "the plain loop      "
                   : per_plane ? "edges once per plane"
                               : "edges once per call ",
                   sum);
        }
    return bad;
}

int main(void) {
    if (ply_cpu_level() < PLY_CPU_AVX2) { fprintf(stderr, "needs AVX2\n"); return 2; }
    int bad = check_2x2_backward();
    time_2x2_backward();
    if (getenv("MAXPOOL_2X2_ONLY")) return bad ? 1 : 0;
    if (ply_cpu_level() >= PLY_CPU_AVX512) bad += run(&sets[0]);
    bad += run(&sets[1]);
    printf("%d mismatches in all\n", bad);
    return bad ? 1 : 0;
}
