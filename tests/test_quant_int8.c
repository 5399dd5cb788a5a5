/* test_quant_int8.c: the int8 quantization operations (spec 5.1, 5.2, 5.6) against a C reference
 * written from the spec, on fresh random data (normal, plus injected outliers for threshold > 0,
 * plus an all-zero row), awkward shapes, non-trivial ld and byte offsets, all input dtypes, both
 * kernel paths, poisoned outputs (every element compared bit for bit, and every byte outside the
 * written region must keep the poison); bitsandbytes' accuracy bars (spec 8.3); argument
 * validation (each error class, nothing written). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/internal.h" /* clbnb_quantize_switchback_inputs (the SwitchBack layer's stage 1) */
#include "test_common.h"

/* ================================================================================================ */
/* C reference (spec 5.1, 5.2, 5.6)                                                                 */
/* ================================================================================================ */
/* float -> int8 code: rint (ties to even), NaN -> 0, saturating. */
static int8_t code_of(float v) {
    if (isnan(v)) return 0;
    float r = rintf(v);
    if (r > 127.0f) return 127;
    if (r < -128.0f) return -128;
    return (int8_t)r;
}

static int is_outlier(float a, float thr) { return thr > 0.0f && a >= thr; }

/* Row-wise: stats (float values), q [rows*cols] dense, outlier list. */
static void ref_rowwise(const float *x, size_t rows, size_t cols, int mode, float thr, int8_t *q, float *stats,
                        int *ocols, int *ocount) {
    unsigned char *flag = calloc(cols, 1);
    for (size_t r = 0; r < rows; r++) {
        float m = 0.0f;
        for (size_t c = 0; c < cols; c++) {
            float a = fabsf(x[r * cols + c]);
            if (is_outlier(a, thr))
                flag[c] = 1;
            else
                m = fmaxf(m, a);
        }
        stats[r] = m;
        float f = 127.0f / m;
        for (size_t c = 0; c < cols; c++) {
            float v = x[r * cols + c];
            int8_t code;
            if (is_outlier(fabsf(v), thr))
                code = 0;
            else if (mode == CLBNB_ROWWISE_LLM_INT8)
                code = code_of(v * f);
            else
                code = code_of(127.0f * (v / m));
            q[r * cols + c] = code;
        }
    }
    int n = 0;
    for (size_t c = 0; c < cols; c++) {
        if (!flag[c]) continue;
        if (ocols) ocols[n] = (int)c;
        n++;
        if (rows > 1)
            for (size_t r = 0; r < rows; r++)
                q[r * cols + c] = 0;
    }
    if (ocount) *ocount = n;
    free(flag);
}

static float ref_dequant(int8_t q, float s) {
    float v = (float)q * s;
    return v * 7.874015718698502e-3f;
}

static float ref_absmax(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

static int8_t ref_global_code(float v, float inv) { return code_of(127.0f * (v * inv)); }

static void ref_colmax(const float *x, size_t rows, size_t cols, float thr, float *m) {
    for (size_t c = 0; c < cols; c++) {
        float a = 0.0f;
        for (size_t r = 0; r < rows; r++) {
            float v = fabsf(x[r * cols + c]);
            if (!is_outlier(v, thr)) a = fmaxf(a, v);
        }
        m[c] = a;
    }
}

/* ================================================================================================ */
/* Device matrices with ld, byte offset and poisoned surroundings                                   */
/* ================================================================================================ */
typedef struct dmat {
    clbnb_matrix m;
    size_t bytes; /* whole buffer */
} dmat;

static size_t span_elems(size_t rows, size_t cols, size_t ld, size_t off) { return off + (rows - 1) * ld + cols; }

/* Input: values (rows*cols dense) stored in dtype; padding (between rows, before the offset and
 * after the end) holds 1e4, which would wreck any absmax a kernel wrongly read it into. */
static dmat upload_matrix(clbnb_context *ctx, const float *vals, size_t rows, size_t cols, size_t ld, size_t off,
                          clbnb_dtype dt) {
    size_t es = clbnb_dtype_size(dt), n = span_elems(rows, cols, ld, off) + 5;
    float *all = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        all[i] = 1e4f;
    for (size_t r = 0; r < rows; r++)
        memcpy(all + off + r * ld, vals + r * cols, cols * sizeof(float));
    void *bytes = malloc(n * es);
    test_floats_to_dtype(all, bytes, n, dt);
    dmat d;
    d.bytes = n * es;
    d.m.mem = test_buffer_from(ctx, bytes, d.bytes);
    d.m.offset = off * es;
    d.m.rows = rows;
    d.m.cols = cols;
    d.m.ld = ld;
    d.m.dtype = dt;
    free(all);
    free(bytes);
    return d;
}

static dmat out_matrix(clbnb_context *ctx, size_t rows, size_t cols, size_t ld, size_t off, clbnb_dtype dt) {
    size_t es = clbnb_dtype_size(dt);
    dmat d;
    d.bytes = (span_elems(rows, cols, ld, off) + 7) * es;
    d.m.mem = test_buffer(ctx, d.bytes);
    d.m.offset = off * es;
    d.m.rows = rows;
    d.m.cols = cols;
    d.m.ld = ld;
    d.m.dtype = dt;
    return d;
}

/* Compares a device matrix with `want` (rows*cols dense elements of the matrix dtype, as bytes);
 * every byte outside the region must still be poison. Returns the number of bad elements/bytes. */
static size_t check_matrix_bytes(clbnb_context *ctx, const dmat *d, const void *want, const char *what) {
    size_t es = clbnb_dtype_size(d->m.dtype);
    unsigned char *got = malloc(d->bytes);
    unsigned char *inside = calloc(d->bytes, 1);
    test_download(ctx, d->m.mem, 0, got, d->bytes);
    size_t bad = 0, shown = 0;
    for (size_t r = 0; r < d->m.rows; r++) {
        for (size_t c = 0; c < d->m.cols; c++) {
            size_t at = d->m.offset + (r * d->m.ld + c) * es;
            memset(inside + at, 1, es);
            if (memcmp(got + at, (const unsigned char *)want + (r * d->m.cols + c) * es, es) != 0) {
                if (shown++ < 5) {
                    uint32_t g = 0, w = 0;
                    memcpy(&g, got + at, es);
                    memcpy(&w, (const unsigned char *)want + (r * d->m.cols + c) * es, es);
                    fprintf(stderr, "  %s[%zu,%zu]: got 0x%x want 0x%x\n", what, r, c, g, w);
                }
                bad++;
            }
        }
    }
    size_t outside = 0;
    for (size_t i = 0; i < d->bytes; i++)
        outside += !inside[i] && got[i] != TEST_POISON;
    if (outside) fprintf(stderr, "  %s: %zu bytes outside the region were written\n", what, outside);
    free(got);
    free(inside);
    return bad + outside;
}

/* Vector output: n elements at element offset `off` in a poisoned buffer of off+n+3 elements. */
typedef struct dvec {
    clbnb_vector v;
    size_t bytes;
} dvec;

static dvec out_vector(clbnb_context *ctx, size_t n, size_t off, clbnb_dtype dt) {
    size_t es = clbnb_dtype_size(dt);
    dvec d;
    d.bytes = (off + n + 3) * es;
    d.v = clbnb_vector_make(test_buffer(ctx, d.bytes), off * es, n, dt);
    return d;
}

/* Compares the first `n` elements of a vector with `want` bytes; the rest of the buffer must be
 * poison, except elements [n, v.n) when `tail_free` (outlier_cols past the count). */
static size_t check_vector_bytes(clbnb_context *ctx, const dvec *d, const void *want, size_t n, int tail_free,
                                 const char *what) {
    size_t es = clbnb_dtype_size(d->v.dtype);
    unsigned char *got = malloc(d->bytes);
    test_download(ctx, d->v.mem, 0, got, d->bytes);
    size_t bad = 0, shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(got + d->v.offset + i * es, (const unsigned char *)want + i * es, es) != 0) {
            if (shown++ < 5) {
                uint32_t g = 0, w = 0;
                memcpy(&g, got + d->v.offset + i * es, es);
                memcpy(&w, (const unsigned char *)want + i * es, es);
                fprintf(stderr, "  %s[%zu]: got 0x%x want 0x%x\n", what, i, g, w);
            }
            bad++;
        }
    }
    size_t lo = d->v.offset, hi = d->v.offset + (tail_free ? d->v.n : n) * es;
    size_t outside = 0;
    for (size_t i = 0; i < d->bytes; i++)
        outside += (i < lo || i >= hi) && got[i] != TEST_POISON;
    if (outside) fprintf(stderr, "  %s: %zu bytes outside were written\n", what, outside);
    free(got);
    return bad + outside;
}

