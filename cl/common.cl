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

// a / b for many a and one b, without a division per element (Markstein): with s a power of two
// that brings |b| into [2^-90, 2^100] and rb = clbnb_div(1, b * s), q = (a * s) * rb and one fma
// residual step give the correctly rounded quotient wherever |q| >= 2^-8, so rint(127 * q),
// rint(q) and every code built on them equal the IEEE division's; below 2^-8 it may differ by an
// ulp, where those codes are 0 either way. Checked exhaustively for every f16 and bf16 pair with
// |a| <= 128 |b| in that range and on 2e8 random f32 pairs. The scaling is exact: a * s is only
// inexact where it is subnormal after s = 2^-100, and then |q| < 2^-126.
// b = 0, infinite or NaN: rb = 0 and the result is 0 or NaN (code 0), not the IEEE +-inf; callers
// divide only by the maximum of |a| over a row or column (outliers aside, coded 0), where every
// quotient's code is 0 then (0 / 0, finite / inf, inf / inf). An infinite a over a finite b gives
// NaN too: not for int8_double_quant's column code, whose x * 127 may overflow (it divides).
// No branch: the former fallback to the division for b outside the range (a branch per 8 lanes in
// div_rcp8) cost more than the division saves on the H100 (session 16, 8192 x 8192 f16: SwitchBack
// row-wise 92.5 us with it, 88.1 without; int8_double_quant's column code through reciprocals 267
// with it, 234.5 without, 214 with the IEEE division, which it keeps).
inline float clbnb_div_scale(float b) {
    float m = fabs(b);
    return m < 0x1p-90f && m > 0.0f ? 0x1p100f : (m > 0x1p100f && m < INFINITY ? 0x1p-100f : 1.0f);
}
inline float clbnb_rcp_for_div(float b) {
    float bs = b * clbnb_div_scale(b);
    return bs != 0.0f && isfinite(bs) ? clbnb_div(1.0f, bs) : 0.0f;
}
inline float clbnb_div_rcp(float a, float b, float rb, float s) {
    a *= s;
    b *= s;
    float q = a * rb;
    return fma(fma(-q, b, a), rb, q);
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

// LLM.int8 outlier product of one output (spec 5.3): sum over the cnt outlier columns c_j, in
// order, of x[c_j] * RN_x(fl32(fl32(cb[c_j] * s) * fl32(1/127))), in f32; x: the output's row of the
// activations (dtype xdt), cb: the weight row of the output, s: its row statistic. Shared by the
// separate outlier-add kernels and the int8 GEMM that fuses it, so both give the same bits.
inline float clbnb_lin8_outlier_sum(__global const uchar *x, ulong xrow, int xdt, __global const char *cbrow,
                                    float s, __global const int *ocols, int cnt);
// One term's dequantized weight: RN_x(fl32(fl32(cb * s) * fl32(1/127))).
inline float clbnb_lin8_outlier_weight(float cb, float s, int xdt) {
    return clbnb_round_to_dtype(cb * s * 7.874015718698502e-3f, xdt);
}

// Eight consecutive f16 or bf16 values (dtype; element 0 in the low half of .x) as floats. Kernels
// that hold loads across a reduction keep them in this 16-byte form and convert at use.
inline float8 clbnb_f8_from_16bit(uint4 r, int dtype) {
    if (dtype == CLBNB_DTYPE_F16) return vload_half8(0, (const __private half *)&r);
    return as_float8(convert_uint8(as_ushort8(r)) << 16);
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

inline float clbnb_lin8_outlier_sum(__global const uchar *x, ulong xrow, int xdt, __global const char *cbrow,
                                    float s, __global const int *ocols, int cnt) {
    float acc = 0.0f;
    // 8 columns at a time: their loads are independent and issued together (a GPU at token
    // generation waits on their latency, not their bytes); the sum keeps ascending order
    for (int j0 = 0; j0 < cnt; j0 += 8) {
        const int jn = min(8, cnt - j0);
        float xv[8], wv[8];
        for (int j = 0; j < 8; j++) {
            const ulong c = (ulong)ocols[j0 + min(j, jn - 1)];
            wv[j] = (float)cbrow[c];
            xv[j] = clbnb_load_float(x, xrow + c, xdt);
        }
        // a constant trip count keeps xv and wv in registers (indexed up to jn, they went to the stack)
#pragma unroll
        for (int j = 0; j < 8; j++)
            if (j < jn) acc += xv[j] * clbnb_lin8_outlier_weight(wv[j], s, xdt);
    }
    return acc;
}

#if CLBNB_NV_CC >= 70
// NVIDIA (inline PTX, sm_70+): v of the lane whose index is this lane's XOR lanemask, within the
// warp (a 1-D work-group's warps are runs of 32 consecutive local ids). All 32 lanes must call it.
inline float clbnb_nv_shfl_xor(float v, uint lanemask) {
    float r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(lanemask));
    return r;
}
#endif
