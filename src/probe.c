/* probe.c: reads what a device offers (info queries, extension strings, small compile tests where
 * extension strings lie) and chooses a kernel path per family. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Vendor queries (cl_ext.h names; spelled out so older headers still build). */
#define CLBNB_CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CLBNB_CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#define CLBNB_CL_DEVICE_WARP_SIZE_NV 0x4003
#define CLBNB_CL_DEVICE_GFXIP_MAJOR_AMD 0x404A
#define CLBNB_CL_DEVICE_GFXIP_MINOR_AMD 0x404B
#define CLBNB_CL_DEVICE_WAVEFRONT_WIDTH_AMD 0x4043
#define CLBNB_CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR 0x1073
#define CLBNB_CL_DEVICE_INTEGER_DOT_PRODUCT_ACCELERATION_PROPERTIES_4x8BIT_PACKED_KHR 0x1075
#define CLBNB_CL_DEVICE_SUB_GROUP_SIZES_INTEL 0x4108

static void info_string(cl_device_id d, cl_device_info what, char *out) {
    out[0] = '\0';
    if (clGetDeviceInfo(d, what, CLBNB_INFO_STRING - 1, out, NULL) != CL_SUCCESS) out[0] = '\0';
    out[CLBNB_INFO_STRING - 1] = '\0';
}

static int has_extension(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) return 1;
    return 0;
}

static int query_uint(cl_device_id d, cl_device_info what, cl_uint *out) {
    return clGetDeviceInfo(d, what, sizeof *out, out, NULL) == CL_SUCCESS;
}

/* ---- compile tests --------------------------------------------------------------------------- */
static const char *probe_fp16_source = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
                                       "__kernel void probe_fp16(__global float *out) {\n"
                                       "  half a = (half)1.0f; half b = a * (half)4.0f + (half)0.0625f;\n"
                                       "  out[0] = (float)b;\n}\n";

static const char *probe_dp4a_source =
    "__kernel void probe_dp4a(__global int *out, int a, int b) {\n"
    "  int c = 0;\n"
    "  asm volatile(\"dp4a.s32.s32 %0, %1, %2, %3;\" : \"=r\"(c) : \"r\"(a), \"r\"(b), \"r\"(c));\n"
    "  out[0] = c;\n}\n";

static const char *probe_mma_source =
    "__kernel void probe_mma(__global int *out, __global const int *in) {\n"
    "  int a0 = in[0], a1 = in[1], a2 = in[2], a3 = in[3], b0 = in[4], b1 = in[5];\n"
    "  int c0 = 0, c1 = 0, c2 = 0, c3 = 0;\n"
    "  asm volatile(\"mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
    "{%0,%1,%2,%3};\"\n"
    "      : \"+r\"(c0), \"+r\"(c1), \"+r\"(c2), \"+r\"(c3)\n"
    "      : \"r\"(a0), \"r\"(a1), \"r\"(a2), \"r\"(a3), \"r\"(b0), \"r\"(b1));\n"
    "  out[get_global_id(0)] = c0 + c1 + c2 + c3;\n}\n";

static const char *probe_sdot4_source = "#if !defined(__has_builtin) || !__has_builtin(__builtin_amdgcn_sdot4)\n"
                                        "#error no sdot4\n"
                                        "#endif\n"
                                        "__kernel void probe_sdot4(__global int *out, int a, int b) {\n"
                                        "  out[0] = __builtin_amdgcn_sdot4(a, b, 0, false);\n}\n";

/* ---- paths ------------------------------------------------------------------------------------ */
int clbnb_context_path_available(const clbnb_context *ctx, clbnb_family family, clbnb_path path) {
    if (!ctx || (unsigned)family >= CLBNB_FAMILY_COUNT || (unsigned)path >= CLBNB_PATH_COUNT) return 0;
    const clbnb_device_info *in = &ctx->info;
    switch (path) {
    case CLBNB_PATH_GENERIC:
    case CLBNB_PATH_CPU: return 1;                                 /* portable: any conformant device runs them */
    case CLBNB_PATH_DOT4: return family == CLBNB_FAMILY_INT8_GEMM; /* emulated where no hardware */
    case CLBNB_PATH_NV_MMA:
        /* tensor-core kernels exist for the int8 GEMM and the 4-bit large batch; CLBNB_EMULATE_PTX
         * lets the tests run them on any device with the PTX instructions emulated */
        return family != CLBNB_FAMILY_QUANT && (in->nv_ptx_mma || ctx->emulate_ptx);
    case CLBNB_PATH_INTEL_DPAS: return 0; /* reserved until a device can validate it */
    default: return 0;
    }
}

