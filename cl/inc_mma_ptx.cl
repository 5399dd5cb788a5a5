// =================================================================================================
// inc_mma_ptx.cl: the NVIDIA tensor-core primitives shared by the mma kernels (mma_gemm.cl,
// gemm_4bit_mma.cl), as inline PTX (sm_80+): ldmatrix, mma.sync (s8 m16n8k32, f16 m16n8k16 with
// f32 accumulation), cp.async. With CLBNB_PTX_EMULATE=1 they are plain OpenCL C that exchanges
// fragments through local memory (every work-item of the work-group must call them uniformly:
// they contain barriers), so the kernels' indexing is testable on any device.
// =================================================================================================
#ifndef CLBNB_PTX_EMULATE
#define CLBNB_PTX_EMULATE 0
#endif
#ifndef ASM_VOLATILE
#define ASM_VOLATILE 1 // 0: ldmatrix / mma are plain asm (ldmatrix with a memory clobber), so the compiler may interleave them
#endif
#if ASM_VOLATILE
#define MMA_ASM asm volatile
#else
#define MMA_ASM asm
#endif
#if CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE
// ---- the four PTX primitives ---------------------------------------------------------------------
#if !CLBNB_PTX_EMULATE
inline uint smem_addr(__local const void *p) { return (uint)(size_t)p; }

// 4 x (8 rows x 16 bytes): lane l supplies the address of row (l % 8) of matrix (l / 8).
#define LDMATRIX_X4(r0, r1, r2, r3, ptr, scratch)                                                                     \
    MMA_ASM("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"                                        \
            : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)                                                                 \
            : "r"(smem_addr(ptr))                                                                                     \
            : "memory")

#define MMA_S8(c, a0, a1, a2, a3, b0, b1, scratch)                                                                    \
    MMA_ASM("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "               \
                 "{%0,%1,%2,%3};"                                                                                     \
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])                                                     \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))

#define MMA_F16_OP(c, a0, a1, a2, a3, b0, b1, scratch)                                                                \
    MMA_ASM("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "               \
                 "{%0,%1,%2,%3};"                                                                                     \
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                                     \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))

// Copies `bytes` (0..16) bytes and zero-fills the rest of the 16-byte destination. The L2::128B
// hint lets L2 fetch the whole 128-byte line (the next K stage of the same rows): on the H100 the
// int8 GEMM 4096^3 went 273.4 -> 263.4 us, 8192^3 2237 -> 2123 us.
inline void copy16_async(__local uchar *dst, __global const uchar *src, uint bytes) {
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src), "r"(bytes));
}
inline void async_commit(void) { asm volatile("cp.async.commit_group;"); }
#define ASYNC_WAIT(n) asm volatile("cp.async.wait_group %0;" ::"n"(n))

#else // CLBNB_PTX_EMULATE: fragment exchange through local memory (all work-items call these
      // uniformly, so barriers are legal)

inline void ldmatrix_emulated(uint *r, __local const uchar *ptr, __local uint *scratch) {
    const uint lane = get_local_id(0) % 32, warp = get_local_id(0) / 32;
    __local uint *addrs = scratch + warp * 32;
    // each lane publishes its row address as an offset from the scratch array (local memory is one
    // flat address space on the devices this emulation runs on)
    addrs[lane] = (uint)((__local const uchar *)ptr - (__local const uchar *)scratch);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int m = 0; m < 4; m++) {
        uint off = addrs[8 * m + lane / 4];
        __local const uchar *row = (__local const uchar *)scratch + (int)off;
        uint v = 0;
        for (int i = 0; i < 4; i++) v |= (uint)row[4 * (lane % 4) + i] << (8 * i);
        r[m] = v;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#define LDMATRIX_X4(r0, r1, r2, r3, ptr, scratch)                                                                     \
    do {                                                                                                              \
        uint r_[4];                                                                                                   \
        ldmatrix_emulated(r_, (ptr), (scratch));                                                                      \
        r0 = r_[0], r1 = r_[1], r2 = r_[2], r3 = r_[3];                                                               \
    } while (0)

// Publishes this lane's mma fragments (a0..a3, b0, b1) in the warp's part of scratch (32 lanes x 6
// registers) and returns that part once every lane's are there.
inline __local uint *mma_fragments_emulated(uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
                                            __local uint *scratch) {
    const uint lane = get_local_id(0) % 32, warp = get_local_id(0) / 32;
    __local uint *f = scratch + warp * 32 * 6;
    f[lane * 6 + 0] = a0, f[lane * 6 + 1] = a1, f[lane * 6 + 2] = a2, f[lane * 6 + 3] = a3;
    f[lane * 6 + 4] = b0, f[lane * 6 + 5] = b1;
    barrier(CLK_LOCAL_MEM_FENCE);
    return f;
}

inline void mma_emulated(int *c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, __local uint *scratch) {
    __local const uint *f = mma_fragments_emulated(a0, a1, a2, a3, b0, b1, scratch);
    const uint lane = get_local_id(0) % 32, g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; e++) {
        uint row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e % 2);
        int sum = 0;
        for (uint k = 0; k < 32; k++) {
            uint alane = (row % 8) * 4 + (k % 16) / 4, areg = (row >= 8 ? 1 : 0) + (k >= 16 ? 2 : 0);
            uint blane = col * 4 + (k % 16) / 4, breg = 4 + (k >= 16 ? 1 : 0);
            char av = (char)(f[alane * 6 + areg] >> (8 * (k % 4)));
            char bv = (char)(f[blane * 6 + breg] >> (8 * (k % 4)));
            sum += (int)av * (int)bv;
        }
        c[e] += sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#define MMA_S8(c, a0, a1, a2, a3, b0, b1, scratch) mma_emulated((c), (a0), (a1), (a2), (a3), (b0), (b1), (scratch))

// m16n8k16 f16: A (row, k) is half k%2 of register (row>=8) + 2*(k>=8) of lane (row%8)*4 + (k%8)/2;
// B (n, k) half k%2 of register 4 + (k>=8) of lane n*4 + (k%8)/2. Sums in f32 (the hardware's
// internal order may differ: results agree to f32 rounding, which the tests allow for).
inline float half_bits_to_float(uint bits) {
    ushort h = (ushort)bits;
    return vload_half(0, (__private const half *)&h);
}
inline void mma_f16_emulated(float *c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, __local uint *scratch) {
    __local const uint *f = mma_fragments_emulated(a0, a1, a2, a3, b0, b1, scratch);
    const uint lane = get_local_id(0) % 32, g = lane / 4, t = lane % 4;
    for (int e = 0; e < 4; e++) {
        uint row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e % 2);
        float sum = 0.0f;
        for (uint k = 0; k < 16; k++) {
            uint av = f[((row % 8) * 4 + (k % 8) / 2) * 6 + (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)] >> (16 * (k % 2));
            uint bv = f[(col * 4 + (k % 8) / 2) * 6 + 4 + (k >= 8 ? 1 : 0)] >> (16 * (k % 2));
            sum += half_bits_to_float(av) * half_bits_to_float(bv);
        }
        c[e] += sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#define MMA_F16_OP(c, a0, a1, a2, a3, b0, b1, scratch)                                                                \
    mma_f16_emulated((c), (a0), (a1), (a2), (a3), (b0), (b1), (scratch))

inline void copy16_async(__local uchar *dst, __global const uchar *src, uint bytes) {
    for (uint i = 0; i < 16; i++) dst[i] = i < bytes ? src[i] : 0;
}
inline void async_commit(void) {}
#define ASYNC_WAIT(n)
#endif
#endif // CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE
