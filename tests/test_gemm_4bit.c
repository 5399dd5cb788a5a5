/* test_gemm_4bit.c: clbnb_gemm_4bit (every variant, both paths) and clbnb_gemm_4bit_grad_input
 * against a C reference on fresh random 4-bit states (random nibbles, plain / nested absmax),
 * awkward shapes (M = 1..100, N = 1, odd N and K, K = 1, K not a multiple of the blocksize, every
 * blocksize), strided and offset operands, poisoned outputs; bitsandbytes' accuracy bars
 * (test_matmul_4bit, test_gemv_4bit, identity weight) on quantized randn weights; argument
 * validation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "g4_ref.h"

static double g4_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct g4case {
    size_t m, n, k, bs;
    int fp4, nested, code2_explicit, has_bias;
    clbnb_dtype xdt, odt, bdt;
    size_t poff; /* packed byte offset (not a multiple of 16: general kernel) */
    size_t bs2;
} g4case;

/* device copy of a random 4-bit state and its host reference */
typedef struct g4state {
    size_t numel, nb, nb2;
    uint8_t *packed, *q;
    float *absmax, *absmax2, *code2, offset, *scale, *w;
    cl_mem mpacked, mabsmax, mabsmax2, mcode2, moffset;
    clbnb_vector vpacked;
    clbnb_absmax am;
} g4state;

static void state_upload(clbnb_context *ctx, g4state *s, const g4case *c) {
    /* packed at byte offset poff, absmax at element offset 1, absmax2 at 2, offset at 3 */
    size_t pbytes = (s->numel + 1) / 2;
    s->mpacked = test_buffer(ctx, c->poff + pbytes + 16);
    test_upload(ctx, s->mpacked, c->poff, s->packed, pbytes);
    s->vpacked = clbnb_vector_make(s->mpacked, c->poff, pbytes, CLBNB_DTYPE_U8);
    memset(&s->am, 0, sizeof s->am);
    if (!c->nested) {
        s->mabsmax = test_buffer(ctx, (s->nb + 1) * 4);
        test_upload(ctx, s->mabsmax, 4, s->absmax, s->nb * 4);
        s->am.absmax = clbnb_vector_make(s->mabsmax, 4, s->nb, CLBNB_DTYPE_F32);
    } else {
        s->mabsmax = test_buffer(ctx, s->nb + 1);
        test_upload(ctx, s->mabsmax, 1, s->q, s->nb);
        s->am.absmax = clbnb_vector_make(s->mabsmax, 1, s->nb, CLBNB_DTYPE_U8);
        s->mabsmax2 = test_buffer(ctx, (s->nb2 + 2) * 4);
        test_upload(ctx, s->mabsmax2, 8, s->absmax2, s->nb2 * 4);
        s->am.absmax2 = clbnb_vector_make(s->mabsmax2, 8, s->nb2, CLBNB_DTYPE_F32);
        s->moffset = test_buffer(ctx, 16);
        test_upload(ctx, s->moffset, 12, &s->offset, 4);
        s->am.offset = clbnb_vector_make(s->moffset, 12, 1, CLBNB_DTYPE_F32);
        if (c->code2_explicit) {
            s->mcode2 = test_buffer_from(ctx, s->code2, 256 * 4);
            s->am.code2 = clbnb_vector_make(s->mcode2, 0, 256, CLBNB_DTYPE_F32);
        }
        s->am.blocksize2 = c->bs2;
    }
}

/* Random state: random nibbles, absmax in [0.25, 2) or nested (random q, absmax2, offset). */
static void state_random(clbnb_context *ctx, test_rng *rng, g4state *s, const g4case *c) {
    memset(s, 0, sizeof *s);
    s->numel = c->n * c->k;
    s->nb = (s->numel + c->bs - 1) / c->bs;
    s->nb2 = (s->nb + c->bs2 - 1) / c->bs2;
    size_t pbytes = (s->numel + 1) / 2;
    s->packed = malloc(pbytes);
    for (size_t i = 0; i < pbytes; i++)
        s->packed[i] = (uint8_t)test_rng_next(rng);
    s->absmax = malloc(s->nb * 4);
    s->scale = malloc(s->nb * 4);
    for (size_t b = 0; b < s->nb; b++)
        s->absmax[b] = 0.25f + 1.75f * test_rng_uniform(rng);
    if (c->nested) {
        s->q = malloc(s->nb);
        s->absmax2 = malloc(s->nb2 * 4);
        s->code2 = malloc(256 * 4);
        for (size_t b = 0; b < s->nb; b++)
            s->q[b] = (uint8_t)test_rng_next(rng);
        for (size_t b = 0; b < s->nb2; b++)
            s->absmax2[b] = 0.5f + test_rng_uniform(rng);
        if (c->code2_explicit)
            for (int j = 0; j < 256; j++)
                s->code2[j] = 2.0f * test_rng_uniform(rng) - 1.0f;
        else
            memcpy(s->code2, clbnb_code_dynamic(), 256 * 4);
        s->offset = 1.0f + test_rng_uniform(rng);
    }
    g4_scales(s->nb, s->absmax, c->nested ? s->q : NULL, s->absmax2, s->code2, s->offset, c->bs2, s->scale);
    s->w = malloc(s->numel * 4);
    g4_dequant(c->fp4, s->packed, s->scale, s->numel, c->bs, s->w);
    state_upload(ctx, s, c);
}

