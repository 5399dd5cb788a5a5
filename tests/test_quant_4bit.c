/* test_quant_4bit.c: NF4 / FP4 quantize + dequantize (plain and nested absmax read in the kernel)
 * against the C reference of test_quant_blockwise_ref.h, bit for bit, on fresh random data with
 * awkward sizes, buffer offsets, all-zero blocks, NaN/Inf, exact threshold ties, all input and output
 * dtypes, both kernel paths; bitsandbytes' accuracy bars (spec 8.2); argument validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_quant_blockwise_ref.h"

static void fill_input(test_rng *rng, float *x, size_t n, size_t bs, int fp4, int specials) {
    float scale = powf(10.0f, 3.0f * (2.0f * test_rng_uniform(rng) - 1.0f));
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng) * scale;
    if (!specials) return;
    size_t nb = (n + bs - 1) / bs;
    if (nb >= 3) memset(x + bs, 0, bs * sizeof(float)); /* block 1 all zero */
    if (nb >= 4) {                                      /* block 2: exact ties on the thresholds */
        size_t s = 2 * bs;
        x[s] = 1.0f;
        for (size_t i = 1; i < bs; i++) {
            float t = fp4 ? ref_bits(ref_fp4_thr_bits[i % 7]) : ref_bits(ref_nf4_thr_bits[i % 15]);
            x[s + i] = (fp4 && (i & 8)) ? -t : t;
            if (i % 17 == 0) x[s + i] = -0.0f;
            if (i % 19 == 0) x[s + i] = -1e-4f;
        }
    }
    if (n > 4 * bs + 3) x[4 * bs + 3] = NAN; /* NaN: ignored by absmax, code 0 */
    /* blocks 6 on (absmax 1, so these are the normalized values): each threshold's float
     * neighbours and each edge of the GPU kernel's 1/16-wide cells with its neighbours */
    float edges[160];
    size_t ne = 0;
    const int nt = fp4 ? 7 : 15;
    for (int sign = 0; sign < (fp4 ? 2 : 1); sign++) {
        float sg = sign ? -1.0f : 1.0f;
        for (int j = 0; j < nt; j++) {
            float t = sg * ref_bits(fp4 ? ref_fp4_thr_bits[j] : ref_nf4_thr_bits[j]);
            edges[ne++] = nextafterf(t, -INFINITY);
            edges[ne++] = nextafterf(t, INFINITY);
        }
        for (int k = fp4 ? 0 : -16; k <= 16; k++) {
            float c = sg * (float)k / 16.0f;
            edges[ne++] = c;
            if (fabsf(nextafterf(c, -INFINITY)) <= 1.0f) edges[ne++] = nextafterf(c, -INFINITY);
            if (fabsf(nextafterf(c, INFINITY)) <= 1.0f) edges[ne++] = nextafterf(c, INFINITY);
        }
    }
    for (size_t i = 0, s = 6 * bs; i < ne && s + bs <= n; s += bs) {
        x[s] = 1.0f;
        for (size_t k = 1; k < bs && i < ne; k++)
            x[s + k] = edges[i++];
    }
    if (specials == 1 && n > 5 * bs + 1) x[5 * bs + 1] = -INFINITY; /* Inf: absmax Inf, others code of 0 */
    if (n >= 2) x[n - 1] = 0.0f;
}

typedef struct case_opts {
    int fp4;
    clbnb_dtype dtype;
    size_t bs, n;
    size_t x_off, p_off, a_off, o_off; /* element offsets into the buffers */
    int specials, nested, all_out;
} case_opts;

