/* test_gemm_4bit_mma.c: the large-batch 4-bit GEMM on the nv_mma path (W decoded to f16 inside the
 * f16 tensor-core GEMM, or dequantized to f16 first, with f32 accumulation; the PTX is emulated
 * where the device has no tensor cores) and the fused small-batch tensor-core kernel,
 * against a host reference of the spec's formulas: w = RN_f16(fl32(table[q] * absmax)) (nested:
 * absmax = fl32(fl32(code2[q8] * absmax2) + offset)), out = RN_T(sum x*w + bias), on random packed
 * weights, plain and nested absmax, NF4 and FP4, awkward shapes, poisoned outputs, every element
 * checked. f32 activations on the same path take the SGEMM variant and are checked too. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

struct mma_case {
    size_t M, N, K, bs;
    clbnb_quant_type type;
    int nested, bias;
    clbnb_dtype x_dt, out_dt;
    int misalign_x; /* x rows not 8-byte aligned (the fused kernel's narrow-load path) */
    size_t poff;    /* byte offset of the packed weights in their buffer */
};

static float table_value(clbnb_quant_type type, unsigned q) {
    if (type == CLBNB_QUANT_NF4) return clbnb_code_nf4()[q];
    float v = clbnb_code_fp4()[q & 7];
    return (q & 8) ? -v : v;
}

/* Runs case c on fresh data from rng and checks every output; *keep (if not NULL) receives the
 * downloaded output region (caller frees). */
