/* safetensors_write.c: streaming safetensors writer. The header is computed from the declared
 * tensors, the data follows tensor by tensor, deferred tensors (small 1-D ones whose exact length
 * is known late) go last; the header is written (again) at the end, padded with spaces to the
 * space reserved for it. Output goes to a temporary file renamed over the target at the end. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sync_file_range (the build defines it already) */
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_internal.h"

typedef struct wtensor {
    char *name;
    clbnb_st_dtype dtype;
    int ndim;
    uint64_t shape[CLBNB_ST_MAX_DIMS];
    int deferred;
    uint64_t max_bytes; /* streamed: exact byte count; deferred: maximum */
    uint64_t bytes;     /* final byte count (deferred: once given) */
    uint64_t offset;
    unsigned char *payload; /* deferred content */
    int have;               /* deferred content given */
} wtensor;

struct clbnb_st_writer {
    FILE *f;
    char *path, *tmp;
    size_t count;
    wtensor *t;
    size_t *order; /* layout order: streamed in declaration order, then deferred */
    size_t nstreamed;
    size_t cur;        /* index into order of the streamed tensor being written */
    uint64_t cur_done; /* bytes of it written */
    uint64_t header_reserved;
    char **meta_kv;
    size_t meta_count;
    int failed;
    uint64_t unsubmitted; /* bytes written since writeback was last started */
    off_t writeback_from; /* file offset where that range begins */
};

/* Streamed data is handed to the disk as it comes (Linux: sync_file_range starts writeback of
 * every WRITEBACK_STEP bytes without waiting for it), so the fsync at the end waits for less.
 * 2-core PoCL machine, 1.08 GB checkpoint quantized to 0.29 GB: the final fsync took 0.30 s of
 * 0.72-0.79 s before, 0.21 s of 0.69-0.74 s with it; the rest of the wait is the disk's buffered
 * write rate (about 400 MB/s there). */
#define WRITEBACK_STEP ((uint64_t)16 << 20)

static void start_writeback(clbnb_st_writer *w) {
#ifdef __linux__
    if (fflush(w->f) != 0) return; /* the error shows again at the final flush */
    off_t pos = ftello(w->f);
    if (pos > w->writeback_from)
        (void)sync_file_range(fileno(w->f), w->writeback_from, pos - w->writeback_from, SYNC_FILE_RANGE_WRITE);
    w->writeback_from = pos > 0 ? pos : w->writeback_from;
#endif
    w->unsubmitted = 0;
}

static void writer_free(clbnb_st_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    for (size_t i = 0; i < w->count; i++)
        free(w->t[i].name), free(w->t[i].payload);
    for (size_t i = 0; i < 2 * w->meta_count; i++)
        free(w->meta_kv[i]);
    free(w->meta_kv);
    free(w->t);
    free(w->order);
    free(w->path);
    free(w->tmp);
    free(w);
}

void clbnb_st_writer_abort(clbnb_st_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    w->f = NULL;
    if (w->tmp) unlink(w->tmp);
    writer_free(w);
}

/* Header JSON for the current sizes (deferred tensors: given size, or the maximum when `max`). */
static char *build_header(const clbnb_st_writer *w, int max, size_t *len) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    if (w->meta_count) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (size_t i = 0; m && i < w->meta_count; i++)
            cJSON_AddStringToObject(m, w->meta_kv[2 * i], w->meta_kv[2 * i + 1]);
    }
    uint64_t pos = 0;
    int ok = 1;
    for (size_t k = 0; k < w->count && ok; k++) {
        const wtensor *t = &w->t[w->order[k]];
        uint64_t bytes = t->deferred ? (max || !t->have ? t->max_bytes : t->bytes) : t->max_bytes;
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON *sh = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *off = NULL;
        ok = e && sh && cJSON_AddStringToObject(e, "dtype", clbnb_st_dtype_name(t->dtype));
        /* safetensors' order inside an entry: dtype, shape, data_offsets */
        if (ok) {
            cJSON_DetachItemViaPointer(e, sh);
            cJSON_AddItemToObject(e, "shape", sh);
        }
        for (int d = 0; ok && d < t->ndim; d++) {
            uint64_t v = t->deferred ? bytes / clbnb_st_dtype_size(t->dtype) : t->shape[d];
            ok = cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)v));
        }
        if (ok) ok = (off = cJSON_AddArrayToObject(e, "data_offsets")) != NULL;
        if (ok) ok = cJSON_AddItemToArray(off, cJSON_CreateNumber((double)pos));
        if (ok) ok = cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(pos + bytes)));
        pos += bytes;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (s) *len = strlen(s);
    return s;
}

