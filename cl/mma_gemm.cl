// =================================================================================================
// mma_gemm.cl: NVIDIA tensor-core GEMMs from OpenCL through inline PTX (sm_80+), C = A * B^T:
//   int8_gemm_mma  A [M, K] i8,  B [N, K] i8,  mma.sync m16n8k32 s8 -> s32 (exact)
//   f16_gemm_mma   A [M, K] f16, B [N, K] f16, mma.sync m16n8k16 f16 -> f32 (MMA_F16=1; the 4-bit
//                  large-batch path multiplies f16 activations by dequantized f16 weights)
//   g4_gemm_mma    A [M, K] f16, B a bitsandbytes NF4 / FP4 weight [N, K] (MMA_F16=1, G4_B=1):
//                  f16_gemm_mma with the B stage decoded from the packed weights by the work-group
//                  (w = RN_f16(fl32(table * scale)), as the dequantize kernel writes it) instead of
//                  copied, so the f16 weights never reach global memory; the same weights summed in
//                  the same order as f16_gemm_mma over the dequantized weights (same bits, with the
//                  same K split: the tile's M x N shape does not change an output's sum)
// Both consume 16 x 32-byte A tiles and 8 x 32-byte B tiles with identical fragment layouts, so one
// kernel body serves both: rows are handled as bytes (K counts bytes: 2 per f16 element).
// ldmatrix loads the fragments, cp.async copies global -> local (STAGES-deep pipeline).
// The epilogue applies the dequantization and bias in registers; 2-byte outputs (f16, bf16) are then
// staged in the K-stage buffers and written as 16-byte pieces of rows.
//
// Work-group: WARPS_M x WARPS_N warps of 32; each warp owns a (16*MT) x (8*NT) tile of C held in
// registers (MT*NT*4 ints). The work-group's tile is BM x BN; K advances BK bytes per stage.
//
// Local memory: STAGES x (A tile BM x BK bytes, B tile BN x BK bytes), unpadded (the 48 KiB cap
// makes every byte count). The 16-byte chunks of a row are XOR-swizzled by the row's 128-byte line
// so the 8 row addresses of each ldmatrix phase hit 8 distinct bank groups (no conflicts).
//
// CLBNB_PTX_EMULATE=1 replaces the four PTX instructions with plain OpenCL C that exchanges the
// fragments through local memory, so the kernel's indexing can be tested on any device (PoCL);
// it is slow and used by the tests only.
// =================================================================================================
//! include inc_int8_epilogue
//! include inc_mma_ptx
//! include inc_gemm_4bit
//! include inc_g4_mma

#ifndef WARPS_M
#define WARPS_M 2 // warps along M
#endif
#ifndef WARPS_N
#define WARPS_N 2 // warps along N
#endif
#ifndef MT
#define MT 4 // m16 tiles per warp
#endif
#ifndef NT
#define NT 8 // n8 tiles per warp (even)
#endif
#ifndef BK
#define BK 64 // bytes of K per stage (multiple of 32)
#endif
#ifndef STAGES
#define STAGES 3 // cp.async pipeline depth
#endif
#ifndef ALIGNED16
#define ALIGNED16 0 // 1 when every A and B row starts 16-byte aligned: cp.async 16-byte copies
#endif
#ifndef UNROLL
#define UNROLL 1 // 1: force unrolling of the fragment loops with #pragma unroll
#endif
#if UNROLL
#define PRAGMA_UNROLL _Pragma("unroll")
#else
#define PRAGMA_UNROLL
#endif
#ifndef SWIZZLE
#define SWIZZLE 1 // 1: XOR-swizzled unpadded rows; 0: rows padded by 16 bytes
#endif
#ifndef MMA_F16
#define MMA_F16 0 // 1: f16 x f16 -> f32 (f16_gemm_mma); 0: i8 x i8 -> i32 (int8_gemm_mma)
#endif
#ifndef G4_B
#define G4_B 0 // 1 (with MMA_F16): B is a 4-bit weight decoded into the B stages (g4_gemm_mma)
#endif
#if G4_B && !MMA_F16
#error "G4_B=1 needs MMA_F16=1"
#endif

#define THREADS (32 * WARPS_M * WARPS_N)
#define BM (16 * MT * WARPS_M)
#define BN (8 * NT * WARPS_N)
#define CHUNKS (BK / 16)           // 16-byte chunks per tile row
#define ROWS_PER_LINE (8 / CHUNKS) // tile rows per 128-byte line of local memory
#if SWIZZLE
#define ROW_BYTES BK
#else
#define ROW_BYTES (BK + 16)
#endif
#define A_STAGE_BYTES (BM * ROW_BYTES)
#define B_STAGE_BYTES (BN * ROW_BYTES)

// Byte offset of 16-byte chunk `chunk` of tile row `row`.
inline uint swz(uint row, uint chunk) {
#if SWIZZLE
    return row * BK + ((chunk ^ ((row / ROWS_PER_LINE) % CHUNKS)) << 4);
#else
    return row * ROW_BYTES + (chunk << 4);
#endif
}