static void run_case_keep(clbnb_context *ctx, cl_command_queue q, const struct mma_case *c, test_rng *rng,
                          clbnb_gemm_4bit_variant variant, unsigned char **keep) {
    size_t M = c->M, N = c->N, K = c->K, nk = N * K, nblocks = (nk + c->bs - 1) / c->bs;
    size_t pbytes = (nk + 1) / 2, nb2 = (nblocks + 255) / 256;
    unsigned char *packed = malloc(pbytes), *qabs = malloc(nblocks);
    float *absmax = malloc(nblocks * 4), *absmax2 = malloc(nb2 * 4), offset = 0.05f;
    for (size_t i = 0; i < pbytes; i++)
        packed[i] = (unsigned char)test_rng_next(rng);
    for (size_t i = 0; i < nblocks; i++)
        absmax[i] = 0.01f + test_rng_uniform(rng), qabs[i] = (unsigned char)test_rng_next(rng);
    for (size_t i = 0; i < nb2; i++)
        absmax2[i] = 0.2f + test_rng_uniform(rng);
    /* the absmax each block really has */
    float *eff = malloc(nblocks * 4);
    for (size_t b = 0; b < nblocks; b++) {
        if (c->nested) {
            float t = clbnb_code_dynamic()[qabs[b]] * absmax2[b / 256];
            eff[b] = t + offset;
        } else {
            eff[b] = absmax[b];
        }
    }
    float *x = malloc(M * K * 4), *bias = malloc(N * 4);
    for (size_t i = 0; i < M * K; i++)
        x[i] = test_round_to_dtype(test_rng_normal(rng), c->x_dt);
    for (size_t i = 0; i < N; i++)
        bias[i] = c->bias ? test_round_to_dtype(test_rng_normal(rng), CLBNB_DTYPE_F16) : 0.0f;
    size_t xs = clbnb_dtype_size(c->x_dt), os = clbnb_dtype_size(c->out_dt);
    size_t ldx = K + 8 + (size_t)c->misalign_x, x_off = 16 + 2 * (size_t)c->misalign_x, ldo = N + 1, o_off = 2 * os;
    unsigned char *xb = calloc(x_off + M * ldx * xs, 1), *bb = malloc(N * 2);
    for (size_t m = 0; m < M; m++)
        test_floats_to_dtype(x + m * K, xb + x_off + m * ldx * xs, K, c->x_dt);
    test_floats_to_dtype(bias, bb, N, CLBNB_DTYPE_F16);

    unsigned char *pstore = malloc(c->poff + pbytes);
    memset(pstore, 0xA5, c->poff);
    memcpy(pstore + c->poff, packed, pbytes);
    cl_mem pm = test_buffer_from(ctx, pstore, c->poff + pbytes), xm = test_buffer_from(ctx, xb, x_off + M * ldx * xs);
    cl_mem am = c->nested ? test_buffer_from(ctx, qabs, nblocks) : test_buffer_from(ctx, absmax, nblocks * 4);
    cl_mem a2m = test_buffer_from(ctx, absmax2, nb2 * 4), offm = test_buffer_from(ctx, &offset, 4);
    cl_mem bm = test_buffer_from(ctx, bb, N * 2);
    size_t out_bytes = o_off + M * ldo * os;
    cl_mem om = test_buffer(ctx, out_bytes);
    clbnb_vector pv = clbnb_vector_make(pm, c->poff, pbytes, CLBNB_DTYPE_U8);
    clbnb_absmax ab;
    memset(&ab, 0, sizeof ab);
    if (c->nested) {
        ab.absmax = clbnb_vector_make(am, 0, nblocks, CLBNB_DTYPE_U8);
        ab.absmax2 = clbnb_vector_make(a2m, 0, nb2, CLBNB_DTYPE_F32);
        ab.offset = clbnb_vector_make(offm, 0, 1, CLBNB_DTYPE_F32);
        ab.blocksize2 = 256;
    } else {
        ab = clbnb_absmax_plain(&(clbnb_vector){am, 0, nblocks, CLBNB_DTYPE_F32});
    }
    clbnb_matrix xmat = {xm, x_off, M, K, ldx, c->x_dt}, omat = {om, o_off, M, N, ldo, c->out_dt};
    clbnb_vector bv = clbnb_vector_make(bm, 0, N, CLBNB_DTYPE_F16);
    clbnb_status s = clbnb_gemm_4bit_ex(ctx, q, &xmat, &pv, &ab, c->type, c->bs, c->bias ? &bv : NULL, &omat, variant,
                                        0, NULL, NULL);
    TEST_CHECK(s == CLBNB_SUCCESS, "%zux%zux%zu: %s %s", M, N, K, clbnb_status_string(s), clbnb_context_build_log(ctx));
    unsigned char *got = malloc(out_bytes);
    test_download(ctx, om, 0, got, out_bytes);
    /* the tensor-core route rounds weights to f16 (as bitsandbytes' dequantize_4bit + fp16 linear);
     * f32 activations take the SGEMM route with f32 weights */
    int f16_weights = c->x_dt == CLBNB_DTYPE_F16;
    size_t bad = 0, untouched_bad = 0;
    double worst = 0;
    for (size_t i = 0; i < o_off; i++)
        untouched_bad += got[i] != TEST_POISON;
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < ldo; n++) {
            const unsigned char *p = got + o_off + (m * ldo + n) * os;
            if (n >= N) {
                for (size_t i = 0; i < os; i++)
                    untouched_bad += p[i] != TEST_POISON;
                continue;
            }
            double ref = bias[n], mag = fabs(bias[n]);
            for (size_t k = 0; k < K; k++) {
                size_t idx = n * K + k;
                unsigned qn = (idx % 2 == 0) ? packed[idx / 2] >> 4 : packed[idx / 2] & 15;
                float w = table_value(c->type, qn) * eff[idx / c->bs];
                if (f16_weights) w = test_round_to_dtype(w, CLBNB_DTYPE_F16);
                ref += (double)x[m * K + k] * w;
                mag += fabs((double)x[m * K + k] * w);
            }
            float g;
            test_dtype_to_floats(p, &g, 1, c->out_dt);
            double ulp = c->out_dt == CLBNB_DTYPE_F32 ? 0 : (c->out_dt == CLBNB_DTYPE_F16 ? 1.0 / 1024 : 1.0 / 128);
            double tol = (double)K * 1.2e-7 * mag + ulp * fabs(ref) + 1e-30;
            double err = fabs(g - ref);
            if (!(err <= tol)) bad++;
            if (err / (tol > 0 ? tol : 1) > worst) worst = err / (tol > 0 ? tol : 1);
        }
    }
    TEST_CHECK(bad == 0 && untouched_bad == 0,
               "%s%s %zux%zux%zu bs%zu %s nested=%d bias=%d x=%s%s out=%s: %zu outputs wrong (worst %.2f x "
               "tolerance), %zu bytes outside the output changed",
               variant == CLBNB_GEMM_4BIT_SMALL_BATCH ? "fused" : "dequant+gemm",
               getenv("CLBNB_G4_DEQUANT_FUSE")
                   ? (atoi(getenv("CLBNB_G4_DEQUANT_FUSE")) ? " (decode in the GEMM)" : " (dequantize first)")
                   : "",
               M, N, K, c->bs, clbnb_quant_type_name(c->type), c->nested, c->bias, clbnb_dtype_name(c->x_dt),
               c->misalign_x ? " (misaligned rows)" : "", clbnb_dtype_name(c->out_dt), bad, worst, untouched_bad);
    cl_mem all[] = {pm, xm, am, a2m, offm, bm, om};
    for (size_t i = 0; i < 7; i++)
        clReleaseMemObject(all[i]);
    free(packed), free(qabs), free(absmax), free(absmax2), free(eff), free(x), free(bias), free(xb), free(bb),
        free(pstore);
    if (keep)
        *keep = got;
    else
        free(got);
}

static void run_case(clbnb_context *ctx, cl_command_queue q, const struct mma_case *c, test_rng *rng,
                     clbnb_gemm_4bit_variant variant) {
    run_case_keep(ctx, q, c, rng, variant, NULL);
}

