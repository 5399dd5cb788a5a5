/*
 * clbnb_checkpoint.h: safetensors files and bitsandbytes / Hugging Face checkpoints
 * (docs/bnb-format-spec.md section 4).
 *
 *   - safetensors reader (memory-mapped, strict header validation) and streaming writer;
 *   - checkpoints: one .safetensors file, or a sharded *.safetensors.index.json;
 *   - QuantState <-> checkpoint keys: 4-bit (W, W.absmax, W.quant_map, W.nested_absmax,
 *     W.nested_quant_map, W.quant_state.bitsandbytes__nf4|fp4 with W = "<module>.weight") and
 *     8-bit (<module>.weight int8, <module>.SCB, <module>.weight_format);
 *   - a loader that lists the quantized linear weights of a checkpoint and loads one into device
 *     buffers (the Linear4bit / Linear8bitLt layer objects build on clbnb_checkpoint_load_linear:
 *     they take ownership of the buffers of a clbnb_linear_weights and run the 4-bit GEMM with
 *     `weight` + `state`, or the int8 GEMM with `weight` (CB) + `scb`, adding `bias`).
 *
 * Errors: every call returns a clbnb_status (the class of the problem) and, when `err` is not
 * NULL, fills a clbnb_file_error with a specific reason code, the offending tensor's name and a
 * message. Hostile files never cause reads outside the mapping.
 */
#ifndef CLBNB_CHECKPOINT_H
#define CLBNB_CHECKPOINT_H

#include "clbnb_core.h"
#include "clbnb_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ============================================================================================ */
/* Errors                                                                                       */
/* ============================================================================================ */
typedef enum clbnb_file_error_code {
    CLBNB_FERR_NONE = 0,
    CLBNB_FERR_IO,                  /* open/read/mmap/write/rename failed          -> ERROR_IO         */
    CLBNB_FERR_TRUNCATED,           /* file shorter than 8 bytes or than its header -> INVALID_FORMAT */
    CLBNB_FERR_HEADER_TOO_LARGE,    /* header length > 100 MB (safetensors' limit)  -> SIZE_OVERFLOW */
    CLBNB_FERR_HEADER_NOT_OBJECT,   /* header does not start with '{'              -> INVALID_FORMAT  */
    CLBNB_FERR_BAD_JSON,            /* header / index / QuantState JSON malformed  -> INVALID_FORMAT  */
    CLBNB_FERR_BAD_ENTRY,           /* a tensor entry lacks or mistypes dtype/shape/data_offsets     */
    CLBNB_FERR_DUPLICATE_NAME,      /* a tensor name appears twice                 -> INVALID_FORMAT  */
    CLBNB_FERR_UNKNOWN_DTYPE,       /* dtype string not known                      -> UNSUPPORTED_DTYPE */
    CLBNB_FERR_TOO_MANY_DIMS,       /* more than CLBNB_ST_MAX_DIMS dimensions      -> INVALID_SHAPE   */
    CLBNB_FERR_SHAPE_OVERFLOW,      /* shape product or byte count overflows 64 bits -> SIZE_OVERFLOW */
    CLBNB_FERR_SIZE_MISMATCH,       /* end - begin != numel * dtype size           -> INVALID_SHAPE   */
    CLBNB_FERR_OFFSETS_REVERSED,    /* data_offsets begin > end                    -> INVALID_FORMAT  */
    CLBNB_FERR_OFFSET_OUT_OF_RANGE, /* data_offsets end past the data section      -> BUFFER_TOO_SMALL */
    CLBNB_FERR_OVERLAP,             /* two tensors share bytes                     -> INVALID_FORMAT  */
    CLBNB_FERR_GAP,                 /* bytes between tensors belong to none        -> INVALID_FORMAT  */
    CLBNB_FERR_TRAILING_DATA,       /* data section longer than its tensors        -> INVALID_FORMAT  */
    CLBNB_FERR_BAD_METADATA,        /* __metadata__ not an object of strings       -> INVALID_FORMAT  */
    CLBNB_FERR_NOT_FOUND,           /* a tensor the checkpoint needs is missing    -> INVALID_FORMAT  */
    CLBNB_FERR_BAD_QUANT_STATE,     /* QuantState JSON field missing / wrong type / inconsistent     */
    CLBNB_FERR_BAD_WEIGHT_FORMAT,   /* 8-bit weight_format 1/2/3 (col32, col_turing, col_ampere)     */
    CLBNB_FERR_BAD_INDEX,           /* sharded index: bad weight_map / shard name / tensor missing   */
    CLBNB_FERR_USAGE                /* writer used out of order, wrong byte counts, bad declaration  */
} clbnb_file_error_code;

