/* quant_state.c: QuantState (bitsandbytes functional.QuantState, spec 4.1): a block-wise state that
 * owns its device buffers; quantize / dequantize through it, plain or nested absmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int state_blocksize_ok(clbnb_quant_type type, size_t bs) {
    if (!clbnb_is_pow2(bs)) return 0;
    if (type == CLBNB_QUANT_BLOCKWISE8) return bs >= 16 && bs <= 65536;
    return bs >= 32 && bs <= 4096;
}

static cl_mem create_buffer(clbnb_context *ctx, size_t bytes, const void *init, cl_int *err) {
    cl_mem_flags flags = CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0);
    return clCreateBuffer(ctx->context, flags, bytes, (void *)init, err);
}

clbnb_status clbnb_quant_state_init(clbnb_quant_state **out, clbnb_context *ctx, cl_command_queue queue,
                                    clbnb_quant_type type, size_t blocksize, clbnb_dtype dtype, int ndim,
                                    const size_t *shape, int nested) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    if (!shape) return CLBNB_ERROR_NULL_ARGUMENT;
    if (type != CLBNB_QUANT_NF4 && type != CLBNB_QUANT_FP4 && type != CLBNB_QUANT_BLOCKWISE8)
        return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!state_blocksize_ok(type, blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    if ((unsigned)dtype >= CLBNB_DTYPE_COUNT || !(CLBNB_DT_FLOAT & CLBNB_DT(dtype)))
        return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (ndim < 1 || ndim > CLBNB_MAX_DIMS) return CLBNB_ERROR_INVALID_SHAPE;
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 0) return CLBNB_ERROR_INVALID_SHAPE;
        if (clbnb_mul_overflows(numel, shape[d], &numel)) return CLBNB_ERROR_SIZE_OVERFLOW;
    }
    size_t elem_bytes;
    if (clbnb_mul_overflows(numel, 4, &elem_bytes)) return CLBNB_ERROR_SIZE_OVERFLOW;

    clbnb_quant_state *qs = calloc(1, sizeof *qs);
    if (!qs) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    qs->quant_type = type;
    qs->blocksize = blocksize;
    qs->dtype = dtype;
    qs->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        qs->shape[d] = shape[d];
    qs->numel = numel;
    qs->n_blocks = clbnb_blocks_count(numel, blocksize);
    qs->nested = nested ? 1 : 0;
    /* bitsandbytes: 4-bit states compress with blocksize 256; 8-bit nested reuses the outer blocksize */
    qs->nested_blocksize = nested ? (type == CLBNB_QUANT_BLOCKWISE8 ? blocksize : 256) : 0;

    const float *table = type == CLBNB_QUANT_NF4   ? clbnb_code_nf4()
                         : type == CLBNB_QUANT_FP4 ? clbnb_code_fp4()
                                                   : clbnb_code_dynamic();
    size_t table_n = type == CLBNB_QUANT_BLOCKWISE8 ? 256 : 16;
    cl_int err = CL_SUCCESS;
    qs->absmax = create_buffer(ctx, qs->n_blocks * (nested ? 1 : sizeof(float)), NULL, &err);
    if (err == CL_SUCCESS) qs->code = create_buffer(ctx, table_n * sizeof(float), table, &err);
    if (err == CL_SUCCESS && nested) {
        float zero = 0.0f;
        qs->nested_absmax =
            create_buffer(ctx, clbnb_blocks_count(qs->n_blocks, qs->nested_blocksize) * sizeof(float), NULL, &err);
        if (err == CL_SUCCESS) qs->nested_code = create_buffer(ctx, 256 * sizeof(float), clbnb_code_dynamic(), &err);
        if (err == CL_SUCCESS) qs->offset_buf = create_buffer(ctx, sizeof(float), &zero, &err);
        qs->offset = 0.0f;
        qs->offset_valid = 0;
    }
    if (err != CL_SUCCESS) {
        clbnb_quant_state_free(qs);
        return (clbnb_status)err;
    }
    *out = qs;
    return CLBNB_SUCCESS;
}

void clbnb_quant_state_free(clbnb_quant_state *qs) {
    if (!qs) return;
    cl_mem *mems[] = {&qs->absmax, &qs->code, &qs->nested_absmax, &qs->nested_code, &qs->offset_buf};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (*mems[i]) clReleaseMemObject(*mems[i]);
    free(qs);
}

