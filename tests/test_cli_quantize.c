/* test_cli_quantize.c: runs the built `clbnb` binary (tools/clbnb next to this test's directory,
 * or $CLBNB_CLI) on a tiny synthetic model written by the test (2 linear layers with bias,
 * embedding, norms, lm_head; f16 / bf16 / f32): `quantize` converts exactly the linear weights
 * (codes and absmax against the C reference), keeps every other tensor byte for byte; `dequantize`
 * restores the key set with errors within bitsandbytes' bars; `inspect` reports the quant
 * states; bad inputs fail without leaving an output file. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_quant_blockwise_ref.h"

static char cli[PATH_MAX], tmpdir[256];

static int run(const char *args, char *out, size_t out_size) {
    char cmd[PATH_MAX + 4200];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", cli, args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0;
    if (out && out_size) {
        n = fread(out, 1, out_size - 1, p);
        out[n] = '\0';
    } else {
        char buf[4096];
        while (fread(buf, 1, sizeof buf, p) > 0) {
        }
    }
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

typedef struct {
    const char *name;
    int ndim;
    uint64_t s0, s1;
    int linear;
} tspec;

static const tspec model[] = {
    {"model.embed_tokens.weight", 2, 50, 64, 0},
    {"model.layers.0.input_layernorm.weight", 1, 64, 0, 0},
    {"model.layers.0.self_attn.q_proj.weight", 2, 96, 64, 1},
    {"model.layers.0.self_attn.q_proj.bias", 1, 96, 0, 0},
    {"model.layers.0.mlp.fc2.weight", 2, 33, 96, 1}, /* 3168 elements: partial last block */
    {"model.layers.0.mlp.fc2.bias", 1, 33, 0, 0},
    {"model.norm.weight", 1, 64, 0, 0},
    {"lm_head.weight", 2, 50, 64, 0},
};
#define NT (sizeof model / sizeof model[0])

static void write_model(const char *path, clbnb_dtype dt, test_rng *rng, float **vals) {
    clbnb_st_decl d[NT];
    memset(d, 0, sizeof d);
    for (size_t i = 0; i < NT; i++) {
        d[i].name = model[i].name;
        d[i].dtype = clbnb_st_dtype_from_clbnb(dt);
        d[i].ndim = model[i].ndim;
        d[i].shape[0] = model[i].s0;
        d[i].shape[1] = model[i].s1;
    }
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    const char *meta[] = {"format", "pt"};
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, NT, meta, 1, &fe), CLBNB_SUCCESS);
    for (size_t i = 0; i < NT; i++) {
        size_t n = model[i].s0 * (model[i].ndim == 2 ? model[i].s1 : 1), es = clbnb_dtype_size(dt);
        vals[i] = malloc(n * 4);
        void *raw = malloc(n * es);
        for (size_t k = 0; k < n; k++)
            vals[i][k] = test_round_to_dtype(test_rng_normal(rng), dt);
        test_floats_to_dtype(vals[i], raw, n, dt);
        if (w) clbnb_st_writer_write(w, raw, n * es, &fe);
        free(raw);
    }
    if (w) TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
}

