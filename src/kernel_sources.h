/* kernel_sources.h: the OpenCL C sources of cl/NAME.cl, embedded at build time or read from
 * CLBNB_KERNEL_DIR at run time. */
#ifndef CLBNB_KERNEL_SOURCES_H
#define CLBNB_KERNEL_SOURCES_H

#include <stddef.h>

struct clbnb_kernel_source {
    const char *name;  /* file name without ".cl" */
    const char *bytes; /* NUL-terminated */
    size_t length;
};

extern const struct clbnb_kernel_source clbnb_embedded_kernels[];
extern const size_t clbnb_embedded_kernel_count;

/* Returns a malloc'ed copy of the source of `name` (from CLBNB_KERNEL_DIR when set, else
 * embedded) or NULL when there is none. */
__attribute__((visibility("hidden"))) char *clbnb_kernel_source_load(const char *name, size_t *length);

#endif
