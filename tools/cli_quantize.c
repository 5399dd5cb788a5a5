/* cli_quantize.c: `clbnb quantize` (a Hugging Face checkpoint -> bitsandbytes 4-bit / 8-bit
 * safetensors) and `clbnb dequantize` (back to f16/bf16/f32). Both stream tensor by tensor, and
 * within a tensor in chunks. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct progress {
    size_t done, total;
    double bytes, t0, last;
    int tty;
} progress;

static void progress_show(progress *p, int final) {
    double t = now_s();
    if (!final && t - p->last < (p->tty ? 0.2 : 2.0)) return;
    p->last = t;
    double mb = p->bytes / 1e6, rate = mb / (t - p->t0 > 1e-9 ? t - p->t0 : 1e-9);
    fprintf(stderr, "%s[%zu/%zu tensors] %.1f MB read, %.1f MB/s%s", p->tty ? "\r" : "", p->done, p->total, mb, rate,
            p->tty && !final ? "   " : "\n");
    fflush(stderr);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int matches(const char *name, const char *pattern) {
    if (strpbrk(pattern, "*?[")) return fnmatch(pattern, name, 0) == 0;
    return strstr(name, pattern) != NULL;
}

/* Like transformers' get_keys_to_not_convert: output head, embeddings and norms stay in full precision. */
static const char *default_skips[] = {"lm_head", "embed", "wte", "wpe", "word_embeddings", "norm", "ln_", "layernorm"};

static int is_float(clbnb_st_dtype d) { return d == CLBNB_ST_F32 || d == CLBNB_ST_F16 || d == CLBNB_ST_BF16; }

static int report(const char *what, clbnb_status s, const clbnb_file_error *fe) {
    fprintf(stderr, "clbnb: %s: %s", what, clbnb_status_string(s));
    if (fe && fe->message[0]) fprintf(stderr, ": %s", fe->message);
    fprintf(stderr, "\n");
    return 1;
}

typedef struct plan {
    const clbnb_st_tensor *t;
    int convert; /* 0 keep, 1 4-bit, 2 int8 */
    size_t first_decl, ndecl;
    uint64_t out_bytes; /* declared output bytes (deferred JSON: its maximum) */
    size_t shard;
} plan;

static clbnb_dtype to_clbnb(clbnb_st_dtype d) { return (clbnb_dtype)clbnb_st_dtype_to_clbnb(d); }

/* "5GB", "500MB", "64KiB", "123" (bytes); 0 on a malformed value */
static uint64_t parse_size(const char *v) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!end || end == v || x <= 0) return 0;
    static const struct {
        const char *unit;
        double mul;
    } units[] = {{"", 1},     {"B", 1},      {"KB", 1e3},        {"MB", 1e6},
                 {"GB", 1e9}, {"KiB", 1024}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0) return (uint64_t)(x * units[i].mul);
    return 0;
}

/* Output of one run: a single file, or HF-style shards plus model.safetensors.index.json. */
typedef struct output {
    const char *path; /* file, or directory when sharded */
    size_t nshards;
    char (*files)[64]; /* shard file names */
} output;

static void shard_path(const output *o, size_t k, char *buf, size_t size) {
    if (o->nshards == 0)
        snprintf(buf, size, "%s", o->path);
    else
        snprintf(buf, size, "%s/%s", o->path, o->files[k]);
}

/* Writes the index (atomically: temporary file, then rename). */
static int write_index(const output *o, const plan *pl, size_t n, const clbnb_st_decl *decls, uint64_t total) {
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", (double)total);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < pl[i].ndecl; k++)
            cJSON_AddStringToObject(map, decls[pl[i].first_decl + k].name, o->files[pl[i].shard]);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", o->path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = text ? fopen(tmp, "wb") : NULL;
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f) ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        unlink(tmp);
        fprintf(stderr, "clbnb: cannot write %s\n", path);
    }
    free(text);
    return ok;
}