typedef struct clbnb_file_error {
    clbnb_file_error_code code;
    char tensor[256];  /* the tensor (or file) concerned, "" when none */
    char message[512]; /* human-readable description                   */
} clbnb_file_error;

CLBNB_API const char *clbnb_file_error_name(clbnb_file_error_code code);

/* ============================================================================================ */
/* safetensors dtypes                                                                           */
/* ============================================================================================ */
typedef enum clbnb_st_dtype {
    CLBNB_ST_BOOL = 0,
    CLBNB_ST_U8,
    CLBNB_ST_I8,
    CLBNB_ST_F8_E4M3,
    CLBNB_ST_F8_E5M2,
    CLBNB_ST_I16,
    CLBNB_ST_U16,
    CLBNB_ST_F16,
    CLBNB_ST_BF16,
    CLBNB_ST_I32,
    CLBNB_ST_U32,
    CLBNB_ST_F32,
    CLBNB_ST_F64,
    CLBNB_ST_I64,
    CLBNB_ST_U64,
    CLBNB_ST_DTYPE_COUNT
} clbnb_st_dtype;

CLBNB_API const char *clbnb_st_dtype_name(clbnb_st_dtype dtype); /* "F32", ...; "?" if invalid */
CLBNB_API size_t clbnb_st_dtype_size(clbnb_st_dtype dtype);      /* bytes; 0 if invalid       */
/* Parses "F32" etc.; returns -1 for an unknown name. */
CLBNB_API int clbnb_st_dtype_from_name(const char *name);
/* The clbnb_dtype of a safetensors dtype (F32/F16/BF16/I8/U8/I32), or -1. And back. */
CLBNB_API int clbnb_st_dtype_to_clbnb(clbnb_st_dtype dtype);
CLBNB_API clbnb_st_dtype clbnb_st_dtype_from_clbnb(clbnb_dtype dtype);

#define CLBNB_ST_MAX_DIMS 8
#define CLBNB_ST_MAX_HEADER 100000000ull /* same limit as the safetensors library */

/* A tensor of an open file; data points into the read-only mapping. */
typedef struct clbnb_st_tensor {
    const char *name;
    clbnb_st_dtype dtype;
    int ndim; /* 0 for a scalar */
    uint64_t shape[CLBNB_ST_MAX_DIMS];
    uint64_t numel;
    const void *data;
    size_t nbytes;
    uint64_t offset; /* byte offset in the data section */
} clbnb_st_tensor;

/* ============================================================================================ */
/* safetensors reader                                                                           */
/* ============================================================================================ */
typedef struct clbnb_safetensors clbnb_safetensors;

/* Maps and validates a file: header length <= 100 MB and inside the file, JSON object (padding
 * spaces allowed), entries {dtype, shape, data_offsets}, known dtypes, <= 8 dims, no overflow,
 * byte count = numel * dtype size, offsets inside the data section, covering it exactly without
 * overlaps or gaps (entries may be listed in any order), optional __metadata__ of strings. */
CLBNB_API clbnb_status clbnb_safetensors_open(clbnb_safetensors **out, const char *path, clbnb_file_error *err);
/* Same on a caller-owned memory image (not copied: keep it alive until close). */
CLBNB_API clbnb_status clbnb_safetensors_open_memory(clbnb_safetensors **out, const void *data, size_t size,
                                                     clbnb_file_error *err);
CLBNB_API void clbnb_safetensors_close(clbnb_safetensors *st);
/* Tensors in header order. */
CLBNB_API size_t clbnb_safetensors_count(const clbnb_safetensors *st);
CLBNB_API const clbnb_st_tensor *clbnb_safetensors_tensor(const clbnb_safetensors *st, size_t index);
CLBNB_API const clbnb_st_tensor *clbnb_safetensors_find(const clbnb_safetensors *st, const char *name);
/* __metadata__ entries: count, i-th pair, lookup (NULL when absent). */
CLBNB_API size_t clbnb_safetensors_metadata_count(const clbnb_safetensors *st);
CLBNB_API int clbnb_safetensors_metadata_at(const clbnb_safetensors *st, size_t i, const char **key,
                                            const char **value);
CLBNB_API const char *clbnb_safetensors_metadata(const clbnb_safetensors *st, const char *key);
/* Hints the kernel that a tensor's pages are no longer needed (drops them from the resident
 * set of a file mapping; they are re-read if touched again). No effect on memory images. */
CLBNB_API void clbnb_safetensors_release_pages(const clbnb_safetensors *st, const clbnb_st_tensor *t);

