/* cli_devices.c: `clbnb devices`: every platform and device, probed. */
#include <stdio.h>

#include "cli.h"

int cli_devices(int argc, char **argv) {
    (void)argc;
    (void)argv;
    size_t count = 0;
    clbnb_status s = clbnb_device_count(&count);
    if (s != CLBNB_SUCCESS || count == 0) {
        fprintf(stderr, "clbnb: no OpenCL device found (%s)\n",
                clbnb_status_string(s == CLBNB_SUCCESS ? CLBNB_ERROR_NO_DEVICE : s));
        return 1;
    }
    int failures = 0;
    for (size_t i = 0; i < count; i++) {
        char selector[32];
        snprintf(selector, sizeof selector, "%zu", i);
        clbnb_context *ctx = NULL;
        s = clbnb_context_init_from_selector(&ctx, selector);
        printf("device %zu\n", i);
        if (s != CLBNB_SUCCESS) {
            printf("  cannot probe: %s\n", clbnb_status_string(s));
            failures++;
            continue;
        }
        cli_print_device(clbnb_context_device_info(ctx), "  ");
        clbnb_context_free(ctx);
    }
    return failures ? 1 : 0;
}
