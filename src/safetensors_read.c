/* safetensors_read.c: memory-mapped safetensors reader with strict header validation, and
 * checkpoints made of one file or of shards listed in a *.safetensors.index.json. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"

/* ---- errors ----------------------------------------------------------------------------------- */
clbnb_status clbnb_ferr(clbnb_file_error *err, clbnb_status status, clbnb_file_error_code code, const char *tensor,
                        const char *fmt, ...) {
    if (err) {
        err->code = code;
        snprintf(err->tensor, sizeof err->tensor, "%s", tensor ? tensor : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *clbnb_file_error_name(clbnb_file_error_code code) {
    static const char *names[] = {"none",
                                  "io",
                                  "truncated",
                                  "header_too_large",
                                  "header_not_object",
                                  "bad_json",
                                  "bad_entry",
                                  "duplicate_name",
                                  "unknown_dtype",
                                  "too_many_dims",
                                  "shape_overflow",
                                  "size_mismatch",
                                  "offsets_reversed",
                                  "offset_out_of_range",
                                  "overlap",
                                  "gap",
                                  "trailing_data",
                                  "bad_metadata",
                                  "not_found",
                                  "bad_quant_state",
                                  "bad_weight_format",
                                  "bad_index",
                                  "usage"};
    if ((unsigned)code >= sizeof names / sizeof names[0]) return "unknown";
    return names[code];
}

/* ---- dtypes ----------------------------------------------------------------------------------- */
static const struct {
    const char *name;
    size_t size;
    int clbnb;
} st_dtypes[CLBNB_ST_DTYPE_COUNT] = {{"BOOL", 1, -1},
                                     {"U8", 1, CLBNB_DTYPE_U8},
                                     {"I8", 1, CLBNB_DTYPE_I8},
                                     {"F8_E4M3", 1, -1},
                                     {"F8_E5M2", 1, -1},
                                     {"I16", 2, -1},
                                     {"U16", 2, -1},
                                     {"F16", 2, CLBNB_DTYPE_F16},
                                     {"BF16", 2, CLBNB_DTYPE_BF16},
                                     {"I32", 4, CLBNB_DTYPE_I32},
                                     {"U32", 4, -1},
                                     {"F32", 4, CLBNB_DTYPE_F32},
                                     {"F64", 8, -1},
                                     {"I64", 8, -1},
                                     {"U64", 8, -1}};

const char *clbnb_st_dtype_name(clbnb_st_dtype d) {
    return (unsigned)d < CLBNB_ST_DTYPE_COUNT ? st_dtypes[d].name : "?";
}
size_t clbnb_st_dtype_size(clbnb_st_dtype d) { return (unsigned)d < CLBNB_ST_DTYPE_COUNT ? st_dtypes[d].size : 0; }
int clbnb_st_dtype_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < CLBNB_ST_DTYPE_COUNT; i++)
        if (strcmp(name, st_dtypes[i].name) == 0) return i;
    return -1;
}
int clbnb_st_dtype_to_clbnb(clbnb_st_dtype d) { return (unsigned)d < CLBNB_ST_DTYPE_COUNT ? st_dtypes[d].clbnb : -1; }
clbnb_st_dtype clbnb_st_dtype_from_clbnb(clbnb_dtype d) {
    for (int i = 0; i < CLBNB_ST_DTYPE_COUNT; i++)
        if (st_dtypes[i].clbnb == (int)d) return (clbnb_st_dtype)i;
    return CLBNB_ST_DTYPE_COUNT;
}

/* ---- reader ----------------------------------------------------------------------------------- */
struct clbnb_safetensors {
    const unsigned char *base; /* whole file */
    size_t size;
    int mapped;
    const unsigned char *data; /* data section */
    size_t data_size;
    size_t count;
    clbnb_st_tensor *tensors;
    const clbnb_st_tensor **sorted; /* sorted by name (lookup) */
    size_t meta_count;
    char **meta; /* key, value pairs */
    char *names; /* storage */
};

static int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

static int by_name(const void *a, const void *b) {
    return strcmp((*(const clbnb_st_tensor *const *)a)->name, (*(const clbnb_st_tensor *const *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const clbnb_st_tensor *x = *(const clbnb_st_tensor *const *)a, *y = *(const clbnb_st_tensor *const *)b;
    int c = cmp_u64(x->offset, y->offset);
    return c ? c : cmp_u64(x->nbytes, y->nbytes);
}

/* Integer JSON number: non-negative, integral, < 2^53 (exactly representable). */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d >= 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

void clbnb_safetensors_close(clbnb_safetensors *st) {
    if (!st) return;
    if (st->mapped && st->base) munmap((void *)st->base, st->size);
    free(st->tensors);
    free(st->sorted);
    if (st->meta)
        for (size_t i = 0; i < 2 * st->meta_count; i++)
            free(st->meta[i]);
    free(st->meta);
    free(st->names);
    free(st);
}

/* Parses and validates the header of st (base/size set). */
static clbnb_status parse(clbnb_safetensors *st, clbnb_file_error *err) {
    if (st->size < 8)
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_TRUNCATED, NULL,
                          "file of %zu bytes is shorter than the 8-byte header length", st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | st->base[i];
    if (hlen > CLBNB_ST_MAX_HEADER)
        return clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_HEADER_TOO_LARGE, NULL,
                          "header length %llu exceeds the limit of %llu bytes", (unsigned long long)hlen,
                          (unsigned long long)CLBNB_ST_MAX_HEADER);
    if (hlen > st->size - 8)
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_TRUNCATED, NULL,
                          "header length %llu runs past the end of the %zu-byte file", (unsigned long long)hlen,
                          st->size);
    const char *h = (const char *)st->base + 8;
    if (hlen < 2 || h[0] != '{')
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_HEADER_NOT_OBJECT, NULL,
                          "header does not start with '{'");
    st->data = st->base + 8 + hlen;
    st->data_size = st->size - 8 - (size_t)hlen;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, NULL,
                          "header is not a valid JSON object");
    }
    for (const char *p = end; p && p < h + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, NULL,
                              "header has trailing bytes after the JSON object (at byte %zu)", (size_t)(p - h));
        }
    clbnb_status s = CLBNB_SUCCESS;
    size_t n = 0, names_bytes = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string) continue;
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) {
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_DUPLICATE_NAME, "__metadata__",
                               "__metadata__ appears twice");
                goto out;
            }
            meta = e;
            continue;
        }
        n++;
        names_bytes += strlen(e->string) + 1;
    }
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    st->sorted = calloc(n ? n : 1, sizeof *st->sorted);
    st->names = malloc(names_bytes ? names_bytes : 1);
    if (!st->tensors || !st->sorted || !st->names) {
        s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        goto out;
    }
    if (meta) {
        if (!cJSON_IsObject(meta)) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_METADATA, "__metadata__",
                           "__metadata__ is not an object");
            goto out;
        }
        size_t mc = 0;
        for (const cJSON *m = meta->child; m; m = m->next) {
            if (!cJSON_IsString(m) || !m->string) {
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_METADATA, "__metadata__",
                               "__metadata__ value of '%s' is not a string", m->string ? m->string : "");
                goto out;
            }
            mc++;
        }
        st->meta = calloc(2 * mc + 1, sizeof *st->meta);
        if (!st->meta) {
            s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
            goto out;
        }
        for (const cJSON *m = meta->child; m; m = m->next) {
            st->meta[2 * st->meta_count] = strdup(m->string);
            st->meta[2 * st->meta_count + 1] = strdup(m->valuestring);
            st->meta_count++;
            if (!st->meta[2 * st->meta_count - 2] || !st->meta[2 * st->meta_count - 1]) {
                s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
                goto out;
            }
        }
    }
    char *np = st->names;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!e->string || e == meta) continue;
        const char *name = e->string;
        clbnb_st_tensor *t = &st->tensors[st->count];
        size_t len = strlen(name) + 1;
        memcpy(np, name, len);
        t->name = np;
        np += len;
        st->sorted[st->count] = t;
        st->count++;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) ||
            cJSON_GetArraySize(off) != 2) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name,
                           "tensor '%s': entry needs \"dtype\" (string), \"shape\" (array) and \"data_offsets\" "
                           "(array of 2)",
                           name);
            goto out;
        }
        int d = clbnb_st_dtype_from_name(dt->valuestring);
        if (d < 0) {
            s = clbnb_ferr(err, CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_UNKNOWN_DTYPE, name,
                           "tensor '%s': unknown dtype \"%.32s\"", name, dt->valuestring);
            goto out;
        }
        t->dtype = (clbnb_st_dtype)d;
        int nd = cJSON_GetArraySize(sh);
        if (nd > CLBNB_ST_MAX_DIMS) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_TOO_MANY_DIMS, name,
                           "tensor '%s': %d dimensions (at most %d supported)", name, nd, CLBNB_ST_MAX_DIMS);
            goto out;
        }
        t->ndim = nd;
        int overflow = 0;
        uint64_t numel = 1;
        int i = 0;
        for (const cJSON *v = sh->child; v; v = v->next, i++) {
            uint64_t dim;
            double dv = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
            if (!(dv >= 0.0)) {
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name,
                               "tensor '%s': shape[%d] is not a non-negative integer", name, i);
                goto out;
            }
            if (dv >= 9007199254740992.0) {
                overflow = 1;
                t->shape[i] = UINT64_MAX;
                continue;
            }
            if (!json_uint(v, &dim)) {
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name,
                               "tensor '%s': shape[%d] is not an integer", name, i);
                goto out;
            }
            t->shape[i] = dim;
            if (dim != 0 && numel > UINT64_MAX / dim)
                overflow = 1;
            else
                numel *= dim;
        }
        /* a zero dimension makes the product 0 whatever the others are, but a dimension that
         * itself is absurd still counts as overflow */
        uint64_t bytes = 0;
        if (!overflow && numel > UINT64_MAX / st_dtypes[d].size) overflow = 1;
        if (!overflow) bytes = numel * st_dtypes[d].size;
        if (overflow || bytes > SIZE_MAX) {
            s = clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, name,
                           "tensor '%s': shape product times dtype size overflows 64 bits", name);
            goto out;
        }
        t->numel = numel;
        uint64_t b, en;
        if (!json_uint(off->child, &b) || !json_uint(off->child->next, &en)) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, name,
                           "tensor '%s': data_offsets are not non-negative integers", name);
            goto out;
        }
        if (b > en) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_OFFSETS_REVERSED, name,
                           "tensor '%s': data_offsets [%llu, %llu] end before they begin", name, (unsigned long long)b,
                           (unsigned long long)en);
            goto out;
        }
        if (en > st->data_size) {
            s = clbnb_ferr(err, CLBNB_ERROR_BUFFER_TOO_SMALL, CLBNB_FERR_OFFSET_OUT_OF_RANGE, name,
                           "tensor '%s': data_offsets [%llu, %llu] past the %zu-byte data section", name,
                           (unsigned long long)b, (unsigned long long)en, st->data_size);
            goto out;
        }
        if (en - b != bytes) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_SIZE_MISMATCH, name,
                           "tensor '%s': %llu bytes in data_offsets, but %s x %llu elements need %llu", name,
                           (unsigned long long)(en - b), st_dtypes[d].name, (unsigned long long)numel,
                           (unsigned long long)bytes);
            goto out;
        }
        t->offset = b;
        t->nbytes = (size_t)bytes;
        t->data = st->data + b;
    }
    /* duplicate names */
    qsort(st->sorted, st->count, sizeof *st->sorted, by_name);
    for (size_t i = 1; i < st->count; i++)
        if (strcmp(st->sorted[i]->name, st->sorted[i - 1]->name) == 0) {
            const char *nm = st->sorted[i]->name;
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_DUPLICATE_NAME, nm,
                           "tensor '%s' appears twice in the header", nm);
            goto out;
        }
    /* coverage: sorted by offsets, contiguous from 0 to the end of the data section */
    {
        const clbnb_st_tensor **ord = malloc((st->count ? st->count : 1) * sizeof *ord);
        if (!ord) {
            s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
            goto out;
        }
        for (size_t i = 0; i < st->count; i++)
            ord[i] = &st->tensors[i];
        qsort(ord, st->count, sizeof *ord, by_offset);
        uint64_t pos = 0;
        for (size_t i = 0; i < st->count && s == CLBNB_SUCCESS; i++) {
            const clbnb_st_tensor *t = ord[i];
            if (t->offset < pos)
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_OVERLAP, t->name,
                               "tensor '%s' (bytes %llu..%llu) overlaps '%s'", t->name, (unsigned long long)t->offset,
                               (unsigned long long)(t->offset + t->nbytes), ord[i - 1]->name);
            else if (t->offset > pos)
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_GAP, t->name,
                               "tensor '%s' starts at byte %llu, leaving bytes %llu..%llu unused", t->name,
                               (unsigned long long)t->offset, (unsigned long long)pos, (unsigned long long)t->offset);
            pos = t->offset + t->nbytes;
        }
        free(ord);
        if (s == CLBNB_SUCCESS && pos != st->data_size)
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_TRAILING_DATA, NULL,
                           "data section has %zu bytes but its tensors cover %llu", st->data_size,
                           (unsigned long long)pos);
    }