static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const case_opts *c, const char *path) {
    size_t n = c->n, bs = c->bs, nb = clbnb_blocks_count(n, bs), pb = clbnb_packed_4bit_bytes(n);
    size_t es = clbnb_dtype_size(c->dtype);
    char tag[160];
    snprintf(tag, sizeof tag, "[%s %s %s bs=%zu n=%zu off=%zu/%zu/%zu/%zu]", path, c->fp4 ? "fp4" : "nf4",
             clbnb_dtype_name(c->dtype), bs, n, c->x_off, c->p_off, c->a_off, c->o_off);
    float *x = malloc(n * sizeof(float)), *xr = malloc(n * sizeof(float));
    unsigned char *xb = malloc(n * es);
    fill_input(rng, x, n, bs, c->fp4, c->specials && c->nested ? 2 : c->specials);
    test_floats_to_dtype(x, xb, n, c->dtype);
    test_dtype_to_floats(xb, xr, n, c->dtype);
    uint8_t *want_p = malloc(pb);
    float *want_a = malloc(nb * sizeof(float));
    ref_quantize_4bit(xr, n, c->fp4, bs, want_p, want_a);

    cl_mem xm = test_buffer(ctx, (n + c->x_off) * es);
    test_upload(ctx, xm, c->x_off * es, xb, n * es);
    cl_mem pm = test_buffer(ctx, c->p_off + pb + GUARD), am = test_buffer(ctx, (c->a_off + nb) * 4 + GUARD);
    clbnb_vector xv = clbnb_vector_make(xm, c->x_off * es, n, c->dtype);
    clbnb_vector pv = clbnb_vector_make(pm, c->p_off, pb, CLBNB_DTYPE_U8);
    clbnb_vector av = clbnb_vector_make(am, c->a_off * 4, nb, CLBNB_DTYPE_F32);
    clbnb_quant_type type = c->fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, type, bs, &pv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
    check_region(ctx, am, c->a_off * 4, want_a, nb, 4, CLBNB_DTYPE_F32, "absmax", tag);
    check_region(ctx, pm, c->p_off, want_p, pb, 1, -1, "packed", tag);

    /* dequantize (plain absmax) to every output dtype */
    float *deq = malloc(n * sizeof(float));
    unsigned char *want_o = malloc(n * 4);
    ref_dequantize_4bit(want_p, want_a, c->fp4, bs, n, deq);
    for (int d = 0; d < 3; d++) {
        clbnb_dtype od = c->all_out ? float_dtypes[d] : c->dtype;
        if (!c->all_out && d > 0) break;
        size_t oes = clbnb_dtype_size(od);
        cl_mem om = test_buffer(ctx, (c->o_off + n) * oes + GUARD);
        clbnb_vector ov = clbnb_vector_make(om, c->o_off * oes, n, od);
        clbnb_absmax plain = clbnb_absmax_plain(&av);
        TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, type, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        test_floats_to_dtype(deq, want_o, n, od);
        char t2[200];
        snprintf(t2, sizeof t2, "%s out=%s", tag, clbnb_dtype_name(od));
        check_region(ctx, om, c->o_off * oes, want_o, n, oes, od, "dequant", t2);
        clReleaseMemObject(om);
    }

    if (c->nested) {
        /* compress the device absmax; compare with the reference; nested dequant and decompress */
        size_t bs2 = 256, nb2 = clbnb_blocks_count(nb, bs2);
        uint8_t *want_q = malloc(nb);
        float *want_a2 = malloc(nb2 * 4), *scratch = malloc(nb * 4), want_off, *rec = malloc(nb * 4);
        ref_compress(want_a, nb, bs2, want_q, want_a2, &want_off, scratch);
        ref_decompress(want_q, want_a2, clbnb_code_dynamic(), want_off, bs2, nb, rec);
        cl_mem qm = test_buffer(ctx, 3 + nb + GUARD), a2m = test_buffer(ctx, 4 + nb2 * 4 + GUARD),
               offm = test_buffer(ctx, 8 + GUARD);
        clbnb_vector qv = clbnb_vector_make(qm, 3, nb, CLBNB_DTYPE_U8),
                     a2v = clbnb_vector_make(a2m, 4, nb2, CLBNB_DTYPE_F32),
                     offv = clbnb_vector_make(offm, 4, 1, CLBNB_DTYPE_F32);
        TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, bs2, &qv, &a2v, &offv, 0, NULL, NULL), CLBNB_SUCCESS);
        check_region(ctx, offm, 4, &want_off, 1, 4, CLBNB_DTYPE_F32, "offset", tag);
        check_region(ctx, qm, 3, want_q, nb, 1, -1, "qabsmax", tag);
        check_region(ctx, a2m, 4, want_a2, nb2, 4, CLBNB_DTYPE_F32, "absmax2", tag);
        clbnb_absmax nest = {qv, a2v, {NULL, 0, 0, CLBNB_DTYPE_F32}, offv, bs2};
        cl_mem rm = test_buffer(ctx, nb * 4 + GUARD);
        clbnb_vector rv = clbnb_vector_make(rm, 0, nb, CLBNB_DTYPE_F32);
        TEST_STATUS(clbnb_absmax_decompress(ctx, q, &nest, &rv, 0, NULL, NULL), CLBNB_SUCCESS);
        check_region(ctx, rm, 0, rec, nb, 4, CLBNB_DTYPE_F32, "decompress", tag);
        ref_dequantize_4bit(want_p, rec, c->fp4, bs, n, deq);
        clbnb_dtype od = c->dtype;
        size_t oes = clbnb_dtype_size(od);
        cl_mem om = test_buffer(ctx, (c->o_off + n) * oes + GUARD);
        clbnb_vector ov = clbnb_vector_make(om, c->o_off * oes, n, od);
        TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &nest, type, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        test_floats_to_dtype(deq, want_o, n, od);
        check_region(ctx, om, c->o_off * oes, want_o, n, oes, od, "nested dequant", tag);
        clReleaseMemObject(om);
        clReleaseMemObject(rm);
        clReleaseMemObject(qm);
        clReleaseMemObject(a2m);
        clReleaseMemObject(offm);
        free(want_q);
        free(want_a2);
        free(scratch);
        free(rec);
    }
    clReleaseMemObject(xm);
    clReleaseMemObject(pm);
    clReleaseMemObject(am);
    free(x);
    free(xr);
    free(xb);
    free(want_p);
    free(want_a);
    free(deq);
    free(want_o);
}