static void check_case(clbnb_dtype dt, const char *type, int dq, const char *storage, test_rng *rng) {
    char in[512], out[512], dqp[512], args[2048], text[65536], tag[128];
    snprintf(tag, sizeof tag, "[%s %s%s %s]", clbnb_dtype_name(dt), type, dq ? " dq" : "", storage);
    snprintf(in, sizeof in, "%s/in.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/out.safetensors", tmpdir);
    snprintf(dqp, sizeof dqp, "%s/dq.safetensors", tmpdir);
    float *vals[NT];
    write_model(in, dt, rng, vals);
    snprintf(args, sizeof args, "quantize %s %s --type %s %s --quant-storage %s", in, out, type,
             dq ? "--double-quant" : "", storage);
    int rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0, "%s quantize exit %d:\n%s", tag, rc, text);
    TEST_CHECK(strstr(text, "2 tensors converted, 6 kept") != NULL, "%s summary line:\n%s", tag, text);
    TEST_CHECK(strstr(text, "MB/s") != NULL, "%s progress line", tag);
    int is8 = strcmp(type, "int8") == 0, fp4 = strcmp(type, "fp4") == 0;
    clbnb_checkpoint *ck = NULL, *ick = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, out, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_checkpoint_open(&ick, in, &fe), CLBNB_SUCCESS);
    if (!ck || !ick) return;
    size_t expect = NT - 2 + 2 * (is8 ? 3 : dq ? 6 : 4);
    TEST_CHECK(clbnb_checkpoint_count(ck) == expect, "%s %zu keys, expected %zu", tag, clbnb_checkpoint_count(ck),
               expect);
    for (size_t i = 0; i < NT; i++) {
        const clbnb_st_tensor *a = clbnb_checkpoint_find(ick, model[i].name),
                              *b = clbnb_checkpoint_find(ck, model[i].name);
        TEST_CHECK(b != NULL, "%s %s missing", tag, model[i].name);
        if (!a || !b) continue;
        if (!model[i].linear) {
            TEST_CHECK(a->dtype == b->dtype && a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0,
                       "%s kept tensor %s changed", tag, model[i].name);
            continue;
        }
        size_t rows = model[i].s0, cols = model[i].s1, n = rows * cols;
        char k2[256];
        if (is8) {
            TEST_CHECK(b->dtype == CLBNB_ST_I8 && b->ndim == 2 && b->shape[0] == rows && b->shape[1] == cols,
                       "%s %s CB layout", tag, model[i].name);
            snprintf(k2, sizeof k2, "%.*s.SCB", (int)(strlen(model[i].name) - 7), model[i].name);
            const clbnb_st_tensor *scb = clbnb_checkpoint_find(ck, k2);
            snprintf(k2, sizeof k2, "%.*s.weight_format", (int)(strlen(model[i].name) - 7), model[i].name);
            const clbnb_st_tensor *wf = clbnb_checkpoint_find(ck, k2);
            TEST_CHECK(scb && scb->dtype == CLBNB_ST_F32 && scb->numel == rows, "%s SCB", tag);
            TEST_CHECK(wf && wf->dtype == CLBNB_ST_U8 && wf->ndim == 0 && ((const uint8_t *)wf->data)[0] == 0,
                       "%s weight_format", tag);
            if (!scb || b->nbytes != n) continue;
            /* reference: row absmax of the fp16 copy, q = rint(x * (127 / absmax)) */
            size_t bad = 0;
            for (size_t r = 0; r < rows; r++) {
                float m = 0;
                for (size_t c = 0; c < cols; c++)
                    m = fmaxf(m, fabsf(test_round_to_dtype(vals[i][r * cols + c], CLBNB_DTYPE_F16)));
                float stat; /* tensor data need not be aligned in a safetensors file */
                memcpy(&stat, (const char *)scb->data + 4 * r, 4);
                bad += test_float_bits(m) != test_float_bits(stat);
                float sc = 127.0f / m;
                for (size_t c = 0; c < cols; c++) {
                    float x = test_round_to_dtype(vals[i][r * cols + c], CLBNB_DTYPE_F16);
                    bad += (int8_t)rintf(x * sc) != ((const int8_t *)b->data)[r * cols + c];
                }
            }
            TEST_CHECK(bad == 0, "%s %s: %zu int8 codes / stats differ from the reference", tag, model[i].name, bad);
        } else {
            size_t pb = (n + 1) / 2;
            TEST_CHECK(b->nbytes == pb && b->ndim == 2 && b->shape[1] == 1 &&
                           clbnb_st_dtype_name(b->dtype)[0] == (strcmp(storage, "u8") == 0     ? 'U'
                                                                : strcmp(storage, "bf16") == 0 ? 'B'
                                                                                               : 'F'),
                       "%s %s packed layout (%s)", tag, model[i].name, clbnb_st_dtype_name(b->dtype));
            uint8_t *rp = malloc(pb);
            float *ra = malloc(((n + 63) / 64) * 4);
            ref_quantize_4bit(vals[i], n, fp4, 64, rp, ra);
            if (b->nbytes == pb) {
                size_t d = 0;
                for (size_t k = 0; k < pb; k++)
                    d += rp[k] != ((const uint8_t *)b->data)[k];
                TEST_CHECK(d == 0, "%s %s: %zu packed bytes differ from the C reference", tag, model[i].name, d);
            }
            snprintf(k2, sizeof k2, "%s.absmax", model[i].name);
            const clbnb_st_tensor *am = clbnb_checkpoint_find(ck, k2);
            if (!dq)
                TEST_CHECK(am && am->nbytes == ((n + 63) / 64) * 4 && memcmp(am->data, ra, am->nbytes) == 0,
                           "%s absmax vs reference", tag);
            else
                TEST_CHECK(am && am->dtype == CLBNB_ST_U8, "%s nested absmax is u8", tag);
            free(rp), free(ra);
        }
    }
    /* the same conversion streamed in 1 KiB chunks (several chunks per tensor, partial last chunk,
     * partial last block) into shards of at most 8 kB: every tensor byte-identical */
    char shards[512];
    snprintf(shards, sizeof shards, "%s/sharded", tmpdir);
    snprintf(args, sizeof args, "quantize %s %s --type %s %s --quant-storage %s --chunk 1KiB --max-shard-size 8KB", in,
             shards, type, dq ? "--double-quant" : "", storage);
    rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0 && strstr(text, " shards + model.safetensors.index.json"), "%s sharded quantize exit %d:\n%s",
               tag, rc, text);
    clbnb_checkpoint *sk = NULL;
    TEST_STATUS(clbnb_checkpoint_open(&sk, shards, &fe), CLBNB_SUCCESS);
    if (sk) {
        TEST_CHECK(clbnb_checkpoint_shard_count(sk) >= 2 && clbnb_checkpoint_count(sk) == clbnb_checkpoint_count(ck),
                   "%s %zu shards, %zu keys (single file: %zu)", tag, clbnb_checkpoint_shard_count(sk),
                   clbnb_checkpoint_count(sk), clbnb_checkpoint_count(ck));
        size_t differ = 0;
        for (size_t i = 0; i < clbnb_checkpoint_count(ck); i++) {
            const clbnb_st_tensor *a = clbnb_checkpoint_tensor(ck, i), *b = clbnb_checkpoint_find(sk, a->name);
            differ += !b || b->dtype != a->dtype || b->nbytes != a->nbytes || memcmp(a->data, b->data, a->nbytes);
        }
        TEST_CHECK(differ == 0, "%s %zu tensors of the chunked, sharded conversion differ", tag, differ);
        for (size_t k = 0; k < clbnb_checkpoint_shard_count(sk); k++) {
            char f[600];
            snprintf(f, sizeof f, "%s/model-%05zu-of-%05zu.safetensors", shards, k + 1,
                     clbnb_checkpoint_shard_count(sk));
            TEST_CHECK(unlink(f) == 0, "%s shard %s", tag, f);
        }
        clbnb_checkpoint_close(sk);
    }
    snprintf(text, sizeof text, "%s/model.safetensors.index.json", shards);
    unlink(text);
    rmdir(shards);
    clbnb_checkpoint_close(ck);

    snprintf(args, sizeof args, "inspect %s", out);
    rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0 && strstr(text, "quantized linear weights: 2") && strstr(text, is8 ? "int8" : type) &&
                   (is8 || strstr(text, "quant_state {\"quant_type\"")) && strstr(text, "model.layers.0.mlp.fc2"),
               "%s inspect output:\n%s", tag, text);

    snprintf(args, sizeof args, "dequantize %s %s --dtype f32", out, dqp);
    rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0, "%s dequantize exit %d:\n%s", tag, rc, text);
    TEST_STATUS(clbnb_checkpoint_open(&ck, dqp, &fe), CLBNB_SUCCESS);
    if (ck) {
        TEST_CHECK(clbnb_checkpoint_count(ck) == NT, "%s dequantized file has %zu keys", tag,
                   clbnb_checkpoint_count(ck));
        for (size_t i = 0; i < NT; i++) {
            const clbnb_st_tensor *b = clbnb_checkpoint_find(ck, model[i].name);
            TEST_CHECK(b != NULL, "%s %s missing after dequantize", tag, model[i].name);
            if (!b || !model[i].linear) continue;
            size_t n = model[i].s0 * model[i].s1;
            TEST_CHECK(b->dtype == CLBNB_ST_F32 && b->ndim == 2 && b->shape[0] == model[i].s0 &&
                           b->shape[1] == model[i].s1,
                       "%s %s dequantized layout", tag, model[i].name);
            if (b->nbytes != n * 4) continue;
            const float *y = b->data;
            double abs_err = 0, rel_err = 0;
            size_t over = 0;
            for (size_t k = 0; k < n; k++) {
                double e = fabs((double)vals[i][k] - (double)y[k]);
                abs_err += e;
                rel_err += e / (fabs((double)vals[i][k]) + 1e-8);
                if (is8) {
                    /* half a quantization step of the row plus the fp16 rounding of x */
                    size_t r = k / model[i].s1;
                    float m = 0;
                    for (size_t c = 0; c < model[i].s1; c++)
                        m = fmaxf(m, fabsf(vals[i][r * model[i].s1 + c]));
                    over += e > (double)m / 254.0 * 1.01 + fabs((double)vals[i][k]) * 1e-3;
                }
            }
            abs_err /= (double)n;
            rel_err /= (double)n;
            if (is8)
                TEST_CHECK(over == 0, "%s %s: %zu int8 elements beyond half a step", tag, model[i].name, over);
            else /* bitsandbytes test_4bit_compressed_stats: abs < 0.11, rel < 0.28 */
                TEST_CHECK(abs_err < 0.11 && rel_err < 0.28, "%s %s: abs err %.4f rel err %.4f", tag, model[i].name,
                           abs_err, rel_err);
        }
        clbnb_checkpoint_close(ck);
    }
    /* piece by piece (--chunk 4KiB: whole blocks or rows per step): the same bytes as one piece */
    char dqp2[600];
    snprintf(dqp2, sizeof dqp2, "%s.pieces", dqp);
    snprintf(args, sizeof args, "dequantize %s %s --dtype f16 --chunk 4KiB", out, dqp2);
    rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0, "%s dequantize --chunk exit %d:\n%s", tag, rc, text);
    snprintf(args, sizeof args, "dequantize %s %s --dtype f16", out, dqp);
    rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 0, "%s dequantize f16 exit %d:\n%s", tag, rc, text);
    clbnb_checkpoint *c1 = NULL, *c2 = NULL;
    TEST_STATUS(clbnb_checkpoint_open(&c1, dqp, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_checkpoint_open(&c2, dqp2, &fe), CLBNB_SUCCESS);
    if (c1 && c2) {
        for (size_t i = 0; i < NT; i++) {
            const clbnb_st_tensor *a = clbnb_checkpoint_find(c1, model[i].name),
                                  *b = clbnb_checkpoint_find(c2, model[i].name);
            TEST_CHECK(a && b && a->nbytes == b->nbytes && a->dtype == b->dtype &&
                           memcmp(a->data, b->data, a->nbytes) == 0,
                       "%s %s: dequantized in pieces differs from one piece", tag, model[i].name);
        }
    }
    clbnb_checkpoint_close(c1);
    clbnb_checkpoint_close(c2);
    snprintf(args, sizeof args, "dequantize %s %s --chunk 0", out, dqp2);
    TEST_CHECK(run(args, text, sizeof text) == 2, "%s dequantize --chunk 0 refused", tag);
    unlink(dqp2);
    clbnb_checkpoint_close(ick);
    for (size_t i = 0; i < NT; i++)
        free(vals[i]);
    unlink(out), unlink(dqp), unlink(in);
}

