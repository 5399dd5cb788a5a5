/* warm_up.c: compiles every embedded program up front (with default options), so the first real
 * call pays no build time and the on-disk cache is filled. Files named inc_*.cl are pieces that
 * programs include ("//! include inc_x" lines), not programs of their own. */
#include "internal.h"
#include "kernel_sources.h"
#include <string.h>

static int is_program(const char *name) { return strcmp(name, "common") != 0 && strncmp(name, "inc_", 4) != 0; }

clbnb_status clbnb_context_warm_up(clbnb_context *ctx, clbnb_progress_fn progress, void *user) {
    if (!ctx) return CLBNB_ERROR_NULL_ARGUMENT;
    size_t count = 0, index = 0;
    for (size_t i = 0; i < clbnb_embedded_kernel_count; i++)
        count += is_program(clbnb_embedded_kernels[i].name);
    for (size_t i = 0; i < clbnb_embedded_kernel_count; i++) {
        const char *name = clbnb_embedded_kernels[i].name;
        if (!is_program(name)) continue;
        if (progress) progress(user, index, count, name);
        index++;
        struct clbnb_program_entry *e;
        pthread_mutex_lock(&ctx->lock);
        clbnb_status s = clbnb_program_build_locked(ctx, name, "", &e);
        pthread_mutex_unlock(&ctx->lock);
        if (s != CLBNB_SUCCESS) return s;
    }
    if (progress) progress(user, count, count, NULL);
    return CLBNB_SUCCESS;
}
