/* test_gemm_4bit_golden.c: clbnb_gemm_4bit on bitsandbytes' own NF4 / FP4 weights (golden file
 * tests/data/bnb_reference.safetensors, keys mmN.*, blocksize 64) against bitsandbytes' outputs
 * mmN.{nf4,fp4}.out = gemm_4bit(X, W) + bias, for every variant and both paths. bitsandbytes' own
 * kernels are not mutually bit-exact (spec 6.2: the GEMV rounds weights and products to f16), so
 * the checks are its bars plus a worst-case bound for those f16 roundings:
 *   |ours - golden| <= 3 * 2^-11 * sum_k |x w| + 1 f16 ulp of the output.
 * Also checks that the C reference quantizer reproduces the golden packed bytes and absmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "g4_ref.h"

static const void *get(test_golden *g, const char *key, const char *want_dtype, size_t *count) {
    const char *dt = NULL;
    size_t shape[8], bytes = 0;
    int nd = 0;
    const void *p = test_golden_get(g, key, &dt, shape, &nd, &bytes);
    TEST_CHECK(p && strcmp(dt, want_dtype) == 0, "golden key %s (%s)", key, want_dtype);
    if (!p || strcmp(dt, want_dtype) != 0) return NULL;
    *count = bytes / (strcmp(dt, "U8") == 0 ? 1 : strcmp(dt, "F32") == 0 ? 4 : 2);
    return p;
}

static void f16s(const void *src, float *dst, size_t n) { test_dtype_to_floats(src, dst, n, CLBNB_DTYPE_F16); }

int main(void) {
    test_golden *g = test_golden_open();
    TEST_CHECK(g != NULL, "golden file");
    if (!g) return test_finish();
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    const size_t dims[3][3] = {{1, 256, 320}, {3, 192, 64}, {17, 512, 96}}; /* M, K, N */
    const size_t bs = 64;
    double max_diff_all = 0;
    for (int t = 0; t < 3; t++) {
        size_t m = dims[t][0], k = dims[t][1], n = dims[t][2], cnt;
        char key[64];
        snprintf(key, sizeof key, "mm%d.X", t);
        const void *xh = get(g, key, "F16", &cnt);
        snprintf(key, sizeof key, "mm%d.W", t);
        const void *wh = get(g, key, "F16", &cnt);
        snprintf(key, sizeof key, "mm%d.bias", t);
        const void *bh = get(g, key, "F16", &cnt);
        if (!xh || !wh || !bh) continue;
        float *x = malloc(m * k * 4), *w = malloc(n * k * 4), *bias = malloc(n * 4);
        f16s(xh, x, m * k), f16s(wh, w, n * k), f16s(bh, bias, n);
        cl_mem mx = test_buffer_from(ctx, xh, m * k * 2), mb = test_buffer_from(ctx, bh, n * 2);
        cl_mem mo = test_buffer(ctx, m * n * 2);
        clbnb_matrix vx = clbnb_matrix_make(mx, 0, m, k, CLBNB_DTYPE_F16);
        clbnb_matrix vo = clbnb_matrix_make(mo, 0, m, n, CLBNB_DTYPE_F16);
        clbnb_vector vb = clbnb_vector_make(mb, 0, n, CLBNB_DTYPE_F16);
        for (int fp4 = 0; fp4 < 2; fp4++) {
            const char *qt = fp4 ? "fp4" : "nf4";
            size_t np, na, no;
            snprintf(key, sizeof key, "mm%d.%s.packed", t, qt);
            const uint8_t *packed = get(g, key, "U8", &np);
            snprintf(key, sizeof key, "mm%d.%s.absmax", t, qt);
            const float *absmax = get(g, key, "F32", &na);
            snprintf(key, sizeof key, "mm%d.%s.out", t, qt);
            const void *outh = get(g, key, "F16", &no);
            if (!packed || !absmax || !outh) continue;
            TEST_CHECK(np == n * k / 2 && na == n * k / bs && no == m * n, "golden sizes mm%d %s", t, qt);
            /* the C reference quantizer against bitsandbytes: absmax identical, codes within the
             * spec's allowance for f16 input (2e-4 of elements) */
            uint8_t *myp = malloc(np);
            float *mya = malloc(na * 4);
            g4_quantize(fp4, w, n * k, bs, myp, mya);
            size_t code_diff = 0, am_diff = 0;
            for (size_t i = 0; i < n * k; i++) {
                unsigned a = (myp[i / 2] >> ((i & 1) ? 0 : 4)) & 15u, b = (packed[i / 2] >> ((i & 1) ? 0 : 4)) & 15u;
                code_diff += a != b;
            }
            for (size_t i = 0; i < na; i++)
                am_diff += test_float_bits(mya[i]) != test_float_bits(absmax[i]);
            TEST_CHECK(am_diff == 0 && (double)code_diff <= 2e-4 * (double)(n * k),
                       "reference quantizer vs bnb mm%d %s: %zu absmax, %zu codes differ", t, qt, am_diff, code_diff);
            free(myp), free(mya);

            float *golden = malloc(m * n * 4), *got = malloc(m * n * 4), *scale = malloc(na * 4),
                  *wq = malloc(n * k * 4);
            f16s(outh, golden, m * n);
            g4_scales(na, absmax, NULL, NULL, NULL, 0, 1, scale);
            g4_dequant(fp4, packed, scale, n * k, bs, wq);
            double *ref = malloc(m * n * sizeof(double)), *absref = malloc(m * n * sizeof(double));
            double *lin = malloc(m * n * sizeof(double));
            g4_matmul_ref(x, wq, bias, m, n, k, ref, absref);
            g4_matmul_ref(x, w, bias, m, n, k, lin, NULL);
            /* the golden out itself: within the bound of our reference (validates the bound) */
            size_t gbad = 0;
            for (size_t i = 0; i < m * n; i++)
                gbad += !(fabs(golden[i] - ref[i]) <= 3.0 / 2048 * absref[i] + g4_out_tol(ref[i], CLBNB_DTYPE_F16) * 2);
            TEST_CHECK(gbad == 0, "golden mm%d %s vs the C reference (+bias): %zu outside the bound", t, qt, gbad);
            cl_mem mp = test_buffer_from(ctx, packed, np), ma = test_buffer_from(ctx, absmax, na * 4);
            clbnb_vector vp = clbnb_vector_make(mp, 0, np, CLBNB_DTYPE_U8);
            clbnb_vector va = clbnb_vector_make(ma, 0, na, CLBNB_DTYPE_F32);
            clbnb_absmax am;
            memset(&am, 0, sizeof am);
            am.absmax = va;
            for (int p = 0; p < 2; p++) {
                clbnb_context_set_path(ctx, CLBNB_FAMILY_GEMM_4BIT, p ? CLBNB_PATH_CPU : CLBNB_PATH_GENERIC);
                for (int v = 0; v < CLBNB_GEMM_4BIT_VARIANT_COUNT; v++) {
                    test_poison(ctx, mo, m * n * 2);
                    TEST_STATUS(clbnb_gemm_4bit_ex(ctx, q, &vx, &vp, &am, fp4 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4, bs,
                                                   &vb, &vo, (clbnb_gemm_4bit_variant)v, 0, NULL, NULL),
                                CLBNB_SUCCESS);
                    uint16_t *raw = malloc(m * n * 2);
                    test_download(ctx, mo, 0, raw, m * n * 2);
                    f16s(raw, got, m * n);
                    free(raw);
                    size_t bad = 0;
                    double maxd = 0, mean_lin = 0, err1 = 0, rel1 = 0;
                    for (size_t i = 0; i < m * n; i++) {
                        double d = fabs((double)got[i] - golden[i]);
                        double bound = 3.0 / 2048 * absref[i] + g4_out_tol(golden[i], CLBNB_DTYPE_F16) * 2;
                        bad += !(d <= bound);
                        maxd = d > maxd ? d : maxd;
                        err1 += d;
                        rel1 += d / (fabs(golden[i]) + 1e-5);
                        mean_lin += fabs((double)got[i] - lin[i]);
                    }
                    err1 /= (double)(m * n), rel1 /= (double)(m * n), mean_lin /= (double)(m * n);
                    if (maxd > max_diff_all) max_diff_all = maxd;
                    TEST_CHECK(bad == 0,
                               "mm%d %s path=%d variant=%d: %zu outputs outside the f16-rounding bound of bnb's (max "
                               "diff %.3g)",
                               t, qt, p, v, bad, maxd);
                    /* test_matmul_4bit bar against the unquantized F.linear(X, W) + bias */
                    TEST_CHECK(mean_lin < 0.115, "mm%d %s: mean abs err vs F.linear %.4f", t, qt, mean_lin);
                    /* test_gemv_4bit bars (fp16, dim <= 512), ours vs bnb's as C1 / C2 */
                    double sd = sqrt((double)k);
                    TEST_CHECK(err1 / sd < 5.2e-5 + 7 * 6.3e-6 && rel1 / sd < 2.4e-4 + 7 * 3.57e-4 &&
                                   maxd / sd < 4.2e-4 + 7 * 6.87e-5,
                               "mm%d %s path=%d variant=%d: gemv bars err %.3g rel %.3g max %.3g", t, qt, p, v,
                               err1 / sd, rel1 / sd, maxd / sd);
                }
            }
            clReleaseMemObject(mp);
            clReleaseMemObject(ma);
            free(golden), free(got), free(scale), free(wq), free(ref), free(absref), free(lin);
        }
        clReleaseMemObject(mx), clReleaseMemObject(mb), clReleaseMemObject(mo);
        free(x), free(w), free(bias);
    }
    printf("max |ours - bitsandbytes| over all golden outputs: %.6g\n", max_diff_all);
    clbnb_context_free(ctx);
    test_golden_close(g);
    return test_finish();
}
