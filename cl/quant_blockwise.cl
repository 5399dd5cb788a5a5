// =================================================================================================
// quant_blockwise.cl: block-wise quantization (spec sections 1-3): 8-bit with a 256-entry code,
// NF4 / FP4 with packed nibbles, nested (double-quantized) absmax, and the absmax mean.
//
// Blocks are runs of 2^log2bs consecutive elements of the flat input; absmax = max |x| (fmax,
// NaN ignored); inv = 1/absmax once per block (IEEE, clbnb_div); x_norm = x * inv, no clamping.
//
// Two shapes of every kernel, bit-identical:
//   *_generic: GPU shape. A work-group of QWG work-items covers a tile of max(blocksize, QWG*QEPT)
//              elements; each work-item loads QEPT consecutive elements (16/32-byte loads), the block
//              maximum is a segmented tree reduction in local memory.
//   *_cpu:     barrier-free. One work-item per quantization block (quantize) or per chunk of
//              elements (dequantize), reading its elements sequentially.
//
// Options: IN_DTYPE (quantize input), OUT_DTYPE (dequantize output), QTYPE (4-bit quantize: 0 NF4,
// 1 FP4). Host-side byte offsets arrive as kernel arguments; `*_al` flags say whether the offset
// permits the wide aligned accesses (the element index part is always aligned).
// =================================================================================================

#ifndef IN_DTYPE
#define IN_DTYPE CLBNB_DTYPE_F32 // dtype of the quantized input (f32/f16/bf16)
#endif
#ifndef OUT_DTYPE
#define OUT_DTYPE CLBNB_DTYPE_F32 // dtype of the dequantized output (f32/f16/bf16)
#endif
#ifndef QTYPE
#define QTYPE 0 // 4-bit quantize: 0 = NF4, 1 = FP4
#endif
#ifndef QWG
#define QWG 256 // work-group size of the generic kernels (the host uses the same value)
#endif
#ifndef QEPT
#define QEPT 8 // elements per work-item and pass in the generic quantize kernels (must be 8)
#endif
#ifndef QR
#define QR 2 // generic 8-bit quantize, blocks <= QWG*QEPT: passes per work-item, all loads issued first
#endif
#ifndef QR4
#define QR4 4 // the same for the generic 4-bit quantize
#endif
#ifndef DQ4_U
#define DQ4_U 2 // generic 4-bit dequantize: 8-element units per work-item, all loads issued first
#endif
#ifndef DQ8_U
#define DQ8_U 1 // generic 8-bit dequantize: the same
#endif
#ifndef CPU_CHUNK
#define CPU_CHUNK 256 // elements per work-item in the cpu dequantize kernels (multiple of 16)
#endif
#define MEAN_LANES 256   // absmax mean: lanes per chunk (fixed: defines the summation order)
#define MEAN_CHUNK 4096  // absmax mean: elements per first-stage chunk (fixed, see mean_partial_*)

// ---- 4-bit value -> code --------------------------------------------------------------------------
// NF4 thresholds (spec 1.1, float32 bit patterns): code = #{ j : x > t_j } (NaN fails every
// comparison -> 0).
#define NF4_T0 as_float(0xbf591cd8u)
#define NF4_T1 as_float(0xbf1c5270u)
#define NF4_T2 as_float(0xbeeb8480u)
#define NF4_T3 as_float(0xbeadea76u)
#define NF4_T4 as_float(0xbe703cecu)
#define NF4_T5 as_float(0xbe0d38bcu)
#define NF4_T6 as_float(0xbd3a7871u)
#define NF4_T7 as_float(0x3d22faffu)
#define NF4_T8 as_float(0x3df64862u)
#define NF4_T9 as_float(0x3e5067e0u)
#define NF4_T10 as_float(0x3e9582d4u)
#define NF4_T11 as_float(0x3ec753f9u)
#define NF4_T12 as_float(0x3f006d04u)
#define NF4_T13 as_float(0x3f248dafu)
#define NF4_T14 as_float(0x3f5c89dau)

// FP4 (spec 1.2): sign = x < 0; magnitude rank r = #{ literal thresholds < |x| }, mapped to the low
// bits r0..r7 -> 0,1,6,7,4,5,2,3 by FP4_LOW_BITS (uint or uint8). NaN: sign 0, rank 0 -> code 0.
#define FP4_LOW_BITS(r) (((r) & 1u) | (((4u - ((r) >> 1)) & 3u) << 1))
#define FP4_T0 as_float(0x3b2aaab9u)
#define FP4_T1 as_float(0x3db00000u)
#define FP4_T2 as_float(0x3e555555u)
#define FP4_T3 as_float(0x3e955555u)
#define FP4_T4 as_float(0x3ed55556u)
#define FP4_T5 as_float(0x3f155550u)
#define FP4_T6 as_float(0x3f555555u)

// Generic (GPU) shape: a cell table in local memory, about half the instructions per element of a
// 4-level comparison tree (the 4-bit quantizers were bound by them on the H100). A monotone cell
// function k(x) cuts the line into Q4C_N intervals. Monotone means: k(t) < k(x) implies t < x, and
// k(t) > k(x) implies t > x; so code(x) = #{ j : k(t_j) < k(x) } + (x > t_{k(x)}), with t_k the one
// threshold in cell k (+inf when none), exactly as the tree counts, provided no cell holds two
// thresholds: cells are 1/16 wide, NF4 thresholds at least 0.080 apart, FP4 ones at least 0.083
// (tests/test_quant_4bit.c feeds every threshold, its float neighbours, every cell edge and the
// special values through the kernels). NF4: k = fl32(16x + 16) truncated, clamped to [0, 32] (NaN
// -> cell 0, which has no threshold -> code 0). FP4: the cell of |x| (16|x| is exact), clamped to
// [0, 16]; the entry holds the low bits of the rank below and above its threshold, and the sign is
// added as x < 0 (NaN -> cell 0, below its threshold -> code 0).
#if QTYPE == 1
#define Q4C_N 17
inline uint q4_cell(float x) { return min(convert_uint_sat_rtz(fabs(x) * 16.0f), 16u); }
#else
#define Q4C_N 33
inline uint q4_cell(float x) { return min(convert_uint_sat_rtz(fma(x, 16.0f, 16.0f)), 32u); }
#endif

// Entry k of the cell table (.x: NF4 count below / FP4 low bits below | above << 4; .y: the
// threshold's bits). Work-items 0..Q4C_N-1 each fill one; published by the caller's barrier.
inline void fill_cells_4bit(__local uint2 *cells, uint lid) {
    if (lid >= Q4C_N) return;
#if QTYPE == 1
    const float t[7] = {FP4_T0, FP4_T1, FP4_T2, FP4_T3, FP4_T4, FP4_T5, FP4_T6};
    const uint nt = 7;
#else
    const float t[15] = {NF4_T0, NF4_T1, NF4_T2, NF4_T3, NF4_T4, NF4_T5, NF4_T6, NF4_T7,
                         NF4_T8, NF4_T9, NF4_T10, NF4_T11, NF4_T12, NF4_T13, NF4_T14};
    const uint nt = 15;
#endif
    uint below = 0;
    float th = INFINITY;
    for (uint j = 0; j < nt; j++) {
        const uint k = q4_cell(t[j]);
        below += k < lid;
        if (k == lid) th = t[j];
    }
#if QTYPE == 1
    cells[lid] = (uint2)(FP4_LOW_BITS(below) | (FP4_LOW_BITS(below + 1u) << 4), as_uint(th));
#else
    cells[lid] = (uint2)(below, as_uint(th));
#endif
}

inline uint quant_4bit(float x, __local const uint2 *cells) {
    const uint2 c = cells[q4_cell(x)];
#if QTYPE == 1
    const uint low = fabs(x) > as_float(c.y) ? c.x >> 4 : c.x & 15u;
    return low | ((x < 0.0f) ? 8u : 0u);
#else
    return c.x + (x > as_float(c.y));
#endif
}