/* State of a real weight matrix w [n, k] quantized with the C quantizer (nested when c->nested). */
static void state_quantized(clbnb_context *ctx, g4state *s, const g4case *c, const float *wsrc) {
    memset(s, 0, sizeof *s);
    s->numel = c->n * c->k;
    s->nb = (s->numel + c->bs - 1) / c->bs;
    s->nb2 = (s->nb + c->bs2 - 1) / c->bs2;
    s->packed = malloc((s->numel + 1) / 2);
    s->absmax = malloc(s->nb * 4);
    s->scale = malloc(s->nb * 4);
    g4_quantize(c->fp4, wsrc, s->numel, c->bs, s->packed, s->absmax);
    if (c->nested) {
        s->q = malloc(s->nb);
        s->absmax2 = malloc(s->nb2 * 4);
        s->code2 = malloc(256 * 4);
        memcpy(s->code2, clbnb_code_dynamic(), 256 * 4);
        g4_compress(s->absmax, s->nb, c->bs2, s->q, s->absmax2, &s->offset);
    }
    g4_scales(s->nb, s->absmax, c->nested ? s->q : NULL, s->absmax2, s->code2, s->offset, c->bs2, s->scale);
    s->w = malloc(s->numel * 4);
    g4_dequant(c->fp4, s->packed, s->scale, s->numel, c->bs, s->w);
    state_upload(ctx, s, c);
}

static void state_free(g4state *s) {
    free(s->packed), free(s->q), free(s->absmax), free(s->absmax2), free(s->code2), free(s->scale), free(s->w);
    cl_mem ms[5] = {s->mpacked, s->mabsmax, s->mabsmax2, s->mcode2, s->moffset};
    for (int i = 0; i < 5; i++)
        if (ms[i]) clReleaseMemObject(ms[i]);
}

/* x / out / bias buffers: x [m, k] with ld k+3 at element offset 5, out [m, n] with ld n+2 at
 * element offset 3 (poisoned), bias at element offset 1. */
typedef struct g4io {
    float *x, *bias; /* values as the device sees them (rounded to their dtype) */
    cl_mem mx, mout, mbias;
    clbnb_matrix vx, vout;
    clbnb_vector vbias;
    size_t out_bytes;
} g4io;

/* x [m, k] lies at an offset of 5 elements with ld = k + 3 (misaligned rows), or, with aligned_x,
 * at 16 bytes with 16-byte aligned rows (the kernels' wide-load path). */
static void io_make_x(clbnb_context *ctx, test_rng *rng, g4io *io, size_t m, size_t k, size_t n, clbnb_dtype xdt,
                      clbnb_dtype odt, int has_bias, clbnb_dtype bdt, float xscale, int aligned_x) {
    memset(io, 0, sizeof *io);
    size_t xs = clbnb_dtype_size(xdt);
    size_t ldx = aligned_x ? (k + 7) / 8 * 8 + 8 : k + 3, x0 = aligned_x ? 16 / xs : 5;
    io->x = malloc(m * k * 4);
    float *xfull = calloc((x0 + m * ldx), 4);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < k; j++) {
            float v = test_round_to_dtype(xscale * test_rng_normal(rng), xdt);
            io->x[i * k + j] = v;
            xfull[x0 + i * ldx + j] = v;
        }
    void *xb = malloc((x0 + m * ldx) * xs);
    test_floats_to_dtype(xfull, xb, x0 + m * ldx, xdt);
    io->mx = test_buffer_from(ctx, xb, (x0 + m * ldx) * xs);
    io->vx = (clbnb_matrix){io->mx, x0 * xs, m, k, ldx, xdt};
    free(xb);
    free(xfull);
    size_t ldo = n + 2, os = clbnb_dtype_size(odt);
    io->out_bytes = (3 + m * ldo + 4) * os;
    io->mout = test_buffer(ctx, io->out_bytes);
    io->vout = (clbnb_matrix){io->mout, 3 * os, m, n, ldo, odt};
    if (has_bias) {
        io->bias = malloc(n * 4);
        float *bfull = malloc((n + 1) * 4);
        bfull[0] = 0;
        for (size_t j = 0; j < n; j++)
            bfull[1 + j] = io->bias[j] = test_round_to_dtype(test_rng_normal(rng), bdt);
        void *bb = malloc((n + 1) * 4);
        test_floats_to_dtype(bfull, bb, n + 1, bdt);
        io->mbias = test_buffer_from(ctx, bb, (n + 1) * clbnb_dtype_size(bdt));
        io->vbias = clbnb_vector_make(io->mbias, clbnb_dtype_size(bdt), n, bdt);
        free(bb);
        free(bfull);
    }
}

static void io_make(clbnb_context *ctx, test_rng *rng, g4io *io, size_t m, size_t k, size_t n, clbnb_dtype xdt,
                    clbnb_dtype odt, int has_bias, clbnb_dtype bdt, float xscale) {
    io_make_x(ctx, rng, io, m, k, n, xdt, odt, has_bias, bdt, xscale, 0);
}

