/* layer_switchback.c: SwitchBackLinear (global, vector-wise, memory-efficient; spec 5.6) and
 * StandardLinear, the full-precision reference layer (CLBlast SGEMM in f32). */
#include <stdlib.h>

#include "layers_internal.h"

/* ============================================================================================ */
/* StandardLinear                                                                               */
/* ============================================================================================ */
struct clbnb_linear {
    clbnb_context *ctx;
    size_t n, k;
    cl_mem w;    /* f32 [N, K] */
    cl_mem bias; /* f32 [N] or NULL */
    lay_ws x32, g32, res, gw;
};

void clbnb_linear_free(clbnb_linear *l) {
    if (!l) return;
    if (l->w) clReleaseMemObject(l->w);
    if (l->bias) clReleaseMemObject(l->bias);
    lay_ws_release(&l->x32);
    lay_ws_release(&l->g32);
    lay_ws_release(&l->res);
    lay_ws_release(&l->gw);
    free(l);
}

clbnb_status clbnb_linear_init(clbnb_linear **out, clbnb_context *ctx, cl_command_queue queue,
                               const clbnb_matrix *weight, const clbnb_vector *bias) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    CLBNB_TRY(lay_check_mat(weight, CLBNB_DT_FLOAT, 0, 0));
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, weight->rows));
    clbnb_linear *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->n = weight->rows;
    l->k = weight->cols;
    lay_seq seq;
    clbnb_status s = lay_seq_begin(&seq, queue, 0, NULL);
    if (s == CLBNB_SUCCESS) s = lay_copy_matrix(ctx, &seq, weight, CLBNB_DTYPE_F32, &l->w);
    if (s == CLBNB_SUCCESS && bias) s = lay_copy_vector(ctx, &seq, bias, CLBNB_DTYPE_F32, &l->bias);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_linear_free(l);
        return s;
    }
    *out = l;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear_forward(clbnb_linear *l, cl_command_queue queue, const clbnb_matrix *x,
                                  const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                  cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_forward(ctx, queue, x, out, l->k, l->n, num_events, wait_list));
    size_t bytes;
    CLBNB_TRY(lay_size_mul(x->rows, l->k > l->n ? l->k : l->n, 4, &bytes));
    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    lay_f32 x32, res, w = {l->w, 0, l->k};
    CLBNB_TRY(lay_as_f32(ctx, &seq, x, -1, &l->x32, &x32));
    CLBNB_TRY(lay_f32_target(ctx, out, &l->res, &res));
    CLBNB_TRY(lay_sgemm(&seq, 0, 1, x->rows, l->n, l->k, &x32, &w, 0.0f, &res));
    clbnb_vector b = clbnb_vector_make(l->bias, 0, l->n, CLBNB_DTYPE_F32);
    CLBNB_TRY(lay_f32_finish(ctx, &seq, &res, out, l->bias ? &b : NULL));
    return lay_seq_end(&seq, event);
}

/* Validation shared by the backward passes: grad_out [M, N]; grad_x [M, K]; grad_w [N, K] needs x;
 * grad_bias [N]; outputs must not overlap inputs or each other. x_needed: x required for grad_w. */
static clbnb_status check_backward(size_t n, size_t k, const clbnb_matrix *x, int x_needed,
                                   const clbnb_matrix *grad_out, const clbnb_matrix *grad_x, const clbnb_matrix *grad_w,
                                   const clbnb_vector *grad_bias) {
    CLBNB_TRY(lay_check_mat(grad_out, CLBNB_DT_FLOAT, 0, n));
    const size_t m = grad_out->rows;
    if (grad_x) CLBNB_TRY(lay_check_mat(grad_x, CLBNB_DT_FLOAT, m, k));
    if (grad_w) {
        if (x_needed) CLBNB_TRY(lay_check_mat(x, CLBNB_DT_FLOAT, m, k));
        CLBNB_TRY(lay_check_mat(grad_w, CLBNB_DT_FLOAT, n, k));
    }
    if (grad_bias) CLBNB_TRY(lay_check_vec(grad_bias, CLBNB_DT_FLOAT, n));
    const clbnb_matrix *ins[2] = {grad_out, grad_w && x_needed ? x : NULL};
    const clbnb_matrix *outs[2] = {grad_x, grad_w};
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            if (outs[i] && ins[j]) CLBNB_TRY(lay_no_overlap(outs[i], ins[j]));
        if (grad_bias) CLBNB_TRY(lay_no_overlap_v(grad_bias, ins[i]));
        if (grad_bias) CLBNB_TRY(lay_no_overlap_v(grad_bias, outs[i]));
    }
    if (grad_x && grad_w) CLBNB_TRY(lay_no_overlap(grad_x, grad_w));
    size_t bytes;
    return lay_size_mul(m, n > k ? n : k, 4, &bytes);
}

