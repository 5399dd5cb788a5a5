/*
 * clbnb_core.h: status codes, data types, tensor descriptors, the context and its device probe,
 * and the copy kernel. Every other clbnb header builds on this one.
 *
 * API conventions (modelled on CLBlast):
 *   - Buffers are caller-owned cl_mem objects with byte offsets; clbnb never allocates or frees
 *     the caller's data buffers.
 *   - Every operation takes the caller's cl_command_queue (on the context's cl_context and device),
 *     an optional event wait list, and an optional output event (released by the caller).
 *   - Every public call returns a clbnb_status. The library never prints, exits or aborts.
 *   - Operations validate all arguments before enqueueing anything: on error nothing is written.
 *
 * Thread safety: a clbnb_context may be shared by several threads. Program building, the program
 * cache and kernel argument setting are serialised by a mutex inside the context. Commands enqueued
 * on one cl_command_queue from several threads are ordered as OpenCL orders them.
 * The library keeps no global mutable state. Each context keeps a small pool of device scratch
 * buffers (at most 8 buffers, 256 MiB together) that operations reuse once the commands of their
 * previous user have completed; clbnb_context_free releases it.
 */
#ifndef CLBNB_CORE_H
#define CLBNB_CORE_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CLBNB_API __declspec(dllexport)
#elif defined(__GNUC__)
#define CLBNB_API __attribute__((visibility("default")))
#else
#define CLBNB_API
#endif

/* ============================================================================================ */
/* Status codes: OpenCL error numbers pass through unchanged (CL_OUT_OF_RESOURCES = -5, ...);   */
/* the library's own codes live in the range -4000 .. -4099.                                    */
/* ============================================================================================ */
typedef enum clbnb_status {
    CLBNB_SUCCESS = 0,
    /* library range */
    CLBNB_ERROR_NULL_ARGUMENT = -4000,        /* a required pointer or handle is NULL            */
    CLBNB_ERROR_INVALID_ARGUMENT = -4001,     /* an argument is out of its documented range      */
    CLBNB_ERROR_OUT_OF_HOST_MEMORY = -4002,   /* malloc failed                                   */
    CLBNB_ERROR_SIZE_OVERFLOW = -4003,        /* size arithmetic would overflow                  */
    CLBNB_ERROR_BUFFER_TOO_SMALL = -4004,     /* a buffer does not hold the requested region     */
    CLBNB_ERROR_UNSUPPORTED_DTYPE = -4005,    /* the operation does not take this data type      */
    CLBNB_ERROR_INVALID_BLOCKSIZE = -4006,    /* blocksize not allowed for this operation        */
    CLBNB_ERROR_INVALID_SHAPE = -4007,        /* zero or inconsistent dimensions / leading dims  */
    CLBNB_ERROR_NO_DEVICE = -4008,            /* no OpenCL platform or device is present         */
    CLBNB_ERROR_DEVICE_NOT_FOUND = -4009,     /* the device selector matched no device           */
    CLBNB_ERROR_KERNEL_NOT_FOUND = -4010,     /* no kernel source of that name                   */
    CLBNB_ERROR_BUILD_FAILED = -4011,         /* kernel compilation failed: see build log        */
    CLBNB_ERROR_INVALID_PATH = -4012,         /* unknown kernel path name, or not on this device */
    CLBNB_ERROR_QUANT_STATE_MISMATCH = -4013, /* a QuantState does not fit the tensor/op       */
    CLBNB_ERROR_NON_FINITE = -4014,           /* NaN or Inf where a finite value is required     */
    CLBNB_ERROR_K_TOO_LARGE = -4015,          /* int32 accumulation could overflow for this K    */
    CLBNB_ERROR_INVALID_QUANT_TYPE = -4016,   /* unknown or unsupported quantization type        */
    CLBNB_ERROR_WRONG_CONTEXT = -4017,        /* queue or buffer belongs to another context      */
    CLBNB_ERROR_IO = -4018,                   /* file I/O failed                                 */
    CLBNB_ERROR_INVALID_FORMAT = -4019,       /* malformed file or serialized state              */
    CLBNB_ERROR_NOT_IMPLEMENTED = -4020       /* valid request that this build cannot serve      */
} clbnb_status;