size_t clbnb_quant_state_data_bytes(const clbnb_quant_state *qs) {
    if (!qs) return 0;
    return qs->quant_type == CLBNB_QUANT_BLOCKWISE8 ? qs->numel : clbnb_packed_4bit_bytes(qs->numel);
}

static clbnb_status check_state(const clbnb_quant_state *qs) {
    if (!qs || !qs->absmax || !qs->code) return CLBNB_ERROR_NULL_ARGUMENT;
    if (qs->nested && (!qs->nested_absmax || !qs->nested_code || !qs->offset_buf)) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!state_blocksize_ok(qs->quant_type, qs->blocksize) || qs->numel == 0 ||
        qs->n_blocks != clbnb_blocks_count(qs->numel, qs->blocksize))
        return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    if (qs->nested &&
        !(clbnb_is_pow2(qs->nested_blocksize) && qs->nested_blocksize >= 16 && qs->nested_blocksize <= 65536))
        return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    return CLBNB_SUCCESS;
}

static clbnb_vector vec(cl_mem m, size_t n, clbnb_dtype dt) { return clbnb_vector_make(m, 0, n, dt); }

clbnb_status clbnb_quantize_state(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                  clbnb_quant_state *qs, const clbnb_vector *data, cl_uint num_events,
                                  const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!x || !data) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(check_state(qs));
    if (!x->mem) return CLBNB_ERROR_NULL_ARGUMENT;
    if (x->dtype != qs->dtype || x->n != qs->numel) return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    CLBNB_TRY(clbnb_check_vector(x, CLBNB_DT_FLOAT, 1));
    CLBNB_TRY(clbnb_check_vector(data, CLBNB_DT(CLBNB_DTYPE_U8), clbnb_quant_state_data_bytes(qs)));
    int is8 = qs->quant_type == CLBNB_QUANT_BLOCKWISE8;
    clbnb_vector code = vec(qs->code, 256, CLBNB_DTYPE_F32);

    if (!qs->nested) {
        clbnb_vector am = vec(qs->absmax, qs->n_blocks, CLBNB_DTYPE_F32);
        return is8 ? clbnb_quantize_blockwise(ctx, queue, x, &code, qs->blocksize, data, &am, num_events, wait_list,
                                              event)
                   : clbnb_quantize_4bit(ctx, queue, x, qs->quant_type, qs->blocksize, data, &am, num_events, wait_list,
                                         event);
    }
    /* nested: f32 absmax into a scratch buffer, then compressed into the state (spec 3) */
    cl_mem scratch;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, qs->n_blocks * sizeof(float), &scratch));
    clbnb_vector am = vec(scratch, qs->n_blocks, CLBNB_DTYPE_F32);
    cl_event e1 = NULL;
    clbnb_status s =
        is8 ? clbnb_quantize_blockwise(ctx, queue, x, &code, qs->blocksize, data, &am, num_events, wait_list, &e1)
            : clbnb_quantize_4bit(ctx, queue, x, qs->quant_type, qs->blocksize, data, &am, num_events, wait_list, &e1);
    if (s == CLBNB_SUCCESS) {
        clbnb_vector q = vec(qs->absmax, qs->n_blocks, CLBNB_DTYPE_U8);
        clbnb_vector am2 =
            vec(qs->nested_absmax, clbnb_blocks_count(qs->n_blocks, qs->nested_blocksize), CLBNB_DTYPE_F32);
        clbnb_vector off = vec(qs->offset_buf, 1, CLBNB_DTYPE_F32);
        s = clbnb_absmax_compress(ctx, queue, &am, qs->nested_blocksize, &q, &am2, &off, 1, &e1, event);
        qs->offset_valid = 0;
    }
    if (e1) clReleaseEvent(e1);
    clbnb_scratch_release(ctx, queue, scratch);
    return s;
}

/* Elements [first, first + count) (validated by the callers): the data and statistics of those
 * blocks as sub-vectors, then the dequantizer of the state's type. */
