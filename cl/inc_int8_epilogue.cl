// =================================================================================================
// inc_int8_epilogue.cl: the fused dequantization + bias of the int8 GEMMs (spec 5.4, 5.6), shared
// by every int8 GEMM kernel so all paths produce the same bits.
//
//   EPILOGUE 0  int32 accumulator out (int8_linear_matmul)
//   EPILOGUE 1  LLM.int8:  RN_T(fma(fl32(fl32(acc * sa[m]) * sb[n]), 1/(127*127), bias[n]))
//   EPILOGUE 2  SwitchBack mixed:   c = fl32(sb[0] * fl32(sa[m] * fl32(acc * D)))
//   EPILOGUE 3  SwitchBack rowwise: c = fl32(sb[n] * fl32(sa[m] * fl32(acc * D)))
//               f16 out: RN_f16(RN_f16(c) + bias[n]); other dtypes: RN_T(c + bias[n])
// =================================================================================================
// The configuration is a run-time argument (uniform across the launch, so the branches cost
// nothing measurable next to the GEMM) rather than build options: one program serves every
// epilogue and dtype, so first use compiles once per path instead of once per combination.
//   cfg bits 0-3 epilogue, 4-7 out dtype, 8-11 A-stats dtype, 12-15 B-stats dtype,
//   16-19 bias dtype, bit 20 has bias (clbnb_dtype codes, see common.cl)
#define EPI_KIND(cfg) ((cfg)&15u)
#define EPI_OUT(cfg) (((cfg) >> 4) & 15u)
#define EPI_SA(cfg) (((cfg) >> 8) & 15u)
#define EPI_SB(cfg) (((cfg) >> 12) & 15u)
#define EPI_BIAS(cfg) (((cfg) >> 16) & 15u)
#define EPI_HAS_BIAS(cfg) (((cfg) >> 20) & 1u)

// 1/(127*127) rounded to float: 6.200012e-05f in bitsandbytes' CUDA source, bits 0x38820610.
#define CLBNB_INV_127SQ as_float(0x38820610u)

// The parameters every GEMM kernel passes through to the epilogue.
#define EPILOGUE_PARAMS                                                                                                \
    __global uchar *out_base, ulong out_off, ulong ldc, __global const uchar *sa_base, ulong sa_off,                   \
        __global const uchar *sb_base, ulong sb_off, __global const uchar *bias_base, ulong bias_off, uint cfg

// The epilogue's inputs split by what they depend on, so a kernel that writes many outputs of the
// same rows and columns loads each once: the row factor sa[m] (epilogues 1-3), the column factors
// (.x: sb[n], or sb[0] for epilogue 2; .y: bias[n] or 0), and the combination.
inline float epilogue_row(__global const uchar *sa, uint cfg, uint m) {
    uint kind = EPI_KIND(cfg);
    return kind >= 1 && kind <= 3 ? clbnb_load_float(sa, m, (int)EPI_SA(cfg)) : 0.0f;
}
inline float2 epilogue_col(__global const uchar *sb, __global const uchar *bias, uint cfg, uint n) {
    uint kind = EPI_KIND(cfg);
    float w = kind >= 1 && kind <= 3 ? clbnb_load_float(sb, kind == 2 ? 0 : n, (int)EPI_SB(cfg)) : 0.0f;
    return (float2)(w, EPI_HAS_BIAS(cfg) ? clbnb_load_float(bias, n, (int)EPI_BIAS(cfg)) : 0.0f);
}
// The value of an output from its exact int32 accumulator and factors, before its rounding to the
// output dtype (epilogues 1-3).
inline float epilogue_combine(uint cfg, int acc, float sa_m, float2 col) {
    if (EPI_KIND(cfg) == 1) return fma(((float)acc * sa_m) * col.x, CLBNB_INV_127SQ, col.y);
    float c = col.x * (sa_m * ((float)acc * CLBNB_INV_127SQ));
    if (EPI_OUT(cfg) == CLBNB_DTYPE_F16) c = clbnb_round_f16(c);
    return c + col.y;
}

// The value of output (m, n) from the exact int32 accumulator (epilogues 1-3), for kernels that
// write one output at a time. Epilogue 1 loads sb[n] in a branch of its own: with one load at the
// index `kind == 2 ? 0 : n` for all three, PoCL's CPU GEMM (vectorized across work-items) took
// 29.4-30.1 ms at 1024^3 against 26.8-27.8 ms.
inline float epilogue_value(__global const uchar *sa, __global const uchar *sb, __global const uchar *bias, uint cfg,
                            uint m, uint n, int acc) {
    float b = EPI_HAS_BIAS(cfg) ? clbnb_load_float(bias, n, (int)EPI_BIAS(cfg)) : 0.0f;
    float sa_m = clbnb_load_float(sa, m, (int)EPI_SA(cfg));
    if (EPI_KIND(cfg) == 1)
        return epilogue_combine(cfg, acc, sa_m, (float2)(clbnb_load_float(sb, n, (int)EPI_SB(cfg)), b));
    float w = clbnb_load_float(sb, EPI_KIND(cfg) == 2 ? 0 : n, (int)EPI_SB(cfg));
    return epilogue_combine(cfg, acc, sa_m, (float2)(w, b));
}

// Writes output (m, n) from the exact int32 accumulator.
inline void epilogue_store(__global uchar *out, ulong ldc, __global const uchar *sa, __global const uchar *sb,
                           __global const uchar *bias, uint cfg, uint m, uint n, int acc) {
    ulong idx = (ulong)m * ldc + n;
    if (EPI_KIND(cfg) == 0)
        ((__global int *)out)[idx] = acc;
    else
        clbnb_store_float(out, idx, (int)EPI_OUT(cfg), epilogue_value(sa, sb, bias, cfg, m, n, acc));
}

// Writes float outputs idx and idx + 1 (idx even, the output aligned to two elements) with one
// store: the tensor-core kernels' lanes each hold two adjacent outputs.
inline void epilogue_store_pair(__global uchar *out, ulong idx, int dtype, float v0, float v1) {
    if (dtype == CLBNB_DTYPE_F32)
        vstore2((float2)(v0, v1), idx / 2, (__global float *)out);
    else if (dtype == CLBNB_DTYPE_F16)
        vstore_half2_rte((float2)(v0, v1), idx / 2, (__global half *)out);
    else
        ((__global uint *)out)[idx / 2] = (uint)clbnb_f32_to_bf16(v0) | ((uint)clbnb_f32_to_bf16(v1) << 16);
}

// The same for a pair of 2-byte outputs (f16 or bf16) staged in local memory (dst 4-byte aligned).
inline void epilogue_stage_pair16(__local uchar *dst, int dtype, float v0, float v1) {
    if (dtype == CLBNB_DTYPE_F16)
        vstore_half2_rte((float2)(v0, v1), 0, (__local half *)dst);
    else
        *(__local uint *)dst = (uint)clbnb_f32_to_bf16(v0) | ((uint)clbnb_f32_to_bf16(v1) << 16);
}
