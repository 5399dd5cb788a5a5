/* layer_linear8.c: Linear8bitLt (LLM.int8() with the outlier decomposition, spec 5.5).
 * Forward: x -> f16 -> row-wise int8 with outlier detection (columns and count stay on the device)
 * -> fused scaled int8 matmul with bias -> outlier product added by lay_outlier_add or the tiled
 * kernel of linear8_outlier.cl, or fused into the int8 GEMM (on GPUs at up to 4 rows; on the
 * tensor-core path for f16 / bf16 outputs where K is not split), all reading the outlier count on
 * the device (no host read-back, nothing blocks).
 * Backward: grad_x = G (CB * SCB/127) through f32 dequantized weight tiles and CLBlast SGEMM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers_internal.h"

/* f32 weight tile for backward (elements): at most 64 MiB */
#define L8_TILE_ELEMS ((size_t)16 << 20)

struct clbnb_linear8 {
    clbnb_context *ctx;
    size_t n, k;
    clbnb_linear8_params p;
    cl_mem cb, scb; /* i8 [N, K], f32 [N] */
    cl_mem w16;     /* has_fp16_weights: f16 [N, K] */
    cl_mem bias;    /* [N] of bias_dt, or NULL */
    clbnb_dtype bias_dt;
    cl_mem pool;                               /* u32 [K] */
    int quantized;                             /* CB valid (has_fp16_weights: after the first forward) */
    lay_ws xh, ca, sca, ocols, ocount, oflags; /* forward workspaces */
    int oflags_zeroed;                         /* oflags is all zero: the last forward's compaction cleared it */
    lay_ws g32, w32, acc;                      /* backward workspaces */
    lay_ws x32, gw;
};

clbnb_linear8_params clbnb_linear8_default_params(void) {
    clbnb_linear8_params p = {0.0f, 0, 0};
    return p;
}

void clbnb_linear8_free(clbnb_linear8 *l) {
    if (!l) return;
    cl_mem mems[] = {l->cb, l->scb, l->w16, l->bias, l->pool};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) clReleaseMemObject(mems[i]);
    lay_ws *ws[] = {&l->xh,  &l->ca,  &l->sca, &l->ocols, &l->ocount, &l->oflags,
                    &l->g32, &l->w32, &l->acc, &l->x32,   &l->gw};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        lay_ws_release(ws[i]);
    free(l);
}

static clbnb_status check_params(const clbnb_linear8_params *p) {
    if (!(p->threshold >= 0.0f) || p->threshold != p->threshold || p->threshold > 3.0e38f)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    return CLBNB_SUCCESS;
}

/* Common part of both constructors: allocates the struct, bias, pool. */
static clbnb_status l8_new(clbnb_linear8 **out, clbnb_context *ctx, lay_seq *seq, size_t n, size_t k,
                           const clbnb_vector *bias, const clbnb_linear8_params *p) {
    clbnb_linear8 *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->n = n;
    l->k = k;
    l->p = *p;
    clbnb_status s = lay_alloc(ctx, n * 4, &l->scb);
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, n * k, &l->cb);
    if (s == CLBNB_SUCCESS && bias) {
        l->bias_dt = bias->dtype;
        s = lay_copy_vector(ctx, seq, bias, bias->dtype, &l->bias);
    }
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, k * 4, &l->pool);
    if (s == CLBNB_SUCCESS) {
        cl_uint zero = 0;
        s = lay_seq_step(seq);
        if (s == CLBNB_SUCCESS)
            s = (clbnb_status)clEnqueueFillBuffer(seq->queue, l->pool, &zero, sizeof zero, 0, k * 4, 0, NULL, NULL);
    }
    if (s != CLBNB_SUCCESS) {
        clbnb_linear8_free(l);
        return s;
    }
    *out = l;
    return CLBNB_SUCCESS;
}

static clbnb_matrix cb_mat(const clbnb_linear8 *l) { return clbnb_matrix_make(l->cb, 0, l->n, l->k, CLBNB_DTYPE_I8); }
static clbnb_vector scb_vec(const clbnb_linear8 *l) { return clbnb_vector_make(l->scb, 0, l->n, CLBNB_DTYPE_F32); }

