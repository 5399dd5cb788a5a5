/* fp8_matmul.c: tensor-wise quantization (bitsandbytes functional.quantize / dequantize) and the
 * FP8-simulated matmuls matmul_fp8_mixed / matmul_fp8_global, forward and backward (spec 7).
 * Kernels: cl/fp8.cl (tensor-wise), the block-wise 8-bit kernels (clbnb_quantize_blockwise /
 * clbnb_dequantize_blockwise) and CLBlast SGEMM through the layer helpers. */
#include <stdlib.h>
#include <string.h>

#include "layers_internal.h"

#define FP8_WG 256      /* work-group size of fp8_absmax_partial_generic (FP8_WG in the .cl) */
#define FP8_CHUNK 4096  /* elements per absmax partial (FP8_CHUNK in the .cl)                */
#define FP8_CPU_EPT 256 /* cpu path: consecutive elements per work-item of fp8_quant / fp8_dequant */

static int fp8_cpu(const clbnb_context *ctx) { return ctx->info.path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU; }
static int valid_bs(size_t bs) { return clbnb_is_pow2(bs) && bs >= 16 && bs <= 65536; }

/* A flat run of elements: mem + element offset. */
typedef struct fp8_flat {
    cl_mem mem;
    cl_ulong off; /* elements */
    cl_ulong n;
    clbnb_dtype dt;
} fp8_flat;

/* Tensor-wise quantization of x: absmax -> am (f32 at element am_off), then codes and/or the
 * dequantized values RN_rdt2(RN_rdt1(code[k] * absmax)) as odt into out. Chains its kernels with
 * events: the wait list goes to the first, *event comes from the last. Arguments validated. */
static clbnb_status tensorwise_enqueue(clbnb_context *ctx, cl_command_queue queue, const fp8_flat *x, cl_mem code,
                                       cl_ulong code_off, cl_mem am, cl_ulong am_off, cl_mem codes, cl_ulong c_off,
                                       cl_mem out, cl_ulong o_off, clbnb_dtype odt, int rdt1, int rdt2,
                                       cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const int cpu = fp8_cpu(ctx);
    const size_t count = (size_t)((x->n + FP8_CHUNK - 1) / FP8_CHUNK);
    cl_mem partial;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, count * sizeof(float), &partial));
    cl_event e0 = NULL, e1 = NULL;
    cl_int xdt = (cl_int)x->dt, wc = codes != NULL, wo = out != NULL, codt = (cl_int)odt, r1 = rdt1, r2 = rdt2;
    cl_ulong ccount = count, ept = cpu ? FP8_CPU_EPT : 1;
    if (!codes) codes = partial; /* unused arguments get a valid buffer */
    if (!out) out = partial;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s =
        clbnb_kernel_get_locked(ctx, "fp8", "", cpu ? "fp8_absmax_partial_cpu" : "fp8_absmax_partial_generic", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 5, CLBNB_ARG(x->mem), CLBNB_ARG(x->off), CLBNB_ARG(xdt), CLBNB_ARG(x->n),
                           CLBNB_ARG(partial));
    if (s == CLBNB_SUCCESS) {
        size_t global = cpu ? count : count * FP8_WG, local = cpu ? 16 : FP8_WG;
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, &e0);
    }
    if (s == CLBNB_SUCCESS) s = clbnb_kernel_get_locked(ctx, "fp8", "", "fp8_absmax_final", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 4, CLBNB_ARG(partial), CLBNB_ARG(ccount), CLBNB_ARG(am), CLBNB_ARG(am_off));
    if (s == CLBNB_SUCCESS) {
        size_t global = 1, local = 1;
        s = clbnb_enqueue(queue, k, 1, &global, &local, 1, &e0, &e1);
    }
    if (s == CLBNB_SUCCESS) s = clbnb_kernel_get_locked(ctx, "fp8", "", "fp8_quant", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 18, CLBNB_ARG(x->mem), CLBNB_ARG(x->off), CLBNB_ARG(xdt), CLBNB_ARG(x->n), CLBNB_ARG(ept),
                           CLBNB_ARG(code), CLBNB_ARG(code_off), CLBNB_ARG(am), CLBNB_ARG(am_off), CLBNB_ARG(codes),
                           CLBNB_ARG(c_off), CLBNB_ARG(wc), CLBNB_ARG(out), CLBNB_ARG(o_off), CLBNB_ARG(codt),
                           CLBNB_ARG(r1), CLBNB_ARG(r2), CLBNB_ARG(wo));
    if (s == CLBNB_SUCCESS) {
        size_t global = (size_t)((x->n + ept - 1) / ept), local = cpu ? 16 : 256;
        s = clbnb_enqueue(queue, k, 1, &global, &local, 1, &e1, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (e0) clReleaseEvent(e0);
    if (e1) clReleaseEvent(e1);
    clbnb_scratch_release(ctx, queue, partial);
    return s;
}

static cl_ulong elem_off(const clbnb_vector *v) { return (cl_ulong)(v->offset / clbnb_dtype_size(v->dtype)); }

clbnb_status clbnb_quantize_tensorwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                       const clbnb_vector *code, const clbnb_vector *codes, const clbnb_vector *absmax,
                                       cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!x || !code || !codes || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_vector(x, CLBNB_DT_FLOAT, 1));
    CLBNB_TRY(clbnb_check_vector(code, CLBNB_DT(CLBNB_DTYPE_F32), 256));
    CLBNB_TRY(clbnb_check_vector(codes, CLBNB_DT(CLBNB_DTYPE_U8), x->n));
    CLBNB_TRY(clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    if (x->offset % clbnb_dtype_size(x->dtype) || code->offset % 4 || absmax->offset % 4)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    fp8_flat f = {x->mem, elem_off(x), x->n, x->dtype};
    return tensorwise_enqueue(ctx, queue, &f, code->mem, elem_off(code), absmax->mem, elem_off(absmax), codes->mem,
                              codes->offset, NULL, 0, CLBNB_DTYPE_F32, -1, -1, num_events, wait_list, event);
}

