/* layers_test_util.h: helpers shared by the layer tests (test_layers_*.c): device matrices with a
 * padded ld and a byte offset, poisoned outputs whose padding is checked, error metrics and
 * full-precision CPU references. Header-only (static functions). */
#ifndef CLBNB_LAYERS_TEST_UTIL_H
#define CLBNB_LAYERS_TEST_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

typedef struct tmat {
    clbnb_matrix m;
    size_t bytes; /* whole buffer */
} tmat;

#define TM_OFF_ELEMS 3 /* every test matrix starts 3 elements into its buffer */

static inline tmat tm_alloc(clbnb_context *ctx, size_t rows, size_t cols, clbnb_dtype dt, size_t pad) {
    tmat t;
    size_t es = clbnb_dtype_size(dt), ld = cols + pad;
    t.bytes = (TM_OFF_ELEMS + rows * ld + 5) * es;
    t.m = (clbnb_matrix){test_buffer(ctx, t.bytes), TM_OFF_ELEMS * es, rows, cols, ld, dt};
    return t;
}

/* Uploads v (rows x cols floats) converted to dt; v is rounded in place to what dt holds. */
static inline tmat tm_upload(clbnb_context *ctx, float *v, size_t rows, size_t cols, clbnb_dtype dt, size_t pad) {
    tmat t = tm_alloc(ctx, rows, cols, dt, pad);
    size_t es = clbnb_dtype_size(dt);
    unsigned char *h = malloc(t.bytes);
    memset(h, TEST_POISON, t.bytes);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++)
            v[r * cols + c] = test_round_to_dtype(v[r * cols + c], dt);
        test_floats_to_dtype(v + r * cols, h + t.m.offset + r * t.m.ld * es, cols, dt);
    }
    test_upload(ctx, t.m.mem, 0, h, t.bytes);
    free(h);
    return t;
}

/* Downloads the region as floats; returns the number of bytes outside the region that are no
 * longer poisoned. */
static inline size_t tm_download(clbnb_context *ctx, const tmat *t, float *v) {
    size_t es = clbnb_dtype_size(t->m.dtype);
    unsigned char *h = malloc(t->bytes), *mask = calloc(t->bytes, 1);
    test_download(ctx, t->m.mem, 0, h, t->bytes);
    for (size_t r = 0; r < t->m.rows; r++) {
        size_t o = t->m.offset + r * t->m.ld * es;
        test_dtype_to_floats(h + o, v + r * t->m.cols, t->m.cols, t->m.dtype);
        memset(mask + o, 1, t->m.cols * es);
    }
    size_t touched = 0;
    for (size_t i = 0; i < t->bytes; i++)
        touched += !mask[i] && h[i] != TEST_POISON;
    free(h);
    free(mask);
    return touched;
}

/* 1 when every byte of the buffer is still poisoned. */
static inline int tm_untouched(clbnb_context *ctx, const tmat *t) {
    unsigned char *h = malloc(t->bytes);
    test_download(ctx, t->m.mem, 0, h, t->bytes);
    int ok = 1;
    for (size_t i = 0; i < t->bytes; i++)
        ok &= h[i] == TEST_POISON;
    free(h);
    return ok;
}

static inline void tm_free(tmat *t) {
    if (t->m.mem) clReleaseMemObject(t->m.mem);
    t->m.mem = NULL;
}

/* Vector helpers (offset 2 elements). */
typedef struct tvec {
    clbnb_vector v;
    size_t bytes;
} tvec;

static inline tvec tv_upload(clbnb_context *ctx, float *v, size_t n, clbnb_dtype dt) {
    tvec t;
    size_t es = clbnb_dtype_size(dt);
    t.bytes = (n + 4) * es;
    unsigned char *h = malloc(t.bytes);
    memset(h, TEST_POISON, t.bytes);
    for (size_t i = 0; i < n; i++)
        v[i] = test_round_to_dtype(v[i], dt);
    test_floats_to_dtype(v, h + 2 * es, n, dt);
    t.v = clbnb_vector_make(test_buffer_from(ctx, h, t.bytes), 2 * es, n, dt);
    free(h);
    return t;
}

static inline tvec tv_alloc(clbnb_context *ctx, size_t n, clbnb_dtype dt) {
    tvec t;
    size_t es = clbnb_dtype_size(dt);
    t.bytes = (n + 4) * es;
    t.v = clbnb_vector_make(test_buffer(ctx, t.bytes), 2 * es, n, dt);
    return t;
}

static inline size_t tv_download(clbnb_context *ctx, const tvec *t, float *v) {
    size_t es = clbnb_dtype_size(t->v.dtype);
    unsigned char *h = malloc(t->bytes);
    test_download(ctx, t->v.mem, 0, h, t->bytes);
    test_dtype_to_floats(h + t->v.offset, v, t->v.n, t->v.dtype);
    size_t touched = 0;
    for (size_t i = 0; i < t->bytes; i++)
        if (i < t->v.offset || i >= t->v.offset + t->v.n * es) touched += h[i] != TEST_POISON;
    free(h);
    return touched;
}

