// =================================================================================================
// gemm_4bit.cl: fused 4-bit dequantizing GEMV / small-batch GEMM, out[M, N] = x[M, K] * W[N, K]^T
// (+ bias), W a bitsandbytes NF4 / FP4 state (flat packed nibbles, plain or nested absmax).
// Options: X_DTYPE, OUT_DTYPE (clbnb dtype codes of x and out), G4_WARPS (generic path). Numerics: w = fl32(table * scale),
// products and sums in f32, bias added in f32, one rounding to OUT_DTYPE.
//
// Kernels (all take the same arguments, see CLBNB_G4_KERNEL_PARAMS):
//   g4_gpu_mb1          generic path GEMV, fast shape (K % blocksize == 0, packed offset 16-aligned):
//                       work-group of G4_WG = 32 * G4_WARPS items computes G4_WG / 8 weight rows;
//                       the 8 items of a row read consecutive 16-byte chunks, x staged in local
//                       memory, reduced by warp shuffles (NVIDIA) or through local memory.
//   g4_gt_mb{2,4,8,16}  generic path small batch, fast shape: register-tiled (G4T_RN weight rows x
//                       MB rows of x per work-item), K split over the warps (see below).
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
#ifndef G4_WARPS
#define G4_WARPS 8 // warps of 32 per work-group of the generic-path kernels (1, 2, 4, 8 or 16)
#endif
#ifndef G4T_RN
#define G4T_RN 1 // weight rows per work-item of g4_gt_mb* (1, 2 or 4; G4_WARPS * G4T_RN <= 16)
#endif
#define G4_WG (32 * G4_WARPS)

#if CLBNB_NV_CC >= 70
inline float g4_shfl_xor(float v, int mask) {
    float r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(mask));
    return r;
}
#endif

// Stages the 16-entry table (and the 256-entry nested code) in local memory.
inline void g4_stage_tables(__local float *tab, __local float *c2, __global const float *restrict code2, ulong c2off,
                            int nested, int qtype) {
    const uint lid = get_local_id(0);
    if (lid < 16) tab[lid] = clbnb_g4_table(qtype, lid);
    if (nested)
        for (uint i = lid; i < 256u; i += G4_WG) c2[i] = code2[c2off + i];
}

// Raw absmax of block b: the f32 bits (plain) or the u8 code + the f32 absmax2 (nested).
#define G4_RAW_SCALE(b, q, a2)                                                                     \
    if (nested) {                                                                                  \
        q = absmax[aoff + (b)];                                                                    \
        a2 = absmax2[a2off + ((b) >> log2bs2)];                                                    \
    } else {                                                                                       \
        a2 = ((__global const float *)absmax)[aoff + (b)];                                         \
    }
// The scale from the raw absmax (spec 3: fl32(fl32(code2[q] * absmax2) + offset)).
inline float g4_scale_of(__local const float *c2, int nested, uint q, float a2, float off) {
    if (!nested) return a2;
    const float t = c2[q] * a2;
    return t + off;
}

// GEMV (g4_gpu_mb1, fast shape): each warp computes 4 weight rows, 8 work-items ("k-lanes") per
// row: k-lane j reads the 16-byte chunk j of every 256-weight step of its row. x is staged per K
// tile in local memory as f32, in an order that makes the 8 k-lanes' float4 reads one contiguous
// 128-byte line (the 4 rows of a warp read the same addresses: broadcasts). The 8 partial sums of
// a row are reduced by warp shuffles on NVIDIA and through local memory elsewhere.
#ifndef G4_XLOC
#define G4_XLOC 8192 // floats of local memory for the staged x tile (>= 16 * 256, >= 16 * G4_WG)
#endif


// Position in the staged tile of tile element kk (within its 256-weight step: chunk j = bits 5..7,
// word q = bits 3..4, half h = bit 2, element i = bits 0..1 -> step + (2q + h) * 32 + 4j + i).
inline uint g4_xpos(uint kk) {
    return (kk & ~255u) + (((kk >> 3) & 3u) * 2u + ((kk >> 2) & 1u)) * 32u + ((kk >> 5) & 7u) * 4u + (kk & 3u);
}

