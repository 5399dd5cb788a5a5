/*
 * clbnb_layers.h: bitsandbytes' quantized layers as opaque C objects that own their device buffers
 * (bnb-format-spec.md sections 5.5, 5.6, 6.1 and 7). Each layer runs forward (and backward where
 * the bitsandbytes original trains) on the device through the quantization, int8 GEMM and 4-bit
 * kernels, with CLBlast SGEMM for the full-precision products.
 *
 * Shapes follow torch.nn.Linear: weight W [N, K] = [out_features, in_features], activations
 * x [M, K] (M = batch rows; flatten leading dims), out [M, N]. Activations, outputs and gradients
 * are clbnb_matrix descriptors (row-major, ld, byte offset) of f32, f16 or bf16 unless stated.
 *
 * Conventions shared by every layer call:
 *   - ctx/queue/wait list/event as everywhere in clbnb. The commands of one call are ordered on the
 *     queue (CLBlast takes no wait list): the caller's wait list is honoured by a barrier before the
 *     first command, barriers are placed between steps on an out-of-order queue, and *event (when
 *     not NULL) is a marker that completes when the whole call has completed.
 *   - Every argument is validated before anything is enqueued; on error nothing is written.
 *     Errors: CLBNB_ERROR_NULL_ARGUMENT (NULL layer/queue/required matrix or buffer),
 *     CLBNB_ERROR_UNSUPPORTED_DTYPE, CLBNB_ERROR_INVALID_SHAPE (zero sizes, x.cols != K,
 *     out.cols != N, row counts that differ, ld < cols), CLBNB_ERROR_BUFFER_TOO_SMALL (a region past
 *     its cl_mem), CLBNB_ERROR_SIZE_OVERFLOW, CLBNB_ERROR_WRONG_CONTEXT (queue of another context),
 *     CLBNB_ERROR_INVALID_ARGUMENT (an output overlapping an input of the same cl_mem, inconsistent
 *     wait list, a call the layer's mode does not allow), CLBNB_ERROR_K_TOO_LARGE (int8 layers,
 *     K or N > CLBNB_INT8_GEMM_MAX_K), OpenCL / CLBlast errors from enqueueing.
 *   - A layer keeps grow-only device workspaces between calls (so that small calls allocate
 *     nothing). A layer object is therefore NOT thread-safe: serialise the calls on one layer, and
 *     issue them on one in-order queue (or order them with events), as one would use a torch module.
 *   - Weights given at creation are copied into buffers the layer owns; the caller's buffers may be
 *     released afterwards (after the creating call's commands completed: creation calls finish
 *     with clFinish on the queue).
 */
#ifndef CLBNB_LAYERS_H
#define CLBNB_LAYERS_H

#include "clbnb_checkpoint.h"
#include "clbnb_gemm_4bit.h"
#include "clbnb_int8_gemm.h"
#include "clbnb_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* StandardLinear (bitsandbytes.nn.triton_based_modules.StandardLinear): the reference layer.    */
/* ============================================================================================ */
typedef struct clbnb_linear clbnb_linear;

/* weight [N, K] f32/f16/bf16 (stored by the layer as f32), bias NULL or [N] float (stored f32). */
CLBNB_API clbnb_status clbnb_linear_init(clbnb_linear **out, clbnb_context *ctx, cl_command_queue queue,
                                         const clbnb_matrix *weight, const clbnb_vector *bias);
/* out [M, N] = RN_out(x W^T + b), computed in f32 (x converted to f32, CLBlast SGEMM, one rounding). */
CLBNB_API clbnb_status clbnb_linear_forward(clbnb_linear *layer, cl_command_queue queue, const clbnb_matrix *x,
                                            const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                            cl_event *event);
/* grad_x [M, K] = G W, grad_w [N, K] = G^T x, grad_bias [N] = column sums of G, each computed in f32
 * and rounded once to its dtype. Each output may be NULL (not computed); x is needed for grad_w. */
CLBNB_API clbnb_status clbnb_linear_backward(clbnb_linear *layer, cl_command_queue queue, const clbnb_matrix *x,
                                             const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                             const clbnb_matrix *grad_w, const clbnb_vector *grad_bias,
                                             cl_uint num_events, const cl_event *wait_list, cl_event *event);
CLBNB_API void clbnb_linear_free(clbnb_linear *layer);