static inline void tv_free(tvec *t) {
    if (t->v.mem) clReleaseMemObject(t->v.mem);
    t->v.mem = NULL;
}

/* ---- data ------------------------------------------------------------------------------------- */
static inline void fill_normal(test_rng *r, float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        v[i] = test_rng_normal(r) * scale;
}
static inline void fill_uniform(test_rng *r, float *v, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * test_rng_uniform(r);
}
/* torch.nn.init.xavier_uniform_ for a [fan_out, fan_in] weight */
static inline void fill_xavier(test_rng *r, float *v, size_t fan_out, size_t fan_in) {
    float a = sqrtf(6.0f / (float)(fan_in + fan_out));
    fill_uniform(r, v, fan_out * fan_in, -a, a);
}

/* ---- references (double) --------------------------------------------------------------------- */
/* out[m, n] = sum_k x[m, k] w[n, k] (+ b[n]) */
static inline void ref_linear(const float *x, const float *w, const float *b, double *out, size_t m, size_t n,
                              size_t k) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double a = b ? b[j] : 0.0;
            for (size_t t = 0; t < k; t++)
                a += (double)x[i * k + t] * w[j * k + t];
            out[i * n + j] = a;
        }
}
/* gx[m, k] = sum_n g[m, n] w[n, k]; also the sum of |terms| per element (for tolerances) */
static inline void ref_grad_x(const float *g, const float *w, double *gx, double *abs_sum, size_t m, size_t n,
                              size_t k) {
    for (size_t i = 0; i < m; i++)
        for (size_t t = 0; t < k; t++) {
            double a = 0, s = 0;
            for (size_t j = 0; j < n; j++) {
                double p = (double)g[i * n + j] * w[j * k + t];
                a += p;
                s += fabs(p);
            }
            gx[i * k + t] = a;
            if (abs_sum) abs_sum[i * k + t] = s;
        }
}
/* gw[n, k] = sum_m g[m, n] x[m, k] */
static inline void ref_grad_w(const float *g, const float *x, double *gw, double *abs_sum, size_t m, size_t n,
                              size_t k) {
    for (size_t j = 0; j < n; j++)
        for (size_t t = 0; t < k; t++) {
            double a = 0, s = 0;
            for (size_t i = 0; i < m; i++) {
                double p = (double)g[i * n + j] * x[i * k + t];
                a += p;
                s += fabs(p);
            }
            gw[j * k + t] = a;
            if (abs_sum) abs_sum[j * k + t] = s;
        }
}
static inline void ref_colsum(const float *g, double *gb, double *abs_sum, size_t m, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double a = 0, s = 0;
        for (size_t i = 0; i < m; i++) {
            a += g[i * n + j];
            s += fabs(g[i * n + j]);
        }
        gb[j] = a;
        if (abs_sum) abs_sum[j] = s;
    }
}

/* Unit in the last place of dtype at magnitude |v| (f32: 2^-23 relative, f16 normal / subnormal, bf16). */
static inline double dtype_ulp(double v, clbnb_dtype dt) {
    double a = fabs(v);
    int e;
    if (a == 0) a = 1e-30;
    frexp(a, &e); /* a = f * 2^e, f in [0.5, 1) */
    if (dt == CLBNB_DTYPE_F16) {
        if (e - 1 < -14) return ldexp(1.0, -24);
        return ldexp(1.0, e - 1 - 10);
    }
    if (dt == CLBNB_DTYPE_BF16) return ldexp(1.0, e - 1 - 7);
    return ldexp(1.0, e - 1 - 23);
}

/* Number of elements where |got - ref| > ulp_dtype(ref) + 3e-5 * abs_sum (an f32-accumulated result
 * rounded once to dt, against the exact value). */
static inline size_t count_not_close(const float *got, const double *ref, const double *abs_sum, size_t n,
                                     clbnb_dtype dt, size_t *first_bad) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double tol = dtype_ulp(ref[i], dt) + 3e-5 * (abs_sum ? abs_sum[i] : fabs(ref[i])) + 1e-30;
        if (!(fabs((double)got[i] - ref[i]) <= tol)) {
            if (!bad && first_bad) *first_bad = i;
            bad++;
        }
    }
    return bad;
}

/* torch.isclose(a, b, atol, rtol): |a - b| <= atol + rtol * |b| ; returns the fraction NOT close. */
static inline double frac_not_close(const float *a, const double *b, size_t n, double atol, double rtol) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !(fabs((double)a[i] - b[i]) <= atol + rtol * fabs(b[i]));
    return n ? (double)bad / (double)n : 0.0;
}

static inline double mean_abs_err(const float *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] - b[i]);
    return n ? s / (double)n : 0.0;
}

static inline const char *dt_name(clbnb_dtype dt) { return clbnb_dtype_name(dt); }

#endif
