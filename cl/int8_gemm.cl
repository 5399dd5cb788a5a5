// =================================================================================================
// int8_gemm.cl: portable int8 GEMM kernels, C = A * B^T, A [M, K] i8, B [N, K] i8, exact int32
// accumulation, fused epilogue (inc_int8_epilogue.cl).
//
//   int8_gemm_tiled  GPU shape (generic and dot4 paths): TILE x TILE outputs per work-group of
//                    (TILE/WPT)^2 work-items, BK-byte slices of A and B staged in local memory as
//                    packed ints, WPT x WPT outputs per work-item, DOT4 on packed ints.
//   int8_gemm_cpu    CPU shape (PoCL): barrier-free, one work-item per (row, 4 columns), 16-byte
//                    vector loads along K that LLVM turns into SIMD multiply-adds.
// =================================================================================================
//! include inc_int8_epilogue
//! include inc_dot4

#ifndef TILE
#define TILE 64 // outputs per work-group in M and in N
#endif
#ifndef WPT
#define WPT 4 // outputs per work-item in M and in N
#endif
#ifndef BK
#define BK 32 // bytes of K per local-memory stage (multiple of 4)
#endif
#ifndef ALIGNED4
#define ALIGNED4 0 // 1 when A and B rows start 4-byte aligned (offsets and leading dims % 4 == 0)
#endif

#define THREADS_1D (TILE / WPT)

// Four consecutive bytes of row `row` from column k, zero outside [0, rows) x [0, K).
inline int load_packed4(__global const char *p, ulong ld, uint row, uint rows, uint k, uint K) {
    if (row >= rows) return 0;
    __global const char *r = p + (ulong)row * ld;
#if ALIGNED4
    if (k + 3 < K) return *(__global const int *)(r + k);
#endif
    uint v = 0;
    for (uint i = 0; i < 4; i++)
        if (k + i < K) v |= ((uint)(uchar)r[k + i]) << (8 * i);
    return (int)v;
}

