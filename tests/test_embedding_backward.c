/* test_embedding_backward.c: Embedding backward (dense table gradient) against a C reference:
 * repeated indices (summed in ascending position order, f32, rounded once), padding_idx (no
 * gradient), out-of-range indices (ignored), unindexed rows (zero), every float dtype of grad_out and
 * grad_table, padded lds, determinism, validation and errors of the other kinds.
 * StableEmbedding backward (LayerNorm backward in f32, dx rounded to the table's dtype, then the
 * same scatter-add; LayerNorm weight / bias gradients) against a double-precision reference with
 * rigorous error intervals, the reference itself checked against finite differences (in double on
 * the host, and of the device's own forward through clbnb_embedding_weights), dim 1 (exact zeros),
 * poisoned outputs, determinism, validation, and clbnb_embedding_weights. */
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
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_SUCCESS); /* see below */
    clbnb_embedding_free(l);
    l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_BLOCKWISE8, -1, 64, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&G), tm_free(&GT);
    clReleaseMemObject(im);
}

/* ==== StableEmbedding ========================================================================== */
/* Reference in double of the LayerNorm backward of every position, with a bound on the device's f32
 * error. Per in-range position i (row x = table[idx[i], :], exact table values):
 *   mean, var (biased), rstd = 1 / sqrt(var + f32(1e-5)), xhat = (x - mean) rstd, g = gy * gamma,
 *   dx = rstd (g - S(g) / d - xhat S(g xhat) / d), dgamma = S_i gy xhat, dbeta = S_i gy.
 * Error bound of the device (u = 2^-24, K = dim / 64 + 16: a row sum of the device adds at most
 * dim / 64 terms in sequence and then 6 tree levels, so each of its sums carries at most ~K u of the
 * sum of the absolute values of its terms, with K also absorbing the few element-wise roundings):
 *   - mean is off by <= K u mabs (mabs = S|x| / d), var and so rstd relatively by <= K u, hence
 *     |xhat_dev - xhat| <= K u M_j with M_j = |xhat_j| + rstd * mabs;
 *   - S(g) is off by <= K u S|g|; S(g xhat) by <= K u S|g| (max M + max|xhat|) <= 2 K u S|g| Mmax;
 *   - so |dx_dev - dx| <= K u rstd (|g_j| + S|g| / d (1 + 2 M_j Mmax)) up to second-order terms;
 *     the test allows twice that (DX_SLACK, for the second-order terms). It is a worst case: on PoCL
 *     the largest f32 error seen over many seeds is ~4% of it (rounding errors partly cancel).
 *   - dgamma: |err| <= S_i |gy| K u M (the xhat errors; also doubled) + (n + 2) u S_i |gy xhat| (the
 *     f32 sum); dbeta: (n + 1) u S_i |gy|.
 * The table gradient then follows the device exactly through monotone roundings: each dx_dev lies in
 * [dx - e, dx + e], so its rounding to the table dtype lies in [RN(dx - e), RN(dx + e)] (this is
 * where a value near a rounding boundary of f16 / bf16 may flip by one ulp, and only there); the
 * per-row f32 sum of those adds at most cnt u S|terms|; the final rounding to grad_table's dtype is
 * monotone too. So every output is checked to lie in an interval that holds for any correct f32
 * evaluation order: about one ulp wide per summed term for f16 / bf16 tables and outputs, and the
 * f32 bound above (~1e-5 relative, vs O(1) for a wrong formula term) for f32 ones. Exact zeros
 * (unindexed rows, the padding row, dim 1) get a zero-width interval. */
#define DX_SLACK 2.0
typedef struct ln_ref {
    double *dx, *dx_err;               /* [n, dim]: exact dx (0 for out-of-range positions), error bound */
    double *dg, *dg_err, *db, *db_err; /* [dim] */
} ln_ref;

static void ln_ref_free(ln_ref *r) {
    free(r->dx), free(r->dx_err), free(r->dg), free(r->dg_err), free(r->db), free(r->db_err);
}

static ln_ref ln_ref_compute(const float *t, size_t num, size_t dim, const int32_t *idx, size_t n, const float *gamma,
                             const float *gy) {
    ln_ref o = {calloc(n * dim, 8), calloc(n * dim, 8), calloc(dim, 8), calloc(dim, 8), calloc(dim, 8), calloc(dim, 8)};
    const double u = ldexp(1.0, -24), K = (double)(dim / 64) + 16.0;
    double *xh = malloc(dim * 8), *M = malloc(dim * 8), *gabs = calloc(dim, 8), *gmabs = calloc(dim, 8),
           *gxabs = calloc(dim, 8);
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0 || (size_t)idx[i] >= num) continue;
        cnt++;
        const float *x = t + (size_t)idx[i] * dim, *gr = gy + i * dim;
        double mean = 0, var = 0, mabs = 0;
        for (size_t j = 0; j < dim; j++)
            mean += x[j], mabs += fabs(x[j]);
        mean /= (double)dim, mabs /= (double)dim;
        for (size_t j = 0; j < dim; j++)
            var += (x[j] - mean) * (x[j] - mean);
        var /= (double)dim;
        const double rstd = 1.0 / sqrt(var + (double)1e-5f);
        double s1 = 0, s2 = 0, s1abs = 0, mmax = 0;
        for (size_t j = 0; j < dim; j++) {
            xh[j] = (x[j] - mean) * rstd;
            M[j] = fabs(xh[j]) + rstd * mabs;
            mmax = fmax(mmax, M[j]);
            const double g = (double)gr[j] * gamma[j];
            s1 += g, s2 += g * xh[j], s1abs += fabs(g);
        }
        for (size_t j = 0; j < dim; j++) {
            const double g = (double)gr[j] * gamma[j];
            o.dx[i * dim + j] = rstd * (g - s1 / (double)dim - xh[j] * s2 / (double)dim);
            o.dx_err[i * dim + j] = DX_SLACK * K * u * rstd * (fabs(g) + s1abs / (double)dim * (1 + 2 * M[j] * mmax));
            o.dg[j] += gr[j] * xh[j];
            o.db[j] += gr[j];
            gabs[j] += fabs(gr[j]), gmabs[j] += fabs(gr[j]) * M[j], gxabs[j] += fabs(gr[j] * xh[j]);
        }
    }
    for (size_t j = 0; j < dim; j++) {
        o.dg_err[j] = DX_SLACK * K * u * gmabs[j] + (double)(cnt + 2) * u * gxabs[j];
        o.db_err[j] = (double)(cnt + 1) * u * gabs[j];
    }
    free(xh), free(M), free(gabs), free(gmabs), free(gxabs);
    return o;
}

