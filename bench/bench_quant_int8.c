/* bench_quant_int8.c: int8 quantization benchmarks (row-wise, global, column-wise, double quant).
 * Rates count the bytes each operation must move at least once: input read + outputs written
 * (+ stats), against the in-run copy bandwidth. GPU: f16 4096x4096 (32 MiB in) and 8192x8192;
 * CPU: 2048x2048.
 * Anchors (H100, spec 9.1 / bnb): int8_vectorwise_quant 1096 GB/s (282 with threshold 6), Triton
 * quantize_rowwise 2152 GB/s, quantize_global 715 GB/s. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef enum { OP_ROW, OP_DEQ, OP_GLOBAL, OP_GLOBAL_T, OP_COLT, OP_DOUBLE } op_kind;

struct i8_args {
    bench_session *s;
    op_kind op;
    clbnb_rowwise_mode mode;
    float thr;
    clbnb_matrix x, q, qT, q2, out;
    clbnb_vector rs, cs, oc, cnt, amax;
};

static clbnb_status enqueue_op(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct i8_args *a = user;
    clbnb_context *ctx = a->s->ctx;
    (void)iteration;
    int outl = a->thr > 0.0f;
    switch (a->op) {
    case OP_ROW:
        return clbnb_quantize_rowwise(ctx, queue, &a->x, &a->q, &a->rs, a->mode, a->thr, outl ? &a->oc : NULL,
                                      outl ? &a->cnt : NULL, 0, NULL, event);
    case OP_DEQ: return clbnb_dequantize_rowwise(ctx, queue, &a->q, &a->rs, &a->out, a->mode, 0, NULL, event);
    case OP_GLOBAL: return clbnb_quantize_global(ctx, queue, &a->x, &a->q, &a->amax, 0, 0, NULL, event);
    case OP_GLOBAL_T: return clbnb_quantize_global(ctx, queue, &a->x, &a->qT, &a->amax, 1, 0, NULL, event);
    case OP_COLT: return clbnb_quantize_columnwise_transpose(ctx, queue, &a->x, &a->qT, &a->cs, 0, NULL, event);
    case OP_DOUBLE:
        return clbnb_int8_double_quant(ctx, queue, &a->x, a->thr, &a->q, &a->q2, &a->rs, &a->cs, outl ? &a->oc : NULL,
                                       outl ? &a->cnt : NULL, 0, NULL, event);
    }
    return CLBNB_ERROR_INVALID_ARGUMENT;
}

/* Writes |x| = 10 into `ncols` columns (every 64th row) of a f16 matrix: outliers at threshold 6. */
static void inject_outliers(bench_session *s, cl_mem x, size_t rows, size_t cols, int ncols) {
    const uint16_t ten = 0x4900; /* 10.0 in f16 */
    for (int k = 0; k < ncols; k++) {
        size_t c = (size_t)(k * 509 + 17) % cols;
        for (size_t r = (size_t)k; r < rows; r += 64)
            clEnqueueWriteBuffer(s->queue, x, CL_FALSE, (r * cols + c) * 2, 2, &ten, 0, NULL, NULL);
    }
    clFinish(s->queue);
}

