/* context.c: creating and freeing a clbnb_context, and choosing a device from a selector. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- device enumeration: every device of every platform, platforms in ICD order ------------ */
clbnb_status clbnb_device_enumerate(size_t index, cl_platform_id *platform_out, cl_device_id *device_out) {
    cl_uint nplat = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &nplat);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || nplat == 0) return CLBNB_ERROR_NO_DEVICE;
    if (err != CL_SUCCESS) return (clbnb_status)err;
    cl_platform_id *plats = calloc(nplat, sizeof *plats);
    if (!plats) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    clbnb_status status = (clbnb_status)clGetPlatformIDs(nplat, plats, NULL);
    size_t seen = 0;
    int found = 0;
    for (cl_uint p = 0; status == CLBNB_SUCCESS && p < nplat && !found; p++) {
        cl_uint ndev = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &ndev) != CL_SUCCESS || ndev == 0) continue;
        if (index < seen + ndev) {
            cl_device_id *devs = calloc(ndev, sizeof *devs);
            if (!devs) {
                status = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
                break;
            }
            status = (clbnb_status)clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, ndev, devs, NULL);
            if (status == CLBNB_SUCCESS) {
                if (platform_out) *platform_out = plats[p];
                if (device_out) *device_out = devs[index - seen];
                found = 1;
            }
            free(devs);
        }
        seen += ndev;
    }
    free(plats);
    if (status != CLBNB_SUCCESS) return status;
    return found ? CLBNB_SUCCESS : (seen == 0 ? CLBNB_ERROR_NO_DEVICE : CLBNB_ERROR_DEVICE_NOT_FOUND);
}

clbnb_status clbnb_device_count(size_t *count) {
    if (!count) return CLBNB_ERROR_NULL_ARGUMENT;
    size_t n = 0;
    clbnb_status s;
    while ((s = clbnb_device_enumerate(n, NULL, NULL)) == CLBNB_SUCCESS)
        n++;
    *count = n;
    return (s == CLBNB_ERROR_DEVICE_NOT_FOUND || s == CLBNB_ERROR_NO_DEVICE) ? CLBNB_SUCCESS : s;
}

static void lowercase(char *s) {
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* The text a selector substring is matched against: platform name and version, device name,
 * vendor and version (PoCL says "PoCL" only in its version strings). */
static void device_label(cl_platform_id p, cl_device_id d, char *out, size_t size) {
    char plat[256] = "", plat_ver[256] = "", dev[256] = "", vendor[256] = "", dev_ver[256] = "";
    clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof plat - 1, plat, NULL);
    clGetPlatformInfo(p, CL_PLATFORM_VERSION, sizeof plat_ver - 1, plat_ver, NULL);
    clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof dev - 1, dev, NULL);
    clGetDeviceInfo(d, CL_DEVICE_VENDOR, sizeof vendor - 1, vendor, NULL);
    clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof dev_ver - 1, dev_ver, NULL);
    snprintf(out, size, "%s | %s | %s | %s | %s", plat, plat_ver, dev, vendor, dev_ver);
    lowercase(out);
}

/* Resolves a selector to a device. Exposed to tests through clbnb_context_init_from_selector. */
static clbnb_status select_device(const char *selector, cl_platform_id *plat, cl_device_id *dev) {
    if (!selector || !*selector) selector = getenv("CLBNB_DEVICE");
    if (!selector || !*selector) {
        /* default: first GPU, else the first device of any kind */
        for (size_t i = 0;; i++) {
            cl_platform_id p;
            cl_device_id d;
            clbnb_status s = clbnb_device_enumerate(i, &p, &d);
            if (s != CLBNB_SUCCESS) break;
            cl_device_type type = 0;
            clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
            if (type & CL_DEVICE_TYPE_GPU) {
                *plat = p;
                *dev = d;
                return CLBNB_SUCCESS;
            }
        }
        return clbnb_device_enumerate(0, plat, dev);
    }
    /* an all-digit selector is an index */
    const char *c = selector;
    while (*c && isdigit((unsigned char)*c))
        c++;
    if (*c == '\0') {
        char *end;
        unsigned long long idx = strtoull(selector, &end, 10);
        return clbnb_device_enumerate((size_t)idx, plat, dev);
    }
    char needle[256];
    snprintf(needle, sizeof needle, "%s", selector);
    lowercase(needle);
    for (size_t i = 0;; i++) {
        cl_platform_id p;
        cl_device_id d;
        clbnb_status s = clbnb_device_enumerate(i, &p, &d);
        if (s == CLBNB_ERROR_NO_DEVICE) return s;
        if (s != CLBNB_SUCCESS) return CLBNB_ERROR_DEVICE_NOT_FOUND;
        char label[1400];
        device_label(p, d, label, sizeof label);
        if (strstr(label, needle)) {
            *plat = p;
            *dev = d;
            return CLBNB_SUCCESS;
        }
    }
}