clbnb_status clbnb_dequantize_tensorwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *codes,
                                         const clbnb_vector *absmax, const clbnb_vector *code, const clbnb_vector *out,
                                         cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!codes || !absmax || !code || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_vector(out, CLBNB_DT_FLOAT, 1));
    CLBNB_TRY(clbnb_check_vector(codes, CLBNB_DT(CLBNB_DTYPE_U8), out->n));
    CLBNB_TRY(clbnb_check_vector(code, CLBNB_DT(CLBNB_DTYPE_F32), 256));
    CLBNB_TRY(clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    if (out->offset % clbnb_dtype_size(out->dtype) || code->offset % 4 || absmax->offset % 4)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    const int cpu = fp8_cpu(ctx);
    cl_ulong coff = codes->offset, cdoff = elem_off(code), aoff = elem_off(absmax), ooff = elem_off(out), n = out->n;
    cl_ulong ept = cpu ? FP8_CPU_EPT : 1;
    cl_int odt = (cl_int)out->dtype;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "fp8", "", "fp8_dequant", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 11, CLBNB_ARG(codes->mem), CLBNB_ARG(coff), CLBNB_ARG(code->mem), CLBNB_ARG(cdoff),
                           CLBNB_ARG(absmax->mem), CLBNB_ARG(aoff), CLBNB_ARG(out->mem), CLBNB_ARG(ooff),
                           CLBNB_ARG(odt), CLBNB_ARG(n), CLBNB_ARG(ept));
    if (s == CLBNB_SUCCESS) {
        size_t global = (size_t)((n + ept - 1) / ept), local = cpu ? 16 : 256;
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ============================================================================================ */
/* Matmuls                                                                                      */
/* ============================================================================================ */

/* Scratch buffers of one call (from the context's pool), handed back at its end. */
typedef struct fp8_scratch {
    cl_mem mems[16];
    int count;
    lay_ws ws[4];
} fp8_scratch;

static clbnb_status scratch_alloc(clbnb_context *ctx, fp8_scratch *sc, size_t bytes, cl_mem *out) {
    if (sc->count >= 16) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, bytes, out));
    sc->mems[sc->count++] = *out;
    return CLBNB_SUCCESS;
}

static void scratch_release(clbnb_context *ctx, cl_command_queue queue, fp8_scratch *sc) {
    for (int i = 0; i < sc->count; i++)
        clbnb_scratch_release(ctx, queue, sc->mems[i]);
    for (int i = 0; i < 4; i++)
        lay_ws_release(&sc->ws[i]);
}

