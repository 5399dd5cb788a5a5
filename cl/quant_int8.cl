// =================================================================================================
// quant_int8.cl: int8 quantization (bnb-format-spec.md 5.1, 5.2, 5.6).
//   row-wise     LLM.int8 int8_vectorwise_quant (MODE 0) / SwitchBack quantize_rowwise (MODE 1),
//                with outlier handling (threshold > 0); row-wise dequantization
//   global       SwitchBack quantize_global (+ transpose): two-stage device absmax
//   column-wise  SwitchBack quantize_columnwise_and_transpose; int8_double_quant's column part
// Kernels ending in _wg are the GENERIC (GPU) shape: work-groups, local-memory reductions,
// coalesced loads. Kernels ending in _cpu are barrier-free (one work-item per row / column /
// chunk). Both give identical bits: every reduction is a max (order-independent) and every code
// is computed by the same expression.
// All element indices are ulong; matrices are (offset, ld) in elements.
// Non-finite inputs: maxima use fmax (NaN ignored); a NaN code or a 0/0 code converts to 0
// (convert_char_sat_rte maps NaN to 0), so an all-zero row/column/tensor gets codes 0.
// =================================================================================================

#ifndef IN_DTYPE
#define IN_DTYPE 1 // dtype of x (CLBNB_DTYPE_*)
#endif
#ifndef OUT_DTYPE
#define OUT_DTYPE 0 // dtype of the dequantized output
#endif
#ifndef WG
#define WG 256 // work-group size of the GENERIC kernels (power of two)
#endif
#ifndef CHUNK
#define CHUNK 4096 // global absmax / quantize: elements of one row handled as one unit of work
#endif
#ifndef TILE
#define TILE 64 // GENERIC transpose tile (TILE x TILE elements, WG = 256 work-items)
#endif

// Program variants differ only in IN_DTYPE / OUT_DTYPE; the mode (LLM.int8 / SwitchBack), the
// stats dtype (sdt, f32/f16/bf16) and the GENERIC row-wise work-items per row (tpr) are kernel
// arguments or separate kernels, so few programs need compiling.
#ifndef Q8_CPU
#define Q8_CPU 0 // 1: build the CPU path's kernels (_cpu), 0: the GENERIC ones (_wg)
#endif

#define LOADX(i) clbnb_load_float(x, (i), IN_DTYPE)

// 8 consecutive elements of x from element i (any element alignment): the CPU kernels' SIMD.
inline float8 load_x8(__global const uchar *x, ulong i) {
#if IN_DTYPE == CLBNB_DTYPE_F32
    return vload8(0, (__global const float *)x + i);
#elif IN_DTYPE == CLBNB_DTYPE_F16
    return vload_half8(0, (__global const half *)x + i);
#else
    return as_float8(convert_uint8(vload8(0, (__global const ushort *)x + i)) << 16);
#endif
}
#define LOADX8(i) load_x8(x, (i))

inline float hmax8(float8 v) {
    float4 a = fmax(v.lo, v.hi);
    float2 b = fmax(a.lo, a.hi);
    return fmax(b.x, b.y);
}

// clbnb_div for 8 lanes (same result per lane).
inline float8 div8(float8 a, float8 b) {
#if CLBNB_CORRECT_DIV
    return a / b;
#else
    float8 q = a / b;
    float8 r = fma(-q, b, a);
    float8 c = fma(r, 1.0f / b, q);
    return select(c, q, isfinite(q) == 0 || q == 0.0f);
#endif
}

// clbnb_div_rcp for 8 lanes. DIV_SCALED 0: fp16 inputs, whose maxima are 0, infinite or in
// [2^-24, 65504], where clbnb_div_scale is 1: no scaling (every instruction per element shows in
// these passes on the H100: with products by a constant 1 in its place, SwitchBack row-wise
// quantization at 8192 x 8192 f16 measured 91.8 against 89.6 us).
#if IN_DTYPE == CLBNB_DTYPE_F16
#define DIV_SCALED 0
#else
#define DIV_SCALED 1
#endif
inline float8 div_rcp8(float8 a, float8 b, float8 rb, float8 s) {
#if DIV_SCALED
    a *= s;
    b *= s;
#endif
    float8 q = a * rb;
    return fma(fma(-q, b, a), rb, q);
}

// rint for |v| <= 256 by the 1.5 * 2^23 trick (exact, ties to even), then saturated; NaN -> 0.
// Same results as convert_char_sat_rte(rint(v)), and much faster on PoCL.
inline char8 q_code8(float8 v) {
    float8 c = fmin(fmax(v, -256.0f), 256.0f);
    float8 r = (c + 12582912.0f) - 12582912.0f;
    r = fmin(fmax(r, -128.0f), 127.0f);
    return select(convert_char8(convert_int8(r)), (char8)0, convert_char8(isnan(v)));
}

// ---- the code expressions (spec 5.1 / 5.6) ----------------------------------------------------
#if Q8_CPU
inline char q_code(float v) {
    float c = fmin(fmax(v, -256.0f), 256.0f);
    float r = fmin(fmax((c + 12582912.0f) - 12582912.0f, -128.0f), 127.0f);
    return isnan(v) ? (char)0 : (char)(int)r;
}
#else
inline char q_code(float v) { return convert_char_sat_rte(rint(v)); }
#endif

#define MODE_LLM 0
#define MODE_SB 1
// LLM: f = 127 / absmax, code = rint(v * f); SwitchBack: f = absmax, code = rint(127 * (v / f)),
// the division through rf = (clbnb_rcp_for_div(f), clbnb_div_scale(f)) (row_rcp). Without the
// fallback branch per 8 elements that div_rcp8 had before, the H100's SwitchBack row-wise
// quantization went 92.4-92.7 -> 89.6-89.7 us at 8192 x 8192 f16, 26.9 -> 25.9-26.1 at 4096^2
// (session 16).
inline float row_factor(float m, const int mode) { return mode == MODE_LLM ? clbnb_div(127.0f, m) : m; }
inline float2 row_rcp(float m, const int mode) {
    return mode == MODE_LLM ? (float2)(0.0f) : (float2)(clbnb_rcp_for_div(m), clbnb_div_scale(m));
}
inline char row_code(float v, float f, float2 rf, const int mode) {
    return mode == MODE_LLM ? q_code(v * f) : q_code(127.0f * clbnb_div_rcp(v, f, rf.x, rf.y));
}

inline bool is_outlier(float a, float thr) { return thr > 0.0f && a >= thr; }

// Marks column c as holding an outlier (rare: only outlier elements get here).
inline void flag_col(__global uint *flags, ulong c) { atomic_or((volatile __global uint *)(flags + c), 1u); }

#if IN_DTYPE == CLBNB_DTYPE_F32
#define ESIZE 4 // bytes per element of x
#else
#define ESIZE 2
#endif
// Whether element i of x lies at a 16-byte aligned address (buffers are at least 16-byte aligned).
#define X_ALIGNED16(i) ((((i) * ESIZE) & 15) == 0)

// GENERIC: 8 consecutive elements of x from element i; vec: that address is 16-byte aligned, so
// one or two 16-byte loads replace the element-wise vload (same values).
inline float8 load_x8v(__global const uchar *x, ulong i, bool vec) {
    if (!vec) return load_x8(x, i);
#if IN_DTYPE == CLBNB_DTYPE_F32
    __global const float4 *p = (__global const float4 *)((__global const float *)x + i);
    return (float8)(p[0], p[1]);
#else
    return clbnb_f8_from_16bit(*(__global const uint4 *)((__global const ushort *)x + i), IN_DTYPE);
#endif
}

// 8 elements of x in their storage form (f16 / bf16: 16 bytes; f32: float8), converted at use by
// raw_f8. Kernels that hold loads across a reduction or across the next unit's loads keep them
// so: H100, row-wise 4096^2 37.0 -> 31.1 us, though the register count barely moved (64 -> 61).
#if IN_DTYPE == CLBNB_DTYPE_F32
typedef float8 xraw8;
inline xraw8 load_raw8(__global const uchar *x, ulong i, bool vec) { return load_x8v(x, i, vec); }
inline float8 raw_f8(xraw8 r) { return r; }
#else
typedef uint4 xraw8;
inline xraw8 load_raw8(__global const uchar *x, ulong i, bool vec) {
    __global const ushort *p = (__global const ushort *)x + i;
    return vec ? *(__global const uint4 *)p : as_uint4(vload8(0, p));
}
inline float8 raw_f8(xraw8 r) { return clbnb_f8_from_16bit(r, IN_DTYPE); }
#endif

