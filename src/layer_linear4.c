/* layer_linear4.c: Linear4bit / LinearNF4 / LinearFP4 (spec 6.1): Params4bit quantization of a
 * full-precision weight (double quantization by default) or a prequantized QuantState; forward via
 * clbnb_gemm_4bit (AUTO picks GEMV / small batch / dequant + SGEMM by M) with Linear4bit.forward's
 * compute-dtype roundings; backward grad_x via clbnb_gemm_4bit_grad_input. */
#include <stdlib.h>

#include "layers_internal.h"

struct clbnb_linear4 {
    clbnb_context *ctx;
    size_t n, k;
    clbnb_quant_state *qs;
    cl_mem packed;
    size_t packed_off;
    int compute_dtype; /* -1: the input's dtype */
    cl_mem bias;       /* f32 [N] as given (rounded to the compute dtype per call) */
    cl_mem bias_c;     /* bias rounded to the compute dtype of the last call */
    int bias_c_dt;     /* dtype bias_c holds, -2 when not computed */
    lay_ws xc, oc;
};

static clbnb_linear4_params make_params(clbnb_quant_type t) {
    clbnb_linear4_params p = {t, 64, 1, -1};
    return p;
}
clbnb_linear4_params clbnb_linear4_default_params(void) { return make_params(CLBNB_QUANT_FP4); }
clbnb_linear4_params clbnb_linear_nf4_params(void) { return make_params(CLBNB_QUANT_NF4); }
clbnb_linear4_params clbnb_linear_fp4_params(void) { return make_params(CLBNB_QUANT_FP4); }

void clbnb_linear4_free(clbnb_linear4 *l) {
    if (!l) return;
    if (l->qs) clbnb_quant_state_free(l->qs);
    if (l->packed) clReleaseMemObject(l->packed);
    if (l->bias) clReleaseMemObject(l->bias);
    if (l->bias_c) clReleaseMemObject(l->bias_c);
    lay_ws_release(&l->xc);
    lay_ws_release(&l->oc);
    free(l);
}

static clbnb_status check_compute(int cd) {
    if (cd != -1 && cd != CLBNB_DTYPE_F32 && cd != CLBNB_DTYPE_F16 && cd != CLBNB_DTYPE_BF16)
        return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    return CLBNB_SUCCESS;
}

static clbnb_status l4_bias(clbnb_linear4 *l, lay_seq *seq, const clbnb_vector *bias) {
    if (!bias) return CLBNB_SUCCESS;
    CLBNB_TRY(lay_copy_vector(l->ctx, seq, bias, CLBNB_DTYPE_F32, &l->bias));
    return lay_alloc(l->ctx, l->n * 4, &l->bias_c);
}

