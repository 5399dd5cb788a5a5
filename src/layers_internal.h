/*
 * layers_internal.h: helpers shared by the layer objects (layer_*.c): command sequencing on the
 * caller's queue, grow-only workspaces, argument checks, and launchers of the small kernels of
 * cl/layers.cl (dtype conversion, column sums) and of CLBlast SGEMM.
 */
#ifndef CLBNB_LAYERS_INTERNAL_H
#define CLBNB_LAYERS_INTERNAL_H

#include "clbnb_layers.h"
#include "internal.h"

/* --- sequencing: the caller's wait list before the first command, barriers between steps on an
 * out-of-order queue, a marker as the caller's event --------------------------------------------- */
typedef struct lay_seq {
    cl_command_queue queue;
    int ooo;
    int started;
    cl_uint num_events;
    const cl_event *wait_list;
} lay_seq;

CLBNB_INTERNAL clbnb_status lay_seq_begin(lay_seq *s, cl_command_queue queue, cl_uint num_events,
                                          const cl_event *wait_list);
/* Call before each command (or clbnb call, which then gets no wait list). */
CLBNB_INTERNAL clbnb_status lay_seq_step(lay_seq *s);
/* Hands the caller a marker event (when event != NULL). */
CLBNB_INTERNAL clbnb_status lay_seq_end(lay_seq *s, cl_event *event);

/* --- workspaces ------------------------------------------------------------------------------ */
typedef struct lay_ws {
    cl_mem mem;
    size_t bytes;
} lay_ws;
CLBNB_INTERNAL clbnb_status lay_ws_ensure(clbnb_context *ctx, lay_ws *w, size_t bytes);
CLBNB_INTERNAL void lay_ws_release(lay_ws *w);
CLBNB_INTERNAL clbnb_status lay_alloc(clbnb_context *ctx, size_t bytes, cl_mem *out);

/* --- checks ---------------------------------------------------------------------------------- */
/* Float (or `dtypes`) matrix with dtype-aligned offset; rows/cols must equal the given values
 * unless 0. */
CLBNB_INTERNAL clbnb_status lay_check_mat(const clbnb_matrix *m, uint32_t dtypes, size_t rows, size_t cols);
CLBNB_INTERNAL clbnb_status lay_check_vec(const clbnb_vector *v, uint32_t dtypes, size_t n);
/* CLBNB_ERROR_INVALID_ARGUMENT when the byte ranges of out and in on the same cl_mem intersect. */
CLBNB_INTERNAL clbnb_status lay_no_overlap(const clbnb_matrix *out, const clbnb_matrix *in);
CLBNB_INTERNAL clbnb_status lay_no_overlap_v(const clbnb_vector *out, const clbnb_matrix *in);
CLBNB_INTERNAL size_t lay_mat_bytes(const clbnb_matrix *m);
CLBNB_INTERNAL clbnb_status lay_size_mul(size_t a, size_t b, size_t c, size_t *out);

/* --- an f32 view of a matrix ------------------------------------------------------------------ */
typedef struct lay_f32 {
    cl_mem mem;
    size_t off; /* elements */
    size_t ld;
} lay_f32;

/* dst[r, c] = RN_ddt(RN_rdt(src[r, c]) + bias[c]) (rdt < 0: no intermediate rounding; bias may be
 * NULL). Offsets and lds in elements. */
CLBNB_INTERNAL clbnb_status lay_convert(clbnb_context *ctx, lay_seq *seq, cl_mem src, size_t soff, size_t lds,
                                        clbnb_dtype sdt, int rdt, cl_mem dst, size_t doff, size_t ldd, clbnb_dtype ddt,
                                        size_t rows, size_t cols, const clbnb_vector *bias);
/* m as f32 (rounded to rdt first when rdt >= 0 and rdt differs from f32): m itself when it is f32
 * and needs no rounding, else converted into ws. */
CLBNB_INTERNAL clbnb_status lay_as_f32(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *m, int rdt, lay_ws *ws,
                                       lay_f32 *view);
/* Destination of an f32 result for `out`: out itself when f32, else ws (compact). */
CLBNB_INTERNAL clbnb_status lay_f32_target(clbnb_context *ctx, const clbnb_matrix *out, lay_ws *ws, lay_f32 *view);
/* Writes the f32 result `res` (from lay_f32_target) to out with optional bias (no-op when out is f32
 * and bias NULL). */
CLBNB_INTERNAL clbnb_status lay_f32_finish(clbnb_context *ctx, lay_seq *seq, const lay_f32 *res,
                                           const clbnb_matrix *out, const clbnb_vector *bias);
/* Row-major SGEMM C = alpha op(A) op(B) + beta C on the sequence's queue. */
CLBNB_INTERNAL clbnb_status lay_sgemm(lay_seq *seq, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                      const lay_f32 *a, const lay_f32 *b, float beta, const lay_f32 *c);
/* sums[c] = RN_dt(sum_r src[r, c]) in f32, ascending r. */
CLBNB_INTERNAL clbnb_status lay_colsum(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *src,
                                       const clbnb_vector *sums);
/* Full-precision weight / bias gradients: grad_w [N, K] = G^T X, grad_bias = colsum(G), both optional.
 * g32 / x32: f32 views of G [M, N] and X [M, K]; tmp receives the f32 product if grad_w is not f32. */
CLBNB_INTERNAL clbnb_status lay_grad_w(clbnb_context *ctx, lay_seq *seq, const lay_f32 *g32, const lay_f32 *x32,
                                       size_t m, size_t n, size_t k, const clbnb_matrix *grad_w, lay_ws *tmp);
/* Copies a float vector into a new layer-owned buffer of dtype `dt` (rounded). */
CLBNB_INTERNAL clbnb_status lay_copy_vector(clbnb_context *ctx, lay_seq *seq, const clbnb_vector *v, clbnb_dtype dt,
                                            cl_mem *out);
/* Copies a float matrix into a new compact layer-owned buffer of dtype `dt` (rounded). */
CLBNB_INTERNAL clbnb_status lay_copy_matrix(clbnb_context *ctx, lay_seq *seq, const clbnb_matrix *m, clbnb_dtype dt,
                                            cl_mem *out);
/* Common entry checks of a layer call. */
/* The checks every linear layer's forward starts with: the call (context, queue, wait list), x
 * [rows, k] and out [rows, n] of float dtypes, out not overlapping x. */
CLBNB_INTERNAL clbnb_status lay_check_forward(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                              const clbnb_matrix *out, size_t k, size_t n, cl_uint num_events,
                                              const cl_event *wait_list);
CLBNB_INTERNAL clbnb_status lay_check_call(clbnb_context *ctx, cl_command_queue queue, cl_uint num_events,
                                           const cl_event *wait_list);
CLBNB_INTERNAL int lay_is_cpu(const clbnb_context *ctx);

#endif
