// =================================================================================================
// fp8.cl: tensor-wise 8-bit quantization with any sorted 256-entry code (bitsandbytes
// functional.quantize / dequantize = CUDA kQuantize after a torch division), used by the
// FP8-simulated matmuls (spec 7). Elements are addressed as a flat vector: `x` is the buffer,
// `xoff` an element offset, `xdt` its dtype code (f32/f16/bf16).
//   fp8_absmax_partial_{cpu,generic}: partial[g] = max |x| over chunk g of FP8_CHUNK elements (fmax,
//     NaN ignored); max is exact in any order, so both shapes give identical bits.
//   fp8_absmax_final: absmax[0] = max of the partials (one work-item).
//   fp8_quant: v = x / absmax (IEEE), k = nearest code (spec 2.3 rule, as cl/quant_blockwise.cl);
//     writes codes[i] = k and/or out[i] = RN_rdt2(RN_rdt1(code[k] * absmax)) stored as odt.
//   fp8_dequant: out[i] = RN_odt(code[codes[i]] * absmax).
// =================================================================================================
#ifndef FP8_WG
#define FP8_WG 256 // work-group size of fp8_absmax_partial_generic (the host uses the same value)
#endif
#ifndef FP8_CHUNK
#define FP8_CHUNK 4096 // elements per absmax partial (the host uses the same value)
#endif

// k = number of f32 midpoints m_j = fl32(code[j] + code[j+1]) * 0.5f below x (binary lifting over
// the 255 sorted midpoints); if x == m_k, the even one of {k, k+1}. NaN -> 0.
inline uint fp8_nearest(__global const float *code, float x) {
    uint k = 0;
    for (uint step = 128; step > 0; step >>= 1) {
        if (k + step <= 255u) {
            const uint j = k + step - 1;
            if ((code[j] + code[j + 1]) * 0.5f < x) k += step;
        }
    }
    if (k < 255u && x == (code[k] + code[k + 1]) * 0.5f) k += k & 1u;
    return k;
}

// cpu shape: one work-item per chunk, sequential.
__kernel void fp8_absmax_partial_cpu(__global const uchar *x, ulong xoff, int xdt, ulong n, __global float *partial) {
    const ulong g = get_global_id(0);
    const ulong start = g * FP8_CHUNK;
    if (start >= n) return;
    const ulong end = min(start + (ulong)FP8_CHUNK, n);
    float m = 0.0f;
    for (ulong i = start; i < end; i++) m = fmax(m, fabs(clbnb_load_float(x, xoff + i, xdt)));
    partial[g] = m;
}

// generic shape: one work-group per chunk, coalesced strided loads, local tree reduction.
__kernel __attribute__((reqd_work_group_size(FP8_WG, 1, 1))) void
fp8_absmax_partial_generic(__global const uchar *x, ulong xoff, int xdt, ulong n, __global float *partial) {
    __local float red[FP8_WG];
    const ulong g = get_group_id(0);
    const uint l = (uint)get_local_id(0);
    const ulong start = g * FP8_CHUNK;
    const ulong end = min(start + (ulong)FP8_CHUNK, n);
    float m = 0.0f;
    for (ulong i = start + l; i < end; i += FP8_WG) m = fmax(m, fabs(clbnb_load_float(x, xoff + i, xdt)));
    red[l] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = FP8_WG / 2; s > 0; s >>= 1) {
        if (l < s) red[l] = fmax(red[l], red[l + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (l == 0) partial[g] = red[0];
}

__kernel void fp8_absmax_final(__global const float *partial, ulong count, __global float *absmax, ulong aoff) {
    if (get_global_id(0) != 0) return;
    float m = 0.0f;
    for (ulong i = 0; i < count; i++) m = fmax(m, partial[i]);
    absmax[aoff] = m;
}

// `ept` consecutive elements per work-item (1 on GPUs: coalesced; a chunk on CPUs).
__kernel void fp8_quant(__global const uchar *x, ulong xoff, int xdt, ulong n, ulong ept, __global const float *code,
                        ulong code_off, __global const float *absmax, ulong aoff, __global uchar *codes, ulong coff,
                        int write_codes, __global uchar *out, ulong ooff, int odt, int rdt1, int rdt2,
                        int write_out) {
    code += code_off;
    const float a = absmax[aoff];
    const ulong start = get_global_id(0) * ept;
    const ulong end = min(start + ept, n);
    for (ulong i = start; i < end; i++) {
        const float v = clbnb_div(clbnb_load_float(x, xoff + i, xdt), a);
        const uint k = fp8_nearest(code, v);
        if (write_codes) codes[coff + i] = (uchar)k;
        if (write_out) clbnb_store_float(out, ooff + i, odt, clbnb_round_to_dtype(clbnb_round_to_dtype(code[k] * a, rdt1), rdt2));
    }
}

__kernel void fp8_dequant(__global const uchar *codes, ulong coff, __global const float *code, ulong code_off,
                          __global const float *absmax, ulong aoff, __global uchar *out, ulong ooff, int odt, ulong n,
                          ulong ept) {
    code += code_off;
    const float a = absmax[aoff];
    const ulong start = get_global_id(0) * ept;
    const ulong end = min(start + ept, n);
    for (ulong i = start; i < end; i++) clbnb_store_float(out, ooff + i, odt, code[codes[coff + i]] * a);
}
