/* program.c: builds OpenCL programs once per context and options, through the on-disk binary
 * cache, and hands out their kernels. Callers hold ctx->lock. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "kernel_sources.h"

void clbnb_options_append(char *buf, size_t size, const char *fmt, ...) {
    const size_t used = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void set_build_log(clbnb_context *ctx, cl_program program) {
    size_t len = 0;
    free(ctx->build_log);
    ctx->build_log = NULL;
    if (clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) != CL_SUCCESS) return;
    ctx->build_log = calloc(len + 1, 1);
    if (ctx->build_log) clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, len, ctx->build_log, NULL);
}

static unsigned char *program_binary(cl_program program, size_t *size) {
    size_t sizes[1] = {0};
    cl_uint ndev = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_NUM_DEVICES, sizeof ndev, &ndev, NULL) != CL_SUCCESS || ndev != 1)
        return NULL;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof sizes, sizes, NULL) != CL_SUCCESS || !sizes[0])
        return NULL;
    unsigned char *bin = malloc(sizes[0]);
    unsigned char *ptrs[1] = {bin};
    if (bin && clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof ptrs, ptrs, NULL) != CL_SUCCESS) {
        free(bin);
        return NULL;
    }
    *size = sizes[0];
    return bin;
}

/* Builds `source` with `options`: from the disk cache when a valid binary is there, otherwise
 * from source (saving the binary). `quiet` builds (compile tests) leave the build log alone. */
static clbnb_status build_source(clbnb_context *ctx, const char *source, size_t len, const char *options, int quiet,
                                 cl_program *out) {
    char key[33];
    cl_int err;
    double t0 = now_ms();
    if (ctx->cache_dir[0]) {
        clbnb_cache_key(ctx, source, len, options, key);
        size_t bin_size = 0;
        int rejected = 0;
        unsigned char *bin = clbnb_cache_load(ctx->cache_dir, key, &bin_size, &rejected);
        ctx->stats.cache_rejected += (uint32_t)rejected;
        if (bin) {
            cl_int bin_status = CL_SUCCESS;
            const unsigned char *bins[1] = {bin};
            cl_program p = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &bin_size, bins, &bin_status, &err);
            free(bin);
            if (err == CL_SUCCESS && bin_status == CL_SUCCESS &&
                clBuildProgram(p, 1, &ctx->device, options, NULL, NULL) == CL_SUCCESS) {
                ctx->stats.programs_from_disk++;
                ctx->stats.build_ms += now_ms() - t0;
                *out = p;
                return CLBNB_SUCCESS;
            }
            if (p) clReleaseProgram(p);
            ctx->stats.cache_rejected++; /* the driver refused it: rebuild from source */
        }
    }
    const char *srcs[1] = {source};
    cl_program p = clCreateProgramWithSource(ctx->context, 1, srcs, &len, &err);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    err = clBuildProgram(p, 1, &ctx->device, options, NULL, NULL);
    ctx->stats.build_ms += now_ms() - t0;
    if (err != CL_SUCCESS) {
        if (!quiet) set_build_log(ctx, p);
        clReleaseProgram(p);
        return err == CL_BUILD_PROGRAM_FAILURE ? CLBNB_ERROR_BUILD_FAILED : (clbnb_status)err;
    }
    ctx->stats.programs_from_source++;
    if (ctx->cache_dir[0]) {
        size_t bin_size = 0;
        unsigned char *bin = program_binary(p, &bin_size);
        if (!bin || !clbnb_cache_store(ctx->cache_dir, key, bin, bin_size)) ctx->stats.cache_write_failures++;
        free(bin);
    }
    *out = p;
    return CLBNB_SUCCESS;
}

int clbnb_compile_test(clbnb_context *ctx, const char *source, const char *options) {
    cl_program p = NULL;
    pthread_mutex_lock(&ctx->lock);
    clbnb_status s = build_source(ctx, source, strlen(source), options, 1, &p);
    pthread_mutex_unlock(&ctx->lock);
    if (p) clReleaseProgram(p);
    return s == CLBNB_SUCCESS;
}

/* Device facts every program sees as macros, so kernels can specialise without host branches. */
static void device_defines(const clbnb_context *ctx, char *out, size_t size) {
    const clbnb_device_info *in = &ctx->info;
    /* IEEE division where the device offers it: quantization must match the C reference, which
     * divides exactly (common.cl's clbnb_div corrects the quotient on devices without it). */
    cl_device_fp_config fp = 0;
    clGetDeviceInfo(ctx->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL);
    int exact_div = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    snprintf(out, size,
             "-cl-std=CL1.2 %s-DCLBNB_CORRECT_DIV=%d -DCLBNB_DEVICE_CPU=%d -DCLBNB_NV_CC=%d -DCLBNB_DOT4_IMPL=%d "
             "-DCLBNB_SIMD_WIDTH=%u ",
             exact_div ? "-cl-fp32-correctly-rounded-divide-sqrt " : "", exact_div,
             (in->type & CL_DEVICE_TYPE_CPU) ? 1 : 0, in->nv_cc_major >= 0 ? in->nv_cc_major * 10 + in->nv_cc_minor : 0,
             (int)in->dot4_impl, in->simd_width);
}