// ---- 8-bit value -> code (spec 2.3) -----------------------------------------------------------------
// k = number of float32 midpoints m_j = fl32((c[j] + c[j+1]) * 0.5f) below x; if x == m_k the even
// one of {k, k+1}. Generic shape: the 255 midpoints in Eytzinger (breadth-first) order in local
// memory, eyt[i] for tree node i = 1..255 (children 2i, 2i+1), so that the nodes of one search level
// are contiguous (no bank conflicts on the first six levels, where a power-of-two-strided binary
// search collides on one or two banks). 8 levels: i = 2i + (eyt[i] < x); k = i - 256. The last
// node with !(m < x) is m_k (the smallest midpoint >= x), so the tie needs no extra load.
inline uint quant_8bit_eyt(float x, __local const float *eyt) {
    uint i = 1;
    float u = as_float(0x7fc00000u); // m_k; stays NaN when k = 255
    for (uint l = 0; l < 8; l++) {
        float m = eyt[i];
        uint lt = m < x;
        u = lt ? u : m;
        i = 2 * i + lt;
    }
    uint k = i - 256;
    return k + ((x == u) ? (k & 1u) : 0u);
}

// Midpoint index stored at Eytzinger node i (1..255): depth d, position p in its level ->
// sorted index (2p + 1) * 2^(7 - d) - 1.
inline uint eyt_index(uint i) {
    uint d = 31 - clz(i);
    uint p = i - (1u << d);
    return ((2 * p + 1) << (7 - d)) - 1;
}

// ---- wide loads and stores --------------------------------------------------------------------------
// 8 consecutive input elements starting at element e (a multiple of 8); `al` = the byte offset of
// the buffer is a multiple of 16.
inline float8 load8_in(__global const uchar *x, ulong e, int al) {
#if IN_DTYPE == CLBNB_DTYPE_F32
    if (al) {
        __global const float4 *p = (__global const float4 *)x + (e >> 2);
        return (float8)(p[0], p[1]);
    }
    return vload8(0, (__global const float *)x + e);
#elif IN_DTYPE == CLBNB_DTYPE_F16
    // (PoCL: an f16 -> f32 conversion by integer operations on 8 lanes instead of vload_half8 made
    // the cpu-shape 4-bit quantize about 2x slower: 4M elements, both measured beside a busy
    // build, ~7000 against ~3600-4000 us)
    if (al) return clbnb_f8_from_16bit(((__global const uint4 *)x)[e >> 3], IN_DTYPE);
    return vload_half8(0, (__global const half *)x + e);
#else
    uint4 r;
    if (al) {
        r = ((__global const uint4 *)x)[e >> 3];
    } else {
        ushort8 h = vload8(0, (__global const ushort *)x + e);
        r = (uint4)((uint)h.s0 | ((uint)h.s1 << 16), (uint)h.s2 | ((uint)h.s3 << 16), (uint)h.s4 | ((uint)h.s5 << 16),
                    (uint)h.s6 | ((uint)h.s7 << 16));
    }
    return clbnb_f8_from_16bit(r, IN_DTYPE);
#endif
}

// 8 input elements from e, zero beyond n (the partial last chunk).
inline float8 load8_in_tail(__global const uchar *x, ulong e, ulong n, int al) {
    if (e + 8 <= n) return load8_in(x, e, al);
    float v[8];
    for (int j = 0; j < 8; j++) v[j] = e + j < n ? clbnb_load_float(x, e + j, IN_DTYPE) : 0.0f;
    return vload8(0, v);
}

// The same 8 elements in their storage form (f16 / bf16: 16 bytes, f32: float8), converted by
// in8_f: a quantize pass holds its loads across the block reduction in half the registers (H100,
// NF4 32M f16: 42.5 -> 38.7 us at 2 passes, 37.1 at 4; see the tiling note in quant_blockwise.c).
#if IN_DTYPE == CLBNB_DTYPE_F32
typedef float8 in_raw8;
inline in_raw8 load8_raw_tail(__global const uchar *x, ulong e, ulong n, int al) { return load8_in_tail(x, e, n, al); }
inline float8 in8_f(in_raw8 r) { return r; }
#else
typedef uint4 in_raw8;
inline in_raw8 load8_raw_tail(__global const uchar *x, ulong e, ulong n, int al) {
    __global const ushort *p = (__global const ushort *)x + e;
    if (e + 8 <= n) return al ? ((__global const uint4 *)x)[e >> 3] : as_uint4(vload8(0, p));
    ushort h[8];
    for (int j = 0; j < 8; j++) h[j] = e + j < n ? p[j] : (ushort)0;
    return as_uint4(vload8(0, h));
}
inline float8 in8_f(in_raw8 r) { return clbnb_f8_from_16bit(r, IN_DTYPE); }
#endif
#define Q_AS_IS(v) (v)

inline float max8(float8 v) {
    float8 a = fabs(v);
    float4 m4 = fmax(a.lo, a.hi);
    float2 m2 = fmax(m4.lo, m4.hi);
    return fmax(m2.x, m2.y);
}

// 8 output elements at element e (a multiple of 8); `al` = the output byte offset is a multiple of 16.
inline void store8_out(__global uchar *out, ulong e, int al, float8 v) {
#if OUT_DTYPE == CLBNB_DTYPE_F32
    if (al) {
        __global float4 *p = (__global float4 *)out + (e >> 2);
        p[0] = v.lo;
        p[1] = v.hi;
    } else {
        vstore8(v, 0, (__global float *)out + e);
    }
#elif OUT_DTYPE == CLBNB_DTYPE_F16
    if (al) {
        uint4 r;
        vstore_half8_rte(v, 0, (__private half *)&r);
        ((__global uint4 *)out)[e >> 3] = r;
    } else {
        vstore_half8_rte(v, 0, (__global half *)out + e);
    }
#else
    uint4 r = (uint4)((uint)clbnb_f32_to_bf16(v.s0) | ((uint)clbnb_f32_to_bf16(v.s1) << 16),
                      (uint)clbnb_f32_to_bf16(v.s2) | ((uint)clbnb_f32_to_bf16(v.s3) << 16),
                      (uint)clbnb_f32_to_bf16(v.s4) | ((uint)clbnb_f32_to_bf16(v.s5) << 16),
                      (uint)clbnb_f32_to_bf16(v.s6) | ((uint)clbnb_f32_to_bf16(v.s7) << 16));
    if (al) {
        ((__global uint4 *)out)[e >> 3] = r;
    } else {
        __global ushort *p = (__global ushort *)out + e;
        vstore8((ushort8)((ushort)r.x, (ushort)(r.x >> 16), (ushort)r.y, (ushort)(r.y >> 16), (ushort)r.z,
                          (ushort)(r.z >> 16), (ushort)r.w, (ushort)(r.w >> 16)),
                0, p);
    }
#endif
}

