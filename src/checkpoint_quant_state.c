/* checkpoint_quant_state.c: bitsandbytes QuantState <-> checkpoint keys (spec 4.2-4.4), and the
 * loader of quantized linear weights. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_internal.h"

/* ---- Python float repr ------------------------------------------------------------------------ */
void clbnb_format_python_float(float f, char *buf, size_t size) {
    if (!buf || size == 0) return;
    double d = (double)f;
    if (isnan(d)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, size, d < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (d == 0.0) {
        snprintf(buf, size, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp = [-]D[.DDD]e[+-]XX: digits and exponent */
    const char *s = tmp;
    int neg = 0;
    if (*s == '-') neg = 1, s++;
    char digits[32];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    int e = atoi(s + 1);
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > e + 1)
                for (int i = e + 1; i < nd; i++)
                    out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -e - 1; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    snprintf(buf, size, "%s", out);
}

/* ---- JSON ------------------------------------------------------------------------------------- */
static const char *torch_dtype_name(clbnb_dtype d) {
    return d == CLBNB_DTYPE_F32    ? "float32"
           : d == CLBNB_DTYPE_F16  ? "float16"
           : d == CLBNB_DTYPE_BF16 ? "bfloat16"
                                   : NULL;
}
static int torch_dtype_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "float32") == 0) return CLBNB_DTYPE_F32;
    if (strcmp(s, "float16") == 0) return CLBNB_DTYPE_F16;
    if (strcmp(s, "bfloat16") == 0) return CLBNB_DTYPE_BF16;
    return -1;
}
static int bs4_ok(size_t bs) { return bs >= 32 && bs <= 4096 && (bs & (bs - 1)) == 0; }

clbnb_status clbnb_quant_state_json_write(const clbnb_quant_state_info *in, char *buf, size_t size, size_t *len) {
    if (!in || !len || (!buf && size)) return CLBNB_ERROR_NULL_ARGUMENT;
    if (in->quant_type != CLBNB_QUANT_NF4 && in->quant_type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!torch_dtype_name(in->dtype) || (in->nested && in->nested_dtype != CLBNB_DTYPE_F32))
        return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (in->ndim < 0 || in->ndim > CLBNB_MAX_DIMS) return CLBNB_ERROR_INVALID_SHAPE;
    char tmp[1024];
    size_t o = 0;
    o += (size_t)snprintf(
        tmp + o, sizeof tmp - o, "{\"quant_type\": \"%s\", \"blocksize\": %zu, \"dtype\": \"%s\", \"shape\": [",
        in->quant_type == CLBNB_QUANT_NF4 ? "nf4" : "fp4", in->blocksize, torch_dtype_name(in->dtype));
    for (int i = 0; i < in->ndim; i++)
        o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s%zu", i ? ", " : "", in->shape[i]);
    o += (size_t)snprintf(tmp + o, sizeof tmp - o, "]");
    if (in->nested) {
        char f[64];
        clbnb_format_python_float(in->nested_offset, f, sizeof f);
        o += (size_t)snprintf(tmp + o, sizeof tmp - o,
                              ", \"nested_blocksize\": %zu, \"nested_dtype\": \"float32\", \"nested_offset\": %s",
                              in->nested_blocksize, f);
    }
    o += (size_t)snprintf(tmp + o, sizeof tmp - o, "}");
    *len = o;
    if (size > o)
        memcpy(buf, tmp, o + 1);
    else if (size)
        return CLBNB_ERROR_BUFFER_TOO_SMALL;
    return CLBNB_SUCCESS;
}

#define QS_ERR(...) clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE, NULL, __VA_ARGS__)

static int get_size(const cJSON *v, size_t *out) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= 9007199254740992.0 ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return 0;
    *out = (size_t)v->valuedouble;
    return 1;
}

