/* quant_int8.c: int8 quantization (bnb-format-spec.md 5.1, 5.2, 5.6): row-wise (LLM.int8 and
 * SwitchBack, with outlier columns), row-wise dequantization, global (SwitchBack, optionally
 * transposed), column-wise with transpose, and int8_double_quant. Kernels: cl/quant_int8.cl.
 *
 * Every operation validates all of its arguments first; then, holding ctx->lock, enqueues a chain
 * of commands (fills and kernels, each waiting for the previous one; the caller's wait list goes
 * to the first, the caller's event comes from the last). Scratch buffers (column flags, partial
 * maxima) come from the context's pool (scratch_pool.c) and go back to it right after enqueueing;
 * flags go back marked zero, as the outlier compaction clears them. */
#include <math.h>
#include <stdio.h>

#include "internal.h"

#define PROG "quant_int8"
#define WG_GENERIC 256 /* cl/quant_int8.cl WG default */

/* ---- command chain ---------------------------------------------------------------------------- */
typedef struct chain {
    cl_uint num_events;
    const cl_event *wait_list;
    cl_event prev;
    cl_event *user_event;
} chain;

static chain chain_start(cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    chain c = {num_events, wait_list, NULL, event};
    return c;
}

static void chain_waits(const chain *c, cl_uint *n, const cl_event **wl) {
    if (c->prev) {
        *n = 1;
        *wl = &c->prev;
    } else {
        *n = c->num_events;
        *wl = c->wait_list;
    }
}

static void chain_advance(chain *c, cl_event ev) {
    if (c->prev) clReleaseEvent(c->prev);
    c->prev = ev;
}

static clbnb_status chain_kernel(chain *c, cl_command_queue queue, cl_kernel k, cl_uint dims, const size_t *global,
                                 const size_t *local, int last) {
    cl_uint n;
    const cl_event *wl;
    chain_waits(c, &n, &wl);
    cl_event ev = NULL;
    clbnb_status s = clbnb_enqueue(queue, k, dims, global, local, n, wl, last ? c->user_event : &ev);
    if (s == CLBNB_SUCCESS) chain_advance(c, ev);
    return s;
}

static clbnb_status chain_fill_zero(chain *c, cl_command_queue queue, cl_mem mem, size_t offset, size_t bytes,
                                    int last) {
    cl_uint n;
    const cl_event *wl;
    chain_waits(c, &n, &wl);
    cl_event ev = NULL;
    cl_uint zero = 0;
    cl_int err = clEnqueueFillBuffer(queue, mem, &zero, sizeof zero, offset, bytes, n, wl, last ? c->user_event : &ev);
    if (err == CL_SUCCESS) chain_advance(c, ev);
    return (clbnb_status)err;
}

static void chain_end(chain *c) { chain_advance(c, NULL); }

/* ---- helpers ---------------------------------------------------------------------------------- */
static int use_cpu(const clbnb_context *ctx) { return ctx->info.path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU; }

static size_t cus(const clbnb_context *ctx) { return ctx->info.compute_units ? ctx->info.compute_units : 1; }

static size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }
static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

static cl_ulong elem_off(size_t bytes, clbnb_dtype dt) { return (cl_ulong)(bytes / clbnb_dtype_size(dt)); }

/* Program variants differ only in IN_DTYPE, OUT_DTYPE and the path (cl/quant_int8.cl): few builds. */
static void prog_opts(char *buf, size_t size, clbnb_dtype in, clbnb_dtype out, int cpu) {
    snprintf(buf, size, "-DIN_DTYPE=%d -DOUT_DTYPE=%d -DQ8_CPU=%d", (int)in, (int)out, cpu);
}

static clbnb_status check_start(const clbnb_context *ctx, cl_command_queue queue, cl_uint num_events,
                                const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    return clbnb_check_wait_list(num_events, wait_list);
}

static clbnb_status check_threshold(float threshold) {
    return (isfinite(threshold) && threshold >= 0.0f) ? CLBNB_SUCCESS : CLBNB_ERROR_INVALID_ARGUMENT;
}

/* Outlier outputs: required (cols capacity, count n >= 1) when threshold > 0; optional otherwise
 * (a given count is checked and set to 0). */
static clbnb_status check_outliers(float threshold, size_t cols, const clbnb_vector *ocols,
                                   const clbnb_vector *ocount) {
    if (threshold > 0.0f) {
        if (!ocols || !ocount) return CLBNB_ERROR_NULL_ARGUMENT;
        CLBNB_TRY(clbnb_check_vector(ocols, CLBNB_DT(CLBNB_DTYPE_I32), cols));
        CLBNB_TRY(clbnb_check_vector(ocount, CLBNB_DT(CLBNB_DTYPE_I32), 1));
        if (cols > (size_t)INT32_MAX) return CLBNB_ERROR_SIZE_OVERFLOW;
    } else if (ocount) {
        CLBNB_TRY(clbnb_check_vector(ocount, CLBNB_DT(CLBNB_DTYPE_I32), 1));
    }
    return CLBNB_SUCCESS;
}