// 8 codes to q[i]: one 8-byte store where aligned. PoCL compiles vstore8 of a char8 to eight byte
// stores and this one to a single 8-byte move: PoCL (2 cores), 2048^2 f16 row-wise LLM.int8 /
// threshold 6 / SwitchBack, 6 alternations of 20 runs: 1531-2180 / 2058-3066 / 1888-2520 us ->
// 1333-1536 / 1872-2339 / 1452-1753 us. The CPU transposes' 16 x 16 tile transposed in registers
// by byte unpacks instead of a private array measured no faster (5 alternations, 2048^2).
inline void store_q8(__global char *q, ulong i, char8 c) {
    if ((i & 7) == 0)
        *(__global uint2 *)(q + i) = as_uint2(c);
    else
        vstore8(c, 0, q + i);
}

// 16 codes to q[i]: 16- or 8-byte stores where aligned (as store_q8).
inline void store_q16(__global char *q, ulong i, char16 c) {
    if ((i & 15) == 0) {
        *(__global uint4 *)(q + i) = as_uint4(c);
    } else {
        store_q8(q, i, c.lo);
        store_q8(q, i + 8, c.hi);
    }
}

// Absmax keys: the bits of |x| as an unsigned integer (same order as the float values), NaN -> 0
// (a max over keys is fmax over |x| with NaN ignored). CPU path: integer max, no conversion.
#if IN_DTYPE == CLBNB_DTYPE_F32
inline uint8 abs_key8(__global const uchar *x, ulong i) {
    uint8 u = vload8(0, (__global const uint *)x + i) & 0x7fffffffu;
    return select(u, (uint8)0u, u > 0x7f800000u);
}
inline float key_float(uint k) { return as_float(k); }
#else
inline uint8 abs_key8(__global const uchar *x, ulong i) {
    uint8 u = convert_uint8(vload8(0, (__global const ushort *)x + i)) & 0x7fffu;
    return select(u, (uint8)0u, u > (IN_DTYPE == CLBNB_DTYPE_F16 ? 0x7c00u : 0x7f80u));
}
#if IN_DTYPE == CLBNB_DTYPE_F16
inline float key_float(uint k) {
    ushort h = (ushort)k;
    return vload_half(0, (__private const half *)&h);
}
#else
inline float key_float(uint k) { return as_float(k << 16); }
#endif
#endif
inline uint hmax_u8(uint8 v) {
    uint4 a = max(v.lo, v.hi);
    uint2 b = max(a.lo, a.hi);
    return max(b.x, b.y);
}

// GENERIC: 8 codes, per lane exactly the scalar q_code (convert_char_sat_rte(rint)).
#if !Q8_CPU
#define CODE8(v) convert_char8_sat_rte(rint(v))
#else
#define CODE8(v) q_code8(v)
#endif

