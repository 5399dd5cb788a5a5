/* test_safetensors.c: the library's safetensors reader / writer, sharded checkpoints and the
 * QuantState JSON parser: round trips of every dtype (scalars, empty tensors, metadata, chunked
 * streaming, deferred tensors), a table of malformed files each giving its specific error,
 * every truncation of a valid file and random corruptions (no crash, no out-of-bounds read),
 * Python float repr. Host only: no device needed. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_common.h"

static char tmpdir[256];

static void path_in_tmp(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmpdir, name); }

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Counts leftover temporary files in tmpdir. */
static int count_tmp_files(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c '\\.tmp\\.' ", tmpdir);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* ---- round trips ------------------------------------------------------------------------------- */
static void round_trip(test_rng *rng) {
    char path[512];
    path_in_tmp(path, sizeof path, "rt.safetensors");
    clbnb_st_decl decls[48];
    unsigned char *payload[48];
    size_t nbytes[48];
    char names[48][32];
    size_t count = 0;
    memset(decls, 0, sizeof decls);
    for (int d = 0; d < CLBNB_ST_DTYPE_COUNT; d++) {
        /* per dtype: a matrix with awkward dims, a scalar, an empty tensor */
        for (int v = 0; v < 3; v++) {
            clbnb_st_decl *dc = &decls[count];
            snprintf(names[count], sizeof names[count], "t%d.%s.v%d", (int)count,
                     clbnb_st_dtype_name((clbnb_st_dtype)d), v);
            dc->name = names[count];
            dc->dtype = (clbnb_st_dtype)d;
            if (v == 0)
                dc->ndim = 3, dc->shape[0] = 1 + test_rng_next(rng) % 7, dc->shape[1] = 3,
                dc->shape[2] = 1 + test_rng_next(rng) % 13;
            else if (v == 1)
                dc->ndim = 0;
            else
                dc->ndim = 2, dc->shape[0] = 4, dc->shape[1] = 0;
            size_t n = 1;
            for (int k = 0; k < dc->ndim; k++)
                n *= dc->shape[k];
            nbytes[count] = n * clbnb_st_dtype_size(dc->dtype);
            payload[count] = malloc(nbytes[count] + 1);
            for (size_t i = 0; i < nbytes[count]; i++)
                payload[count][i] = (unsigned char)test_rng_next(rng);
            count++;
        }
    }
    /* a deferred tensor in the middle of the declaration list */
    snprintf(names[count], sizeof names[count], "deferred.json");
    decls[count].name = names[count];
    decls[count].dtype = CLBNB_ST_U8;
    decls[count].ndim = 1;
    decls[count].shape[0] = 100;
    decls[count].deferred = 1;
    size_t deferred_index = count++;
    const char *meta[] = {"format", "pt", "quantized_by", "clbnb \"test\" \\ unicode \xc3\xa9"};
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, decls, count, meta, 2, &fe), CLBNB_SUCCESS);
    if (!w) return;
    TEST_STATUS(clbnb_st_writer_put_deferred(w, "deferred.json", "{\"a\": 1}", 8, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_put_deferred(w, "deferred.json", "{}", 2, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_CHECK(!file_exists(path), "target exists before finish");
    for (size_t i = 0; i < count; i++) {
        if (i == deferred_index || nbytes[i] == 0) continue;
        TEST_CHECK(clbnb_st_writer_next(w) && strcmp(clbnb_st_writer_next(w), names[i]) == 0,
                   "next tensor %s, expected %s", clbnb_st_writer_next(w) ? clbnb_st_writer_next(w) : "(null)",
                   names[i]);
        /* streamed in random pieces */
        size_t done = 0;
        while (done < nbytes[i]) {
            size_t c = 1 + test_rng_next(rng) % (nbytes[i] - done);
            TEST_STATUS(clbnb_st_writer_write(w, payload[i] + done, c, &fe), CLBNB_SUCCESS);
            done += c;
        }
    }
    TEST_CHECK(clbnb_st_writer_next(w) == NULL, "writer expects more");
    TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_SUCCESS);
    TEST_CHECK(count_tmp_files() == 0, "temporary file left behind");

    clbnb_safetensors *st = NULL;
    TEST_STATUS(clbnb_safetensors_open(&st, path, &fe), CLBNB_SUCCESS);
    if (!st) return;
    /* header length: multiple of 8 */
    FILE *f = fopen(path, "rb");
    unsigned char lenb[8];
    TEST_CHECK(f && fread(lenb, 1, 8, f) == 8, "read header length");
    if (f) fclose(f);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | lenb[i];
    TEST_CHECK(hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
    TEST_CHECK(clbnb_safetensors_count(st) == count, "%zu tensors read, %zu written", clbnb_safetensors_count(st),
               count);
    for (size_t i = 0; i < count; i++) {
        const clbnb_st_tensor *t = clbnb_safetensors_find(st, names[i]);
        TEST_CHECK(t != NULL, "tensor %s missing", names[i]);
        if (!t) continue;
        TEST_CHECK(t->dtype == decls[i].dtype, "%s dtype", names[i]);
        if (i == deferred_index) {
            TEST_CHECK(t->ndim == 1 && t->shape[0] == 8 && memcmp(t->data, "{\"a\": 1}", 8) == 0,
                       "deferred tensor content");
            continue;
        }
        TEST_CHECK(t->ndim == decls[i].ndim, "%s ndim %d vs %d", names[i], t->ndim, decls[i].ndim);
        for (int k = 0; k < t->ndim; k++)
            TEST_CHECK(t->shape[k] == decls[i].shape[k], "%s shape[%d]", names[i], k);
        TEST_CHECK(t->nbytes == nbytes[i] && (nbytes[i] == 0 || memcmp(t->data, payload[i], nbytes[i]) == 0),
                   "%s data differs", names[i]);
    }
    TEST_CHECK(clbnb_safetensors_metadata_count(st) == 2, "metadata count");
    const char *mv = clbnb_safetensors_metadata(st, "quantized_by");
    TEST_CHECK(mv && strcmp(mv, meta[3]) == 0, "metadata value round trip");
    TEST_CHECK(clbnb_safetensors_find(st, "nope") == NULL, "find of a missing tensor");
    clbnb_safetensors_close(st);
    for (size_t i = 0; i < count; i++)
        if (i != deferred_index) free(payload[i]);

    /* every truncation of this valid file fails cleanly; random corruptions never crash */
    f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *img = malloc(size);
    TEST_CHECK(fread(img, 1, size, f) == size, "read back");
    fclose(f);
    size_t trunc_ok = 0;
    for (size_t len = 0; len < size; len++) {
        unsigned char *copy = malloc(len ? len : 1); /* exact-size copy: ASan catches overreads */
        memcpy(copy, img, len);
        clbnb_safetensors *t = NULL;
        clbnb_status s = clbnb_safetensors_open_memory(&t, copy, len, NULL);
        trunc_ok += s != CLBNB_SUCCESS && t == NULL;
        clbnb_safetensors_close(t);
        free(copy);
    }
    TEST_CHECK(trunc_ok == size, "%zu of %zu truncations rejected", trunc_ok, size);
    size_t accepted = 0;
    for (int it = 0; it < 3000; it++) {
        unsigned char *copy = malloc(size);
        memcpy(copy, img, size);
        int flips = 1 + (int)(test_rng_next(rng) % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = test_rng_next(rng) % (hl + 8 < size ? hl + 8 : size);
            copy[pos] = (unsigned char)test_rng_next(rng);
        }
        clbnb_safetensors *t = NULL;
        if (clbnb_safetensors_open_memory(&t, copy, size, NULL) == CLBNB_SUCCESS) {
            accepted++;
            /* anything accepted must be self-consistent */
            for (size_t i = 0; i < clbnb_safetensors_count(t); i++) {
                const clbnb_st_tensor *x = clbnb_safetensors_tensor(t, i);
                int inside =
                    (const unsigned char *)x->data >= copy && (const unsigned char *)x->data + x->nbytes <= copy + size;
                if (!inside) TEST_CHECK(0, "accepted tensor %s points outside the image", x->name);
            }
        }
        clbnb_safetensors_close(t);
        free(copy);
    }
    TEST_CHECK(1, "random corruptions survived (%zu of 3000 still valid)", accepted);
    free(img);
    unlink(path);
}

static void writer_errors(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "bad.safetensors");
    clbnb_st_decl d[2];
    memset(d, 0, sizeof d);
    d[0].name = "a", d[0].dtype = CLBNB_ST_F32, d[0].ndim = 1, d[0].shape[0] = 4;
    d[1].name = "a", d[1].dtype = CLBNB_ST_F32, d[1].ndim = 1, d[1].shape[0] = 4;
    clbnb_st_writer *w = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_CHECK(fe.code == CLBNB_FERR_DUPLICATE_NAME, "duplicate declaration: %s", clbnb_file_error_name(fe.code));
    d[1].name = "b";
    d[1].dtype = (clbnb_st_dtype)99;
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
    d[1].dtype = CLBNB_ST_F32;
    d[1].shape[0] = 1ull << 62;
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_ERROR_SIZE_OVERFLOW);
    d[1].shape[0] = 4;
    /* incomplete: finish fails, no target, no temporary */
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_SUCCESS);
    float x[8] = {0};
    TEST_STATUS(clbnb_st_writer_write(w, x, 20, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_finish(w, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
    TEST_CHECK(fe.code == CLBNB_FERR_USAGE && strcmp(fe.tensor, "b") == 0, "incomplete tensor named: '%s'", fe.tensor);
    TEST_CHECK(!file_exists(path) && count_tmp_files() == 0, "half-written file left behind");
    /* too many bytes */
    TEST_STATUS(clbnb_st_writer_open(&w, path, d, 2, NULL, 0, &fe), CLBNB_SUCCESS);
    TEST_STATUS(clbnb_st_writer_write(w, x, 33, &fe), CLBNB_ERROR_INVALID_ARGUMENT);
    clbnb_st_writer_abort(w);
    TEST_CHECK(!file_exists(path) && count_tmp_files() == 0, "aborted file left behind");
    /* unwritable directory */
    TEST_STATUS(clbnb_st_writer_open(&w, "/nonexistent-dir/x.safetensors", d, 2, NULL, 0, &fe), CLBNB_ERROR_IO);
    TEST_CHECK(fe.code == CLBNB_FERR_IO, "io error code");
}

/* ---- malformed files --------------------------------------------------------------------------- */
static unsigned char *make_file(const char *header, size_t data_bytes, uint64_t override_len, size_t *size) {
    size_t hl = strlen(header);
    *size = 8 + hl + data_bytes;
    unsigned char *p = calloc(1, *size ? *size : 1);
    uint64_t l = override_len ? override_len : hl;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(l >> (8 * i));
    memcpy(p + 8, header, hl);
    return p;
}

static void malformed(void) {
    static const struct {
        const char *what, *header;
        size_t data;
        uint64_t len; /* 0: the real header length */
        clbnb_status status;
        clbnb_file_error_code code;
        const char *tensor;
    } cases[] = {
        {"valid, listed out of offset order",
         "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},\"a\":{\"dtype\":\"U8\",\"shape\":[2,4],"
         "\"data_offsets\":[0,8]}}",
         16, 0, CLBNB_SUCCESS, CLBNB_FERR_NONE, ""},
        {"valid, padded, empty", "{}      ", 0, 0, CLBNB_SUCCESS, CLBNB_FERR_NONE, ""},
        {"valid scalar + empty",
         "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],"
         "\"data_offsets\":[8,8]}}",
         8, 0, CLBNB_SUCCESS, CLBNB_FERR_NONE, ""},
        {"header past the end", "{}", 0, 300, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_TRUNCATED, ""},
        {"absurd header length", "{}", 0, 1ull << 40, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_HEADER_TOO_LARGE, ""},
        {"header length 2^64-1", "{}", 0, UINT64_MAX, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_HEADER_TOO_LARGE, ""},
        {"not an object", "[1, 2]", 0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_HEADER_NOT_OBJECT, ""},
        {"bad JSON", "{\"a\": {\"dtype\": ", 0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, ""},
        {"trailing garbage", "{} x", 0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, ""},
        {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0, CLBNB_ERROR_INVALID_FORMAT,
         CLBNB_FERR_BAD_ENTRY, "a"},
        {"entry not an object", "{\"a\":5}", 0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"3 offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0,
         CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_UNKNOWN_DTYPE, "a"},
        {"9 dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, 0,
         CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_TOO_MANY_DIMS, "a"},
        {"shape product overflow",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,0]}}", 0, 0,
         CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, "a"},
        {"byte count overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952,4],\"data_offsets\":[0,0]}}",
         0, 0, CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, "a"},
        {"huge dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,0]}}", 0, 0,
         CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW, "a"},
        {"negative dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 0, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"fractional dim", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"string offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",1]}}", 1, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"huge offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", 1, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_ENTRY, "a"},
        {"offsets reversed", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_OFFSETS_REVERSED, "a"},
        {"offset out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}", 16, 0,
         CLBNB_ERROR_BUFFER_TOO_SMALL, CLBNB_FERR_OFFSET_OUT_OF_RANGE, "a"},
        {"offset 2^52 out of range",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4503599627370496,4503599627370500]}}", 4, 0,
         CLBNB_ERROR_BUFFER_TOO_SMALL, CLBNB_FERR_OFFSET_OUT_OF_RANGE, "a"},
        {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
         CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_SIZE_MISMATCH, "a"},
        {"dtype/shape mismatch", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, 0,
         CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_SIZE_MISMATCH, "a"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[4,12]}}",
         12, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_OVERLAP, "b"},
        {"same range twice",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[0,8]}}",
         8, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_OVERLAP, ""},
        {"gap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
         "\"data_offsets\":[12,20]}}",
         20, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_GAP, "b"},
        {"does not start at 0", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_GAP, "a"},
        {"trailing data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, 0,
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_TRAILING_DATA, ""},
        {"duplicate name",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_"
         "offsets\":[1,2]}}",
         2, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_DUPLICATE_NAME, "a"},
        {"metadata not strings", "{\"__metadata__\":{\"x\":1}}", 0, 0, CLBNB_ERROR_INVALID_FORMAT,
         CLBNB_FERR_BAD_METADATA, "__metadata__"},
        {"metadata not object", "{\"__metadata__\":[]}", 0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_METADATA,
         "__metadata__"},
        {"deep nesting",
         "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]}",
         0, 0, CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size;
        unsigned char *img = make_file(cases[i].header, cases[i].data, cases[i].len, &size);
        clbnb_safetensors *st = NULL;
        clbnb_file_error fe;
        clbnb_status s = clbnb_safetensors_open_memory(&st, img, size, &fe);
        TEST_CHECK(s == cases[i].status && fe.code == cases[i].code, "%s: got %s / %s (%s), expected %s / %s",
                   cases[i].what, clbnb_status_string(s), clbnb_file_error_name(fe.code), fe.message,
                   clbnb_status_string(cases[i].status), clbnb_file_error_name(cases[i].code));
        if (cases[i].tensor[0])
            TEST_CHECK(strcmp(fe.tensor, cases[i].tensor) == 0, "%s: error names '%s', expected '%s'", cases[i].what,
                       fe.tensor, cases[i].tensor);
        TEST_CHECK((s == CLBNB_SUCCESS) == (st != NULL), "%s: handle on failure", cases[i].what);
        if (s != CLBNB_SUCCESS && i > 0) TEST_CHECK(fe.message[0] != '\0', "%s: no message", cases[i].what);
        clbnb_safetensors_close(st);
        free(img);
    }
    /* short files via the file path */
    char path[512];
    path_in_tmp(path, sizeof path, "short.safetensors");
    FILE *f = fopen(path, "wb");
    fwrite("\x02\x00\x00", 1, 3, f);
    fclose(f);
    clbnb_safetensors *st = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_safetensors_open(&st, path, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_TRUNCATED, "3-byte file: %s", clbnb_file_error_name(fe.code));
    f = fopen(path, "wb");
    fclose(f);
    TEST_STATUS(clbnb_safetensors_open(&st, path, &fe), CLBNB_ERROR_INVALID_FORMAT);
    unlink(path);
    TEST_STATUS(clbnb_safetensors_open(&st, path, &fe), CLBNB_ERROR_IO);
    TEST_STATUS(clbnb_safetensors_open(NULL, path, &fe), CLBNB_ERROR_NULL_ARGUMENT);
}