/* ================================================================================================ */
/* Row-wise quantization (validated arguments; ctx->lock held)                                      */
/* ================================================================================================ */
/* GENERIC row-wise shape: 8-element groups per work-item kept in registers between the max pass and
 * the code pass (RPT in cl/quant_int8.cl), and work-items per row (a power of two up to WG) such
 * that RPT groups each cover the row where they can. Four groups for rows longer than two groups
 * of 8 on half a work-group, two below. H100, f16 (medians, 30-50 runs):
 * - 8192 x 8192, RPT 2 -> 4 (256 work-items per row both): LLM.int8 96.8 -> 84.7-85.1 us,
 *   SwitchBack 101.9-102.7 -> 92.4-92.7, threshold 6 123.7 -> 117.3-117.5; RPT 8 (128 per row)
 *   87.0-87.6 / 98.6-99.1 / 117.3-117.5 (session 15).
 * - 4096 x 4096, RPT 2 with 256 work-items per row -> 4 with 128 (two rows per work-group):
 *   LLM.int8 27.4-27.7 -> 24.6-24.8 us, SwitchBack 29.4-29.7 -> 26.9-27.1, threshold 6
 *   45.6-45.8 -> 42.5-43.0; RPT 8 with 64: 26.9 / 29.7 / 45.1-45.3 (session 15). RPT 4 with 256
 *   per row (half its slots empty) was slower: 27.4 -> 33.0 us LLM.int8. */
static size_t rowwise_rpt(size_t cols) { return cols > 8 * 2 * (size_t)(WG_GENERIC / 2) ? 4 : 2; }

static size_t rowwise_tpr(size_t cols) {
    const size_t per = 8 * rowwise_rpt(cols);
    size_t tpr = 8;
    while (tpr < WG_GENERIC && tpr * per < cols)
        tpr *= 2;
    return tpr;
}

/* Program options of the row-wise kernels: the GENERIC kernels' RPT (rowwise_rpt). */
static void rowwise_opts(char *buf, size_t size, clbnb_dtype in, size_t cols, int cpu) {
    prog_opts(buf, size, in, CLBNB_DTYPE_F32, cpu);
    if (!cpu && rowwise_rpt(cols) != 2) clbnb_options_append(buf, size, " -DRPT=%d", (int)rowwise_rpt(cols));
}

/* Arguments 0-13 of the row-wise kernels (ROWWISE_ARGS and tpr in cl/quant_int8.cl). */
static clbnb_status set_rowwise_args(cl_kernel k, const clbnb_matrix *x, const clbnb_matrix *q,
                                     const clbnb_vector *stats, float thr, cl_mem flags, size_t tpr) {
    cl_ulong xoff = elem_off(x->offset, x->dtype), ldx = x->ld, qoff = q->offset, ldq = q->ld;
    cl_ulong soff = elem_off(stats->offset, stats->dtype), rows = x->rows, cols = x->cols;
    cl_int sdt = (cl_int)stats->dtype;
    cl_uint tpru = (cl_uint)tpr;
    return clbnb_set_args(k, 14, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx), CLBNB_ARG(q->mem), CLBNB_ARG(qoff),
                          CLBNB_ARG(ldq), CLBNB_ARG(stats->mem), CLBNB_ARG(soff), CLBNB_ARG(sdt), CLBNB_ARG(rows),
                          CLBNB_ARG(cols), CLBNB_ARG(thr), CLBNB_ARG(flags), CLBNB_ARG(tpru));
}

/* Hands back a pooled flags buffer: the outlier compaction clears every flag it reads, so after a
 * fully enqueued call the buffer's first flag_bytes are zero again and the next call needs no fill
 * (H100: the fill and its gap took 5-9 us of a threshold-6 row-wise quantization). */
static void release_flags(clbnb_context *ctx, cl_command_queue queue, cl_mem flags, clbnb_status s, size_t flag_bytes) {
    if (s == CLBNB_SUCCESS)
        clbnb_scratch_release_zeroed(ctx, queue, flags, flag_bytes);
    else
        clbnb_scratch_release(ctx, queue, flags);
}

/* The ordered list of the flagged columns into ocols / ocount; clears the flags. */
static clbnb_status enqueue_compact(clbnb_context *ctx, cl_command_queue queue, const char *opts, cl_mem flags,
                                    size_t ncols, const clbnb_vector *ocols, const clbnb_vector *ocount, chain *ch,
                                    int last) {
    const int cpu = use_cpu(ctx);
    cl_kernel k;
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, cpu ? "outlier_compact_cpu" : "outlier_compact_wg", &k));
    cl_ulong cols = ncols, ooff = elem_off(ocols->offset, CLBNB_DTYPE_I32),
             coff = elem_off(ocount->offset, CLBNB_DTYPE_I32);
    CLBNB_TRY(clbnb_set_args(k, 6, CLBNB_ARG(flags), CLBNB_ARG(cols), CLBNB_ARG(ocols->mem), CLBNB_ARG(ooff),
                             CLBNB_ARG(ocount->mem), CLBNB_ARG(coff)));
    size_t l1 = cpu ? 1 : WG_GENERIC;
    return chain_kernel(ch, queue, k, 1, &l1, &l1, last);
}

/* GENERIC, rows > 1: the flagged columns zeroed in every row, their ascending list and count, and
 * the flags (and the work-group counter after them) cleared, in one launch (cl/quant_int8.cl,
 * outlier_finish_wg). Work-groups of at least 4 rows, at most two per compute unit: each one
 * reads all the flags (from L2), so more groups would only read them more often. */
