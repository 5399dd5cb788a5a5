/* layer_embedding.c: Embedding (gather, padding_idx), StableEmbedding (gather + LayerNorm in f32 +
 * cast back) and quantized-table embeddings (block-wise 8-bit and NF4/FP4 rows dequantized on the
 * fly). Kernels: cl/layers.cl (lay_gather, lay_stable_embedding, lay_gather_q8, lay_gather_q4; backward:
 * lay_emb_links, lay_emb_zero, lay_emb_scatter, and for StableEmbedding lay_stable_emb_dx and
 * lay_stable_emb_params). */
#include <stdlib.h>

#include "layers_internal.h"

struct clbnb_embedding {
    clbnb_context *ctx;
    clbnb_embedding_kind kind;
    size_t num, dim, blocksize;
    clbnb_dtype dt;
    cl_mem table;       /* plain / stable: [num, dim] dt; quantized: codes u8 [num*dim] or packed [ceil(num*dim/2)] */
    cl_mem absmax;      /* quantized: f32 [n_blocks] */
    cl_mem code;        /* quantized: f32 [256] or [16] (owned by the context: not released) */
    cl_mem gamma, beta; /* stable: f32 [dim] */
    long pad;           /* padding_idx, -1 for none */
};

void clbnb_embedding_free(clbnb_embedding *l) {
    if (!l) return;
    cl_mem mems[] = {l->table, l->absmax, l->gamma, l->beta};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) clReleaseMemObject(mems[i]);
    free(l);
}

static clbnb_status upload_floats(clbnb_context *ctx, cl_command_queue q, const float *v, float dflt, size_t n,
                                  cl_mem *out) {
    CLBNB_TRY(lay_alloc(ctx, n * 4, out));
    float *h = malloc(n * 4);
    if (!h) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    for (size_t i = 0; i < n; i++)
        h[i] = v ? v[i] : dflt;
    cl_int err = clEnqueueWriteBuffer(q, *out, CL_TRUE, 0, n * 4, h, 0, NULL, NULL);
    free(h);
    return (clbnb_status)err;
}

