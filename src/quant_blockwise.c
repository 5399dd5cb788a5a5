/* quant_blockwise.c: block-wise 8-bit and 4-bit (NF4/FP4) quantization, nested absmax
 * (spec sections 1-3). Kernels: cl/quant_blockwise.cl. Every operation validates all of its
 * arguments before it enqueues anything. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define QWG 256            /* generic kernels: work-group size (QWG in the .cl)                */
#define Q8_GROUPS_PER_CU 8 /* generic 8-bit quantize: work-groups per compute unit (2048 items) */
#define QEPT 8             /* generic quantize: elements per work-item and pass                    */
#define CPU_CHUNK 256      /* cpu dequantize: elements per work-item                                */
#define CPU_LOCAL 64       /* cpu kernels: work-group size (PoCL: fewer, larger work-groups)      */
#define MEAN_CHUNK 4096    /* absmax mean: elements per first-stage chunk                          */
#define MEAN_LANES 256
#define Q8T_WORDS                                                                                                      \
    (2 * 2 * (((128 << 6) - ((127 - 24) << 6)) + 1) + 256) /* cpu 8-bit bucket table (Q8T_WORDS in the .cl) */

size_t clbnb_blocks_count(size_t n, size_t blocksize) {
    if (blocksize == 0) return 0;
    return n / blocksize + (n % blocksize != 0);
}

size_t clbnb_packed_4bit_bytes(size_t n) { return n / 2 + (n & 1); }

const char *clbnb_quant_type_name(clbnb_quant_type type) {
    switch (type) {
    case CLBNB_QUANT_NF4: return "nf4";
    case CLBNB_QUANT_FP4: return "fp4";
    case CLBNB_QUANT_BLOCKWISE8: return "blockwise8";
    }
    return "unknown";
}

clbnb_absmax clbnb_absmax_plain(const clbnb_vector *absmax) {
    clbnb_absmax a;
    memset(&a, 0, sizeof a);
    if (absmax) a.absmax = *absmax;
    return a;
}

/* ---- helpers ---------------------------------------------------------------------------------- */
static cl_uint log2_size(size_t v) {
    cl_uint l = 0;
    while (((size_t)1 << l) < v)
        l++;
    return l;
}

static int valid_4bit_blocksize(size_t bs) { return clbnb_is_pow2(bs) && bs >= 32 && bs <= 4096; }
static int valid_8bit_blocksize(size_t bs) { return clbnb_is_pow2(bs) && bs >= 16 && bs <= 65536; }

static int cpu_path(const clbnb_context *ctx) { return ctx->info.path[CLBNB_FAMILY_QUANT] == CLBNB_PATH_CPU; }

/* Work per work-item of the generic shape: qr / qr4 = passes of the 8-bit / 4-bit quantizers (QR /
 * QR4 in the .cl); du4 / du8 = 8-element units per work-item of the 4-bit / 8-bit dequantizers
 * (DQ4_U, DQ8_U). H100 sweeps (32M elements, median of 60): qr 2 (8-bit 107.8 us, NF4 59.1 us; qr
 * 4: 110.6 / 61.3; qr 8: 119.6 / 76.5); du 2 for 4-bit (nested 34.3 us with du 1, 31.2 with 2) and
 * du 1 for 8-bit (du 2: 71.7 us against 63.5). Session 9, 4-bit quantize NF4 / FP4 against 42.5 /
 * 43.9 us: a grid-stride loop with the table barrier right after the loads 47.4 / 50.6 us;
 * persistent work-groups, 4 / 8 / 16 per compute unit: 44.0 / 49.7, 42.9 / 47.0, 42.3 / 45.6 us;
 * qr 4 with 8 per compute unit 43.9 / 47.1 us. None kept. Session 11: the 4-bit passes hold their
 * loads in storage form (f16: 16 bytes instead of a float8) across the block reduction; with that,
 * qr4 1 / 2 / 4 gave NF4 41.7 / 38.7-38.9 / 37.1 us and FP4 45.1 / 42.5 / 41.7 us (4 kept).
 * CLBNB_QUANT_CONFIG="qr,du" (each 1, 2, 4 or 8; qr sets both pass counts, du both unit counts)
 * overrides them for kernel development. */