out:
    cJSON_Delete(root);
    return s;
}

clbnb_status clbnb_safetensors_open_memory(clbnb_safetensors **out, const void *data, size_t size,
                                           clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    if (!data && size) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_safetensors *st = calloc(1, sizeof *st);
    if (!st) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    st->base = data;
    st->size = size;
    clbnb_status s = parse(st, err);
    if (s != CLBNB_SUCCESS) {
        clbnb_safetensors_close(st);
        return s;
    }
    *out = st;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_safetensors_open(clbnb_safetensors **out, const char *path, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    if (!path) return CLBNB_ERROR_NULL_ARGUMENT;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "%s is not a regular file", path);
    }
    clbnb_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        close(fd);
        return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *p = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            free(st);
            return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "cannot map %s: %s", path, strerror(errno));
        }
        /* checkpoints are mostly streamed front to back (conversion, loading): ask for read-ahead */
        madvise(p, st->size, MADV_SEQUENTIAL);
        st->base = p;
        st->mapped = 1;
    }
    close(fd);
    clbnb_status s = parse(st, err);
    if (s != CLBNB_SUCCESS) {
        clbnb_safetensors_close(st);
        return s;
    }
    *out = st;
    return CLBNB_SUCCESS;
}

size_t clbnb_safetensors_count(const clbnb_safetensors *st) { return st ? st->count : 0; }
const clbnb_st_tensor *clbnb_safetensors_tensor(const clbnb_safetensors *st, size_t i) {
    return st && i < st->count ? &st->tensors[i] : NULL;
}
const clbnb_st_tensor *clbnb_safetensors_find(const clbnb_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->sorted[mid]->name, name);
        if (c == 0) return st->sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
