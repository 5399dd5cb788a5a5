/* test_checkpoint.c: bitsandbytes checkpoint compatibility against the golden file
 * (tests/data/bnb_reference.safetensors, read here through test_golden_*, independent of the
 * library's reader):
 *   - bitsandbytes' serialized states (sN.{nf4,fp4}.bsB.nK.qs.*) load into clbnb and dequantize the
 *     golden codes bit-identically to sN.*.dequant_f32;
 *   - files clbnb writes from the golden inputs carry the same keys, dtypes and shapes as
 *     bitsandbytes', bytes identical to qs.absmax / quant_map / nested_* , the JSON entry identical
 *     to bitsandbytes' bytes, packed codes within the allowance (1e-5 of elements, f32 input);
 *   - f16 inputs: state written, reloaded, golden f16 codes dequantize bit-identically to dequant_f16;
 *   - quant_storage f16/bf16/f32: same bytes, shape [(n+1)/(2*itemsize), 1];
 *   - the linear loader (4-bit + bias, int8 CB/SCB/weight_format) and its errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_common.h"

static test_golden *g;
static char tmpdir[256];

static const void *gget(const char *key, const char **dtype, size_t *shape, int *ndim, size_t *bytes) {
    const void *p = test_golden_get(g, key, dtype, shape, ndim, bytes);
    TEST_CHECK(p != NULL, "golden key %s missing", key);
    return p;
}

static size_t nibble_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned x = (i & 1) ? a[i / 2] & 15u : a[i / 2] >> 4, y = (i & 1) ? b[i / 2] & 15u : b[i / 2] >> 4;
        d += x != y;
    }
    return d;
}

static size_t diff_bits(const void *a, const void *b, size_t n, size_t es) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += memcmp((const char *)a + i * es, (const char *)b + i * es, es) != 0;
    return d;
}

/* Dequantizes packed bytes with a state into `out` (n elements of dtype). */
static void dequant(clbnb_context *ctx, cl_command_queue q, const clbnb_quant_state *qs, const void *packed, size_t pb,
                    clbnb_dtype dt, void *out) {
    cl_mem pm = test_buffer_from(ctx, packed, pb), om = test_buffer(ctx, qs->numel * clbnb_dtype_size(dt));
    clbnb_vector pv = clbnb_vector_make(pm, 0, pb, CLBNB_DTYPE_U8), ov = clbnb_vector_make(om, 0, qs->numel, dt);
    TEST_STATUS(clbnb_dequantize_state(ctx, q, &pv, qs, &ov, 0, NULL, NULL), CLBNB_SUCCESS);
    test_download(ctx, om, 0, out, qs->numel * clbnb_dtype_size(dt));
    clReleaseMemObject(pm), clReleaseMemObject(om);
}

/* Quantizes x on the device into a fresh state and writes it to path under key wk. */
static clbnb_quant_state *quantize_and_save(clbnb_context *ctx, cl_command_queue q, const void *x, clbnb_dtype dt,
                                            const size_t *shape, clbnb_quant_type type, size_t bs, int nest,
                                            clbnb_dtype storage, const char *path, const char *wk) {
    size_t n = shape[0] * shape[1], pb = clbnb_packed_4bit_bytes(n);
    clbnb_quant_state *qs = NULL;
    TEST_STATUS(clbnb_quant_state_init(&qs, ctx, q, type, bs, dt, 2, shape, nest), CLBNB_SUCCESS);
    if (!qs) return NULL;
    cl_mem xm = test_buffer_from(ctx, x, n * clbnb_dtype_size(dt)), pm = test_buffer(ctx, pb);
    clbnb_vector xv = clbnb_vector_make(xm, 0, n, dt), pv = clbnb_vector_make(pm, 0, pb, CLBNB_DTYPE_U8);
    TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, qs, &pv, 0, NULL, NULL), CLBNB_SUCCESS);
    clbnb_quant_state_info info = {type, bs, dt, 2, {shape[0], shape[1]}, nest, nest ? 256 : 0, CLBNB_DTYPE_F32, 0.0f};
    clbnb_st_decl decls[6];
    char names[6][CLBNB_CKPT_NAME_MAX];
    size_t nd = 0;
    TEST_STATUS(clbnb_quant_state_declare(&info, storage, wk, decls, names, &nd), CLBNB_SUCCESS);
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, decls, nd, NULL, 0, &fe), CLBNB_SUCCESS);
    if (w) {
        clbnb_status s = clbnb_quant_state_save(w, ctx, q, qs, &pv, wk, &fe);
        TEST_CHECK(s == CLBNB_SUCCESS, "save: %s (%s)", clbnb_status_string(s), fe.message);
        s = clbnb_st_writer_finish(w, &fe);
        TEST_CHECK(s == CLBNB_SUCCESS, "finish: %s (%s)", clbnb_status_string(s), fe.message);
    }
    clReleaseMemObject(xm), clReleaseMemObject(pm);
    return qs;
}

