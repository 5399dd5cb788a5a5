/* test_probe.c: the probe's records are consistent with clGetDeviceInfo, paths are chosen and can be
 * overridden (API and CLBNB_PATH), and unknown/unavailable paths are refused. */
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

int main(void) {
    clbnb_context *ctx = test_context();
    const clbnb_device_info *in = clbnb_context_device_info(ctx);
    cl_device_id d = clbnb_context_device(ctx);
    char name[256] = "";
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    TEST_CHECK(strcmp(name, in->device_name) == 0, "device name '%s' vs '%s'", in->device_name, name);
    cl_uint cu = 0;
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    TEST_CHECK(in->compute_units == cu && cu > 0, "compute units %u vs %u", in->compute_units, cu);
    TEST_CHECK(in->local_mem_bytes > 0 && in->max_work_group_size > 0 && in->global_mem_bytes > 0, "limits recorded");
    TEST_CHECK(strstr(in->opencl_c_version, "OpenCL C") != NULL, "OpenCL C version '%s'", in->opencl_c_version);
    TEST_CHECK(in->simd_width >= 1, "simd width");
    /* vendor facts are recorded only where the vendor query exists */
    if (strstr(in->platform_name, "NVIDIA")) {
        TEST_CHECK(in->nv_cc_major >= 3, "NVIDIA compute capability recorded (%d.%d)", in->nv_cc_major,
                   in->nv_cc_minor);
        TEST_CHECK(in->simd_width == 32, "warp size 32");
        if (in->nv_cc_major >= 8) TEST_CHECK(in->nv_ptx_mma && in->nv_ptx_dp4a, "PTX mma/dp4a compile on sm_80+");
        TEST_CHECK(in->fp16_arithmetic, "NVIDIA half arithmetic compiles");
    } else {
        TEST_CHECK(in->nv_cc_major == -1 && !in->nv_ptx_mma && !in->nv_ptx_dp4a, "no NVIDIA facts off NVIDIA");
    }
    if (strstr(in->platform_name, "Portable Computing Language")) {
        TEST_CHECK(in->type & CL_DEVICE_TYPE_CPU, "PoCL device is a CPU");
        TEST_CHECK(in->path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU, "PoCL quant path is cpu");
    }
    TEST_CHECK(in->fp16_arithmetic == 0 || in->has_fp16_ext || in->nv_cc_major >= 0, "fp16 test only where plausible");
    /* the dot4 choice agrees with the capabilities */
    if (in->dot4_impl == CLBNB_DOT4_NV_DP4A) TEST_CHECK(in->nv_ptx_dp4a, "dp4a chosen only when it compiles");
    if (in->dot4_impl == CLBNB_DOT4_KHR) TEST_CHECK(in->has_khr_int_dot, "khr dot chosen only when advertised");

    /* every family has a chosen path that is available; generic is always available */
    for (int f = 0; f < CLBNB_FAMILY_COUNT; f++) {
        TEST_CHECK(clbnb_context_path_available(ctx, (clbnb_family)f, in->path[f]), "family %d path available", f);
        TEST_CHECK(clbnb_context_path_available(ctx, (clbnb_family)f, CLBNB_PATH_GENERIC), "generic available");
        TEST_STATUS(clbnb_context_set_path(ctx, (clbnb_family)f, CLBNB_PATH_GENERIC), CLBNB_SUCCESS);
        TEST_CHECK(in->path[f] == CLBNB_PATH_GENERIC, "set_path took effect");
    }
    TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, CLBNB_PATH_NV_MMA), CLBNB_ERROR_INVALID_PATH);
    TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, CLBNB_PATH_INTEL_DPAS), CLBNB_ERROR_INVALID_PATH);
    TEST_STATUS(clbnb_context_set_path(ctx, (clbnb_family)7, CLBNB_PATH_GENERIC), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_context_set_path(NULL, CLBNB_FAMILY_QUANT, CLBNB_PATH_GENERIC), CLBNB_ERROR_NULL_ARGUMENT);
    if (!in->nv_ptx_mma)
        TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, CLBNB_PATH_NV_MMA), CLBNB_ERROR_INVALID_PATH);
    clbnb_context_free(ctx);

    /* CLBNB_PATH overrides */
    const char *saved = getenv("CLBNB_PATH");
    char *saved_copy = saved ? strdup(saved) : NULL;
    setenv("CLBNB_PATH", "generic", 1);
    ctx = test_context();
    for (int f = 0; f < CLBNB_FAMILY_COUNT; f++)
        TEST_CHECK(clbnb_context_device_info(ctx)->path[f] == CLBNB_PATH_GENERIC, "CLBNB_PATH=generic, family %d", f);
    clbnb_context_free(ctx);
    setenv("CLBNB_PATH", "quant=cpu,int8_gemm=dot4", 1);
    ctx = test_context();
    TEST_CHECK(clbnb_context_device_info(ctx)->path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU, "family=path override");
    TEST_CHECK(clbnb_context_device_info(ctx)->path[CLBNB_FAMILY_INT8_GEMM] == CLBNB_PATH_DOT4, "second override");
    clbnb_context_free(ctx);
    const char *bad[] = {"fastest", "quant=turbo", "nofamily=generic", "quant=nv_mma", "quant"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("CLBNB_PATH", bad[i], 1);
        ctx = NULL;
        clbnb_status s = clbnb_context_init_from_selector(&ctx, NULL);
        TEST_CHECK(s == CLBNB_ERROR_INVALID_PATH, "CLBNB_PATH=%s -> %s", bad[i], clbnb_status_string(s));
        TEST_CHECK(ctx == NULL, "no context for a bad CLBNB_PATH");
        clbnb_context_free(ctx);
    }
    if (saved_copy)
        setenv("CLBNB_PATH", saved_copy, 1);
    else
        unsetenv("CLBNB_PATH");
    free(saved_copy);
    return test_finish();
}
