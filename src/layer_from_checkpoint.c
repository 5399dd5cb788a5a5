/* layer_from_checkpoint.c: ready-to-run Linear4bit / Linear8bitLt layers from the quantized linear
 * weights of a bitsandbytes checkpoint (clbnb_checkpoint_load_linear; spec 4.3 / 4.4). */
#include <string.h>

#include "layers_internal.h"

clbnb_status clbnb_linear4_init_from_weights(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                             clbnb_linear_weights *w, const clbnb_linear4_params *params) {
    if (!out || !w) return CLBNB_ERROR_NULL_ARGUMENT;
    if (w->info.kind != CLBNB_LINEAR_NF4 && w->info.kind != CLBNB_LINEAR_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!w->state || !w->weight) return CLBNB_ERROR_NULL_ARGUMENT;
    const clbnb_quant_state *qs = w->state;
    if (qs->ndim != 2 || qs->shape[0] != w->info.out_features || qs->shape[1] != w->info.in_features ||
        (qs->quant_type == CLBNB_QUANT_NF4) != (w->info.kind == CLBNB_LINEAR_NF4))
        return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    if (w->info.has_bias != (w->bias != NULL)) return CLBNB_ERROR_INVALID_ARGUMENT;
    size_t numel;
    CLBNB_TRY(lay_size_mul(qs->shape[0], qs->shape[1], 1, &numel));
    /* any quant_storage holds the same byte stream (spec 2.5) */
    clbnb_vector packed = clbnb_vector_make(w->weight, 0, clbnb_packed_4bit_bytes(numel), CLBNB_DTYPE_U8);
    clbnb_vector bias = clbnb_vector_make(w->bias, 0, w->info.out_features, w->info.bias_dtype);
    CLBNB_TRY(clbnb_linear4_init_quantized(out, ctx, queue, w->state, &packed, w->bias ? &bias : NULL, params));
    /* the layer owns the state, retains the packed buffer and copied the bias */
    w->state = NULL;
    clbnb_linear_weights_release(w);
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear8_init_from_weights(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                             clbnb_linear_weights *w, const clbnb_linear8_params *params) {
    if (!out || !w) return CLBNB_ERROR_NULL_ARGUMENT;
    if (w->info.kind != CLBNB_LINEAR_INT8) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!w->weight || !w->scb) return CLBNB_ERROR_NULL_ARGUMENT;
    if (w->info.has_bias != (w->bias != NULL)) return CLBNB_ERROR_INVALID_ARGUMENT;
    clbnb_matrix cb = clbnb_matrix_make(w->weight, 0, w->info.out_features, w->info.in_features, CLBNB_DTYPE_I8);
    clbnb_vector scb = clbnb_vector_make(w->scb, 0, w->info.out_features, CLBNB_DTYPE_F32);
    clbnb_vector bias = clbnb_vector_make(w->bias, 0, w->info.out_features, w->info.bias_dtype);
    CLBNB_TRY(clbnb_linear8_init_quantized(out, ctx, queue, &cb, &scb, w->bias ? &bias : NULL, params));
    clbnb_linear_weights_release(w); /* the layer copied CB, SCB and the bias */
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_linear4_from_checkpoint(clbnb_linear4 **out, const clbnb_checkpoint *ck, clbnb_context *ctx,
                                           cl_command_queue queue, const char *prefix,
                                           const clbnb_linear4_params *params, clbnb_file_error *err) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_linear_weights w;
    CLBNB_TRY(clbnb_checkpoint_load_linear(ck, ctx, queue, prefix, &w, err));
    clbnb_status s = clbnb_linear4_init_from_weights(out, ctx, queue, &w, params);
    if (s != CLBNB_SUCCESS) clbnb_linear_weights_release(&w);
    return s;
}

clbnb_status clbnb_linear8_from_checkpoint(clbnb_linear8 **out, const clbnb_checkpoint *ck, clbnb_context *ctx,
                                           cl_command_queue queue, const char *prefix,
                                           const clbnb_linear8_params *params, clbnb_file_error *err) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_linear_weights w;
    CLBNB_TRY(clbnb_checkpoint_load_linear(ck, ctx, queue, prefix, &w, err));
    clbnb_status s = clbnb_linear8_init_from_weights(out, ctx, queue, &w, params);
    if (s != CLBNB_SUCCESS) clbnb_linear_weights_release(&w);
    return s;
}