static void golden_case(clbnb_context *ctx, cl_command_queue q, clbnb_checkpoint *gck, int s, int t, size_t bs,
                        int nest, size_t *total_mism) {
    const char *tn = t ? "fp4" : "nf4";
    clbnb_quant_type type = t ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4;
    char base[96], key[192], tag[128];
    snprintf(base, sizeof base, "s%d.%s.bs%zu.n%d", s, tn, bs, nest);
    snprintf(tag, sizeof tag, "[%s]", base);
    size_t xshape[8], xb;
    int xnd;
    snprintf(key, sizeof key, "s%d.x_f32", s);
    const float *x32 = gget(key, NULL, xshape, &xnd, &xb);
    snprintf(key, sizeof key, "s%d.x_f16", s);
    const uint16_t *x16 = gget(key, NULL, NULL, NULL, NULL);
    size_t pbytes, n = xb / 4;
    snprintf(key, sizeof key, "%s.packed", base);
    const uint8_t *gp = gget(key, NULL, NULL, NULL, &pbytes);
    snprintf(key, sizeof key, "%s.packed_from_f16", base);
    const uint8_t *gp16 = gget(key, NULL, NULL, NULL, NULL);
    snprintf(key, sizeof key, "%s.dequant_f32", base);
    const float *gdq32 = gget(key, NULL, NULL, NULL, NULL);
    snprintf(key, sizeof key, "%s.dequant_f16", base);
    const uint16_t *gdq16 = gget(key, NULL, NULL, NULL, NULL);
    if (!x32 || !x16 || !gp || !gp16 || !gdq32 || !gdq16) return;

    /* 1. bitsandbytes' own serialized state -> clbnb -> dequant_f32 bit-identical */
    char wk[128];
    snprintf(wk, sizeof wk, "%s.qs", base);
    clbnb_quant_state *bqs = NULL;
    clbnb_file_error fe;
    clbnb_status st = clbnb_quant_state_load(&bqs, ctx, q, gck, wk, &fe);
    TEST_CHECK(st == CLBNB_SUCCESS, "%s load of bnb's state: %s (%s)", tag, clbnb_status_string(st), fe.message);
    float *o32 = malloc(n * 4);
    uint16_t *o16 = malloc(n * 2);
    if (bqs) {
        TEST_CHECK(bqs->numel == n && bqs->nested == nest && bqs->blocksize == bs && bqs->quant_type == type &&
                       bqs->dtype == CLBNB_DTYPE_F32 && bqs->shape[0] == xshape[0] && bqs->shape[1] == xshape[1],
                   "%s loaded state fields", tag);
        dequant(ctx, q, bqs, gp, pbytes, CLBNB_DTYPE_F32, o32);
        size_t d = diff_bits(o32, gdq32, n, 4);
        TEST_CHECK(d == 0, "%s bnb state: %zu of %zu dequantized values differ from dequant_f32", tag, d, n);
        clbnb_quant_state_free(bqs);
    }

    /* 2. clbnb writes the golden input: same keys, bytes, JSON */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, base);
    clbnb_quant_state *qs =
        quantize_and_save(ctx, q, x32, CLBNB_DTYPE_F32, xshape, type, bs, nest, CLBNB_DTYPE_U8, path, "w");
    clbnb_quant_state_free(qs);
    clbnb_checkpoint *ck = NULL;
    st = clbnb_checkpoint_open(&ck, path, &fe);
    TEST_CHECK(st == CLBNB_SUCCESS, "%s reopen: %s", tag, fe.message);
    if (!ck) return;
    static const char *suffixes[] = {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                                     ".quant_state.bitsandbytes__"};
    size_t expected_keys = 1;
    for (int k = 0; k < 5; k++) {
        if (!nest && (k == 2 || k == 3)) continue;
        char ours[128];
        if (k == 4) {
            snprintf(key, sizeof key, "%s.qs%s%s", base, suffixes[k], tn);
            snprintf(ours, sizeof ours, "w%s%s", suffixes[k], tn);
        } else {
            snprintf(key, sizeof key, "%s.qs%s", base, suffixes[k]);
            snprintf(ours, sizeof ours, "w%s", suffixes[k]);
        }
        expected_keys++;
        const char *gdt;
        size_t gshape[8], gbytes;
        int gnd;
        const void *gd = gget(key, &gdt, gshape, &gnd, &gbytes);
        const clbnb_st_tensor *tt = clbnb_checkpoint_find(ck, ours);
        TEST_CHECK(tt != NULL, "%s key %s missing from our file", tag, ours);
        if (!gd || !tt) continue;
        TEST_CHECK(strcmp(clbnb_st_dtype_name(tt->dtype), gdt) == 0 && tt->ndim == gnd &&
                       (gnd < 1 || tt->shape[0] == gshape[0]),
                   "%s %s: dtype/shape differ from bnb (%s vs %s)", tag, ours, clbnb_st_dtype_name(tt->dtype), gdt);
        int same = tt->nbytes == gbytes && memcmp(tt->data, gd, gbytes) == 0;
        if (k == 4)
            TEST_CHECK(same, "%s JSON differs:\n  ours %.*s\n  bnb  %.*s", tag, (int)tt->nbytes, (const char *)tt->data,
                       (int)gbytes, (const char *)gd);
        else
            TEST_CHECK(same, "%s %s bytes differ from bitsandbytes'", tag, ours);
    }
    TEST_CHECK(clbnb_checkpoint_count(ck) == expected_keys, "%s %zu keys written, expected %zu", tag,
               clbnb_checkpoint_count(ck), expected_keys);
    const clbnb_st_tensor *wt = clbnb_checkpoint_find(ck, "w");
    TEST_CHECK(wt && wt->dtype == CLBNB_ST_U8 && wt->ndim == 2 && wt->shape[0] == pbytes && wt->shape[1] == 1,
               "%s packed weight layout", tag);
    if (wt && wt->nbytes == pbytes) {
        size_t mism = nibble_diff(wt->data, gp, n);
        *total_mism += mism;
        TEST_CHECK((double)mism <= 1e-5 * (double)n, "%s packed codes: %zu of %zu differ from bnb", tag, mism, n);
    }
    /* 3. our file reloads and dequantizes the golden codes bit-identically */
    st = clbnb_quant_state_load(&qs, ctx, q, ck, "w", &fe);
    TEST_CHECK(st == CLBNB_SUCCESS, "%s reload: %s", tag, fe.message);
    if (qs) {
        dequant(ctx, q, qs, gp, pbytes, CLBNB_DTYPE_F32, o32);
        TEST_CHECK(diff_bits(o32, gdq32, n, 4) == 0, "%s our saved state: dequant_f32 differs", tag);
        clbnb_quant_state_free(qs);
    }
    clbnb_checkpoint_close(ck);
    unlink(path);

    /* 4. f16 input: save, reload, golden f16 codes -> dequant_f16 bit-identical; JSON dtype float16 */
    qs = quantize_and_save(ctx, q, x16, CLBNB_DTYPE_F16, xshape, type, bs, nest, CLBNB_DTYPE_U8, path, "w");
    clbnb_quant_state_free(qs);
    qs = NULL;
    if (clbnb_checkpoint_open(&ck, path, &fe) == CLBNB_SUCCESS) {
        snprintf(key, sizeof key, "w.quant_state.bitsandbytes__%s", tn);
        const clbnb_st_tensor *j = clbnb_checkpoint_find(ck, key);
        TEST_CHECK(j && memmem(j->data, j->nbytes, "\"dtype\": \"float16\"", 18) != NULL, "%s f16 JSON dtype", tag);
        TEST_STATUS(clbnb_quant_state_load(&qs, ctx, q, ck, "w", &fe), CLBNB_SUCCESS);
        if (qs) {
            dequant(ctx, q, qs, gp16, pbytes, CLBNB_DTYPE_F16, o16);
            size_t d = diff_bits(o16, gdq16, n, 2);
            TEST_CHECK(d == 0, "%s f16: %zu of %zu dequant_f16 values differ", tag, d, n);
            clbnb_quant_state_free(qs);
        }
        clbnb_checkpoint_close(ck);
    }
    unlink(path);
    free(o32), free(o16);
}