// Split-K: work-group z covers K bytes [z * k_chunk, min(K, (z + 1) * k_chunk)); with `partial`
// non-NULL the exact int32 sums are added atomically into partial[M, N] and int8_gemm_epilogue
// applies the epilogue afterwards (integer addition is associative: the result is deterministic).
__kernel __attribute__((reqd_work_group_size(THREADS_1D, THREADS_1D, 1))) void
int8_gemm_tiled(__global const char *a_base, ulong a_off, ulong lda, __global const char *b_base, ulong b_off,
                ulong ldb, uint M, uint N, uint K, uint k_chunk, __global int *partial, EPILOGUE_PARAMS) {
    __local int As[TILE][BK / 4 + 1]; // +1: rows start in different banks
    __local int Bs[TILE][BK / 4 + 1];
    __global const char *A = a_base + a_off;
    __global const char *B = b_base + b_off;
    const uint tx = get_local_id(0), ty = get_local_id(1);
    const uint tid = ty * THREADS_1D + tx;
    const uint m0 = get_group_id(1) * TILE, n0 = get_group_id(0) * TILE;
    int acc[WPT][WPT];
    for (int i = 0; i < WPT; i++)
        for (int j = 0; j < WPT; j++) acc[i][j] = 0;

    const uint k_begin = get_group_id(2) * k_chunk, k_end = min(K, k_begin + k_chunk);
    for (uint k0 = k_begin; k0 < k_end; k0 += BK) {
        for (uint l = tid; l < TILE * (BK / 4); l += THREADS_1D * THREADS_1D) {
            uint r = l / (BK / 4), c = l % (BK / 4);
            As[r][c] = load_packed4(A, lda, m0 + r, M, k0 + 4 * c, K);
            Bs[r][c] = load_packed4(B, ldb, n0 + r, N, k0 + 4 * c, K);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint kk = 0; kk < BK / 4; kk++) {
            int a[WPT], b[WPT];
            for (int i = 0; i < WPT; i++) a[i] = As[ty + i * THREADS_1D][kk];
            for (int j = 0; j < WPT; j++) b[j] = Bs[tx + j * THREADS_1D][kk];
            for (int i = 0; i < WPT; i++)
                for (int j = 0; j < WPT; j++) acc[i][j] = DOT4(a[i], b[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < WPT; i++) {
        uint m = m0 + ty + i * THREADS_1D;
        if (m >= M) continue;
        for (int j = 0; j < WPT; j++) {
            uint n = n0 + tx + j * THREADS_1D;
            if (n >= N) continue;
            if (partial)
                atomic_add(partial + (ulong)m * N + n, acc[i][j]);
            else
                epilogue_store(out_base + out_off, ldc, sa_base + sa_off, sb_base + sb_off, bias_base + bias_off, cfg, m, n,
                               acc[i][j]);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// CPU: work-item (x = column group of 4, y = row). No barriers, no local memory.
// ------------------------------------------------------------------------------------------------
inline int sum8(int8 v) {
    int4 a = v.lo + v.hi;
    int2 b = a.lo + a.hi;
    return b.x + b.y;
}

// (k_chunk and partial keep the signature of the other GEMM kernels; the CPU kernel never splits K)
__kernel void int8_gemm_cpu(__global const char *a_base, ulong a_off, ulong lda, __global const char *b_base, ulong b_off,
                            ulong ldb, uint M, uint N, uint K, uint k_chunk, __global int *partial, EPILOGUE_PARAMS) {
    const uint n0 = get_global_id(0) * 4, m = get_global_id(1);
    if (m >= M || n0 >= N) return;
    __global const char *a = a_base + a_off + (ulong)m * lda;
    __global const char *b0 = b_base + b_off + (ulong)n0 * ldb;
    // columns past N reuse row n0 (their results are discarded): no branches in the loop
    __global const char *b1 = n0 + 1 < N ? b0 + ldb : b0;
    __global const char *b2 = n0 + 2 < N ? b0 + 2 * ldb : b0;
    __global const char *b3 = n0 + 3 < N ? b0 + 3 * ldb : b0;
    // 8-wide int vectors: one AVX2 register (16-wide would split registers and change the ABI)
    int8 s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint k = 0;
    for (; k + 8 <= K; k += 8) {
        int8 av = convert_int8(vload8(0, a + k));
        s0 += av * convert_int8(vload8(0, b0 + k));
        s1 += av * convert_int8(vload8(0, b1 + k));
        s2 += av * convert_int8(vload8(0, b2 + k));
        s3 += av * convert_int8(vload8(0, b3 + k));
    }
    int r0 = sum8(s0), r1 = sum8(s1), r2 = sum8(s2), r3 = sum8(s3);
    for (; k < K; k++) {
        int av = a[k];
        r0 += av * b0[k];
        r1 += av * b1[k];
        r2 += av * b2[k];
        r3 += av * b3[k];
    }
    __global uchar *out = out_base + out_off;
    __global const uchar *sa = sa_base + sa_off, *sb = sb_base + sb_off, *bias = bias_base + bias_off;
    epilogue_store(out, ldc, sa, sb, bias, cfg, m, n0, r0);
    if (n0 + 1 < N) epilogue_store(out, ldc, sa, sb, bias, cfg, m, n0 + 1, r1);
    if (n0 + 2 < N) epilogue_store(out, ldc, sa, sb, bias, cfg, m, n0 + 2, r2);
    if (n0 + 3 < N) epilogue_store(out, ldc, sa, sb, bias, cfg, m, n0 + 3, r3);
}

// ------------------------------------------------------------------------------------------------
// Split-K finish: applies the epilogue to the summed partials. One work-item per output.
// ------------------------------------------------------------------------------------------------
__kernel void int8_gemm_epilogue(__global const int *partial, uint M, uint N, EPILOGUE_PARAMS) {
    uint n = get_global_id(0), m = get_global_id(1);
    if (m >= M || n >= N) return;
    epilogue_store(out_base + out_off, ldc, sa_base + sa_off, sb_base + sb_off, bias_base + bias_off, cfg, m, n,
                   partial[(ulong)m * N + n]);
}

// ------------------------------------------------------------------------------------------------
// Skinny GEMM for small M (token generation, small batches): memory-bound on B, so B is streamed
// once with coalesced 16-byte loads. A work-group of SK_TEAMS teams of SK_TL work-items computes
// SK_TEAMS columns n; the SK_TL work-items of a team stride along K over one row of B and
// accumulate all M rows of A (A is small and stays in cache); at the end the team's partial sums
// are folded to 32 in local memory, then one work-item per row of A adds those 32 (integer sums:
// exact in any order).
// ------------------------------------------------------------------------------------------------
#ifndef SK_MAX_M
#define SK_MAX_M 4 // largest M this kernel serves (registers: SK_MAX_M accumulators per work-item)
#endif
#ifndef SK_TL
#define SK_TL 32 // work-items per team (one output column): 32, 64, 128 or 256
#endif
#define SK_WG 256
#define SK_TEAMS (SK_WG / SK_TL) // output columns per work-group
#ifndef ALIGNED16
#define ALIGNED16 0 // 1 when A and B rows start 16-byte aligned: uint4 loads
#endif

__kernel __attribute__((reqd_work_group_size(SK_WG, 1, 1))) void
int8_gemm_skinny(__global const char *a_base, ulong a_off, ulong lda, __global const char *b_base, ulong b_off,
                 ulong ldb, uint M, uint N, uint K, uint k_chunk, __global int *partial, EPILOGUE_PARAMS,
                 int fuse_outliers, __global const uchar *ox, ulong ox_off, ulong ldox, int oxdt,
                 __global const int *ocols, __global const int *ocount) {
    __local int red[SK_MAX_M][SK_WG];
    const uint lid = get_local_id(0), lane = lid % SK_TL, team = lid / SK_TL;
    const uint n = get_group_id(0) * SK_TEAMS + team;
    const uint nn = min(n, N - 1); // teams past N compute a duplicate and discard it
    __global const char *A = a_base + a_off;
    __global const char *brow = b_base + b_off + (ulong)nn * ldb;
    int acc[SK_MAX_M];
    for (int m = 0; m < SK_MAX_M; m++) acc[m] = 0;
    const uint kfull = K / 16 * 16;
    // one chunk of B per lane and step: loading 2 / 4 / 8 chunks before use measured slower on the
    // H100 (M = 1, 4096 x 4096: 13.1 -> 14.9 / 15.9 / 19.7 us; M = 4, 28672 x 8192: 126 -> 135-164)
    for (uint k = lane * 16; k < kfull; k += SK_TL * 16) {
#if ALIGNED16
        int4 b = *(__global const int4 *)(brow + k);
#else
        int4 b = as_int4(vload16(0, brow + k));
#endif
#pragma unroll
        for (uint m = 0; m < SK_MAX_M; m++) {
            if (m < M) {
#if ALIGNED16
                int4 a = *(__global const int4 *)(A + (ulong)m * lda + k);
#else
                int4 a = as_int4(vload16(0, A + (ulong)m * lda + k));
#endif
                acc[m] = DOT4(a.x, b.x, acc[m]);
                acc[m] = DOT4(a.y, b.y, acc[m]);
                acc[m] = DOT4(a.z, b.z, acc[m]);
                acc[m] = DOT4(a.w, b.w, acc[m]);
            }
        }
    }
    // the last K % 16 bytes: one per lane
    if (kfull + lane < K) {
        int bv = brow[kfull + lane];
        for (uint m = 0; m < SK_MAX_M; m++)
            if (m < M) acc[m] += (int)A[(ulong)m * lda + kfull + lane] * bv;
    }
    for (uint m = 0; m < SK_MAX_M; m++) red[m][lid] = acc[m];
    barrier(CLK_LOCAL_MEM_FENCE);
    // a tree to 32 values per team, then 32 serial adds (a tree all the way down measured
    // slower: M = 1, 4096 x 4096: 12.5 -> 14.3 us on the H100)
    for (uint h = SK_TL / 2; h >= 32; h >>= 1) {
        if (lane < h)
            for (uint m = 0; m < SK_MAX_M; m++)
                if (m < M) red[m][lid] += red[m][lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    // work-item (team, m = lane) stores row m of its team's column
    if (lane < M && lane < SK_MAX_M && n < N) {
        int sum = 0;
        for (uint l = 0; l < 32; l++) sum += red[lane][team * SK_TL + l];
        const int cnt = fuse_outliers ? ocount[0] : 0;
        if (cnt > 0) {
            // LLM.int8 with outlier columns (token generation): the separate add's
            // RN_out(RN_out(v) + outlier product), here, reading the weight row this team streamed
            const int odt = (int)EPI_OUT(cfg);
            __global const uchar *sb = sb_base + sb_off;
            float v = clbnb_round_to_dtype(
                epilogue_value(sa_base + sa_off, sb, bias_base + bias_off, cfg, lane, n, sum), odt);
            v += clbnb_lin8_outlier_sum(ox, ox_off + (ulong)lane * ldox, oxdt, brow,
                                        clbnb_load_float(sb, n, (int)EPI_SB(cfg)), ocols, cnt);
            clbnb_store_float(out_base + out_off, (ulong)lane * ldc + n, odt, v);
        } else {
            epilogue_store(out_base + out_off, ldc, sa_base + sa_off, sb_base + sb_off, bias_base + bias_off, cfg,
                           lane, n, sum);
        }
    }
}
