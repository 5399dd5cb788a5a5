/* test_layers_int8.c: Linear8bitLt (LLM.int8 with outlier decomposition) and StandardLinear.
 *   - forward bit-exact against a CPU reference written from spec 5.1 / 5.4 / 5.5 (f16 cast,
 *     row-wise quantization with outliers, int32 sums, the CUDA epilogue, the outlier addmm), for
 *     f16 / bf16 / f32, thresholds 0 and 6, awkward shapes, both kernel paths;
 *   - bitsandbytes' bars: test_matmullt (64x32 x 48x32, 4 columns at 6.0) and test_linear_no_igemmlt;
 *   - grad_x (and grad_w / grad_bias with has_fp16_weights) against full-precision references;
 *   - CB/SCB of the layer, prequantized creation, the outlier pool, argument validation. */
#include "layers_test_util.h"

static const float C127 = 7.874015718698502e-3f;

static float epi_const(void) {
    uint32_t b = 0x38820610u;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Row-wise LLM.int8 quantization (spec 5.1) of already f16-rounded x. */
static void ref_rowwise(const float *x, size_t rows, size_t cols, float thr, int8_t *q, float *stats,
                        unsigned char *is_ocol) {
    memset(is_ocol, 0, cols);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            if (thr > 0 && fabsf(x[r * cols + c]) >= thr) is_ocol[c] = 1;
    for (size_t r = 0; r < rows; r++) {
        float m = 0;
        for (size_t c = 0; c < cols; c++) {
            float a = fabsf(x[r * cols + c]);
            if (thr > 0 && a >= thr) continue;
            if (a > m) m = a;
        }
        stats[r] = m;
        float f = 127.0f / m;
        for (size_t c = 0; c < cols; c++) {
            float v = x[r * cols + c];
            int8_t code = 0;
            if (!(thr > 0 && fabsf(v) >= thr) && m > 0) {
                float t = rintf(v * f);
                if (t > 127) t = 127;
                if (t < -128) t = -128;
                code = (int8_t)t;
            }
            q[r * cols + c] = code;
        }
    }
    if (rows > 1)
        for (size_t c = 0; c < cols; c++)
            if (is_ocol[c])
                for (size_t r = 0; r < rows; r++)
                    q[r * cols + c] = 0;
}

/* MatMul8bitLt forward reference: x in xdt (values rounded), cb/scb, bias (rounded) or NULL. */
static void ref_forward(const float *x, size_t m, size_t k, clbnb_dtype xdt, const int8_t *cb, const float *scb,
                        size_t n, const float *bias, float thr, clbnb_dtype odt, float *out) {
    float *xh = malloc(m * k * 4), *sca = malloc(m * 4);
    int8_t *ca = malloc(m * k);
    unsigned char *oc = malloc(k);
    for (size_t i = 0; i < m * k; i++)
        xh[i] = test_round_to_dtype(x[i], CLBNB_DTYPE_F16);
    ref_rowwise(xh, m, k, thr, ca, sca, oc);
    /* bitsandbytes adds subA @ subB only when there is an outlier column (int8_mixed_scaled_mm: `if subB is
     * not None`); adding a zero sum otherwise would turn an f16 -0 output into +0 */
    int any_outlier_col = 0;
    for (size_t t = 0; t < k; t++)
        any_outlier_col |= oc[t];
    const float ec = epi_const();
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            int32_t acc = 0;
            for (size_t t = 0; t < k; t++)
                acc += (int32_t)ca[i * k + t] * cb[j * k + t];
            float a = (float)acc * sca[i];
            a = a * scb[j];
            float v = test_round_to_dtype(fmaf(a, ec, bias ? bias[j] : 0.0f), odt);
            if (thr > 0 && any_outlier_col) {
                float s = 0;
                for (size_t t = 0; t < k; t++) {
                    if (!oc[t]) continue;
                    float w = (float)cb[j * k + t] * scb[j];
                    w = test_round_to_dtype(w * C127, xdt);
                    s += x[i * k + t] * w;
                }
                v = test_round_to_dtype(v + s, odt);
            }
            out[i * n + j] = v;
        }
    free(xh);
    free(sca);
    free(ca);
    free(oc);
}

static size_t li_outside, li_total, li_draws, li_draws_over_003;

/* nv_mma is an int8 GEMM path only: quantization then runs the generic kernels */
static void set_paths(clbnb_context *ctx, clbnb_path p) {
    clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, p == CLBNB_PATH_NV_MMA ? CLBNB_PATH_GENERIC : p);
    clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, p);
}

typedef struct l8case {
    size_t m, k, n;
    clbnb_dtype dt;
    float thr;
    int outlier_cols; /* columns set to +-6..8 (thr > 0) */
    int bias;
    int fp16w;
    int bnb_matmullt; /* apply test_matmullt's bars */
    int bnb_no_igemmlt;
    int sparse; /* outlier columns hold outliers in about a third of the rows (at least one), so the
                   row-wise codes of their other rows are not zero until the columns are zeroed */
} l8case;

