/* test_layers_embedding.c: Embedding (padding_idx), StableEmbedding, and block-wise 8-bit / NF4 / FP4
 * table embeddings: plain gathers bit-exact, quantized gathers bit-exact against the host
 * dequantization of clbnb_quantize_blockwise / clbnb_quantize_4bit of the same table, bitsandbytes'
 * test_embedding_error bars (atol 0.05 for 8-bit, 0.2 for 4-bit on rand [0, 1) weights), LayerNorm
 * against a double-precision reference; out-of-range indices give zero rows; validation. */
#include "layers_test_util.h"

static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, size_t num, size_t dim, clbnb_dtype dt,
                     clbnb_dtype odt, clbnb_embedding_kind kind, size_t bs) {
    const size_t n = 29;
    const long pad = (long)(num / 2);
    float *t = malloc(num * dim * 4), *g = malloc(dim * 4), *be = malloc(dim * 4);
    fill_uniform(rng, t, num * dim, 0.0f, 1.0f);
    fill_uniform(rng, g, dim, 0.5f, 1.5f);
    fill_uniform(rng, be, dim, -0.5f, 0.5f);
    tmat T = tm_upload(ctx, t, num, dim, dt, 3);
    for (size_t j = 0; j < dim; j++)
        t[(size_t)pad * dim + j] = 0.0f;
    int32_t idx[29];
    for (size_t i = 0; i < n; i++)
        idx[i] = (int32_t)(test_rng_next(rng) % num);
    idx[0] = (int32_t)pad, idx[1] = -1, idx[2] = (int32_t)num, idx[3] = (int32_t)(num - 1), idx[4] = 0;
    cl_mem im = test_buffer(ctx, (n + 2) * 4);
    test_upload(ctx, im, 8, idx, n * 4);
    clbnb_vector iv = clbnb_vector_make(im, 8, n, CLBNB_DTYPE_I32);
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, kind, pad, bs, g, be), CLBNB_SUCCESS);
    if (!l) return;
    tmat O = tm_alloc(ctx, n, dim, odt, 2);
    TEST_STATUS(clbnb_embedding_forward(l, q, &iv, &O.m, 0, NULL, NULL), CLBNB_SUCCESS);
    float *out = malloc(n * dim * 4), *want = malloc(num * dim * 4);
    size_t touched = tm_download(ctx, &O, out);
    /* the expected table values */
    if (kind == CLBNB_EMBEDDING_PLAIN || kind == CLBNB_EMBEDDING_STABLE) {
        memcpy(want, t, num * dim * 4);
    } else {
        const int q8 = kind == CLBNB_EMBEDDING_BLOCKWISE8;
        tmat F = tm_upload(ctx, t, num * dim, 1, dt, 0);
        clbnb_vector x = clbnb_vector_make(F.m.mem, F.m.offset, num * dim, dt);
        size_t nb = clbnb_blocks_count(num * dim, bs), db = q8 ? num * dim : clbnb_packed_4bit_bytes(num * dim);
        cl_mem am = test_buffer(ctx, nb * 4), dm = test_buffer(ctx, db);
        clbnb_vector amv = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32),
                     dv = clbnb_vector_make(dm, 0, db, CLBNB_DTYPE_U8);
        clbnb_quant_type ty = kind == CLBNB_EMBEDDING_4BIT_NF4 ? CLBNB_QUANT_NF4 : CLBNB_QUANT_FP4;
        TEST_STATUS(q8 ? clbnb_quantize_blockwise(ctx, q, &x, NULL, bs, &dv, &amv, 0, NULL, NULL)
                       : clbnb_quantize_4bit(ctx, q, &x, ty, bs, &dv, &amv, 0, NULL, NULL),
                    CLBNB_SUCCESS);
        float *a = malloc(nb * 4);
        unsigned char *d = malloc(db);
        test_download(ctx, am, 0, a, nb * 4);
        test_download(ctx, dm, 0, d, db);
        const float *code = q8 ? clbnb_code_dynamic() : ty == CLBNB_QUANT_NF4 ? clbnb_code_nf4() : clbnb_code_fp4();
        for (size_t i = 0; i < num * dim; i++) {
            unsigned c = q8 ? d[i] : (i & 1) ? (d[i / 2] & 15u) : (d[i / 2] >> 4);
            want[i] = code[c] * a[i / bs];
        }
        /* bitsandbytes' test_embedding_error bar */
        double atol = q8 ? 0.05 : 0.2, worst = 0;
        for (size_t i = 0; i < num * dim; i++)
            worst = fmax(worst, fabs(want[i] - t[i]));
        TEST_CHECK(worst <= atol, "embedding kind %d: max |deq - w| %.4f > %.2f", (int)kind, worst, atol);
        free(a), free(d);
        clReleaseMemObject(am), clReleaseMemObject(dm);
        tm_free(&F);
    }
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        int valid = idx[i] >= 0 && (size_t)idx[i] < num;
        const float *row = valid ? want + (size_t)idx[i] * dim : NULL;
        double mean = 0, var = 0;
        if (kind == CLBNB_EMBEDDING_STABLE && valid) {
            for (size_t j = 0; j < dim; j++)
                mean += row[j];
            mean /= (double)dim;
            for (size_t j = 0; j < dim; j++)
                var += (row[j] - mean) * (row[j] - mean);
            var /= (double)dim;
        }
        for (size_t j = 0; j < dim; j++) {
            float got = out[i * dim + j];
            int ok;
            if (!valid) {
                ok = got == 0.0f;
            } else if (kind == CLBNB_EMBEDDING_STABLE) {
                double r = (row[j] - mean) / sqrt(var + 1e-5) * test_round_to_dtype(g[j], CLBNB_DTYPE_F32) + be[j];
                ok = fabs(got - r) <= dtype_ulp(r, odt) + 1e-4 * (1.0 + fabs(r));
            } else {
                ok = test_float_bits(got) == test_float_bits(test_round_to_dtype(row[j], odt));
            }
            if (!ok && !bad++) first = i * dim + j;
        }
    }
    TEST_CHECK(bad == 0 && touched == 0,
               "embedding kind %d %zux%zu %s->%s bs %zu: %zu wrong (first %zu: %g), %zu touched", (int)kind, num, dim,
               dt_name(dt), dt_name(odt), bs, bad, first, out[first], touched);
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&O);
    clReleaseMemObject(im);
    free(t), free(g), free(be), free(out), free(want);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const clbnb_dtype dts[3] = {CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32};
    for (int d = 0; d < 3; d++)
        for (int k = 0; k <= CLBNB_EMBEDDING_4BIT_FP4; k++) {
            size_t bs = k == CLBNB_EMBEDDING_BLOCKWISE8 ? 256 : 64;
            run_case(ctx, q, &rng, 37, 128, dts[d], dts[d], (clbnb_embedding_kind)k, bs);
            run_case(ctx, q, &rng, 11, 83, dts[d], dts[(d + 1) % 3], (clbnb_embedding_kind)k, bs);
            run_case(ctx, q, &rng, 2, 1, dts[d], dts[d], (clbnb_embedding_kind)k, k >= 3 ? 32 : 16);
        }
    /* validation */
    float t[12];
    fill_uniform(&rng, t, 12, 0, 1);
    tmat T = tm_upload(ctx, t, 3, 4, CLBNB_DTYPE_F32, 0);
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_PLAIN, 3, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_4BIT_NF4, -1, 48, NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_PLAIN, -1, 0, NULL, NULL), CLBNB_SUCCESS);
    if (l) {
        int32_t idx[2] = {0, 2};
        cl_mem im = test_buffer_from(ctx, idx, 8);
        clbnb_vector iv = clbnb_vector_make(im, 0, 2, CLBNB_DTYPE_I32), fv = iv;
        fv.dtype = CLBNB_DTYPE_F32;
        tmat O = tm_alloc(ctx, 2, 4, CLBNB_DTYPE_F32, 0);
        clbnb_matrix bad = O.m;
        bad.cols = 3;
        TEST_STATUS(clbnb_embedding_forward(l, q, &iv, &bad, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
        TEST_STATUS(clbnb_embedding_forward(l, q, &fv, &O.m, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        TEST_STATUS(clbnb_embedding_forward(l, q, NULL, &O.m, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_CHECK(tm_untouched(ctx, &O), "failed embedding calls wrote nothing");
        tm_free(&O);
        clReleaseMemObject(im);
        clbnb_embedding_free(l);
    }
    tm_free(&T);
    clbnb_context_free(ctx);
    return test_finish();
}
