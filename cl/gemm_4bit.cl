// =================================================================================================
// gemm_4bit.cl: fused 4-bit dequantizing GEMV / small-batch GEMM, out[M, N] = x[M, K] * W[N, K]^T
// (+ bias), W a bitsandbytes NF4 / FP4 state (flat packed nibbles, plain or nested absmax).
// Options: X_DTYPE, OUT_DTYPE (clbnb dtype codes of x and out). Numerics: w = fl32(table * scale),
// products and sums in f32, bias added in f32, one rounding to OUT_DTYPE.
//
// Kernels (all take the same arguments, see CLBNB_G4_KERNEL_PARAMS):
//   g4_gpu_mb{1,2,4,8}  generic path, fast shape (K % blocksize == 0, packed offset 16-aligned):
//                       work-group of G4_WG items computes G4_WG / tpr weight rows; the tpr items
//                       of a row read consecutive 16-byte chunks (32 weights, one absmax each),
//                       decode them once for mb rows of x, and reduce through local memory.
//   g4_cpu_mb{1,2,4,8}  cpu path, fast shape: one work-item per (weight row, mb rows of x), no
//                       barriers; the decode of each 16-byte chunk (one byte-pair table load per
//                       byte, clbnb_g4_pairs) is shared by the mb rows.
//   g4_general          any K (rows straddling bytes and blocks), both paths: one work-item per
//                       (weight row, `param` <= 4 rows of x), element by element.
// =================================================================================================
//! include inc_gemm_4bit

#ifndef X_DTYPE
#define X_DTYPE 0 // dtype of x (0 f32, 1 f16, 2 bf16)
#endif
#ifndef OUT_DTYPE
#define OUT_DTYPE 0 // dtype of out
#endif
#ifndef G4_WG
#define G4_WG 128 // work-group size of the generic-path kernels (power of two, >= 16)
#endif

#if X_DTYPE == 0
#define G4_XSIZE 4
#else
#define G4_XSIZE 2
#endif

// 8 consecutive elements of x starting at element i of the row at p.
inline float8 g4_x8(__global const uchar *p, ulong i) {
#if X_DTYPE == 0
    return vload8(0, (__global const float *)p + i);
#elif X_DTYPE == 1
    return vload_half8(0, (__global const half *)p + i);
#else
    return as_float8(convert_uint8(vload8(0, (__global const ushort *)p + i)) << 16);
#endif
}

// The 8 weights of a little-endian 32-bit word (byte j: element 2j high nibble, 2j+1 low), scaled.
#define G4_W8(tab, u, s)                                                                                   \
    ((float8)(tab[((u) >> 4) & 15u], tab[(u)&15u], tab[((u) >> 12) & 15u], tab[((u) >> 8) & 15u],         \
              tab[((u) >> 20) & 15u], tab[((u) >> 16) & 15u], tab[((u) >> 28) & 15u], tab[((u) >> 24) & 15u]) * \
     (float8)(s))

// The same from the byte-pair table: one lookup per byte.
#define G4_P8(pairs, u, s)                                                                                 \
    (as_float8((uint8)(pairs[(u)&255u], pairs[((u) >> 8) & 255u], pairs[((u) >> 16) & 255u], pairs[(u) >> 24])) * \
     (float8)(s))

inline float g4_sum8(float8 v) {
    float4 a = v.lo + v.hi;
    return (a.x + a.y) + (a.z + a.w);
}

#define CLBNB_G4_KERNEL_PARAMS                                                                               \
    __global const uchar *restrict x, ulong xoff, ulong ldx, CLBNB_G4_WEIGHT_PARAMS,                        \
        __global const uchar *restrict bias, ulong boff, int bias_dtype, __global uchar *restrict out,        \
        ulong outoff, ulong ldo, ulong M, ulong N, ulong K, uint param
#define CLBNB_G4_KERNEL_ARGS                                                                                 \
    x, xoff, ldx, CLBNB_G4_WEIGHT_ARGS, bias, boff, bias_dtype, out, outoff, ldo, M, N, K, param