clbnb_status clbnb_linear8_init(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                const clbnb_matrix *weight, const clbnb_vector *bias,
                                const clbnb_linear8_params *params) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    clbnb_linear8_params p = params ? *params : clbnb_linear8_default_params();
    CLBNB_TRY(check_params(&p));
    CLBNB_TRY(lay_check_mat(weight, CLBNB_DT_FLOAT, 0, 0));
    if (weight->rows > CLBNB_INT8_GEMM_MAX_K || weight->cols > CLBNB_INT8_GEMM_MAX_K) return CLBNB_ERROR_K_TOO_LARGE;
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, weight->rows));
    size_t bytes;
    CLBNB_TRY(lay_size_mul(weight->rows, weight->cols, 2, &bytes));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, 0, NULL));
    clbnb_linear8 *l = NULL;
    CLBNB_TRY(l8_new(&l, ctx, &seq, weight->rows, weight->cols, bias, &p));
    /* Int8Params: CB, SCB = int8_vectorwise_quant(W.half()) */
    clbnb_status s = lay_copy_matrix(ctx, &seq, weight, CLBNB_DTYPE_F16, &l->w16);
    if (s == CLBNB_SUCCESS) s = lay_seq_step(&seq);
    if (s == CLBNB_SUCCESS) {
        clbnb_matrix w = clbnb_matrix_make(l->w16, 0, l->n, l->k, CLBNB_DTYPE_F16), cb = cb_mat(l);
        clbnb_vector scb = scb_vec(l);
        s = clbnb_quantize_rowwise(ctx, queue, &w, &cb, &scb, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL, NULL);
    }
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (s == CLBNB_SUCCESS && !p.has_fp16_weights) {
        clReleaseMemObject(l->w16);
        l->w16 = NULL;
    }
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_linear8_free(l);
        return s;
    }
    l->quantized = 1;
    *out = l;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear8_init_quantized(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                          const clbnb_matrix *cb, const clbnb_vector *scb, const clbnb_vector *bias,
                                          const clbnb_linear8_params *params) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    clbnb_linear8_params p = params ? *params : clbnb_linear8_default_params();
    CLBNB_TRY(check_params(&p));
    if (p.has_fp16_weights) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(lay_check_mat(cb, CLBNB_DT(CLBNB_DTYPE_I8), 0, 0));
    if (cb->rows > CLBNB_INT8_GEMM_MAX_K || cb->cols > CLBNB_INT8_GEMM_MAX_K) return CLBNB_ERROR_K_TOO_LARGE;
    CLBNB_TRY(lay_check_vec(scb, CLBNB_DT(CLBNB_DTYPE_F32), cb->rows));
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, cb->rows));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, 0, NULL));
    clbnb_linear8 *l = NULL;
    CLBNB_TRY(l8_new(&l, ctx, &seq, cb->rows, cb->cols, bias, &p));
    clbnb_status s = lay_seq_step(&seq);
    /* copy CB row by row region (rectangular copy handles ld) and SCB */
    if (s == CLBNB_SUCCESS) {
        size_t src_origin[3] = {cb->offset, 0, 0}, dst_origin[3] = {0, 0, 0}, region[3] = {cb->cols, cb->rows, 1};
        s = (clbnb_status)clEnqueueCopyBufferRect(queue, cb->mem, l->cb, src_origin, dst_origin, region, cb->ld, 0,
                                                  cb->cols, 0, 0, NULL, NULL);
    }
    if (s == CLBNB_SUCCESS)
        s = (clbnb_status)clEnqueueCopyBuffer(queue, scb->mem, l->scb, scb->offset, 0, l->n * 4, 0, NULL, NULL);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_linear8_free(l);
        return s;
    }
    l->quantized = 1;
    *out = l;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear8_weights(const clbnb_linear8 *l, clbnb_matrix *cb, clbnb_vector *scb) {
    if (!l || !cb || !scb) return CLBNB_ERROR_NULL_ARGUMENT;
    *cb = cb_mat(l);
    *scb = scb_vec(l);
    return CLBNB_SUCCESS;
}