static void io_free(g4io *io) {
    free(io->x), free(io->bias);
    clReleaseMemObject(io->mx);
    clReleaseMemObject(io->mout);
    if (io->mbias) clReleaseMemObject(io->mbias);
}

/* Downloads out [m, n] (strided, offset 3) as floats; counts bytes outside the region that changed. */
static size_t io_download(clbnb_context *ctx, const g4io *io, float *got) {
    const clbnb_matrix *o = &io->vout;
    size_t os = clbnb_dtype_size(o->dtype);
    uint8_t *raw = malloc(io->out_bytes), *inside = calloc(io->out_bytes, 1);
    test_download(ctx, o->mem, 0, raw, io->out_bytes);
    for (size_t i = 0; i < o->rows; i++) {
        size_t e = o->offset / os + i * o->ld;
        test_dtype_to_floats(raw + e * os, got + i * o->cols, o->cols, o->dtype);
        memset(inside + e * os, 1, o->cols * os);
    }
    size_t touched = 0;
    for (size_t b = 0; b < io->out_bytes; b++)
        touched += !inside[b] && raw[b] != TEST_POISON;
    free(raw);
    free(inside);
    return touched;
}

static double acc_tol(double absref, size_t k) { return absref * 1.2e-7 * (4.0 + 2.0 * sqrt((double)k)); }

static const char *variant_name(clbnb_gemm_4bit_variant v) {
    static const char *names[] = {"auto", "gemv", "small_batch", "dequant_sgemm"};
    return names[v];
}

/* Checks got [m, n] against ref within f32-accumulation + output rounding; returns bad count. */
static size_t check_close(const float *got, const double *ref, const double *absref, size_t m, size_t n, size_t k,
                          clbnb_dtype odt, double *max_err) {
    size_t bad = 0;
    for (size_t i = 0; i < m * n; i++) {
        double t = acc_tol(absref[i], k);
        double tol = t + g4_out_tol(fabs(ref[i]) + t, odt) * 1.0001;
        double e = fabs((double)got[i] - ref[i]);
        if (!(e <= tol)) {
            if (bad < 3)
                fprintf(stderr, "  [%zu, %zu] got %.9g want %.9g (tol %.3g)\n", i / n, i % n, got[i], ref[i], tol);
            bad++;
        }
        if (max_err && e > *max_err) *max_err = e;
    }
    return bad;
}

/* ---- random-state cases: every variant on both paths ------------------------------------------ */
static void run_case_x(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const g4case *c, int aligned_x) {
    g4state s;
    state_random(ctx, rng, &s, c);
    g4io io;
    io_make_x(ctx, rng, &io, c->m, c->k, c->n, c->xdt, c->odt, c->has_bias, c->bdt, 1.0f, aligned_x);
    double *ref = malloc(c->m * c->n * sizeof(double)), *absref = malloc(c->m * c->n * sizeof(double));
    g4_matmul_ref(io.x, s.w, io.bias, c->m, c->n, c->k, ref, absref);
    float *got = malloc(c->m * c->n * 4);
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    for (int p = 0; p < 2; p++) {
        clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, paths[p]);
        for (int v = 0; v < CLBNB_GEMM_4BIT_VARIANT_COUNT; v++) {
            /* the dequant+SGEMM variant does not depend on the path: run it on one */
            if (v == CLBNB_GEMM_4BIT_DEQUANT_SGEMM && p == 1) continue;
            test_poison(ctx, io.mout, io.out_bytes);
            clbnb_status st =
                clbnb_gemm_4bit_ex(ctx, q, &io.vx, &s.vpacked, &s.am, c->fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, c->bs,
                                   c->has_bias ? &io.vbias : NULL, &io.vout, (clbnb_gemm_4bit_variant)v, 0, NULL, NULL);
            TEST_CHECK(st == CLBNB_SUCCESS, "gemm_4bit status %s", clbnb_status_string(st));
            size_t touched = io_download(ctx, &io, got);
            size_t bad = check_close(got, ref, absref, c->m, c->n, c->k, c->odt, NULL);
            TEST_CHECK(bad == 0 && touched == 0,
                       "M=%zu N=%zu K=%zu bs=%zu %s%s x=%s%s out=%s bias=%d poff=%zu path=%s variant=%s: %zu wrong, "
                       "%zu bytes outside touched",
                       c->m, c->n, c->k, c->bs, c->fp4 ? "fp4" : "nf4",
                       c->nested ? (c->code2_explicit ? " nested(code2)" : " nested") : "", clbnb_dtype_name(c->xdt),
                       aligned_x ? " (aligned rows)" : "", clbnb_dtype_name(c->odt), c->has_bias, c->poff,
                       clbnb_path_name(paths[p]), variant_name(v), bad, touched);
        }
    }
    free(ref), free(absref), free(got);
    io_free(&io);
    state_free(&s);
}

/* Small batches run with both x layouts (misaligned rows and the wide-load path); larger ones with
 * one, alternating with N. */
static void run_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const g4case *c) {
    if (c->m <= 3) {
        run_case_x(ctx, q, rng, c, 0);
        run_case_x(ctx, q, rng, c, 1);
    } else {
        run_case_x(ctx, q, rng, c, c->n % 2 == 0);
    }
}

