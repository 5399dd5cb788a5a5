/* test_layer_checkpoint.c: layers from a bitsandbytes-layout checkpoint. Writes a small checkpoint
 * with the library's writer (an NF4 nested weight with an f16 bias, an FP4 plain weight stored as
 * f16 quant_storage with an f32 bias, an int8 Linear8bitLt weight with an f16 bias), lists and loads
 * each linear as a layer (clbnb_linear{4,8}_init_from_weights / _from_checkpoint) and checks that
 * forward is bit-identical to the same layer created directly from the same weights; ownership
 * rules and errors. */
#include <unistd.h>

#include "layers_test_util.h"

#define NMOD 3
typedef struct module {
    const char *prefix;
    int kind; /* 0 nf4 nested, 1 fp4 plain, 2 int8 */
    size_t n, k;
    clbnb_dtype bias_dt;
    clbnb_dtype storage; /* 4-bit quant_storage */
    float *w, *bias;
    clbnb_quant_state *qs; /* 4-bit */
    cl_mem packed;         /* 4-bit */
    clbnb_linear8 *l8;     /* int8: the directly created layer (source of CB / SCB) */
    int8_t *cb;
    float *scb;
} module;

static void write_checkpoint(clbnb_context *ctx, cl_command_queue q, const char *path, module *mods) {
    clbnb_st_decl decls[32];
    char names[32][CLBNB_CKPT_NAME_MAX];
    size_t nd = 0;
    for (int i = 0; i < NMOD; i++) {
        module *m = &mods[i];
        char wk[256];
        snprintf(wk, sizeof wk, "%s.weight", m->prefix);
        if (m->kind < 2) {
            clbnb_quant_state_info info = {m->kind ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4,
                                           m->qs->blocksize,
                                           m->qs->dtype,
                                           2,
                                           {m->n, m->k},
                                           m->qs->nested,
                                           m->qs->nested ? 256 : 0,
                                           CLBNB_DTYPE_F32,
                                           0.0f};
            size_t c = 0;
            clbnb_st_decl d[6];
            char nm[6][CLBNB_CKPT_NAME_MAX];
            TEST_STATUS(clbnb_quant_state_declare(&info, m->storage, wk, d, nm, &c), CLBNB_SUCCESS);
            for (size_t j = 0; j < c; j++) {
                memcpy(names[nd], nm[j], CLBNB_CKPT_NAME_MAX);
                decls[nd] = d[j];
                decls[nd].name = names[nd];
                nd++;
            }
        } else {
            snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s", wk);
            decls[nd] = (clbnb_st_decl){names[nd], CLBNB_ST_I8, 2, {m->n, m->k}, 0};
            nd++;
            snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s.SCB", m->prefix);
            decls[nd] = (clbnb_st_decl){names[nd], CLBNB_ST_F32, 1, {m->n}, 0};
            nd++;
            snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s.weight_format", m->prefix);
            decls[nd] = (clbnb_st_decl){names[nd], CLBNB_ST_U8, 0, {0}, 0};
            nd++;
        }
        snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s.bias", m->prefix);
        decls[nd] = (clbnb_st_decl){names[nd], clbnb_st_dtype_from_clbnb(m->bias_dt), 1, {m->n}, 0};
        nd++;
    }
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, decls, nd, NULL, 0, &fe), CLBNB_SUCCESS);
    if (!w) return;
    for (int i = 0; i < NMOD; i++) {
        module *m = &mods[i];
        char wk[256];
        snprintf(wk, sizeof wk, "%s.weight", m->prefix);
        clbnb_status s;
        if (m->kind < 2) {
            clbnb_vector pv = clbnb_vector_make(m->packed, 0, clbnb_packed_4bit_bytes(m->n * m->k), CLBNB_DTYPE_U8);
            s = clbnb_quant_state_save(w, ctx, q, m->qs, &pv, wk, &fe);
            TEST_CHECK(s == CLBNB_SUCCESS, "save %s: %s (%s)", wk, clbnb_status_string(s), fe.message);
        } else {
            unsigned char fmt = 0;
            TEST_STATUS(clbnb_st_writer_write(w, m->cb, m->n * m->k, &fe), CLBNB_SUCCESS);
            TEST_STATUS(clbnb_st_writer_write(w, m->scb, m->n * 4, &fe), CLBNB_SUCCESS);
            TEST_STATUS(clbnb_st_writer_write(w, &fmt, 1, &fe), CLBNB_SUCCESS);
        }
        size_t es = clbnb_dtype_size(m->bias_dt);
        unsigned char *b = malloc(m->n * es);
        test_floats_to_dtype(m->bias, b, m->n, m->bias_dt);
        TEST_STATUS(clbnb_st_writer_write(w, b, m->n * es, &fe), CLBNB_SUCCESS);
        free(b);
    }
    clbnb_status s = clbnb_st_writer_finish(w, &fe);
    TEST_CHECK(s == CLBNB_SUCCESS, "finish: %s (%s)", clbnb_status_string(s), fe.message);
}

