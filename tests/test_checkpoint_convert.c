/* test_checkpoint_convert.c: the streaming converters of clbnb_checkpoint.h and the host
 * f16 / bf16 conversions:
 *   - clbnb_checkpoint_quantize_4bit in chunks (1 block per chunk, odd chunk sizes, one chunk)
 *     writes files byte-identical to clbnb_quantize_state + clbnb_quant_state_save of the whole
 *     tensor (NF4 / FP4, plain / nested, f32 / f16 / bf16, sizes 1, odd, partial last block);
 *   - clbnb_checkpoint_quantize_int8 in row chunks against the C reference of Int8Params
 *     (row absmax of the fp16-rounded weight, q = rint(x * (127 / absmax)));
 *   - clbnb_checkpoint_copy_tensor copies byte for byte;
 *   - misuse (wrong writer position, dtype or size mismatch, names) fails with a specific error;
 *   - clbnb_f32_to_f16 & co. against the test harness' independent conversions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_common.h"

static char tmpdir[256];

static void fill_normal(test_rng *r, float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        v[i] = scale * test_rng_normal(r);
}

static void half_conversions(void) {
    size_t bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = clbnb_f16_to_f32((uint16_t)h), b = test_half_to_float((uint16_t)h);
        bad += test_float_bits(a) != test_float_bits(b);
        bad += clbnb_f32_to_f16(a) != (isnan(a) ? (uint16_t)(h | 0x200u) : (uint16_t)h); /* quiet NaN */
        float c = clbnb_bf16_to_f32((uint16_t)h), d = test_bf16_to_float((uint16_t)h);
        bad += test_float_bits(c) != test_float_bits(d);
    }
    TEST_CHECK(bad == 0, "%zu 16-bit values convert to f32 differently or do not round-trip", bad);
    /* f32 -> f16 / bf16: a stride through all bit patterns plus every f16 midpoint and its neighbours */
    bad = 0;
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += 997) {
        float f;
        uint32_t x = (uint32_t)u;
        memcpy(&f, &x, 4);
        bad += clbnb_f32_to_f16(f) != test_float_to_half(f);
        bad += clbnb_f32_to_bf16(f) != test_float_to_bf16(f);
    }
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        float lo = test_half_to_float((uint16_t)h), hi = test_half_to_float((uint16_t)(h + 1));
        float mid = (float)(((double)lo + (double)hi) / 2);
        for (int s = 0; s < 2; s++) {
            float m = s ? -mid : mid;
            bad += clbnb_f32_to_f16(m) != test_float_to_half(m);
            bad += clbnb_f32_to_f16(nextafterf(m, 0)) != test_float_to_half(nextafterf(m, 0));
            bad += clbnb_f32_to_f16(nextafterf(m, INFINITY * m)) != test_float_to_half(nextafterf(m, INFINITY * m));
        }
    }
    TEST_CHECK(bad == 0, "%zu f32 values round to f16/bf16 differently from the reference", bad);
}

