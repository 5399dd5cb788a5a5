/* bench_gemm_4bit.c: 4-bit NF4 dequantizing GEMV / GEMM (issue 5), blocksize 64, f16 activations
 * and output, no bias. Rate = (packed weight + absmax + activation bytes) / time, as a ratio of the
 * in-run copy bandwidth. Shapes: GPU M = 1 at K x N = 4096 x 4096, 4096 x 14336, 8192 x 28672
 * (plain and nested absmax), M = 4 / 16 / 64 / 128 at 4096 x 4096 and 8192 x 28672; CPU 4096 x 4096 only,
 * plus the dequantize + CLBlast SGEMM variant at M = 16 for comparison with the fused kernel. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

#ifndef XDT
#define XDT CLBNB_DTYPE_F16 /* activation dtype */
#endif

struct g4_args {
    bench_session *s;
    clbnb_matrix x, out;
    clbnb_vector packed;
    clbnb_absmax absmax;
    clbnb_gemm_4bit_variant variant;
};

static clbnb_status enqueue_g4(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct g4_args *g = user;
    (void)iteration;
    return clbnb_gemm_4bit_ex(g->s->ctx, queue, &g->x, &g->packed, &g->absmax, CLBNB_QUANT_NF4, 64, NULL, &g->out,
                              g->variant, 0, NULL, event);
}

static void run_one(bench_session *s, const char *op, size_t m, size_t k, size_t n, int nested,
                    clbnb_gemm_4bit_variant variant) {
    if (!bench_selected(s, op)) return;
    const size_t bs = 64, numel = n * k, nb = numel / bs, nb2 = (nb + 255) / 256;
    struct g4_args g;
    memset(&g, 0, sizeof g);
    g.s = s;
    g.variant = variant;
    cl_mem packed = bench_random_buffer(s, numel / 2, 21), x = bench_random_floats(s, m * k, XDT, 22);
    cl_mem out = bench_alloc(s, m * n * 2), absmax = NULL, absmax2 = NULL, offset = NULL;
    if (nested) {
        absmax = bench_random_buffer(s, nb, 23);
        absmax2 = bench_random_floats(s, nb2, CLBNB_DTYPE_F32, 24);
        offset = bench_random_floats(s, 1, CLBNB_DTYPE_F32, 25);
    } else {
        absmax = bench_random_floats(s, nb, CLBNB_DTYPE_F32, 23);
    }
    double us = -1;
    size_t absmax_bytes = nested ? nb + nb2 * 4 + 4 : nb * 4;
    if (packed && x && out && absmax && (!nested || (absmax2 && offset))) {
        g.x = clbnb_matrix_make(x, 0, m, k, XDT);
        g.out = clbnb_matrix_make(out, 0, m, n, CLBNB_DTYPE_F16);
        g.packed = clbnb_vector_make(packed, 0, numel / 2, CLBNB_DTYPE_U8);
        g.absmax.absmax = clbnb_vector_make(absmax, 0, nb, nested ? CLBNB_DTYPE_U8 : CLBNB_DTYPE_F32);
        if (nested) {
            g.absmax.absmax2 = clbnb_vector_make(absmax2, 0, nb2, CLBNB_DTYPE_F32);
            g.absmax.offset = clbnb_vector_make(offset, 0, 1, CLBNB_DTYPE_F32);
            g.absmax.blocksize2 = 256;
        }
        /* the fused variants are one kernel; dequantize + GEMM is several */
        clbnb_gemm_4bit_variant v = variant == CLBNB_GEMM_4BIT_AUTO ? clbnb_gemm_4bit_auto_variant(s->ctx, m) : variant;
        us = v == CLBNB_GEMM_4BIT_DEQUANT_SGEMM ? bench_time_us(s, enqueue_g4, &g)
                                                : bench_time_kernel_us(s, enqueue_g4, &g);
    } else {
        s->failures++;
    }
    double bytes = (double)(numel / 2 + absmax_bytes + m * k * 2);
    double gbps = us > 0 ? bytes / (us * 1e3) : 0;
    char shape[64];
    snprintf(shape, sizeof shape, "M%zu K%zu N%zu", m, k, n);
    bench_report(s, op, shape, us, gbps, "GB/s", s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
    cl_mem all[] = {packed, x, out, absmax, absmax2, offset};
    for (size_t i = 0; i < 6; i++)
        if (all[i]) clReleaseMemObject(all[i]);
}

void bench_gemm_4bit(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
    const size_t gpu_shapes[3][2] = {{4096, 4096}, {4096, 14336}, {8192, 28672}}; /* K, N */
    size_t nshapes = cpu ? 1 : 3;
    for (size_t i = 0; i < nshapes; i++)
        run_one(s, "gemv_4bit_nf4", 1, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    for (size_t i = 0; i < nshapes; i++)
        run_one(s, "gemv_4bit_nf4_nested", 1, gpu_shapes[i][0], gpu_shapes[i][1], 1, CLBNB_GEMM_4BIT_AUTO);
    for (size_t i = 0; i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m16", 16, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    if (cpu) run_one(s, "dequant_sgemm_m16", 16, 4096, 4096, 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    /* GPUs: the dequantize + GEMM route (tensor cores on the nv_mma path) at M = 16, against which
     * clbnb_gemm_4bit_auto_variant picks the fused small-batch kernel */
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "dequant_gemm_4bit_m16", 16, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    if (cpu) run_one(s, "dequant_sgemm_m128", 128, 4096, 4096, 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    for (size_t i = 0; i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m128", 128, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    /* GPUs: the fused small-batch kernel forced at M = 128 (tensor cores on the nv_mma path), against
     * which AUTO's choice (the GEMM variant) is checked */
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m128_fused", 128, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_SMALL_BATCH);
    /* GPUs: the GEMM variant at M = 128 (what AUTO picks) and M = 512 (on the nv_mma path the largest
     * M whose GEMM decodes W in its tiles, src/gemm_4bit_mma.c) */
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "dequant_gemm_4bit_m128", 128, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "dequant_gemm_4bit_m512", 512, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m4", 4, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m32", 32, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "dequant_gemm_4bit_m32", 32, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "gemm_4bit_nf4_m64", 64, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_AUTO);
    for (size_t i = 0; !cpu && i < nshapes; i += 2)
        run_one(s, "dequant_gemm_4bit_m64", 64, gpu_shapes[i][0], gpu_shapes[i][1], 0, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
}