static clbnb_status io_fail(clbnb_st_writer *w, clbnb_file_error *err, const char *what) {
    w->failed = 1;
    return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, w->path, "%s %s: %s", what, w->tmp, strerror(errno));
}

clbnb_status clbnb_st_writer_open(clbnb_st_writer **out, const char *path, const clbnb_st_decl *decls, size_t count,
                                  const char *const *meta_kv, size_t meta_count, clbnb_file_error *err) {
    if (err) memset(err, 0, sizeof *err);
    if (!out) return CLBNB_ERROR_NULL_ARGUMENT;
    *out = NULL;
    if (!path || (count && !decls) || (meta_count && !meta_kv)) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_st_writer *w = calloc(1, sizeof *w);
    if (!w) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    w->t = calloc(count ? count : 1, sizeof *w->t);
    w->order = calloc(count ? count : 1, sizeof *w->order);
    w->meta_kv = calloc(2 * meta_count + 1, sizeof *w->meta_kv);
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 16);
    if (!w->t || !w->order || !w->meta_kv || !w->path || !w->tmp) {
        writer_free(w);
        return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
    }
    clbnb_status s = CLBNB_SUCCESS;
    for (size_t i = 0; i < 2 * meta_count && s == CLBNB_SUCCESS; i++) {
        if (!meta_kv[i])
            s = CLBNB_ERROR_NULL_ARGUMENT;
        else if (!(w->meta_kv[i] = strdup(meta_kv[i])))
            s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        w->meta_count = (i + 2) / 2;
    }
    for (size_t i = 0; i < count && s == CLBNB_SUCCESS; i++) {
        const clbnb_st_decl *d = &decls[i];
        wtensor *t = &w->t[i];
        w->count = i + 1;
        if (!d->name) {
            s = CLBNB_ERROR_NULL_ARGUMENT;
            break;
        }
        if (!(t->name = strdup(d->name))) {
            s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
            break;
        }
        if (strcmp(d->name, "__metadata__") == 0 || clbnb_st_dtype_size(d->dtype) == 0 || d->ndim < 0 ||
            d->ndim > CLBNB_ST_MAX_DIMS || (d->deferred && d->ndim != 1)) {
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, d->name,
                           "tensor '%s': invalid declaration (name, dtype, ndim or deferred)", d->name);
            break;
        }
        t->dtype = d->dtype;
        t->ndim = d->ndim;
        t->deferred = d->deferred ? 1 : 0;
        uint64_t n = 1;
        for (int k = 0; k < d->ndim; k++) {
            t->shape[k] = d->shape[k];
            if (d->shape[k] >= (1ull << 53) || (d->shape[k] && n > UINT64_MAX / d->shape[k])) {
                s = clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, d->name,
                               "tensor '%s': shape product overflows", d->name);
                break;
            }
            n *= d->shape[k];
        }
        if (s == CLBNB_SUCCESS && n > ((1ull << 53) - 1) / clbnb_st_dtype_size(d->dtype))
            s = clbnb_ferr(err, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, d->name, "tensor '%s': too large",
                           d->name);
        t->max_bytes = n * clbnb_st_dtype_size(d->dtype);
        for (size_t j = 0; j < i && s == CLBNB_SUCCESS; j++)
            if (strcmp(w->t[j].name, d->name) == 0)
                s = clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_DUPLICATE_NAME, d->name,
                               "tensor '%s' declared twice", d->name);
    }
    if (s == CLBNB_SUCCESS) {
        size_t k = 0;
        for (size_t i = 0; i < count; i++)
            if (!w->t[i].deferred) w->order[k++] = i;
        w->nstreamed = k;
        for (size_t i = 0; i < count; i++)
            if (w->t[i].deferred) w->order[k++] = i;
        uint64_t pos = 0;
        for (size_t j = 0; j < w->nstreamed; j++) {
            w->t[w->order[j]].offset = pos;
            w->t[w->order[j]].bytes = w->t[w->order[j]].max_bytes;
            pos += w->t[w->order[j]].max_bytes;
        }
        size_t hl = 0;
        char *h = build_header(w, 1, &hl);
        if (!h) s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        free(h);
        w->header_reserved = ((uint64_t)hl + 7) & ~7ull;
    }
    if (s == CLBNB_SUCCESS) {
        sprintf(w->tmp, "%s.tmp.XXXXXX", path);
        int fd = mkstemp(w->tmp);
        if (fd < 0) {
            s = clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, path, "cannot create %s: %s", w->tmp, strerror(errno));
            w->tmp[0] = '\0';
        } else {
            fchmod(fd, 0644);
            w->f = fdopen(fd, "wb");
            if (!w->f) {
                close(fd);
                s = io_fail(w, err, "cannot open");
            } else {
                setvbuf(w->f, NULL, _IOFBF, 1 << 22);
                /* placeholder header: length + spaces (rewritten by finish) */
                unsigned char lenb[8] = {0};
                char spaces[4096];
                memset(spaces, ' ', sizeof spaces);
                if (fwrite(lenb, 1, 8, w->f) != 8) s = io_fail(w, err, "cannot write");
                for (uint64_t r = w->header_reserved; s == CLBNB_SUCCESS && r > 0;) {
                    size_t c = r > sizeof spaces ? sizeof spaces : (size_t)r;
                    if (fwrite(spaces, 1, c, w->f) != c) s = io_fail(w, err, "cannot write");
                    r -= c;
                }
            }
        }
    }
    if (s != CLBNB_SUCCESS) {
        if (w->tmp && w->tmp[0]) {
            if (w->f) fclose(w->f);
            w->f = NULL;
            unlink(w->tmp);
        }
        writer_free(w);
        return s;
    }
    /* skip over empty streamed tensors at the start */
    while (w->cur < w->nstreamed && w->t[w->order[w->cur]].max_bytes == 0)
        w->cur++;
    *out = w;
    return CLBNB_SUCCESS;
}