clbnb_status clbnb_quant_state_json_parse(const char *json, size_t len, clbnb_quant_state_info *out,
                                          clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!json || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, NULL, "QuantState JSON is malformed");
    }
    static const char *valid[] = {"quant_type",       "blocksize",    "dtype",        "shape",
                                  "nested_blocksize", "nested_dtype", "nested_offset"};
    clbnb_status s = CLBNB_SUCCESS;
    const cJSON *item[7] = {0};
    for (const cJSON *e = root->child; e && s == CLBNB_SUCCESS; e = e->next) {
        size_t k = 0;
        while (k < 7 && strcmp(e->string, valid[k]) != 0)
            k++;
        if (k == 7)
            s = QS_ERR("QuantState JSON: unexpected key \"%.64s\"", e->string);
        else if (item[k])
            s = QS_ERR("QuantState JSON: key \"%s\" appears twice", valid[k]);
        else
            item[k] = e;
    }
    for (int k = 0; k < 4 && s == CLBNB_SUCCESS; k++)
        if (!item[k]) s = QS_ERR("QuantState JSON: missing \"%s\"", valid[k]);
    if (s == CLBNB_SUCCESS) {
        const char *qt = cJSON_IsString(item[0]) ? item[0]->valuestring : NULL;
        if (qt && strcmp(qt, "nf4") == 0)
            out->quant_type = CLBNB_QUANT_NF4;
        else if (qt && strcmp(qt, "fp4") == 0)
            out->quant_type = CLBNB_QUANT_FP4;
        else
            s = QS_ERR("QuantState JSON: quant_type must be \"nf4\" or \"fp4\"");
    }
    if (s == CLBNB_SUCCESS && (!get_size(item[1], &out->blocksize) || !bs4_ok(out->blocksize)))
        s = clbnb_ferr(err, CLBNB_ERROR_INVALID_BLOCKSIZE, CLBNB_FERR_BAD_QUANT_STATE, NULL,
                       "QuantState JSON: blocksize must be a power of two in 32..4096");
    if (s == CLBNB_SUCCESS) {
        int d = torch_dtype_parse(cJSON_IsString(item[2]) ? item[2]->valuestring : NULL);
        if (d < 0)
            s = clbnb_ferr(err, CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_QUANT_STATE, NULL,
                           "QuantState JSON: dtype must be \"float32\", \"float16\" or \"bfloat16\"");
        else
            out->dtype = (clbnb_dtype)d;
    }
    if (s == CLBNB_SUCCESS) {
        int nd = cJSON_IsArray(item[3]) ? cJSON_GetArraySize(item[3]) : -1;
        if (nd < 1 || nd > CLBNB_MAX_DIMS)
            s = QS_ERR("QuantState JSON: shape must be an array of 1..%d integers", CLBNB_MAX_DIMS);
        out->ndim = nd;
        size_t numel = 1;
        int i = 0;
        for (const cJSON *v = s == CLBNB_SUCCESS ? item[3]->child : NULL; v; v = v->next, i++) {
            if (!get_size(v, &out->shape[i]) || out->shape[i] == 0) {
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_BAD_QUANT_STATE, NULL,
                               "QuantState JSON: shape[%d] is not a positive integer", i);
                break;
            }
            if (clbnb_mul_overflows(numel, out->shape[i], &numel) || numel > (SIZE_MAX >> 3)) {
                s = clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, NULL,
                               "QuantState JSON: shape product overflows");
                break;
            }
        }
    }
    int nn = (item[4] != NULL) + (item[5] != NULL) + (item[6] != NULL);
    if (s == CLBNB_SUCCESS && nn != 0 && nn != 3)
        s = QS_ERR("QuantState JSON: nested_blocksize, nested_dtype and nested_offset must come together");
    if (s == CLBNB_SUCCESS && nn == 3) {
        out->nested = 1;
        if (!get_size(item[4], &out->nested_blocksize) || out->nested_blocksize < 16 || out->nested_blocksize > 65536 ||
            (out->nested_blocksize & (out->nested_blocksize - 1)))
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_BLOCKSIZE, CLBNB_FERR_BAD_QUANT_STATE, NULL,
                           "QuantState JSON: nested_blocksize must be a power of two in 16..65536");
        else if (!cJSON_IsString(item[5]) || strcmp(item[5]->valuestring, "float32") != 0)
            s = clbnb_ferr(err, CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_QUANT_STATE, NULL,
                           "QuantState JSON: nested_dtype must be \"float32\"");
        else if (!cJSON_IsNumber(item[6]) || !isfinite(item[6]->valuedouble))
            s = QS_ERR("QuantState JSON: nested_offset must be a finite number");
        else {
            out->nested_dtype = CLBNB_DTYPE_F32;
            out->nested_offset = (float)item[6]->valuedouble;
        }
    }
    cJSON_Delete(root);
    if (s != CLBNB_SUCCESS) memset(out, 0, sizeof *out);
    return s;
}