/* ============================================================================================ */
/* Linear8bitLt (bitsandbytes.nn.Linear8bitLt + autograd MatMul8bitLt, spec 5.5): LLM.int8()     */
/* ============================================================================================ */
typedef struct clbnb_linear8 clbnb_linear8;

typedef struct clbnb_linear8_params {
    float threshold;      /* outlier threshold: 0 (bitsandbytes' default) disables the decomposition;
                             Hugging Face passes 6.0                                                */
    int has_fp16_weights; /* 1: keep the full-precision weight and quantize it on every forward
                             (training mode; backward can then also return grad_w)                 */
    int pool_outliers;    /* 1: accumulate the outlier columns of every forward in the layer's pool
                             (the seed's GlobalOutlierPooler, per layer)                           */
} clbnb_linear8_params;

/* threshold 0, has_fp16_weights 0, pool_outliers 0 (bitsandbytes' Linear8bitLt defaults except
 * has_fp16_weights, which bitsandbytes defaults to True but every inference user sets False). */
CLBNB_API clbnb_linear8_params clbnb_linear8_default_params(void);

/* From full-precision weights: weight [N, K] f32/f16/bf16 is cast to f16 and row-wise quantized
 * (int8_vectorwise_quant, Int8Params): CB i8 [N, K], SCB f32 [N]. With has_fp16_weights the f16
 * weight is kept instead and quantized on each forward. bias NULL or [N] f32/f16/bf16 (kept in its
 * dtype: an f16 bias is fused bit-exactly as bitsandbytes fuses it). params NULL = defaults. */
CLBNB_API clbnb_status clbnb_linear8_init(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                          const clbnb_matrix *weight, const clbnb_vector *bias,
                                          const clbnb_linear8_params *params);
/* From prequantized weights (a Linear8bitLt checkpoint's weight + SCB): cb i8 [N, K], scb f32 [N]
 * (N = cb.rows, K = cb.cols). has_fp16_weights must be 0 (CLBNB_ERROR_INVALID_ARGUMENT). */
CLBNB_API clbnb_status clbnb_linear8_init_quantized(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                                    const clbnb_matrix *cb, const clbnb_vector *scb,
                                                    const clbnb_vector *bias, const clbnb_linear8_params *params);
/* Forward (MatMul8bitLt.forward): x [M, K] f32/f16/bf16, out [M, N] f32/f16/bf16 (bitsandbytes
 * returns x's dtype).
 *   1. CA, SCA, outlier columns = int8_vectorwise_quant(fp16(x), threshold) (x rounded to f16 first,
 *      as bitsandbytes does; the outlier columns and their count stay on the device);
 *   2. out = int8_scaled_mm(CA, CB, SCA, SCB, bias) (exact int32 sums, spec 5.4 epilogue);
 *   3. threshold > 0: out = RN_out(out + sum_j x[m, c_j] * RN_x(fl32(fl32(CB[n, c_j] * SCB[n]) *
 *      fl32(1/127)))) over the outlier columns c_j in ascending order, x in its own precision, f32
 *      products and sums (the addmm of bitsandbytes). This kernel reads the outlier count from the
 *      device: nothing is read back to the host and no call blocks.
 * With pool_outliers the outlier columns are also marked in the layer's pool. */
CLBNB_API clbnb_status clbnb_linear8_forward(clbnb_linear8 *layer, cl_command_queue queue, const clbnb_matrix *x,
                                             const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                             cl_event *event);
/* Backward (MatMul8bitLt.backward): grad_x [M, K] = G [M, N] * RN_x(CB * fl32(SCB / 127)) (the
 * int8 weight dequantized, rounded to grad_x's dtype as bitsandbytes rounds it to the input's dtype;
 * f32 SGEMM, one rounding). With has_fp16_weights: grad_w [N, K] = G^T x (x required) and
 * grad_bias [N] = column sums of G, in f32, rounded once. Without it, grad_w must be NULL
 * (CLBNB_ERROR_INVALID_ARGUMENT) and x may be NULL; grad_bias is allowed in both modes.
 * With has_fp16_weights the CB used is the one of the last forward (call forward first). */
CLBNB_API clbnb_status clbnb_linear8_backward(clbnb_linear8 *layer, cl_command_queue queue, const clbnb_matrix *x,
                                              const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                              const clbnb_matrix *grad_w, const clbnb_vector *grad_bias,
                                              cl_uint num_events, const cl_event *wait_list, cl_event *event);
