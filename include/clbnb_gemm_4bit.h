/*
 * clbnb_gemm_4bit.h: 4-bit (NF4 / FP4) dequantizing matrix products, bitsandbytes' gemv_4bit /
 * gemm_4bit / MatMul4Bit (bnb-format-spec.md sections 1.1, 1.2, 2.5, 2.6, 3 and 6).
 *
 * The weight W [N, K] (out_features x in_features) is a bitsandbytes 4-bit state:
 *   packed  u8 vector of at least ceil(N*K / 2) bytes: the FLAT weight, element (n, k) is flat index
 *           i = n*K + k, two per byte, element 2j in the HIGH nibble of byte j (spec 2.5). When K is
 *           odd a row starts in the middle of a byte; that is allowed.
 *   absmax  clbnb_absmax (clbnb_quant.h): plain f32 [ceil(N*K / blocksize)], or nested
 *           (double-quantized, spec 3): u8 [n_blocks] + f32 absmax2 [ceil(n_blocks / blocksize2)]
 *           + f32 code2 [256] (mem NULL = the built-in dynamic map) + f32 offset [1];
 *           blocksize2 a power of two (256 for bitsandbytes' 4-bit states).
 *   type    CLBNB_QUANT_NF4 or CLBNB_QUANT_FP4 (the built-in 16-entry tables of spec 1.1 / 1.2)
 *   blocksize  32, 64, ..., 4096; block of element i is i / blocksize (blocks straddle rows when K is
 *           not a multiple of the blocksize: allowed).
 *
 * Numerics (every variant and path): the weight value is w = fl32(table[nibble] * absmax[b]), with a
 * nested absmax decoded first as fl32(fl32(code2[q] * absmax2[b / blocksize2]) + offset[0]);
 * products x * w and their sums are f32 (the generic path fuses each product into its sum with fma;
 * the summation order depends on the variant and path, so
 * results agree to f32 accumulation accuracy, not bit for bit); the bias is added in f32 and the
 * sum rounded once (to nearest even) to the output dtype.
 * Exception, the nv_mma path (NVIDIA tensor cores) with f16 activations: SMALL_BATCH and
 * DEQUANT_SGEMM compute as bitsandbytes does for fp16, w = RN_f16(fl32(table * absmax)) and f16 x f16
 * products summed in f32 (mma.sync). GEMV keeps f32 weights on every path.
 *
 * Activations and outputs: clbnb_matrix (row-major with ld and byte offset), dtype f32, f16 or bf16
 * each (x and out may differ); bias: vector of N elements f32/f16/bf16, or NULL.
 * Output regions must not overlap input regions of the same cl_mem (CLBNB_ERROR_INVALID_ARGUMENT).
 *
 * Variants (kernel family CLBNB_FAMILY_GEMM_4BIT; paths generic = GPU shape with work-groups and a
 * local-memory reduction, cpu = barrier-free, one work-item per output row):
 *   GEMV          each W row decoded per row of x (the M = 1 kernel; for M > 1 it decodes W M times)
 *   SMALL_BATCH   each W element decoded once for up to 8 rows of x (M = 2..64); on the nv_mma
 *                 path with f16 x, decoded to f16 in registers for up to 64 rows of x and multiplied
 *                 on tensor cores (cl/gemm_4bit_mma.cl)
 *   DEQUANT_SGEMM W dequantized to f32 in tiles of rows in a scratch buffer (x converted to f32 when
 *                 f16/bf16), CLBlast SGEMM on the caller's queue, then a bias / conversion epilogue.
 *                 On the nv_mma path with f16 x: W dequantized to f16 (the bits of
 *                 clbnb_dequantize_4bit) and multiplied on tensor cores with f32 sums; where K is a
 *                 multiple of 16 and the packed offset 8-byte aligned, the GEMM decodes W tile by
 *                 tile in local memory (no scratch), otherwise into a scratch buffer first.
 *   AUTO picks GEMV for M = 1, SMALL_BATCH for M <= 64 (M <= 32 on the nv_mma path with f16 x)
 *   and DEQUANT_SGEMM above (on CPU devices SMALL_BATCH for every M > 1: CLBlast SGEMM is slower
 *   there).
 * The fused variants have a fast kernel for K a multiple of the blocksize and a 16-byte aligned
 * packed offset; any other K (odd, 1, rows straddling bytes and blocks) runs a general kernel.
 * DEQUANT_SGEMM and grad_input need an in-order queue (CLBlast calls take no wait list) and
 * allocate device scratch (at most about 64 MiB for the weight tile) that is released as soon as
 * the commands are enqueued.
 */