/* Appends one source file to *source behind a #line marker. */
static clbnb_status append_part(const char *part, char **source, size_t *len) {
    size_t part_len = 0;
    char *text = clbnb_kernel_source_load(part, &part_len);
    if (!text) return CLBNB_ERROR_KERNEL_NOT_FOUND;
    char *grown = realloc(*source, *len + part_len + 32);
    if (!grown) {
        free(text);
        return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    *source = grown;
    *len += (size_t)snprintf(*source + *len, 32, "\n#line 1\n");
    memcpy(*source + *len, text, part_len + 1);
    *len += part_len;
    free(text);
    return CLBNB_SUCCESS;
}

/* Program source = cl/common.cl, then the files a program names on its own "//! include NAME"
 * lines (shared pieces, cl/inc_*.cl), then the program's file. */
static clbnb_status compose_source(const char *name, char **out, size_t *out_len) {
    size_t body_len = 0;
    char *body = clbnb_kernel_source_load(name, &body_len);
    if (!body) return CLBNB_ERROR_KERNEL_NOT_FOUND;
    char *source = NULL;
    size_t len = 0;
    clbnb_status s = append_part("common", &source, &len);
    static const char marker[] = "//! include ";
    for (const char *line = body; s == CLBNB_SUCCESS && line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, marker, sizeof marker - 1) != 0) continue;
        char part[128];
        size_t n = strcspn(line + sizeof marker - 1, " \r\n");
        if (n == 0 || n >= sizeof part) {
            s = CLBNB_ERROR_KERNEL_NOT_FOUND;
            break;
        }
        memcpy(part, line + sizeof marker - 1, n);
        part[n] = '\0';
        s = append_part(part, &source, &len);
    }
    free(body);
    if (s == CLBNB_SUCCESS) s = append_part(name, &source, &len);
    if (s != CLBNB_SUCCESS) {
        free(source);
        return s;
    }
    *out = source;
    *out_len = len;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_program_build_locked(clbnb_context *ctx, const char *name, const char *options,
                                        struct clbnb_program_entry **out) {
    if (!options) options = "";
    for (struct clbnb_program_entry *e = ctx->programs; e; e = e->next) {
        if (strcmp(e->name, name) == 0 && strcmp(e->options, options) == 0) {
            *out = e;
            return CLBNB_SUCCESS;
        }
    }
    char *source = NULL;
    size_t len = 0;
    clbnb_status s = compose_source(name, &source, &len);
    if (s != CLBNB_SUCCESS) return s;
    char defines[512], full_options[2048];
    device_defines(ctx, defines, sizeof defines);
    int n = snprintf(full_options, sizeof full_options, "%s%s", defines, options);
    if (n < 0 || (size_t)n >= sizeof full_options) {
        free(source);
        return CLBNB_ERROR_INVALID_ARGUMENT;
    }
    cl_program program = NULL;
    s = build_source(ctx, source, len, full_options, 0, &program);
    free(source);
    if (s != CLBNB_SUCCESS) return s;
    struct clbnb_program_entry *e = calloc(1, sizeof *e);
    if (e) {
        e->name = strdup(name);
        e->options = strdup(options);
    }
    if (!e || !e->name || !e->options) {
        if (e) {
            free(e->name);
            free(e->options);
            free(e);
        }
        clReleaseProgram(program);
        return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    e->program = program;
    e->next = ctx->programs;
    ctx->programs = e;
    *out = e;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_kernel_get_locked(clbnb_context *ctx, const char *name, const char *options, const char *kernel_name,
                                     cl_kernel *out) {
    struct clbnb_program_entry *e;
    CLBNB_TRY(clbnb_program_build_locked(ctx, name, options, &e));
    for (size_t i = 0; i < e->kernel_count; i++) {
        if (strcmp(e->kernels[i].name, kernel_name) == 0) {
            *out = e->kernels[i].kernel;
            return CLBNB_SUCCESS;
        }
    }
    if (e->kernel_count == sizeof e->kernels / sizeof e->kernels[0]) return CLBNB_ERROR_INVALID_ARGUMENT;
    cl_int err;
    cl_kernel k = clCreateKernel(e->program, kernel_name, &err);
    if (err != CL_SUCCESS) return err == CL_INVALID_KERNEL_NAME ? CLBNB_ERROR_KERNEL_NOT_FOUND : (clbnb_status)err;
    char *kname = strdup(kernel_name);
    if (!kname) {
        clReleaseKernel(k);
        return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    e->kernels[e->kernel_count].name = kname;
    e->kernels[e->kernel_count].kernel = k;
    e->kernel_count++;
    *out = k;
    return CLBNB_SUCCESS;
}

void clbnb_programs_release(clbnb_context *ctx) {
    struct clbnb_program_entry *e = ctx->programs;
    while (e) {
        struct clbnb_program_entry *next = e->next;
        for (size_t i = 0; i < e->kernel_count; i++) {
            clReleaseKernel(e->kernels[i].kernel);
            free(e->kernels[i].name);
        }
        clReleaseProgram(e->program);
        free(e->name);
        free(e->options);
        free(e);
        e = next;
    }
    ctx->programs = NULL;
}
