/* kernel_sources.c: finds a kernel's OpenCL C source, on disk (CLBNB_KERNEL_DIR) or embedded. */
#include "kernel_sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *length) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)size + 1);
            if (buf && fread(buf, 1, (size_t)size, f) == (size_t)size) {
                buf[size] = '\0';
                *length = (size_t)size;
            } else {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

char *clbnb_kernel_source_load(const char *name, size_t *length) {
    const char *dir = getenv("CLBNB_KERNEL_DIR");
    if (dir && *dir) {
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s.cl", dir, name);
        if (n > 0 && (size_t)n < sizeof path) {
            char *text = read_file(path, length);
            if (text) return text;
        }
        /* fall through to the embedded copy: a kernel dir need only hold the files being edited */
    }
    for (size_t i = 0; i < clbnb_embedded_kernel_count; i++) {
        if (strcmp(clbnb_embedded_kernels[i].name, name) == 0) {
            char *copy = malloc(clbnb_embedded_kernels[i].length + 1);
            if (!copy) return NULL;
            memcpy(copy, clbnb_embedded_kernels[i].bytes, clbnb_embedded_kernels[i].length + 1);
            *length = clbnb_embedded_kernels[i].length;
            return copy;
        }
    }
    return NULL;
}
