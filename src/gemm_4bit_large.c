/* gemm_4bit_large.c: the large-batch 4-bit GEMM (dequantize W to f32 row tiles + CLBlast SGEMM +
 * bias / conversion epilogue) and the input gradient of MatMul4Bit (same pieces, NN product).
 * Kernels: cl/gemm_4bit_deq.cl. CLBlast takes no wait list, so the commands are ordered by the
 * (in-order) queue; the caller's wait list goes to the first command, the caller's event is the
 * last command's. On an out-of-order queue a barrier is placed between the steps. */
#include <clblast_c.h>

#include "gemm_4bit_internal.h"

/* Elements of f32 weight tile (64 MiB). */
#define G4_TILE_ELEMS ((size_t)16 << 20)

typedef struct g4_chain {
    cl_command_queue queue;
    int ooo, started;
    cl_uint num_events;
    const cl_event *wait_list;
} g4_chain;

static clbnb_status chain_init(g4_chain *c, cl_command_queue queue, cl_uint num_events, const cl_event *wait_list) {
    cl_command_queue_properties props = 0;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    c->queue = queue;
    c->ooo = (props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE) != 0;
    c->started = 0;
    c->num_events = num_events;
    c->wait_list = wait_list;
    return CLBNB_SUCCESS;
}

/* Wait list for the next command: the caller's for the first, queue order afterwards. */
static clbnb_status chain_next(g4_chain *c, cl_uint *n, const cl_event **wl) {
    if (!c->started) {
        c->started = 1;
        if (c->num_events && c->ooo == 0) {
            *n = c->num_events;
            *wl = c->wait_list;
            return CLBNB_SUCCESS;
        }
        if (c->num_events) {
            /* the first command may be CLBlast's (no wait list): a barrier on the caller's events */
            *n = 0;
            *wl = NULL;
            return (clbnb_status)clEnqueueBarrierWithWaitList(c->queue, c->num_events, c->wait_list, NULL);
        }
    } else if (c->ooo) {
        CLBNB_TRY((clbnb_status)clEnqueueBarrierWithWaitList(c->queue, 0, NULL, NULL));
    }
    *n = 0;
    *wl = NULL;
    return CLBNB_SUCCESS;
}

static clbnb_status clblast_status(CLBlastStatusCode code) {
    if (code == CLBlastSuccess) return CLBNB_SUCCESS;
    if (code > -1000) return (clbnb_status)code; /* an OpenCL error code */
    return CLBNB_ERROR_INVALID_ARGUMENT;         /* CLBlast's own codes */
}

/* f32 scratch from the context's pool (scratch_pool.c). */
static cl_mem scratch(clbnb_context *ctx, size_t elems, clbnb_status *s) {
    cl_mem m = NULL;
    *s = clbnb_scratch_acquire(ctx, elems * sizeof(float), &m);
    return m;
}

