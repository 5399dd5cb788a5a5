/* layer_common.c: sequencing, workspaces, checks and small-kernel launchers shared by the layers. */
#include <clblast_c.h>
#include <stdlib.h>

#include "layers_internal.h"

int lay_is_cpu(const clbnb_context *ctx) { return (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0; }

clbnb_status lay_check_call(clbnb_context *ctx, cl_command_queue queue, cl_uint num_events, const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    return clbnb_check_wait_list(num_events, wait_list);
}

/* ---- sequencing ------------------------------------------------------------------------------ */
clbnb_status lay_seq_begin(lay_seq *s, cl_command_queue queue, cl_uint num_events, const cl_event *wait_list) {
    cl_command_queue_properties props = 0;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    s->queue = queue;
    s->ooo = (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    s->started = 0;
    s->num_events = num_events;
    s->wait_list = wait_list;
    return CLBNB_SUCCESS;
}

clbnb_status lay_seq_step(lay_seq *s) {
    if (!s->started) {
        s->started = 1;
        if (s->num_events)
            return (clbnb_status)clEnqueueBarrierWithWaitList(s->queue, s->num_events, s->wait_list, NULL);
        return CLBNB_SUCCESS;
    }
    if (s->ooo) return (clbnb_status)clEnqueueBarrierWithWaitList(s->queue, 0, NULL, NULL);
    return CLBNB_SUCCESS;
}

clbnb_status lay_seq_end(lay_seq *s, cl_event *event) {
    if (!event) return CLBNB_SUCCESS;
    if (!s->started && s->num_events)
        return (clbnb_status)clEnqueueMarkerWithWaitList(s->queue, s->num_events, s->wait_list, event);
    return (clbnb_status)clEnqueueMarkerWithWaitList(s->queue, 0, NULL, event);
}

/* ---- workspaces ------------------------------------------------------------------------------ */
clbnb_status lay_alloc(clbnb_context *ctx, size_t bytes, cl_mem *out) {
    cl_int err = CL_SUCCESS;
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &err);
    if (err != CL_SUCCESS) {
        *out = NULL;
        return (clbnb_status)err;
    }
    return CLBNB_SUCCESS;
}

clbnb_status lay_ws_ensure(clbnb_context *ctx, lay_ws *w, size_t bytes) {
    if (w->mem && w->bytes >= bytes) return CLBNB_SUCCESS;
    lay_ws_release(w); /* OpenCL keeps it alive until enqueued commands using it complete */
    size_t b = bytes < 256 ? 256 : bytes;
    CLBNB_TRY(lay_alloc(ctx, b, &w->mem));
    w->bytes = b;
    return CLBNB_SUCCESS;
}

void lay_ws_release(lay_ws *w) {
    if (w->mem) clReleaseMemObject(w->mem);
    w->mem = NULL;
    w->bytes = 0;
}

/* ---- checks ---------------------------------------------------------------------------------- */
clbnb_status lay_check_mat(const clbnb_matrix *m, uint32_t dtypes, size_t rows, size_t cols) {
    if (!m) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(m, dtypes));
    if ((rows && m->rows != rows) || (cols && m->cols != cols)) return CLBNB_ERROR_INVALID_SHAPE;
    return CLBNB_SUCCESS;
}

clbnb_status lay_check_vec(const clbnb_vector *v, uint32_t dtypes, size_t n) {
    if (!v) return CLBNB_ERROR_NULL_ARGUMENT;
    return clbnb_check_vector(v, dtypes, n);
}

size_t lay_mat_bytes(const clbnb_matrix *m) { return ((m->rows - 1) * m->ld + m->cols) * clbnb_dtype_size(m->dtype); }

static int ranges_overlap(cl_mem a, size_t ao, size_t ab, cl_mem b, size_t bo, size_t bb) {
    return a == b && ao < bo + bb && bo < ao + ab;
}

clbnb_status lay_no_overlap(const clbnb_matrix *out, const clbnb_matrix *in) {
    if (!out || !in) return CLBNB_SUCCESS;
    if (ranges_overlap(out->mem, out->offset, lay_mat_bytes(out), in->mem, in->offset, lay_mat_bytes(in)))
        return CLBNB_ERROR_INVALID_ARGUMENT;
    return CLBNB_SUCCESS;
}