/* grad_x [m, k] = grad_out [m, n] * W [n, k] */
static void run_grad_case(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const g4case *c) {
    g4state s;
    state_random(ctx, rng, &s, c);
    g4io io; /* x plays grad_out [m, n]; out plays grad_x [m, k] */
    io_make(ctx, rng, &io, c->m, c->n, c->k, c->xdt, c->odt, 0, CLBNB_DTYPE_F32, 1.0f);
    /* reference with W^T: wt [k, n] */
    float *wt = malloc(c->n * c->k * 4);
    for (size_t i = 0; i < c->n; i++)
        for (size_t j = 0; j < c->k; j++)
            wt[j * c->n + i] = s.w[i * c->k + j];
    double *ref = malloc(c->m * c->k * sizeof(double)), *absref = malloc(c->m * c->k * sizeof(double));
    g4_matmul_ref(io.x, wt, NULL, c->m, c->k, c->n, ref, absref);
    float *got = malloc(c->m * c->k * 4);
    test_poison(ctx, io.mout, io.out_bytes);
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &io.vx, &s.vpacked, &s.am,
                                           c->fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, c->bs, &io.vout, 0, NULL, NULL),
                CLBNB_SUCCESS);
    size_t touched = io_download(ctx, &io, got);
    size_t bad = check_close(got, ref, absref, c->m, c->k, c->n, c->odt, NULL);
    TEST_CHECK(bad == 0 && touched == 0, "grad_input M=%zu N=%zu K=%zu bs=%zu %s%s %s->%s: %zu wrong, %zu touched",
               c->m, c->n, c->k, c->bs, c->fp4 ? "fp4" : "nf4", c->nested ? " nested" : "", clbnb_dtype_name(c->xdt),
               clbnb_dtype_name(c->odt), bad, touched);
    free(wt), free(ref), free(absref), free(got);
    io_free(&io);
    state_free(&s);
}

/* ---- bitsandbytes' bars ---------------------------------------------------------------------- */
/* test_matmul_4bit: mean |ours - F.linear(A, B)| (unquantized B = randn / sqrt(K)) below 0.115 (NF4
 * or bs <= 64), 0.13 (bs <= 256), 0.16. The bar is on the expected error of the format; a mean over
 * the 256 outputs of the (1, 256, 128) shape is noisy: for FP4 bs 64 it is 0.097 +- 0.0084 (numpy
 * simulation, 300 draws), so one draw crosses 0.115 about 1 time in 40 (seen in CI). Each
 * configuration is therefore pooled over fresh draws (new A and B) up to at least 4096 outputs, which
 * puts the bar 8 standard deviations above the expected error. */
static void bars_matmul(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    const size_t shapes[][3] = {{1, 256, 128}, {16, 384, 256}, {48, 256, 512}, {70, 128, 256}};
    const size_t bss[] = {32, 64, 128, 4096};
    const size_t min_outputs = 4096;
    int idx = 0;
    for (size_t si = 0; si < 4; si++)
        for (size_t bi = 0; bi < 4; bi++, idx++) {
            g4case c = {
                shapes[si][0],   shapes[si][1],   shapes[si][2],   bss[bi], idx & 1, (idx >> 1) & 1, 0, (idx >> 2) & 1,
                CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0,       256};
            const size_t outputs = c.m * c.n, draws = (min_outputs + outputs - 1) / outputs;
            double err = 0;
            for (size_t d = 0; d < draws; d++) {
                float *b = malloc(c.n * c.k * 4);
                for (size_t i = 0; i < c.n * c.k; i++)
                    b[i] = test_rng_normal(rng) / sqrtf((float)c.k);
                g4state s;
                state_quantized(ctx, &s, &c, b);
                g4io io;
                io_make(ctx, rng, &io, c.m, c.k, c.n, c.xdt, c.odt, c.has_bias, c.bdt, 1.0f);
                double *ref = malloc(outputs * sizeof(double));
                g4_matmul_ref(io.x, b, io.bias, c.m, c.n, c.k, ref, NULL);
                float *got = malloc(outputs * 4);
                TEST_STATUS(clbnb_gemm_4bit(ctx, q, &io.vx, &s.vpacked, &s.am,
                                            c.fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, c.bs,
                                            c.has_bias ? &io.vbias : NULL, &io.vout, 0, NULL, NULL),
                            CLBNB_SUCCESS);
                io_download(ctx, &io, got);
                for (size_t i = 0; i < outputs; i++)
                    err += fabs((double)got[i] - ref[i]);
                free(b), free(ref), free(got);
                io_free(&io);
                state_free(&s);
            }
            err /= (double)(outputs * draws);
            double bound = (!c.fp4 || c.bs <= 64) ? 0.115 : c.bs <= 256 ? 0.13 : 0.16;
            TEST_CHECK(err < bound,
                       "test_matmul_4bit bar: M=%zu N=%zu K=%zu bs=%zu %s nested=%d (%zu draws): mean abs err %.4f >= "
                       "%.3f",
                       c.m, c.n, c.k, c.bs, c.fp4 ? "fp4" : "nf4", c.nested, draws, err, bound);
        }
}

