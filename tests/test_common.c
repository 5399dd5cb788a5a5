/* test_common.c: see test_common.h. */
#include "test_common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int test_passed = 0, test_failed = 0;

int test_finish(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

static cl_command_queue queue_of(clbnb_context *ctx) { return clbnb_context_default_queue(ctx); }

clbnb_context *test_context(void) {
    clbnb_context *ctx = NULL;
    clbnb_status s = clbnb_context_init_from_selector(&ctx, NULL);
    if (s != CLBNB_SUCCESS) {
        fprintf(stderr, "FAIL: no device for CLBNB_DEVICE=%s: %s\n",
                getenv("CLBNB_DEVICE") ? getenv("CLBNB_DEVICE") : "", clbnb_status_string(s));
        printf("0 passed, 1 failed\n");
        exit(1);
    }
    static int printed = 0;
    if (!printed++)
        fprintf(stderr, "device: %s (%s)\n", clbnb_context_device_info(ctx)->device_name,
                clbnb_context_device_info(ctx)->platform_name);
    return ctx;
}

cl_command_queue test_queue(clbnb_context *ctx) { return queue_of(ctx); }

static void die_cl(const char *what, cl_int err) {
    fprintf(stderr, "FAIL: %s: %s\n", what, clbnb_status_string((clbnb_status)err));
    printf("%d passed, %d failed\n", test_passed, test_failed + 1);
    exit(1);
}

cl_mem test_buffer(clbnb_context *ctx, size_t bytes) {
    cl_int err;
    cl_mem m = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, bytes ? bytes : 1, NULL, &err);
    if (err != CL_SUCCESS) die_cl("clCreateBuffer", err);
    test_poison(ctx, m, bytes ? bytes : 1);
    return m;
}

cl_mem test_buffer_from(clbnb_context *ctx, const void *host, size_t bytes) {
    cl_mem m = test_buffer(ctx, bytes);
    if (bytes) test_upload(ctx, m, 0, host, bytes);
    return m;
}

void test_poison(clbnb_context *ctx, cl_mem mem, size_t bytes) {
    unsigned char *p = malloc(bytes);
    memset(p, TEST_POISON, bytes);
    test_upload(ctx, mem, 0, p, bytes);
    free(p);
}

void test_download(clbnb_context *ctx, cl_mem mem, size_t offset, void *host, size_t bytes) {
    cl_int err = clEnqueueReadBuffer(queue_of(ctx), mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL);
    if (err != CL_SUCCESS) die_cl("clEnqueueReadBuffer", err);
}

void test_upload(clbnb_context *ctx, cl_mem mem, size_t offset, const void *host, size_t bytes) {
    cl_int err = clEnqueueWriteBuffer(queue_of(ctx), mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL);
    if (err != CL_SUCCESS) die_cl("clEnqueueWriteBuffer", err);
}

uint64_t test_seed(void) {
    static uint64_t seed = 0;
    if (!seed) {
        const char *env = getenv("CLBNB_TEST_SEED");
        seed = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) * 2654435761u) ^ ((uint64_t)getpid() << 32);
        if (!seed) seed = 1;
        fprintf(stderr, "random seed: CLBNB_TEST_SEED=%llu\n", (unsigned long long)seed);
    }
    return seed;
}

test_rng test_rng_seeded(uint64_t seed) {
    test_rng r = {seed ? seed : test_seed()};
    for (int i = 0; i < 4; i++)
        test_rng_next(&r);
    return r;
}

uint64_t test_rng_next(test_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float test_rng_uniform(test_rng *r) { return (float)((test_rng_next(r) >> 40) * (1.0 / (1ull << 24))); }

float test_rng_normal(test_rng *r) {
    double u1 = ((test_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (test_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t test_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float test_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0) return bits_float(sign);
        float f = (float)man * (1.0f / 16777216.0f); /* subnormal: man * 2^-24 */
        return sign ? -f : f;
    }
    if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
    return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t test_float_to_half(float f) {
    uint32_t u = test_float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                       /* overflow -> Inf */
    if (a < 0x38800000u) {                                                         /* subnormal/zero */
        /* value = a as float; half subnormal unit = 2^-24; round to nearest even */
        float v = bits_float(a) * 16777216.0f; /* exact: scaling by a power of two */
        float r = rintf(v);                    /* default rounding mode: nearest even */
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t mant = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u; /* rebias 127 -> 15 and round */
    return (uint16_t)(sign | (mant >> 13));
}

float test_bf16_to_float(uint16_t b) { return bits_float((uint32_t)b << 16); }

uint16_t test_float_to_bf16(float f) {
    uint32_t u = test_float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void test_floats_to_dtype(const float *src, void *dst, size_t n, clbnb_dtype dtype) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == CLBNB_DTYPE_F32)
            ((float *)dst)[i] = src[i];
        else if (dtype == CLBNB_DTYPE_F16)
            ((uint16_t *)dst)[i] = test_float_to_half(src[i]);
        else
            ((uint16_t *)dst)[i] = test_float_to_bf16(src[i]);
    }
}

void test_dtype_to_floats(const void *src, float *dst, size_t n, clbnb_dtype dtype) {
    for (size_t i = 0; i < n; i++) {
        if (dtype == CLBNB_DTYPE_F32)
            dst[i] = ((const float *)src)[i];
        else if (dtype == CLBNB_DTYPE_F16)
            dst[i] = test_half_to_float(((const uint16_t *)src)[i]);
        else
            dst[i] = test_bf16_to_float(((const uint16_t *)src)[i]);
    }
}

float test_round_to_dtype(float f, clbnb_dtype dtype) {
    if (dtype == CLBNB_DTYPE_F16) return test_half_to_float(test_float_to_half(f));
    if (dtype == CLBNB_DTYPE_BF16) return test_bf16_to_float(test_float_to_bf16(f));
    return f;
}
