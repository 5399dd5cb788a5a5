/* test_copy.c: clbnb_buffer_copy against memcpy on awkward sizes and offsets (vector body, byte
 * tails, unaligned offsets), with poisoned destinations; plus its argument validation. */
#include <stdlib.h>
#include <string.h>

#include "test_common.h"

int main(void) {
    clbnb_context *ctx = test_context();
    cl_command_queue q = test_queue(ctx);
    test_rng rng = test_rng_seeded(0);
    const size_t sizes[] = {1, 3, 15, 16, 17, 255, 4096, 65537, (1u << 20) + 5};
    const size_t offsets[][2] = {{0, 0}, {16, 32}, {1, 0}, {0, 7}, {13, 5}};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (size_t oi = 0; oi < sizeof offsets / sizeof offsets[0]; oi++) {
            size_t n = sizes[si], so = offsets[oi][0], dof = offsets[oi][1];
            size_t total = n + 64;
            unsigned char *src = malloc(total), *want = malloc(total), *got = malloc(total);
            for (size_t i = 0; i < total; i++)
                src[i] = (unsigned char)test_rng_next(&rng);
            cl_mem a = test_buffer_from(ctx, src, total), b = test_buffer(ctx, total);
            memset(want, TEST_POISON, total);
            memcpy(want + dof, src + so, n);
            TEST_STATUS(clbnb_buffer_copy(ctx, q, b, dof, a, so, n, 0, NULL, NULL), CLBNB_SUCCESS);
            test_download(ctx, b, 0, got, total);
            size_t bad = 0;
            for (size_t i = 0; i < total; i++)
                bad += got[i] != want[i];
            TEST_CHECK(bad == 0, "copy of %zu bytes (src+%zu -> dst+%zu): %zu bytes wrong (incl. outside the region)",
                       n, so, dof, bad);
            clReleaseMemObject(a);
            clReleaseMemObject(b);
            free(src);
            free(want);
            free(got);
        }
    }
    /* events: an output event completes, and a wait list is honoured */
    {
        unsigned char src[100], got[100];
        memset(src, 3, sizeof src);
        cl_mem a = test_buffer_from(ctx, src, 100), b = test_buffer(ctx, 100), c = test_buffer(ctx, 100);
        cl_event e1 = NULL, e2 = NULL;
        TEST_STATUS(clbnb_buffer_copy(ctx, q, b, 0, a, 0, 100, 0, NULL, &e1), CLBNB_SUCCESS);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, b, 0, 100, 1, &e1, &e2), CLBNB_SUCCESS);
        TEST_CHECK(e1 && e2 && clWaitForEvents(1, &e2) == CL_SUCCESS, "events");
        test_download(ctx, c, 0, got, 100);
        TEST_CHECK(memcmp(src, got, 100) == 0, "chained copies");
        if (e1) clReleaseEvent(e1);
        if (e2) clReleaseEvent(e2);
        /* validation: nothing is written on error */
        test_poison(ctx, c, 100);
        TEST_STATUS(clbnb_buffer_copy(NULL, q, c, 0, a, 0, 10, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_STATUS(clbnb_buffer_copy(ctx, NULL, c, 0, a, 0, 10, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, NULL, 0, a, 0, 10, 0, NULL, NULL), CLBNB_ERROR_NULL_ARGUMENT);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, a, 0, 0, 0, NULL, NULL), CLBNB_ERROR_INVALID_SHAPE);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, a, 0, 101, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 91, a, 0, 10, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, SIZE_MAX - 4, a, 0, 10, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, a, 0, SIZE_MAX, 0, NULL, NULL), CLBNB_ERROR_BUFFER_TOO_SMALL);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, a, 10, a, 0, 20, 0, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, a, 0, 10, 1, NULL, NULL), CLBNB_ERROR_INVALID_ARGUMENT);
        cl_event null_event = NULL;
        TEST_STATUS(clbnb_buffer_copy(ctx, q, c, 0, a, 0, 10, 1, &null_event, NULL), CLBNB_ERROR_NULL_ARGUMENT);
        /* a queue of another context */
        clbnb_context *other = test_context();
        TEST_STATUS(clbnb_buffer_copy(ctx, test_queue(other), c, 0, a, 0, 10, 0, NULL, NULL),
                    CLBNB_ERROR_WRONG_CONTEXT);
        clbnb_context_free(other);
        test_download(ctx, c, 0, got, 100);
        size_t touched = 0;
        for (int i = 0; i < 100; i++)
            touched += got[i] != TEST_POISON;
        TEST_CHECK(touched == 0, "failed calls wrote nothing (%zu bytes changed)", touched);
        clReleaseMemObject(a);
        clReleaseMemObject(b);
        clReleaseMemObject(c);
    }
    clbnb_context_free(ctx);
    return test_finish();
}
