/* int8_gemm.c: the int8 GEMM entry points: validation, path choice, launch. One kernel call per
 * operation; the epilogue (int32 out, LLM.int8 dequant, SwitchBack mixed / row-wise dequant) is a
 * compile-time option of the same kernels, so every path produces the same bits. */
#include <stdio.h>

#include "internal.h"

enum epilogue { EPI_INT32 = 0, EPI_LLM_INT8 = 1, EPI_MIXED = 2, EPI_ROWWISE = 3 };

struct gemm_call {
    const clbnb_matrix *a, *b, *out;
    enum epilogue epilogue;
    const clbnb_vector *sa, *sb, *bias; /* NULL where the epilogue has none */
};

static clbnb_status validate(const clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c,
                             cl_uint num_events, const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!c->a || !c->b || !c->out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(c->a, CLBNB_DT(CLBNB_DTYPE_I8)));
    CLBNB_TRY(clbnb_check_matrix(c->b, CLBNB_DT(CLBNB_DTYPE_I8)));
    uint32_t out_types = c->epilogue == EPI_INT32 ? CLBNB_DT(CLBNB_DTYPE_I32) : CLBNB_DT_FLOAT;
    CLBNB_TRY(clbnb_check_matrix(c->out, out_types));
    size_t M = c->a->rows, N = c->b->rows, K = c->a->cols;
    if (c->b->cols != K || c->out->rows != M || c->out->cols != N) return CLBNB_ERROR_INVALID_SHAPE;
    if (K > CLBNB_INT8_GEMM_MAX_K) return CLBNB_ERROR_K_TOO_LARGE;
    if (M > UINT32_MAX / 2 || N > UINT32_MAX / 2) return CLBNB_ERROR_INVALID_SHAPE;
    uint32_t stat_types = c->epilogue == EPI_LLM_INT8 ? CLBNB_DT(CLBNB_DTYPE_F32)
                                                      : CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16);
    if (c->epilogue != EPI_INT32) {
        if (!c->sa || !c->sb) return CLBNB_ERROR_NULL_ARGUMENT;
        CLBNB_TRY(clbnb_check_vector(c->sa, stat_types, M));
        CLBNB_TRY(clbnb_check_vector(c->sb, stat_types, c->epilogue == EPI_MIXED ? 1 : N));
        if (c->bias) CLBNB_TRY(clbnb_check_vector(c->bias, CLBNB_DT_FLOAT, N));
    }
    return CLBNB_SUCCESS;
}

static cl_ulong byte_offset(const clbnb_vector *v) { return v ? v->offset : 0; }
static cl_mem mem_of(const clbnb_vector *v) { return v ? v->mem : NULL; }