/* The quantized weight the layer holds (CB i8 [N, K] and SCB f32 [N] descriptors on its buffers;
 * valid until the layer is freed). */
CLBNB_API clbnb_status clbnb_linear8_weights(const clbnb_linear8 *layer, clbnb_matrix *cb, clbnb_vector *scb);
/* Outlier pool: reads the pooled column indices back (blocking; ascending, at most `capacity` written,
 * *count = total pooled), and clears it. */
CLBNB_API clbnb_status clbnb_linear8_outlier_pool(clbnb_linear8 *layer, cl_command_queue queue, int32_t *cols,
                                                  size_t capacity, size_t *count);
CLBNB_API clbnb_status clbnb_linear8_outlier_pool_reset(clbnb_linear8 *layer, cl_command_queue queue);
CLBNB_API void clbnb_linear8_free(clbnb_linear8 *layer);

/* ============================================================================================ */
/* SwitchBackLinear (bitsandbytes.nn.triton_based_modules, 0.49.2; spec 5.6)                     */
/* ============================================================================================ */
typedef enum clbnb_switchback_variant {
    CLBNB_SWITCHBACK_GLOBAL = 0,                 /* SwitchBackLinearGlobal: rowwise(X) x global(W); backward
                                                    rowwise(G) x global-transposed(W)                           */
    CLBNB_SWITCHBACK_VECTORWISE = 1,             /* SwitchBackLinearVectorwise: rowwise(X) x rowwise(W);
                                                    backward rowwise(G) x columnwise-transposed(W)              */
    CLBNB_SWITCHBACK_GLOBAL_MEMORY_EFFICIENT = 2 /* SwitchBackLinearGlobalMemoryEfficient: keeps only
                                        int8 X + its f16 row maxima for backward; grad_w uses the
                                        dequantized X                                               */
} clbnb_switchback_variant;

typedef struct clbnb_switchback clbnb_switchback;

/* weight [N, K] f32/f16/bf16 (kept in its dtype), bias NULL or [N] float (kept in its dtype). */
CLBNB_API clbnb_status clbnb_switchback_init(clbnb_switchback **out, clbnb_context *ctx, cl_command_queue queue,
                                             const clbnb_matrix *weight, const clbnb_vector *bias,
                                             clbnb_switchback_variant variant);
/* Forward: X_int8, state_X = quantize_rowwise(x) (f16 maxima); W quantized on each call (global or
 * row-wise) unless prepare_for_eval ran; out = int8_matmul_{mixed,rowwise}_dequantize(...) + bias.
 * x [M, K], out [M, N] float. The memory-efficient variant saves X_int8/state_X for backward. */
CLBNB_API clbnb_status clbnb_switchback_forward(clbnb_switchback *layer, cl_command_queue queue, const clbnb_matrix *x,
                                                const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                                cl_event *event);
/* Backward: grad_x [M, K] through int8 (rowwise(G) x global-transposed W, or x columnwise-
 * transposed W for the vector-wise variant); grad_w [N, K] = G^T X in f32 (CLBlast) rounded once
 * (the memory-efficient variant uses X = fp16(dequantize_rowwise(X_int8, state_X)) saved by the
 * last forward, whose M must equal grad_out.rows; x may be NULL there; the other variants need x
 * for grad_w); grad_bias [N] = column sums of G in f32. Outputs may be NULL. After
 * prepare_for_eval backward returns CLBNB_ERROR_INVALID_ARGUMENT (the weight is gone). */
CLBNB_API clbnb_status clbnb_switchback_backward(clbnb_switchback *layer, cl_command_queue queue, const clbnb_matrix *x,
                                                 const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                                 const clbnb_matrix *grad_w, const clbnb_vector *grad_bias,
                                                 cl_uint num_events, const cl_event *wait_list, cl_event *event);
/* prepare_for_eval: quantizes W once (global, or row-wise for the vector-wise variant), releases
 * the full-precision weight; forward then only quantizes X. */
CLBNB_API clbnb_status clbnb_switchback_prepare_for_eval(clbnb_switchback *layer, cl_command_queue queue);
CLBNB_API void clbnb_switchback_free(clbnb_switchback *layer);

/* ============================================================================================ */
/* Linear4bit / LinearNF4 / LinearFP4 (bitsandbytes.nn.Linear4bit + Params4bit, spec 6.1)        */
/* ============================================================================================ */
typedef struct clbnb_linear4 clbnb_linear4;

