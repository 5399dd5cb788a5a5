/* kernel_trace.c: a development aid, not part of the library. Preloaded into a program
 * (LD_PRELOAD=build/bench/libclbnb_kernel_trace.so clbnb bench --filter ...), it wraps
 * clEnqueueNDRangeKernel, keeps an event of every launch and, at exit, prints to stderr each kernel
 * name with its launch count and median / total device time from the profiling events. It shows
 * where a multi-kernel operation spends its time. Queues without profiling report no times.
 * CLBNB_TRACE_TIMELINE=N also prints the last N launches in order: each one's gap after the
 * previous launch's end, its duration, and how long after it was queued it started (a start
 * right after its own queueing, with a gap before it, means the host enqueued it late). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,
                             cl_uint, const cl_event *, cl_event *);

typedef struct launch {
    char name[64];
    cl_event event;
} launch;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static launch *launches;
static size_t count, capacity;

cl_int clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dim, const size_t *offset, const size_t *global,
                              const size_t *local, cl_uint nwait, const cl_event *wait, cl_event *event) {
    static enqueue_fn real;
    if (!real) real = (enqueue_fn)dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    cl_event own = NULL;
    cl_int err = real(q, k, dim, offset, global, local, nwait, wait, event ? event : &own);
    if (err != CL_SUCCESS) return err;
    cl_event e = event ? *event : own;
    pthread_mutex_lock(&lock);
    if (count == capacity) {
        size_t c = capacity ? 2 * capacity : 4096;
        launch *p = realloc(launches, c * sizeof *p);
        if (p) launches = p, capacity = c;
    }
    if (count < capacity) {
        launch *l = &launches[count++];
        memset(l->name, 0, sizeof l->name);
        clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof l->name - 1, l->name, NULL);
        l->event = e;
        if (event) clRetainEvent(e); /* the caller releases its own reference */
        e = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (e && !event) clReleaseEvent(e);
    return err;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double profile_us(cl_event e, cl_profiling_info what, cl_ulong origin) {
    cl_ulong v = 0;
    if (clGetEventProfilingInfo(e, what, sizeof v, &v, NULL) != CL_SUCCESS) return -1;
    return ((double)v - (double)origin) / 1e3;
}

static void timeline(size_t last) {
    size_t first = count > last ? count - last : 0;
    cl_ulong origin = 0;
    if (first >= count || clGetEventProfilingInfo(launches[first].event, CL_PROFILING_COMMAND_START, sizeof origin,
                                                  &origin, NULL) != CL_SUCCESS)
        return;
    fprintf(stderr, "\n%-40s %10s %10s %10s %14s\n", "timeline (last launches)", "start us", "gap us", "dur us",
            "start-queued");
    double prev_end = -1;
    for (size_t i = first; i < count; i++) {
        double q = profile_us(launches[i].event, CL_PROFILING_COMMAND_QUEUED, origin);
        double s = profile_us(launches[i].event, CL_PROFILING_COMMAND_START, origin);
        double e = profile_us(launches[i].event, CL_PROFILING_COMMAND_END, origin);
        fprintf(stderr, "%-40s %10.2f %10.2f %10.2f %14.2f\n", launches[i].name, s, prev_end < 0 ? 0.0 : s - prev_end,
                e - s, s - q);
        prev_end = e;
    }
}

__attribute__((destructor)) static void report(void) {
    const char *tl = getenv("CLBNB_TRACE_TIMELINE");
    if (tl && atoi(tl) > 0) timeline((size_t)atoi(tl));
    double *t = malloc((count ? count : 1) * sizeof *t);
    char *done = calloc(count ? count : 1, 1);
    if (!t || !done) return;
    fprintf(stderr, "\n%-40s %8s %12s %12s\n", "kernel (LD_PRELOAD trace)", "launches", "median us", "total us");
    for (size_t i = 0; i < count; i++) {
        if (done[i]) continue;
        size_t n = 0;
        double total = 0;
        for (size_t j = i; j < count; j++) {
            if (done[j] || strcmp(launches[j].name, launches[i].name)) continue;
            done[j] = 1;
            cl_ulong s = 0, e = 0;
            if (clGetEventProfilingInfo(launches[j].event, CL_PROFILING_COMMAND_START, sizeof s, &s, NULL) ||
                clGetEventProfilingInfo(launches[j].event, CL_PROFILING_COMMAND_END, sizeof e, &e, NULL))
                continue;
            t[n++] = (double)(e - s) / 1e3;
            total += (double)(e - s) / 1e3;
        }
        qsort(t, n, sizeof *t, cmp_double);
        fprintf(stderr, "%-40s %8zu %12.2f %12.1f\n", launches[i].name, n, n ? t[n / 2] : -1.0, total);
    }
    free(t);
    free(done);
}