#if CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE

// ---- global -> local: one stage of A and B --------------------------------------------------------
// Work-item `tid` always copies the same 16-byte chunks of each tile (chunk c = tid + q * THREADS),
// so their local offsets and global row pointers are computed once (struct chunk_plan) and only
// the K position advances per stage. With 16-byte aligned rows the copies are cp.async; otherwise
// bytes are gathered with bounds checks (correct for any leading dimension, slower).
#define A_CPT ((BM * CHUNKS + THREADS - 1) / THREADS) // A chunks per work-item and stage
#define B_CPT ((BN * CHUNKS + THREADS - 1) / THREADS)

struct chunk_plan {
    __global const uchar *src; // row start + chunk column (K position 0)
    uint dst;                  // byte offset in the stage's tile
    uint kc;                   // chunk column in bytes
    uint ok;                   // chunk exists and its row is inside the matrix
};

inline struct chunk_plan plan_chunk(uint c, uint rows_in_tile, uint row0, uint rows, __global const uchar *base,
                                    ulong ld) {
    struct chunk_plan p;
    uint r = c / CHUNKS, kc = (c % CHUNKS) * 16;
    uint row = row0 + r;
    p.ok = c < rows_in_tile * CHUNKS && row < rows;
    p.src = base + (ulong)min(row, rows - 1) * ld + kc;
    p.dst = swz(min(r, rows_in_tile - 1), kc / 16);
    p.kc = kc;
    return p;
}

// Copies chunk p of the tile whose K range starts at k0; `full`: the whole stage is inside K.
inline void copy_chunk(__local uchar *tile, struct chunk_plan p, uint k0, uint K, int full) {
    uint k = k0 + p.kc;
    uint bytes = p.ok ? (full ? 16u : (k < K ? min(16u, K - k) : 0u)) : 0u;
#if ALIGNED16
    if (p.ok) copy16_async(tile + p.dst, bytes ? p.src + k0 : p.src, bytes);
#else
    if (p.ok)
        for (uint i = 0; i < 16; i++) tile[p.dst + i] = i < bytes ? p.src[k0 + i] : 0;
#endif
}

#if MMA_F16
typedef float acc_t;
#define MMA_OP MMA_F16_OP
#if G4_B
#define GEMM_MMA_KERNEL g4_gemm_mma
#else
#define GEMM_MMA_KERNEL f16_gemm_mma
#endif
// f32 accumulator out: out[m, n] = RN_T(acc + bias[n]) (cfg as in inc_int8_epilogue.cl)
inline void store_f32_acc(__global uchar *out, ulong ldc, __global const uchar *bias, uint cfg, uint m, uint n,
                          float acc) {
    float b = EPI_HAS_BIAS(cfg) ? clbnb_load_float(bias, n, (int)EPI_BIAS(cfg)) : 0.0f;
    clbnb_store_float(out, (ulong)m * ldc + n, (int)EPI_OUT(cfg), acc + b);
}
#else
typedef int acc_t;
#define MMA_OP MMA_S8
#define GEMM_MMA_KERNEL int8_gemm_mma
#endif

// A lane's two adjacent outputs from their accumulators, before rounding to the output dtype.
inline float2 mma_out_pair(uint cfg, acc_t a0, acc_t a1, float rowf, float2 col0, float2 col1) {
#if MMA_F16
    return (float2)(a0 + col0.y, a1 + col1.y); // f32 sum + bias, one rounding
#else
    return (float2)(epilogue_combine(cfg, a0, rowf, col0), epilogue_combine(cfg, a1, rowf, col1));
#endif
}

// Local memory row of the staged output tile (2-byte outputs): 16 bytes of padding put the 8 rows
// a warp's pair stores touch at once in 8 different bank groups.
#define STAGE_ROW (BN * 2 + 16)
#define SMEM_BYTES (STAGES * (A_STAGE_BYTES + B_STAGE_BYTES))
#define STAGE_FITS (BM * STAGE_ROW <= SMEM_BYTES)
#define PIECES (BM * BN / 8)                           // 16-byte pieces of rows in the staged tile
#define PIECE_ITERS ((PIECES + THREADS - 1) / THREADS) // pieces per work-item

