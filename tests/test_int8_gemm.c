/* test_int8_gemm.c: every int8 GEMM path the device has (generic, cpu, dot4 and nv_mma; nv_mma
 * runs with the PTX emulated where the device has no tensor cores) against a C reference with
 * int64 accumulation, on fresh random int8 data of awkward shapes, odd leading dimensions and byte
 * offsets into larger buffers, for all four epilogues. Outputs are poisoned first and every
 * element (and the padding between rows) is checked bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

#define INV_127SQ_BITS 0x38820610u

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

enum { EPI_INT32, EPI_LLM, EPI_MIXED, EPI_ROWWISE };

struct shape {
    size_t M, N, K;
};

struct variant {
    int epilogue;
    clbnb_dtype out, stats, bias; /* bias CLBNB_DTYPE_COUNT = none */
};

/* The reference epilogue, in the order the spec gives (gcc -std=c11: no fma contraction). */
static float ref_epilogue(int epi, int64_t acc, float sa, float sb, float bias, clbnb_dtype out) {
    float inv = bits_to_float(INV_127SQ_BITS);
    if (epi == EPI_LLM) {
        float t = (float)acc * sa;
        t = t * sb;
        return fmaf(t, inv, bias);
    }
    float c = sb * (sa * ((float)acc * inv));
    if (out == CLBNB_DTYPE_F16) c = test_round_to_dtype(c, CLBNB_DTYPE_F16);
    return c + bias;
}