clbnb_status clbnb_quant_state_get_info(const clbnb_quant_state *qs, clbnb_quant_state_info *out) {
    if (!qs || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    if (qs->quant_type != CLBNB_QUANT_NF4 && qs->quant_type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (qs->nested && !qs->offset_valid) return CLBNB_ERROR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    out->quant_type = qs->quant_type;
    out->blocksize = qs->blocksize;
    out->dtype = qs->dtype;
    out->ndim = qs->ndim;
    for (int i = 0; i < qs->ndim && i < CLBNB_MAX_DIMS; i++)
        out->shape[i] = qs->shape[i];
    out->nested = qs->nested;
    if (qs->nested) {
        out->nested_blocksize = qs->nested_blocksize;
        out->nested_dtype = CLBNB_DTYPE_F32;
        out->nested_offset = qs->offset;
    }
    return CLBNB_SUCCESS;
}

/* ---- declaring / saving ----------------------------------------------------------------------- */
static size_t info_numel(const clbnb_quant_state_info *in) {
    size_t n = 1;
    for (int i = 0; i < in->ndim; i++)
        n *= in->shape[i];
    return n;
}

static const char *qs_suffix(clbnb_quant_type t) {
    return t == CLBNB_QUANT_NF4 ? ".quant_state.bitsandbytes__nf4" : ".quant_state.bitsandbytes__fp4";
}

clbnb_status clbnb_quant_state_declare(const clbnb_quant_state_info *info, clbnb_dtype storage, const char *wk,
                                       clbnb_st_decl decls[6], char names[6][CLBNB_CKPT_NAME_MAX], size_t *count) {
    if (!info || !wk || !decls || !names || !count) return CLBNB_ERROR_NULL_ARGUMENT;
    if (strlen(wk) + 40 >= CLBNB_CKPT_NAME_MAX) return CLBNB_ERROR_INVALID_ARGUMENT;
    if (storage != CLBNB_DTYPE_U8 && storage != CLBNB_DTYPE_F16 && storage != CLBNB_DTYPE_BF16 &&
        storage != CLBNB_DTYPE_F32)
        return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    char json[1024];
    size_t jl;
    CLBNB_TRY(clbnb_quant_state_json_write(info, json, sizeof json, &jl));
    size_t n = info_numel(info), packed = clbnb_packed_4bit_bytes(n), isz = clbnb_dtype_size(storage);
    if (packed % isz != 0) return CLBNB_ERROR_INVALID_SHAPE;
    size_t nb = clbnb_blocks_count(n, info->blocksize);
    memset(decls, 0, 6 * sizeof *decls);
    size_t k = 0;
#define DECL(suffix, dt, nd, s0, s1, def)                                                                              \
    do {                                                                                                               \
        snprintf(names[k], CLBNB_CKPT_NAME_MAX, "%s%s", wk, suffix);                                                   \
        decls[k].name = names[k];                                                                                      \
        decls[k].dtype = dt;                                                                                           \
        decls[k].ndim = nd;                                                                                            \
        decls[k].shape[0] = s0;                                                                                        \
        decls[k].shape[1] = s1;                                                                                        \
        decls[k].deferred = def;                                                                                       \
        k++;                                                                                                           \
    } while (0)
    DECL("", clbnb_st_dtype_from_clbnb(storage), 2, packed / isz, 1, 0);
    DECL(".absmax", info->nested ? CLBNB_ST_U8 : CLBNB_ST_F32, 1, nb, 0, 0);
    DECL(".quant_map", CLBNB_ST_F32, 1, 16, 0, 0);
    if (info->nested) {
        DECL(".nested_absmax", CLBNB_ST_F32, 1, clbnb_blocks_count(nb, info->nested_blocksize), 0, 0);
        DECL(".nested_quant_map", CLBNB_ST_F32, 1, 256, 0, 0);
        /* the JSON length depends on the offset: reserve room for the longest float repr */
        DECL(qs_suffix(info->quant_type), CLBNB_ST_U8, 1, jl + 32, 0, 1);
    } else {
        DECL(qs_suffix(info->quant_type), CLBNB_ST_U8, 1, jl, 0, 0);
    }
#undef DECL
    *count = k;
    return CLBNB_SUCCESS;
}

static clbnb_status read_mem(cl_command_queue q, cl_mem m, size_t bytes, void **out) {
    *out = malloc(bytes ? bytes : 1);
    if (!*out) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    cl_int e = bytes ? clEnqueueReadBuffer(q, m, CL_TRUE, 0, bytes, *out, 0, NULL, NULL) : CL_SUCCESS;
    if (e != CL_SUCCESS) {
        free(*out);
        *out = NULL;
        return (clbnb_status)e;
    }
    return CLBNB_SUCCESS;
}

/* Writes the tensors that follow W: absmax, quant_map, [nested_absmax, nested_quant_map] and the
 * JSON (deferred when nested). The offset must be synced. */
clbnb_status clbnb_quant_state_write_tail(clbnb_st_writer *w, cl_command_queue queue, const clbnb_quant_state *qs,
                                          const char *wk, clbnb_file_error *err) {
    clbnb_quant_state_info info;
    CLBNB_TRY(clbnb_quant_state_get_info(qs, &info));
    char json[1024];
    size_t jl;
    CLBNB_TRY(clbnb_quant_state_json_write(&info, json, sizeof json, &jl));
    clbnb_status s = CLBNB_SUCCESS;
    struct {
        cl_mem m;
        size_t bytes;
    } parts[4] = {{qs->absmax, qs->n_blocks * (qs->nested ? 1 : 4)},
                  {qs->code, 16 * 4},
                  {qs->nested_absmax, qs->nested ? clbnb_blocks_count(qs->n_blocks, qs->nested_blocksize) * 4 : 0},
                  {qs->nested_code, 256 * 4}};
    for (int i = 0; i < (qs->nested ? 4 : 2) && s == CLBNB_SUCCESS; i++) {
        void *p = NULL;
        s = read_mem(queue, parts[i].m, parts[i].bytes, &p);
        if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, p, parts[i].bytes, err);
        free(p);
    }
    if (s == CLBNB_SUCCESS) {
        if (qs->nested) {
            char name[CLBNB_CKPT_NAME_MAX];
            snprintf(name, sizeof name, "%s%s", wk, qs_suffix(qs->quant_type));
            s = clbnb_st_writer_put_deferred(w, name, json, jl, err);
        } else {
            s = clbnb_st_writer_write(w, json, jl, err);
        }
    }
    return s;
}

clbnb_status clbnb_quant_state_check_save(clbnb_st_writer *w, clbnb_context *ctx, cl_command_queue queue,
                                          const clbnb_quant_state *qs, const char *wk, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!w || !qs || !wk) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    if (qs->quant_type != CLBNB_QUANT_NF4 && qs->quant_type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    const char *next = clbnb_st_writer_next(w);
    if (!next || strcmp(next, wk) != 0)
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, wk,
                          "writer expects tensor '%s', not '%s'", next ? next : "(none)", wk);
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_quant_state_save(clbnb_st_writer *w, clbnb_context *ctx, cl_command_queue queue,
                                    clbnb_quant_state *qs, const clbnb_vector *packed, const char *wk,
                                    clbnb_file_error *err) {
    if (!packed || !packed->mem) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_quant_state_check_save(w, ctx, queue, qs, wk, err));
    size_t pb = clbnb_packed_4bit_bytes(qs->numel);
    CLBNB_TRY(clbnb_check_vector(packed, CLBNB_DT(CLBNB_DTYPE_U8), pb));
    if (qs->nested) CLBNB_TRY(clbnb_quant_state_sync_offset(qs, queue));
    void *buf = malloc(pb ? pb : 1);
    if (!buf) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    clbnb_status s =
        (clbnb_status)clEnqueueReadBuffer(queue, packed->mem, CL_TRUE, packed->offset, pb, buf, 0, NULL, NULL);
    if (s == CLBNB_SUCCESS) s = clbnb_st_writer_write(w, buf, pb, err);
    free(buf);
    if (s == CLBNB_SUCCESS) s = clbnb_quant_state_write_tail(w, queue, qs, wk, err);
    return s;
}