static clbnb_status enqueue_outlier_finish(clbnb_context *ctx, cl_command_queue queue, const char *opts, cl_mem flags,
                                           const clbnb_matrix *q, const clbnb_vector *ocols, const clbnb_vector *ocount,
                                           chain *ch, int last) {
    cl_kernel k;
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, "outlier_finish_wg", &k));
    const size_t groups = min_sz(ceil_div(q->rows, 4), 2 * cus(ctx));
    cl_ulong cols = q->cols, qoff = q->offset, ldq = q->ld, rows = q->rows, rpg = ceil_div(q->rows, groups);
    cl_ulong ooff = elem_off(ocols->offset, CLBNB_DTYPE_I32), coff = elem_off(ocount->offset, CLBNB_DTYPE_I32);
    CLBNB_TRY(clbnb_set_args(k, 11, CLBNB_ARG(flags), CLBNB_ARG(cols), CLBNB_ARG(q->mem), CLBNB_ARG(qoff),
                             CLBNB_ARG(ldq), CLBNB_ARG(rows), CLBNB_ARG(rpg), CLBNB_ARG(ocols->mem), CLBNB_ARG(ooff),
                             CLBNB_ARG(ocount->mem), CLBNB_ARG(coff)));
    size_t local = WG_GENERIC, global = ceil_div(q->rows, (size_t)rpg) * local;
    return chain_kernel(ch, queue, k, 1, &global, &local, last);
}

/* flags_zeroed: the caller vouches that `flags` is all zero (a workspace the previous call's
 * compaction cleared), so no fill is needed. */
static clbnb_status enqueue_rowwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                    const clbnb_matrix *q, const clbnb_vector *stats, clbnb_rowwise_mode mode,
                                    float thr, const clbnb_vector *ocols, const clbnb_vector *ocount, cl_mem flags,
                                    int flags_zeroed, chain *ch, int last) {
    int cpu = use_cpu(ctx);
    cl_ulong rows = x->rows, cols = x->cols;
    size_t tpr = rowwise_tpr(cols);
    char opts[64];
    rowwise_opts(opts, sizeof opts, x->dtype, (size_t)cols, cpu);
    int outliers = thr > 0.0f;
    int zero_cols = outliers && rows > 1;
    if (outliers && !flags_zeroed)
        CLBNB_TRY(chain_fill_zero(ch, queue, flags, 0, clbnb_outlier_flags_bytes((size_t)cols), 0));

    cl_kernel k;
    static const char *names[2][2] = {{"rowwise_llm_wg", "rowwise_sb_wg"}, {"rowwise_llm_cpu", "rowwise_sb_cpu"}};
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, names[cpu][mode == CLBNB_ROWWISE_SWITCHBACK], &k));
    cl_ulong ooff = outliers ? elem_off(ocols->offset, CLBNB_DTYPE_I32) : 0;
    cl_ulong coff = outliers ? elem_off(ocount->offset, CLBNB_DTYPE_I32) : 0;
    CLBNB_TRY(set_rowwise_args(k, x, q, stats, thr, outliers ? flags : NULL, tpr));
    size_t local, global;
    int compact_here = 0; /* GENERIC, one work-group: the kernel compacts the flags itself */
    if (cpu) {
        local = 1;
        global = (size_t)rows;
    } else {
        local = WG_GENERIC;
        global = ceil_div((size_t)rows, WG_GENERIC / tpr) * WG_GENERIC;
        compact_here = outliers && global == local && !zero_cols; /* rows > 1: outlier_finish_wg compacts */
        cl_mem oc = outliers ? ocols->mem : NULL, on = outliers ? ocount->mem : NULL;
        cl_int ch_arg = compact_here;
        CLBNB_TRY(clbnb_set_args_from(k, 14, 5, CLBNB_ARG(oc), CLBNB_ARG(ooff), CLBNB_ARG(on), CLBNB_ARG(coff),
                                      CLBNB_ARG(ch_arg)));
    }
    int more = (outliers && (!compact_here || zero_cols)) || (!outliers && ocount);
    CLBNB_TRY(chain_kernel(ch, queue, k, 1, &global, &local, last && !more));

    if (outliers && !cpu && zero_cols) {
        CLBNB_TRY(enqueue_outlier_finish(ctx, queue, opts, flags, q, ocols, ocount, ch, last));
    } else if (outliers) {
        if (!compact_here)
            CLBNB_TRY(enqueue_compact(ctx, queue, opts, flags, x->cols, ocols, ocount, ch, last && !zero_cols));
        if (zero_cols) { /* CPU */
            CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, "zero_outlier_cols", &k));
            cl_ulong qoff = q->offset, ldq = q->ld;
            CLBNB_TRY(clbnb_set_args(k, 8, CLBNB_ARG(q->mem), CLBNB_ARG(qoff), CLBNB_ARG(ldq), CLBNB_ARG(rows),
                                     CLBNB_ARG(ocols->mem), CLBNB_ARG(ooff), CLBNB_ARG(ocount->mem), CLBNB_ARG(coff)));
            size_t g2[2] = {min_sz((size_t)cols, 16), min_sz((size_t)rows, 64)};
            size_t l2[2] = {1, 16};
            g2[1] = clbnb_round_up(g2[1], l2[1]);
            CLBNB_TRY(chain_kernel(ch, queue, k, 2, g2, l2, last));
        }
    } else if (ocount) {
        CLBNB_TRY(chain_fill_zero(ch, queue, ocount->mem, ocount->offset, sizeof(cl_int), last));
    }
    return CLBNB_SUCCESS;
}