/* RN_dt of a real v, through f32 as the device rounds (both steps monotone). */
static float rnd(double v, clbnb_dtype dt) { return test_round_to_dtype((float)v, dt); }

/* Elements of grad_table outside their interval (see above). */
static size_t check_grad_table(const float *got, const ln_ref *R, const int32_t *idx, size_t n, size_t num, size_t dim,
                               long pad, clbnb_dtype tdt, clbnb_dtype ddt, size_t *first, double iv[2]) {
    const double u = ldexp(1.0, -24);
    size_t bad = 0;
    for (size_t r = 0; r < num; r++)
        for (size_t c = 0; c < dim; c++) {
            double lo = 0, hi = 0, mag = 0;
            size_t cnt = 0;
            if ((long)r != pad)
                for (size_t i = 0; i < n; i++)
                    if (idx[i] == (int32_t)r) {
                        const double d = R->dx[i * dim + c], e = R->dx_err[i * dim + c];
                        const double l = rnd(d - e, tdt), h = rnd(d + e, tdt);
                        lo += l, hi += h, mag += fmax(fabs(l), fabs(h)), cnt++;
                    }
            const double E = (double)cnt * u * mag;
            const float g = got[r * dim + c];
            const double glo = rnd(lo - E, ddt), ghi = rnd(hi + E, ddt);
            if (!(g >= glo && g <= ghi) && !bad++) *first = r * dim + c, iv[0] = glo, iv[1] = ghi;
        }
    return bad;
}

static size_t check_interval(const float *got, const double *ref, const double *err, size_t n, clbnb_dtype dt,
                             size_t *first) {
    size_t bad = 0;
    for (size_t j = 0; j < n; j++)
        if (!(got[j] >= rnd(ref[j] - err[j], dt) && got[j] <= rnd(ref[j] + err[j], dt)) && !bad++) *first = j;
    return bad;
}

/* 1 when every byte of the vector's buffer is still poisoned. */
static int vec_poisoned(clbnb_context *ctx, const tvec *v) {
    unsigned char *h = malloc(v->bytes);
    test_download(ctx, v->v.mem, 0, h, v->bytes);
    int ok = 1;
    for (size_t i = 0; i < v->bytes; i++)
        ok &= h[i] == TEST_POISON;
    free(h);
    return ok;
}

/* Table rows of varied scale and offset (offsets make x - mean cancel; small scales make rstd large). */
static void fill_table(test_rng *rng, float *t, size_t num, size_t dim) {
    for (size_t r = 0; r < num; r++) {
        float scale = ldexpf(1.0f, (int)(r % 5) - 2), off = (float)((int)(r % 3) - 1) * 0.75f;
        for (size_t j = 0; j < dim; j++)
            t[r * dim + j] = off + scale * test_rng_normal(rng);
    }
}

