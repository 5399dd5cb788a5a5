/* test_quant_golden_blockwise.c: clbnb against bitsandbytes' CUDA outputs stored in
 * tests/data/bnb_reference.safetensors (sN.x_f32 / sN.x_f16 inputs, N = 0, 1, 2):
 *   sN.{nf4,fp4}.bs{64,128,256}.n{0,1}: packed (from x_f32), packed_from_f16, absmax_f32 (n0: the
 *     plain absmax; n1: the absmax reconstructed from the nested state), absmax_u8 / nested_absmax /
 *     offset / nested_code (n1), dequant_f32 (x_f32 quantized, f32 out), dequant_f16 (x_f16
 *     quantized, f16 out), qs.absmax;
 *   sN.dyn8.bs{256,4096}: codes / absmax / dequant (x_f32, f32 out); dyn8.code.
 * Bars (spec 2.4.5 / brief): absmax and nested statistics bit-identical, codes within 1e-5 (f32 input)
 * / 2e-4 (f16 input) of elements, dequantized values bit-identical given the golden codes.
 * Both kernel paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_quant_blockwise_ref.h"

static test_golden *g;

static const void *get(const char *a, int s, size_t bs, int nest, const char *what, size_t *bytes) {
    char key[160];
    snprintf(key, sizeof key, "s%d.%s.bs%zu.n%d.%s", s, a, bs, nest, what);
    const void *p = test_golden_get(g, key, NULL, NULL, NULL, bytes);
    TEST_CHECK(p != NULL, "golden key %s missing", key);
    return p;
}

static size_t count_diff_u8(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += a[i] != b[i];
    return d;
}

/* Nibble-level mismatch count of two packed arrays of n elements. */
static size_t count_diff_nibbles(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned x = (i & 1) ? a[i / 2] & 15u : a[i / 2] >> 4, y = (i & 1) ? b[i / 2] & 15u : b[i / 2] >> 4;
        d += x != y;
    }
    return d;
}

static cl_mem upload(clbnb_context *ctx, const void *p, size_t bytes) { return test_buffer_from(ctx, p, bytes); }

static void *download(clbnb_context *ctx, cl_mem m, size_t bytes) {
    void *p = malloc(bytes);
    test_download(ctx, m, 0, p, bytes);
    return p;
}

