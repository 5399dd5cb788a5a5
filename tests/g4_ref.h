/* g4_ref.h: C reference for the 4-bit GEMM tests (test_gemm_4bit.c, test_gemm_4bit_golden.c),
 * written from bnb-format-spec.md 1.1, 1.2, 2.2, 2.5, 2.6 and 3 (not from the kernels). Header-only
 * (static functions) so that no shared test source needs to change. */
#ifndef CLBNB_TEST_G4_REF_H
#define CLBNB_TEST_G4_REF_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

static inline float g4_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* spec 1.1 (NF4) and 1.2 (FP4, bit-pattern order, index 8 = +0.0) */
static const uint32_t g4_nf4_bits[16] = {0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu,
                                         0xbdba7871u, 0x00000000u, 0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au,
                                         0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u};
static const uint32_t g4_fp4_bits[16] = {0x00000000u, 0x3baaaaabu, 0x3f2aaaabu, 0x3f800000u, 0x3eaaaaabu, 0x3f000000u,
                                         0x3e2aaaabu, 0x3e800000u, 0x00000000u, 0xbbaaaaabu, 0xbf2aaaabu, 0xbf800000u,
                                         0xbeaaaaabu, 0xbf000000u, 0xbe2aaaabu, 0xbe800000u};
static inline float g4_table(int fp4, unsigned code) { return g4_bits((fp4 ? g4_fp4_bits : g4_nf4_bits)[code & 15]); }

/* NF4 thresholds (spec 1.1) and FP4 rank literals (spec 1.2) */
static const uint32_t g4_nf4_thr[15] = {0xbf591cd8u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu,
                                        0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu, 0x3df64862u, 0x3e5067e0u,
                                        0x3e9582d4u, 0x3ec753f9u, 0x3f006d04u, 0x3f248dafu, 0x3f5c89dau};
static const uint32_t g4_fp4_thr[7] = {0x3b2aaab9u, 0x3db00000u, 0x3e555555u, 0x3e955555u,
                                       0x3ed55556u, 0x3f155550u, 0x3f555555u};
static inline unsigned g4_quantize_value(int fp4, float x) {
    if (!fp4) {
        unsigned c = 0;
        for (int j = 0; j < 15; j++)
            c += x > g4_bits(g4_nf4_thr[j]);
        return c;
    }
    static const unsigned rank_bits[8] = {0, 1, 6, 7, 4, 5, 2, 3};
    unsigned sign = x < 0 ? 8u : 0u, r = 0;
    float m = fabsf(x);
    for (int j = 0; j < 7; j++)
        r += m > g4_bits(g4_fp4_thr[j]);
    return rank_bits[r] | sign;
}

/* Quantizes the flat n-element w into packed (ceil(n/2) bytes) and absmax (ceil(n/bs)), CUDA rules. */
static inline void g4_quantize(int fp4, const float *w, size_t n, size_t bs, uint8_t *packed, float *absmax) {
    size_t nb = (n + bs - 1) / bs;
    memset(packed, 0, (n + 1) / 2);
    for (size_t b = 0; b < nb; b++) {
        float am = 0;
        for (size_t i = b * bs; i < n && i < (b + 1) * bs; i++)
            am = fmaxf(am, fabsf(w[i]));
        absmax[b] = am;
        float inv = 1.0f / am;
        for (size_t i = b * bs; i < (b + 1) * bs && i < n + (n & 1); i++) {
            float v = i < n ? w[i] * inv : 0.0f; /* odd n: the pad element is 0.0 */
            unsigned c = isnan(v) ? 0u : g4_quantize_value(fp4, v);
            packed[i / 2] |= (uint8_t)((i & 1) ? c : c << 4);
        }
    }
}

/* Double quantization of absmax (spec 3): offset = mean, q = nearest dynamic code (ties to even),
 * absmax2 per bs2 block. */
static inline void g4_compress(const float *absmax, size_t nb, size_t bs2, uint8_t *q, float *absmax2, float *offset) {
    const float *code = clbnb_code_dynamic();
    double sum = 0;
    for (size_t i = 0; i < nb; i++)
        sum += absmax[i];
    *offset = (float)(sum / (double)nb);
    for (size_t b = 0; b * bs2 < nb; b++) {
        float am = 0;
        for (size_t i = b * bs2; i < nb && i < (b + 1) * bs2; i++)
            am = fmaxf(am, fabsf(absmax[i] - *offset));
        absmax2[b] = am;
        float inv = 1.0f / am;
        for (size_t i = b * bs2; i < nb && i < (b + 1) * bs2; i++) {
            float v = (absmax[i] - *offset) * inv;
            int best = 0;
            for (int j = 1; j < 256; j++)
                if (fabsf(code[j] - v) < fabsf(code[best] - v)) best = j;
            q[i] = (uint8_t)best;
        }
    }
}

/* Scale of each block: plain, or fl32(fl32(code2[q] * absmax2[b / bs2]) + offset). */
static inline void g4_scales(size_t nb, const float *absmax, const uint8_t *q, const float *absmax2, const float *code2,
                             float offset, size_t bs2, float *scale) {
    for (size_t b = 0; b < nb; b++) {
        if (!q) {
            scale[b] = absmax[b];
        } else {
            float t = code2[q[b]] * absmax2[b / bs2];
            scale[b] = t + offset;
        }
    }
}

/* w[n*K + k] = fl32(table[code] * scale[block]) for the flat N*K weight. */
static inline void g4_dequant(int fp4, const uint8_t *packed, const float *scale, size_t numel, size_t bs, float *w) {
    for (size_t i = 0; i < numel; i++) {
        unsigned byte = packed[i / 2];
        unsigned c = (i & 1) ? (byte & 15u) : (byte >> 4);
        w[i] = g4_table(fp4, c) * scale[i / bs];
    }
}

/* ref[m, n] = sum_k x[m, k] * w[n, k] in double (+ bias), absref[m, n] = sum |x * w|. */
static inline void g4_matmul_ref(const float *x, const float *w, const float *bias, size_t m, size_t n, size_t k,
                                 double *ref, double *absref) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0, a = 0;
            for (size_t kk = 0; kk < k; kk++) {
                double p = (double)x[i * k + kk] * (double)w[j * k + kk];
                s += p;
                a += fabs(p);
            }
            if (bias) s += bias[j];
            ref[i * n + j] = s;
            if (absref) absref[i * n + j] = a;
        }
}

/* Half of one unit in the last place relative to |v| for the output dtype (0 for f32 handled by
 * the accumulation tolerance), plus the f16 subnormal spacing. */
static inline double g4_out_tol(double v, clbnb_dtype dt) {
    if (dt == CLBNB_DTYPE_F16) return fabs(v) * (1.0 / 2048) + 6e-8;
    if (dt == CLBNB_DTYPE_BF16) return fabs(v) * (1.0 / 256) + 1e-38;
    return fabs(v) * 6e-8;
}

#endif