/* ============================================================================================ */
/* safetensors streaming writer                                                                 */
/* ============================================================================================ */
typedef struct clbnb_st_decl {
    const char *name; /* copied by the writer */
    clbnb_st_dtype dtype;
    int ndim;
    uint64_t shape[CLBNB_ST_MAX_DIMS];
    /* 0: data streamed in declaration order with clbnb_st_writer_write.
     * 1: deferred: a 1-D tensor of at most shape[0] elements whose exact length is known only
     * later (e.g. a QuantState JSON whose nested_offset comes from the device); its bytes are
     * given any time with clbnb_st_writer_put_deferred and placed after the streamed tensors. */
    int deferred;
} clbnb_st_decl;

/* Bytes a declaration's data takes (dtype size x shape product; deferred: the maximum). */
CLBNB_API uint64_t clbnb_st_decl_bytes(const clbnb_st_decl *decl);

typedef struct clbnb_st_writer clbnb_st_writer;

/* Creates "<path>.tmp.XXXXXX" next to path; the header is computed from the declared tensors
 * (metadata: `meta_count` key/value pairs in meta_kv[2i], meta_kv[2i+1]; may be 0/NULL) and
 * padded with spaces to a multiple of 8 bytes. */
CLBNB_API clbnb_status clbnb_st_writer_open(clbnb_st_writer **out, const char *path, const clbnb_st_decl *decls,
                                            size_t count, const char *const *meta_kv, size_t meta_count,
                                            clbnb_file_error *err);
/* Appends bytes to the current streamed tensor (a tensor may be written in several pieces; the
 * writer moves to the next one when the current one is complete). */
CLBNB_API clbnb_status clbnb_st_writer_write(clbnb_st_writer *w, const void *data, size_t bytes, clbnb_file_error *err);
/* Name of the streamed tensor expected next (NULL when all streamed tensors are complete). */
CLBNB_API const char *clbnb_st_writer_next(const clbnb_st_writer *w);
/* The k-th streamed tensor still to come (k = 0: the one clbnb_st_writer_next names; tensors of
 * zero bytes are skipped) and, in *bytes, how many bytes it still expects (for k = 0, fewer than
 * its size once partly written). NULL past the last. */
CLBNB_API const char *clbnb_st_writer_upcoming(const clbnb_st_writer *w, size_t k, uint64_t *bytes);
/* Supplies a deferred tensor's content (n elements <= the declared maximum; copied). */
CLBNB_API clbnb_status clbnb_st_writer_put_deferred(clbnb_st_writer *w, const char *name, const void *data, size_t n,
                                                    clbnb_file_error *err);
/* Checks that every tensor is complete, writes the final header, flushes, fsyncs, renames the
 * temporary file to path and frees the writer (also on failure, removing the temporary file). */
CLBNB_API clbnb_status clbnb_st_writer_finish(clbnb_st_writer *w, clbnb_file_error *err);
/* Removes the temporary file and frees the writer. */
CLBNB_API void clbnb_st_writer_abort(clbnb_st_writer *w);

/* ============================================================================================ */
/* Checkpoints: a .safetensors file or a sharded *.safetensors.index.json                       */
/* ============================================================================================ */
typedef struct clbnb_checkpoint clbnb_checkpoint;

/* path: a .safetensors file, an index .json (shards named in weight_map, relative to the index's
 * directory, plain file names only), or a directory holding model.safetensors or
 * model.safetensors.index.json. */
CLBNB_API clbnb_status clbnb_checkpoint_open(clbnb_checkpoint **out, const char *path, clbnb_file_error *err);
CLBNB_API void clbnb_checkpoint_close(clbnb_checkpoint *ck);
CLBNB_API size_t clbnb_checkpoint_count(const clbnb_checkpoint *ck); /* tensors of all shards */
CLBNB_API const clbnb_st_tensor *clbnb_checkpoint_tensor(const clbnb_checkpoint *ck, size_t index);
CLBNB_API const clbnb_st_tensor *clbnb_checkpoint_find(const clbnb_checkpoint *ck, const char *name);
CLBNB_API size_t clbnb_checkpoint_shard_count(const clbnb_checkpoint *ck);
CLBNB_API const clbnb_safetensors *clbnb_checkpoint_shard(const clbnb_checkpoint *ck, size_t index);
CLBNB_API void clbnb_checkpoint_release_pages(const clbnb_checkpoint *ck, const clbnb_st_tensor *t);
/* The same for bytes [offset, offset + bytes) of t's data (the whole pages inside that range). */
CLBNB_API void clbnb_checkpoint_release_range(const clbnb_checkpoint *ck, const clbnb_st_tensor *t, size_t offset,
                                              size_t bytes);

