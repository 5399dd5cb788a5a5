/* builtin_tables.c: device copies of the built-in code tables, created once per context. */
#include "internal.h"

clbnb_status clbnb_builtin_table(clbnb_context *ctx, cl_command_queue queue, clbnb_quant_type type, cl_mem *out) {
    cl_mem *slot;
    const float *table;
    size_t count;
    switch (type) {
    case CLBNB_QUANT_NF4: slot = &ctx->table_nf4, table = clbnb_code_nf4(), count = 16; break;
    case CLBNB_QUANT_FP4: slot = &ctx->table_fp4, table = clbnb_code_fp4(), count = 16; break;
    case CLBNB_QUANT_BLOCKWISE8: slot = &ctx->dynamic_code, table = clbnb_code_dynamic(), count = 256; break;
    default: return CLBNB_ERROR_INVALID_QUANT_TYPE;
    }
    (void)queue;
    clbnb_status s = CLBNB_SUCCESS;
    pthread_mutex_lock(&ctx->lock);
    if (!*slot) {
        cl_int err;
        /* CL_MEM_COPY_HOST_PTR: the data is in place before any queue can use the buffer */
        *slot = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, count * sizeof(float),
                               (void *)table, &err);
        if (err != CL_SUCCESS) {
            *slot = NULL;
            s = (clbnb_status)err;
        }
    }
    *out = *slot;
    pthread_mutex_unlock(&ctx->lock);
    return s;
}
