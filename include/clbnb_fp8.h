/*
 * clbnb_fp8.h: bitsandbytes' FP8-simulated matmuls (bnb-format-spec.md sections 1.4 and 7;
 * bitsandbytes.research, removed in PR #1871, last in 0.49.2). Nothing here uses hardware FP8: the
 * operands are quantized to a 256-entry create_fp8_map code, dequantized again (rounded to the
 * operand's dtype) and multiplied in f32 with CLBlast SGEMM.
 *
 * The codes are bitsandbytes' own FP8 maps (bias 2^(e-1), inverted exponent, no NaN/Inf), NOT OCP
 * FP8 E4M3/E5M2: forward fw_code = create_fp8_map(1, 4, 3, 8) ("E4M3-like"), backward bw_code =
 * create_fp8_map(1, 5, 2, 8) ("E5M2-like").
 *
 * Value -> code mapping everywhere (block-wise and tensor-wise): the library's 8-bit rule (spec 2.3:
 * k = number of f32 midpoints below x, ties to the even index). Note: for the signed FP8 maps, whose
 * entries 127 / 128 are +0.0 / -0.0, an input of exactly 0 gets index 128 (-0.0) under this rule
 * while bitsandbytes' CUDA binary search returns 127 (+0.0): codes differ, dequantized values differ
 * only in the sign of zero.
 */
#ifndef CLBNB_FP8_H
#define CLBNB_FP8_H

#include "clbnb_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* bitsandbytes functional.create_fp8_map(signed, exponent_bits, precision_bits, total_bits), bit-exact:
 * bias = 2^(e-1); exponent field E = 0: m * 2^-bias (subnormal, m = mantissa fraction), E > 0:
 * (1 + m) * 2^-(E - bias - 1); both signs when is_signed; sorted (stable: +0.0 before -0.0), padded
 * with +0.0 to 256 entries when total_bits < 8 and sorted again, then divided (f32) by the maximum.
 * Requires exponent_bits >= 1, precision_bits >= 0, exponent_bits + precision_bits + (is_signed != 0)
 * == total_bits, 1 <= total_bits <= 8 (CLBNB_ERROR_INVALID_ARGUMENT otherwise, or when a raw value
 * does not fit f32). E4M3 (1,4,3,8): raw max 480; E5M2 (1,5,2,8): raw max 114688. */
CLBNB_API clbnb_status clbnb_fp8_map_create(float code[256], int is_signed, int exponent_bits, int precision_bits,
                                            int total_bits);

/* bitsandbytes research get_block_sizes: the next power of two >= features, clamped to [64, 4096]
 * (features 0 -> 1024, bitsandbytes' initial value). bsz = clbnb_fp8_block_size(in_features), bsz2 = ...(out_features).
 */
CLBNB_API size_t clbnb_fp8_block_size(size_t features);

/* Tensor-wise quantization (bitsandbytes functional.quantize / dequantize, CUDA kQuantize):
 * absmax[0] = max |x| (a device reduction; fmax: NaN elements do not count), codes[i] =
 * nearest(code, fl32(x[i] / absmax)) with a true (IEEE) division; x f32/f16/bf16 (n >= 1), codes u8 [n],
 * absmax f32 [1], code f32 [256] sorted. An all-zero x has absmax 0 and codes 0 (0/0 = NaN -> 0). */
CLBNB_API clbnb_status clbnb_quantize_tensorwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                                 const clbnb_vector *code, const clbnb_vector *codes,
                                                 const clbnb_vector *absmax, cl_uint num_events,
                                                 const cl_event *wait_list, cl_event *event);
/* out[i] = RN_T(fl32(code[codes[i]] * absmax[0])), out f32/f16/bf16 with out->n elements (codes >= n). */
CLBNB_API clbnb_status clbnb_dequantize_tensorwise(clbnb_context *ctx, cl_command_queue queue,
                                                   const clbnb_vector *codes, const clbnb_vector *absmax,
                                                   const clbnb_vector *code, const clbnb_vector *out,
                                                   cl_uint num_events, const cl_event *wait_list, cl_event *event);

typedef enum clbnb_fp8_mode {
    /* matmul_fp8_mixed: A block-wise (fw_code, blocksize bsz), B tensor-wise (fw_code); backward:
     * grad_out block-wise (bw_code, bsz2); grad_A = fp8(G) fp8(B)^T; grad_B = A^T G in full precision */
    CLBNB_FP8_MIXED = 0,
    /* matmul_fp8_global: A, B tensor-wise (fw_code); backward: G tensor-wise (bw_code);
     * grad_A = fp8(G) fp8(B)^T; grad_B = fp8(A)^T fp8(G) (A^T tensor-wise with fw_code = fp8(A)^T) */
    CLBNB_FP8_GLOBAL = 1
} clbnb_fp8_mode;

/* Forward: out [M, N] = RN_out(fp8(A) @ fp8(B)), f32 products and sums (CLBlast SGEMM, one rounding).
 * a [M, K] f32/f16/bf16. b: when b_trans == 0 the matrix B [K, N]; when b_trans != 0 a [N, K]
 * matrix W with B = W^T (bitsandbytes' LinearFP8 passes weight.t(); tensor-wise quantization is
 * element-wise, so both layouts give the same values). fp8(X) = RN_dtype(X)(dequant(quant(X))), with
 * A block-wise over its flat row-major elements (bsz: power of two in [16, 65536]; ignored by
 * CLBNB_FP8_GLOBAL) and B tensor-wise. fw_code: f32 [256] on the device, sorted. out [M, N] float.
 * Errors as everywhere: NULL, dtype, shape (a.cols != K, out shape, zero sizes), blocksize, buffers,
 * overlapping output (CLBNB_ERROR_INVALID_ARGUMENT), wrong context. Commands of one call are ordered on
 * the queue; *event (when not NULL) completes when the whole call has completed. */
CLBNB_API clbnb_status clbnb_matmul_fp8_forward(clbnb_context *ctx, cl_command_queue queue, clbnb_fp8_mode mode,
                                                const clbnb_matrix *a, const clbnb_matrix *b, int b_trans,
                                                const clbnb_vector *fw_code, size_t bsz, const clbnb_matrix *out,
                                                cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* Backward of clbnb_matmul_fp8_forward for the same a, b, b_trans: grad_out G [M, N] float;
 * grad_a [M, K] (NULL: not computed) = fp8_bw(G) @ fp8(B)^T; grad_b (NULL: not computed) in the
 * layout of b ([K, N], or [N, K] = grad_W when b_trans) = A^T G (mixed: A rounded to G's dtype, as
 * bitsandbytes casts it) or fp8(A)^T fp8_bw(G) (global). fp8_bw(G): block-wise with bw_code and bsz2
 * (mixed; power of two in [16, 65536]) or tensor-wise with bw_code (global). */
CLBNB_API clbnb_status clbnb_matmul_fp8_backward(clbnb_context *ctx, cl_command_queue queue, clbnb_fp8_mode mode,
                                                 const clbnb_matrix *a, const clbnb_matrix *b, int b_trans,
                                                 const clbnb_matrix *grad_out, const clbnb_vector *fw_code,
                                                 const clbnb_vector *bw_code, size_t bsz2, const clbnb_matrix *grad_a,
                                                 const clbnb_matrix *grad_b, cl_uint num_events,
                                                 const cl_event *wait_list, cl_event *event);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_FP8_H */