static void release_m(dmat *d) { clReleaseMemObject(d->m.mem); }
static void release_v(dvec *d) { clReleaseMemObject(d->v.mem); }

/* ================================================================================================ */
/* Random data                                                                                      */
/* ================================================================================================ */
static test_rng rng;

static size_t rnd(size_t n) { return n ? (size_t)(test_rng_next(&rng) % n) : 0; }

/* DATA_TIES_*: f32 values within an ulp of the code boundaries of the SwitchBack division,
 * x = (k + 1/2) * m / 127 (+-1 ulp), m the row's (or column's) maximum with a random mantissa:
 * a quotient x / m one ulp off flips such codes (a reciprocal-multiply shortcut for the
 * correctly rounded division would fail here). */
typedef enum { DATA_NORMAL, DATA_TIES_ROW, DATA_TIES_COL, DATA_WIDE } data_kind;
static data_kind data_mode = DATA_NORMAL;

static float tie_value(float m) {
    int k = (int)rnd(254) - 127;
    float v = (float)(((double)k + 0.5) * (double)m / 127.0);
    int nudge = (int)rnd(3) - 1;
    return nudge ? nextafterf(v, nudge > 0 ? INFINITY : -INFINITY) : v;
}

/* mostly within 2^+-20; one in four at the ends of the f32 range (2^-130 .. 2^-124, subnormal
 * included, and 2^122 .. 2^126), where the reciprocal shortcut has to scale */
static float tie_max(void) {
    int e = (int)rnd(40) - 20;
    if (rnd(4) == 0) e = rnd(2) ? -130 + (int)rnd(7) : 122 + (int)rnd(5);
    float m = (1.0f + test_rng_uniform(&rng)) * ldexpf(1.0f, e);
    return rnd(2) ? m : -m;
}

static float *make_tie_data(size_t rows, size_t cols, int by_column) {
    float *x = malloc(rows * cols * sizeof(float));
    size_t outer = by_column ? cols : rows, inner = by_column ? rows : cols;
    for (size_t o = 0; o < outer; o++) {
        float m = tie_max();
        size_t at = rnd(inner);
        for (size_t i = 0; i < inner; i++) {
            size_t idx = by_column ? i * cols + o : o * cols + i;
            x[idx] = i == at ? m : tie_value(fabsf(m));
        }
    }
    return x;
}

/* randn * scale rounded to dtype; with `outliers`, a few random columns get |x| in [8, 20] in
 * some rows; for rows >= 3 row 1 is all zero (absmax-0 row). DATA_TIES_*: tie data; DATA_WIDE: see
 * below. */
static float *make_data(size_t rows, size_t cols, clbnb_dtype dt, int outliers, float scale) {
    if (data_mode == DATA_TIES_ROW || data_mode == DATA_TIES_COL)
        return make_tie_data(rows, cols, data_mode == DATA_TIES_COL);
    float *x = malloc(rows * cols * sizeof(float));
    for (size_t i = 0; i < rows * cols; i++)
        x[i] = test_round_to_dtype(test_rng_normal(&rng) * scale, dt);
    if (data_mode == DATA_WIDE) {
        /* every 5th column 2^-128 times smaller (below the range of the reciprocal shortcut, where
         * it scales; zero in fp16), with f32 / bf16 every 5th from the third 2^124 times larger
         * (above that range; x * 127 past the f32 range), and elements in [600, 60000] whose
         * x * 127 overflows fp16 */
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c += 5) {
                x[r * cols + c] = test_round_to_dtype(ldexpf(x[r * cols + c], -128), dt);
                if (dt != CLBNB_DTYPE_F16 && c + 2 < cols)
                    x[r * cols + c + 2] = test_round_to_dtype(ldexpf(x[r * cols + c + 2], 124), dt);
            }
        for (size_t k = 0; k < rows * cols / 7 + 1; k++) {
            float v = 600.0f + 59400.0f * test_rng_uniform(&rng);
            x[rnd(rows * cols)] = test_round_to_dtype(rnd(2) ? v : -v, dt);
        }
    }
    if (outliers) {
        size_t ncol = 1 + rnd(4);
        for (size_t k = 0; k < ncol; k++) {
            size_t c = rnd(cols);
            size_t hits = 1 + rnd(rows < 4 ? rows : 4);
            for (size_t h = 0; h < hits; h++) {
                float v = 8.0f + 12.0f * test_rng_uniform(&rng);
                x[rnd(rows) * cols + c] = test_round_to_dtype(rnd(2) ? v : -v, dt);
            }
        }
        /* exactly the threshold counts as an outlier */
        if (rows * cols > 10) x[rnd(rows * cols)] = 6.0f;
    }
    if (rows >= 3)
        for (size_t c = 0; c < cols; c++)
            x[cols + c] = 0.0f;
    return x;
}

static const clbnb_dtype float_dtypes[3] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};

static void store_stat(void *dst, size_t i, float v, clbnb_dtype dt) {
    if (dt == CLBNB_DTYPE_F32)
        ((float *)dst)[i] = v;
    else if (dt == CLBNB_DTYPE_F16)
        ((uint16_t *)dst)[i] = test_float_to_half(v);
    else
        ((uint16_t *)dst)[i] = test_float_to_bf16(v);
}