static void run_op(bench_session *s, const char *name, op_kind op, clbnb_rowwise_mode mode, float thr, size_t rows,
                   size_t cols) {
    if (!bench_selected(s, name)) return;
    size_t n = rows * cols;
    const clbnb_dtype xdt = CLBNB_DTYPE_F16, odt = CLBNB_DTYPE_F16;
    clbnb_dtype sdt = mode == CLBNB_ROWWISE_SWITCHBACK ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32;
    struct i8_args a;
    memset(&a, 0, sizeof a);
    a.s = s, a.op = op, a.mode = mode, a.thr = thr;
    cl_mem xm = bench_random_floats(s, n, xdt, 21), qm = bench_random_buffer(s, n, 22), q2m = bench_alloc(s, n),
           om = op == OP_DEQ ? bench_alloc(s, n * 2) : bench_alloc(s, 64), rsm = bench_random_floats(s, rows, sdt, 23),
           csm = bench_alloc(s, cols * 4), ocm = bench_alloc(s, cols * 4), cntm = bench_alloc(s, 4),
           am = bench_alloc(s, 4);
    double us = -1;
    if (xm && qm && q2m && om && rsm && csm && ocm && cntm && am) {
        if (thr > 0.0f) inject_outliers(s, xm, rows, cols, 8);
        a.x = clbnb_matrix_make(xm, 0, rows, cols, xdt);
        a.q = clbnb_matrix_make(qm, 0, rows, cols, CLBNB_DTYPE_I8);
        a.q2 = clbnb_matrix_make(q2m, 0, rows, cols, CLBNB_DTYPE_I8);
        a.qT = clbnb_matrix_make(q2m, 0, cols, rows, CLBNB_DTYPE_I8);
        a.out = clbnb_matrix_make(om, 0, rows, cols, odt);
        a.rs = clbnb_vector_make(rsm, 0, rows, sdt);
        a.cs = clbnb_vector_make(csm, 0, cols, op == OP_COLT ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32);
        a.oc = clbnb_vector_make(ocm, 0, cols, CLBNB_DTYPE_I32);
        a.cnt = clbnb_vector_make(cntm, 0, 1, CLBNB_DTYPE_I32);
        a.amax = clbnb_vector_make(am, 0, 1, CLBNB_DTYPE_F32);
        /* one kernel (row-wise without threshold, dequantize): timed from its own start, as the
         * copy reference; the others from the end of the cache flush */
        int one_kernel = (op == OP_ROW && thr == 0.0f) || op == OP_DEQ;
        us = one_kernel ? bench_time_kernel_us(s, enqueue_op, &a) : bench_time_us(s, enqueue_op, &a);
    }
    size_t ss = clbnb_dtype_size(sdt);
    double bytes = 0;
    switch (op) {
    case OP_ROW: bytes = (double)(n * 2 + n + rows * ss); break;
    case OP_DEQ: bytes = (double)(n + rows * ss + n * 2); break;
    case OP_GLOBAL:
    case OP_GLOBAL_T: bytes = (double)(n * 2 + n + 4); break;
    case OP_COLT: bytes = (double)(n * 2 + n + cols * 2); break;
    case OP_DOUBLE: bytes = (double)(n * 2 + 2 * n + rows * 4 + cols * 4); break;
    }
    double gbps = us > 0 ? bytes / (us * 1e3) : 0;
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zu %s->%s", rows, cols, op == OP_DEQ ? "i8" : "f16",
             op == OP_DEQ ? "f16" : "i8");
    bench_report(s, name, shape, us, gbps, "GB/s", s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
    cl_mem all[] = {xm, qm, q2m, om, rsm, csm, ocm, cntm, am};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) clReleaseMemObject(all[i]);
}

void bench_quant_int8(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    /* GPU: 4096x4096 (48 MB moved, the anchors' shape) and 8192x8192 (192 MB: bandwidth-bound
     * figure, launch overhead amortised); CPU: 2048x2048 */
    const size_t cpu_dims[] = {2048}, gpu_dims[] = {4096, 8192};
    int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
    const size_t *dims = cpu ? cpu_dims : gpu_dims;
    size_t ndims = cpu ? 1 : 2;
    const clbnb_rowwise_mode llm = CLBNB_ROWWISE_LLM_INT8, sb = CLBNB_ROWWISE_SWITCHBACK;
    for (size_t i = 0; i < ndims; i++) {
        size_t dim = dims[i];
        run_op(s, "quantize_rowwise_llm_int8", OP_ROW, llm, 0.0f, dim, dim);
        run_op(s, "quantize_rowwise_llm_int8_thr6", OP_ROW, llm, 6.0f, dim, dim);
        run_op(s, "quantize_rowwise_switchback", OP_ROW, sb, 0.0f, dim, dim);
        run_op(s, "dequantize_rowwise", OP_DEQ, llm, 0.0f, dim, dim);
        run_op(s, "quantize_global", OP_GLOBAL, llm, 0.0f, dim, dim);
        run_op(s, "quantize_global_transpose", OP_GLOBAL_T, llm, 0.0f, dim, dim);
        run_op(s, "quantize_columnwise_transpose", OP_COLT, llm, 0.0f, dim, dim);
        run_op(s, "int8_double_quant", OP_DOUBLE, llm, 0.0f, dim, dim);
    }
}
