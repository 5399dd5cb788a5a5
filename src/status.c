/* status.c: names of status codes, dtypes, kernel families and paths. */
#include "internal.h"

const char *clbnb_version(void) { return CLBNB_VERSION_STRING; }

const char *clbnb_status_string(clbnb_status status) {
    switch ((int)status) {
    case CLBNB_SUCCESS: return "CLBNB_SUCCESS";
    case CLBNB_ERROR_NULL_ARGUMENT: return "CLBNB_ERROR_NULL_ARGUMENT";
    case CLBNB_ERROR_INVALID_ARGUMENT: return "CLBNB_ERROR_INVALID_ARGUMENT";
    case CLBNB_ERROR_OUT_OF_HOST_MEMORY: return "CLBNB_ERROR_OUT_OF_HOST_MEMORY";
    case CLBNB_ERROR_SIZE_OVERFLOW: return "CLBNB_ERROR_SIZE_OVERFLOW";
    case CLBNB_ERROR_BUFFER_TOO_SMALL: return "CLBNB_ERROR_BUFFER_TOO_SMALL";
    case CLBNB_ERROR_UNSUPPORTED_DTYPE: return "CLBNB_ERROR_UNSUPPORTED_DTYPE";
    case CLBNB_ERROR_INVALID_BLOCKSIZE: return "CLBNB_ERROR_INVALID_BLOCKSIZE";
    case CLBNB_ERROR_INVALID_SHAPE: return "CLBNB_ERROR_INVALID_SHAPE";
    case CLBNB_ERROR_NO_DEVICE: return "CLBNB_ERROR_NO_DEVICE";
    case CLBNB_ERROR_DEVICE_NOT_FOUND: return "CLBNB_ERROR_DEVICE_NOT_FOUND";
    case CLBNB_ERROR_KERNEL_NOT_FOUND: return "CLBNB_ERROR_KERNEL_NOT_FOUND";
    case CLBNB_ERROR_BUILD_FAILED: return "CLBNB_ERROR_BUILD_FAILED";
    case CLBNB_ERROR_INVALID_PATH: return "CLBNB_ERROR_INVALID_PATH";
    case CLBNB_ERROR_QUANT_STATE_MISMATCH: return "CLBNB_ERROR_QUANT_STATE_MISMATCH";
    case CLBNB_ERROR_NON_FINITE: return "CLBNB_ERROR_NON_FINITE";
    case CLBNB_ERROR_K_TOO_LARGE: return "CLBNB_ERROR_K_TOO_LARGE";
    case CLBNB_ERROR_INVALID_QUANT_TYPE: return "CLBNB_ERROR_INVALID_QUANT_TYPE";
    case CLBNB_ERROR_WRONG_CONTEXT: return "CLBNB_ERROR_WRONG_CONTEXT";
    case CLBNB_ERROR_IO: return "CLBNB_ERROR_IO";
    case CLBNB_ERROR_INVALID_FORMAT: return "CLBNB_ERROR_INVALID_FORMAT";
    case CLBNB_ERROR_NOT_IMPLEMENTED: return "CLBNB_ERROR_NOT_IMPLEMENTED";
    /* OpenCL 1.2 error codes, passed through unchanged */
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_PROFILING_INFO_NOT_AVAILABLE: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case CL_MEM_COPY_OVERLAP: return "CL_MEM_COPY_OVERLAP";
    case CL_IMAGE_FORMAT_MISMATCH: return "CL_IMAGE_FORMAT_MISMATCH";
    case CL_IMAGE_FORMAT_NOT_SUPPORTED: return "CL_IMAGE_FORMAT_NOT_SUPPORTED";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_MAP_FAILURE: return "CL_MAP_FAILURE";
    case CL_MISALIGNED_SUB_BUFFER_OFFSET: return "CL_MISALIGNED_SUB_BUFFER_OFFSET";
    case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST: return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
    case CL_COMPILE_PROGRAM_FAILURE: return "CL_COMPILE_PROGRAM_FAILURE";
    case CL_LINKER_NOT_AVAILABLE: return "CL_LINKER_NOT_AVAILABLE";
    case CL_LINK_PROGRAM_FAILURE: return "CL_LINK_PROGRAM_FAILURE";
    case CL_DEVICE_PARTITION_FAILED: return "CL_DEVICE_PARTITION_FAILED";
    case CL_KERNEL_ARG_INFO_NOT_AVAILABLE: return "CL_KERNEL_ARG_INFO_NOT_AVAILABLE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE_TYPE: return "CL_INVALID_DEVICE_TYPE";
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
    case CL_INVALID_QUEUE_PROPERTIES: return "CL_INVALID_QUEUE_PROPERTIES";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_HOST_PTR: return "CL_INVALID_HOST_PTR";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_IMAGE_FORMAT_DESCRIPTOR: return "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR";
    case CL_INVALID_IMAGE_SIZE: return "CL_INVALID_IMAGE_SIZE";
    case CL_INVALID_SAMPLER: return "CL_INVALID_SAMPLER";
    case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case CL_INVALID_PROGRAM: return "CL_INVALID_PROGRAM";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL_DEFINITION: return "CL_INVALID_KERNEL_DEFINITION";
    case CL_INVALID_KERNEL: return "CL_INVALID_KERNEL";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_DIMENSION: return "CL_INVALID_WORK_DIMENSION";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_OFFSET: return "CL_INVALID_GLOBAL_OFFSET";
    case CL_INVALID_EVENT_WAIT_LIST: return "CL_INVALID_EVENT_WAIT_LIST";
    case CL_INVALID_EVENT: return "CL_INVALID_EVENT";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    case CL_INVALID_GL_OBJECT: return "CL_INVALID_GL_OBJECT";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_MIP_LEVEL: return "CL_INVALID_MIP_LEVEL";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_PROPERTY: return "CL_INVALID_PROPERTY";
    case CL_INVALID_IMAGE_DESCRIPTOR: return "CL_INVALID_IMAGE_DESCRIPTOR";
    case CL_INVALID_COMPILER_OPTIONS: return "CL_INVALID_COMPILER_OPTIONS";
    case CL_INVALID_LINKER_OPTIONS: return "CL_INVALID_LINKER_OPTIONS";
    case CL_INVALID_DEVICE_PARTITION_COUNT: return "CL_INVALID_DEVICE_PARTITION_COUNT";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CLBNB_UNKNOWN_STATUS";
    }
}

