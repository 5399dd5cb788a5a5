/* checkpoint_convert.c: streaming conversion of checkpoint tensors into a safetensors writer,
 * chunk by chunk, so that a tensor never has to fit in host or device memory at once:
 *   - copy a tensor unchanged, releasing the mapped input pages behind it;
 *   - quantize a float tensor to NF4/FP4 (plain or nested absmax) through the device;
 *   - quantize a float weight to bitsandbytes' Int8Params (CB, SCB, weight_format).
 *
 * The device work is double-buffered on the caller's (in-order) queue: while the host writes the
 * output of chunk c to the file, the device uploads, quantizes and reads back chunk c + 1. Memory:
 * two input and two output chunks on the device and on the host, plus the per-block / per-row
 * statistics of the whole tensor (absmax: numel / blocksize floats; SCB: rows floats). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"

#define CONVERT_DEFAULT_CHUNK ((size_t)2 << 20)

static int is_float_tensor(const clbnb_st_tensor *t) {
    return t->dtype == CLBNB_ST_F32 || t->dtype == CLBNB_ST_F16 || t->dtype == CLBNB_ST_BF16;
}

/* Checks that the writer's next streamed tensors are names[0..count) with exactly bytes[i] bytes
 * each, none started, so that a conversion never writes into the wrong tensor. */
static clbnb_status expect_layout(clbnb_st_writer *w, size_t count, const char *const *names, const uint64_t *bytes,
                                  clbnb_file_error *err) {
    for (size_t k = 0; k < count; k++) {
        uint64_t have = 0;
        const char *next = clbnb_st_writer_upcoming(w, k, &have);
        if (!next || strcmp(next, names[k]) != 0)
            return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, names[k],
                              "writer expects tensor '%s' where '%s' goes", next ? next : "(none)", names[k]);
        if (have != bytes[k])
            return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, names[k],
                              "writer expects %llu more bytes of '%s', the conversion writes %llu",
                              (unsigned long long)have, names[k], (unsigned long long)bytes[k]);
    }
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_checkpoint_copy_tensor(const clbnb_checkpoint *ck, const clbnb_st_tensor *t, clbnb_st_writer *w,
                                          size_t chunk_bytes, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!ck || !t || !w) return CLBNB_ERROR_NULL_ARGUMENT;
    if (t->nbytes == 0) return CLBNB_SUCCESS; /* the writer skips empty tensors */
    const uint64_t nbytes = t->nbytes;
    CLBNB_TRY(expect_layout(w, 1, &t->name, &nbytes, err));
    if (chunk_bytes == 0) chunk_bytes = CONVERT_DEFAULT_CHUNK;
    const unsigned char *p = t->data;
    for (size_t done = 0; done < t->nbytes;) {
        size_t n = t->nbytes - done < chunk_bytes ? t->nbytes - done : chunk_bytes;
        CLBNB_TRY(clbnb_st_writer_write(w, p + done, n, err));
        clbnb_checkpoint_release_range(ck, t, done, n);
        done += n;
    }
    return CLBNB_SUCCESS;
}

/* ---- the double-buffered chunk pipeline ---------------------------------------------------------- */
/* One chunk: bytes [in_off, in_off + in_bytes) of the host input are uploaded (converted first
 * when `stage` is set), a quantize step runs, out_bytes come back to the host and go to the writer. */
typedef struct chunk_job {
    size_t index, in_off, in_bytes, out_bytes;
} chunk_job;