size_t clbnb_safetensors_metadata_count(const clbnb_safetensors *st) { return st ? st->meta_count : 0; }
int clbnb_safetensors_metadata_at(const clbnb_safetensors *st, size_t i, const char **key, const char **value) {
    if (!st || i >= st->meta_count) return 0;
    if (key) *key = st->meta[2 * i];
    if (value) *value = st->meta[2 * i + 1];
    return 1;
}
const char *clbnb_safetensors_metadata(const clbnb_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->meta_count; i++)
        if (strcmp(st->meta[2 * i], key) == 0) return st->meta[2 * i + 1];
    return NULL;
}

/* Only whole pages inside [p, p + n) are dropped, so a neighbouring tensor's pages stay. */
static void release_mapped(const clbnb_safetensors *st, const void *p, size_t n) {
    if (!st->mapped || n == 0) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + n) & ~(page - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

void clbnb_safetensors_release_pages(const clbnb_safetensors *st, const clbnb_st_tensor *t) {
    if (!st || !t) return;
    release_mapped(st, t->data, t->nbytes);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */
struct clbnb_checkpoint {
    size_t nshards;
    clbnb_safetensors **shards;
    size_t count;
    const clbnb_st_tensor **all;    /* in shard order, header order */
    size_t *owner;                  /* shard of all[i] */
    const clbnb_st_tensor **byname; /* sorted by name */
};

void clbnb_checkpoint_close(clbnb_checkpoint *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->nshards; i++)
        clbnb_safetensors_close(ck->shards[i]);
    free(ck->shards);
    free(ck->all);
    free(ck->owner);
    free(ck->byname);
    free(ck);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static clbnb_status read_small_file(const char *path, char **out, size_t *len, clbnb_file_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        if (cap >= (size_t)CLBNB_ST_MAX_HEADER) {
            free(buf);
            fclose(f);
            return clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_HEADER_TOO_LARGE, path, "%s is too large",
                              path);
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    if (bad) {
        free(buf);
        return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "cannot read %s", path);
    }
    *out = buf;
    *len = n;
    return CLBNB_SUCCESS;
}

static clbnb_status add_shard(clbnb_checkpoint *ck, const char *path, clbnb_file_error *err) {
    clbnb_safetensors **ns = realloc(ck->shards, (ck->nshards + 1) * sizeof *ns);
    if (!ns) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    ck->shards = ns;
    clbnb_status s = clbnb_safetensors_open(&ck->shards[ck->nshards], path, err);
    if (s != CLBNB_SUCCESS) return s;
    ck->nshards++;
    return CLBNB_SUCCESS;
}

static clbnb_status open_index(clbnb_checkpoint *ck, const char *path, clbnb_file_error *err) {
    char *text = NULL;
    size_t len = 0;
    CLBNB_TRY(read_small_file(path, &text, &len, err));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, root ? CLBNB_FERR_BAD_INDEX : CLBNB_FERR_BAD_JSON, path,
                          "%s: %s", path, root ? "no \"weight_map\" object" : "invalid JSON");
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        dir[0] = '\0';
    clbnb_status s = CLBNB_SUCCESS;
    /* distinct shard files, in first-appearance order */
    const char **files = calloc((size_t)cJSON_GetArraySize(wm) + 1, sizeof *files);
    size_t nfiles = 0;
    if (!files) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    for (const cJSON *e = wm->child; e && s == CLBNB_SUCCESS; e = e->next) {
        if (!cJSON_IsString(e) || !e->valuestring[0] || strchr(e->valuestring, '/') ||
            strcmp(e->valuestring, "..") == 0 || strcmp(e->valuestring, ".") == 0) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_INDEX, e->string ? e->string : "",
                           "%s: weight_map entry '%s' is not a plain shard file name", path,
                           e->string ? e->string : "");
            break;
        }
        size_t k = 0;
        while (k < nfiles && strcmp(files[k], e->valuestring) != 0)
            k++;
        if (k == nfiles) files[nfiles++] = e->valuestring;
    }
    for (size_t k = 0; k < nfiles && s == CLBNB_SUCCESS; k++) {
        char full[8192];
        snprintf(full, sizeof full, "%s%s", dir, files[k]);
        s = add_shard(ck, full, err);
    }
    /* every weight_map entry must be in the shard it names */
    for (const cJSON *e = wm->child; e && s == CLBNB_SUCCESS; e = e->next) {
        size_t k = 0;
        while (k < nfiles && strcmp(files[k], e->valuestring) != 0)
            k++;
        if (!clbnb_safetensors_find(ck->shards[k], e->string))
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_INDEX, e->string,
                           "%s: tensor '%s' is not in shard %s", path, e->string, e->valuestring);
    }
    free(files);
    cJSON_Delete(root);
    return s;
}

