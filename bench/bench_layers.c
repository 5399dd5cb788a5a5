/* bench_layers.c: the layer objects (issue 7) against the same layer computed in f32 through
 * CLBlast SGEMM in the same run (StandardLinear with f32 input and no bias = one SGEMM).
 *   LLM.int8 forward (f16, threshold 0; threshold 6 with 8 outlier columns; M = 1 threshold 6),
 *   SwitchBack forward vs the fused int8 matmul alone, SwitchBack forward+backward vs StandardLinear,
 *   Linear4bit NF4 forward. GPU: M = 2048, K = N = 4096; CPU devices: 256 x 1024 x 1024. GPUs also
 *   time the SwitchBack forward at the 4096^3 against the fused matmul alone (sb_forward_4096).
 * rate = GFLOP/s of the 2MNK product (4MNK+2MNK for forward+backward); ratio = reference time /
 * layer time (> 1: the layer is faster than its reference). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef enum { OP_L8, OP_SB, OP_SB_FB, OP_STD, OP_STD_FB, OP_MIXED, OP_L4 } op_kind;

struct lb_args {
    bench_session *s;
    op_kind op;
    clbnb_linear8 *l8;
    clbnb_switchback *sb;
    clbnb_linear *std;
    clbnb_linear4 *l4;
    clbnb_matrix x, out, g, gx, gw, xq, wq;
    clbnb_vector gb, sx, sw;
};

static clbnb_status lb_enqueue(void *user, cl_command_queue q, int iteration, cl_event *event) {
    struct lb_args *a = user;
    (void)iteration;
    clbnb_context *ctx = a->s->ctx;
    switch (a->op) {
    case OP_L8: return clbnb_linear8_forward(a->l8, q, &a->x, &a->out, 0, NULL, event);
    case OP_SB: return clbnb_switchback_forward(a->sb, q, &a->x, &a->out, 0, NULL, event);
    case OP_STD: return clbnb_linear_forward(a->std, q, &a->x, &a->out, 0, NULL, event);
    case OP_L4: return clbnb_linear4_forward(a->l4, q, &a->x, &a->out, 0, NULL, event);
    case OP_MIXED:
        return clbnb_int8_matmul_mixed_dequantize(ctx, q, &a->xq, &a->wq, &a->sx, &a->sw, NULL, &a->out, 0, NULL,
                                                  event);
    case OP_SB_FB: {
        clbnb_status st = clbnb_switchback_forward(a->sb, q, &a->x, &a->out, 0, NULL, NULL);
        if (st != CLBNB_SUCCESS) return st;
        return clbnb_switchback_backward(a->sb, q, &a->x, &a->g, &a->gx, &a->gw, &a->gb, 0, NULL, event);
    }
    case OP_STD_FB: {
        clbnb_status st = clbnb_linear_forward(a->std, q, &a->x, &a->out, 0, NULL, NULL);
        if (st != CLBNB_SUCCESS) return st;
        return clbnb_linear_backward(a->std, q, &a->x, &a->g, &a->gx, &a->gw, &a->gb, 0, NULL, event);
    }
    }
    return CLBNB_ERROR_INVALID_ARGUMENT;
}

static double lb_time(bench_session *s, struct lb_args *a) {
    a->s = s;
    double us = bench_time_us(s, lb_enqueue, a);
    if (us < 0) s->failures++;
    return us;
}

static void lb_report(bench_session *s, const char *op, size_t m, size_t k, size_t n, double us, double flops,
                      double ref_us, const char *ref) {
    char shape[96];
    snprintf(shape, sizeof shape, "%zux%zux%zu", m, k, n);
    double rate = us > 0 ? flops / (us * 1e3) : 0;
    bench_report(s, op, shape, us, rate, "GFLOP/s", us > 0 && ref_us > 0 ? ref_us / us : 0, ref);
}

/* f16 activations in [-1, 1) with `outliers` columns set to 8.0 (above threshold 6). */
static cl_mem lb_x(bench_session *s, size_t m, size_t k, int outliers, unsigned seed) {
    cl_mem x = bench_random_floats(s, m * k, CLBNB_DTYPE_F16, seed);
    if (!x || !outliers) return x;
    uint16_t eight = 0x4800; /* 8.0 in f16 */
    for (int o = 0; o < outliers; o++) {
        size_t col = (size_t)(o * 509 + 17) % k;
        for (size_t r = 0; r < m; r++)
            clEnqueueWriteBuffer(s->queue, x, CL_FALSE, (r * k + col) * 2, 2, &eight, 0, NULL, NULL);
    }
    clFinish(s->queue);
    return x;
}