/* Tiling of lin8_outlier_add_tiled (cl/linear8_outlier.cl): outputs per work-group (OA_TN), row
 * lanes (OA_TR), rows per work-item (OA_RPT), outlier columns per pass (OA_JC). H100 sweep
 * (2048 x 4096 f16 out, 8 outlier columns): 64,4,8,8 45.8 us; the former 64,4,16,32 54.5;
 * 64,4,16,8 47.2; 32,8,8,8 57.4; 64,2,8,8 56.3; 128,2,8,8 65.2; 64,8,4,8 70.3; 128,4,4,8 80.2.
 * Since the outputs are loaded before the staging (session 7), the threshold-6 forward: 64,8,8,8
 * 248.6 us; 64,4,8,8 253.4-255.0; 64,2,32,8 252.7; 32,8,8,8 253.2; 64,2,16,8 255.2; 64,4,16,8
 * 258.1; 128,4,8,8 269.8; 128,2,8,8 270.5; 64,4,4,8 287.0 (threshold 0: 193.3-196.0).
 * CLBNB_OA_CONFIG="tn,tr,rpt,jc" overrides it (development knob, read per call). Tried and measured
 * slower (session 6): the weights of the outlier columns gathered once by a separate kernel (8.2 us),
 * then a streaming add of 8 outputs per work-item with 16-byte accesses, x read per row (48.3 us at
 * best, 86-117 us with 8 rows per work-item): the cb gather is not what costs here. */
typedef struct oa_tiling {
    int tn, tr, rpt, jc;
} oa_tiling;

static oa_tiling oa_config(void) {
    oa_tiling t = {64, 8, 8, 8}, e;
    const char *env = getenv("CLBNB_OA_CONFIG");
    if (env && sscanf(env, "%d,%d,%d,%d", &e.tn, &e.tr, &e.rpt, &e.jc) == 4 &&
        (e.tn == 32 || e.tn == 64 || e.tn == 128) && e.tr >= 1 && e.tr <= 16 && e.tn * e.tr <= 1024 && e.rpt >= 1 &&
        e.rpt <= 32 && (e.jc == 8 || e.jc == 16 || e.jc == 32) &&
        (e.jc * e.tn + e.tr * e.rpt * (e.jc + 1)) * 4 <= 32768)
        t = e;
    return t;
}

/* The outlier product added to out by lay_outlier_add or the tiled kernel (caller holds ctx->lock). */
static clbnb_status enqueue_outlier_add_locked(clbnb_linear8 *l, cl_command_queue queue, const clbnb_matrix *x,
                                               const clbnb_matrix *out) {
    clbnb_context *ctx = l->ctx;
    cl_ulong ooff = out->offset / clbnb_dtype_size(out->dtype), ldo = out->ld;
    cl_ulong xoff = x->offset / clbnb_dtype_size(x->dtype), ldx = x->ld;
    cl_ulong zero = 0, ldcb = l->k, rows = x->rows, cols = l->n;
    cl_int odt = (cl_int)out->dtype, xdt = (cl_int)x->dtype;
    /* CPU path and a few rows (token generation: the tiled kernel would stage 64 rows of x for
     * one): one work-item per output reading its weights through the caches; elsewhere the tiled
     * kernel of linear8_outlier.cl (64 outputs x 64 rows per work-group, weights staged once).
     * Both give the same bits. */
    const int cpu = ctx->info.path[CLBNB_FAMILY_INT8_GEMM] == CLBNB_PATH_CPU;
    const int tiled = !cpu && x->rows > 8;
    oa_tiling t = oa_config();
    while ((size_t)t.tn * (size_t)t.tr > ctx->info.max_work_group_size && t.tr > 1) /* small devices */
        t.tr /= 2, t.rpt *= 2;
    const size_t rows_per_group = (size_t)t.tr * (size_t)t.rpt;
    size_t local[2] = {tiled ? (size_t)t.tn : cpu ? 16 : 64, tiled ? (size_t)t.tr : 1};
    size_t global[2] = {l->n, tiled ? (size_t)t.tr * ((x->rows + rows_per_group - 1) / rows_per_group) : x->rows};
    char options[96];
    snprintf(options, sizeof options, "-DOA_TN=%d -DOA_TR=%d -DOA_RPT=%d -DOA_JC=%d", t.tn, t.tr, t.rpt, t.jc);
    cl_kernel k = NULL;
    CLBNB_TRY(tiled ? clbnb_kernel_get_locked(ctx, "linear8_outlier", options, "lin8_outlier_add_tiled", &k)
                    : clbnb_kernel_get_locked(ctx, "layers", "", "lay_outlier_add", &k));
    CLBNB_TRY(clbnb_set_args(k, 17, CLBNB_ARG(out->mem), CLBNB_ARG(ooff), CLBNB_ARG(ldo), CLBNB_ARG(odt),
                             CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx), CLBNB_ARG(xdt), CLBNB_ARG(l->cb),
                             CLBNB_ARG(zero), CLBNB_ARG(ldcb), CLBNB_ARG(l->scb), CLBNB_ARG(zero),
                             CLBNB_ARG(l->ocols.mem), CLBNB_ARG(l->ocount.mem), CLBNB_ARG(rows), CLBNB_ARG(cols)));
    return clbnb_enqueue(queue, k, 2, global, local, 0, NULL, NULL);
}

