/* test_status.c: every status has a distinct, specific name; names of dtypes, families, paths. */
#include <string.h>

#include "test_common.h"

int main(void) {
    static const clbnb_status own[] = {CLBNB_ERROR_NULL_ARGUMENT,
                                       CLBNB_ERROR_INVALID_ARGUMENT,
                                       CLBNB_ERROR_OUT_OF_HOST_MEMORY,
                                       CLBNB_ERROR_SIZE_OVERFLOW,
                                       CLBNB_ERROR_BUFFER_TOO_SMALL,
                                       CLBNB_ERROR_UNSUPPORTED_DTYPE,
                                       CLBNB_ERROR_INVALID_BLOCKSIZE,
                                       CLBNB_ERROR_INVALID_SHAPE,
                                       CLBNB_ERROR_NO_DEVICE,
                                       CLBNB_ERROR_DEVICE_NOT_FOUND,
                                       CLBNB_ERROR_KERNEL_NOT_FOUND,
                                       CLBNB_ERROR_BUILD_FAILED,
                                       CLBNB_ERROR_INVALID_PATH,
                                       CLBNB_ERROR_QUANT_STATE_MISMATCH,
                                       CLBNB_ERROR_NON_FINITE,
                                       CLBNB_ERROR_K_TOO_LARGE,
                                       CLBNB_ERROR_INVALID_QUANT_TYPE,
                                       CLBNB_ERROR_WRONG_CONTEXT,
                                       CLBNB_ERROR_IO,
                                       CLBNB_ERROR_INVALID_FORMAT,
                                       CLBNB_ERROR_NOT_IMPLEMENTED};
    size_t n = sizeof own / sizeof own[0];
    for (size_t i = 0; i < n; i++) {
        const char *name = clbnb_status_string(own[i]);
        TEST_CHECK(strncmp(name, "CLBNB_ERROR_", 12) == 0, "status %d named %s", own[i], name);
        for (size_t j = 0; j < i; j++)
            TEST_CHECK(strcmp(name, clbnb_status_string(own[j])) != 0, "statuses %d and %d share the name %s", own[i],
                       own[j], name);
    }
    TEST_CHECK(strcmp(clbnb_status_string(CLBNB_SUCCESS), "CLBNB_SUCCESS") == 0, "success name");
    /* OpenCL codes pass through with their own names */
    TEST_CHECK(strcmp(clbnb_status_string((clbnb_status)CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES") == 0, "CL name");
    TEST_CHECK(strcmp(clbnb_status_string((clbnb_status)CL_INVALID_KERNEL_ARGS), "CL_INVALID_KERNEL_ARGS") == 0,
               "CL name");
    for (int e = -1; e >= -68; e--) {
        if (e <= -15 && e >= -29) continue; /* unassigned in OpenCL 1.2 */
        TEST_CHECK(strcmp(clbnb_status_string((clbnb_status)e), "CLBNB_UNKNOWN_STATUS") != 0, "CL error %d unnamed", e);
    }
    TEST_CHECK(strcmp(clbnb_status_string((clbnb_status)12345), "CLBNB_UNKNOWN_STATUS") == 0, "unknown status");
    /* dtypes */
    TEST_CHECK(clbnb_dtype_size(CLBNB_DTYPE_F32) == 4 && clbnb_dtype_size(CLBNB_DTYPE_F16) == 2 &&
                   clbnb_dtype_size(CLBNB_DTYPE_BF16) == 2 && clbnb_dtype_size(CLBNB_DTYPE_I8) == 1 &&
                   clbnb_dtype_size(CLBNB_DTYPE_U8) == 1 && clbnb_dtype_size(CLBNB_DTYPE_I32) == 4,
               "dtype sizes");
    TEST_CHECK(clbnb_dtype_size((clbnb_dtype)99) == 0, "invalid dtype size");
    TEST_CHECK(strcmp(clbnb_dtype_name(CLBNB_DTYPE_BF16), "bf16") == 0, "dtype name");
    TEST_CHECK(strcmp(clbnb_path_name(CLBNB_PATH_NV_MMA), "nv_mma") == 0, "path name");
    TEST_CHECK(strcmp(clbnb_family_name(CLBNB_FAMILY_INT8_GEMM), "int8_gemm") == 0, "family name");
    TEST_CHECK(strcmp(clbnb_version(), "0.1.0") >= 0 && strlen(clbnb_version()) > 0, "version");
    return test_finish();
}
