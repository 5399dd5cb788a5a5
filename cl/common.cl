// =================================================================================================
// common.cl: prepended to every clbnb program. Element load/store helpers for the three float
// dtypes (f32, f16 through vload_half/vstore_half, bf16 as the upper half of an f32) and index
// types. OpenCL C 1.2, no extensions.
//
// Macros the host sets for every program: CLBNB_DEVICE_CPU, CLBNB_NV_CC, CLBNB_DOT4_IMPL,
// CLBNB_SIMD_WIDTH. Numerics must match the C reference bit for bit, so no contraction:
// a*b+c is two roundings unless a kernel calls fma() on purpose.
// =================================================================================================
#pragma OPENCL FP_CONTRACT OFF

#define CLBNB_DTYPE_F32 0
#define CLBNB_DTYPE_F16 1
#define CLBNB_DTYPE_BF16 2
#define CLBNB_DTYPE_I8 3
#define CLBNB_DTYPE_U8 4
#define CLBNB_DTYPE_I32 5

// bf16 -> f32: exact.
inline float clbnb_bf16_to_f32(ushort v) { return as_float(((uint)v) << 16); }

// f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN.
inline ushort clbnb_f32_to_bf16(float f) {
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}

// IEEE single-precision division. Programs are built with -cl-fp32-correctly-rounded-divide-sqrt
// where the device supports it (CLBNB_CORRECT_DIV=1); elsewhere the quotient is corrected with one
// fma residual step, which rounds correctly for the finite, normal operands quantization uses.
#ifndef CLBNB_CORRECT_DIV
#define CLBNB_CORRECT_DIV 0
#endif
inline float clbnb_div(float a, float b) {
#if CLBNB_CORRECT_DIV
    return a / b;
#else
    float q = a / b;
    if (!isfinite(q) || q == 0.0f) return q;
    float r = fma(-q, b, a);
    return fma(r, 1.0f / b, q);
#endif
}

// a / b for many a over one b, correctly rounded, without a division per element: inv =
// clbnb_div_inverse(b) once (0 when b is not finite or outside [2^-100, 2^100]), then
// clbnb_div_by(a, b, inv) per element. q = a * inv is within 1.5 ulp of a / b; one residual step
// (r = fma(-q, b, a), exact) makes q faithful, and a second one rounds it correctly (Markstein:
// inv within half an ulp of 1/b, q faithful, no under- or overflow; the range checks keep a, q and
// r normal). Anywhere else: clbnb_div.
inline float clbnb_div_inverse(float b) {
    const float m = fabs(b);
    return (m >= 0x1p-100f && m <= 0x1p100f) ? clbnb_div(1.0f, b) : 0.0f;
}
inline float clbnb_div_by(float a, float b, float inv) {
    if (inv != 0.0f) {
        if (a == 0.0f) return a * inv; // signed zero, as a / b
        float q = a * inv;
        const float aa = fabs(a), aq = fabs(q);
        if (aa >= 0x1p-100f && aa <= 0x1p100f && aq >= 0x1p-100f && aq <= 0x1p100f) {
            q = fma(fma(-q, b, a), inv, q);
            return fma(fma(-q, b, a), inv, q);
        }
    }
    return clbnb_div(a, b);
}
// The lanes of r where !fast get clbnb_div (operands outside the fast path's range: rare).
inline float8 clbnb_div8_slow(float8 a, float8 b, float8 r, int8 fast) {
    float t[8], ta[8], tb[8];
    int f[8];
    vstore8(r, 0, t);
    vstore8(a, 0, ta);
    vstore8(b, 0, tb);
    vstore8(fast, 0, f);
    for (int j = 0; j < 8; j++)
        if (!f[j]) t[j] = clbnb_div(ta[j], tb[j]);
    return vload8(0, t);
}
inline float8 clbnb_div8_by(float8 a, float8 b, float8 inv) {
#if CLBNB_DEVICE_CPU && CLBNB_CORRECT_DIV
    // CPUs divide eight lanes in a few cycles; and the masked form below crashed PoCL's compiled
    // row-wise kernel (x86-64, PoCL 3.1), so CPUs divide.
    (void)inv;
    return a / b;
#else
    const float8 q = a * inv, aa = fabs(a), aq = fabs(q);
    const int8 fast = (inv != 0.0f) & (((aa >= 0x1p-100f) & (aa <= 0x1p100f) & (aq >= 0x1p-100f) & (aq <= 0x1p100f)) |
                                       (a == 0.0f));
    float8 r = fma(fma(-q, b, a), inv, q);
    r = copysign(fma(fma(-r, b, a), inv, r), q); // copysign: the zero of a == 0 keeps the sign of a / b
    return all(fast) ? r : clbnb_div8_slow(a, b, r, fast);
#endif
}

// Rounds a float to the nearest fp16 value (ties to even) and returns it as a float: what
// storing to half and loading back gives, for arithmetic "in fp16" without cl_khr_fp16.
inline float clbnb_round_f16(float f) {
    uint u = as_uint(f);
    uint a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return f;                                  // NaN
    if (a >= 0x477ff000u) return as_float((u & 0x80000000u) | 0x7f800000u); // rounds to +-Inf
    if (a < 0x38800000u) {                                          // fp16 subnormal: quantum 2^-24
        float q = rint(as_float(a) * 16777216.0f) * 5.9604644775390625e-8f;
        return as_float((u & 0x80000000u) | as_uint(q));
    }
    a = (a + 0xfffu + ((a >> 13) & 1u)) & 0xffffe000u;
    return as_float((u & 0x80000000u) | a);
}

// Rounds v to what dtype `dtype` holds (f32 or any other code: unchanged), as storing and loading
// back would.
inline float clbnb_round_to_dtype(float v, int dtype) {
    if (dtype == CLBNB_DTYPE_F16) return clbnb_round_f16(v);
    if (dtype == CLBNB_DTYPE_BF16) return clbnb_bf16_to_f32(clbnb_f32_to_bf16(v));
    return v;
}

// Generic element access by dtype code. `base` points to the start of the element array (the
// byte offset already applied); index i counts elements. The switch is on a compile-time
// constant in every call site, so it folds away.
inline float clbnb_load_float(__global const uchar *base, ulong i, int dtype) {
    if (dtype == CLBNB_DTYPE_F32) return ((__global const float *)base)[i];
    if (dtype == CLBNB_DTYPE_F16) return vload_half(i, (__global const half *)base);
    return clbnb_bf16_to_f32(((__global const ushort *)base)[i]);
}

inline void clbnb_store_float(__global uchar *base, ulong i, int dtype, float v) {
    if (dtype == CLBNB_DTYPE_F32)
        ((__global float *)base)[i] = v;
    else if (dtype == CLBNB_DTYPE_F16)
        vstore_half_rte(v, i, (__global half *)base);
    else
        ((__global ushort *)base)[i] = clbnb_f32_to_bf16(v);
}