/* ---- sharded checkpoints ----------------------------------------------------------------------- */
static void write_simple(const char *path, const char *n1, const char *n2) {
    clbnb_st_decl d[2];
    memset(d, 0, sizeof d);
    d[0].name = n1, d[0].dtype = CLBNB_ST_F32, d[0].ndim = 1, d[0].shape[0] = 2;
    d[1].name = n2, d[1].dtype = CLBNB_ST_U8, d[1].ndim = 1, d[1].shape[0] = 3;
    clbnb_st_writer *w = NULL;
    clbnb_st_writer_open(&w, path, d, 2, NULL, 0, NULL);
    float x[2] = {1.5f, -2.0f};
    clbnb_st_writer_write(w, x, 8, NULL);
    clbnb_st_writer_write(w, "abc", 3, NULL);
    TEST_STATUS(clbnb_st_writer_finish(w, NULL), CLBNB_SUCCESS);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void sharded(void) {
    char p1[512], p2[512], idx[512];
    path_in_tmp(p1, sizeof p1, "model-00001-of-00002.safetensors");
    path_in_tmp(p2, sizeof p2, "model-00002-of-00002.safetensors");
    path_in_tmp(idx, sizeof idx, "model.safetensors.index.json");
    write_simple(p1, "a.weight", "a.bias");
    write_simple(p2, "b.weight", "b.bias");
    write_text(
        idx,
        "{\"metadata\": {\"total_size\": 22}, \"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", "
        "\"a.bias\": \"model-00001-of-00002.safetensors\", \"b.weight\": \"model-00002-of-00002.safetensors\", "
        "\"b.bias\": \"model-00002-of-00002.safetensors\"}}");
    clbnb_checkpoint *ck = NULL;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_SUCCESS);
    TEST_CHECK(clbnb_checkpoint_count(ck) == 4 && clbnb_checkpoint_shard_count(ck) == 2, "sharded counts");
    const clbnb_st_tensor *t = clbnb_checkpoint_find(ck, "b.bias");
    TEST_CHECK(t && t->nbytes == 3 && memcmp(t->data, "abc", 3) == 0, "b.bias from shard 2");
    t = clbnb_checkpoint_find(ck, "a.weight");
    float second = 0.0f;
    if (t) memcpy(&second, (const char *)t->data + 4, 4);
    TEST_CHECK(t && second == -2.0f, "a.weight from shard 1");
    clbnb_checkpoint_close(ck);
    /* the directory form */
    TEST_STATUS(clbnb_checkpoint_open(&ck, tmpdir, &fe), CLBNB_SUCCESS);
    TEST_CHECK(clbnb_checkpoint_count(ck) == 4, "directory form");
    clbnb_checkpoint_close(ck);
    /* bad indexes */
    write_text(idx, "{\"weight_map\": {\"a.weight\": \"../etc/passwd\"}}");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_BAD_INDEX && strcmp(fe.tensor, "a.weight") == 0, "path traversal: %s", fe.message);
    write_text(idx, "{\"weight_map\": {\"c.weight\": \"model-00001-of-00002.safetensors\"}}");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_BAD_INDEX && strcmp(fe.tensor, "c.weight") == 0, "missing tensor: %s", fe.message);
    write_text(idx, "{\"weight_map\": 3}");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_INVALID_FORMAT);
    write_text(idx, "{\"weight_map\": {");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_BAD_JSON, "index bad JSON");
    write_text(idx, "{\"weight_map\": {\"a.weight\": \"missing.safetensors\"}}");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_IO);
    /* a tensor in two shards */
    write_simple(p2, "a.weight", "b.bias");
    write_text(idx, "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", \"b.bias\": "
                    "\"model-00002-of-00002.safetensors\"}}");
    TEST_STATUS(clbnb_checkpoint_open(&ck, idx, &fe), CLBNB_ERROR_INVALID_FORMAT);
    TEST_CHECK(fe.code == CLBNB_FERR_DUPLICATE_NAME, "tensor in two shards: %s", clbnb_file_error_name(fe.code));
    unlink(p1), unlink(p2), unlink(idx);
}

