/* bench_harness.c: timing, cache flushing, table and JSON output for `clbnb bench`. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double event_ns(cl_event e, cl_profiling_info what) {
    cl_ulong t = 0;
    if (clGetEventProfilingInfo(e, what, sizeof t, &t, NULL) != CL_SUCCESS) return -1;
    return (double)t;
}

/* Cold caches without dirty lines: a kernel that reads the whole flush buffer (and writes one word
 * per work-group). Overwriting the buffer instead would leave the last-level cache full of dirty
 * lines that the timed kernel then pays to write back. */
static const char flush_source[] =
    "__kernel void bench_read_flush(__global const uint4 *p, ulong n, __global uint *sink) {\n"
    "    uint4 a = (uint4)(0u);\n"
    "    for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) a ^= p[i];\n"
    "    if (a.x == 0x9e3779b9u && a.y == 0x7f4a7c15u) sink[get_group_id(0)] = a.z ^ a.w;\n"
    "}\n";

cl_kernel bench_build_kernel(bench_session *s, const char *source, const char *options, const char *name) {
    cl_context context = clbnb_context_cl_context(s->ctx);
    cl_device_id device = clbnb_context_device(s->ctx);
    cl_int err;
    cl_program prog = clCreateProgramWithSource(context, 1, &source, NULL, &err);
    if (err != CL_SUCCESS) return NULL;
    cl_kernel k = NULL;
    err = clBuildProgram(prog, 1, &device, options, NULL, NULL);
    if (err == CL_SUCCESS) k = clCreateKernel(prog, name, &err);
    clReleaseProgram(prog);
    return err == CL_SUCCESS ? k : NULL;
}

int bench_flush_init(bench_session *s, size_t bytes) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    s->flush_bytes = bytes;
    s->flush = bench_random_buffer(s, bytes, 99);
    s->flush_groups = 4 * (size_t)(info->compute_units ? info->compute_units : 1);
    s->flush_sink = bench_alloc(s, s->flush_groups * 4);
    if (!s->flush || !s->flush_sink) return 0;
    s->flush_kernel = bench_build_kernel(s, flush_source, "", "bench_read_flush");
    if (!s->flush_kernel) return 0;
    cl_ulong n = bytes / 16;
    return clSetKernelArg(s->flush_kernel, 0, sizeof(cl_mem), &s->flush) == CL_SUCCESS &&
           clSetKernelArg(s->flush_kernel, 1, sizeof n, &n) == CL_SUCCESS &&
           clSetKernelArg(s->flush_kernel, 2, sizeof(cl_mem), &s->flush_sink) == CL_SUCCESS;
}

void bench_flush_release(bench_session *s) {
    if (s->flush_kernel) clReleaseKernel(s->flush_kernel);
    if (s->flush) clReleaseMemObject(s->flush);
    if (s->flush_sink) clReleaseMemObject(s->flush_sink);
    s->flush_kernel = NULL, s->flush = s->flush_sink = NULL;
}

static int enqueue_flush(bench_session *s) {
    if (!s->flush_kernel) return 1;
    size_t local = 256, global = s->flush_groups * local;
    return clEnqueueNDRangeKernel(s->queue, s->flush_kernel, 1, NULL, &global, &local, 0, NULL, NULL) == CL_SUCCESS;
}

/* kernel_only: the operation is one kernel, timed from its own start (the launch gap after the
 * flush is not the operation's time); otherwise from a marker enqueued right before it. */
static double time_us(bench_session *s, bench_enqueue_fn fn, void *user, int kernel_only) {
    int total = s->warmup + s->runs;
    double *times = calloc((size_t)s->runs, sizeof *times);
    if (!times) return -1;
    int ok = 1, timed = 0;
    for (int it = 0; it < total && ok; it++) {
        cl_event marker = NULL, ev = NULL;
        ok = enqueue_flush(s);
        ok = ok && clEnqueueMarkerWithWaitList(s->queue, 0, NULL, &marker) == CL_SUCCESS;
        ok = ok && fn(user, s->queue, it, &ev) == CLBNB_SUCCESS && ev;
        ok = ok && clFinish(s->queue) == CL_SUCCESS;
        if (ok && it >= s->warmup) {
            /* from the end of everything before the operation to the end of its last kernel; where a
             * driver gives markers no timestamps, the last kernel's own start is used instead */
            double start = event_ns(marker, CL_PROFILING_COMMAND_END);
            double end = event_ns(ev, CL_PROFILING_COMMAND_END);
            double kstart = event_ns(ev, CL_PROFILING_COMMAND_START);
            if (kernel_only || start <= 0 || start > kstart) start = kstart;
            times[timed++] = (end - start) / 1e3;
        }
        if (marker) clReleaseEvent(marker);
        if (ev) clReleaseEvent(ev);
    }
    double median = -1;
    if (ok && timed > 0) {
        qsort(times, (size_t)timed, sizeof *times, cmp_double);
        median = timed % 2 ? times[timed / 2] : 0.5 * (times[timed / 2 - 1] + times[timed / 2]);
    }
    free(times);
    if (median < 0) s->failures++;
    return median;
}