// ---- generic path (GPU shape) -----------------------------------------------------------------
// param = tpr, items per weight row (power of two <= G4_WG).
inline void g4_gpu_body(CLBNB_G4_KERNEL_PARAMS, __local float *tab, __local float *red, const int mb) {
    const uint tpr = param;
    const uint lid = get_local_id(0);
    const uint lane = lid & (tpr - 1u);
    const ulong n = (ulong)get_group_id(0) * (G4_WG / tpr) + lid / tpr;
    const ulong m0 = (ulong)get_group_id(1) * (ulong)mb;
    if (lid < 16) tab[lid] = clbnb_g4_table(qtype, lid);
    barrier(CLK_LOCAL_MEM_FENCE);
    float8 acc[8];
#pragma unroll
    for (int r = 0; r < mb; r++) acc[r] = (float8)(0.0f);
    if (n < N) {
        const ulong flat0 = n * K;
        __global const uint4 *wrow = (__global const uint4 *)(packed + poff + (flat0 >> 1));
        const ulong chunks = K >> 5;
        __global const uchar *xb = x + xoff;
        for (ulong c = lane; c < chunks; c += tpr) {
            const uint4 v = wrow[c];
            const float s = CLBNB_G4_SCALE((flat0 + (c << 5)) >> log2bs);
            const float8 w0 = G4_W8(tab, v.x, s), w1 = G4_W8(tab, v.y, s);
            const float8 w2 = G4_W8(tab, v.z, s), w3 = G4_W8(tab, v.w, s);
            const ulong k = c << 5;
#pragma unroll
            for (int r = 0; r < mb; r++) {
                if (m0 + r < M) {
                    __global const uchar *p = xb + (m0 + r) * ldx * G4_XSIZE;
                    float8 t = g4_x8(p, k) * w0;
                    t += g4_x8(p, k + 8) * w1;
                    t += g4_x8(p, k + 16) * w2;
                    t += g4_x8(p, k + 24) * w3;
                    acc[r] += t;
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < mb; r++) red[r * G4_WG + lid] = g4_sum8(acc[r]);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = tpr >> 1; s > 0; s >>= 1) {
        if (lane < s) {
#pragma unroll
            for (int r = 0; r < mb; r++) red[r * G4_WG + lid] += red[r * G4_WG + lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && n < N) {
        const float b = clbnb_g4_bias(bias, boff, bias_dtype, n);
#pragma unroll
        for (int r = 0; r < mb; r++)
            if (m0 + r < M) clbnb_store_float(out + outoff, (m0 + r) * ldo + n, OUT_DTYPE, red[r * G4_WG + lid] + b);
    }
}

#define G4_GPU_KERNEL(MB)                                                                                    \
    __kernel __attribute__((reqd_work_group_size(G4_WG, 1, 1))) void g4_gpu_mb##MB(CLBNB_G4_KERNEL_PARAMS) { \
        __local float tab[16];                                                                               \
        __local float red[G4_WG * MB];                                                                       \
        g4_gpu_body(CLBNB_G4_KERNEL_ARGS, tab, red, MB);                                                     \
    }
G4_GPU_KERNEL(1)
G4_GPU_KERNEL(2)
G4_GPU_KERNEL(4)
G4_GPU_KERNEL(8)

// ---- cpu path (barrier-free) ------------------------------------------------------------------
inline void g4_cpu_body(CLBNB_G4_KERNEL_PARAMS, const int mb) {
    const ulong n = get_global_id(0);
    const ulong m0 = (ulong)get_global_id(1) * (ulong)mb;
    if (n >= N) return;
    __constant const uint2 *pairs = clbnb_g4_pairs + (qtype ? 256 : 0);
    float8 acc[8];
    for (int r = 0; r < mb; r++) acc[r] = (float8)(0.0f);
    const ulong flat0 = n * K;
    __global const uint4 *wrow = (__global const uint4 *)(packed + poff + (flat0 >> 1));
    const ulong chunks = K >> 5;
    __global const uchar *xb = x + xoff;
    for (ulong c = 0; c < chunks; c++) {
        const uint4 v = wrow[c];
        const float s = CLBNB_G4_SCALE((flat0 + (c << 5)) >> log2bs);
        const float8 w0 = G4_P8(pairs, v.x, s), w1 = G4_P8(pairs, v.y, s);
        const float8 w2 = G4_P8(pairs, v.z, s), w3 = G4_P8(pairs, v.w, s);
        const ulong k = c << 5;
        for (int r = 0; r < mb; r++) {
            if (m0 + r < M) {
                __global const uchar *p = xb + (m0 + r) * ldx * G4_XSIZE;
                float8 t = g4_x8(p, k) * w0;
                t += g4_x8(p, k + 8) * w1;
                t += g4_x8(p, k + 16) * w2;
                t += g4_x8(p, k + 24) * w3;
                acc[r] += t;
            }
        }
    }
    const float b = clbnb_g4_bias(bias, boff, bias_dtype, n);
    for (int r = 0; r < mb; r++)
        if (m0 + r < M) clbnb_store_float(out + outoff, (m0 + r) * ldo + n, OUT_DTYPE, g4_sum8(acc[r]) + b);
}

#define G4_CPU_KERNEL(MB)                                                                                    \
    __kernel void g4_cpu_mb##MB(CLBNB_G4_KERNEL_PARAMS) { g4_cpu_body(CLBNB_G4_KERNEL_ARGS, MB); }
G4_CPU_KERNEL(1)
G4_CPU_KERNEL(2)
G4_CPU_KERNEL(4)
G4_CPU_KERNEL(8)

// ---- any K ------------------------------------------------------------------------------------
// param = rows of x per work-item (1..4).
__kernel void g4_general(CLBNB_G4_KERNEL_PARAMS) {
    const ulong n = get_global_id(0);
    const uint mb = param;
    const ulong m0 = (ulong)get_global_id(1) * mb;
    if (n >= N) return;
    float tab[16];
    for (uint i = 0; i < 16; i++) tab[i] = clbnb_g4_table(qtype, i);
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const ulong flat0 = n * K;
    __global const uchar *xb = x + xoff;
    ulong cur = ~(ulong)0;
    float s = 0.0f;
    for (ulong k = 0; k < K; k++) {
        const ulong i = flat0 + k;
        const ulong b = i >> log2bs;
        if (b != cur) {
            s = CLBNB_G4_SCALE(b);
            cur = b;
        }
        const float w = tab[clbnb_g4_code(packed, poff, i)] * s;
        for (uint r = 0; r < 4; r++)
            if (r < mb && m0 + r < M) acc[r] += clbnb_load_float(xb, (m0 + r) * ldx + k, X_DTYPE) * w;
    }
    const float bv = clbnb_g4_bias(bias, boff, bias_dtype, n);
    for (uint r = 0; r < 4; r++)
        if (r < mb && m0 + r < M) clbnb_store_float(out + outoff, (m0 + r) * ldo + n, OUT_DTYPE, acc[r] + bv);
}