typedef struct pipeline {
    clbnb_context *ctx;
    cl_command_queue queue;
    const clbnb_checkpoint *ck;
    const clbnb_st_tensor *t;
    clbnb_st_writer *w;
    clbnb_file_error *err;
    cl_mem in[2], out[2];
    void *host_out[2];
    void *host_in[2]; /* staging for converted input (int8 from f32/bf16), else NULL */
    cl_event read[2];
    chunk_job job[2];
    int pending[2];
    /* CPU device sharing host memory: an unstaged chunk is handed to the kernel where it lies in
     * the mapped file (a CL_MEM_USE_HOST_PTR buffer per chunk, released once enqueued) instead of
     * being copied into in[s] by the runtime first, a single-threaded copy between the two-thread
     * kernels of the in-order queue. PoCL, 2-core EPYC, 1.08 GB f16 checkpoint to NF4 + double
     * quant, output on tmpfs (no disk): 0.52-0.69 s, median 0.57, with the copy; 0.46-0.52,
     * median 0.47, without. */
    size_t zero_copy;          /* 0: upload every chunk; else the device's buffer base alignment in bytes */
    const unsigned char *file; /* zero copy: the first readable byte of the tensor's file */
    cl_mem chunk_in[2];        /* the slot's input for the quantize step: in[s], or the zero-copy buffer */
    size_t chunk_off[2];       /* byte offset of the chunk in chunk_in[s] */
} pipeline;

/* When the device computes on host memory itself (a CPU device), so a host pointer can serve as a
 * buffer's storage without a copy: the alignment in bytes its buffers start at (the kernels rely on
 * it for their vector loads); else 0. */
static size_t host_memory_alignment(const clbnb_context *ctx) {
    if (!(clbnb_context_device_info(ctx)->type & CL_DEVICE_TYPE_CPU)) return 0;
    cl_device_id dev = clbnb_context_device(ctx);
    cl_bool unified = CL_FALSE;
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL) != CL_SUCCESS ||
        !unified)
        return 0;
    return align_bits / 8 > 16 ? align_bits / 8 : 16;
}

static clbnb_status pipeline_init(pipeline *p, size_t in_cap, size_t out_cap, int staged) {
    cl_int e = CL_SUCCESS;
    p->file = staged ? NULL : clbnb_checkpoint_file_start(p->ck, p->t);
    p->zero_copy = p->file ? host_memory_alignment(p->ctx) : 0;
    for (int s = 0; s < 2 && e == CL_SUCCESS; s++) {
        /* in[s] also serves zero-copy pipelines, for chunks not aligned to an element */
        p->in[s] = clCreateBuffer(clbnb_context_cl_context(p->ctx), CL_MEM_READ_WRITE, in_cap, NULL, &e);
        if (e == CL_SUCCESS)
            p->out[s] = clCreateBuffer(clbnb_context_cl_context(p->ctx), CL_MEM_READ_WRITE, out_cap, NULL, &e);
        if (e == CL_SUCCESS) {
            p->host_out[s] = malloc(out_cap);
            p->host_in[s] = staged ? malloc(in_cap) : NULL;
            if (!p->host_out[s] || (staged && !p->host_in[s])) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        }
    }
    return (clbnb_status)e;
}

static void pipeline_free(pipeline *p) {
    clFinish(p->queue);
    for (int s = 0; s < 2; s++) {
        if (p->in[s]) clReleaseMemObject(p->in[s]);
        if (p->out[s]) clReleaseMemObject(p->out[s]);
        if (p->read[s]) clReleaseEvent(p->read[s]);
        free(p->host_out[s]);
        free(p->host_in[s]);
    }
}

/* Waits for slot s's read-back, writes it, and drops the mapped input pages of that chunk. */
static clbnb_status pipeline_drain(pipeline *p, int s) {
    if (!p->pending[s]) return CLBNB_SUCCESS;
    p->pending[s] = 0;
    cl_int e = clWaitForEvents(1, &p->read[s]);
    clReleaseEvent(p->read[s]);
    p->read[s] = NULL;
    if (e != CL_SUCCESS) return (clbnb_status)e;
    clbnb_checkpoint_release_range(p->ck, p->t, p->job[s].in_off, p->job[s].in_bytes);
    return clbnb_st_writer_write(p->w, p->host_out[s], p->job[s].out_bytes, p->err);
}