static size_t check_one(clbnb_context *ctx, cl_command_queue q, const struct shape *sh, const struct variant *v,
                        test_rng *rng, const char *path) {
    size_t M = sh->M, N = sh->N, K = sh->K;
    size_t lda = K + 3, ldb = K + 5, a_off = 7, b_off = 3; /* odd: exercises the unaligned loads */
    if (test_rng_next(rng) & 1) lda = (K + 15) / 16 * 16, ldb = lda, a_off = 32, b_off = 64; /* aligned */
    size_t ldc = N + 2, es = v->epilogue == EPI_INT32 ? 4 : clbnb_dtype_size(v->out);
    /* The tensor-core kernel writes 2-byte outputs in 16-byte pieces where the output allows it and
     * 4-byte ones as pairs of adjacent outputs; each layout below takes a different branch.
     * N = 2 mod 4: an output offset of one element (pairs unaligned); N = 0 or 3 mod 8: ldc a multiple
     * of 8 at a 16-byte offset (pieces aligned; N = 3 mod 8 ends each row with a partial piece);
     * odd N: odd ldc. */
    size_t c_off = (N % 4 == 2 ? 1 : 2) * es;
    if (N % 8 == 0 || N % 8 == 3) ldc = (N + 8) / 8 * 8, c_off = 8 * es;
    int8_t *A = malloc(a_off + M * lda), *B = malloc(b_off + N * ldb);
    for (size_t i = 0; i < a_off + M * lda; i++)
        A[i] = (int8_t)(test_rng_next(rng) & 0xff);
    for (size_t i = 0; i < b_off + N * ldb; i++)
        B[i] = (int8_t)(test_rng_next(rng) & 0xff);
    float *sa = malloc(M * sizeof(float)), *sb = malloc(N * sizeof(float)), *bias = malloc(N * sizeof(float));
    for (size_t i = 0; i < M; i++)
        sa[i] = test_round_to_dtype(0.1f + 4.0f * test_rng_uniform(rng), v->stats);
    for (size_t i = 0; i < N; i++)
        sb[i] = test_round_to_dtype(0.1f + 4.0f * test_rng_uniform(rng), v->stats);
    for (size_t i = 0; i < N; i++)
        bias[i] = v->bias == CLBNB_DTYPE_COUNT ? 0.0f : test_round_to_dtype(test_rng_normal(rng), v->bias);
    clbnb_dtype stat_dt = v->epilogue == EPI_LLM ? CLBNB_DTYPE_F32 : v->stats;
    size_t sdt = clbnb_dtype_size(stat_dt);
    unsigned char *sa_b = malloc(M * sdt), *sb_b = malloc(N * sdt), *bias_b = malloc(N * 4 + 4);
    test_floats_to_dtype(sa, sa_b, M, stat_dt);
    test_floats_to_dtype(sb, sb_b, N, stat_dt);
    if (v->bias != CLBNB_DTYPE_COUNT) test_floats_to_dtype(bias, bias_b, N, v->bias);

    cl_mem a_m = test_buffer_from(ctx, A, a_off + M * lda), b_m = test_buffer_from(ctx, B, b_off + N * ldb);
    cl_mem sa_m = test_buffer_from(ctx, sa_b, M * sdt), sb_m = test_buffer_from(ctx, sb_b, N * sdt);
    cl_mem bias_m = test_buffer_from(ctx, bias_b, N * 4 + 4);
    size_t c_bytes = c_off + (M * ldc) * es;
    cl_mem c_m = test_buffer(ctx, c_bytes);

    clbnb_matrix a = {a_m, a_off, M, K, lda, CLBNB_DTYPE_I8}, b = {b_m, b_off, N, K, ldb, CLBNB_DTYPE_I8};
    clbnb_matrix c = {c_m, c_off, M, N, ldc, v->epilogue == EPI_INT32 ? CLBNB_DTYPE_I32 : v->out};
    clbnb_vector vsa = {sa_m, 0, M, stat_dt}, vsb = {sb_m, 0, N, stat_dt}, vbias = {bias_m, 0, N, v->bias};
    const clbnb_vector *pbias = v->bias == CLBNB_DTYPE_COUNT ? NULL : &vbias;
    clbnb_status s;
    switch (v->epilogue) {
    case EPI_INT32: s = clbnb_int8_linear_matmul(ctx, q, &a, &b, &c, 0, NULL, NULL); break;
    case EPI_LLM: s = clbnb_int8_scaled_matmul(ctx, q, &a, &b, &vsa, &vsb, pbias, &c, 0, NULL, NULL); break;
    case EPI_MIXED: s = clbnb_int8_matmul_mixed_dequantize(ctx, q, &a, &b, &vsa, &vsb, pbias, &c, 0, NULL, NULL); break;
    default: s = clbnb_int8_matmul_rowwise_dequantize(ctx, q, &a, &b, &vsa, &vsb, pbias, &c, 0, NULL, NULL); break;
    }
    TEST_CHECK(s == CLBNB_SUCCESS, "[%s] %zux%zux%zu epilogue %d: %s %s", path, M, N, K, v->epilogue,
               clbnb_status_string(s), clbnb_context_build_log(ctx));
    unsigned char *got = malloc(c_bytes);
    test_download(ctx, c_m, 0, got, c_bytes);
    size_t bad = 0, first_m = 0, first_n = 0;
    for (size_t i = 0; i < c_off; i++)
        bad += got[i] != TEST_POISON;
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < ldc; n++) {
            const unsigned char *p = got + c_off + (m * ldc + n) * es;
            if (n >= N) { /* padding between rows: untouched */
                for (size_t i = 0; i < es; i++)
                    bad += p[i] != TEST_POISON;
                continue;
            }
            int64_t acc = 0;
            for (size_t k = 0; k < K; k++)
                acc += (int64_t)A[a_off + m * lda + k] * B[b_off + n * ldb + k];
            int ok;
            if (v->epilogue == EPI_INT32) {
                int32_t g;
                memcpy(&g, p, 4);
                ok = g == acc;
            } else {
                float sbv = v->epilogue == EPI_MIXED ? sb[0] : sb[n];
                float want = ref_epilogue(v->epilogue, acc, sa[m], sbv, bias[n], v->out);
                if (v->out == CLBNB_DTYPE_F32) {
                    ok = memcmp(p, &want, 4) == 0;
                } else {
                    uint16_t g, w = v->out == CLBNB_DTYPE_F16 ? test_float_to_half(want) : test_float_to_bf16(want);
                    memcpy(&g, p, 2);
                    ok = g == w;
                }
            }
            if (!ok && !bad) first_m = m, first_n = n;
            bad += !ok;
        }
    }
    TEST_CHECK(bad == 0, "[%s] %zux%zux%zu epilogue %d out %s: %zu wrong (first at %zu,%zu)", path, M, N, K,
               v->epilogue, clbnb_dtype_name(c.dtype), bad, first_m, first_n);
    clReleaseMemObject(a_m), clReleaseMemObject(b_m), clReleaseMemObject(c_m);
    clReleaseMemObject(sa_m), clReleaseMemObject(sb_m), clReleaseMemObject(bias_m);
    free(A), free(B), free(sa), free(sb), free(bias), free(sa_b), free(sb_b), free(bias_b), free(got);
    return bad;
}

