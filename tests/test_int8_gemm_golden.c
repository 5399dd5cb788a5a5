/* test_int8_gemm_golden.c: bitsandbytes' own LLM.int8 results (tests/data, keys mmN.*) through
 * the library, on every int8 GEMM path: X and W (f16) quantized row-wise with clbnb_quantize_rowwise
 * (LLM.int8, threshold 0), multiplied with clbnb_int8_linear_matmul (int32, vs mmN.int8.acc) and
 * clbnb_int8_scaled_matmul + f16 bias (vs mmN.int8.out).
 *
 * bitsandbytes' CUDA kernel scales with the approximate __fdividef(127, absmax); clbnb divides
 * exactly, so codes whose x * 127 / absmax lies within rounding distance of a .5 boundary may round
 * the other way (spec 2.4.5 / 5.1: the quantization issue allows 2e-4 of codes). Hence:
 *   - every int32 accumulator equals the exact product of our own codes (host, int64);
 *   - every output whose accumulator equals bitsandbytes' is bit-identical to bitsandbytes' f16 out
 *     (the fused dequantization formula, spec 5.4);
 *   - every output that differs lies in a row or column holding such a boundary code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

static void run_case(clbnb_context *ctx, cl_command_queue q, test_golden *g, int idx, const char *path) {
    char key[64];
    size_t xs[8], ws[8], bs[8], as[8], os[8];
    int nd;
    const char *dt;
    snprintf(key, sizeof key, "mm%d.X", idx);
    const void *X = test_golden_get(g, key, &dt, xs, &nd, NULL);
    snprintf(key, sizeof key, "mm%d.W", idx);
    const void *W = test_golden_get(g, key, &dt, ws, &nd, NULL);
    snprintf(key, sizeof key, "mm%d.bias", idx);
    const void *bias = test_golden_get(g, key, &dt, bs, &nd, NULL);
    snprintf(key, sizeof key, "mm%d.int8.acc", idx);
    const int32_t *acc_want = test_golden_get(g, key, &dt, as, &nd, NULL);
    snprintf(key, sizeof key, "mm%d.int8.out", idx);
    const uint16_t *out_want = test_golden_get(g, key, &dt, os, &nd, NULL);
    TEST_CHECK(X && W && bias && acc_want && out_want, "golden mm%d present", idx);
    if (!X || !W || !bias || !acc_want || !out_want) return;
    size_t M = xs[0], K = xs[1], N = ws[0];
    cl_mem xm = test_buffer_from(ctx, X, M * K * 2), wm = test_buffer_from(ctx, W, N * K * 2);
    cl_mem bm = test_buffer_from(ctx, bias, N * 2);
    cl_mem ca = test_buffer(ctx, M * K), cb = test_buffer(ctx, N * K), sca = test_buffer(ctx, M * 4);
    cl_mem scb = test_buffer(ctx, N * 4), acc = test_buffer(ctx, M * N * 4), out = test_buffer(ctx, M * N * 2);
    clbnb_matrix xmat = clbnb_matrix_make(xm, 0, M, K, CLBNB_DTYPE_F16),
                 wmat = clbnb_matrix_make(wm, 0, N, K, CLBNB_DTYPE_F16);
    clbnb_matrix cam = clbnb_matrix_make(ca, 0, M, K, CLBNB_DTYPE_I8),
                 cbm = clbnb_matrix_make(cb, 0, N, K, CLBNB_DTYPE_I8);
    clbnb_matrix accm = clbnb_matrix_make(acc, 0, M, N, CLBNB_DTYPE_I32),
                 outm = clbnb_matrix_make(out, 0, M, N, CLBNB_DTYPE_F16);
    clbnb_vector scav = clbnb_vector_make(sca, 0, M, CLBNB_DTYPE_F32),
                 scbv = clbnb_vector_make(scb, 0, N, CLBNB_DTYPE_F32);
    clbnb_vector bv = clbnb_vector_make(bm, 0, N, CLBNB_DTYPE_F16);
    TEST_STATUS(
        clbnb_quantize_rowwise(ctx, q, &xmat, &cam, &scav, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL, NULL),
        CLBNB_SUCCESS);
    TEST_STATUS(
        clbnb_quantize_rowwise(ctx, q, &wmat, &cbm, &scbv, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL, NULL),
        CLBNB_SUCCESS);
    TEST_STATUS(clbnb_int8_linear_matmul(ctx, q, &cam, &cbm, &accm, 0, NULL, NULL), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_int8_scaled_matmul(ctx, q, &cam, &cbm, &scav, &scbv, &bv, &outm, 0, NULL, NULL), CLBNB_SUCCESS);
    int32_t *acc_got = malloc(M * N * 4);
    uint16_t *out_got = malloc(M * N * 2);
    int8_t *ca_h = malloc(M * K), *cb_h = malloc(N * K);
    test_download(ctx, acc, 0, acc_got, M * N * 4);
    test_download(ctx, out, 0, out_got, M * N * 2);
    test_download(ctx, ca, 0, ca_h, M * K);
    test_download(ctx, cb, 0, cb_h, N * K);
    /* rows / columns holding a code at a rounding boundary (|frac(x * 127 / absmax) - 0.5| < 1e-4) */
    int *amb_row = calloc(M, sizeof(int)), *amb_col = calloc(N, sizeof(int));
    for (int which = 0; which < 2; which++) {
        size_t rows = which ? N : M;
        const void *src = which ? W : X;
        for (size_t r = 0; r < rows; r++) {
            double amax = 0;
            for (size_t k = 0; k < K; k++) {
                uint16_t h;
                memcpy(&h, (const char *)src + 2 * (r * K + k), 2);
                double v = fabs(test_half_to_float(h));
                amax = v > amax ? v : amax;
            }
            for (size_t k = 0; k < K && amax > 0; k++) {
                uint16_t h;
                memcpy(&h, (const char *)src + 2 * (r * K + k), 2);
                double f = fabs(test_half_to_float(h) * 127.0 / amax);
                if (fabs(f - floor(f) - 0.5) < 1e-4) (which ? amb_col : amb_row)[r] = 1;
            }
        }
    }
    size_t wrong_acc = 0, same = 0, same_bad_out = 0, differ = 0, unexplained = 0;
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            int64_t ref = 0;
            for (size_t k = 0; k < K; k++)
                ref += (int64_t)ca_h[m * K + k] * cb_h[n * K + k];
            size_t i = m * N + n;
            int32_t w;
            uint16_t o;
            memcpy(&w, (const char *)acc_want + 4 * i, 4);
            memcpy(&o, (const char *)out_want + 2 * i, 2);
            wrong_acc += acc_got[i] != ref;
            if (acc_got[i] == w) {
                same++;
                same_bad_out += out_got[i] != o;
            } else {
                differ++;
                unexplained += !amb_row[m] && !amb_col[n];
            }
        }
    TEST_CHECK(wrong_acc == 0, "[%s] mm%d: %zu accumulators differ from the exact product of the codes", path, idx,
               wrong_acc);
    TEST_CHECK(same_bad_out == 0,
               "[%s] mm%d (%zux%zux%zu): %zu of %zu outputs with bitsandbytes' accumulator differ from "
               "its f16 output",
               path, idx, M, N, K, same_bad_out, same);
    TEST_CHECK(unexplained == 0 && same > 0,
               "[%s] mm%d: %zu accumulators differ from bitsandbytes, %zu of them not at a "
               "boundary code",
               path, idx, differ, unexplained);
    fprintf(stderr, "[%s] mm%d: %zu of %zu outputs bit-identical to bitsandbytes; %zu differ through boundary codes\n",
            path, idx, same - same_bad_out, M * N, differ);
    free(ca_h), free(cb_h), free(amb_row), free(amb_col);
    cl_mem all[] = {xm, wm, bm, ca, cb, sca, scb, acc, out};
    for (size_t i = 0; i < 9; i++)
        clReleaseMemObject(all[i]);
    free(acc_got), free(out_got);
}

int main(void) {
    setenv("CLBNB_EMULATE_PTX", "1", 0); /* nv_mma everywhere: emulated where there are no tensor cores */
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_golden *g = test_golden_open();
    TEST_CHECK(g != NULL, "golden file");
    const clbnb_path paths[] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU, CLBNB_PATH_DOT4, CLBNB_PATH_NV_MMA};
    for (size_t p = 0; g && p < sizeof paths / sizeof paths[0]; p++) {
        if (!clbnb_context_path_available(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p])) continue;
        clbnb_context_set_path(ctx, CLBNB_FAMILY_INT8_GEMM, paths[p]);
        for (int i = 0; i < 3; i++)
            run_case(ctx, q, g, i, clbnb_path_name(paths[p]));
    }
    test_golden_close(g);
    clbnb_context_free(ctx);
    return test_finish();
}
