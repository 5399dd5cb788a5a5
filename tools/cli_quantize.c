/* cli_quantize.c: `clbnb quantize` (a Hugging Face checkpoint -> bitsandbytes 4-bit / 8-bit
 * safetensors) and `clbnb dequantize` (back to f16/bf16/f32). Both stream tensor by tensor. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 255) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static float to_float(const void *p, size_t i, clbnb_st_dtype d) {
    if (d == CLBNB_ST_F32) {
        float f;
        memcpy(&f, (const char *)p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    if (d == CLBNB_ST_BF16) {
        uint32_t x = (uint32_t)h << 16;
        float f;
        memcpy(&f, &x, 4);
        return f;
    }
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu, x;
    if (e == 31)
        x = sign | 0x7f800000u | (m << 13);
    else if (e == 0) {
        float f = (float)m * (1.0f / 16777216.0f);
        return sign ? -f : f;
    } else
        x = sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

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
} plan;

static clbnb_dtype to_clbnb(clbnb_st_dtype d) { return (clbnb_dtype)clbnb_st_dtype_to_clbnb(d); }

int cli_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL, *device = NULL, *storage = "u8";
    size_t blocksize = 64;
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
        else if ((v = cli_option(argc, argv, &i, "--skip"))) {
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
        fprintf(stderr, "usage: clbnb quantize IN OUT --type nf4|fp4|int8 [--blocksize N] [--double-quant]\n"
                        "       [--quant-storage u8|f16|bf16|f32] [--skip PATTERN]... [--device SEL]\n");
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
        nd += pl[i].ndecl;
    }
    if (n_storage_kept)
        fprintf(stderr,
                "clbnb: %zu weights kept in full precision: their packed size is not a multiple of the %s storage\n",
                n_storage_kept, storage);
    clbnb_context *ctx = n_conv ? cli_open_context(device) : NULL;
    if (n_conv && !ctx) return 1;
    cl_command_queue q = ctx ? clbnb_context_default_queue(ctx) : NULL;
    const clbnb_safetensors *first = clbnb_checkpoint_shard(ck, 0);
    const char *meta[2 * 33];
    size_t nmeta = 0;
    for (size_t i = 0; i < clbnb_safetensors_metadata_count(first) && nmeta < 32; i++, nmeta++)
        clbnb_safetensors_metadata_at(first, i, &meta[2 * nmeta], &meta[2 * nmeta + 1]);
    if (!clbnb_safetensors_metadata(first, "format")) meta[2 * nmeta] = "format", meta[2 * nmeta + 1] = "pt", nmeta++;
    clbnb_st_writer *w = NULL;
    s = clbnb_st_writer_open(&w, out, decls, nd, meta, nmeta, &fe);
    if (s != CLBNB_SUCCESS) return report(out, s, &fe);

    progress pr = {0, n, 0, now_s(), 0, isatty(2)};
    for (size_t i = 0; i < n && s == CLBNB_SUCCESS; i++) {
        const clbnb_st_tensor *t = pl[i].t;
        if (pl[i].convert == 0) {
            s = clbnb_st_writer_write(w, t->data, t->nbytes, &fe);
            bytes_out += (double)t->nbytes;
        } else if (pl[i].convert == 1) {
            size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]}, pb = clbnb_packed_4bit_bytes(t->numel);
            clbnb_quant_state *qs = NULL;
            cl_int e = CL_SUCCESS;
            cl_mem xm = NULL, pm = NULL;
            s = clbnb_quant_state_init(&qs, ctx, q, qt, blocksize, to_clbnb(t->dtype), 2, shape, dq);
            if (s == CLBNB_SUCCESS) {
                xm = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, t->nbytes,
                                    (void *)t->data, &e);
                if (e == CL_SUCCESS)
                    pm = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, pb, NULL, &e);
                s = (clbnb_status)e;
            }
            /* the device holds its own copy now (COPY_HOST_PTR copies during creation): drop the mapped
             * pages so the input tensor is not resident twice */
            clbnb_checkpoint_release_pages(ck, t);
            clbnb_vector xv = clbnb_vector_make(xm, 0, (size_t)t->numel, to_clbnb(t->dtype));
            clbnb_vector pv = clbnb_vector_make(pm, 0, pb, CLBNB_DTYPE_U8);
            if (s == CLBNB_SUCCESS) s = clbnb_quantize_state(ctx, q, &xv, qs, &pv, 0, NULL, NULL);
            if (s == CLBNB_SUCCESS) s = clbnb_quant_state_save(w, ctx, q, qs, &pv, t->name, &fe);
            for (size_t k = 0; k < pl[i].ndecl; k++) {
                const clbnb_st_decl *d = &decls[pl[i].first_decl + k];
                size_t b = clbnb_st_dtype_size(d->dtype);
                for (int j = 0; j < d->ndim; j++)
                    b *= d->shape[j];
                bytes_out += (double)b; /* deferred JSON: its upper bound */
            }
            if (xm) clReleaseMemObject(xm);
            if (pm) clReleaseMemObject(pm);
            clbnb_quant_state_free(qs);
        } else {
            size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1], nel = (size_t)t->numel;
            /* bitsandbytes' Int8Params quantizes the fp16 copy of the weight */
            uint16_t *h = malloc(nel * 2);
            int8_t *cb = malloc(nel);
            float *scb = malloc(rows * 4);
            if (!h || !cb || !scb) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
            for (size_t k = 0; s == CLBNB_SUCCESS && k < nel; k++)
                if (t->dtype == CLBNB_ST_F16) /* tensor data need not be aligned in a safetensors file */
                    memcpy(&h[k], (const char *)t->data + 2 * k, 2);
                else
                    h[k] = f32_to_f16(to_float(t->data, k, t->dtype));
            clbnb_checkpoint_release_pages(ck, t); /* h holds the values now */
            cl_int e = CL_SUCCESS;
            cl_mem xm = NULL, qm = NULL, sm = NULL;
            if (s == CLBNB_SUCCESS) {
                cl_context cc = clbnb_context_cl_context(ctx);
                xm = clCreateBuffer(cc, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, nel * 2, h, &e);
                if (e == CL_SUCCESS) qm = clCreateBuffer(cc, CL_MEM_READ_WRITE, nel, NULL, &e);
                if (e == CL_SUCCESS) sm = clCreateBuffer(cc, CL_MEM_READ_WRITE, rows * 4, NULL, &e);
                s = (clbnb_status)e;
            }
            if (s == CLBNB_SUCCESS) {
                clbnb_matrix xmat = clbnb_matrix_make(xm, 0, rows, cols, CLBNB_DTYPE_F16);
                clbnb_matrix qmat = clbnb_matrix_make(qm, 0, rows, cols, CLBNB_DTYPE_I8);
                clbnb_vector sv = clbnb_vector_make(sm, 0, rows, CLBNB_DTYPE_F32);
                s = clbnb_quantize_rowwise(ctx, q, &xmat, &qmat, &sv, CLBNB_ROWWISE_LLM_INT8, 0.0f, NULL, NULL, 0, NULL,
                                           NULL);
            }
            if (s == CLBNB_SUCCESS) s = (clbnb_status)clEnqueueReadBuffer(q, qm, CL_TRUE, 0, nel, cb, 0, NULL, NULL);
            if (s == CLBNB_SUCCESS)
                s = (clbnb_status)clEnqueueReadBuffer(q, sm, CL_TRUE, 0, rows * 4, scb, 0, NULL, NULL);
            uint8_t zero = 0;
            if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, cb, nel, &fe);
            if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, scb, rows * 4, &fe);
            if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, &zero, 1, &fe);
            bytes_out += (double)(nel + rows * 4 + 1);
            if (xm) clReleaseMemObject(xm);
            if (qm) clReleaseMemObject(qm);
            if (sm) clReleaseMemObject(sm);
            free(h), free(cb), free(scb);
        }
        if (s != CLBNB_SUCCESS) {
            if (fe.message[0] == '\0') snprintf(fe.message, sizeof fe.message, "tensor '%s'", t->name);
            break;
        }
        clbnb_checkpoint_release_pages(ck, t);
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
        printf("quantized %s -> %s (%s, blocksize %zu%s, storage %s): %zu tensors converted, %zu kept; %.2f MB -> %.2f "
               "MB (%.3fx)\n",
               in, out, type, blocksize, dq ? ", double quant" : "", storage, n_conv, n_keep, bytes_in / 1e6,
               bytes_out / 1e6, bytes_in > 0 ? bytes_out / bytes_in : 0.0);
    free(pl), free(decls), free(names);
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

