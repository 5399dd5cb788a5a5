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
#define TILE 64 // GENERIC transpose tile (TILE x TILE elements, WG work-items)
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
inline float row_factor(float m, const int mode) { return mode == MODE_LLM ? clbnb_div(127.0f, m) : m; }
inline char row_code(float v, float f, const int mode) {
    return mode == MODE_LLM ? q_code(v * f) : q_code(127.0f * clbnb_div(v, f));
}

inline bool is_outlier(float a, float thr) { return thr > 0.0f && a >= thr; }

// Marks column c as holding an outlier (rare: only outlier elements get here).
inline void flag_col(__global uint *flags, ulong c) { atomic_or((volatile __global uint *)(flags + c), 1u); }

// ================================================================================================
// Row-wise quantization
// ================================================================================================
// GENERIC: WG/tpr rows per work-group, tpr work-items per row (power of two <= WG):
// local-memory max, then quantize the (cache-resident) row. Outlier elements set flags[c] (zeroed
// before) and get code 0. sdt: dtype of the stats (f32 / f16).
inline void rowwise_wg(__global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq,
                       __global uchar *stats, ulong soff, int sdt, ulong rows, ulong cols, float thr,
                       __global uint *flags, uint tpr, __local float *red, const int mode) {
    uint lid = get_local_id(0);
    uint t = lid & (tpr - 1);
    ulong r = get_group_id(0) * (ulong)(WG / tpr) + lid / tpr;
    bool active = r < rows;
    ulong xb = xoff + r * ldx;
    float m = 0.0f;
    if (active) {
        for (ulong c = t; c < cols; c += tpr) {
            float a = fabs(LOADX(xb + c));
            if (is_outlier(a, thr))
                flag_col(flags, c);
            else
                m = fmax(m, a);
        }
    }
    red[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = tpr / 2; s > 0; s >>= 1) {
        if (t < s) red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (!active) return;
    m = red[lid - t];
    if (t == 0) clbnb_store_float(stats, soff + r, sdt, m);
    float f = row_factor(m, mode);
    ulong qb = qoff + r * ldq;
    for (ulong c = t; c < cols; c += tpr) {
        float v = LOADX(xb + c);
        q[qb + c] = is_outlier(fabs(v), thr) ? (char)0 : row_code(v, f, mode);
    }
}

// CPU: one work-item per row, two sequential passes, 8 elements at a time.
inline void rowwise_cpu(__global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq,
                        __global uchar *stats, ulong soff, int sdt, ulong rows, ulong cols, float thr,
                        __global uint *flags, const int mode) {
    ulong r = get_global_id(0);
    if (r >= rows) return;
    ulong xb = xoff + r * ldx, c8 = cols & ~(ulong)7;
    bool outl = thr > 0.0f;
    float8 m8 = 0.0f;
    for (ulong c = 0; c < c8; c += 8) {
        float8 a = fabs(LOADX8(xb + c));
        if (outl) {
            int8 o = a >= thr;
            if (any(o)) {
                for (int k = 0; k < 8; k++)
                    if (is_outlier(a[k], thr)) flag_col(flags, c + k);
                a = select(a, (float8)0.0f, o);
            }
        }
        m8 = fmax(m8, a);
    }
    float m = hmax8(m8);
    for (ulong c = c8; c < cols; c++) {
        float a = fabs(LOADX(xb + c));
        if (is_outlier(a, thr))
            flag_col(flags, c);
        else
            m = fmax(m, a);
    }
    clbnb_store_float(stats, soff + r, sdt, m);
    float f = row_factor(m, mode);
    ulong qb = qoff + r * ldq;
    for (ulong c = 0; c < c8; c += 8) {
        float8 v = LOADX8(xb + c);
        char8 code = mode == MODE_LLM ? q_code8(v * f) : q_code8(127.0f * div8(v, (float8)f));
        if (outl) code = select(code, (char8)0, convert_char8(fabs(v) >= thr));
        vstore8(code, 0, q + qb + c);
    }
    for (ulong c = c8; c < cols; c++) {
        float v = LOADX(xb + c);
        q[qb + c] = is_outlier(fabs(v), thr) ? (char)0 : row_code(v, f, mode);
    }
}

#define ROWWISE_ARGS                                                                                                 \
    __global const uchar *x, ulong xoff, ulong ldx, __global char *q, ulong qoff, ulong ldq, __global uchar *stats,  \
        ulong soff, int sdt, ulong rows, ulong cols, float thr, __global uint *flags
#define ROWWISE_PASS x, xoff, ldx, q, qoff, ldq, stats, soff, sdt, rows, cols, thr, flags
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void rowwise_llm_wg(ROWWISE_ARGS, uint tpr) {
    __local float red[WG];
    rowwise_wg(ROWWISE_PASS, tpr, red, MODE_LLM);
}
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void rowwise_sb_wg(ROWWISE_ARGS, uint tpr) {
    __local float red[WG];
    rowwise_wg(ROWWISE_PASS, tpr, red, MODE_SB);
}
#endif
#if Q8_CPU
__kernel void rowwise_llm_cpu(ROWWISE_ARGS, uint tpr) { rowwise_cpu(ROWWISE_PASS, MODE_LLM); }
__kernel void rowwise_sb_cpu(ROWWISE_ARGS, uint tpr) { rowwise_cpu(ROWWISE_PASS, MODE_SB); }
#endif

// ---- outlier columns: ordered compaction of the column flags ----------------------------------
// GENERIC: one work-group; work-item i owns a contiguous range of columns, counts its flags, an
// exclusive scan over the WG counts gives its write position.
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void outlier_compact_wg(
    __global const uint *flags, ulong cols, __global int *ocols, ulong ooff, __global int *count, ulong coff) {
    __local uint scan[WG];
    uint lid = get_local_id(0);
    ulong per = (cols + WG - 1) / WG;
    ulong c0 = min((ulong)lid * per, cols), c1 = min(c0 + per, cols);
    uint n = 0;
    for (ulong c = c0; c < c1; c++) n += flags[c] != 0u;
    scan[lid] = n;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = 1; s < WG; s <<= 1) {
        uint v = lid >= s ? scan[lid - s] : 0u;
        barrier(CLK_LOCAL_MEM_FENCE);
        scan[lid] += v;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    uint pos = scan[lid] - n;
    for (ulong c = c0; c < c1; c++)
        if (flags[c] != 0u) ocols[ooff + pos++] = (int)c;
    if (lid == WG - 1) count[coff] = (int)scan[WG - 1];
}
#endif

// CPU: a single work-item walks the flags in order.
#if Q8_CPU
__kernel void outlier_compact_cpu(__global const uint *flags, ulong cols, __global int *ocols, ulong ooff,
                                  __global int *count, ulong coff) {
    if (get_global_id(0) != 0) return;
    uint n = 0;
    for (ulong c = 0; c < cols; c++)
        if (flags[c] != 0u) ocols[ooff + n++] = (int)c;
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
// Grid-stride over (column, row); dimension 0 runs along the row (coalesced / vectorised).
// ================================================================================================
__kernel void dequant_rowwise(__global const char *q, ulong qoff, ulong ldq, __global const uchar *stats, ulong soff,
                              int sdt, __global uchar *out, ulong ooff, ulong ldo, ulong rows, ulong cols) {
    for (ulong r = get_global_id(1); r < rows; r += get_global_size(1)) {
        float s = clbnb_load_float(stats, soff + r, sdt);
        for (ulong c = get_global_id(0); c < cols; c += get_global_size(0)) {
            float v = (float)q[qoff + r * ldq + c] * s;
            v = v * 7.874015718698502e-3f;
            clbnb_store_float(out, ooff + r * ldo + c, OUT_DTYPE, v);
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
// Work unit: a chunk of CHUNK elements of one row (nch = ceil(cols / CHUNK) chunks per row).
// ================================================================================================
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void absmax_partial_wg(
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch, __global float *partials) {
    __local float red[WG];
    uint lid = get_local_id(0);
    float m = 0.0f;
    ulong total = rows * nch;
    for (ulong u = get_group_id(0); u < total; u += get_num_groups(0)) {
        ulong r = u / nch, c0 = (u - r * nch) * CHUNK, c1 = min(c0 + CHUNK, cols);
        ulong xb = xoff + r * ldx;
        for (ulong c = c0 + lid; c < c1; c += WG) m = fmax(m, fabs(LOADX(xb + c)));
    }
    red[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) partials[get_group_id(0)] = red[0];
}
#endif

#if Q8_CPU
__kernel void absmax_partial_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch,
                                 __global float *partials) {
    float m = 0.0f;
    ulong total = rows * nch;
    for (ulong u = get_global_id(0); u < total; u += get_global_size(0)) {
        ulong r = u / nch, c0 = (u - r * nch) * CHUNK, c1 = min(c0 + CHUNK, cols);
        ulong xb = xoff + r * ldx;
        ulong c8 = c0 + ((c1 - c0) & ~(ulong)7);
        float8 m8 = 0.0f;
        for (ulong c = c0; c < c8; c += 8) m8 = fmax(m8, fabs(LOADX8(xb + c)));
        m = fmax(m, hmax8(m8));
        for (ulong c = c8; c < c1; c++) m = fmax(m, fabs(LOADX(xb + c)));
    }
    partials[get_global_id(0)] = m;
}
#endif

inline float global_code_factor(float a) { return clbnb_div(1.0f, a); }
inline char global_code(float v, float inv) { return q_code(127.0f * (v * inv)); }

// GENERIC: each work-group reduces the np partials, then quantizes chunks grid-stride.
// Work-group 0 writes the absmax output.
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void global_quant_wg(
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong nch, __global const float *partials,
    uint np, __global char *q, ulong qoff, ulong ldq, __global uchar *amax, ulong aoff, int sdt) {
    __local float red[WG];
    uint lid = get_local_id(0);
    float m = 0.0f;
    for (uint i = lid; i < np; i += WG) m = fmax(m, partials[i]);
    red[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) red[lid] = fmax(red[lid], red[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float a = red[0];
    if (get_group_id(0) == 0 && lid == 0) clbnb_store_float(amax, aoff, sdt, a);
    float inv = global_code_factor(a);
    ulong total = rows * nch;
    for (ulong u = get_group_id(0); u < total; u += get_num_groups(0)) {
        ulong r = u / nch, c0 = (u - r * nch) * CHUNK, c1 = min(c0 + CHUNK, cols);
        ulong xb = xoff + r * ldx, qb = qoff + r * ldq;
        for (ulong c = c0 + lid; c < c1; c += WG) q[qb + c] = global_code(LOADX(xb + c), inv);
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
        for (ulong c = c0; c < c8; c += 8) vstore8(q_code8(127.0f * (LOADX8(xb + c) * inv)), 0, q + qb + c);
        for (ulong c = c8; c < c1; c++) q[qb + c] = global_code(LOADX(xb + c), inv);
    }
}
#endif

// ================================================================================================
// Column maxima: partials[seg * cols + c] = max over rows [seg*rps, (seg+1)*rps) of |x[r,c]|,
// outlier elements (|x| >= thr > 0) counted as 0 (int8_double_quant); thr = 0 for columnwise.
// ================================================================================================
// GENERIC: work-group (64 columns x WG/64 row lanes) per (column tile, row segment).
#define CW 64
#define CH (WG / CW)
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(CW, CH, 1))) void colmax_wg(
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong rps, float thr,
    __global float *partials) {
    __local float red[CH][CW];
    uint tx = get_local_id(0), ty = get_local_id(1);
    ulong c = get_group_id(0) * CW + tx, seg = get_group_id(1);
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    float m = 0.0f;
    if (c < cols) {
        for (ulong r = r0 + ty; r < r1; r += CH) {
            float a = fabs(LOADX(xoff + r * ldx + c));
            if (!is_outlier(a, thr)) m = fmax(m, a);
        }
    }
    red[ty][tx] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = CH / 2; s > 0; s >>= 1) {
        if (ty < s) red[ty][tx] = fmax(red[ty][tx], red[ty + s][tx]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (ty == 0 && c < cols) partials[seg * cols + c] = red[0][tx];
}
#endif

#if Q8_CPU
// CPU: one work-item per (8 columns, row segment), one 8-wide load per row.
__kernel void colmax_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, ulong rps,
                         float thr, __global float *partials) {
    ulong c0 = get_global_id(0) * 8, seg = get_global_id(1);
    if (c0 >= cols) return;
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    if (c0 + 8 <= cols) {
        float8 m = 0.0f;
        for (ulong r = r0; r < r1; r++) {
            float8 a = fabs(LOADX8(xoff + r * ldx + c0));
            if (thr > 0.0f) a = select(a, (float8)0.0f, a >= thr);
            m = fmax(m, a);
        }
        vstore8(m, 0, partials + seg * cols + c0);
        return;
    }
    for (ulong c = c0; c < cols; c++) {
        float m = 0.0f;
        for (ulong r = r0; r < r1; r++) {
            float a = fabs(LOADX(xoff + r * ldx + c));
            if (!is_outlier(a, thr)) m = fmax(m, a);
        }
        partials[seg * cols + c] = m;
    }
}
#endif

inline float col_reduce(__global const float *partials, ulong nseg, ulong cols, ulong c) {
    float m = 0.0f;
    for (ulong s = 0; s < nseg; s++) m = fmax(m, partials[s * cols + c]);
    return m;
}

// ---- int8_double_quant column part (not transposed) ------------------------------------------
// out_col = rint(fl32(RN_in(x * 127)) / col_stats[c]); outliers 0. RN_in: rounding to x's dtype
// (fp16 for the f16 inputs bitsandbytes takes, as PyTorch's A.mul(127.0) rounds).
// Round to the nearest fp16 value (ties to even), returned as float: rint at the fp16 quantum of
// v's binade (2^-24 below 2^-14); the scalings are exact powers of two. Overflow -> +-Inf.
inline float round_to_f16(float v) {
    float a = fabs(v);
    if (!(a < 65520.0f)) return isnan(v) ? v : copysign(INFINITY, v);
    uint e = max(as_uint(a) >> 23, 113u);
    return rint(v * as_float((264u - e) << 23)) * as_float((e - 10u) << 23);
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

// Grid-stride over (column, row): dimension 0 along the row; each work-item reduces its column's
// partials once. Work-items of row lane 0 write col_stats (f32).
__kernel void dq_col_quant(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                           __global const float *partials, ulong nseg, float thr, __global char *q, ulong qoff,
                           ulong ldq, __global float *cstats, ulong csoff) {
    for (ulong c = get_global_id(0); c < cols; c += get_global_size(0)) {
        float m = col_reduce(partials, nseg, cols, c);
        if (get_global_id(1) == 0) cstats[csoff + c] = m;
        for (ulong r = get_global_id(1); r < rows; r += get_global_size(1)) {
            float v = LOADX(xoff + r * ldx + c);
            q[qoff + r * ldq + c] =
                is_outlier(fabs(v), thr) ? (char)0 : q_code(clbnb_div(round_in_dtype(v * 127.0f), m));
        }
    }
}

#if Q8_CPU
// round_in_dtype on 8 lanes (fp16: the same binade-quantum rint, by the 1.5 * 2^23 trick, which is
// exact here since |v * scale| <= 2048).
inline float8 round_in_dtype8(float8 v) {
#if IN_DTYPE == CLBNB_DTYPE_F16
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

// CPU: one work-item per (8 columns, block of rps rows), 8-wide loads along the row.
__kernel void dq_col_quant_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                               __global const float *partials, ulong nseg, float thr, __global char *q, ulong qoff,
                               ulong ldq, __global float *cstats, ulong csoff, ulong rps) {
    ulong c0 = get_global_id(0) * 8, seg = get_global_id(1);
    if (c0 >= cols) return;
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    if (c0 + 8 <= cols) {
        float8 m;
        for (int k = 0; k < 8; k++) m[k] = col_reduce(partials, nseg, cols, c0 + k);
        if (seg == 0) vstore8(m, 0, cstats + csoff + c0);
        for (ulong r = r0; r < r1; r++) {
            float8 v = LOADX8(xoff + r * ldx + c0);
            float8 t = round_in_dtype8(v * 127.0f);
            char8 code = q_code8(div8(t, m));
            if (thr > 0.0f) code = select(code, (char8)0, convert_char8(fabs(v) >= thr));
            vstore8(code, 0, q + qoff + r * ldq + c0);
        }
        return;
    }
    for (ulong c = c0; c < cols; c++) {
        float m = col_reduce(partials, nseg, cols, c);
        if (seg == 0) cstats[csoff + c] = m;
        for (ulong r = r0; r < r1; r++) {
            float v = LOADX(xoff + r * ldx + c);
            q[qoff + r * ldq + c] =
                is_outlier(fabs(v), thr) ? (char)0 : q_code(clbnb_div(round_in_dtype(v * 127.0f), m));
        }
    }
}
#endif

// ================================================================================================
// Transposed quantization
// ================================================================================================
// GENERIC: TILE x TILE tiles through local memory; loads coalesced along the row of x, stores
// coalesced along the row of qT. Grid-stride over tiles.
inline void transpose_wg(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                         __global const float *partials, ulong np, __global char *q, ulong qoff, ulong ldq,
                         __global uchar *stats, ulong soff, int sdt, __local char (*tile)[TILE + 1],
                         __local float *fac, __local float *red, const int kind) {
    uint lid = get_local_id(0);
    uint tx = lid % TILE, ty = lid / TILE;
    float inv = 0.0f;
    if (kind == 0) {
        float m = 0.0f;
        for (uint i = lid; i < np; i += WG) m = fmax(m, partials[i]);
        red[lid] = m;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint s = WG / 2; s > 0; s >>= 1) {
            if (lid < s) red[lid] = fmax(red[lid], red[lid + s]);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        float a = red[0];
        if (get_group_id(0) == 0 && lid == 0) clbnb_store_float(stats, soff, sdt, a);
        inv = global_code_factor(a);
    }
    ulong ntr = (rows + TILE - 1) / TILE, ntc = (cols + TILE - 1) / TILE;
    for (ulong u = get_group_id(0); u < ntr * ntc; u += get_num_groups(0)) {
        ulong tr = u / ntc, tc = u - tr * ntc;
        ulong r0 = tr * TILE, c0 = tc * TILE;
        if (kind == 1 && ty == 0) {
            ulong c = c0 + tx;
            float f = 0.0f;
            if (c < cols) {
                f = col_reduce(partials, np, cols, c);
                if (tr == 0) clbnb_store_float(stats, soff + c, sdt, f);
            }
            fac[tx] = f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint k = ty; k < TILE; k += WG / TILE) {
            ulong r = r0 + k, c = c0 + tx;
            if (r < rows && c < cols) {
                float v = LOADX(xoff + r * ldx + c);
                tile[k][tx] = kind == 0 ? global_code(v, inv) : q_code(127.0f * clbnb_div(v, fac[tx]));
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (uint k = ty; k < TILE; k += WG / TILE) {
            ulong c = c0 + k, r = r0 + tx;
            if (r < rows && c < cols) q[qoff + c * ldq + r] = tile[tx][k];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

// CPU: one work-item per (8 columns, block of rps rows): one 8-wide load per row of x, the 8
// codes go to 8 qT rows (8 sequential write streams).
inline void transpose_cpu(__global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols,
                          __global const float *partials, ulong np, __global char *q, ulong qoff, ulong ldq,
                          __global uchar *stats, ulong soff, int sdt, ulong rps, const int kind) {
    ulong c0 = get_global_id(0) * 8, seg = get_global_id(1);
    if (c0 >= cols) return;
    ulong r0 = seg * rps, r1 = min(r0 + rps, rows);
    float8 f;
    if (kind == 0) {
        float a = 0.0f;
        for (ulong i = 0; i < np; i++) a = fmax(a, partials[i]);
        if (c0 == 0 && seg == 0) clbnb_store_float(stats, soff, sdt, a);
        f = (float8)global_code_factor(a);
    } else {
        for (int k = 0; k < 8; k++) {
            f[k] = c0 + k < cols ? col_reduce(partials, np, cols, c0 + k) : 1.0f;
            if (seg == 0 && c0 + k < cols) clbnb_store_float(stats, soff + c0 + k, sdt, f[k]);
        }
    }
    if (c0 + 8 <= cols) {
        for (ulong r = r0; r < r1; r++) {
            float8 v = LOADX8(xoff + r * ldx + c0);
            char8 code = kind == 0 ? q_code8(127.0f * (v * f)) : q_code8(127.0f * div8(v, f));
            for (int k = 0; k < 8; k++) q[qoff + (c0 + k) * ldq + r] = code[k];
        }
        return;
    }
    for (ulong c = c0; c < cols; c++) {
        float fc = f[c - c0];
        for (ulong r = r0; r < r1; r++) {
            float v = LOADX(xoff + r * ldx + c);
            q[qoff + c * ldq + r] = kind == 0 ? global_code(v, fc) : q_code(127.0f * clbnb_div(v, fc));
        }
    }
}

// Transposed quantization: qT[c, r] = code(x[r, c]).
//   global (quantize_global transpose): code = rint(127 * (x * (1/a))), a = max of np partials.
//   col (columnwise): code = rint(127 * (x / m_c)), m_c from np row segments of column partials.
#define TRANSPOSE_ARGS                                                                                               \
    __global const uchar *x, ulong xoff, ulong ldx, ulong rows, ulong cols, __global const float *partials, ulong np, \
        __global char *q, ulong qoff, ulong ldq, __global uchar *stats, ulong soff, int sdt
#define TRANSPOSE_PASS x, xoff, ldx, rows, cols, partials, np, q, qoff, ldq, stats, soff, sdt
#if !Q8_CPU
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void transpose_global_wg(TRANSPOSE_ARGS, ulong rps) {
    __local char tile[TILE][TILE + 1];
    __local float fac[TILE], red[WG];
    transpose_wg(TRANSPOSE_PASS, tile, fac, red, 0);
}
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void transpose_col_wg(TRANSPOSE_ARGS, ulong rps) {
    __local char tile[TILE][TILE + 1];
    __local float fac[TILE], red[WG];
    transpose_wg(TRANSPOSE_PASS, tile, fac, red, 1);
}
#endif
#if Q8_CPU
__kernel void transpose_global_cpu(TRANSPOSE_ARGS, ulong rps) { transpose_cpu(TRANSPOSE_PASS, rps, 0); }
__kernel void transpose_col_cpu(TRANSPOSE_ARGS, ulong rps) { transpose_cpu(TRANSPOSE_PASS, rps, 1); }
#endif