typedef struct quant_tiling {
    int qr, qr4, du4, du8;
} quant_tiling;

static int tiling_factor(int v) { return v == 1 || v == 2 || v == 4 || v == 8; }

static quant_tiling tiling(void) {
    quant_tiling t = {2, 4, 2, 1};
    const char *env = getenv("CLBNB_QUANT_CONFIG");
    int qr, du;
    if (env && sscanf(env, "%d,%d", &qr, &du) == 2 && tiling_factor(qr) && tiling_factor(du))
        t.qr = t.qr4 = qr, t.du4 = t.du8 = du;
    return t;
}

/* Kernel `base` + "_cpu" / "_generic" of cl/quant_blockwise.cl, built with `options` and the
 * tiling; caller holds ctx->lock. */
static clbnb_status get_kernel(clbnb_context *ctx, const char *options, const char *base, int shaped, cl_kernel *k) {
    char name[64], all[128];
    snprintf(name, sizeof name, "%s%s", base, shaped ? (cpu_path(ctx) ? "_cpu" : "_generic") : "");
    const quant_tiling t = tiling();
    snprintf(all, sizeof all, "%s -DQR=%d -DQR4=%d -DDQ4_U=%d -DDQ8_U=%d", options, t.qr, t.qr4, t.du4, t.du8);
    return clbnb_kernel_get_locked(ctx, "quant_blockwise", all, name, k);
}

static cl_ulong elem_off(const clbnb_vector *v) { return (cl_ulong)(v->offset / clbnb_dtype_size(v->dtype)); }

/* Validated absmax descriptor for nb blocks. */
typedef struct absmax_args {
    cl_mem am, am2, code2, offset;
    cl_ulong am_off, am2_off, code2_off, offset_off;
    cl_int nested;
    cl_uint log2bs2;
} absmax_args;