/* dst[0 .. rows*K) = dequantized W rows [row0, row0 + rows) as f32. */
static clbnb_status enqueue_dequant(clbnb_context *ctx, g4_chain *c, const clbnb_g4_weight *w, size_t row0, size_t rows,
                                    size_t k, cl_mem dst, cl_event *event) {
    cl_uint nw;
    const cl_event *wl;
    CLBNB_TRY(chain_next(c, &nw, &wl));
    cl_ulong flat0 = (cl_ulong)row0 * k, count = (cl_ulong)rows * k;
    size_t cus = ctx->info.compute_units ? ctx->info.compute_units : 1;
    size_t local, global;
    const char *kname = "g4_dequant_f32";
    pthread_mutex_lock(&ctx->lock);
    /* the cpu path's shape, or (generic path) one work-item per packed word when aligned */
    if (ctx->info.path[CLBNB_FAMILY_GEMM_4BIT] == CLBNB_PATH_CPU) {
        local = 16;
        global = cus * 256;
        while (global > local && global / 2 * 1024 > count)
            global /= 2;
    } else if (flat0 % 8 == 0 && count % 8 == 0 && (w->poff + flat0 / 2) % 4 == 0) {
        /* one work-item per packed word (8 weights) */
        kname = "g4_dequant_f32_w8";
        local = 256;
        size_t groups = (size_t)((count / 8 + local - 1) / local);
        if (groups > cus * 32) groups = cus * 32;
        global = groups * local;
    } else {
        local = 256;
        size_t groups = (size_t)((count + local - 1) / local);
        if (groups > cus * 64) groups = cus * 64;
        global = groups * local;
    }
    cl_kernel k_ = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "gemm_4bit_deq", "", kname, &k_);
    if (s == CLBNB_SUCCESS) s = clbnb_g4_set_weight_args(k_, 0, w);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clSetKernelArg(k_, 14, sizeof flat0, &flat0);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clSetKernelArg(k_, 15, sizeof count, &count);
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clSetKernelArg(k_, 16, sizeof dst, &dst);
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(c->queue, k_, 1, &global, &local, nw, wl, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* dst[r, col] = RN_ddt(src[r, col] + bias[col]) (offsets and lds in elements). */
static clbnb_status enqueue_convert(clbnb_context *ctx, g4_chain *c, cl_mem src, size_t soff, size_t lds,
                                    clbnb_dtype sdt, cl_mem dst, size_t doff, size_t ldd, clbnb_dtype ddt, size_t rows,
                                    size_t cols, const clbnb_vector *bias, cl_event *event) {
    cl_uint nw;
    const cl_event *wl;
    CLBNB_TRY(chain_next(c, &nw, &wl));
    cl_ulong csoff = soff, clds = lds, cdoff = doff, cldd = ldd, crows = rows, ccols = cols;
    cl_int csdt = (cl_int)sdt, cddt = (cl_int)ddt;
    cl_mem bmem = bias ? bias->mem : src;
    cl_ulong boff = bias ? bias->offset / clbnb_dtype_size(bias->dtype) : 0;
    cl_int bdt = bias ? (cl_int)bias->dtype : -1;
    size_t local[2] = {(ctx->info.type & CL_DEVICE_TYPE_CPU) ? 16 : 64, 1};
    size_t global[2] = {cols, rows};
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "gemm_4bit_deq", "", "g4_convert", &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 13, CLBNB_ARG(src), CLBNB_ARG(csoff), CLBNB_ARG(clds), CLBNB_ARG(csdt), CLBNB_ARG(dst),
                           CLBNB_ARG(cdoff), CLBNB_ARG(cldd), CLBNB_ARG(cddt), CLBNB_ARG(crows), CLBNB_ARG(ccols),
                           CLBNB_ARG(bmem), CLBNB_ARG(boff), CLBNB_ARG(bdt));
    if (s == CLBNB_SUCCESS) s = clbnb_enqueue(c->queue, k, 2, global, local, nw, wl, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

static size_t tile_rows(const clbnb_context *ctx, size_t n, size_t k) {
    size_t limit = G4_TILE_ELEMS;
    if (ctx->info.max_alloc_bytes && limit > ctx->info.max_alloc_bytes / 4)
        limit = (size_t)(ctx->info.max_alloc_bytes / 4);
    size_t rows = limit / k;
    if (rows < 1) rows = 1;
    if (rows > n) rows = n;
    return rows;
}

/* Hands the last command's event to the caller (or releases it). */
static void finish_event(cl_event ev, cl_event *event) {
    if (event)
        *event = ev;
    else if (ev)
        clReleaseEvent(ev);
}

/* The common end of both chains: when `epilogue`, convert the f32 product (cm, coff, ldc) into dst
 * (adding bias); hand the last command's event to the caller (or release it); release the three
 * scratch buffers to the pool (NULL ones skipped). */
static clbnb_status finish_chain(clbnb_context *ctx, g4_chain *chain, clbnb_status s, int epilogue, cl_mem cm,
                                 size_t coff, size_t ldc, const clbnb_matrix *dst, const clbnb_vector *bias,
                                 cl_event last, cl_event *event, cl_mem scratch0, cl_mem scratch1, cl_mem scratch2) {
    if (s == CLBNB_SUCCESS && epilogue)
        s = enqueue_convert(ctx, chain, cm, coff, ldc, CLBNB_DTYPE_F32, dst->mem,
                            dst->offset / clbnb_dtype_size(dst->dtype), dst->ld, dst->dtype, dst->rows, dst->cols, bias,
                            event ? &last : NULL);
    if (s == CLBNB_SUCCESS)
        finish_event(last, event);
    else if (last)
        clReleaseEvent(last);
    cl_mem scratch[3] = {scratch0, scratch1, scratch2};
    for (int i = 0; i < 3; i++)
        clbnb_scratch_release(ctx, chain->queue, scratch[i]);
    return s;
}

clbnb_status clbnb_g4_dequant_sgemm(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                    const clbnb_g4_weight *w, const clbnb_vector *bias, const clbnb_matrix *out,
                                    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const size_t m = x->rows, k = x->cols, n = out->cols;
    g4_chain chain;
    CLBNB_TRY(chain_init(&chain, queue, num_events, wait_list));
    clbnb_status s = CLBNB_SUCCESS;
    const size_t tn = tile_rows(ctx, n, k);
    const int epilogue = out->dtype != CLBNB_DTYPE_F32 || bias != NULL;
    cl_mem xs = NULL, cs = NULL, wt = scratch(ctx, tn * k, &s);
    /* x as f32 */
    cl_mem xf = x->mem;
    size_t xfoff = x->offset / 4, ldxf = x->ld;
    if (s == CLBNB_SUCCESS && x->dtype != CLBNB_DTYPE_F32) {
        xs = scratch(ctx, m * k, &s);
        if (s == CLBNB_SUCCESS)
            s = enqueue_convert(ctx, &chain, x->mem, x->offset / clbnb_dtype_size(x->dtype), x->ld, x->dtype, xs, 0, k,
                                CLBNB_DTYPE_F32, m, k, NULL, NULL);
        xf = xs, xfoff = 0, ldxf = k;
    }
    /* the f32 product: straight into out when out is f32 */
    cl_mem cm = out->mem;
    size_t coff = out->offset / 4, ldc = out->ld;
    if (s == CLBNB_SUCCESS && out->dtype != CLBNB_DTYPE_F32) {
        cs = scratch(ctx, m * n, &s);
        cm = cs, coff = 0, ldc = n;
    }
    cl_event last = NULL;
    for (size_t n0 = 0; n0 < n && s == CLBNB_SUCCESS; n0 += tn) {
        size_t nt = n - n0 < tn ? n - n0 : tn;
        s = enqueue_dequant(ctx, &chain, w, n0, nt, k, wt, NULL);
        cl_uint nw;
        const cl_event *wl;
        if (s == CLBNB_SUCCESS) s = chain_next(&chain, &nw, &wl);
        if (s != CLBNB_SUCCESS) break;
        int final = !epilogue && n0 + nt >= n;
        cl_event ev = NULL;
        s = clblast_status(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, m, nt, k, 1.0f,
                                        xf, xfoff, ldxf, wt, 0, k, 0.0f, cm, coff + n0, ldc, &queue, &ev));
        if (final && s == CLBNB_SUCCESS)
            last = ev;
        else if (ev)
            clReleaseEvent(ev);
    }
    return finish_chain(ctx, &chain, s, epilogue, cm, coff, ldc, out, bias, last, event, wt, xs, cs);
}

clbnb_status clbnb_gemm_4bit_grad_input(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *grad_out,
                                        const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                                        size_t blocksize, const clbnb_matrix *grad_x, cl_uint num_events,
                                        const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!grad_out || !grad_x || !packed || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(grad_out, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(grad_x, CLBNB_DT_FLOAT));
    if (grad_out->rows != grad_x->rows) return CLBNB_ERROR_INVALID_SHAPE;
    const size_t m = grad_out->rows, n = grad_out->cols, k = grad_x->cols;
    clbnb_g4_weight w;
    CLBNB_TRY(clbnb_g4_check_weight(ctx, queue, packed, absmax, type, blocksize, n, k, &w));
    CLBNB_TRY(clbnb_g4_check_out_overlap(grad_x, grad_out, packed, absmax, NULL));

    g4_chain chain;
    CLBNB_TRY(chain_init(&chain, queue, num_events, wait_list));
    clbnb_status s = CLBNB_SUCCESS;
    const size_t tn = tile_rows(ctx, n, k);
    cl_mem gs = NULL, cs = NULL, wt = scratch(ctx, tn * k, &s);
    cl_mem gf = grad_out->mem;
    size_t gfoff = grad_out->offset / 4, ldg = grad_out->ld;
    if (s == CLBNB_SUCCESS && grad_out->dtype != CLBNB_DTYPE_F32) {
        gs = scratch(ctx, m * n, &s);
        if (s == CLBNB_SUCCESS)
            s = enqueue_convert(ctx, &chain, grad_out->mem, grad_out->offset / clbnb_dtype_size(grad_out->dtype),
                                grad_out->ld, grad_out->dtype, gs, 0, n, CLBNB_DTYPE_F32, m, n, NULL, NULL);
        gf = gs, gfoff = 0, ldg = n;
    }
    const int epilogue = grad_x->dtype != CLBNB_DTYPE_F32;
    cl_mem cm = grad_x->mem;
    size_t coff = grad_x->offset / 4, ldc = grad_x->ld;
    if (s == CLBNB_SUCCESS && epilogue) {
        cs = scratch(ctx, m * k, &s);
        cm = cs, coff = 0, ldc = k;
    }
    cl_event last = NULL;
    for (size_t n0 = 0; n0 < n && s == CLBNB_SUCCESS; n0 += tn) {
        size_t nt = n - n0 < tn ? n - n0 : tn;
        s = enqueue_dequant(ctx, &chain, &w, n0, nt, k, wt, NULL);
        cl_uint nw;
        const cl_event *wl;
        if (s == CLBNB_SUCCESS) s = chain_next(&chain, &nw, &wl);
        if (s != CLBNB_SUCCESS) break;
        int final = !epilogue && n0 + nt >= n;
        cl_event ev = NULL;
        s = clblast_status(CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, m, k, nt, 1.0f,
                                        gf, gfoff + n0, ldg, wt, 0, k, n0 == 0 ? 0.0f : 1.0f, cm, coff, ldc, &queue,
                                        &ev));
        if (final && s == CLBNB_SUCCESS)
            last = ev;
        else if (ev)
            clReleaseEvent(ev);
    }
    return finish_chain(ctx, &chain, s, epilogue, cm, coff, ldc, grad_x, NULL, last, event, wt, gs, cs);
}