const char *clbnb_st_writer_next(const clbnb_st_writer *w) {
    if (!w || w->cur >= w->nstreamed) return NULL;
    return w->t[w->order[w->cur]].name;
}

uint64_t clbnb_st_decl_bytes(const clbnb_st_decl *d) {
    if (!d) return 0;
    uint64_t b = clbnb_st_dtype_size(d->dtype);
    for (int j = 0; j < d->ndim && j < CLBNB_ST_MAX_DIMS; j++)
        b *= d->shape[j];
    return b;
}

const char *clbnb_st_writer_upcoming(const clbnb_st_writer *w, size_t k, uint64_t *bytes) {
    if (!w || k >= w->nstreamed - w->cur || w->cur >= w->nstreamed) return NULL;
    const wtensor *t = &w->t[w->order[w->cur + k]];
    if (bytes) *bytes = t->max_bytes - (k == 0 ? w->cur_done : 0);
    return t->name;
}

clbnb_status clbnb_st_writer_write(clbnb_st_writer *w, const void *data, size_t bytes, clbnb_file_error *err) {
    if (!w || (!data && bytes)) return CLBNB_ERROR_NULL_ARGUMENT;
    if (w->failed) return clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, w->path, "writer failed earlier");
    const unsigned char *p = data;
    while (bytes > 0) {
        if (w->cur >= w->nstreamed) {
            w->failed = 1;
            return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, NULL,
                              "%zu bytes written past the last declared tensor", bytes);
        }
        wtensor *t = &w->t[w->order[w->cur]];
        uint64_t room = t->max_bytes - w->cur_done;
        size_t c = bytes < room ? bytes : (size_t)room;
        if (fwrite(p, 1, c, w->f) != c) return io_fail(w, err, "cannot write");
        p += c;
        bytes -= c;
        w->cur_done += c;
        w->unsubmitted += c;
        if (w->unsubmitted >= WRITEBACK_STEP) start_writeback(w);
        if (w->cur_done == t->max_bytes) {
            w->cur++;
            w->cur_done = 0;
            while (w->cur < w->nstreamed && w->t[w->order[w->cur]].max_bytes == 0)
                w->cur++;
        }
    }
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_st_writer_put_deferred(clbnb_st_writer *w, const char *name, const void *data, size_t n,
                                          clbnb_file_error *err) {
    if (!w || !name || (!data && n)) return CLBNB_ERROR_NULL_ARGUMENT;
    for (size_t i = 0; i < w->count; i++) {
        wtensor *t = &w->t[i];
        if (strcmp(t->name, name) != 0) continue;
        size_t es = clbnb_st_dtype_size(t->dtype);
        if (!t->deferred || t->have || n > t->max_bytes / es)
            return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, name,
                              "tensor '%s': not deferred, given twice, or longer than declared", name);
        t->payload = malloc(n > 0 ? n * es : 1);
        if (!t->payload) return CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        if (n) memcpy(t->payload, data, n * es);
        t->bytes = n * es;
        t->have = 1;
        return CLBNB_SUCCESS;
    }
    return clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, name, "tensor '%s' not declared", name);
}