clbnb_status clbnb_embedding_init(clbnb_embedding **out, clbnb_context *ctx, cl_command_queue queue,
                                  const clbnb_matrix *table, clbnb_embedding_kind kind, long padding_idx,
                                  size_t blocksize, const float *ln_weight, const float *ln_bias) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(lay_check_call(ctx, queue, 0, NULL));
    if ((unsigned)kind > CLBNB_EMBEDDING_4BIT_FP4) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(lay_check_mat(table, CLBNB_DT_FLOAT, 0, 0));
    if (padding_idx < -1 || (padding_idx >= 0 && (size_t)padding_idx >= table->rows))
        return CLBNB_ERROR_INVALID_ARGUMENT;
    if (table->rows > 0x7fffffffu) return CLBNB_ERROR_INVALID_SHAPE; /* i32 indices */
    const int q8 = kind == CLBNB_EMBEDDING_BLOCKWISE8, q4 = kind >= CLBNB_EMBEDDING_4BIT_NF4;
    if (q8 && (!clbnb_is_pow2(blocksize) || blocksize < 16)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    if (q4 && (!clbnb_is_pow2(blocksize) || blocksize < 32 || blocksize > 4096)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    size_t numel;
    CLBNB_TRY(lay_size_mul(table->rows, table->cols, 4, &numel));
    numel /= 4;

    clbnb_embedding *l = calloc(1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    l->ctx = ctx;
    l->kind = kind;
    l->num = table->rows;
    l->dim = table->cols;
    l->blocksize = blocksize;
    l->dt = table->dtype;
    l->pad = padding_idx;
    lay_seq seq;
    cl_mem copy = NULL;
    clbnb_status s = lay_seq_begin(&seq, queue, 0, NULL);
    if (s == CLBNB_SUCCESS) s = lay_copy_matrix(ctx, &seq, table, table->dtype, &copy);
    if (s == CLBNB_SUCCESS && padding_idx >= 0) {
        /* nn.Embedding zeroes the padding row at creation */
        unsigned char zero = 0;
        size_t es = clbnb_dtype_size(table->dtype);
        s = lay_seq_step(&seq);
        if (s == CLBNB_SUCCESS)
            s = (clbnb_status)clEnqueueFillBuffer(queue, copy, &zero, 1, (size_t)padding_idx * l->dim * es, l->dim * es,
                                                  0, NULL, NULL);
    }
    if (s == CLBNB_SUCCESS && (q8 || q4)) {
        clbnb_vector x = clbnb_vector_make(copy, 0, numel, table->dtype);
        size_t nb = clbnb_blocks_count(numel, blocksize);
        s = lay_alloc(ctx, nb * 4, &l->absmax);
        if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, q8 ? numel : clbnb_packed_4bit_bytes(numel), &l->table);
        clbnb_vector am = clbnb_vector_make(l->absmax, 0, nb, CLBNB_DTYPE_F32);
        clbnb_vector data = clbnb_vector_make(l->table, 0, q8 ? numel : clbnb_packed_4bit_bytes(numel), CLBNB_DTYPE_U8);
        clbnb_quant_type t = q8                                 ? CLBNB_QUANT_BLOCKWISE8
                             : kind == CLBNB_EMBEDDING_4BIT_NF4 ? CLBNB_QUANT_NF4
                                                                : CLBNB_QUANT_FP4;
        if (s == CLBNB_SUCCESS) s = lay_seq_step(&seq);
        if (s == CLBNB_SUCCESS)
            s = q8 ? clbnb_quantize_blockwise(ctx, queue, &x, NULL, blocksize, &data, &am, 0, NULL, NULL)
                   : clbnb_quantize_4bit(ctx, queue, &x, t, blocksize, &data, &am, 0, NULL, NULL);
        if (s == CLBNB_SUCCESS) s = clbnb_builtin_table(ctx, queue, t, &l->code);
    } else if (s == CLBNB_SUCCESS) {
        l->table = copy;
        copy = NULL;
    }
    if (s == CLBNB_SUCCESS && kind == CLBNB_EMBEDDING_STABLE) {
        s = upload_floats(ctx, queue, ln_weight, 1.0f, l->dim, &l->gamma);
        if (s == CLBNB_SUCCESS) s = upload_floats(ctx, queue, ln_bias, 0.0f, l->dim, &l->beta);
    }
    if (s == CLBNB_SUCCESS) s = (clbnb_status)clFinish(queue);
    if (copy) clReleaseMemObject(copy);
    if (s != CLBNB_SUCCESS) {
        clFinish(queue);
        clbnb_embedding_free(l);
        return s;
    }
    *out = l;
    return CLBNB_SUCCESS;
}

/* An output must not be one of the buffers the layer owns (clbnb_embedding_weights hands them out):
 * the kernels read the table and the LayerNorm vectors while the outputs are written. */
static clbnb_status not_layer_mem(const clbnb_embedding *l, cl_mem m) {
    return m == l->table || m == l->gamma || m == l->beta ? CLBNB_ERROR_INVALID_ARGUMENT : CLBNB_SUCCESS;
}

clbnb_status clbnb_embedding_forward(clbnb_embedding *l, cl_command_queue queue, const clbnb_vector *indices,
                                     const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                     cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    CLBNB_TRY(lay_check_vec(indices, CLBNB_DT(CLBNB_DTYPE_I32), 1));
    CLBNB_TRY(lay_check_mat(out, CLBNB_DT_FLOAT, indices->n, l->dim));
    if (out->mem == indices->mem && out->offset < indices->offset + indices->n * 4 &&
        indices->offset < out->offset + lay_mat_bytes(out))
        return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(not_layer_mem(l, out->mem));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    CLBNB_TRY(lay_seq_step(&seq));
    cl_ulong zero = 0, ld = l->dim, nrows = l->num, ioff = indices->offset / 4, n = indices->n, dim = l->dim;
    cl_ulong ooff = out->offset / clbnb_dtype_size(out->dtype), ldo = out->ld, bs = l->blocksize;
    cl_int tdt = (cl_int)l->dt, odt = (cl_int)out->dtype;
    size_t local[2] = {lay_is_cpu(ctx) ? 16 : 64, 1}, global[2] = {l->dim, indices->n};
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s;
    if (l->kind == CLBNB_EMBEDDING_PLAIN) {
        s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_gather", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 13, CLBNB_ARG(l->table), CLBNB_ARG(zero), CLBNB_ARG(ld), CLBNB_ARG(tdt),
                               CLBNB_ARG(nrows), CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(out->mem),
                               CLBNB_ARG(ooff), CLBNB_ARG(ldo), CLBNB_ARG(odt), CLBNB_ARG(n), CLBNB_ARG(dim));
    } else if (l->kind == CLBNB_EMBEDDING_STABLE) {
        float eps = 1e-5f;
        global[0] = indices->n;
        local[0] = lay_is_cpu(ctx) ? 8 : 64;
        s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_stable_embedding", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 16, CLBNB_ARG(l->table), CLBNB_ARG(zero), CLBNB_ARG(ld), CLBNB_ARG(tdt),
                               CLBNB_ARG(nrows), CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(l->gamma),
                               CLBNB_ARG(l->beta), CLBNB_ARG(eps), CLBNB_ARG(out->mem), CLBNB_ARG(ooff), CLBNB_ARG(ldo),
                               CLBNB_ARG(odt), CLBNB_ARG(n), CLBNB_ARG(dim));
    } else {
        s = clbnb_kernel_get_locked(ctx, "layers", "",
                                    l->kind == CLBNB_EMBEDDING_BLOCKWISE8 ? "lay_gather_q8" : "lay_gather_q4", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 13, CLBNB_ARG(l->table), CLBNB_ARG(l->absmax), CLBNB_ARG(l->code), CLBNB_ARG(bs),
                               CLBNB_ARG(nrows), CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(out->mem),
                               CLBNB_ARG(ooff), CLBNB_ARG(ldo), CLBNB_ARG(odt), CLBNB_ARG(n), CLBNB_ARG(dim));
    }
    if (s == CLBNB_SUCCESS)
        s = clbnb_enqueue(queue, k, l->kind == CLBNB_EMBEDDING_STABLE ? 1 : 2, global, local, 0, NULL, NULL);
    pthread_mutex_unlock(&ctx->lock);
    CLBNB_TRY(s);
    return lay_seq_end(&seq, event);
}