/* which_ln: bit 0 grad_ln_weight, bit 1 grad_ln_bias; 4: through clbnb_embedding_backward (no LN). */
static void stable_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, size_t num, size_t dim, size_t n,
                        long pad, int idx_mode, clbnb_dtype tdt, clbnb_dtype gdt, clbnb_dtype ddt, clbnb_dtype vdt,
                        int which_ln) {
    float *t = malloc(num * dim * 4), *gam = malloc(dim * 4), *bet = malloc(dim * 4), *gy = malloc(n * dim * 4);
    fill_table(rng, t, num, dim);
    fill_uniform(rng, gam, dim, -1.5f, 1.5f);
    fill_uniform(rng, bet, dim, -0.5f, 0.5f);
    fill_normal(rng, gy, n * dim, 1.0f);
    tmat T = tm_upload(ctx, t, num, dim, tdt, 1); /* rounds t to tdt */
    if (pad >= 0)
        for (size_t j = 0; j < dim; j++)
            t[(size_t)pad * dim + j] = 0.0f; /* zeroed by init */
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_STABLE, pad, 0, gam, bet), CLBNB_SUCCESS);
    if (!l) return;
    int32_t *idx = malloc(n * 4);
    const size_t span = num < 8 ? num : num / 3 + 1; /* few distinct rows: indices repeat */
    for (size_t i = 0; i < n; i++)
        idx[i] = (int32_t)(test_rng_next(rng) % span);
    if (n == 1) {
        /* 0: an in-range non-padding row, 1: the padding row, 2: -1, 3: num */
        idx[0] = idx_mode == 1 ? (int32_t)pad : idx_mode == 2 ? -1 : idx_mode == 3 ? (int32_t)num : (int32_t)(num - 1);
        if (idx_mode == 0 && (long)idx[0] == pad) idx[0] = 0;
    } else {
        idx[1] = -1, idx[2] = (int32_t)num, idx[4] = (int32_t)num + 1000;
        if (pad >= 0) idx[3] = (int32_t)pad, idx[6] = (int32_t)pad;
        idx[7] = idx[n - 1] = (int32_t)(num - 1);
        if (n > 9) idx[9] = idx[0];
    }
    cl_mem im = test_buffer(ctx, (n + 3) * 4);
    test_upload(ctx, im, 8, idx, n * 4);
    clbnb_vector iv = clbnb_vector_make(im, 8, n, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, gy, n, dim, gdt, 2); /* rounds gy to gdt */
    tmat GT = tm_alloc(ctx, num, dim, ddt, 3);
    tvec GW = tv_alloc(ctx, dim, vdt), GB = tv_alloc(ctx, dim, vdt);
    const clbnb_vector *pw = (which_ln & 1) ? &GW.v : NULL, *pb = (which_ln & 2) ? &GB.v : NULL;
    cl_event ev = NULL;
    if (which_ln == 4)
        TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, &ev), CLBNB_SUCCESS);
    else
        TEST_STATUS(clbnb_embedding_backward_stable(l, q, &iv, &G.m, &GT.m, pw, pb, 0, NULL, &ev), CLBNB_SUCCESS);
    if (ev) {
        TEST_CHECK(clWaitForEvents(1, &ev) == CL_SUCCESS, "event");
        clReleaseEvent(ev);
    }
    float *got = malloc(num * dim * 4), *got2 = malloc(num * dim * 4), *gw = malloc(dim * 4), *gb = malloc(dim * 4),
          *gw2 = malloc(dim * 4), *gb2 = malloc(dim * 4);
    size_t touched = tm_download(ctx, &GT, got), wt = tv_download(ctx, &GW, gw), bt = tv_download(ctx, &GB, gb);
    ln_ref R = ln_ref_compute(t, num, dim, idx, n, gam, gy);
    double iv_bad[2] = {0, 0};
    size_t first = 0, bad = check_grad_table(got, &R, idx, n, num, dim, pad, tdt, ddt, &first, iv_bad);
    char what[160];
    snprintf(what, sizeof what,
             "stable backward num %zu dim %zu n %zu pad %ld idx %d table %s grad_out %s -> %s, ln %s", num, dim, n, pad,
             idx_mode, dt_name(tdt), dt_name(gdt), dt_name(ddt), dt_name(vdt));
    TEST_CHECK(bad == 0 && touched == 0,
               "%s: grad_table %zu outside (first %zu: %.9g not in [%.9g, %.9g]), %zu touched", what, bad, first,
               (double)got[first], iv_bad[0], iv_bad[1], touched);
    if (dim == 1) { /* var 0, xhat 0: dx and dgamma are exactly zero */
        size_t nz = 0;
        for (size_t i = 0; i < num; i++)
            nz += got[i] != 0.0f;
        TEST_CHECK(nz == 0, "%s: %zu nonzero grad_table elements with dim 1", what, nz);
    }
    if (which_ln & 1) {
        size_t b = check_interval(gw, R.dg, R.dg_err, dim, vdt, &first);
        TEST_CHECK(b == 0 && wt == 0, "%s: grad_ln_weight %zu outside (first %zu: %.9g vs %.9g), %zu touched", what, b,
                   first, (double)gw[first], R.dg[first], wt);
        if (dim == 1) TEST_CHECK(gw[0] == 0.0f, "%s: grad_ln_weight %g with dim 1", what, (double)gw[0]);
    } else {
        TEST_CHECK(vec_poisoned(ctx, &GW), "%s: grad_ln_weight written though not asked for", what);
    }
    if (which_ln & 2) {
        size_t b = check_interval(gb, R.db, R.db_err, dim, vdt, &first);
        TEST_CHECK(b == 0 && bt == 0, "%s: grad_ln_bias %zu outside (first %zu: %.9g vs %.9g), %zu touched", what, b,
                   first, (double)gb[first], R.db[first], bt);
    } else {
        TEST_CHECK(vec_poisoned(ctx, &GB), "%s: grad_ln_bias written though not asked for", what);
    }
    /* deterministic: a second run into re-poisoned outputs gives the same bits; and
     * clbnb_embedding_backward is the LN-less backward_stable */
    test_poison(ctx, GT.m.mem, GT.bytes);
    test_poison(ctx, GW.v.mem, GW.bytes);
    test_poison(ctx, GB.v.mem, GB.bytes);
    TEST_STATUS(clbnb_embedding_backward_stable(l, q, &iv, &G.m, &GT.m, pw, pb, 0, NULL, NULL), CLBNB_SUCCESS);
    tm_download(ctx, &GT, got2);
    tv_download(ctx, &GW, gw2);
    tv_download(ctx, &GB, gb2);
    TEST_CHECK(memcmp(got, got2, num * dim * 4) == 0 && memcmp(gw, gw2, dim * 4) == 0 && memcmp(gb, gb2, dim * 4) == 0,
               "%s: not deterministic", what);
    test_poison(ctx, GT.m.mem, GT.bytes);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &GT.m, 0, NULL, NULL), CLBNB_SUCCESS);
    tm_download(ctx, &GT, got2);
    TEST_CHECK(memcmp(got, got2, num * dim * 4) == 0, "%s: embedding_backward differs from backward_stable", what);
    ln_ref_free(&R);
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&G), tm_free(&GT), tv_free(&GW), tv_free(&GB);
    clReleaseMemObject(im);
    free(t), free(gam), free(bet), free(gy), free(idx), free(got), free(got2), free(gw), free(gb), free(gw2), free(gb2);
}

