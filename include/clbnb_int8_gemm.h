/*
 * clbnb_int8_gemm.h: int8 GEMM C = A * B^T with exact int32 accumulation and the dequantization
 * and bias fused into the same kernel (bnb-format-spec.md sections 5.3-5.6).
 *
 *   A   i8 [M, K]  activations (row-wise quantized), clbnb_matrix with ld and byte offset
 *   B   i8 [N, K]  weights (out_features x in_features), row-major: B^T is what is multiplied
 *
 * Any M, N, K >= 1. int32 accumulation cannot overflow for K <= CLBNB_INT8_GEMM_MAX_K: every
 * product of two int8 values is at most 128 * 128 = 16384 in magnitude, and
 * 16384 * 131071 < 2^31 (for row-wise quantized data in [-127, 127] the bound 127*127*K < 2^31
 * would allow K = 133144). Larger K is refused with CLBNB_ERROR_K_TOO_LARGE.
 *
 * Paths (family CLBNB_FAMILY_INT8_GEMM): nv_mma (inline PTX mma.sync m16n8k32 on NVIDIA sm_80+),
 * dot4 (4-way int8 dot: PTX dp4a / cl_khr_integer_dot_product / amdgcn sdot4 / emulation),
 * generic (local-memory tiles) and cpu (barrier-free). All give identical bits.
 */
#ifndef CLBNB_INT8_GEMM_H
#define CLBNB_INT8_GEMM_H

#include "clbnb_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CLBNB_INT8_GEMM_MAX_K 131071

/* C [M, N] i32 = A [M, K] i8 * B [N, K]^T i8 (bitsandbytes int8_linear_matmul). */
CLBNB_API clbnb_status clbnb_int8_linear_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                const clbnb_matrix *b, const clbnb_matrix *c, cl_uint num_events,
                                                const cl_event *wait_list, cl_event *event);

/* LLM.int8 scaled matmul (int8_linear_matmul + int8_mm_dequant, spec 5.4):
 *   out[m, n] = RN_T(fma(fl32(fl32(acc * row_stats[m]) * col_stats[n]), 6.200012e-05f, bias[n]))
 * row_stats f32 [M] (A's SCA), col_stats f32 [N] (B's SCB), bias [N] f16/f32/bf16 or NULL (0),
 * out f16 (bit-exact with bitsandbytes' CUDA kernel for an f16 bias), f32 or bf16. */
CLBNB_API clbnb_status clbnb_int8_scaled_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                const clbnb_matrix *b, const clbnb_vector *row_stats,
                                                const clbnb_vector *col_stats, const clbnb_vector *bias,
                                                const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                                cl_event *event);

/* SwitchBack int8_matmul_mixed_dequantize (spec 5.6): row-wise A stats x one global B scale:
 *   c = fl32(w * fl32(x[m] * fl32(acc * D))), D = fl32(1 / (127 * 127)),
 *   out = RN_T(RN_f16(c) + bias[n]) for f16 out (the f16 add of Triton), RN_T(c + bias[n]) otherwise.
 * state_x f16/f32 [M], state_w f16/f32 [>= 1] (element 0 used), bias f16/f32/bf16 [N] or NULL. */
CLBNB_API clbnb_status clbnb_int8_matmul_mixed_dequantize(clbnb_context *ctx, cl_command_queue queue,
                                                          const clbnb_matrix *a, const clbnb_matrix *b,
                                                          const clbnb_vector *state_x, const clbnb_vector *state_w,
                                                          const clbnb_vector *bias, const clbnb_matrix *out,
                                                          cl_uint num_events, const cl_event *wait_list,
                                                          cl_event *event);

/* SwitchBack int8_matmul_rowwise_dequantize: as mixed, with w = state_w[n] per output column. */
CLBNB_API clbnb_status clbnb_int8_matmul_rowwise_dequantize(clbnb_context *ctx, cl_command_queue queue,
                                                            const clbnb_matrix *a, const clbnb_matrix *b,
                                                            const clbnb_vector *state_x, const clbnb_vector *state_w,
                                                            const clbnb_vector *bias, const clbnb_matrix *out,
                                                            cl_uint num_events, const cl_event *wait_list,
                                                            cl_event *event);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_INT8_GEMM_H */