/* test_gemv_4bit: C1 = A * dequantize_4bit(B) (reference), C2 = ours; err / relerr / maxerr over
 * sqrt(dim) below mean + 7 std of bitsandbytes' table, per dtype and dim <= 512 / > 512. */
static void bars_gemv(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    const clbnb_dtype dts[3] = {CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, CLBNB_DTYPE_BF16};
    /* [dtype][small/large][err, relerr, maxerr][mean, std] */
    const double tab[3][2][3][2] = {
        {{{5.2e-5, 6.3e-6}, {2.4e-4, 3.57e-4}, {4.2e-4, 6.87e-5}},
         {{1.8e-5, 2.8e-6}, {1.0e-4, 1.97e-4}, {1.7e-4, 1.79e-5}}},
        {{{2e-8, 2e-9}, {8e-7, 1.2e-6}, {6e-8, 2e-8}}, {{1e-8, 2e-9}, {5e-7, 1.6e-7}, {5e-8, 1e-8}}},
        {{{4.2e-4, 5.9e-5}, {4.1e-3, 1.153e-2}, {3.7e-3, 5.56e-4}},
         {{1.4e-4, 9.5e-6}, {1.2e-3, 6.79e-4}, {1.0e-3, 1.37e-4}}}};
    const size_t dims[2] = {256, 1024};
    int idx = 0;
    for (int di = 0; di < 3; di++)
        for (int dd = 0; dd < 2; dd++)
            for (int kind = 0; kind < 2; kind++, idx++) {
                size_t dim = dims[dd];
                /* fc1 [4d, d] and fc2 [d, 4d] (attn kinds have the same shapes as fc1 rows) */
                size_t n = kind == 0 ? 4 * dim : dim, k = kind == 0 ? dim : 4 * dim;
                g4case c = {1, n, k, 64, idx & 1, (idx >> 1) & 1, 0, 0, dts[di], dts[di], dts[di], 0, 256};
                float *b = malloc(n * k * 4);
                for (size_t i = 0; i < n * k; i++)
                    b[i] = test_rng_normal(rng) / sqrtf((float)dim);
                g4state s;
                state_quantized(ctx, &s, &c, b);
                /* bitsandbytes averages the three metrics over its iterations (100); here over
                 * GEMV_ITERS fresh activations on the same quantized weights: one draw alone puts
                 * the heavy-tailed relative error near its bar now and then */
                enum { GEMV_ITERS = 8 };
                double sum_err[2] = {0, 0}, sum_rel[2] = {0, 0}, sum_mx[2] = {0, 0};
                double *ref = malloc(n * sizeof(double));
                float *got = malloc(n * 4);
                for (int it = 0; it < GEMV_ITERS; it++) {
                    g4io io;
                    io_make(ctx, rng, &io, 1, k, n, c.xdt, c.odt, 0, c.bdt, 1.0f);
                    g4_matmul_ref(io.x, s.w, NULL, 1, n, k, ref, NULL);
                    for (int p = 0; p < 2; p++) {
                        clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, p ? CLBNB_PATH_CPU : CLBNB_PATH_GENERIC);
                        TEST_STATUS(clbnb_gemm_4bit(ctx, q, &io.vx, &s.vpacked, &s.am,
                                                    c.fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, c.bs, NULL, &io.vout, 0,
                                                    NULL, NULL),
                                    CLBNB_SUCCESS);
                        io_download(ctx, &io, got);
                        double err = 0, rel = 0, mx = 0;
                        for (size_t i = 0; i < n; i++) {
                            double c1 = test_round_to_dtype((float)ref[i], c.odt);
                            double e = fabs(c1 - got[i]);
                            err += e;
                            rel += e / (fabs(c1) + 1e-5);
                            mx = e > mx ? e : mx;
                        }
                        double sd = sqrt((double)dim);
                        sum_err[p] += err / (double)n / sd, sum_rel[p] += rel / (double)n / sd, sum_mx[p] += mx / sd;
                    }
                    io_free(&io);
                }
                for (int p = 0; p < 2; p++) {
                    double err = sum_err[p] / GEMV_ITERS, rel = sum_rel[p] / GEMV_ITERS, mx = sum_mx[p] / GEMV_ITERS;
                    const double(*t)[2] = tab[di][dim > 512];
                    TEST_CHECK(
                        err < t[0][0] + 7 * t[0][1] && rel < t[1][0] + 7 * t[1][1] && mx < t[2][0] + 7 * t[2][1],
                        "test_gemv_4bit bar %s dim=%zu [%zu,%zu] %s nested=%d path=%d: err %.3g rel %.3g max %.3g "
                        "(mean of %d draws)",
                        clbnb_dtype_name(c.xdt), dim, n, k, c.fp4 ? "fp4" : "nf4", c.nested, p, err, rel, mx,
                        GEMV_ITERS);
                }
                free(b), free(ref), free(got);
                state_free(&s);
            }
}

/* test_gemv_eye_4bit: the identity quantizes exactly, so out equals x (exactly for f32/f16 with a
 * plain absmax; within assert_close tolerances with a nested one). */