/* The quantize step of one chunk: reads p->chunk_in[s], writes p->out[s] and its statistics. */
typedef clbnb_status (*chunk_quantize_fn)(void *user, const pipeline *p, int s, const chunk_job *j);
/* Fills the staging buffer from the host input (NULL: upload the input bytes as they are). */
typedef size_t (*chunk_stage_fn)(void *user, const chunk_job *j, void *dst);

static clbnb_status pipeline_run(pipeline *p, size_t n_chunks, void (*plan)(void *, size_t, chunk_job *),
                                 chunk_stage_fn stage, chunk_quantize_fn quantize, void *user) {
    clbnb_status s = CLBNB_SUCCESS;
    for (size_t c = 0; c < n_chunks && s == CLBNB_SUCCESS; c++) {
        const int slot = (int)(c & 1);
        chunk_job *j = &p->job[slot];
        plan(user, c, j);
        const void *src = (const unsigned char *)p->t->data + j->in_off;
        size_t up = j->in_bytes;
        if (stage) {
            up = stage(user, j, p->host_in[slot]);
            src = p->host_in[slot];
        }
        /* the staging buffer of this slot was last read by the upload two chunks ago, which the
         * drain of that chunk (its read-back comes later in the in-order queue) has completed */
        cl_mem zc = NULL;
        /* the buffer starts at the aligned address at or before the chunk (still inside the file's
         * bytes: its header comes first), the chunk at an offset into it */
        const size_t lead = p->zero_copy ? (size_t)((uintptr_t)src % p->zero_copy) : 0;
        if (p->zero_copy && (const unsigned char *)src - lead >= p->file &&
            lead % clbnb_st_dtype_size(p->t->dtype) == 0) {
            cl_int e = CL_SUCCESS;
            zc = clCreateBuffer(clbnb_context_cl_context(p->ctx), CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, lead + up,
                                (void *)((const unsigned char *)src - lead), &e);
            s = (clbnb_status)e;
            p->chunk_in[slot] = zc;
            p->chunk_off[slot] = lead;
        } else {
            s = (clbnb_status)clEnqueueWriteBuffer(p->queue, p->in[slot], CL_FALSE, 0, up, src, 0, NULL, NULL);
            p->chunk_in[slot] = p->in[slot];
            p->chunk_off[slot] = 0;
        }
        if (s == CLBNB_SUCCESS) s = quantize(user, p, slot, j);
        /* the runtime keeps the buffer until the commands using it have finished */
        if (zc) clReleaseMemObject(zc);
        if (s == CLBNB_SUCCESS)
            s = (clbnb_status)clEnqueueReadBuffer(p->queue, p->out[slot], CL_FALSE, 0, j->out_bytes, p->host_out[slot],
                                                  0, NULL, &p->read[slot]);
        if (s == CLBNB_SUCCESS) {
            p->pending[slot] = 1;
            clFlush(p->queue);
            s = pipeline_drain(p, slot ^ 1);
        }
    }
    for (int k = 0; k < 2 && s == CLBNB_SUCCESS; k++)
        s = pipeline_drain(p, (int)((n_chunks + (size_t)k) & 1));
    return s;
}

/* ---- 4-bit --------------------------------------------------------------------------------------- */
typedef struct q4_job {
    const clbnb_quant_state *qs;
    size_t es, chunk_elems;
    cl_mem absmax; /* f32 [n_blocks]: the state's own, or a scratch compressed at the end when nested */
} q4_job;

static void q4_plan(void *user, size_t c, chunk_job *j) {
    const q4_job *q = user;
    size_t e0 = c * q->chunk_elems, n = q->qs->numel - e0 < q->chunk_elems ? q->qs->numel - e0 : q->chunk_elems;
    j->index = c;
    j->in_off = e0 * q->es;
    j->in_bytes = n * q->es;
    j->out_bytes = clbnb_packed_4bit_bytes(n);
}

