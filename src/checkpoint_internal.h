/* checkpoint_internal.h: helpers shared by the safetensors / checkpoint sources. */
#ifndef CLBNB_CHECKPOINT_INTERNAL_H
#define CLBNB_CHECKPOINT_INTERNAL_H

#include "internal.h"

/* Start of the readable bytes holding tensor t: its shard's whole file (mapped or in memory), which
 * begins with the header; NULL when t is not in ck. */
CLBNB_INTERNAL const unsigned char *clbnb_checkpoint_file_start(const clbnb_checkpoint *ck, const clbnb_st_tensor *t);

/* Fills err (if not NULL) and returns status. */
CLBNB_INTERNAL clbnb_status clbnb_ferr(clbnb_file_error *err, clbnb_status status, clbnb_file_error_code code,
                                       const char *tensor, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* clbnb_quant_state_save in two parts, for savers that stream W themselves: argument and writer
 * checks (the writer's next tensor must be wk), and the tensors after W (offset synced). */
CLBNB_INTERNAL clbnb_status clbnb_quant_state_check_save(clbnb_st_writer *w, clbnb_context *ctx, cl_command_queue queue,
                                                         const clbnb_quant_state *qs, const char *wk,
                                                         clbnb_file_error *err);
CLBNB_INTERNAL clbnb_status clbnb_quant_state_write_tail(clbnb_st_writer *w, cl_command_queue queue,
                                                         const clbnb_quant_state *qs, const char *wk,
                                                         clbnb_file_error *err);

#endif