#ifndef CLBNB_GEMM_4BIT_H
#define CLBNB_GEMM_4BIT_H

#include "clbnb_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clbnb_gemm_4bit_variant {
    CLBNB_GEMM_4BIT_AUTO = 0,
    CLBNB_GEMM_4BIT_GEMV = 1,
    CLBNB_GEMM_4BIT_SMALL_BATCH = 2,
    CLBNB_GEMM_4BIT_DEQUANT_SGEMM = 3,
    CLBNB_GEMM_4BIT_VARIANT_COUNT = 4
} clbnb_gemm_4bit_variant;

/* out[M, N] = x[M, K] * dequant(W)[N, K]^T (+ bias[N]).
 *   x    [M, K] f32/f16/bf16;  out [M, N] f32/f16/bf16;  bias NULL or [>= N] f32/f16/bf16
 *   packed u8 [>= ceil(N*K/2)], absmax as described above, type NF4/FP4, blocksize 32..4096.
 * Errors: CLBNB_ERROR_NULL_ARGUMENT (ctx, queue, x, packed, absmax, out, a buffer, a wait-list
 * event), CLBNB_ERROR_UNSUPPORTED_DTYPE (x/out/bias not float, packed not u8, absmax not f32 (plain)
 * or u8 (nested), absmax2/code2/offset not f32), CLBNB_ERROR_INVALID_QUANT_TYPE (not NF4/FP4),
 * CLBNB_ERROR_INVALID_BLOCKSIZE (blocksize not a power of two in 32..4096, blocksize2 not a power
 * of two), CLBNB_ERROR_INVALID_SHAPE (zero sizes, ld < cols, out.rows != x.rows),
 * CLBNB_ERROR_BUFFER_TOO_SMALL (packed, absmax, absmax2, code2, offset, bias shorter than needed, or a
 * region past its cl_mem), CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_ERROR_WRONG_CONTEXT,
 * CLBNB_ERROR_INVALID_ARGUMENT (wait list inconsistent, offsets not dtype-aligned, out overlapping
 * an input), OpenCL / CLBlast errors from enqueueing. N is out.cols, K is x.cols. */
CLBNB_API clbnb_status clbnb_gemm_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                       const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                                       size_t blocksize, const clbnb_vector *bias, const clbnb_matrix *out,
                                       cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* clbnb_gemm_4bit with the variant forced (for tests and benchmarks); AUTO = clbnb_gemm_4bit.
 * An unknown variant returns CLBNB_ERROR_INVALID_ARGUMENT. Every variant accepts every shape. */
CLBNB_API clbnb_status clbnb_gemm_4bit_ex(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                          const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                                          size_t blocksize, const clbnb_vector *bias, const clbnb_matrix *out,
                                          clbnb_gemm_4bit_variant variant, cl_uint num_events,
                                          const cl_event *wait_list, cl_event *event);

/* The variant AUTO picks for M rows of f16 activations on this context's device (for reporting). */
CLBNB_API clbnb_gemm_4bit_variant clbnb_gemm_4bit_auto_variant(const clbnb_context *ctx, size_t m);

/* Backward of MatMul4Bit with respect to its input:
 *   grad_x[M, K] = grad_out[M, N] * dequant(W)[N, K]
 * grad_out [M, N] and grad_x [M, K] f32/f16/bf16; W as in clbnb_gemm_4bit (N = grad_out.cols,
 * K = grad_x.cols). Runs dequantize (f32 row tiles) + CLBlast SGEMM accumulating over the tiles in
 * f32, then rounds once to grad_x's dtype. Errors as clbnb_gemm_4bit. */
CLBNB_API clbnb_status clbnb_gemm_4bit_grad_input(clbnb_context *ctx, cl_command_queue queue,
                                                  const clbnb_matrix *grad_out, const clbnb_vector *packed,
                                                  const clbnb_absmax *absmax, clbnb_quant_type type, size_t blocksize,
                                                  const clbnb_matrix *grad_x, cl_uint num_events,
                                                  const cl_event *wait_list, cl_event *event);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_GEMM_4BIT_H */
