/* gemm_4bit_mma.c: the large-batch 4-bit GEMM on NVIDIA tensor cores (nv_mma path), as
 * bitsandbytes computes it for fp16: W is dequantized to f16 (RN_f16(fl32(code * absmax)), plain or
 * nested absmax), then out = x * W^T on mma.sync m16n8k16 with f32 accumulation, bias and output
 * conversion fused. Takes f16 activations; other dtypes use the dequantize + CLBlast SGEMM variant.
 *
 * Where K is a multiple of 16 and the packed offset 8-byte aligned (every bitsandbytes checkpoint),
 * the GEMM decodes W itself, stage by stage into local memory (g4_gemm_mma in cl/mma_gemm.cl): the
 * f16 weights (2 bytes each, written then read back) never reach global memory, and the sums are
 * those of the f16 GEMM over the dequantized weights, bit for bit (tests/test_gemm_4bit_mma.c
 * compares the two routes' bytes). Other shapes dequantize into a scratch buffer first. */
#include "gemm_4bit_internal.h"

/* The decode fused into the GEMM where the shape allows it and M is small enough: each work-group
 * row of 128 rows of x decodes all of W again, where dequantizing first writes and reads W once
 * (2.5 bytes per weight). H100, 4096 x 4096 / 8192 x 28672, fused against dequantize first:
 * M = 128 52.9 / 311.8 us against 72.5 / 614; M = 512 121.9-122.1 / 1131-1133 against
 * 145.5-145.7 / 1377-1418; M = 2048 (4096 x 4096, the Linear4bit forward) 330.5 against 272-278 us
 * (before the loads moved after the decode, 8 % off at M = 128). CLBNB_G4_DEQUANT_FUSE=0|1 turns it
 * off / on for any M (development knob, read per call: A/B runs and tests of both routes). */
int clbnb_g4_decode_fits(const clbnb_g4_weight *w, size_t k) {
    return k % 16 == 0 && w->blocksize >= 16 && w->poff % 8 == 0;
}

static int fuse_decode(const clbnb_g4_weight *w, size_t m, size_t k) {
    return clbnb_g4_decode_fits(w, k) && clbnb_env_switch("CLBNB_G4_DEQUANT_FUSE", m <= 512);
}

clbnb_status clbnb_g4_dequant_mma(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                  const clbnb_g4_weight *w, const clbnb_vector *packed, const clbnb_absmax *absmax,
                                  clbnb_quant_type type, const clbnb_vector *bias, const clbnb_matrix *out,
                                  cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const size_t m = x->rows, k = x->cols, n = out->cols;
    if (fuse_decode(w, m, k))
        return clbnb_mma_gemm_f16(ctx, queue, x->mem, x->offset, x->ld, NULL, 0, 0, w, m, n, k, out, bias, num_events,
                                  wait_list, event);
    size_t elems;
    if (clbnb_mul_overflows(n, k, &elems) || elems > SIZE_MAX / 2) return CLBNB_ERROR_SIZE_OVERFLOW;
    cl_mem w16;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, elems * 2, &w16));
    clbnb_vector wv = clbnb_vector_make(w16, 0, elems, CLBNB_DTYPE_F16);
    cl_event dequantized = NULL;
    clbnb_status s =
        clbnb_dequantize_4bit(ctx, queue, packed, absmax, type, w->blocksize, &wv, num_events, wait_list, &dequantized);
    if (s == CLBNB_SUCCESS)
        s = clbnb_mma_gemm_f16(ctx, queue, x->mem, x->offset, x->ld, w16, 0, k, NULL, m, n, k, out, bias, 1,
                               &dequantized, event);
    if (dequantized) clReleaseEvent(dequantized);
    clbnb_scratch_release(ctx, queue, w16);
    return s;
}