/* Name of a status (clbnb's own codes and every OpenCL error code). Never NULL. */
CLBNB_API const char *clbnb_status_string(clbnb_status status);

/* Library version string, e.g. "0.1.0". */
CLBNB_API const char *clbnb_version(void);

/* ============================================================================================ */
/* Data types and tensor descriptors                                                            */
/* ============================================================================================ */
typedef enum clbnb_dtype {
    CLBNB_DTYPE_F32 = 0,
    CLBNB_DTYPE_F16 = 1,  /* IEEE binary16, read with vload_half / written with vstore_half_rte */
    CLBNB_DTYPE_BF16 = 2, /* the upper 16 bits of an IEEE binary32, written round-to-nearest-even */
    CLBNB_DTYPE_I8 = 3,
    CLBNB_DTYPE_U8 = 4,
    CLBNB_DTYPE_I32 = 5,
    CLBNB_DTYPE_COUNT = 6
} clbnb_dtype;

/* Bytes per element (0 for an invalid dtype) and a short name ("f32", "f16", ...). */
CLBNB_API size_t clbnb_dtype_size(clbnb_dtype dtype);
CLBNB_API const char *clbnb_dtype_name(clbnb_dtype dtype);
/* Host conversions for filling and reading f16 / bf16 buffers: round to nearest even (as the
 * kernels store), NaN stays NaN, overflow gives +-Inf. Pure functions, thread-safe. */
CLBNB_API uint16_t clbnb_f32_to_f16(float value);
CLBNB_API float clbnb_f16_to_f32(uint16_t bits);
CLBNB_API uint16_t clbnb_f32_to_bf16(float value);
CLBNB_API float clbnb_bf16_to_f32(uint16_t bits);

/* A contiguous run of `n` elements of `dtype` starting `offset` bytes into `mem`. */
typedef struct clbnb_vector {
    cl_mem mem;
    size_t offset; /* bytes */
    size_t n;      /* elements */
    clbnb_dtype dtype;
} clbnb_vector;

/* A row-major matrix: element (r, c) is at byte offset + (r * ld + c) * dtype_size. */
typedef struct clbnb_matrix {
    cl_mem mem;
    size_t offset; /* bytes */
    size_t rows;
    size_t cols;
    size_t ld; /* elements between the starts of consecutive rows, >= cols */
    clbnb_dtype dtype;
} clbnb_matrix;

/* Convenience constructors. */
CLBNB_API clbnb_vector clbnb_vector_make(cl_mem mem, size_t offset, size_t n, clbnb_dtype dtype);
CLBNB_API clbnb_matrix clbnb_matrix_make(cl_mem mem, size_t offset, size_t rows, size_t cols,
                                         clbnb_dtype dtype); /* ld = cols */

/* ============================================================================================ */
/* Kernel paths: each kernel family runs on one of several implementations, chosen per device   */
/* by the probe. CLBNB_PATH overrides the choice: "generic" forces every family to its portable */
/* path; "family=path,family=path" sets single families (e.g. "int8_gemm=dot4").                */
/* ============================================================================================ */
typedef enum clbnb_family {
    CLBNB_FAMILY_QUANT = 0,     /* quantize / dequantize kernels                               */
    CLBNB_FAMILY_INT8_GEMM = 1, /* int8 GEMM with fused dequantization                         */
    CLBNB_FAMILY_GEMM_4BIT = 2, /* 4-bit dequantizing GEMV / GEMM                              */
    CLBNB_FAMILY_COUNT = 3
} clbnb_family;

