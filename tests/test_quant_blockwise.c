/* test_quant_blockwise.c: block-wise 8-bit quantize / dequantize (built-in dynamic map and a caller
 * code), absmax_compress / absmax_decompress and the nested 8-bit dequantizer, against the C
 * reference of test_quant_blockwise_ref.h bit for bit, on both kernel paths; exact midpoint ties;
 * bitsandbytes' 8-bit accuracy bars (spec 8.1); argument validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_quant_blockwise_ref.h"

/* A random sorted 256-entry code in [-1, 1] (any sorted code must work, spec 2.3). */
static void random_code(test_rng *rng, float *code) {
    for (int i = 0; i < 256; i++)
        code[i] = 2.0f * test_rng_uniform(rng) - 1.0f;
    for (int i = 1; i < 256; i++)
        for (int j = i; j > 0 && code[j - 1] > code[j]; j--) {
            float t = code[j];
            code[j] = code[j - 1];
            code[j - 1] = t;
        }
    code[0] = -1.0f, code[255] = 1.0f;
}

static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, clbnb_dtype dt, size_t bs, size_t n,
                     int own_code, size_t off, int nested, const char *path) {
    size_t nb = clbnb_blocks_count(n, bs), es = clbnb_dtype_size(dt);
    char tag[160];
    snprintf(tag, sizeof tag, "[%s %s bs=%zu n=%zu code=%s off=%zu]", path, clbnb_dtype_name(dt), bs, n,
             own_code ? "random" : "dynamic", off);
    float code[256];
    if (own_code)
        random_code(rng, code);
    else
        memcpy(code, clbnb_code_dynamic(), sizeof code);
    float *x = malloc(n * 4), *xr = malloc(n * 4), *deq = malloc(n * 4);
    unsigned char *xb = malloc(n * es), *want_o = malloc(n * 4);
    float scale = powf(10.0f, 2.0f * (2.0f * test_rng_uniform(rng) - 1.0f));
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng) * scale;
    if (nb >= 3) memset(x + bs, 0, bs * 4);
    if (nb >= 4) { /* block 2: max 1.0 and exact midpoints (ties -> even index) */
        x[2 * bs] = 1.0f;
        for (size_t i = 1; i < bs; i++) {
            unsigned j = (unsigned)((i * 37) % 255);
            x[2 * bs + i] = (code[j] + code[j + 1]) * 0.5f;
        }
    }
    if (n > 4 * bs + 5) x[4 * bs + 5] = NAN;
    test_floats_to_dtype(x, xb, n, dt);
    test_dtype_to_floats(xb, xr, n, dt);
    uint8_t *want_c = malloc(n);
    float *want_a = malloc(nb * 4);
    ref_quantize_8bit(xr, n, code, bs, want_c, want_a);
    cl_mem xm = test_buffer(ctx, (n + off) * es), cm = test_buffer(ctx, off + n + GUARD),
           am = test_buffer(ctx, (off + nb) * 4 + GUARD), codem = test_buffer(ctx, (off + 256) * 4);
    test_upload(ctx, xm, off * es, xb, n * es);
    test_upload(ctx, codem, off * 4, code, 1024);
    clbnb_vector xv = clbnb_vector_make(xm, off * es, n, dt), cv = clbnb_vector_make(cm, off, n, CLBNB_DTYPE_U8),
                 av = clbnb_vector_make(am, off * 4, nb, CLBNB_DTYPE_F32),
                 codev = clbnb_vector_make(codem, off * 4, 256, CLBNB_DTYPE_F32);
    const clbnb_vector *cp = own_code ? &codev : NULL;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, cp, bs, &cv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
    check_region(ctx, am, off * 4, want_a, nb, 4, CLBNB_DTYPE_F32, "absmax", tag);
    check_region(ctx, cm, off, want_c, n, 1, -1, "codes", tag);
    ref_dequantize_8bit(want_c, want_a, code, bs, n, deq);
    for (int d = 0; d < 3; d++) {
        clbnb_dtype od = float_dtypes[d];
        size_t oes = clbnb_dtype_size(od);
        cl_mem om = test_buffer(ctx, (off + n) * oes + GUARD);
        clbnb_vector ov = clbnb_vector_make(om, off * oes, n, od);
        TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, cp, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        test_floats_to_dtype(deq, want_o, n, od);
        char t2[200];
        snprintf(t2, sizeof t2, "%s out=%s", tag, clbnb_dtype_name(od));
        check_region(ctx, om, off * oes, want_o, n, oes, od, "dequant", t2);
        clReleaseMemObject(om);
    }
    if (nested) { /* bnb quantize_blockwise(nested=True): absmax compressed with the same blocksize */
        size_t nb2 = clbnb_blocks_count(nb, bs);
        uint8_t *want_q = malloc(nb);
        float *want_a2 = malloc(nb2 * 4), *scratch = malloc(nb * 4), *rec = malloc(nb * 4), want_off;
        ref_compress(want_a, nb, bs, want_q, want_a2, &want_off, scratch);
        ref_decompress(want_q, want_a2, clbnb_code_dynamic(), want_off, bs, nb, rec);
        cl_mem qm = test_buffer(ctx, 1 + nb + GUARD), a2m = test_buffer(ctx, nb2 * 4 + GUARD),
               offm = test_buffer(ctx, 4 + GUARD), c2m = test_buffer_from(ctx, clbnb_code_dynamic(), 1024);
        clbnb_vector qv = clbnb_vector_make(qm, 1, nb, CLBNB_DTYPE_U8),
                     a2v = clbnb_vector_make(a2m, 0, nb2, CLBNB_DTYPE_F32),
                     offv = clbnb_vector_make(offm, 0, 1, CLBNB_DTYPE_F32);
        TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, bs, &qv, &a2v, &offv, 0, NULL, NULL), CLBNB_SUCCESS);
        check_region(ctx, offm, 0, &want_off, 1, 4, CLBNB_DTYPE_F32, "offset", tag);
        check_region(ctx, qm, 1, want_q, nb, 1, -1, "qabsmax", tag);
        check_region(ctx, a2m, 0, want_a2, nb2, 4, CLBNB_DTYPE_F32, "absmax2", tag);
        clbnb_absmax nest = {qv, a2v, clbnb_vector_make(c2m, 0, 256, CLBNB_DTYPE_F32), offv, bs};
        cl_mem rm = test_buffer(ctx, nb * 4 + GUARD);
        clbnb_vector rv = clbnb_vector_make(rm, 0, nb, CLBNB_DTYPE_F32);
        TEST_STATUS(clbnb_absmax_decompress(ctx, q, &nest, &rv, 0, NULL, NULL), CLBNB_SUCCESS);
        check_region(ctx, rm, 0, rec, nb, 4, CLBNB_DTYPE_F32, "decompress", tag);
        ref_dequantize_8bit(want_c, rec, code, bs, n, deq);
        cl_mem om = test_buffer(ctx, n * es + GUARD);
        clbnb_vector ov = clbnb_vector_make(om, 0, n, dt);
        TEST_STATUS(clbnb_dequantize_blockwise_ex(ctx, q, &cv, &nest, cp, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        test_floats_to_dtype(deq, want_o, n, dt);
        check_region(ctx, om, 0, want_o, n, es, dt, "nested dequant", tag);
        clReleaseMemObject(om);
        clReleaseMemObject(rm);
        clReleaseMemObject(qm);
        clReleaseMemObject(a2m);
        clReleaseMemObject(offm);
        clReleaseMemObject(c2m);
        free(want_q);
        free(want_a2);
        free(scratch);
        free(rec);
    }
    clReleaseMemObject(xm);
    clReleaseMemObject(cm);
    clReleaseMemObject(am);
    clReleaseMemObject(codem);
    free(x), free(xr), free(deq), free(xb), free(want_o), free(want_c), free(want_a);
}