static void bars_identity(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    const clbnb_dtype dts[3] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};
    const size_t dims[2] = {128, 512};
    const size_t ms[3] = {1, 5, 80};
    for (int di = 0; di < 3; di++)
        for (int dd = 0; dd < 2; dd++)
            for (int nested = 0; nested < 2; nested++) {
                size_t d = dims[dd], m = ms[(di + dd + nested) % 3];
                g4case c = {m, d, d, 64, (di + nested) & 1, nested, 0, 0, dts[di], dts[di], dts[di], 0, 256};
                float *eye = calloc(d * d, 4);
                for (size_t i = 0; i < d; i++)
                    eye[i * d + i] = 1.0f;
                g4state s;
                state_quantized(ctx, &s, &c, eye);
                g4io io;
                io_make(ctx, rng, &io, m, d, d, c.xdt, c.odt, 0, c.bdt, 1.0f);
                float *got = malloc(m * d * 4);
                double *ref = malloc(m * d * sizeof(double)), *absref = malloc(m * d * sizeof(double));
                g4_matmul_ref(io.x, s.w, NULL, m, d, d, ref, absref);
                for (int p = 0; p < 2; p++) {
                    clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, p ? CLBNB_PATH_CPU : CLBNB_PATH_GENERIC);
                    for (int v = 1; v < CLBNB_GEMM_4BIT_VARIANT_COUNT; v++) {
                        test_poison(ctx, io.mout, io.out_bytes);
                        TEST_STATUS(clbnb_gemm_4bit_ex(ctx, q, &io.vx, &s.vpacked, &s.am,
                                                       c.fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, c.bs, NULL, &io.vout,
                                                       (clbnb_gemm_4bit_variant)v, 0, NULL, NULL),
                                    CLBNB_SUCCESS);
                        io_download(ctx, &io, got);
                        size_t bad = 0;
                        if (!nested) {
                            for (size_t i = 0; i < m * d; i++)
                                bad += got[i] != io.x[i];
                        } else {
                            /* nested: the zero blocks get a small nonzero decoded absmax (their
                             * codes are 0 = -1.0 for NF4), so compare with the reference */
                            bad = check_close(got, ref, absref, m, d, d, c.odt, NULL);
                        }
                        TEST_CHECK(bad == 0, "identity d=%zu M=%zu %s %s nested=%d path=%d variant=%s: %zu differ", d,
                                   m, clbnb_dtype_name(c.xdt), c.fp4 ? "fp4" : "nf4", nested, p, variant_name(v), bad);
                    }
                }
                free(eye), free(got), free(ref), free(absref);
                io_free(&io);
                state_free(&s);
            }
}