/* quant_storage f16/bf16/f32 carry the u8 bytes reinterpreted, and load the same. */
static void storages(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    size_t shape[2] = {24, 40}, n = 960, pb = 480;
    float *x = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng);
    char path[512];
    uint8_t ref[480];
    snprintf(path, sizeof path, "%s/storage.safetensors", tmpdir);
    clbnb_dtype st[4] = {CLBNB_DTYPE_U8, CLBNB_DTYPE_F16, CLBNB_DTYPE_BF16, CLBNB_DTYPE_F32};
    for (int k = 0; k < 4; k++) {
        clbnb_quant_state *qs =
            quantize_and_save(ctx, q, x, CLBNB_DTYPE_F32, shape, CLBNB_QUANT_NF4, 64, 1, st[k], path, "m.weight");
        clbnb_quant_state_free(qs);
        clbnb_checkpoint *ck = NULL;
        clbnb_file_error fe;
        if (clbnb_checkpoint_open(&ck, path, &fe) != CLBNB_SUCCESS) {
            TEST_CHECK(0, "storage %s: reopen", clbnb_dtype_name(st[k]));
            continue;
        }
        const clbnb_st_tensor *w = clbnb_checkpoint_find(ck, "m.weight");
        size_t is = clbnb_dtype_size(st[k]);
        TEST_CHECK(w && w->dtype == clbnb_st_dtype_from_clbnb(st[k]) && w->ndim == 2 && w->shape[0] == pb / is &&
                       w->shape[1] == 1 && w->nbytes == pb,
                   "storage %s: layout", clbnb_dtype_name(st[k]));
        if (w && k == 0) memcpy(ref, w->data, pb);
        if (w && k > 0)
            TEST_CHECK(memcmp(ref, w->data, pb) == 0, "storage %s: bytes differ from u8", clbnb_dtype_name(st[k]));
        clbnb_linear_info *li = NULL;
        size_t nl = 0;
        TEST_STATUS(clbnb_checkpoint_list_linear(ck, &li, &nl, &fe), CLBNB_SUCCESS);
        TEST_CHECK(nl == 1 && li && li[0].quant_storage == st[k] && li[0].nested && li[0].out_features == 24 &&
                       li[0].in_features == 40 && strcmp(li[0].prefix, "m") == 0,
                   "storage %s: listed", clbnb_dtype_name(st[k]));
        free(li);
        clbnb_checkpoint_close(ck);
    }
    /* packed bytes not divisible by the storage size */
    clbnb_quant_state_info info = {CLBNB_QUANT_NF4, 64, CLBNB_DTYPE_F32, 2, {3, 3}, 0, 0, CLBNB_DTYPE_F32, 0};
    clbnb_st_decl d[6];
    char names[6][CLBNB_CKPT_NAME_MAX];
    size_t nd;
    TEST_STATUS(clbnb_quant_state_declare(&info, CLBNB_DTYPE_F32, "x.weight", d, names, &nd),
                CLBNB_ERROR_INVALID_SHAPE);
    TEST_STATUS(clbnb_quant_state_declare(&info, CLBNB_DTYPE_I8, "x.weight", d, names, &nd),
                CLBNB_ERROR_UNSUPPORTED_DTYPE);
    unlink(path);
    free(x);
}

