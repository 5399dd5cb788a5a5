/*
 * clbnb_quant.h: quantization kernels, bit-compatible with bitsandbytes (CUDA build).
 * The numerical contract is docs/bnb-format-spec.md (section numbers below refer to it).
 *
 * All operations: inputs f32, f16 or bf16 unless noted; reductions (absmax, mean) run on the
 * device; nothing is read back to the host. Element counts may exceed 2^31.
 *
 * Non-finite inputs (documented behaviour, same as bitsandbytes' CUDA kernels):
 *   - absmax reductions use fmax, which ignores NaN: a NaN element does not poison its block's
 *     absmax; the NaN element itself gets code 0 (NF4/FP4/8-bit) and int8 code 0.
 *   - +-Inf in a block makes its absmax Inf: finite elements of that block quantize to the code of
 *     0 (x * 1/Inf = 0) and the Inf elements to the code of NaN (Inf * 0 = NaN) = code 0.
 *   - an all-zero block has absmax 0 and codes 0 (CUDA's 0 * (1/0) = NaN -> code 0).
 *   - dequantization multiplies table values by absmax, so a non-finite absmax gives non-finite
 *     output; the QuantState dequantizers refuse states whose host-side offset is non-finite
 *     (CLBNB_ERROR_NON_FINITE).
 */
#ifndef CLBNB_QUANT_H
#define CLBNB_QUANT_H

#include "clbnb_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum clbnb_quant_type {
    CLBNB_QUANT_NF4 = 0,       /* NormalFloat4, spec 1.1                                      */
    CLBNB_QUANT_FP4 = 1,       /* bitsandbytes FP4 (not OCP E2M1), spec 1.2                   */
    CLBNB_QUANT_BLOCKWISE8 = 2 /* 8-bit block-wise with a 256-entry code, spec 2              */
} clbnb_quant_type;

CLBNB_API const char *clbnb_quant_type_name(clbnb_quant_type type);

/* The built-in code tables (float32, bit-exact from the spec): the 16-entry NF4 and FP4 tables
 * (FP4 in bit-pattern order, index 8 stored as +0.0 as bitsandbytes stores it) and the 256-entry
 * signed dynamic map of torch 2.x (spec 1.3). */
CLBNB_API const float *clbnb_code_nf4(void);
CLBNB_API const float *clbnb_code_fp4(void);
CLBNB_API const float *clbnb_code_dynamic(void);

/* ============================================================================================ */
/* Row-wise int8 (LLM.int8 int8_vectorwise_quant, SwitchBack quantize_rowwise), spec 5.1/5.6     */
/* ============================================================================================ */
typedef enum clbnb_rowwise_mode {
    /* LLM.int8: q = rint(x * (127 / absmax)), row stats f32 */
    CLBNB_ROWWISE_LLM_INT8 = 0,
    /* SwitchBack: q = rint(127 * (x / absmax)), row stats f16 (f32 also accepted) */
    CLBNB_ROWWISE_SWITCHBACK = 1
} clbnb_rowwise_mode;

/* x [rows, cols] (f32/f16/bf16) -> q [rows, cols] i8, row_stats [rows] (f32 or f16).
 * threshold > 0 enables outlier handling (spec 5.1): elements with |x| >= threshold are left out
 * of the row absmax; the columns holding one are written sorted ascending to outlier_cols (i32,
 * capacity >= cols) with their number in outlier_count (i32, n >= 1), and zeroed in q (every row
 * when rows > 1; only the outlier elements when rows == 1). With threshold == 0 outlier_cols and
 * outlier_count may be NULL. A row whose absmax is 0 gets codes 0. */
CLBNB_API clbnb_status clbnb_quantize_rowwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                              const clbnb_matrix *q, const clbnb_vector *row_stats,
                                              clbnb_rowwise_mode mode, float threshold,
                                              const clbnb_vector *outlier_cols, const clbnb_vector *outlier_count,
                                              cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* q [rows, cols] i8, row_stats [rows] (f32 or f16) -> out [rows, cols] (f32/f16/bf16):
 * LLM_INT8: out = q * stats * fl32(1/127); SWITCHBACK: out = stats * q * (1/127). */
CLBNB_API clbnb_status clbnb_dequantize_rowwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *q,
                                                const clbnb_vector *row_stats, const clbnb_matrix *out,
                                                clbnb_rowwise_mode mode, cl_uint num_events, const cl_event *wait_list,
                                                cl_event *event);

/* ============================================================================================ */
/* Global int8 (SwitchBack quantize_global / quantize_global_transpose), spec 5.6                */
/* ============================================================================================ */

/* x [rows, cols] -> q i8 ([rows, cols], or [cols, rows] when transpose != 0), absmax (n >= 1, f32
 * or the dtype of x). q = rint(127 * (x * (1/absmax))). The absmax is a device reduction. */