/* The outlier pool's marks of this forward's outlier columns (caller holds ctx->lock). */
static clbnb_status enqueue_pool_mark_locked(clbnb_linear8 *l, cl_command_queue queue) {
    cl_kernel k = NULL;
    CLBNB_TRY(clbnb_kernel_get_locked(l->ctx, "layers", "", "lay_pool_mark", &k));
    cl_ulong kk = l->k;
    CLBNB_TRY(
        clbnb_set_args(k, 4, CLBNB_ARG(l->ocols.mem), CLBNB_ARG(l->ocount.mem), CLBNB_ARG(l->pool), CLBNB_ARG(kk)));
    size_t g1 = l->k, l1 = lay_is_cpu(l->ctx) ? 16 : 64;
    return clbnb_enqueue(queue, k, 1, &g1, &l1, 0, NULL, NULL);
}

/* After the GEMM: the outlier product (unless the GEMM fused it) and the outlier pool's marks. */
static clbnb_status outlier_add(clbnb_linear8 *l, lay_seq *seq, const clbnb_matrix *x, const clbnb_matrix *out,
                                int fused) {
    if (fused && !l->p.pool_outliers) return CLBNB_SUCCESS;
    CLBNB_TRY(lay_seq_step(seq));
    pthread_mutex_lock(&l->ctx->lock);
    clbnb_status s = fused ? CLBNB_SUCCESS : enqueue_outlier_add_locked(l, seq->queue, x, out);
    if (s == CLBNB_SUCCESS && l->p.pool_outliers) s = enqueue_pool_mark_locked(l, seq->queue);
    pthread_mutex_unlock(&l->ctx->lock);
    return s;
}