int cli_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL, *device = NULL, *storage = "u8";
    size_t blocksize = 64;
    uint64_t chunk = (uint64_t)2 << 20;
    uint64_t max_shard = 0;
    int dq = 0;
    const char *skips[64];
    size_t nskips = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_option(argc, argv, &i, "--type")))
            type = v;
        else if ((v = cli_option(argc, argv, &i, "--blocksize")))
            blocksize = (size_t)strtoull(v, NULL, 10);
        else if ((v = cli_option(argc, argv, &i, "--quant-storage")))
            storage = v;
        else if ((v = cli_option(argc, argv, &i, "--device")))
            device = v;
        else if ((v = cli_option(argc, argv, &i, "--chunk"))) {
            if (!(chunk = parse_size(v)) || chunk > ((uint64_t)1 << 32)) {
                fprintf(stderr, "clbnb quantize: bad --chunk '%s' (e.g. 2MiB, 64KiB; at most 4GiB)\n", v);
                return 2;
            }
        } else if ((v = cli_option(argc, argv, &i, "--max-shard-size"))) {
            if (!(max_shard = parse_size(v))) {
                fprintf(stderr, "clbnb quantize: bad --max-shard-size '%s' (e.g. 5GB, 500MB, 2GiB)\n", v);
                return 2;
            }
        } else if ((v = cli_option(argc, argv, &i, "--skip"))) {
            if (nskips < 64) skips[nskips++] = v;
        } else if (strcmp(argv[i], "--double-quant") == 0)
            dq = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "clbnb quantize: unknown option %s\n", argv[i]);
            return 2;
        } else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else {
            fprintf(stderr, "clbnb quantize: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!in || !out || !type) {
        fprintf(stderr,
                "usage: clbnb quantize IN OUT --type nf4|fp4|int8 [--blocksize N] [--double-quant]\n"
                "       [--quant-storage u8|f16|bf16|f32] [--skip PATTERN]... [--device SEL]\n"
                "       [--max-shard-size SIZE (OUT is then a directory: model-0000k-of-0000n.safetensors\n"
                "        + model.safetensors.index.json)] [--chunk SIZE (input per device step, default 2MiB)]\n");
        return 2;
    }
    int kind = strcmp(type, "nf4") == 0 ? 1 : strcmp(type, "fp4") == 0 ? 2 : strcmp(type, "int8") == 0 ? 3 : 0;
    clbnb_dtype qstore = strcmp(storage, "u8") == 0     ? CLBNB_DTYPE_U8
                         : strcmp(storage, "f16") == 0  ? CLBNB_DTYPE_F16
                         : strcmp(storage, "bf16") == 0 ? CLBNB_DTYPE_BF16
                         : strcmp(storage, "f32") == 0  ? CLBNB_DTYPE_F32
                                                        : CLBNB_DTYPE_COUNT;
    if (!kind || qstore == CLBNB_DTYPE_COUNT || blocksize < 32 || blocksize > 4096 || (blocksize & (blocksize - 1))) {
        fprintf(stderr, "clbnb quantize: bad --type, --quant-storage or --blocksize (power of two 32..4096)\n");
        return 2;
    }
    clbnb_quant_type qt = kind == 1 ? CLBNB_QUANT_NF4 : CLBNB_QUANT_FP4;
    clbnb_file_error fe;
    clbnb_checkpoint *ck = NULL;
    clbnb_status s = clbnb_checkpoint_open(&ck, in, &fe);
    if (s != CLBNB_SUCCESS) return report(in, s, &fe);
    size_t n = clbnb_checkpoint_count(ck);
    plan *pl = calloc(n ? n : 1, sizeof *pl);
    clbnb_st_decl *decls = calloc(6 * (n ? n : 1), sizeof *decls);
    char(*names)[CLBNB_CKPT_NAME_MAX] = calloc(6 * (n ? n : 1), sizeof *names);
    output o = {out, 0, NULL};
    if (!pl || !decls || !names) {
        fprintf(stderr, "clbnb: out of memory\n");
        return 1;
    }
    size_t nd = 0, n_conv = 0, n_keep = 0, n_storage_kept = 0;
    double bytes_in = 0, bytes_out = 0;
    for (size_t i = 0; i < n; i++) {
        const clbnb_st_tensor *t = clbnb_checkpoint_tensor(ck, i);
        pl[i].t = t;
        pl[i].first_decl = nd;
        bytes_in += (double)t->nbytes;
        int conv = t->ndim == 2 && ends_with(t->name, ".weight") && is_float(t->dtype) && t->numel > 0 &&
                   strlen(t->name) + 48 < CLBNB_CKPT_NAME_MAX;
        for (size_t k = 0; conv && k < sizeof default_skips / sizeof default_skips[0]; k++)
            if (matches(t->name, default_skips[k])) conv = 0;
        for (size_t k = 0; conv && k < nskips; k++)
            if (matches(t->name, skips[k])) conv = 0;
        if (conv && kind != 3) {
            clbnb_quant_state_info info = {
                qt, blocksize,    to_clbnb(t->dtype), 2,   {(size_t)t->shape[0], (size_t)t->shape[1]},
                dq, dq ? 256 : 0, CLBNB_DTYPE_F32,    0.0f};
            size_t c = 0;
            if (clbnb_quant_state_declare(&info, qstore, t->name, decls + nd, names + nd, &c) == CLBNB_SUCCESS) {
                pl[i].convert = 1;
                pl[i].ndecl = c;
            } else {
                n_storage_kept++;
            }
        } else if (conv) {
            clbnb_st_decl *d = decls + nd;
            snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s", t->name);
            d[0] = (clbnb_st_decl){names[nd], CLBNB_ST_I8, 2, {t->shape[0], t->shape[1]}, 0};
            size_t stem = strlen(t->name) - strlen(".weight");
            snprintf(names[nd + 1], CLBNB_CKPT_NAME_MAX, "%.*s.SCB", (int)stem, t->name);
            d[1] = (clbnb_st_decl){names[nd + 1], CLBNB_ST_F32, 1, {t->shape[0]}, 0};
            snprintf(names[nd + 2], CLBNB_CKPT_NAME_MAX, "%.*s.weight_format", (int)stem, t->name);
            d[2] = (clbnb_st_decl){names[nd + 2], CLBNB_ST_U8, 0, {0}, 0};
            pl[i].convert = 2;
            pl[i].ndecl = 3;
        }
        if (!pl[i].convert) {
            snprintf(names[nd], CLBNB_CKPT_NAME_MAX, "%s", t->name);
            clbnb_st_decl *d = decls + nd;
            memset(d, 0, sizeof *d);
            d->name = names[nd];
            d->dtype = t->dtype;
            d->ndim = t->ndim;
            for (int k = 0; k < t->ndim; k++)
                d->shape[k] = t->shape[k];
            pl[i].ndecl = 1;
            n_keep++;
        } else {
            n_conv++;
        }
        for (size_t k = 0; k < pl[i].ndecl; k++)
            pl[i].out_bytes += clbnb_st_decl_bytes(&decls[nd + k]);
        nd += pl[i].ndecl;
    }
    if (n_storage_kept)
        fprintf(stderr,
                "clbnb: %zu weights kept in full precision: their packed size is not a multiple of the %s storage\n",
                n_storage_kept, storage);
    /* shards: greedy in checkpoint order, a weight's tensors stay together (like transformers) */
    if (max_shard) {
        uint64_t cur = 0;
        for (size_t i = 0; i < n; i++) {
            if (cur > 0 && cur + pl[i].out_bytes > max_shard) o.nshards++, cur = 0;
            pl[i].shard = o.nshards;
            cur += pl[i].out_bytes;
        }
        o.nshards++;
        o.files = calloc(o.nshards, sizeof *o.files);
        if (!o.files || (mkdir(out, 0777) != 0 && errno != EEXIST)) {
            fprintf(stderr, "clbnb: cannot create the output directory %s\n", out);
            return 1;
        }
        for (size_t k = 0; k < o.nshards; k++)
            snprintf(o.files[k], sizeof o.files[k], "model-%05zu-of-%05zu.safetensors", k + 1, o.nshards);
    }
    clbnb_context *ctx = n_conv ? cli_open_context(device) : NULL;
    if (n_conv && !ctx) return 1;
    cl_command_queue q = ctx ? clbnb_context_default_queue(ctx) : NULL;
    const clbnb_safetensors *first = clbnb_checkpoint_shard(ck, 0);
    const char *meta[2 * 33];
    size_t nmeta = 0;
    for (size_t i = 0; i < clbnb_safetensors_metadata_count(first) && nmeta < 32; i++, nmeta++)
        clbnb_safetensors_metadata_at(first, i, &meta[2 * nmeta], &meta[2 * nmeta + 1]);
    if (!clbnb_safetensors_metadata(first, "format")) meta[2 * nmeta] = "format", meta[2 * nmeta + 1] = "pt", nmeta++;

    progress pr = {0, n, 0, now_s(), 0, isatty(2)};
    clbnb_st_writer *w = NULL;
    size_t shard = 0, finished = 0;
    uint64_t total = 0;
    char path[4096];
    for (size_t i = 0; i < n && s == CLBNB_SUCCESS; i++) {
        const clbnb_st_tensor *t = pl[i].t;
        if (!w) { /* open the shard of tensor i: it holds the declarations of tensors i..j */
            size_t j = i;
            while (j + 1 < n && pl[j + 1].shard == pl[i].shard)
                j++;
            shard = pl[i].shard;
            shard_path(&o, shard, path, sizeof path);
            s = clbnb_st_writer_open(&w, path, decls + pl[i].first_decl,
                                     pl[j].first_decl + pl[j].ndecl - pl[i].first_decl, meta, nmeta, &fe);
            if (s != CLBNB_SUCCESS) break;
        }
        if (pl[i].convert == 0) {
            s = clbnb_checkpoint_copy_tensor(ck, t, w, (size_t)chunk, &fe);
            total += t->nbytes;
        } else if (pl[i].convert == 1) {
            size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]};
            clbnb_quant_state *qs = NULL;
            s = clbnb_quant_state_init(&qs, ctx, q, qt, blocksize, to_clbnb(t->dtype), 2, shape, dq);
            if (s == CLBNB_SUCCESS) s = clbnb_checkpoint_quantize_4bit(ck, t, ctx, q, qs, w, (size_t)chunk, &fe);
            clbnb_quant_state_info info;
            char json[1024];
            size_t jl = 0;
            if (s == CLBNB_SUCCESS) s = clbnb_quant_state_get_info(qs, &info);
            if (s == CLBNB_SUCCESS) s = clbnb_quant_state_json_write(&info, json, sizeof json, &jl);
            /* the declared bytes hold the deferred JSON's maximum: count its real length */
            const clbnb_st_decl *last = &decls[pl[i].first_decl + pl[i].ndecl - 1];
            total += pl[i].out_bytes - clbnb_st_decl_bytes(last) + jl;
            clbnb_quant_state_free(qs);
        } else {
            s = clbnb_checkpoint_quantize_int8(ck, t, ctx, q, w, (size_t)chunk, &fe);
            total += pl[i].out_bytes;
        }
        if (s != CLBNB_SUCCESS) {
            if (fe.message[0] == '\0') snprintf(fe.message, sizeof fe.message, "tensor '%s'", t->name);
            break;
        }
        if (i + 1 == n || pl[i + 1].shard != shard) {
            s = clbnb_st_writer_finish(w, &fe);
            w = NULL;
            if (s == CLBNB_SUCCESS) finished++;
        }
        pr.done++;
        pr.bytes += (double)t->nbytes;
        progress_show(&pr, 0);
    }
    if (w) clbnb_st_writer_abort(w);
    if (s == CLBNB_SUCCESS && o.nshards && !write_index(&o, pl, n, decls, total)) s = CLBNB_ERROR_IO;
    if (s != CLBNB_SUCCESS)
        for (size_t k = 0; k < finished && o.nshards; k++) { /* no partial sharded checkpoint is left behind */
            shard_path(&o, k, path, sizeof path);
            unlink(path);
        }
    bytes_out = (double)total;
    progress_show(&pr, 1);
    if (s != CLBNB_SUCCESS)
        report(out, s, &fe);
    else {
        printf("quantized %s -> %s (%s, blocksize %zu%s, storage %s): %zu tensors converted, %zu kept; %.2f MB -> %.2f "
               "MB (%.3fx)",
               in, out, type, blocksize, dq ? ", double quant" : "", storage, n_conv, n_keep, bytes_in / 1e6,
               bytes_out / 1e6, bytes_in > 0 ? bytes_out / bytes_in : 0.0);
        if (o.nshards) printf(", %zu shards + model.safetensors.index.json", o.nshards);
        printf("\n");
    }
    free(pl), free(decls), free(names), free(o.files);
    clbnb_checkpoint_close(ck);
    if (ctx) clbnb_context_free(ctx);
    return s == CLBNB_SUCCESS ? 0 : 1;
}