static clbnb_status q4_quantize(void *user, const pipeline *p, int s, const chunk_job *j) {
    const q4_job *q = user;
    const size_t n = j->in_bytes / q->es, b0 = j->index * (q->chunk_elems / q->qs->blocksize);
    clbnb_vector x = clbnb_vector_make(p->chunk_in[s], p->chunk_off[s], n, q->qs->dtype);
    clbnb_vector packed = clbnb_vector_make(p->out[s], 0, j->out_bytes, CLBNB_DTYPE_U8);
    clbnb_vector am = clbnb_vector_make(q->absmax, b0 * 4, clbnb_blocks_count(n, q->qs->blocksize), CLBNB_DTYPE_F32);
    return clbnb_quantize_4bit(p->ctx, p->queue, &x, q->qs->quant_type, q->qs->blocksize, &packed, &am, 0, NULL, NULL);
}

clbnb_status clbnb_checkpoint_quantize_4bit(const clbnb_checkpoint *ck, const clbnb_st_tensor *t, clbnb_context *ctx,
                                            cl_command_queue queue, clbnb_quant_state *qs, clbnb_st_writer *w,
                                            size_t chunk_bytes, clbnb_file_error *err) {
    if (!ck || !t) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_quant_state_check_save(w, ctx, queue, qs, t->name, err));
    if (!is_float_tensor(t) || (clbnb_dtype)clbnb_st_dtype_to_clbnb(t->dtype) != qs->dtype)
        return clbnb_ferr(err, CLBNB_ERROR_QUANT_STATE_MISMATCH, CLBNB_FERR_USAGE, t->name,
                          "tensor '%s' is %s, the state expects %s", t->name, clbnb_st_dtype_name(t->dtype),
                          clbnb_dtype_name(qs->dtype));
    if (t->numel != qs->numel)
        return clbnb_ferr(err, CLBNB_ERROR_QUANT_STATE_MISMATCH, CLBNB_FERR_USAGE, t->name,
                          "tensor '%s' has %llu elements, the state %zu", t->name, (unsigned long long)t->numel,
                          qs->numel);
    {
        clbnb_quant_state_info info;
        char json[1024];
        size_t jl = 0;
        /* the layout does not depend on the nested offset (not known yet): read the info of a
         * shallow copy that claims one */
        clbnb_quant_state shape_only = *qs;
        shape_only.offset_valid = 1;
        CLBNB_TRY(clbnb_quant_state_get_info(&shape_only, &info));
        CLBNB_TRY(clbnb_quant_state_json_write(&info, json, sizeof json, &jl));
        clbnb_st_decl d[6];
        char names[6][CLBNB_CKPT_NAME_MAX];
        size_t nd = 0;
        CLBNB_TRY(clbnb_quant_state_declare(&info, CLBNB_DTYPE_U8, t->name, d, names, &nd));
        const char *want[6];
        uint64_t bytes[6];
        size_t k = 0;
        for (; k < nd && !d[k].deferred; k++) {
            want[k] = names[k];
            bytes[k] = clbnb_st_decl_bytes(&d[k]);
        }
        if (!qs->nested) bytes[k - 1] = jl; /* the JSON (streamed when not nested) */
        CLBNB_TRY(expect_layout(w, k, want, bytes, err));
    }
    if (chunk_bytes == 0) chunk_bytes = CONVERT_DEFAULT_CHUNK;
    q4_job q = {qs, clbnb_dtype_size(qs->dtype), 0, qs->absmax};
    /* whole blocks per chunk (blocks are even, so packed chunks are whole bytes) */
    size_t blocks = chunk_bytes / (q.es * qs->blocksize);
    q.chunk_elems = (blocks ? blocks : 1) * qs->blocksize;
    if (q.chunk_elems > qs->numel) q.chunk_elems = clbnb_round_up(qs->numel, qs->blocksize);
    const size_t n_chunks = (qs->numel + q.chunk_elems - 1) / q.chunk_elems;

    clbnb_status s = CLBNB_SUCCESS;
    cl_int e = CL_SUCCESS;
    if (qs->nested) {
        q.absmax = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, qs->n_blocks * 4, NULL, &e);
        if (e != CL_SUCCESS) return (clbnb_status)e;
    }
    pipeline p = {.ctx = ctx, .queue = queue, .ck = ck, .t = t, .w = w, .err = err};
    s = pipeline_init(&p, q.chunk_elems * q.es, clbnb_packed_4bit_bytes(q.chunk_elems), 0);
    if (s == CLBNB_SUCCESS) s = pipeline_run(&p, n_chunks, q4_plan, NULL, q4_quantize, &q);
    if (s == CLBNB_SUCCESS && qs->nested) {
        clbnb_vector am = clbnb_vector_make(q.absmax, 0, qs->n_blocks, CLBNB_DTYPE_F32);
        clbnb_vector codes = clbnb_vector_make(qs->absmax, 0, qs->n_blocks, CLBNB_DTYPE_U8);
        clbnb_vector am2 = clbnb_vector_make(qs->nested_absmax, 0,
                                             clbnb_blocks_count(qs->n_blocks, qs->nested_blocksize), CLBNB_DTYPE_F32);
        clbnb_vector off = clbnb_vector_make(qs->offset_buf, 0, 1, CLBNB_DTYPE_F32);
        qs->offset_valid = 0;
        s = clbnb_absmax_compress(ctx, queue, &am, qs->nested_blocksize, &codes, &am2, &off, 0, NULL, NULL);
        if (s == CLBNB_SUCCESS) s = clbnb_quant_state_sync_offset(qs, queue);
    }
    if (s == CLBNB_SUCCESS) s = clbnb_quant_state_write_tail(w, queue, qs, t->name, err);
    pipeline_free(&p);
    if (qs->nested && q.absmax) clReleaseMemObject(q.absmax);
    return s;
}