clbnb_status lay_no_overlap_v(const clbnb_vector *out, const clbnb_matrix *in) {
    if (!out || !in) return CLBNB_SUCCESS;
    if (ranges_overlap(out->mem, out->offset, out->n * clbnb_dtype_size(out->dtype), in->mem, in->offset,
                       lay_mat_bytes(in)))
        return CLBNB_ERROR_INVALID_ARGUMENT;
    return CLBNB_SUCCESS;
}

clbnb_status lay_size_mul(size_t a, size_t b, size_t c, size_t *out) {
    size_t t;
    if (clbnb_mul_overflows(a, b, &t) || clbnb_mul_overflows(t, c, out)) return CLBNB_ERROR_SIZE_OVERFLOW;
    return CLBNB_SUCCESS;
}

/* ---- kernels ---------------------------------------------------------------------------------- */
clbnb_status lay_convert(clbnb_context *ctx, lay_seq *seq, cl_mem src, size_t soff, size_t lds, clbnb_dtype sdt,
                         int rdt, cl_mem dst, size_t doff, size_t ldd, clbnb_dtype ddt, size_t rows, size_t cols,
                         const clbnb_vector *bias) {
    CLBNB_TRY(lay_seq_step(seq));
    cl_ulong csoff = soff, clds = lds, cdoff = doff, cldd = ldd, crows = rows, ccols = cols;
    cl_int csdt = (cl_int)sdt, crdt = rdt, cddt = (cl_int)ddt;
    cl_mem bmem = bias ? bias->mem : src;
    cl_ulong boff = bias ? bias->offset / clbnb_dtype_size(bias->dtype) : 0;
    cl_int bdt = bias ? (cl_int)bias->dtype : -1;
    size_t local[2] = {lay_is_cpu(ctx) ? 16 : 64, 1};
    size_t global[2] = {cols, rows};
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_convert", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 14, CLBNB_ARG(src), CLBNB_ARG(csoff), CLBNB_ARG(clds), CLBNB_ARG(csdt), CLBNB_ARG(crdt),
                           CLBNB_ARG(dst), CLBNB_ARG(cdoff), CLBNB_ARG(cldd), CLBNB_ARG(cddt), CLBNB_ARG(crows),
                           CLBNB_ARG(ccols), CLBNB_ARG(bmem), CLBNB_ARG(boff), CLBNB_ARG(bdt));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 2, global, local, 0, NULL, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

clbnb_status lay_as_f32(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *m, int rdt, lay_ws *ws, lay_f32 *view) {
    if (m->dtype == CLBNB_DTYPE_F32 && (rdt < 0 || rdt == CLBNB_DTYPE_F32)) {
        view->mem = m->mem;
        view->off = m->offset / 4;
        view->ld = m->ld;
        return CLBNB_SUCCESS;
    }
    CLBNB_TRY(lay_ws_ensure(ctx, ws, m->rows * m->cols * 4));
    CLBNB_TRY(lay_convert(ctx, seq, m->mem, m->offset / clbnb_dtype_size(m->dtype), m->ld, m->dtype, rdt, ws->mem, 0,
                          m->cols, CLBNB_DTYPE_F32, m->rows, m->cols, NULL));
    view->mem = ws->mem;
    view->off = 0;
    view->ld = m->cols;
    return CLBNB_SUCCESS;
}

clbnb_status lay_f32_target(clbnb_context *ctx, const clbnb_matrix *out, lay_ws *ws, lay_f32 *view) {
    if (out->dtype == CLBNB_DTYPE_F32) {
        view->mem = out->mem;
        view->off = out->offset / 4;
        view->ld = out->ld;
        return CLBNB_SUCCESS;
    }
    CLBNB_TRY(lay_ws_ensure(ctx, ws, out->rows * out->cols * 4));
    view->mem = ws->mem;
    view->off = 0;
    view->ld = out->cols;
    return CLBNB_SUCCESS;
}

clbnb_status lay_f32_finish(clbnb_context *ctx, lay_seq *seq, const lay_f32 *res, const clbnb_matrix *out,
                            const clbnb_vector *bias) {
    if (out->dtype == CLBNB_DTYPE_F32 && !bias) return CLBNB_SUCCESS;
    /* in place when out is f32 (each element read then written by the same work-item) */
    return lay_convert(ctx, seq, res->mem, res->off, res->ld, CLBNB_DTYPE_F32, -1, out->mem,
                       out->offset / clbnb_dtype_size(out->dtype), out->ld, out->dtype, out->rows, out->cols, bias);
}

