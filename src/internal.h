/*
 * internal.h: what the library's source files share and applications never see: the context
 * struct, program/kernel lookup, argument validation and launch helpers.
 */
#ifndef CLBNB_INTERNAL_H
#define CLBNB_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "clbnb.h"

/* Every exported function carries CLBNB_API; helpers shared between files are hidden. */
#define CLBNB_INTERNAL __attribute__((visibility("hidden")))

/* One built program plus the kernels created from it, cached per (name, options). */
struct clbnb_program_entry {
    char *name;
    char *options;
    cl_program program;
    size_t kernel_count;
    struct {
        char *name;
        cl_kernel kernel;
    } kernels[16];
    struct clbnb_program_entry *next;
};

/* A pooled scratch buffer (scratch_pool.c). */
#define CLBNB_SCRATCH_SLOTS 8
#define CLBNB_SCRATCH_MAX_BYTES ((size_t)64 << 20)    /* largest pooled buffer */
#define CLBNB_SCRATCH_TOTAL_BYTES ((size_t)256 << 20) /* most the pool holds */
typedef struct clbnb_scratch_slot {
    cl_mem mem;    /* NULL: empty slot */
    size_t bytes;  /* its size (a power of two) */
    cl_event busy; /* marker behind its last use; NULL when known idle */
    int in_use;    /* handed out and not yet released */
    size_t zero;   /* bytes from its start known zero once `busy` completes (clbnb_scratch_release_zeroed) */
} clbnb_scratch_slot;

struct clbnb_context {
    cl_context context;
    cl_device_id device;
    cl_platform_id platform;
    cl_command_queue default_queue; /* owned; NULL when the application gave us its context */
    clbnb_device_info info;
    pthread_mutex_t lock; /* guards programs, build_log, stats and kernel argument setting */
    struct clbnb_program_entry *programs;
    char *build_log;
    clbnb_build_stats stats;
    char cache_dir[4096];         /* "" when the on-disk cache is disabled */
    cl_mem dynamic_code;          /* the built-in dynamic map (256 f32), created on first use */
    cl_mem table_nf4;             /* 16 f32 */
    cl_mem table_fp4;             /* 16 f32 */
    int emulate_ptx;              /* CLBNB_EMULATE_PTX=1 (tests only): nv_mma runs with PTX emulated in OpenCL C */
    int int8_split_k;             /* CLBNB_INT8_SPLIT_K=n forces n-way split-K in the int8 GEMM (0: automatic) */
    pthread_mutex_t scratch_lock; /* guards scratch[] (a leaf lock) */
    int scratch_lock_ready;
    clbnb_scratch_slot scratch[CLBNB_SCRATCH_SLOTS];
};

/* --- scratch buffers (scratch_pool.c) ---------------------------------------------------------- */
/* A device buffer of at least `bytes` bytes for the caller's commands, from the context's pool where
 * one is idle. Hand it back with clbnb_scratch_release after enqueueing its last use on `queue`
 * (never clReleaseMemObject; NULL is ignored): it is reused only once that use has completed. */
CLBNB_INTERNAL clbnb_status clbnb_scratch_acquire(clbnb_context *ctx, size_t bytes, cl_mem *out);
CLBNB_INTERNAL void clbnb_scratch_release(clbnb_context *ctx, cl_command_queue queue, cl_mem mem);
/* The same for buffers whose first `bytes` bytes must be zero (outlier column flags): *zeroed = 1
 * when they already are (a pooled buffer handed back with clbnb_scratch_release_zeroed, the
 * commands that cleared it complete before the caller's, as for any reuse), 0 when the caller must
 * clear them. clbnb_scratch_release_zeroed vouches that the commands enqueued so far leave the
 * first `zero_bytes` bytes zero. */
CLBNB_INTERNAL clbnb_status clbnb_scratch_acquire_zeroed(clbnb_context *ctx, size_t bytes, cl_mem *out, int *zeroed);
CLBNB_INTERNAL void clbnb_scratch_release_zeroed(clbnb_context *ctx, cl_command_queue queue, cl_mem mem,
                                                 size_t zero_bytes);
CLBNB_INTERNAL void clbnb_scratch_pool_free(clbnb_context *ctx);

/* --- status helpers ------------------------------------------------------------------------- */
#define CLBNB_TRY(expr)                                                                                                \
    do {                                                                                                               \
        clbnb_status try_status_ = (clbnb_status)(expr);                                                               \
        if (try_status_ != CLBNB_SUCCESS) return try_status_;                                                          \
    } while (0)

