/* test_quant_state.c: the QuantState API (spec 4.1): init / data_bytes / quantize_state /
 * dequantize_state / sync_offset / free for NF4, FP4 and 8-bit, plain and nested, against the C
 * reference (codes, absmax, nested statistics and dequantized values bit for bit), both paths;
 * argument validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_quant_blockwise_ref.h"

static void run(clbnb_context *ctx, cl_command_queue q, test_rng *rng, clbnb_quant_type type, size_t bs, int nested,
                clbnb_dtype dt, int ndim, const size_t *shape, const char *path) {
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    char tag[128];
    snprintf(tag, sizeof tag, "[%s %s bs=%zu nested=%d %s n=%zu]", path, clbnb_quant_type_name(type), bs, nested,
             clbnb_dtype_name(dt), n);
    clbnb_quant_state *qs = NULL;
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, type, bs, dt, ndim, shape, nested), CLBNB_SUCCESS);
    if (!qs) return;
    int is8 = type == CLBNB_QUANT_BLOCKWISE8, fp4 = type == CLBNB_QUANT_FP4;
    size_t nb = clbnb_blocks_count(n, bs), db = is8 ? n : clbnb_packed_4bit_bytes(n);
    TEST_CHECK(qs->numel == n && qs->n_blocks == nb && clbnb_quant_state_data_bytes(qs) == db && qs->nested == nested,
               "%s state fields", tag);
    TEST_CHECK(!nested || qs->nested_blocksize == (is8 ? bs : 256), "%s nested_blocksize %zu", tag,
               qs->nested_blocksize);
    size_t es = clbnb_dtype_size(dt);
    float *x = malloc(n * 4), *xr = malloc(n * 4), *am = malloc(nb * 4), *deq = malloc(n * 4);
    unsigned char *xb = malloc(n * es), *want = malloc(db), *wo = malloc(n * 4), *got = malloc(n * 4 > db ? n * 4 : db);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng) * 2.5f;
    test_floats_to_dtype(x, xb, n, dt);
    test_dtype_to_floats(xb, xr, n, dt);
    if (is8)
        ref_quantize_8bit(xr, n, clbnb_code_dynamic(), bs, want, am);
    else
        ref_quantize_4bit(xr, n, fp4, bs, want, am);
    cl_mem xm = test_buffer_from(ctx, xb, n * es), dm = test_buffer(ctx, db);
    clbnb_vector xv = clbnb_vector_make(xm, 0, n, dt), dv = clbnb_vector_make(dm, 0, db, CLBNB_DTYPE_U8);
    TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, qs, &dv, 0, NULL, NULL), CLBNB_SUCCESS);
    test_download(ctx, dm, 0, got, db);
    TEST_CHECK(memcmp(got, want, db) == 0, "%s data", tag);
    float *use_am = am, *rec = NULL;
    if (nested) {
        size_t bs2 = qs->nested_blocksize, nb2 = clbnb_blocks_count(nb, bs2);
        uint8_t *wq = malloc(nb);
        float *wa2 = malloc(nb2 * 4), *scr = malloc(nb * 4), woff;
        rec = malloc(nb * 4);
        ref_compress(am, nb, bs2, wq, wa2, &woff, scr);
        ref_decompress(wq, wa2, clbnb_code_dynamic(), woff, bs2, nb, rec);
        TEST_STATUS(clbnb_quant_state_sync_offset(qs, q), CLBNB_SUCCESS);
        TEST_CHECK(qs->offset_valid && test_float_bits(qs->offset) == test_float_bits(woff), "%s offset %g vs %g", tag,
                   qs->offset, woff);
        test_download(ctx, qs->absmax, 0, got, nb);
        TEST_CHECK(memcmp(got, wq, nb) == 0, "%s nested absmax u8", tag);
        test_download(ctx, qs->nested_absmax, 0, got, nb2 * 4);
        TEST_CHECK(memcmp(got, wa2, nb2 * 4) == 0, "%s nested absmax2", tag);
        use_am = rec;
        free(wq), free(wa2), free(scr);
    } else {
        test_download(ctx, qs->absmax, 0, got, nb * 4);
        TEST_CHECK(memcmp(got, am, nb * 4) == 0, "%s absmax", tag);
    }
    if (is8)
        ref_dequantize_8bit(want, use_am, clbnb_code_dynamic(), bs, n, deq);
    else
        ref_dequantize_4bit(want, use_am, fp4, bs, n, deq);
    for (int d = 0; d < 3; d++) {
        clbnb_dtype od = float_dtypes[d];
        size_t oes = clbnb_dtype_size(od);
        cl_mem om = test_buffer(ctx, n * oes);
        clbnb_vector ov = clbnb_vector_make(om, 0, n, od);
        TEST_STATUS(clbnb_dequantize_state(ctx, q, &dv, qs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        test_floats_to_dtype(deq, wo, n, od);
        test_download(ctx, om, 0, got, n * oes);
        size_t bad = ref_count_diff(got, wo, n, oes, od);
        TEST_CHECK(bad == 0, "%s dequant to %s: %zu of %zu differ", tag, clbnb_dtype_name(od), bad, n);
        clReleaseMemObject(om);
    }
    /* dequantization piece by piece (clbnb_dequantize_state_range): pieces of 1-3 units (blocksize,
     * times the nested blocksize when nested), each written at its place in one poisoned buffer */
    {
        const size_t unit = bs * (nested ? qs->nested_blocksize : 1), oes = clbnb_dtype_size(dt);
        cl_mem om = test_buffer(ctx, n * oes + GUARD);
        size_t pieces = 0;
        for (size_t first = 0; first < n; pieces++) {
            size_t count = unit * (1 + test_rng_next(rng) % 3);
            if (count > n - first) count = n - first;
            clbnb_vector ov = clbnb_vector_make(om, first * oes, count, dt);
            TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, first, count, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
            first += count;
        }
        test_floats_to_dtype(deq, wo, n, dt);
        test_download(ctx, om, 0, got, n * oes);
        size_t diff = ref_count_diff(got, wo, n, oes, dt);
        TEST_CHECK(diff == 0, "%s dequant in %zu pieces: %zu of %zu differ", tag, pieces, diff, n);
        unsigned char guard[GUARD];
        test_download(ctx, om, n * oes, guard, GUARD);
        size_t touched = 0;
        for (size_t i = 0; i < GUARD; i++)
            touched += guard[i] != TEST_POISON;
        TEST_CHECK(touched == 0, "%s pieces wrote %zu bytes past the tensor", tag, touched);
        /* bad ranges: nothing written */
        cl_mem pm = test_buffer(ctx, 64);
        clbnb_vector one = clbnb_vector_make(pm, 0, 1, CLBNB_DTYPE_F32);
        if (n > 1 && unit > 1)
            TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, 1, 1, &one, 0, NULL, NULL),
                        CLBNB_ERROR_INVALID_ARGUMENT);
        TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, 0, 0, &one, 0, NULL, NULL),
                    CLBNB_ERROR_INVALID_SHAPE);
        TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, 0, n + 1, &one, 0, NULL, NULL),
                    CLBNB_ERROR_INVALID_SHAPE);
        TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, n, 1, &one, 0, NULL, NULL),
                    CLBNB_ERROR_INVALID_SHAPE);
        if (n > 1)
            TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, qs, 0, 2, &one, 0, NULL, NULL),
                        CLBNB_ERROR_INVALID_SHAPE);
        TEST_STATUS(clbnb_dequantize_state_range(ctx, q, &dv, NULL, 0, 1, &one, 0, NULL, NULL),
                    CLBNB_ERROR_NULL_ARGUMENT);
        unsigned char pb[64];
        test_download(ctx, pm, 0, pb, 64);
        touched = 0;
        for (size_t i = 0; i < 64; i++)
            touched += pb[i] != TEST_POISON;
        TEST_CHECK(touched == 0, "%s bad ranges wrote %zu bytes", tag, touched);
        clReleaseMemObject(pm);
        clReleaseMemObject(om);
    }
    /* mismatches */
    clbnb_vector bad = xv;
    bad.n = n - 1 ? n - 1 : 2;
    TEST_STATUS(clbnb_quantize_state(ctx, q, &bad, qs, &dv, 0, NULL, NULL), CLBNB_ERROR_QUANT_STATE_MISMATCH);
    bad = xv, bad.dtype = dt == CLBNB_DTYPE_F32 ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32;
    if (dt != CLBNB_DTYPE_F32)
        TEST_STATUS(clbnb_quantize_state(ctx, q, &bad, qs, &dv, 0, NULL, NULL), CLBNB_ERROR_QUANT_STATE_MISMATCH);
    bad = dv, bad.n = db - 1;
    if (db > 1) TEST_STATUS(clbnb_dequantize_state(ctx, q, &bad, qs, &xv, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    if (nested) {
        float keep = qs->offset;
        qs->offset = NAN;
        TEST_STATUS(clbnb_dequantize_state(ctx, q, &dv, qs, &xv, 0, NULL, NULL), CLBNB_ERROR_NON_FINITE);
        qs->offset = keep;
    } else {
        TEST_STATUS(clbnb_quant_state_sync_offset(qs, q), CLBNB_ERROR_INVALID_ARGUMENT);
    }
    clReleaseMemObject(xm), clReleaseMemObject(dm);
    clbnb_quant_state_free(qs);
    free(x), free(xr), free(am), free(deq), free(xb), free(want), free(wo), free(got), free(rec);
}

static void validation(clbnb_context *ctx, cl_command_queue q) {
    clbnb_quant_state *qs = (clbnb_quant_state *)1;
    size_t shape[2] = {10, 20}, zero[2] = {10, 0}, huge[2] = {SIZE_MAX / 2, 4};
    TEST_STATUS(clbnb_quant_state_init(NULL, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quant_state_init(&qs, NULL, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_CHECK(qs == NULL, "*out cleared on error");
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, NULL, 0),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, (clbnb_quant_type)9, 64, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_INVALID_QUANT_TYPE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 16, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_FP4, 8192, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_BLOCKWISE8, 100, CLBNB_DTYPE_F16, 2, shape, 0),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_I8, 2, shape, 0),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 0, shape, 0),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 9, shape, 0),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, zero, 0),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, huge, 0),
                CLBNB_ERROR_SIZE_OVERFLOW);
    TEST_STATUS(clbnb_quant_state_sync_offset(NULL, q), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_CHECK(clbnb_quant_state_data_bytes(NULL) == 0, "data_bytes(NULL)");
    clbnb_quant_state_free(NULL);
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, shape, 1), CLBNB_SUCCESS);
    cl_mem m = test_buffer(ctx, 400);
    clbnb_vector xv = clbnb_vector_make(m, 0, 200, CLBNB_DTYPE_F16), dv = clbnb_vector_make(m, 0, 100, CLBNB_DTYPE_U8);
    TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, NULL, &dv, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, qs, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_dequantize_state(ctx, q, &dv, qs, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_vector ov = clbnb_vector_make(m, 0, 200, CLBNB_DTYPE_I32);
    TEST_STATUS(clbnb_dequantize_state(ctx, q, &dv, qs, &ov, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_quantize_state(ctx, test_queue(other), &xv, qs, &dv, 0, NULL, NULL), CLBNB_ERROR_WRONG_CONTEXT);
    TEST_STATUS(clbnb_quant_state_sync_offset(qs, test_queue(other)), CLBNB_ERROR_WRONG_CONTEXT);
    clbnb_context_free(other);
    unsigned char buf[400];
    size_t touched = 0;
    test_download(ctx, m, 0, buf, 400);
    for (int i = 0; i < 400; i++)
        touched += buf[i] != TEST_POISON;
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    clReleaseMemObject(m);
    clbnb_quant_state_free(qs);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    const size_t s1[1] = {1}, s2[2] = {33, 200}, s3[3] = {7, 5, 301}, s4[2] = {512, 1030};
    for (int p = 0; p < 2; p++) {
        if (clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, paths[p]) != CLBNB_SUCCESS) continue;
        const char *pn = clbnb_path_name(paths[p]);
        for (int t = 0; t < 3; t++)
            for (int nested = 0; nested < 2; nested++)
                for (int d = 0; d < 3; d++) {
                    clbnb_quant_type type = (clbnb_quant_type)t;
                    size_t bs = t == 2 ? (d == 0 ? 256 : d == 1 ? 16 : 4096) : (size_t)(32 << (2 * d));
                    run(ctx, q, &rng, type, bs, nested, float_dtypes[d], 1, s1, pn);
                    run(ctx, q, &rng, type, bs, nested, float_dtypes[d], 2, s2, pn);
                    run(ctx, q, &rng, type, bs, nested, float_dtypes[d], 3, s3, pn);
                    if (d == 1) run(ctx, q, &rng, type, bs, nested, float_dtypes[d], 2, s4, pn);
                }
    }
    validation(ctx, q);
    clbnb_context_free(ctx);
    return test_finish();
}