int clbnb_env_switch(const char *name, int default_on) {
    const char *env = getenv(name);
    if (env && (strcmp(env, "0") == 0 || strcmp(env, "1") == 0)) return env[0] == '1';
    return default_on;
}

/* ---- context lifetime ------------------------------------------------------------------------ */
static clbnb_status context_setup(clbnb_context *ctx) {
    if (pthread_mutex_init(&ctx->lock, NULL) != 0) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    if (pthread_mutex_init(&ctx->scratch_lock, NULL) != 0) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    ctx->scratch_lock_ready = 1;
    clbnb_cache_dir_resolve(ctx->cache_dir, sizeof ctx->cache_dir);
    ctx->emulate_ptx = clbnb_env_switch("CLBNB_EMULATE_PTX", 0);
    const char *split = getenv("CLBNB_INT8_SPLIT_K");
    ctx->int8_split_k = split ? atoi(split) : 0;
    CLBNB_TRY(clbnb_probe_device(ctx));
    const char *paths = getenv("CLBNB_PATH");
    if (paths && *paths) CLBNB_TRY(clbnb_apply_path_overrides(ctx, paths));
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_context_init(clbnb_context **out, cl_context context, cl_device_id device) {
    if (!out || !context || !device) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    /* the device must belong to the context */
    cl_uint ndev = 0;
    cl_int err = clGetContextInfo(context, CL_CONTEXT_NUM_DEVICES, sizeof ndev, &ndev, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    cl_device_id devs[64];
    if (ndev == 0 || ndev > 64) return CLBNB_ERROR_INVALID_ARGUMENT;
    err = clGetContextInfo(context, CL_CONTEXT_DEVICES, sizeof(cl_device_id) * ndev, devs, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    int member = 0;
    for (cl_uint i = 0; i < ndev; i++)
        member |= devs[i] == device;
    if (!member) return CLBNB_ERROR_WRONG_CONTEXT;

    clbnb_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    ctx->context = context;
    ctx->device = device;
    clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof ctx->platform, &ctx->platform, NULL);
    clRetainContext(context);
    clRetainDevice(device);
    clbnb_status s = context_setup(ctx);
    if (s != CLBNB_SUCCESS) {
        clbnb_context_free(ctx);
        return s;
    }
    *out = ctx;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_context_init_from_selector(clbnb_context **out, const char *selector) {
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    cl_platform_id plat;
    cl_device_id dev;
    CLBNB_TRY(select_device(selector, &plat, &dev));
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)plat, 0};
    cl_int err = CL_SUCCESS;
    cl_context context = clCreateContext(props, 1, &dev, NULL, NULL, &err);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    clbnb_status s = clbnb_context_init(out, context, dev);
    clReleaseContext(context); /* the clbnb context holds its own reference */
    if (s != CLBNB_SUCCESS) return s;
    (*out)->default_queue = clCreateCommandQueue(context, dev, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) {
        clbnb_context_free(*out);
        *out = NULL;
        return (clbnb_status)err;
    }
    return CLBNB_SUCCESS;
}

void clbnb_context_free(clbnb_context *ctx) {
    if (!ctx) return;
    clbnb_programs_release(ctx);
    clbnb_scratch_pool_free(ctx);
    cl_mem owned[] = {ctx->dynamic_code, ctx->table_nf4, ctx->table_fp4};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (owned[i]) clReleaseMemObject(owned[i]);
    if (ctx->default_queue) clReleaseCommandQueue(ctx->default_queue);
    if (ctx->context) clReleaseContext(ctx->context);
    if (ctx->device) clReleaseDevice(ctx->device);
    free(ctx->build_log);
    if (ctx->scratch_lock_ready) pthread_mutex_destroy(&ctx->scratch_lock);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

cl_context clbnb_context_cl_context(const clbnb_context *ctx) { return ctx ? ctx->context : NULL; }
cl_device_id clbnb_context_device(const clbnb_context *ctx) { return ctx ? ctx->device : NULL; }
cl_command_queue clbnb_context_default_queue(const clbnb_context *ctx) { return ctx ? ctx->default_queue : NULL; }
const clbnb_device_info *clbnb_context_device_info(const clbnb_context *ctx) { return ctx ? &ctx->info : NULL; }

const char *clbnb_context_build_log(const clbnb_context *ctx) { return (ctx && ctx->build_log) ? ctx->build_log : ""; }

clbnb_status clbnb_context_build_stats(const clbnb_context *ctx, clbnb_build_stats *out) {
    if (!ctx || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    pthread_mutex_lock((pthread_mutex_t *)&ctx->lock);
    *out = ctx->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&ctx->lock);
    return CLBNB_SUCCESS;
}