/* --- device probe (probe.c) ----------------------------------------------------------------- */
CLBNB_INTERNAL clbnb_status clbnb_probe_device(clbnb_context *ctx);
CLBNB_INTERNAL clbnb_status clbnb_apply_path_overrides(clbnb_context *ctx, const char *spec);

/* --- programs and kernels (program.c) ------------------------------------------------------- */
/* Builds (or finds) program `name` (cl/<name>.cl, prefixed by cl/common.cl) with `options`,
 * and returns kernel `kernel_name` of it. The caller must hold ctx->lock from this call until the
 * kernel is enqueued, because kernel arguments are shared state. */
CLBNB_INTERNAL clbnb_status clbnb_kernel_get_locked(clbnb_context *ctx, const char *name, const char *options,
                                                    const char *kernel_name, cl_kernel *out);
CLBNB_INTERNAL void clbnb_programs_release(clbnb_context *ctx);
CLBNB_INTERNAL clbnb_status clbnb_program_build_locked(clbnb_context *ctx, const char *name, const char *options,
                                                       struct clbnb_program_entry **out);
/* Appends printf-formatted text to the build options in buf (size bytes, NUL-terminated). */
CLBNB_INTERNAL void clbnb_options_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A 0/1 environment switch: 1 or 0 where the variable `name` is "1" or "0", `default_on` otherwise
 * (unset or any other value). Read where it is called: the development knobs are read per call. */
CLBNB_INTERNAL int clbnb_env_switch(const char *name, int default_on);
/* Compile-test: 1 when `source` builds with `options` on the device (served from cache too). */
CLBNB_INTERNAL int clbnb_compile_test(clbnb_context *ctx, const char *source, const char *options);

/* --- on-disk binary cache (disk_cache.c) ---------------------------------------------------- */
CLBNB_INTERNAL void clbnb_cache_dir_resolve(char *dir, size_t size);
CLBNB_INTERNAL void clbnb_cache_key(const clbnb_context *ctx, const char *source, size_t source_len,
                                    const char *options, char hex[33]);
/* Returns a malloc'ed binary or NULL (missing, corrupt or foreign files count in *rejected). */
CLBNB_INTERNAL unsigned char *clbnb_cache_load(const char *dir, const char *hex, size_t *size, int *rejected);
CLBNB_INTERNAL int clbnb_cache_store(const char *dir, const char *hex, const unsigned char *bin, size_t size);

/* --- argument validation (validate.c) ------------------------------------------------------- */
#define CLBNB_DT(d) (1u << (d))
#define CLBNB_DT_FLOAT (CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16) | CLBNB_DT(CLBNB_DTYPE_BF16))
CLBNB_INTERNAL clbnb_status clbnb_check_context_queue(const clbnb_context *ctx, cl_command_queue queue);
CLBNB_INTERNAL clbnb_status clbnb_check_wait_list(cl_uint num_events, const cl_event *wait_list);
CLBNB_INTERNAL clbnb_status clbnb_check_region(cl_mem mem, size_t offset, size_t bytes);
/* Vector of >= min_n elements (n == 0 allowed only when min_n == 0) of one of `dtypes`. */
CLBNB_INTERNAL clbnb_status clbnb_check_vector(const clbnb_vector *v, uint32_t dtypes, size_t min_n);
CLBNB_INTERNAL clbnb_status clbnb_check_matrix(const clbnb_matrix *m, uint32_t dtypes);
CLBNB_INTERNAL bool clbnb_mul_overflows(size_t a, size_t b, size_t *out);
CLBNB_INTERNAL bool clbnb_is_pow2(size_t v);

/* --- launching ------------------------------------------------------------------------------ */
/* Sets `count` kernel arguments from (size, pointer) pairs. */
CLBNB_INTERNAL clbnb_status clbnb_set_args(cl_kernel kernel, int count, ...);
/* The same for arguments first .. first + count - 1. */
CLBNB_INTERNAL clbnb_status clbnb_set_args_from(cl_kernel kernel, int first, int count, ...);
#define CLBNB_ARG(v) sizeof(v), (const void *)&(v)
/* Enqueues an ND-range; global sizes are rounded up to a multiple of local sizes. */
CLBNB_INTERNAL clbnb_status clbnb_enqueue(cl_command_queue queue, cl_kernel kernel, cl_uint dims, const size_t *global,
                                          const size_t *local, cl_uint num_events, const cl_event *wait_list,
                                          cl_event *event);
CLBNB_INTERNAL size_t clbnb_round_up(size_t v, size_t multiple);