/* The row-major elements of m as one flat run (m itself when compact, else a compact copy). */
static clbnb_status flat_of(clbnb_context *ctx, lay_seq *seq, fp8_scratch *sc, const clbnb_matrix *m, fp8_flat *f) {
    const size_t es = clbnb_dtype_size(m->dtype);
    f->n = (cl_ulong)(m->rows * m->cols);
    f->dt = m->dtype;
    if (m->ld == m->cols || m->rows == 1) {
        f->mem = m->mem;
        f->off = (cl_ulong)(m->offset / es);
        return CLBNB_SUCCESS;
    }
    cl_mem c = NULL;
    CLBNB_TRY(lay_copy_matrix(ctx, seq, m, m->dtype, &c));
    sc->mems[sc->count++] = c;
    f->mem = c;
    f->off = 0;
    return CLBNB_SUCCESS;
}

/* dst (f32, compact) = RN_rdt(dequant(quantize_blockwise(m, code, bs))). */
static clbnb_status qdq_blockwise(clbnb_context *ctx, lay_seq *seq, fp8_scratch *sc, const clbnb_matrix *m,
                                  const clbnb_vector *code, size_t bs, cl_mem dst, clbnb_dtype rdt) {
    fp8_flat f;
    CLBNB_TRY(flat_of(ctx, seq, sc, m, &f));
    const size_t n = (size_t)f.n, nb = clbnb_blocks_count(n, bs);
    cl_mem codes = NULL, am = NULL;
    CLBNB_TRY(scratch_alloc(ctx, sc, n, &codes));
    CLBNB_TRY(scratch_alloc(ctx, sc, nb * 4, &am));
    clbnb_vector x = clbnb_vector_make(f.mem, (size_t)f.off * clbnb_dtype_size(f.dt), n, f.dt);
    clbnb_vector cv = clbnb_vector_make(codes, 0, n, CLBNB_DTYPE_U8),
                 av = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32);
    clbnb_vector out = clbnb_vector_make(dst, 0, n, CLBNB_DTYPE_F32);
    CLBNB_TRY(lay_seq_step(seq));
    CLBNB_TRY(clbnb_quantize_blockwise(ctx, seq->queue, &x, code, bs, &cv, &av, 0, NULL, NULL));
    CLBNB_TRY(lay_seq_step(seq));
    CLBNB_TRY(clbnb_dequantize_blockwise(ctx, seq->queue, &cv, &av, code, bs, &out, 0, NULL, NULL));
    if (rdt != CLBNB_DTYPE_F32) /* .to(dtype): in place, element-wise */
        CLBNB_TRY(lay_convert(ctx, seq, dst, 0, n, CLBNB_DTYPE_F32, (int)rdt, dst, 0, n, CLBNB_DTYPE_F32, 1, n, NULL));
    return CLBNB_SUCCESS;
}

/* dst (f32, compact) = RN_rdt2(RN_rdt1(dequantize(quantize(m, code)))), tensor-wise. */
static clbnb_status qdq_tensorwise(clbnb_context *ctx, lay_seq *seq, fp8_scratch *sc, const clbnb_matrix *m,
                                   const clbnb_vector *code, cl_mem dst, clbnb_dtype rdt1, clbnb_dtype rdt2) {
    fp8_flat f;
    CLBNB_TRY(flat_of(ctx, seq, sc, m, &f));
    cl_mem am = NULL;
    CLBNB_TRY(scratch_alloc(ctx, sc, 4, &am));
    CLBNB_TRY(lay_seq_step(seq));
    return tensorwise_enqueue(ctx, seq->queue, &f, code->mem, elem_off(code), am, 0, NULL, 0, dst, 0, CLBNB_DTYPE_F32,
                              (int)rdt1, (int)rdt2, 0, NULL, NULL);
}

