/* gemm_4bit_mma.c: the large-batch 4-bit GEMM on NVIDIA tensor cores (nv_mma path), as
 * bitsandbytes computes it for fp16: W is dequantized to f16 (RN_f16(fl32(code * absmax)), plain or
 * nested absmax) into a scratch buffer, then out = x * W^T on mma.sync m16n8k16 with f32
 * accumulation, bias and output conversion fused. Takes f16 activations; other dtypes use the
 * dequantize + CLBlast SGEMM variant. */
#include "gemm_4bit_internal.h"

clbnb_status clbnb_g4_dequant_mma(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                  const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                                  size_t blocksize, const clbnb_vector *bias, const clbnb_matrix *out,
                                  cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const size_t m = x->rows, k = x->cols, n = out->cols;
    size_t elems;
    if (clbnb_mul_overflows(n, k, &elems) || elems > SIZE_MAX / 2) return CLBNB_ERROR_SIZE_OVERFLOW;
    cl_mem w16;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, elems * 2, &w16));
    clbnb_vector wv = clbnb_vector_make(w16, 0, elems, CLBNB_DTYPE_F16);
    cl_event dequantized = NULL;
    clbnb_status s =
        clbnb_dequantize_4bit(ctx, queue, packed, absmax, type, blocksize, &wv, num_events, wait_list, &dequantized);
    if (s == CLBNB_SUCCESS)
        s = clbnb_mma_gemm_f16(ctx, queue, x->mem, x->offset, x->ld, w16, 0, k, m, n, k, out, bias, 1, &dequantized,
                               event);
    if (dequantized) clReleaseEvent(dequantized);
    clbnb_scratch_release(ctx, queue, w16);
    return s;
}