static clbnb_status check_rowwise(const clbnb_matrix *x, const clbnb_matrix *q, const clbnb_vector *row_stats,
                                  clbnb_rowwise_mode mode, float threshold, const clbnb_vector *outlier_cols,
                                  const clbnb_vector *outlier_count) {
    if (!x || !q || !row_stats) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(x, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(q, CLBNB_DT(CLBNB_DTYPE_I8)));
    if (q->rows != x->rows || q->cols != x->cols) return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(clbnb_check_vector(row_stats, CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16), x->rows));
    if (mode != CLBNB_ROWWISE_LLM_INT8 && mode != CLBNB_ROWWISE_SWITCHBACK) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(check_threshold(threshold));
    return check_outliers(threshold, x->cols, outlier_cols, outlier_count);
}

clbnb_status clbnb_quantize_rowwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                    const clbnb_matrix *q, const clbnb_vector *row_stats, clbnb_rowwise_mode mode,
                                    float threshold, const clbnb_vector *outlier_cols,
                                    const clbnb_vector *outlier_count, cl_uint num_events, const cl_event *wait_list,
                                    cl_event *event) {
    return clbnb_quantize_rowwise_ws(ctx, queue, x, q, row_stats, mode, threshold, outlier_cols, outlier_count, NULL, 0,
                                     num_events, wait_list, event);
}

clbnb_status clbnb_quantize_rowwise_ws(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                       const clbnb_matrix *q, const clbnb_vector *row_stats, clbnb_rowwise_mode mode,
                                       float threshold, const clbnb_vector *outlier_cols,
                                       const clbnb_vector *outlier_count, cl_mem flags_ws, int flags_ws_zeroed,
                                       cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    CLBNB_TRY(check_rowwise(x, q, row_stats, mode, threshold, outlier_cols, outlier_count));

    cl_mem flags = NULL;
    int flags_zeroed = 0;
    const size_t flag_bytes = clbnb_outlier_flags_bytes(x->cols);
    if (threshold > 0.0f) {
        if (flags_ws)
            CLBNB_TRY(clbnb_check_region(flags_ws, 0, flag_bytes));
        else
            CLBNB_TRY(clbnb_scratch_acquire_zeroed(ctx, flag_bytes, &flags, &flags_zeroed));
    }
    chain ch = chain_start(num_events, wait_list, event);
    pthread_mutex_lock(&ctx->lock);
    clbnb_status s = enqueue_rowwise(ctx, queue, x, q, row_stats, mode, threshold, outlier_cols, outlier_count,
                                     flags ? flags : flags_ws, flags ? flags_zeroed : flags_ws_zeroed, &ch, 1);
    pthread_mutex_unlock(&ctx->lock);
    chain_end(&ch);
    release_flags(ctx, queue, flags, s, flag_bytes);
    return s;
}

/* ================================================================================================ */
/* Row-wise dequantization                                                                          */
/* ================================================================================================ */
clbnb_status clbnb_dequantize_rowwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *q,
                                      const clbnb_vector *row_stats, const clbnb_matrix *out, clbnb_rowwise_mode mode,
                                      cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    if (!q || !row_stats || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(q, CLBNB_DT(CLBNB_DTYPE_I8)));
    CLBNB_TRY(clbnb_check_matrix(out, CLBNB_DT_FLOAT));
    if (out->rows != q->rows || out->cols != q->cols) return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(clbnb_check_vector(row_stats, CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16), q->rows));
    if (mode != CLBNB_ROWWISE_LLM_INT8 && mode != CLBNB_ROWWISE_SWITCHBACK) return CLBNB_ERROR_INVALID_ARGUMENT;

    int cpu = use_cpu(ctx);
    char opts[64];
    prog_opts(opts, sizeof opts, CLBNB_DTYPE_F32, out->dtype, cpu);
    cl_int sdt = (cl_int)row_stats->dtype;
    cl_ulong qoff = q->offset, ldq = q->ld, soff = elem_off(row_stats->offset, row_stats->dtype);
    cl_ulong ooff = elem_off(out->offset, out->dtype), ldo = out->ld, rows = q->rows, cols = q->cols;
    /* CPU: (2048 columns, row) per work-item; GENERIC: (8 columns, row) per work-item, grid-stride */
    size_t local[2] = {cpu ? 1 : 256, 1};
    size_t global[2] = {cpu ? ceil_div(q->cols, 2048) : clbnb_round_up(min_sz(ceil_div(q->cols, 8), 1024), local[0]),
                        cpu ? q->rows : min_sz(q->rows, cus(ctx) * 64)};
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    clbnb_status s = clbnb_kernel_get_locked(ctx, PROG, opts, cpu ? "dequant_rowwise_cpu" : "dequant_rowwise", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 11, CLBNB_ARG(q->mem), CLBNB_ARG(qoff), CLBNB_ARG(ldq), CLBNB_ARG(row_stats->mem),
                           CLBNB_ARG(soff), CLBNB_ARG(sdt), CLBNB_ARG(out->mem), CLBNB_ARG(ooff), CLBNB_ARG(ldo),
                           CLBNB_ARG(rows), CLBNB_ARG(cols));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 2, global, local, num_events, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ================================================================================================ */
/* Global absmax (stage 1) and the transposed quantization kernel                                   */
/* ================================================================================================ */
#define CHUNK_ELEMS 4096 /* cl/quant_int8.cl CHUNK default */

/* Logical shape for the chunked kernels: a contiguous x (and q, when not transposed) is one long
 * row, so chunks never straddle rows. */
typedef struct flat_shape {
    cl_ulong rows, cols, ldx, ldq, nch;
} flat_shape;

