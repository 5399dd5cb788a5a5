/* scratch_pool.c: the context's pool of device scratch buffers (statistics partials, flags,
 * split-K sums, dequantized tiles).
 *
 * Why a pool: allocating a scratch buffer per call and releasing it right after enqueueing the
 * commands that use it is correct OpenCL, but NVIDIA's driver makes that clReleaseMemObject wait
 * until the queue has drained: the host stalls, and the next operation is enqueued only after the
 * GPU has gone idle (H100, SwitchBack forward at 4096^3: an 18 us hole before the int8 GEMM;
 * clbnb_quantize_global took 840 us of host time behind 0.8 ms of queued work). Pooled buffers
 * are never released while in use: a released buffer is marked busy until a marker enqueued
 * behind its last use completes, and is handed out again only after that (a non-blocking status
 * query), so reuse is safe across queues and threads.
 *
 * Policy: at most CLBNB_SCRATCH_SLOTS buffers of at most CLBNB_SCRATCH_MAX_BYTES each and
 * CLBNB_SCRATCH_TOTAL_BYTES together (sizes rounded up to a power of two so that calls of similar
 * size share buffers); larger requests, or requests while every slot is busy, get a buffer of
 * their own, released (clReleaseMemObject) when handed back. A buffer handed back with
 * clbnb_scratch_release_zeroed keeps a mark of how many leading bytes its user left zero, so the
 * next clbnb_scratch_acquire_zeroed of that size needs no fill (outlier column flags); any other
 * acquire clears the mark. The pool is freed with the context.
 * Guarded by its own mutex (a leaf lock: callers may hold ctx->lock). */
#include "internal.h"

static int event_done(cl_event e) {
    if (!e) return 1;
    cl_int st = CL_QUEUED;
    if (clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof st, &st, NULL) != CL_SUCCESS) return 0;
    return st == CL_COMPLETE || st < 0; /* failed commands no longer use the buffer either */
}

static size_t pooled_size(size_t bytes) {
    size_t s = 4096;
    while (s < bytes)
        s *= 2;
    return s;
}

/* need_zero: prefer an idle buffer whose first `bytes` bytes are known zero (*zeroed = 1). */
static clbnb_status acquire(clbnb_context *ctx, size_t bytes, cl_mem *out, int need_zero, int *zeroed) {
    *out = NULL;
    *zeroed = 0;
    if (bytes == 0) bytes = 4;
    cl_int err = CL_SUCCESS;
    if (bytes <= CLBNB_SCRATCH_MAX_BYTES) {
        size_t want = pooled_size(bytes);
        pthread_mutex_lock(&ctx->scratch_lock);
        int best = -1, empty = -1, idle = -1, zero = -1;
        size_t total = 0;
        for (int i = 0; i < CLBNB_SCRATCH_SLOTS; i++) {
            clbnb_scratch_slot *sl = &ctx->scratch[i];
            total += sl->bytes;
            if (!sl->mem) {
                if (empty < 0) empty = i;
                continue;
            }
            if (sl->in_use || !event_done(sl->busy)) continue;
            if (sl->bytes >= want && (best < 0 || sl->bytes < ctx->scratch[best].bytes)) best = i;
            if (idle < 0 || sl->bytes < ctx->scratch[idle].bytes) idle = i;
            if (need_zero && sl->zero >= bytes && (zero < 0 || sl->bytes < ctx->scratch[zero].bytes)) zero = i;
        }
        if (zero >= 0) {
            best = zero;
            *zeroed = 1;
        }
        if (best < 0) {
            /* a new buffer: in an empty slot, else in place of the smallest idle one */
            int slot = -1;
            if (empty >= 0 && total + want <= CLBNB_SCRATCH_TOTAL_BYTES)
                slot = empty;
            else if (idle >= 0 && total - ctx->scratch[idle].bytes + want <= CLBNB_SCRATCH_TOTAL_BYTES)
                slot = idle;
            if (slot >= 0) {
                cl_mem m = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, want, NULL, &err);
                if (err == CL_SUCCESS && m) {
                    clbnb_scratch_slot *sl = &ctx->scratch[slot];
                    if (sl->mem) clReleaseMemObject(sl->mem); /* idle: its last use has completed */
                    if (sl->busy) clReleaseEvent(sl->busy);
                    sl->mem = m, sl->bytes = want, sl->busy = NULL;
                    best = slot;
                }
            }
        }
        if (best >= 0) {
            clbnb_scratch_slot *sl = &ctx->scratch[best];
            if (sl->busy) clReleaseEvent(sl->busy);
            sl->busy = NULL;
            sl->in_use = 1;
            sl->zero = 0; /* the new user may write anything */
            *out = sl->mem;
        }
        pthread_mutex_unlock(&ctx->scratch_lock);
        if (*out) return CLBNB_SUCCESS;
    }
    /* not pooled */
    err = CL_SUCCESS;
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS || !*out) {
        *out = NULL;
        return (clbnb_status)(err != CL_SUCCESS ? err : CL_MEM_OBJECT_ALLOCATION_FAILURE);
    }
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_scratch_acquire(clbnb_context *ctx, size_t bytes, cl_mem *out) {
    int zeroed;
    return acquire(ctx, bytes, out, 0, &zeroed);
}

clbnb_status clbnb_scratch_acquire_zeroed(clbnb_context *ctx, size_t bytes, cl_mem *out, int *zeroed) {
    return acquire(ctx, bytes, out, 1, zeroed);
}

static void release(clbnb_context *ctx, cl_command_queue queue, cl_mem mem, size_t zero_bytes) {
    if (!mem) return;
    pthread_mutex_lock(&ctx->scratch_lock);
    for (int i = 0; i < CLBNB_SCRATCH_SLOTS; i++) {
        clbnb_scratch_slot *sl = &ctx->scratch[i];
        if (sl->mem != mem || !sl->in_use) continue;
        /* busy until everything enqueued so far on `queue` (its uses included) has completed */
        cl_event marker = NULL;
        if (clEnqueueMarkerWithWaitList(queue, 0, NULL, &marker) != CL_SUCCESS || !marker) {
            /* no way to know when it is free: leave the pool (released as a plain buffer) */
            clReleaseMemObject(sl->mem);
            sl->mem = NULL, sl->bytes = 0;
        }
        sl->busy = marker;
        sl->in_use = 0;
        sl->zero = marker ? zero_bytes : 0;
        pthread_mutex_unlock(&ctx->scratch_lock);
        return;
    }
    pthread_mutex_unlock(&ctx->scratch_lock);
    clReleaseMemObject(mem); /* not pooled: freed once the queued commands are done with it */
}

void clbnb_scratch_release(clbnb_context *ctx, cl_command_queue queue, cl_mem mem) { release(ctx, queue, mem, 0); }

void clbnb_scratch_release_zeroed(clbnb_context *ctx, cl_command_queue queue, cl_mem mem, size_t zero_bytes) {
    release(ctx, queue, mem, zero_bytes);
}

void clbnb_scratch_pool_free(clbnb_context *ctx) {
    for (int i = 0; i < CLBNB_SCRATCH_SLOTS; i++) {
        clbnb_scratch_slot *sl = &ctx->scratch[i];
        if (sl->busy) clReleaseEvent(sl->busy);
        if (sl->mem) clReleaseMemObject(sl->mem);
        sl->busy = NULL, sl->mem = NULL, sl->bytes = 0, sl->in_use = 0, sl->zero = 0;
    }
}
