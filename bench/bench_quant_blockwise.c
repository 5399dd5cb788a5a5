/* bench_quant_blockwise.c: block-wise 8-bit, NF4/FP4 and nested-absmax benchmarks. Rates count the
 * bytes every operation must move at least once: input read + outputs written (+ absmax / code
 * tables), against the in-run copy bandwidth. GPU: 32M elements (128 MiB of f32 / 64 MiB of f16 input,
 * so launch overhead does not dominate); CPU: 4M. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef enum { OP_Q8, OP_DQ8, OP_Q4, OP_DQ4, OP_DQ4_NESTED, OP_COMPRESS } op_kind;

struct qb_args {
    bench_session *s;
    op_kind op;
    clbnb_quant_type type;
    size_t bs;
    clbnb_vector x, data, absmax, out, qabsmax, absmax2, offset;
};

static clbnb_status enqueue_op(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct qb_args *a = user;
    clbnb_context *ctx = a->s->ctx;
    (void)iteration;
    switch (a->op) {
    case OP_Q8: return clbnb_quantize_blockwise(ctx, queue, &a->x, NULL, a->bs, &a->data, &a->absmax, 0, NULL, event);
    case OP_DQ8:
        return clbnb_dequantize_blockwise(ctx, queue, &a->data, &a->absmax, NULL, a->bs, &a->out, 0, NULL, event);
    case OP_Q4: return clbnb_quantize_4bit(ctx, queue, &a->x, a->type, a->bs, &a->data, &a->absmax, 0, NULL, event);
    case OP_DQ4: {
        clbnb_absmax am = clbnb_absmax_plain(&a->absmax);
        return clbnb_dequantize_4bit(ctx, queue, &a->data, &am, a->type, a->bs, &a->out, 0, NULL, event);
    }
    case OP_DQ4_NESTED: {
        clbnb_absmax am = {a->qabsmax, a->absmax2, {NULL, 0, 0, CLBNB_DTYPE_F32}, a->offset, 256};
        return clbnb_dequantize_4bit(ctx, queue, &a->data, &am, a->type, a->bs, &a->out, 0, NULL, event);
    }
    case OP_COMPRESS:
        return clbnb_absmax_compress(ctx, queue, &a->absmax, 256, &a->qabsmax, &a->absmax2, &a->offset, 0, NULL, event);
    }
    return CLBNB_ERROR_INVALID_ARGUMENT;
}

static void run_op(bench_session *s, const char *name, op_kind op, clbnb_quant_type type, size_t bs, size_t n,
                   clbnb_dtype xdt, clbnb_dtype odt) {
    if (!bench_selected(s, name)) return;
    size_t nb = (n + bs - 1) / bs, nb2 = (nb + 255) / 256;
    int four = op == OP_Q4 || op == OP_DQ4 || op == OP_DQ4_NESTED;
    size_t data_bytes = four ? (n + 1) / 2 : n;
    size_t xs = clbnb_dtype_size(xdt), os = clbnb_dtype_size(odt);
    struct qb_args a;
    memset(&a, 0, sizeof a);
    a.s = s, a.op = op, a.type = type, a.bs = bs;
    cl_mem xm = bench_random_floats(s, n, xdt, 11), dm = bench_random_buffer(s, data_bytes, 12),
           am = bench_random_floats(s, nb, CLBNB_DTYPE_F32, 13), om = bench_alloc(s, n * os),
           qm = bench_random_buffer(s, nb, 14), a2m = bench_random_floats(s, nb2, CLBNB_DTYPE_F32, 15),
           offm = bench_random_floats(s, 1, CLBNB_DTYPE_F32, 16);
    double us = -1;
    if (xm && dm && am && om && qm && a2m && offm) {
        a.x = clbnb_vector_make(xm, 0, n, xdt);
        a.data = clbnb_vector_make(dm, 0, data_bytes, CLBNB_DTYPE_U8);
        a.absmax = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32);
        a.out = clbnb_vector_make(om, 0, n, odt);
        a.qabsmax = clbnb_vector_make(qm, 0, nb, CLBNB_DTYPE_U8);
        a.absmax2 = clbnb_vector_make(a2m, 0, nb2, CLBNB_DTYPE_F32);
        a.offset = clbnb_vector_make(offm, 0, 1, CLBNB_DTYPE_F32);
        /* one kernel (every operation but absmax compression, and the cpu path's 8-bit quantize,
         * which builds its bucket table first): timed from its own start, as the copy reference */
        const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
        int one_kernel = op != OP_COMPRESS && !(op == OP_Q8 && info->path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU);
        us = one_kernel ? bench_time_kernel_us(s, enqueue_op, &a) : bench_time_us(s, enqueue_op, &a);
    }
    double bytes = 0;
    switch (op) {
    case OP_Q8:
    case OP_Q4: bytes = (double)(n * xs + data_bytes + nb * 4); break;
    case OP_DQ8:
    case OP_DQ4: bytes = (double)(data_bytes + nb * 4 + n * os); break;
    case OP_DQ4_NESTED: bytes = (double)(data_bytes + nb + nb2 * 4 + n * os); break;
    case OP_COMPRESS: bytes = (double)(nb * 4 + nb + nb2 * 4); break;
    }
    double gbps = us > 0 ? bytes / (us * 1e3) : 0;
    char shape[64];
    if (op == OP_COMPRESS)
        snprintf(shape, sizeof shape, "%zu absmax bs2=256", nb);
    else
        snprintf(shape, sizeof shape, "%zuM %s->%s bs%zu", n >> 20,
                 clbnb_dtype_name(op == OP_Q8 || op == OP_Q4 ? xdt : CLBNB_DTYPE_U8),
                 clbnb_dtype_name(op == OP_Q8 || op == OP_Q4 ? CLBNB_DTYPE_U8 : odt), bs);
    bench_report(s, name, shape, us, gbps, "GB/s", s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
    cl_mem all[] = {xm, dm, am, om, qm, a2m, offm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) clReleaseMemObject(all[i]);
}

void bench_quant_blockwise(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    size_t n = (info->type & CL_DEVICE_TYPE_CPU) ? ((size_t)4 << 20) : ((size_t)32 << 20);
    const clbnb_dtype f32 = CLBNB_DTYPE_F32, f16 = CLBNB_DTYPE_F16;
    run_op(s, "quantize_blockwise_8bit", OP_Q8, CLBNB_QUANT_BLOCKWISE8, 256, n, f32, f32);
    run_op(s, "dequantize_blockwise_8bit", OP_DQ8, CLBNB_QUANT_BLOCKWISE8, 256, n, f32, f32);
    run_op(s, "quantize_4bit_nf4", OP_Q4, CLBNB_QUANT_NF4, 64, n, f16, f16);
    run_op(s, "quantize_4bit_fp4", OP_Q4, CLBNB_QUANT_FP4, 64, n, f16, f16);
    run_op(s, "dequantize_4bit_nf4", OP_DQ4, CLBNB_QUANT_NF4, 64, n, f16, f16);
    run_op(s, "dequantize_4bit_nf4_nested", OP_DQ4_NESTED, CLBNB_QUANT_NF4, 64, n, f16, f16);
    /* compression of the absmax of a 32M-element (GPU) / 4M (CPU) NF4 bs64 weight */
    run_op(s, "absmax_compress", OP_COMPRESS, CLBNB_QUANT_NF4, 64, n, f16, f16);
}
