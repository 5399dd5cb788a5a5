/* gemm_4bit_internal.h: what gemm_4bit.c and gemm_4bit_large.c share (not installed). */
#ifndef CLBNB_GEMM_4BIT_INTERNAL_H
#define CLBNB_GEMM_4BIT_INTERNAL_H

#include "internal.h"

/* A validated 4-bit weight, as the kernels take it (offsets in elements of each buffer's type;
 * without nesting absmax2 / code2 / offs repeat absmax as dummies). */
typedef struct clbnb_g4_weight {
    cl_mem packed, absmax, absmax2, code2, offs;
    size_t poff, aoff, a2off, c2off, ooff;
    int nested, log2bs, log2bs2, qtype;
    size_t blocksize;
} clbnb_g4_weight;

/* Validates the weight of an [n, k] product (packed, absmax, type, blocksize) and fills *w. */
CLBNB_INTERNAL clbnb_status clbnb_g4_check_weight(clbnb_context *ctx, cl_command_queue queue,
                                                  const clbnb_vector *packed, const clbnb_absmax *absmax,
                                                  clbnb_quant_type type, size_t blocksize, size_t n, size_t k,
                                                  clbnb_g4_weight *w);
/* CLBNB_ERROR_INVALID_ARGUMENT when out overlaps `in` or any weight / bias region. */
CLBNB_INTERNAL clbnb_status clbnb_g4_check_out_overlap(const clbnb_matrix *out, const clbnb_matrix *in,
                                                       const clbnb_vector *packed, const clbnb_absmax *absmax,
                                                       const clbnb_vector *bias);
/* Sets the 14 weight arguments (CLBNB_G4_WEIGHT_PARAMS) from argument index `first`. */
CLBNB_INTERNAL clbnb_status clbnb_g4_set_weight_args(cl_kernel k, cl_uint first, const clbnb_g4_weight *w);

/* The DEQUANT_SGEMM variant (validated arguments). */
CLBNB_INTERNAL clbnb_status clbnb_g4_dequant_sgemm(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                                   const clbnb_g4_weight *w, const clbnb_vector *bias,
                                                   const clbnb_matrix *out, cl_uint num_events,
                                                   const cl_event *wait_list, cl_event *event);

/* Whether the f16 tensor-core GEMM can decode w itself for K = k (g4_gemm_mma in cl/mma_gemm.cl):
 * its pieces of 16 weights of one row lie in one 8-byte word and one absmax block when K is a
 * multiple of 16, the blocksize >= 16 and the packed offset 8-byte aligned. */
CLBNB_INTERNAL int clbnb_g4_decode_fits(const clbnb_g4_weight *w, size_t k);
/* The DEQUANT_SGEMM variant on the nv_mma path with f16 activations: W decoded to f16 inside the
 * tensor-core GEMM, or dequantized to f16 first where the shape needs it (gemm_4bit_mma.c; validated
 * arguments: w describes packed / absmax / type). */
CLBNB_INTERNAL clbnb_status clbnb_g4_dequant_mma(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                                 const clbnb_g4_weight *w, const clbnb_vector *packed,
                                                 const clbnb_absmax *absmax, clbnb_quant_type type,
                                                 const clbnb_vector *bias, const clbnb_matrix *out, cl_uint num_events,
                                                 const cl_event *wait_list, cl_event *event);
#endif
