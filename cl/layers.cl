// =================================================================================================
// layers.cl: the small kernels of the layer objects (src/layer_*.c): dtype conversion with an
// optional bias, column sums, the LLM.int8 outlier product, the outlier pool, the dequantized int8
// weight for backward, the embedding gathers (plain, StableEmbedding LayerNorm, block-wise 8-bit
// and 4-bit tables) and the embedding backward (deterministic scatter-add of the table gradient,
// StableEmbedding's LayerNorm backward). Dtypes travel as runtime int arguments (clbnb dtype codes).
// All kernels are barrier-free and give the same bits on every path.
// =================================================================================================

// dst[r, c] = RN_ddt(RN_rdt(src[r, c]) + bias[c]); offsets / lds in elements; bdt < 0: no bias.
__kernel void lay_convert(__global const uchar *src, ulong soff, ulong lds, int sdt, int rdt, __global uchar *dst,
                          ulong doff, ulong ldd, int ddt, ulong rows, ulong cols, __global const uchar *bias,
                          ulong boff, int bdt) {
    const ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    float v = clbnb_round_to_dtype(clbnb_load_float(src, soff + r * lds + c, sdt), rdt);
    if (bdt >= 0) v += clbnb_load_float(bias, boff + c, bdt);
    clbnb_store_float(dst, doff + r * ldd + c, ddt, v);
}

// sums[c] = RN_ddt(sum_r src[r, c]), f32, ascending r. One work-item per column (coalesced rows).
__kernel void lay_colsum(__global const uchar *src, ulong soff, ulong lds, int sdt, ulong rows, ulong cols,
                         __global uchar *dst, ulong doff, int ddt) {
    const ulong c = get_global_id(0);
    if (c >= cols) return;
    float acc = 0.0f;
    for (ulong r = 0; r < rows; r++) acc += clbnb_load_float(src, soff + r * lds + c, sdt);
    clbnb_store_float(dst, doff + c, ddt, acc);
}

// LLM.int8 outlier product (MatMul8bitLt, threshold > 0):
//   out[m, n] = RN_odt(out[m, n] + sum_j x[m, c_j] * RN_xdt(fl32(fl32(cb[n, c_j] * scb[n]) * fl32(1/127))))
// over the count[0] outlier columns c_j (ascending), read on the device.
__kernel void lay_outlier_add(__global uchar *out, ulong ooff, ulong ldo, int odt, __global const uchar *x,
                              ulong xoff, ulong ldx, int xdt, __global const char *cb, ulong cboff, ulong ldcb,
                              __global const float *scb, ulong scboff, __global const int *ocols,
                              __global const int *ocount, ulong rows, ulong cols) {
    const ulong n = get_global_id(0), m = get_global_id(1);
    if (n >= cols || m >= rows) return;
    const int cnt = ocount[0];
    if (cnt <= 0) return;
    const float acc = clbnb_lin8_outlier_sum(x, xoff + m * ldx, xdt, cb + cboff + n * ldcb, scb[scboff + n], ocols, cnt);
    const ulong o = ooff + m * ldo + n;
    clbnb_store_float(out, o, odt, clbnb_load_float(out, o, odt) + acc);
}

// Outlier pool: pool[c_j] = 1 for the count[0] outlier columns.
__kernel void lay_pool_mark(__global const int *ocols, __global const int *ocount, __global uint *pool, ulong k) {
    const ulong j = get_global_id(0);
    if (j >= k || (long)j >= (long)ocount[0]) return;
    const int c = ocols[j];
    if (c >= 0 && (ulong)c < k) pool[c] = 1u;
}

// Dequantized int8 weight rows for backward: dst[r, c] = RN_rdt(cb[row0 + r, c] * fl32(scb[row0 + r] * fl32(1/127)))
// stored as f32 (compact, ld = cols).
__kernel void lay_dequant_cb(__global const char *cb, ulong cboff, ulong ldcb, __global const float *scb,
                             ulong scboff, ulong row0, ulong rows, ulong cols, int rdt, __global float *dst) {
    const ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= cols || r >= rows) return;
    const float s = scb[scboff + row0 + r] * 7.874015718698502e-3f;
    dst[r * cols + c] = clbnb_round_to_dtype((float)cb[cboff + (row0 + r) * ldcb + c] * s, rdt);
}