clbnb_status clbnb_linear8_forward(clbnb_linear8 *l, cl_command_queue queue, const clbnb_matrix *x,
                                   const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                   cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_forward(ctx, queue, x, out, l->k, l->n, num_events, wait_list));
    const size_t m = x->rows, k = l->k;
    size_t mk;
    CLBNB_TRY(lay_size_mul(m, k, 2, &mk));
    const int thr = l->p.threshold > 0.0f;

    /* workspaces */
    CLBNB_TRY(lay_ws_ensure(ctx, &l->ca, m * k));
    CLBNB_TRY(lay_ws_ensure(ctx, &l->sca, m * 4));
    if (x->dtype != CLBNB_DTYPE_F16) CLBNB_TRY(lay_ws_ensure(ctx, &l->xh, mk));
    if (thr) {
        CLBNB_TRY(lay_ws_ensure(ctx, &l->ocols, k * 4));
        CLBNB_TRY(lay_ws_ensure(ctx, &l->ocount, 4));
        const cl_mem before = l->oflags.mem;
        CLBNB_TRY(lay_ws_ensure(ctx, &l->oflags, clbnb_outlier_flags_bytes(k)));
        if (l->oflags.mem != before) l->oflags_zeroed = 0;
    }

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    /* 1. bitsandbytes quantizes A.half() */
    clbnb_matrix xh = *x;
    if (x->dtype != CLBNB_DTYPE_F16) {
        CLBNB_TRY(lay_convert(ctx, &seq, x->mem, x->offset / clbnb_dtype_size(x->dtype), x->ld, x->dtype, -1, l->xh.mem,
                              0, k, CLBNB_DTYPE_F16, m, k, NULL));
        xh = clbnb_matrix_make(l->xh.mem, 0, m, k, CLBNB_DTYPE_F16);
    }
    clbnb_matrix cb = cb_mat(l), ca = clbnb_matrix_make(l->ca.mem, 0, m, k, CLBNB_DTYPE_I8);
    clbnb_vector scb = scb_vec(l), sca = clbnb_vector_make(l->sca.mem, 0, m, CLBNB_DTYPE_F32);
    /* 2. has_fp16_weights: quantize the weight on the fly */
    if (l->p.has_fp16_weights) {
        clbnb_matrix w = clbnb_matrix_make(l->w16, 0, l->n, k, CLBNB_DTYPE_F16);
        CLBNB_TRY(lay_seq_step(&seq));
        CLBNB_TRY(
            clbnb_quantize_rowwise(ctx, queue, &w, &cb, &scb, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL, NULL));
        l->quantized = 1;
    }
    /* 3. activations, with outlier detection */
    clbnb_vector oc = {0}, on = {0};
    if (thr) {
        oc = clbnb_vector_make(l->ocols.mem, 0, k, CLBNB_DTYPE_I32);
        on = clbnb_vector_make(l->ocount.mem, 0, 1, CLBNB_DTYPE_I32);
    }
    CLBNB_TRY(lay_seq_step(&seq));
    /* the flags are zero after this call only if all of it is enqueued (the compaction clears them) */
    const int zeroed = l->oflags_zeroed;
    l->oflags_zeroed = 0;
    CLBNB_TRY(clbnb_quantize_rowwise_ws(ctx, queue, &xh, &ca, &sca, CLBNB_ROWWISE_LLM_INT8, l->p.threshold,
                                        thr ? &oc : NULL, thr ? &on : NULL, thr ? l->oflags.mem : NULL, zeroed, 0, NULL,
                                        NULL));
    l->oflags_zeroed = thr;
    /* 4. fused scaled int8 matmul with bias (and, for a few rows on GPUs, the outlier product) */
    clbnb_vector bias = clbnb_vector_make(l->bias, 0, l->n, l->bias_dt);
    CLBNB_TRY(lay_seq_step(&seq));
    const clbnb_outlier_product op = {x->mem, l->ocols.mem,    l->ocount.mem, x->offset / clbnb_dtype_size(x->dtype),
                                      x->ld,  (cl_int)x->dtype};
    int fused = 0;
    CLBNB_TRY(clbnb_int8_scaled_matmul_outliers(ctx, queue, &ca, &cb, &sca, &scb, l->bias ? &bias : NULL, out,
                                                thr ? &op : NULL, &fused));
    /* 5. outlier columns in x's precision against the dequantized int8 weight columns */
    if (thr) CLBNB_TRY(outlier_add(l, &seq, x, out, fused));
    return lay_seq_end(&seq, event);
}

static clbnb_status dequant_cb(clbnb_linear8 *l, lay_seq *seq, size_t row0, size_t rows, int rdt, cl_mem dst) {
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_seq_step(seq));
    cl_ulong zero = 0, ldcb = l->k, r0 = row0, nr = rows, cols = l->k;
    cl_int crdt = rdt;
    size_t local[2] = {lay_is_cpu(ctx) ? 16 : 64, 1};
    size_t global[2] = {l->k, rows};
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_dequant_cb", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 10, CLBNB_ARG(l->cb), CLBNB_ARG(zero), CLBNB_ARG(ldcb), CLBNB_ARG(l->scb),
                           CLBNB_ARG(zero), CLBNB_ARG(r0), CLBNB_ARG(nr), CLBNB_ARG(cols), CLBNB_ARG(crdt),
                           CLBNB_ARG(dst));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 2, global, local, 0, NULL, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

