/*
 * bench.h: the benchmark harness behind `clbnb bench`.
 *
 * Method: every measurement is the median kernel time over many runs after warm-up, taken from
 * OpenCL profiling events: a single-kernel operation from its kernel's start to its end
 * (bench_time_kernel_us), a multi-kernel one from a marker enqueued right before it to the end of
 * its last kernel, so it counts whole (bench_time_us). Before each timed run a kernel reads a
 * buffer several times larger than any last-level cache, so memory-bound kernels start cold (and
 * the cache holds no dirty lines for them to write back). Each record carries a ratio to a
 * reference measured in the same run (the copy bandwidth of the device for memory-bound
 * operations).
 */
#ifndef CLBNB_BENCH_H
#define CLBNB_BENCH_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "clbnb.h"

typedef struct bench_session {
    clbnb_context *ctx;
    cl_command_queue queue; /* profiling enabled */
    const char *filter;     /* substring of operation names to run; NULL = all */
    int runs;               /* timed runs per measurement (median taken) */
    int warmup;
    double copy_gbps; /* in-run copy bandwidth, read + write counted (0 until measured) */
    cl_mem flush;     /* read before each timed run (bench_flush_init) */
    size_t flush_bytes;
    cl_kernel flush_kernel;
    cl_mem flush_sink;
    size_t flush_groups;
    cJSON *records; /* array of JSON records */
    FILE *out;      /* table output (stdout) */
    int failures;
} bench_session;

/* One operation instance to time: enqueue() must enqueue the whole operation on `queue` and
 * return its last event in *event. `iteration` lets it rotate between buffer copies. */
typedef clbnb_status (*bench_enqueue_fn)(void *user, cl_command_queue queue, int iteration, cl_event *event);

/* Median time in microseconds (negative on failure): of the whole operation (bench_time_us), or of
 * an operation that is one kernel, from that kernel's start (bench_time_kernel_us). */
double bench_time_us(bench_session *s, bench_enqueue_fn fn, void *user);
double bench_time_kernel_us(bench_session *s, bench_enqueue_fn fn, void *user);

/* The cold-cache buffer and its read kernel (1 on success); released by bench_flush_release. */
int bench_flush_init(bench_session *s, size_t bytes);
void bench_flush_release(bench_session *s);

/* Builds a benchmark-private kernel from source (NULL on failure). */
cl_kernel bench_build_kernel(bench_session *s, const char *source, const char *options, const char *name);

/* Whether `op` passes the --filter. */
int bench_selected(const bench_session *s, const char *op);

/* Prints a table row and appends a JSON record. rate_unit: "GB/s", "TOPS", "GFLOP/s".
 * reference: what ratio compares against ("copy" for the in-run copy bandwidth), may be NULL. */
void bench_report(bench_session *s, const char *op, const char *shape, double median_us, double rate,
                  const char *rate_unit, double ratio, const char *reference);

/* Allocates a device buffer filled with `bytes` of pseudo-random data (NULL on failure). */
cl_mem bench_random_buffer(bench_session *s, size_t bytes, unsigned seed);
/* Random floats in [-1, 1) of the given dtype (f32/f16/bf16), n elements. */
cl_mem bench_random_floats(bench_session *s, size_t n, clbnb_dtype dtype, unsigned seed);
cl_mem bench_alloc(bench_session *s, size_t bytes);

/* --- the benchmarks (bench_registry.c runs them in this order) --- */
void bench_copy(bench_session *s);            /* must run first: the others report ratios against it */
void bench_copy_ceilings(bench_session *s);   /* copy at 64 MiB, write-only and read-only figures */
void bench_quant(bench_session *s);           /* quantization operations (issue 3): the two below */
void bench_quant_blockwise(bench_session *s); /* bench_quant_blockwise.c: 8-bit, NF4/FP4, nested */
void bench_quant_int8(bench_session *s);      /* bench_quant_int8.c: row-wise, global, column-wise, double */

void bench_int8_gemm(bench_session *s); /* bench_int8_gemm.c (issue 4) */
void bench_gemm_4bit(bench_session *s); /* bench_gemm_4bit.c (issue 5) */
void bench_layers(bench_session *s);    /* bench_layers.c (issue 7) */

void bench_run_all(bench_session *s);

#endif