// ---- embeddings ---------------------------------------------------------------------------------
// Row of index i (or -1 when out of range).
inline long lay_row(__global const int *idx, ulong ioff, ulong i, ulong nrows) {
    const int v = idx[ioff + i];
    return (v >= 0 && (ulong)v < nrows) ? (long)v : -1L;
}

// out[i, j] = table[idx[i], j]; zeros for out-of-range indices.
__kernel void lay_gather(__global const uchar *table, ulong toff, ulong ldt, int tdt, ulong nrows,
                         __global const int *idx, ulong ioff, __global uchar *out, ulong ooff, ulong ldo, int odt,
                         ulong n, ulong dim) {
    const ulong j = get_global_id(0), i = get_global_id(1);
    if (j >= dim || i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    const float v = r < 0 ? 0.0f : clbnb_load_float(table, toff + (ulong)r * ldt + j, tdt);
    clbnb_store_float(out, ooff + i * ldo + j, odt, v);
}

// Block-wise 8-bit table (flat, compact [nrows, dim]): out = RN_odt(code[q] * absmax[f / bs]).
__kernel void lay_gather_q8(__global const uchar *codes, __global const float *absmax, __global const float *code,
                            ulong bs, ulong nrows, __global const int *idx, ulong ioff, __global uchar *out,
                            ulong ooff, ulong ldo, int odt, ulong n, ulong dim) {
    const ulong j = get_global_id(0), i = get_global_id(1);
    if (j >= dim || i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    float v = 0.0f;
    if (r >= 0) {
        const ulong f = (ulong)r * dim + j;
        v = code[codes[f]] * absmax[f / bs];
    }
    clbnb_store_float(out, ooff + i * ldo + j, odt, v);
}

// 4-bit table (flat, element 2k in the high nibble): out = RN_odt(table16[nibble] * absmax[f / bs]).
__kernel void lay_gather_q4(__global const uchar *packed, __global const float *absmax, __global const float *table16,
                            ulong bs, ulong nrows, __global const int *idx, ulong ioff, __global uchar *out,
                            ulong ooff, ulong ldo, int odt, ulong n, ulong dim) {
    const ulong j = get_global_id(0), i = get_global_id(1);
    if (j >= dim || i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    float v = 0.0f;
    if (r >= 0) {
        const ulong f = (ulong)r * dim + j;
        const uchar b = packed[f >> 1];
        const uint nib = (f & 1) ? (b & 15u) : (b >> 4);
        v = table16[nib] * absmax[f / bs];
    }
    clbnb_store_float(out, ooff + i * ldo + j, odt, v);
}

// StableEmbedding: one work-item per output row. x = f32(table[idx[i], :]);
// mean = S(x) / d, var = S((x - mean)^2) / d, y = (x - mean) * rsqrt-free 1/sqrt(var + eps) * g + b;
// S() sums 64 strided partials then a fixed pairwise tree (the same bits on every device).
#ifndef LAY_LN_PARTS
#define LAY_LN_PARTS 64 // partial sums per row
#endif
inline float lay_ln_sum(__global const uchar *row, ulong dim, int tdt, float mean, int centered) {
    float p[LAY_LN_PARTS];
    for (int t = 0; t < LAY_LN_PARTS; t++) {
        float a = 0.0f;
        for (ulong k = (ulong)t; k < dim; k += LAY_LN_PARTS) {
            float v = clbnb_load_float(row, k, tdt);
            if (centered) {
                v -= mean;
                v = v * v;
            }
            a += v;
        }
        p[t] = a;
    }
    for (int s = LAY_LN_PARTS / 2; s > 0; s >>= 1)
        for (int t = 0; t < s; t++) p[t] += p[t + s];
    return p[0];
}

__kernel void lay_stable_embedding(__global const uchar *table, ulong toff, ulong ldt, int tdt, ulong nrows,
                                   __global const int *idx, ulong ioff, __global const float *gamma,
                                   __global const float *beta, float eps, __global uchar *out, ulong ooff, ulong ldo,
                                   int odt, ulong n, ulong dim) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    if (r < 0) {
        for (ulong j = 0; j < dim; j++) clbnb_store_float(out, ooff + i * ldo + j, odt, 0.0f);
        return;
    }
    __global const uchar *row = table + (toff + (ulong)r * ldt) * (ulong)(tdt == CLBNB_DTYPE_F32 ? 4 : 2);
    const float fd = (float)dim;
    const float mean = clbnb_div(lay_ln_sum(row, dim, tdt, 0.0f, 0), fd);
    const float var = clbnb_div(lay_ln_sum(row, dim, tdt, mean, 1), fd);
    const float rstd = clbnb_div(1.0f, sqrt(var + eps));
    for (ulong j = 0; j < dim; j++) {
        const float v = (clbnb_load_float(row, j, tdt) - mean) * rstd * gamma[j] + beta[j];
        clbnb_store_float(out, ooff + i * ldo + j, odt, v);
    }
}

// ---- Embedding backward (dense table gradient, deterministic scatter-add) -----------------------
// links[i] = smallest j > i with the same valid row as position i (-1: none); links[n + i] = 1 when
// i is the first position of its row (0 otherwise, and for out-of-range / padding rows). O(n) each.
__kernel void lay_emb_links(__global const int *idx, ulong ioff, ulong n, ulong nrows, long pad,
                            __global int *links) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    int next = -1, head = r >= 0 && r != pad;
    if (head) {
        const int v = idx[ioff + i];
        for (ulong j = 0; j < i && head; j++) head = idx[ioff + j] != v;
        for (ulong j = i + 1; j < n; j++)
            if (idx[ioff + j] == v) {
                next = (int)j;
                break;
            }
    }
    links[i] = next;
    links[n + i] = head;
}

// grad[r, c] = RN_ddt(sum of g[i, c] over the positions i of row r, ascending i, f32), 0 for rows
// without a position. One work-item per (column, table row): it zeroes its element; the rows that
// have positions are then written by lay_emb_scatter (ordered after this kernel).
__kernel void lay_emb_zero(__global uchar *dst, ulong doff, ulong ldd, int ddt, ulong nrows, ulong dim) {
    const ulong c = get_global_id(0), r = get_global_id(1);
    if (c >= dim || r >= nrows) return;
    clbnb_store_float(dst, doff + r * ldd + c, ddt, 0.0f);
}

// One work-item per (column, position): the first position of each row sums its chain.
__kernel void lay_emb_scatter(__global const uchar *g, ulong goff, ulong ldg, int gdt, __global const int *idx,
                              ulong ioff, ulong n, __global const int *links, __global uchar *dst, ulong doff,
                              ulong ldd, int ddt, ulong dim) {
    const ulong c = get_global_id(0), i = get_global_id(1);
    if (c >= dim || i >= n || !links[n + i]) return;
    float acc = 0.0f;
    for (long j = (long)i; j >= 0; j = links[j]) acc += clbnb_load_float(g, goff + (ulong)j * ldg + c, gdt);
    clbnb_store_float(dst, doff + (ulong)idx[ioff + i] * ldd + c, ddt, acc);
}

// ---- StableEmbedding backward (LayerNorm backward in f32, then the scatter above) ---------------
// Element size of a float dtype.
inline ulong lay_dt_size(int dt) { return dt == CLBNB_DTYPE_F32 ? 4 : 2; }

// s[0] = S(gy * gamma), s[1] = S(gy * gamma * xhat) with xhat = (x - mean) * rstd, each summed like
// lay_ln_sum (64 strided partials, then the fixed pairwise tree).
inline void lay_ln_grad_sums(__global const uchar *grow, int gdt, __global const float *gamma,
                             __global const uchar *row, int tdt, float mean, float rstd, ulong dim, float *s) {
    float p[LAY_LN_PARTS], q[LAY_LN_PARTS];
    for (int t = 0; t < LAY_LN_PARTS; t++) {
        float a = 0.0f, b = 0.0f;
        for (ulong k = (ulong)t; k < dim; k += LAY_LN_PARTS) {
            const float g = clbnb_load_float(grow, k, gdt) * gamma[k];
            const float xh = (clbnb_load_float(row, k, tdt) - mean) * rstd;
            a += g;
            b += g * xh;
        }
        p[t] = a;
        q[t] = b;
    }
    for (int s2 = LAY_LN_PARTS / 2; s2 > 0; s2 >>= 1)
        for (int t = 0; t < s2; t++) {
            p[t] += p[t + s2];
            q[t] += q[t + s2];
        }
    s[0] = p[0];
    s[1] = q[0];
}

// One work-item per position i (like lay_stable_embedding, whose mean / rstd it recomputes with the
// same calls): with g = f32(grad_out[i, :]) * gamma, xhat = (x - mean) * rstd,
//   dx[i, j] = RN_tdt(rstd * ((g[j] - S(g) / d) - xhat[j] * (S(g * xhat) / d)))
// into the compact scratch dx [n, dim] of the table's dtype (the backward of .to(float32)), and
// stats[2i] = mean, stats[2i + 1] = rstd. Out-of-range positions: zero row, zero stats.
__kernel void lay_stable_emb_dx(__global const uchar *table, ulong toff, ulong ldt, int tdt, ulong nrows,
                                __global const int *idx, ulong ioff, __global const float *gamma, float eps,
                                __global const uchar *g, ulong goff, ulong ldg, int gdt, __global uchar *dx,
                                __global float *stats, ulong n, ulong dim) {
    const ulong i = get_global_id(0);
    if (i >= n) return;
    const long r = lay_row(idx, ioff, i, nrows);
    if (r < 0) {
        for (ulong j = 0; j < dim; j++) clbnb_store_float(dx, i * dim + j, tdt, 0.0f);
        stats[2 * i] = 0.0f;
        stats[2 * i + 1] = 0.0f;
        return;
    }
    __global const uchar *row = table + (toff + (ulong)r * ldt) * lay_dt_size(tdt);
    __global const uchar *grow = g + (goff + i * ldg) * lay_dt_size(gdt);
    const float fd = (float)dim;
    const float mean = clbnb_div(lay_ln_sum(row, dim, tdt, 0.0f, 0), fd);
    const float var = clbnb_div(lay_ln_sum(row, dim, tdt, mean, 1), fd);
    const float rstd = clbnb_div(1.0f, sqrt(var + eps));
    float s[2];
    lay_ln_grad_sums(grow, gdt, gamma, row, tdt, mean, rstd, dim, s);
    const float mg = clbnb_div(s[0], fd), mgx = clbnb_div(s[1], fd);
    for (ulong j = 0; j < dim; j++) {
        const float gj = clbnb_load_float(grow, j, gdt) * gamma[j];
        const float xh = (clbnb_load_float(row, j, tdt) - mean) * rstd;
        clbnb_store_float(dx, i * dim + j, tdt, rstd * ((gj - mg) - xh * mgx));
    }
    stats[2 * i] = mean;
    stats[2 * i + 1] = rstd;
}

// One work-item per column j: dgamma[j] = RN(sum_i f32(grad_out[i, j]) * xhat[i, j]) and
// dbeta[j] = RN(sum_i f32(grad_out[i, j])) over the in-range positions i (padding ones included: the
// LayerNorm sees them), ascending i, f32; xhat from the stats of lay_stable_emb_dx (the same bits).
// A dtype < 0 skips that output.
__kernel void lay_stable_emb_params(__global const uchar *table, ulong toff, ulong ldt, int tdt, ulong nrows,
                                    __global const int *idx, ulong ioff, __global const float *stats,
                                    __global const uchar *g, ulong goff, ulong ldg, int gdt, __global uchar *dgamma,
                                    ulong dgoff, int dgdt, __global uchar *dbeta, ulong dboff, int dbdt, ulong n,
                                    ulong dim) {
    const ulong j = get_global_id(0);
    if (j >= dim) return;
    float ag = 0.0f, ab = 0.0f;
    for (ulong i = 0; i < n; i++) {
        const long r = lay_row(idx, ioff, i, nrows);
        if (r < 0) continue;
        const float gy = clbnb_load_float(g, goff + i * ldg + j, gdt);
        const float xh = (clbnb_load_float(table, toff + (ulong)r * ldt + j, tdt) - stats[2 * i]) * stats[2 * i + 1];
        ag += gy * xh;
        ab += gy;
    }
    if (dgdt >= 0) clbnb_store_float(dgamma, dgoff + j, dgdt, ag);
    if (dbdt >= 0) clbnb_store_float(dbeta, dboff + j, dbdt, ab);
}
