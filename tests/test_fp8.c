/* test_fp8.c: bitsandbytes' create_fp8_map (spec 1.4: facts, and an independent double-precision
 * construction), get_block_sizes, tensor-wise quantize/dequantize (bit-exact against a C reference,
 * every dtype, both paths), matmul_fp8_mixed / matmul_fp8_global forward and backward against a C
 * reference of the same quantize-dequantize-matmul (fp8 operands exact, f32 tolerance on the
 * products), bitsandbytes' test_fp8linear bounds (1024 -> 2048 -> 1024 MLP, batch 10), validation. */
#include "layers_test_util.h"

/* ---- an independent construction of the FP8 map: decode every bit pattern ------------------ */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (x < y) return -1;
    if (x > y) return 1;
    /* +0.0 before -0.0 (bitsandbytes appends +v before -v and sorts stably) */
    return (signbit(x) != 0) - (signbit(y) != 0);
}

static void fp8_map_double(double *out, int is_signed, int e, int p, int total) {
    size_t cnt = 0;
    const double bias = pow(2.0, e - 1);
    for (unsigned bits = 0; bits < (1u << (e + p)); bits++) {
        unsigned mant = bits & ((1u << p) - 1), ex = bits >> p;
        double frac = (double)mant / pow(2.0, p);
        double v = ex == 0 ? frac * pow(2.0, -bias) : (1.0 + frac) * pow(2.0, -((double)ex - bias - 1.0));
        out[cnt++] = v;
        if (is_signed) out[cnt++] = -v;
    }
    (void)total;
    qsort(out, cnt, sizeof(double), cmp_double);
    /* padding zeros go right after the existing zeros */
    size_t pos = 0;
    while (pos < cnt && !(out[pos] > 0.0))
        pos++;
    memmove(out + pos + (256 - cnt), out + pos, (cnt - pos) * sizeof(double));
    for (size_t i = pos; i < pos + (256 - cnt); i++)
        out[i] = 0.0;
    double mx = out[255];
    for (size_t i = 0; i < 256; i++)
        out[i] /= mx;
}

