/* bench_copy.c: the device's copy bandwidth through clbnb's copy kernel (read + write counted):
 * the in-run reference that every memory-bound figure is a ratio of.
 *
 * Beside it, three figures that are not references but say where a ratio's ceiling lies for
 * operations that mostly read or mostly write, on the 64 MiB-class tensors the operations use:
 * the same copy at 64 MiB each way, a write-only fill and a read-only sum (64 MiB and the large
 * size). They are reported as ratios to the copy bandwidth like every operation. */
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

/* One 16-byte vector per work-item on GPUs (the shape of the quantization kernels); on CPUs one
 * contiguous chunk per work-item, as the copy kernel does. */
static const char stream_source[] =
    "__kernel void bench_write_fill(__global uint4 *p, ulong n) {\n"
    "#if CPU\n"
    "    ulong c = (n + get_global_size(0) - 1) / get_global_size(0), b = get_global_id(0) * c;\n"
    "    for (ulong i = b; i < min(b + c, n); i++) p[i] = (uint4)((uint)i);\n"
    "#else\n"
    "    ulong i = get_global_id(0);\n"
    "    if (i < n) p[i] = (uint4)((uint)i);\n"
    "#endif\n"
    "}\n"
    "__kernel void bench_read_sum(__global const uint4 *p, ulong n, __global uint *sink) {\n"
    "    uint4 a = (uint4)(0u);\n"
    "#if CPU\n"
    "    ulong c = (n + get_global_size(0) - 1) / get_global_size(0), b = get_global_id(0) * c;\n"
    "    for (ulong i = b; i < min(b + c, n); i++) a ^= p[i];\n"
    "#else\n"
    "    ulong i = get_global_id(0);\n"
    "    if (i < n) a = p[i];\n"
    "#endif\n"
    "    if (a.x == 0x9e3779b9u && a.y == 0x7f4a7c15u) sink[0] = a.z ^ a.w;\n"
    "}\n";

struct stream_args {
    cl_kernel kernel;
    size_t global;
};

static clbnb_status enqueue_stream(void *user, cl_command_queue queue, int iteration, cl_event *event) {
    struct stream_args *a = user;
    (void)iteration;
    size_t local = 256, global = (a->global + local - 1) / local * local;
    return (clbnb_status)clEnqueueNDRangeKernel(queue, a->kernel, 1, NULL, &global, &local, 0, NULL, event);
}

/* Times stream kernel k (bench_write_fill: write = 1, bench_read_sum: write = 0) over `bytes` of
 * buf. */
static void stream_reference(bench_session *s, cl_kernel k, int write, cl_mem buf, cl_mem sink, size_t bytes, int cpu) {
    const char *op = write ? "write-only" : "read-only";
    char shape[32];
    snprintf(shape, sizeof shape, "%zu MiB", bytes >> 20);
    if (!bench_selected(s, "copy") && !bench_selected(s, op)) return;
    cl_ulong n = bytes / 16;
    int ok = k && clSetKernelArg(k, 0, sizeof(cl_mem), &buf) == CL_SUCCESS &&
             clSetKernelArg(k, 1, sizeof n, &n) == CL_SUCCESS &&
             (write || clSetKernelArg(k, 2, sizeof(cl_mem), &sink) == CL_SUCCESS);
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    struct stream_args a = {k, cpu ? 256 * (size_t)(info->compute_units ? info->compute_units : 1) : (size_t)n};
    double us = ok ? bench_time_kernel_us(s, enqueue_stream, &a) : -1;
    if (!ok) s->failures++;
    double gbps = us > 0 ? (double)bytes / (us * 1e3) : 0;
    bench_report(s, op, shape, us, gbps, "GB/s", s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
}

/* Bytes each way of the reference copy: 512 MiB on GPUs (1 GiB moved per run, as the anchor
 * figures), 128 MiB on CPUs, halved while the device cannot allocate twice that. */
static size_t reference_bytes(const clbnb_device_info *info) {
    size_t bytes = (info->type & CL_DEVICE_TYPE_CPU) ? ((size_t)128 << 20) : ((size_t)512 << 20);
    while (bytes > info->max_alloc_bytes / 2 && bytes > (1u << 20))
        bytes /= 2;
    return bytes;
}

static double time_copy(bench_session *s, size_t bytes, int reference) {
    struct copy_args a = {s, bench_random_buffer(s, bytes, 1), bench_alloc(s, bytes), bytes};
    double us = -1;
    if (a.src && a.dst) us = bench_time_kernel_us(s, enqueue_copy, &a);
    double gbps = us > 0 ? 2.0 * (double)bytes / (us * 1e3) : 0;
    if (reference) s->copy_gbps = gbps;
    char shape[64];
    snprintf(shape, sizeof shape, "%zu MiB", bytes >> 20);
    bench_report(s, "copy", shape, us, gbps, "GB/s", s->copy_gbps > 0 ? gbps / s->copy_gbps : 0, "copy");
    if (a.src) clReleaseMemObject(a.src);
    if (a.dst) clReleaseMemObject(a.dst);
    return us;
}

void bench_copy(bench_session *s) { time_copy(s, reference_bytes(clbnb_context_device_info(s->ctx)), 1); }

/* The ceiling figures (`clbnb bench --filter copy` runs them; the full run too). */
void bench_copy_ceilings(bench_session *s) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    const int cpu = (info->type & CL_DEVICE_TYPE_CPU) != 0;
    size_t big = reference_bytes(info), small = (size_t)64 << 20;
    if (small > big) small = big;
    if (bench_selected(s, "copy")) time_copy(s, small, 0);
    if (!bench_selected(s, "copy") && !bench_selected(s, "write-only") && !bench_selected(s, "read-only")) return;
    const char *options = cpu ? "-DCPU=1" : "-DCPU=0";
    cl_kernel fill = bench_build_kernel(s, stream_source, options, "bench_write_fill");
    cl_kernel sum = bench_build_kernel(s, stream_source, options, "bench_read_sum");
    cl_mem buf = bench_random_buffer(s, big, 7), sink = bench_alloc(s, 16);
    if (!buf || !sink) {
        s->failures++;
    } else {
        for (int write = 1; write >= 0; write--) {
            stream_reference(s, write ? fill : sum, write, buf, sink, small, cpu);
            stream_reference(s, write ? fill : sum, write, buf, sink, big, cpu);
        }
    }
    if (fill) clReleaseKernel(fill);
    if (sum) clReleaseKernel(sum);
    if (buf) clReleaseMemObject(buf);
    if (sink) clReleaseMemObject(sink);
}