static void test_validation(clbnb_context *ctx, cl_command_queue q) {
    cl_mem a_m = test_buffer(ctx, 4096), b_m = test_buffer(ctx, 4096), c_m = test_buffer(ctx, 4096);
    clbnb_matrix a = {a_m, 0, 4, 8, 8, CLBNB_DTYPE_I8}, b = {b_m, 0, 5, 8, 8, CLBNB_DTYPE_I8};
    clbnb_matrix c = {c_m, 0, 4, 5, 5, CLBNB_DTYPE_I32};
    clbnb_vector st = {b_m, 0, 8, CLBNB_DTYPE_F32};
    TEST_STATUS(clbnb_int8_linear_matmul(NULL, q, &a, &b, &c, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, NULL, &b, &c, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_matrix bad = a;
    bad.dtype = CLBNB_DTYPE_U8;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &bad, &b, &c, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = b;
    bad.cols = 7;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &a, &bad, &c, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = c;
    bad.cols = 4;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &a, &b, &bad, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = c;
    bad.dtype = CLBNB_DTYPE_F16;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &a, &b, &bad, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = a;
    bad.ld = 4;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &bad, &b, &c, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = a;
    bad.rows = 1000;
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &bad, &b, &c, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    /* K beyond the int32-safe bound is refused, not answered wrongly */
    cl_mem big = test_buffer(ctx, CLBNB_INT8_GEMM_MAX_K + 1);
    clbnb_matrix ak = {big, 0, 1, CLBNB_INT8_GEMM_MAX_K + 1, CLBNB_INT8_GEMM_MAX_K + 1, CLBNB_DTYPE_I8};
    clbnb_matrix bk = ak, ck = {c_m, 0, 1, 1, 1, CLBNB_DTYPE_I32};
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &ak, &bk, &ck, 0, NULL, NULL), CLBNB_ERROR_K_TOO_LARGE);
    clReleaseMemObject(big);
    /* scaled: stats dtype and length, bias length */
    clbnb_matrix cf = {c_m, 0, 4, 5, 5, CLBNB_DTYPE_F16};
    clbnb_vector short_stats = {b_m, 0, 3, CLBNB_DTYPE_F32}, f16_stats = {b_m, 0, 8, CLBNB_DTYPE_F16};
    clbnb_vector short_bias = {b_m, 0, 4, CLBNB_DTYPE_F16}, i8_bias = {b_m, 0, 8, CLBNB_DTYPE_I8};
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &a, &b, NULL, &st, NULL, &cf, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &a, &b, &short_stats, &st, NULL, &cf, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &a, &b, &f16_stats, &st, NULL, &cf, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &a, &b, &st, &st, &short_bias, &cf, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &a, &b, &st, &st, &i8_bias, &cf, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_int8_matmul_rowwise_dequantize(ctx, q, &a, &b, &st, &short_stats, NULL, &cf, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    unsigned char got[4096];
    test_download(ctx, c_m, 0, got, sizeof got);
    size_t touched = 0;
    for (size_t i = 0; i < sizeof got; i++)
        touched += got[i] != TEST_POISON;
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    clReleaseMemObject(a_m), clReleaseMemObject(b_m), clReleaseMemObject(c_m);
}

static void run_paths(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const clbnb_path *paths, size_t npaths,
                      const struct shape *shapes, size_t nshapes, const struct variant *variants, size_t nvariants,
                      const char *suffix);

int main(void) {
    setenv("CLBNB_EMULATE_PTX", "1", 0); /* nv_mma everywhere: emulated where there are no tensor cores */
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    /* M <= 4 with K > 4096: every work-item of the skinny kernel's widest team (256 x 16 bytes of
     * K) holds a partial sum, so a reduction that drops any of them fails; M = 16: the nv_mma
     * path's small-batch tile (16 x 128 x 128) with tails in N and K */
    static const struct shape shapes[] = {{1, 1, 1},    {1, 7, 3},     {3, 1, 5},      {2, 3, 4},    {17, 33, 65},
                                          {64, 64, 64}, {65, 63, 100}, {1, 300, 257},  {5, 9, 4097}, {130, 129, 77},
                                          {1, 3, 4113}, {4, 5, 8195},  {16, 131, 515}, {9, 12, 33},  {6, 10, 40},
                                          {5, 11, 40},  {7, 16, 40}};
    static const struct variant variants[] = {
        {EPI_INT32, CLBNB_DTYPE_I32, CLBNB_DTYPE_F32, CLBNB_DTYPE_COUNT},
        {EPI_LLM, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, CLBNB_DTYPE_F16},
        {EPI_LLM, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, CLBNB_DTYPE_COUNT},
        {EPI_LLM, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32, CLBNB_DTYPE_BF16},
        {EPI_MIXED, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16},
        {EPI_MIXED, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
        {EPI_ROWWISE, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, CLBNB_DTYPE_COUNT},
        {EPI_ROWWISE, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32, CLBNB_DTYPE_F16},
    };
    const clbnb_path paths[] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU, CLBNB_PATH_DOT4, CLBNB_PATH_NV_MMA};
    run_paths(ctx, q, &rng, paths, sizeof paths / sizeof paths[0], shapes, sizeof shapes / sizeof shapes[0], variants,
              sizeof variants / sizeof variants[0], "");
    test_validation(ctx, q);
    clbnb_context_free(ctx);

    /* the tensor-core kernel built for its epilogue kind and output dtype (the default where the
     * device runs the PTX, off under the emulation: see src/int8_gemm.c), two of the combinations
     * (each is a build of its own, ~30 s on PoCL) */
    setenv("CLBNB_INT8_MMA_SPECIALIZE", "1", 1);
    ctx = test_context();
    q = test_queue(ctx);
    static const struct shape spec_shapes[] = {{17, 33, 65}};
    const struct variant spec_variants[] = {variants[1], variants[7]};
    const clbnb_path mma_path[] = {CLBNB_PATH_NV_MMA};
    run_paths(ctx, q, &rng, mma_path, 1, spec_shapes, 1, spec_variants, 2, " specialized");
    unsetenv("CLBNB_INT8_MMA_SPECIALIZE");
    clbnb_context_free(ctx);

    /* split-K: the same checks with K cut into 3 slices summed through atomics (the automatic choice
     * splits only large K with few output tiles, which a CPU device never sees) */
    setenv("CLBNB_INT8_SPLIT_K", "3", 1);
    ctx = test_context();
    q = test_queue(ctx);
    static const struct shape split_shapes[] = {{1, 5, 200}, {3, 70, 129}, {17, 9, 4097}, {40, 20, 300}};
    run_paths(ctx, q, &rng, paths, 4, split_shapes, 4, variants, sizeof variants / sizeof variants[0], " split-K 3");
    unsetenv("CLBNB_INT8_SPLIT_K");
    clbnb_context_free(ctx);
    return test_finish();
}

static void run_paths(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const clbnb_path *paths, size_t npaths,
                      const struct shape *shapes, size_t nshapes, const struct variant *variants, size_t nvariants,
                      const char *suffix) {
    const clbnb_device_info *info = clbnb_context_device_info(ctx);
    for (size_t p = 0; p < npaths; p++) {
        if (!clbnb_context_path_available(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p])) continue;
        TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p]), CLBNB_SUCCESS);
        /* the PTX emulation is slow: fewer, smaller shapes there */
        int emulated = paths[p] == CLBNB_PATH_NV_MMA && !info->nv_ptx_mma;
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", clbnb_path_name(paths[p]), emulated ? " (emulated PTX)" : "", suffix);
        for (size_t si = 0; si < nshapes; si++) {
            /* emulated cost grows with 128x128 tiles x 64-byte K stages */
            const struct shape *sh = &shapes[si];
            if (emulated && ((sh->M + 127) / 128) * ((sh->N + 127) / 128) * ((sh->K + 63) / 64) > 8) continue;
            for (size_t vi = 0; vi < nvariants; vi++) {
                /* odd shapes run a third of the variants there, except the tiny ones (every store
                 * branch of the tensor-core epilogue must see every output dtype) */
                if (emulated && vi % 3 != 0 && si % 2 && sh->M * sh->N > 256) continue;
                check_one(ctx, q, &shapes[si], &variants[vi], rng, name);
            }
        }
        fprintf(stderr, "path %s done\n", name);
    }
}