/* ---- QuantState JSON ---------------------------------------------------------------------------- */
static void quant_state_json(test_rng *rng) {
    static const struct {
        uint32_t bits;
        const char *repr;
    } floats[] = {{1086000008u, "5.845157623291016"},
                  {1076241374u, "2.5959391593933105"},
                  {1065353216u, "1.0"},
                  {1036831949u, "0.10000000149011612"},
                  {925353388u, "9.999999747378752e-06"},
                  {1510874058u, "1.0000000272564224e+16"},
                  {2u, "2.802596928649634e-45"},
                  {1206984704u, "123456.0"},
                  {953267991u, "9.999999747378752e-05"},
                  {1621981420u, "1.0000000200408773e+20"},
                  {3204448256u, "-0.5"},
                  {1199562752u, "65504.0"},
                  {1482907561u, "999999986991104.0"},
                  {956396123u, "0.0001234499941347167"},
                  {4286578687u, "-3.4028234663852886e+38"},
                  {953130552u, "9.899999713525176e-05"},
                  {0u, "0.0"}};
    for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
        float f;
        memcpy(&f, &floats[i].bits, 4);
        char buf[64];
        clbnb_format_python_float(f, buf, sizeof buf);
        TEST_CHECK(strcmp(buf, floats[i].repr) == 0, "repr(%08x) = %s, Python says %s", floats[i].bits, buf,
                   floats[i].repr);
    }
    /* random floats: round-trip, and no shorter precision would */
    size_t bad = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t b = (uint32_t)test_rng_next(rng);
        float f;
        memcpy(&f, &b, 4);
        if (!(f == f) || f - f != 0.0f) continue;
        char buf[64];
        clbnb_format_python_float(f, buf, sizeof buf);
        if (strtod(buf, NULL) != (double)f) bad++;
    }
    TEST_CHECK(bad == 0, "%zu random floats do not round-trip", bad);

    const char *good =
        "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [4096, 4096], "
        "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 2.5959391593933105}";
    clbnb_quant_state_info info;
    clbnb_file_error fe;
    TEST_STATUS(clbnb_quant_state_json_parse(good, strlen(good), &info, &fe), CLBNB_SUCCESS);
    TEST_CHECK(info.quant_type == CLBNB_QUANT_NF4 && info.blocksize == 64 && info.dtype == CLBNB_DTYPE_F16 &&
                   info.ndim == 2 && info.shape[0] == 4096 && info.nested && info.nested_blocksize == 256 &&
                   test_float_bits(info.nested_offset) == 1076241374u,
               "parsed fields");
    char out[1024];
    size_t len;
    TEST_STATUS(clbnb_quant_state_json_write(&info, out, sizeof out, &len), CLBNB_SUCCESS);
    TEST_CHECK(len == strlen(good) && strcmp(out, good) == 0, "re-serialized JSON differs:\n%s\n%s", out, good);
    TEST_STATUS(clbnb_quant_state_json_write(&info, out, 10, &len), CLBNB_ERROR_BUFFER_TOO_SMALL);
    static const struct {
        const char *json;
        clbnb_status status;
        clbnb_file_error_code code;
    } bad_cases[] = {
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\"}", CLBNB_ERROR_INVALID_FORMAT,
         CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": \"64\", \"dtype\": \"float16\", \"shape\": [2]}",
         CLBNB_ERROR_INVALID_BLOCKSIZE, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 48, \"dtype\": \"float16\", \"shape\": [2]}",
         CLBNB_ERROR_INVALID_BLOCKSIZE, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"int4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2]}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float64\", \"shape\": [2]}",
         CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2, 0]}",
         CLBNB_ERROR_INVALID_SHAPE, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [4294967296, 4294967296]}",
         CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_FERR_SHAPE_OVERFLOW},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": []}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2], \"nested_blocksize\": "
         "256}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2], \"nested_blocksize\": "
         "256, \"nested_dtype\": \"float32\", \"nested_offset\": \"x\"}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2], \"nested_blocksize\": "
         "100, \"nested_dtype\": \"float32\", \"nested_offset\": 1.0}",
         CLBNB_ERROR_INVALID_BLOCKSIZE, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [2], \"extra\": 1}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\", \"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": "
         "[2]}",
         CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_QUANT_STATE},
        {"{\"quant_type\": \"nf4\"", CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON},
        {"[]", CLBNB_ERROR_INVALID_FORMAT, CLBNB_FERR_BAD_JSON},
    };
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        clbnb_status s = clbnb_quant_state_json_parse(bad_cases[i].json, strlen(bad_cases[i].json), &info, &fe);
        TEST_CHECK(s == bad_cases[i].status && fe.code == bad_cases[i].code, "QuantState JSON case %zu: %s / %s (%s)",
                   i, clbnb_status_string(s), clbnb_file_error_name(fe.code), fe.message);
    }
    TEST_CHECK(strcmp(clbnb_weight_format_name(2), "col_turing") == 0 && clbnb_weight_format_name(4) == NULL,
               "weight_format names");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/clbnb_test_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "mkdtemp failed\n");
        return 1;
    }
    test_rng rng = test_rng_seeded(0);
    round_trip(&rng);
    writer_errors();
    malformed();
    sharded();
    quant_state_json(&rng);
    rmdir(tmpdir);
    return test_finish();
}