/* Writes a file with the given tensors (name, dtype, ndim, shape..., data). */
typedef struct {
    const char *name;
    clbnb_st_dtype dt;
    int nd;
    uint64_t s0, s1;
    const void *data;
} spec_t;

static void write_specs(const char *path, const spec_t *sp, size_t n) {
    clbnb_st_decl d[16];
    memset(d, 0, sizeof d);
    for (size_t i = 0; i < n; i++)
        d[i].name = sp[i].name, d[i].dtype = sp[i].dt, d[i].ndim = sp[i].nd, d[i].shape[0] = sp[i].s0,
        d[i].shape[1] = sp[i].s1;
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, n, NULL, 0, &fe), CLBNB_SUCCESS);
    for (size_t i = 0; w && i < n; i++) {
        size_t b = clbnb_st_dtype_size(sp[i].dt) * (sp[i].nd >= 1 ? sp[i].s0 : 1) * (sp[i].nd >= 2 ? sp[i].s1 : 1);
        clbnb_st_writer_write(w, sp[i].data, b, &fe);
    }
    if (w) TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
}

static void linear_loader(clbnb_context *ctx, cl_command_queue q, test_rng *rng) {
    char path[512];
    snprintf(path, sizeof path, "%s/linear.safetensors", tmpdir);
    /* a 4-bit layer with bias, saved by clbnb, then an int8 layer appended via a second file */
    size_t shape[2] = {10, 33}, n = 330;
    float *x = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_normal(rng);
    clbnb_quant_state *qs = quantize_and_save(ctx, q, x, CLBNB_DTYPE_F32, shape, CLBNB_QUANT_FP4, 32, 0, CLBNB_DTYPE_U8,
                                              path, "enc.fc.weight");
    clbnb_checkpoint *ck4 = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck4, path, &fe), CLBNB_SUCCESS);
    if (!ck4) return;
    /* copy its tensors plus bias + int8 layer into a combined file */
    int8_t cb[6 * 7];
    float scb[6];
    uint16_t bias16[10];
    float bias32[6];
    uint8_t wf0 = 0;
    for (size_t i = 0; i < sizeof cb; i++)
        cb[i] = (int8_t)test_rng_next(rng);
    for (int i = 0; i < 6; i++)
        scb[i] = test_rng_uniform(rng), bias32[i] = test_rng_normal(rng);
    for (int i = 0; i < 10; i++)
        bias16[i] = test_float_to_half(test_rng_normal(rng));
    spec_t sp[16];
    size_t k = 0;
    for (size_t i = 0; i < clbnb_checkpoint_count(ck4); i++) {
        const clbnb_st_tensor *t = clbnb_checkpoint_tensor(ck4, i);
        sp[k++] = (spec_t){t->name, t->dtype, t->ndim, t->shape[0], t->shape[1], t->data};
    }
    sp[k++] = (spec_t){"enc.fc.bias", CLBNB_ST_F16, 1, 10, 0, bias16};
    sp[k++] = (spec_t){"dec.q.weight", CLBNB_ST_I8, 2, 6, 7, cb};
    sp[k++] = (spec_t){"dec.q.SCB", CLBNB_ST_F32, 1, 6, 0, scb};
    sp[k++] = (spec_t){"dec.q.weight_format", CLBNB_ST_U8, 0, 0, 0, &wf0};
    sp[k++] = (spec_t){"dec.q.bias", CLBNB_ST_F32, 1, 6, 0, bias32};
    char path2[512];
    snprintf(path2, sizeof path2, "%s/linear2.safetensors", tmpdir);
    write_specs(path2, sp, k);
    clbnb_checkpoint *ck = NULL;
    TEST_STATUS(clbnb_checkpoint_open(&ck, path2, &fe), CLBNB_SUCCESS);
    clbnb_linear_info *li = NULL;
    size_t nl = 0;
    TEST_STATUS(clbnb_checkpoint_list_linear(ck, &li, &nl, &fe), CLBNB_SUCCESS);
    TEST_CHECK(nl == 2, "%zu linear weights listed", nl);
    if (nl == 2) {
        TEST_CHECK(strcmp(li[0].prefix, "dec.q") == 0 && li[0].kind == CLBNB_LINEAR_INT8 && li[0].out_features == 6 &&
                       li[0].in_features == 7 && li[0].has_bias && li[0].bias_dtype == CLBNB_DTYPE_F32,
                   "int8 entry");
        TEST_CHECK(strcmp(li[1].prefix, "enc.fc") == 0 && li[1].kind == CLBNB_LINEAR_FP4 && li[1].out_features == 10 &&
                       li[1].in_features == 33 && li[1].has_bias && li[1].bias_dtype == CLBNB_DTYPE_F16 &&
                       li[1].blocksize == 32 && !li[1].nested,
                   "fp4 entry");
    }
    free(li);
    clbnb_linear_weights lw;
    TEST_STATUS(clbnb_checkpoint_load_linear(ck, ctx, q, "dec.q", &lw, &fe), CLBNB_SUCCESS);
    if (lw.weight) {
        int8_t cb2[42];
        float scb2[6], b2[6];
        test_download(ctx, lw.weight, 0, cb2, sizeof cb2);
        test_download(ctx, lw.scb, 0, scb2, sizeof scb2);
        test_download(ctx, lw.bias, 0, b2, sizeof b2);
        TEST_CHECK(!memcmp(cb, cb2, 42) && !memcmp(scb, scb2, 24) && !memcmp(bias32, b2, 24), "int8 buffers");
        clbnb_linear_weights_release(&lw);
    }
    TEST_STATUS(clbnb_checkpoint_load_linear(ck, ctx, q, "enc.fc", &lw, &fe), CLBNB_SUCCESS);
    if (lw.state) {
        /* dequantize with the loaded state == dequantize with the device state that produced it */
        size_t pb = clbnb_packed_4bit_bytes(n);
        uint8_t *packed = malloc(pb);
        test_download(ctx, lw.weight, 0, packed, pb);
        float *a = malloc(n * 4), *b = malloc(n * 4);
        dequant(ctx, q, lw.state, packed, pb, CLBNB_DTYPE_F32, a);
        dequant(ctx, q, qs, packed, pb, CLBNB_DTYPE_F32, b);
        TEST_CHECK(diff_bits(a, b, n, 4) == 0, "4-bit loaded state dequantizes like the original");
        uint16_t b16[10];
        test_download(ctx, lw.bias, 0, b16, 20);
        TEST_CHECK(!memcmp(b16, bias16, 20), "f16 bias");
        free(packed), free(a), free(b);
        clbnb_linear_weights_release(&lw);
    }
    TEST_STATUS(clbnb_checkpoint_load_linear(ck, ctx, q, "nothing", &lw, &fe), CLBNB_ERROR_INVALID_FORMAT);
    clbnb_checkpoint_close(ck);

    /* error cases, each naming the tensor */
    uint8_t wf2 = 2;
    spec_t bad[16];
    memcpy(bad, sp, k * sizeof *sp);
    bad[k - 2].data = &wf2;
    write_specs(path2, bad, k);
    TEST_STATUS(clbnb_checkpoint_open(&ck, path2, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_checkpoint_load_linear(ck, ctx, q, "dec.q", &lw, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_BAD_WEIGHT_FORMAT && strstr(fe.message, "col_turing") &&
                   strcmp(fe.tensor, "dec.q.weight_format") == 0,
               "weight_format 2: %s", fe.message);
    TEST_CHECK(lw.weight == NULL && lw.state == NULL, "nothing allocated on failure");
    clbnb_checkpoint_close(ck);
    /* absmax of the wrong length; SCB of the wrong dtype */
    for (size_t i = 0; i < k; i++) {
        memcpy(bad, sp, k * sizeof *sp);
        const char *target = NULL;
        clbnb_status want = CLBNB_SUCCESS;
        if (strcmp(sp[i].name, "enc.fc.weight.absmax") == 0)
            bad[i].s0 -= 1, target = "enc.fc", want = CLBNB_ERROR_QUANT_STATE_MISMATCH;
        else if (strcmp(sp[i].name, "dec.q.SCB") == 0)
            bad[i].dt = CLBNB_ST_I32, target = "dec.q", want = CLBNB_ERROR_INVALID_FORMAT;
        else if (strcmp(sp[i].name, "enc.fc.weight") == 0)
            bad[i].s0 -= 1, target = "enc.fc", want = CLBNB_ERROR_QUANT_STATE_MISMATCH;
        else
            continue;
        write_specs(path2, bad, k);
        TEST_STATUS(clbnb_checkpoint_open(&ck, path2, &fe), CLBNB_SUCCESS);
        clbnb_status s = clbnb_checkpoint_load_linear(ck, ctx, q, target, &lw, &fe);
        TEST_CHECK(s == want && strcmp(fe.tensor, sp[i].name) == 0, "broken %s: %s, names '%s' (%s)", sp[i].name,
                   clbnb_status_string(s), fe.tensor, fe.message);
        clbnb_checkpoint_close(ck);
    }
    clbnb_quant_state_free(qs);
    clbnb_checkpoint_close(ck4);
    unlink(path), unlink(path2);
    free(x);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clbnb_test_ckpt_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    g = test_golden_open();
    TEST_CHECK(g != NULL, "golden file");
    clbnb_checkpoint *gck = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&gck, CLBNB_TEST_DATA_DIR "/bnb_reference.safetensors", &fe), CLBNB_SUCCESS);
    size_t mism = 0;
    if (g && gck)
        for (int s = 0; s < 3; s++)
            for (int t = 0; t < 2; t++)
                for (size_t bs = 64; bs <= 256; bs *= 2)
                    for (int nest = 0; nest < 2; nest++)
                        golden_case(ctx, q, gck, s, t, bs, nest, &mism);
    printf("packed code mismatches vs bitsandbytes over all golden cases: %zu\n", mism);
    storages(ctx, q, &rng);
    linear_loader(ctx, q, &rng);
    clbnb_checkpoint_close(gck);
    test_golden_close(g);
    rmdir(tmpdir);
    clbnb_context_free(ctx);
    return test_finish();
}