static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const l8case *c, const char *path) {
    const size_t m = c->m, k = c->k, n = c->n;
    const clbnb_dtype dt = c->dt;
    float *w = malloc(n * k * 4), *x = malloc(m * k * 4), *b = malloc(n * 4), *g = malloc(m * n * 4);
    if (c->bnb_no_igemmlt) {
        float a = 1.0f / sqrtf((float)k);
        fill_uniform(rng, w, n * k, -a, a);
        fill_uniform(rng, b, n, -a, a);
    } else {
        fill_xavier(rng, w, n, k);
        fill_uniform(rng, b, n, -0.1f, 0.1f);
    }
    fill_normal(rng, x, m * k, 1.0f);
    for (int o = 0; o < c->outlier_cols; o++) {
        size_t col = (size_t)(test_rng_next(rng) % k), first = (size_t)(test_rng_next(rng) % m);
        for (size_t r = 0; r < m; r++)
            if (!c->sparse || r == first || test_rng_next(rng) % 3 == 0)
                x[r * k + col] = c->bnb_matmullt ? 6.0f
                                                 : (test_rng_uniform(rng) < 0.5f ? -1.0f : 1.0f) *
                                                       (6.0f + 2.0f * test_rng_uniform(rng));
    }
    fill_normal(rng, g, m * n, 1.0f);
    if (c->bnb_matmullt) {
        /* test_matmullt backpropagates mse_loss(out, target): G = 2 (out_fp - target) / numel */
        double *o = malloc(m * n * sizeof(double));
        float *w16r = malloc(n * k * 4);
        for (size_t i = 0; i < n * k; i++)
            w16r[i] = test_round_to_dtype(test_round_to_dtype(w[i], dt), CLBNB_DTYPE_F16);
        float *xr = malloc(m * k * 4);
        for (size_t i = 0; i < m * k; i++)
            xr[i] = test_round_to_dtype(x[i], dt);
        ref_linear(xr, w16r, NULL, o, m, n, k);
        for (size_t i = 0; i < m * n; i++)
            g[i] = (float)(2.0 * (o[i] - g[i]) / (double)(m * n));
        free(o);
        free(w16r);
        free(xr);
    }
    if (c->bnb_no_igemmlt)
        for (size_t i = 0; i < m * n; i++)
            g[i] /= (float)(m * n);
    tmat W = tm_upload(ctx, w, n, k, dt, 1);
    tmat X = tm_upload(ctx, x, m, k, dt, 2);
    tmat G = tm_upload(ctx, g, m, n, dt, 0);
    tvec B = tv_upload(ctx, b, n, dt);
    float *w16 = malloc(n * k * 4);
    for (size_t i = 0; i < n * k; i++)
        w16[i] = test_round_to_dtype(w[i], CLBNB_DTYPE_F16);

    clbnb_linear8_params p = clbnb_linear8_default_params();
    p.threshold = c->thr;
    p.has_fp16_weights = c->fp16w;
    p.pool_outliers = 1;
    clbnb_linear8 *layer = NULL;
    TEST_STATUS(clbnb_linear8_init(&layer, ctx, q, &W.m, c->bias ? &B.v : NULL, &p), CLBNB_SUCCESS);
    if (!layer) return;

    /* reference CB / SCB and the layer's */
    int8_t *cb = malloc(n * k), *cb_dev = malloc(n * k);
    float *scb = malloc(n * 4), *scb_dev = malloc(n * 4);
    unsigned char *dummy = malloc(k);
    ref_rowwise(w16, n, k, 0.0f, cb, scb, dummy);
    if (!c->fp16w) {
        clbnb_matrix cbm;
        clbnb_vector scbv;
        TEST_STATUS(clbnb_linear8_weights(layer, &cbm, &scbv), CLBNB_SUCCESS);
        test_download(ctx, cbm.mem, 0, cb_dev, n * k);
        test_download(ctx, scbv.mem, 0, scb_dev, n * 4);
        TEST_CHECK(memcmp(cb, cb_dev, n * k) == 0 && memcmp(scb, scb_dev, n * 4) == 0,
                   "[%s] CB/SCB of Linear8bitLt %zux%zu %s differ from int8_vectorwise_quant(W.half())", path, n, k,
                   dt_name(dt));
    }

    /* forward */
    tmat O = tm_alloc(ctx, m, n, dt, 3);
    TEST_STATUS(clbnb_linear8_forward(layer, q, &X.m, &O.m, 0, NULL, NULL), CLBNB_SUCCESS);
    float *out = malloc(m * n * 4), *want = malloc(m * n * 4);
    size_t touched = tm_download(ctx, &O, out);
    ref_forward(x, m, k, dt, cb, scb, n, c->bias ? b : NULL, c->thr, dt, want);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < m * n; i++)
        if (test_float_bits(out[i]) != test_float_bits(want[i])) {
            if (!bad) first = i;
            bad++;
        }
    TEST_CHECK(
        bad == 0 && touched == 0,
        "[%s] linear8 forward %zux%zux%zu %s thr %.1f outl %d fp16w %d: %zu/%zu not bit-exact (first %zu: %.8g vs "
        "%.8g), %zu bytes outside touched",
        path, m, k, n, dt_name(dt), c->thr, c->outlier_cols, c->fp16w, bad, m * n, first, out[first], want[first],
        touched);

    /* bitsandbytes' bars against the full-precision product with the (f16) weights */
    double *ref = malloc(m * n * sizeof(double));
    ref_linear(x, w16, c->bias ? b : NULL, ref, m, n, k);
    for (size_t i = 0; i < m * n; i++)
        ref[i] = test_round_to_dtype((float)ref[i], dt);
    if (c->bnb_matmullt) {
        double f1 = frac_not_close(out, ref, m * n, 0.01, 0.1), f2 = frac_not_close(out, ref, m * n, 0.035, 0.2);
        double lim = dt == CLBNB_DTYPE_F16 ? 0.0175 : 0.021;
        TEST_CHECK(f1 <= lim && f2 <= 0.001,
                   "[%s] test_matmullt %s thr %.0f: outside (0.01,0.1) %.4f (<= %.4f), "
                   "outside (0.035,0.2) %.4f (<= 0.001)",
                   path, dt_name(dt), c->thr, f1, lim, f2);
    }
    if (c->bnb_no_igemmlt) {
        double f1 = frac_not_close(out, ref, m * n, 0.02, 1e-5), f2 = frac_not_close(out, ref, m * n, 0.03, 1e-5);
        /* the 2.5e-4 fraction is a tail bound that 3 rows of one draw hit by chance (measured error std 0.005,
         * max ~0.02): accumulated over several draws and checked in main */
        li_outside += (size_t)(f1 * (double)(m * n) + 0.5);
        li_total += m * n;
        /* bitsandbytes asserts atol 0.03 on its one draw, a bar that draw misses about 1 time in 300
         * (simulated: 2e-7 of outputs, max error 0.035 over 600 draws), so it is counted over the 96
         * draws and checked in main. No output may ever be 2x past it. */
        li_draws++;
        if (f2 > 0.0) li_draws_over_003++;
        double f3 = frac_not_close(out, ref, m * n, 0.06, 1e-5);
        TEST_CHECK(f3 == 0.0, "[%s] test_linear_no_igemmlt: outside (atol 0.06) %.6f", path, f3);
    }

    /* backward */
    tmat GX = tm_alloc(ctx, m, k, dt, 1), GW = {0};
    tvec GB = tv_alloc(ctx, n, CLBNB_DTYPE_F32);
    if (c->fp16w) GW = tm_alloc(ctx, n, k, CLBNB_DTYPE_F32, 2);
    TEST_STATUS(clbnb_linear8_backward(layer, q, &X.m, &G.m, &GX.m, c->fp16w ? &GW.m : NULL, &GB.v, 0, NULL, NULL),
                CLBNB_SUCCESS);
    float *gx = malloc(m * k * 4), *wdq = malloc(n * k * 4);
    double *rgx = malloc(m * k * sizeof(double)), *asum = malloc(m * k * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        float s = scb[j] * C127;
        for (size_t t = 0; t < k; t++)
            wdq[j * k + t] = test_round_to_dtype((float)cb[j * k + t] * s, dt);
    }
    touched = tm_download(ctx, &GX, gx);
    ref_grad_x(g, wdq, rgx, asum, m, n, k);
    bad = count_not_close(gx, rgx, asum, m * k, dt, &first);
    TEST_CHECK(bad == 0 && touched == 0,
               "[%s] linear8 grad_x %zux%zux%zu %s: %zu off (first %zu: %g vs %g), %zu touched", path, m, k, n,
               dt_name(dt), bad, first, gx[first], rgx[first], touched);
    if (c->bnb_matmullt || c->bnb_no_igemmlt) {
        /* against the gradient of the unquantized product */
        ref_grad_x(g, w16, rgx, NULL, m, n, k);
        double atol = c->bnb_matmullt ? 0.015 : 0.01, rtol = c->bnb_matmullt ? 0.1 : 0.0;
        TEST_CHECK(frac_not_close(gx, rgx, m * k, atol, rtol) == 0.0, "[%s] bnb grad_A bound (atol %g rtol %g) %s",
                   path, atol, rtol, dt_name(dt));
    }
    float *gb = malloc(n * 4);
    double *rgb = malloc(n * sizeof(double)), *bsum = malloc(n * sizeof(double));
    touched = tv_download(ctx, &GB, gb);
    ref_colsum(g, rgb, bsum, m, n);
    bad = count_not_close(gb, rgb, bsum, n, CLBNB_DTYPE_F32, &first);
    TEST_CHECK(bad == 0 && touched == 0, "[%s] linear8 grad_bias: %zu off", path, bad);
    if (c->fp16w) {
        float *gw = malloc(n * k * 4);
        double *rgw = malloc(n * k * sizeof(double)), *wsum = malloc(n * k * sizeof(double));
        touched = tm_download(ctx, &GW, gw);
        ref_grad_w(g, x, rgw, wsum, m, n, k);
        bad = count_not_close(gw, rgw, wsum, n * k, CLBNB_DTYPE_F32, &first);
        TEST_CHECK(bad == 0 && touched == 0, "[%s] linear8 grad_w %zux%zux%zu %s: %zu off (first %zu: %g vs %g)", path,
                   m, k, n, dt_name(dt), bad, first, gw[first], rgw[first]);
        free(gw);
        free(rgw);
        free(wsum);
        tm_free(&GW);
    }

    /* outlier pool: exactly the outlier columns of this forward */
    if (c->thr > 0) {
        int32_t cols[64];
        size_t cnt = 0;
        TEST_STATUS(clbnb_linear8_outlier_pool(layer, q, cols, 64, &cnt), CLBNB_SUCCESS);
        float *xh = malloc(m * k * 4);
        for (size_t i = 0; i < m * k; i++)
            xh[i] = test_round_to_dtype(x[i], CLBNB_DTYPE_F16);
        size_t expect = 0, mismatch = 0, pos = 0;
        for (size_t t = 0; t < k; t++) {
            int o = 0;
            for (size_t r = 0; r < m; r++)
                o |= fabsf(xh[r * k + t]) >= c->thr;
            if (o) {
                expect++;
                if (pos >= cnt || cols[pos] != (int32_t)t) mismatch++;
                pos++;
            }
        }
        TEST_CHECK(cnt == expect && mismatch == 0, "[%s] outlier pool: %zu columns, expected %zu (%zu mismatches)",
                   path, cnt, expect, mismatch);
        free(xh);
        TEST_STATUS(clbnb_linear8_outlier_pool_reset(layer, q), CLBNB_SUCCESS);
        TEST_STATUS(clbnb_linear8_outlier_pool(layer, q, cols, 64, &cnt), CLBNB_SUCCESS);
        TEST_CHECK(cnt == 0, "pool reset");
    }

    /* prequantized creation gives the same bits */
    if (!c->fp16w) {
        int8_t *cbp = malloc(n * k + 16);
        memcpy(cbp + 16, cb, n * k);
        cl_mem cbm = test_buffer_from(ctx, cbp, n * k + 16), scbm = test_buffer_from(ctx, scb, n * 4);
        clbnb_matrix cbq = clbnb_matrix_make(cbm, 16, n, k, CLBNB_DTYPE_I8);
        clbnb_vector scbq = clbnb_vector_make(scbm, 0, n, CLBNB_DTYPE_F32);
        clbnb_linear8 *l2 = NULL;
        TEST_STATUS(clbnb_linear8_init_quantized(&l2, ctx, q, &cbq, &scbq, c->bias ? &B.v : NULL, &p), CLBNB_SUCCESS);
        clReleaseMemObject(cbm);
        clReleaseMemObject(scbm);
        if (l2) {
            test_poison(ctx, O.m.mem, O.bytes);
            TEST_STATUS(clbnb_linear8_forward(l2, q, &X.m, &O.m, 0, NULL, NULL), CLBNB_SUCCESS);
            float *out2 = malloc(m * n * 4);
            tm_download(ctx, &O, out2);
            TEST_CHECK(memcmp(out, out2, m * n * 4) == 0, "[%s] prequantized layer differs", path);
            free(out2);
            clbnb_linear8_free(l2);
        }
        free(cbp);
    }

    clbnb_linear8_free(layer);
    tm_free(&W);
    tm_free(&X);
    tm_free(&G);
    tm_free(&O);
    tm_free(&GX);
    tv_free(&B);
    tv_free(&GB);
    free(w);
    free(x);
    free(b);
    free(g);
    free(w16);
    free(cb);
    free(cb_dev);
    free(scb);
    free(scb_dev);
    free(dummy);
    free(out);
    free(want);
    free(ref);
    free(gx);
    free(wdq);
    free(rgx);
    free(asum);
    free(gb);
    free(rgb);
    free(bsum);
}