typedef enum clbnb_path {
    CLBNB_PATH_GENERIC = 0,    /* portable OpenCL C 1.2, local-memory work-groups (GPU shape)  */
    CLBNB_PATH_CPU = 1,        /* portable OpenCL C 1.2, barrier-free (CPU devices, PoCL)      */
    CLBNB_PATH_DOT4 = 2,       /* 4-way int8 dot product: PTX dp4a / khr dot / amdgcn sdot4    */
    CLBNB_PATH_NV_MMA = 3,     /* NVIDIA tensor cores through inline PTX mma.sync              */
    CLBNB_PATH_INTEL_DPAS = 4, /* Intel XMX (reserved; no device to validate it yet)           */
    CLBNB_PATH_COUNT = 5
} clbnb_path;

CLBNB_API const char *clbnb_family_name(clbnb_family family);
CLBNB_API const char *clbnb_path_name(clbnb_path path);

/* How the dot4 path forms its 4-way int8 dot product on this device. */
typedef enum clbnb_dot4_impl {
    CLBNB_DOT4_EMULATED = 0,
    CLBNB_DOT4_NV_DP4A = 1,
    CLBNB_DOT4_KHR = 2,
    CLBNB_DOT4_AMD_SDOT4 = 3
} clbnb_dot4_impl;

/* ============================================================================================ */
/* Device probe results                                                                         */
/* ============================================================================================ */
#define CLBNB_INFO_STRING 256

typedef struct clbnb_device_info {
    char platform_name[CLBNB_INFO_STRING];
    char platform_version[CLBNB_INFO_STRING];
    char device_name[CLBNB_INFO_STRING];
    char vendor[CLBNB_INFO_STRING];
    char device_version[CLBNB_INFO_STRING];
    char driver_version[CLBNB_INFO_STRING];
    char opencl_c_version[CLBNB_INFO_STRING];
    cl_device_type type;
    uint32_t vendor_id;
    uint32_t compute_units;
    uint32_t max_clock_mhz;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    size_t max_work_group_size;
    uint32_t simd_width; /* warp / wavefront / preferred work-group multiple        */
    uint32_t address_bits;
    uint32_t profiling_resolution_ns;
    int nv_cc_major, nv_cc_minor;         /* cl_nv_device_attribute_query, -1 when absent           */
    int amd_gfxip_major, amd_gfxip_minor; /* cl_amd_device_attribute_query, -1 when absent  */
    /* extension strings */
    int has_fp16_ext; /* cl_khr_fp16 advertised                                  */
    int has_fp64;
    int has_subgroups;                         /* cl_khr_subgroups                                        */
    int has_khr_int_dot;                       /* cl_khr_integer_dot_product                              */
    uint32_t khr_int_dot_caps;                 /* query 0x1073                                            */
    int khr_int_dot_packed_signed_accelerated; /* query 0x1075, signed field                 */
    int has_intel_subgroups;
    int has_intel_dpas; /* cl_intel_subgroup_matrix_multiply_accumulate           */
    int has_intel_2d_block_io;
    uint32_t intel_subgroup_sizes[8]; /* CL_DEVICE_SUB_GROUP_SIZES_INTEL, 0-terminated        */
    /* compile tests (where extension strings lie) */
    int fp16_arithmetic; /* `half` arithmetic compiles and runs                     */
    int nv_ptx_dp4a;     /* inline PTX dp4a.s32.s32 compiles                         */
    int nv_ptx_mma;      /* inline PTX mma.sync m16n8k32 s8 compiles                 */
    int amd_sdot4;       /* __has_builtin(__builtin_amdgcn_sdot4)                    */
    clbnb_dot4_impl dot4_impl;
    /* chosen path per family (after CLBNB_PATH overrides) */
    clbnb_path path[CLBNB_FAMILY_COUNT];
} clbnb_device_info;

/* ============================================================================================ */
/* Context                                                                                      */
/* ============================================================================================ */
typedef struct clbnb_context clbnb_context;

/* Wraps an application's context and device (both are retained, released by clbnb_context_free).
 * Probes the device (a few small compile tests, served from the program cache after the first
 * process) and chooses kernel paths, honouring CLBNB_PATH. */