// ---- B as a 4-bit weight (G4_B) ------------------------------------------------------------------
// A stage's B tile is BN rows x BK / 2 weights, cut in pieces of 16 weights of one row (8 packed
// bytes in, two 16-byte chunks of f16 out). Piece c is row c / (BK / 32), weights
// [16 (c % (BK / 32)), +16) of the stage; work-item tid decodes pieces tid + q * THREADS, so the
// pieces of a row's stage go to adjacent lanes and one warp load reads whole 16-byte runs of 16
// rows. H100, M = 128 at 8192 x 28672: 423 -> 353 us against one piece per row and warp (32 rows x
// 8 bytes per load, the other 8 bytes of each run loaded by another warp). The packed bytes and
// raw scale of the next stage are loaded right after the previous stage's decode (so they are in
// flight across the barrier and a stage of mma) and decoded into its buffer after that stage's mma
// (register prefetch: cp.async cannot transform what it copies): 315 us against 333 with the loads
// issued after the barrier. The raw scale only where a piece starts a new block (331 against 347
// us loading it for every piece). Measured at that shape and dropped: each chunk decoded between
// the k16 steps' mma 331 against 315; pieces two stages ahead in two register slots (the loop
// unrolled by two) 455 against 421 us (before the lane pairs); slots shifted by moves, 2 to 4
// stages ahead, 480-597 against 480; 3 stages of 128 x 64 tiles 560-607; the swizzled layout 350
// against 331. Diagnostics (wrong results, before the lane pairs, 421 us): the decode replaced by
// stores of the raw bits 364 us, the loads by constants 273, both 225 (so this tile's mma loop
// runs at ~270 TFLOPS f16 here, and the weight loads cost more than the decode).
// The host passes K (in weights) a multiple of 16, blocksize >= 16 and a packed offset that keeps
// each piece 8-byte aligned, so a piece never straddles a block or the end of a row; pieces past K
// (the last stage when BK / 2 does not divide K) are stored as zeros, as A's chunks are.
#if G4_B
#define G4_PARAMS , CLBNB_G4_WEIGHT_PARAMS
#define G4_PIECES (BN * BK / 32)                        // pieces per stage
#define G4_PPT ((G4_PIECES + THREADS - 1) / THREADS)    // pieces per work-item and stage
struct g4_piece {
    ulong flat; // flat weight index of the piece at K position 0
    uint kofs;  // its first weight's position in a stage
    uint dst0;  // byte offsets of its two f16 chunks in a stage's B tile
    uint dst1;
    uint ok;    // the piece exists (THREADS need not divide G4_PIECES)
};

inline struct g4_piece g4_plan_piece(uint c, uint n0, uint N, ulong kw) {
    struct g4_piece p;
    const uint r = min(c / (BK / 32), (uint)BN - 1u), sub = c % (BK / 32);
    p.ok = c < G4_PIECES;
    p.kofs = 16u * sub;
    p.flat = (ulong)min(n0 + r, N - 1u) * kw + p.kofs; // rows past N repeat row N - 1 (not stored)
    p.dst0 = swz(r, 2u * sub);
    p.dst1 = swz(r, 2u * sub + 1u);
    return p;
}

// The 8 f16 of packed word w (bytes: element pairs in order) at scale s, as one 16-byte chunk.
inline uint4 g4_chunk(__local const float *tab, uint w, float s) {
    return (uint4)(g4m_pair(tab, w & 255u, s), g4m_pair(tab, (w >> 8) & 255u, s), g4m_pair(tab, (w >> 16) & 255u, s),
                   g4m_pair(tab, w >> 24, s));
}
#else
#define G4_PARAMS
#endif

// ---- the LLM.int8 outlier product, fused (OUTLIERS=1: int8, epilogue 1, f16 / bf16 out) ----------
// out[m, n] = RN_out(RN_out(v) + sum_j x[m, c_j] * w(n, c_j)) over the ocount[0] outlier columns
// c_j of x (ascending, read on the device), w as in clbnb_lin8_outlier_weight: the bits of the
// separate add (cl/linear8_outlier.cl), without its pass over the output (on the H100 it read and
// rewrote the 2048 x 4096 f16 output of the threshold-6 forward in ~40 us). Per pass of OL_JC
// columns the work-group stages the dequantized weights of its BN columns and the x values of its
// BM rows in local memory, all its loads issued together. Every piece of a work-item lies in the
// same 8 columns (THREADS is a multiple of BN / 8), so a work-item loads its 8 weights once per
// column and multiplies them into the sums of all its pieces, held in registers. H100, that
// forward (2048 x 4096^2, 8 columns): 209-211 us with the separate add, 200-203 fused, 172.5 with
// the build's constants (EPI_CFG_LOW, OL_XDT below). A per-phase %globaltimer trace of each
// work-group (tid 0) showed where the fused epilogue's time went before them: staging 5.8 us
// (plain build 5.0), the pass's loads 5.0, its sums 3.3, the write-out 11.2-12.3 (plain 3.7-4.8).
// Measured and dropped: with the f32 (unstaged) outputs fused too, the accumulators stayed live
// across the sums (220 registers instead of 128, one work-group per SM: 277 us), so src/int8_gemm.c
// leaves them to the separate add; the sums in an array indexed in a loop went to the stack (246
// us); the first pass's operands gathered by a kernel of their own and copied by cp.async with the
// first K stage, so the epilogue loads nothing: 210-211 us (the gather took 5.6 us and the GEMM no
// less); the first pass's loads issued before the staging, to overlap it: 280-282 us (their values
// live across the staging).
#ifndef OUTLIERS
#define OUTLIERS 0
#endif
#if OUTLIERS
#define OUTLIER_PARAMS                                                                                                 \
    , __global const uchar *ox, ulong ox_off, ulong ldox, int oxdt, __global const int *ocols,                         \
        __global const int *ocount