static void test_map(void) {
    float e4[256], e5[256];
    TEST_STATUS(clbnb_fp8_map_create(e4, 1, 4, 3, 8), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_fp8_map_create(e5, 1, 5, 2, 8), CLBNB_SUCCESS);
    /* spec 1.4 facts: E4M3 raw max 480, smallest positive normalized 1.0173e-6, 255 distinct values
     * (two zeros: +0 at 127, -0 at 128); E5M2 raw max 114688, smallest positive 3.33e-11 */
    TEST_CHECK(e4[255] == 1.0f && e4[0] == -1.0f, "E4M3 ends %g %g", e4[0], e4[255]);
    TEST_CHECK(e4[127] == 0.0f && !signbit(e4[127]) && e4[128] == 0.0f && signbit(e4[128]), "E4M3 zeros");
    TEST_CHECK(fabs(e4[129] - 1.0173e-6) < 1e-10 && e4[129] == (float)(ldexp(1.0, -11) / 480.0), "E4M3 min %g",
               e4[129]);
    TEST_CHECK(e4[254] == 448.0f / 480.0f, "E4M3 second largest %g", e4[254]);
    TEST_CHECK(fabs(e5[129] - 3.33e-11) < 1e-13 && e5[129] == (float)(ldexp(1.0, -18) / 114688.0), "E5M2 min %g",
               e5[129]);
    TEST_CHECK(e5[254] == 98304.0f / 114688.0f && e5[255] == 1.0f, "E5M2 top %g", e5[254]);
    int distinct = 1, sorted = 1;
    for (int i = 1; i < 256; i++) {
        distinct += e4[i] != e4[i - 1];
        sorted &= e4[i] >= e4[i - 1] && e5[i] >= e5[i - 1];
    }
    TEST_CHECK(distinct == 255 && sorted, "E4M3 distinct %d sorted %d", distinct, sorted);
    /* independent construction, several formats (incl. padded and unsigned maps) */
    static const int fmts[][4] = {{1, 4, 3, 8}, {1, 5, 2, 8}, {1, 2, 1, 4}, {1, 1, 0, 2}, {1, 3, 3, 7},
                                  {0, 4, 4, 8}, {0, 2, 3, 5}, {1, 6, 1, 8}, {1, 2, 5, 8}, {1, 1, 6, 8}};
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        float got[256];
        double want[256];
        TEST_STATUS(clbnb_fp8_map_create(got, fmts[f][0], fmts[f][1], fmts[f][2], fmts[f][3]), CLBNB_SUCCESS);
        fp8_map_double(want, fmts[f][0], fmts[f][1], fmts[f][2], fmts[f][3]);
        int bad = 0, uniq = 1;
        for (int i = 0; i < 256; i++) {
            float w = (float)want[i];
            bad += test_float_bits(w) != test_float_bits(got[i]);
            if (i) uniq += got[i] != got[i - 1];
        }
        /* bitsandbytes' test_few_bit_quant: 2^bits or 2^bits - 1 unique values */
        int bits = fmts[f][3];
        TEST_CHECK(bad == 0 && (uniq == (1 << bits) || uniq == (1 << bits) - 1),
                   "map (%d,%d,%d,%d): %d entries differ, %d unique", fmts[f][0], fmts[f][1], fmts[f][2], fmts[f][3],
                   bad, uniq);
    }
    float dummy[256];
    TEST_STATUS(clbnb_fp8_map_create(NULL, 1, 4, 3, 8), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_fp8_map_create(dummy, 1, 4, 4, 8), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_fp8_map_create(dummy, 1, 0, 7, 8), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_fp8_map_create(dummy, 0, 5, 4, 9), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_fp8_map_create(dummy, 0, 8, 0, 8), CLBNB_ERROR_INVALID_ARGUMENT); /* 2^128 overflows f32 */
    /* get_block_sizes */
    static const size_t bsz[][2] = {{1, 64},      {64, 64},     {65, 128},    {1000, 1024}, {1024, 1024},
                                    {1025, 2048}, {4096, 4096}, {5000, 4096}, {0, 1024}};
    for (size_t i = 0; i < sizeof bsz / sizeof bsz[0]; i++)
        TEST_CHECK(clbnb_fp8_block_size(bsz[i][0]) == bsz[i][1], "block size %zu -> %zu", bsz[i][0],
                   clbnb_fp8_block_size(bsz[i][0]));
}

/* ---- C references -------------------------------------------------------------------------- */
/* spec 2.3 rule, counted linearly (the kernels use a binary search) */
static unsigned ref_nearest(const float *code, float x) {
    unsigned k = 0;
    for (int j = 0; j < 255; j++)
        k += (code[j] + code[j + 1]) * 0.5f < x;
    if (k < 255 && x == (code[k] + code[k + 1]) * 0.5f) k += k & 1u;
    return k;
}