int cli_dequantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *dtype = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if ((v = cli_option(argc, argv, &i, "--dtype")))
            dtype = v;
        else if ((v = cli_option(argc, argv, &i, "--device")))
            device = v;
        else if (argv[i][0] == '-') {
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
        fprintf(stderr, "usage: clbnb dequantize IN OUT [--dtype f16|bf16|f32] [--device SEL]\n");
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
            size_t rows = own[i]->out_features, cols = own[i]->in_features, nel = rows * cols;
            size_t ob = nel * clbnb_dtype_size(odt);
            cl_int e = CL_SUCCESS;
            cl_mem om = NULL;
            if (s == CLBNB_SUCCESS) {
                om = clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE, ob, NULL, &e);
                s = (clbnb_status)e;
            }
            if (s == CLBNB_SUCCESS && lw.state) {
                clbnb_vector pv = clbnb_vector_make(lw.weight, 0, clbnb_packed_4bit_bytes(nel), CLBNB_DTYPE_U8);
                clbnb_vector ov = clbnb_vector_make(om, 0, nel, odt);
                s = clbnb_dequantize_state(ctx, q, &pv, lw.state, &ov, 0, NULL, NULL);
            } else if (s == CLBNB_SUCCESS) {
                clbnb_matrix qmat = clbnb_matrix_make(lw.weight, 0, rows, cols, CLBNB_DTYPE_I8);
                clbnb_matrix omat = clbnb_matrix_make(om, 0, rows, cols, odt);
                clbnb_vector sv = clbnb_vector_make(lw.scb, 0, rows, CLBNB_DTYPE_F32);
                s = clbnb_dequantize_rowwise(ctx, q, &qmat, &sv, &omat, CLBNB_ROWWISE_LLM_INT8, 0, NULL, NULL);
            }
            void *host = s == CLBNB_SUCCESS ? malloc(ob ? ob : 1) : NULL;
            if (s == CLBNB_SUCCESS && !host) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
            if (s == CLBNB_SUCCESS) s = (clbnb_status)clEnqueueReadBuffer(q, om, CL_TRUE, 0, ob, host, 0, NULL, NULL);
            if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, host, ob, &fe);
            free(host);
            if (om) clReleaseMemObject(om);
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
