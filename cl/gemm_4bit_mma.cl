// =================================================================================================
// gemm_4bit_mma.cl: fused 4-bit small-batch GEMM on NVIDIA tensor cores (nv_mma path, f16 x),
// out[M, N] = x[M, K] * W[N, K]^T (+ bias), W a bitsandbytes NF4 / FP4 state (plain or nested
// absmax). Numerics as bitsandbytes computes fp16: w = RN_f16(fl32(table * scale)), products of
// f16 values summed in f32 by mma.sync m16n8k16, bias added in f32, one rounding to OUT_DTYPE.
// The weights are decoded in registers: nothing is written back (dequantize + GEMM writes and
// re-reads 2 bytes per weight).
//
// Operands are swapped (out^T = W * x^T): the m16 side of the mma is 16 weight rows, the n8 side 8
// rows of x, so a batch of 1..G4M_MB rows wastes no weight decode. Work-group: G4M_WARPS warps on
// the same 16 * G4M_WR weight rows and G4M_MB = 8 * G4M_NT rows of x; the warps split K in
// segments of 128 (segment s to warp s % G4M_WARPS) and add their sums through local memory at the
// end. Lane (g = lane / 4, t = lane % 4) loads the 16-byte chunk t of the segment (32 weights) of
// rows g and g + 8 of each m16 tile: a warp reads 64 contiguous bytes per row.
//
// K order within a segment: the dot product does not depend on the order of k, so mma step j
// (0..7) gives lane (g, t) the k slots {2t, 2t+1, 2t+8, 2t+9} = weights 32t + 4j + {0, 1, 2, 3}
// of its own chunk (the nibbles of one 16-bit half of one word: no exchange between lanes). x
// follows the same order: the warp stages its segment of x (G4M_MB rows x 128, f16) in local
// memory as B fragments (uint2 per lane, step and n8 tile), so each fragment is one conflict-free
// 8-byte load.
//
// Options: OUT_DTYPE, G4M_WARPS, G4M_WR (m16 tiles per warp), G4M_NT (n8 tiles: G4M_MB / 8),
// G4_XVEC (x rows 8-byte aligned: 8-byte loads), CLBNB_PTX_EMULATE (tests on devices without PTX).
// Fast shape only (K % 32 == 0 with blocksize >= 32, packed offset 16-aligned): the host checks.
// =================================================================================================
//! include inc_gemm_4bit
//! include inc_mma_ptx
//! include inc_g4_mma

#ifndef OUT_DTYPE
#define OUT_DTYPE 1
#endif
#ifndef G4M_WARPS
#define G4M_WARPS 4
#endif
#ifndef G4M_WR
#define G4M_WR 2
#endif
#ifndef G4M_NT
#define G4M_NT 2
#endif
#ifndef G4_XVEC
#define G4_XVEC 0
#endif
#define G4M_WG (32 * G4M_WARPS)
#define G4M_MB (8 * G4M_NT)
#define G4M_ROWS (16 * G4M_WR)

#if CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE

#if CLBNB_PTX_EMULATE
#define G4M_WARP_SYNC() barrier(CLK_LOCAL_MEM_FENCE)
#else
#define G4M_WARP_SYNC() asm volatile("bar.warp.sync 0xffffffff;" ::: "memory")
#endif

// 4 consecutive x elements (one uint2 of f16) of row m at element k, zeros outside [M, K).
inline uint2 g4m_x4(__global const uchar *xb, ulong ldx, ulong m, ulong k, ulong M, ulong K) {
    if (m >= M || k >= K) return (uint2)(0u);
    __global const uchar *p = xb + (m * ldx + k) * 2;
#if G4_XVEC
    return *(__global const uint2 *)p;
#else
    __global const ushort *h = (__global const ushort *)p;
    return (uint2)((uint)h[0] | ((uint)h[1] << 16), (uint)h[2] | ((uint)h[3] << 16));
#endif
}