static float ref_absmax(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* tensor-wise: out = RN_r2(RN_r1(code[k] * absmax)), k = nearest(x / absmax) */
static void ref_qdq_tensor(const float *x, size_t n, const float *code, clbnb_dtype r1, clbnb_dtype r2, float *out,
                           unsigned char *codes, float *absmax) {
    float a = ref_absmax(x, n);
    if (absmax) *absmax = a;
    for (size_t i = 0; i < n; i++) {
        unsigned k = ref_nearest(code, x[i] / a);
        if (codes) codes[i] = (unsigned char)k;
        if (out) out[i] = test_round_to_dtype(test_round_to_dtype(code[k] * a, r1), r2);
    }
}

/* block-wise (CUDA normalization x * (1/absmax), spec 2.2): out = RN_r(code[k] * absmax[b]) */
static void ref_qdq_block(const float *x, size_t n, const float *code, size_t bs, clbnb_dtype r, float *out) {
    for (size_t b0 = 0; b0 < n; b0 += bs) {
        size_t e = b0 + bs < n ? b0 + bs : n;
        float a = ref_absmax(x + b0, e - b0), inv = 1.0f / a;
        for (size_t i = b0; i < e; i++)
            out[i] = test_round_to_dtype(code[ref_nearest(code, x[i] * inv)] * a, r);
    }
}

static void transpose(const float *src, float *dst, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            dst[c * rows + r] = src[r * cols + c];
}

/* ---- tensor-wise quantize / dequantize ----------------------------------------------------- */
static void test_tensorwise(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const float *code, cl_mem code_mem,
                            size_t n, clbnb_dtype dt, clbnb_dtype odt, int zeros) {
    float *x = malloc(n * 4), *deq = malloc(n * 4), *want = malloc(n * 4);
    unsigned char *codes = malloc(n + 16), *wcodes = malloc(n);
    fill_normal(rng, x, n, zeros ? 0.0f : 3.0f);
    if (!zeros && n > 3) x[n / 2] = -7.5f, x[1] = 0.0f; /* the maximum on a negative element; an exact zero */
    tvec X = tv_upload(ctx, x, n, dt);
    cl_mem cm = test_buffer(ctx, n + 16), am = test_buffer(ctx, 12);
    clbnb_vector cv = clbnb_vector_make(cm, 5, n, CLBNB_DTYPE_U8), av = clbnb_vector_make(am, 4, 1, CLBNB_DTYPE_F32);
    clbnb_vector code_v = clbnb_vector_make(code_mem, 0, 256, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_quantize_tensorwise(ctx, q, &X.v, &code_v, &cv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
    float a_got[3];
    test_download(ctx, cm, 0, codes, n + 16);
    test_download(ctx, am, 0, a_got, 12);
    float a_want;
    ref_qdq_tensor(x, n, code, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, NULL, wcodes, &a_want);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (codes[5 + i] != wcodes[i] && !bad++) first = i;
    int guard = 1;
    for (size_t i = 0; i < 5; i++)
        guard &= codes[i] == TEST_POISON && codes[n + 5 + i] == TEST_POISON;
    TEST_CHECK(bad == 0 && guard, "tensorwise n=%zu %s: %zu codes differ (first %zu: %u vs %u), guard %d", n,
               clbnb_dtype_name(dt), bad, first, codes[5 + first], wcodes[first], guard);
    TEST_CHECK(test_float_bits(a_got[1]) == test_float_bits(a_want), "tensorwise absmax %g vs %g", a_got[1], a_want);
    /* dequantize */
    tvec O = tv_alloc(ctx, n, odt);
    TEST_STATUS(clbnb_dequantize_tensorwise(ctx, q, &cv, &av, &code_v, &O.v, 0, NULL, NULL), CLBNB_SUCCESS);
    size_t touched = tv_download(ctx, &O, deq);
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        float w = test_round_to_dtype(code[wcodes[i]] * a_want, odt);
        bad += test_float_bits(w) != test_float_bits(deq[i]);
    }
    TEST_CHECK(bad == 0 && touched == 0, "tensor dequant n=%zu -> %s: %zu differ, %zu bytes touched", n,
               clbnb_dtype_name(odt), bad, touched);
    if (!zeros && n >= 1024 && dt == CLBNB_DTYPE_F32) {
        /* a sanity bar: E4M3-like tensor-wise error on N(0, 3) data */
        double err = 0, mag = 0;
        for (size_t i = 0; i < n; i++)
            err += fabs(deq[i] - x[i]), mag += fabs(x[i]);
        /* E4M3-like (3 mantissa bits): about 2.3 %; E5M2-like (2 bits): about 4.5 % */
        double bar = code[254] == 448.0f / 480.0f ? 0.03 : 0.055;
        TEST_CHECK(err / mag < bar && err / mag > 0.005, "tensorwise relative mean abs err %.4f (bar %.3f)", err / mag,
                   bar);
    }
    tv_free(&X), tv_free(&O);
    clReleaseMemObject(cm), clReleaseMemObject(am);
    free(x), free(deq), free(want), free(codes), free(wcodes);
}

/* ---- matmuls against the reference --------------------------------------------------------- */
typedef struct mm_case {
    size_t m, k, n;
    clbnb_fp8_mode mode;
    int b_trans;
    clbnb_dtype dt;  /* a, b, grad_out */
    clbnb_dtype odt; /* out, grad_a, grad_b */
} mm_case;

static size_t check_close(const char *what, const mm_case *c, const float *got, const double *ref,
                          const double *abs_sum, size_t cnt, size_t touched) {
    size_t first = 0, bad = count_not_close(got, ref, abs_sum, cnt, c->odt, &first);
    TEST_CHECK(bad == 0 && touched == 0,
               "%s %s m%zu k%zu n%zu bt%d %s->%s: %zu of %zu off (first %zu: %.9g vs %.9g), %zu bytes touched", what,
               c->mode == CLBNB_FP8_MIXED ? "mixed" : "global", c->m, c->k, c->n, c->b_trans, clbnb_dtype_name(c->dt),
               clbnb_dtype_name(c->odt), bad, cnt, first, bad ? got[first] : 0.0, bad ? ref[first] : 0.0, touched);
    return bad;
}

static void test_matmul(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const float *fw, const float *bw,
                        cl_mem fw_mem, cl_mem bw_mem, const mm_case *c) {
    const size_t m = c->m, k = c->k, n = c->n, bsz = clbnb_fp8_block_size(k), bsz2 = clbnb_fp8_block_size(n);
    float *a = malloc(m * k * 4), *w = malloc(n * k * 4), *bmat = malloc(n * k * 4), *g = malloc(m * n * 4);
    fill_normal(rng, a, m * k, 1.0f);
    fill_normal(rng, w, n * k, 0.05f);
    fill_normal(rng, g, m * n, 0.01f);
    /* the device B: W [N, K] itself (b_trans) or B = W^T [K, N] */
    tmat A = tm_upload(ctx, a, m, k, c->dt, 3), G = tm_upload(ctx, g, m, n, c->dt, 1);
    for (size_t i = 0; i < n * k; i++)
        w[i] = test_round_to_dtype(w[i], c->dt);
    if (!c->b_trans) transpose(w, bmat, n, k);
    tmat B = c->b_trans ? tm_upload(ctx, w, n, k, c->dt, 2) : tm_upload(ctx, bmat, k, n, c->dt, 2);
    clbnb_vector fwv = clbnb_vector_make(fw_mem, 0, 256, CLBNB_DTYPE_F32),
                 bwv = clbnb_vector_make(bw_mem, 0, 256, CLBNB_DTYPE_F32);

    /* reference operands */
    float *fa = malloc(m * k * 4), *fwq = malloc(n * k * 4), *fg = malloc(m * n * 4), *fwq_g = malloc(n * k * 4);
    float *fa_g = malloc(m * k * 4), *a_g = malloc(m * k * 4);
    if (c->mode == CLBNB_FP8_MIXED)
        ref_qdq_block(a, m * k, fw, bsz, c->dt, fa);
    else
        ref_qdq_tensor(a, m * k, fw, c->dt, c->dt, fa, NULL, NULL);
    ref_qdq_tensor(w, n * k, fw, c->dt, c->dt, fwq, NULL, NULL); /* element-wise: layout does not matter */
    if (c->mode == CLBNB_FP8_MIXED)
        ref_qdq_block(g, m * n, bw, bsz2, c->dt, fg);
    else
        ref_qdq_tensor(g, m * n, bw, c->dt, c->dt, fg, NULL, NULL);
    ref_qdq_tensor(w, n * k, fw, c->dt, c->dt, fwq_g, NULL, NULL);
    ref_qdq_tensor(a, m * k, fw, c->dt, c->dt, fa_g, NULL, NULL);
    for (size_t i = 0; i < m * k; i++)
        a_g[i] = test_round_to_dtype(a[i], c->dt);
    /* with a non-compact B, tensor-wise quantization of the transposed layout must agree */
    if (!c->b_trans) {
        float *t = malloc(n * k * 4), *t2 = malloc(n * k * 4);
        ref_qdq_tensor(bmat, n * k, fw, c->dt, c->dt, t, NULL, NULL);
        transpose(t, t2, k, n);
        TEST_CHECK(memcmp(t2, fwq, n * k * 4) == 0, "tensor-wise quantization commutes with transposition");
        free(t), free(t2);
    }

    double *ref = malloc((m * k + n * k + m * n) * sizeof(double)),
           *abs_sum = malloc((m * k + n * k + m * n) * sizeof(double));
    float *got = malloc((m * k + n * k + m * n) * 4), *tmp = malloc((m * k + n * k + m * n) * 4);

    /* forward */
    tmat O = tm_alloc(ctx, m, n, c->odt, 2);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, c->mode, &A.m, &B.m, c->b_trans, &fwv, bsz, &O.m, 0, NULL, NULL),
                CLBNB_SUCCESS);
    size_t touched = tm_download(ctx, &O, got);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (size_t t = 0; t < k; t++) {
                double p = (double)fa[i * k + t] * fwq[j * k + t];
                s += p, sa += fabs(p);
            }
            ref[i * n + j] = s, abs_sum[i * n + j] = sa;
        }
    check_close("forward", c, got, ref, abs_sum, m * n, touched);

    /* backward: grad_a and grad_b */
    tmat GA = tm_alloc(ctx, m, k, c->odt, 1);
    tmat GB = c->b_trans ? tm_alloc(ctx, n, k, c->odt, 3) : tm_alloc(ctx, k, n, c->odt, 3);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, c->mode, &A.m, &B.m, c->b_trans, &G.m, &fwv, &bwv, bsz2, &GA.m, &GB.m,
                                          0, NULL, NULL),
                CLBNB_SUCCESS);
    touched = tm_download(ctx, &GA, got);
    ref_grad_x(fg, fwq_g, ref, abs_sum, m, n, k);
    check_close("grad_a", c, got, ref, abs_sum, m * k, touched);
    touched = tm_download(ctx, &GB, got);
    if (c->mode == CLBNB_FP8_MIXED)
        ref_grad_w(g, a_g, ref, abs_sum, m, n, k); /* full precision */
    else
        ref_grad_w(fg, fa_g, ref, abs_sum, m, n, k);
    if (!c->b_trans) { /* grad_B = grad_W^T */
        transpose(got, tmp, k, n);
        memcpy(got, tmp, n * k * 4);
    }
    check_close("grad_b", c, got, ref, abs_sum, n * k, touched);
    /* only grad_a requested: grad_b untouched */
    tm_free(&GB);
    GB = c->b_trans ? tm_alloc(ctx, n, k, c->odt, 3) : tm_alloc(ctx, k, n, c->odt, 3);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, c->mode, &A.m, &B.m, c->b_trans, &G.m, &fwv, &bwv, bsz2, &GA.m, NULL,
                                          0, NULL, NULL),
                CLBNB_SUCCESS);
    clFinish(q);
    TEST_CHECK(tm_untouched(ctx, &GB), "grad_b not requested but written");
    tm_free(&A), tm_free(&B), tm_free(&G), tm_free(&O), tm_free(&GA), tm_free(&GB);
    free(a), free(w), free(bmat), free(g), free(fa), free(fwq), free(fg), free(fwq_g), free(fa_g), free(a_g);
    free(ref), free(abs_sum), free(got), free(tmp);
}

