/*
 * Activation functions for Ply's `user_activation` layer, in plain C99: no Ply
 * header, no Ply library. Build a shared library and name it in a model file:
 *
 *     cc -std=c99 -O2 -shared -fPIC activations.c -o libactivations.so -lm
 *
 * Shapes the layer can call (its `signature` attribute):
 *
 *   swish, mish            float(float)
 *   swish_grad             float(float)           derivative of swish
 *   prelu_like             float(float, float)    x, then the slope from `params`
 *   prelu_like_grad        float(float, float)
 *   selu_like              float(float, float, float)  x, alpha, scale
 *   swish_double(_grad)    double(double)
 *   swish_vec(_grad)       void(const float *, float *, int64_t)  whole tensor
 *
 * They are pure functions, so the layer may call them from several threads.
 */
#include <math.h>
#include <stdint.h>

/* swish (SiLU): x * sigmoid(x). */
float swish(float x) { return x / (1.0f + expf(-x)); }

/* d/dx swish = s + x s (1 - s), s = sigmoid(x). */
float swish_grad(float x) {
    float s = 1.0f / (1.0f + expf(-x));
    return s + x * s * (1.0f - s);
}

/* softplus(x) = log(1 + exp(x)), without overflow for large x. */
static float softplus(float x) { return log1pf(expf(-fabsf(x))) + (x > 0.0f ? x : 0.0f); }

/* mish: x * tanh(softplus(x)). No derivative here: the layer uses central differences. */
float mish(float x) { return x * tanhf(softplus(x)); }

/* A leaky ReLU whose negative slope is a parameter: x if x > 0 else slope * x. */
float prelu_like(float x, float slope) { return x > 0.0f ? x : slope * x; }
float prelu_like_grad(float x, float slope) { return x > 0.0f ? 1.0f : slope; }

/* SELU-shaped: scale * (x if x > 0 else alpha * (exp(x) - 1)). */
float selu_like(float x, float alpha, float scale) { return scale * (x > 0.0f ? x : alpha * expm1f(x)); }

/* swish in double precision. */
double swish_double(double x) { return x / (1.0 + exp(-x)); }
double swish_double_grad(double x) {
    double s = 1.0 / (1.0 + exp(-x));
    return s + x * s * (1.0 - s);
}

/* Vectorised swish: one call per tensor, out[i] = swish(in[i]). */
void swish_vec(const float *in, float *out, int64_t n) {
    int64_t i;
    for (i = 0; i < n; i++) out[i] = in[i] / (1.0f + expf(-in[i]));
}

/* Vectorised derivative: out[i] = swish'(in[i]). */
void swish_vec_grad(const float *in, float *out, int64_t n) {
    int64_t i;
    for (i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-in[i]));
        out[i] = s + in[i] * s * (1.0f - s);
    }
}