/* spec 8.2: mean abs / rel error of quantize -> dequantize on randn 1024x1024 below mean + 7 std */
static void accuracy(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    static const double bars[8][4][2] = {
        /* fp4 abs, fp4 rel, nf4 abs, nf4 rel (mean, std) for bs 32..4096 */
        {{0.088925, 0.000091}, {0.242443, 0.000330}, {0.067746, 0.000069}, {0.189726, 0.000304}},
        {{0.096543, 0.000111}, {0.260125, 0.000379}, {0.072798, 0.000074}, {0.203339, 0.000340}},
        {{0.102969, 0.000134}, {0.275817, 0.000433}, {0.076831, 0.000091}, {0.215237, 0.000391}},
        {{0.108684, 0.000182}, {0.289831, 0.000497}, {0.080337, 0.000102}, {0.226105, 0.000398}},
        {{0.114115, 0.000234}, {0.302881, 0.000583}, {0.083547, 0.000143}, {0.236079, 0.000544}},
        {{0.119333, 0.000320}, {0.315000, 0.000757}, {0.086610, 0.000187}, {0.245370, 0.000600}},
        {{0.124556, 0.000455}, {0.326607, 0.000955}, {0.089592, 0.000251}, {0.254163, 0.000747}},
        {{0.129536, 0.000612}, {0.337169, 0.001239}, {0.092547, 0.000360}, {0.262473, 0.000999}}};
    const size_t n = 1024 * 1024;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng);
    cl_mem xm = test_buffer_from(ctx, x, n * 4), pm = test_buffer(ctx, n / 2), am = test_buffer(ctx, n / 32 * 4),
           om = test_buffer(ctx, n * 4);
    clbnb_vector xv = clbnb_vector_make(xm, 0, n, CLBNB_DTYPE_F32),
                 pv = clbnb_vector_make(pm, 0, n / 2, CLBNB_DTYPE_U8),
                 ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F32);
    for (int fp4 = 0; fp4 < 2; fp4++) {
        for (int b = 0; b < 8; b++) {
            size_t bs = (size_t)32 << b;
            clbnb_vector av = clbnb_vector_make(am, 0, n / bs, CLBNB_DTYPE_F32);
            clbnb_absmax plain = clbnb_absmax_plain(&av);
            clbnb_quant_type t = fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4;
            TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, t, bs, &pv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
            TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, t, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
            test_download(ctx, om, 0, y, n * 4);
            double abs_err = 0, rel_err = 0;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)x[i] - (double)y[i]);
                abs_err += d;
                rel_err += d / (fabs((double)x[i]) + 1e-8);
            }
            abs_err /= (double)n;
            rel_err /= (double)n;
            const double(*bar)[2] = bars[b] + (fp4 ? 0 : 2);
            double abs_bar = bar[0][0] + 7 * bar[0][1], rel_bar = bar[1][0] + 7 * bar[1][1];
            TEST_CHECK(abs_err < abs_bar && rel_err < rel_bar,
                       "accuracy %s bs=%zu: abs %.6f (< %.6f) rel %.6f (< %.6f)", fp4 ? "fp4" : "nf4", bs, abs_err,
                       abs_bar, rel_err, rel_bar);
        }
    }
    clReleaseMemObject(xm);
    clReleaseMemObject(pm);
    clReleaseMemObject(am);
    clReleaseMemObject(om);
    free(x);
    free(y);
}