/* absmax_compress alone on long absmax vectors (several mean chunks of 4096). */
static void compress_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, size_t nb, size_t bs2,
                          const char *path) {
    char tag[96];
    snprintf(tag, sizeof tag, "[%s compress nb=%zu bs2=%zu]", path, nb, bs2);
    float *a = malloc(nb * 4), *scratch = malloc(nb * 4), want_off;
    for (size_t i = 0; i < nb; i++)
        a[i] = fabsf(test_rng_normal(rng)) * 3.0f + 0.01f;
    size_t nb2 = clbnb_blocks_count(nb, bs2);
    uint8_t *want_q = malloc(nb);
    float *want_a2 = malloc(nb2 * 4);
    ref_compress(a, nb, bs2, want_q, want_a2, &want_off, scratch);
    cl_mem am = test_buffer_from(ctx, a, nb * 4), qm = test_buffer(ctx, nb + GUARD),
           a2m = test_buffer(ctx, nb2 * 4 + GUARD), offm = test_buffer(ctx, 4 + GUARD);
    clbnb_vector av = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32), qv = clbnb_vector_make(qm, 0, nb, CLBNB_DTYPE_U8),
                 a2v = clbnb_vector_make(a2m, 0, nb2, CLBNB_DTYPE_F32),
                 offv = clbnb_vector_make(offm, 0, 1, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, bs2, &qv, &a2v, &offv, 0, NULL, NULL), CLBNB_SUCCESS);
    check_region(ctx, offm, 0, &want_off, 1, 4, CLBNB_DTYPE_F32, "offset", tag);
    check_region(ctx, qm, 0, want_q, nb, 1, -1, "qabsmax", tag);
    check_region(ctx, a2m, 0, want_a2, nb2, 4, CLBNB_DTYPE_F32, "absmax2", tag);
    clReleaseMemObject(am), clReleaseMemObject(qm), clReleaseMemObject(a2m), clReleaseMemObject(offm);
    free(a), free(scratch), free(want_q), free(want_a2);
}

