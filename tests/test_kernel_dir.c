/* test_kernel_dir.c: CLBNB_KERNEL_DIR makes the library compile cl/<name>.cl from that directory
 * instead of the embedded copy (kernel development without rebuilding). Proven with a copy.cl whose
 * kernels add 1 to every byte; files the directory lacks fall back to the embedded sources; a file
 * that does not compile gives CLBNB_ERROR_BUILD_FAILED with the compiler's log. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_common.h"

static const char *altered_copy =
    "__kernel void copy_vec16_off(__global uint4 *dst, ulong doff, __global const uint4 *src, ulong soff, ulong n16) "
    "{\n"
    "  for (ulong i = get_global_id(0); i < n16; i += get_global_size(0))\n"
    "    dst[doff + i] = as_uint4(as_uchar16(src[soff + i]) + (uchar16)1);\n"
    "}\n"
    "__kernel void copy_bytes_off(__global uchar *dst, ulong doff, __global const uchar *src, ulong soff, ulong n) {\n"
    "  for (ulong i = get_global_id(0); i < n; i += get_global_size(0)) dst[doff + i] = src[soff + i] + 1;\n"
    "}\n";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Copies 1000 bytes (a 16-byte vector body and a byte tail) and returns how many arrived as src + delta. */
static size_t copy_shift(int delta, clbnb_status *status) {
    clbnb_context *ctx = test_context();
    unsigned char src[1000], got[1000];
    for (int i = 0; i < 1000; i++)
        src[i] = (unsigned char)(i * 7);
    cl_mem a = test_buffer_from(ctx, src, sizeof src), b = test_buffer(ctx, sizeof got);
    *status = clbnb_buffer_copy(ctx, test_queue(ctx), b, 0, a, 0, 1000, 0, NULL, NULL);
    if (*status == CLBNB_ERROR_BUILD_FAILED)
        TEST_CHECK(strlen(clbnb_context_build_log(ctx)) > 0, "a failed build leaves its log: '%s'",
                   clbnb_context_build_log(ctx));
    test_download(ctx, b, 0, got, sizeof got);
    size_t match = 0;
    for (int i = 0; i < 1000; i++)
        match += got[i] == (unsigned char)(src[i] + delta);
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clbnb_context_free(ctx);
    return match;
}

int main(void) {
    char dir[] = "/tmp/clbnb-kdir-XXXXXX";
    TEST_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    setenv("CLBNB_CACHE_DIR", "0", 1);
    clbnb_status s;
    /* an empty directory: everything comes from the embedded sources */
    setenv("CLBNB_KERNEL_DIR", dir, 1);
    TEST_CHECK(copy_shift(0, &s) == 1000 && s == CLBNB_SUCCESS, "empty kernel dir falls back to the embedded copy.cl");
    /* the altered copy.cl is compiled and run */
    char path[256];
    snprintf(path, sizeof path, "%s/copy.cl", dir);
    write_file(path, altered_copy);
    TEST_CHECK(copy_shift(1, &s) == 1000 && s == CLBNB_SUCCESS, "copy.cl read from CLBNB_KERNEL_DIR (%s)",
               clbnb_status_string(s));
    /* the repository's own cl/ directory gives the embedded behaviour */
    setenv("CLBNB_KERNEL_DIR", CLBNB_SOURCE_DIR "/cl", 1);
    TEST_CHECK(copy_shift(0, &s) == 1000 && s == CLBNB_SUCCESS, "CLBNB_KERNEL_DIR=cl/ works");
    /* a broken kernel: a specific error and the build log, never a crash */
    setenv("CLBNB_KERNEL_DIR", dir, 1);
    write_file(path, "__kernel void copy_vec16_off(__global int *x) { this is not OpenCL C; }\n");
    copy_shift(0, &s);
    TEST_CHECK(s == CLBNB_ERROR_BUILD_FAILED, "broken kernel -> %s", clbnb_status_string(s));
    unlink(path);
    rmdir(dir);
    unsetenv("CLBNB_KERNEL_DIR");
    return test_finish();
}