/* Layout of a case: contiguous, or ld > cols with offsets. */
typedef struct layout {
    size_t ld_pad, off;
} layout;

static layout pick_layout(int contiguous) {
    layout l = {0, 0};
    if (!contiguous) {
        l.ld_pad = 1 + rnd(5);
        l.off = 1 + rnd(7);
    }
    return l;
}

/* ================================================================================================ */
/* Tests                                                                                            */
/* ================================================================================================ */
static const char *path_name_of(clbnb_path p) { return p == CLBNB_PATH_CPU ? "cpu" : "generic"; }

static void test_rowwise_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t rows, size_t cols,
                              clbnb_dtype dt, clbnb_rowwise_mode mode, float thr, clbnb_dtype sdt, int contiguous) {
    layout lx = pick_layout(contiguous), lq = pick_layout(contiguous);
    float *x = make_data(rows, cols, dt, thr > 0.0f, 1.0f);
    int8_t *want = malloc(rows * cols);
    float *stats = malloc(rows * sizeof(float));
    int *ocols = malloc(cols * sizeof(int)), ocount = 0;
    ref_rowwise(x, rows, cols, mode, thr, want, stats, ocols, &ocount);
    unsigned char *want_s = malloc(rows * 4);
    for (size_t r = 0; r < rows; r++)
        store_stat(want_s, r, stats[r], sdt);

    dmat dx = upload_matrix(ctx, x, rows, cols, cols + lx.ld_pad, lx.off, dt);
    dmat dq = out_matrix(ctx, rows, cols, cols + lq.ld_pad, lq.off, CLBNB_DTYPE_I8);
    dvec ds = out_vector(ctx, rows, 1 + rnd(3), sdt);
    dvec doc = out_vector(ctx, cols, rnd(3), CLBNB_DTYPE_I32), dcnt = out_vector(ctx, 1, rnd(3), CLBNB_DTYPE_I32);
    /* threshold 0: alternately pass no outlier outputs and a count (which must become 0) */
    int give_count = thr > 0.0f || rnd(2);
    cl_event ev = NULL;
    clbnb_status s = clbnb_quantize_rowwise(ctx, q, &dx.m, &dq.m, &ds.v, mode, thr, thr > 0.0f ? &doc.v : NULL,
                                            give_count ? &dcnt.v : NULL, 0, NULL, &ev);
    char what[200];
    snprintf(what, sizeof what, "rowwise %s %zux%zu %s mode=%d thr=%g stats=%s ld+%zu off=%zu", path_name_of(path),
             rows, cols, clbnb_dtype_name(dt), (int)mode, thr, clbnb_dtype_name(sdt), lx.ld_pad, lx.off);
    TEST_CHECK(s == CLBNB_SUCCESS && ev, "%s: %s", what, clbnb_status_string(s));
    if (ev) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
    }
    size_t bq = check_matrix_bytes(ctx, &dq, want, "q");
    size_t bs = check_vector_bytes(ctx, &ds, want_s, rows, 0, "stats");
    TEST_CHECK(bq == 0 && bs == 0, "%s: %zu codes, %zu stats wrong", what, bq, bs);
    if (give_count) {
        int32_t cnt = ocount;
        size_t bc = check_vector_bytes(ctx, &dcnt, &cnt, 1, 0, "count");
        size_t bo = thr > 0.0f ? check_vector_bytes(ctx, &doc, ocols, (size_t)ocount, 1, "outlier_cols") : 0;
        TEST_CHECK(bc == 0 && bo == 0, "%s: outlier count %d (%zu wrong) / cols (%zu wrong)", what, ocount, bc, bo);
    }
    release_m(&dx);
    release_m(&dq);
    release_v(&ds);
    release_v(&doc);
    release_v(&dcnt);
    free(x);
    free(want);
    free(stats);
    free(ocols);
    free(want_s);
}

static void test_dequant_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t rows, size_t cols,
                              clbnb_dtype odt, clbnb_dtype sdt, clbnb_rowwise_mode mode, int contiguous) {
    layout lq = pick_layout(contiguous), lo = pick_layout(contiguous);
    int8_t *codes = malloc(rows * cols);
    for (size_t i = 0; i < rows * cols; i++)
        codes[i] = (int8_t)(rnd(256) - 128);
    float *st = malloc(rows * sizeof(float));
    unsigned char *st_bytes = malloc(rows * 4);
    for (size_t r = 0; r < rows; r++) {
        st[r] = test_round_to_dtype(fabsf(test_rng_normal(&rng)) * 3.0f + 0.01f, sdt);
        store_stat(st_bytes, r, st[r], sdt);
    }
    unsigned char *want = malloc(rows * cols * 4);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            store_stat(want, r * cols + c, ref_dequant(codes[r * cols + c], st[r]), odt);
    /* q with ld and offset */
    size_t ldq = cols + lq.ld_pad, qn = span_elems(rows, cols, ldq, lq.off) + 3;
    int8_t *qbuf = malloc(qn);
    memset(qbuf, 0x7f, qn);
    for (size_t r = 0; r < rows; r++)
        memcpy(qbuf + lq.off + r * ldq, codes + r * cols, cols);
    clbnb_matrix mq = {test_buffer_from(ctx, qbuf, qn), lq.off, rows, cols, ldq, CLBNB_DTYPE_I8};
    size_t soff = rnd(3), es = clbnb_dtype_size(sdt);
    unsigned char *sbuf = malloc((soff + rows) * es);
    memset(sbuf, 0x7b, soff * es);
    memcpy(sbuf + soff * es, st_bytes, rows * es);
    clbnb_vector vs = clbnb_vector_make(test_buffer_from(ctx, sbuf, (soff + rows) * es), soff * es, rows, sdt);
    dmat dout = out_matrix(ctx, rows, cols, cols + lo.ld_pad, lo.off, odt);
    clbnb_status s = clbnb_dequantize_rowwise(ctx, q, &mq, &vs, &dout.m, mode, 0, NULL, NULL);
    size_t bad = check_matrix_bytes(ctx, &dout, want, "out");
    TEST_CHECK(s == CLBNB_SUCCESS && bad == 0, "dequant %s %zux%zu out=%s stats=%s mode=%d: %s, %zu wrong",
               path_name_of(path), rows, cols, clbnb_dtype_name(odt), clbnb_dtype_name(sdt), (int)mode,
               clbnb_status_string(s), bad);
    clReleaseMemObject(mq.mem);
    clReleaseMemObject(vs.mem);
    release_m(&dout);
    free(codes);
    free(st);
    free(st_bytes);
    free(want);
    free(qbuf);
    free(sbuf);
}

