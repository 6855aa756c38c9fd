/*
 * conv2d's residual input where the kernel did not add it itself (see conv_residual.h).
 */
#include "conv_residual.h"

typedef struct {
    float *y;
    const float *r;
    int relu;
} add_job;

static void add_range(void *ctx, int64_t begin, int64_t end) {
    const add_job *j = ctx;
    float *y = j->y;
    const float *r = j->r;
    if (j->relu)
        for (int64_t i = begin; i < end; i++) {
            float v = y[i] + r[i];
            y[i] = (v > 0.0f || v != v) ? v : 0.0f;
        }
    else
        for (int64_t i = begin; i < end; i++) y[i] += r[i];
}

// Below this many values one thread does the pass (the threshold the residual block's add + relu used).
#define SPLIT_MIN (1 << 16)

void conv_residual_add(const ply_host *host, float *y, const float *r, int64_t n, int relu) {
    add_job j = {.y = y, .r = r, .relu = relu};
    int64_t threads = host->thread_count(host);
    if (threads <= 1 || n < SPLIT_MIN) {
        add_range(&j, 0, n);
        return;
    }
    host->parallel_for(host, n, (n + threads - 1) / threads, add_range, &j);
}