static clbnb_status check_absmax(clbnb_context *ctx, cl_command_queue queue, const clbnb_absmax *a, size_t nb,
                                 absmax_args *out) {
    if (!a) return CLBNB_ERROR_NULL_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (!a->absmax2.mem) {
        CLBNB_TRY(clbnb_check_vector(&a->absmax, CLBNB_DT(CLBNB_DTYPE_F32), nb));
        out->am = a->absmax.mem;
        out->am_off = elem_off(&a->absmax);
        return CLBNB_SUCCESS;
    }
    if (!valid_8bit_blocksize(a->blocksize2)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(&a->absmax, CLBNB_DT(CLBNB_DTYPE_U8), nb));
    CLBNB_TRY(clbnb_check_vector(&a->absmax2, CLBNB_DT(CLBNB_DTYPE_F32), clbnb_blocks_count(nb, a->blocksize2)));
    CLBNB_TRY(clbnb_check_vector(&a->offset, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    if (a->code2.mem) {
        CLBNB_TRY(clbnb_check_vector(&a->code2, CLBNB_DT(CLBNB_DTYPE_F32), 256));
        out->code2 = a->code2.mem;
        out->code2_off = elem_off(&a->code2);
    } else {
        CLBNB_TRY(clbnb_builtin_table(ctx, queue, CLBNB_QUANT_BLOCKWISE8, &out->code2));
    }
    out->am = a->absmax.mem;
    out->am_off = elem_off(&a->absmax);
    out->am2 = a->absmax2.mem;
    out->am2_off = elem_off(&a->absmax2);
    out->offset = a->offset.mem;
    out->offset_off = elem_off(&a->offset);
    out->nested = 1;
    out->log2bs2 = log2_size(a->blocksize2);
    return CLBNB_SUCCESS;
}

/* Common checks of every entry point. */
/* Sets the arguments the two dequantizers share, from index `first`: the absmax descriptor (plain
 * or nested, 10 arguments), log2(blocksize), the output buffer, its byte offset, whether it is
 * 16-byte aligned, and the element count. */
static clbnb_status set_dequant_args(cl_kernel k, cl_uint first, const absmax_args *am, cl_uint log2bs,
                                     const clbnb_vector *out) {
    cl_ulong o_off = out->offset, n = out->n;
    cl_int o_al = out->offset % 16 == 0;
    const struct {
        size_t size;
        const void *value;
    } args[] = {{CLBNB_ARG(am->am)},         {CLBNB_ARG(am->am_off)},    {CLBNB_ARG(am->nested)},
                {CLBNB_ARG(am->am2)},        {CLBNB_ARG(am->am2_off)},   {CLBNB_ARG(am->log2bs2)},
                {CLBNB_ARG(am->code2)},      {CLBNB_ARG(am->code2_off)}, {CLBNB_ARG(am->offset)},
                {CLBNB_ARG(am->offset_off)}, {CLBNB_ARG(log2bs)},        {CLBNB_ARG(out->mem)},
                {CLBNB_ARG(o_off)},          {CLBNB_ARG(o_al)},          {CLBNB_ARG(n)}};
    for (cl_uint i = 0; i < sizeof args / sizeof args[0]; i++) {
        cl_int err = clSetKernelArg(k, first + i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) return (clbnb_status)err;
    }
    return CLBNB_SUCCESS;
}

/* Enqueues a dequantizer (4-bit when four_bit) over n elements in the current path's shape. */
static clbnb_status enqueue_dequant(clbnb_context *ctx, cl_command_queue queue, cl_kernel k, int four_bit, size_t n,
                                    cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    const quant_tiling t = tiling();
    size_t global = cpu_path(ctx) ? clbnb_blocks_count(n, CPU_CHUNK)
                                  : clbnb_blocks_count(n, (size_t)8 * QWG * (size_t)(four_bit ? t.du4 : t.du8)) * QWG;
    size_t local = cpu_path(ctx) ? CPU_LOCAL : QWG;
    return clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
}

static clbnb_status check_common(clbnb_context *ctx, cl_command_queue queue, cl_uint num_events,
                                 const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    return clbnb_check_wait_list(num_events, wait_list);
}

/* ---- 8-bit quantize (also the third kernel of absmax compression) ----------------------------- */
typedef struct q8_launch {
    cl_mem x;
    cl_ulong x_off; /* bytes */
    cl_int x_al;
    clbnb_dtype dtype;
    cl_ulong n;
    cl_uint log2bs;
    cl_mem code;
    cl_ulong code_off;
    cl_int use_offset;
    cl_mem offset;
    cl_ulong offset_off;
    cl_mem codes;
    cl_ulong c_off;
    cl_int c_al;
    cl_mem absmax;
    cl_ulong a_off;
} q8_launch;

static clbnb_status enqueue_q8_locked(clbnb_context *ctx, cl_command_queue queue, const q8_launch *a,
                                      cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    char opts[64];
    snprintf(opts, sizeof opts, "-DIN_DTYPE=%d", (int)a->dtype);
    cl_kernel k;
    size_t bs = (size_t)1 << a->log2bs;
    if (!cpu_path(ctx)) {
        CLBNB_TRY(
            get_kernel(ctx, opts, bs > QWG * QEPT ? "quantize_8bit_generic_big" : "quantize_8bit_generic", 0, &k));
        CLBNB_TRY(clbnb_set_args(k, 15, CLBNB_ARG(a->x), CLBNB_ARG(a->x_off), CLBNB_ARG(a->x_al), CLBNB_ARG(a->n),
                                 CLBNB_ARG(a->log2bs), CLBNB_ARG(a->code), CLBNB_ARG(a->code_off),
                                 CLBNB_ARG(a->use_offset), CLBNB_ARG(a->offset), CLBNB_ARG(a->offset_off),
                                 CLBNB_ARG(a->codes), CLBNB_ARG(a->c_off), CLBNB_ARG(a->c_al), CLBNB_ARG(a->absmax),
                                 CLBNB_ARG(a->a_off)));
        /* persistent work-groups (each builds the code's bucket table once): at most
         * Q8_GROUPS_PER_CU per compute unit, each looping over tiles */
        size_t tile = bs > QWG * QEPT ? bs : (size_t)QWG * QEPT * (size_t)tiling().qr;
        size_t groups = clbnb_blocks_count((size_t)a->n, tile);
        size_t cap = (size_t)(ctx->info.compute_units ? ctx->info.compute_units : 1) * Q8_GROUPS_PER_CU;
        size_t global = (groups < cap ? groups : cap) * QWG, local = QWG;
        return clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
    }
    /* cpu: bucket table of the code (q8_table_build), then one work-item per block */
    cl_mem tab;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, Q8T_WORDS * sizeof(cl_uint), &tab));
    cl_event e0 = NULL;
    clbnb_status s = get_kernel(ctx, "-DIN_DTYPE=0", "q8_table_build", 0, &k);
    if (s == CLBNB_SUCCESS) s = clbnb_set_args(k, 3, CLBNB_ARG(a->code), CLBNB_ARG(a->code_off), CLBNB_ARG(tab));
    if (s == CLBNB_SUCCESS) {
        size_t global = Q8T_WORDS, local = CPU_LOCAL;
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, &e0);
    }
    if (s == CLBNB_SUCCESS) s = get_kernel(ctx, opts, "quantize_8bit", 1, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 16, CLBNB_ARG(a->x), CLBNB_ARG(a->x_off), CLBNB_ARG(a->x_al), CLBNB_ARG(a->n),
                           CLBNB_ARG(a->log2bs), CLBNB_ARG(a->code), CLBNB_ARG(a->code_off), CLBNB_ARG(a->use_offset),
                           CLBNB_ARG(a->offset), CLBNB_ARG(a->offset_off), CLBNB_ARG(a->codes), CLBNB_ARG(a->c_off),
                           CLBNB_ARG(a->c_al), CLBNB_ARG(a->absmax), CLBNB_ARG(a->a_off), CLBNB_ARG(tab));
    if (s == CLBNB_SUCCESS) {
        size_t global = clbnb_blocks_count((size_t)a->n, bs), local = CPU_LOCAL;
        s = clbnb_enqueue(queue, k, 1, &global, &local, 1, &e0, event);
    }
    if (e0) clReleaseEvent(e0);
    clbnb_scratch_release(ctx, queue, tab);
    return s;
}