CLBNB_API clbnb_status clbnb_quantize_global(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                             const clbnb_matrix *q, const clbnb_vector *absmax, int transpose,
                                             cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* ============================================================================================ */
/* Column-wise int8 with transpose, and int8 double quant, spec 5.2/5.6                         */
/* ============================================================================================ */

/* x [rows, cols] -> qT [cols, rows] i8, col_stats [cols] (f16 or f32): q = rint(127 * (x / m_c)). */
CLBNB_API clbnb_status clbnb_quantize_columnwise_transpose(clbnb_context *ctx, cl_command_queue queue,
                                                           const clbnb_matrix *x, const clbnb_matrix *qT,
                                                           const clbnb_vector *col_stats, cl_uint num_events,
                                                           const cl_event *wait_list, cl_event *event);

/* int8_double_quant (spec 5.2): x [rows, cols] f16 (f32/bf16 accepted and used as is) ->
 * out_row i8 [rows, cols] + row_stats f32 [rows] (= clbnb_quantize_rowwise LLM_INT8) and
 * out_col i8 [rows, cols] (not transposed) + col_stats f32 [cols], with
 * out_col = rint(fp16(x * 127) / col_stats); outlier handling as for the row part. */
CLBNB_API clbnb_status clbnb_int8_double_quant(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                               float threshold, const clbnb_matrix *out_row,
                                               const clbnb_matrix *out_col, const clbnb_vector *row_stats,
                                               const clbnb_vector *col_stats, const clbnb_vector *outlier_cols,
                                               const clbnb_vector *outlier_count, cl_uint num_events,
                                               const cl_event *wait_list, cl_event *event);

/* ============================================================================================ */
/* Block-wise 8-bit and 4-bit (spec 2): flat tensors, consecutive blocks of `blocksize` elements */
/* ============================================================================================ */

/* Number of absmax blocks for n elements: ceil(n / blocksize). */
CLBNB_API size_t clbnb_blocks_count(size_t n, size_t blocksize);
/* Packed 4-bit bytes for n elements: ceil(n / 2). */
CLBNB_API size_t clbnb_packed_4bit_bytes(size_t n);

/* 8-bit: x (n elements) -> codes u8 [n], absmax f32 [ceil(n/bs)]. `code` is a f32 vector of 256
 * entries on the device, or NULL for the built-in dynamic map. Nearest code, ties to the even
 * index (spec 2.3). blocksize: any power of two >= 16 (bitsandbytes CUDA: 64..4096). */
CLBNB_API clbnb_status clbnb_quantize_blockwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                                const clbnb_vector *code, size_t blocksize, const clbnb_vector *codes,
                                                const clbnb_vector *absmax, cl_uint num_events,
                                                const cl_event *wait_list, cl_event *event);

/* out = RN_T(code[q] * absmax[i / bs]); out dtype f32/f16/bf16. */
CLBNB_API clbnb_status clbnb_dequantize_blockwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *codes,
                                                  const clbnb_vector *absmax, const clbnb_vector *code,
                                                  size_t blocksize, const clbnb_vector *out, cl_uint num_events,
                                                  const cl_event *wait_list, cl_event *event);

/* As clbnb_dequantize_blockwise, with the absmax given as a plain or nested descriptor (declared
 * below; nested: absmax = fl32(fl32(code2[q] * absmax2[b / blocksize2]) + offset), read directly by
 * the kernel). Used for nested 8-bit QuantStates (bitsandbytes' quantize_blockwise(nested=True)). */
struct clbnb_absmax;
CLBNB_API clbnb_status clbnb_dequantize_blockwise_ex(clbnb_context *ctx, cl_command_queue queue,
                                                     const clbnb_vector *codes, const struct clbnb_absmax *absmax,
                                                     const clbnb_vector *code, size_t blocksize,
                                                     const clbnb_vector *out, cl_uint num_events,
                                                     const cl_event *wait_list, cl_event *event);

/* 4-bit: x (n elements) -> packed u8 [ceil(n/2)] (element 2k in the high nibble; odd n pads with
 * the code of 0.0), absmax f32 [ceil(n/bs)]. blocksize in {32, 64, ..., 4096}. */
CLBNB_API clbnb_status clbnb_quantize_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                           clbnb_quant_type type, size_t blocksize, const clbnb_vector *packed,
                                           const clbnb_vector *absmax, cl_uint num_events, const cl_event *wait_list,
                                           cl_event *event);

/* Absmax of a block-wise state: plain f32, or nested (double-quantized, spec 3). */
typedef struct clbnb_absmax {
    clbnb_vector absmax;  /* f32 [n_blocks] (plain) or u8 [n_blocks] (nested)                 */
    clbnb_vector absmax2; /* nested: f32 [ceil(n_blocks / blocksize2)]; mem NULL when plain    */
    clbnb_vector code2;   /* nested: f32 [256]; mem NULL selects the built-in dynamic map      */
    clbnb_vector offset;  /* nested: f32 [1], the mean that was subtracted                     */
    size_t blocksize2;    /* nested: 256 for 4-bit states                                      */
} clbnb_absmax;

/* Plain f32 absmax descriptor. */
CLBNB_API clbnb_absmax clbnb_absmax_plain(const clbnb_vector *absmax);