/* ---- dequantize ----------------------------------------------------------------------------- */
static const clbnb_linear_info *owner(const clbnb_linear_info *li, size_t nl, const char *name, int *is_weight) {
    static const char *aux[] = {".weight.absmax",
                                ".weight.quant_map",
                                ".weight.nested_absmax",
                                ".weight.nested_quant_map",
                                ".weight.quant_state.bitsandbytes__nf4",
                                ".weight.quant_state.bitsandbytes__fp4",
                                ".SCB",
                                ".weight_format"};
    for (size_t i = 0; i < nl; i++) {
        size_t pl = strlen(li[i].prefix);
        if (strncmp(name, li[i].prefix, pl) != 0) continue;
        const char *rest = name + pl;
        if (strcmp(rest, ".weight") == 0) {
            *is_weight = 1;
            return &li[i];
        }
        for (size_t k = 0; k < sizeof aux / sizeof aux[0]; k++)
            if (strcmp(rest, aux[k]) == 0) {
                *is_weight = 0;
                return &li[i];
            }
    }
    return NULL;
}

/* Dequantizes one linear weight into the writer piece by piece: at most `chunk` bytes of output
 * per device step (whole blocks for a QuantState, whole rows for int8), so the device and host hold
 * the quantized weight and one piece, not the whole output tensor. */