__kernel __attribute__((reqd_work_group_size(G4M_WG, 1, 1))) void g4_mma(CLBNB_G4_KERNEL_PARAMS) {
    __local float tab[16];
    __local float c2[256];
    // per warp: the B fragments of one segment (step j, n8 tile, lane); reused for the final sums
    __local uint2 xs[G4M_WARPS * 8 * G4M_NT * 32];
#if CLBNB_PTX_EMULATE
    __local uint scratch[G4M_WARPS * 32 * 6];
#else
    __local uint *scratch = 0;
#endif
    const uint lid = get_local_id(0), lane = lid & 31u, wp = lid >> 5, g = lane >> 2, t = lane & 3u;
    const ulong n0 = (ulong)get_group_id(0) * G4M_ROWS;
    const ulong m0 = (ulong)get_group_id(1) * G4M_MB;
    g4m_stage_tables(tab, c2, qtype, nested, code2, c2off, lid, G4M_WG);
    const float off = nested ? offs[ooff] : 0.0f;
    const uint chunks = (uint)(K >> 5), segs = (chunks + 3u) / 4u;
    const uint iters = (segs + G4M_WARPS - 1u) / G4M_WARPS;

    // rows g and g + 8 of each m16 tile (rows past N read row N - 1 and are not stored)
    __global const uint4 *wrow[G4M_WR][2];
    ulong flat[G4M_WR][2];
#pragma unroll
    for (int i = 0; i < G4M_WR; i++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            flat[i][h] = min(n0 + 16u * (uint)i + 8u * (uint)h + g, N - 1) * K;
            wrow[i][h] = (__global const uint4 *)(packed + poff + (flat[i][h] >> 1));
        }
    float acc[G4M_WR][G4M_NT][4];
#pragma unroll
    for (int i = 0; i < G4M_WR; i++)
#pragma unroll
        for (int nt = 0; nt < G4M_NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[i][nt][e] = 0.0f;

    __global const uchar *xb = x + xoff;
    __local uint2 *xw = xs + wp * (8 * G4M_NT * 32);
    for (uint it = 0; it < iters; it++) {
        const uint seg = it * G4M_WARPS + wp; // past the last segment: zeros (uniform trip count)
        const uint c = seg * 4u + t;          // this lane's chunk of the segment
        uint4 v[G4M_WR][2];
        float sc[G4M_WR][2];
#pragma unroll
        for (int i = 0; i < G4M_WR; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                v[i][h] = (uint4)(0u);
                uint q = 0u;
                float a2 = 0.0f;
                if (c < chunks) {
                    v[i][h] = wrow[i][h][c];
                    const ulong b = (flat[i][h] + ((ulong)c << 5)) >> log2bs;
                    G4_RAW_SCALE(b, q, a2)
                }
                sc[i][h] = c < chunks ? g4_scale_of(c2, nested, q, a2, off) : 0.0f;
            }
        // stage x [m0, m0 + MB) x [128 seg, +128) as fragments: piece p = (row r, 4 elements at
        // 4 q) goes to step j = q % 8 of lane (r % 8) * 4 + q / 8, n8 tile r / 8 (32 lanes read
        // 256 contiguous bytes of a row)
        G4M_WARP_SYNC(); // the previous segment's fragments are consumed
        const ulong k0 = (ulong)seg * 128u;
        for (uint p = lane; p < G4M_MB * 32u; p += 32u) {
            const uint r = p >> 5, q = p & 31u;
            const uint2 piece = g4m_x4(xb, ldx, m0 + r, k0 + 4u * q, M, K);
            xw[((q & 7u) * G4M_NT + (r >> 3)) * 32u + (r & 7u) * 4u + (q >> 3)] = piece;
        }
        G4M_WARP_SYNC();
#pragma unroll
        for (int j = 0; j < 8; j++) {
            uint a[G4M_WR][4];
#pragma unroll
            for (int i = 0; i < G4M_WR; i++) {
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const uint4 vv = v[i][h];
                    const uint word = (j >> 1) == 0 ? vv.x : (j >> 1) == 1 ? vv.y : (j >> 1) == 2 ? vv.z : vv.w;
                    const uint bits16 = (j & 1) ? word >> 16 : word & 0xffffu;
                    a[i][h] = g4m_pair(tab, bits16 & 255u, sc[i][h]);     // k slots 2t, 2t+1
                    a[i][h + 2] = g4m_pair(tab, bits16 >> 8, sc[i][h]);   // k slots 2t+8, 2t+9
                }
            }
#pragma unroll
            for (int nt = 0; nt < G4M_NT; nt++) {
                const uint2 b = xw[((uint)j * G4M_NT + (uint)nt) * 32u + lane];
#pragma unroll
                for (int i = 0; i < G4M_WR; i++) MMA_F16_OP(acc[i][nt], a[i][0], a[i][1], a[i][2], a[i][3], b.x, b.y, scratch);
            }
        }
    }

    // the warps' sums: through local memory (xs reused: WARPS * WR * NT * 128 floats fit in it when
    // WR <= 4), then one work-item per output adds them in warp order
    barrier(CLK_LOCAL_MEM_FENCE);
    __local float *red = (__local float *)xs;
#pragma unroll
    for (int i = 0; i < G4M_WR; i++)
#pragma unroll
        for (int nt = 0; nt < G4M_NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                red[(((uint)i * G4M_NT + (uint)nt) * 4u + (uint)e) * G4M_WG + lid] = acc[i][nt][e];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint o = lid; o < G4M_WR * G4M_NT * 4u * 32u; o += G4M_WG) {
        const uint l = o & 31u, e = (o >> 5) & 3u, nt = (o >> 7) % G4M_NT, i = (o >> 7) / G4M_NT;
        __local const float *src = red + (o >> 5) * G4M_WG + l;
        float s = 0.0f;
        for (uint w = 0; w < G4M_WARPS; w++) s += src[w * 32u];
        const ulong n = n0 + 16u * i + (l >> 2) + (e >= 2u ? 8u : 0u);
        const ulong m = m0 + 8u * nt + 2u * (l & 3u) + (e & 1u);
        if (n < N && m < M)
            clbnb_store_float(out + outoff, m * ldo + n, OUT_DTYPE, s + clbnb_g4_bias(bias, boff, bias_dtype, n));
    }
}

#endif // CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE
