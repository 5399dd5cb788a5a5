/* test_golden.c: a minimal read-only safetensors loader for the golden bitsandbytes file.
 * (The library's own safetensors I/O is separate; tests keep an independent reader.) */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

struct test_golden {
    unsigned char *data;
    size_t size;
    size_t base;
    cJSON *header;
};

test_golden *test_golden_open(void) {
    const char *path = CLBNB_TEST_DATA_DIR "/bnb_reference.safetensors";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    test_golden *g = calloc(1, sizeof *g);
    fseek(f, 0, SEEK_END);
    g->size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->data = malloc(g->size);
    if (fread(g->data, 1, g->size, f) != g->size) {
        fclose(f);
        test_golden_close(g);
        return NULL;
    }
    fclose(f);
    uint64_t n;
    memcpy(&n, g->data, 8);
    g->base = 8 + (size_t)n;
    g->header = cJSON_ParseWithLength((const char *)g->data + 8, (size_t)n);
    if (!g->header) {
        test_golden_close(g);
        return NULL;
    }
    return g;
}

void test_golden_close(test_golden *g) {
    if (!g) return;
    cJSON_Delete(g->header);
    free(g->data);
    free(g);
}

const void *test_golden_get(test_golden *g, const char *key, const char **dtype, size_t *shape, int *ndim,
                            size_t *bytes) {
    cJSON *t = cJSON_GetObjectItemCaseSensitive(g->header, key);
    if (!t) return NULL;
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (dtype) *dtype = dt ? dt->valuestring : "";
    int nd = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, sh) {
        if (shape && nd < 8) shape[nd] = (size_t)it->valuedouble;
        nd++;
    }
    if (ndim) *ndim = nd;
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    if (bytes) *bytes = e - b;
    return g->data + g->base + b;
}