/* ---- backward ---------------------------------------------------------------------------------- */
/* A vector as a one-row matrix (for the overlap checks). */
static clbnb_matrix vec_mat(const clbnb_vector *v) {
    return (clbnb_matrix){v->mem, v->offset, 1, v->n, v->n, v->dtype};
}

/* The checks both backward calls share: indices i32 [n], grad_out [n, dim] and grad_table
 * [num, dim] float, grad_table overlapping neither input nor the layer's buffers. */
static clbnb_status check_backward(const clbnb_embedding *l, const clbnb_vector *indices, const clbnb_matrix *grad_out,
                                   const clbnb_matrix *grad_table) {
    CLBNB_TRY(lay_check_vec(indices, CLBNB_DT(CLBNB_DTYPE_I32), 1));
    if (indices->n > 0x7fffffffu) return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(lay_check_mat(grad_out, CLBNB_DT_FLOAT, indices->n, l->dim));
    CLBNB_TRY(lay_check_mat(grad_table, CLBNB_DT_FLOAT, l->num, l->dim));
    const clbnb_matrix im = vec_mat(indices);
    CLBNB_TRY(lay_no_overlap(grad_table, grad_out));
    CLBNB_TRY(lay_no_overlap(grad_table, &im));
    return not_layer_mem(l, grad_table->mem);
}