static void test_global_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t rows, size_t cols,
                             clbnb_dtype dt, int transpose, clbnb_dtype adt, int contiguous) {
    layout lx = pick_layout(contiguous), lq = pick_layout(contiguous);
    float *x = make_data(rows, cols, dt, 0, 1.0f);
    /* the maximum sits at a random place (sometimes the last element) */
    float big = test_round_to_dtype(4.0f + test_rng_uniform(&rng), dt);
    x[rnd(3) == 0 ? rows * cols - 1 : rnd(rows * cols)] = rnd(2) ? big : -big;
    float a = ref_absmax(x, rows * cols), inv = 1.0f / a;
    size_t qr = transpose ? cols : rows, qc = transpose ? rows : cols;
    int8_t *want = malloc(rows * cols);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            int8_t code = ref_global_code(x[r * cols + c], inv);
            if (transpose)
                want[c * rows + r] = code;
            else
                want[r * cols + c] = code;
        }
    unsigned char want_a[4];
    store_stat(want_a, 0, a, adt);
    dmat dx = upload_matrix(ctx, x, rows, cols, cols + lx.ld_pad, lx.off, dt);
    dmat dq = out_matrix(ctx, qr, qc, qc + lq.ld_pad, lq.off, CLBNB_DTYPE_I8);
    dvec da = out_vector(ctx, 1 + rnd(2), rnd(3), adt);
    clbnb_status s = clbnb_quantize_global(ctx, q, &dx.m, &dq.m, &da.v, transpose, 0, NULL, NULL);
    size_t bq = check_matrix_bytes(ctx, &dq, want, "q");
    size_t ba = check_vector_bytes(ctx, &da, want_a, 1, 1, "absmax");
    TEST_CHECK(s == CLBNB_SUCCESS && bq == 0 && ba == 0,
               "global %s %zux%zu %s transpose=%d absmax=%s ld+%zu: %s, %zu/%zu wrong", path_name_of(path), rows, cols,
               clbnb_dtype_name(dt), transpose, clbnb_dtype_name(adt), lx.ld_pad, clbnb_status_string(s), bq, ba);
    release_m(&dx);
    release_m(&dq);
    release_v(&da);
    free(x);
    free(want);
}

/* The SwitchBack forward's two quantizations in one call (src/quant_int8.c): x row-wise in
 * SwitchBack mode and w globally, every byte against the reference (GENERIC with one dtype: the
 * fused launch, whose interleaved work-groups must cover every row of x and every chunk of w;
 * otherwise the two public operations). */
static void test_switchback_inputs_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t xr, size_t xc,
                                        size_t wr, size_t wc, clbnb_dtype xdt, clbnb_dtype wdt, int contiguous,
                                        size_t max_at) {
    layout lx = pick_layout(contiguous), lxq = pick_layout(contiguous), lw = pick_layout(contiguous),
           lwq = pick_layout(contiguous);
    float *x = make_data(xr, xc, xdt, 0, 1.0f), *w = make_data(wr, wc, wdt, 0, 0.25f);
    /* w's maximum at max_at, or (SIZE_MAX) at a random place, sometimes the last element */
    float big = test_round_to_dtype(2.0f + test_rng_uniform(&rng), wdt);
    if (max_at == SIZE_MAX) max_at = rnd(3) == 0 ? wr * wc - 1 : rnd(wr * wc);
    w[max_at] = rnd(2) ? big : -big;
    int8_t *want_xq = malloc(xr * xc), *want_wq = malloc(wr * wc);
    float *stats = malloc(xr * sizeof(float));
    int ocount = 0;
    ref_rowwise(x, xr, xc, CLBNB_ROWWISE_SWITCHBACK, 0.0f, want_xq, stats, NULL, &ocount);
    unsigned char *want_s = malloc(xr * 2), want_a[4];
    for (size_t r = 0; r < xr; r++)
        store_stat(want_s, r, stats[r], CLBNB_DTYPE_F16);
    float a = ref_absmax(w, wr * wc);
    for (size_t i = 0; i < wr * wc; i++)
        want_wq[i] = ref_global_code(w[i], 1.0f / a);
    const clbnb_dtype adt = wdt == CLBNB_DTYPE_F16 ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32; /* as the layer keeps it */
    store_stat(want_a, 0, a, adt);

    dmat dx = upload_matrix(ctx, x, xr, xc, xc + lx.ld_pad, lx.off, xdt);
    dmat dw = upload_matrix(ctx, w, wr, wc, wc + lw.ld_pad, lw.off, wdt);
    dmat dxq = out_matrix(ctx, xr, xc, xc + lxq.ld_pad, lxq.off, CLBNB_DTYPE_I8);
    dmat dwq = out_matrix(ctx, wr, wc, wc + lwq.ld_pad, lwq.off, CLBNB_DTYPE_I8);
    dvec ds = out_vector(ctx, xr, 1 + rnd(3), CLBNB_DTYPE_F16), da = out_vector(ctx, 1, rnd(3), adt);
    cl_event ev = NULL;
    clbnb_status s = clbnb_quantize_switchback_inputs(ctx, q, &dx.m, &dxq.m, &ds.v, &dw.m, &dwq.m, &da.v, 0, NULL, &ev);
    if (ev) {
        clWaitForEvents(1, &ev);
        clReleaseEvent(ev);
    }
    size_t bxq = check_matrix_bytes(ctx, &dxq, want_xq, "xq"), bs = check_vector_bytes(ctx, &ds, want_s, xr, 0, "sx");
    size_t bwq = check_matrix_bytes(ctx, &dwq, want_wq, "wq"), ba = check_vector_bytes(ctx, &da, want_a, 1, 0, "sw");
    TEST_CHECK(s == CLBNB_SUCCESS && ev && bxq == 0 && bs == 0 && bwq == 0 && ba == 0,
               "switchback inputs %s x %zux%zu %s, w %zux%zu %s, ld+%zu: %s; wrong: %zu xq, %zu sx, %zu wq, %zu sw",
               path_name_of(path), xr, xc, clbnb_dtype_name(xdt), wr, wc, clbnb_dtype_name(wdt), lx.ld_pad,
               clbnb_status_string(s), bxq, bs, bwq, ba);
    release_m(&dx);
    release_m(&dw);
    release_m(&dxq);
    release_m(&dwq);
    release_v(&ds);
    release_v(&da);
    free(x);
    free(w);
    free(want_xq);
    free(want_wq);
    free(stats);
    free(want_s);
}

/* Many global quantizations (each with its own partials scratch) enqueued back to back on two
 * queues with no waits: the scratch pool (src/scratch_pool.c) must never hand out a buffer that a
 * pending command still uses. Each job's data has its own scale, so partials shared between jobs
 * give a wrong absmax; more jobs than pool slots, and a second round reusing released buffers. */