clbnb_status clbnb_linear8_backward(clbnb_linear8 *l, cl_command_queue queue, const clbnb_matrix *x,
                                    const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                    const clbnb_matrix *grad_w, const clbnb_vector *grad_bias, cl_uint num_events,
                                    const cl_event *wait_list, cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    CLBNB_TRY(lay_check_mat(grad_out, CLBNB_DT_FLOAT, 0, l->n));
    const size_t m = grad_out->rows, n = l->n, k = l->k;
    if (grad_w && !l->p.has_fp16_weights) return CLBNB_ERROR_INVALID_ARGUMENT;
    if (grad_x) {
        CLBNB_TRY(lay_check_mat(grad_x, CLBNB_DT_FLOAT, m, k));
        CLBNB_TRY(lay_no_overlap(grad_x, grad_out));
    }
    if (grad_w) {
        CLBNB_TRY(lay_check_mat(x, CLBNB_DT_FLOAT, m, k));
        CLBNB_TRY(lay_check_mat(grad_w, CLBNB_DT_FLOAT, n, k));
        CLBNB_TRY(lay_no_overlap(grad_w, grad_out));
        CLBNB_TRY(lay_no_overlap(grad_w, x));
        if (grad_x) CLBNB_TRY(lay_no_overlap(grad_w, grad_x));
    }
    if (grad_bias) {
        CLBNB_TRY(lay_check_vec(grad_bias, CLBNB_DT_FLOAT, n));
        CLBNB_TRY(lay_no_overlap_v(grad_bias, grad_out));
        if (grad_x) CLBNB_TRY(lay_no_overlap_v(grad_bias, grad_x));
    }
    if (grad_x && grad_w && x) CLBNB_TRY(lay_no_overlap(grad_x, x));
    size_t bytes;
    CLBNB_TRY(lay_size_mul(m, n > k ? n : k, 4, &bytes));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    if (grad_x) {
        /* bitsandbytes: grad_output.to(dtype_A) @ CB.to(dtype_A) * (SCB / 127), dtype_A = grad_x's dtype */
        const int rdt = (int)grad_x->dtype;
        lay_f32 g32, dst;
        CLBNB_TRY(lay_as_f32(ctx, &seq, grad_out, rdt, &l->g32, &g32));
        CLBNB_TRY(lay_f32_target(ctx, grad_x, &l->acc, &dst));
        size_t limit = L8_TILE_ELEMS;
        if (ctx->info.max_alloc_bytes && limit > ctx->info.max_alloc_bytes / 4)
            limit = (size_t)(ctx->info.max_alloc_bytes / 4);
        size_t tn = limit / k;
        if (tn < 1) tn = 1;
        if (tn > n) tn = n;
        CLBNB_TRY(lay_ws_ensure(ctx, &l->w32, tn * k * 4));
        for (size_t n0 = 0; n0 < n; n0 += tn) {
            size_t nt = n - n0 < tn ? n - n0 : tn;
            CLBNB_TRY(dequant_cb(l, &seq, n0, nt, rdt, l->w32.mem));
            lay_f32 a = {g32.mem, g32.off + n0, g32.ld}, b = {l->w32.mem, 0, k};
            CLBNB_TRY(lay_sgemm(&seq, 0, 0, m, k, nt, &a, &b, n0 == 0 ? 0.0f : 1.0f, &dst));
        }
        CLBNB_TRY(lay_f32_finish(ctx, &seq, &dst, grad_x, NULL));
    }
    if (grad_w) {
        lay_f32 g32, x32;
        CLBNB_TRY(lay_as_f32(ctx, &seq, grad_out, -1, &l->g32, &g32));
        CLBNB_TRY(lay_as_f32(ctx, &seq, x, -1, &l->x32, &x32));
        CLBNB_TRY(lay_grad_w(ctx, &seq, &g32, &x32, m, n, k, grad_w, &l->gw));
    }
    if (grad_bias) CLBNB_TRY(lay_colsum(ctx, &seq, grad_out, grad_bias));
    return lay_seq_end(&seq, event);
}

clbnb_status clbnb_linear8_outlier_pool(clbnb_linear8 *l, cl_command_queue queue, int32_t *cols, size_t capacity,
                                        size_t *count) {
    if (!l || !count || (!cols && capacity)) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(l->ctx, queue, 0, NULL));
    cl_uint *flags = malloc(l->k * sizeof *flags);
    if (!flags) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    cl_int err = clEnqueueReadBuffer(queue, l->pool, CL_TRUE, 0, l->k * 4, flags, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        free(flags);
        return (clbnb_status)err;
    }
    size_t c = 0;
    for (size_t i = 0; i < l->k; i++)
        if (flags[i]) {
            if (c < capacity) cols[c] = (int32_t)i;
            c++;
        }
    free(flags);
    *count = c;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear8_outlier_pool_reset(clbnb_linear8 *l, cl_command_queue queue) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(l->ctx, queue, 0, NULL));
    cl_uint zero = 0;
    return (clbnb_status)clEnqueueFillBuffer(queue, l->pool, &zero, sizeof zero, 0, l->k * 4, 0, NULL, NULL);
}