/* spec 8.1: randn 1024x1024, mean abs err < 0.011, rel err < 0.018, fp32/fp16/bf16, bs 64..4096 */
static void accuracy(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    const size_t n = 1024 * 1024;
    float *x = malloc(n * 4), *xr = malloc(n * 4), *y = malloc(n * 4);
    unsigned char *xb = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng);
    cl_mem xm = test_buffer(ctx, n * 4), cm = test_buffer(ctx, n), am = test_buffer(ctx, n / 64 * 4),
           om = test_buffer(ctx, n * 4);
    for (int d = 0; d < 3; d++) {
        clbnb_dtype dt = float_dtypes[d];
        test_floats_to_dtype(x, xb, n, dt);
        test_dtype_to_floats(xb, xr, n, dt);
        test_upload(ctx, xm, 0, xb, n * clbnb_dtype_size(dt));
        for (size_t bs = 64; bs <= 4096; bs *= 4) {
            clbnb_vector xv = clbnb_vector_make(xm, 0, n, dt), cv = clbnb_vector_make(cm, 0, n, CLBNB_DTYPE_U8),
                         av = clbnb_vector_make(am, 0, n / bs, CLBNB_DTYPE_F32),
                         ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F32);
            TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, bs, &cv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
            TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, NULL, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
            test_download(ctx, om, 0, y, n * 4);
            double ae = 0, re = 0;
            for (size_t i = 0; i < n; i++) {
                double e = fabs((double)xr[i] - (double)y[i]);
                ae += e;
                re += e / (fabs((double)xr[i]) + 1e-8);
            }
            ae /= (double)n, re /= (double)n;
            TEST_CHECK(ae < 0.011 && re < 0.018, "8-bit accuracy %s bs=%zu: abs %.5f rel %.5f", clbnb_dtype_name(dt),
                       bs, ae, re);
        }
    }
    clReleaseMemObject(xm), clReleaseMemObject(cm), clReleaseMemObject(am), clReleaseMemObject(om);
    free(x), free(xr), free(y), free(xb);
}