// acc[r] += the 8 products of word u (weights k .. k + 7 of the chunk) with x row r.
#define G4_GPU_WORD(u, q)                                                                                  \
    {                                                                                                      \
        const float4 wa = (float4)(tab[((u) >> 4) & 15u], tab[(u)&15u], tab[((u) >> 12) & 15u],            \
                                   tab[((u) >> 8) & 15u]) * (float4)(sc);                                  \
        const float4 wb = (float4)(tab[((u) >> 20) & 15u], tab[((u) >> 16) & 15u], tab[((u) >> 28) & 15u], \
                                   tab[((u) >> 24) & 15u]) * (float4)(sc);                                 \
        for (int r = 0; r < mb; r++) {                                                                     \
            const float4 xa = vload4(0, xp + r * kt + (2 * (q)) * 32);                                     \
            const float4 xb = vload4(0, xp + r * kt + (2 * (q) + 1) * 32);                                 \
            acc[r] = fma(xa, wa, acc[r]);                                                                  \
            acc[r] = fma(xb, wb, acc[r]);                                                                  \
        }                                                                                                  \
    }

inline void g4_gpu_body(CLBNB_G4_KERNEL_PARAMS, __local float *tab, __local float *xs, const int mb) {
    const uint lid = get_local_id(0);
    const uint kl = lid & 7u;
    const ulong n = (ulong)get_group_id(0) * (G4_WG / 8) + (lid >> 3);
    const ulong m0 = (ulong)get_group_id(1) * (ulong)mb;
    const uint kt = (G4_XLOC / mb) & ~255u; // K tile (multiple of 256)
    const int active = n < N;
    if (lid < 16) tab[lid] = clbnb_g4_table(qtype, lid);
    float4 acc[16];
#pragma unroll
    for (int r = 0; r < mb; r++) acc[r] = (float4)(0.0f);
    const ulong flat0 = active ? n * K : 0;
    __global const uint4 *wrow = (__global const uint4 *)(packed + poff + (flat0 >> 1));
    __global const uchar *xb = x + xoff;
    for (ulong k0 = 0; k0 < K; k0 += kt) {
        const uint len = (uint)min((ulong)kt, K - k0); // multiple of 32
        barrier(CLK_LOCAL_MEM_FENCE);                    // the previous tile is consumed
        for (int r = 0; r < mb; r++) {
            const int live = m0 + r < M;
            __global const uchar *p = xb + (live ? (m0 + r) * ldx * G4_XSIZE : 0);
            for (uint kk = lid * 8u; kk < len; kk += G4_WG * 8u) {
                const float8 v = live ? g4_x8(p, k0 + kk) : (float8)(0.0f);
                const uint pos = (uint)r * kt + g4_xpos(kk);
                vstore4(v.lo, 0, xs + pos);
                vstore4(v.hi, 0, xs + pos + 32);
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (active) {
            uint kk = kl * 32u;
            uint4 v = (uint4)(0u);
            float sc = 0.0f;
            if (kk < len) {
                v = wrow[(k0 + kk) >> 5];
                sc = CLBNB_G4_SCALE((flat0 + k0 + kk) >> log2bs);
            }
            for (uint s = 0; s < len; s += 256u) {
                // the next step's chunk is loaded before this one is used (two loads in flight)
                const uint kn = kk + 256u;
                uint4 vn = (uint4)(0u);
                float scn = 0.0f;
                if (kn < len) {
                    vn = wrow[(k0 + kn) >> 5];
                    scn = CLBNB_G4_SCALE((flat0 + k0 + kn) >> log2bs);
                }
                if (kk < len) {
                    __local const float *xp = xs + s + kl * 4u;
                    G4_GPU_WORD(v.x, 0)
                    G4_GPU_WORD(v.y, 1)
                    G4_GPU_WORD(v.z, 2)
                    G4_GPU_WORD(v.w, 3)
                }
                v = vn;
                sc = scn;
                kk = kn;
            }
        }
    }
    float sum[16];
#pragma unroll
    for (int r = 0; r < mb; r++) sum[r] = (acc[r].x + acc[r].y) + (acc[r].z + acc[r].w);
#if CLBNB_NV_CC >= 70
#pragma unroll
    for (int r = 0; r < mb; r++) {
        sum[r] += g4_shfl_xor(sum[r], 1);
        sum[r] += g4_shfl_xor(sum[r], 2);
        sum[r] += g4_shfl_xor(sum[r], 4);
    }
#else
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int r = 0; r < mb; r++) xs[r * G4_WG + lid] = sum[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (kl == 0) {
#pragma unroll
        for (int r = 0; r < mb; r++) {
            __local const float *t = xs + r * G4_WG + lid;
            sum[r] = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        }
    }
#endif
    if (kl == 0 && active) {
        const float b = clbnb_g4_bias(bias, boff, bias_dtype, n);
#pragma unroll
        for (int r = 0; r < mb; r++)
            if (m0 + r < M) clbnb_store_float(out + outoff, (m0 + r) * ldo + n, OUT_DTYPE, sum[r] + b);
    }
}

__kernel __attribute__((reqd_work_group_size(G4_WG, 1, 1))) void g4_gpu_mb1(CLBNB_G4_KERNEL_PARAMS) {
    __local float tab[16];
    __local float xs[G4_XLOC];
    g4_gpu_body(CLBNB_G4_KERNEL_ARGS, tab, xs, 1);
}

// Small batch (g4_gt_mb{2,4,8,16}, fast shape): a work-group computes 32 * G4T_RN weight rows for
// MB rows of x. Its G4_WARPS warps split each K tile of KT = 32 * G4_WARPS weights: warp w takes
// the 32 weights [32 w, 32 w + 32) of the tile, lane l the rows n0 + 32 i + l (i < G4T_RN), one
// 16-byte chunk per row (loaded one tile ahead). The x tile (MB rows, f32) is staged in local
// memory; all lanes of a warp read the same x (broadcasts), each decoded weight is used for MB rows
// of x held in registers (G4T_RN * MB f32 sums per work-item). The warps' partial sums are added
// through local memory at the end.
#define G4T_KT (32 * G4_WARPS)

inline void g4_gt_body(CLBNB_G4_KERNEL_PARAMS, __local float *tab, __local float *c2, __local float *xs,
                       const int mb) {
    const uint lid = get_local_id(0);
    const uint lane = lid & 31u, wp = lid >> 5;
    const ulong n0 = (ulong)get_group_id(0) * (32u * G4T_RN);
    const ulong m0 = (ulong)get_group_id(1) * (ulong)mb;
    g4_stage_tables(tab, c2, code2, c2off, nested, qtype);
    const float off = nested ? offs[ooff] : 0.0f;
    float acc[G4T_RN][16];
    ulong flat[G4T_RN];
    __global const uint4 *wrow[G4T_RN];
#pragma unroll
    for (int i = 0; i < G4T_RN; i++) {
        const ulong n = n0 + 32u * (uint)i + lane;
        flat[i] = n < N ? n * K : 0;
        wrow[i] = (__global const uint4 *)(packed + poff + (flat[i] >> 1));
#pragma unroll
        for (int r = 0; r < mb; r++) acc[i][r] = 0.0f;
    }
    uint4 v[G4T_RN];
    uint q[G4T_RN];
    float a2[G4T_RN];
    // loads of the chunk at K offset k (zeros past K)
#define G4T_LOAD(k)                                                                                \
    _Pragma("unroll") for (int i = 0; i < G4T_RN; i++) {                                           \
        v[i] = (uint4)(0u);                                                                        \
        q[i] = 0u;                                                                                 \
        a2[i] = 0.0f;                                                                              \
        if ((k) < K) {                                                                             \
            v[i] = wrow[i][(k) >> 5];                                                              \
            const ulong b = (flat[i] + (k)) >> log2bs;                                             \
            G4_RAW_SCALE(b, q[i], a2[i])                                                           \
        }                                                                                          \
    }
    G4T_LOAD((ulong)wp * 32u)
    __global const uchar *xb = x + xoff;
    for (ulong k0 = 0; k0 < K; k0 += G4T_KT) {
        const uint len = (uint)min((ulong)G4T_KT, K - k0); // multiple of 32
        barrier(CLK_LOCAL_MEM_FENCE); // the previous tile is consumed (and the tables staged)
        for (uint e = lid * 8u; e < (uint)mb * G4T_KT; e += G4_WG * 8u) {
            const uint r = e / G4T_KT, kk = e % G4T_KT;
            float8 xv = (float8)(0.0f);
            if (kk < len && m0 + r < M) xv = g4_x8(xb + (m0 + r) * ldx * G4_XSIZE, k0 + kk);
            vstore8(xv, 0, xs + e);
        }
        uint4 cv[G4T_RN];
        float sc[G4T_RN];
#pragma unroll
        for (int i = 0; i < G4T_RN; i++) {
            cv[i] = v[i];
            sc[i] = g4_scale_of(c2, nested, q[i], a2[i], off);
        }
        const ulong kn = k0 + G4T_KT + (ulong)wp * 32u;
        G4T_LOAD(kn) // next tile's chunks: in flight during this tile
        barrier(CLK_LOCAL_MEM_FENCE);
        if (wp * 32u < len) {
            __local const float *xp = xs + wp * 32u;
#pragma unroll
            for (int t = 0; t < 4; t++) {
                float w[G4T_RN][8];
#pragma unroll
                for (int i = 0; i < G4T_RN; i++) {
                    const uint u = t == 0 ? cv[i].x : t == 1 ? cv[i].y : t == 2 ? cv[i].z : cv[i].w;
                    w[i][0] = tab[(u >> 4) & 15u] * sc[i];
                    w[i][1] = tab[u & 15u] * sc[i];
                    w[i][2] = tab[(u >> 12) & 15u] * sc[i];
                    w[i][3] = tab[(u >> 8) & 15u] * sc[i];
                    w[i][4] = tab[(u >> 20) & 15u] * sc[i];
                    w[i][5] = tab[(u >> 16) & 15u] * sc[i];
                    w[i][6] = tab[(u >> 28) & 15u] * sc[i];
                    w[i][7] = tab[(u >> 24) & 15u] * sc[i];
                }
#pragma unroll
                for (int r = 0; r < mb; r++) {
                    const float4 xa = vload4(0, xp + r * G4T_KT + 8 * t);
                    const float4 xc = vload4(0, xp + r * G4T_KT + 8 * t + 4);
#pragma unroll
                    for (int i = 0; i < G4T_RN; i++) {
                        float s = acc[i][r];
                        s = fma(xa.x, w[i][0], s);
                        s = fma(xa.y, w[i][1], s);
                        s = fma(xa.z, w[i][2], s);
                        s = fma(xa.w, w[i][3], s);
                        s = fma(xc.x, w[i][4], s);
                        s = fma(xc.y, w[i][5], s);
                        s = fma(xc.z, w[i][6], s);
                        s = fma(xc.w, w[i][7], s);
                        acc[i][r] = s;
                    }
                }
            }
        }
    }
#undef G4T_LOAD
    // partial sums of the warps -> local (xs holds >= G4_WARPS * 32 * G4T_RN * mb floats)
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int r = 0; r < mb; r++)
#pragma unroll
        for (int i = 0; i < G4T_RN; i++) xs[(((uint)r * G4T_RN + (uint)i) * G4_WARPS + wp) * 32u + lane] = acc[i][r];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint o = lid; o < (uint)mb * 32u * G4T_RN; o += G4_WG) {
        const uint r = o / (32u * G4T_RN), row = o % (32u * G4T_RN);
        const ulong n = n0 + row, m = m0 + r;
        __local const float *t = xs + (o / 32u) * (G4_WARPS * 32u) + (o & 31u);
        float s = t[0];
        for (uint w2 = 1; w2 < G4_WARPS; w2++) s += t[w2 * 32u];
        if (n < N && m < M) {
            const float b = clbnb_g4_bias(bias, boff, bias_dtype, n);
            clbnb_store_float(out + outoff, m * ldo + n, OUT_DTYPE, s + b);
        }
    }
}

// local floats: max(x tile MB * KT, partials G4_WARPS * 32 * G4T_RN * MB)
#define G4T_LOC(MB) ((MB) * 32 * G4_WARPS * (G4T_RN > 1 ? G4T_RN : 1))
#define G4_GT_KERNEL(MB)                                                                                     \
    __kernel __attribute__((reqd_work_group_size(G4_WG, 1, 1))) void g4_gt_mb##MB(CLBNB_G4_KERNEL_PARAMS) { \
        __local float tab[16];                                                                               \
        __local float c2[256];                                                                               \
        __local float xs[G4T_LOC(MB)];                                                                       \
        g4_gt_body(CLBNB_G4_KERNEL_ARGS, tab, c2, xs, MB);                                                   \
    }
G4_GT_KERNEL(2)
G4_GT_KERNEL(4)
G4_GT_KERNEL(8)
G4_GT_KERNEL(16)

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