typedef struct clbnb_linear4_params {
    clbnb_quant_type quant_type; /* NF4 or FP4 (bitsandbytes' Linear4bit default: FP4)            */
    size_t blocksize;            /* 32..4096, power of two (default 64)                          */
    int compress_statistics;     /* double quantization of the absmax (default 1, as Params4bit) */
    int compute_dtype;           /* -1: the input's dtype (bitsandbytes' None), else a float
                                    clbnb_dtype: x is rounded to it, the product is rounded to it
                                    and then converted to out's dtype                              */
} clbnb_linear4_params;

CLBNB_API clbnb_linear4_params clbnb_linear4_default_params(void); /* FP4, 64, 1, -1 */
CLBNB_API clbnb_linear4_params clbnb_linear_nf4_params(void);      /* LinearNF4: NF4, 64, 1, -1 */
CLBNB_API clbnb_linear4_params clbnb_linear_fp4_params(void);      /* LinearFP4: FP4, 64, 1, -1 */

/* From full-precision weights: weight [N, K] f32/f16/bf16 (the QuantState keeps its dtype),
 * quantized with clbnb_quantize_state; bias NULL or [N] float. */
CLBNB_API clbnb_status clbnb_linear4_init(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                          const clbnb_matrix *weight, const clbnb_vector *bias,
                                          const clbnb_linear4_params *params);
/* From a prequantized state: qs (NF4/FP4, shape [N, K]) and its packed data (u8, at least
 * ceil(N*K/2) bytes). On success the layer takes ownership of qs (freed by clbnb_linear4_free) and
 * retains packed->mem. params: only compute_dtype is used (quant_type/blocksize/nesting come from
 * qs); NULL = defaults. */
CLBNB_API clbnb_status clbnb_linear4_init_quantized(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                                    clbnb_quant_state *qs, const clbnb_vector *packed,
                                                    const clbnb_vector *bias, const clbnb_linear4_params *params);
/* out [M, N] = x W^T + b through clbnb_gemm_4bit (GEMV / small batch / dequant+SGEMM by M), with the
 * compute-dtype roundings of Linear4bit.forward (the bias is rounded to the compute dtype). */
CLBNB_API clbnb_status clbnb_linear4_forward(clbnb_linear4 *layer, cl_command_queue queue, const clbnb_matrix *x,
                                             const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                             cl_event *event);
/* grad_x [M, K] = G dequant(W) (clbnb_gemm_4bit_grad_input); grad_bias [N] = column sums of G.
 * Either may be NULL. The 4-bit weight itself is frozen (no grad_w), as in bitsandbytes. */
CLBNB_API clbnb_status clbnb_linear4_backward(clbnb_linear4 *layer, cl_command_queue queue,
                                              const clbnb_matrix *grad_out, const clbnb_matrix *grad_x,
                                              const clbnb_vector *grad_bias, cl_uint num_events,
                                              const cl_event *wait_list, cl_event *event);
/* The layer's state and packed weight (borrowed; valid until the layer is freed). */
CLBNB_API const clbnb_quant_state *clbnb_linear4_state(const clbnb_linear4 *layer, clbnb_vector *packed);
CLBNB_API void clbnb_linear4_free(clbnb_linear4 *layer);

/* ============================================================================================ */
/* Embeddings (bitsandbytes.nn.Embedding, StableEmbedding, Embedding8bit-style and Embedding4bit) */
/* ============================================================================================ */
typedef enum clbnb_embedding_kind {
    CLBNB_EMBEDDING_PLAIN = 0,      /* gather rows of the table in its dtype                     */
    CLBNB_EMBEDDING_STABLE = 1,     /* StableEmbedding: gather, LayerNorm in f32 (eps 1e-5,
                                       biased variance), cast back to the table's dtype           */
    CLBNB_EMBEDDING_BLOCKWISE8 = 2, /* table block-wise 8-bit (dynamic map), rows dequantized on
                                       the fly: RN_out(code[q] * absmax[i / bs])                   */
    CLBNB_EMBEDDING_4BIT_NF4 = 3,   /* table NF4 (plain absmax), rows dequantized on the fly       */
    CLBNB_EMBEDDING_4BIT_FP4 = 4    /* table FP4 (plain absmax)                                  */
} clbnb_embedding_kind;

typedef struct clbnb_embedding clbnb_embedding;

