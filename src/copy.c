/* copy.c: clbnb_buffer_copy, the bandwidth reference kernel. */
#include "internal.h"

/* Grid size for grid-stride kernels: enough work-groups to fill the device several times over,
 * and no more than the work needs. */
static size_t grid_items(const clbnb_context *ctx, size_t work, size_t local) {
    size_t max_groups = (size_t)(ctx->info.compute_units ? ctx->info.compute_units : 1) * 16;
    size_t groups = (work + local - 1) / local;
    if (groups > max_groups) groups = max_groups;
    if (groups == 0) groups = 1;
    return groups * local;
}

clbnb_status clbnb_buffer_copy(clbnb_context *ctx, cl_command_queue queue, cl_mem dst, size_t dst_offset, cl_mem src,
                               size_t src_offset, size_t bytes, cl_uint num_events, const cl_event *wait_list,
                               cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!dst || !src) return CLBNB_ERROR_NULL_ARGUMENT;
    if (bytes == 0) return CLBNB_ERROR_INVALID_SHAPE;
    CLBNB_TRY(clbnb_check_region(dst, dst_offset, bytes));
    CLBNB_TRY(clbnb_check_region(src, src_offset, bytes));
    if (dst == src && dst_offset < src_offset + bytes && src_offset < dst_offset + bytes)
        return CLBNB_ERROR_INVALID_ARGUMENT; /* overlapping regions */

    int vec = (dst_offset % 16 == 0) && (src_offset % 16 == 0);
    size_t main_bytes = vec ? bytes / 16 * 16 : 0;
    size_t local = ctx->info.type & CL_DEVICE_TYPE_CPU ? 64 : 256;
    /* Offsets travel as kernel arguments (sub-buffers would need CL_DEVICE_MEM_BASE_ADDR_ALIGN). */
    clbnb_status s = CLBNB_SUCCESS;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    cl_event ev_main = NULL;
    if (main_bytes) {
        s = clbnb_kernel_get_locked(ctx, "copy", "", "copy_vec16_off", &k);
        if (s == CLBNB_SUCCESS) {
            cl_ulong n16 = main_bytes / 16, doff = dst_offset / 16, soff = src_offset / 16;
            s = clbnb_set_args(k, 5, CLBNB_ARG(dst), CLBNB_ARG(doff), CLBNB_ARG(src), CLBNB_ARG(soff), CLBNB_ARG(n16));
            size_t global = grid_items(ctx, (size_t)n16, local);
            int last = main_bytes == bytes;
            if (s == CLBNB_SUCCESS)
                s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, last ? event : &ev_main);
        }
    }
    if (s == CLBNB_SUCCESS && main_bytes < bytes) {
        s = clbnb_kernel_get_locked(ctx, "copy", "", "copy_bytes_off", &k);
        if (s == CLBNB_SUCCESS) {
            cl_ulong n = bytes - main_bytes, doff = dst_offset + main_bytes, soff = src_offset + main_bytes;
            s = clbnb_set_args(k, 5, CLBNB_ARG(dst), CLBNB_ARG(doff), CLBNB_ARG(src), CLBNB_ARG(soff), CLBNB_ARG(n));
            size_t global = grid_items(ctx, (size_t)n, local);
            if (s == CLBNB_SUCCESS)
                s = ev_main ? clbnb_enqueue(queue, k, 1, &global, &local, 1, &ev_main, event)
                            : clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
        }
    }
    pthread_mutex_unlock(&ctx->lock);
    if (ev_main) clReleaseEvent(ev_main);
    return s;
}