/* The fused int8 matmul with mixed dequantization alone (xq [M, K], wq [N, K] i8, sx [M] and
 * sw [1] f16 states) into r->out: the reference of the SwitchBack forward. */
static double lb_mixed_alone(bench_session *s, struct lb_args *r, cl_mem xq, cl_mem wq, cl_mem sx, cl_mem sw, size_t m,
                             size_t k, size_t n) {
    r->op = OP_MIXED;
    r->xq = clbnb_matrix_make(xq, 0, m, k, CLBNB_DTYPE_I8);
    r->wq = clbnb_matrix_make(wq, 0, n, k, CLBNB_DTYPE_I8);
    r->sx = clbnb_vector_make(sx, 0, m, CLBNB_DTYPE_F16);
    r->sw = clbnb_vector_make(sw, 0, 1, CLBNB_DTYPE_F16);
    return lb_time(s, r);
}

/* SwitchBack forward (global variant: both quantizations + the fused matmul) against the fused
 * int8 matmul alone, both at M = K = N = 4096 (issue 7's shape); GPUs only. */
static void sb_forward_4096(bench_session *s) {
    const size_t n = 4096;
    const double f = 2.0 * (double)n * (double)n * (double)n;
    cl_mem w = bench_random_floats(s, n * n, CLBNB_DTYPE_F16, 61),
           x = bench_random_floats(s, n * n, CLBNB_DTYPE_F16, 62), out = bench_alloc(s, n * n * 2),
           xq = bench_random_buffer(s, n * n, 63), wq = bench_random_buffer(s, n * n, 64),
           sx = bench_random_floats(s, n, CLBNB_DTYPE_F16, 65), sw = bench_random_floats(s, 1, CLBNB_DTYPE_F16, 66);
    clbnb_switchback *sb = NULL;
    clbnb_matrix W = clbnb_matrix_make(w, 0, n, n, CLBNB_DTYPE_F16);
    if (w && x && out && xq && wq && sx && sw &&
        clbnb_switchback_init(&sb, s->ctx, s->queue, &W, NULL, CLBNB_SWITCHBACK_GLOBAL) == CLBNB_SUCCESS) {
        struct lb_args r;
        memset(&r, 0, sizeof r);
        r.out = clbnb_matrix_make(out, 0, n, n, CLBNB_DTYPE_F16);
        double mixed_us = lb_mixed_alone(s, &r, xq, wq, sx, sw, n, n, n);
        lb_report(s, "int8_mixed_dequant_alone", n, n, n, mixed_us, f, 0, NULL);
        r.op = OP_SB;
        r.sb = sb;
        r.x = clbnb_matrix_make(x, 0, n, n, CLBNB_DTYPE_F16);
        lb_report(s, "switchback_fwd", n, n, n, lb_time(s, &r), f, mixed_us, "int8_mixed_alone");
        clbnb_switchback_free(sb);
    } else {
        s->failures++;
    }
    cl_mem all[] = {w, x, out, xq, wq, sx, sw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) clReleaseMemObject(all[i]);
}

