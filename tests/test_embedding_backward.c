/* test_embedding_backward.c: Embedding backward (dense table gradient) against a C reference:
 * repeated indices (summed in ascending position order, f32, rounded once), padding_idx (no
 * gradient), out-of-range indices (ignored), unindexed rows (zero), every float dtype of grad_out and
 * grad_table, padded lds, determinism, validation and errors of the other kinds. */
#include "layers_test_util.h"

static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, size_t num, size_t dim, size_t n, long pad,
                     clbnb_dtype gdt, clbnb_dtype tdt) {
    float *t = malloc(num * dim * 4), *g = malloc(n * dim * 4), *got = malloc(num * dim * 4),
          *got2 = malloc(num * dim * 4);
    fill_normal(rng, t, num * dim, 1.0f);
    fill_normal(rng, g, n * dim, 1.0f);
    tmat T = tm_upload(ctx, t, num, dim, CLBNB_DTYPE_F32, 1);
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_PLAIN, pad, 0, NULL, NULL), CLBNB_SUCCESS);
    int32_t *idx = malloc(n * 4);
    /* few distinct rows so that indices repeat */
    size_t span = num < 8 ? num : num / 3 + 1;
    for (size_t i = 0; i < n; i++)
        idx[i] = (int32_t)(test_rng_next(rng) % span);
    if (n > 4) idx[1] = (int32_t)num, idx[2] = -3; /* out of range */
    if (n > 6 && pad >= 0) idx[3] = (int32_t)pad, idx[5] = (int32_t)pad;
    if (n > 8) idx[n - 1] = (int32_t)(num - 1), idx[7] = (int32_t)(num - 1);
    cl_mem im = test_buffer(ctx, (n + 3) * 4);
    test_upload(ctx, im, 12, idx, n * 4);
    clbnb_vector iv = clbnb_vector_make(im, 12, n, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, g, n, dim, gdt, 2);
    tmat GT = tm_alloc(ctx, num, dim, tdt, 3);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_SUCCESS);
    size_t touched = tm_download(ctx, &GT, got);
    /* reference: per row, ascending positions, f32 sums, one rounding */
    size_t bad = 0, first = 0, nonzero = 0;
    for (size_t r = 0; r < num; r++)
        for (size_t c = 0; c < dim; c++) {
            float acc = 0.0f;
            if ((long)r != pad)
                for (size_t i = 0; i < n; i++)
                    if (idx[i] == (int32_t)r) acc += g[i * dim + c];
            float want = test_round_to_dtype(acc, tdt);
            if (test_float_bits(want) != test_float_bits(got[r * dim + c]) && !bad++) first = r * dim + c;
            nonzero += want != 0.0f;
        }
    TEST_CHECK(bad == 0 && touched == 0 && nonzero > 0,
               "embedding backward num %zu dim %zu n %zu pad %ld %s->%s: %zu differ (first %zu: %g), %zu bytes touched",
               num, dim, n, pad, clbnb_dtype_name(gdt), clbnb_dtype_name(tdt), bad, first, bad ? got[first] : 0.0,
               touched);
    /* deterministic: a second run gives the same bits */
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_SUCCESS);
    tm_download(ctx, &GT, got2);
    TEST_CHECK(memcmp(got, got2, num * dim * 4) == 0, "embedding backward not deterministic");
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&G), tm_free(&GT);
    clReleaseMemObject(im);
    free(t), free(g), free(got), free(got2), free(idx);
}

static void test_errors(clbnb_context *ctx, cl_command_queue q) {
    float t[64];
    for (int i = 0; i < 64; i++)
        t[i] = (float)i * 0.01f;
    tmat T = tm_upload(ctx, t, 8, 8, CLBNB_DTYPE_F32, 0);
    int32_t idx[4] = {1, 2, 2, 7};
    cl_mem im = test_buffer_from(ctx, idx, sizeof idx);
    clbnb_vector iv = clbnb_vector_make(im, 0, 4, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, t, 4, 8, CLBNB_DTYPE_F32, 0);
    tmat GT = tm_alloc(ctx, 8, 8, CLBNB_DTYPE_F32, 0);
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_PLAIN, -1, 0, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_backward(NULL, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_embedding_backward(l, q, NULL, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, NULL, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_matrix gs = G.m;
    gs.rows = 3;
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &gs, &GT.m, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    clbnb_matrix ts = GT.m;
    ts.rows = 7;
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &ts, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    clbnb_vector ivf = iv;
    ivf.dtype = CLBNB_DTYPE_F32;
    TEST_STATUS(clbnb_embedding_backward(l, q, &ivf, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    clbnb_matrix gi = G.m;
    gi.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &gi, &GT.m, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &G.m, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    clFinish(q);
    TEST_CHECK(tm_untouched(ctx, &GT), "grad_table written on error");
    clbnb_embedding_free(l);
    l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_STABLE, -1, 0, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_NOT_IMPLEMENTED);
    clbnb_embedding_free(l);
    l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_BLOCKWISE8, -1, 64, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&G), tm_free(&GT);
    clReleaseMemObject(im);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    static const clbnb_dtype dts[] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};
    run_case(ctx, q, &rng, 1, 1, 1, -1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32);
    run_case(ctx, q, &rng, 5, 3, 40, 2, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32);
    for (size_t a = 0; a < 3; a++)
        for (size_t b = 0; b < 3; b++)
            run_case(ctx, q, &rng, 37, 19, 101, (long)(a + b), dts[a], dts[b]);
    run_case(ctx, q, &rng, 1000, 64, 3000, 17, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32);
    run_case(ctx, q, &rng, 50, 130, 700, -1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32);
    test_errors(ctx, q);
    clbnb_context_free(ctx);
    return test_finish();
}