/* ---- int8 (Int8Params: row-wise absmax of the fp16 weight, spec 5.1 without threshold) ----------- */
typedef struct i8_job {
    const clbnb_st_tensor *t;
    size_t rows, cols, chunk_rows;
    cl_mem scb; /* f32 [rows] */
} i8_job;

static void i8_plan(void *user, size_t c, chunk_job *j) {
    const i8_job *q = user;
    size_t r0 = c * q->chunk_rows, n = q->rows - r0 < q->chunk_rows ? q->rows - r0 : q->chunk_rows;
    size_t es = clbnb_st_dtype_size(q->t->dtype);
    j->index = c;
    j->in_off = r0 * q->cols * es;
    j->in_bytes = n * q->cols * es;
    j->out_bytes = n * q->cols;
}

/* bitsandbytes quantizes W.half(): f32 and bf16 weights are rounded to fp16 on the host first */
static size_t i8_stage(void *user, const chunk_job *j, void *dst) {
    const i8_job *q = user;
    const unsigned char *src = (const unsigned char *)q->t->data + j->in_off;
    const size_t n = j->out_bytes;
    uint16_t *h = dst;
    if (q->t->dtype == CLBNB_ST_F16) {
        memcpy(h, src, n * 2); /* safetensors data need not be aligned */
    } else {
        for (size_t k = 0; k < n; k++) {
            float f;
            if (q->t->dtype == CLBNB_ST_F32) {
                memcpy(&f, src + 4 * k, 4);
            } else {
                uint16_t b;
                memcpy(&b, src + 2 * k, 2);
                uint32_t u = (uint32_t)b << 16;
                memcpy(&f, &u, 4);
            }
            h[k] = clbnb_f32_to_f16(f);
        }
    }
    return n * 2;
}

