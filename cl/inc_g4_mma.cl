// =================================================================================================
// inc_g4_mma.cl: the 4-bit weight decode of the tensor-core kernels (gemm_4bit_mma.cl's g4_mma,
// mma_gemm.cl's g4_gemm_mma): the tables they stage in local memory, and a packed byte to the f16x2
// of its two weights, as bitsandbytes dequantizes for fp16, w = RN_f16(fl32(table[code] * scale)).
// Include after inc_gemm_4bit and inc_mma_ptx.
// =================================================================================================
#if CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE
#if CLBNB_PTX_EMULATE
// two f32 -> f16x2, round to nearest even (lo in the low half)
inline uint g4m_pack_f16x2(float lo, float hi) {
    ushort h[2];
    vstore_half_rte(lo, 0, (__private half *)h);
    vstore_half_rte(hi, 1, (__private half *)h);
    return (uint)h[0] | ((uint)h[1] << 16);
}
#else
inline uint g4m_pack_f16x2(float lo, float hi) {
    uint r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
#endif

// Stages the 16-entry table of qtype in tab and, with nested absmax, the 256-entry code in c2, the
// nthreads work-items of the work-group sharing the loads; all of them must call it (barrier).
inline void g4m_stage_tables(__local float *tab, __local float *c2, int qtype, int nested,
                             __global const float *restrict code2, ulong c2off, uint lid, uint nthreads) {
    if (lid < 16) tab[lid] = clbnb_g4_table(qtype, lid);
    if (nested)
        for (uint i = lid; i < 256u; i += nthreads) c2[i] = code2[c2off + i];
    barrier(CLK_LOCAL_MEM_FENCE);
}

// The f16x2 of weights (hi nibble, lo nibble) of byte b: RN_f16(fl32(table * scale)) each; the
// high nibble is the earlier element (bnb-format-spec.md 2), so it goes to the low half.
inline uint g4m_pair(__local const float *tab, uint b, float s) {
    return g4m_pack_f16x2(tab[(b >> 4) & 15u] * s, tab[b & 15u] * s);
}
#endif