static void test_global_pipelined(clbnb_context *ctx, cl_command_queue q, clbnb_path path) {
    enum { JOBS = 12 };
    cl_int err;
    cl_command_queue q2 = clCreateCommandQueue(clbnb_context_cl_context(ctx), clbnb_context_device(ctx), 0, &err);
    TEST_CHECK(err == CL_SUCCESS, "second queue: %d", (int)err);
    if (err != CL_SUCCESS) return;
    for (int round = 0; round < 2; round++) {
        float *x[JOBS];
        int8_t *want[JOBS];
        float amax[JOBS];
        dmat dx[JOBS], dq[JOBS];
        dvec da[JOBS];
        clbnb_status st[JOBS];
        size_t rows[JOBS], cols[JOBS];
        for (int j = 0; j < JOBS; j++) {
            rows[j] = 1 + rnd(300);
            cols[j] = 1 + rnd(700);
            x[j] = make_data(rows[j], cols[j], CLBNB_DTYPE_F32, 0, ldexpf(1.0f, j - 6));
            amax[j] = ref_absmax(x[j], rows[j] * cols[j]);
            want[j] = malloc(rows[j] * cols[j]);
            for (size_t i = 0; i < rows[j] * cols[j]; i++)
                want[j][i] = ref_global_code(x[j][i], 1.0f / amax[j]);
            dx[j] = upload_matrix(ctx, x[j], rows[j], cols[j], cols[j], 0, CLBNB_DTYPE_F32);
            dq[j] = out_matrix(ctx, rows[j], cols[j], cols[j], 0, CLBNB_DTYPE_I8);
            da[j] = out_vector(ctx, 1, 0, CLBNB_DTYPE_F32);
        }
        for (int j = 0; j < JOBS; j++)
            st[j] = clbnb_quantize_global(ctx, j % 2 ? q2 : q, &dx[j].m, &dq[j].m, &da[j].v, 0, 0, NULL, NULL);
        clFinish(q);
        clFinish(q2);
        for (int j = 0; j < JOBS; j++) {
            size_t bq = check_matrix_bytes(ctx, &dq[j], want[j], "q");
            size_t ba = check_vector_bytes(ctx, &da[j], &amax[j], 1, 1, "absmax");
            TEST_CHECK(st[j] == CLBNB_SUCCESS && bq == 0 && ba == 0,
                       "global pipelined %s round %d job %d %zux%zu: %s, %zu/%zu wrong", path_name_of(path), round, j,
                       rows[j], cols[j], clbnb_status_string(st[j]), bq, ba);
            release_m(&dx[j]);
            release_m(&dq[j]);
            release_v(&da[j]);
            free(x[j]);
            free(want[j]);
        }
    }
    clReleaseCommandQueue(q2);
}

static void test_columnwise_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t rows, size_t cols,
                                 clbnb_dtype dt, clbnb_dtype sdt, int contiguous) {
    layout lx = pick_layout(contiguous), lq = pick_layout(contiguous);
    float *x = make_data(rows, cols, dt, 0, 1.0f);
    if (cols >= 3 && rows >= 1)
        for (size_t r = 0; r < rows; r++)
            x[r * cols + 2] = 0.0f; /* an all-zero column */
    float *m = malloc(cols * sizeof(float));
    ref_colmax(x, rows, cols, 0.0f, m);
    int8_t *want = malloc(rows * cols);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            want[c * rows + r] = code_of(127.0f * (x[r * cols + c] / m[c]));
    unsigned char *want_s = malloc(cols * 4);
    for (size_t c = 0; c < cols; c++)
        store_stat(want_s, c, m[c], sdt);
    dmat dx = upload_matrix(ctx, x, rows, cols, cols + lx.ld_pad, lx.off, dt);
    dmat dq = out_matrix(ctx, cols, rows, rows + lq.ld_pad, lq.off, CLBNB_DTYPE_I8);
    dvec ds = out_vector(ctx, cols, rnd(3), sdt);
    clbnb_status s = clbnb_quantize_columnwise_transpose(ctx, q, &dx.m, &dq.m, &ds.v, 0, NULL, NULL);
    size_t bq = check_matrix_bytes(ctx, &dq, want, "qT");
    size_t bs = check_vector_bytes(ctx, &ds, want_s, cols, 0, "col_stats");
    TEST_CHECK(s == CLBNB_SUCCESS && bq == 0 && bs == 0, "columnwise %s %zux%zu %s stats=%s: %s, %zu/%zu wrong",
               path_name_of(path), rows, cols, clbnb_dtype_name(dt), clbnb_dtype_name(sdt), clbnb_status_string(s), bq,
               bs);
    release_m(&dx);
    release_m(&dq);
    release_v(&ds);
    free(x);
    free(m);
    free(want);
    free(want_s);
}

static void test_double_quant_case(clbnb_context *ctx, cl_command_queue q, clbnb_path path, size_t rows, size_t cols,
                                   clbnb_dtype dt, float thr, int contiguous) {
    layout lx = pick_layout(contiguous), lr = pick_layout(contiguous), lc = pick_layout(contiguous);
    float *x = make_data(rows, cols, dt, thr > 0.0f, 1.0f);
    int8_t *want_r = malloc(rows * cols), *want_c = malloc(rows * cols);
    float *rs = malloc(rows * sizeof(float)), *cs = malloc(cols * sizeof(float));
    int *ocols = malloc(cols * sizeof(int)), ocount = 0;
    ref_rowwise(x, rows, cols, CLBNB_ROWWISE_LLM_INT8, thr, want_r, rs, ocols, &ocount);
    ref_colmax(x, rows, cols, thr, cs);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float v = x[r * cols + c];
            want_c[r * cols + c] = is_outlier(fabsf(v), thr) ? 0 : code_of(test_round_to_dtype(v * 127.0f, dt) / cs[c]);
        }
    dmat dx = upload_matrix(ctx, x, rows, cols, cols + lx.ld_pad, lx.off, dt);
    dmat dr = out_matrix(ctx, rows, cols, cols + lr.ld_pad, lr.off, CLBNB_DTYPE_I8);
    dmat dc = out_matrix(ctx, rows, cols, cols + lc.ld_pad, lc.off, CLBNB_DTYPE_I8);
    dvec drs = out_vector(ctx, rows, rnd(3), CLBNB_DTYPE_F32), dcs = out_vector(ctx, cols, rnd(3), CLBNB_DTYPE_F32);
    dvec doc = out_vector(ctx, cols, rnd(3), CLBNB_DTYPE_I32), dcnt = out_vector(ctx, 1, rnd(3), CLBNB_DTYPE_I32);
    clbnb_status s = clbnb_int8_double_quant(ctx, q, &dx.m, thr, &dr.m, &dc.m, &drs.v, &dcs.v,
                                             thr > 0.0f ? &doc.v : NULL, thr > 0.0f ? &dcnt.v : NULL, 0, NULL, NULL);
    size_t b1 = check_matrix_bytes(ctx, &dr, want_r, "out_row");
    size_t b2 = check_matrix_bytes(ctx, &dc, want_c, "out_col");
    size_t b3 = check_vector_bytes(ctx, &drs, rs, rows, 0, "row_stats");
    size_t b4 = check_vector_bytes(ctx, &dcs, cs, cols, 0, "col_stats");
    size_t b5 = 0;
    if (thr > 0.0f) {
        int32_t cnt = ocount;
        b5 = check_vector_bytes(ctx, &dcnt, &cnt, 1, 0, "count") +
             check_vector_bytes(ctx, &doc, ocols, (size_t)ocount, 1, "outlier_cols");
    }
    TEST_CHECK(s == CLBNB_SUCCESS && b1 + b2 + b3 + b4 + b5 == 0,
               "double_quant %s %zux%zu %s thr=%g: %s, wrong: row %zu col %zu rs %zu cs %zu outl %zu",
               path_name_of(path), rows, cols, clbnb_dtype_name(dt), thr, clbnb_status_string(s), b1, b2, b3, b4, b5);
    release_m(&dx);
    release_m(&dr);
    release_m(&dc);
    release_v(&drs);
    release_v(&dcs);
    release_v(&doc);
    release_v(&dcnt);
    free(x);
    free(want_r);
    free(want_c);
    free(rs);
    free(cs);
    free(ocols);
}