static clbnb_status dequantize_weight(clbnb_context *ctx, cl_command_queue q, const clbnb_linear_weights *lw,
                                      size_t rows, size_t cols, clbnb_dtype odt, uint64_t chunk, clbnb_st_writer *w,
                                      clbnb_file_error *fe) {
    const size_t nel = rows * cols, oes = clbnb_dtype_size(odt);
    /* elements per piece: a multiple of the unit, at least one unit */
    size_t unit = cols;
    if (lw->state) unit = lw->state->blocksize * (lw->state->nested ? lw->state->nested_blocksize : 1);
    size_t piece = (size_t)(chunk / oes) / unit * unit;
    if (piece < unit) piece = unit;
    if (piece > nel) piece = nel;
    cl_int e = CL_SUCCESS;
    cl_mem om = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, piece * oes, NULL, &e);
    if (e != CL_SUCCESS) return (clbnb_status)e;
    void *host = malloc(piece * oes);
    clbnb_status s = host ? CLBNB_SUCCESS : CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    for (size_t first = 0; first < nel && s == CLBNB_SUCCESS; first += piece) {
        const size_t count = nel - first < piece ? nel - first : piece;
        if (lw->state) {
            clbnb_vector pv = clbnb_vector_make(lw->weight, 0, clbnb_quant_state_data_bytes(lw->state), CLBNB_DTYPE_U8);
            clbnb_vector ov = clbnb_vector_make(om, 0, count, odt);
            s = clbnb_dequantize_state_range(ctx, q, &pv, lw->state, first, count, &ov, 0, NULL, NULL);
        } else {
            const size_t r0 = first / cols, nr = count / cols;
            clbnb_matrix qmat = clbnb_matrix_make(lw->weight, first, nr, cols, CLBNB_DTYPE_I8);
            clbnb_matrix omat = clbnb_matrix_make(om, 0, nr, cols, odt);
            clbnb_vector sv = clbnb_vector_make(lw->scb, r0 * 4, nr, CLBNB_DTYPE_F32);
            s = clbnb_dequantize_rowwise(ctx, q, &qmat, &sv, &omat, CLBNB_ROWWISE_LLM_INT8, 0, NULL, NULL);
        }
        if (s == CLBNB_SUCCESS)
            s = (clbnb_status)clEnqueueReadBuffer(q, om, CL_TRUE, 0, count * oes, host, 0, NULL, NULL);
        if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, host, count * oes, fe);
    }
    free(host);
    clReleaseMemObject(om);
    return s;
}

