/* consumer.c: the README's linking example, built against an installed clbnb. It opens the
 * default device, copies a buffer with a clbnb kernel and checks the result. */
#include <clbnb.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    clbnb_context *ctx = NULL;
    clbnb_status s = clbnb_context_init_from_selector(&ctx, NULL); /* CLBNB_DEVICE or the default */
    if (s != CLBNB_SUCCESS) {
        fprintf(stderr, "no device: %s\n", clbnb_status_string(s));
        return 1;
    }
    cl_context cl = clbnb_context_cl_context(ctx);
    cl_command_queue queue = clbnb_context_default_queue(ctx);
    char in[64] = "hello from clbnb", out[64] = {0};
    cl_mem a = clCreateBuffer(cl, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof in, in, NULL);
    cl_mem b = clCreateBuffer(cl, CL_MEM_READ_WRITE, sizeof out, NULL, NULL);
    s = clbnb_buffer_copy(ctx, queue, b, 0, a, 0, sizeof in, 0, NULL, NULL);
    if (s == CLBNB_SUCCESS) clEnqueueReadBuffer(queue, b, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL);
    printf("%s on %s: %s\n", clbnb_status_string(s), clbnb_context_device_info(ctx)->device_name, out);
    clReleaseMemObject(a);
    clReleaseMemObject(b);
    clbnb_context_free(ctx);
    return s == CLBNB_SUCCESS && strcmp(in, out) == 0 ? 0 : 1;
}