static clbnb_status dequantize_range(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *data,
                                     const clbnb_quant_state *qs, size_t first, size_t count, const clbnb_vector *out,
                                     cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const int four = qs->quant_type != CLBNB_QUANT_BLOCKWISE8;
    const size_t b0 = first / qs->blocksize, nb = clbnb_blocks_count(count, qs->blocksize);
    clbnb_vector part = *data;
    part.offset += four ? first / 2 : first;
    part.n = four ? clbnb_packed_4bit_bytes(count) : count;
    clbnb_absmax am;
    memset(&am, 0, sizeof am);
    if (qs->nested) {
        const size_t bs2 = qs->nested_blocksize;
        am.absmax = clbnb_vector_make(qs->absmax, b0, nb, CLBNB_DTYPE_U8);
        am.absmax2 = clbnb_vector_make(qs->nested_absmax, b0 / bs2 * 4, clbnb_blocks_count(nb, bs2), CLBNB_DTYPE_F32);
        am.code2 = vec(qs->nested_code, 256, CLBNB_DTYPE_F32);
        am.offset = vec(qs->offset_buf, 1, CLBNB_DTYPE_F32);
        am.blocksize2 = bs2;
    } else {
        am.absmax = clbnb_vector_make(qs->absmax, b0 * 4, nb, CLBNB_DTYPE_F32);
    }
    if (!four) {
        clbnb_vector code = vec(qs->code, 256, CLBNB_DTYPE_F32);
        return clbnb_dequantize_blockwise_ex(ctx, queue, &part, &am, &code, qs->blocksize, out, num_events, wait_list,
                                             event);
    }
    return clbnb_dequantize_4bit(ctx, queue, &part, &am, qs->quant_type, qs->blocksize, out, num_events, wait_list,
                                 event);
}

/* The checks both entry points share (out's length is the caller's). */
static clbnb_status check_dequantize(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *data,
                                     const clbnb_quant_state *qs, const clbnb_vector *out, cl_uint num_events,
                                     const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!data || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(check_state(qs));
    CLBNB_TRY(clbnb_check_vector(out, CLBNB_DT_FLOAT, 1));
    CLBNB_TRY(clbnb_check_vector(data, CLBNB_DT(CLBNB_DTYPE_U8), clbnb_quant_state_data_bytes(qs)));
    if (qs->nested && qs->offset_valid && !isfinite(qs->offset)) return CLBNB_ERROR_NON_FINITE;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_dequantize_state(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *data,
                                    const clbnb_quant_state *qs, const clbnb_vector *out, cl_uint num_events,
                                    const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(check_dequantize(ctx, queue, data, qs, out, num_events, wait_list));
    if (out->n != qs->numel) return CLBNB_ERROR_QUANT_STATE_MISMATCH;
    return dequantize_range(ctx, queue, data, qs, 0, qs->numel, out, num_events, wait_list, event);
}

clbnb_status clbnb_dequantize_state_range(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *data,
                                          const clbnb_quant_state *qs, size_t first, size_t count,
                                          const clbnb_vector *out, cl_uint num_events, const cl_event *wait_list,
                                          cl_event *event) {
    CLBNB_TRY(check_dequantize(ctx, queue, data, qs, out, num_events, wait_list));
    if (count == 0 || first > qs->numel || count > qs->numel - first) return CLBNB_ERROR_INVALID_SHAPE;
    if (out->n != count) return CLBNB_ERROR_INVALID_SHAPE;
    if (first % (qs->blocksize * (qs->nested ? qs->nested_blocksize : 1)) != 0) return CLBNB_ERROR_INVALID_ARGUMENT;
    return dequantize_range(ctx, queue, data, qs, first, count, out, num_events, wait_list, event);
}

clbnb_status clbnb_quant_state_sync_offset(clbnb_quant_state *qs, cl_command_queue queue) {
    if (!qs || !queue) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!qs->nested || !qs->offset_buf) return CLBNB_ERROR_INVALID_ARGUMENT;
    cl_context qctx = NULL, mctx = NULL;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL);
    if (err == CL_SUCCESS) err = clGetMemObjectInfo(qs->offset_buf, CL_MEM_CONTEXT, sizeof mctx, &mctx, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    if (qctx != mctx) return CLBNB_ERROR_WRONG_CONTEXT;
    float f = 0.0f;
    err = clEnqueueReadBuffer(queue, qs->offset_buf, CL_TRUE, 0, sizeof f, &f, 0, NULL, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    qs->offset = f;
    qs->offset_valid = 1;
    return CLBNB_SUCCESS;
}