void bench_layers(bench_session *s) {
    const char *ops[] = {"linear8", "switchback", "standard_linear", "linear4", "int8_mixed_dequant"};
    int any = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        any |= bench_selected(s, ops[i]);
    if (!any) return;
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    const int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
    const size_t M = cpu ? 256 : 2048, K = cpu ? 1024 : 4096, N = K;
    const double f = 2.0 * (double)M * (double)N * (double)K;
    cl_mem w16 = bench_random_floats(s, N * K, CLBNB_DTYPE_F16, 41),
           w32 = bench_random_floats(s, N * K, CLBNB_DTYPE_F32, 42);
    cl_mem x16 = lb_x(s, M, K, 0, 43), x16o = lb_x(s, M, K, 8, 44),
           x32 = bench_random_floats(s, M * K, CLBNB_DTYPE_F32, 45);
    cl_mem out = bench_alloc(s, M * N * 4), g16 = bench_random_floats(s, M * N, CLBNB_DTYPE_F16, 46);
    cl_mem gx = bench_alloc(s, M * K * 2), gw = bench_alloc(s, N * K * 2), gb = bench_alloc(s, N * 2);
    cl_mem xq = bench_random_buffer(s, M * K, 47), wq = bench_random_buffer(s, N * K, 48);
    cl_mem sx = bench_random_floats(s, M, CLBNB_DTYPE_F16, 49), sw = bench_random_floats(s, 1, CLBNB_DTYPE_F16, 50);
    if (!w16 || !w32 || !x16 || !x16o || !x32 || !out || !g16 || !gx || !gw || !gb || !xq || !wq || !sx || !sw) {
        s->failures++;
        goto done;
    }
    clbnb_matrix W16 = clbnb_matrix_make(w16, 0, N, K, CLBNB_DTYPE_F16),
                 W32 = clbnb_matrix_make(w32, 0, N, K, CLBNB_DTYPE_F32);
    struct lb_args a;
    memset(&a, 0, sizeof a);
    a.x = clbnb_matrix_make(x16, 0, M, K, CLBNB_DTYPE_F16);
    a.out = clbnb_matrix_make(out, 0, M, N, CLBNB_DTYPE_F16);

    /* the reference: the same layer in f32 through CLBlast SGEMM */
    double ref_us = -1;
    clbnb_linear *std = NULL;
    if (clbnb_linear_init(&std, s->ctx, s->queue, &W32, NULL) == CLBNB_SUCCESS) {
        struct lb_args r = a;
        r.op = OP_STD;
        r.std = std;
        r.x = clbnb_matrix_make(x32, 0, M, K, CLBNB_DTYPE_F32);
        r.out = clbnb_matrix_make(out, 0, M, N, CLBNB_DTYPE_F32);
        ref_us = lb_time(s, &r);
        lb_report(s, "standard_linear_f32_sgemm", M, K, N, ref_us, f, ref_us, "sgemm_f32");
        clbnb_linear_free(std);
    } else {
        s->failures++;
    }

    if (bench_selected(s, "linear8")) {
        for (int t = 0; t < 2; t++) {
            clbnb_linear8_params p = clbnb_linear8_default_params();
            p.threshold = t ? 6.0f : 0.0f;
            clbnb_linear8 *l = NULL;
            if (clbnb_linear8_init(&l, s->ctx, s->queue, &W16, NULL, &p) != CLBNB_SUCCESS) {
                s->failures++;
                continue;
            }
            struct lb_args r = a;
            r.op = OP_L8;
            r.l8 = l;
            if (t) r.x = clbnb_matrix_make(x16o, 0, M, K, CLBNB_DTYPE_F16);
            double us = lb_time(s, &r);
            lb_report(s, t ? "linear8_fwd_thr6_8outl" : "linear8_fwd_thr0", M, K, N, us, f, ref_us, "sgemm_f32");
            if (t) {
                r.x = clbnb_matrix_make(x16o, 0, 1, K, CLBNB_DTYPE_F16);
                r.out = clbnb_matrix_make(out, 0, 1, N, CLBNB_DTYPE_F16);
                us = lb_time(s, &r);
                lb_report(s, "linear8_fwd_thr6_m1", 1, K, N, us, 2.0 * (double)N * (double)K, 0, NULL);
            }
            clbnb_linear8_free(l);
        }
    }
    if (bench_selected(s, "switchback") || bench_selected(s, "int8_mixed_dequant")) {
        struct lb_args r = a;
        double mixed_us = lb_mixed_alone(s, &r, xq, wq, sx, sw, M, K, N);
        lb_report(s, "int8_mixed_dequant_alone", M, K, N, mixed_us, f, ref_us, "sgemm_f32");
        clbnb_switchback *sb = NULL;
        if (bench_selected(s, "switchback") &&
            clbnb_switchback_init(&sb, s->ctx, s->queue, &W16, NULL, CLBNB_SWITCHBACK_GLOBAL) == CLBNB_SUCCESS) {
            struct lb_args t = a;
            t.op = OP_SB;
            t.sb = sb;
            double us = lb_time(s, &t);
            lb_report(s, "switchback_fwd", M, K, N, us, f, mixed_us, "int8_mixed_alone");
            lb_report(s, "switchback_fwd_vs_sgemm", M, K, N, us, f, ref_us, "sgemm_f32");
            t.op = OP_SB_FB;
            t.g = clbnb_matrix_make(g16, 0, M, N, CLBNB_DTYPE_F16);
            t.gx = clbnb_matrix_make(gx, 0, M, K, CLBNB_DTYPE_F16);
            t.gw = clbnb_matrix_make(gw, 0, N, K, CLBNB_DTYPE_F16);
            t.gb = clbnb_vector_make(gb, 0, N, CLBNB_DTYPE_F16);
            double fb_us = lb_time(s, &t);
            clbnb_switchback_free(sb);
            double std_fb = -1;
            clbnb_linear *sl = NULL;
            if (clbnb_linear_init(&sl, s->ctx, s->queue, &W16, NULL) == CLBNB_SUCCESS) {
                t.op = OP_STD_FB;
                t.std = sl;
                std_fb = lb_time(s, &t);
                lb_report(s, "standard_linear_fwd_bwd", M, K, N, std_fb, 3 * f, std_fb, "standard_fwd_bwd");
                clbnb_linear_free(sl);
            }
            lb_report(s, "switchback_fwd_bwd", M, K, N, fb_us, 3 * f, std_fb, "standard_fwd_bwd");
        }
        if (!cpu && bench_selected(s, "switchback")) sb_forward_4096(s);
    }
    if (bench_selected(s, "linear4")) {
        clbnb_linear4 *l = NULL;
        clbnb_linear4_params p = clbnb_linear_nf4_params();
        if (clbnb_linear4_init(&l, s->ctx, s->queue, &W16, NULL, &p) == CLBNB_SUCCESS) {
            struct lb_args r = a;
            r.op = OP_L4;
            r.l4 = l;
            double us = lb_time(s, &r);
            lb_report(s, "linear4_nf4_fwd", M, K, N, us, f, ref_us, "sgemm_f32");
            r.x = clbnb_matrix_make(x16, 0, 1, K, CLBNB_DTYPE_F16);
            r.out = clbnb_matrix_make(out, 0, 1, N, CLBNB_DTYPE_F16);
            us = lb_time(s, &r);
            lb_report(s, "linear4_nf4_fwd_m1", 1, K, N, us, 2.0 * (double)N * (double)K, 0, NULL);
            clbnb_linear4_free(l);
        } else {
            s->failures++;
        }
    }
done:;
    cl_mem all[] = {w16, w32, x16, x16o, x32, out, g16, gx, gw, gb, xq, wq, sx, sw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) clReleaseMemObject(all[i]);
}