clbnb_status clbnb_checkpoint_open(clbnb_checkpoint **out, const char *path, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    if (!path) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    clbnb_status s;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        char p[8192];
        snprintf(p, sizeof p, "%s/model.safetensors", path);
        if (stat(p, &sb) == 0)
            s = add_shard(ck, p, err);
        else {
            snprintf(p, sizeof p, "%s/model.safetensors.index.json", path);
            s = open_index(ck, p, err);
        }
    } else if (ends_with(path, ".json")) {
        s = open_index(ck, path, err);
    } else {
        s = add_shard(ck, path, err);
    }
    if (s == CLBNB_SUCCESS) {
        for (size_t i = 0; i < ck->nshards; i++)
            ck->count += clbnb_safetensors_count(ck->shards[i]);
        size_t n = ck->count ? ck->count : 1;
        ck->all = malloc(n * sizeof *ck->all);
        ck->byname = malloc(n * sizeof *ck->byname);
        ck->owner = malloc(n * sizeof *ck->owner);
        if (!ck->all || !ck->byname || !ck->owner) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    if (s == CLBNB_SUCCESS) {
        size_t k = 0;
        for (size_t i = 0; i < ck->nshards; i++)
            for (size_t j = 0; j < clbnb_safetensors_count(ck->shards[i]); j++, k++) {
                ck->all[k] = ck->byname[k] = clbnb_safetensors_tensor(ck->shards[i], j);
                ck->owner[k] = i;
            }
        qsort(ck->byname, ck->count, sizeof *ck->byname, by_name);
        for (size_t i = 1; i < ck->count && s == CLBNB_SUCCESS; i++)
            if (strcmp(ck->byname[i]->name, ck->byname[i - 1]->name) == 0)
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_DUPLICATE_NAME, ck->byname[i]->name,
                               "tensor '%s' is in two shards", ck->byname[i]->name);
    }
    if (s != CLBNB_SUCCESS) {
        clbnb_checkpoint_close(ck);
        return s;
    }
    *out = ck;
    return CLBNB_SUCCESS;
}