/* ============================================================================================ */
/* QuantState <-> checkpoint keys (spec 4.2 / 4.3)                                              */
/* ============================================================================================ */

/* The host-side (JSON) part of a 4-bit QuantState. */
typedef struct clbnb_quant_state_info {
    clbnb_quant_type quant_type; /* NF4 or FP4 */
    size_t blocksize;
    clbnb_dtype dtype; /* original dtype: F32 / F16 / BF16 */
    int ndim;
    size_t shape[CLBNB_MAX_DIMS];
    int nested;
    size_t nested_blocksize;  /* 256 in bitsandbytes */
    clbnb_dtype nested_dtype; /* F32 */
    float nested_offset;
} clbnb_quant_state_info;

/* Parses bitsandbytes' packed QuantState JSON (spec 4.2). Requires quant_type, blocksize, dtype,
 * shape; nested states require nested_blocksize, nested_dtype, nested_offset (all three or none).
 * Unknown keys are rejected; types, blocksizes and dims are checked. */
CLBNB_API clbnb_status clbnb_quant_state_json_parse(const char *json, size_t len, clbnb_quant_state_info *out,
                                                    clbnb_file_error *err);
/* Writes the JSON exactly as bitsandbytes' json.dumps does (field order, ", " / ": "
 * separators, nested_offset as Python's repr of the double of the f32 offset). *len receives
 * the length (no terminator counted); the buffer is NUL-terminated when it has room. */
CLBNB_API clbnb_status clbnb_quant_state_json_write(const clbnb_quant_state_info *info, char *buf, size_t size,
                                                    size_t *len);
/* Python repr() of (double)f: the shortest "%.{p}g"-style string that round-trips, with Python's
 * formatting (".0" for integral values, exponent form below 1e-4 / from 1e16). buf >= 32. */
CLBNB_API void clbnb_format_python_float(float f, char *buf, size_t size);
/* Info of a device state (qs->offset must be synced for nested states). */
CLBNB_API clbnb_status clbnb_quant_state_get_info(const clbnb_quant_state *qs, clbnb_quant_state_info *out);

/* Names and layouts of the tensors of a 4-bit weight under weight_key ("<module>.weight"), in
 * bitsandbytes' order: W (quant_storage [(n+1)/(2*itemsize), 1]), W.absmax, W.quant_map,
 * [W.nested_absmax, W.nested_quant_map], W.quant_state.bitsandbytes__<type> (deferred when
 * nested: its length is known after quantization). names[i] back decls[i].name. quant_storage:
 * U8, F16, BF16, F32; the packed byte count must be a multiple of its size. */
#define CLBNB_CKPT_NAME_MAX 512
CLBNB_API clbnb_status clbnb_quant_state_declare(const clbnb_quant_state_info *info, clbnb_dtype quant_storage,
                                                 const char *weight_key, clbnb_st_decl decls[6],
                                                 char names[6][CLBNB_CKPT_NAME_MAX], size_t *count);
/* Reads the packed data (a u8 device vector of ceil(numel/2) bytes) and the state back (blocking,
 * syncing the offset) and writes the streamed tensors of clbnb_quant_state_declare in order, plus
 * the deferred JSON when nested. The writer's next tensor must be weight_key. */
CLBNB_API clbnb_status clbnb_quant_state_save(clbnb_st_writer *w, clbnb_context *ctx, cl_command_queue queue,
                                              clbnb_quant_state *qs, const clbnb_vector *packed, const char *weight_key,
                                              clbnb_file_error *err);
/* Creates a device QuantState from the keys under weight_key (W.absmax, W.quant_map,
 * W.nested_absmax, W.nested_quant_map, W.quant_state.bitsandbytes__nf4|fp4), checking that
 * every tensor's dtype and length agree with the JSON. The packed data W itself is not read. */
CLBNB_API clbnb_status clbnb_quant_state_load(clbnb_quant_state **out, clbnb_context *ctx, cl_command_queue queue,
                                              const clbnb_checkpoint *ck, const char *weight_key,
                                              clbnb_file_error *err);

/* 8-bit Linear8bitLt weight_format names: 0 "row", 1 "col32", 2 "col_turing", 3 "col_ampere";
 * NULL otherwise. Only 0 loads; 1..3 give CLBNB_ERROR_INVALID_FORMAT naming the format. */
CLBNB_API const char *clbnb_weight_format_name(int format);

/* ============================================================================================ */
/* Quantized linear weights of a checkpoint                                                     */
/* ============================================================================================ */
typedef enum clbnb_linear_kind { CLBNB_LINEAR_NF4 = 0, CLBNB_LINEAR_FP4 = 1, CLBNB_LINEAR_INT8 = 2 } clbnb_linear_kind;

