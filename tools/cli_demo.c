/* cli_demo.c: `clbnb demo`: the main job on the default device, end to end, in plain words.
 * Probes the device, compiles the kernels (with a progress line the first time), checks and
 * times the copy kernel, then quantizes a weight matrix to NF4 / 8-bit and back and reports the
 * error against bitsandbytes' bars. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "demo.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void show_progress(void *user, size_t index, size_t count, const char *name) {
    (void)user;
    if (name)
        fprintf(stderr, "\r  compiling kernels %zu/%zu: %-24s", index + 1, count, name);
    else
        fprintf(stderr, "\r  compiling kernels %zu/%zu: done%24s\n", count, count, "");
    fflush(stderr);
}

/* Copies a buffer of known bytes with clbnb_buffer_copy and checks every byte arrives. */
static int demo_copy_check(clbnb_context *ctx, cl_command_queue q) {
    size_t n = (1u << 20) + 13; /* odd size: exercises the vector body and the byte tail */
    unsigned char *host = malloc(n), *back = malloc(n);
    if (!host || !back) return 0;
    for (size_t i = 0; i < n; i++)
        host[i] = (unsigned char)(i * 131u + 7u);
    cl_int err;
    cl_context c = clbnb_context_cl_context(ctx);
    cl_mem src = clCreateBuffer(c, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n, host, &err);
    cl_mem dst = clCreateBuffer(c, CL_MEM_READ_WRITE, n, NULL, &err);
    int ok = src && dst && clbnb_buffer_copy(ctx, q, dst, 0, src, 0, n, 0, NULL, NULL) == CLBNB_SUCCESS &&
             clEnqueueReadBuffer(q, dst, CL_TRUE, 0, n, back, 0, NULL, NULL) == CL_SUCCESS &&
             memcmp(host, back, n) == 0;
    if (src) clReleaseMemObject(src);
    if (dst) clReleaseMemObject(dst);
    free(host);
    free(back);
    return ok;
}

int cli_demo(int argc, char **argv) {
    const char *selector = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = cli_option(argc, argv, &i, "--device")))
            selector = v;
        else {
            fprintf(stderr, "clbnb demo: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    printf("clbnb %s demo\n\n", clbnb_version());
    double t0 = now_s();
    clbnb_context *ctx = cli_open_context(selector);
    if (!ctx) return 1;
    double t_probe = now_s() - t0;
    const clbnb_device_info *info = clbnb_context_device_info(ctx);
    printf("1. device (probed in %.0f ms)\n", t_probe * 1e3);
    cli_print_device(info, "   ");

    printf("\n2. kernels\n");
    t0 = now_s();
    clbnb_status s = clbnb_context_warm_up(ctx, show_progress, NULL);
    if (s != CLBNB_SUCCESS) {
        fprintf(stderr, "\nclbnb demo: kernel build failed: %s\n%s\n", clbnb_status_string(s),
                clbnb_context_build_log(ctx));
        clbnb_context_free(ctx);
        return 1;
    }
    clbnb_build_stats st;
    clbnb_context_build_stats(ctx, &st);
    printf("   %u programs compiled from source, %u loaded from the on-disk cache, %.0f ms in builds (%.0f ms total)\n",
           st.programs_from_source, st.programs_from_disk, st.build_ms, (now_s() - t0) * 1e3);

    cl_command_queue q = clbnb_context_default_queue(ctx);
    printf("\n3. copy kernel\n");
    int ok = demo_copy_check(ctx, q);
    printf("   1 MiB + 13 bytes copied and compared: %s\n", ok ? "all bytes correct" : "MISMATCH");
    bench_session bs = {0};
    bs.ctx = ctx;
    bs.queue = q;
    bs.runs = 20;
    bs.warmup = 3;
    bs.out = NULL;
    bench_copy(&bs);
    printf("   copy bandwidth: %.1f GB/s (read + write counted, median of %d runs)\n", bs.copy_gbps, bs.runs);

    printf("\n4. quantization\n");
    ok = demo_quantization(ctx, q) && ok;

    clbnb_context_free(ctx);
    printf("\n%s\n", ok ? "demo finished: every check passed" : "demo finished with FAILURES");
    return ok ? 0 : 1;
}