/* Dense table gradient of Embedding (torch's embedding_backward without scale_grad_by_freq) from the
 * per-position gradient rows src [n, dim] (element offset soff, ld lds, dtype sdt): deterministic, no
 * atomics: lay_emb_links chains the positions of each row (ascending), then the table is zeroed and
 * the first position of each row sums its chain in f32. */
static clbnb_status emb_scatter(clbnb_embedding *l, lay_seq *seq, const clbnb_vector *indices, cl_mem src, size_t soff,
                                size_t lds, clbnb_dtype sdt, const clbnb_matrix *grad_table) {
    clbnb_context *ctx = l->ctx;
    cl_mem links = NULL;
    CLBNB_TRY(lay_alloc(ctx, indices->n * 8, &links));
    cl_ulong ioff = indices->offset / 4, n = indices->n, nrows = l->num, dim = l->dim, goff = soff, ldg = lds;
    cl_ulong doff = grad_table->offset / clbnb_dtype_size(grad_table->dtype), ldd = grad_table->ld;
    cl_int gdt = (cl_int)sdt, ddt = (cl_int)grad_table->dtype;
    cl_long pad = l->pad;
    const size_t lx = lay_is_cpu(ctx) ? 16 : 64;
    clbnb_status s = CLBNB_SUCCESS;
    for (int step = 0; step < 3 && s == CLBNB_SUCCESS; step++) {
        s = lay_seq_step(seq);
        if (s != CLBNB_SUCCESS) break;
        pthread_mutex_lock(&ctx->lock);
        cl_kernel k = NULL;
        static const char *names[3] = {"lay_emb_links", "lay_emb_zero", "lay_emb_scatter"};
        s = clbnb_kernel_get_locked(ctx, "layers", "", names[step], &k);
        if (s == CLBNB_SUCCESS && step == 0) {
            s = clbnb_set_args(k, 6, CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(n), CLBNB_ARG(nrows),
                               CLBNB_ARG(pad), CLBNB_ARG(links));
            size_t global = indices->n, local = lx;
            if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 1, &global, &local, 0, NULL, NULL);
        } else if (s == CLBNB_SUCCESS && step == 1) {
            s = clbnb_set_args(k, 6, CLBNB_ARG(grad_table->mem), CLBNB_ARG(doff), CLBNB_ARG(ldd), CLBNB_ARG(ddt),
                               CLBNB_ARG(nrows), CLBNB_ARG(dim));
            size_t global[2] = {l->dim, l->num}, local[2] = {lx, 1};
            if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 2, global, local, 0, NULL, NULL);
        } else if (s == CLBNB_SUCCESS) {
            s = clbnb_set_args(k, 13, CLBNB_ARG(src), CLBNB_ARG(goff), CLBNB_ARG(ldg), CLBNB_ARG(gdt),
                               CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(n), CLBNB_ARG(links),
                               CLBNB_ARG(grad_table->mem), CLBNB_ARG(doff), CLBNB_ARG(ldd), CLBNB_ARG(ddt),
                               CLBNB_ARG(dim));
            size_t global[2] = {l->dim, indices->n}, local[2] = {lx, 1};
            if (s == CLBNB_SUCCESS) s = clbnb_enqueue(seq->queue, k, 2, global, local, 0, NULL, NULL);
        }
        pthread_mutex_unlock(&ctx->lock);
    }
    clReleaseMemObject(links); /* OpenCL keeps it alive until the enqueued kernels complete */
    return s;
}