static clbnb_status clblast_status(CLBlastStatusCode code) {
    if (code == CLBlastSuccess) return CLBNB_SUCCESS;
    if (code > -1000) return (clbnb_status)code;
    return CLBNB_ERROR_INVALID_ARGUMENT;
}

clbnb_status lay_sgemm(lay_seq *seq, int trans_a, int trans_b, size_t m, size_t n, size_t k, const lay_f32 *a,
                       const lay_f32 *b, float beta, const lay_f32 *c) {
    CLBNB_TRY(lay_seq_step(seq));
    cl_event ev = NULL;
    cl_command_queue q = seq->queue;
    clbnb_status s =
        clblast_status(CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                    trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, 1.0f, a->mem, a->off,
                                    a->ld, b->mem, b->off, b->ld, beta, c->mem, c->off, c->ld, &q, &ev));
    if (ev) clReleaseEvent(ev);
    return s;
}

clbnb_status lay_colsum(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *src, const clbnb_vector *sums) {
    CLBNB_TRY(lay_seq_step(seq));
    cl_ulong soff = src->offset / clbnb_dtype_size(src->dtype), lds = src->ld, rows = src->rows, cols = src->cols;
    cl_ulong doff = sums->offset / clbnb_dtype_size(sums->dtype);
    cl_int sdt = (cl_int)src->dtype, ddt = (cl_int)sums->dtype;
    size_t local = lay_is_cpu(ctx) ? 16 : 64, global = src->cols;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_colsum", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 9, CLBNB_ARG(src->mem), CLBNB_ARG(soff), CLBNB_ARG(lds), CLBNB_ARG(sdt), CLBNB_ARG(rows),
                           CLBNB_ARG(cols), CLBNB_ARG(sums->mem), CLBNB_ARG(doff), CLBNB_ARG(ddt));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 1, &global, &local, 0, NULL, NULL);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

clbnb_status lay_grad_w(clbnb_context *ctx, lay_seq *seq, const lay_f32 *g32, const lay_f32 *x32, size_t m, size_t n,
                        size_t k, const clbnb_matrix *grad_w, lay_ws *tmp) {
    lay_f32 dst;
    CLBNB_TRY(lay_f32_target(ctx, grad_w, tmp, &dst));
    CLBNB_TRY(lay_sgemm(seq, 1, 0, n, k, m, g32, x32, 0.0f, &dst));
    return lay_f32_finish(ctx, seq, &dst, grad_w, NULL);
}

clbnb_status lay_copy_vector(clbnb_context *ctx, lay_seq *seq, const clbnb_vector *v, clbnb_dtype dt, cl_mem *out) {
    CLBNB_TRY(lay_alloc(ctx, v->n * clbnb_dtype_size(dt), out));
    clbnb_status s = lay_convert(ctx, seq, v->mem, v->offset / clbnb_dtype_size(v->dtype), v->n, v->dtype, -1, *out, 0,
                                 v->n, dt, 1, v->n, NULL);
    if (s != CLBNB_SUCCESS) {
        clReleaseMemObject(*out);
        *out = NULL;
    }
    return s;
}

clbnb_status lay_copy_matrix(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *m, clbnb_dtype dt, cl_mem *out) {
    size_t bytes;
    CLBNB_TRY(lay_size_mul(m->rows, m->cols, clbnb_dtype_size(dt), &bytes));
    CLBNB_TRY(lay_alloc(ctx, bytes, out));
    clbnb_status s = lay_convert(ctx, seq, m->mem, m->offset / clbnb_dtype_size(m->dtype), m->ld, m->dtype, -1, *out, 0,
                                 m->cols, dt, m->rows, m->cols, NULL);
    if (s != CLBNB_SUCCESS) {
        clReleaseMemObject(*out);
        *out = NULL;
    }
    return s;
}

clbnb_status lay_check_forward(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                               const clbnb_matrix *out, size_t k, size_t n, cl_uint num_events,
                               const cl_event *wait_list) {
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    CLBNB_TRY(lay_check_mat(x, CLBNB_DT_FLOAT, 0, k));
    CLBNB_TRY(lay_check_mat(out, CLBNB_DT_FLOAT, x->rows, n));
    return lay_no_overlap(out, x);
}