/* One layer, forward after forward with outlier columns that change between calls (some, none,
 * others; 1 row, where quantization compacts the columns in the same kernel, and 37 rows): the
 * outlier flags each call leaves behind must not leak into the next (the layer skips their fill). */
static void run_repeated_forward(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const char *path) {
    const size_t k = 300, n = 67, mmax = 37;
    const float thr = 6.0f;
    float *w = malloc(n * k * 4), *w16 = malloc(n * k * 4), *scb = malloc(n * 4), *x = malloc(mmax * k * 4);
    float *out = malloc(mmax * n * 4), *want = malloc(mmax * n * 4);
    int8_t *cb = malloc(n * k);
    unsigned char *dummy = malloc(k);
    fill_xavier(rng, w, n, k);
    for (size_t i = 0; i < n * k; i++)
        w16[i] = test_round_to_dtype(w[i], CLBNB_DTYPE_F16);
    ref_rowwise(w16, n, k, 0.0f, cb, scb, dummy);
    tmat W = tm_upload(ctx, w, n, k, CLBNB_DTYPE_F16, 0);
    clbnb_linear8_params p = clbnb_linear8_default_params();
    p.threshold = thr;
    clbnb_linear8 *layer = NULL;
    TEST_STATUS(clbnb_linear8_init(&layer, ctx, q, &W.m, NULL, &p), CLBNB_SUCCESS);
    static const size_t rows[] = {1, 1, 1, 37, 37, 1, 37};
    static const int outlier_cols[] = {2, 0, 3, 1, 0, 0, 5};
    for (size_t call = 0; layer && call < sizeof rows / sizeof rows[0]; call++) {
        const size_t m = rows[call];
        fill_normal(rng, x, m * k, 1.0f);
        for (int o = 0; o < outlier_cols[call]; o++) {
            const size_t col = (size_t)(test_rng_next(rng) % k);
            for (size_t r = 0; r < m; r++)
                x[r * k + col] = (test_rng_uniform(rng) < 0.5f ? -1.0f : 1.0f) * (6.0f + test_rng_uniform(rng));
        }
        tmat X = tm_upload(ctx, x, m, k, CLBNB_DTYPE_F16, 1);
        tmat O = tm_alloc(ctx, m, n, CLBNB_DTYPE_F16, 2);
        TEST_STATUS(clbnb_linear8_forward(layer, q, &X.m, &O.m, 0, NULL, NULL), CLBNB_SUCCESS);
        const size_t touched = tm_download(ctx, &O, out);
        ref_forward(x, m, k, CLBNB_DTYPE_F16, cb, scb, n, NULL, thr, CLBNB_DTYPE_F16, want);
        size_t bad = 0;
        for (size_t i = 0; i < m * n; i++)
            bad += test_float_bits(out[i]) != test_float_bits(want[i]);
        TEST_CHECK(bad == 0 && touched == 0,
                   "[%s] linear8 call %zu of one layer (%zu rows, %d outlier columns): %zu/%zu not bit-exact, %zu "
                   "bytes outside touched",
                   path, call, m, outlier_cols[call], bad, m * n, touched);
        tm_free(&X);
        tm_free(&O);
    }
    clbnb_linear8_free(layer);
    tm_free(&W);
    free(w), free(w16), free(scb), free(x), free(out), free(want), free(cb), free(dummy);
}