/* ---- argument validation --------------------------------------------------------------------- */
static void validation(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    g4case c = {3, 10, 64, 32, 0, 1, 0, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 0, 256};
    g4state s;
    state_random(ctx, rng, &s, &c);
    g4io io;
    io_make(ctx, rng, &io, c.m, c.k, c.n, c.xdt, c.odt, 1, c.bdt, 1.0f);
    test_poison(ctx, io.mout, io.out_bytes);
    clbnb_absmax am = s.am;
    clbnb_vector pk = s.vpacked, bias = io.vbias;
    clbnb_matrix x = io.vx, out = io.vout;
    const clbnb_quant_type nf4 = CLBNB_QUANT_NF4;
#define G4_CALL(X, P, A, T, BS, B, O) clbnb_gemm_4bit(ctx, q, X, P, A, T, BS, B, O, 0, NULL, NULL)
    TEST_STATUS(clbnb_gemm_4bit(NULL, q, &x, &pk, &am, nf4, 32, &bias, &out, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_gemm_4bit(ctx, NULL, &x, &pk, &am, nf4, 32, &bias, &out, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(G4_CALL(NULL, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(G4_CALL(&x, NULL, &am, nf4, 32, &bias, &out), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(G4_CALL(&x, &pk, NULL, nf4, 32, &bias, &out), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &bias, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_gemm_4bit(ctx, q, &x, &pk, &am, nf4, 32, &bias, &out, 1, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(
        clbnb_gemm_4bit_ex(ctx, q, &x, &pk, &am, nf4, 32, &bias, &out, (clbnb_gemm_4bit_variant)7, 0, NULL, NULL),
        CLBNB_ERROR_INVALID_ARGUMENT);
    {
        clbnb_absmax a2 = am;
        a2.offset.mem = NULL;
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_NULL_ARGUMENT);
        a2 = am;
        a2.absmax.dtype = CLBNB_DTYPE_F32; /* nested needs u8 */
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        a2 = am;
        a2.absmax2.dtype = CLBNB_DTYPE_F16;
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        a2 = am;
        a2.blocksize2 = 100;
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_BLOCKSIZE);
        a2 = am;
        a2.absmax.n = s.nb - 1;
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
        a2 = am;
        a2.absmax2.n = 0;
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_SHAPE);
        a2 = am;
        a2.offset.offset = 16; /* past the end of the 16-byte offset buffer */
        TEST_STATUS(G4_CALL(&x, &pk, &a2, nf4, 32, &bias, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
    }
    {
        clbnb_vector p2 = pk;
        p2.dtype = CLBNB_DTYPE_I8;
        TEST_STATUS(G4_CALL(&x, &p2, &am, nf4, 32, &bias, &out), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        p2 = pk;
        p2.n = pk.n - 1;
        TEST_STATUS(G4_CALL(&x, &p2, &am, nf4, 32, &bias, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
        p2 = pk;
        p2.offset = 1u << 20;
        TEST_STATUS(G4_CALL(&x, &p2, &am, nf4, 32, &bias, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
    }
    TEST_STATUS(G4_CALL(&x, &pk, &am, CLBNB_QUANT_BLOCKWISE8, 32, &bias, &out), CLBNB_ERROR_INVALID_QUANT_TYPE);
    TEST_STATUS(G4_CALL(&x, &pk, &am, (clbnb_quant_type)9, 32, &bias, &out), CLBNB_ERROR_INVALID_QUANT_TYPE);
    TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 16, &bias, &out), CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 48, &bias, &out), CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 8192, &bias, &out), CLBNB_ERROR_INVALID_BLOCKSIZE);
    {
        clbnb_matrix x2 = x, o2 = out;
        x2.dtype = CLBNB_DTYPE_I8;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        o2.dtype = CLBNB_DTYPE_I32;
        TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &bias, &o2), CLBNB_ERROR_UNSUPPORTED_DTYPE);
        o2 = out;
        o2.rows = 2;
        TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &bias, &o2), CLBNB_ERROR_INVALID_SHAPE);
        x2 = x;
        x2.rows = 0;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_SHAPE);
        x2 = x;
        x2.ld = x.cols - 1;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_SHAPE);
        x2 = x;
        x2.rows = 2;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_SHAPE); /* out.rows != x.rows */
        x2 = x;
        x2.rows = 1000, o2 = out, o2.rows = 1000;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &o2), CLBNB_ERROR_BUFFER_TOO_SMALL);
        x2 = x;
        x2.cols = 128; /* K larger: the packed weight is too short */
        x2.ld = 128;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
        x2 = x;
        x2.offset = 2; /* not f32-aligned */
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_INVALID_ARGUMENT);
        x2 = x;
        x2.ld = SIZE_MAX / 2;
        TEST_STATUS(G4_CALL(&x2, &pk, &am, nf4, 32, &bias, &out), CLBNB_ERROR_SIZE_OVERFLOW);
        /* out overlapping x */
        o2 = (clbnb_matrix){io.mx, 0, 3, 10, 10, CLBNB_DTYPE_F32};
        TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &bias, &o2), CLBNB_ERROR_INVALID_ARGUMENT);
    }
    {
        clbnb_vector b2 = bias;
        b2.n = 9;
        TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &b2, &out), CLBNB_ERROR_BUFFER_TOO_SMALL);
        b2 = bias;
        b2.dtype = CLBNB_DTYPE_I32;
        TEST_STATUS(G4_CALL(&x, &pk, &am, nf4, 32, &b2, &out), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    }
    clbnb_context *other = test_context();
    TEST_STATUS(clbnb_gemm_4bit(ctx, test_queue(other), &x, &pk, &am, nf4, 32, &bias, &out, 0, NULL, NULL),
                CLBNB_ERROR_WRONG_CONTEXT);
    /* grad_input */
    clbnb_matrix g = {io.mout, io.vout.offset, 3, 10, io.vout.ld, CLBNB_DTYPE_F32};
    cl_mem gxm = test_buffer(ctx, 4 * 64 * 4);
    clbnb_matrix gx = clbnb_matrix_make(gxm, 0, 3, 64, CLBNB_DTYPE_F32), gx2 = gx;
    TEST_STATUS(clbnb_gemm_4bit_grad_input(NULL, q, &g, &pk, &am, nf4, 32, &gx, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, NULL, &pk, &am, nf4, 32, &gx, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &g, &pk, &am, nf4, 64 + 1, &gx, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    gx2.rows = 2;
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &g, &pk, &am, nf4, 32, &gx2, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    gx2 = gx;
    gx2.dtype = CLBNB_DTYPE_U8;
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &g, &pk, &am, nf4, 32, &gx2, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    /* grad_x over grad_out in one buffer */
    clbnb_matrix g2 = {io.mx, 0, 3, 10, 10, CLBNB_DTYPE_F32};
    gx2 = (clbnb_matrix){io.mx, 0, 3, 64, 64, CLBNB_DTYPE_F32};
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &g2, &pk, &am, CLBNB_QUANT_FP4, 32, &gx2, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    uint8_t *raw = malloc(io.out_bytes), *gxraw = malloc(4 * 64 * 4);
    test_download(ctx, io.mout, 0, raw, io.out_bytes);
    test_download(ctx, gxm, 0, gxraw, 4 * 64 * 4);
    size_t touched = 0;
    for (size_t i = 0; i < io.out_bytes; i++)
        touched += raw[i] != TEST_POISON;
    for (size_t i = 0; i < 4 * 64 * 4; i++)
        touched += gxraw[i] != TEST_POISON;
    TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
    /* events: a chained call through the wait list completes */
    cl_event e1 = NULL, e2 = NULL;
    TEST_STATUS(clbnb_gemm_4bit(ctx, q, &x, &pk, &am, nf4, 32, &bias, &out, 0, NULL, &e1), CLBNB_SUCCESS);
    TEST_STATUS(
        clbnb_gemm_4bit_ex(ctx, q, &x, &pk, &am, nf4, 32, &bias, &out, CLBNB_GEMM_4BIT_DEQUANT_SGEMM, 1, &e1, &e2),
        CLBNB_SUCCESS);
    TEST_CHECK(e1 && e2 && clWaitForEvents(1, &e2) == CL_SUCCESS, "events");
    if (e1) clReleaseEvent(e1);
    if (e2) clReleaseEvent(e2);
    cl_event e3 = NULL;
    TEST_STATUS(clbnb_gemm_4bit_grad_input(ctx, q, &g, &pk, &am, nf4, 32, &gx, 0, NULL, &e3), CLBNB_SUCCESS);
    TEST_CHECK(e3 && clWaitForEvents(1, &e3) == CL_SUCCESS, "grad event");
    if (e3) clReleaseEvent(e3);
    clbnb_context_free(other);
    free(raw), free(gxraw);
    clReleaseMemObject(gxm);
    io_free(&io);
    state_free(&s);
#undef G4_CALL
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const clbnb_dtype F32 = CLBNB_DTYPE_F32, F16 = CLBNB_DTYPE_F16, BF16 = CLBNB_DTYPE_BF16;
    /* m, n, k, bs, fp4, nested, code2_explicit, bias, xdt, odt, bdt, poff, bs2 */
    const g4case cases[] = {
        {1, 64, 64, 64, 0, 0, 0, 0, F32, F32, F32, 0, 256},      /* K = blocksize */
        {1, 1, 32, 32, 1, 0, 0, 1, F16, F16, F16, 0, 256},       /* N = 1 */
        {1, 37, 256, 128, 0, 1, 0, 1, BF16, BF16, BF16, 0, 256}, /* odd N, nested */
        {1, 33, 4096, 4096, 1, 1, 1, 0, F16, F32, F32, 0, 4},    /* bs 4096, code2 buffer, small bs2 */
        {1, 5, 1, 64, 0, 0, 0, 1, F32, F32, BF16, 0, 256},       /* K = 1 */
        {1, 7, 65, 32, 1, 1, 0, 0, F16, F16, F16, 0, 2},         /* odd K: rows straddle bytes */
        {1, 9, 100, 64, 0, 0, 0, 1, BF16, BF16, F16, 0, 256},    /* K not a multiple of bs */
        {1, 21, 512, 512, 0, 0, 0, 0, F32, F32, F32, 3, 256},    /* unaligned packed offset */
        {2, 31, 512, 512, 1, 0, 0, 1, F32, F32, F32, 0, 256},
        {3, 17, 1024, 1024, 0, 1, 0, 1, F16, F16, F16, 0, 256},
        {16, 48, 2048, 2048, 1, 0, 0, 0, BF16, BF16, BF16, 0, 256},
        {17, 3, 96, 32, 0, 1, 1, 1, F32, BF16, F32, 0, 8},
        {64, 40, 192, 64, 1, 1, 0, 0, F16, F16, F16, 0, 256},
        {65, 19, 128, 256, 0, 0, 0, 1, F32, F32, F16, 0, 256}, /* K < blocksize */
        {100, 70, 320, 64, 1, 1, 0, 1, F16, F16, F16, 0, 256},
        {5, 13, 33, 32, 0, 0, 0, 0, F16, F16, F32, 0, 256}, /* odd K, small batch */
        {9, 1, 4096, 256, 1, 0, 0, 1, F32, F32, F32, 0, 256},
        {4, 300, 128, 128, 0, 1, 0, 0, BF16, BF16, BF16, 0, 256},
    };
    double t0 = g4_now();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(ctx, q, &rng, &cases[i]);
    /* the GEMV built for plain absmax (the default on GPUs, see src/gemm_4bit.c) */
    setenv("CLBNB_G4_GEMV_SPECIALIZE", "1", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].m == 1) run_case(ctx, q, &rng, &cases[i]);
    unsetenv("CLBNB_G4_GEMV_SPECIALIZE");
    const g4case grads[] = {
        {1, 64, 128, 64, 0, 0, 0, 0, F32, F32, F32, 0, 256},
        {7, 33, 65, 32, 1, 1, 0, 0, F16, F16, F16, 0, 256},
        {70, 96, 256, 128, 0, 0, 0, 0, BF16, F32, F32, 0, 256},
    };
    for (size_t i = 0; i < sizeof grads / sizeof grads[0]; i++)
        run_grad_case(ctx, q, &rng, &grads[i]);
    printf("random cases + grads: %.1f s\n", g4_now() - t0);
    bars_matmul(ctx, q, &rng);
    printf("matmul bars: %.1f s\n", g4_now() - t0);
    bars_gemv(ctx, q, &rng);
    printf("gemv bars: %.1f s\n", g4_now() - t0);
    bars_identity(ctx, q, &rng);
    printf("identity: %.1f s\n", g4_now() - t0);
    validation(ctx, q, &rng);
    clbnb_context_free(ctx);
    return test_finish();
}