/* ---- bitsandbytes test_fp8linear ----------------------------------------------------------- */
static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }
static double gelu_grad(double x) {
    return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

static void test_fp8linear(clbnb_context *ctx, cl_command_queue q, test_rng *rng, cl_mem fw_mem, cl_mem bw_mem) {
    const size_t b = 10, h = 1024, h2 = 2048;
    float *inp = malloc(b * h * 4), *w1 = malloc(h2 * h * 4), *b1 = malloc(h2 * 4), *w2 = malloc(h * h2 * 4),
          *b2 = malloc(h * 4);
    fill_normal(rng, inp, b * h, 1.0f);
    /* torch.nn.Linear init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias */
    fill_uniform(rng, w1, h2 * h, -1.0f / 32.0f, 1.0f / 32.0f);
    fill_uniform(rng, b1, h2, -1.0f / 32.0f, 1.0f / 32.0f);
    float s2 = 1.0f / sqrtf((float)h2);
    fill_uniform(rng, w2, h * h2, -s2, s2);
    fill_uniform(rng, b2, h, -s2, s2);
    clbnb_vector fwv = clbnb_vector_make(fw_mem, 0, 256, CLBNB_DTYPE_F32),
                 bwv = clbnb_vector_make(bw_mem, 0, 256, CLBNB_DTYPE_F32);
    const size_t bsz1 = clbnb_fp8_block_size(h), bsz21 = clbnb_fp8_block_size(h2);
    const size_t bsz2 = clbnb_fp8_block_size(h2), bsz22 = clbnb_fp8_block_size(h);

    /* fp32 reference in double */
    double *h1 = malloc(b * h2 * 8), *o = malloc(b * h * 8);
    float *g1f = malloc(b * h2 * 4);
    ref_linear(inp, w1, b1, h1, b, h2, h);
    for (size_t i = 0; i < b * h2; i++)
        g1f[i] = (float)gelu(h1[i]);
    ref_linear(g1f, w2, b2, o, b, h, h2);
    /* d mean / d out = 1 / (b * h); d g1 = G W2; d h1 = d g1 * gelu'(h1); grad_W1 = dh1^T inp */
    const float gconst = 1.0f / (float)(b * h);
    float *G = malloc(b * h * 4), *dh1 = malloc(b * h2 * 4);
    for (size_t i = 0; i < b * h; i++)
        G[i] = gconst;
    double *dg1 = malloc(b * h2 * 8), *gw1 = malloc(h2 * h * 8), *gb1 = malloc(h2 * 8);
    ref_grad_x(G, w2, dg1, NULL, b, h, h2);
    for (size_t i = 0; i < b * h2; i++)
        dh1[i] = (float)(dg1[i] * gelu_grad(h1[i]));
    ref_grad_w(dh1, inp, gw1, NULL, b, h2, h);
    ref_colsum(dh1, gb1, NULL, b, h2);

    /* the FP8 MLP on the device (bias, GELU and its derivative on the host) */
    tmat X = tm_upload(ctx, inp, b, h, CLBNB_DTYPE_F32, 0), W1 = tm_upload(ctx, w1, h2, h, CLBNB_DTYPE_F32, 0);
    tmat W2 = tm_upload(ctx, w2, h, h2, CLBNB_DTYPE_F32, 0);
    tmat H1 = tm_alloc(ctx, b, h2, CLBNB_DTYPE_F32, 0), O = tm_alloc(ctx, b, h, CLBNB_DTYPE_F32, 0);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &X.m, &W1.m, 1, &fwv, bsz1, &H1.m, 0, NULL, NULL),
                CLBNB_SUCCESS);
    float *h1d = malloc(b * h2 * 4), *g1d = malloc(b * h2 * 4), *od = malloc(b * h * 4);
    tm_download(ctx, &H1, h1d);
    for (size_t i = 0; i < b * h2; i++) {
        h1d[i] += b1[i % h2];
        g1d[i] = (float)gelu(h1d[i]);
    }
    tmat G1 = tm_upload(ctx, g1d, b, h2, CLBNB_DTYPE_F32, 0);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &G1.m, &W2.m, 1, &fwv, bsz2, &O.m, 0, NULL, NULL),
                CLBNB_SUCCESS);
    tm_download(ctx, &O, od);
    double err = 0;
    for (size_t i = 0; i < b * h; i++)
        err += fabs(od[i] + b2[i % h] - o[i]);
    err /= (double)(b * h);
    /* backward of layer 2 (grad of its input), then layer 1 (grad of its weight) */
    tmat GO = tm_upload(ctx, G, b, h, CLBNB_DTYPE_F32, 0), DG1 = tm_alloc(ctx, b, h2, CLBNB_DTYPE_F32, 0);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, CLBNB_FP8_MIXED, &G1.m, &W2.m, 1, &GO.m, &fwv, &bwv, bsz22, &DG1.m,
                                          NULL, 0, NULL, NULL),
                CLBNB_SUCCESS);
    float *dg1d = malloc(b * h2 * 4), *gw1d = malloc(h2 * h * 4);
    tm_download(ctx, &DG1, dg1d);
    for (size_t i = 0; i < b * h2; i++)
        dg1d[i] = (float)(dg1d[i] * gelu_grad(h1d[i]));
    tmat DH1 = tm_upload(ctx, dg1d, b, h2, CLBNB_DTYPE_F32, 0), GW1 = tm_alloc(ctx, h2, h, CLBNB_DTYPE_F32, 0);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, CLBNB_FP8_MIXED, &X.m, &W1.m, 1, &DH1.m, &fwv, &bwv, bsz21, NULL,
                                          &GW1.m, 0, NULL, NULL),
                CLBNB_SUCCESS);
    tm_download(ctx, &GW1, gw1d);
    double gerr = 0, berr = 0;
    for (size_t i = 0; i < h2 * h; i++)
        gerr += fabs(gw1d[i] - gw1[i]);
    gerr /= (double)(h2 * h);
    for (size_t j = 0; j < h2; j++) {
        double s = 0;
        for (size_t i = 0; i < b; i++)
            s += dg1d[i * h2 + j];
        berr += fabs(s - gb1[j]);
    }
    berr /= (double)h2;
    printf("fp8linear: output err %.5f (< 0.05), weight grad err %.3g, bias grad err %.3g (< 2e-5)\n", err, gerr, berr);
    TEST_CHECK(err < 0.05, "fp8linear output err %.5f", err);
    TEST_CHECK(gerr < 2e-5, "fp8linear weight grad err %.3g", gerr);
    TEST_CHECK(berr < 2e-5, "fp8linear bias grad err %.3g", berr);
    /* the FP8 error is real: the outputs are not simply the fp32 ones */
    TEST_CHECK(err > 1e-4, "fp8linear output err %.3g suspiciously small", err);
    tm_free(&X), tm_free(&W1), tm_free(&W2), tm_free(&H1), tm_free(&O), tm_free(&G1), tm_free(&GO), tm_free(&DG1);
    tm_free(&DH1), tm_free(&GW1);
    free(inp), free(w1), free(b1), free(w2), free(b2), free(h1), free(o), free(g1f), free(G), free(dh1), free(dg1);
    free(gw1), free(gb1), free(h1d), free(g1d), free(od), free(dg1d), free(gw1d);
}