/* ---- spec 8.3 accuracy bars on fresh randn data ----------------------------------------------- */
static void test_accuracy_bars(clbnb_context *ctx, cl_command_queue q) {
    size_t rows = 256, cols = 512;
    /* test_int8_double_quant: row and column codes within +-1 of round(x*127/absmax) */
    float *x = make_data(rows, cols, CLBNB_DTYPE_F16, 0, 1.0f);
    dmat dx = upload_matrix(ctx, x, rows, cols, cols, 0, CLBNB_DTYPE_F16);
    dmat dr = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_I8),
         dc = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_I8);
    dvec drs = out_vector(ctx, rows, 0, CLBNB_DTYPE_F32), dcs = out_vector(ctx, cols, 0, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &dx.m, 0.0f, &dr.m, &dc.m, &drs.v, &dcs.v, NULL, NULL, 0, NULL, NULL),
                CLBNB_SUCCESS);
    int8_t *qr = malloc(rows * cols), *qc = malloc(rows * cols);
    float *rs = malloc(rows * 4), *cs = malloc(cols * 4);
    test_download(ctx, dr.m.mem, 0, qr, rows * cols);
    test_download(ctx, dc.m.mem, 0, qc, rows * cols);
    test_download(ctx, drs.v.mem, 0, rs, rows * 4);
    test_download(ctx, dcs.v.mem, 0, cs, cols * 4);
    size_t off_by_more = 0, off_by_one = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double v = x[r * cols + c];
            /* a zero row / column quantizes to code 0 (and lround(inf) would be undefined) */
            long er = rs[r] > 0 ? lround(v * 127.0 / rs[r]) : 0, ec = cs[c] > 0 ? lround(v * 127.0 / cs[c]) : 0;
            long d1 = labs(er - qr[r * cols + c]), d2 = labs(ec - qc[r * cols + c]);
            off_by_more += (d1 > 1) + (d2 > 1);
            off_by_one += (d1 == 1) + (d2 == 1);
        }
    /* bnb: assert_close(atol=1) on both (its 1/500 allowance counts codes not within 1) */
    TEST_CHECK(off_by_more == 0, "double quant accuracy: %zu codes off by > 1 (%zu off by 1)", off_by_more, off_by_one);
    release_m(&dx);
    release_m(&dr);
    release_m(&dc);
    release_v(&drs);
    release_v(&dcs);
    free(x);
    /* test_coo_int8_vectorwise_quant (threshold 3): after zeroing outlier columns, q*stats/127 ~= x */
    x = make_data(rows, cols, CLBNB_DTYPE_F16, 0, 1.0f);
    dx = upload_matrix(ctx, x, rows, cols, cols, 0, CLBNB_DTYPE_F16);
    dr = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_I8);
    drs = out_vector(ctx, rows, 0, CLBNB_DTYPE_F32);
    dvec doc = out_vector(ctx, cols, 0, CLBNB_DTYPE_I32), dcnt = out_vector(ctx, 1, 0, CLBNB_DTYPE_I32);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &dx.m, &dr.m, &drs.v, CLBNB_ROWWISE_LLM_INT8, 3.0f, &doc.v, &dcnt.v, 0,
                                       NULL, NULL),
                CLBNB_SUCCESS);
    int32_t cnt = 0;
    int32_t *oc = malloc(cols * 4);
    test_download(ctx, dr.m.mem, 0, qr, rows * cols);
    test_download(ctx, drs.v.mem, 0, rs, rows * 4);
    test_download(ctx, dcnt.v.mem, 0, &cnt, 4);
    test_download(ctx, doc.v.mem, 0, oc, cols * 4);
    unsigned char *is_oc = calloc(cols, 1);
    for (int32_t i = 0; i < cnt && i < (int32_t)cols; i++)
        is_oc[oc[i]] = 1;
    size_t outside = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double v = is_oc[c] ? 0.0 : x[r * cols + c];
            double d = (double)qr[r * cols + c] * rs[r] / 127.0;
            outside += fabs(d - v) > 0.015 + 0.05 * fabs(v);
        }
    TEST_CHECK(cnt > 0 && outside == 0, "coo vectorwise accuracy: %d outlier cols, %zu elements outside tolerance", cnt,
               outside);
    release_m(&dx);
    release_m(&dr);
    release_v(&drs);
    release_v(&doc);
    release_v(&dcnt);
    free(x);
    free(qr);
    free(qc);
    free(rs);
    free(cs);
    free(oc);
    free(is_oc);
}