/* A source file with `name` (2-D, dtype dt, values vals) followed by a small kept tensor. */
static void write_source(const char *path, const char *name, clbnb_dtype dt, size_t rows, size_t cols,
                         const float *vals) {
    clbnb_st_decl d[2] = {{name, clbnb_st_dtype_from_clbnb(dt), 2, {rows, cols}, 0},
                          {"kept.bias", CLBNB_ST_F32, 1, {3}, 0}};
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_SUCCESS);
    if (!w) return;
    size_t n = rows * cols, es = clbnb_dtype_size(dt);
    void *buf = malloc(n * es);
    test_floats_to_dtype(vals, buf, n, dt);
    float kept[3] = {1.5f, -2.0f, 0.25f};
    TEST_STATUS(clbnb_st_writer_write(w, buf, n * es, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_write(w, kept, sizeof kept, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
    free(buf);
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* the declarations of a converted file: the 4-bit (or int8) group of `name`, then kept.bias */
static size_t declare(const clbnb_st_tensor *t, int int8, const clbnb_quant_state_info *info, clbnb_st_decl *d,
                      char (*names)[CLBNB_CKPT_NAME_MAX]) {
    size_t nd = 0;
    if (int8) {
        size_t stem = strlen(t->name) - 7;
        snprintf(names[0], CLBNB_CKPT_NAME_MAX, "%s", t->name);
        snprintf(names[1], CLBNB_CKPT_NAME_MAX, "%.*s.SCB", (int)stem, t->name);
        snprintf(names[2], CLBNB_CKPT_NAME_MAX, "%.*s.weight_format", (int)stem, t->name);
        d[0] = (clbnb_st_decl){names[0], CLBNB_ST_I8, 2, {t->shape[0], t->shape[1]}, 0};
        d[1] = (clbnb_st_decl){names[1], CLBNB_ST_F32, 1, {t->shape[0]}, 0};
        d[2] = (clbnb_st_decl){names[2], CLBNB_ST_U8, 0, {0}, 0};
        nd = 3;
    } else {
        TEST_STATUS(clbnb_quant_state_declare(info, CLBNB_DTYPE_U8, t->name, d, names, &nd), CLBNB_SUCCESS);
    }
    d[nd] = (clbnb_st_decl){"kept.bias", CLBNB_ST_F32, 1, {3}, 0};
    return nd + 1;
}

static void case_4bit(clbnb_context *ctx, cl_command_queue q, test_rng *rng, clbnb_quant_type type, int nested,
                      clbnb_dtype dt, size_t rows, size_t cols, size_t bs, size_t chunk) {
    char src[512], got[512], want[512];
    snprintf(src, sizeof src, "%s/src.safetensors", tmpdir);
    snprintf(got, sizeof got, "%s/got.safetensors", tmpdir);
    snprintf(want, sizeof want, "%s/want.safetensors", tmpdir);
    const size_t n = rows * cols, shape[2] = {rows, cols};
    float *v = malloc(n * 4);
    fill_normal(rng, v, n, 1.0f);
    write_source(src, "layer.weight", dt, rows, cols, v);
    clbnb_checkpoint *ck = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, src, &fe), CLBNB_SUCCESS);
    if (!ck) return;
    const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, "layer.weight"),
                          *kept = clbnb_checkpoint_find(ck, "kept.bias");
    clbnb_quant_state_info info = {type, bs, dt, 2, {rows, cols}, nested, nested ? 256 : 0, CLBNB_DTYPE_F32, 0.0f};
    clbnb_st_decl d[7];
    char names[7][CLBNB_CKPT_NAME_MAX];
    size_t nd = declare(t, 0, &info, d, names);
    for (int pass = 0; pass < 2; pass++) { /* 0: whole tensor through clbnb_quant_state_save, 1: streamed */
        clbnb_quant_state *qs = NULL;
        TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, type, bs, dt, 2, shape, nested), CLBNB_SUCCESS);
        clbnb_st_writer *w = NULL;
        TEST_STATUS(clbnb_st_writer_open(&w, pass ? got : want, d, nd, NULL, 0, &fe), CLBNB_SUCCESS);
        if (!qs || !w) return;
        if (pass) {
            clbnb_status s = clbnb_checkpoint_quantize_4bit(ck, t, ctx, q, qs, w, chunk, &fe);
            TEST_CHECK(s == CLBNB_SUCCESS, "quantize_4bit: %s (%s)", clbnb_status_string(s), fe.message);
        } else {
            size_t pb = clbnb_packed_4bit_bytes(n);
            cl_mem xm = test_buffer_from(ctx, t->data, t->nbytes), pm = test_buffer(ctx, pb);
            clbnb_vector xv = clbnb_vector_make(xm, 0, n, dt), pv = clbnb_vector_make(pm, 0, pb, CLBNB_DTYPE_U8);
            TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, qs, &pv, 0, NULL, NULL), CLBNB_SUCCESS);
            TEST_STATUS(clbnb_quant_state_save(w, ctx, q, qs, &pv, t->name, &fe), CLBNB_SUCCESS);
            clReleaseMemObject(xm), clReleaseMemObject(pm);
        }
        TEST_STATUS(clbnb_checkpoint_copy_tensor(ck, kept, w, pass ? 5 : 0, &fe), CLBNB_SUCCESS);
        TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
        clbnb_quant_state_free(qs);
    }
    size_t ga = 0, wa = 0;
    unsigned char *a = slurp(got, &ga), *b = slurp(want, &wa);
    TEST_CHECK(a && b && ga == wa && memcmp(a, b, ga) == 0,
               "%s%s %s %zux%zu bs %zu chunk %zu: streamed file differs from the whole-tensor one (%zu vs %zu bytes)",
               clbnb_quant_type_name(type), nested ? " nested" : "", clbnb_dtype_name(dt), rows, cols, bs, chunk, ga,
               wa);
    free(a), free(b), free(v);
    clbnb_checkpoint_close(ck);
    unlink(src), unlink(got), unlink(want);
}