double bench_time_us(bench_session *s, bench_enqueue_fn fn, void *user) { return time_us(s, fn, user, 0); }
double bench_time_kernel_us(bench_session *s, bench_enqueue_fn fn, void *user) { return time_us(s, fn, user, 1); }

int bench_selected(const bench_session *s, const char *op) { return !s->filter || strstr(op, s->filter) != NULL; }

void bench_report(bench_session *s, const char *op, const char *shape, double median_us, double rate,
                  const char *rate_unit, double ratio, const char *reference) {
    const clbnb_device_info *info = clbnb_context_device_info(s->ctx);
    if (s->out) {
        if (median_us < 0)
            fprintf(s->out, "%-34s %-22s %12s\n", op, shape, "FAILED");
        else if (reference)
            fprintf(s->out, "%-34s %-22s %10.2f us %10.1f %-7s %6.1f%% of %s\n", op, shape, median_us, rate, rate_unit,
                    100.0 * ratio, reference);
        else
            fprintf(s->out, "%-34s %-22s %10.2f us %10.1f %-7s\n", op, shape, median_us, rate, rate_unit);
        fflush(s->out);
    }
    if (!s->records) return;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "operation", op);
    cJSON_AddStringToObject(r, "device", info->device_name);
    cJSON_AddStringToObject(r, "platform", info->platform_name);
    cJSON_AddStringToObject(r, "shape", shape);
    cJSON_AddNumberToObject(r, "median_us", median_us);
    cJSON_AddNumberToObject(r, "rate", rate);
    cJSON_AddStringToObject(r, "rate_unit", rate_unit);
    if (reference) {
        cJSON_AddNumberToObject(r, "ratio", ratio);
        cJSON_AddStringToObject(r, "reference", reference);
    }
    cJSON_AddNumberToObject(r, "runs", s->runs);
    cJSON_AddItemToArray(s->records, r);
}

cl_mem bench_alloc(bench_session *s, size_t bytes) {
    cl_int err;
    cl_mem m = clCreateBuffer(clbnb_context_cl_context(s->ctx), CL_MEM_READ_WRITE, bytes, NULL, &err);
    return err == CL_SUCCESS ? m : NULL;
}

cl_mem bench_random_buffer(bench_session *s, size_t bytes, unsigned seed) {
    unsigned char *host = malloc(bytes);
    if (!host) return NULL;
    uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < bytes; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        host[i] = (unsigned char)(x >> 24);
    }
    cl_int err;
    cl_mem m =
        clCreateBuffer(clbnb_context_cl_context(s->ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &err);
    free(host);
    return err == CL_SUCCESS ? m : NULL;
}

cl_mem bench_random_floats(bench_session *s, size_t n, clbnb_dtype dtype, unsigned seed) {
    size_t es = clbnb_dtype_size(dtype);
    unsigned char *host = malloc(n * es);
    if (!host) return NULL;
    uint64_t x = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        float f = (float)((double)(x >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        uint32_t u;
        memcpy(&u, &f, 4);
        if (dtype == CLBNB_DTYPE_F32) {
            memcpy(host + 4 * i, &f, 4);
        } else if (dtype == CLBNB_DTYPE_BF16) {
            uint16_t h = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            memcpy(host + 2 * i, &h, 2);
        } else { /* f16: |f| < 1, normal or zero range is enough for benchmark data */
            uint32_t sign = (u >> 16) & 0x8000u;
            int exp = (int)((u >> 23) & 0xff) - 127 + 15;
            uint16_t h = (uint16_t)(exp <= 0 ? sign : sign | (uint32_t)(exp << 10) | ((u >> 13) & 0x3ffu));
            memcpy(host + 2 * i, &h, 2);
        }
    }
    cl_int err;
    cl_mem m =
        clCreateBuffer(clbnb_context_cl_context(s->ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * es, host, &err);
    free(host);
    return err == CL_SUCCESS ? m : NULL;
}