clbnb_status clbnb_linear_backward(clbnb_linear *l, cl_command_queue queue, const clbnb_matrix *x,
                                   const clbnb_matrix *grad_out, const clbnb_matrix *grad_x, const clbnb_matrix *grad_w,
                                   const clbnb_vector *grad_bias, cl_uint num_events, const cl_event *wait_list,
                                   cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    CLBNB_TRY(check_backward(l->n, l->k, x, 1, grad_out, grad_x, grad_w, grad_bias));
    const size_t m = grad_out->rows;
    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    lay_f32 g32;
    if (grad_x || grad_w) CLBNB_TRY(lay_as_f32(ctx, &seq, grad_out, -1, &l->g32, &g32));
    if (grad_x) {
        lay_f32 res, w = {l->w, 0, l->k};
        CLBNB_TRY(lay_f32_target(ctx, grad_x, &l->res, &res));
        CLBNB_TRY(lay_sgemm(&seq, 0, 0, m, l->k, l->n, &g32, &w, 0.0f, &res));
        CLBNB_TRY(lay_f32_finish(ctx, &seq, &res, grad_x, NULL));
    }
    if (grad_w) {
        lay_f32 x32;
        CLBNB_TRY(lay_as_f32(ctx, &seq, x, -1, &l->x32, &x32));
        CLBNB_TRY(lay_grad_w(ctx, &seq, &g32, &x32, m, l->n, l->k, grad_w, &l->gw));
    }
    if (grad_bias) CLBNB_TRY(lay_colsum(ctx, &seq, grad_out, grad_bias));
    return lay_seq_end(&seq, event);
}

/* ============================================================================================ */
/* SwitchBackLinear                                                                             */
/* ============================================================================================ */
struct clbnb_switchback {
    clbnb_context *ctx;
    size_t n, k;
    clbnb_switchback_variant variant;
    cl_mem w; /* [N, K] in wdt (NULL after prepare_for_eval) */
    clbnb_dtype wdt;
    clbnb_dtype sw_dt; /* dtype of the global W scale: f16 for f16 weights, else f32 */
    cl_mem bias;       /* [N] in bias_dt or NULL */
    clbnb_dtype bias_dt;
    cl_mem wq, sw; /* quantized W: i8 [N, K] + scale(s) (eval: persistent) */
    int eval;
    lay_ws xq, sx;           /* forward X_int8 [M, K] + f16 maxima [M] (saved by the memory-efficient variant) */
    size_t saved_m;          /* rows of the saved X_int8 (memory-efficient), 0 when none */
    lay_ws gq, sg, wtq, swt; /* backward: G_int8, state_G, transposed W_int8 [K, N], its scale(s) */
    lay_ws g32, x32, xh, gw;
};

void clbnb_switchback_free(clbnb_switchback *l) {
    if (!l) return;
    cl_mem mems[] = {l->w, l->bias, l->wq, l->sw};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) clReleaseMemObject(mems[i]);
    lay_ws *ws[] = {&l->xq, &l->sx, &l->gq, &l->sg, &l->wtq, &l->swt, &l->g32, &l->x32, &l->xh, &l->gw};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        lay_ws_release(ws[i]);
    free(l);
}

clbnb_status clbnb_switchback_init(clbnb_switchback **out, clbnb_context *ctx, cl_command_queue queue,
                                   const clbnb_matrix *weight, const clbnb_vector *bias,
                                   clbnb_switchback_variant variant) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    if (variant != CLBNB_SWITCHBACK_GLOBAL && variant != CLBNB_SWITCHBACK_VECTORWISE &&
        variant != CLBNB_SWITCHBACK_GLOBAL_MEMORY_EFFICIENT)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(lay_check_mat(weight, CLBNB_DT_FLOAT, 0, 0));
    if (weight->rows > CLBNB_INT8_GEMM_MAX_K || weight->cols > CLBNB_INT8_GEMM_MAX_K) return CLBNB_ERROR_K_TOO_LARGE;
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, weight->rows));
    clbnb_switchback *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->n = weight->rows;
    l->k = weight->cols;
    l->variant = variant;
    l->wdt = weight->dtype;
    l->sw_dt = weight->dtype == CLBNB_DTYPE_F16 ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32;
    lay_seq seq;
    clbnb_status s = lay_seq_begin(&seq, queue, 0, NULL);
    if (s == CLBNB_SUCCESS) s = lay_copy_matrix(ctx, &seq, weight, weight->dtype, &l->w);
    if (s == CLBNB_SUCCESS && bias) {
        l->bias_dt = bias->dtype;
        s = lay_copy_vector(ctx, &seq, bias, bias->dtype, &l->bias);
    }
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, l->n * l->k, &l->wq);
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, l->n * 4, &l->sw);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_switchback_free(l);
        return s;
    }
    *out = l;
    return CLBNB_SUCCESS;
}