static void four_bit(clbnb_context *ctx, cl_command_queue q, int s, const char *path, size_t *total_mism) {
    const char *types[2] = {"nf4", "fp4"};
    size_t xb32, xb16;
    char key[64];
    snprintf(key, sizeof key, "s%d.x_f32", s);
    const float *x32 = test_golden_get(g, key, NULL, NULL, NULL, &xb32);
    snprintf(key, sizeof key, "s%d.x_f16", s);
    const uint16_t *x16 = test_golden_get(g, key, NULL, NULL, NULL, &xb16);
    if (!x32 || !x16) {
        TEST_CHECK(0, "golden inputs of s%d missing", s);
        return;
    }
    size_t n = xb32 / 4;
    cl_mem x32m = upload(ctx, x32, xb32), x16m = upload(ctx, x16, xb16);
    clbnb_vector x32v = clbnb_vector_make(x32m, 0, n, CLBNB_DTYPE_F32),
                 x16v = clbnb_vector_make(x16m, 0, n, CLBNB_DTYPE_F16);
    for (int t = 0; t < 2; t++)
        for (size_t bs = 64; bs <= 256; bs *= 2)
            for (int nest = 0; nest < 2; nest++) {
                char tag[96];
                snprintf(tag, sizeof tag, "[%s s%d %s bs%zu n%d]", path, s, types[t], bs, nest);
                size_t nb = clbnb_blocks_count(n, bs), pb = clbnb_packed_4bit_bytes(n), by;
                clbnb_quant_type type = t ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4;
                const uint8_t *gp = get(types[t], s, bs, nest, "packed", &by);
                const uint8_t *gp16 = get(types[t], s, bs, nest, "packed_from_f16", &by);
                const float *gabs = get(types[t], s, bs, nest, "absmax_f32", &by);
                const float *gdq32 = get(types[t], s, bs, nest, "dequant_f32", &by);
                const uint16_t *gdq16 = get(types[t], s, bs, nest, "dequant_f16", &by);
                const void *gqs = get(types[t], s, bs, nest, "qs.absmax", &by);
                /* the plain absmax (n0.absmax_f32) of the same input and blocksize */
                const float *gplain = get(types[t], s, bs, 0, "absmax_f32", &by);
                if (!gp || !gp16 || !gabs || !gdq32 || !gdq16 || !gqs || !gplain) continue;
                cl_mem pm = test_buffer(ctx, pb), am = test_buffer(ctx, nb * 4);
                clbnb_vector pv = clbnb_vector_make(pm, 0, pb, CLBNB_DTYPE_U8),
                             av = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32);
                /* f32 input */
                TEST_STATUS(clbnb_quantize_4bit(ctx, q, &x32v, type, bs, &pv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
                uint8_t *p = download(ctx, pm, pb);
                float *a = download(ctx, am, nb * 4);
                TEST_CHECK(memcmp(a, gplain, nb * 4) == 0, "%s absmax (f32 input) not bit-identical", tag);
                size_t mism = count_diff_nibbles(p, gp, n);
                *total_mism += mism;
                TEST_CHECK((double)mism <= 1e-5 * (double)n, "%s codes from f32: %zu of %zu differ", tag, mism, n);
                if (!nest) TEST_CHECK(memcmp(gqs, a, nb * 4) == 0, "%s qs.absmax differs from our absmax", tag);
                /* f16 input */
                TEST_STATUS(clbnb_quantize_4bit(ctx, q, &x16v, type, bs, &pv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
                uint8_t *p16 = download(ctx, pm, pb);
                float *a16 = download(ctx, am, nb * 4);
                size_t mism16 = count_diff_nibbles(p16, gp16, n);
                *total_mism += mism16;
                TEST_CHECK((double)mism16 <= 2e-4 * (double)n, "%s codes from f16: %zu of %zu differ", tag, mism16, n);
                /* absmax of the f16 input: must equal the reference (the golden file keeps only the f32 one) */
                float *ra = malloc(nb * 4), *xr = malloc(n * 4);
                uint8_t *rp = malloc(pb);
                test_dtype_to_floats(x16, xr, n, CLBNB_DTYPE_F16);
                ref_quantize_4bit(xr, n, t, bs, rp, ra);
                TEST_CHECK(memcmp(ra, a16, nb * 4) == 0, "%s absmax (f16 input) differs from the reference", tag);

                /* absmax the dequantizers use: plain, or the nested state built on the device */
                clbnb_absmax desc = clbnb_absmax_plain(&av);
                cl_mem qm = NULL, a2m = NULL, offm = NULL;
                if (nest) {
                    const uint8_t *gq = get(types[t], s, bs, nest, "absmax_u8", &by);
                    const float *ga2 = get(types[t], s, bs, nest, "nested_absmax", &by);
                    size_t nb2 = by / 4;
                    const float *goff = get(types[t], s, bs, nest, "offset", &by);
                    const float *gcode = get(types[t], s, bs, nest, "nested_code", &by);
                    TEST_CHECK(gcode && memcmp(gcode, clbnb_code_dynamic(), 1024) == 0, "%s nested_code != dynamic map",
                               tag);
                    test_upload(ctx, am, 0, a, nb * 4); /* compress the absmax of the f32 input */
                    qm = test_buffer(ctx, nb), a2m = test_buffer(ctx, nb2 * 4), offm = test_buffer(ctx, 4);
                    clbnb_vector qv = clbnb_vector_make(qm, 0, nb, CLBNB_DTYPE_U8),
                                 a2v = clbnb_vector_make(a2m, 0, nb2, CLBNB_DTYPE_F32),
                                 offv = clbnb_vector_make(offm, 0, 1, CLBNB_DTYPE_F32);
                    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 256, &qv, &a2v, &offv, 0, NULL, NULL),
                                CLBNB_SUCCESS);
                    float off;
                    test_download(ctx, offm, 0, &off, 4);
                    uint8_t *qa = download(ctx, qm, nb);
                    float *a2 = download(ctx, a2m, nb2 * 4);
                    TEST_CHECK(goff && test_float_bits(off) == test_float_bits(*goff),
                               "%s offset %.9g (%08x) != torch's %.9g (%08x)", tag, off, test_float_bits(off),
                               goff ? *goff : 0.0f, goff ? test_float_bits(*goff) : 0u);
                    TEST_CHECK(gq && count_diff_u8(qa, gq, nb) == 0, "%s absmax_u8: %zu of %zu differ", tag,
                               gq ? count_diff_u8(qa, gq, nb) : nb, nb);
                    TEST_CHECK(ga2 && memcmp(a2, ga2, nb2 * 4) == 0, "%s nested_absmax not bit-identical", tag);
                    TEST_CHECK(memcmp(gqs, qa, nb) == 0, "%s qs.absmax (u8) differs", tag);
                    /* reconstructed absmax == golden n1.absmax_f32 */
                    cl_mem rm = test_buffer(ctx, nb * 4);
                    clbnb_vector rv = clbnb_vector_make(rm, 0, nb, CLBNB_DTYPE_F32);
                    clbnb_absmax nd = {qv, a2v, {NULL, 0, 0, CLBNB_DTYPE_F32}, offv, 256};
                    TEST_STATUS(clbnb_absmax_decompress(ctx, q, &nd, &rv, 0, NULL, NULL), CLBNB_SUCCESS);
                    float *rec = download(ctx, rm, nb * 4);
                    TEST_CHECK(memcmp(rec, gabs, nb * 4) == 0, "%s decompressed absmax != golden absmax_f32", tag);
                    clReleaseMemObject(rm);
                    free(rec), free(qa), free(a2);
                    desc = nd;
                } else {
                    TEST_CHECK(memcmp(gabs, gplain, nb * 4) == 0, "%s absmax_f32", tag);
                }
                /* dequant_f32: golden codes (f32 input) -> f32 out; must be bit-identical. For nested states
                 * the absmax comes from the device-built nested state of the f32 input. */
                {
                    if (!nest) test_upload(ctx, am, 0, gplain, nb * 4);
                    cl_mem gpm = upload(ctx, gp, pb), om = test_buffer(ctx, n * 4);
                    clbnb_vector gpv = clbnb_vector_make(gpm, 0, pb, CLBNB_DTYPE_U8),
                                 ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F32);
                    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &gpv, &desc, type, bs, &ov, 0, NULL, NULL),
                                CLBNB_SUCCESS);
                    float *o = download(ctx, om, n * 4);
                    size_t d = ref_count_diff(o, gdq32, n, 4, CLBNB_DTYPE_F32);
                    TEST_CHECK(d == 0, "%s dequant_f32 from the golden codes: %zu of %zu differ", tag, d, n);
                    free(o);
                    clReleaseMemObject(gpm), clReleaseMemObject(om);
                }
                /* dequant_f16: golden codes of the f16 input, its absmax (the reference's, = the device's), f16 out */
                if (!nest) {
                    test_upload(ctx, am, 0, ra, nb * 4);
                    cl_mem gpm = upload(ctx, gp16, pb), om = test_buffer(ctx, n * 2);
                    clbnb_vector gpv = clbnb_vector_make(gpm, 0, pb, CLBNB_DTYPE_U8),
                                 ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F16);
                    clbnb_absmax pl = clbnb_absmax_plain(&av);
                    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &gpv, &pl, type, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
                    uint16_t *o = download(ctx, om, n * 2);
                    size_t d = ref_count_diff(o, gdq16, n, 2, CLBNB_DTYPE_F16);
                    TEST_CHECK(d == 0, "%s dequant_f16 from the golden f16 codes: %zu of %zu differ", tag, d, n);
                    free(o);
                    clReleaseMemObject(gpm), clReleaseMemObject(om);
                } else {
                    /* nested f16: quantize x_f16 nested on the device, dequantize with golden codes */
                    float *a16c = malloc(nb * 4);
                    memcpy(a16c, a16, nb * 4);
                    test_upload(ctx, am, 0, a16c, nb * 4);
                    size_t nb2 = clbnb_blocks_count(nb, 256);
                    cl_mem q2 = test_buffer(ctx, nb), a22 = test_buffer(ctx, nb2 * 4), off2 = test_buffer(ctx, 4);
                    clbnb_vector qv = clbnb_vector_make(q2, 0, nb, CLBNB_DTYPE_U8),
                                 a2v = clbnb_vector_make(a22, 0, nb2, CLBNB_DTYPE_F32),
                                 offv = clbnb_vector_make(off2, 0, 1, CLBNB_DTYPE_F32);
                    TEST_STATUS(clbnb_absmax_compress(ctx, q, &av, 256, &qv, &a2v, &offv, 0, NULL, NULL),
                                CLBNB_SUCCESS);
                    clbnb_absmax nd = {qv, a2v, {NULL, 0, 0, CLBNB_DTYPE_F32}, offv, 256};
                    cl_mem gpm = upload(ctx, gp16, pb), om = test_buffer(ctx, n * 2);
                    clbnb_vector gpv = clbnb_vector_make(gpm, 0, pb, CLBNB_DTYPE_U8),
                                 ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F16);
                    TEST_STATUS(clbnb_dequantize_4bit(ctx, q, &gpv, &nd, type, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
                    uint16_t *o = download(ctx, om, n * 2);
                    size_t d = ref_count_diff(o, gdq16, n, 2, CLBNB_DTYPE_F16);
                    TEST_CHECK(d == 0, "%s nested dequant_f16 from the golden f16 codes: %zu of %zu differ", tag, d, n);
                    free(o), free(a16c);
                    clReleaseMemObject(gpm), clReleaseMemObject(om), clReleaseMemObject(q2), clReleaseMemObject(a22),
                        clReleaseMemObject(off2);
                }
                if (qm) clReleaseMemObject(qm), clReleaseMemObject(a2m), clReleaseMemObject(offm);
                clReleaseMemObject(pm), clReleaseMemObject(am);
                free(p), free(a), free(p16), free(a16), free(ra), free(xr), free(rp);
            }
    clReleaseMemObject(x32m), clReleaseMemObject(x16m);
}