static flat_shape flatten(const clbnb_matrix *x, const clbnb_matrix *q) {
    flat_shape f = {x->rows, x->cols, x->ld, q ? q->ld : 0, 0};
    if (x->ld == x->cols && (!q || q->ld == q->cols)) {
        f.cols = (cl_ulong)x->rows * x->cols;
        f.rows = 1;
        f.ldx = f.cols;
        f.ldq = f.cols;
    }
    f.nch = ceil_div((size_t)f.cols, CHUNK_ELEMS);
    return f;
}

/* Number of stage-1 partials for a flat shape. H100, global quantize of 4096 x 4096 / 8192 x 8192
 * f16: 264 partials 45.8 / 149.4 us, 528 39.7 / 125.2, 1024 38.9 / 120.6, 2112 40.7 / 122.1,
 * 4224 42.8 / 124.4. Stage 2 sweeping x last chunk first (to read what stage 1 left in the 50 MB
 * L2) measured the same, 38.9 / 119.3 us (session 9): not kept. */
static size_t global_partials(const clbnb_context *ctx, const flat_shape *f) {
    size_t units = (size_t)(f->rows * f->nch);
    return min_sz(units, use_cpu(ctx) ? max_sz(cus(ctx) * 8, 64) : min_sz(cus(ctx) * 8, 1024));
}

/* The 7 arguments of the absmax partial kernels (x, xoff, ldx, rows, cols, nch, partials) from
 * argument `first` on. */
static clbnb_status set_absmax_args(cl_kernel k, int first, const clbnb_matrix *x, const flat_shape *f,
                                    cl_mem partials) {
    cl_ulong xoff = elem_off(x->offset, x->dtype);
    return clbnb_set_args_from(k, first, 7, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(f->ldx), CLBNB_ARG(f->rows),
                               CLBNB_ARG(f->cols), CLBNB_ARG(f->nch), CLBNB_ARG(partials));
}

static clbnb_status enqueue_absmax_partial(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                           const flat_shape *f, cl_mem partials, size_t np, chain *ch) {
    int cpu = use_cpu(ctx);
    char opts[64];
    prog_opts(opts, sizeof opts, x->dtype, CLBNB_DTYPE_F32, cpu);
    cl_kernel k;
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, cpu ? "absmax_partial_cpu" : "absmax_partial_wg", &k));
    CLBNB_TRY(set_absmax_args(k, 0, x, f, partials));
    size_t local = cpu ? 1 : WG_GENERIC, global = np * local;
    return chain_kernel(ch, queue, k, 1, &global, &local, 0);
}

/* qT[c, r] = code(x[r, c]); kind 0: global absmax from np partials (stats = absmax[0]);
 * kind 1: column absmax from the reduced column partials (stats = col_stats). */
static clbnb_status enqueue_transpose_quant(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                            const clbnb_matrix *q, const clbnb_vector *stats, int kind, cl_mem partials,
                                            size_t np, chain *ch, int last) {
    int cpu = use_cpu(ctx);
    char opts[64];
    prog_opts(opts, sizeof opts, x->dtype, CLBNB_DTYPE_F32, cpu);
    static const char *names[2][2] = {{"transpose_global_wg", "transpose_col_wg"},
                                      {"transpose_global_cpu", "transpose_col_cpu"}};
    cl_kernel k;
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, names[cpu][kind], &k));
    cl_int sdt = (cl_int)stats->dtype;
    cl_ulong xoff = elem_off(x->offset, x->dtype), ldx = x->ld, rows = x->rows, cols = x->cols;
    cl_ulong qoff = q->offset, ldq = q->ld, soff = elem_off(stats->offset, stats->dtype), npl = np;
    CLBNB_TRY(clbnb_set_args(k, 13, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx), CLBNB_ARG(rows),
                             CLBNB_ARG(cols), CLBNB_ARG(partials), CLBNB_ARG(npl), CLBNB_ARG(q->mem), CLBNB_ARG(qoff),
                             CLBNB_ARG(ldq), CLBNB_ARG(stats->mem), CLBNB_ARG(soff), CLBNB_ARG(sdt)));
    cl_ulong rps = 0;
    CLBNB_TRY((clbnb_status)clSetKernelArg(k, 13, sizeof rps, &rps));
    if (cpu) { /* (16 columns, rps rows, rps a multiple of 16) per work-item */
        size_t nseg = min_sz(ceil_div(x->rows, 16), max_sz(1, ceil_div(cus(ctx) * 16, ceil_div(x->cols, 16))));
        rps = clbnb_round_up(ceil_div(x->rows, nseg), 16);
        nseg = ceil_div(x->rows, (size_t)rps);
        CLBNB_TRY((clbnb_status)clSetKernelArg(k, 13, sizeof rps, &rps));
        size_t local[2] = {1, 1}, global[2] = {ceil_div(x->cols, 16), nseg};
        return chain_kernel(ch, queue, k, 2, global, local, last);
    }
    size_t tiles = ceil_div(x->rows, 64) * ceil_div(x->cols, 64);
    size_t local = WG_GENERIC, global = min_sz(tiles, cus(ctx) * 16) * local;
    return chain_kernel(ch, queue, k, 1, &global, &local, last);
}

static clbnb_status check_global(const clbnb_matrix *x, const clbnb_matrix *q, const clbnb_vector *absmax,
                                 int transpose) {
    if (!x || !q || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(x, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(q, CLBNB_DT(CLBNB_DTYPE_I8)));
    if (transpose ? (q->rows != x->cols || q->cols != x->rows) : (q->rows != x->rows || q->cols != x->cols))
        return CLBNB_ERROR_INVALID_SHAPE;
    return clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(x->dtype), 1);
}