static clbnb_status i8_quantize(void *user, const pipeline *p, int s, const chunk_job *j) {
    const i8_job *q = user;
    const size_t n = j->out_bytes / q->cols, r0 = j->index * q->chunk_rows;
    clbnb_matrix x = clbnb_matrix_make(p->chunk_in[s], p->chunk_off[s], n, q->cols, CLBNB_DTYPE_F16);
    clbnb_matrix cb = clbnb_matrix_make(p->out[s], 0, n, q->cols, CLBNB_DTYPE_I8);
    clbnb_vector scb = clbnb_vector_make(q->scb, r0 * 4, n, CLBNB_DTYPE_F32);
    return clbnb_quantize_rowwise(p->ctx, p->queue, &x, &cb, &scb, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL,
                                  NULL);
}

clbnb_status clbnb_checkpoint_quantize_int8(const clbnb_checkpoint *ck, const clbnb_st_tensor *t, clbnb_context *ctx,
                                            cl_command_queue queue, clbnb_st_writer *w, size_t chunk_bytes,
                                            clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!ck || !t || !w) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    if (!is_float_tensor(t) || t->ndim != 2 || t->numel == 0)
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, t->name,
                          "tensor '%s' is not a non-empty 2-D float tensor", t->name);
    /* the writer must declare <module>.weight, <module>.SCB, <module>.weight_format in this order */
    const size_t len = strlen(t->name);
    if (len < 7 || strcmp(t->name + len - 7, ".weight") != 0 || len + 8 > CLBNB_CKPT_NAME_MAX)
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, t->name,
                          "tensor '%s' is not named <module>.weight", t->name);
    char scb_name[CLBNB_CKPT_NAME_MAX], fmt_name[CLBNB_CKPT_NAME_MAX + 8];
    snprintf(scb_name, sizeof scb_name, "%.*s.SCB", (int)(len - 7), t->name);
    snprintf(fmt_name, sizeof fmt_name, "%s_format", t->name);
    i8_job q = {t, (size_t)t->shape[0], (size_t)t->shape[1], 0, NULL};
    const char *want[3] = {t->name, scb_name, fmt_name};
    const uint64_t bytes[3] = {t->numel, q.rows * 4, 1};
    CLBNB_TRY(expect_layout(w, 3, want, bytes, err));
    if (chunk_bytes == 0) chunk_bytes = CONVERT_DEFAULT_CHUNK;
    q.chunk_rows = chunk_bytes / (q.cols * 2);
    if (q.chunk_rows == 0) q.chunk_rows = 1;
    if (q.chunk_rows > q.rows) q.chunk_rows = q.rows;
    const size_t n_chunks = (q.rows + q.chunk_rows - 1) / q.chunk_rows;
    cl_int e = CL_SUCCESS;
    q.scb = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, q.rows * 4, NULL, &e);
    if (e != CL_SUCCESS) return (clbnb_status)e;
    pipeline p = {.ctx = ctx, .queue = queue, .ck = ck, .t = t, .w = w, .err = err};
    clbnb_status s = pipeline_init(&p, q.chunk_rows * q.cols * 2, q.chunk_rows * q.cols, 1);
    if (s == CLBNB_SUCCESS) s = pipeline_run(&p, n_chunks, i8_plan, i8_stage, i8_quantize, &q);
    float *scb = s == CLBNB_SUCCESS ? malloc(q.rows * 4) : NULL;
    if (s == CLBNB_SUCCESS && !scb) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    if (s == CLBNB_SUCCESS)
        s = (clbnb_status)clEnqueueReadBuffer(queue, q.scb, CL_TRUE, 0, q.rows * 4, scb, 0, NULL, NULL);
    if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, scb, q.rows * 4, err);
    const uint8_t row_format = 0; /* weight_format "row" */
    if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, &row_format, 1, err);
    free(scb);
    pipeline_free(&p);
    clReleaseMemObject(q.scb);
    return s;
}