static clbnb_status launch(clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c, cl_uint num_events,
                           const cl_event *wait_list, cl_event *event) {
    const clbnb_matrix *a = c->a, *b = c->b, *out = c->out;
    cl_uint M = (cl_uint)a->rows, N = (cl_uint)b->rows, K = (cl_uint)a->cols;
    clbnb_path path = ctx->info.path[CLBNB_FAMILY_INT8_GEMM];
    char options[256];
    int n = 0;
    options[0] = '\0';
    /* the epilogue configuration travels as a kernel argument (see cl/inc_int8_epilogue.cl) */
    cl_uint cfg = (cl_uint)c->epilogue;
    if (c->epilogue != EPI_INT32)
        cfg |= (cl_uint)out->dtype << 4 | (cl_uint)c->sa->dtype << 8 | (cl_uint)c->sb->dtype << 12 |
               (cl_uint)(c->bias ? c->bias->dtype : CLBNB_DTYPE_F16) << 16 | (cl_uint)(c->bias != NULL) << 20;
    const char *program, *kernel_name;
    size_t local[2], global[2];
    if (path == CLBNB_PATH_NV_MMA) {
        int aligned = a->offset % 16 == 0 && a->ld % 16 == 0 && b->offset % 16 == 0 && b->ld % 16 == 0;
        int emulate = !ctx->info.nv_ptx_mma;
        snprintf(options + n, sizeof options - (size_t)n, "-DALIGNED16=%d -DCLBNB_PTX_EMULATE=%d", aligned, emulate);
        program = "int8_gemm_mma", kernel_name = "int8_gemm_mma";
        /* BM = BN = 128 with the default WARPS_M = WARPS_N = 2, MT = 4, NT = 8 */
        local[0] = 128, local[1] = 1;
        global[0] = (N + 127) / 128 * 128, global[1] = (M + 127) / 128;
    } else if (path == CLBNB_PATH_CPU) {
        program = "int8_gemm", kernel_name = "int8_gemm_cpu";
        local[0] = 8, local[1] = 1;
        global[0] = (N + 3) / 4, global[1] = M;
    } else { /* generic and dot4: the tiled kernel, with or without the device's DOT4 */
        int aligned = a->offset % 4 == 0 && a->ld % 4 == 0 && b->offset % 4 == 0 && b->ld % 4 == 0;
        int dot4 = path == CLBNB_PATH_DOT4 ? (int)ctx->info.dot4_impl : (int)CLBNB_DOT4_EMULATED;
        snprintf(options + n, sizeof options - (size_t)n, "-DDOT4_IMPL=%d -DALIGNED4=%d", dot4, aligned);
        program = "int8_gemm", kernel_name = "int8_gemm_tiled";
        local[0] = 16, local[1] = 16; /* TILE 64 / WPT 4 */
        global[0] = (N + 63) / 64 * 16, global[1] = (M + 63) / 64 * 16;
    }

    cl_ulong a_off = a->offset, lda = a->ld, b_off = b->offset, ldb = b->ld, out_off = out->offset, ldc = out->ld;
    cl_ulong sa_off = byte_offset(c->sa), sb_off = byte_offset(c->sb), bias_off = byte_offset(c->bias);
    cl_mem sa = mem_of(c->sa), sb = mem_of(c->sb), bias = mem_of(c->bias);
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, program, options, kernel_name, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 19, CLBNB_ARG(a->mem), CLBNB_ARG(a_off), CLBNB_ARG(lda), CLBNB_ARG(b->mem),
                           CLBNB_ARG(b_off), CLBNB_ARG(ldb), CLBNB_ARG(M), CLBNB_ARG(N), CLBNB_ARG(K),
                           CLBNB_ARG(out->mem), CLBNB_ARG(out_off), CLBNB_ARG(ldc), CLBNB_ARG(sa), CLBNB_ARG(sa_off),
                           CLBNB_ARG(sb), CLBNB_ARG(sb_off), CLBNB_ARG(bias), CLBNB_ARG(bias_off), CLBNB_ARG(cfg));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 2, global, local, num_events, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

static clbnb_status run(clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c, cl_uint num_events,
                        const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(validate(ctx, queue, c, num_events, wait_list));
    return launch(ctx, queue, c, num_events, wait_list, event);
}

clbnb_status clbnb_int8_linear_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                      const clbnb_matrix *b, const clbnb_matrix *c, cl_uint num_events,
                                      const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, c, EPI_INT32, NULL, NULL, NULL};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_scaled_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                      const clbnb_matrix *b, const clbnb_vector *row_stats,
                                      const clbnb_vector *col_stats, const clbnb_vector *bias, const clbnb_matrix *out,
                                      cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_LLM_INT8, row_stats, col_stats, bias};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_matmul_mixed_dequantize(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                const clbnb_matrix *b, const clbnb_vector *state_x,
                                                const clbnb_vector *state_w, const clbnb_vector *bias,
                                                const clbnb_matrix *out, cl_uint num_events,
                                                const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_MIXED, state_x, state_w, bias};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_matmul_rowwise_dequantize(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                  const clbnb_matrix *b, const clbnb_vector *state_x,
                                                  const clbnb_vector *state_w, const clbnb_vector *bias,
                                                  const clbnb_matrix *out, cl_uint num_events,
                                                  const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_ROWWISE, state_x, state_w, bias};
    return run(ctx, queue, &call, num_events, wait_list, event);
}