/* Checks shared by forward and backward; *m_, *k_, *n_ receive the sizes. */
static clbnb_status check_ab(clbnb_context *ctx, cl_command_queue queue, clbnb_fp8_mode mode, const clbnb_matrix *a,
                             const clbnb_matrix *b, int b_trans, const clbnb_vector *code1, const clbnb_vector *code2,
                             cl_uint num_events, const cl_event *wait_list, size_t *m_, size_t *k_, size_t *n_) {
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    if (mode != CLBNB_FP8_MIXED && mode != CLBNB_FP8_GLOBAL) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(lay_check_mat(a, CLBNB_DT_FLOAT, 0, 0));
    CLBNB_TRY(lay_check_mat(b, CLBNB_DT_FLOAT, 0, 0));
    if (!code1 || !code2) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_vector(code1, CLBNB_DT(CLBNB_DTYPE_F32), 256));
    CLBNB_TRY(clbnb_check_vector(code2, CLBNB_DT(CLBNB_DTYPE_F32), 256));
    if (code1->offset % 4 || code2->offset % 4) return CLBNB_ERROR_INVALID_ARGUMENT;
    const size_t k = a->cols, n = b_trans ? b->rows : b->cols;
    if ((b_trans ? b->cols : b->rows) != k) return CLBNB_ERROR_INVALID_SHAPE;
    size_t bytes;
    CLBNB_TRY(lay_size_mul(a->rows, k, 4, &bytes));
    CLBNB_TRY(lay_size_mul(k, n, 4, &bytes));
    CLBNB_TRY(lay_size_mul(a->rows, n, 4, &bytes));
    *m_ = a->rows;
    *k_ = k;
    *n_ = n;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_matmul_fp8_forward(clbnb_context *ctx, cl_command_queue queue, clbnb_fp8_mode mode,
                                      const clbnb_matrix *a, const clbnb_matrix *b, int b_trans,
                                      const clbnb_vector *fw_code, size_t bsz, const clbnb_matrix *out,
                                      cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    size_t m, k, n;
    CLBNB_TRY(check_ab(ctx, queue, mode, a, b, b_trans, fw_code, fw_code, num_events, wait_list, &m, &k, &n));
    if (mode == CLBNB_FP8_MIXED && !valid_bs(bsz)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(lay_check_mat(out, CLBNB_DT_FLOAT, m, n));
    CLBNB_TRY(lay_no_overlap(out, a));
    CLBNB_TRY(lay_no_overlap(out, b));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    fp8_scratch sc;
    memset(&sc, 0, sizeof sc);
    cl_mem fa = NULL, fb = NULL;
    clbnb_status s = scratch_alloc(ctx, &sc, m * k * 4, &fa);
    if (s == CLBNB_SUCCESS) s = scratch_alloc(ctx, &sc, k * n * 4, &fb);
    if (s == CLBNB_SUCCESS)
        s = mode == CLBNB_FP8_MIXED ? qdq_blockwise(ctx, &seq, &sc, a, fw_code, bsz, fa, a->dtype)
                                    : qdq_tensorwise(ctx, &seq, &sc, a, fw_code, fa, a->dtype, a->dtype);
    if (s == CLBNB_SUCCESS) s = qdq_tensorwise(ctx, &seq, &sc, b, fw_code, fb, b->dtype, b->dtype);
    lay_f32 res, av = {fa, 0, k}, bv = {fb, 0, b_trans ? k : n};
    if (s == CLBNB_SUCCESS) s = lay_f32_target(ctx, out, &sc.ws[0], &res);
    if (s == CLBNB_SUCCESS) s = lay_sgemm(&seq, 0, b_trans ? 1 : 0, m, n, k, &av, &bv, 0.0f, &res);
    if (s == CLBNB_SUCCESS) s = lay_f32_finish(ctx, &seq, &res, out, NULL);
    scratch_release(ctx, queue, &sc);
    CLBNB_TRY(s);
    return lay_seq_end(&seq, event);
}

clbnb_status clbnb_matmul_fp8_backward(clbnb_context *ctx, cl_command_queue queue, clbnb_fp8_mode mode,
                                       const clbnb_matrix *a, const clbnb_matrix *b, int b_trans,
                                       const clbnb_matrix *grad_out, const clbnb_vector *fw_code,
                                       const clbnb_vector *bw_code, size_t bsz2, const clbnb_matrix *grad_a,
                                       const clbnb_matrix *grad_b, cl_uint num_events, const cl_event *wait_list,
                                       cl_event *event) {
    size_t m, k, n;
    CLBNB_TRY(check_ab(ctx, queue, mode, a, b, b_trans, fw_code, bw_code, num_events, wait_list, &m, &k, &n));
    if (mode == CLBNB_FP8_MIXED && !valid_bs(bsz2)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(lay_check_mat(grad_out, CLBNB_DT_FLOAT, m, n));
    if (grad_a) CLBNB_TRY(lay_check_mat(grad_a, CLBNB_DT_FLOAT, m, k));
    if (grad_b) CLBNB_TRY(lay_check_mat(grad_b, CLBNB_DT_FLOAT, b->rows, b->cols));
    const clbnb_matrix *ins[3] = {a, b, grad_out};
    for (int i = 0; i < 3; i++) {
        CLBNB_TRY(lay_no_overlap(grad_a, ins[i]));
        CLBNB_TRY(lay_no_overlap(grad_b, ins[i]));
    }
    CLBNB_TRY(lay_no_overlap(grad_a, grad_b));
    if (!grad_a && !grad_b) return lay_seq_end(&(lay_seq){queue, 0, 0, num_events, wait_list}, event);

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    fp8_scratch sc;
    memset(&sc, 0, sizeof sc);
    const clbnb_dtype gdt = grad_out->dtype;
    cl_mem fg = NULL;
    clbnb_status s = scratch_alloc(ctx, &sc, m * n * 4, &fg);
    /* fp8out = dequant(quant(G, bw_code)).to(G.dtype) */
    if (s == CLBNB_SUCCESS)
        s = mode == CLBNB_FP8_MIXED ? qdq_blockwise(ctx, &seq, &sc, grad_out, bw_code, bsz2, fg, gdt)
                                    : qdq_tensorwise(ctx, &seq, &sc, grad_out, bw_code, fg, gdt, gdt);
    lay_f32 gv = {fg, 0, n};
    if (s == CLBNB_SUCCESS && grad_a) {
        /* grad_A = fp8out @ fp8B.t().to(G.dtype), then .to(A.dtype) */
        cl_mem fb = NULL;
        lay_f32 res;
        s = scratch_alloc(ctx, &sc, k * n * 4, &fb);
        if (s == CLBNB_SUCCESS) s = qdq_tensorwise(ctx, &seq, &sc, b, fw_code, fb, b->dtype, gdt);
        lay_f32 bv = {fb, 0, b_trans ? k : n};
        if (s == CLBNB_SUCCESS) s = lay_f32_target(ctx, grad_a, &sc.ws[0], &res);
        if (s == CLBNB_SUCCESS) s = lay_sgemm(&seq, 0, b_trans ? 0 : 1, m, k, n, &gv, &bv, 0.0f, &res);
        if (s == CLBNB_SUCCESS) s = lay_f32_finish(ctx, &seq, &res, grad_a, NULL);
    }
    if (s == CLBNB_SUCCESS && grad_b) {
        /* mixed: grad_B = A.t().to(G.dtype) @ G; global: fp8(A.t()).to(G.dtype) @ fp8out */
        lay_f32 av, g2, res;
        if (mode == CLBNB_FP8_MIXED) {
            s = lay_as_f32(ctx, &seq, a, (int)gdt, &sc.ws[1], &av);
            if (s == CLBNB_SUCCESS) s = lay_as_f32(ctx, &seq, grad_out, -1, &sc.ws[2], &g2);
        } else {
            cl_mem fa = NULL;
            s = scratch_alloc(ctx, &sc, m * k * 4, &fa);
            if (s == CLBNB_SUCCESS) s = qdq_tensorwise(ctx, &seq, &sc, a, fw_code, fa, a->dtype, gdt);
            av = (lay_f32){fa, 0, k};
            g2 = gv;
        }
        if (s == CLBNB_SUCCESS) s = lay_f32_target(ctx, grad_b, &sc.ws[3], &res);
        if (s == CLBNB_SUCCESS)
            s = b_trans ? lay_sgemm(&seq, 1, 0, n, k, m, &g2, &av, 0.0f, &res)  /* grad_W [N, K] = G^T A */
                        : lay_sgemm(&seq, 1, 0, k, n, m, &av, &g2, 0.0f, &res); /* grad_B [K, N] = A^T G */
        if (s == CLBNB_SUCCESS) s = lay_f32_finish(ctx, &seq, &res, grad_b, NULL);
    }
    scratch_release(ctx, queue, &sc);
    CLBNB_TRY(s);
    return lay_seq_end(&seq, event);
}