/* f16 tensor-core GEMM (cl/mma_gemm.cl, nv_mma path; emulated with CLBNB_EMULATE_PTX):
 * out[M, N] = RN_T(A[M, K] * B[N, K]^T + bias) with A, B f16 (byte offsets, leading dims in
 * elements), f32 accumulation; out f32/f16/bf16, bias optional. Arguments must be validated.
 * w4 non-NULL: B is that 4-bit weight (src/gemm_4bit_internal.h), decoded to f16 in local memory
 * with the bits of clbnb_dequantize_4bit; K a multiple of 16, blocksize >= 16, packed offset
 * 8-byte aligned, else CLBNB_ERROR_INVALID_SHAPE. */
struct clbnb_g4_weight;
CLBNB_INTERNAL clbnb_status clbnb_mma_gemm_f16(clbnb_context *ctx, cl_command_queue queue, cl_mem a, size_t a_off,
                                               size_t lda, cl_mem b, size_t b_off, size_t ldb,
                                               const struct clbnb_g4_weight *w4, size_t M, size_t N, size_t K,
                                               const clbnb_matrix *out, const clbnb_vector *bias, cl_uint num_events,
                                               const cl_event *wait_list, cl_event *event);

/* clbnb_int8_scaled_matmul with the LLM.int8 outlier product of cl/common.cl's
 * clbnb_lin8_outlier_sum fused where the chosen kernel supports it (the small-M kernel of the GPU
 * paths; the tensor-core kernel for f16 / bf16 outputs where K is not split): x (element offset
 * x_off, leading dim ldx, dtype xdt) holds the activations in their own precision, ocols / ocount
 * the outlier columns (ocols holds K entries: the tensor-core kernel reads the list past the
 * count), b is the weight the product reads. *fused says whether the product was included; when 0
 * the caller adds it. Arguments as the public call. */
typedef struct clbnb_outlier_product {
    cl_mem x, ocols, ocount;
    cl_ulong x_off, ldx;
    cl_int xdt;
} clbnb_outlier_product;
CLBNB_INTERNAL clbnb_status clbnb_int8_scaled_matmul_outliers(clbnb_context *ctx, cl_command_queue queue,
                                                              const clbnb_matrix *a, const clbnb_matrix *b,
                                                              const clbnb_vector *row_stats,
                                                              const clbnb_vector *col_stats, const clbnb_vector *bias,
                                                              const clbnb_matrix *out,
                                                              const clbnb_outlier_product *outliers, int *fused);

/* Built-in tables on the device (created on first use, owned by the context). */
CLBNB_INTERNAL clbnb_status clbnb_builtin_table(clbnb_context *ctx, cl_command_queue queue, clbnb_quant_type type,
                                                cl_mem *out);

/* SwitchBack forward inputs (global variants): x row-wise in SwitchBack mode (no threshold) into
 * xq / x_stats and w globally (not transposed) into wq / w_absmax, as clbnb_quantize_rowwise and
 * clbnb_quantize_global would, in fewer launches where the path allows (src/quant_int8.c). */
CLBNB_INTERNAL clbnb_status clbnb_quantize_switchback_inputs(clbnb_context *ctx, cl_command_queue queue,
                                                             const clbnb_matrix *x, const clbnb_matrix *xq,
                                                             const clbnb_vector *x_stats, const clbnb_matrix *w,
                                                             const clbnb_matrix *wq, const clbnb_vector *w_absmax,
                                                             cl_uint num_events, const cl_event *wait_list,
                                                             cl_event *event);

/* Bytes of the outlier-flag workspace of a row-wise quantization of `cols` columns: a flag per
 * column and a work-group counter (cl/quant_int8.cl, outlier_finish_wg). */
static inline size_t clbnb_outlier_flags_bytes(size_t cols) { return (cols + 1) * sizeof(cl_uint); }

/* clbnb_quantize_rowwise with a caller-owned outlier-flag workspace (at least
 * clbnb_outlier_flags_bytes(cols); used only with threshold > 0; NULL: a pooled scratch buffer,
 * zero-filled unless the pool hands back one a previous call left zeroed).
 * The outlier compaction leaves the flags zeroed: flags_ws_zeroed = 1 says the workspace is all
 * zero (new and filled, or last used by a call whose every command was enqueued), saving a fill. */
CLBNB_INTERNAL clbnb_status clbnb_quantize_rowwise_ws(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                                      const clbnb_matrix *q, const clbnb_vector *row_stats,
                                                      clbnb_rowwise_mode mode, float threshold,
                                                      const clbnb_vector *outlier_cols,
                                                      const clbnb_vector *outlier_count, cl_mem flags_ws,
                                                      int flags_ws_zeroed, cl_uint num_events,
                                                      const cl_event *wait_list, cl_event *event);

#endif /* CLBNB_INTERNAL_H */