/* ---- loading ---------------------------------------------------------------------------------- */
#define NAME_ERR(st, code, name, ...) clbnb_ferr(err, st, code, name, __VA_ARGS__)

static const clbnb_st_tensor *need(const clbnb_checkpoint *ck, const char *wk, const char *suffix, clbnb_st_dtype dt,
                                   uint64_t numel, clbnb_status *s, clbnb_file_error *err) {
    char name[CLBNB_CKPT_NAME_MAX + 64];
    snprintf(name, sizeof name, "%s%s", wk, suffix);
    const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, name);
    if (!t)
        *s = NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_NOT_FOUND, name, "tensor '%s' is missing", name);
    else if (t->dtype != dt)
        *s = NAME_ERR(CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_QUANT_STATE, name, "tensor '%s' is %s, expected %s",
                      name, clbnb_st_dtype_name(t->dtype), clbnb_st_dtype_name(dt));
    else if (t->numel != numel)
        *s = NAME_ERR(CLBNB_ERROR_QUANT_STATE_MISMATCH, CLBNB_FERR_BAD_QUANT_STATE, name,
                      "tensor '%s' has %llu elements, the QuantState needs %llu", name, (unsigned long long)t->numel,
                      (unsigned long long)numel);
    else
        return t;
    return NULL;
}

