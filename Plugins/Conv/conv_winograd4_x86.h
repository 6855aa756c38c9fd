/*
 * F(4x4, 3x3)'s transforms on 16 lanes, shared by conv_winograd4.c (lanes = tiles) and
 * conv_blocked_wino.c (lanes = channels): B^T on a 6-vector, A^T on a 6-vector, and G on a 3-vector
 * (the matrices in conv_winograd4.c's and conv_blocked_wino.c's top comments). One definition, so the
 * two paths round alike to the bit; and the same on 8 lanes and one lane for the AVX2 level
 * (conv_winograd4_avx2.c, conv_blocked_wino.c), the same operations in the same order, so the levels
 * agree to the bit too. Private to the Conv family; static inline functions, each file compiling its
 * own copy. x86-64 only (include it inside `#if PLY_HAVE_X86_TARGETS`).
 */
#ifndef PLY_CONV_WINOGRAD4_X86_H
#define PLY_CONV_WINOGRAD4_X86_H

#include "plugin_support.h"

#if PLY_HAVE_X86_TARGETS
#include <immintrin.h>

#define SQ2 1.41421356237309505f

// t = B^T d for one 6-vector d (a row of the patch, or a column of d B).
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void bt6(const __m512 d[6], __m512 t[6]) {
    const __m512 s2 = _mm512_set1_ps(SQ2), s2h = _mm512_set1_ps(SQ2 / 2);
    const __m512 m25 = _mm512_set1_ps(-2.5f), m2 = _mm512_set1_ps(-2.0f), m05 = _mm512_set1_ps(-0.5f);
    __m512 a = _mm512_fmsub_ps(d[1], s2, _mm512_mul_ps(d[3], s2h)); // s r1 - s/2 r3
    __m512 b = _mm512_fmadd_ps(d[2], m2, d[4]);                     // r4 - 2 r2
    __m512 c = _mm512_fmsub_ps(d[3], s2, _mm512_mul_ps(d[1], s2h)); // s r3 - s/2 r1
    __m512 e = _mm512_fmadd_ps(d[2], m05, d[4]);                    // r4 - r2/2
    t[0] = _mm512_fmadd_ps(d[2], m25, _mm512_add_ps(d[0], d[4]));
    t[1] = _mm512_sub_ps(b, a);
    t[2] = _mm512_add_ps(b, a);
    t[3] = _mm512_add_ps(e, c);
    t[4] = _mm512_sub_ps(e, c);
    t[5] = _mm512_fmadd_ps(d[3], m25, _mm512_add_ps(d[1], d[5]));
}

// o = A^T r for one 6-vector r.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void at6(const __m512 r[6], __m512 o[4]) {
    const __m512 s2 = _mm512_set1_ps(SQ2), s2h = _mm512_set1_ps(SQ2 / 2), s2q = _mm512_set1_ps(SQ2 / 4);
    const __m512 s22 = _mm512_set1_ps(2 * SQ2), half = _mm512_set1_ps(0.5f), two = _mm512_set1_ps(2.0f);
    __m512 s12 = _mm512_add_ps(r[1], r[2]), d12 = _mm512_sub_ps(r[1], r[2]);
    __m512 s34 = _mm512_add_ps(r[3], r[4]), d34 = _mm512_sub_ps(r[3], r[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(r[0], s12), s34);
    o[1] = _mm512_fmadd_ps(d12, s2h, _mm512_mul_ps(d34, s2));
    o[2] = _mm512_fmadd_ps(s12, half, _mm512_mul_ps(s34, two));
    o[3] = _mm512_add_ps(r[5], _mm512_fmadd_ps(d12, s2q, _mm512_mul_ps(d34, s22)));
}