static void validation(clbnb_context *ctx, cl_command_queue q) {
    const size_t n = 100;
    cl_mem xm = test_buffer(ctx, n * 4), pm = test_buffer(ctx, 64), am = test_buffer(ctx, 64),
           om = test_buffer(ctx, n * 4);
    clbnb_vector xv = clbnb_vector_make(xm, 0, n, CLBNB_DTYPE_F32), pv = clbnb_vector_make(pm, 0, 50, CLBNB_DTYPE_U8),
                 av = clbnb_vector_make(am, 0, 4, CLBNB_DTYPE_F32), ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F32);
    clbnb_vector bad;
    const clbnb_quant_type nf4 = CLBNB_QUANT_NF4;
    TEST_STATUS(clbnb_quantize_4bit(NULL, q, &xv, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_4bit(ctx, NULL, &xv, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, NULL, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, NULL, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &pv, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, CLBNB_QUANT_BLOCKWISE8, 32, &pv, &av, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_QUANT_TYPE);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, (clbnb_quant_type)7, 32, &pv, &av, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_QUANT_TYPE);
    const size_t bad_bs[] = {0, 16, 48, 8192, 33};
    for (size_t i = 0; i < 5; i++)
        TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, bad_bs[i], &pv, &av, 0, NULL, NULL),
                    CLBNB_ERROR_INVALID_BLOCKSIZE);
    bad = xv, bad.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &bad, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = pv, bad.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &bad, &av, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = av, bad.dtype = CLBNB_DTYPE_F16;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &pv, &bad, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = xv, bad.n = 0;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &bad, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = pv, bad.n = 49;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &bad, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = av, bad.n = 3;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &pv, &bad, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = xv, bad.n = 101;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &bad, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = pv, bad.offset = 20;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &bad, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = xv, bad.n = SIZE_MAX / 2;
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &bad, nf4, 32, &pv, &av, 0, NULL, NULL), CLBNB_ERROR_SIZE_OVERFLOW);
    TEST_STATUS(clbnb_quantize_4bit(ctx, q, &xv, nf4, 32, &pv, &av, 1, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_quantize_4bit(ctx, test_queue(other), &xv, nf4, 32, &pv, &av, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    /* dequantize */
    clbnb_absmax plain = clbnb_absmax_plain(&av);
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, NULL, nf4, 32, &ov, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, nf4, 32, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, nf4, 8192, &ov, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, CLBNB_QUANT_BLOCKWISE8, 32, &ov, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_QUANT_TYPE);
    bad = ov, bad.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, nf4, 32, &bad, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = ov, bad.n = 102;
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &plain, nf4, 32, &bad, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    clbnb_absmax badam = plain;
    badam.absmax.n = 3;
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &badam, nf4, 32, &ov, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    /* nested descriptor with a u8 absmax but a bad blocksize2 / missing offset */
    clbnb_absmax nest = {clbnb_vector_make(pm, 0, 4, CLBNB_DTYPE_U8),
                         clbnb_vector_make(am, 0, 1, CLBNB_DTYPE_F32),
                         {NULL, 0, 0, CLBNB_DTYPE_F32},
                         clbnb_vector_make(am, 4, 1, CLBNB_DTYPE_F32),
                         100};
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &nest, nf4, 32, &ov, 0, NULL, NULL), CLBNB_ERROR_INVALID_BLOCKSIZE);
    nest.blocksize2 = 256;
    nest.offset.mem = NULL;
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &nest, nf4, 32, &ov, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    nest.offset.mem = am;
    nest.absmax.dtype = CLBNB_DTYPE_F32;
    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &pv, &nest, nf4, 32, &ov, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_dequantize_4bit(ctx, test_queue(other), &pv, &plain, nf4, 32, &ov, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    clbnb_context_free(other);
    /* nothing was written by any failed call */
    unsigned char buf[400];
    size_t touched = 0;
    test_download(ctx, pm, 0, buf, 64);
    for (int i = 0; i < 64; i++)
        touched += buf[i] != TEST_POISON;
    test_download(ctx, am, 0, buf, 64);
    for (int i = 0; i < 64; i++)
        touched += buf[i] != TEST_POISON;
    test_download(ctx, om, 0, buf, 400);
    for (int i = 0; i < 400; i++)
        touched += buf[i] != TEST_POISON;
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    clReleaseMemObject(xm);
    clReleaseMemObject(pm);
    clReleaseMemObject(am);
    clReleaseMemObject(om);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    TEST_CHECK(clbnb_blocks_count(100, 32) == 4 && clbnb_blocks_count(96, 32) == 3 && clbnb_blocks_count(1, 4096) == 1,
               "blocks_count");
    TEST_CHECK(clbnb_packed_4bit_bytes(1) == 1 && clbnb_packed_4bit_bytes(6) == 3 && clbnb_packed_4bit_bytes(7) == 4,
               "packed_4bit_bytes");
    TEST_CHECK(strcmp(clbnb_quant_type_name(CLBNB_QUANT_NF4), "nf4") == 0 &&
                   strcmp(clbnb_quant_type_name(CLBNB_QUANT_FP4), "fp4") == 0,
               "quant_type_name");
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    const size_t sizes[] = {1, 2, 7, 33, 64, 100, 255, 1000, 4097, 6600, 20001};
    for (int p = 0; p < 2; p++) {
        if (clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, paths[p]) != CLBNB_SUCCESS) {
            TEST_CHECK(0, "path %s not available", clbnb_path_name(paths[p]));
            continue;
        }
        const char *pn = clbnb_path_name(paths[p]);
        for (int fp4 = 0; fp4 < 2; fp4++)
            for (int d = 0; d < 3; d++)
                for (int b = 0; b < 8; b++)
                    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                        size_t bs = (size_t)32 << b, n = sizes[si];
                        if (n > 40 * bs + 7 && si % 2) continue; /* keep the sweep short */
                        case_opts c = {fp4, float_dtypes[d], bs, n, 0, 0, 0, 0, 1, 0, 0};
                        int r = (int)(test_rng_next(&rng) % 4);
                        if (r == 1) c.x_off = 1, c.p_off = 1, c.a_off = 1, c.o_off = 3;
                        if (r == 2) c.x_off = 8, c.p_off = 4, c.a_off = 4, c.o_off = 8;
                        c.nested = si % 3 == 0 || n > 5000;
                        c.all_out = si % 2 == 0;
                        run_case(ctx, q, &rng, &c, pn);
                    }
        /* large: ~1M elements (tail), a few configurations */
        for (int k = 0; k < 3; k++) {
            case_opts c = {k == 1, float_dtypes[k], (size_t)64 << (2 * k), (1u << 20) + 77, 0, 0, 0, 0, 1, 1, 1};
            run_case(ctx, q, &rng, &c, pn);
        }
    }
    clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, CLBNB_PATH_CPU);
    accuracy(ctx, q, &rng);
    validation(ctx, q);
    clbnb_context_free(ctx);
    return test_finish();
}