/* Finds and parses W.quant_state.bitsandbytes__*. */
static clbnb_status find_state_json(const clbnb_checkpoint *ck, const char *wk, clbnb_quant_state_info *info,
                                    clbnb_file_error *err) {
    char n4[CLBNB_CKPT_NAME_MAX + 64], f4[CLBNB_CKPT_NAME_MAX + 64];
    snprintf(n4, sizeof n4, "%s%s", wk, qs_suffix(CLBNB_QUANT_NF4));
    snprintf(f4, sizeof f4, "%s%s", wk, qs_suffix(CLBNB_QUANT_FP4));
    const clbnb_st_tensor *a = clbnb_checkpoint_find(ck, n4), *b = clbnb_checkpoint_find(ck, f4);
    if (!a && !b)
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_NOT_FOUND, n4, "no QuantState for '%s' (%s or __fp4)",
                        wk, n4);
    if (a && b)
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE, n4,
                        "'%s' has both nf4 and fp4 QuantStates", wk);
    const clbnb_st_tensor *t = a ? a : b;
    if (t->dtype != CLBNB_ST_U8 || t->ndim != 1)
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE, t->name,
                        "tensor '%s' must be a 1-D U8 tensor of JSON bytes", t->name);
    clbnb_status s = clbnb_quant_state_json_parse(t->data, t->nbytes, info, err);
    if (s != CLBNB_SUCCESS) {
        if (err) snprintf(err->tensor, sizeof err->tensor, "%s", t->name);
        return s;
    }
    if (info->quant_type != (a ? CLBNB_QUANT_NF4 : CLBNB_QUANT_FP4))
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE, t->name,
                        "tensor '%s': quant_type in the JSON disagrees with the key", t->name);
    return CLBNB_SUCCESS;
}

static clbnb_status upload(cl_command_queue q, cl_mem m, const void *p, size_t bytes) {
    if (!bytes) return CLBNB_SUCCESS;
    cl_int e = clEnqueueWriteBuffer(q, m, CL_TRUE, 0, bytes, p, 0, NULL, NULL);
    return (clbnb_status)e;
}

clbnb_status clbnb_quant_state_load(clbnb_quant_state **out, clbnb_context *ctx, cl_command_queue queue,
                                    const clbnb_checkpoint *ck, const char *wk, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    if (!ck || !wk) return CLBNB_ERROR_NULL_ARGUMENT;
    if (strlen(wk) >= CLBNB_CKPT_NAME_MAX) return CLBNB_ERROR_INVALID_ARGUMENT;
    clbnb_quant_state_info info;
    CLBNB_TRY(find_state_json(ck, wk, &info, err));
    size_t n = info_numel(&info), nb = clbnb_blocks_count(n, info.blocksize);
    clbnb_status s = CLBNB_SUCCESS;
    const clbnb_st_tensor *am = need(ck, wk, ".absmax", info.nested ? CLBNB_ST_U8 : CLBNB_ST_F32, nb, &s, err);
    const clbnb_st_tensor *qm = am ? need(ck, wk, ".quant_map", CLBNB_ST_F32, 16, &s, err) : NULL;
    const clbnb_st_tensor *na = NULL, *nq = NULL;
    if (qm && info.nested) {
        na = need(ck, wk, ".nested_absmax", CLBNB_ST_F32, clbnb_blocks_count(nb, info.nested_blocksize), &s, err);
        nq = na ? need(ck, wk, ".nested_quant_map", CLBNB_ST_F32, 256, &s, err) : NULL;
    }
    if (s != CLBNB_SUCCESS) return s;
    clbnb_quant_state *qs = NULL;
    s = clbnb_quant_state_init(&qs, ctx, queue, info.quant_type, info.blocksize, info.dtype, info.ndim, info.shape,
                               info.nested);
    if (s != CLBNB_SUCCESS) return s;
    s = upload(queue, qs->absmax, am->data, am->nbytes);
    if (s == CLBNB_SUCCESS) s = upload(queue, qs->code, qm->data, qm->nbytes);
    if (s == CLBNB_SUCCESS && info.nested) {
        s = upload(queue, qs->nested_absmax, na->data, na->nbytes);
        if (s == CLBNB_SUCCESS) s = upload(queue, qs->nested_code, nq->data, nq->nbytes);
        if (s == CLBNB_SUCCESS) s = upload(queue, qs->offset_buf, &info.nested_offset, 4);
        qs->offset = info.nested_offset;
        qs->offset_valid = 1;
    }
    if (s != CLBNB_SUCCESS) {
        clbnb_quant_state_free(qs);
        return s;
    }
    *out = qs;
    return CLBNB_SUCCESS;
}

