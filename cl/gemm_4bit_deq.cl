// =================================================================================================
// gemm_4bit_deq.cl: the helpers of the large-batch 4-bit GEMM (dequantize + CLBlast SGEMM) and of
// its input gradient: W rows dequantized to f32, and a 2-D conversion with an optional bias that
// turns x into f32 before the SGEMM and the f32 product into the output dtype after it.
// No options (dtypes are arguments: these kernels are cheap next to the SGEMM).
// =================================================================================================
//! include inc_gemm_4bit

// dst[j] = fl32(table[code(flat0 + j)] * scale(block(flat0 + j))), j < count.
__kernel void g4_dequant_f32(CLBNB_G4_WEIGHT_PARAMS, ulong flat0, ulong count, __global float *restrict dst) {
#if CLBNB_DEVICE_CPU
    const ulong items = get_global_size(0);
    const ulong chunk = (count + items - 1) / items;
    const ulong begin = get_global_id(0) * chunk;
    const ulong end = min(begin + chunk, count);
    float tab[16];
    for (uint i = 0; i < 16; i++) tab[i] = clbnb_g4_table(qtype, i);
    ulong cur = ~(ulong)0;
    float s = 0.0f;
    for (ulong j = begin; j < end; j++) {
        const ulong i = flat0 + j;
        const ulong b = i >> log2bs;
        if (b != cur) {
            s = CLBNB_G4_SCALE(b);
            cur = b;
        }
        dst[j] = tab[clbnb_g4_code(packed, poff, i)] * s;
    }
#else
    const ulong stride = get_global_size(0);
    for (ulong j = get_global_id(0); j < count; j += stride) {
        const ulong i = flat0 + j;
        dst[j] = clbnb_g4_table(qtype, clbnb_g4_code(packed, poff, i)) * CLBNB_G4_SCALE(i >> log2bs);
    }
#endif
}

// The same, GPU shape, for 8-aligned tiles: one work-item per 32-bit word of packed (8 weights, one
// block: blocksize >= 32); the host checks flat0 % 8 == 0, count % 8 == 0 and that the words are
// 4-byte aligned. The table sits in local memory (distinct banks: no conflicts).
__kernel __attribute__((reqd_work_group_size(256, 1, 1))) void g4_dequant_f32_w8(CLBNB_G4_WEIGHT_PARAMS, ulong flat0,
                                                                                ulong count,
                                                                                __global float *restrict dst) {
    __local float tab[16];
    const uint lid = get_local_id(0);
    if (lid < 16) tab[lid] = clbnb_g4_table(qtype, lid);
    barrier(CLK_LOCAL_MEM_FENCE);
    const ulong words = count >> 3;
    __global const uint *src = (__global const uint *)(packed + poff + (flat0 >> 1));
    for (ulong j = get_global_id(0); j < words; j += get_global_size(0)) {
        const uint u = src[j];
        const float s = CLBNB_G4_SCALE((flat0 + (j << 3)) >> log2bs);
        const float4 a = (float4)(tab[(u >> 4) & 15u], tab[u & 15u], tab[(u >> 12) & 15u], tab[(u >> 8) & 15u]) * (float4)(s);
        const float4 b = (float4)(tab[(u >> 20) & 15u], tab[(u >> 16) & 15u], tab[(u >> 28) & 15u], tab[(u >> 24) & 15u]) *
                         (float4)(s);
        vstore4(a, 0, dst + (j << 3));
        vstore4(b, 0, dst + (j << 3) + 4);
    }
}

// dst[r, c] = RN_ddtype(src[r, c] + bias[c]) for r < rows, c < cols (offsets in elements).
// src and dst may be the same f32 matrix (the in-place bias epilogue).
__kernel void g4_convert(__global const uchar *src, ulong soff, ulong lds, int sdtype, __global uchar *dst,
                         ulong doff, ulong ldd, int ddtype, ulong rows, ulong cols, __global const uchar *bias,
                         ulong boff, int bias_dtype) {
    const ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    float v = clbnb_load_float(src, soff + r * lds + c, sdtype);
    if (bias_dtype >= 0) v += clbnb_g4_bias(bias, boff, bias_dtype, c);
    clbnb_store_float(dst, doff + r * ldd + c, ddtype, v);
}