// Work-group max of m (GENERIC; every work-item gets the result; every work-item must call it).
// seg: work-items per segment (power of two), each segment reduced separately. The inputs are
// maxima of |x| (never -0.0; fmax drops NaN), so the order of the reduction cannot change the bits.
#if CLBNB_NV_CC >= 70
// NVIDIA: butterfly shuffles within each warp, then one barrier and the segment's warp maxima
// from local memory (the tree below takes five barriers for 256 work-items and 32 local reads per
// work-item; H100, row-wise 4096^2 32.3 -> 30.7-31.0 us, global 38.9 -> 36.4 us).
inline float wg_max(float m, __local float *red, uint seg) {
    for (uint s = min(seg, 32u) >> 1; s > 0; s >>= 1) m = fmax(m, clbnb_nv_shfl_xor(m, s));
    if (seg <= 32) return m;
    const uint lid = get_local_id(0), w0 = (lid & ~(seg - 1)) >> 5, nw = seg >> 5;
    if ((lid & 31u) == 0) red[lid >> 5] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    m = red[w0];
    for (uint i = 1; i < nw; i++) m = fmax(m, red[w0 + i]);
    barrier(CLK_LOCAL_MEM_FENCE); // red may be reused
    return m;
}
#else
// Portable: local partials, one tree step per level down to 32 values, then every work-item reads
// those 32.
inline float wg_max(float m, __local float *red, uint seg) {
    uint lid = get_local_id(0), t = lid & (seg - 1);
    red[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = seg / 2; s >= 32; s >>= 1) {
        if (t < s) red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    uint base = lid - t, n = min(seg, 32u);
    m = red[base];
    for (uint i = 1; i < n; i++) m = fmax(m, red[base + i]);
    barrier(CLK_LOCAL_MEM_FENCE); // red may be reused
    return m;
}
#endif

// ================================================================================================
// Row-wise quantization
// ================================================================================================
#ifndef RPT
#define RPT 2 // GENERIC row-wise: 8-element groups per work-item kept in registers between the passes
              // (the host builds 4 for rows longer than 2 * 8 * WG / 2: rowwise_rpt in quant_int8.c)
#endif

// |x| of 8 elements from column c with outliers (|x| >= thr > 0) flagged and replaced by 0.
inline float8 outlier_zero8(float8 a, float thr, __global uint *flags, ulong c) {
    if (thr > 0.0f) {
        int8 o = a >= thr;
        if (any(o)) {
            float av[8];
            vstore8(a, 0, av);
            for (int k = 0; k < 8; k++)
                if (is_outlier(av[k], thr)) flag_col(flags, c + k);
            a = select(a, (float8)0.0f, o);
        }
    }
    return a;
}

// |x| of 8 elements with outliers replaced by 0 (not flagged).
inline float8 outlier_drop8(float8 a, float thr) { return thr > 0.0f ? select(a, (float8)0.0f, a >= thr) : a; }

// 8 row codes (outliers 0).
inline char8 row_code8(float8 v, float f, float2 rf, float thr, const int mode) {
    char8 c = mode == MODE_LLM ? CODE8(v * f) : CODE8(127.0f * div_rcp8(v, (float8)f, (float8)rf.x, (float8)rf.y));
    if (thr > 0.0f) c = select(c, (char8)0, convert_char8(fabs(v) >= thr));
    return c;
}

// GENERIC: WG/tpr rows per work-group, tpr work-items per row (power of two <= WG). Work-item t
// handles the 8-element groups t, t + tpr, ...: the first RPT stay in registers from the max pass
// to the quantize pass (the whole row when cols <= 8 * RPT * tpr); 16-byte loads where the row is
// 16-byte aligned, 8-byte stores. Outlier elements set flags[c] (zeroed before) and get code 0.
// sdt: dtype of the stats (f32 / f16).
inline void rowwise_wg(__global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq,
                       __global uchar *stats, ulong soff, int sdt, ulong rows, ulong cols, float thr,
                       __global uint *flags, uint tpr, __local float *red, const int mode, ulong group) {
    uint lid = get_local_id(0);
    uint t = lid & (tpr - 1);
    ulong r = group * (ulong)(WG / tpr) + lid / tpr;
    bool active = r < rows;
    ulong xb = xoff + r * ldx, qb = qoff + r * ldq;
    ulong ng = active ? cols / 8 : 0; // full groups
    bool vec = X_ALIGNED16(xb);
    xraw8 v[RPT]; // storage form (see load_raw8)
    float8 m8 = 0.0f;
    // every load before the first flag store: a store to `flags` may alias x for the compiler, so
    // a load after one waits for it (H100, f16 -> int8 SwitchBack mode, 8192 x 8192: 120.8 ->
    // 105.5 us; 4096 x 4096: 39.7 -> 35.1 us. Tried and slower: 4 groups per work-item, 126.0 us at
    // 8192 x 8192 (registers); persistent work-groups prefetching the next row, 158.7 us)
    for (uint k = 0; k < RPT; k++) {
        ulong g = t + (ulong)k * tpr;
        v[k] = g < ng ? load_raw8(x, xb + g * 8, vec) : (xraw8)(0);
    }
    for (uint k = 0; k < RPT; k++) {
        ulong g = t + (ulong)k * tpr;
        if (g < ng) m8 = fmax(m8, outlier_zero8(fabs(raw_f8(v[k])), thr, flags, g * 8));
    }
    for (ulong g = t + (ulong)RPT * tpr; g < ng; g += tpr)
        m8 = fmax(m8, outlier_zero8(fabs(load_x8v(x, xb + g * 8, vec)), thr, flags, g * 8));
    float m = hmax8(m8);
    if (active) {
        for (ulong c = ng * 8 + t; c < cols; c += tpr) {
            float a = fabs(LOADX(xb + c));
            if (is_outlier(a, thr))
                flag_col(flags, c);
            else
                m = fmax(m, a);
        }
    }
    m = wg_max(m, red, tpr);
    if (!active) return;
    if (t == 0) clbnb_store_float(stats, soff + r, sdt, m);
    const float f = row_factor(m, mode);
    const float2 rf = row_rcp(m, mode);
    for (uint k = 0; k < RPT; k++) {
        ulong g = t + (ulong)k * tpr;
        if (g < ng) store_q8(q, qb + g * 8, row_code8(raw_f8(v[k]), f, rf, thr, mode));
    }
    for (ulong g = t + (ulong)RPT * tpr; g < ng; g += tpr)
        store_q8(q, qb + g * 8, row_code8(load_x8v(x, xb + g * 8, vec), f, rf, thr, mode));
    for (ulong c = ng * 8 + t; c < cols; c += tpr) {
        float val = LOADX(xb + c);
        q[qb + c] = is_outlier(fabs(val), thr) ? (char)0 : row_code(val, f, rf, mode);
    }
}

// CPU: one work-item per row, two sequential passes, 8 elements at a time; without outliers the
// max pass runs on integer keys (no conversion).
// CPU: the maximum of |x| over the row at xb, outliers (|x| >= thr > 0) left out and, where flags
// is not NULL, their columns flagged; without a threshold on integer keys (no conversion).
inline float row_absmax_cpu(__global const uchar *x, ulong xb, ulong cols, float thr, __global uint *flags) {
    const ulong c8 = cols & ~(ulong)7;
    float m;
    if (thr > 0.0f) {
        float8 m8 = 0.0f;
        for (ulong c = 0; c < c8; c += 8) {
            const float8 a = fabs(LOADX8(xb + c));
            m8 = fmax(m8, flags ? outlier_zero8(a, thr, flags, c) : outlier_drop8(a, thr));
        }
        m = hmax8(m8);
    } else {
        uint8 k8 = 0u;
        for (ulong c = 0; c < c8; c += 8) k8 = max(k8, abs_key8(x, xb + c));
        m = key_float(hmax_u8(k8));
    }
    for (ulong c = c8; c < cols; c++) {
        const float a = fabs(LOADX(xb + c));
        if (!is_outlier(a, thr))
            m = fmax(m, a);
        else if (flags)
            flag_col(flags, c);
    }
    return m;
}

inline void rowwise_cpu(__global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq,
                        __global uchar *stats, ulong soff, int sdt, ulong rows, ulong cols, float thr,
                        __global uint *flags, const int mode) {
    ulong r = get_global_id(0);
    if (r >= rows) return;
    ulong xb = xoff + r * ldx, c8 = cols & ~(ulong)7;
    const float m = row_absmax_cpu(x, xb, cols, thr, flags);
    clbnb_store_float(stats, soff + r, sdt, m);
    const float f = row_factor(m, mode);
    const float2 rf = row_rcp(m, mode);
    ulong qb = qoff + r * ldq;
    for (ulong c = 0; c < c8; c += 8) store_q8(q, qb + c, row_code8(LOADX8(xb + c), f, rf, thr, mode));
    for (ulong c = c8; c < cols; c++) {
        float v = LOADX(xb + c);
        q[qb + c] = is_outlier(fabs(v), thr) ? (char)0 : row_code(v, f, rf, mode);
    }
}

#define ROWWISE_ARGS                                                                                                 \
    __global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq, __global uchar *stats,  \
        ulong soff, int sdt, ulong rows, ulong cols, float thr, __global uint *flags
#define ROWWISE_PASS x, xoff, ldx, q, qoff, ldq, stats, soff, sdt, rows, cols, thr, flags

// ---- outlier columns: ordered compaction of the column flags ----------------------------------
// The flags are cleared once read, so a flags workspace that starts zeroed stays zeroed between
// calls and needs no fill (the LLM.int8 layer relies on this).
// GENERIC: a work-group lists a range of columns; work-item i owns a contiguous part of it (a
// multiple of 4, read 4 flags at a time), counts its flags, an exclusive scan over the WG counts
// gives its write position.
#if !Q8_CPU
// The set flags of columns [lo, hi) in order into ocols from index base; returns their count (to
// every work-item). clear: zero the flags read (outlier_finish_wg leaves them to its last
// work-group).
inline uint compact_range_wg(__global uint *flags, ulong lo, ulong hi, __global int *ocols, ulong ooff, uint base,
                             __local uint *scan, int clear) {
    uint lid = get_local_id(0);
    ulong per = ((hi - lo + WG - 1) / WG + 3) & ~(ulong)3;
    ulong c0 = lo + min((ulong)lid * per, hi - lo), c1 = min(c0 + per, hi);
    uint n = 0;
    ulong c = c0;
    // eight 16-byte loads in flight before any is counted (H100, 8192 columns: the kernel took
    // 10 us with one at a time and a flag-by-flag second pass, 9 us like this: its time is not in
    // these loads)
    for (; c + 32 <= c1; c += 32) {
        uint4 f[8];
        for (uint u = 0; u < 8; u++) f[u] = vload4(0, flags + c + 4 * u);
        for (uint u = 0; u < 8; u++)
            n += (uint)(f[u].x != 0u) + (uint)(f[u].y != 0u) + (uint)(f[u].z != 0u) + (uint)(f[u].w != 0u);
    }
    for (; c + 4 <= c1; c += 4) {
        const uint4 f = vload4(0, flags + c);
        n += (uint)(f.x != 0u) + (uint)(f.y != 0u) + (uint)(f.z != 0u) + (uint)(f.w != 0u);
    }
    for (; c < c1; c++) n += flags[c] != 0u;
    scan[lid] = n;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 1; s < WG; s <<= 1) {
        uint v = lid >= s ? scan[lid - s] : 0u;
        barrier(CLK_LOCAL_MEM_FENCE);
        scan[lid] += v;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    uint pos = base + scan[lid] - n;
    if (n) {
        // the same batches of eight loads
        for (c = c0; c + 32 <= c1; c += 32) {
            uint f[32];
            for (uint u = 0; u < 8; u++) vstore4(vload4(0, flags + c + 4 * u), u, f);
            for (uint j = 0; j < 32; j++)
                if (f[j] != 0u) {
                    ocols[ooff + pos++] = (int)(c + j);
                    if (clear) flags[c + j] = 0u;
                }
        }
        for (; c < c1; c++)
            if (flags[c] != 0u) {
                ocols[ooff + pos++] = (int)c;
                if (clear) flags[c] = 0u;
            }
    }
    return scan[WG - 1];
}

// One work-group: every flagged column into the list, its count, the flags cleared.
inline void compact_flags_wg(__global uint *flags, ulong cols, __global int *ocols, ulong ooff, __global int *count,
                             ulong coff, __local uint *scan) {
    const uint n = compact_range_wg(flags, 0, cols, ocols, ooff, 0u, scan, 1);
    if (get_local_id(0) == 0) count[coff] = (int)n;
}

// `compact`: this launch is a single work-group (all rows), which then compacts the flags itself,
// saving the outlier_compact_wg launch (token generation: rows = 1).
#define ROWWISE_WG_KERNEL(name, mode)                                                                                \
    __kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void name(                                              \
        ROWWISE_ARGS, uint tpr, __global int *ocols, ulong ooff, __global int *count, ulong coff, int compact) {      \
        __local float red[WG];                                                                                       \
        __local uint scan[WG];                                                                                       \
        rowwise_wg(ROWWISE_PASS, tpr, red, mode, get_group_id(0));                                                   \
        if (compact) {                                                                                               \
            barrier(CLK_GLOBAL_MEM_FENCE); /* the flags of every row */                                              \
            compact_flags_wg(flags, cols, ocols, ooff, count, coff, scan);                                           \
        }                                                                                                            \
    }
ROWWISE_WG_KERNEL(rowwise_llm_wg, MODE_LLM)
ROWWISE_WG_KERNEL(rowwise_sb_wg, MODE_SB)

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void outlier_compact_wg(
    __global uint *flags, ulong cols, __global int *ocols, ulong ooff, __global int *count, ulong coff) {
    __local uint scan[WG];
    compact_flags_wg(flags, cols, ocols, ooff, count, coff, scan);
}

// Zeroes the flagged columns of q in rows [r0, r1) (bitsandbytes zeroes the outlier columns of
// every row) and counts the flags: (.x) those of columns before lo, (.y) all. The flags are read in
// batches of eight 16-byte loads per work-item, all in flight before any is tested (a store to q
// may alias them, so a load after one would wait for it).
inline uint2 zero_flagged_cols(__global const uint *flags, ulong cols, __global char *q, ulong qoff, ulong ldq,
                               ulong r0, ulong r1, ulong lo) {
    const uint lid = get_local_id(0);
    const ulong c4 = cols & ~(ulong)3;
    uint2 n = (uint2)(0u);
    for (ulong b = (ulong)lid * 4; b < c4; b += 32 * WG) {
        uint4 f[8];
        for (uint u = 0; u < 8; u++) {
            const ulong c = b + (ulong)u * 4 * WG;
            f[u] = c < c4 ? vload4(0, flags + c) : (uint4)(0u);
        }
        for (uint u = 0; u < 8; u++) {
            if (!any(f[u] != (uint4)(0u))) continue;
            const ulong c = b + (ulong)u * 4 * WG;
            const uint fv[4] = {f[u].x, f[u].y, f[u].z, f[u].w};
            for (uint e = 0; e < 4; e++)
                if (fv[e] != 0u) {
                    n += (uint2)(c + e < lo, 1u);
                    for (ulong r = r0; r < r1; r++) q[qoff + r * ldq + c + e] = 0;
                }
        }
    }
    for (ulong c = c4 + lid; c < cols; c += WG)
        if (flags[c] != 0u) {
            n += (uint2)(c < lo, 1u);
            for (ulong r = r0; r < r1; r++) q[qoff + r * ldq + c] = 0;
        }
    return n;
}

// After a row-wise launch over rows > 1 flagged the outlier columns, in one launch where there were
// two (the compaction, one work-group, then the zeroing, which waited for its list): work-group g
// zeroes the flagged columns in its rpg rows and writes the flagged columns of its segment of
// columns to their places in the ascending list (after the flags of the columns before it, which
// it counts while zeroing); the last work-group to finish (a counter in flags[cols], zero between
// calls like the flags) clears the flags and the counter, so the workspace is zero again.
// H100, threshold 6, 8 outlier columns: 4096^2 42.2-42.5 -> 39.7-40.1 us, 8192^2 111.1 -> 106.5-
// 107.0 us (the compaction 9.2 us, a 1.3 us gap and the zeroing 5.1 us -> this kernel 10.0-10.5
// us; with the whole list written by work-group 0 it took 14.6 us). Diagnostic copies (wrong
// results): without the stores to q 7.4 us, without the list 8.1-8.3, with the flags read by two
// groups only 8.2-8.3, so no one part dominates.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void outlier_finish_wg(
    __global uint *flags, ulong cols, __global char *q, ulong qoff, ulong ldq, ulong rows, ulong rpg,
    __global int *ocols, ulong ooff, __global int *count, ulong coff) {
    __local uint scan[WG];
    __local uint sums[2]; // flags of the columns before this group's segment, and of all columns
    __local int last;
    const uint lid = get_local_id(0), g = get_group_id(0), ng = get_num_groups(0);
    const ulong r0 = min(rows, (ulong)g * rpg), r1 = min(rows, r0 + rpg);
    const ulong seg = (cols + ng - 1) / ng, lo = min(cols, (ulong)g * seg), hi = min(cols, lo + seg);
    if (lid == 0) sums[0] = sums[1] = 0u;
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint2 n = zero_flagged_cols(flags, cols, q, qoff, ldq, r0, r1, lo);
    if (n.y) {
        atomic_add(&sums[0], n.x);
        atomic_add(&sums[1], n.y);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const uint before = sums[0], total = sums[1]; // the same in every work-item (and group)
    if (g == 0 && lid == 0) count[coff] = (int)total;
    if (total == 0u) return; // no flag set: nothing to list or clear, the counter untouched
    compact_range_wg(flags, lo, hi, ocols, ooff, before, scan, 0);
    barrier(CLK_GLOBAL_MEM_FENCE); // every flag this work-group reads has been read
    if (lid == 0) last = atomic_inc((volatile __global uint *)(flags + cols)) == ng - 1u;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (last) {
        for (ulong c = lid; c < cols; c += WG) flags[c] = 0u;
        if (lid == 0) flags[cols] = 0u;
    }
}
#endif
#if Q8_CPU
__kernel void rowwise_llm_cpu(ROWWISE_ARGS, uint tpr) { rowwise_cpu(ROWWISE_PASS, MODE_LLM); }
__kernel void rowwise_sb_cpu(ROWWISE_ARGS, uint tpr) { rowwise_cpu(ROWWISE_PASS, MODE_SB); }
#endif

// CPU: a single work-item walks the flags in order.
#if Q8_CPU
__kernel void outlier_compact_cpu(__global uint *flags, ulong cols, __global int *ocols, ulong ooff,
                                  __global int *count, ulong coff) {
    if (get_global_id(0) != 0) return;
    uint n = 0;
    for (ulong c = 0; c < cols; c++)
        if (flags[c] != 0u) {
            ocols[ooff + n++] = (int)c;
            flags[c] = 0u;
        }
    count[coff] = (int)n;
}
#endif

// Zeroes every element of the outlier columns (rows > 1). Grid-stride over (list index, row);
// reads the count from the device, so it costs nothing when there are no outliers.
__kernel void zero_outlier_cols(__global char *q, ulong qoff, ulong ldq, ulong rows, __global const int *ocols,
                                ulong ooff, __global const int *count, ulong coff) {
    uint n = (uint)count[coff];
    for (uint i = get_global_id(0); i < n; i += get_global_size(0)) {
        ulong c = (ulong)ocols[ooff + i];
        for (ulong r = get_global_id(1); r < rows; r += get_global_size(1)) q[qoff + r * ldq + c] = 0;
    }
}

// ================================================================================================
// Row-wise dequantization: out = fl32(fl32(q * stats) * fl32(1/127)) (both modes: the product is
// commutative and 7.874015718698502e-3f == fl32(1/127), bits 3c010204).
// ================================================================================================
// 8 values to out[i] in OUT_DTYPE: 16-byte stores where aligned.
inline void store_out8(__global uchar *out, ulong i, float8 v) {
#if OUT_DTYPE == CLBNB_DTYPE_F32
    __global float *o = (__global float *)out + i;
    if (((i * 4) & 15) == 0) {
        ((__global float4 *)o)[0] = v.lo;
        ((__global float4 *)o)[1] = v.hi;
    } else {
        vstore8(v, 0, o);
    }
#else
    ushort8 h;
#if OUT_DTYPE == CLBNB_DTYPE_F16
    vstore_half8_rte(v, 0, (__private half *)&h);
#else
    float fv[8];
    ushort hv[8];
    vstore8(v, 0, fv);
    for (int k = 0; k < 8; k++) hv[k] = clbnb_f32_to_bf16(fv[k]);
    h = vload8(0, hv);
#endif
    __global ushort *o = (__global ushort *)out + i;
    if (((i * 2) & 15) == 0)
        *(__global uint4 *)o = as_uint4(h);
    else
        vstore8(h, 0, o);
#endif
}

// GENERIC: work-item per 8 codes of a row (8-byte loads where aligned), grid-stride over
// (8-code group, row); dimension 0 runs along the row. One 8-element store per work-item keeps a
// warp's store instruction contiguous (16 codes per work-item, stored as two halves at a 32-byte
// stride, ran at 55 % of the copy bandwidth on the H100: see DQ_GENERIC_BODY in quant_blockwise.cl).
__kernel void dequant_rowwise(__global const char *q, ulong qoff, ulong ldq, __global const uchar *stats, ulong soff,
                              int sdt, __global uchar *out, ulong ooff, ulong ldo, ulong rows, ulong cols) {
    ulong ng = (cols + 7) / 8;
    for (ulong r = get_global_id(1); r < rows; r += get_global_size(1)) {
        float s = clbnb_load_float(stats, soff + r, sdt);
        ulong qb = qoff + r * ldq, ob = ooff + r * ldo;
        for (ulong g = get_global_id(0); g < ng; g += get_global_size(0)) {
            ulong c = g * 8;
            if (c + 8 <= cols) {
                char8 b = ((qb + c) & 7) == 0 ? as_char8(*(__global const uint2 *)(q + qb + c)) : vload8(0, q + qb + c);
                store_out8(out, ob + c, (convert_float8(b) * s) * 7.874015718698502e-3f);
            } else {
                for (; c < cols; c++) {
                    float v = (float)q[qb + c] * s;
                    v = v * 7.874015718698502e-3f;
                    clbnb_store_float(out, ob + c, OUT_DTYPE, v);
                }
            }
        }
    }
}

// CPU: one work-item per (row, DQ_CHUNK columns), 8 elements at a time.
#ifndef DQ_CHUNK
#define DQ_CHUNK 2048 // CPU dequantization: columns per work-item
#endif
#if Q8_CPU
__kernel void dequant_rowwise_cpu(__global const char *q, ulong qoff, ulong ldq, __global const uchar *stats,
                                  ulong soff, int sdt, __global uchar *out, ulong ooff, ulong ldo, ulong rows,
                                  ulong cols) {
    ulong r = get_global_id(1), c0 = get_global_id(0) * DQ_CHUNK;
    if (r >= rows || c0 >= cols) return;
    ulong c1 = min(c0 + DQ_CHUNK, cols), c8 = c0 + ((c1 - c0) & ~(ulong)7);
    float s = clbnb_load_float(stats, soff + r, sdt);
    ulong qb = qoff + r * ldq, ob = ooff + r * ldo;
    for (ulong c = c0; c < c8; c += 8) {
        float8 v = convert_float8(vload8(0, q + qb + c)) * s;
        v = v * 7.874015718698502e-3f;
#if OUT_DTYPE == CLBNB_DTYPE_F32
        vstore8(v, 0, (__global float *)out + ob + c);
#elif OUT_DTYPE == CLBNB_DTYPE_F16
        vstore_half8_rte(v, 0, (__global half *)out + ob + c);
#else
        for (int k = 0; k < 8; k++) clbnb_store_float(out, ob + c + k, OUT_DTYPE, v[k]);
#endif
    }
    for (ulong c = c8; c < c1; c++) {
        float v = (float)q[qb + c] * s;
        v = v * 7.874015718698502e-3f;
        clbnb_store_float(out, ob + c, OUT_DTYPE, v);
    }
}
#endif

// ================================================================================================
// Global absmax: stage 1 writes one partial maximum per work-group (GENERIC) or work-item (CPU);
// the quantize kernels reduce the partials themselves (stage 2).
// Work unit: a chunk of CHUNK elements of one row (nch = ceil(cols / CHUNK) chunks per row);
// CHUNK is a multiple of 8, so 8-element groups of a chunk are 16-byte aligned when the row is.
// ================================================================================================
#if !Q8_CPU
// Work unit u: row u / nch, columns [c0, c0 + len) of it; xb / qb its first elements of x / q.
// The 8-element groups of a unit are the UG groups lid + k * WG of each work-item.
#define UG (CHUNK / 8 / WG)
#if UG * 8 * WG != CHUNK
#error "CHUNK must be 8 * WG * UG"
#endif
typedef struct unit_span {
    ulong xb, qb, len, n8;
} unit_span;
inline unit_span unit_at(ulong u, ulong nch, ulong cols, ulong xoff, ulong ldx, ulong qoff, ulong ldq) {
    const ulong r = nch == 1 ? u : u / nch, c0 = (u - r * nch) * CHUNK; // nch 1: a unit per row, no divide
    unit_span s;
    s.len = min((ulong)CHUNK, cols - c0);
    s.n8 = s.len / 8;
    s.xb = xoff + r * ldx + c0;
    s.qb = qoff + r * ldq + c0;
    return s;
}
// The UG groups of unit s that work-item lid holds (zeros past the unit's full groups).
inline void unit_load(__global const uchar *x, unit_span s, uint lid, xraw8 *v) {
    const bool vec = X_ALIGNED16(s.xb);
    for (uint k = 0; k < UG; k++) {
        const ulong g = lid + k * WG;
        v[k] = g < s.n8 ? load_raw8(x, s.xb + g * 8, vec) : (xraw8)(0);
    }
}

// Partial `group` of `groups`: the max of |x| over units group, group + groups, ... Two units'
// loads are issued before either is reduced (2 * UG 16-byte loads in flight per work-item).
inline void absmax_partial(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch,
                           __global float *partials, ulong group, ulong groups, __local float *red) {
    const uint lid = get_local_id(0);
    float8 m8 = 0.0f;
    float m = 0.0f;
    const ulong total = rows * nch;
    for (ulong u = group; u < total; u += 2 * groups) {
        const ulong u2 = u + groups;
        const unit_span s = unit_at(u, nch, cols, xoff, ldx, 0, 0);
        unit_span s2 = s;
        s2.n8 = 0, s2.len = 0;
        if (u2 < total) s2 = unit_at(u2, nch, cols, xoff, ldx, 0, 0);
        xraw8 a[UG], b[UG];
        unit_load(x, s, lid, a);
        unit_load(x, s2, lid, b);
        for (uint k = 0; k < UG; k++) m8 = fmax(m8, fmax(fabs(raw_f8(a[k])), fabs(raw_f8(b[k]))));
        for (ulong c = s.n8 * 8 + lid; c < s.len; c += WG) m = fmax(m, fabs(LOADX(s.xb + c)));
        for (ulong c = s2.n8 * 8 + lid; c < s2.len; c += WG) m = fmax(m, fabs(LOADX(s2.xb + c)));
    }
    m = wg_max(fmax(m, hmax8(m8)), red, WG);
    if (lid == 0) partials[group] = m;
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void absmax_partial_wg(
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch, __global float *partials) {
    __local float red[WG];
    absmax_partial(x, xoff, ldx, rows, cols, nch, partials, get_group_id(0), get_num_groups(0), red);
}

// SwitchBack forward, stage 1 in one launch: the SwitchBack row-wise quantization of x (row_groups
// work-groups, no threshold) and the np absmax partials of w (same dtype, flat shape), their
// work-groups interleaved evenly so that both kinds run side by side (the row-wise groups leave
// memory idle while they reduce). H100, SwitchBack forward 4096^3: 52.2-52.7 us against 35.1 +
// 19.5 us and a 1.3 us gap for the two launches (session 10); 40.7 us since the kernels hold
// their loads in storage form (session 11).
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void rowwise_sb_with_absmax_wg(
    ROWWISE_ARGS, uint tpr, ulong row_groups, __global const uchar *w, ulong woff, ulong ldw, ulong wrows, ulong wcols,
    ulong wnch, __global float *partials, ulong np) {
    __local float red[WG];
    const ulong g = get_group_id(0), total = row_groups + np;
    const ulong p_before = g * np / total; // absmax groups among 0 .. g-1
    if ((g + 1) * np / total > p_before)
        absmax_partial(w, woff, ldw, wrows, wcols, wnch, partials, p_before, np, red);
    else
        rowwise_wg(ROWWISE_PASS, tpr, red, MODE_SB, g - p_before);
}
#endif

#if Q8_CPU
// CPU: integer keys (no conversion).
__kernel void absmax_partial_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch,
                                 __global float *partials) {
    float m = 0.0f;
    ulong total = rows * nch;
    for (ulong u = get_global_id(0); u < total; u += get_global_size(0)) {
        ulong r = u / nch, c0 = (u - r * nch) * CHUNK, c1 = min(c0 + CHUNK, cols);
        ulong xb = xoff + r * ldx;
        ulong c8 = c0 + ((c1 - c0) & ~(ulong)7);
        uint8 k8 = 0u;
        for (ulong c = c0; c < c8; c += 8) k8 = max(k8, abs_key8(x, xb + c));
        m = fmax(m, key_float(hmax_u8(k8)));
        for (ulong c = c8; c < c1; c++) m = fmax(m, fabs(LOADX(xb + c)));
    }
    partials[get_global_id(0)] = m;
}
#endif

inline float global_code_factor(float a) { return clbnb_div(1.0f, a); }
inline char global_code(float v, float inv) { return q_code(127.0f * (v * inv)); }
inline char8 global_code8(float8 v, float inv) { return CODE8(127.0f * (v * inv)); }

// GENERIC: each work-group reduces the np partials, then quantizes chunks grid-stride (16-byte
// loads, 8-byte stores). Work-group 0 writes the absmax output.
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void global_quant_wg(
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch, __global const float *partials,
    uint np, __global char *q, ulong qoff, ulong ldq, __global uchar *amax, ulong aoff, int sdt) {
    __local float red[WG];
    const uint lid = get_local_id(0);
    const ulong total = rows * nch, groups = get_num_groups(0);
    ulong u = get_group_id(0);
    // the first unit's loads go out before the partials are reduced (both latencies overlap); each
    // unit's codes are stored while the next unit's loads are in flight. Units are taken from the
    // last one down (unit `last - u`): the absmax pass read them upwards, so its latest reads may
    // still be in L2.
    const ulong last = total - 1;
    unit_span s = unit_at(last - min(u, last), nch, cols, xoff, ldx, qoff, ldq);
    xraw8 v[UG];
    unit_load(x, s, lid, v);
    float m = 0.0f;
    for (uint i = lid; i < np; i += WG) m = fmax(m, partials[i]);
    const float a = wg_max(m, red, WG);
    if (get_group_id(0) == 0 && lid == 0) clbnb_store_float(amax, aoff, sdt, a);
    const float inv = global_code_factor(a);
    for (; u < total; u += groups) {
        const ulong un = u + groups;
        unit_span sn = s;
        xraw8 vn[UG];
        if (un < total) {
            sn = unit_at(last - un, nch, cols, xoff, ldx, qoff, ldq);
            unit_load(x, sn, lid, vn);
        }
        for (uint k = 0; k < UG; k++) {
            const ulong g = lid + k * WG;
            if (g < s.n8) store_q8(q, s.qb + g * 8, global_code8(raw_f8(v[k]), inv));
        }
        for (ulong c = s.n8 * 8 + lid; c < s.len; c += WG) q[s.qb + c] = global_code(LOADX(s.xb + c), inv);
        s = sn;
        for (uint k = 0; k < UG; k++) v[k] = vn[k];
    }
}
#endif

#if Q8_CPU
__kernel void global_quant_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch,
                               __global const float *partials, uint np, __global char *q, ulong qoff, ulong ldq,
                               __global uchar *amax, ulong aoff, int sdt) {
    float a = 0.0f;
    for (uint i = 0; i < np; i++) a = fmax(a, partials[i]);
    if (get_global_id(0) == 0) clbnb_store_float(amax, aoff, sdt, a);
    float inv = global_code_factor(a);
    ulong total = rows * nch;
    for (ulong u = get_global_id(0); u < total; u += get_global_size(0)) {
        ulong r = u / nch, c0 = (u - r * nch) * CHUNK, c1 = min(c0 + CHUNK, cols);
        ulong xb = xoff + r * ldx, qb = qoff + r * ldq;
        ulong c8 = c0 + ((c1 - c0) & ~(ulong)7);
        for (ulong c = c0; c < c8; c += 8) store_q8(q, qb + c, q_code8(127.0f * (LOADX8(xb + c) * inv)));
        for (ulong c = c8; c < c1; c++) q[qb + c] = global_code(LOADX(xb + c), inv);
    }
}
#endif