static clbnb_matrix sb_w(const clbnb_switchback *l) { return clbnb_matrix_make(l->w, 0, l->n, l->k, l->wdt); }
static clbnb_matrix sb_wq(const clbnb_switchback *l) { return clbnb_matrix_make(l->wq, 0, l->n, l->k, CLBNB_DTYPE_I8); }
static clbnb_vector sb_sw(const clbnb_switchback *l) {
    return l->variant == CLBNB_SWITCHBACK_VECTORWISE ? clbnb_vector_make(l->sw, 0, l->n, CLBNB_DTYPE_F16)
                                                     : clbnb_vector_make(l->sw, 0, 1, l->sw_dt);
}

/* W_int8, state_W = quantize_rowwise(W) (vector-wise) or quantize_global(W). */
static clbnb_status quantize_w(clbnb_switchback *l, lay_seq *seq) {
    clbnb_matrix w = sb_w(l), wq = sb_wq(l);
    clbnb_vector sw = sb_sw(l);
    CLBNB_TRY(lay_seq_step(seq));
    if (l->variant == CLBNB_SWITCHBACK_VECTORWISE)
        return clbnb_quantize_rowwise(l->ctx, seq->queue, &w, &wq, &sw, CLBNB_ROWWISE_SWITCHBACK, 0.0f, NULL, NULL, 0,
                                      NULL, NULL);
    return clbnb_quantize_global(l->ctx, seq->queue, &w, &wq, &sw, 0, 0, NULL, NULL);
}

clbnb_status clbnb_switchback_prepare_for_eval(clbnb_switchback *l, cl_command_queue queue) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(l->ctx, queue, 0, NULL));
    if (l->eval) return CLBNB_SUCCESS;
    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, 0, NULL));
    CLBNB_TRY(quantize_w(l, &seq));
    CLBNB_TRY((clbnb_status)clFinish(queue));
    clReleaseMemObject(l->w);
    l->w = NULL;
    l->eval = 1;
    l->saved_m = 0;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_switchback_forward(clbnb_switchback *l, cl_command_queue queue, const clbnb_matrix *x,
                                      const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                      cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_forward(ctx, queue, x, out, l->k, l->n, num_events, wait_list));
    const size_t m = x->rows;
    size_t bytes;
    CLBNB_TRY(lay_size_mul(m, l->k, 1, &bytes));
    CLBNB_TRY(lay_ws_ensure(ctx, &l->xq, bytes));
    CLBNB_TRY(lay_ws_ensure(ctx, &l->sx, m * 2));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    clbnb_matrix xq = clbnb_matrix_make(l->xq.mem, 0, m, l->k, CLBNB_DTYPE_I8), wq = sb_wq(l);
    clbnb_vector sx = clbnb_vector_make(l->sx.mem, 0, m, CLBNB_DTYPE_F16), sw = sb_sw(l);
    CLBNB_TRY(lay_seq_step(&seq));
    if (!l->eval && l->variant != CLBNB_SWITCHBACK_VECTORWISE) {
        /* both quantizations at once: fewer launches, memory kept busy (src/quant_int8.c) */
        clbnb_matrix w = sb_w(l);
        CLBNB_TRY(clbnb_quantize_switchback_inputs(ctx, queue, x, &xq, &sx, &w, &wq, &sw, 0, NULL, NULL));
    } else {
        CLBNB_TRY(
            clbnb_quantize_rowwise(ctx, queue, x, &xq, &sx, CLBNB_ROWWISE_SWITCHBACK, 0.0f, NULL, NULL, 0, NULL, NULL));
        if (!l->eval) CLBNB_TRY(quantize_w(l, &seq));
    }
    clbnb_vector bias = clbnb_vector_make(l->bias, 0, l->n, l->bias_dt);
    CLBNB_TRY(lay_seq_step(&seq));
    if (l->variant == CLBNB_SWITCHBACK_VECTORWISE)
        CLBNB_TRY(clbnb_int8_matmul_rowwise_dequantize(ctx, queue, &xq, &wq, &sx, &sw, l->bias ? &bias : NULL, out, 0,
                                                       NULL, NULL));
    else
        CLBNB_TRY(clbnb_int8_matmul_mixed_dequantize(ctx, queue, &xq, &wq, &sx, &sw, l->bias ? &bias : NULL, out, 0,
                                                     NULL, NULL));
    l->saved_m = l->variant == CLBNB_SWITCHBACK_GLOBAL_MEMORY_EFFICIENT ? m : 0;
    return lay_seq_end(&seq, event);
}