/* ---- finite differences ------------------------------------------------------------------------ */
/* L = sum over in-range positions of sum_j w[i, j] * LayerNorm(table[idx[i]])_j, in double. */
static double host_loss(const double *t, const double *gam, const double *bet, size_t num, size_t dim,
                        const int32_t *idx, size_t n, const float *w) {
    double L = 0;
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0 || (size_t)idx[i] >= num) continue;
        const double *x = t + (size_t)idx[i] * dim;
        double mean = 0, var = 0;
        for (size_t j = 0; j < dim; j++)
            mean += x[j];
        mean /= (double)dim;
        for (size_t j = 0; j < dim; j++)
            var += (x[j] - mean) * (x[j] - mean);
        var /= (double)dim;
        const double rstd = 1.0 / sqrt(var + (double)1e-5f);
        for (size_t j = 0; j < dim; j++)
            L += w[i * dim + j] * ((x[j] - mean) * rstd * gam[j] + bet[j]);
    }
    return L;
}

/* Device loss: forward (f32 out) with the layer's current parameters, then L in double. */
static double device_loss(clbnb_context *ctx, cl_command_queue q, clbnb_embedding *l, const clbnb_vector *iv,
                          const tmat *O, float *out, const int32_t *idx, size_t n, size_t num, size_t dim,
                          const float *w) {
    TEST_STATUS(clbnb_embedding_forward(l, q, iv, &O->m, 0, NULL, NULL), CLBNB_SUCCESS);
    tm_download(ctx, O, out);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= 0 && (size_t)idx[i] < num)
            for (size_t j = 0; j < dim; j++)
                L += (double)w[i * dim + j] * out[i * dim + j];
    return L;
}

/* Writes one f32 element of a layer buffer (through the descriptors of clbnb_embedding_weights). */
static void poke(clbnb_context *ctx, cl_mem m, size_t off_bytes, float v) { test_upload(ctx, m, off_bytes, &v, 4); }

