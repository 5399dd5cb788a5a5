/* test_quant_blockwise_ref.h: C reference of block-wise quantization, written from the spec
 * (docs/bnb-format-spec.md 1.1-1.3, 2, 3), shared by the test_quant_* block-wise tests.
 * Deliberately the plain "count" formulations of the spec (not the kernels' search trees). */
#ifndef TEST_QUANT_BLOCKWISE_REF_H
#define TEST_QUANT_BLOCKWISE_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

static inline float ref_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* spec 1.1: the 15 NF4 thresholds */
static const uint32_t ref_nf4_thr_bits[15] = {0xbf591cd8u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu,
                                              0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu, 0x3df64862u, 0x3e5067e0u,
                                              0x3e9582d4u, 0x3ec753f9u, 0x3f006d04u, 0x3f248dafu, 0x3f5c89dau};
/* spec 1.2: the 7 FP4 literal thresholds, and rank -> low bits */
static const uint32_t ref_fp4_thr_bits[7] = {0x3b2aaab9u, 0x3db00000u, 0x3e555555u, 0x3e955555u,
                                             0x3ed55556u, 0x3f155550u, 0x3f555555u};
static const unsigned ref_fp4_rank_bits[8] = {0, 1, 6, 7, 4, 5, 2, 3};

static inline unsigned ref_nf4(float x) {
    unsigned c = 0;
    for (int j = 0; j < 15; j++)
        c += x > ref_bits(ref_nf4_thr_bits[j]);
    return c;
}

static inline unsigned ref_fp4(float x) {
    float m = fabsf(x);
    unsigned r = 0;
    for (int j = 0; j < 7; j++)
        r += m > ref_bits(ref_fp4_thr_bits[j]);
    return ref_fp4_rank_bits[r] | (x < 0.0f ? 8u : 0u);
}

/* spec 2.3: k = #{ j : fl32((c[j] + c[j+1]) * 0.5f) < x }; x == m_k -> the even of {k, k+1} */
static inline unsigned ref_q8(float x, const float *code) {
    unsigned k = 0;
    for (int j = 0; j < 255; j++) {
        float m = (code[j] + code[j + 1]) * 0.5f;
        k += m < x;
    }
    if (k < 255) {
        float mk = (code[k] + code[k + 1]) * 0.5f;
        if (x == mk && (k & 1)) k++;
    }
    return k;
}

/* dequantization tables as the kernels see them: NF4, and FP4 with -0.0 at index 8 (CUDA) */
static inline float ref_table4(int fp4, unsigned c) {
    if (!fp4) return clbnb_code_nf4()[c];
    float v = clbnb_code_fp4()[c & 7];
    return (c & 8) ? -v : v;
}