/* table [num_embeddings, dim] f32/f16/bf16. padding_idx: -1 for none, else a row in range whose
 * values are set to zero at creation (nn.Embedding's reset), before any quantization.
 * blocksize: quantized kinds (8-bit: power of two >= 16; 4-bit: 32..4096), ignored otherwise.
 * ln_weight / ln_bias: STABLE only, host arrays of dim floats or NULL (1 and 0). */
CLBNB_API clbnb_status clbnb_embedding_init(clbnb_embedding **out, clbnb_context *ctx, cl_command_queue queue,
                                            const clbnb_matrix *table, clbnb_embedding_kind kind, long padding_idx,
                                            size_t blocksize, const float *ln_weight, const float *ln_bias);
/* indices i32 [n] -> out [n, dim] (any float dtype; bitsandbytes returns the table's dtype).
 * An index outside [0, num_embeddings) yields a row of zeros (no error can be raised from a kernel).
 * out must not overlap indices nor be one of the layer's own buffers (clbnb_embedding_weights):
 * CLBNB_ERROR_INVALID_ARGUMENT. */
CLBNB_API clbnb_status clbnb_embedding_forward(clbnb_embedding *layer, cl_command_queue queue,
                                               const clbnb_vector *indices, const clbnb_matrix *out, cl_uint num_events,
                                               const cl_event *wait_list, cl_event *event);
/* Backward of Embedding (PLAIN kind; nn.Embedding's dense weight gradient): grad_table [num, dim]
 * (any float dtype) = scatter-add of the grad_out [n, dim] rows into the rows of `indices`:
 * grad_table[r, :] = RN(sum over the positions i with indices[i] == r, in ascending i, in f32, of
 * grad_out[i, :]). Deterministic (no atomics; bit-identical on every device and run). Rows that no
 * index names are zero; the padding_idx row gets no gradient (zero); out-of-range indices
 * contribute nothing. The whole grad_table is overwritten (not accumulated). Cost: O(n^2) integer
 * comparisons on the indices plus O(n * dim) sums (n <= 2^31 - 1). On a STABLE layer this is
 * clbnb_embedding_backward_stable with grad_ln_weight = grad_ln_bias = NULL. Quantized tables are
 * frozen: CLBNB_ERROR_INVALID_ARGUMENT. grad_table must not overlap grad_out or indices, nor be one
 * of the layer's own buffers (clbnb_embedding_weights): CLBNB_ERROR_INVALID_ARGUMENT. */
CLBNB_API clbnb_status clbnb_embedding_backward(clbnb_embedding *layer, cl_command_queue queue,
                                                const clbnb_vector *indices, const clbnb_matrix *grad_out,
                                                const clbnb_matrix *grad_table, cl_uint num_events,
                                                const cl_event *wait_list, cl_event *event);
/* Backward of StableEmbedding (STABLE kind only; other kinds: CLBNB_ERROR_INVALID_ARGUMENT), the
 * autograd of F.embedding -> .to(float32) -> nn.LayerNorm(dim) -> .to(table dtype). Per in-range
 * position i, with x = f32(table[indices[i], :]) and mean / rstd recomputed exactly as the forward
 * computes them, xhat = (x - mean) * rstd, gy = f32(grad_out[i, :]), g = gy * gamma:
 *   dx[i, j] = RN_table(rstd * ((g[j] - S(g) / dim) - xhat[j] * S(g * xhat) / dim))
 * in f32 (S: the forward's fixed-order row sum), rounded to the table's dtype (the backward of
 * .to(float32)); then grad_table [num, dim] (any float dtype, required) = the scatter-add of the dx
 * rows exactly as clbnb_embedding_backward does it for PLAIN (per row, ascending positions, f32,
 * one rounding; the padding_idx row and unindexed rows are zero). grad_ln_weight / grad_ln_bias:
 * optional (NULL: not computed), float vectors of n >= dim (the first dim elements are written):
 *   grad_ln_weight[j] = RN(sum_i gy[i, j] * xhat[i, j]),  grad_ln_bias[j] = RN(sum_i gy[i, j])
 * over the in-range positions in ascending order, in f32, one rounding. Padding positions DO count
 * there (the LayerNorm sees the padding row); out-of-range positions contribute nothing anywhere.
 * Every output is overwritten (not accumulated). Deterministic: no atomics, bit-identical on every
 * run. Cost: O(n^2) integer comparisons plus O(n * dim) work; scratch of n * dim elements of the
 * table's dtype plus 16 bytes per position, allocated per call. Errors: as every layer call (the
 * vectors: CLBNB_ERROR_UNSUPPORTED_DTYPE for a non-float dtype, CLBNB_ERROR_BUFFER_TOO_SMALL for
 * n < dim); CLBNB_ERROR_INVALID_ARGUMENT when an output overlaps an input (indices, grad_out) or
 * another output, or is one of the layer's own buffers (clbnb_embedding_weights). */