static void test_finite_differences(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    enum { NUM = 5, DIM = 6, N = 8 };
    const long pad = 2;
    float t[NUM * DIM], gam[DIM], bet[DIM], w[N * DIM];
    for (size_t i = 0; i < NUM * DIM; i++) /* unit-scale rows: rstd ~1, so the differences below stay smooth */
        t[i] = 0.5f + test_rng_normal(rng);
    fill_uniform(rng, gam, DIM, -1.5f, 1.5f);
    fill_uniform(rng, bet, DIM, -0.5f, 0.5f);
    fill_normal(rng, w, N * DIM, 1.0f);
    const int32_t idx[N] = {1, 3, 2, -1, 1, 5, 0, 1}; /* repeats, the padding row, out of range; row 4 unused */
    tmat T = tm_upload(ctx, t, NUM, DIM, CLBNB_DTYPE_F32, 0);
    for (size_t j = 0; j < DIM; j++)
        t[pad * DIM + j] = 0.0f;
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_STABLE, pad, 0, gam, bet), CLBNB_SUCCESS);
    if (!l) return;
    cl_mem im = test_buffer_from(ctx, idx, sizeof idx);
    clbnb_vector iv = clbnb_vector_make(im, 0, N, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, w, N, DIM, CLBNB_DTYPE_F32, 0), GT = tm_alloc(ctx, NUM, DIM, CLBNB_DTYPE_F32, 0),
         O = tm_alloc(ctx, N, DIM, CLBNB_DTYPE_F32, 0);
    tvec GW = tv_alloc(ctx, DIM, CLBNB_DTYPE_F32), GB = tv_alloc(ctx, DIM, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_embedding_backward_stable(l, q, &iv, &G.m, &GT.m, &GW.v, &GB.v, 0, NULL, NULL), CLBNB_SUCCESS);
    float gt[NUM * DIM], gw[DIM], gb[DIM], out[N * DIM];
    tm_download(ctx, &GT, gt);
    tv_download(ctx, &GW, gw);
    tv_download(ctx, &GB, gb);

    /* (1) the double reference against central differences of the double forward (h 1e-5:
     * truncation ~h^2, cancellation ~1e-16 |L| / h, both far below the 1e-7 bar) */
    ln_ref R = ln_ref_compute(t, NUM, DIM, idx, N, gam, w);
    double td[NUM * DIM], gd[DIM], bd[DIM], worst = 0;
    for (size_t i = 0; i < NUM * DIM; i++)
        td[i] = t[i];
    for (size_t j = 0; j < DIM; j++)
        gd[j] = gam[j], bd[j] = bet[j];
    const double h = 1e-5;
    for (size_t k = 0; k < NUM * DIM + 2 * DIM; k++) {
        double *p = k < NUM * DIM ? &td[k] : k < NUM * DIM + DIM ? &gd[k - NUM * DIM] : &bd[k - NUM * DIM - DIM];
        const double save = *p;
        *p = save + h;
        double lp = host_loss(td, gd, bd, NUM, DIM, idx, N, w);
        *p = save - h;
        double lm = host_loss(td, gd, bd, NUM, DIM, idx, N, w);
        *p = save;
        double fd = (lp - lm) / (2 * h), an = 0;
        if (k < NUM * DIM) {
            size_t r = k / DIM, c = k % DIM;
            if ((long)r == pad) continue; /* torch gives the padding row no gradient by definition */
            for (size_t i = 0; i < N; i++)
                if (idx[i] == (int32_t)r) an += R.dx[i * DIM + c];
        } else {
            an = k < NUM * DIM + DIM ? R.dg[k - NUM * DIM] : R.db[k - NUM * DIM - DIM];
        }
        worst = fmax(worst, fabs(fd - an) / (1 + fabs(an)));
    }
    TEST_CHECK(worst < 1e-7, "LayerNorm backward reference vs double finite differences: %.3g", worst);

    /* (2) the device's backward against central differences of the device's own forward, the
     * parameters perturbed in place through clbnb_embedding_weights. The f32 forward makes L noisy
     * by ~1e-6 (48 terms of ~1, a few ulps each), so h is large (2e-2) and the h^2 term of the
     * central difference is removed by Richardson extrapolation, D = (4 D(h / 2) - D(h)) / 3: noise
     * ~4/3 * 1e-6 / 1e-2 ~1e-4, truncation ~h^4 rstd^5 ~1e-5; bar 2e-3 (1 + |g|), while a wrong
     * term of the formula errs by O(|g|). */
    clbnb_matrix tw;
    clbnb_vector lw, lb;
    TEST_STATUS(clbnb_embedding_weights(l, &tw, &lw, &lb), CLBNB_SUCCESS);
    double dworst = 0;
    size_t dfirst = 0;
    for (size_t k = 0; k < NUM * DIM + 2 * DIM; k++) {
        cl_mem m;
        size_t off;
        float v, an;
        if (k < NUM * DIM) {
            if ((long)(k / DIM) == pad) continue;
            m = tw.mem, off = tw.offset + k * 4, v = t[k], an = gt[k];
        } else if (k < NUM * DIM + DIM) {
            m = lw.mem, off = lw.offset + (k - NUM * DIM) * 4, v = gam[k - NUM * DIM], an = gw[k - NUM * DIM];
        } else {
            m = lb.mem, off = lb.offset + (k - NUM * DIM - DIM) * 4, v = bet[k - NUM * DIM - DIM],
            an = gb[k - NUM * DIM - DIM];
        }
        double dh[2];
        for (int s = 0; s < 2; s++) {
            const float hd = s ? 1e-2f : 2e-2f;
            poke(ctx, m, off, v + hd);
            double lp = device_loss(ctx, q, l, &iv, &O, out, idx, N, NUM, DIM, w);
            poke(ctx, m, off, v - hd);
            double lm = device_loss(ctx, q, l, &iv, &O, out, idx, N, NUM, DIM, w);
            dh[s] = (lp - lm) / ((double)(v + hd) - (double)(v - hd));
        }
        poke(ctx, m, off, v);
        const double fd = (4 * dh[1] - dh[0]) / 3;
        const double e = fabs(fd - an) / (1 + fabs(an));
        if (e > dworst) dworst = e, dfirst = k;
    }
    TEST_CHECK(dworst < 2e-3, "device backward vs finite differences of the device forward: %.3g (parameter %zu)",
               dworst, dfirst);
    ln_ref_free(&R);
    clbnb_embedding_free(l);
    tm_free(&T), tm_free(&G), tm_free(&GT), tm_free(&O), tv_free(&GW), tv_free(&GB);
    clReleaseMemObject(im);
}

/* ---- an out-of-order queue and a wait list --------------------------------------------------- */
/* The steps of the call are ordered by barriers on an out-of-order queue, and the caller's wait list
 * gates the first one: the results must equal the in-order ones bit for bit. */
