/* test_selector.c: device selection by index, by substring (case-insensitive), by environment,
 * and the errors for selectors that match nothing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

int main(void) {
    size_t count = 0;
    TEST_STATUS(clbnb_device_count(&count), CLBNB_SUCCESS);
    TEST_CHECK(count >= 1, "at least one device (got %zu)", count);
    TEST_STATUS(clbnb_device_count(NULL), CLBNB_ERROR_NULL_ARGUMENT);

    /* every index opens, and names the same device as clbnb_device_enumerate */
    for (size_t i = 0; i < count; i++) {
        char sel[32];
        snprintf(sel, sizeof sel, "%zu", i);
        clbnb_context *ctx = NULL;
        TEST_STATUS(clbnb_context_init_from_selector(&ctx, sel), CLBNB_SUCCESS);
        cl_device_id d = NULL;
        TEST_STATUS(clbnb_device_enumerate(i, NULL, &d), CLBNB_SUCCESS);
        TEST_CHECK(ctx && clbnb_context_device(ctx) == d, "index %zu selects the enumerated device", i);
        TEST_CHECK(ctx && clbnb_context_default_queue(ctx) != NULL, "selector context has a queue");
        if (ctx) {
            /* a substring of the device name, in upper case, selects a device with that name */
            const clbnb_device_info *in = clbnb_context_device_info(ctx);
            char sub[8] = {0};
            for (int k = 0; k < 5 && in->device_name[k]; k++)
                sub[k] = (char)toupper((unsigned char)in->device_name[k]);
            clbnb_context *c2 = NULL;
            TEST_STATUS(clbnb_context_init_from_selector(&c2, sub), CLBNB_SUCCESS);
            if (c2) {
                const char *name2 = clbnb_context_device_info(c2)->device_name;
                TEST_CHECK(strncasecmp(name2, sub, strlen(sub)) == 0 || strcasestr(name2, sub) ||
                               strcasestr(clbnb_context_device_info(c2)->platform_name, sub),
                           "substring '%s' selected '%s'", sub, name2);
            }
            clbnb_context_free(c2);
        }
        clbnb_context_free(ctx);
    }
    clbnb_context *ctx = NULL;
    /* the selectors the documentation names: "pocl" on PoCL, "nvidia" on NVIDIA's platform */
    {
        clbnb_context *any = test_context();
        const clbnb_device_info *in = clbnb_context_device_info(any);
        const char *sel = strstr(in->platform_version, "PoCL")  ? "pocl"
                          : strstr(in->platform_name, "NVIDIA") ? "NVIDIA"
                                                                : NULL;
        if (sel) {
            TEST_STATUS(clbnb_context_init_from_selector(&ctx, sel), CLBNB_SUCCESS);
            TEST_CHECK(ctx && strcmp(clbnb_context_device_info(ctx)->platform_name, in->platform_name) == 0,
                       "selector '%s' picks the %s platform", sel, in->platform_name);
            clbnb_context_free(ctx);
            ctx = NULL;
        }
        clbnb_context_free(any);
    }
    TEST_STATUS(clbnb_context_init_from_selector(&ctx, "no-such-device-xyz"), CLBNB_ERROR_DEVICE_NOT_FOUND);
    TEST_CHECK(ctx == NULL, "no context on failure");
    char big[32];
    snprintf(big, sizeof big, "%zu", count + 5);
    TEST_STATUS(clbnb_context_init_from_selector(&ctx, big), CLBNB_ERROR_DEVICE_NOT_FOUND);
    TEST_STATUS(clbnb_context_init_from_selector(NULL, "0"), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_device_enumerate(count, NULL, NULL), CLBNB_ERROR_DEVICE_NOT_FOUND);

    /* CLBNB_DEVICE is read when the selector is NULL or empty */
    const char *saved = getenv("CLBNB_DEVICE");
    char *saved_copy = saved ? strdup(saved) : NULL;
    setenv("CLBNB_DEVICE", "no-such-device-xyz", 1);
    TEST_STATUS(clbnb_context_init_from_selector(&ctx, NULL), CLBNB_ERROR_DEVICE_NOT_FOUND);
    TEST_STATUS(clbnb_context_init_from_selector(&ctx, ""), CLBNB_ERROR_DEVICE_NOT_FOUND);
    setenv("CLBNB_DEVICE", "0", 1);
    TEST_STATUS(clbnb_context_init_from_selector(&ctx, NULL), CLBNB_SUCCESS);
    clbnb_context_free(ctx);
    if (saved_copy)
        setenv("CLBNB_DEVICE", saved_copy, 1);
    else
        unsetenv("CLBNB_DEVICE");
    free(saved_copy);

    /* wrapping an application's context: the device must belong to it */
    ctx = test_context();
    clbnb_context *wrapped = NULL;
    TEST_STATUS(clbnb_context_init(&wrapped, clbnb_context_cl_context(ctx), clbnb_context_device(ctx)), CLBNB_SUCCESS);
    TEST_CHECK(wrapped && clbnb_context_default_queue(wrapped) == NULL, "wrapped context has no queue of its own");
    clbnb_context_free(wrapped);
    TEST_STATUS(clbnb_context_init(&wrapped, NULL, clbnb_context_device(ctx)), CLBNB_ERROR_NULL_ARGUMENT);
    TEST_STATUS(clbnb_context_init(&wrapped, clbnb_context_cl_context(ctx), NULL), CLBNB_ERROR_NULL_ARGUMENT);
    clbnb_context_free(ctx);
    clbnb_context_free(NULL); /* allowed, like free(NULL) */
    return test_finish();
}
