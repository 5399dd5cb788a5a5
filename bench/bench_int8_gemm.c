/* bench_int8_gemm.c: int8 GEMM with the fused LLM.int8 epilogue (f16 out, f16 bias) on every path
 * the device has, against two in-run references: CLBlast SGEMM on the same device, and (NVIDIA) an
 * mma.sync loop with no memory traffic, the ceiling a tensor-core kernel can approach. Small M is
 * memory-bound on the weight bytes and reported as GB/s against the in-run copy bandwidth. */
#include <clblast_c.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "internal.h"

struct gemm_args {
    bench_session *s;
    clbnb_matrix a, b, out;
    clbnb_vector sa, sb, bias;
};

static clbnb_status enqueue_gemm(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct gemm_args *g = user;
    (void)iteration;
    return clbnb_int8_scaled_matmul(g->s->ctx, queue, &g->a, &g->b, &g->sa, &g->sb, &g->bias, &g->out, 0, NULL, event);
}

/* Median time of the fused GEMM at M x N x K on the context's current path (-1 on failure). */
static double time_gemm(bench_session *s, size_t M, size_t N, size_t K) {
    struct gemm_args g;
    memset(&g, 0, sizeof g);
    g.s = s;
    cl_mem a = bench_random_buffer(s, M * K, 11), b = bench_random_buffer(s, N * K, 12);
    cl_mem sa = bench_random_floats(s, M, CLBNB_DTYPE_F32, 13), sb = bench_random_floats(s, N, CLBNB_DTYPE_F32, 14);
    cl_mem bias = bench_random_floats(s, N, CLBNB_DTYPE_F16, 15), out = bench_alloc(s, M * N * 2);
    double us = -1;
    if (a && b && sa && sb && bias && out) {
        g.a = clbnb_matrix_make(a, 0, M, K, CLBNB_DTYPE_I8);
        g.b = clbnb_matrix_make(b, 0, N, K, CLBNB_DTYPE_I8);
        g.out = clbnb_matrix_make(out, 0, M, N, CLBNB_DTYPE_F16);
        g.sa = clbnb_vector_make(sa, 0, M, CLBNB_DTYPE_F32);
        g.sb = clbnb_vector_make(sb, 0, N, CLBNB_DTYPE_F32);
        g.bias = clbnb_vector_make(bias, 0, N, CLBNB_DTYPE_F16);
        us = bench_time_us(s, enqueue_gemm, &g);
    } else {
        s->failures++;
    }
    cl_mem all[] = {a, b, sa, sb, bias, out};
    for (size_t i = 0; i < 6; i++)
        if (all[i]) clReleaseMemObject(all[i]);
    return us;
}

struct sgemm_args {
    size_t M, N, K;
    cl_mem a, b, c;
};

static clbnb_status enqueue_sgemm(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct sgemm_args *g = user;
    (void)iteration;
    CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, g->M, g->N,
                                        g->K, 1.0f, g->a, 0, g->K, g->b, 0, g->K, 0.0f, g->c, 0, g->N, &queue, event);
    return st == CLBlastSuccess ? CLBNB_SUCCESS : CLBNB_ERROR_INVALID_ARGUMENT;
}

/* CLBlast SGEMM GFLOP/s at n^3 (0 on failure). */
static double sgemm_gflops(bench_session *s, size_t n) {
    struct sgemm_args g = {n,
                           n,
                           n,
                           bench_random_floats(s, n * n, CLBNB_DTYPE_F32, 21),
                           bench_random_floats(s, n * n, CLBNB_DTYPE_F32, 22),
                           bench_alloc(s, n * n * 4)};
    double us = (g.a && g.b && g.c) ? bench_time_us(s, enqueue_sgemm, &g) : -1;
    double gflops = us > 0 ? 2.0 * (double)n * n * n / (us * 1e3) : 0;
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", n, n, n);
    bench_report(s, "clblast_sgemm", shape, us, gflops, "GFLOP/s", 0, NULL);
    if (g.a) clReleaseMemObject(g.a);
    if (g.b) clReleaseMemObject(g.b);
    if (g.c) clReleaseMemObject(g.c);
    return gflops;
}

struct peak_args {
    bench_session *s;
    cl_mem out;
    size_t global;
    cl_uint iters;
};