/* Stage 2 of the (not transposed) global quantization: the absmax from the np partials, codes. */
static clbnb_status enqueue_global_quant(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                         const clbnb_matrix *q, const clbnb_vector *absmax, const flat_shape *f,
                                         cl_mem partials, size_t np, chain *ch) {
    int cpu = use_cpu(ctx);
    char opts[64];
    prog_opts(opts, sizeof opts, x->dtype, CLBNB_DTYPE_F32, cpu);
    cl_int sdt = (cl_int)absmax->dtype;
    cl_kernel k;
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, cpu ? "global_quant_cpu" : "global_quant_wg", &k));
    cl_ulong xoff = elem_off(x->offset, x->dtype), qoff = q->offset, aoff = elem_off(absmax->offset, absmax->dtype);
    cl_uint npu = (cl_uint)np;
    CLBNB_TRY(clbnb_set_args(k, 14, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(f->ldx), CLBNB_ARG(f->rows),
                             CLBNB_ARG(f->cols), CLBNB_ARG(f->nch), CLBNB_ARG(partials), CLBNB_ARG(npu),
                             CLBNB_ARG(q->mem), CLBNB_ARG(qoff), CLBNB_ARG(f->ldq), CLBNB_ARG(absmax->mem),
                             CLBNB_ARG(aoff), CLBNB_ARG(sdt)));
    size_t units = (size_t)(f->rows * f->nch);
    size_t local = cpu ? 1 : WG_GENERIC;
    size_t global = (cpu ? np : min_sz(units, cus(ctx) * 16)) * local;
    return chain_kernel(ch, queue, k, 1, &global, &local, 1);
}

clbnb_status clbnb_quantize_global(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                   const clbnb_matrix *q, const clbnb_vector *absmax, int transpose, cl_uint num_events,
                                   const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    CLBNB_TRY(check_global(x, q, absmax, transpose));

    flat_shape f = flatten(x, transpose ? NULL : q);
    size_t np = global_partials(ctx, &f);
    cl_mem partials;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, np * sizeof(float), &partials));
    chain ch = chain_start(num_events, wait_list, event);
    pthread_mutex_lock(&ctx->lock);
    clbnb_status s = enqueue_absmax_partial(ctx, queue, x, &f, partials, np, &ch);
    if (s == CLBNB_SUCCESS)
        s = transpose ? enqueue_transpose_quant(ctx, queue, x, q, absmax, 0, partials, np, &ch, 1)
                      : enqueue_global_quant(ctx, queue, x, q, absmax, &f, partials, np, &ch);
    pthread_mutex_unlock(&ctx->lock);
    chain_end(&ch);
    clbnb_scratch_release(ctx, queue, partials);
    return s;
}

/* SwitchBack forward, global variants (internal.h). GENERIC path with x and w of one dtype: the
 * row-wise launch of x also computes w's absmax partials (cl/quant_int8.cl,
 * rowwise_sb_with_absmax_wg), then w's codes; otherwise the two public calls one after the other. */
clbnb_status clbnb_quantize_switchback_inputs(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                              const clbnb_matrix *xq, const clbnb_vector *x_stats,
                                              const clbnb_matrix *w, const clbnb_matrix *wq,
                                              const clbnb_vector *w_absmax, cl_uint num_events,
                                              const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    CLBNB_TRY(check_rowwise(x, xq, x_stats, CLBNB_ROWWISE_SWITCHBACK, 0.0f, NULL, NULL));
    CLBNB_TRY(check_global(w, wq, w_absmax, 0));
    if (use_cpu(ctx) || x->dtype != w->dtype) {
        cl_event first = NULL;
        CLBNB_TRY(clbnb_quantize_rowwise(ctx, queue, x, xq, x_stats, CLBNB_ROWWISE_SWITCHBACK, 0.0f, NULL, NULL,
                                         num_events, wait_list, &first));
        clbnb_status s = clbnb_quantize_global(ctx, queue, w, wq, w_absmax, 0, 1, &first, event);
        clReleaseEvent(first);
        return s;
    }
    flat_shape f = flatten(w, wq);
    size_t np = global_partials(ctx, &f);
    cl_mem partials;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, np * sizeof(float), &partials));
    chain ch = chain_start(num_events, wait_list, event);
    pthread_mutex_lock(&ctx->lock);
    char opts[64];
    rowwise_opts(opts, sizeof opts, x->dtype, x->cols, 0);
    cl_kernel k;
    clbnb_status s = clbnb_kernel_get_locked(ctx, PROG, opts, "rowwise_sb_with_absmax_wg", &k);
    const size_t tpr = rowwise_tpr(x->cols);
    const cl_ulong row_groups = ceil_div(x->rows, WG_GENERIC / tpr), npl = np;
    if (s == CLBNB_SUCCESS) s = set_rowwise_args(k, x, xq, x_stats, 0.0f, NULL, tpr);
    if (s == CLBNB_SUCCESS) s = clbnb_set_args_from(k, 14, 1, CLBNB_ARG(row_groups));
    if (s == CLBNB_SUCCESS) s = set_absmax_args(k, 15, w, &f, partials);
    if (s == CLBNB_SUCCESS) s = clbnb_set_args_from(k, 22, 1, CLBNB_ARG(npl));
    size_t local = WG_GENERIC, global = (size_t)(row_groups + npl) * WG_GENERIC;
    if (s == CLBNB_SUCCESS) s = chain_kernel(&ch, queue, k, 1, &global, &local, 0);
    if (s == CLBNB_SUCCESS) s = enqueue_global_quant(ctx, queue, w, wq, w_absmax, &f, partials, np, &ch);
    pthread_mutex_unlock(&ctx->lock);
    chain_end(&ch);
    clbnb_scratch_release(ctx, queue, partials);
    return s;
}