/* StandardLinear against the f32 reference. */
static void run_standard(clbnb_context *ctx, cl_command_queue q, test_rng *rng, size_t m, size_t k, size_t n,
                         clbnb_dtype dt) {
    float *w = malloc(n * k * 4), *x = malloc(m * k * 4), *b = malloc(n * 4), *g = malloc(m * n * 4);
    fill_xavier(rng, w, n, k);
    fill_normal(rng, x, m * k, 1.0f);
    fill_uniform(rng, b, n, -0.5f, 0.5f);
    fill_normal(rng, g, m * n, 1.0f);
    tmat W = tm_upload(ctx, w, n, k, dt, 0), X = tm_upload(ctx, x, m, k, dt, 1), G = tm_upload(ctx, g, m, n, dt, 2);
    tvec B = tv_upload(ctx, b, n, dt);
    clbnb_linear *l = NULL;
    TEST_STATUS(clbnb_linear_init(&l, ctx, q, &W.m, &B.v), CLBNB_SUCCESS);
    if (!l) return;
    tmat O = tm_alloc(ctx, m, n, dt, 1), GX = tm_alloc(ctx, m, k, dt, 0), GW = tm_alloc(ctx, n, k, dt, 1);
    tvec GB = tv_alloc(ctx, n, dt);
    TEST_STATUS(clbnb_linear_forward(l, q, &X.m, &O.m, 0, NULL, NULL), CLBNB_SUCCESS);
    cl_event ev = NULL;
    TEST_STATUS(clbnb_linear_backward(l, q, &X.m, &G.m, &GX.m, &GW.m, &GB.v, 0, NULL, &ev), CLBNB_SUCCESS);
    TEST_CHECK(ev && clWaitForEvents(1, &ev) == CL_SUCCESS, "backward event");
    if (ev) clReleaseEvent(ev);
    float *o = malloc(m * n * 4), *gx = malloc(m * k * 4), *gw = malloc(n * k * 4), *gb = malloc(n * 4);
    double *r = malloc(m * n * 8), *rs = malloc(m * n * 8), *rx = malloc(m * k * 8), *rxs = malloc(m * k * 8);
    double *rw = malloc(n * k * 8), *rws = malloc(n * k * 8), *rb = malloc(n * 8), *rbs = malloc(n * 8);
    size_t t1 = tm_download(ctx, &O, o), t2 = tm_download(ctx, &GX, gx), t3 = tm_download(ctx, &GW, gw),
           t4 = tv_download(ctx, &GB, gb);
    ref_linear(x, w, b, r, m, n, k);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = fabs(b[j]);
            for (size_t t = 0; t < k; t++)
                s += fabs((double)x[i * k + t] * w[j * k + t]);
            rs[i * n + j] = s;
        }
    ref_grad_x(g, w, rx, rxs, m, n, k);
    ref_grad_w(g, x, rw, rws, m, n, k);
    ref_colsum(g, rb, rbs, m, n);
    size_t f;
    size_t b1 = count_not_close(o, r, rs, m * n, dt, &f), b2 = count_not_close(gx, rx, rxs, m * k, dt, &f),
           b3 = count_not_close(gw, rw, rws, n * k, dt, &f), b4 = count_not_close(gb, rb, rbs, n, dt, &f);
    TEST_CHECK(b1 + b2 + b3 + b4 == 0 && t1 + t2 + t3 + t4 == 0,
               "StandardLinear %zux%zux%zu %s: out %zu, grad_x %zu, grad_w %zu, grad_b %zu off; touched %zu", m, k, n,
               dt_name(dt), b1, b2, b3, b4, t1 + t2 + t3 + t4);
    clbnb_linear_free(l);
    tm_free(&W);
    tm_free(&X);
    tm_free(&G);
    tm_free(&O);
    tm_free(&GX);
    tm_free(&GW);
    tv_free(&B);
    tv_free(&GB);
    free(w), free(x), free(b), free(g), free(o), free(gx), free(gw), free(gb);
    free(r), free(rs), free(rx), free(rxs), free(rw), free(rws), free(rb), free(rbs);
}