clbnb_status clbnb_embedding_backward(clbnb_embedding *l, cl_command_queue queue, const clbnb_vector *indices,
                                      const clbnb_matrix *grad_out, const clbnb_matrix *grad_table, cl_uint num_events,
                                      const cl_event *wait_list, cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    if (l->kind == CLBNB_EMBEDDING_STABLE)
        return clbnb_embedding_backward_stable(l, queue, indices, grad_out, grad_table, NULL, NULL, num_events,
                                               wait_list, event);
    CLBNB_TRY(lay_check_call(l->ctx, queue, num_events, wait_list));
    if (l->kind != CLBNB_EMBEDDING_PLAIN) return CLBNB_ERROR_INVALID_ARGUMENT; /* quantized tables are frozen */
    CLBNB_TRY(check_backward(l, indices, grad_out, grad_table));

    lay_seq seq;
    CLBNB_TRY(lay_seq_begin(&seq, queue, num_events, wait_list));
    CLBNB_TRY(emb_scatter(l, &seq, indices, grad_out->mem, grad_out->offset / clbnb_dtype_size(grad_out->dtype),
                          grad_out->ld, grad_out->dtype, grad_table));
    return lay_seq_end(&seq, event);
}

/* StableEmbedding backward: lay_stable_emb_dx (dx rows in the table's dtype into a scratch, per-position
 * mean / rstd), emb_scatter of the scratch, then lay_stable_emb_params when an LN gradient is wanted. */