/* ================================================================================================ */
/* Column maxima (stage 1 of column-wise and of double quant's column part)                         */
/* ================================================================================================ */
/* Row segments for the column partials: enough work-groups / work-items to fill the device. */
static size_t col_segments(const clbnb_context *ctx, size_t rows, size_t cols) {
    size_t nseg;
    if (use_cpu(ctx)) /* a work-item per segment, all columns */
        nseg = cus(ctx) * 4;
    else /* work-groups of 256 columns x 8 row lanes */
        nseg = max_sz(1, ceil_div(cus(ctx) * 8, ceil_div(cols, 256)));
    nseg = min_sz(min_sz(nseg, 64), ceil_div(rows, 8));
    size_t rps = ceil_div(rows, max_sz(nseg, 1));
    return ceil_div(rows, rps);
}

/* thr > 0: outliers left out of the maxima, and with `flags` (zeroed) their columns flagged
 * (colmax_flag_*). opts: the program's build options (the caller's: its kernels share one program). */
static clbnb_status enqueue_colmax(clbnb_context *ctx, cl_command_queue queue, const char *opts, const clbnb_matrix *x,
                                   float thr, cl_mem flags, cl_mem partials, size_t nseg, chain *ch) {
    int cpu = use_cpu(ctx);
    cl_kernel k;
    static const char *names[2][2] = {{"colmax_wg", "colmax_flag_wg"}, {"colmax_cpu", "colmax_flag_cpu"}};
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, names[cpu][flags != NULL], &k));
    cl_ulong xoff = elem_off(x->offset, x->dtype), ldx = x->ld, rows = x->rows, cols = x->cols;
    cl_ulong rps = ceil_div(x->rows, nseg);
    CLBNB_TRY(clbnb_set_args(k, 8, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx), CLBNB_ARG(rows), CLBNB_ARG(cols),
                             CLBNB_ARG(rps), CLBNB_ARG(thr), CLBNB_ARG(partials)));
    if (flags) CLBNB_TRY(clbnb_set_args_from(k, 8, 1, CLBNB_ARG(flags)));
    size_t local[2], global[2];
    if (cpu) {
        local[0] = 1;
        local[1] = 1;
        global[0] = nseg;
        global[1] = 1;
    } else { /* cl/quant_int8.cl CG x CH */
        local[0] = 32;
        local[1] = WG_GENERIC / 32;
        global[0] = ceil_div(x->cols, 256) * 32;
        global[1] = nseg * local[1];
    }
    CLBNB_TRY(chain_kernel(ch, queue, k, 2, global, local, 0));
    if (nseg == 1) return CLBNB_SUCCESS;
    /* fold the segments: partials[c] = column maximum */
    CLBNB_TRY(clbnb_kernel_get_locked(ctx, PROG, opts, "colmax_reduce", &k));
    cl_ulong nsegl = nseg;
    CLBNB_TRY(clbnb_set_args(k, 3, CLBNB_ARG(partials), CLBNB_ARG(nsegl), CLBNB_ARG(cols)));
    size_t l1 = 64, g1 = clbnb_round_up(min_sz(x->cols, 65536), 64);
    return chain_kernel(ch, queue, k, 1, &g1, &l1, 0);
}

clbnb_status clbnb_quantize_columnwise_transpose(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                                 const clbnb_matrix *qT, const clbnb_vector *col_stats,
                                                 cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    if (!x || !qT || !col_stats) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(x, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(qT, CLBNB_DT(CLBNB_DTYPE_I8)));
    if (qT->rows != x->cols || qT->cols != x->rows) return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(clbnb_check_vector(col_stats, CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16), x->cols));

    size_t nseg = col_segments(ctx, x->rows, x->cols), bytes;
    if (clbnb_mul_overflows(nseg * sizeof(float), x->cols, &bytes)) return CLBNB_ERROR_SIZE_OVERFLOW;
    cl_mem partials;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, bytes, &partials));
    chain ch = chain_start(num_events, wait_list, event);
    pthread_mutex_lock(&ctx->lock);
    char opts[64];
    prog_opts(opts, sizeof opts, x->dtype, CLBNB_DTYPE_F32, use_cpu(ctx));
    clbnb_status s = enqueue_colmax(ctx, queue, opts, x, 0.0f, NULL, partials, nseg, &ch);
    if (s == CLBNB_SUCCESS) s = enqueue_transpose_quant(ctx, queue, x, qT, col_stats, 1, partials, 1, &ch, 1);
    pthread_mutex_unlock(&ctx->lock);
    chain_end(&ch);
    clbnb_scratch_release(ctx, queue, partials);
    return s;
}