static inline float ref_block_absmax(const float *x, size_t start, size_t end) {
    float m = 0.0f;
    for (size_t i = start; i < end; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* 4-bit: x (already rounded to its dtype) -> packed[ceil(n/2)], absmax[ceil(n/bs)] */
static inline void ref_quantize_4bit(const float *x, size_t n, int fp4, size_t bs, uint8_t *packed, float *absmax) {
    size_t nb = (n + bs - 1) / bs;
    for (size_t b = 0; b < nb; b++) {
        size_t s = b * bs, e = s + bs < n ? s + bs : n;
        float am = ref_block_absmax(x, s, e);
        absmax[b] = am;
        float inv = 1.0f / am;
        for (size_t i = s; i < e; i += 2) {
            float v0 = x[i] * inv, v1 = (i + 1 < e ? x[i + 1] : 0.0f) * inv;
            unsigned q0 = fp4 ? ref_fp4(v0) : ref_nf4(v0), q1 = fp4 ? ref_fp4(v1) : ref_nf4(v1);
            packed[i / 2] = (uint8_t)((q0 << 4) | q1);
        }
    }
}

/* 8-bit: x -> codes[n], absmax[ceil(n/bs)] */
static inline void ref_quantize_8bit(const float *x, size_t n, const float *code, size_t bs, uint8_t *codes,
                                     float *absmax) {
    size_t nb = (n + bs - 1) / bs;
    for (size_t b = 0; b < nb; b++) {
        size_t s = b * bs, e = s + bs < n ? s + bs : n;
        float am = ref_block_absmax(x, s, e);
        absmax[b] = am;
        float inv = 1.0f / am;
        for (size_t i = s; i < e; i++)
            codes[i] = (uint8_t)ref_q8(x[i] * inv, code);
    }
}

/* dequantized values in f32 before the RN_T of the output dtype */
static inline void ref_dequantize_4bit(const uint8_t *packed, const float *absmax, int fp4, size_t bs, size_t n,
                                       float *out) {
    for (size_t i = 0; i < n; i++) {
        unsigned c = (i & 1) ? (packed[i / 2] & 15u) : (packed[i / 2] >> 4);
        out[i] = ref_table4(fp4, c) * absmax[i / bs];
    }
}

static inline void ref_dequantize_8bit(const uint8_t *codes, const float *absmax, const float *code, size_t bs,
                                       size_t n, float *out) {
    for (size_t i = 0; i < n; i++)
        out[i] = code[codes[i]] * absmax[i / bs];
}

/* The documented device summation order of the absmax mean (cl/quant_blockwise.cl): chunks of 4096,
 * 256 strided lanes per chunk, tree over the lanes; the same over the chunk sums; times fl32(1/n). */
static inline float ref_lanes_tree(const float *a, size_t n) {
    float s[256];
    for (int t = 0; t < 256; t++)
        s[t] = 0.0f;
    for (size_t i = 0; i < n; i++)
        s[i % 256] = s[i % 256] + a[i];
    for (int st = 128; st > 0; st /= 2)
        for (int t = 0; t < st; t++)
            s[t] = s[t] + s[t + st];
    return s[0];
}

static inline float ref_mean(const float *a, size_t n) {
    size_t np = (n + 4095) / 4096;
    float partial[4096];
    float sum;
    if (np <= 4096) {
        for (size_t c = 0; c < np; c++)
            partial[c] = ref_lanes_tree(a + c * 4096, n - c * 4096 < 4096 ? n - c * 4096 : 4096);
        sum = ref_lanes_tree(partial, np);
    } else {
        sum = NAN; /* not needed by the tests */
    }
    return sum * (1.0f / (float)n);
}

/* spec 3: offset = mean; q = 8-bit(absmax - offset, dynamic, bs2) */
static inline void ref_compress(const float *absmax, size_t nb, size_t bs2, uint8_t *q, float *absmax2, float *offset,
                                float *scratch) {
    float off = ref_mean(absmax, nb);
    for (size_t i = 0; i < nb; i++)
        scratch[i] = absmax[i] - off;
    ref_quantize_8bit(scratch, nb, clbnb_code_dynamic(), bs2, q, absmax2);
    *offset = off;
}

static inline void ref_decompress(const uint8_t *q, const float *absmax2, const float *code2, float offset, size_t bs2,
                                  size_t nb, float *out) {
    for (size_t i = 0; i < nb; i++) {
        float v = code2[q[i]] * absmax2[i / bs2];
        out[i] = v + offset;
    }
}

/* Element i of a dtype byte array is a NaN (f32 / f16 / bf16 by element size; es 1 never). */
static inline int ref_is_nan(const void *p, size_t i, size_t es) {
    if (es == 4) {
        uint32_t u;
        memcpy(&u, (const char *)p + 4 * i, 4);
        return (u & 0x7fffffffu) > 0x7f800000u;
    }
    return 0;
}

/* Bitwise comparison of two arrays of n elements of es bytes; returns the number of differing
 * elements. `dtype` (f32/f16/bf16, or -1 for raw bytes): two NaNs compare equal whatever their
 * payload/sign (the NaN bit pattern is not part of the contract); every other value bit for bit. */
static inline int ref_nan_of(const void *p, size_t i, int dtype) {
    if (dtype == CLBNB_DTYPE_F32) return ref_is_nan(p, i, 4);
    if (dtype == CLBNB_DTYPE_F16 || dtype == CLBNB_DTYPE_BF16) {
        uint16_t h;
        memcpy(&h, (const char *)p + 2 * i, 2);
        return dtype == CLBNB_DTYPE_F16 ? (h & 0x7fffu) > 0x7c00u : (h & 0x7fffu) > 0x7f80u;
    }
    return 0;
}

static inline size_t ref_count_diff(const void *a, const void *b, size_t n, size_t es, int dtype) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp((const char *)a + i * es, (const char *)b + i * es, es) == 0) continue;
        if (ref_nan_of(a, i, dtype) && ref_nan_of(b, i, dtype)) continue;
        bad++;
    }
    return bad;
}

/* ---- checks shared by the block-wise tests ---- */
#define GUARD 32 /* poisoned bytes checked after every region */

static const clbnb_dtype float_dtypes[3] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};

/* Downloads [0, off + bytes + GUARD) and checks region == want and the rest still poison. */
static inline void check_region(clbnb_context *ctx, cl_mem m, size_t off, const void *want, size_t n, size_t es,
                                int dtype, const char *what, const char *tag) {
    size_t total = off + n * es + GUARD;
    unsigned char *got = malloc(total);
    test_download(ctx, m, 0, got, total);
    size_t bad = ref_count_diff(got + off, want, n, es, dtype), outside = 0, first = (size_t)-1;
    for (size_t i = 0; i < n && first == (size_t)-1; i++)
        if (ref_count_diff(got + off + i * es, (const char *)want + i * es, 1, es, dtype)) first = i;
    for (size_t i = 0; i < off; i++)
        outside += got[i] != TEST_POISON;
    for (size_t i = off + n * es; i < total; i++)
        outside += got[i] != TEST_POISON;
    TEST_CHECK(bad == 0 && outside == 0, "%s %s: %zu of %zu elements differ (first %zu), %zu bytes outside touched",
               what, tag, bad, n, first, outside);
    free(got);
}

#endif
