/* validate.c: argument checks shared by every entry point. Each returns a specific status and
 * touches nothing, so a failed call leaves every buffer as it was. */
#include <stdarg.h>

#include "internal.h"

bool clbnb_mul_overflows(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return true;
    *out = a * b;
    return false;
}

bool clbnb_is_pow2(size_t v) { return v != 0 && (v & (v - 1)) == 0; }

size_t clbnb_round_up(size_t v, size_t multiple) { return (v + multiple - 1) / multiple * multiple; }

clbnb_status clbnb_check_context_queue(const clbnb_context *ctx, cl_command_queue queue) {
    if (!ctx || !queue) return CLBNB_ERROR_NULL_ARGUMENT;
    cl_context qctx = NULL;
    cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_CONTEXT, sizeof qctx, &qctx, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    if (qctx != ctx->context) return CLBNB_ERROR_WRONG_CONTEXT;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_check_wait_list(cl_uint num_events, const cl_event *wait_list) {
    if ((num_events > 0) != (wait_list != NULL)) return CLBNB_ERROR_INVALID_ARGUMENT;
    for (cl_uint i = 0; i < num_events; i++)
        if (!wait_list[i]) return CLBNB_ERROR_NULL_ARGUMENT;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_check_region(cl_mem mem, size_t offset, size_t bytes) {
    if (!mem) return CLBNB_ERROR_NULL_ARGUMENT;
    size_t size = 0;
    cl_int err = clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof size, &size, NULL);
    if (err != CL_SUCCESS) return (clbnb_status)err;
    if (offset > size || bytes > size - offset) return CLBNB_ERROR_BUFFER_TOO_SMALL;
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_check_vector(const clbnb_vector *v, uint32_t dtypes, size_t min_n) {
    if (!v || !v->mem) return CLBNB_ERROR_NULL_ARGUMENT;
    if ((unsigned)v->dtype >= CLBNB_DTYPE_COUNT || !(dtypes & CLBNB_DT(v->dtype))) return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (v->n < min_n || (v->n == 0 && min_n > 0))
        return v->n == 0 ? CLBNB_ERROR_INVALID_SHAPE : CLBNB_ERROR_BUFFER_TOO_SMALL;
    size_t bytes;
    if (clbnb_mul_overflows(v->n, clbnb_dtype_size(v->dtype), &bytes)) return CLBNB_ERROR_SIZE_OVERFLOW;
    if (v->offset % clbnb_dtype_size(v->dtype) != 0) return CLBNB_ERROR_INVALID_ARGUMENT;
    return clbnb_check_region(v->mem, v->offset, bytes);
}

clbnb_status clbnb_check_matrix(const clbnb_matrix *m, uint32_t dtypes) {
    if (!m || !m->mem) return CLBNB_ERROR_NULL_ARGUMENT;
    if ((unsigned)m->dtype >= CLBNB_DTYPE_COUNT || !(dtypes & CLBNB_DT(m->dtype))) return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (m->rows == 0 || m->cols == 0 || m->ld < m->cols) return CLBNB_ERROR_INVALID_SHAPE;
    size_t elems, bytes;
    if (clbnb_mul_overflows(m->rows - 1, m->ld, &elems) || elems > SIZE_MAX - m->cols) return CLBNB_ERROR_SIZE_OVERFLOW;
    if (clbnb_mul_overflows(elems + m->cols, clbnb_dtype_size(m->dtype), &bytes)) return CLBNB_ERROR_SIZE_OVERFLOW;
    if (m->offset % clbnb_dtype_size(m->dtype) != 0) return CLBNB_ERROR_INVALID_ARGUMENT;
    return clbnb_check_region(m->mem, m->offset, bytes);
}

static clbnb_status set_args_va(cl_kernel kernel, int first, int count, va_list ap) {
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < count && err == CL_SUCCESS; i++) {
        size_t size = va_arg(ap, size_t);
        const void *value = va_arg(ap, const void *);
        err = clSetKernelArg(kernel, (cl_uint)(first + i), size, value);
    }
    return (clbnb_status)err;
}

clbnb_status clbnb_set_args(cl_kernel kernel, int count, ...) {
    va_list ap;
    va_start(ap, count);
    clbnb_status s = set_args_va(kernel, 0, count, ap);
    va_end(ap);
    return s;
}

clbnb_status clbnb_set_args_from(cl_kernel kernel, int first, int count, ...) {
    va_list ap;
    va_start(ap, count);
    clbnb_status s = set_args_va(kernel, first, count, ap);
    va_end(ap);
    return s;
}

clbnb_status clbnb_enqueue(cl_command_queue queue, cl_kernel kernel, cl_uint dims, const size_t *global,
                           const size_t *local, cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    size_t rounded[3];
    for (cl_uint d = 0; d < dims; d++)
        rounded[d] = local ? clbnb_round_up(global[d], local[d]) : global[d];
    return (clbnb_status)clEnqueueNDRangeKernel(queue, kernel, dims, NULL, rounded, local, num_events, wait_list,
                                                event);
}