/* ---- argument validation: every error class, nothing written ---------------------------------- */
static void test_validation(clbnb_context *ctx, cl_command_queue q) {
    size_t rows = 4, cols = 8;
    float xv[32];
    for (int i = 0; i < 32; i++)
        xv[i] = (float)i - 10.0f;
    dmat dx = upload_matrix(ctx, xv, rows, cols, cols, 0, CLBNB_DTYPE_F32);
    dmat dq = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_I8),
         dq2 = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_I8);
    dmat dqt = out_matrix(ctx, cols, rows, rows, 0, CLBNB_DTYPE_I8);
    dmat dout = out_matrix(ctx, rows, cols, cols, 0, CLBNB_DTYPE_F32);
    dvec ds = out_vector(ctx, rows, 0, CLBNB_DTYPE_F32), dcs = out_vector(ctx, cols, 0, CLBNB_DTYPE_F32);
    dvec doc = out_vector(ctx, cols, 0, CLBNB_DTYPE_I32), dcnt = out_vector(ctx, 1, 0, CLBNB_DTYPE_I32);
    clbnb_matrix x = dx.m, m;
    clbnb_vector v;
    const clbnb_rowwise_mode LLM = CLBNB_ROWWISE_LLM_INT8;
    /* rowwise */
    TEST_STATUS(clbnb_quantize_rowwise(NULL, q, &x, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, NULL, &x, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, NULL, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, NULL, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, NULL, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 6.0f, NULL, &dcnt.v, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 6.0f, &doc.v, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    m = x;
    m.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &m, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    m = dq.m;
    m.dtype = CLBNB_DTYPE_U8;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    v = ds.v;
    v.dtype = CLBNB_DTYPE_BF16;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    v = doc.v;
    v.dtype = CLBNB_DTYPE_F32;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 6.0f, &v, &dcnt.v, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    m = dq.m;
    m.rows = 3;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    m = x;
    m.cols = 0;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &m, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    m = x;
    m.ld = 7;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &m, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    m = x;
    m.ld = 20;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &m, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    m = x;
    m.ld = SIZE_MAX / 2;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &m, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_SIZE_OVERFLOW);
    v = ds.v;
    v.n = 3;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    v = doc.v;
    v.n = cols - 1;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 6.0f, &v, &dcnt.v, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    v = ds.v;
    v.offset = 16;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, (clbnb_rowwise_mode)7, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, -1.0f, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, NAN, &doc.v, &dcnt.v, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 0, NULL, NULL, 1, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    cl_event null_ev = NULL;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 0, NULL, NULL, 1, &null_ev, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_quantize_rowwise(ctx, test_queue(other), &x, &dq.m, &ds.v, LLM, 0, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    clbnb_context_free(other);
    /* dequant */
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, NULL, &ds.v, &dout.m, LLM, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    m = dout.m;
    m.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq2.m, &ds.v, &m, LLM, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    m = dout.m;
    m.cols = 7;
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq2.m, &ds.v, &m, LLM, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    v = ds.v;
    v.n = 2;
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq2.m, &v, &dout.m, LLM, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq2.m, &ds.v, &dout.m, (clbnb_rowwise_mode)-1, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    m = dout.m;
    m.offset = 2;
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq2.m, &ds.v, &m, LLM, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
    /* global */
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &dq.m, NULL, 0, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    v = ds.v;
    v.dtype = CLBNB_DTYPE_F16; /* neither f32 nor x's dtype (f32) */
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &dq.m, &v, 0, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &dq.m, &ds.v, 1, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &dqt.m, &ds.v, 0, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    v = ds.v;
    v.n = 0;
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &dq.m, &v, 0, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
    m = dq.m;
    m.offset = dq.bytes - 5;
    TEST_STATUS(clbnb_quantize_global(ctx, q, &x, &m, &ds.v, 0, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    /* columnwise */
    TEST_STATUS(clbnb_quantize_columnwise_transpose(ctx, q, &x, NULL, &dcs.v, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_columnwise_transpose(ctx, q, &x, &dq.m, &dcs.v, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quantize_columnwise_transpose(ctx, q, &x, &dqt.m, &ds.v, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    v = dcs.v;
    v.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_quantize_columnwise_transpose(ctx, q, &x, &dqt.m, &v, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    /* double quant */
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &x, 0, &dq.m, NULL, &ds.v, &dcs.v, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &x, 0, &dq.m, &dqt.m, &ds.v, &dcs.v, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    v = ds.v;
    v.dtype = CLBNB_DTYPE_F16;
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &x, 0, &dq.m, &dq2.m, &v, &dcs.v, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &x, 0, &dq.m, &dq2.m, &ds.v, &ds.v, NULL, NULL, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_int8_double_quant(ctx, q, &x, 2.0f, &dq.m, &dq2.m, &ds.v, &dcs.v, NULL, &dcnt.v, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(
        clbnb_int8_double_quant(ctx, q, &x, INFINITY, &dq.m, &dq2.m, &ds.v, &dcs.v, &doc.v, &dcnt.v, 0, NULL, NULL),
        CLBNB_ERROR_INVALID_ARGUMENT);
    /* nothing was written */
    dmat *ms[] = {&dq, &dq2, &dqt, &dout};
    size_t touched = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char *b = malloc(ms[i]->bytes);
        test_download(ctx, ms[i]->m.mem, 0, b, ms[i]->bytes);
        for (size_t j = 0; j < ms[i]->bytes; j++)
            touched += b[j] != TEST_POISON;
        free(b);
    }
    dvec *vs[] = {&ds, &dcs, &doc, &dcnt};
    for (int i = 0; i < 4; i++) {
        unsigned char *b = malloc(vs[i]->bytes);
        test_download(ctx, vs[i]->v.mem, 0, b, vs[i]->bytes);
        for (size_t j = 0; j < vs[i]->bytes; j++)
            touched += b[j] != TEST_POISON;
        free(b);
    }
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    /* a valid call after all that works, and chains events */
    cl_event e1 = NULL, e2 = NULL;
    TEST_STATUS(clbnb_quantize_rowwise(ctx, q, &x, &dq.m, &ds.v, LLM, 6.0f, &doc.v, &dcnt.v, 0, NULL, &e1),
                CLBNB_SUCCESS);
    TEST_STATUS(clbnb_dequantize_rowwise(ctx, q, &dq.m, &ds.v, &dout.m, LLM, 1, &e1, &e2), CLBNB_SUCCESS);
    TEST_CHECK(e1 && e2 && clWaitForEvents(1, &e2) == CL_SUCCESS, "events");
    if (e1) clReleaseEvent(e1);
    if (e2) clReleaseEvent(e2);
    release_m(&dx);
    release_m(&dq);
    release_m(&dq2);
    release_m(&dqt);
    release_m(&dout);
    release_v(&ds);
    release_v(&dcs);
    release_v(&doc);
    release_v(&dcnt);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    rng = test_rng_seeded(0);
    static const size_t shapes[][2] = {{1, 1}, {1, 1000}, {1000, 1}, {3, 7}, {33, 200}, {7, 1000}, {257, 1031}};
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    for (int pi = 0; pi < 2; pi++) {
        clbnb_path path = paths[pi];
        TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, path), CLBNB_SUCCESS);
        int k = 0;
        for (size_t si = 0; si < nshapes; si++) {
            size_t rows = shapes[si][0], cols = shapes[si][1];
            for (int di = 0; di < 3; di++) {
                clbnb_dtype dt = float_dtypes[di];
                for (int mode = 0; mode < 2; mode++)
                    for (int t = 0; t < 2; t++) {
                        clbnb_dtype sdt = (k % 3 == 2) ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32;
                        if (mode == 1) sdt = (k % 3 == 2) ? CLBNB_DTYPE_F32 : CLBNB_DTYPE_F16;
                        test_rowwise_case(ctx, q, path, rows, cols, dt, (clbnb_rowwise_mode)mode, t ? 6.0f : 0.0f, sdt,
                                          k++ % 2);
                    }
                test_dequant_case(ctx, q, path, rows, cols, dt, (k % 2) ? CLBNB_DTYPE_F32 : CLBNB_DTYPE_F16,
                                  (clbnb_rowwise_mode)(k % 2), k % 3 == 0);
                k++;
                for (int tr = 0; tr < 2; tr++) {
                    test_global_case(ctx, q, path, rows, cols, dt, tr, (k % 2) ? CLBNB_DTYPE_F32 : dt, k % 3 != 0);
                    k++;
                }
                test_columnwise_case(ctx, q, path, rows, cols, dt, (k % 2) ? CLBNB_DTYPE_F16 : CLBNB_DTYPE_F32, k % 2);
                k++;
                for (int t = 0; t < 2; t++)
                    test_double_quant_case(ctx, q, path, rows, cols, dt, t ? 6.0f : 0.0f, k++ % 2);
            }
        }
        /* ~1M elements (contiguous and strided) */
        test_rowwise_case(ctx, q, path, 1024, 1024, CLBNB_DTYPE_F16, CLBNB_ROWWISE_LLM_INT8, 6.0f, CLBNB_DTYPE_F32, 0);
        test_rowwise_case(ctx, q, path, 1000, 1050, CLBNB_DTYPE_BF16, CLBNB_ROWWISE_SWITCHBACK, 0.0f, CLBNB_DTYPE_F16,
                          1);
        test_dequant_case(ctx, q, path, 1024, 1024, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, CLBNB_ROWWISE_LLM_INT8, 1);
        test_global_case(ctx, q, path, 1024, 1024, CLBNB_DTYPE_F32, 0, CLBNB_DTYPE_F32, 1);
        /* SwitchBack stage 1: one row / many rows of x, w of one chunk up to hundreds of chunks,
         * padded layouts, and differing dtypes (the unfused order) */
        test_switchback_inputs_case(ctx, q, path, 1, 83, 332, 83, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 1, SIZE_MAX);
        test_switchback_inputs_case(ctx, q, path, 13, 1031, 700, 1031, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, SIZE_MAX);
        test_switchback_inputs_case(ctx, q, path, 257, 640, 1500, 640, CLBNB_DTYPE_BF16, CLBNB_DTYPE_BF16, 1, SIZE_MAX);
        test_switchback_inputs_case(ctx, q, path, 300, 4100, 257, 4100, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 1, SIZE_MAX);
        test_switchback_inputs_case(ctx, q, path, 7, 9000, 20, 9000, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 1, SIZE_MAX);
        test_switchback_inputs_case(ctx, q, path, 33, 200, 90, 200, CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, 0, SIZE_MAX);
        /* w of 40 chunks (4096 elements each, contiguous) with its maximum in each chunk in turn:
         * the absmax work-groups must cover every chunk */
        for (size_t u = 0; u < 40; u++)
            test_switchback_inputs_case(ctx, q, path, 3, 1024, 160, 1024, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 1,
                                        u * 4096 + rnd(4096));
        test_global_case(ctx, q, path, 1000, 1050, CLBNB_DTYPE_F16, 1, CLBNB_DTYPE_F16, 0);
        test_columnwise_case(ctx, q, path, 1050, 1000, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0);
        test_double_quant_case(ctx, q, path, 1024, 1024, CLBNB_DTYPE_F16, 6.0f, 1);
        /* contiguous, 16-byte aligned rows: the GENERIC kernels' 16-byte load / store paths (rows
         * longer than the register-held part, full 64x64 transpose tiles, bf16 output) */
        test_rowwise_case(ctx, q, path, 24, 4096, CLBNB_DTYPE_F16, CLBNB_ROWWISE_LLM_INT8, 0.0f, CLBNB_DTYPE_F32, 1);
        test_rowwise_case(ctx, q, path, 16, 8200, CLBNB_DTYPE_F32, CLBNB_ROWWISE_SWITCHBACK, 6.0f, CLBNB_DTYPE_F16, 1);
        /* rows past four register-held groups per work-item (RPT 4 on the GENERIC path), with a tail */
        test_rowwise_case(ctx, q, path, 5, 9001, CLBNB_DTYPE_F16, CLBNB_ROWWISE_LLM_INT8, 0.0f, CLBNB_DTYPE_F32, 1);
        test_rowwise_case(ctx, q, path, 3, 17000, CLBNB_DTYPE_BF16, CLBNB_ROWWISE_SWITCHBACK, 6.0f, CLBNB_DTYPE_F16, 0);
        test_rowwise_case(ctx, q, path, 40, 2048, CLBNB_DTYPE_BF16, CLBNB_ROWWISE_LLM_INT8, 6.0f, CLBNB_DTYPE_F32, 1);
        /* just past 2048 columns (RPT 4 with 128 work-items per row, two rows per work-group) */
        test_rowwise_case(ctx, q, path, 9, 3001, CLBNB_DTYPE_F16, CLBNB_ROWWISE_SWITCHBACK, 6.0f, CLBNB_DTYPE_F16, 1);
        test_rowwise_case(ctx, q, path, 3, 2049, CLBNB_DTYPE_F32, CLBNB_ROWWISE_LLM_INT8, 0.0f, CLBNB_DTYPE_F32, 0);
        test_dequant_case(ctx, q, path, 64, 1024, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32, CLBNB_ROWWISE_LLM_INT8, 1);
        test_dequant_case(ctx, q, path, 64, 1040, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, CLBNB_ROWWISE_SWITCHBACK, 1);
        test_global_case(ctx, q, path, 192, 1024, CLBNB_DTYPE_F16, 1, CLBNB_DTYPE_F32, 1);
        test_global_case(ctx, q, path, 128, 2048, CLBNB_DTYPE_BF16, 0, CLBNB_DTYPE_BF16, 1);
        test_columnwise_case(ctx, q, path, 256, 512, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 1);
        test_double_quant_case(ctx, q, path, 256, 1024, CLBNB_DTYPE_F16, 6.0f, 1);
        /* SwitchBack divisions next to code boundaries (f32 input, no threshold) */
        data_mode = DATA_TIES_ROW;
        test_rowwise_case(ctx, q, path, 64, 1000, CLBNB_DTYPE_F32, CLBNB_ROWWISE_SWITCHBACK, 0.0f, CLBNB_DTYPE_F32, 1);
        test_rowwise_case(ctx, q, path, 33, 4096, CLBNB_DTYPE_F32, CLBNB_ROWWISE_SWITCHBACK, 0.0f, CLBNB_DTYPE_F32, 0);
        data_mode = DATA_TIES_COL;
        test_columnwise_case(ctx, q, path, 1000, 192, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 1);
        test_double_quant_case(ctx, q, path, 777, 130, CLBNB_DTYPE_F32, 0.0f, 1);
        /* the column parts (double quant, column-wise) at the ends of the f32 range, where the
         * reciprocal shortcut scales, and with x * 127 past the fp16 / f32 range */
        data_mode = DATA_WIDE;
        test_double_quant_case(ctx, q, path, 45, 203, CLBNB_DTYPE_F16, 0.0f, 1);
        test_double_quant_case(ctx, q, path, 30, 77, CLBNB_DTYPE_F32, 0.0f, 0);
        test_double_quant_case(ctx, q, path, 19, 64, CLBNB_DTYPE_BF16, 0.0f, 1);
        test_columnwise_case(ctx, q, path, 70, 45, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 1);
        test_columnwise_case(ctx, q, path, 64, 128, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 1);
        data_mode = DATA_NORMAL;
        test_global_pipelined(ctx, q, path);
        test_accuracy_bars(ctx, q);
        test_validation(ctx, q);
    }
    clbnb_context_free(ctx);
    return test_finish();
}