clbnb_status clbnb_embedding_backward_stable(clbnb_embedding *l, cl_command_queue queue, const clbnb_vector *indices,
                                             const clbnb_matrix *grad_out, const clbnb_matrix *grad_table,
                                             const clbnb_vector *grad_ln_weight, const clbnb_vector *grad_ln_bias,
                                             cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_context *ctx = l->ctx;
    CLBNB_TRY(lay_check_call(ctx, queue, num_events, wait_list));
    if (l->kind != CLBNB_EMBEDDING_STABLE) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(check_backward(l, indices, grad_out, grad_table));
    const clbnb_vector *vecs[2] = {grad_ln_weight, grad_ln_bias};
    const clbnb_matrix im = vec_mat(indices);
    clbnb_matrix vm[2];
    for (int v = 0; v < 2; v++) {
        if (!vecs[v]) continue;
        CLBNB_TRY(lay_check_vec(vecs[v], CLBNB_DT_FLOAT, l->dim));
        vm[v] = vec_mat(vecs[v]);
        vm[v].cols = vm[v].ld = l->dim; /* the elements written */
        CLBNB_TRY(lay_no_overlap(&vm[v], grad_out));
        CLBNB_TRY(lay_no_overlap(&vm[v], &im));
        CLBNB_TRY(lay_no_overlap(&vm[v], grad_table));
        CLBNB_TRY(not_layer_mem(l, vm[v].mem));
    }
    if (grad_ln_weight && grad_ln_bias) CLBNB_TRY(lay_no_overlap(&vm[0], &vm[1]));
    const size_t es = clbnb_dtype_size(l->dt);
    size_t dx_bytes;
    CLBNB_TRY(lay_size_mul(indices->n, l->dim, es, &dx_bytes));

    cl_mem dx = NULL, stats = NULL;
    clbnb_status s = lay_alloc(ctx, dx_bytes, &dx);
    if (s == CLBNB_SUCCESS) s = lay_alloc(ctx, indices->n * 8, &stats);
    lay_seq seq;
    if (s == CLBNB_SUCCESS) s = lay_seq_begin(&seq, queue, num_events, wait_list);
    if (s == CLBNB_SUCCESS) s = lay_seq_step(&seq);
    cl_ulong zero = 0, ld = l->dim, nrows = l->num, ioff = indices->offset / 4, n = indices->n, dim = l->dim;
    cl_ulong goff = grad_out->offset / clbnb_dtype_size(grad_out->dtype), ldg = grad_out->ld;
    cl_int tdt = (cl_int)l->dt, gdt = (cl_int)grad_out->dtype;
    if (s == CLBNB_SUCCESS) {
        float eps = 1e-5f;
        size_t global = indices->n, local = lay_is_cpu(ctx) ? 8 : 64;
        pthread_mutex_lock(&ctx->lock);
        cl_kernel k = NULL;
        s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_stable_emb_dx", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 17, CLBNB_ARG(l->table), CLBNB_ARG(zero), CLBNB_ARG(ld), CLBNB_ARG(tdt),
                               CLBNB_ARG(nrows), CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(l->gamma),
                               CLBNB_ARG(eps), CLBNB_ARG(grad_out->mem), CLBNB_ARG(goff), CLBNB_ARG(ldg),
                               CLBNB_ARG(gdt), CLBNB_ARG(dx), CLBNB_ARG(stats), CLBNB_ARG(n), CLBNB_ARG(dim));
        if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 1, &global, &local, 0, NULL, NULL);
        pthread_mutex_unlock(&ctx->lock);
    }
    if (s == CLBNB_SUCCESS) s = emb_scatter(l, &seq, indices, dx, 0, l->dim, l->dt, grad_table);
    if (s == CLBNB_SUCCESS && (grad_ln_weight || grad_ln_bias)) s = lay_seq_step(&seq);
    if (s == CLBNB_SUCCESS && (grad_ln_weight || grad_ln_bias)) {
        /* a skipped output gets dtype -1 and a placeholder buffer */
        cl_mem wmem = grad_ln_weight ? grad_ln_weight->mem : stats, bmem = grad_ln_bias ? grad_ln_bias->mem : stats;
        cl_ulong woff = grad_ln_weight ? grad_ln_weight->offset / clbnb_dtype_size(grad_ln_weight->dtype) : 0;
        cl_ulong boff = grad_ln_bias ? grad_ln_bias->offset / clbnb_dtype_size(grad_ln_bias->dtype) : 0;
        cl_int wdt = grad_ln_weight ? (cl_int)grad_ln_weight->dtype : -1;
        cl_int bdt = grad_ln_bias ? (cl_int)grad_ln_bias->dtype : -1;
        size_t global = l->dim, local = lay_is_cpu(ctx) ? 16 : 64;
        pthread_mutex_lock(&ctx->lock);
        cl_kernel k = NULL;
        s = clbnb_kernel_get_locked(ctx, "layers", "", "lay_stable_emb_params", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 20, CLBNB_ARG(l->table), CLBNB_ARG(zero), CLBNB_ARG(ld), CLBNB_ARG(tdt),
                               CLBNB_ARG(nrows), CLBNB_ARG(indices->mem), CLBNB_ARG(ioff), CLBNB_ARG(stats),
                               CLBNB_ARG(grad_out->mem), CLBNB_ARG(goff), CLBNB_ARG(ldg), CLBNB_ARG(gdt),
                               CLBNB_ARG(wmem), CLBNB_ARG(woff), CLBNB_ARG(wdt), CLBNB_ARG(bmem), CLBNB_ARG(boff),
                               CLBNB_ARG(bdt), CLBNB_ARG(n), CLBNB_ARG(dim));
        if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 1, &global, &local, 0, NULL, NULL);
        pthread_mutex_unlock(&ctx->lock);
    }
    /* OpenCL keeps the scratch buffers alive until the enqueued kernels complete */
    if (dx) clReleaseMemObject(dx);
    if (stats) clReleaseMemObject(stats);
    CLBNB_TRY(s);
    return lay_seq_end(&seq, event);
}

clbnb_status clbnb_embedding_weights(clbnb_embedding *l, clbnb_matrix *table, clbnb_vector *ln_weight,
                                     clbnb_vector *ln_bias) {
    if (!l) return CLBNB_ERROR_NULL_ARGUMENT;
    if (table && l->kind != CLBNB_EMBEDDING_PLAIN && l->kind != CLBNB_EMBEDDING_STABLE)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    if ((ln_weight || ln_bias) && l->kind != CLBNB_EMBEDDING_STABLE) return CLBNB_ERROR_INVALID_ARGUMENT;
    if (table) *table = (clbnb_matrix){l->table, 0, l->num, l->dim, l->dim, l->dt};
    if (ln_weight) *ln_weight = clbnb_vector_make(l->gamma, 0, l->dim, CLBNB_DTYPE_F32);
    if (ln_bias) *ln_bias = clbnb_vector_make(l->beta, 0, l->dim, CLBNB_DTYPE_F32);
    return CLBNB_SUCCESS;
}