clbnb_status clbnb_linear4_init(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                const clbnb_matrix *weight, const clbnb_vector *bias,
                                const clbnb_linear4_params *params) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    clbnb_linear4_params p = params ? *params : clbnb_linear4_default_params();
    if (p.quant_type != CLBNB_QUANT_NF4 && p.quant_type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!clbnb_is_pow2(p.blocksize) || p.blocksize < 32 || p.blocksize > 4096) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(check_compute(p.compute_dtype));
    CLBNB_TRY(lay_check_mat(weight, CLBNB_DT_FLOAT, 0, 0));
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, weight->rows));
    size_t numel;
    CLBNB_TRY(lay_size_mul(weight->rows, weight->cols, 1, &numel));

    clbnb_linear4 *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->n = weight->rows;
    l->k = weight->cols;
    l->compute_dtype = p.compute_dtype;
    l->bias_c_dt = -2;
    size_t shape[2] = {l->n, l->k};
    lay_seq seq;
    cl_mem compact = NULL;
    clbnb_status s = lay_seq_begin(&seq, queue, 0, NULL);
    if (s == CLBNB_SUCCESS)
        s = clbnb_quant_state_init(&l->qs, ctx, queue, p.quant_type, p.blocksize, weight->dtype, 2, shape,
                                   p.compress_statistics != 0);
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, clbnb_quant_state_data_bytes(l->qs), &l->packed);
    if (s == CLBNB_SUCCESS) s = l4_bias(l, &seq, bias);
    /* the quantizer takes a flat vector: copy a strided weight to a compact one first */
    clbnb_vector flat = clbnb_vector_make(weight->mem, weight->offset, numel, weight->dtype);
    if (s == CLBNB_SUCCESS && weight->ld != weight->cols) {
        s = lay_copy_matrix(ctx, &seq, weight, weight->dtype, &compact);
        flat = clbnb_vector_make(compact, 0, numel, weight->dtype);
    }
    if (s == CLBNB_SUCCESS) s = lay_seq_step(&seq);
    if (s == CLBNB_SUCCESS) {
        clbnb_vector data = clbnb_vector_make(l->packed, 0, clbnb_quant_state_data_bytes(l->qs), CLBNB_DTYPE_U8);
        s = clbnb_quantize_state(ctx, queue, &flat, l->qs, &data, 0, NULL, NULL);
    }
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (compact) clReleaseMemObject(compact);
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_linear4_free(l);
        return s;
    }
    *out = l;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear4_init_quantized(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                          clbnb_quant_state *qs, const clbnb_vector *packed, const clbnb_vector *bias,
                                          const clbnb_linear4_params *params) {
    if (!out || !qs) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    clbnb_linear4_params p = params ? *params : clbnb_linear4_default_params();
    CLBNB_TRY(check_compute(p.compute_dtype));
    if (qs->quant_type != CLBNB_QUANT_NF4 && qs->quant_type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (qs->ndim != 2 || qs->shape[0] == 0 || qs->shape[1] == 0) return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    CLBNB_TRY(lay_check_vec(packed, CLBNB_DT(CLBNB_DTYPE_U8), clbnb_packed_4bit_bytes(qs->shape[0] * qs->shape[1])));
    if (bias) CLBNB_TRY(lay_check_vec(bias, CLBNB_DT_FLOAT, qs->shape[0]));
    clbnb_linear4 *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->n = qs->shape[0];
    l->k = qs->shape[1];
    l->compute_dtype = p.compute_dtype;
    l->bias_c_dt = -2;
    lay_seq seq;
    clbnb_status s = lay_seq_begin(&seq, queue, 0, NULL);
    if (s == CLBNB_SUCCESS) s = l4_bias(l, &seq, bias);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (s != CLBNB_SUCCESS) {
        clbnb_linear4_free(l);
        return s;
    }
    clRetainMemObject(packed->mem);
    l->packed = packed->mem;
    l->packed_off = packed->offset;
    l->qs = qs;
    *out = l;
    return CLBNB_SUCCESS;
}

const clbnb_quant_state *clbnb_linear4_state(const clbnb_linear4 *l, clbnb_vector *packed) {
    if (!l) return NULL;
    if (packed)
        *packed = clbnb_vector_make(l->packed, l->packed_off, clbnb_packed_4bit_bytes(l->n * l->k), CLBNB_DTYPE_U8);
    return l->qs;
}

static clbnb_absmax l4_absmax(const clbnb_linear4 *l) {
    const clbnb_quant_state *qs = l->qs;
    clbnb_absmax a = {0};
    if (!qs->nested) {
        clbnb_vector v = clbnb_vector_make(qs->absmax, 0, qs->n_blocks, CLBNB_DTYPE_F32);
        return clbnb_absmax_plain(&v);
    }
    a.absmax = clbnb_vector_make(qs->absmax, 0, qs->n_blocks, CLBNB_DTYPE_U8);
    size_t nb2 = (qs->n_blocks + qs->nested_blocksize - 1) / qs->nested_blocksize;
    a.absmax2 = clbnb_vector_make(qs->nested_absmax, 0, nb2, CLBNB_DTYPE_F32);
    a.code2 = clbnb_vector_make(qs->nested_code, 0, 256, CLBNB_DTYPE_F32);
    a.offset = clbnb_vector_make(qs->offset_buf, 0, 1, CLBNB_DTYPE_F32);
    a.blocksize2 = qs->nested_blocksize;
    return a;
}

/* A dtype narrower than (or different from) `from` in a way that rounds: converting f16 / bf16 to
 * f32 is exact; everything else may round. */
static int rounds(clbnb_dtype from, clbnb_dtype to) { return from != to && to != CLBNB_DTYPE_F32; }

clbnb_status clbnb_linear4_forward(clbnb_linear4 *l, cl_command_queue queue, const clbnb_matrix *x,
                                   const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                   cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_forward(ctx, queue, x, out, l->k, l->n, num_events, wait_list));
    const size_t m = x->rows;
    const clbnb_dtype cd = l->compute_dtype < 0 ? x->dtype : (clbnb_dtype)l->compute_dtype;
    const int conv_x = rounds(x->dtype, cd);
    /* the product is rounded to cd, then converted to out: one rounding unless cd is a 16-bit type
     * other than out's */
    const int conv_out = cd != CLBNB_DTYPE_F32 && cd != out->dtype;
    size_t bytes;
    CLBNB_TRY(lay_size_mul(m, l->k > l->n ? l->k : l->n, 4, &bytes));
    if (conv_x) CLBNB_TRY(lay_ws_ensure(ctx, &l->xc, m * l->k * clbnb_dtype_size(cd)));
    if (conv_out) CLBNB_TRY(lay_ws_ensure(ctx, &l->oc, m * l->n * clbnb_dtype_size(cd)));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    clbnb_vector bias = {0};
    if (l->bias) {
        /* bias.to(compute_dtype) */
        if (l->bias_c_dt != (int)cd) {
            CLBNB_TRY(lay_convert(ctx, &seq, l->bias, 0, l->n, CLBNB_DTYPE_F32, (int)cd, l->bias_c, 0, l->n,
                                  CLBNB_DTYPE_F32, 1, l->n, NULL));
            l->bias_c_dt = (int)cd;
        }
        bias = clbnb_vector_make(l->bias_c, 0, l->n, CLBNB_DTYPE_F32);
    }
    clbnb_matrix xin = *x, o = *out;
    if (conv_x) {
        CLBNB_TRY(lay_convert(ctx, &seq, x->mem, x->offset / clbnb_dtype_size(x->dtype), x->ld, x->dtype, -1, l->xc.mem,
                              0, l->k, cd, m, l->k, NULL));
        xin = clbnb_matrix_make(l->xc.mem, 0, m, l->k, cd);
    }
    if (conv_out) o = clbnb_matrix_make(l->oc.mem, 0, m, l->n, cd);
    clbnb_vector packed =
        clbnb_vector_make(l->packed, l->packed_off, clbnb_packed_4bit_bytes(l->n * l->k), CLBNB_DTYPE_U8);
    clbnb_absmax am = l4_absmax(l);
    CLBNB_TRY(lay_seq_step(&seq));
    CLBNB_TRY(clbnb_gemm_4bit(ctx, queue, &xin, &packed, &am, l->qs->quant_type, l->qs->blocksize,
                              l->bias ? &bias : NULL, &o, 0, NULL, NULL));
    if (conv_out)
        CLBNB_TRY(lay_convert(ctx, &seq, o.mem, 0, l->n, cd, -1, out->mem, out->offset / clbnb_dtype_size(out->dtype),
                              out->ld, out->dtype, m, l->n, NULL));
    return lay_seq_end(&seq, event);
}

