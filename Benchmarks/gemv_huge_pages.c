/*
 * linear_gemv (Plugins/Linear/linear_gemv.c) at batch 1 on one or two threads, with the weights on
 * 4 KiB pages or advised transparent huge pages (madvise(MADV_HUGEPAGE) before the first write, as
 * linear.c does through plugin_support.h's ply_advise_huge_pages): thread CPU time per call (what a
 * loaded machine does not inflate) and wall time, the output split in two halves of whole 16-float
 * lines as linear.c's gemv_split does. The weights (9216x4096 = AlexNet's fc6, 151 MB) are past the
 * 32 MB L3, so every call streams them from memory. Prints the huge pages the process got.
 *
 *   clang -O2 -IPlugins/Linear -IPlugins/Support -IInclude Benchmarks/gemv_huge_pages.c \
 *       Plugins/Linear/linear_gemv.c -lpthread -o /tmp/gemv_huge_pages
 *   for r in 1 2 3; do for h in 0 1; do taskset -c 0,1 /tmp/gemv_huge_pages 9216 4096 $h 2; done; done
 *
 * Arguments: IN OUT HUGE(0|1) THREADS(1|2). Not used by the build, the tests or CI.
 */
#define _GNU_SOURCE
#include "linear_gemv.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double thread_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static double wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

typedef struct {
    float *y, *x, *w, *b;
    int64_t IN, OUT, o0, o1;
    double cpu;
    pthread_barrier_t *bar;
    int iters;
} job;

static void *run(void *p) {
    job *j = p;
    for (int i = 0; i < j->iters; i++) {
        pthread_barrier_wait(j->bar);
        double c = thread_ms();
        linear_gemv(j->y, j->x, j->w, j->b, 1, j->IN, j->OUT, j->o0, j->o1);
        j->cpu += thread_ms() - c;
        pthread_barrier_wait(j->bar);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s IN OUT HUGE(0|1) THREADS(1|2)\n", argv[0]);
        return 2;
    }
    int64_t IN = atoll(argv[1]), OUT = atoll(argv[2]);
    int huge = atoi(argv[3]), T = atoi(argv[4]) > 1 ? 2 : 1, iters = 20;
    size_t bytes = (size_t)(IN * OUT) * sizeof(float), page = (size_t)2 << 20;
    size_t rounded = (bytes + page - 1) / page * page;
    float *w = NULL;
    if (posix_memalign((void **)&w, page, rounded)) return 1;
    if (huge) madvise(w, rounded, MADV_HUGEPAGE);
    for (size_t i = 0; i < (size_t)(IN * OUT); i++) w[i] = (float)(i % 7) * 0.01f;
    float *x = malloc((size_t)IN * sizeof(float)), *y = malloc((size_t)OUT * sizeof(float));
    float *b = calloc((size_t)OUT, sizeof(float));
    for (int64_t i = 0; i < IN; i++) x[i] = 1.0f;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)T);
    job jobs[2];
    int64_t grain = ((OUT + T - 1) / T + 15) / 16 * 16;
    for (int t = 0; t < T; t++) {
        int64_t o1 = (t + 1) * grain < OUT ? (t + 1) * grain : OUT;
        jobs[t] = (job){y, x, w, b, IN, OUT, t * grain, o1, 0.0, &bar, iters};
    }
    pthread_t worker;
    if (T > 1) pthread_create(&worker, NULL, run, &jobs[1]);
    double w0 = wall_ms();
    run(&jobs[0]);
    double w1 = wall_ms();
    if (T > 1) pthread_join(worker, NULL);
    printf("%lldx%lld huge=%d threads=%d: wall %.3f ms per call, thread CPU %.3f", (long long)IN, (long long)OUT, huge,
           T, (w1 - w0) / iters, jobs[0].cpu / iters);
    if (T > 1) printf(" / %.3f", jobs[1].cpu / iters);
    printf(" ms;");
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "AnonHugePages")) printf(" %s", line);
    if (f) fclose(f);
    return 0;
}