const char *clbnb_weight_format_name(int format) {
    static const char *names[] = {"row", "col32", "col_turing", "col_ampere"};
    return format >= 0 && format < 4 ? names[format] : NULL;
}

/* ---- linear weights --------------------------------------------------------------------------- */
static int ends_with(const char *s, const char *suffix, size_t *stem) {
    size_t a = strlen(s), b = strlen(suffix);
    if (a < b || strcmp(s + a - b, suffix) != 0) return 0;
    *stem = a - b;
    return 1;
}

static clbnb_status bias_info(const clbnb_checkpoint *ck, clbnb_linear_info *li, clbnb_file_error *err) {
    char name[CLBNB_CKPT_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.bias", li->prefix);
    const clbnb_st_tensor *b = clbnb_checkpoint_find(ck, name);
    li->has_bias = b != NULL;
    if (!b) return CLBNB_SUCCESS;
    int d = clbnb_st_dtype_to_clbnb(b->dtype);
    if (d != CLBNB_DTYPE_F32 && d != CLBNB_DTYPE_F16 && d != CLBNB_DTYPE_BF16)
        return NAME_ERR(CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_ENTRY, name,
                        "bias '%s' is %s (F32/F16/BF16 expected)", name, clbnb_st_dtype_name(b->dtype));
    if (b->numel != li->out_features)
        return NAME_ERR(CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_BAD_ENTRY, name,
                        "bias '%s' has %llu elements, expected %zu", name, (unsigned long long)b->numel,
                        li->out_features);
    li->bias_dtype = (clbnb_dtype)d;
    return CLBNB_SUCCESS;
}

static clbnb_status info_4bit(const clbnb_checkpoint *ck, const char *prefix, clbnb_linear_info *li,
                              clbnb_file_error *err) {
    char wk[CLBNB_CKPT_NAME_MAX + 16];
    snprintf(wk, sizeof wk, "%s.weight", prefix);
    clbnb_quant_state_info info;
    CLBNB_TRY(find_state_json(ck, wk, &info, err));
    if (info.ndim != 2)
        return NAME_ERR(CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_BAD_QUANT_STATE, wk,
                        "'%s': QuantState shape is %d-D, a linear weight is 2-D", wk, info.ndim);
    const clbnb_st_tensor *w = clbnb_checkpoint_find(ck, wk);
    if (!w) return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_NOT_FOUND, wk, "tensor '%s' is missing", wk);
    int sd = clbnb_st_dtype_to_clbnb(w->dtype);
    size_t pb = clbnb_packed_4bit_bytes(info.shape[0] * info.shape[1]);
    if (sd != CLBNB_DTYPE_U8 && sd != CLBNB_DTYPE_F16 && sd != CLBNB_DTYPE_BF16 && sd != CLBNB_DTYPE_F32)
        return NAME_ERR(CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_QUANT_STATE, wk,
                        "'%s': quant_storage %s not supported", wk, clbnb_st_dtype_name(w->dtype));
    if (w->nbytes != pb)
        return NAME_ERR(CLBNB_ERROR_QUANT_STATE_MISMATCH, CLBNB_FERR_BAD_QUANT_STATE, wk,
                        "'%s' holds %zu bytes, the QuantState's %zu x %zu elements pack into %zu", wk, w->nbytes,
                        info.shape[0], info.shape[1], pb);
    memset(li, 0, sizeof *li);
    snprintf(li->prefix, sizeof li->prefix, "%s", prefix);
    li->kind = info.quant_type == CLBNB_QUANT_NF4 ? CLBNB_LINEAR_NF4 : CLBNB_LINEAR_FP4;
    li->out_features = info.shape[0];
    li->in_features = info.shape[1];
    li->dtype = info.dtype;
    li->blocksize = info.blocksize;
    li->nested = info.nested;
    li->quant_storage = (clbnb_dtype)sd;
    return bias_info(ck, li, err);
}