CLBNB_API clbnb_status clbnb_embedding_backward_stable(clbnb_embedding *layer, cl_command_queue queue,
                                                       const clbnb_vector *indices, const clbnb_matrix *grad_out,
                                                       const clbnb_matrix *grad_table,
                                                       const clbnb_vector *grad_ln_weight,
                                                       const clbnb_vector *grad_ln_bias, cl_uint num_events,
                                                       const cl_event *wait_list, cl_event *event);
/* The trainable parameters the layer holds, as borrowed descriptors of its own buffers (valid until
 * the layer is freed), so that a training loop can update them in place (e.g. an optimizer step on
 * the same in-order queue as the layer's calls): table [num, dim] in the table's dtype, compact
 * (ld = dim, offset 0; PLAIN and STABLE), ln_weight / ln_bias f32 [dim] (STABLE: LayerNorm gamma /
 * beta). Each output may be NULL (not wanted). Asking for the table of a quantized kind, or for the
 * LayerNorm vectors of a kind other than STABLE, returns CLBNB_ERROR_INVALID_ARGUMENT and writes
 * none of the outputs; NULL layer: CLBNB_ERROR_NULL_ARGUMENT. The layer does not re-zero the
 * padding row after such updates (neither does nn.Embedding). Enqueues nothing. */
CLBNB_API clbnb_status clbnb_embedding_weights(clbnb_embedding *layer, clbnb_matrix *table, clbnb_vector *ln_weight,
                                               clbnb_vector *ln_bias);
CLBNB_API void clbnb_embedding_free(clbnb_embedding *layer);

/* ============================================================================================ */
/* Layers from bitsandbytes checkpoints (clbnb_checkpoint.h, spec 4.3 / 4.4)                     */
/* ============================================================================================ */
/* A Linear4bit from the weights of a 4-bit checkpoint entry (w->info.kind NF4/FP4, from
 * clbnb_checkpoint_load_linear): on success the layer takes over w's state and packed buffer (any
 * quant_storage: the same byte stream), copies the bias, and *w is released and zeroed; on failure
 * *w is left untouched (still the caller's). params: only compute_dtype is used; NULL = defaults.
 * Errors: CLBNB_ERROR_INVALID_QUANT_TYPE (an int8 entry), CLBNB_ERROR_QUANT_STATE_MISMATCH (state
 * and info disagree), CLBNB_ERROR_INVALID_ARGUMENT (info.has_bias without a bias buffer or back),
 * and those of clbnb_linear4_init_quantized. */
CLBNB_API clbnb_status clbnb_linear4_init_from_weights(clbnb_linear4 **out, clbnb_context *ctx, cl_command_queue queue,
                                                       clbnb_linear_weights *w, const clbnb_linear4_params *params);
/* A Linear8bitLt (has_fp16_weights 0) from an int8 entry (CB, SCB, bias in its checkpoint dtype):
 * the layer copies them; on success *w is released and zeroed, on failure left untouched. params
 * NULL = defaults (threshold 0; pass 6.0 for Hugging Face's llm_int8_threshold). */
CLBNB_API clbnb_status clbnb_linear8_init_from_weights(clbnb_linear8 **out, clbnb_context *ctx, cl_command_queue queue,
                                                       clbnb_linear_weights *w, const clbnb_linear8_params *params);
/* clbnb_checkpoint_load_linear + the matching init_from_weights for module `prefix`. */
CLBNB_API clbnb_status clbnb_linear4_from_checkpoint(clbnb_linear4 **out, const clbnb_checkpoint *ck,
                                                     clbnb_context *ctx, cl_command_queue queue, const char *prefix,
                                                     const clbnb_linear4_params *params, clbnb_file_error *err);
CLBNB_API clbnb_status clbnb_linear8_from_checkpoint(clbnb_linear8 **out, const clbnb_checkpoint *ck,
                                                     clbnb_context *ctx, cl_command_queue queue, const char *prefix,
                                                     const clbnb_linear8_params *params, clbnb_file_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_LAYERS_H */