static clbnb_status enqueue_peak(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct peak_args *p = user;
    clbnb_context *ctx = p->s->ctx;
    (void)iteration;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status st =
        clbnb_kernel_get_locked(ctx, "mma_gemm", "-DALIGNED16=1 -DCLBNB_PTX_EMULATE=0", "int8_mma_peak", &k);
    if (st == CLBNB_SUCCESS) st = clbnb_set_args(k, 2, CLBNB_ARG(p->out), CLBNB_ARG(p->iters));
    size_t local = 512;
    if (st == CLBNB_SUCCESS) st = clbnb_enqueue(queue, k, 1, &p->global, &local, 0, NULL, event);
    pthread_mutex_unlock(&ctx->lock);
    return st;
}

/* The mma.sync loop's TOPS (0 where the device has no PTX mma). */
static double mma_peak_tops(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    if (!info->nv_ptx_mma) return 0;
    struct peak_args p = {s, NULL, (size_t)info->compute_units * 4 * 512, 4096};
    p.out = bench_alloc(s, p.global * 4);
    double us = p.out ? bench_time_us(s, enqueue_peak, &p) : -1;
    double ops = (double)(p.global / 32) * p.iters * 8 * 8192.0;
    double tops = us > 0 ? ops / (us * 1e6) : 0;
    bench_report(s, "int8_mma_peak", "registers only", us, tops, "TOPS", 0, NULL);
    if (p.out) clReleaseMemObject(p.out);
    return tops;
}

void bench_int8_gemm(bench_session *s) {
    clbnb_context *ctx = s->ctx;
    const clbnb_device_info *info = clbnb_context_device_info(ctx);
    int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
    clbnb_path saved = info->path[CLBNB_FAMILY_INT8_GEMM];
    double peak = 0, sgemm = 0;
    if (bench_selected(s, "int8_gemm") || bench_selected(s, "int8_mma_peak")) {
        peak = mma_peak_tops(s);
        sgemm = sgemm_gflops(s, cpu ? 1024 : 4096);
    }
    const clbnb_path paths[] = {CLBNB_PATH_NV_MMA, CLBNB_PATH_DOT4, CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    size_t sizes_gpu[] = {4096, 8192}, sizes_cpu[] = {1024};
    for (size_t p = 0; p < 4; p++) {
        if (!clbnb_context_path_available(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p])) continue;
        if (paths[p] == CLBNB_PATH_NV_MMA && !info->nv_ptx_mma) continue;                    /* emulation: tests only */
        if (paths[p] == CLBNB_PATH_DOT4 && info->dot4_impl == CLBNB_DOT4_EMULATED) continue; /* = generic */
        if (paths[p] == CLBNB_PATH_CPU && !cpu) continue;
        char op[64];
        snprintf(op, sizeof op, "int8_gemm_%s_fused", clbnb_path_name(paths[p]));
        if (!bench_selected(s, op)) continue;
        clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p]);
        size_t *sizes = cpu ? sizes_cpu : sizes_gpu;
        size_t count = cpu ? 1 : (paths[p] == CLBNB_PATH_NV_MMA ? 2 : 1);
        for (size_t i = 0; i < count; i++) {
            size_t n = sizes[i];
            double us = time_gemm(s, n, n, n);
            double tops = us > 0 ? 2.0 * (double)n * n * n / (us * 1e6) : 0;
            char shape[64];
            snprintf(shape, sizeof shape, "%zux%zux%zu", n, n, n);
            if (peak > 0)
                bench_report(s, op, shape, us, tops, "TOPS", tops / peak, "mma peak");
            else
                bench_report(s, op, shape, us, tops * 1e3, "GOPS", sgemm > 0 ? tops * 1e3 / sgemm : 0,
                             "CLBlast SGEMM GFLOP/s");
        }
    }
    clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, saved);
    /* small M, default path: memory-bound on B; GB/s over A + B + out bytes */
    if (bench_selected(s, "int8_gemm_small_m")) {
        const size_t ms[] = {1, 4, 16};
        const size_t nk_gpu[][2] = {{4096, 4096}, {28672, 8192}}, nk_cpu[][2] = {{4096, 4096}};
        size_t nshapes = cpu ? 1 : 2;
        for (size_t si = 0; si < nshapes; si++) {
            for (size_t mi = 0; mi < (cpu ? 2u : 3u); mi++) {
                size_t M = ms[mi], N = cpu ? nk_cpu[si][0] : nk_gpu[si][0], K = cpu ? nk_cpu[si][1] : nk_gpu[si][1];
                double us = time_gemm(s, M, N, K);
                double bytes = (double)N * K + (double)M * K + (double)M * N * 2;
                double gbps = us > 0 ? bytes / (us * 1e3) : 0;
                char shape[64];
                snprintf(shape, sizeof shape, "%zux%zux%zu", M, N, K);
                bench_report(s, "int8_gemm_small_m", shape, us, gbps, "GB/s",
                             s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
            }
        }
    }
}