int cli_dequantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dtype = NULL, *device = NULL;
    uint64_t chunk = (uint64_t)64 << 20;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_option(argc, argv, &i, "--dtype")))
            dtype = v;
        else if ((v = cli_option(argc, argv, &i, "--device")))
            device = v;
        else if ((v = cli_option(argc, argv, &i, "--chunk"))) {
            if (!(chunk = parse_size(v)) || chunk > ((uint64_t)1 << 32)) {
                fprintf(stderr, "clbnb dequantize: bad --chunk '%s' (e.g. 64MiB, 4KiB; at most 4GiB)\n", v);
                return 2;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "clbnb dequantize: unknown option %s\n", argv[i]);
            return 2;
        } else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else
            return 2;
    }
    int forced = -1;
    if (dtype)
        forced = strcmp(dtype, "f16") == 0    ? CLBNB_DTYPE_F16
                 : strcmp(dtype, "bf16") == 0 ? CLBNB_DTYPE_BF16
                 : strcmp(dtype, "f32") == 0  ? CLBNB_DTYPE_F32
                                              : -2;
    if (!in || !out || forced == -2) {
        fprintf(stderr,
                "usage: clbnb dequantize IN OUT [--dtype f16|bf16|f32] [--device SEL] [--chunk SIZE (output per "
                "device step, default 64MiB)]\n");
        return 2;
    }
    clbnb_file_error fe;
    clbnb_checkpoint *ck = NULL;
    clbnb_status s = clbnb_checkpoint_open(&ck, in, &fe);
    if (s != CLBNB_SUCCESS) return report(in, s, &fe);
    clbnb_linear_info *li = NULL;
    size_t nl = 0;
    s = clbnb_checkpoint_list_linear(ck, &li, &nl, &fe);
    if (s != CLBNB_SUCCESS) return report(in, s, &fe);
    size_t n = clbnb_checkpoint_count(ck), nd = 0;
    clbnb_st_decl *decls = calloc(n ? n : 1, sizeof *decls);
    const clbnb_linear_info **own = calloc(n ? n : 1, sizeof *own);
    int *role = calloc(n ? n : 1, sizeof *role); /* 0 keep, 1 dequantized weight, 2 dropped */
    for (size_t i = 0; i < n; i++) {
        const clbnb_st_tensor *t = clbnb_checkpoint_tensor(ck, i);
        int isw = 0;
        own[i] = owner(li, nl, t->name, &isw);
        role[i] = own[i] ? (isw ? 1 : 2) : 0;
        if (role[i] == 2) continue;
        clbnb_st_decl *d = &decls[nd++];
        d->name = t->name;
        if (role[i] == 1) {
            d->dtype = clbnb_st_dtype_from_clbnb(forced >= 0 ? (clbnb_dtype)forced : own[i]->dtype);
            d->ndim = 2;
            d->shape[0] = own[i]->out_features;
            d->shape[1] = own[i]->in_features;
        } else {
            d->dtype = t->dtype;
            d->ndim = t->ndim;
            for (int k = 0; k < t->ndim; k++)
                d->shape[k] = t->shape[k];
        }
    }
    clbnb_context *ctx = nl ? cli_open_context(device) : NULL;
    if (nl && !ctx) return 1;
    cl_command_queue q = ctx ? clbnb_context_default_queue(ctx) : NULL;
    clbnb_st_writer *w = NULL;
    const char *meta[2] = {"format", "pt"};
    s = clbnb_st_writer_open(&w, out, decls, nd, meta, 1, &fe);
    if (s != CLBNB_SUCCESS) return report(out, s, &fe);
    progress pr = {0, n, 0, now_s(), 0, isatty(2)};
    size_t k = 0;
    for (size_t i = 0; i < n && s == CLBNB_SUCCESS; i++) {
        const clbnb_st_tensor *t = clbnb_checkpoint_tensor(ck, i);
        if (role[i] == 0) s = clbnb_st_writer_write(w, t->data, t->nbytes, &fe);
        if (role[i] == 1) {
            clbnb_linear_weights lw;
            s = clbnb_checkpoint_load_linear(ck, ctx, q, own[i]->prefix, &lw, &fe);
            clbnb_dtype odt = (clbnb_dtype)clbnb_st_dtype_to_clbnb(decls[k].dtype);
            if (s == CLBNB_SUCCESS)
                s = dequantize_weight(ctx, q, &lw, own[i]->out_features, own[i]->in_features, odt, chunk, w, &fe);
            clbnb_linear_weights_release(&lw);
        }
        if (role[i] != 2) k++;
        pr.done++;
        pr.bytes += (double)t->nbytes;
        progress_show(&pr, 0);
    }
    if (s == CLBNB_SUCCESS)
        s = clbnb_st_writer_finish(w, &fe);
    else
        clbnb_st_writer_abort(w);
    progress_show(&pr, 1);
    if (s != CLBNB_SUCCESS)
        report(out, s, &fe);
    else
        printf("dequantized %s -> %s: %zu quantized weights restored, %zu tensors written\n", in, out, nl, nd);
    free(decls), free(own), free(role), free(li);
    clbnb_checkpoint_close(ck);
    if (ctx) clbnb_context_free(ctx);
    return s == CLBNB_SUCCESS ? 0 : 1;
}