static void case_int8(clbnb_context *ctx, cl_command_queue q, test_rng *rng, clbnb_dtype dt, size_t rows, size_t cols,
                      size_t chunk) {
    char src[512], got[512];
    snprintf(src, sizeof src, "%s/src8.safetensors", tmpdir);
    snprintf(got, sizeof got, "%s/got8.safetensors", tmpdir);
    const size_t n = rows * cols;
    float *v = malloc(n * 4);
    fill_normal(rng, v, n, 0.05f);
    if (n > 2) v[n / 2] = 0.0f;
    write_source(src, "m.fc.weight", dt, rows, cols, v);
    clbnb_checkpoint *ck = NULL, *out = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, src, &fe), CLBNB_SUCCESS);
    if (!ck) return;
    const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, "m.fc.weight");
    clbnb_st_decl d[4];
    char names[4][CLBNB_CKPT_NAME_MAX];
    size_t nd = declare(t, 1, NULL, d, names);
    clbnb_st_writer *w = NULL;
    TEST_STATUS(clbnb_st_writer_open(&w, got, d, nd, NULL, 0, &fe), CLBNB_SUCCESS);
    if (!w) return;
    clbnb_status s = clbnb_checkpoint_quantize_int8(ck, t, ctx, q, w, chunk, &fe);
    TEST_CHECK(s == CLBNB_SUCCESS, "quantize_int8: %s (%s)", clbnb_status_string(s), fe.message);
    TEST_STATUS(clbnb_checkpoint_copy_tensor(ck, clbnb_checkpoint_find(ck, "kept.bias"), w, 0, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_checkpoint_open(&out, got, &fe), CLBNB_SUCCESS);
    if (out) {
        const clbnb_st_tensor *cb = clbnb_checkpoint_find(out, "m.fc.weight"),
                              *scb = clbnb_checkpoint_find(out, "m.fc.SCB"),
                              *wf = clbnb_checkpoint_find(out, "m.fc.weight_format"),
                              *kb = clbnb_checkpoint_find(out, "kept.bias");
        TEST_CHECK(cb && scb && wf && kb && cb->nbytes == n && scb->nbytes == rows * 4 && wf->nbytes == 1 &&
                       ((const uint8_t *)wf->data)[0] == 0 && kb->nbytes == 12,
                   "int8 output layout");
        size_t bad = 0;
        for (size_t r = 0; cb && scb && cb->nbytes == n && r < rows; r++) {
            float m = 0.0f, stat;
            for (size_t c = 0; c < cols; c++)
                m = fmaxf(m, fabsf(test_round_to_dtype(test_round_to_dtype(v[r * cols + c], dt), CLBNB_DTYPE_F16)));
            memcpy(&stat, (const char *)scb->data + 4 * r, 4);
            bad += test_float_bits(stat) != test_float_bits(m);
            const float sc = 127.0f / m;
            for (size_t c = 0; c < cols; c++) {
                float x = test_round_to_dtype(test_round_to_dtype(v[r * cols + c], dt), CLBNB_DTYPE_F16);
                int8_t want = m > 0.0f ? (int8_t)rintf(x * sc) : 0;
                bad += ((const int8_t *)cb->data)[r * cols + c] != want;
            }
        }
        TEST_CHECK(bad == 0, "int8 %s %zux%zu chunk %zu: %zu codes / stats differ from the reference",
                   clbnb_dtype_name(dt), rows, cols, chunk, bad);
        clbnb_checkpoint_close(out);
    }
    free(v);
    clbnb_checkpoint_close(ck);
    unlink(src), unlink(got);
}