static const struct {
    const char *name;
    size_t size;
} dtype_table[CLBNB_DTYPE_COUNT] = {
    {"f32", 4}, {"f16", 2}, {"bf16", 2}, {"i8", 1}, {"u8", 1}, {"i32", 4},
};

size_t clbnb_dtype_size(clbnb_dtype dtype) {
    return ((unsigned)dtype < CLBNB_DTYPE_COUNT) ? dtype_table[dtype].size : 0;
}

const char *clbnb_dtype_name(clbnb_dtype dtype) {
    return ((unsigned)dtype < CLBNB_DTYPE_COUNT) ? dtype_table[dtype].name : "invalid";
}

const char *clbnb_family_name(clbnb_family family) {
    static const char *names[CLBNB_FAMILY_COUNT] = {"quant", "int8_gemm", "gemm_4bit"};
    return ((unsigned)family < CLBNB_FAMILY_COUNT) ? names[family] : "invalid";
}

const char *clbnb_path_name(clbnb_path path) {
    static const char *names[CLBNB_PATH_COUNT] = {"generic", "cpu", "dot4", "nv_mma", "intel_dpas"};
    return ((unsigned)path < CLBNB_PATH_COUNT) ? names[path] : "invalid";
}

clbnb_vector clbnb_vector_make(cl_mem mem, size_t offset, size_t n, clbnb_dtype dtype) {
    clbnb_vector v = {mem, offset, n, dtype};
    return v;
}

clbnb_matrix clbnb_matrix_make(cl_mem mem, size_t offset, size_t rows, size_t cols, clbnb_dtype dtype) {
    clbnb_matrix m = {mem, offset, rows, cols, cols, dtype};
    return m;
}