/* ---- validation ----------------------------------------------------------------------------- */
static void test_validation(clbnb_context *ctx, cl_command_queue q, cl_mem fw_mem) {
    clbnb_vector fwv = clbnb_vector_make(fw_mem, 0, 256, CLBNB_DTYPE_F32);
    float z[64] = {0};
    tmat A = tm_upload(ctx, z, 4, 8, CLBNB_DTYPE_F32, 0), B = tm_upload(ctx, z, 8, 3, CLBNB_DTYPE_F32, 0);
    tmat O = tm_alloc(ctx, 4, 3, CLBNB_DTYPE_F32, 1);
    clbnb_matrix bad = O.m;
    bad.cols = 4;
    TEST_STATUS(clbnb_matmul_fp8_forward(NULL, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, &fwv, 64, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, NULL, 64, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, &fwv, 48, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 1, &fwv, 64, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, &fwv, 64, &bad, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, (clbnb_fp8_mode)7, &A.m, &B.m, 0, &fwv, 64, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_vector short_code = clbnb_vector_make(fw_mem, 0, 255, CLBNB_DTYPE_F32);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_GLOBAL, &A.m, &B.m, 0, &short_code, 0, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    clbnb_matrix ai = A.m;
    ai.dtype = CLBNB_DTYPE_I8;
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_GLOBAL, &ai, &B.m, 0, &fwv, 0, &O.m, 0, NULL, NULL),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_GLOBAL, &A.m, &B.m, 0, &fwv, 0, &A.m, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    clbnb_matrix over = A.m; /* output overlapping the input */
    over.cols = 3, over.ld = 8;
    TEST_STATUS(clbnb_matmul_fp8_forward(ctx, q, CLBNB_FP8_GLOBAL, &A.m, &B.m, 0, &fwv, 0, &over, 0, NULL, NULL),
                CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, &O.m, &fwv, &fwv, 100, NULL, NULL, 0,
                                          NULL, NULL),
                CLBNB_ERROR_INVALID_BLOCKSIZE);
    TEST_STATUS(clbnb_matmul_fp8_backward(ctx, q, CLBNB_FP8_MIXED, &A.m, &B.m, 0, &A.m, &fwv, &fwv, 64, NULL, NULL, 0,
                                          NULL, NULL),
                CLBNB_ERROR_INVALID_SHAPE);
    clFinish(q);
    TEST_CHECK(tm_untouched(ctx, &O), "output written on error");
    /* tensor-wise */
    cl_mem cm = test_buffer(ctx, 64), am = test_buffer(ctx, 8);
    clbnb_vector x = clbnb_vector_make(A.m.mem, 0, 32, CLBNB_DTYPE_F32),
                 cv = clbnb_vector_make(cm, 0, 32, CLBNB_DTYPE_U8);
    clbnb_vector av = clbnb_vector_make(am, 0, 1, CLBNB_DTYPE_F32),
                 cshort = clbnb_vector_make(cm, 0, 31, CLBNB_DTYPE_U8);
    clbnb_vector cbig = clbnb_vector_make(cm, 40, 32, CLBNB_DTYPE_U8);
    TEST_STATUS(clbnb_quantize_tensorwise(ctx, q, &x, NULL, &cv, &av, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_quantize_tensorwise(ctx, q, &x, &fwv, &cshort, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    TEST_STATUS(clbnb_quantize_tensorwise(ctx, q, &x, &fwv, &cbig, &av, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
    clbnb_vector xi = x;
    xi.dtype = CLBNB_DTYPE_I32;
    TEST_STATUS(clbnb_quantize_tensorwise(ctx, q, &xi, &fwv, &cv, &av, 0, NULL, NULL), CLBNB_ERROR_UNSUPPORTED_DTYPE);
    TEST_STATUS(clbnb_dequantize_tensorwise(ctx, q, &cshort, &av, &fwv, &x, 0, NULL, NULL),
                CLBNB_ERROR_BUFFER_TOO_SMALL);
    clFinish(q);
    unsigned char h[64];
    test_download(ctx, cm, 0, h, 64);
    int untouched = 1;
    for (int i = 0; i < 64; i++)
        untouched &= h[i] == TEST_POISON;
    TEST_CHECK(untouched, "codes written on error");
    clReleaseMemObject(cm), clReleaseMemObject(am);
    tm_free(&A), tm_free(&B), tm_free(&O);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    test_map();
    float fw[256], bw[256];
    clbnb_fp8_map_create(fw, 1, 4, 3, 8);
    clbnb_fp8_map_create(bw, 1, 5, 2, 8);
    cl_mem fw_mem = test_buffer_from(ctx, fw, sizeof fw), bw_mem = test_buffer_from(ctx, bw, sizeof bw);
    static const clbnb_path paths[] = {CLBNB_PATH_CPU, CLBNB_PATH_GENERIC};
    static const clbnb_dtype dts[] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};
    for (size_t pi = 0; pi < 2; pi++) {
        TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, paths[pi]), CLBNB_SUCCESS);
        static const size_t ns[] = {1, 7, 4095, 4097, 12345};
        for (size_t d = 0; d < 3; d++)
            for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
                test_tensorwise(ctx, q, &rng, i % 2 ? bw : fw, i % 2 ? bw_mem : fw_mem, ns[i], dts[d], dts[(d + i) % 3],
                                0);
        test_tensorwise(ctx, q, &rng, fw, fw_mem, 1 << 20, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 0);
        test_tensorwise(ctx, q, &rng, fw, fw_mem, 1000, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, 1); /* all zero */
        static const mm_case cases[] = {
            {1, 1, 1, CLBNB_FP8_MIXED, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {3, 70, 5, CLBNB_FP8_MIXED, 0, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {13, 300, 17, CLBNB_FP8_MIXED, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {37, 1000, 65, CLBNB_FP8_MIXED, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {5, 130, 200, CLBNB_FP8_MIXED, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16},
            {6, 64, 33, CLBNB_FP8_MIXED, 1, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32},
            {1, 1, 1, CLBNB_FP8_GLOBAL, 0, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {3, 70, 5, CLBNB_FP8_GLOBAL, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {37, 1000, 65, CLBNB_FP8_GLOBAL, 0, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32},
            {9, 200, 31, CLBNB_FP8_GLOBAL, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_matmul(ctx, q, &rng, fw, bw, fw_mem, bw_mem, &cases[i]);
    }
    test_fp8linear(ctx, q, &rng, fw_mem, bw_mem);
    test_validation(ctx, q, fw_mem);
    clReleaseMemObject(fw_mem), clReleaseMemObject(bw_mem);
    clbnb_context_free(ctx);
    return test_finish();
}