CLBNB_API clbnb_status clbnb_context_init(clbnb_context **out, cl_context context, cl_device_id device);

/* Creates its own cl_context and a profiling-enabled queue on the device that `selector` names:
 * a decimal index into the list of all devices of all platforms (as `clbnb devices` numbers them),
 * or a case-insensitive substring of "<platform name> <device name> <vendor>" (e.g. "pocl",
 * "nvidia"). NULL or "" reads CLBNB_DEVICE, and when that is unset takes the first GPU, else the
 * first device. */
CLBNB_API clbnb_status clbnb_context_init_from_selector(clbnb_context **out, const char *selector);

CLBNB_API void clbnb_context_free(clbnb_context *ctx);

CLBNB_API cl_context clbnb_context_cl_context(const clbnb_context *ctx);
CLBNB_API cl_device_id clbnb_context_device(const clbnb_context *ctx);
/* The queue clbnb_context_init_from_selector created (profiling enabled); NULL for contexts
 * made with clbnb_context_init. */
CLBNB_API cl_command_queue clbnb_context_default_queue(const clbnb_context *ctx);
CLBNB_API const clbnb_device_info *clbnb_context_device_info(const clbnb_context *ctx);

/* Overrides the path of one kernel family. Returns CLBNB_ERROR_INVALID_PATH when that path does
 * not exist for the family or cannot run on this device. */
CLBNB_API clbnb_status clbnb_context_set_path(clbnb_context *ctx, clbnb_family family, clbnb_path path);
/* Whether `path` can run for `family` on this device (1) or not (0). */
CLBNB_API int clbnb_context_path_available(const clbnb_context *ctx, clbnb_family family, clbnb_path path);

/* The build log of the most recent failed kernel build on this context ("" if none). The string
 * stays valid until the next failed build or clbnb_context_free. */
CLBNB_API const char *clbnb_context_build_log(const clbnb_context *ctx);

/* Compiles every kernel program the context's current paths use (optional: operations compile on
 * first use). `progress`, if not NULL, is called before each program with (index, count, name). */
typedef void (*clbnb_progress_fn)(void *user, size_t index, size_t count, const char *name);
CLBNB_API clbnb_status clbnb_context_warm_up(clbnb_context *ctx, clbnb_progress_fn progress, void *user);

/* Program build statistics of this context. */
typedef struct clbnb_build_stats {
    uint32_t programs_from_source; /* compiled from OpenCL C                              */
    uint32_t programs_from_disk;   /* loaded from the on-disk binary cache               */
    uint32_t cache_rejected;       /* cache files found but ignored (corrupt, foreign)   */
    uint32_t cache_write_failures; /* binaries that could not be saved (read-only dir)   */
    double build_ms;               /* wall time spent in clBuildProgram                  */
} clbnb_build_stats;
CLBNB_API clbnb_status clbnb_context_build_stats(const clbnb_context *ctx, clbnb_build_stats *out);

/* Enumerates every device of every platform in selector order. `index` from 0; returns
 * CLBNB_ERROR_DEVICE_NOT_FOUND past the end. Names may be NULL. */
CLBNB_API clbnb_status clbnb_device_enumerate(size_t index, cl_platform_id *platform, cl_device_id *device);
CLBNB_API clbnb_status clbnb_device_count(size_t *count);

/* ============================================================================================ */
/* Copy kernel (used by the benchmarks as the bandwidth reference, and by the probe)           */
/* ============================================================================================ */

/* Copies `bytes` bytes from src+src_offset to dst+dst_offset with a clbnb kernel (16-byte vector
 * loads and stores when both offsets allow it). Regions must not overlap. */
CLBNB_API clbnb_status clbnb_buffer_copy(clbnb_context *ctx, cl_command_queue queue, cl_mem dst, size_t dst_offset,
                                         cl_mem src, size_t src_offset, size_t bytes, cl_uint num_events,
                                         const cl_event *wait_list, cl_event *event);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_CORE_H */