clbnb_status clbnb_quantize_blockwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                      const clbnb_vector *code, size_t blocksize, const clbnb_vector *codes,
                                      const clbnb_vector *absmax, cl_uint num_events, const cl_event *wait_list,
                                      cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!x || !codes || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!valid_8bit_blocksize(blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(x, CLBNB_DT_FLOAT, 1));
    size_t n = x->n;
    CLBNB_TRY(clbnb_check_vector(codes, CLBNB_DT(CLBNB_DTYPE_U8), n));
    CLBNB_TRY(clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32), clbnb_blocks_count(n, blocksize)));
    q8_launch a;
    memset(&a, 0, sizeof a);
    if (code) {
        CLBNB_TRY(clbnb_check_vector(code, CLBNB_DT(CLBNB_DTYPE_F32), 256));
        a.code = code->mem;
        a.code_off = elem_off(code);
    } else {
        CLBNB_TRY(clbnb_builtin_table(ctx, queue, CLBNB_QUANT_BLOCKWISE8, &a.code));
    }
    a.x = x->mem;
    a.x_off = x->offset;
    a.x_al = x->offset % 16 == 0;
    a.dtype = x->dtype;
    a.n = n;
    a.log2bs = log2_size(blocksize);
    a.codes = codes->mem;
    a.c_off = codes->offset;
    a.c_al = codes->offset % 8 == 0;
    a.absmax = absmax->mem;
    a.a_off = elem_off(absmax);
    pthread_mutex_lock(&ctx->lock);
    clbnb_status s = enqueue_q8_locked(ctx, queue, &a, num_events, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ---- 8-bit dequantize ------------------------------------------------------------------------- */
clbnb_status clbnb_dequantize_blockwise_ex(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *codes,
                                           const clbnb_absmax *absmax, const clbnb_vector *code, size_t blocksize,
                                           const clbnb_vector *out, cl_uint num_events, const cl_event *wait_list,
                                           cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!codes || !absmax || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!valid_8bit_blocksize(blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(out, CLBNB_DT_FLOAT, 1));
    size_t n = out->n;
    CLBNB_TRY(clbnb_check_vector(codes, CLBNB_DT(CLBNB_DTYPE_U8), n));
    absmax_args am;
    CLBNB_TRY(check_absmax(ctx, queue, absmax, clbnb_blocks_count(n, blocksize), &am));
    cl_mem code_mem;
    cl_ulong code_off = 0;
    if (code) {
        CLBNB_TRY(clbnb_check_vector(code, CLBNB_DT(CLBNB_DTYPE_F32), 256));
        code_mem = code->mem;
        code_off = elem_off(code);
    } else {
        CLBNB_TRY(clbnb_builtin_table(ctx, queue, CLBNB_QUANT_BLOCKWISE8, &code_mem));
    }
    cl_mem cm = codes->mem;
    cl_ulong c_off = codes->offset;
    cl_int c_al = codes->offset % 16 == 0;
    cl_uint log2bs = log2_size(blocksize);
    char opts[64];
    snprintf(opts, sizeof opts, "-DOUT_DTYPE=%d", (int)out->dtype);
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    clbnb_status s = get_kernel(ctx, opts, "dequantize_8bit", 1, &k);
    const int four_bit = 0;
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 5, CLBNB_ARG(cm), CLBNB_ARG(c_off), CLBNB_ARG(c_al), CLBNB_ARG(code_mem),
                           CLBNB_ARG(code_off));
    if (s == CLBNB_SUCCESS) s = set_dequant_args(k, 5, &am, log2bs, out);
    if (s == CLBNB_SUCCESS) s = enqueue_dequant(ctx, queue, k, four_bit, n, num_events, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

clbnb_status clbnb_dequantize_blockwise(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *codes,
                                        const clbnb_vector *absmax, const clbnb_vector *code, size_t blocksize,
                                        const clbnb_vector *out, cl_uint num_events, const cl_event *wait_list,
                                        cl_event *event) {
    if (!absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    clbnb_absmax a = clbnb_absmax_plain(absmax);
    if (!a.absmax.mem) return CLBNB_ERROR_NULL_ARGUMENT;
    return clbnb_dequantize_blockwise_ex(ctx, queue, codes, &a, code, blocksize, out, num_events, wait_list, event);
}

/* ---- 4-bit ------------------------------------------------------------------------------------ */
clbnb_status clbnb_quantize_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *x,
                                 clbnb_quant_type type, size_t blocksize, const clbnb_vector *packed,
                                 const clbnb_vector *absmax, cl_uint num_events, const cl_event *wait_list,
                                 cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!x || !packed || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    if (type != CLBNB_QUANT_NF4 && type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!valid_4bit_blocksize(blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(x, CLBNB_DT_FLOAT, 1));
    size_t n = x->n;
    CLBNB_TRY(clbnb_check_vector(packed, CLBNB_DT(CLBNB_DTYPE_U8), clbnb_packed_4bit_bytes(n)));
    CLBNB_TRY(clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32), clbnb_blocks_count(n, blocksize)));
    cl_mem xm = x->mem, pm = packed->mem, amm = absmax->mem;
    cl_ulong x_off = x->offset, p_off = packed->offset, a_off = elem_off(absmax), nn = n;
    cl_int x_al = x->offset % 16 == 0, p_al = packed->offset % 4 == 0;
    cl_uint log2bs = log2_size(blocksize);
    char opts[64];
    snprintf(opts, sizeof opts, "-DIN_DTYPE=%d -DQTYPE=%d", (int)x->dtype, type == CLBNB_QUANT_FP4 ? 1 : 0);
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    clbnb_status s = cpu_path(ctx) || blocksize <= QWG * QEPT
                         ? get_kernel(ctx, opts, "quantize_4bit", 1, &k)
                         : get_kernel(ctx, opts, "quantize_4bit_generic_big", 0, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 10, CLBNB_ARG(xm), CLBNB_ARG(x_off), CLBNB_ARG(x_al), CLBNB_ARG(nn), CLBNB_ARG(log2bs),
                           CLBNB_ARG(pm), CLBNB_ARG(p_off), CLBNB_ARG(p_al), CLBNB_ARG(amm), CLBNB_ARG(a_off));
    if (s == CLBNB_SUCCESS) {
        size_t global, local;
        if (cpu_path(ctx)) {
            global = clbnb_blocks_count(n, blocksize);
            local = CPU_LOCAL;
        } else {
            size_t tile = blocksize > QWG * QEPT ? blocksize : (size_t)QWG * QEPT * (size_t)tiling().qr4;
            global = clbnb_blocks_count(n, tile) * QWG;
            local = QWG;
        }
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

clbnb_status clbnb_dequantize_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *packed,
                                   const clbnb_absmax *absmax, clbnb_quant_type type, size_t blocksize,
                                   const clbnb_vector *out, cl_uint num_events, const cl_event *wait_list,
                                   cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!packed || !absmax || !out) return CLBNB_ERROR_NULL_ARGUMENT;
    if (type != CLBNB_QUANT_NF4 && type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (!valid_4bit_blocksize(blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(out, CLBNB_DT_FLOAT, 1));
    size_t n = out->n;
    CLBNB_TRY(clbnb_check_vector(packed, CLBNB_DT(CLBNB_DTYPE_U8), clbnb_packed_4bit_bytes(n)));
    absmax_args am;
    CLBNB_TRY(check_absmax(ctx, queue, absmax, clbnb_blocks_count(n, blocksize), &am));
    cl_mem pm = packed->mem;
    cl_ulong p_off = packed->offset;
    cl_int p_al = packed->offset % 8 == 0, qtype = type == CLBNB_QUANT_FP4;
    cl_uint log2bs = log2_size(blocksize);
    char opts[64];
    snprintf(opts, sizeof opts, "-DOUT_DTYPE=%d", (int)out->dtype);
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    clbnb_status s = get_kernel(ctx, opts, "dequantize_4bit", 1, &k);
    const int four_bit = 1;
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 4, CLBNB_ARG(pm), CLBNB_ARG(p_off), CLBNB_ARG(p_al), CLBNB_ARG(qtype));
    if (s == CLBNB_SUCCESS) s = set_dequant_args(k, 4, &am, log2bs, out);
    if (s == CLBNB_SUCCESS) s = enqueue_dequant(ctx, queue, k, four_bit, n, num_events, wait_list, event);
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ---- nested absmax ---------------------------------------------------------------------------- */
clbnb_status clbnb_absmax_compress(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *absmax,
                                   size_t blocksize2, const clbnb_vector *qabsmax, const clbnb_vector *absmax2,
                                   const clbnb_vector *offset, cl_uint num_events, const cl_event *wait_list,
                                   cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!absmax || !qabsmax || !absmax2 || !offset) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!valid_8bit_blocksize(blocksize2)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    CLBNB_TRY(clbnb_check_vector(absmax, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    size_t nb = absmax->n;
    CLBNB_TRY(clbnb_check_vector(qabsmax, CLBNB_DT(CLBNB_DTYPE_U8), nb));
    CLBNB_TRY(clbnb_check_vector(absmax2, CLBNB_DT(CLBNB_DTYPE_F32), clbnb_blocks_count(nb, blocksize2)));
    CLBNB_TRY(clbnb_check_vector(offset, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    q8_launch a;
    memset(&a, 0, sizeof a);
    CLBNB_TRY(clbnb_builtin_table(ctx, queue, CLBNB_QUANT_BLOCKWISE8, &a.code));
    size_t np = clbnb_blocks_count(nb, MEAN_CHUNK);
    cl_mem partial;
    CLBNB_TRY(clbnb_scratch_acquire(ctx, np * sizeof(float), &partial));

    cl_mem am = absmax->mem, om = offset->mem;
    cl_ulong am_off = elem_off(absmax), n64 = nb, np64 = np, o_off = elem_off(offset);
    int cpu = cpu_path(ctx);
    cl_event e1 = NULL, e2 = NULL;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    /* stage 1: partial sums per MEAN_CHUNK */
    clbnb_status s = get_kernel(ctx, "-DIN_DTYPE=0", "mean_partial", 1, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 4, CLBNB_ARG(am), CLBNB_ARG(am_off), CLBNB_ARG(n64), CLBNB_ARG(partial));
    if (s == CLBNB_SUCCESS) {
        size_t global = cpu ? np : np * MEAN_LANES, local = cpu ? CPU_LOCAL : MEAN_LANES;
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, &e1);
    }
    /* stage 2: mean -> offset */
    if (s == CLBNB_SUCCESS) s = get_kernel(ctx, "-DIN_DTYPE=0", "mean_final", 1, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 5, CLBNB_ARG(partial), CLBNB_ARG(np64), CLBNB_ARG(n64), CLBNB_ARG(om), CLBNB_ARG(o_off));
    if (s == CLBNB_SUCCESS) {
        size_t global = cpu ? 1 : MEAN_LANES, local = cpu ? 1 : MEAN_LANES;
        s = clbnb_enqueue(queue, k, 1, &global, &local, 1, &e1, &e2);
    }
    /* stage 3: blockwise 8-bit of (absmax - offset) with the dynamic map */
    if (s == CLBNB_SUCCESS) {
        a.x = am;
        a.x_off = absmax->offset;
        a.x_al = absmax->offset % 16 == 0;
        a.dtype = CLBNB_DTYPE_F32;
        a.n = nb;
        a.log2bs = log2_size(blocksize2);
        a.use_offset = 1;
        a.offset = om;
        a.offset_off = o_off;
        a.codes = qabsmax->mem;
        a.c_off = qabsmax->offset;
        a.c_al = qabsmax->offset % 8 == 0;
        a.absmax = absmax2->mem;
        a.a_off = elem_off(absmax2);
        s = enqueue_q8_locked(ctx, queue, &a, 1, &e2, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (e1) clReleaseEvent(e1);
    if (e2) clReleaseEvent(e2);
    clbnb_scratch_release(ctx, queue, partial);
    return s;
}

clbnb_status clbnb_absmax_decompress(clbnb_context *ctx, cl_command_queue queue, const clbnb_absmax *nested,
                                     const clbnb_vector *absmax_out, cl_uint num_events, const cl_event *wait_list,
                                     cl_event *event) {
    CLBNB_TRY(check_common(ctx, queue, num_events, wait_list));
    if (!nested || !absmax_out) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!nested->absmax2.mem) return CLBNB_ERROR_INVALID_ARGUMENT; /* not a nested descriptor */
    CLBNB_TRY(clbnb_check_vector(absmax_out, CLBNB_DT(CLBNB_DTYPE_F32), 1));
    size_t nb = absmax_out->n;
    absmax_args am;
    CLBNB_TRY(check_absmax(ctx, queue, nested, nb, &am));
    cl_mem om = absmax_out->mem;
    cl_ulong o_off = elem_off(absmax_out), nb64 = nb;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k;
    clbnb_status s = get_kernel(ctx, "-DIN_DTYPE=0", "absmax_decompress", 0, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 12, CLBNB_ARG(am.am), CLBNB_ARG(am.am_off), CLBNB_ARG(am.am2), CLBNB_ARG(am.am2_off),
                           CLBNB_ARG(am.log2bs2), CLBNB_ARG(am.code2), CLBNB_ARG(am.code2_off), CLBNB_ARG(am.offset),
                           CLBNB_ARG(am.offset_off), CLBNB_ARG(om), CLBNB_ARG(o_off), CLBNB_ARG(nb64));
    if (s == CLBNB_SUCCESS) {
        size_t local = cpu_path(ctx) ? CPU_LOCAL : QWG, global = nb;
        s = clbnb_enqueue(queue, k, 1, &global, &local, num_events, wait_list, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}