clbnb_status clbnb_switchback_backward(clbnb_switchback *l, cl_command_queue queue, const clbnb_matrix *x,
                                       const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                       const clbnb_matrix *grad_w, const clbnb_vector *grad_bias, cl_uint num_events,
                                       const cl_event *wait_list, cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    if (l->eval) return CLBNB_ERROR_INVALID_ARGUMENT;
    const int memeff = l->variant == CLBNB_SWITCHBACK_GLOBAL_MEMORY_EFFICIENT;
    CLBNB_TRY(check_backward(l->n, l->k, x, !memeff, grad_out, grad_x, grad_w, grad_bias));
    const size_t m = grad_out->rows, n = l->n, k = l->k;
    if (memeff && grad_w && l->saved_m != m) return CLBNB_ERROR_INVALID_ARGUMENT;

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    if (grad_w) {
        lay_f32 g32, x32;
        CLBNB_TRY(lay_as_f32(ctx, &seq, grad_out, -1, &l->g32, &g32));
        if (memeff) {
            /* real_X = dequantize_rowwise(X_int8, state_X) (fp16), then .to(G.dtype) */
            CLBNB_TRY(lay_ws_ensure(ctx, &l->xh, m * k * 2));
            clbnb_matrix xq = clbnb_matrix_make(l->xq.mem, 0, m, k, CLBNB_DTYPE_I8);
            clbnb_matrix xh = clbnb_matrix_make(l->xh.mem, 0, m, k, CLBNB_DTYPE_F16);
            clbnb_vector sx = clbnb_vector_make(l->sx.mem, 0, m, CLBNB_DTYPE_F16);
            CLBNB_TRY(lay_seq_step(&seq));
            CLBNB_TRY(clbnb_dequantize_rowwise(ctx, queue, &xq, &sx, &xh, CLBNB_ROWWISE_SWITCHBACK, 0, NULL, NULL));
            CLBNB_TRY(lay_as_f32(ctx, &seq, &xh, (int)grad_out->dtype, &l->x32, &x32));
        } else {
            CLBNB_TRY(lay_as_f32(ctx, &seq, x, (int)grad_out->dtype, &l->x32, &x32));
        }
        CLBNB_TRY(lay_grad_w(ctx, &seq, &g32, &x32, m, n, k, grad_w, &l->gw));
    }
    if (grad_x) {
        CLBNB_TRY(lay_ws_ensure(ctx, &l->gq, m * n));
        CLBNB_TRY(lay_ws_ensure(ctx, &l->sg, m * 2));
        CLBNB_TRY(lay_ws_ensure(ctx, &l->wtq, n * k));
        CLBNB_TRY(lay_ws_ensure(ctx, &l->swt, k * 4));
        clbnb_matrix gq = clbnb_matrix_make(l->gq.mem, 0, m, n, CLBNB_DTYPE_I8);
        clbnb_vector sg = clbnb_vector_make(l->sg.mem, 0, m, CLBNB_DTYPE_F16);
        clbnb_matrix wtq = clbnb_matrix_make(l->wtq.mem, 0, k, n, CLBNB_DTYPE_I8), w = sb_w(l);
        CLBNB_TRY(lay_seq_step(&seq));
        CLBNB_TRY(clbnb_quantize_rowwise(ctx, queue, grad_out, &gq, &sg, CLBNB_ROWWISE_SWITCHBACK, 0.0f, NULL, NULL, 0,
                                         NULL, NULL));
        CLBNB_TRY(lay_seq_step(&seq));
        if (l->variant == CLBNB_SWITCHBACK_VECTORWISE) {
            clbnb_vector sc = clbnb_vector_make(l->swt.mem, 0, k, CLBNB_DTYPE_F16);
            CLBNB_TRY(clbnb_quantize_columnwise_transpose(ctx, queue, &w, &wtq, &sc, 0, NULL, NULL));
            CLBNB_TRY(lay_seq_step(&seq));
            CLBNB_TRY(
                clbnb_int8_matmul_rowwise_dequantize(ctx, queue, &gq, &wtq, &sg, &sc, NULL, grad_x, 0, NULL, NULL));
        } else {
            /* quantize_global_transpose(W): the same codes and scale as the forward's quantize_global,
             * written transposed (the memory-efficient variant's W_int8.t().contiguous()) */
            clbnb_vector sc = clbnb_vector_make(l->swt.mem, 0, 1, l->sw_dt);
            CLBNB_TRY(clbnb_quantize_global(ctx, queue, &w, &wtq, &sc, 1, 0, NULL, NULL));
            CLBNB_TRY(lay_seq_step(&seq));
            CLBNB_TRY(clbnb_int8_matmul_mixed_dequantize(ctx, queue, &gq, &wtq, &sg, &sc, NULL, grad_x, 0, NULL, NULL));
        }
    }
    if (grad_bias) CLBNB_TRY(lay_colsum(ctx, &seq, grad_out, grad_bias));
    return lay_seq_end(&seq, event);
}