/* Runs forward of both layers on the same x and compares the bits of the outputs. */
static void compare_forward(clbnb_context *ctx, cl_command_queue q, test_rng *rng, const module *m, void *direct,
                            void *loaded, size_t rows, clbnb_dtype xdt) {
    float *x = malloc(rows * m->k * 4), *o1 = malloc(rows * m->n * 4), *o2 = malloc(rows * m->n * 4);
    fill_normal(rng, x, rows * m->k, 1.0f);
    tmat X = tm_upload(ctx, x, rows, m->k, xdt, 1);
    tmat O1 = tm_alloc(ctx, rows, m->n, CLBNB_DTYPE_F32, 2), O2 = tm_alloc(ctx, rows, m->n, CLBNB_DTYPE_F32, 2);
    if (m->kind < 2) {
        TEST_STATUS(clbnb_linear4_forward(direct, q, &X.m, &O1.m, 0, NULL, NULL), CLBNB_SUCCESS);
        TEST_STATUS(clbnb_linear4_forward(loaded, q, &X.m, &O2.m, 0, NULL, NULL), CLBNB_SUCCESS);
    } else {
        TEST_STATUS(clbnb_linear8_forward(direct, q, &X.m, &O1.m, 0, NULL, NULL), CLBNB_SUCCESS);
        TEST_STATUS(clbnb_linear8_forward(loaded, q, &X.m, &O2.m, 0, NULL, NULL), CLBNB_SUCCESS);
    }
    size_t t1 = tm_download(ctx, &O1, o1), t2 = tm_download(ctx, &O2, o2);
    size_t diff = 0;
    double mag = 0;
    for (size_t i = 0; i < rows * m->n; i++) {
        diff += test_float_bits(o1[i]) != test_float_bits(o2[i]);
        mag += fabs(o1[i]);
    }
    TEST_CHECK(diff == 0 && t1 == 0 && t2 == 0 && mag > 0, "%s rows %zu x %s: %zu outputs differ (touched %zu %zu)",
               m->prefix, rows, clbnb_dtype_name(xdt), diff, t1, t2);
    tm_free(&X), tm_free(&O1), tm_free(&O2);
    free(x), free(o1), free(o2);
}

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    module mods[NMOD] = {
        {"model.layers.0.mlp.up_proj", 0, 24, 64, CLBNB_DTYPE_F16, CLBNB_DTYPE_U8, 0, 0, 0, 0, 0, 0, 0},
        {"model.layers.0.mlp.down_proj", 1, 10, 96, CLBNB_DTYPE_F32, CLBNB_DTYPE_F16, 0, 0, 0, 0, 0, 0, 0},
        {"model.layers.1.self_attn.q_proj", 2, 12, 40, CLBNB_DTYPE_F16, CLBNB_DTYPE_U8, 0, 0, 0, 0, 0, 0, 0},
    };
    /* quantize the weights on the device */
    for (int i = 0; i < NMOD; i++) {
        module *m = &mods[i];
        m->w = malloc(m->n * m->k * 4);
        m->bias = malloc(m->n * 4);
        fill_normal(&rng, m->w, m->n * m->k, 0.1f);
        fill_normal(&rng, m->bias, m->n, 0.5f);
        for (size_t j = 0; j < m->n; j++)
            m->bias[j] = test_round_to_dtype(m->bias[j], m->bias_dt);
        tmat W = tm_upload(ctx, m->w, m->n, m->k, m->kind == 1 ? CLBNB_DTYPE_F32 : CLBNB_DTYPE_F16, 0);
        if (m->kind < 2) {
            size_t shape[2] = {m->n, m->k}, pb = clbnb_packed_4bit_bytes(m->n * m->k);
            TEST_STATUS(clbnb_quant_state_init(&m->qs, ctx, q, m->kind ? CLBNB_QUANT_FP4 : CLBNB_QUANT_NF4,
                                               m->kind ? 32 : 64, W.m.dtype, 2, shape, m->kind == 0),
                        CLBNB_SUCCESS);
            m->packed = test_buffer(ctx, pb);
            clbnb_vector xv = clbnb_vector_make(W.m.mem, W.m.offset, m->n * m->k, W.m.dtype);
            clbnb_vector pv = clbnb_vector_make(m->packed, 0, pb, CLBNB_DTYPE_U8);
            TEST_STATUS(clbnb_quantize_state(ctx, q, &xv, m->qs, &pv, 0, NULL, NULL), CLBNB_SUCCESS);
        } else {
            tvec B = tv_upload(ctx, m->bias, m->n, m->bias_dt);
            TEST_STATUS(clbnb_linear8_init(&m->l8, ctx, q, &W.m, &B.v, NULL), CLBNB_SUCCESS);
            clbnb_matrix cb;
            clbnb_vector scb;
            TEST_STATUS(clbnb_linear8_weights(m->l8, &cb, &scb), CLBNB_SUCCESS);
            m->cb = malloc(m->n * m->k);
            m->scb = malloc(m->n * 4);
            test_download(ctx, cb.mem, cb.offset, m->cb, m->n * m->k);
            test_download(ctx, scb.mem, scb.offset, m->scb, m->n * 4);
            tv_free(&B);
        }
        tm_free(&W);
    }
    char path[256];
    snprintf(path, sizeof path, "/tmp/clbnb_test_layer_ckpt_%d.safetensors", (int)getpid());
    write_checkpoint(ctx, q, path, mods);

    clbnb_checkpoint *ck = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, path, &fe), CLBNB_SUCCESS);
    if (!ck) return test_finish();
    clbnb_linear_info *list = NULL;
    size_t count = 0;
    TEST_STATUS(clbnb_checkpoint_list_linear(ck, &list, &count, &fe), CLBNB_SUCCESS);
    TEST_CHECK(count == NMOD, "listed %zu linears", count);
    for (size_t i = 0; i < count; i++) {
        const clbnb_linear_info *li = &list[i];
        module *m = NULL;
        for (int j = 0; j < NMOD; j++)
            if (strcmp(mods[j].prefix, li->prefix) == 0) m = &mods[j];
        TEST_CHECK(m != NULL, "unknown prefix %s", li->prefix);
        if (!m) continue;
        TEST_CHECK((int)li->kind == m->kind && li->out_features == m->n && li->in_features == m->k && li->has_bias &&
                       li->bias_dtype == m->bias_dt,
                   "%s: info kind %d n %zu k %zu bias %d", li->prefix, (int)li->kind, li->out_features, li->in_features,
                   li->has_bias);
        clbnb_linear_weights w;
        TEST_STATUS(clbnb_checkpoint_load_linear(ck, ctx, q, li->prefix, &w, &fe), CLBNB_SUCCESS);
        if (m->kind < 2) {
            /* the wrong kind of layer is refused and the weights stay the caller's */
            clbnb_linear8 *bad = NULL;
            TEST_STATUS(clbnb_linear8_init_from_weights(&bad, ctx, q, &w, NULL), CLBNB_ERROR_INVALID_QUANT_TYPE);
            TEST_CHECK(w.state != NULL && w.weight != NULL && w.bias != NULL, "weights kept after a refused init");
            clbnb_linear4 *loaded = NULL, *direct = NULL, *loaded2 = NULL;
            TEST_STATUS(clbnb_linear4_init_from_weights(&loaded, ctx, q, &w, NULL), CLBNB_SUCCESS);
            TEST_CHECK(w.state == NULL && w.weight == NULL && w.bias == NULL, "weights handed over");
            clbnb_vector pv = clbnb_vector_make(m->packed, 0, clbnb_packed_4bit_bytes(m->n * m->k), CLBNB_DTYPE_U8);
            tvec B = tv_upload(ctx, m->bias, m->n, m->bias_dt);
            clbnb_quant_state *qs = m->qs;
            TEST_STATUS(clbnb_linear4_init_quantized(&direct, ctx, q, qs, &pv, &B.v, NULL), CLBNB_SUCCESS);
            if (direct) m->qs = NULL; /* owned by the layer now */
            TEST_STATUS(clbnb_linear4_from_checkpoint(&loaded2, ck, ctx, q, li->prefix, NULL, &fe), CLBNB_SUCCESS);
            if (loaded && direct && loaded2) {
                const size_t rows[] = {1, 5, 33};
                for (size_t r = 0; r < 3; r++) {
                    compare_forward(ctx, q, &rng, m, direct, loaded, rows[r], CLBNB_DTYPE_F32);
                    compare_forward(ctx, q, &rng, m, direct, loaded, rows[r], CLBNB_DTYPE_F16);
                    compare_forward(ctx, q, &rng, m, direct, loaded2, rows[r], CLBNB_DTYPE_F32);
                }
            }
            clbnb_linear4_free(loaded), clbnb_linear4_free(direct), clbnb_linear4_free(loaded2);
            tv_free(&B);
        } else {
            clbnb_linear4 *bad = NULL;
            TEST_STATUS(clbnb_linear4_init_from_weights(&bad, ctx, q, &w, NULL), CLBNB_ERROR_INVALID_QUANT_TYPE);
            clbnb_linear8 *loaded = NULL, *loaded6 = NULL, *direct6 = NULL;
            TEST_STATUS(clbnb_linear8_init_from_weights(&loaded, ctx, q, &w, NULL), CLBNB_SUCCESS);
            TEST_CHECK(w.weight == NULL && w.scb == NULL && w.bias == NULL, "int8 weights handed over");
            if (loaded) compare_forward(ctx, q, &rng, m, m->l8, loaded, 7, CLBNB_DTYPE_F16);
            if (loaded) compare_forward(ctx, q, &rng, m, m->l8, loaded, 1, CLBNB_DTYPE_F32);
            /* threshold 6 (Hugging Face): same layer from the prequantized CB/SCB */
            clbnb_linear8_params p = clbnb_linear8_default_params();
            p.threshold = 6.0f;
            TEST_STATUS(clbnb_linear8_from_checkpoint(&loaded6, ck, ctx, q, li->prefix, &p, &fe), CLBNB_SUCCESS);
            clbnb_matrix cb;
            clbnb_vector scb;
            clbnb_linear8_weights(m->l8, &cb, &scb);
            tvec B = tv_upload(ctx, m->bias, m->n, m->bias_dt);
            TEST_STATUS(clbnb_linear8_init_quantized(&direct6, ctx, q, &cb, &scb, &B.v, &p), CLBNB_SUCCESS);
            if (loaded6 && direct6) compare_forward(ctx, q, &rng, m, direct6, loaded6, 9, CLBNB_DTYPE_F16);
            clbnb_linear8_free(loaded), clbnb_linear8_free(loaded6), clbnb_linear8_free(direct6);
            tv_free(&B);
        }
        clbnb_linear_weights_release(&w); /* no-op after a hand-over */
    }
    /* errors */
    clbnb_linear4 *l4 = NULL;
    TEST_STATUS(clbnb_linear4_init_from_weights(&l4, ctx, q, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_linear4_from_checkpoint(&l4, ck, ctx, q, "no.such.module", NULL, &fe),
                CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_NOT_FOUND, "missing module: %s", clbnb_file_error_name(fe.code));
    TEST_CHECK(l4 == NULL, "no layer on error");
    free(list);
    clbnb_checkpoint_close(ck);
    unlink(path);
    for (int i = 0; i < NMOD; i++) {
        module *m = &mods[i];
        free(m->w), free(m->bias), free(m->cb), free(m->scb);
        if (m->qs) clbnb_quant_state_free(m->qs);
        if (m->packed) clReleaseMemObject(m->packed);
        clbnb_linear8_free(m->l8);
    }
    clbnb_context_free(ctx);
    return test_finish();
}
