/* cli_build.c: `clbnb build`: compiles every kernel program for a device (filling the on-disk
 * cache) and prints the compiler's log for any program that fails. For driver bring-up. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void show(void *user, size_t index, size_t count, const char *name) {
    (void)user;
    if (name) printf("  [%zu/%zu] %s\n", index + 1, count, name);
}

int cli_build(int argc, char **argv) {
    const char *selector = NULL, *v;
    for (int i = 1; i < argc; i++) {
        if ((v = cli_option(argc, argv, &i, "--device")))
            selector = v;
        else {
            fprintf(stderr, "clbnb build: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    clbnb_context *ctx = cli_open_context(selector);
    if (!ctx) return 1;
    printf("building every kernel program for %s\n", clbnb_context_device_info(ctx)->device_name);
    clbnb_status s = clbnb_context_warm_up(ctx, show, NULL);
    clbnb_build_stats st;
    clbnb_context_build_stats(ctx, &st);
    printf("%s: %u from source, %u from the disk cache, %.0f ms\n", clbnb_status_string(s), st.programs_from_source,
           st.programs_from_disk, st.build_ms);
    if (s != CLBNB_SUCCESS) printf("build log:\n%s\n", clbnb_context_build_log(ctx));
    clbnb_context_free(ctx);
    return s == CLBNB_SUCCESS ? 0 : 1;
}