static void eight_bit(clbnb_context *ctx, cl_command_queue q, int s, const char *path, size_t *total_mism) {
    size_t by, n;
    char key[96];
    snprintf(key, sizeof key, "s%d.x_f32", s);
    const float *x = test_golden_get(g, key, NULL, NULL, NULL, &by);
    const float *gcode = test_golden_get(g, "dyn8.code", NULL, NULL, NULL, NULL);
    if (!x || !gcode) {
        TEST_CHECK(0, "golden 8-bit inputs missing");
        return;
    }
    TEST_CHECK(memcmp(gcode, clbnb_code_dynamic(), 1024) == 0, "dyn8.code == built-in dynamic map");
    n = by / 4;
    cl_mem xm = upload(ctx, x, by);
    for (size_t bs = 256; bs <= 4096; bs *= 16) {
        char tag[64];
        snprintf(tag, sizeof tag, "[%s s%d dyn8 bs%zu]", path, s, bs);
        snprintf(key, sizeof key, "s%d.dyn8.bs%zu.codes", s, bs);
        const uint8_t *gc = test_golden_get(g, key, NULL, NULL, NULL, NULL);
        snprintf(key, sizeof key, "s%d.dyn8.bs%zu.absmax", s, bs);
        const float *ga = test_golden_get(g, key, NULL, NULL, NULL, NULL);
        snprintf(key, sizeof key, "s%d.dyn8.bs%zu.dequant", s, bs);
        const float *gd = test_golden_get(g, key, NULL, NULL, NULL, NULL);
        if (!gc || !ga || !gd) {
            TEST_CHECK(0, "%s golden keys missing", tag);
            continue;
        }
        size_t nb = clbnb_blocks_count(n, bs);
        cl_mem cm = test_buffer(ctx, n), am = test_buffer(ctx, nb * 4), om = test_buffer(ctx, n * 4);
        clbnb_vector xv = clbnb_vector_make(xm, 0, n, CLBNB_DTYPE_F32),
                     cv = clbnb_vector_make(cm, 0, n, CLBNB_DTYPE_U8),
                     av = clbnb_vector_make(am, 0, nb, CLBNB_DTYPE_F32),
                     ov = clbnb_vector_make(om, 0, n, CLBNB_DTYPE_F32);
        TEST_STATUS(clbnb_quantize_blockwise(ctx, q, &xv, NULL, bs, &cv, &av, 0, NULL, NULL), CLBNB_SUCCESS);
        uint8_t *c = download(ctx, cm, n);
        float *a = download(ctx, am, nb * 4);
        TEST_CHECK(memcmp(a, ga, nb * 4) == 0, "%s absmax not bit-identical", tag);
        size_t mism = count_diff_u8(c, gc, n);
        *total_mism += mism;
        TEST_CHECK((double)mism <= 1e-5 * (double)n, "%s codes: %zu of %zu differ", tag, mism, n);
        test_upload(ctx, cm, 0, gc, n);
        TEST_STATUS(clbnb_dequantize_blockwise(ctx, q, &cv, &av, NULL, bs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
        float *o = download(ctx, om, n * 4);
        size_t d = ref_count_diff(o, gd, n, 4, CLBNB_DTYPE_F32);
        TEST_CHECK(d == 0, "%s dequant from the golden codes: %zu of %zu differ", tag, d, n);
        free(c), free(a), free(o);
        clReleaseMemObject(cm), clReleaseMemObject(am), clReleaseMemObject(om);
    }
    clReleaseMemObject(xm);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    g = test_golden_open();
    if (!g) {
        TEST_CHECK(0, "cannot open the golden file");
        return test_finish();
    }
    const clbnb_path paths[2] = {CLBNB_PATH_GENERIC, CLBNB_PATH_CPU};
    for (int p = 0; p < 2; p++) {
        if (clbnb_context_set_path(ctx, CLBNB_FAMILY_QUANT, paths[p]) != CLBNB_SUCCESS) continue;
        size_t mism = 0;
        for (int s = 0; s < 3; s++) {
            four_bit(ctx, q, s, clbnb_path_name(paths[p]), &mism);
            eight_bit(ctx, q, s, clbnb_path_name(paths[p]), &mism);
        }
        printf("%s path: %zu code mismatches vs CUDA over all golden cases\n", clbnb_path_name(paths[p]), mism);
    }
    test_golden_close(g);
    clbnb_context_free(ctx);
    return test_finish();
}