static void validation(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    const size_t m = 4, k = 8, n = 6;
    float w[48], x[32];
    fill_normal(rng, w, n * k, 0.3f);
    fill_normal(rng, x, m * k, 1.0f);
    tmat W = tm_upload(ctx, w, n, k, CLBNB_DTYPE_F16, 0), X = tm_upload(ctx, x, m, k, CLBNB_DTYPE_F16, 0);
    clbnb_linear8 *l = NULL;
    clbnb_linear8_params p = clbnb_linear8_default_params();
    p.threshold = -1.0f;
    TEST_STATUS(clbnb_linear8_init(&l, ctx, q, &W.m, NULL, &p), CLBNB_ERROR_INVALID_ARGUMENT);
    p.threshold = 6.0f;
    TEST_STATUS(clbnb_linear8_init(NULL, ctx, q, &W.m, NULL, &p), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_linear8_init(&l, ctx, NULL, &W.m, NULL, &p), CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_matrix wi8 = W.m;
    wi8.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_linear8_init(&l, ctx, q, &wi8, NULL, &p), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_linear8_init(&l, ctx, q, &W.m, NULL, &p), CLBNB_SUCCESS);
    if (!l) return;
    tmat O = tm_alloc(ctx, m, n, CLBNB_DTYPE_F16, 0);
    clbnb_matrix bad = X.m;
    TEST_STATUS(clbnb_linear8_forward(NULL, q, &X.m, &O.m, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_linear8_forward(l, q, NULL, &O.m, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    bad.cols = k - 1;
    TEST_STATUS(clbnb_linear8_forward(l, q, &bad, &O.m, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = X.m;
    bad.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_linear8_forward(l, q, &bad, &O.m, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    bad = O.m;
    bad.rows = m - 1;
    TEST_STATUS(clbnb_linear8_forward(l, q, &X.m, &bad, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    bad = O.m;
    bad.offset += 64;
    TEST_STATUS(clbnb_linear8_forward(l, q, &X.m, &bad, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    bad = O.m;
    bad.offset += 1;
    TEST_STATUS(clbnb_linear8_forward(l, q, &X.m, &bad, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_matrix alias = clbnb_matrix_make(X.m.mem, X.m.offset, m, n, CLBNB_DTYPE_F16);
    TEST_STATUS(clbnb_linear8_forward(l, q, &X.m, &alias, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_linear8_forward(l, q, &X.m, &O.m, 1, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_linear8_forward(l, test_queue(other), &X.m, &O.m, 0, NULL, NULL), CLBNB_ERROR_WRONG_CONTEXT);
    clbnb_context_free(other);
    TEST_CHECK(tm_untouched(ctx, &O), "failed linear8 forwards wrote nothing");
    tmat GX = tm_alloc(ctx, m, k, CLBNB_DTYPE_F16, 0), GW = tm_alloc(ctx, n, k, CLBNB_DTYPE_F32, 0);
    TEST_STATUS(clbnb_linear8_backward(l, q, &X.m, &X.m, &GX.m, NULL, NULL, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_linear8_backward(l, q, &X.m, &O.m, &GX.m, &GW.m, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT); /* grad_w without has_fp16_weights */
    TEST_CHECK(tm_untouched(ctx, &GX) && tm_untouched(ctx, &GW), "failed linear8 backwards wrote nothing");
    size_t cnt;
    TEST_STATUS(clbnb_linear8_outlier_pool(l, q, NULL, 0, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_linear8_outlier_pool(l, q, NULL, 0, &cnt), CLBNB_SUCCESS);
    clbnb_linear8_free(l);
    /* StandardLinear */
    clbnb_linear *sl = NULL;
    TEST_STATUS(clbnb_linear_init(&sl, ctx, q, &wi8, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_linear_init(&sl, ctx, q, &W.m, NULL), CLBNB_SUCCESS);
    if (sl) {
        TEST_STATUS(clbnb_linear_forward(sl, q, &X.m, &alias, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
        TEST_STATUS(clbnb_linear_backward(sl, q, NULL, &O.m, NULL, &GW.m, NULL, 0, NULL, NULL),
                    CLBNB_ERROR_NULL_ARGUMENT); /* grad_w needs x */
        TEST_CHECK(tm_untouched(ctx, &O) && tm_untouched(ctx, &GW), "failed StandardLinear calls wrote nothing");
        clbnb_linear_free(sl);
    }
    tm_free(&W);
    tm_free(&X);
    tm_free(&O);
    tm_free(&GX);
    tm_free(&GW);
}

int main(void) {
    /* the tensor-core int8 GEMM (its epilogue fuses the outlier product) runs everywhere, with the
     * PTX instructions emulated where there are no tensor cores */
    setenv("CLBNB_EMULATE_PTX", "1", 0);
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const clbnb_path paths[3] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU, CLBNB_PATH_NV_MMA};
    /* the tensor-core tile of the emulated nv_mma path (why: where it is set below) */
    static const char *const emulated_tile = "1,2,1,2,32,2,1,1,0";
    const clbnb_dtype dts[3] = {CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32};
    for (int pi = 0; pi < 3; pi++) {
        const int mma = paths[pi] == CLBNB_PATH_NV_MMA;
        if (!clbnb_context_path_available(ctx, mma ? CLBNB_FAMILY_INT8_GEMM : CLBNB_FAMILY_QUANT, paths[pi])) continue;
        set_paths(ctx, paths[pi]);
        const char *pn = clbnb_path_name(paths[pi]);
        /* emulated tensor cores: a small tile (16 x 32, 2 warps) keeps PoCL's build of the unrolled
         * kernel short and gives the cases many work-groups; test_int8_gemm covers the default tile */
        if (mma && !clbnb_context_device_info(ctx)->nv_ptx_mma) setenv("CLBNB_INT8_MMA_CONFIG", emulated_tile, 1);
        for (int d = 0; d < 3; d++) {
            /* test_matmullt: A 64x32, B 48x32, threshold 0 and 6 with 4 columns at 6.0 */
            for (int it = 0; it < 2; it++) {
                l8case c1 = {64, 32, 48, dts[d], 0.0f, 0, 1, 0, 1, 0, 0};
                run_case(ctx, q, &rng, &c1, pn);
                l8case c2 = {64, 32, 48, dts[d], 6.0f, 4, 1, 0, 1, 0, 0};
                run_case(ctx, q, &rng, &c2, pn);
            }
            l8case shapes[] = {
                {1, 33, 7, dts[d], 6.0f, 2, 1, 0, 0, 0, 0},     /* batch 1 with outliers */
                {1, 1, 1, dts[d], 0.0f, 0, 0, 0, 0, 0, 0},      /* 1x1x1 */
                {13, 83, 83, dts[d], 6.0f, 3, 1, 1, 0, 0, 0},   /* odd dims, has_fp16_weights */
                {13, 83, 83, dts[d], 6.0f, 0, 0, 0, 0, 0, 0},   /* threshold without outliers */
                {37, 130, 67, dts[d], 6.0f, 8, 1, 0, 0, 0, 0},  /* 8 outlier columns */
                {70, 300, 67, dts[d], 6.0f, 45, 1, 0, 0, 0, 0}, /* > 32 outlier columns, > 64 rows: GPU kernel passes */
                {5, 257, 3, dts[d], 0.0f, 0, 1, 1, 0, 0, 0},
                /* several work-group tiles of the tensor-core kernel with edges, 20 outlier columns */
                {150, 200, 300, dts[d], 6.0f, 20, 1, 0, 0, 0, 0},
                /* outliers in some rows of their columns */
                {37, 130, 67, dts[d], 6.0f, 8, 1, 0, 0, 0, 1},
                {150, 200, 300, dts[d], 6.0f, 20, 0, 0, 0, 0, 1},
            };
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                run_case(ctx, q, &rng, &shapes[i], pn);
        }
        /* the epilogue's fused outlier product (cl/mma_gemm.cl, OUTLIERS) where each work-item has
         * two 16-byte pieces of the staged tile: 2,1,1,4 (32 x 32) stages 32 outlier columns per
         * pass, 2,2,2,2 with BK 128 and 3 stages (64 x 32) 20, so 45 columns take 2 and 3 passes.
         * Edges, 8 / 20 / 45 columns, all output dtypes (f32 outputs take the separate add). */
        if (mma && !clbnb_context_device_info(ctx)->nv_ptx_mma) {
            static const char *const tiles[2] = {"2,1,1,4,32,2,1,1,0", "2,2,2,2,128,3,0,1,0"};
            for (int t = 0; t < 2; t++) {
                setenv("CLBNB_INT8_MMA_CONFIG", tiles[t], 1);
                for (int d = 0; d < 3; d++) {
                    l8case shapes[] = {
                        {37, 130, 67, dts[d], 6.0f, 8, 1, 0, 0, 0, 0},
                        {70, 300, 67, dts[d], 6.0f, 45, 1, 0, 0, 0, 0},
                        {150, 200, 300, dts[d], 6.0f, 20, 0, 0, 0, 0, 0},
                    };
                    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                        run_case(ctx, q, &rng, &shapes[i], pn);
                }
            }
            setenv("CLBNB_INT8_MMA_CONFIG", emulated_tile, 1);
            /* built for its epilogue kind, output dtype and x's dtype (the default where the device
             * runs the PTX: see src/int8_gemm.c), one case (a build of its own, ~30 s on PoCL):
             * bf16, 45 columns in two passes, outliers in some rows */
            setenv("CLBNB_INT8_MMA_SPECIALIZE", "1", 1);
            l8case spec = {70, 300, 67, CLBNB_DTYPE_BF16, 6.0f, 45, 1, 0, 0, 0, 1};
            run_case(ctx, q, &rng, &spec, pn);
            unsetenv("CLBNB_INT8_MMA_SPECIALIZE");
        }
        /* test_linear_no_igemmlt: 1024 -> 3072, threshold 6, x randn(3, 1024) fp16. bitsandbytes
         * checks one draw (9216 outputs: at most 2 outside). Outside counts are correlated within a
         * row (one row's absmax sets its step), so they are pooled over 48 draws per path: with 12
         * the pooled count (mean ~1.4e-4) still crossed the bar in about 1 run in 25. */
        run_repeated_forward(ctx, q, &rng, pn);
        l8case li = {3, 1024, 3072, CLBNB_DTYPE_F16, 6.0f, 0, 1, 0, 0, 1, 0};
        for (int it = 0; it < (mma ? 0 : 48); it++) /* M = 3 takes the skinny kernel on nv_mma too */
            run_case(ctx, q, &rng, &li, pn);
    }
    TEST_CHECK(li_total && (double)li_outside < 2.5e-4 * (double)li_total,
               "test_linear_no_igemmlt: %zu of %zu outputs outside isclose(atol 0.02, rtol 1e-5) (bound 2.5e-4)",
               li_outside, li_total);
    /* expected 0.3 of 96 draws (Poisson: P(>= 4) ~ 3e-4) */
    TEST_CHECK(li_draws && li_draws_over_003 <= 3,
               "test_linear_no_igemmlt: %zu of %zu draws have outputs outside assert_close(atol 0.03, rtol 1e-5)",
               li_draws_over_003, li_draws);
    fprintf(stderr, "test_linear_no_igemmlt: %zu of %zu outside atol 0.02; %zu of %zu draws outside atol 0.03\n",
            li_outside, li_total, li_draws_over_003, li_draws);
    for (int d = 0; d < 3; d++) {
        run_standard(ctx, q, &rng, 13, 83, 47, dts[d]);
        run_standard(ctx, q, &rng, 1, 5, 1, dts[d]);
        run_standard(ctx, q, &rng, 64, 256, 128, dts[d]);
    }
    validation(ctx, q, &rng);
    clbnb_context_free(ctx);
    return test_finish();
}