// ================================================================================================
// Column maxima: partials[seg * cols + c] = max over rows [seg*rps, (seg+1)*rps) of |x[r,c]|,
// outlier elements (|x| >= thr > 0) counted as 0 and their columns flagged (int8_double_quant);
// thr = 0 (flags unused) for columnwise.
// colmax_reduce then folds the segments into partials[c] (the stage-2 kernels read one value).
// ================================================================================================
// GENERIC: work-group of CG 8-column groups x (WG / CG) row lanes per (column block, row segment):
// each work-item keeps 8 column maxima (16-byte loads along the row), then a local reduction.
#define CG 32
#define CH (WG / CG)
#define COLMAX_ARGS                                                                                                  \
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong rps, float thr,                    \
        __global float *partials
#define COLMAX_PASS x, xoff, ldx, rows, cols, rps, thr, partials
#if !Q8_CPU
// flag_outliers (a constant): also flag the outlier columns (colmax_flag_*, int8_double_quant with a
// threshold); the plain kernels have no flag stores at all. H100, column-wise quantize 8192 x 8192:
// one kernel for both, its loop split on thr (no stores in the thr = 0 one), 173.6-173.8 us against
// 165.4-165.6 like this (session 15).
inline void colmax_body(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong rps, float thr,
                        __global float *partials, __global uint *flags, const int flag_outliers,
                        __local float8 (*red)[CG]) {
    uint tx = get_local_id(0), ty = get_local_id(1);
    ulong c = (get_group_id(0) * CG + tx) * 8, seg = get_group_id(1);
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    float8 m = 0.0f;
    if (c + 8 <= cols) {
        for (ulong r = r0 + ty; r < r1; r += CH) {
            ulong xb = xoff + r * ldx;
            float8 a = fabs(load_x8v(x, xb + c, X_ALIGNED16(xb)));
            if (thr > 0.0f) a = flag_outliers ? outlier_zero8(a, thr, flags, c) : outlier_drop8(a, thr);
            m = fmax(m, a);
        }
    } else if (c < cols) {
        float mv[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        for (ulong r = r0 + ty; r < r1; r += CH)
            for (uint k = 0; c + k < cols; k++) {
                float a = fabs(LOADX(xoff + r * ldx + c + k));
                if (!is_outlier(a, thr))
                    mv[k] = fmax(mv[k], a);
                else if (flag_outliers)
                    flag_col(flags, c + k);
            }
        m = vload8(0, mv);
    }
    red[ty][tx] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = CH / 2; s > 0; s >>= 1) {
        if (ty < s) red[ty][tx] = fmax(red[ty][tx], red[ty + s][tx]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (ty == 0 && c < cols) {
        float mv[8];
        vstore8(red[0][tx], 0, mv);
        for (uint k = 0; k < 8 && c + k < cols; k++) partials[seg * cols + c + k] = mv[k];
    }
}

__kernel __attribute__((reqd_work_group_size(CG, CH, 1))) void colmax_wg(COLMAX_ARGS) {
    __local float8 red[CH][CG];
    colmax_body(COLMAX_PASS, NULL, 0, red);
}
__kernel __attribute__((reqd_work_group_size(CG, CH, 1))) void colmax_flag_wg(COLMAX_ARGS, __global uint *flags) {
    __local float8 red[CH][CG];
    colmax_body(COLMAX_PASS, flags, 1, red);
}
#endif

#if Q8_CPU
// CPU: one work-item per row segment, all columns: streams its rows, keeping the running maxima
// in its (cache-resident) partials row.
inline void colmax_cpu_body(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong rps,
                            float thr, __global float *partials, __global uint *flags, const int flag_outliers) {
    ulong seg = get_global_id(0);
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    if (r0 >= rows) return;
    __global float *p = partials + seg * cols;
    ulong c8 = cols & ~(ulong)7;
    for (ulong c = 0; c < cols; c++) p[c] = 0.0f;
    for (ulong r = r0; r < r1; r++) {
        ulong xb = xoff + r * ldx;
        for (ulong c = 0; c < c8; c += 8) {
            float8 a = fabs(LOADX8(xb + c));
            if (thr > 0.0f) a = flag_outliers ? outlier_zero8(a, thr, flags, c) : outlier_drop8(a, thr);
            vstore8(fmax(vload8(0, p + c), a), 0, p + c);
        }
        for (ulong c = c8; c < cols; c++) {
            float a = fabs(LOADX(xb + c));
            if (!is_outlier(a, thr))
                p[c] = fmax(p[c], a);
            else if (flag_outliers)
                flag_col(flags, c);
        }
    }
}

__kernel void colmax_cpu(COLMAX_ARGS) { colmax_cpu_body(COLMAX_PASS, NULL, 0); }
__kernel void colmax_flag_cpu(COLMAX_ARGS, __global uint *flags) { colmax_cpu_body(COLMAX_PASS, flags, 1); }
#endif

inline float col_reduce(__global const float *partials, ulong nseg, ulong cols, ulong c) {
    float m = 0.0f;
    for (ulong s = 0; s < nseg; s++) m = fmax(m, partials[s * cols + c]);
    return m;
}

// partials[c] = max over the nseg segments (in place: column c is read and written by one
// work-item).
__kernel void colmax_reduce(__global float *partials, ulong nseg, ulong cols) {
    for (ulong c = get_global_id(0); c < cols; c += get_global_size(0)) partials[c] = col_reduce(partials, nseg, cols, c);
}

// ---- int8_double_quant column part (not transposed) ------------------------------------------
// out_col = rint(fl32(RN_in(x * 127)) / col_stats[c]); outliers 0. RN_in: rounding to x's dtype
// (fp16 for the f16 inputs bitsandbytes takes, as PyTorch's A.mul(127.0) rounds).
// Round to the nearest fp16 value (ties to even), returned as float: a round trip through a half
// in private memory (IEEE conversions: overflow -> +-Inf, NaN stays NaN). H100, int8_double_quant
// 8192 x 8192 f16 (session 15): 283.4 -> 271.5 us against rint at the fp16 quantum of v's binade
// (A/B on a version dividing through column reciprocals, since dropped); the rounding left out
// altogether, as a diagnostic, 220.7-221.2 against 222.2-222.5 us.
inline float round_to_f16(float v) {
    ushort h;
    vstore_half_rte(v, 0, (__private half *)&h);
    return vload_half(0, (__private const half *)&h);
}

inline float round_in_dtype(float v) {
#if IN_DTYPE == CLBNB_DTYPE_F16
    return round_to_f16(v);
#elif IN_DTYPE == CLBNB_DTYPE_BF16
    return clbnb_bf16_to_f32(clbnb_f32_to_bf16(v));
#else
    return v;
#endif
}

// round_in_dtype on 8 lanes. fp16, GPUs: a half8 round trip (H100, int8_double_quant 8192 x 8192
// f16, its column code on 8 lanes with this: 206.9-207.4 us; with the rint below: 220.9-221.3;
// the scalar loop before: 213.6-214.3; session 16). fp16, CPUs: the same binade-quantum rint by
// the 1.5 * 2^23 trick, exact here since |v * scale| <= 2048.
inline float8 round_in_dtype8(float8 v) {
#if IN_DTYPE == CLBNB_DTYPE_F16 && !Q8_CPU
    ushort8 h;
    vstore_half8_rte(v, 0, (__private half *)&h);
    return vload_half8(0, (__private const half *)&h);
#elif IN_DTYPE == CLBNB_DTYPE_F16
    float8 a = fabs(v);
    uint8 e = max(as_uint8(a) >> 23, (uint8)113u);
    float8 t = v * as_float8((264u - e) << 23);
    float8 r = ((t + 12582912.0f) - 12582912.0f) * as_float8((e - 10u) << 23);
    r = select(r, copysign((float8)INFINITY, v), a >= 65520.0f);
    return select(r, v, isnan(v));
#elif IN_DTYPE == CLBNB_DTYPE_BF16
    uint8 u = as_uint8(v);
    uint8 rr = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    return select(as_float8(rr), v, isnan(v));
#else
    return v;
#endif
}

// Code of the column part (outliers 0) of one element, m its column's maximum.
inline char dq_col_code(float v, float m, float thr) {
    return is_outlier(fabs(v), thr) ? (char)0 : q_code(clbnb_div(round_in_dtype(v * 127.0f), m));
}

// The same for 8 elements of one row (m8: their columns' maxima). The IEEE division per element
// stays: through column reciprocals (clbnb_div_rcp, the reciprocals and scales written by the
// fold, loaded per element like m) this pass was slower on the H100, 214 -> 234.5-246.8 us at
// 8192 x 8192 f16 (session 16; 283 us in session 15 with a fallback branch per element).
inline char8 dq_col_code8(float8 v, float8 m8, float thr) {
    char8 c = CODE8(div8(round_in_dtype8(v * 127.0f), m8));
    if (thr > 0.0f) c = select(c, (char8)0, convert_char8(fabs(v) >= thr));
    return c;
}

// Both codes of one element v of a row at column c (the rows' tails past the last group of 8); f:
// the row factor, m: the column maxima; elements of flagged columns get row code 0.
inline void dq_store1(float v, ulong c, float f, float thr, __global const uint *flags, __global const float *m,
                      __global char *q, ulong qi, __global char *qc, ulong qci) {
    q[qi] = thr > 0.0f && flags[c] != 0u ? (char)0 : row_code(v, f, (float2)(0.0f), MODE_LLM);
    qc[qci] = dq_col_code(v, m[c], thr);
}

// ---- int8_double_quant, second pass: both parts from one read of x -----------------------------
// After the column pass (colmax_* with the threshold: column maxima without the outliers, the
// outlier columns flagged, the segments folded into m), each row: the row part as rowwise_wg /
// rowwise_cpu in LLM.int8 mode (f32 row stats, outliers left out of the maximum) with every element
// of a flagged column coded 0 (what zero_outlier_cols does after the row-wise kernels), and the
// column part against m. The outlier compaction runs after this pass: it clears the flags it reads.
// H100, 8192 x 8192 f16 without threshold: 208.4-208.6 us with the column code on 8 lanes
// (dq_col_code8; 213.5-214.0 with a scalar loop per element), against 269 us for the row-wise
// kernel, the column pass and a third pass for the column part (session 14). Session 15: the
// column part's code cost ~66 us: this pass writing the row codes to both outputs instead cut the
// whole from 222.2-222.5 to 156.5-156.8 us (a diagnostic); its column maxima loaded before the row
// reduction (registers) made it slower, 266-284 us. Session 16: the division is the largest part
// (a product in its place, as a diagnostic: 195 against 221 us on a version with the rint
// rounding), but reciprocals per column loaded from memory cost more than it saves (dq_col_code8).

#if !Q8_CPU
// 8 elements of one row from column c (a multiple of 8): both codes, 8-byte stores where aligned.
inline void dq_store8(float8 v, ulong c, float f, float thr, __global const uint *flags, __global const float *m,
                      __global char *q, ulong qi, __global char *qc, ulong qci) {
    char8 rc = CODE8(v * f);
    if (thr > 0.0f) rc = select(rc, (char8)0, convert_char8(vload8(0, flags + c) != 0u));
    store_q8(q, qi, rc);
    store_q8(qc, qci, dq_col_code8(v, vload8(0, m + c), thr));
}

// GENERIC: the shape of rowwise_wg (tpr work-items per row, RPT groups of 8 per work-item held in
// registers from the max pass to the code pass). Work-group 0 writes col_stats.
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void dq_fused_wg(
    __global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq, __global float *rstats,
    ulong soff, ulong rows, ulong cols, float thr, __global const uint *flags, uint tpr, __global const float *m,
    __global char *qc, ulong qcoff, ulong ldqc, __global float *cstats, ulong csoff) {
    __local float red[WG];
    const uint lid = get_local_id(0), t = lid & (tpr - 1);
    if (get_group_id(0) == 0)
        for (ulong c = lid; c < cols; c += WG) cstats[csoff + c] = m[c];
    const ulong r = get_group_id(0) * (ulong)(WG / tpr) + lid / tpr;
    const bool active = r < rows;
    const ulong xb = xoff + r * ldx, qb = qoff + r * ldq, qcb = qcoff + r * ldqc;
    const ulong ng = active ? cols / 8 : 0; // full groups
    const bool vec = X_ALIGNED16(xb);
    xraw8 v[RPT];
    float8 m8 = 0.0f;
    for (uint k = 0; k < RPT; k++) {
        const ulong g = t + (ulong)k * tpr;
        v[k] = g < ng ? load_raw8(x, xb + g * 8, vec) : (xraw8)(0);
    }
    for (uint k = 0; k < RPT; k++) {
        const ulong g = t + (ulong)k * tpr;
        if (g < ng) m8 = fmax(m8, outlier_drop8(fabs(raw_f8(v[k])), thr));
    }
    for (ulong g = t + (ulong)RPT * tpr; g < ng; g += tpr)
        m8 = fmax(m8, outlier_drop8(fabs(load_x8v(x, xb + g * 8, vec)), thr));
    float mr = hmax8(m8);
    if (active)
        for (ulong c = ng * 8 + t; c < cols; c += tpr) {
            const float a = fabs(LOADX(xb + c));
            if (!is_outlier(a, thr)) mr = fmax(mr, a);
        }
    mr = wg_max(mr, red, tpr);
    if (!active) return;
    if (t == 0) rstats[soff + r] = mr;
    const float f = row_factor(mr, MODE_LLM);
    for (uint k = 0; k < RPT; k++) {
        const ulong g = t + (ulong)k * tpr;
        if (g < ng) dq_store8(raw_f8(v[k]), g * 8, f, thr, flags, m, q, qb + g * 8, qc, qcb + g * 8);
    }
    for (ulong g = t + (ulong)RPT * tpr; g < ng; g += tpr)
        dq_store8(load_x8v(x, xb + g * 8, vec), g * 8, f, thr, flags, m, q, qb + g * 8, qc, qcb + g * 8);
    for (ulong c = ng * 8 + t; c < cols; c += tpr)
        dq_store1(LOADX(xb + c), c, f, thr, flags, m, q, qb + c, qc, qcb + c);
}
#endif

#if Q8_CPU
// CPU: one work-item per block of rps rows; each row twice (the max pass, then both codes, 8 lanes
// at a time; the row is in cache the second time). Work-item 0 writes col_stats.
__kernel void dq_fused_cpu(__global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq,
                           __global float *rstats, ulong soff, ulong rows, ulong cols, float thr,
                           __global const uint *flags, ulong rps, __global const float *m, __global char *qc,
                           ulong qcoff, ulong ldqc, __global float *cstats, ulong csoff) {
    const ulong seg = get_global_id(0);
    const ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    if (r0 >= rows) return;
    if (seg == 0)
        for (ulong c = 0; c < cols; c++) cstats[csoff + c] = m[c];
    const ulong c8 = cols & ~(ulong)7;
    const bool outl = thr > 0.0f;
    for (ulong r = r0; r < r1; r++) {
        const ulong xb = xoff + r * ldx, qb = qoff + r * ldq, qcb = qcoff + r * ldqc;
        const float mr = row_absmax_cpu(x, xb, cols, thr, NULL); // the column pass flagged the outliers
        rstats[soff + r] = mr;
        const float f = row_factor(mr, MODE_LLM);
        for (ulong c = 0; c < c8; c += 8) {
            const float8 v = LOADX8(xb + c);
            char8 rc = CODE8(v * f);
            if (outl) rc = select(rc, (char8)0, convert_char8(vload8(0, flags + c) != 0u));
            store_q8(q, qb + c, rc);
            store_q8(qc, qcb + c, dq_col_code8(v, vload8(0, m + c), thr));
        }
        for (ulong c = c8; c < cols; c++) dq_store1(LOADX(xb + c), c, f, thr, flags, m, q, qb + c, qc, qcb + c);
    }
}
#endif

// ================================================================================================
// Transposed quantization: qT[c, r] = code(x[r, c]).
//   global (quantize_global transpose, kind 0): code = rint(127 * (x * (1/a))), a = max of np
//   partials.
//   col (columnwise, kind 1): code = rint(127 * (x / m_c)), m_c = partials[c] (reduced).
// ================================================================================================
#define TP (TILE + 4) // local tile row pitch (bytes): keeps 4-byte alignment, spreads banks

// The TR_K groups of 8 (storage form) that work-item (lr, lc) codes in tile (tr, tc): rows
// lr + i * WG / 8, columns lc .. lc + 7 of the tile; groups past the rows or the last full group
// of columns are not loaded (the coding loop reads partial groups element by element).
inline void transpose_tile_load(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong tr,
                                ulong tc, uint lr, uint lc, xraw8 *raw) {
    const ulong c = tc * TILE + lc;
    for (uint i = 0; i < TILE / (WG / 8); i++) {
        const ulong r = tr * TILE + lr + i * (WG / 8);
        const ulong xb = xoff + r * ldx;
        raw[i] = r < rows && c + 8 <= cols ? load_raw8(x, xb + c, X_ALIGNED16(xb)) : (xraw8)(0);
    }
}

// GENERIC: TILE x TILE tiles (TILE = 64, WG = 256). Loads: 8 work-items per x row, 8 elements
// each (16-byte loads where aligned); the codes go transposed into local memory; stores: 4
// work-items per qT row, 16 bytes each (one 16-byte store where aligned). Grid-stride over tiles.
// The column kind divides through the tile columns' reciprocals (clbnb_div_rcp, in local memory
// with the maxima): H100, 8192 x 8192 f16, 165.1-165.6 -> 151.6-151.8 us against the IEEE division
// per element (4096 x 4096: 56.8-57.1 -> 53.5-53.8; session 16). The CPU kernel keeps the division
// (div8): the reciprocals measured no faster on PoCL.
inline void transpose_wg(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                         __global const float *partials, ulong np, __global char *q, ulong qoff, ulong ldq,
                         __global uchar *stats, ulong soff, int sdt, __local uchar *tile, __local float *fac,
                         __local float *rfac, __local float *sfac, __local float *red, const int kind) {
    uint lid = get_local_id(0);
    uint lc = (lid % 8) * 8, lr = lid / 8;  // load: tile column group, first tile row
    uint oc = lid / 4, orr = (lid % 4) * 16; // store: tile column (= qT row), first tile row
    ulong ntr = (rows + TILE - 1) / TILE, ntc = (cols + TILE - 1) / TILE;
    // each work-item's TR_K groups of 8 of a tile (rows lr, lr + WG / 8, ..), loaded in storage
    // form one tile ahead: the next tile's loads are in flight while this one is coded and stored,
    // the first tile's while the global absmax is reduced
#define TR_K (TILE / (WG / 8))
    xraw8 raw[TR_K];
    ulong u = get_group_id(0);
    if (u < ntr * ntc) transpose_tile_load(x, xoff, ldx, rows, cols, u / ntc, u % ntc, lr, lc, raw);
    float inv = 0.0f;
    if (kind == 0) {
        float m = 0.0f;
        for (uint i = lid; i < np; i += WG) m = fmax(m, partials[i]);
        float a = wg_max(m, red, WG);
        if (get_group_id(0) == 0 && lid == 0) clbnb_store_float(stats, soff, sdt, a);
        inv = global_code_factor(a);
    }
    for (; u < ntr * ntc; u += get_num_groups(0)) {
        ulong tr = u / ntc, tc = u - tr * ntc;
        ulong r0 = tr * TILE, c0 = tc * TILE;
        if (kind == 1 && lid < TILE) {
            ulong c = c0 + lid;
            float f = 1.0f;
            if (c < cols) {
                f = partials[c];
                if (tr == 0) clbnb_store_float(stats, soff + c, sdt, f);
            }
            fac[lid] = f;
            rfac[lid] = clbnb_rcp_for_div(f);
            sfac[lid] = clbnb_div_scale(f);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint i = 0; i < TR_K; i++) {
            const uint k = lr + i * (WG / 8);
            ulong r = r0 + k, c = c0 + lc;
            if (r >= rows) break;
            ulong xb = xoff + r * ldx;
            uchar codes[8];
            if (c + 8 <= cols) {
                float8 v = raw_f8(raw[i]);
#if DIV_SCALED
                const float8 s8 = vload8(0, sfac + lc);
#else
                const float8 s8 = 1.0f;
#endif
                char8 k8 = kind == 0 ? global_code8(v, inv)
                                     : CODE8(127.0f * div_rcp8(v, vload8(0, fac + lc), vload8(0, rfac + lc), s8));
                vstore8(as_uchar8(k8), 0, codes);
            } else {
                for (uint j = 0; j < 8; j++) {
                    float v = c + j < cols ? LOADX(xb + c + j) : 0.0f;
                    codes[j] = (uchar)(kind == 0 ? global_code(v, inv)
                                                 : q_code(127.0f * clbnb_div_rcp(v, fac[lc + j], rfac[lc + j],
                                                                                 sfac[lc + j])));
                }
            }
            for (uint j = 0; j < 8; j++) tile[(lc + j) * TP + k] = codes[j];
        }
        const ulong un = u + get_num_groups(0);
        if (un < ntr * ntc) transpose_tile_load(x, xoff, ldx, rows, cols, un / ntc, un % ntc, lr, lc, raw);
        barrier(CLK_LOCAL_MEM_FENCE);
        {
            ulong c = c0 + oc, r = r0 + orr;
            if (c < cols && r < rows) {
                __global char *dst = q + qoff + c * ldq + r;
                __local uchar *src = tile + oc * TP + orr;
                if (r + 16 <= rows) {
                    uint4 w = (uint4)(*(__local uint *)src, *(__local uint *)(src + 4), *(__local uint *)(src + 8),
                                      *(__local uint *)(src + 12));
                    if (((qoff + c * ldq + r) & 15) == 0)
                        *(__global uint4 *)dst = w;
                    else
                        vstore16(as_char16(w), 0, dst);
                } else {
                    for (uint j = 0; r + j < rows; j++) dst[j] = (char)src[j];
                }
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// CPU: one work-item per (16 columns, block of rps rows, rps a multiple of 16): 16 x 16 blocks,
// codes by rows of 16, transposed in private memory, stored as rows of 16 bytes.
inline void transpose_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                          __global const float *partials, ulong np, __global char *q, ulong qoff, ulong ldq,
                          __global uchar *stats, ulong soff, int sdt, ulong rps, const int kind) {
    ulong c0 = get_global_id(0) * 16, seg = get_global_id(1);
    if (c0 >= cols) return;
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    if (r0 >= rows) return;
    float fs[16];
    if (kind == 0) {
        float a = 0.0f;
        for (ulong i = 0; i < np; i++) a = fmax(a, partials[i]);
        if (c0 == 0 && seg == 0) clbnb_store_float(stats, soff, sdt, a);
        float inv = global_code_factor(a);
        for (int k = 0; k < 16; k++) fs[k] = inv;
    } else {
        for (int k = 0; k < 16; k++) {
            fs[k] = c0 + k < cols ? partials[c0 + k] : 1.0f;
            if (seg == 0 && c0 + k < cols) clbnb_store_float(stats, soff + c0 + k, sdt, fs[k]);
        }
    }
    float8 f0 = vload8(0, fs), f1 = vload8(1, fs);
    ulong r = r0;
    if (c0 + 16 <= cols) {
        for (; r + 16 <= r1; r += 16) {
            uchar t[16][16];
            for (int i = 0; i < 16; i++) {
                ulong xb = xoff + (r + i) * ldx + c0;
                float8 v0 = LOADX8(xb), v1 = LOADX8(xb + 8);
                char8 k0 = kind == 0 ? q_code8(127.0f * (v0 * f0)) : q_code8(127.0f * div8(v0, f0));
                char8 k1 = kind == 0 ? q_code8(127.0f * (v1 * f1)) : q_code8(127.0f * div8(v1, f1));
                vstore8(as_uchar8(k0), 0, t[i]);
                vstore8(as_uchar8(k1), 1, t[i]);
            }
            for (int j = 0; j < 16; j++) {
                uchar16 o = (uchar16)(t[0][j], t[1][j], t[2][j], t[3][j], t[4][j], t[5][j], t[6][j], t[7][j], t[8][j],
                                      t[9][j], t[10][j], t[11][j], t[12][j], t[13][j], t[14][j], t[15][j]);
                store_q16(q, qoff + (c0 + j) * ldq + r, as_char16(o));
            }
        }
    }
    for (ulong c = c0; c < min(c0 + 16, cols); c++) {
        float fc = fs[c - c0];
        for (ulong rr = r; rr < r1; rr++) {
            float v = LOADX(xoff + rr * ldx + c);
            q[qoff + c * ldq + rr] = kind == 0 ? global_code(v, fc) : q_code(127.0f * clbnb_div(v, fc));
        }
    }
}

#define TRANSPOSE_ARGS                                                                                               \
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, __global const float *partials, ulong np, \
        __global char *q, ulong qoff, ulong ldq, __global uchar *stats, ulong soff, int sdt
#define TRANSPOSE_PASS x, xoff, ldx, rows, cols, partials, np, q, qoff, ldq, stats, soff, sdt
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void transpose_global_wg(TRANSPOSE_ARGS, ulong rps) {
    __local uint tile[TILE * TP / 4];
    __local float fac[TILE], rfac[TILE], sfac[TILE], red[WG];
    transpose_wg(TRANSPOSE_PASS, (__local uchar *)tile, fac, rfac, sfac, red, 0);
}
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void transpose_col_wg(TRANSPOSE_ARGS, ulong rps) {
    __local uint tile[TILE * TP / 4];
    __local float fac[TILE], rfac[TILE], sfac[TILE], red[WG];
    transpose_wg(TRANSPOSE_PASS, (__local uchar *)tile, fac, rfac, sfac, red, 1);
}
#endif
#if Q8_CPU
__kernel void transpose_global_cpu(TRANSPOSE_ARGS, ulong rps) { transpose_cpu(TRANSPOSE_PASS, rps, 0); }
__kernel void transpose_col_cpu(TRANSPOSE_ARGS, ulong rps) { transpose_cpu(TRANSPOSE_PASS, rps, 1); }
#endif