static clbnb_status info_int8(const clbnb_checkpoint *ck, const char *prefix, clbnb_linear_info *li,
                              clbnb_file_error *err) {
    char name[CLBNB_CKPT_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const clbnb_st_tensor *w = clbnb_checkpoint_find(ck, name);
    if (!w) return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_NOT_FOUND, name, "tensor '%s' is missing", name);
    if (w->dtype != CLBNB_ST_I8 || w->ndim != 2 || w->numel == 0)
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name,
                        "'%s' must be a non-empty 2-D I8 tensor (CB)", name);
    if (w->shape[0] > SIZE_MAX / 2 || w->shape[1] > SIZE_MAX / 2)
        return NAME_ERR(CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, name, "'%s' too large", name);
    snprintf(name, sizeof name, "%s.SCB", prefix);
    const clbnb_st_tensor *scb = clbnb_checkpoint_find(ck, name);
    if (!scb) return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_NOT_FOUND, name, "tensor '%s' is missing", name);
    if (scb->dtype != CLBNB_ST_F32 || scb->numel != w->shape[0])
        return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name, "'%s' must be F32 [%llu]", name,
                        (unsigned long long)w->shape[0]);
    snprintf(name, sizeof name, "%s.weight_format", prefix);
    const clbnb_st_tensor *wf = clbnb_checkpoint_find(ck, name);
    if (wf) {
        size_t es = clbnb_st_dtype_size(wf->dtype);
        int integral = wf->dtype == CLBNB_ST_U8 || wf->dtype == CLBNB_ST_I8 || wf->dtype == CLBNB_ST_I32 ||
                       wf->dtype == CLBNB_ST_I64 || wf->dtype == CLBNB_ST_U32 || wf->dtype == CLBNB_ST_U64 ||
                       wf->dtype == CLBNB_ST_I16 || wf->dtype == CLBNB_ST_U16;
        if (!integral || wf->numel != 1)
            return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_WEIGHT_FORMAT, name,
                            "'%s' must be a single integer (0 = row)", name);
        uint64_t v = 0;
        const unsigned char *p = wf->data;
        for (size_t i = 0; i < es; i++)
            v |= (uint64_t)p[i] << (8 * i);
        if (v != 0) {
            const char *fmt = clbnb_weight_format_name(v < 4 ? (int)v : -1);
            return NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_WEIGHT_FORMAT, name,
                            "'%s' is %llu (%s): legacy 8-bit layouts (col32/col_turing/col_ampere) are not supported "
                            "since bitsandbytes 0.46; re-save the model in the row format",
                            name, (unsigned long long)v, fmt ? fmt : "unknown format");
        }
    }
    memset(li, 0, sizeof *li);
    snprintf(li->prefix, sizeof li->prefix, "%s", prefix);
    li->kind = CLBNB_LINEAR_INT8;
    li->out_features = (size_t)w->shape[0];
    li->in_features = (size_t)w->shape[1];
    li->dtype = CLBNB_DTYPE_F16;
    li->quant_storage = CLBNB_DTYPE_I8;
    return bias_info(ck, li, err);
}

static int by_prefix(const void *a, const void *b) {
    return strcmp(((const clbnb_linear_info *)a)->prefix, ((const clbnb_linear_info *)b)->prefix);
}

