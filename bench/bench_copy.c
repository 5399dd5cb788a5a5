/* bench_copy.c: the device's copy bandwidth through clbnb's copy kernel (read + write counted):
 * the in-run reference that every memory-bound figure is a ratio of. */
#include <stdio.h>

#include "bench.h"

struct copy_args {
    bench_session *s;
    cl_mem src, dst;
    size_t bytes;
};

static clbnb_status enqueue_copy(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct copy_args *a = user;
    (void)iteration;
    return clbnb_buffer_copy(a->s->ctx, queue, a->dst, 0, a->src, 0, a->bytes, 0, NULL, event);
}

void bench_copy(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    /* GPU: 1 GiB moved per run (512 MiB each way), as the anchor figures; CPU: 256 MiB */
    size_t bytes = (info->type & CL_DEVICE_TYPE_CPU) ? ((size_t)128 << 20) : ((size_t)512 << 20);
    while (bytes > info->max_alloc_bytes / 2 && bytes > (1u << 20))
        bytes /= 2;
    struct copy_args a = {s, bench_random_buffer(s, bytes, 1), bench_alloc(s, bytes), bytes};
    double us = -1;
    if (a.src && a.dst) us = bench_time_kernel_us(s, enqueue_copy, &a);
    double gbps = us > 0 ? 2.0 * (double)bytes / (us * 1e3) : 0;
    s->copy_gbps = gbps;
    char shape[64];
    snprintf(shape, sizeof shape, "%zu MiB", bytes >> 20);
    bench_report(s, "copy", shape, us, gbps, "GB/s", 1.0, "copy");
    if (a.src) clReleaseMemObject(a.src);
    if (a.dst) clReleaseMemObject(a.dst);
}