static void choose_paths(clbnb_context *ctx) {
    clbnb_device_info *in = &ctx->info;
    int cpu = (in->type & CL_DEVICE_TYPE_CPU) != 0;
    clbnb_path portable = cpu ? CLBNB_PATH_CPU : CLBNB_PATH_GENERIC;
    in->path[CLBNB_FAMILY_QUANT] = portable;
    if (in->nv_ptx_mma)
        in->path[CLBNB_FAMILY_INT8_GEMM] = CLBNB_PATH_NV_MMA;
    else if (in->dot4_impl != CLBNB_DOT4_EMULATED)
        in->path[CLBNB_FAMILY_INT8_GEMM] = CLBNB_PATH_DOT4;
    else
        in->path[CLBNB_FAMILY_INT8_GEMM] = portable;
    /* 4-bit: tensor cores for the large-batch product (GEMV / small batch are memory-bound and use
     * the portable kernels on every path) */
    in->path[CLBNB_FAMILY_GEMM_4BIT] = in->nv_ptx_mma ? CLBNB_PATH_NV_MMA : portable;
}

clbnb_status clbnb_context_set_path(clbnb_context *ctx, clbnb_family family, clbnb_path path) {
    if (!ctx) return CLBNB_ERROR_NULL_ARGUMENT;
    if ((unsigned)family >= CLBNB_FAMILY_COUNT) return CLBNB_ERROR_INVALID_ARGUMENT;
    if (!clbnb_context_path_available(ctx, family, path)) return CLBNB_ERROR_INVALID_PATH;
    pthread_mutex_lock(&ctx->lock);
    ctx->info.path[family] = path;
    pthread_mutex_unlock(&ctx->lock);
    return CLBNB_SUCCESS;
}

static int parse_path(const char *s, size_t len, clbnb_path *out) {
    for (int p = 0; p < CLBNB_PATH_COUNT; p++) {
        const char *name = clbnb_path_name((clbnb_path)p);
        if (strlen(name) == len && strncmp(name, s, len) == 0) {
            *out = (clbnb_path)p;
            return 1;
        }
    }
    return 0;
}

/* spec: "generic" | "cpu" (every family) or "family=path[,family=path...]" ("family:path" too). */
clbnb_status clbnb_apply_path_overrides(clbnb_context *ctx, const char *spec) {
    clbnb_path path;
    if (!strchr(spec, '=') && !strchr(spec, ':')) {
        if (!parse_path(spec, strlen(spec), &path)) return CLBNB_ERROR_INVALID_PATH;
        for (int f = 0; f < CLBNB_FAMILY_COUNT; f++)
            if (clbnb_context_path_available(ctx, (clbnb_family)f, path)) ctx->info.path[f] = path;
        return CLBNB_SUCCESS;
    }
    const char *p = spec;
    while (*p) {
        const char *end = p + strcspn(p, ",");
        const char *sep = p + strcspn(p, "=:");
        if (sep >= end) return CLBNB_ERROR_INVALID_PATH;
        int family = -1;
        for (int f = 0; f < CLBNB_FAMILY_COUNT; f++) {
            const char *name = clbnb_family_name((clbnb_family)f);
            if (strlen(name) == (size_t)(sep - p) && strncmp(name, p, (size_t)(sep - p)) == 0) family = f;
        }
        if (family < 0 || !parse_path(sep + 1, (size_t)(end - sep - 1), &path)) return CLBNB_ERROR_INVALID_PATH;
        if (!clbnb_context_path_available(ctx, (clbnb_family)family, path)) return CLBNB_ERROR_INVALID_PATH;
        ctx->info.path[family] = path;
        p = *end ? end + 1 : end;
    }
    return CLBNB_SUCCESS;
}

