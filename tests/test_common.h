/*
 * test_common.h: helpers for clbnb's tests. The style follows ggml's test-backend-ops: every
 * kernel result is compared with a CPU reference written in C, on fresh random data, with the
 * output buffers poisoned before each run so that an element the kernel forgot to write is caught.
 */
#ifndef CLBNB_TEST_COMMON_H
#define CLBNB_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clbnb.h"

/* ---- checks: every test binary ends with test_finish(), printing "N passed, N failed" ------ */
extern int test_passed, test_failed;
#define TEST_CHECK(cond, ...)                                                                                          \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            test_passed++;                                                                                             \
        } else {                                                                                                       \
            test_failed++;                                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)
#define TEST_STATUS(expr, expected)                                                                                    \
    do {                                                                                                               \
        clbnb_status got_ = (expr);                                                                                    \
        TEST_CHECK(got_ == (expected), "%s -> %s, expected %s", #expr, clbnb_status_string(got_),                      \
                   clbnb_status_string(expected));                                                                     \
    } while (0)
int test_finish(void);

/* ---- device ----------------------------------------------------------------------------------- */
/* Context on the device CLBNB_DEVICE selects (exits the test with a failure when none). */
clbnb_context *test_context(void);
cl_command_queue test_queue(clbnb_context *ctx);

/* ---- buffers ---------------------------------------------------------------------------------- */
#define TEST_POISON 0xA5
cl_mem test_buffer(clbnb_context *ctx, size_t bytes); /* poisoned */
cl_mem test_buffer_from(clbnb_context *ctx, const void *host, size_t bytes);
void test_poison(clbnb_context *ctx, cl_mem mem, size_t bytes);
void test_download(clbnb_context *ctx, cl_mem mem, size_t offset, void *host, size_t bytes);
void test_upload(clbnb_context *ctx, cl_mem mem, size_t offset, const void *host, size_t bytes);

/* ---- random data ------------------------------------------------------------------------------ */
typedef struct test_rng {
    uint64_t s;
} test_rng;
test_rng test_rng_seeded(uint64_t seed); /* seed 0: from time and pid (fresh data every run) */
uint64_t test_rng_next(test_rng *r);
float test_rng_uniform(test_rng *r); /* [0, 1) */
float test_rng_normal(test_rng *r);  /* N(0, 1) */
uint64_t test_seed(void);            /* CLBNB_TEST_SEED, else time^pid; printed once */

/* ---- number formats (host side, bit-exact with the kernels) --------------------------------- */
float test_half_to_float(uint16_t h);
uint16_t test_float_to_half(float f); /* round to nearest even */
float test_bf16_to_float(uint16_t b);
uint16_t test_float_to_bf16(float f); /* round to nearest even */
/* Converts n floats to dtype (f32/f16/bf16) bytes, and back. */
void test_floats_to_dtype(const float *src, void *dst, size_t n, clbnb_dtype dtype);
void test_dtype_to_floats(const void *src, float *dst, size_t n, clbnb_dtype dtype);
/* Rounds a float to what dtype can hold (f16/bf16 round to nearest even). */
float test_round_to_dtype(float f, clbnb_dtype dtype);
uint32_t test_float_bits(float f);

/* ---- golden bitsandbytes outputs (tests/data/bnb_reference.safetensors) --------------------- */
typedef struct test_golden test_golden;
test_golden *test_golden_open(void);
void test_golden_close(test_golden *g);
/* Pointer to the tensor's bytes (NULL if absent); dtype string ("F32", "U8", ...), shape. */
const void *test_golden_get(test_golden *g, const char *key, const char **dtype, size_t *shape, int *ndim,
                            size_t *bytes);

#endif