static void misuse(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    char src[512], got[512];
    snprintf(src, sizeof src, "%s/src_bad.safetensors", tmpdir);
    snprintf(got, sizeof got, "%s/never.safetensors", tmpdir);
    float v[64 * 3];
    fill_normal(rng, v, 64 * 3, 1.0f);
    write_source(src, "x.weight", CLBNB_DTYPE_F16, 3, 64, v);
    clbnb_checkpoint *ck = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, src, &fe), CLBNB_SUCCESS);
    if (!ck) return;
    const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, "x.weight"), *kept = clbnb_checkpoint_find(ck, "kept.bias");
    const size_t shape[2] = {3, 64}, wrong[2] = {3, 32};
    clbnb_quant_state *qs = NULL, *q32 = NULL, *qbad = NULL;
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, shape, 0), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_quant_state_init(&q32, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F32, 2, shape, 0), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_quant_state_init(&qbad, ctx, q, CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, wrong, 0),
                CLBNB_SUCCESS);
    clbnb_quant_state_info info = {CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F16, 2, {3, 64}, 0, 0, CLBNB_DTYPE_F32, 0.0f};
    clbnb_st_decl d[7];
    char names[7][CLBNB_CKPT_NAME_MAX];
    size_t nd = declare(t, 0, &info, d, names);
    clbnb_st_writer *w = NULL;
    TEST_STATUS(clbnb_st_writer_open(&w, got, d, nd, NULL, 0, &fe), CLBNB_SUCCESS);
    if (w && qs && q32 && qbad) {
        /* the writer expects x.weight: kept.bias is refused, and nothing is written */
        TEST_STATUS(clbnb_checkpoint_copy_tensor(ck, kept, w, 0, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
        TEST_CHECK(fe.code == CLBNB_FERR_USAGE && strstr(fe.message, "x.weight"), "wrong position: %s", fe.message);
        TEST_STATUS(clbnb_checkpoint_quantize_4bit(ck, t, ctx, q, q32, w, 0, &fe), CLBNB_ERROR_QUANT_STATE_MISMATCH);
        TEST_CHECK(strstr(fe.message, "F16") != NULL, "dtype mismatch message: %s", fe.message);
        TEST_STATUS(clbnb_checkpoint_quantize_4bit(ck, t, ctx, q, qbad, w, 0, &fe), CLBNB_ERROR_QUANT_STATE_MISMATCH);
        TEST_STATUS(clbnb_checkpoint_quantize_int8(ck, t, ctx, q, w, 0, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
        TEST_CHECK(strstr(fe.message, "x.weight") != NULL, "int8 into a 4-bit layout names the tensor: %s", fe.message);
        uint64_t b0 = 0, b3 = 0;
        const char *u0 = clbnb_st_writer_upcoming(w, 0, &b0), *u3 = clbnb_st_writer_upcoming(w, 3, &b3);
        TEST_CHECK(u0 && strcmp(u0, "x.weight") == 0 && b0 == 96 && u3 && strstr(u3, "quant_state") && b3 > 20 &&
                       clbnb_st_writer_upcoming(w, nd, NULL) == NULL,
                   "clbnb_st_writer_upcoming: %s %llu, %s %llu", u0 ? u0 : "-", (unsigned long long)b0, u3 ? u3 : "-",
                   (unsigned long long)b3);
        TEST_STATUS(clbnb_checkpoint_quantize_4bit(NULL, t, ctx, q, qs, w, 0, &fe), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_STATUS(clbnb_checkpoint_quantize_4bit(ck, t, ctx, q, NULL, w, 0, &fe), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_STATUS(clbnb_checkpoint_copy_tensor(ck, t, NULL, 0, &fe), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_CHECK(clbnb_st_writer_next(w) && strcmp(clbnb_st_writer_next(w), "x.weight") == 0,
                   "failed calls left the writer where it was");
        clbnb_st_writer_abort(w);
        TEST_CHECK(access(got, F_OK) != 0, "aborted output left behind");
    }
    clbnb_quant_state_free(qs), clbnb_quant_state_free(q32), clbnb_quant_state_free(qbad);
    clbnb_checkpoint_close(ck);
    unlink(src);
}

int main(void) {
    half_conversions();
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clbnb_test_convert_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const clbnb_dtype dts[3] = {CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16};
    for (int d = 0; d < 3; d++)
        for (int nested = 0; nested < 2; nested++) {
            clbnb_quant_type ty = (d + nested) % 2 ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4;
            case_4bit(ctx, q, &rng, ty, nested, dts[d], 1, 1, 64, 0);      /* one element */
            case_4bit(ctx, q, &rng, ty, nested, dts[d], 7, 130, 64, 1);    /* one block per chunk, partial block */
            case_4bit(ctx, q, &rng, ty, nested, dts[d], 33, 97, 32, 1000); /* odd chunk size, tail chunk */
            case_4bit(ctx, q, &rng, ty, nested, dts[d], 300, 70, 256, 0);  /* one chunk, > 256 absmax */
            case_int8(ctx, q, &rng, dts[d], 1, 1, 0);
            case_int8(ctx, q, &rng, dts[d], 33, 7, 1);     /* one row per chunk */
            case_int8(ctx, q, &rng, dts[d], 5, 257, 600);  /* 1 row per chunk (600 < 2 * 257 * 2) */
            case_int8(ctx, q, &rng, dts[d], 37, 64, 1000); /* 7 rows per chunk, tail of 2 */
        }
    misuse(ctx, q, &rng);
    rmdir(tmpdir);
    clbnb_context_free(ctx);
    return test_finish();
}