/* ================================================================================================ */
/* int8_double_quant                                                                                */
/* ================================================================================================ */
clbnb_status clbnb_int8_double_quant(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x, float threshold,
                                     const clbnb_matrix *out_row, const clbnb_matrix *out_col,
                                     const clbnb_vector *row_stats, const clbnb_vector *col_stats,
                                     const clbnb_vector *outlier_cols, const clbnb_vector *outlier_count,
                                     cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_start(ctx, queue, num_events, wait_list));
    if (!x || !out_row || !out_col || !row_stats || !col_stats) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(x, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(out_row, CLBNB_DT(CLBNB_DTYPE_I8)));
    CLBNB_TRY(clbnb_check_matrix(out_col, CLBNB_DT(CLBNB_DTYPE_I8)));
    if (out_row->rows != x->rows || out_row->cols != x->cols || out_col->rows != x->rows || out_col->cols != x->cols)
        return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(clbnb_check_vector(row_stats, CLBNB_DT(CLBNB_DTYPE_F32), x->rows));
    CLBNB_TRY(clbnb_check_vector(col_stats, CLBNB_DT(CLBNB_DTYPE_F32), x->cols));
    CLBNB_TRY(check_threshold(threshold));
    CLBNB_TRY(check_outliers(threshold, x->cols, outlier_cols, outlier_count));

    int cpu = use_cpu(ctx);
    size_t nseg = col_segments(ctx, x->rows, x->cols), bytes;
    if (clbnb_mul_overflows(nseg * sizeof(float), x->cols, &bytes)) return CLBNB_ERROR_SIZE_OVERFLOW;
    cl_mem partials = NULL, flags = NULL;
    int flags_zeroed = 0;
    const int outliers = threshold > 0.0f;
    const size_t flag_bytes = x->cols * sizeof(cl_uint);
    CLBNB_TRY(clbnb_scratch_acquire(ctx, bytes, &partials));
    if (outliers) {
        clbnb_status s = clbnb_scratch_acquire_zeroed(ctx, flag_bytes, &flags, &flags_zeroed);
        if (s != CLBNB_SUCCESS) {
            clbnb_scratch_release(ctx, queue, partials);
            return s;
        }
    }
    /* the column pass (maxima without the outliers, outlier columns flagged), then both parts from
     * one more read of x (cl/quant_int8.cl, dq_fused_*), then the outlier list */
    char opts[64];
    rowwise_opts(opts, sizeof opts, x->dtype, x->cols, cpu);
    chain ch = chain_start(num_events, wait_list, event);
    pthread_mutex_lock(&ctx->lock);
    clbnb_status s = CLBNB_SUCCESS;
    if (outliers && !flags_zeroed) s = chain_fill_zero(&ch, queue, flags, 0, flag_bytes, 0);
    if (s == CLBNB_SUCCESS) s = enqueue_colmax(ctx, queue, opts, x, threshold, flags, partials, nseg, &ch);
    cl_kernel k = NULL;
    if (s == CLBNB_SUCCESS) s = clbnb_kernel_get_locked(ctx, PROG, opts, cpu ? "dq_fused_cpu" : "dq_fused_wg", &k);
    if (s == CLBNB_SUCCESS) {
        const size_t tpr = rowwise_tpr(x->cols);
        size_t local = cpu ? 1 : WG_GENERIC, global = ceil_div(x->rows, WG_GENERIC / tpr) * WG_GENERIC;
        cl_ulong part = tpr; /* GENERIC: work-items per row; CPU: rows per work-item */
        if (cpu) {
            size_t segs = min_sz(x->rows, cus(ctx) * 4);
            part = ceil_div(x->rows, segs);
            global = ceil_div(x->rows, (size_t)part);
        }
        cl_ulong xoff = elem_off(x->offset, x->dtype), ldx = x->ld, rows = x->rows, cols = x->cols;
        cl_ulong qoff = out_row->offset, ldq = out_row->ld, soff = elem_off(row_stats->offset, CLBNB_DTYPE_F32);
        cl_ulong qcoff = out_col->offset, ldqc = out_col->ld, csoff = elem_off(col_stats->offset, CLBNB_DTYPE_F32);
        cl_uint tpru = (cl_uint)part;
        s = clbnb_set_args(k, 12, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx), CLBNB_ARG(out_row->mem),
                           CLBNB_ARG(qoff), CLBNB_ARG(ldq), CLBNB_ARG(row_stats->mem), CLBNB_ARG(soff), CLBNB_ARG(rows),
                           CLBNB_ARG(cols), CLBNB_ARG(threshold), CLBNB_ARG(flags));
        if (s == CLBNB_SUCCESS)
            s = cpu ? clbnb_set_args_from(k, 12, 1, CLBNB_ARG(part)) : clbnb_set_args_from(k, 12, 1, CLBNB_ARG(tpru));
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args_from(k, 13, 6, CLBNB_ARG(partials), CLBNB_ARG(out_col->mem), CLBNB_ARG(qcoff),
                                    CLBNB_ARG(ldqc), CLBNB_ARG(col_stats->mem), CLBNB_ARG(csoff));
        if (s == CLBNB_SUCCESS) s = chain_kernel(&ch, queue, k, 1, &global, &local, !outliers && !outlier_count);
    }
    if (s == CLBNB_SUCCESS && outliers)
        s = enqueue_compact(ctx, queue, opts, flags, x->cols, outlier_cols, outlier_count, &ch, 1);
    else if (s == CLBNB_SUCCESS && outlier_count)
        s = chain_fill_zero(&ch, queue, outlier_count->mem, outlier_count->offset, sizeof(cl_int), 1);
    pthread_mutex_unlock(&ctx->lock);
    chain_end(&ch);
    clbnb_scratch_release(ctx, queue, partials);
    release_flags(ctx, queue, flags, s, flag_bytes); /* NULL: none */
    return s;
}