// OL_JC: outlier columns per pass, set by src/int8_gemm.c (as many as fit in 48 KiB beside the
// stage buffers, NVIDIA's OpenCL cap, at most 32), which fuses only where the tile allows it
#if !defined(OL_JC) || OL_JC < 1 || (BM + BN) * OL_JC * 4 + SMEM_BYTES > 49152 || THREADS % (BN / 8) != 0 || !STAGE_FITS
#error "OUTLIERS=1 with a tile that does not allow it"
#endif
#define OL_W_PER ((OL_JC * BN + THREADS - 1) / THREADS) // staged weights per work-item and pass
#define OL_X_PER ((BM * OL_JC + THREADS - 1) / THREADS) // staged x values per work-item and pass
#define OL_RSTEP (THREADS / (BN / 8))                     // rows between a work-item's pieces
#else
#define OUTLIER_PARAMS
#endif

// K counts bytes of a row (f16: twice the elements). Split-K (work-group z covers K bytes
// [z * k_chunk, ...)): int8 adds exact partial sums atomically into partial[M, N]; f16 (no float
// atomics in OpenCL 1.2) writes slice z's f32 tile to partial[z][M][N], and
// f16_gemm_splitk_reduce sums the slices in order (deterministic) and applies bias and dtype.
__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
GEMM_MMA_KERNEL(__global const uchar *a_base, ulong a_off, ulong lda, __global const uchar *b_base, ulong b_off,
                ulong ldb, uint M, uint N, uint K, uint k_chunk, __global int *partial,
                EPILOGUE_PARAMS OUTLIER_PARAMS G4_PARAMS) {
#ifdef EPI_CFG_LOW
// The epilogue's kind and output dtype (the low 8 bits of cfg) are constants of this build
// (src/int8_gemm.c passes the argument's bits; a macro is not expanded inside its own expansion, so
// the cfg on the right is the argument): the compiler folds the kind and dtype tests of each of a
// work-item's outputs, which were branches around every conversion and store. H100, against the
// runtime tests (3 alternations): LLM.int8 f16 4096^3 262.1-263.7 -> 251.3-251.4 us, 8192^3
// 2120-2123 -> 2068-2069 us; the threshold-6 forward (2048 x 4096^2, fused outlier product,
// where x's dtype is a constant too) 198.1-199.4 -> 172.5 us, threshold 0 149.1-151.0 -> 143.6-143.9.
#define cfg ((cfg & ~0xFFu) | (uint)EPI_CFG_LOW)
#endif
#if OUTLIERS && defined(OL_XDT)
#define oxdt OL_XDT // x's dtype, likewise
#endif
    __local uchar smem[SMEM_BYTES] __attribute__((aligned(16)));
#if OUTLIERS
    __local float4 ol_stage[(BM + BN) * OL_JC / 4]; // weights wl[OL_JC][BN], x values xl[BM][OL_JC]
#endif
#if CLBNB_PTX_EMULATE
    __local uint scratch[WARPS_M * WARPS_N * 32 * 6];
#else
    __local uint *scratch = 0;
#endif
    __global const uchar *A = a_base + a_off;
    __global const uchar *B = b_base + b_off;
    const uint tid = get_local_id(0), lane = tid % 32, warp = tid / 32;
    const uint wm = warp / WARPS_N, wn = warp % WARPS_N;
    const uint m0 = get_group_id(1) * BM, n0 = get_group_id(0) * BN;
    // split-K (see int8_gemm.cl): this work-group covers K bytes [k_begin, k_end)
    const uint k_begin = get_group_id(2) * k_chunk, k_end = min(K, k_begin + k_chunk);
    const uint ktiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;

    acc_t acc[MT][NT][4];
PRAGMA_UNROLL
    for (int i = 0; i < MT; i++)
PRAGMA_UNROLL
        for (int j = 0; j < NT; j++)
PRAGMA_UNROLL
            for (int e = 0; e < 4; e++) acc[i][j][e] = 0;

    struct chunk_plan pa[A_CPT];
    for (uint q = 0; q < A_CPT; q++) pa[q] = plan_chunk(tid + q * THREADS, BM, m0, M, A, lda);
#if G4_B
    // the table and nested code in local memory, the pieces' plans, and their registers in flight
    __local float g4_tab[16], g4_c2[256];
    g4m_stage_tables(g4_tab, g4_c2, qtype, nested, code2, c2off, tid, THREADS); // before the prologue's decodes
    const float g4_off = nested ? offs[ooff] : 0.0f;
    struct g4_piece gp[G4_PPT];
    for (uint q = 0; q < G4_PPT; q++) gp[q] = g4_plan_piece(tid + q * THREADS, n0, N, K / 2);
    // the pieces in flight (loaded before a step's mma, decoded after them)
    uint2 g4_bits[G4_PPT];
    uint g4_q[G4_PPT], g4_in[G4_PPT]; // g4_in: the piece lies inside K
    float g4_a2[G4_PPT];
    for (uint q = 0; q < G4_PPT; q++) g4_q[q] = 0u, g4_a2[q] = 0.0f;
    // loads the packed bytes and raw scales of K tile t's pieces (none past the range)
#define G4_FETCH(t)                                                                                                    \
    PRAGMA_UNROLL for (uint q = 0; q < G4_PPT; q++) {                                                                  \
        const uint kw_ = (k_begin + (t)*BK) / 2;                                                                       \
        const ulong f_ = gp[q].flat + kw_;                                                                             \
        g4_in[q] = (t) < ktiles && gp[q].ok && kw_ + gp[q].kofs < K / 2;                                               \
        g4_bits[q] = (uint2)(0u);                                                                                      \
        if (g4_in[q]) {                                                                                                \
            g4_bits[q] = *(__global const uint2 *)(packed + poff + (f_ >> 1));                                         \
            /* the raw scale only where the piece starts a block its previous one (BK / 2 back) is not in */          \
            if ((t) == 0 || ((f_ ^ (f_ - BK / 2)) >> log2bs) != 0) {                                                   \
                G4_RAW_SCALE(f_ >> log2bs, g4_q[q], g4_a2[q])                                                          \
            }                                                                                                          \
        }                                                                                                              \
    }
    // decodes them into stage buffer t % STAGES
#define G4_STORE(t)                                                                                                    \
    PRAGMA_UNROLL for (uint q = 0; q < G4_PPT; q++) {                                                                  \
        __local uchar *bt_ = smem + ((t) % STAGES) * (A_STAGE_BYTES + B_STAGE_BYTES) + A_STAGE_BYTES;                 \
        const float s_ = g4_scale_of(g4_c2, nested, g4_q[q], g4_a2[q], g4_off);                                        \
        if (gp[q].ok) {                                                                                                \
            *(__local uint4 *)(bt_ + gp[q].dst0) = g4_in[q] ? g4_chunk(g4_tab, g4_bits[q].x, s_) : (uint4)(0u);        \
            *(__local uint4 *)(bt_ + gp[q].dst1) = g4_in[q] ? g4_chunk(g4_tab, g4_bits[q].y, s_) : (uint4)(0u);        \
        }                                                                                                              \
    }
#define LOAD_B(t)
#else
    struct chunk_plan pb[B_CPT];
    for (uint q = 0; q < B_CPT; q++) pb[q] = plan_chunk(tid + q * THREADS, BN, n0, N, B, ldb);
#define LOAD_B(t)                                                                                                      \
    for (uint q = 0; q < B_CPT; q++) copy_chunk(st_ + A_STAGE_BYTES, pb[q], k0_, K, full_);
#define G4_FETCH(t)
#define G4_STORE(t)
#endif
    // copies K tile t of this work-group's range into stage buffer t % STAGES (A only with G4_B)
#define LOAD_TILE(t)                                                                                                   \
    do {                                                                                                               \
        __local uchar *st_ = smem + ((t) % STAGES) * (A_STAGE_BYTES + B_STAGE_BYTES);                                 \
        uint k0_ = k_begin + (t)*BK;                                                                                   \
        int full_ = k0_ + BK <= K;                                                                                     \
        for (uint q = 0; q < A_CPT; q++) copy_chunk(st_, pa[q], k0_, K, full_);                                        \
        LOAD_B(t)                                                                                                      \
    } while (0)

    // prologue: fill STAGES-1 stages
    for (uint s = 0; s < STAGES - 1; s++) {
        if (s < ktiles) {
            LOAD_TILE(s);
            G4_FETCH(s)
            G4_STORE(s)
        }
        async_commit();
    }
    G4_FETCH(STAGES - 1) // (empty without G4_B)

    for (uint kt = 0; kt < ktiles; kt++) {
        ASYNC_WAIT(STAGES - 2);
        barrier(CLK_LOCAL_MEM_FENCE);
        // issue the copy of tile kt + STAGES - 1 (its buffer was last read in iteration kt - 1)
        uint next = kt + STAGES - 1;
        if (next < ktiles) LOAD_TILE(next);
        async_commit();

        __local uchar *As = smem + (kt % STAGES) * (A_STAGE_BYTES + B_STAGE_BYTES);
        __local uchar *Bs = As + A_STAGE_BYTES;
PRAGMA_UNROLL
        for (uint ks = 0; ks < BK; ks += 32) {
            uint a[MT][4], b[NT][2];
PRAGMA_UNROLL
            for (int i = 0; i < MT; i++) {
                // lanes 0-15: rows 0-15 at byte ks; lanes 16-31: rows 0-15 at byte ks + 16
                __local const uchar *p = As + swz(wm * MT * 16 + i * 16 + lane % 16, ks / 16 + lane / 16);
                LDMATRIX_X4(a[i][0], a[i][1], a[i][2], a[i][3], p, scratch);
            }
PRAGMA_UNROLL
            for (int j = 0; j < NT; j += 2) {
                // lanes 0-7 / 8-15: n-tile j at bytes ks / ks+16; lanes 16-23 / 24-31: n-tile j+1
                __local const uchar *p = Bs + swz(wn * NT * 8 + j * 8 + (lane / 16) * 8 + lane % 8, ks / 16 + (lane / 8) % 2);
                LDMATRIX_X4(b[j][0], b[j][1], b[j + 1][0], b[j + 1][1], p, scratch);
            }
PRAGMA_UNROLL
            for (int i = 0; i < MT; i++)
PRAGMA_UNROLL
                for (int j = 0; j < NT; j++) MMA_OP(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b[j][0], b[j][1], scratch);
        }
#if G4_B
        // buffer next % STAGES was last read in iteration kt - 1, before this iteration's barrier;
        // the next tile's loads go out right after, so they are in flight across the barrier and
        // the next step's mma
        if (next < ktiles) G4_STORE(next)
        G4_FETCH(next + 1)
#endif
    }
    ASYNC_WAIT(0);

    // epilogue: c0, c1 at (row g, cols 2t, 2t+1); c2, c3 at (row g + 8, same cols)
    const uint g = lane / 4, t = lane % 4;
    const uint mw = m0 + wm * MT * 16 + g, nw = n0 + wn * NT * 8 + 2 * t; // this lane's first row, column
    __global uchar *out = out_base + out_off;
    __global const uchar *sa = sa_base + sa_off, *sb = sb_base + sb_off, *bias = bias_base + bias_off;
    if (partial) { // split-K slice: exact partial sums (int8) or this slice's f32 tile (f16)
PRAGMA_UNROLL
        for (int i = 0; i < MT; i++)
PRAGMA_UNROLL
            for (int j = 0; j < NT; j++)
                for (int h = 0; h < 2; h++)
                    for (uint e = 0; e < 2; e++) {
                        uint m = mw + 16 * i + 8 * h, n = nw + 8 * j + e;
                        if (m >= M || n >= N) continue;
#if MMA_F16
                        ((__global float *)partial)[((ulong)get_group_id(2) * M + m) * N + n] = acc[i][j][2 * h + e];
#else
                        atomic_add(partial + (ulong)m * N + n, acc[i][j][2 * h + e]);
#endif
                    }
        return;
    }
    // Every row factor, column factor and bias this lane needs is loaded before the first store, so
    // the loads overlap: loaded per output, their latencies added up to 16.5 us of each work-group's
    // 76 us on the H100 (the group's tensor cores idle meanwhile). Outputs that are not staged below
    // (4-byte ones, and 2-byte ones where the tile does not fit) go out as the lanes' pairs of
    // adjacent outputs.
    float rowf[MT][2];
    float2 colf[NT][2];
PRAGMA_UNROLL
    for (int i = 0; i < MT; i++)
        for (int h = 0; h < 2; h++) rowf[i][h] = epilogue_row(sa, cfg, min(mw + 16 * i + 8 * h, M - 1));
PRAGMA_UNROLL
    for (int j = 0; j < NT; j++)
        for (uint e = 0; e < 2; e++) colf[j][e] = epilogue_col(sb, bias, cfg, min(nw + 8 * j + e, N - 1));
    const uint kind = EPI_KIND(cfg), odt = EPI_OUT(cfg);
    const uint esize = kind == 0 || odt == CLBNB_DTYPE_F32 ? 4u : 2u;
    // 2-byte outputs go through local memory: the work-group's tile is staged row-major, then
    // written as 16-byte pieces of rows, whole 32-byte sectors (a lane's own pairs fill 16 bytes of
    // each sector they touch). The barriers are outside the branches (PoCL 3.1 mis-ran this code
    // with them inside a branch and an early return: a bounds test passed with n >= N).
#if OUTLIERS
    const int ocnt = ocount[0];
#endif
#if STAGE_FITS
    const int staged = OUTLIERS || esize == 2; // OUTLIERS: the host passes 2-byte outputs only
    barrier(CLK_LOCAL_MEM_FENCE); // every warp is done reading the last K stage
    if (staged) {
PRAGMA_UNROLL
        for (int i = 0; i < MT; i++)
PRAGMA_UNROLL
            for (int j = 0; j < NT; j++)
                for (int h = 0; h < 2; h++) {
                    const uint r = wm * MT * 16 + 16 * i + 8 * h + g, c = wn * NT * 8 + 8 * j + 2 * t;
                    const float2 v = mma_out_pair(cfg, acc[i][j][2 * h], acc[i][j][2 * h + 1], rowf[i][h], colf[j][0],
                                                  colf[j][1]);
                    epilogue_stage_pair16(smem + r * STAGE_ROW + c * 2, (int)odt, v.x, v.y);
                }
    }
#if OUTLIERS
    // this work-item's pieces: rows r0 + it * OL_RSTEP, columns c8 .. c8 + 7 of the tile
    const uint c8 = tid % (BN / 8) * 8, r0 = tid / (BN / 8);
    float osum[PIECE_ITERS][8];
PRAGMA_UNROLL
    for (int it = 0; it < PIECE_ITERS; it++)
PRAGMA_UNROLL
        for (int e = 0; e < 8; e++) osum[it][e] = 0.0f;
    __local float *wl = (__local float *)ol_stage, *xl = wl + OL_JC * BN;
    // the trip count is the same for the whole work-group: every work-item meets every barrier
    // (and the tile is staged: the kernel's #error requires STAGE_FITS with OUTLIERS)
    for (int j0 = 0; j0 < ocnt; j0 += OL_JC) {
        // this work-item's share of the pass, all loads issued before any is used (in a loop that
        // stored each value before loading the next, their latencies added up). The column list
        // is read whether or not the count reaches it (ocols holds K entries), so those loads do
        // not wait for the count's: one dependent load less (H100, threshold-6 forward 199.2-201.1
        // against 200.7-201.6 us, within the noise)
        int wc[OL_W_PER], xc[OL_X_PER];
        float wv[OL_W_PER], ws[OL_W_PER], xv[OL_X_PER];
PRAGMA_UNROLL
        for (int i = 0; i < OL_W_PER; i++) {
            const uint e = tid + i * THREADS, j = j0 + e / BN;
            const int col = e < OL_JC * BN && j < K ? ocols[j] : -1;
            wc[i] = (int)j < ocnt ? col : -1;
        }
PRAGMA_UNROLL
        for (int i = 0; i < OL_X_PER; i++) {
            const uint e = tid + i * THREADS, j = j0 + e % OL_JC;
            const int col = e < BM * OL_JC && j < K ? ocols[j] : -1;
            xc[i] = (int)j < ocnt ? col : -1;
        }
PRAGMA_UNROLL
        for (int i = 0; i < OL_W_PER; i++) {
            const uint n = n0 + (tid + i * THREADS) % BN;
            const int ok = wc[i] >= 0 && n < N;
            wv[i] = ok ? (float)((__global const char *)B)[(ulong)n * ldb + wc[i]] : 0.0f;
            ws[i] = ok ? clbnb_load_float(sb, n, (int)EPI_SB(cfg)) : 0.0f;
        }
PRAGMA_UNROLL
        for (int i = 0; i < OL_X_PER; i++) {
            const uint m = m0 + (tid + i * THREADS) / OL_JC;
            xv[i] = xc[i] >= 0 && m < M ? clbnb_load_float(ox, ox_off + (ulong)m * ldox + xc[i], oxdt) : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE); // the staged tile is written; the previous pass is done
PRAGMA_UNROLL
        for (int i = 0; i < OL_W_PER; i++) {
            const uint e = tid + i * THREADS;
            if (e < OL_JC * BN) wl[e] = wc[i] >= 0 ? clbnb_lin8_outlier_weight(wv[i], ws[i], oxdt) : 0.0f;
        }
PRAGMA_UNROLL
        for (int i = 0; i < OL_X_PER; i++) {
            const uint e = tid + i * THREADS;
            if (e < BM * OL_JC) xl[e] = xv[i];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int jn = min(OL_JC, ocnt - j0);
        for (int j = 0; j < jn; j++) {
            const float4 w0 = ol_stage[(j * BN + c8) / 4], w1 = ol_stage[(j * BN + c8) / 4 + 1];
PRAGMA_UNROLL
            for (int it = 0; it < PIECE_ITERS; it++) {
                const float x = xl[min(r0 + it * OL_RSTEP, (uint)BM - 1) * OL_JC + j];
                osum[it][0] += x * w0.x;
                osum[it][1] += x * w0.y;
                osum[it][2] += x * w0.z;
                osum[it][3] += x * w0.w;
                osum[it][4] += x * w1.x;
                osum[it][5] += x * w1.y;
                osum[it][6] += x * w1.z;
                osum[it][7] += x * w1.w;
            }
        }
    }
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    if (staged) {
        const int vec = out_off % 16 == 0 && ldc % 8 == 0;
PRAGMA_UNROLL
        for (int it = 0; it < PIECE_ITERS; it++) {
            const uint q = tid + it * THREADS, r = q / (BN / 8), c = q % (BN / 8) * 8;
            const uint m = m0 + r, n = n0 + c;
            if (q >= PIECES || m >= M || n >= N) continue;
            __local uchar *piece = smem + r * STAGE_ROW + c * 2;
#if OUTLIERS
            if (ocnt > 0) { // RN_out(staged + sum), back into the piece
                const float8 f = clbnb_f8_from_16bit(vload4(0, (__local const uint *)piece), (int)odt);
                epilogue_stage_pair16(piece, (int)odt, f.s0 + osum[it][0], f.s1 + osum[it][1]);
                epilogue_stage_pair16(piece + 4, (int)odt, f.s2 + osum[it][2], f.s3 + osum[it][3]);
                epilogue_stage_pair16(piece + 8, (int)odt, f.s4 + osum[it][4], f.s5 + osum[it][5]);
                epilogue_stage_pair16(piece + 12, (int)odt, f.s6 + osum[it][6], f.s7 + osum[it][7]);
            }
#endif
            const uint4 v = vload4(0, (__local const uint *)piece);
            const ulong idx = (ulong)m * ldc + n;
            if (vec && n + 8 <= N) {
                // 16-byte aligned here (vec, n a multiple of 8): a uint4 store is one 16-byte store,
                // where vstore4 (4-byte alignment) compiled to four 4-byte ones; H100, threshold-6
                // forward 200.8-201.9 -> 199.2-199.7 us, 4096^3 263.7-263.8 -> 261.5-262.4 us
                *(__global uint4 *)(out + idx * 2) = v;
            } else {
                for (uint e = 0; e < min(8u, N - n); e++) {
                    const uint w = e < 2 ? v.x : e < 4 ? v.y : e < 6 ? v.z : v.w;
                    ((__global ushort *)out)[idx + e] = (ushort)(w >> (16 * (e & 1)));
                }
            }
        }
        return;
    }
#endif
    const int pairs = out_off % (2 * esize) == 0 && ldc % 2 == 0;
PRAGMA_UNROLL
    for (int i = 0; i < MT; i++)
PRAGMA_UNROLL
        for (int j = 0; j < NT; j++)
            for (int h = 0; h < 2; h++) {
                const uint m = mw + 16 * i + 8 * h, n = nw + 8 * j;
                if (m >= M || n >= N) continue;
                const ulong idx = (ulong)m * ldc + n;
                const acc_t a0 = acc[i][j][2 * h], a1 = acc[i][j][2 * h + 1];
                const int both = n + 1 < N;
#if !MMA_F16
                if (kind == 0) { // int32 out
                    if (pairs && both)
                        vstore2((int2)(a0, a1), idx / 2, (__global int *)out);
                    else {
                        ((__global int *)out)[idx] = a0;
                        if (both) ((__global int *)out)[idx + 1] = a1;
                    }
                    continue;
                }
#endif
                const float2 v = mma_out_pair(cfg, a0, a1, rowf[i][h], colf[j][0], colf[j][1]);
                if (pairs && both)
                    epilogue_store_pair(out, idx, (int)odt, v.x, v.y);
                else {
                    clbnb_store_float(out, idx, (int)odt, v.x);
                    if (both) clbnb_store_float(out, idx + 1, (int)odt, v.y);
                }
            }
#undef cfg
#undef oxdt
}

#if MMA_F16
__kernel void f16_gemm_splitk_reduce(__global const float *partial, uint splits, uint M, uint N, EPILOGUE_PARAMS) {
    uint n = get_global_id(0), m = get_global_id(1);
    if (m >= M || n >= N) return;
    float acc = 0.0f;
    for (uint z = 0; z < splits; z++) acc += partial[((ulong)z * M + m) * N + n];
    store_f32_acc(out_base + out_off, ldc, bias_base + bias_off, cfg, m, n, acc);
}
#endif

#if !CLBNB_PTX_EMULATE && !MMA_F16
// ------------------------------------------------------------------------------------------------
// Peak reference for the benchmarks: back-to-back mma.sync on registers, 8 independent
// accumulator chains per warp, no memory traffic. Each mma is 16*8*32*2 = 8192 int8 ops.
// ------------------------------------------------------------------------------------------------
__kernel void int8_mma_peak(__global int *out, uint iters) {
    uint seed = get_global_id(0);
    uint a0 = seed * 0x9E3779B9u, a1 = a0 ^ 0x5bd1e995u, a2 = a0 + 0x27d4eb2fu, a3 = a0 * 3u, b0 = ~a0, b1 = a1 + 7u;
    int c[8][4];
    for (int j = 0; j < 8; j++)
        for (int e = 0; e < 4; e++) c[j][e] = 0;
    for (uint i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) MMA_S8(c[j], a0, a1, a2, a3, b0, b1, 0);
    int sum = 0;
    for (int j = 0; j < 8; j++) sum += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    out[get_global_id(0)] = sum;
}
#endif

#endif // CLBNB_NV_CC >= 80 || CLBNB_PTX_EMULATE