static void validation(clbnb_context *ctx, cl_command_queue q) {
    cl_mem xm = test_buffer(ctx, 400), cm = test_buffer(ctx, 100), am = test_buffer(ctx, 64),
           om = test_buffer(ctx, 400);
    clbnb_vector xv = clbnb_vector_make(xm, 0, 100, CLBNB_DTYPE_F32),
                 cv = clbnb_vector_make(cm, 0, 100, CLBNB_DTYPE_U8), av = clbnb_vector_make(am, 0, 7, CLBNB_DTYPE_F32),
                 ov = clbnb_vector_make(om, 0, 100, CLBNB_DTYPE_F32), bad;
    TEST_STATUS(clbnb_quantize_blockwise(NULL, q, &xv, NULL, 16, &cv, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, 16, NULL, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    const size_t bad_bs[] = {0, 8, 24, 131072};
    for (int i = 0; i < 4; i++)
        TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, bad_bs[i], &cv, &av, 0, NULL, NULL),
                    CLBNB_ERROR_INVALID_BLOCKSIZE);
    bad = xv, bad.dtype = CLBNB_DTYPE_U8;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &bad, NULL, 16, &cv, &av, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = cv, bad.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, 16, &bad, &av, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = cv, bad.n = 99;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, 16, &bad, &av, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = av, bad.n = 6;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, 16, &cv, &bad, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = xv, bad.n = 0;
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &bad, NULL, 16, &cv, &av, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = xv, bad.n = 255; /* used as the code: needs 256 entries */
    TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, &bad, 16, &cv, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_quantize_blockwise(ctx, test_queue(other), &xv, NULL, 16, &cv, &av, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, NULL, 16, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, NULL, 12, &ov, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    bad = ov, bad.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, NULL, 16, &bad, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = av, bad.n = 6;
    TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &bad, NULL, 16, &ov, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_dequantize_blockwise(ctx, test_queue(other), &cv, &av, NULL, 16, &ov, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    /* compress / decompress */
    clbnb_vector qv = clbnb_vector_make(cm, 0, 7, CLBNB_DTYPE_U8), a2 = clbnb_vector_make(om, 0, 1, CLBNB_DTYPE_F32),
                 offv = clbnb_vector_make(om, 4, 1, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 256, NULL, &a2, &offv, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 100, &qv, &a2, &offv, 0, NULL, NULL), CLBNB_ERROR_INVALID_BLOCKSIZE);
    bad = qv, bad.n = 6;
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 256, &bad, &a2, &offv, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = offv, bad.dtype = CLBNB_DTYPE_F16;
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 256, &qv, &a2, &bad, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = a2, bad.n = 0;
    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 16, &qv, &bad, &offv, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_absmax_compress(ctx, test_queue(other), &av, 256, &qv, &a2, &offv, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    clbnb_absmax plain = clbnb_absmax_plain(&av);
    TEST_STATUS(clbnb_absmax_decompress(ctx, q, &plain, &ov, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_absmax nest = {qv, a2, {NULL, 0, 0, CLBNB_DTYPE_F32}, offv, 256};
    TEST_STATUS(clbnb_absmax_decompress(ctx, q, &nest, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    bad = ov, bad.n = 8; /* 8 absmax entries but the nested q holds 7 */
    TEST_STATUS(clbnb_absmax_decompress(ctx, q, &nest, &bad, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    clbnb_context_free(other);
    unsigned char buf[400];
    size_t touched = 0;
    test_download(ctx, cm, 0, buf, 100);
    for (int i = 0; i < 100; i++)
        touched += buf[i] != TEST_POISON;
    test_download(ctx, am, 0, buf, 64);
    for (int i = 0; i < 64; i++)
        touched += buf[i] != TEST_POISON;
    test_download(ctx, om, 0, buf, 400);
    for (int i = 0; i < 400; i++)
        touched += buf[i] != TEST_POISON;
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    clReleaseMemObject(xm), clReleaseMemObject(cm), clReleaseMemObject(am), clReleaseMemObject(om);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    const size_t sizes[] = {1, 5, 16, 17, 100, 1000, 4099, 20000, 70001};
    for (int p = 0; p < 2; p++) {
        if (clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, paths[p]) != CLBNB_SUCCESS) {
            TEST_CHECK(0, "path %s not available", clbnb_path_name(paths[p]));
            continue;
        }
        const char *pn = clbnb_path_name(paths[p]);
        for (int d = 0; d < 3; d++)
            for (size_t bs = 16; bs <= 65536; bs *= 2)
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                    size_t n = sizes[si];
                    if ((n > 20 * bs + 20 && si % 2) || (bs > 4096 && si % 3)) continue;
                    int r = (int)(test_rng_next(&rng) % 6);
                    run_case(ctx, q, &rng, float_dtypes[d], bs, n, r == 0,
                             r == 1   ? 1
                             : r == 2 ? 4
                                      : 0,
                             si % 3 == 1, pn);
                }
        run_case(ctx, q, &rng, CLBNB_DTYPE_F16, 256, (1u << 20) + 3, 0, 0, 1, pn);
        compress_case(ctx, q, &rng, 4096, 256, pn);
        compress_case(ctx, q, &rng, 4097, 256, pn);
        compress_case(ctx, q, &rng, 300000, 256, pn);
        compress_case(ctx, q, &rng, 1u << 20, 4096, pn);
    }
    clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, CLBNB_PATH_CPU);
    accuracy(ctx, q, &rng);
    validation(ctx, q);
    clbnb_context_free(ctx);
    return test_finish();
}