int main(void) {
    setenv("CLBNB_EMULATE_PTX", "1", 0);
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, CLBNB_PATH_NV_MMA), CLBNB_SUCCESS);
    static const struct mma_case cases[] = {
        {65, 33, 128, 64, CLBNB_QUANT_NF4, 0, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
        {70, 7, 250, 32, CLBNB_QUANT_FP4, 1, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, 0, 0},
        {130, 129, 96, 32, CLBNB_QUANT_NF4, 1, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, 0, 0},
        {1, 5, 1, 32, CLBNB_QUANT_FP4, 0, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
        {17, 300, 77, 128, CLBNB_QUANT_NF4, 0, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
        {66, 20, 64, 64, CLBNB_QUANT_NF4, 1, 1, CLBNB_DTYPE_F32, CLBNB_DTYPE_F32, 0, 0}, /* SGEMM route */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(ctx, q, &cases[i], &rng, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    /* DEQUANT_SGEMM with W decoded inside the f16 GEMM (g4_gemm_mma: K a multiple of 16, packed
     * offset 8-byte aligned) and, for the same cases, dequantized first (CLBNB_G4_DEQUANT_FUSE=0):
     * one piece of K (16), a last stage half past K (48, 272), rows straddling absmax blocks (K not a
     * multiple of the blocksize), M = 1, N = 1, x rows not 16-byte aligned (A gathered bytewise),
     * a packed offset of 8 bytes, nested absmax, every output dtype */
    static const struct mma_case decode_fused[] = {
        {1, 1, 16, 32, CLBNB_QUANT_NF4, 0, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
        {33, 70, 48, 32, CLBNB_QUANT_FP4, 1, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, 0, 8},
        {129, 131, 272, 64, CLBNB_QUANT_NF4, 0, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, 1, 24},
        {7, 200, 1040, 128, CLBNB_QUANT_NF4, 1, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
    };
    /* the two routes on the same data: the same weights summed in the same order (same tiles along
     * K, same split), so the same bytes */
    for (size_t i = 0; i < sizeof decode_fused / sizeof decode_fused[0]; i++) {
        const struct mma_case *c = &decode_fused[i];
        unsigned char *out[2] = {NULL, NULL};
        test_rng start = rng;
        for (int fuse = 1; fuse >= 0; fuse--) {
            setenv("CLBNB_G4_DEQUANT_FUSE", fuse ? "1" : "0", 1);
            rng = start;
            run_case_keep(ctx, q, c, &rng, CLBNB_GEMM_4BIT_DEQUANT_SGEMM, &out[fuse]);
        }
        const size_t bytes = 2 * clbnb_dtype_size(c->out_dt) + c->M * (c->N + 1) * clbnb_dtype_size(c->out_dt);
        TEST_CHECK(out[0] && out[1] && memcmp(out[0], out[1], bytes) == 0,
                   "%zux%zux%zu: the decode in the GEMM and dequantize first give different bytes", c->M, c->N, c->K);
        free(out[0]), free(out[1]);
    }
    unsetenv("CLBNB_G4_DEQUANT_FUSE");
    /* the fused tensor-core kernel (small batch, f16 x, K a multiple of the blocksize): every tile
     * width (M <= 8, 16, 32, 64 and two row slices), row and K tails, partial K segments */
    static const struct mma_case fused[] = {
        {2, 40, 256, 64, CLBNB_QUANT_NF4, 0, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
        {16, 33, 512, 128, CLBNB_QUANT_FP4, 1, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, 0, 0},
        {17, 70, 96, 32, CLBNB_QUANT_FP4, 1, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F32, 1, 0},
        {64, 129, 320, 64, CLBNB_QUANT_NF4, 1, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, 0, 0},
        {100, 19, 128, 128, CLBNB_QUANT_NF4, 0, 0, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 1, 0},
        {5, 300, 640, 128, CLBNB_QUANT_FP4, 0, 1, CLBNB_DTYPE_F16, CLBNB_DTYPE_F16, 0, 0},
    };
    for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++)
        run_case(ctx, q, &fused[i], &rng, CLBNB_GEMM_4BIT_SMALL_BATCH);
    /* AUTO on the nv_mma path (GPUs): the fused small-batch kernel up to M = 32, the GEMM variant above */
    if (!(clbnb_context_device_info(ctx)->type & CL_DEVICE_TYPE_CPU)) {
        TEST_CHECK(clbnb_gemm_4bit_auto_variant(ctx, 32) == CLBNB_GEMM_4BIT_SMALL_BATCH, "AUTO fused at M = 32");
        TEST_CHECK(clbnb_gemm_4bit_auto_variant(ctx, 33) == CLBNB_GEMM_4BIT_DEQUANT_SGEMM,
                   "AUTO uses the GEMM variant for M > 32 on the nv_mma path");
    }
    clbnb_context_free(ctx);

    /* split-K: K cut into 3 slices whose f32 partial tiles are summed by the reduce kernel */
    setenv("CLBNB_INT8_SPLIT_K", "3", 1);
    ctx = test_context();
    q = test_queue(ctx);
    TEST_STATUS(clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, CLBNB_PATH_NV_MMA), CLBNB_SUCCESS);
    for (size_t i = 0; i < 3; i++)
        run_case(ctx, q, &cases[i], &rng, CLBNB_GEMM_4BIT_DEQUANT_SGEMM);
    unsetenv("CLBNB_INT8_SPLIT_K");
    clbnb_context_free(ctx);
    return test_finish();
}