clbnb_status clbnb_linear4_backward(clbnb_linear4 *l, cl_command_queue queue, const clbnb_matrix *grad_out,
                                    const clbnb_matrix *grad_x, const clbnb_vector *grad_bias, cl_uint num_events,
                                    const cl_event *wait_list, cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    CLBNB_TRY(lay_check_mat(grad_out, CLBNB_DT_FLOAT, 0, l->n));
    if (grad_x) {
        CLBNB_TRY(lay_check_mat(grad_x, CLBNB_DT_FLOAT, grad_out->rows, l->k));
        CLBNB_TRY(lay_no_overlap(grad_x, grad_out));
    }
    if (grad_bias) {
        CLBNB_TRY(lay_check_vec(grad_bias, CLBNB_DT_FLOAT, l->n));
        CLBNB_TRY(lay_no_overlap_v(grad_bias, grad_out));
        if (grad_x) CLBNB_TRY(lay_no_overlap_v(grad_bias, grad_x));
    }
    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    if (grad_x) {
        clbnb_vector packed =
            clbnb_vector_make(l->packed, l->packed_off, clbnb_packed_4bit_bytes(l->n * l->k), CLBNB_DTYPE_U8);
        clbnb_absmax am = l4_absmax(l);
        CLBNB_TRY(lay_seq_step(&seq));
        CLBNB_TRY(clbnb_gemm_4bit_grad_input(ctx, queue, grad_out, &packed, &am, l->qs->quant_type, l->qs->blocksize,
                                             grad_x, 0, NULL, NULL));
    }
    if (grad_bias) CLBNB_TRY(lay_colsum(ctx, &seq, grad_out, grad_bias));
    return lay_seq_end(&seq, event);
}