int main(void) {
    const char *env = getenv("CLBNB_CLI");
    if (env)
        snprintf(cli, sizeof cli, "%s", env);
    else {
        char self[PATH_MAX - 32];
        ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
        self[l > 0 ? l : 0] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) *slash = '\0';
        snprintf(cli, sizeof cli, "%s/../tools/clbnb", self);
    }
    if (access(cli, X_OK) != 0) {
        TEST_CHECK(0, "the clbnb binary %s is not built (set CLBNB_CLI)", cli);
        return test_finish();
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clbnb_test_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_rng rng = test_rng_seeded(0);
    check_case(CLBNB_DTYPE_F16, "nf4", 0, "u8", &rng);
    check_case(CLBNB_DTYPE_BF16, "fp4", 1, "u8", &rng);
    check_case(CLBNB_DTYPE_F32, "nf4", 1, "f32", &rng);
    check_case(CLBNB_DTYPE_F16, "fp4", 0, "bf16", &rng);
    check_case(CLBNB_DTYPE_F32, "int8", 0, "u8", &rng);
    check_case(CLBNB_DTYPE_BF16, "int8", 0, "u8", &rng);
    /* failures leave no output behind */
    char in[512], out[512], args[2048], text[8192];
    snprintf(in, sizeof in, "%s/bad.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/never.safetensors", tmpdir);
    FILE *f = fopen(in, "wb");
    fwrite("\xff\x00\x00\x00\x00\x00\x00\x00{\"a\"", 1, 12, f);
    fclose(f);
    snprintf(args, sizeof args, "quantize %s %s --type nf4", in, out);
    int rc = run(args, text, sizeof text);
    TEST_CHECK(rc == 1 && strstr(text, "past the end") != NULL, "corrupt input: exit %d:\n%s", rc, text);
    TEST_CHECK(access(out, F_OK) != 0, "output left behind for a corrupt input");
    snprintf(args, sizeof args, "quantize %s/missing.safetensors %s --type nf4", tmpdir, out);
    TEST_CHECK(run(args, text, sizeof text) == 1 && access(out, F_OK) != 0, "missing input");
    snprintf(args, sizeof args, "quantize %s %s --type nf5", in, out);
    TEST_CHECK(run(args, text, sizeof text) == 2, "bad --type is a usage error");
    snprintf(args, sizeof args, "inspect %s", in);
    TEST_CHECK(run(args, text, sizeof text) == 1, "inspect of a corrupt file fails");
    unlink(in);
    rmdir(tmpdir);
    return test_finish();
}