clbnb_status clbnb_st_writer_finish(clbnb_st_writer *w, clbnb_file_error *err) {
    if (!w) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_status s = CLBNB_SUCCESS;
    if (w->failed) s = clbnb_ferr(err, CLBNB_ERROR_IO, CLBNB_FERR_IO, w->path, "writer failed earlier");
    if (s == CLBNB_SUCCESS && w->cur < w->nstreamed)
        s = clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, w->t[w->order[w->cur]].name,
                       "tensor '%s' incomplete (%llu of %llu bytes written)", w->t[w->order[w->cur]].name,
                       (unsigned long long)w->cur_done, (unsigned long long)w->t[w->order[w->cur]].max_bytes);
    for (size_t k = w->nstreamed; k < w->count && s == CLBNB_SUCCESS; k++) {
        wtensor *t = &w->t[w->order[k]];
        if (!t->have)
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, t->name,
                           "deferred tensor '%s' never given", t->name);
        else if (t->bytes && fwrite(t->payload, 1, t->bytes, w->f) != t->bytes)
            s = io_fail(w, err, "cannot write");
    }
    size_t hl = 0;
    char *h = NULL;
    if (s == CLBNB_SUCCESS) {
        h = build_header(w, 0, &hl);
        if (!h)
            s = CLBNB_ERROR_OUT_OF_HOST_MEMORY;
        else if (hl > w->header_reserved)
            s = clbnb_ferr(err, CLBNB_ERROR_INVALID_ARGUMENT, CLBNB_FERR_USAGE, NULL,
                           "header grew past its reservation");
    }
    if (s == CLBNB_SUCCESS) {
        unsigned char lenb[8];
        for (int i = 0; i < 8; i++)
            lenb[i] = (unsigned char)(w->header_reserved >> (8 * i));
        if (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 || fwrite(lenb, 1, 8, w->f) != 8 ||
            fwrite(h, 1, hl, w->f) != hl || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
            s = io_fail(w, err, "cannot write");
    }
    free(h);
    if (s == CLBNB_SUCCESS) {
        int rc = fclose(w->f);
        w->f = NULL;
        if (rc != 0)
            s = io_fail(w, err, "cannot close");
        else if (rename(w->tmp, w->path) != 0)
            s = io_fail(w, err, "cannot rename");
    }
    if (s != CLBNB_SUCCESS) {
        clbnb_st_writer_abort(w);
        return s;
    }
    writer_free(w);
    return CLBNB_SUCCESS;
}