// u = G g for one 3-vector g (a row of the kernel, or a column of g G^T): its 6 values.
PLY_TARGET_AVX512 static inline __attribute__((always_inline)) void g6(__m512 g0, __m512 g1, __m512 g2, __m512 u[6]) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512 k23 = _mm512_set1_ps(2.0f / 3), k13 = _mm512_set1_ps(1.0f / 3), ks3 = _mm512_set1_ps(SQ2 / 3);
    const __m512 k16 = _mm512_set1_ps(1.0f / 6), ks6 = _mm512_set1_ps(SQ2 / 6);
    __m512 p = _mm512_fmadd_ps(g0, k23, _mm512_mul_ps(g2, k13)), q = _mm512_mul_ps(g1, ks3);
    __m512 rr = _mm512_fmadd_ps(g0, k16, _mm512_mul_ps(g2, k13)), s = _mm512_mul_ps(g1, ks6);
    u[0] = g0;
    u[1] = _mm512_sub_ps(zero, _mm512_add_ps(p, q));
    u[2] = _mm512_sub_ps(q, p);
    u[3] = _mm512_add_ps(rr, s);
    u[4] = _mm512_sub_ps(rr, s);
    u[5] = g2;
}

// t = B^T d for one 6-vector d: bt6 on 8 lanes (AVX2).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void bt6_8(const __m256 d[6], __m256 t[6]) {
    const __m256 s2 = _mm256_set1_ps(SQ2), s2h = _mm256_set1_ps(SQ2 / 2);
    const __m256 m25 = _mm256_set1_ps(-2.5f), m2 = _mm256_set1_ps(-2.0f), m05 = _mm256_set1_ps(-0.5f);
    __m256 a = _mm256_fmsub_ps(d[1], s2, _mm256_mul_ps(d[3], s2h)); // s r1 - s/2 r3
    __m256 b = _mm256_fmadd_ps(d[2], m2, d[4]);                     // r4 - 2 r2
    __m256 c = _mm256_fmsub_ps(d[3], s2, _mm256_mul_ps(d[1], s2h)); // s r3 - s/2 r1
    __m256 e = _mm256_fmadd_ps(d[2], m05, d[4]);                    // r4 - r2/2
    t[0] = _mm256_fmadd_ps(d[2], m25, _mm256_add_ps(d[0], d[4]));
    t[1] = _mm256_sub_ps(b, a);
    t[2] = _mm256_add_ps(b, a);
    t[3] = _mm256_add_ps(e, c);
    t[4] = _mm256_sub_ps(e, c);
    t[5] = _mm256_fmadd_ps(d[3], m25, _mm256_add_ps(d[1], d[5]));
}

// o = A^T r for one 6-vector r: at6 on 8 lanes (AVX2).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void at6_8(const __m256 r[6], __m256 o[4]) {
    const __m256 s2 = _mm256_set1_ps(SQ2), s2h = _mm256_set1_ps(SQ2 / 2), s2q = _mm256_set1_ps(SQ2 / 4);
    const __m256 s22 = _mm256_set1_ps(2 * SQ2), half = _mm256_set1_ps(0.5f), two = _mm256_set1_ps(2.0f);
    __m256 s12 = _mm256_add_ps(r[1], r[2]), d12 = _mm256_sub_ps(r[1], r[2]);
    __m256 s34 = _mm256_add_ps(r[3], r[4]), d34 = _mm256_sub_ps(r[3], r[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(r[0], s12), s34);
    o[1] = _mm256_fmadd_ps(d12, s2h, _mm256_mul_ps(d34, s2));
    o[2] = _mm256_fmadd_ps(s12, half, _mm256_mul_ps(s34, two));
    o[3] = _mm256_add_ps(r[5], _mm256_fmadd_ps(d12, s2q, _mm256_mul_ps(d34, s22)));
}

// u = G g for one 3-vector g: g6, one lane (AVX2's FMA).
PLY_TARGET_AVX2 static inline __attribute__((always_inline)) void g6_1(float g0, float g1, float g2, float u[6]) {
    float p = __builtin_fmaf(g0, 2.0f / 3, g2 * (1.0f / 3)), q = g1 * (SQ2 / 3);
    float rr = __builtin_fmaf(g0, 1.0f / 6, g2 * (1.0f / 3)), s = g1 * (SQ2 / 6);
    u[0] = g0;
    u[1] = 0.0f - (p + q);
    u[2] = q - p;
    u[3] = rr + s;
    u[4] = rr - s;
    u[5] = g2;
}

#endif
#endif