typedef struct clbnb_linear_info {
    char prefix[CLBNB_CKPT_NAME_MAX]; /* module prefix without the trailing dot, e.g. "model.layers.0.mlp.down_proj" */
    clbnb_linear_kind kind;
    size_t out_features, in_features; /* N, K */
    int has_bias;
    clbnb_dtype bias_dtype;    /* when has_bias */
    clbnb_dtype dtype;         /* 4-bit: original dtype from the JSON; int8: F16 */
    size_t blocksize;          /* 4-bit */
    int nested;                /* 4-bit */
    clbnb_dtype quant_storage; /* 4-bit: dtype of W; int8: I8 */
} clbnb_linear_info;

/* Lists the quantized linear weights (4-bit: a W.quant_state.bitsandbytes__* key; 8-bit: an
 * int8 2-D W with <module>.SCB) sorted by prefix. *list is malloc'ed (free() it). Inconsistent
 * entries fail with the tensor named. */
CLBNB_API clbnb_status clbnb_checkpoint_list_linear(const clbnb_checkpoint *ck, clbnb_linear_info **list, size_t *count,
                                                    clbnb_file_error *err);

/* Device buffers of one quantized linear weight; owned by the struct until released. */
typedef struct clbnb_linear_weights {
    clbnb_linear_info info;
    cl_mem weight;            /* 4-bit: packed u8 [ceil(N*K/2)]; int8: CB i8 [N, K] row-major */
    clbnb_quant_state *state; /* 4-bit */
    cl_mem scb;               /* int8: SCB f32 [N] */
    cl_mem bias;              /* [N] of info.bias_dtype, NULL without bias */
} clbnb_linear_weights;

/* Loads the weight of module `prefix` (see clbnb_checkpoint_list_linear). */
CLBNB_API clbnb_status clbnb_checkpoint_load_linear(const clbnb_checkpoint *ck, clbnb_context *ctx,
                                                    cl_command_queue queue, const char *prefix,
                                                    clbnb_linear_weights *out, clbnb_file_error *err);
CLBNB_API void clbnb_linear_weights_release(clbnb_linear_weights *w);

/* ============================================================================================ */
/* Streaming conversion (what `clbnb quantize` is built from)                                   */
/* ============================================================================================ */
/* Each call writes one checkpoint tensor (or one quantized weight's tensors) to the writer, whose
 * next streamed tensor must be t->name. Tensors are processed in chunks of about chunk_bytes of
 * input (0: 2 MiB), double-buffered on the (in-order) queue so that file writing overlaps device
 * work, and the mapped input pages of each chunk are released once used: host and device memory
 * stay O(chunk) plus the per-block / per-row statistics, whatever the tensor's size. Blocking. */

/* Copies t unchanged. */
CLBNB_API clbnb_status clbnb_checkpoint_copy_tensor(const clbnb_checkpoint *ck, const clbnb_st_tensor *t,
                                                    clbnb_st_writer *w, size_t chunk_bytes, clbnb_file_error *err);
/* Quantizes the float tensor t (f32/f16/bf16, the state's dtype and element count) into qs (NF4 or
 * FP4, plain or nested; see clbnb_quant_state_init) and writes the tensors of
 * clbnb_quant_state_declare in order: bit-identical to clbnb_quantize_state + clbnb_quant_state_save
 * of the whole tensor. qs holds the state afterwards. */
CLBNB_API clbnb_status clbnb_checkpoint_quantize_4bit(const clbnb_checkpoint *ck, const clbnb_st_tensor *t,
                                                      clbnb_context *ctx, cl_command_queue queue, clbnb_quant_state *qs,
                                                      clbnb_st_writer *w, size_t chunk_bytes, clbnb_file_error *err);
/* Quantizes the 2-D float weight t ("<module>.weight") as bitsandbytes' Int8Params does (row-wise
 * int8 of the fp16-rounded weight, spec 5.1 without threshold) and writes <module>.weight (I8
 * [rows, cols]), <module>.SCB (F32 [rows]) and <module>.weight_format (U8 scalar 0, "row"),
 * which the writer must have declared in that order. */
CLBNB_API clbnb_status clbnb_checkpoint_quantize_int8(const clbnb_checkpoint *ck, const clbnb_st_tensor *t,
                                                      clbnb_context *ctx, cl_command_queue queue, clbnb_st_writer *w,
                                                      size_t chunk_bytes, clbnb_file_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CLBNB_CHECKPOINT_H */
