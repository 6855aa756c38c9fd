/*
 * batchnorm2d on narrow planes (S = H*W of at most BN_NARROW_MAX_S values per channel and image:
 * ResNet-18's layer3 and layer4 at 32x32 input, 2x2 and 1x1), vectorised across channels instead of
 * along a channel's plane (batchnorm_channels.c's kernels run one masked 16-lane vector per image and channel
 * there, 1 or 4 lanes of it used). Blocks of BN_NARROW_BLOCK channels; within a block, element
 * q = (c - c0)*S + s of image n is x[(n*C + c0)*S + q] (contiguous).
 *
 * Every result is bitwise the per-channel kernels' (AVX-512, or the AVX2 copy of the forward's
 * statistics): the same per-element float and double operations in the same order per channel
 * (each s of a channel sums its images in order; the lanes are then added as those kernels add
 * theirs), so a training run's numbers do not change. AVX-512 only (bn_narrow_suits).
 */
#ifndef PLY_BATCHNORM_NARROW_H
#define PLY_BATCHNORM_NARROW_H

#include <stdint.h>

#define BN_NARROW_MAX_S 8
#define BN_NARROW_BLOCK 16

// Whether the narrow kernels run here for planes of S values (1 <= S <= BN_NARROW_MAX_S, AVX-512).
int bn_narrow_suits(int64_t S);

// Channels [c0, c1) (at most BN_NARROW_BLOCK): mean[c - c0] and biased variance var[c - c0], as
// channel_stats computes them (double).
void bn_narrow_stats(double *mean, double *var, const float *x, int64_t c0, int64_t c1, int64_t N, int64_t C,
                     int64_t S);

// y = x * scale + shift (fused multiply-add), scale = invstd*w, shift = b - mean*invstd*w per channel
// (w, b NULL: 1, 0), then relu (NaN passed) when relu is set; channels [c0, c1).
void bn_narrow_normalize(float *y, const float *x, const float *mean, const float *invstd, const float *w,
                         const float *b, int relu, int64_t c0, int64_t c1, int64_t N, int64_t C, int64_t S);

// sum_dy[c - c0] and sum_dy_xhat[c - c0] over channels [c0, c1), dy masked by the fused relu's output
// y > 0 when y is not NULL (channel_grad_sums).
void bn_narrow_grad_sums(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy, const float *y,
                         const float *mean, const float *invstd, int64_t c0, int64_t c1, int64_t N, int64_t C,
                         int64_t S);

// dx of channels [c0, c1) (channel_backward_input): w NULL means 1; sums as bn_narrow_grad_sums gave.
void bn_narrow_backward_input(float *dx, const float *x, const float *dy, const float *y, const float *mean,
                              const float *invstd, const float *w, const double *sum_dy, const double *sum_dy_xhat,
                              int batch_stats, double count, int64_t c0, int64_t c1, int64_t N, int64_t C, int64_t S);

// batchnorm_channels.c's per-channel kernels for planes of any size (channel_grad_sums, channel_backward_input),
// AVX-512, 16 elements of the channel's plane a step; kept here with the narrow ones (x86-64 only).
void bn_channel_grad_sums512(double *sum_dy, double *sum_dy_xhat, const float *x, const float *dy, const float *y,
                             float mean, float invstd, int64_t c, int64_t N, int64_t C, int64_t S);
void bn_channel_backward_input512(float *dx, const float *x, const float *dy, const float *y, float mean,
                                  float invstd, float w, double sum_dy, double sum_dy_xhat, int batch_stats,
                                  double count, int64_t c, int64_t N, int64_t C, int64_t S);

#endif