/* ---- the probe ---------------------------------------------------------------------------- */
clbnb_status clbnb_probe_device(clbnb_context *ctx) {
    clbnb_device_info *in = &ctx->info;
    cl_device_id d = ctx->device;
    memset(in, 0, sizeof *in);
    clGetPlatformInfo(ctx->platform, CL_PLATFORM_NAME, CLBNB_INFO_STRING - 1, in->platform_name, NULL);
    clGetPlatformInfo(ctx->platform, CL_PLATFORM_VERSION, CLBNB_INFO_STRING - 1, in->platform_version, NULL);
    info_string(d, CL_DEVICE_NAME, in->device_name);
    info_string(d, CL_DEVICE_VENDOR, in->vendor);
    info_string(d, CL_DEVICE_VERSION, in->device_version);
    info_string(d, CL_DRIVER_VERSION, in->driver_version);
    info_string(d, CL_DEVICE_OPENCL_C_VERSION, in->opencl_c_version);
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof in->type, &in->type, NULL);
    cl_uint u = 0;
    if (query_uint(d, CL_DEVICE_VENDOR_ID, &u)) in->vendor_id = u;
    if (query_uint(d, CL_DEVICE_MAX_COMPUTE_UNITS, &u)) in->compute_units = u;
    if (query_uint(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, &u)) in->max_clock_mhz = u;
    if (query_uint(d, CL_DEVICE_ADDRESS_BITS, &u)) in->address_bits = u;
    cl_ulong ul = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) in->global_mem_bytes = ul;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) in->max_alloc_bytes = ul;
    if (clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof ul, &ul, NULL) == CL_SUCCESS) in->local_mem_bytes = ul;
    size_t sz = 0;
    if (clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof sz, &sz, NULL) == CL_SUCCESS)
        in->max_work_group_size = sz;
    if (clGetDeviceInfo(d, CL_DEVICE_PROFILING_TIMER_RESOLUTION, sizeof sz, &sz, NULL) == CL_SUCCESS)
        in->profiling_resolution_ns = (uint32_t)sz;

    size_t ext_len = 0;
    clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len);
    char *ext = calloc(ext_len + 1, 1);
    if (!ext) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, ext, NULL);
    in->has_fp16_ext = has_extension(ext, "cl_khr_fp16");
    in->has_fp64 = has_extension(ext, "cl_khr_fp64");
    in->has_subgroups = has_extension(ext, "cl_khr_subgroups");
    in->has_khr_int_dot = has_extension(ext, "cl_khr_integer_dot_product");
    in->has_intel_subgroups = has_extension(ext, "cl_intel_subgroups");
    in->has_intel_dpas = has_extension(ext, "cl_intel_subgroup_matrix_multiply_accumulate");
    in->has_intel_2d_block_io = has_extension(ext, "cl_intel_subgroup_2d_block_io");
    int nv = has_extension(ext, "cl_nv_device_attribute_query");
    int amd = has_extension(ext, "cl_amd_device_attribute_query");
    free(ext);

    in->nv_cc_major = in->nv_cc_minor = -1;
    in->amd_gfxip_major = in->amd_gfxip_minor = -1;
    in->simd_width = 1;
    if (nv) {
        if (query_uint(d, CLBNB_CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, &u)) in->nv_cc_major = (int)u;
        if (query_uint(d, CLBNB_CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, &u)) in->nv_cc_minor = (int)u;
        if (query_uint(d, CLBNB_CL_DEVICE_WARP_SIZE_NV, &u)) in->simd_width = u;
    }
    if (amd) {
        if (query_uint(d, CLBNB_CL_DEVICE_GFXIP_MAJOR_AMD, &u)) in->amd_gfxip_major = (int)u;
        if (query_uint(d, CLBNB_CL_DEVICE_GFXIP_MINOR_AMD, &u)) in->amd_gfxip_minor = (int)u;
        if (query_uint(d, CLBNB_CL_DEVICE_WAVEFRONT_WIDTH_AMD, &u)) in->simd_width = u;
    }
    if (in->has_khr_int_dot) {
        cl_uint caps = 0;
        if (query_uint(d, CLBNB_CL_DEVICE_INTEGER_DOT_PRODUCT_CAPABILITIES_KHR, &caps)) in->khr_int_dot_caps = caps;
        cl_bool accel[6] = {0};
        if (clGetDeviceInfo(d, CLBNB_CL_DEVICE_INTEGER_DOT_PRODUCT_ACCELERATION_PROPERTIES_4x8BIT_PACKED_KHR,
                            sizeof accel, accel, NULL) == CL_SUCCESS)
            in->khr_int_dot_packed_signed_accelerated = accel[1] != 0;
    }
    if (in->has_intel_subgroups) {
        size_t sizes[8] = {0}, got = 0;
        if (clGetDeviceInfo(d, CLBNB_CL_DEVICE_SUB_GROUP_SIZES_INTEL, sizeof sizes, sizes, &got) == CL_SUCCESS)
            for (size_t i = 0; i < got / sizeof(size_t) && i < 7; i++)
                in->intel_subgroup_sizes[i] = (uint32_t)sizes[i];
        if (in->intel_subgroup_sizes[0]) in->simd_width = in->intel_subgroup_sizes[0];
    }
    if (in->simd_width == 1 && !(in->type & CL_DEVICE_TYPE_CPU)) {
        /* fall back to the preferred work-group multiple of a trivial kernel */
        in->simd_width = 32;
    }

    /* compile tests: only where the vendor could possibly pass them (saves build time elsewhere) */
    in->fp16_arithmetic = in->has_fp16_ext || nv ? clbnb_compile_test(ctx, probe_fp16_source, "") : 0;
    if (nv && in->nv_cc_major >= 0) {
        int cc = in->nv_cc_major * 10 + in->nv_cc_minor;
        in->nv_ptx_dp4a = cc >= 61 && clbnb_compile_test(ctx, probe_dp4a_source, "");
        in->nv_ptx_mma = cc >= 80 && clbnb_compile_test(ctx, probe_mma_source, "");
    }
    if (amd) in->amd_sdot4 = clbnb_compile_test(ctx, probe_sdot4_source, "");
    if (in->nv_ptx_dp4a)
        in->dot4_impl = CLBNB_DOT4_NV_DP4A;
    else if (in->has_khr_int_dot && (in->khr_int_dot_caps & 1u))
        in->dot4_impl = CLBNB_DOT4_KHR;
    else if (in->amd_sdot4)
        in->dot4_impl = CLBNB_DOT4_AMD_SDOT4;
    else
        in->dot4_impl = CLBNB_DOT4_EMULATED;
    choose_paths(ctx);
    return CLBNB_SUCCESS;
}