// 8 outputs from e, only those below n.
inline void store8_out_tail(__global uchar *out, ulong e, ulong n, int al, float8 v) {
    if (e + 8 <= n) {
        store8_out(out, e, al, v);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (int j = 0; j < 8; j++)
        if (e + j < n) clbnb_store_float(out, e + j, OUT_DTYPE, t[j]);
}

// ---- absmax of a block for the dequantizers: plain f32, or nested (spec 3) ------------------------
// nested: fl32(fl32(code2[q[b]] * absmax2[b >> log2bs2]) + offset), two roundings (no contraction).
inline float block_absmax(__global const uchar *am, ulong am_off, int nested, __global const float *am2,
                          ulong am2_off, uint log2bs2, __global const float *code2, ulong code2_off, float off,
                          ulong b) {
    if (!nested) return ((__global const float *)am)[am_off + b];
    float v = code2[code2_off + am[am_off + b]] * am2[am2_off + (b >> log2bs2)];
    return v + off;
}

// Segmented max over `seg` consecutive work-items (seg a power of two <= QWG) of `cnt` independent
// values per work-item: m[r] becomes the max of its segment. red: __local float[cnt * QWG], not
// reused afterwards. A max does not depend on the order of the reduction, so both forms below give
// the same bits.
#if CLBNB_NV_CC >= 70
// NVIDIA: butterfly shuffles within the warp (a 1-D work-group's warps are runs of 32 consecutive
// local ids), local memory only across the warps of a segment wider than 32: no barrier for
// blocks of up to 32 * QEPT elements. Every work-item of the group must call it.
inline void segment_max_n(__local float *red, uint lid, uint seg, float *m, const uint cnt) {
    for (uint s = min(seg, 32u) >> 1; s > 0; s >>= 1)
        for (uint r = 0; r < cnt; r++) m[r] = fmax(m[r], clbnb_nv_shfl_xor(m[r], s));
    if (seg <= 32) return;
    if ((lid & 31u) == 0)
        for (uint r = 0; r < cnt; r++) red[r * QWG + (lid >> 5)] = m[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint w0 = (lid & ~(seg - 1)) >> 5, nw = seg >> 5;
    for (uint r = 0; r < cnt; r++) {
        float v = red[r * QWG + w0];
        for (uint i = 1; i < nw; i++) v = fmax(v, red[r * QWG + w0 + i]);
        m[r] = v;
    }
}
#else
// Portable: a tree in local memory, one barrier per level.
inline void segment_max_n(__local float *red, uint lid, uint seg, float *m, const uint cnt) {
    for (uint r = 0; r < cnt; r++) red[r * QWG + lid] = m[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = seg >> 1; s > 0; s >>= 1) {
        if ((lid & (seg - 1)) < s)
            for (uint r = 0; r < cnt; r++) red[r * QWG + lid] = fmax(red[r * QWG + lid], red[r * QWG + lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (uint r = 0; r < cnt; r++) m[r] = red[r * QWG + (lid & ~(seg - 1))];
}
#endif

// =================================================================================================
// 4-bit quantize: x (n elements) -> packed[n/2 rounded up] (element 2k in the high nibble), absmax.
// =================================================================================================
inline uint pack8_4bit(float8 v, float inv, __local const uint2 *cells) {
    uint q0 = quant_4bit(v.s0 * inv, cells), q1 = quant_4bit(v.s1 * inv, cells), q2 = quant_4bit(v.s2 * inv, cells),
         q3 = quant_4bit(v.s3 * inv, cells), q4 = quant_4bit(v.s4 * inv, cells), q5 = quant_4bit(v.s5 * inv, cells),
         q6 = quant_4bit(v.s6 * inv, cells), q7 = quant_4bit(v.s7 * inv, cells);
    return ((q0 << 4) | q1) | (((q2 << 4) | q3) << 8) | (((q4 << 4) | q5) << 16) | (((q6 << 4) | q7) << 24);
}

// Stores the 4 packed bytes of elements e..e+7 (bytes past ceil(n/2) are not written).
inline void store_packed4(__global uchar *packed, ulong e, ulong n, int p_al, uint word) {
    ulong byte0 = e >> 1;
    if (e + 8 <= n && p_al) {
        ((__global uint *)packed)[byte0 >> 2] = word;
        return;
    }
    ulong nbytes = (n + 1) >> 1;
    for (uint k = 0; k < 4; k++)
        if (byte0 + k < nbytes) packed[byte0 + k] = (uchar)(word >> (8 * k));
}

// Body of the generic quantizers, blocks of at most QWG*QEPT elements: a tile of NP*QWG*QEPT
// elements in NP passes whose loads are all issued before the first use (bytes in flight), one
// segment reduction for all passes. TILE: the tile's index; LOAD: the 8 inputs at element e;
// BEFORE_STORE: a statement run after the reduction (the 4-bit kernel publishes its table there);
// STORE: writes pass r's codes at element e from v[r] and the block maximum m[r]. Larger blocks:
// *_generic_big.
#define Q_GENERIC_PASSES(TILE, NP, VT, LOAD, TO_F8, BEFORE_STORE, STORE)                                           \
    const ulong chunk = (ulong)QWG * QEPT;                                                                         \
    const ulong e0 = (ulong)(TILE) * (chunk * (NP)) + (ulong)lid * QEPT;                                           \
    VT v[NP];                                                                                                      \
    float m[NP];                                                                                                   \
    _Pragma("unroll") for (uint r = 0; r < (NP); r++) {                                                            \
        const ulong e = e0 + r * chunk;                                                                            \
        v[r] = LOAD;                                                                                               \
    }                                                                                                              \
    _Pragma("unroll") for (uint r = 0; r < (NP); r++) m[r] = max8(TO_F8(v[r]));                                    \
    const uint seg = (uint)(((ulong)1 << log2bs) / QEPT);                                                          \
    segment_max_n(red, lid, seg, m, (NP));                                                                         \
    BEFORE_STORE;                                                                                                  \
    const int head = (lid & (seg - 1)) == 0;                                                                       \
    _Pragma("unroll") for (uint r = 0; r < (NP); r++) {                                                            \
        const ulong e = e0 + r * chunk;                                                                            \
        if (e < n) {                                                                                               \
            if (head) absmax[e >> log2bs] = m[r];                                                                  \
            STORE;                                                                                                 \
        }                                                                                                          \
    }

// Generic shape: Q_GENERIC_PASSES.
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void
quantize_4bit_generic(__global const uchar *x, ulong x_off, int x_al, ulong n, uint log2bs, __global uchar *packed,
                      ulong p_off, int p_al, __global float *absmax, ulong a_off) {
    __local float red[QR4 * QWG];
    __local uint2 cells[Q4C_N];
    x += x_off;
    packed += p_off;
    absmax += a_off;
    const uint lid = get_local_id(0);
    fill_cells_4bit(cells, lid);
    Q_GENERIC_PASSES(get_group_id(0), QR4, in_raw8, load8_raw_tail(x, e, n, x_al), in8_f,
                     barrier(CLK_LOCAL_MEM_FENCE) /* publishes cells[] */,
                     store_packed4(packed, e, n, p_al, pack8_4bit(in8_f(v[r]), clbnb_div(1.0f, m[r]), cells)))
}

// Blocks larger than QWG*QEPT: the tile is one block.
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void
quantize_4bit_generic_big(__global const uchar *x, ulong x_off, int x_al, ulong n, uint log2bs,
                          __global uchar *packed, ulong p_off, int p_al, __global float *absmax, ulong a_off) {
    __local float red[QWG];
    __local uint2 cells[Q4C_N];
    x += x_off;
    packed += p_off;
    absmax += a_off;
    const uint lid = get_local_id(0);
    fill_cells_4bit(cells, lid);
    const ulong bs = (ulong)1 << log2bs;
    const ulong chunk = (ulong)QWG * QEPT;
    const uint passes = (uint)(bs / chunk);
    const ulong e0 = (ulong)get_group_id(0) * bs + (ulong)lid * QEPT;
    float8 v = load8_in_tail(x, e0, n, x_al);
    float amax = max8(v);
    for (uint r = 1; r < passes; r++) amax = fmax(amax, max8(load8_in_tail(x, e0 + r * chunk, n, x_al)));
    segment_max_n(red, lid, QWG, &amax, 1);
    barrier(CLK_LOCAL_MEM_FENCE); // publishes cells[]
    if (lid == 0 && e0 < n) absmax[e0 >> log2bs] = amax;
    const float inv = clbnb_div(1.0f, amax);
    if (e0 < n) store_packed4(packed, e0, n, p_al, pack8_4bit(v, inv, cells));
    for (uint r = 1; r < passes; r++) {
        ulong e = e0 + r * chunk;
        if (e < n) store_packed4(packed, e, n, p_al, pack8_4bit(load8_in_tail(x, e, n, x_al), inv, cells));
    }
}

// ---- cpu shape: explicit 8-lane vectors (PoCL maps them to AVX registers; its work-item loop
// cannot vectorize a kernel with per-work-item loops, so the SIMD is written out here) ----------
// NF4: code = #{ j : x > t_j } as a 4-level binary search over the sorted thresholds, with vector
// selects (4 compares and 11 selects; NaN fails every compare -> 0). PoCL, 4M f16 bs64: 2128-2196
// us with 15 compares and adds, 1965-1973 us this way.
inline uint8 quant_nf4_v(float8 x) {
    const int8 hi = isgreater(x, (float8)NF4_T7);
    float8 t = select((float8)NF4_T3, (float8)NF4_T11, hi);
    const int8 b2 = isgreater(x, t);
    t = select(select((float8)NF4_T1, (float8)NF4_T5, b2), select((float8)NF4_T9, (float8)NF4_T13, b2), hi);
    const int8 b1 = isgreater(x, t);
    const float8 t0 = select(select((float8)NF4_T0, (float8)NF4_T4, b2), select((float8)NF4_T2, (float8)NF4_T6, b2), b1);
    const float8 t1 = select(select((float8)NF4_T8, (float8)NF4_T12, b2), select((float8)NF4_T10, (float8)NF4_T14, b2), b1);
    const int8 b0 = isgreater(x, select(t0, t1, hi));
    return as_uint8((hi & 8) | (b2 & 4) | (b1 & 2) | (b0 & 1));
}

// FP4: rank r = #{ literal thresholds < |x| }, low bits (r & 1) | ((4 - (r >> 1)) & 3) << 1, sign x < 0.
inline uint8 quant_fp4_v(float8 x) {
    float8 m = fabs(x);
    int8 c = (int8)0;
    c += isgreater(m, (float8)FP4_T0);
    c += isgreater(m, (float8)FP4_T1);
    c += isgreater(m, (float8)FP4_T2);
    c += isgreater(m, (float8)FP4_T3);
    c += isgreater(m, (float8)FP4_T4);
    c += isgreater(m, (float8)FP4_T5);
    c += isgreater(m, (float8)FP4_T6);
    uint8 r = as_uint8(-c);
    uint8 low = FP4_LOW_BITS(r);
    return low | (as_uint8(isless(x, (float8)0.0f)) & 8u);
}

// 8 codes -> 4 packed bytes (element 2k in the high nibble of byte k).
inline uint pack8_4bit_v(uint8 q) {
    uint8 s = q << (uint8)(4, 0, 12, 8, 20, 16, 28, 24);
    uint4 t = s.lo | s.hi;
    uint2 u = t.lo | t.hi;
    return u.x | u.y;
}

inline uint pack8_4bit_cpu(float8 v, float inv) {
#if QTYPE == 1
    return pack8_4bit_v(quant_fp4_v(v * inv));
#else
    return pack8_4bit_v(quant_nf4_v(v * inv));
#endif
}

// One work-item per quantization block, 8 elements at a time (blocks are multiples of 8 elements,
// so a group of 8 never straddles two blocks); the second pass re-reads the block from L1.
__kernel void quantize_4bit_cpu(__global const uchar *x, ulong x_off, int x_al, ulong n, uint log2bs,
                                __global uchar *packed, ulong p_off, int p_al, __global float *absmax, ulong a_off) {
    x += x_off;
    packed += p_off;
    absmax += a_off;
    const ulong blk = get_global_id(0);
    const ulong start = blk << log2bs;
    if (start >= n) return;
    const ulong end = min(start + ((ulong)1 << log2bs), n);
    float8 m8 = (float8)0.0f;
    for (ulong e = start; e < end; e += 8) m8 = fmax(m8, fabs(load8_in_tail(x, e, n, x_al)));
    float4 m4 = fmax(m8.lo, m8.hi);
    float2 m2 = fmax(m4.lo, m4.hi);
    const float m = fmax(m2.x, m2.y);
    absmax[blk] = m;
    const float inv = clbnb_div(1.0f, m);
    for (ulong e = start; e < end; e += 8) store_packed4(packed, e, n, p_al, pack8_4bit_cpu(load8_in_tail(x, e, n, x_al), inv));
}

// =================================================================================================
// 4-bit dequantize: out = RN_T(fl32(table[nibble] * absmax[i >> log2bs])), plain or nested absmax.
// FP4 index 8 holds -0.0: CUDA computes lut[c & 7] * (1 - 2 * sign), which is -0.0 for code 8.
// =================================================================================================
// NF4 (spec 1.1) and FP4 (spec 1.2, bit-pattern order) values as f32 bits.
#define DQ4_NF4_0 0xbf800000u
#define DQ4_NF4_1 0xbf3239b1u
#define DQ4_NF4_2 0xbf066b30u
#define DQ4_NF4_3 0xbeca32a0u
#define DQ4_NF4_4 0xbe91a24du
#define DQ4_NF4_5 0xbe3d353fu
#define DQ4_NF4_6 0xbdba7871u
#define DQ4_NF4_7 0x00000000u
#define DQ4_NF4_8 0x3da2faffu
#define DQ4_NF4_9 0x3e24cae3u
#define DQ4_NF4_10 0x3e7c04ddu
#define DQ4_NF4_11 0x3ead033au
#define DQ4_NF4_12 0x3ee1a4b8u
#define DQ4_NF4_13 0x3f1007abu
#define DQ4_NF4_14 0x3f3913b3u
#define DQ4_NF4_15 0x3f800000u
#define DQ4_FP4_0 0x00000000u
#define DQ4_FP4_1 0x3baaaaabu
#define DQ4_FP4_2 0x3f2aaaabu
#define DQ4_FP4_3 0x3f800000u
#define DQ4_FP4_4 0x3eaaaaabu
#define DQ4_FP4_5 0x3f000000u
#define DQ4_FP4_6 0x3e2aaaabu
#define DQ4_FP4_7 0x3e800000u
#define DQ4_FP4_8 0x80000000u
#define DQ4_FP4_9 0xbbaaaaabu
#define DQ4_FP4_10 0xbf2aaaabu
#define DQ4_FP4_11 0xbf800000u
#define DQ4_FP4_12 0xbeaaaaabu
#define DQ4_FP4_13 0xbf000000u
#define DQ4_FP4_14 0xbe2aaaabu
#define DQ4_FP4_15 0xbe800000u
#define DQ4_LIST(T) \
    DQ4_##T##_0, DQ4_##T##_1, DQ4_##T##_2, DQ4_##T##_3, DQ4_##T##_4, DQ4_##T##_5, DQ4_##T##_6, DQ4_##T##_7, \
    DQ4_##T##_8, DQ4_##T##_9, DQ4_##T##_10, DQ4_##T##_11, DQ4_##T##_12, DQ4_##T##_13, DQ4_##T##_14, DQ4_##T##_15
#define DQ4_PAIR(T, h, l) (uint2)(DQ4_##T##_##h, DQ4_##T##_##l)
#define DQ4_PAIR_ROW(T, h) \
    DQ4_PAIR(T, h, 0), DQ4_PAIR(T, h, 1), DQ4_PAIR(T, h, 2), DQ4_PAIR(T, h, 3), DQ4_PAIR(T, h, 4), DQ4_PAIR(T, h, 5), \
    DQ4_PAIR(T, h, 6), DQ4_PAIR(T, h, 7), DQ4_PAIR(T, h, 8), DQ4_PAIR(T, h, 9), DQ4_PAIR(T, h, 10), DQ4_PAIR(T, h, 11), \
    DQ4_PAIR(T, h, 12), DQ4_PAIR(T, h, 13), DQ4_PAIR(T, h, 14), DQ4_PAIR(T, h, 15)
#define DQ4_PAIRS(T) \
    DQ4_PAIR_ROW(T, 0), DQ4_PAIR_ROW(T, 1), DQ4_PAIR_ROW(T, 2), DQ4_PAIR_ROW(T, 3), DQ4_PAIR_ROW(T, 4), DQ4_PAIR_ROW(T, 5), \
    DQ4_PAIR_ROW(T, 6), DQ4_PAIR_ROW(T, 7), DQ4_PAIR_ROW(T, 8), DQ4_PAIR_ROW(T, 9), DQ4_PAIR_ROW(T, 10), DQ4_PAIR_ROW(T, 11), \
    DQ4_PAIR_ROW(T, 12), DQ4_PAIR_ROW(T, 13), DQ4_PAIR_ROW(T, 14), DQ4_PAIR_ROW(T, 15)
__constant uint dq4_tables[32] = {DQ4_LIST(NF4), DQ4_LIST(FP4)};
// Byte -> (value of its high nibble, value of its low nibble): one load decodes two elements (cpu path).
__constant uint2 dq4_pairs[512] = {DQ4_PAIRS(NF4), DQ4_PAIRS(FP4)};

#define DQ4_ARGS                                                                                              \
    __global const uchar *packed, ulong p_off, int p_al, int qtype, __global const uchar *am, ulong am_off,  \
        int nested, __global const float *am2, ulong am2_off, uint log2bs2, __global const float *code2,    \
        ulong code2_off, __global const float *offset, ulong offset_off, uint log2bs, __global uchar *out,    \
        ulong o_off, int o_al, ulong n

inline float8 dq4_byte4(__local const float *lut, uint w, float a) {
    return (float8)(lut[(w >> 4) & 15u] * a, lut[w & 15u] * a, lut[(w >> 12) & 15u] * a, lut[(w >> 8) & 15u] * a,
                    lut[(w >> 20) & 15u] * a, lut[(w >> 16) & 15u] * a, lut[(w >> 28) & 15u] * a,
                    lut[(w >> 24) & 15u] * a);
}

// The same from the byte-pair table: 4 loads instead of 8.
inline float8 dq4_pairs4(__constant const uint2 *pairs, uint w, float a) {
    return as_float8((uint8)(pairs[w & 255u], pairs[(w >> 8) & 255u], pairs[(w >> 16) & 255u], pairs[w >> 24])) *
           (float8)(a);
}

// 16 packed nibbles from element e (a multiple of 16) as two words, zero past n.
inline uint2 load_packed16(__global const uchar *packed, ulong e, ulong n, int p_al) {
    if (e + 16 <= n && p_al) return ((__global const uint2 *)packed)[e >> 4];
    uchar b[8];
    ulong nbytes = (n + 1) >> 1;
    for (uint k = 0; k < 8; k++) b[k] = (e >> 1) + k < nbytes ? packed[(e >> 1) + k] : (uchar)0;
    return (uint2)((uint)b[0] | ((uint)b[1] << 8) | ((uint)b[2] << 16) | ((uint)b[3] << 24),
                   (uint)b[4] | ((uint)b[5] << 8) | ((uint)b[6] << 16) | ((uint)b[7] << 24));
}

// 8 packed nibbles from element e (a multiple of 8) as one word, zero past n.
inline uint load_packed8(__global const uchar *packed, ulong e, ulong n, int p_al) {
    if (e + 8 <= n && p_al) return ((__global const uint *)packed)[e >> 3];
    const ulong nbytes = (n + 1) >> 1;
    uint w = 0;
    for (uint k = 0; k < 4; k++)
        if ((e >> 1) + k < nbytes) w |= (uint)packed[(e >> 1) + k] << (8 * k);
    return w;
}

// Body of the generic dequantizers (after the work-group's table is requested): work-item lid of
// group g handles the 8-element units g * QWG * NU + u * QWG + lid (u < NU); each load instruction
// of a warp reads contiguous bytes, and all NU loads are issued before the barrier that publishes
// the table. One 8-element store per unit keeps a warp's store instruction contiguous: with
// 16-element units stored as two halves, each store instruction wrote half of every 32-byte sector
// it touched, and the H100 dequantized NF4 to f16 at 62 % of the copy bandwidth instead of 98 %
// (8-bit to f32: 60 % instead of 92 %). WORD: a unit's packed type, LOAD: its load at element e,
// DEC: the 8 floats of w[u] scaled by a[u].
#define DQ_GENERIC_BODY(NU, WORD, LOAD, DEC)                                                                    \
    out += o_off;                                                                                              \
    const float off = nested ? offset[offset_off] : 0.0f;                                                      \
    const ulong u0 = (ulong)get_group_id(0) * (QWG * NU) + lid;                                                \
    WORD w[NU];                                                                                                \
    float a[NU];                                                                                               \
    for (uint u = 0; u < NU; u++) {                                                                            \
        const ulong e = (u0 + u * QWG) * 8;                                                                    \
        w[u] = e < n ? LOAD : (WORD)(0u);                                                                      \
        a[u] = e < n ? block_absmax(am, am_off, nested, am2, am2_off, log2bs2, code2, code2_off, off, e >> log2bs) \
                     : 0.0f;                                                                                   \
    }                                                                                                          \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                              \
    for (uint u = 0; u < NU; u++) {                                                                            \
        const ulong e = (u0 + u * QWG) * 8;                                                                    \
        if (e < n) store8_out_tail(out, e, n, o_al, DEC);                                                      \
    }

// Generic shape: DQ_GENERIC_BODY.
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void dequantize_4bit_generic(DQ4_ARGS) {
    __local float lut[16];
    const uint lid = get_local_id(0);
    if (lid < 16) lut[lid] = as_float(dq4_tables[(qtype == 1 ? 16 : 0) + lid]);
    packed += p_off;
    DQ_GENERIC_BODY(DQ4_U, uint, load_packed8(packed, e, n, p_al), dq4_byte4(lut, w[u], a[u]))
}

// One work-item per CPU_CHUNK elements, 16 at a time (16 elements never straddle a block), the
// block's absmax computed once per block (nested: a code lookup and a product).
__kernel void dequantize_4bit_cpu(DQ4_ARGS) {
    packed += p_off;
    out += o_off;
    const ulong start = (ulong)get_global_id(0) * CPU_CHUNK;
    if (start >= n) return;
    const ulong end = min(start + CPU_CHUNK, n);
    __constant const uint2 *pairs = dq4_pairs + (qtype == 1 ? 256 : 0);
    const float off = nested ? offset[offset_off] : 0.0f;
    for (ulong b0 = start; b0 < end;) {
        const ulong b1 = min(((b0 >> log2bs) + 1) << log2bs, end);
        const float a = block_absmax(am, am_off, nested, am2, am2_off, log2bs2, code2, code2_off, off, b0 >> log2bs);
        for (ulong e = b0; e < b1; e += 16) {
            const uint2 w = load_packed16(packed, e, n, p_al);
            store8_out_tail(out, e, n, o_al, dq4_pairs4(pairs, w.x, a));
            if (e + 8 < n) store8_out_tail(out, e + 8, n, o_al, dq4_pairs4(pairs, w.y, a));
        }
        b0 = b1;
    }
}

// =================================================================================================
// 8-bit quantize: x (n elements) -> codes u8[n], absmax. With use_offset, the input is
// fl32(x - offset[0]) (double quantization of an absmax vector, spec 3).
// =================================================================================================
#define Q8_ARGS                                                                                                 \
    __global const uchar *x, ulong x_off, int x_al, ulong n, uint log2bs, __global const float *code,           \
        ulong code_off, int use_offset, __global const float *offset, ulong offset_off, __global uchar *codes, \
        ulong c_off, int c_al, __global float *absmax, ulong a_off

// ---- 8-bit buckets: a search-free quantizer for both shapes ------------------------------------
// The float line is cut into Q8T_NB buckets, monotonic in x: magnitude bucket = the exponent and
// top Q8T_M mantissa bits of |x|, clamped to [2^-Q8T_E, 2) (smaller magnitudes share the first,
// larger ones, inf and NaN the last), mirrored for negative x; -0 counts as +0. For a sorted code
// (nondecreasing midpoints) entry b holds k_lo = #{ j : bucket(m_j) < b } and cnt = #{ j :
// bucket(m_j) == b }; then k = k_lo + #{ j in [k_lo, k_lo + cnt) : m_j < x }, the count of spec 2.3.
// With cnt <= 1 (every bucket of the dynamic map) that is one compare against the stored
// midpoint (NaN when the bucket is empty), which also settles the tie (x == m_k only when m_k is
// in x's bucket). The cpu shape keeps the table in global memory (q8_table_build), layout (uint):
// [0, NB) k_lo | cnt << 16; [NB, 2NB) the midpoint bits; [2NB, 2NB + 256) the 255 midpoints and a
// NaN. The generic shape builds a compact form in local memory (q8_tables_fill).
#define Q8T_M 6                                      // mantissa bits per bucket
#define Q8T_E 24                                     // magnitudes below 2^-Q8T_E share one bucket
#define Q8T_LO ((127u - Q8T_E) << Q8T_M)
#define Q8T_HI (128u << Q8T_M)
#define Q8T_NMB (Q8T_HI - Q8T_LO + 1u)               // magnitude buckets per sign
#define Q8T_NB (2u * Q8T_NMB)                        // buckets
#define Q8T_WORDS (2u * Q8T_NB + 256u)               // table size in uints (the host uses the same)

inline uint q8t_bucket(float x) {
    uint a = as_uint(x + 0.0f);
    uint mag = clamp((a & 0x7fffffffu) >> (23 - Q8T_M), Q8T_LO, Q8T_HI) - Q8T_LO;
    return (a >> 31) ? Q8T_NMB - 1u - mag : Q8T_NMB + mag;
}

// Midpoint j of a code (255: a NaN, above every x).
inline float q8t_mid(__global const float *code, uint j) { return j < 255 ? (code[j] + code[j + 1]) * 0.5f : as_float(0x7fc00000u); }

inline uint8 q8t_bucket8(float8 x) {
    uint8 a = as_uint8(x + (float8)0.0f);
    uint8 mag = clamp((a & 0x7fffffffu) >> (uint8)(23 - Q8T_M), (uint8)Q8T_LO, (uint8)Q8T_HI) - Q8T_LO;
    return select(Q8T_NMB + mag, Q8T_NMB - 1u - mag, as_int8(a));
}

// Generic shape: the work-group's tables in local memory, built once per (persistent) work-group.
// klo[b] = k_lo of bucket b as a byte, mids[] = the 255 sorted midpoints and a NaN. When no bucket
// holds two midpoints (the dynamic map: the buckets are 2^-6 of an octave wide), the only midpoint
// that can share x's bucket is m_{k_lo}: k = k_lo + (m_{k_lo} < x), and x == m_{k_lo} is the tie
// (to the even index); a midpoint in a later bucket is above x since the bucket is monotone. For a
// code with a denser bucket the work-group uses the Eytzinger search over eyt[] instead; the
// choice is uniform over the work-group. Returns 1 for the dense case.
typedef struct q8_local_tables {
    __local uchar *klo;  // [Q8T_NB]
    __local float *mids; // [256]
    __local float *eyt;  // [256], quant_8bit_eyt's layout
    __local uint *bm;    // [256] scratch: bucket of each midpoint (Q8T_NB for the NaN)
    __local int *dense;
} q8_local_tables;

inline int q8_tables_fill(q8_local_tables t, __global const float *code, uint lid) {
    for (uint j = lid; j < 256; j += QWG) {
        const float m = q8t_mid(code, j);
        t.mids[j] = m;
        t.bm[j] = j < 255 ? q8t_bucket(m) : Q8T_NB;
    }
    if (lid == 0) *t.dense = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint j = lid + 1; j < 256; j += QWG) t.eyt[j] = t.mids[eyt_index(j)];
    for (uint j = lid; j + 1 < 255; j += QWG)
        if (t.bm[j] == t.bm[j + 1]) *t.dense = 1;
    // each work-item a run of buckets: k_lo of the first by binary lifting over bm[] (nondecreasing
    // for a sorted code), then a walk (bm[255] stops it)
    const uint per = (Q8T_NB + QWG - 1) / QWG, b0 = lid * per, b1 = min(b0 + per, Q8T_NB);
    uint lo = 0;
    for (uint step = 128; step > 0; step >>= 1)
        if (lo + step <= 255 && t.bm[lo + step - 1] < b0) lo += step;
    for (uint b = b0; b < b1; b++) {
        while (t.bm[lo] < b) lo++;
        t.klo[b] = (uchar)lo;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    return *t.dense;
}

inline uint quant_8bit_tab(float x, q8_local_tables t) {
    uint k = t.klo[q8t_bucket(x)];
    const float m = t.mids[k];
    k += m < x ? 1u : ((x == m) ? (k & 1u) : 0u);
    return x == x ? k : 0u; // NaN -> 0, as the search gives
}

inline uint quant_8bit_local(float x, q8_local_tables t, int dense) {
    return dense ? quant_8bit_eyt(x, t.eyt) : quant_8bit_tab(x, t);
}

inline uint2 pack8_8bit(float8 v, float inv, q8_local_tables t, int dense) {
    uint q0 = quant_8bit_local(v.s0 * inv, t, dense), q1 = quant_8bit_local(v.s1 * inv, t, dense),
         q2 = quant_8bit_local(v.s2 * inv, t, dense), q3 = quant_8bit_local(v.s3 * inv, t, dense),
         q4 = quant_8bit_local(v.s4 * inv, t, dense), q5 = quant_8bit_local(v.s5 * inv, t, dense),
         q6 = quant_8bit_local(v.s6 * inv, t, dense), q7 = quant_8bit_local(v.s7 * inv, t, dense);
    return (uint2)(q0 | (q1 << 8) | (q2 << 16) | (q3 << 24), q4 | (q5 << 8) | (q6 << 16) | (q7 << 24));
}

// The local tables of one work-group and their fill (declares t and dense).
#define Q8_LOCAL_TABLES(code, lid)                                                                             \
    __local uchar klo_[Q8T_NB];                                                                                \
    __local float mids_[256], eyt_[256];                                                                       \
    __local uint bm_[256];                                                                                     \
    __local int dense_;                                                                                        \
    const q8_local_tables t = {klo_, mids_, eyt_, bm_, &dense_};                                               \
    const int dense = q8_tables_fill(t, code, lid)

inline void store_codes8(__global uchar *codes, ulong e, ulong n, int c_al, uint2 w) {
    if (e + 8 <= n && c_al) {
        ((__global uint2 *)codes)[e >> 3] = w;
        return;
    }
    for (uint k = 0; k < 8; k++)
        if (e + k < n) codes[e + k] = (uchar)((k < 4 ? w.x : w.y) >> (8 * (k & 3)));
}

inline float8 load8_q8(__global const uchar *x, ulong e, ulong n, int al, int use_offset, float off) {
    float8 v = load8_in_tail(x, e, n, al);
    if (use_offset) {
        v -= (float8)off;
        // elements past n stay 0 (they must not change the maximum)
        if (e + 8 > n) {
            float t[8];
            vstore8(v, 0, t);
            for (uint j = 0; j < 8; j++)
                if (e + j >= n) t[j] = 0.0f;
            v = vload8(0, t);
        }
    }
    return v;
}

// Generic shape: persistent work-groups (the host launches at most a few per compute unit, so the
// tables are built rarely), each a grid-stride loop over tiles of Q_GENERIC_PASSES.
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void quantize_8bit_generic(Q8_ARGS) {
    __local float red[QR * QWG];
    x += x_off;
    codes += c_off;
    absmax += a_off;
    code += code_off;
    const uint lid = get_local_id(0);
    Q8_LOCAL_TABLES(code, lid);
    const float off = use_offset ? offset[offset_off] : 0.0f;
    const ulong ntiles = (n + (ulong)QR * QWG * QEPT - 1) / ((ulong)QR * QWG * QEPT);
    for (ulong tile = get_group_id(0); tile < ntiles; tile += get_num_groups(0)) {
        Q_GENERIC_PASSES(tile, QR, float8, load8_q8(x, e, n, x_al, use_offset, off), Q_AS_IS, (void)0,
                         store_codes8(codes, e, n, c_al, pack8_8bit(v[r], clbnb_div(1.0f, m[r]), t, dense)))
        barrier(CLK_LOCAL_MEM_FENCE); // red[] is reused by the next tile
    }
}

// Blocks larger than QWG*QEPT: the tile is one block (persistent work-groups as above).
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void
quantize_8bit_generic_big(Q8_ARGS) {
    __local float red[QWG];
    x += x_off;
    codes += c_off;
    absmax += a_off;
    code += code_off;
    const uint lid = get_local_id(0);
    Q8_LOCAL_TABLES(code, lid);
    const float off = use_offset ? offset[offset_off] : 0.0f;
    const ulong bs = (ulong)1 << log2bs;
    const ulong chunk = (ulong)QWG * QEPT;
    const uint passes = (uint)(bs / chunk);
    const ulong nblocks = (n + bs - 1) >> log2bs;
    for (ulong blk = get_group_id(0); blk < nblocks; blk += get_num_groups(0)) {
        const ulong e0 = blk * bs + (ulong)lid * QEPT;
        float8 v = load8_q8(x, e0, n, x_al, use_offset, off);
        float amax = max8(v);
        for (uint r = 1; r < passes; r++)
            amax = fmax(amax, max8(load8_q8(x, e0 + r * chunk, n, x_al, use_offset, off)));
        segment_max_n(red, lid, QWG, &amax, 1);
        if (lid == 0 && e0 < n) absmax[blk] = amax;
        const float inv = clbnb_div(1.0f, amax);
        if (e0 < n) store_codes8(codes, e0, n, c_al, pack8_8bit(v, inv, t, dense));
        for (uint r = 1; r < passes; r++) {
            ulong e = e0 + r * chunk;
            if (e < n)
                store_codes8(codes, e, n, c_al, pack8_8bit(load8_q8(x, e, n, x_al, use_offset, off), inv, t, dense));
        }
        barrier(CLK_LOCAL_MEM_FENCE); // red[] is reused by the next block
    }
}

// ---- cpu shape of the 8-bit quantizer: the bucket table (q8t_bucket, above) in global memory ---

// Builds the table of `code` (Q8T_WORDS work-items' worth; one work-item per word).
__kernel void q8_table_build(__global const float *code, ulong code_off, __global uint *tab) {
    code += code_off;
    const uint g = get_global_id(0);
    if (g >= Q8T_NB + Q8T_NB + 256u) return;
    if (g >= 2u * Q8T_NB) {
        tab[g] = as_uint(q8t_mid(code, g - 2u * Q8T_NB));
        return;
    }
    const uint b = g < Q8T_NB ? g : g - Q8T_NB;
    // lo = #{ j : bucket(m_j) < b }, hi = #{ j : bucket(m_j) <= b } by binary lifting over 255 midpoints
    uint lo = 0, hi = 0;
    for (uint step = 128; step > 0; step >>= 1) {
        if (lo + step <= 255 && q8t_bucket(q8t_mid(code, lo + step - 1)) < b) lo += step;
        if (hi + step <= 255 && q8t_bucket(q8t_mid(code, hi + step - 1)) <= b) hi += step;
    }
    const uint cnt = hi - lo;
    if (g < Q8T_NB) tab[g] = lo | (cnt << 16);
    else tab[g] = cnt == 1 ? as_uint(q8t_mid(code, lo)) : 0x7fc00000u;
}

// 8 codes of 8 normalized values.
inline uint8 q8t_quant8(float8 x, __global const uint *tab) {
    const uint8 b = q8t_bucket8(x);
    const uint8 e = (uint8)(tab[b.s0], tab[b.s1], tab[b.s2], tab[b.s3], tab[b.s4], tab[b.s5], tab[b.s6], tab[b.s7]);
    __global const float *tm = (__global const float *)tab + Q8T_NB;
    const float8 m = (float8)(tm[b.s0], tm[b.s1], tm[b.s2], tm[b.s3], tm[b.s4], tm[b.s5], tm[b.s6], tm[b.s7]);
    const uint8 klo = e & 0xffffu;
    uint8 k = klo - as_uint8(isless(m, x)) + (as_uint8(isequal(x, m)) & klo & 1u);
    if (any(e > 0x1ffffu)) { // a bucket with several midpoints: count them (general sorted codes)
        __global const float *mid = (__global const float *)tab + 2u * Q8T_NB;
        uint kk[8];
        float xx[8];
        vstore8(k, 0, kk);
        vstore8(x, 0, xx);
        for (uint l = 0; l < 8; l++) {
            uint el = tab[q8t_bucket(xx[l])];
            if (el <= 0x1ffffu) continue;
            uint k0 = el & 0xffffu, c = el >> 16, kl = k0;
            for (uint j = 0; j < c; j++) kl += mid[k0 + j] < xx[l];
            if (xx[l] == mid[kl]) kl += kl & 1u; // mid[255] is NaN
            kk[l] = kl;
        }
        k = vload8(0, kk);
    }
    return k & as_uint8(isequal(x, x)); // NaN -> 0
}

// One work-item per quantization block, 8 elements at a time; the second pass re-reads the block
// from L1. `tab` comes from q8_table_build of the same code.
__kernel void quantize_8bit_cpu(Q8_ARGS, __global const uint *tab) {
    x += x_off;
    codes += c_off;
    absmax += a_off;
    const ulong blk = get_global_id(0);
    const ulong start = blk << log2bs;
    if (start >= n) return;
    const ulong end = min(start + ((ulong)1 << log2bs), n);
    const float off = use_offset ? offset[offset_off] : 0.0f;
    float8 m8 = (float8)0.0f;
    for (ulong e = start; e < end; e += 8) m8 = fmax(m8, fabs(load8_q8(x, e, n, x_al, use_offset, off)));
    float4 m4 = fmax(m8.lo, m8.hi);
    float2 m2 = fmax(m4.lo, m4.hi);
    const float m = fmax(m2.x, m2.y);
    absmax[blk] = m;
    const float inv = clbnb_div(1.0f, m);
    for (ulong e = start; e < end; e += 8) {
        uint8 q = q8t_quant8(load8_q8(x, e, n, x_al, use_offset, off) * inv, tab);
        store_codes8(codes, e, n, c_al, as_uint2(convert_uchar8(q))); // one 8-byte store where aligned
    }
}

// =================================================================================================
// 8-bit dequantize: out = RN_T(fl32(code[q] * absmax[i >> log2bs])), plain or nested absmax.
// =================================================================================================
#define DQ8_ARGS                                                                                             \
    __global const uchar *codes, ulong c_off, int c_al, __global const float *code, ulong code_off,         \
        __global const uchar *am, ulong am_off, int nested, __global const float *am2, ulong am2_off,       \
        uint log2bs2, __global const float *code2, ulong code2_off, __global const float *offset,           \
        ulong offset_off, uint log2bs, __global uchar *out, ulong o_off, int o_al, ulong n

inline float8 dq8_word2(__local const float *lc, uint2 w, float a) {
    return (float8)(lc[w.x & 255u] * a, lc[(w.x >> 8) & 255u] * a, lc[(w.x >> 16) & 255u] * a, lc[w.x >> 24] * a,
                    lc[w.y & 255u] * a, lc[(w.y >> 8) & 255u] * a, lc[(w.y >> 16) & 255u] * a, lc[w.y >> 24] * a);
}

// 16 codes from element e (a multiple of 16), zero past n.
inline uint4 load_codes16(__global const uchar *codes, ulong e, ulong n, int c_al) {
    if (e + 16 <= n && c_al) return ((__global const uint4 *)codes)[e >> 4];
    uint t[4] = {0, 0, 0, 0};
    for (uint k = 0; k < 16; k++)
        if (e + k < n) t[k >> 2] |= (uint)codes[e + k] << (8 * (k & 3));
    return (uint4)(t[0], t[1], t[2], t[3]);
}

// 8 codes from element e (a multiple of 8), zero past n.
inline uint2 load_codes8(__global const uchar *codes, ulong e, ulong n, int c_al) {
    if (e + 8 <= n && c_al) return ((__global const uint2 *)codes)[e >> 3];
    uint t[2] = {0, 0};
    for (uint k = 0; k < 8; k++)
        if (e + k < n) t[k >> 2] |= (uint)codes[e + k] << (8 * (k & 3));
    return (uint2)(t[0], t[1]);
}

// Generic shape: DQ_GENERIC_BODY.
__kernel __attribute__((reqd_work_group_size(QWG, 1, 1))) void dequantize_8bit_generic(DQ8_ARGS) {
    __local float lc[256];
    const uint lid = get_local_id(0);
    for (uint j = lid; j < 256; j += QWG) lc[j] = code[code_off + j];
    codes += c_off;
    DQ_GENERIC_BODY(DQ8_U, uint2, load_codes8(codes, e, n, c_al), dq8_word2(lc, w[u], a[u]))
}

inline float8 dq8_word2_g(__global const float *lc, uint2 w, float a) {
    return (float8)(lc[w.x & 255u] * a, lc[(w.x >> 8) & 255u] * a, lc[(w.x >> 16) & 255u] * a, lc[w.x >> 24] * a,
                    lc[w.y & 255u] * a, lc[(w.y >> 8) & 255u] * a, lc[(w.y >> 16) & 255u] * a, lc[w.y >> 24] * a);
}

// One work-item per CPU_CHUNK elements, 16 at a time (blocks are multiples of 16 elements).
__kernel void dequantize_8bit_cpu(DQ8_ARGS) {
    codes += c_off;
    out += o_off;
    code += code_off;
    const ulong start = (ulong)get_global_id(0) * CPU_CHUNK;
    if (start >= n) return;
    const ulong end = min(start + CPU_CHUNK, n);
    const float off = nested ? offset[offset_off] : 0.0f;
    for (ulong e = start; e < end; e += 16) {
        const float a = block_absmax(am, am_off, nested, am2, am2_off, log2bs2, code2, code2_off, off, e >> log2bs);
        const uint4 w = load_codes16(codes, e, n, c_al);
        store8_out_tail(out, e, n, o_al, dq8_word2_g(code, w.lo, a));
        if (e + 8 < n) store8_out_tail(out, e + 8, n, o_al, dq8_word2_g(code, w.hi, a));
    }
}

// =================================================================================================
// Absmax mean (the offset of double quantization). Summation order, identical in both shapes and
// independent of the device:
//   stage 1: the input is cut into chunks of MEAN_CHUNK elements; in chunk c, lane t (0..255) sums
//            the elements t, t+256, t+512, ... of the chunk in increasing order (f32, starting from
//            0); then the 256 lane sums are added as a tree: for s = 128, 64, ..., 1: lane[t] +=
//            lane[t + s] (t < s). partial[c] = lane[0].
//   stage 2: the same lane + tree scheme over all partials (lane t sums partials t, t+256, ...),
//            then mean = fl32(sum * fl32(1.0f / (float)n)) (torch's MeanOps: sum times the factor
//            1/n). For n <= 4096 this equals torch's CUDA float mean on the golden data.
// =================================================================================================
inline float tree256_local(__local float *s, uint lid) {
    for (uint st = MEAN_LANES / 2; st > 0; st >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < st) s[lid] = s[lid] + s[lid + st];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    return s[0];
}

inline float tree256_private(float *s) {
    for (uint st = MEAN_LANES / 2; st > 0; st >>= 1)
        for (uint t = 0; t < st; t++) s[t] = s[t] + s[t + st];
    return s[0];
}

// Work-group (MEAN_LANES work-items) per chunk.
__kernel __attribute__((reqd_work_group_size(MEAN_LANES, 1, 1))) void
mean_partial_generic(__global const float *a, ulong a_off, ulong n, __global float *partial) {
    __local float s[MEAN_LANES];
    a += a_off;
    const uint lid = get_local_id(0);
    const ulong c = get_group_id(0);
    const ulong start = c * MEAN_CHUNK, end = min(start + MEAN_CHUNK, n);
    float acc = 0.0f;
    for (ulong i = start + lid; i < end; i += MEAN_LANES) acc = acc + a[i];
    s[lid] = acc;
    float total = tree256_local(s, lid);
    if (lid == 0) partial[c] = total;
}

// Work-item per chunk.
__kernel void mean_partial_cpu(__global const float *a, ulong a_off, ulong n, __global float *partial) {
    a += a_off;
    const ulong c = get_global_id(0);
    const ulong start = c * MEAN_CHUNK;
    if (start >= n) return;
    const ulong end = min(start + MEAN_CHUNK, n);
    float s[MEAN_LANES];
    for (uint t = 0; t < MEAN_LANES; t++) s[t] = 0.0f;
    for (ulong i = start; i < end; i++) s[(i - start) & (MEAN_LANES - 1)] = s[(i - start) & (MEAN_LANES - 1)] + a[i];
    partial[c] = tree256_private(s);
}

// One work-group of MEAN_LANES: stage 2, writes offset[0].
__kernel __attribute__((reqd_work_group_size(MEAN_LANES, 1, 1))) void
mean_final_generic(__global const float *partial, ulong np, ulong n, __global float *offset, ulong offset_off) {
    __local float s[MEAN_LANES];
    const uint lid = get_local_id(0);
    float acc = 0.0f;
    for (ulong i = lid; i < np; i += MEAN_LANES) acc = acc + partial[i];
    s[lid] = acc;
    float total = tree256_local(s, lid);
    if (lid == 0) offset[offset_off] = total * clbnb_div(1.0f, (float)n);
}

// A single work-item: stage 2.
__kernel void mean_final_cpu(__global const float *partial, ulong np, ulong n, __global float *offset,
                             ulong offset_off) {
    if (get_global_id(0) != 0) return;
    float s[MEAN_LANES];
    for (uint t = 0; t < MEAN_LANES; t++) s[t] = 0.0f;
    for (ulong i = 0; i < np; i++) s[i & (MEAN_LANES - 1)] = s[i & (MEAN_LANES - 1)] + partial[i];
    offset[offset_off] = tree256_private(s) * clbnb_div(1.0f, (float)n);
}

// Nested absmax -> f32 absmax, one work-item per entry (both shapes).
__kernel void absmax_decompress(__global const uchar *am, ulong am_off, __global const float *am2, ulong am2_off,
                                uint log2bs2, __global const float *code2, ulong code2_off,
                                __global const float *offset, ulong offset_off, __global float *out, ulong o_off,
                                ulong nb) {
    const ulong b = get_global_id(0);
    if (b >= nb) return;
    const float off = offset[offset_off];
    out[o_off + b] = block_absmax(am, am_off, 1, am2, am2_off, log2bs2, code2, code2_off, off, b);
}