static void test_out_of_order(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    enum { NUM = 40, DIM = 96, N = 64 };
    cl_int err = CL_SUCCESS;
    cl_device_id dev = NULL;
    clGetCommandQueueInfo(q, CL_QUEUE_DEVICE, sizeof dev, &dev, NULL);
    cl_command_queue oq =
        clCreateCommandQueue(clbnb_context_cl_context(ctx), dev, CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE, &err);
    if (err != CL_SUCCESS || !oq) return; /* optional in OpenCL 1.2 */
    float *t = malloc(NUM * DIM * 4), *gy = malloc(N * DIM * 4), gam[DIM], bet[DIM];
    fill_table(rng, t, NUM, DIM);
    fill_normal(rng, gy, N * DIM, 1.0f);
    fill_uniform(rng, gam, DIM, -1.5f, 1.5f);
    fill_uniform(rng, bet, DIM, -0.5f, 0.5f);
    int32_t idx[N];
    for (size_t i = 0; i < N; i++)
        idx[i] = (int32_t)(test_rng_next(rng) % (NUM + 3)) - 1;
    tmat T = tm_upload(ctx, t, NUM, DIM, CLBNB_DTYPE_F16, 0);
    clbnb_embedding *l = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_STABLE, 4, 0, gam, bet), CLBNB_SUCCESS);
    cl_mem im = test_buffer_from(ctx, idx, sizeof idx);
    clbnb_vector iv = clbnb_vector_make(im, 0, N, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, gy, N, DIM, CLBNB_DTYPE_BF16, 1);
    tmat GT[2] = {tm_alloc(ctx, NUM, DIM, CLBNB_DTYPE_F32, 1), tm_alloc(ctx, NUM, DIM, CLBNB_DTYPE_F32, 1)};
    tvec GW[2] = {tv_alloc(ctx, DIM, CLBNB_DTYPE_F16), tv_alloc(ctx, DIM, CLBNB_DTYPE_F16)};
    tvec GB[2] = {tv_alloc(ctx, DIM, CLBNB_DTYPE_F32), tv_alloc(ctx, DIM, CLBNB_DTYPE_F32)};
    if (l) {
        TEST_STATUS(clbnb_embedding_backward_stable(l, q, &iv, &G.m, &GT[0].m, &GW[0].v, &GB[0].v, 0, NULL, NULL),
                    CLBNB_SUCCESS);
        clFinish(q);
        cl_event gate = clCreateUserEvent(clbnb_context_cl_context(ctx), &err), done = NULL;
        TEST_STATUS(clbnb_embedding_backward_stable(l, oq, &iv, &G.m, &GT[1].m, &GW[1].v, &GB[1].v, 1, &gate, &done),
                    CLBNB_SUCCESS);
        clSetUserEventStatus(gate, CL_COMPLETE);
        if (done) {
            TEST_CHECK(clWaitForEvents(1, &done) == CL_SUCCESS, "out-of-order backward event");
            clReleaseEvent(done);
        }
        clFinish(oq);
        clReleaseEvent(gate);
        float *a = malloc(NUM * DIM * 4), *b = malloc(NUM * DIM * 4), va[2][DIM], vb[2][DIM];
        tm_download(ctx, &GT[0], a);
        size_t touched = tm_download(ctx, &GT[1], b);
        tv_download(ctx, &GW[0], va[0]), tv_download(ctx, &GB[0], va[1]);
        tv_download(ctx, &GW[1], vb[0]), tv_download(ctx, &GB[1], vb[1]);
        TEST_CHECK(touched == 0 && memcmp(a, b, NUM * DIM * 4) == 0 && memcmp(va, vb, sizeof va) == 0,
                   "stable backward on an out-of-order queue with a wait list differs from in-order");
        free(a), free(b);
    }
    clbnb_embedding_free(l);
    for (int k = 0; k < 2; k++)
        tm_free(&GT[k]), tv_free(&GW[k]), tv_free(&GB[k]);
    tm_free(&T), tm_free(&G);
    clReleaseMemObject(im);
    clReleaseCommandQueue(oq);
    free(t), free(gy);
}