size_t clbnb_checkpoint_count(const clbnb_checkpoint *ck) { return ck ? ck->count : 0; }
const clbnb_st_tensor *clbnb_checkpoint_tensor(const clbnb_checkpoint *ck, size_t i) {
    return ck && i < ck->count ? ck->all[i] : NULL;
}
const clbnb_st_tensor *clbnb_checkpoint_find(const clbnb_checkpoint *ck, const char *name) {
    if (!ck || !name) return NULL;
    size_t lo = 0, hi = ck->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->byname[mid]->name, name);
        if (c == 0) return ck->byname[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
size_t clbnb_checkpoint_shard_count(const clbnb_checkpoint *ck) { return ck ? ck->nshards : 0; }
const clbnb_safetensors *clbnb_checkpoint_shard(const clbnb_checkpoint *ck, size_t i) {
    return ck && i < ck->nshards ? ck->shards[i] : NULL;
}
void clbnb_checkpoint_release_range(const clbnb_checkpoint *ck, const clbnb_st_tensor *t, size_t offset, size_t bytes) {
    if (!ck || !t || offset >= t->nbytes) return;
    if (bytes > t->nbytes - offset) bytes = t->nbytes - offset;
    for (size_t i = 0; i < ck->nshards; i++) {
        const clbnb_safetensors *st = ck->shards[i];
        if (t >= st->tensors && t < st->tensors + st->count)
            release_mapped(st, (const unsigned char *)t->data + offset, bytes);
    }
}

const unsigned char *clbnb_checkpoint_file_start(const clbnb_checkpoint *ck, const clbnb_st_tensor *t) {
    if (!ck || !t) return NULL;
    for (size_t i = 0; i < ck->nshards; i++) {
        const clbnb_safetensors *st = ck->shards[i];
        if (t >= st->tensors && t < st->tensors + st->count) return st->base;
    }
    return NULL;
}

void clbnb_checkpoint_release_pages(const clbnb_checkpoint *ck, const clbnb_st_tensor *t) {
    if (t) clbnb_checkpoint_release_range(ck, t, 0, t->nbytes);
}