clbnb_status clbnb_checkpoint_list_linear(const clbnb_checkpoint *ck, clbnb_linear_info **list, size_t *count,
                                          clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!ck || !list || !count) return CLBNB_ERROR_NULL_ARGUMENT;
    *list = NULL;
    *count = 0;
    size_t n = clbnb_checkpoint_count(ck), k = 0;
    clbnb_linear_info *l = calloc(n ? n : 1, sizeof *l);
    if (!l) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    clbnb_status s = CLBNB_SUCCESS;
    for (size_t i = 0; i < n && s == CLBNB_SUCCESS; i++) {
        const char *name = clbnb_checkpoint_tensor(ck, i)->name;
        size_t stem;
        char prefix[CLBNB_CKPT_NAME_MAX];
        int is4 = ends_with(name, ".weight.quant_state.bitsandbytes__nf4", &stem) ||
                  ends_with(name, ".weight.quant_state.bitsandbytes__fp4", &stem);
        int is8 = !is4 && ends_with(name, ".SCB", &stem);
        if (!is4 && !is8) continue;
        if (stem >= sizeof prefix) {
            s = NAME_ERR(CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name, "tensor name too long");
            break;
        }
        memcpy(prefix, name, stem);
        prefix[stem] = '\0';
        int dup = 0;
        for (size_t j = 0; j < k; j++)
            dup |= strcmp(l[j].prefix, prefix) == 0;
        if (dup) continue; /* both nf4 and fp4 keys: reported by info_4bit of the first */
        s = is4 ? info_4bit(ck, prefix, &l[k], err) : info_int8(ck, prefix, &l[k], err);
        if (s == CLBNB_SUCCESS) k++;
    }
    if (s != CLBNB_SUCCESS) {
        free(l);
        return s;
    }
    qsort(l, k, sizeof *l, by_prefix);
    *list = l;
    *count = k;
    return CLBNB_SUCCESS;
}

void clbnb_linear_weights_release(clbnb_linear_weights *w) {
    if (!w) return;
    if (w->weight) clReleaseMemObject(w->weight);
    if (w->scb) clReleaseMemObject(w->scb);
    if (w->bias) clReleaseMemObject(w->bias);
    clbnb_quant_state_free(w->state);
    memset(w, 0, sizeof *w);
}

static cl_mem make_buffer(clbnb_context *ctx, const void *p, size_t bytes, clbnb_status *s) {
    cl_int e = CL_SUCCESS;
    cl_mem m =
        clCreateBuffer(clbnb_context_cl_context(ctx), CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, (void *)p, &e);
    if (e != CL_SUCCESS) *s = (clbnb_status)e;
    return m;
}

clbnb_status clbnb_checkpoint_load_linear(const clbnb_checkpoint *ck, clbnb_context *ctx, cl_command_queue queue,
                                          const char *prefix, clbnb_linear_weights *out, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    memset(out, 0, sizeof *out);
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    if (!ck || !prefix) return CLBNB_ERROR_NULL_ARGUMENT;
    if (strlen(prefix) + 64 >= CLBNB_CKPT_NAME_MAX) return CLBNB_ERROR_INVALID_ARGUMENT;
    char name[CLBNB_CKPT_NAME_MAX + 16];
    snprintf(name, sizeof name, "%s.SCB", prefix);
    int is8 = clbnb_checkpoint_find(ck, name) != NULL;
    clbnb_linear_info li;
    CLBNB_TRY(is8 ? info_int8(ck, prefix, &li, err) : info_4bit(ck, prefix, &li, err));
    clbnb_status s = CLBNB_SUCCESS;
    out->info = li;
    snprintf(name, sizeof name, "%s.weight", prefix);
    const clbnb_st_tensor *w = clbnb_checkpoint_find(ck, name);
    out->weight = make_buffer(ctx, w->data, w->nbytes, &s);
    if (s == CLBNB_SUCCESS && is8) {
        snprintf(name, sizeof name, "%s.SCB", prefix);
        const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, name);
        out->scb = make_buffer(ctx, t->data, t->nbytes, &s);
    } else if (s == CLBNB_SUCCESS) {
        snprintf(name, sizeof name, "%s.weight", prefix);
        s = clbnb_quant_state_load(&out->state, ctx, queue, ck, name, err);
    }
    if (s == CLBNB_SUCCESS && li.has_bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, name);
        out->bias = make_buffer(ctx, t->data, t->nbytes, &s);
    }
    if (s != CLBNB_SUCCESS) {
        clbnb_linear_weights_release(out);
        return s;
    }
    return CLBNB_SUCCESS;
}