/* ---- validation and clbnb_embedding_weights ---------------------------------------------------- */
static void test_stable_errors(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    enum { NUM = 8, DIM = 8, N = 4 };
    float t[NUM * DIM], gy[N * DIM], gam[DIM], bet[DIM];
    fill_normal(rng, t, NUM * DIM, 1.0f);
    fill_normal(rng, gy, N * DIM, 1.0f);
    fill_uniform(rng, gam, DIM, 0.5f, 1.5f);
    fill_uniform(rng, bet, DIM, -0.5f, 0.5f);
    tmat T = tm_upload(ctx, t, NUM, DIM, CLBNB_DTYPE_F32, 0);
    int32_t idx[N] = {1, 2, 2, 7};
    cl_mem im = test_buffer_from(ctx, idx, sizeof idx);
    clbnb_vector iv = clbnb_vector_make(im, 0, N, CLBNB_DTYPE_I32);
    tmat G = tm_upload(ctx, gy, N, DIM, CLBNB_DTYPE_F32, 0);
    tmat GT = tm_alloc(ctx, NUM, DIM, CLBNB_DTYPE_F32, 0);
    tvec GW = tv_alloc(ctx, DIM, CLBNB_DTYPE_F32), GB = tv_alloc(ctx, DIM, CLBNB_DTYPE_BF16);
    clbnb_embedding *l = NULL, *lp = NULL, *lq = NULL;
    TEST_STATUS(clbnb_embedding_init(&l, ctx, q, &T.m, CLBNB_EMBEDDING_STABLE, 3, 0, gam, bet), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_init(&lp, ctx, q, &T.m, CLBNB_EMBEDDING_PLAIN, -1, 0, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_init(&lq, ctx, q, &T.m, CLBNB_EMBEDDING_BLOCKWISE8, -1, 64, NULL, NULL), CLBNB_SUCCESS);
    if (!l || !lp || !lq) return;
    const clbnb_vector *w = &GW.v, *b = &GB.v;
#define BWD(layer, ind, go, gt, gw, gb) clbnb_embedding_backward_stable(layer, q, ind, go, gt, gw, gb, 0, NULL, NULL)
    TEST_STATUS(BWD(NULL, &iv, &G.m, &GT.m, w, b), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(BWD(l, NULL, &G.m, &GT.m, w, b), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, NULL, &GT.m, w, b), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, NULL, w, b), CLBNB_ERROR_NULL_ARGUMENT); /* grad_table is required */
    TEST_STATUS(clbnb_embedding_backward_stable(l, NULL, &iv, &G.m, &GT.m, w, b, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_embedding_backward_stable(l, q, &iv, &G.m, &GT.m, w, b, 1, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT); /* inconsistent wait list */
    clbnb_vector vnull = GW.v;
    vnull.mem = NULL;
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &vnull, b), CLBNB_ERROR_NULL_ARGUMENT);
    /* shapes */
    clbnb_matrix gs = G.m, ts = GT.m, tc = GT.m;
    gs.rows = N - 1, ts.rows = NUM - 1, tc.cols = DIM - 1;
    TEST_STATUS(BWD(l, &iv, &gs, &GT.m, w, b), CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(BWD(l, &iv, &G.m, &ts, w, b), CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(BWD(l, &iv, &G.m, &tc, w, b), CLBNB_ERROR_INVALID_SHAPE);
    clbnb_vector vs = GW.v;
    vs.n = DIM - 1;
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &vs, b), CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, &vs), CLBNB_ERROR_BUFFER_TOO_SMALL);
    /* dtypes */
    clbnb_vector vi = GW.v, ivf = iv;
    vi.dtype = CLBNB_DTYPE_I32, ivf.dtype = CLBNB_DTYPE_F32;
    clbnb_matrix gi = G.m, ti = GT.m;
    gi.dtype = CLBNB_DTYPE_I8, ti.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &vi, b), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, &vi), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(BWD(l, &ivf, &G.m, &GT.m, w, b), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(BWD(l, &iv, &gi, &GT.m, w, b), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(BWD(l, &iv, &G.m, &ti, w, b), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    /* overlaps: outputs with inputs, with each other, with the layer's own buffers */
    clbnb_vector on_g = clbnb_vector_make(G.m.mem, G.m.offset + 4 * 4, DIM, CLBNB_DTYPE_F32);
    clbnb_vector on_t = clbnb_vector_make(GT.m.mem, GT.m.offset + 60 * 4, DIM, CLBNB_DTYPE_F32);
    clbnb_vector on_w = clbnb_vector_make(GW.v.mem, GW.v.offset + 4, DIM, CLBNB_DTYPE_F16);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &on_g, b), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, &on_t), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, w), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, &on_w), CLBNB_ERROR_INVALID_ARGUMENT);
    tvec WI = tv_alloc(ctx, DIM + N, CLBNB_DTYPE_F32); /* indices and grad_ln_weight in one buffer */
    clbnb_vector iv2 = clbnb_vector_make(WI.v.mem, WI.v.offset + (DIM - 2) * 4, N, CLBNB_DTYPE_I32);
    TEST_STATUS(BWD(l, &iv2, &G.m, &GT.m, &WI.v, b), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_matrix tw;
    clbnb_vector lw, lb;
    TEST_STATUS(clbnb_embedding_weights(l, &tw, &lw, &lb), CLBNB_SUCCESS);
    TEST_STATUS(BWD(l, &iv, &G.m, &tw, w, b), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &lw, b), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, w, &lb), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_embedding_backward(l, q, &iv, &G.m, &tw, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    /* other kinds */
    TEST_STATUS(BWD(lp, &iv, &G.m, &GT.m, w, b), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(lp, &iv, &G.m, &GT.m, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(BWD(lq, &iv, &G.m, &GT.m, w, b), CLBNB_ERROR_INVALID_ARGUMENT);
    clFinish(q);
    TEST_CHECK(tm_untouched(ctx, &GT) && vec_poisoned(ctx, &GW) && vec_poisoned(ctx, &GB) && vec_poisoned(ctx, &WI),
               "stable backward wrote on error");
    /* the layer's own buffers are intact */
    float tt[NUM * DIM], gg[DIM], bb[DIM];
    test_download(ctx, tw.mem, tw.offset, tt, sizeof tt);
    test_download(ctx, lw.mem, lw.offset, gg, sizeof gg);
    test_download(ctx, lb.mem, lb.offset, bb, sizeof bb);
    for (size_t j = 0; j < DIM; j++)
        t[3 * DIM + j] = 0.0f; /* padding row */
    TEST_CHECK(memcmp(tt, t, sizeof tt) == 0 && memcmp(gg, gam, sizeof gg) == 0 && memcmp(bb, bet, sizeof bb) == 0,
               "layer parameters changed by failed calls");
    /* forward into the layer's own table is refused too */
    tmat O = tm_alloc(ctx, N, DIM, CLBNB_DTYPE_F32, 0);
    clbnb_matrix to = tw;
    to.rows = N;
    TEST_STATUS(clbnb_embedding_forward(l, q, &iv, &to, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    /* disjoint views of one buffer are fine: grad_ln_weight and grad_ln_bias side by side, and a
     * grad_ln_weight longer than dim (only dim elements are written) */
    tvec WB = tv_alloc(ctx, 2 * DIM, CLBNB_DTYPE_F32);
    clbnb_vector wlo = clbnb_vector_make(WB.v.mem, WB.v.offset, DIM, CLBNB_DTYPE_F32),
                 whi = clbnb_vector_make(WB.v.mem, WB.v.offset + DIM * 4, DIM, CLBNB_DTYPE_F32), wlong = wlo;
    wlong.n = DIM + 3;
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &wlo, &whi), CLBNB_SUCCESS);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &wlong, &whi), CLBNB_SUCCESS);
    float wb[2 * DIM], wb2[2 * DIM];
    tv_download(ctx, &WB, wb);
    TEST_STATUS(BWD(l, &iv, &G.m, &GT.m, &wlo, &whi), CLBNB_SUCCESS);
    tv_download(ctx, &WB, wb2);
    TEST_CHECK(memcmp(wb, wb2, sizeof wb) == 0, "grad_ln_weight of n > dim wrote past dim");
    tv_free(&WB), tm_free(&O), tv_free(&WI);
#undef BWD

    /* clbnb_embedding_weights */
    clbnb_matrix m0, m1;
    clbnb_vector v0, v1;
    memset(&m0, 0x5a, sizeof m0), memset(&v0, 0x5a, sizeof v0);
    m1 = m0, v1 = v0;
    TEST_STATUS(clbnb_embedding_weights(NULL, &m1, &v1, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_embedding_weights(lp, &m1, &v1, NULL), CLBNB_ERROR_INVALID_ARGUMENT); /* no LN on PLAIN */
    TEST_STATUS(clbnb_embedding_weights(lp, NULL, NULL, &v1), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_embedding_weights(lq, &m1, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT); /* quantized */
    TEST_STATUS(clbnb_embedding_weights(lq, NULL, &v1, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_CHECK(memcmp(&m0, &m1, sizeof m0) == 0 && memcmp(&v0, &v1, sizeof v0) == 0,
               "clbnb_embedding_weights wrote an output on error");
    TEST_STATUS(clbnb_embedding_weights(lq, NULL, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_weights(l, NULL, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_embedding_weights(lp, &m1, NULL, NULL), CLBNB_SUCCESS);
    TEST_CHECK(m1.mem && m1.offset == 0 && m1.rows == NUM && m1.cols == DIM && m1.ld == DIM &&
                   m1.dtype == CLBNB_DTYPE_F32 && m1.mem != tw.mem,
               "PLAIN table descriptor");
    float pt[NUM * DIM], orig[NUM * DIM];
    test_download(ctx, m1.mem, 0, pt, sizeof pt);
    test_download(ctx, T.m.mem, T.m.offset, orig, sizeof orig);
    TEST_CHECK(memcmp(pt, orig, sizeof pt) == 0, "PLAIN table contents");
    TEST_CHECK(tw.rows == NUM && tw.cols == DIM && tw.ld == DIM && tw.dtype == CLBNB_DTYPE_F32 && lw.n == DIM &&
                   lb.n == DIM && lw.dtype == CLBNB_DTYPE_F32 && lb.dtype == CLBNB_DTYPE_F32 && lw.mem != lb.mem,
               "STABLE descriptors");
    /* a bf16 table keeps its dtype */
    clbnb_embedding *lh = NULL;
    tmat TH = tm_upload(ctx, t, NUM, DIM, CLBNB_DTYPE_BF16, 2);
    TEST_STATUS(clbnb_embedding_init(&lh, ctx, q, &TH.m, CLBNB_EMBEDDING_STABLE, -1, 0, NULL, NULL), CLBNB_SUCCESS);
    if (lh) {
        TEST_STATUS(clbnb_embedding_weights(lh, &m1, NULL, &v1), CLBNB_SUCCESS);
        TEST_CHECK(m1.dtype == CLBNB_DTYPE_BF16 && m1.ld == DIM && v1.n == DIM, "bf16 STABLE descriptors");
        float ones[DIM];
        test_download(ctx, v1.mem, v1.offset, ones, sizeof ones);
        int zero = 1;
        for (size_t j = 0; j < DIM; j++)
            zero &= ones[j] == 0.0f;
        TEST_CHECK(zero, "default LayerNorm bias is zero");
        clbnb_embedding_free(lh);
    }
    tm_free(&TH);
    clbnb_embedding_free(l), clbnb_embedding_free(lp), clbnb_embedding_free(lq);
    tm_free(&T), tm_free(&G), tm_free(&GT), tv_free(&GW), tv_free(&GB);
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

    /* StableEmbedding: every table dtype with every grad_out dtype, grad_table / LN-gradient dtypes
     * rotating; dims 1, 83, 128, 257; n 1 (each kind of index) and 29 (repeats, padding, out of range) */
    static const size_t dims[] = {1, 83, 128, 257};
    int k = 0;
    for (size_t d = 0; d < 4; d++)
        for (size_t a = 0; a < 3; a++)
            for (size_t b = 0; b < 3; b++, k++) {
                const clbnb_dtype ddt = dts[(a + b + d) % 3], vdt = dts[(a + 2 * b + d) % 3];
                const int which = (k % 5 == 4) ? 4 : (k % 4 == 3) ? (k % 8 < 4 ? 1 : 2) : 3;
                stable_case(ctx, q, &rng, 37, dims[d], 29, (k % 3 == 2) ? -1L : (long)(5 + d), 0, dts[a], dts[b], ddt,
                            vdt, which);
                stable_case(ctx, q, &rng, 5, dims[d], 1, 2, k % 4, dts[a], dts[b], ddt, vdt, 3);
            }
    stable_case(ctx, q, &rng, 300, 1000, 200, 7, 0, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32,
                3);
    test_finite_differences(ctx, q, &rng);
    test_out_of_order(ctx, q, &rng);
    test_stable_errors(ctx, q, &rng);
    clbnb_context_free(ctx);
    return test_finish();
}