/* out = RN_T(table[nibble] * absmax[i / bs]), reading plain or nested absmax directly
 * (nested: absmax = fl32(fl32(code2[q] * absmax2[b / blocksize2]) + offset)). */
CLBNB_API clbnb_status clbnb_dequantize_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *packed,
                                             const clbnb_absmax *absmax, clbnb_quant_type type, size_t blocksize,
                                             const clbnb_vector *out, cl_uint num_events, const cl_event *wait_list,
                                             cl_event *event);

/* Double quantization of a f32 absmax vector (spec 3): offset = mean(absmax) (device reduction),
 * qabsmax u8 = quantize_blockwise(absmax - offset, dynamic map, blocksize2), absmax2 f32. */
CLBNB_API clbnb_status clbnb_absmax_compress(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *absmax,
                                             size_t blocksize2, const clbnb_vector *qabsmax,
                                             const clbnb_vector *absmax2, const clbnb_vector *offset,
                                             cl_uint num_events, const cl_event *wait_list, cl_event *event);

/* Reconstructs f32 absmax from a nested descriptor. */
CLBNB_API clbnb_status clbnb_absmax_decompress(clbnb_context *ctx, cl_command_queue queue, const clbnb_absmax *nested,
                                               const clbnb_vector *absmax_out, cl_uint num_events,
                                               const cl_event *wait_list, cl_event *event);

/* ============================================================================================ */
/* QuantState: a block-wise state owning its device buffers (bitsandbytes' QuantState)          */
/* ============================================================================================ */
#define CLBNB_MAX_DIMS 8

typedef struct clbnb_quant_state {
    clbnb_quant_type quant_type;
    size_t blocksize;
    clbnb_dtype dtype; /* original dtype of the quantized tensor                       */
    int ndim;
    size_t shape[CLBNB_MAX_DIMS];
    size_t numel;
    size_t n_blocks;
    cl_mem absmax; /* f32 [n_blocks], or u8 [n_blocks] when nested               */
    cl_mem code;   /* f32 [16] (4-bit) or [256] (8-bit)                          */
    int nested;
    cl_mem nested_absmax; /* f32 [ceil(n_blocks / nested_blocksize)]                     */
    cl_mem nested_code;   /* f32 [256]                                                   */
    cl_mem offset_buf;    /* f32 [1] on the device                                       */
    float offset;         /* host copy of the offset, valid when offset_valid            */
    int offset_valid;
    size_t nested_blocksize;
} clbnb_quant_state;

/* Allocates the state's device buffers (the code buffer is filled with the built-in table).
 * type: NF4/FP4 (blocksize 32..4096) or BLOCKWISE8; nested selects double quantization. */
CLBNB_API clbnb_status clbnb_quant_state_init(clbnb_quant_state **out, clbnb_context *ctx, cl_command_queue queue,
                                              clbnb_quant_type type, size_t blocksize, clbnb_dtype dtype, int ndim,
                                              const size_t *shape, int nested);
CLBNB_API void clbnb_quant_state_free(clbnb_quant_state *qs);

/* Size in bytes of the quantized data for a state (packed nibbles or 8-bit codes). */
CLBNB_API size_t clbnb_quant_state_data_bytes(const clbnb_quant_state *qs);

/* Quantizes x (numel elements of qs->dtype) into `data` and the state's absmax (compressing it when
 * qs->nested). */
CLBNB_API clbnb_status clbnb_quantize_state(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                            clbnb_quant_state *qs, const clbnb_vector *data, cl_uint num_events,
                                            const cl_event *wait_list, cl_event *event);

/* Dequantizes `data` with the state into out (f32/f16/bf16, numel elements). */
CLBNB_API clbnb_status clbnb_dequantize_state(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *data,
                                              const clbnb_quant_state *qs, const clbnb_vector *out, cl_uint num_events,
                                              const cl_event *wait_list, cl_event *event);

/* Dequantizes elements [first, first + count) of the tensor into out (f32/f16/bf16, count
 * elements): the same values clbnb_dequantize_state writes there. `data` is the whole tensor's
 * data, as for clbnb_dequantize_state. first must be a multiple of the blocksize (times the nested
 * blocksize for a nested state: CLBNB_ERROR_INVALID_ARGUMENT otherwise); count >= 1 and first +
 * count <= numel (CLBNB_ERROR_INVALID_SHAPE otherwise). For tensors dequantized piece by piece
 * (e.g. larger than device memory). */
CLBNB_API clbnb_status clbnb_dequantize_state_range(clbnb_context *ctx, cl_command_queue queue,
                                                    const clbnb_vector *data, const clbnb_quant_state *qs, size_t first,
                                                    size_t count, const clbnb_vector *out, cl_uint num_events,
                                                    const cl_event *wait_list, cl_event *event);

/* Reads the nested offset back to qs->offset (blocking). */
CLBNB_API clbnb_status clbnb_quant_state_sync_offset(clbnb_quant_state *qs, cl_command_queue queue);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_QUANT_H */
