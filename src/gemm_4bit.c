/* gemm_4bit.c: 4-bit NF4/FP4 dequantizing GEMV / GEMM and its input gradient (clbnb_gemm_4bit.h).
 * Validation, variant and kernel selection, and the fused kernels (cl/gemm_4bit.cl); the
 * dequantize + CLBlast SGEMM variant and the gradient live in gemm_4bit_large.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_4bit_internal.h"

/* ---- validation -------------------------------------------------------------------------------- */
static int log2_of(size_t v) {
    int l = 0;
    while (((size_t)1 << l) < v)
        l++;
    return l;
}

static clbnb_status matrix_bytes(const clbnb_matrix *m, size_t *bytes) {
    /* called after clbnb_check_matrix, so this cannot overflow */
    *bytes = ((m->rows - 1) * m->ld + m->cols) * clbnb_dtype_size(m->dtype);
    return CLBNB_SUCCESS;
}

static int regions_overlap(cl_mem a, size_t aoff, size_t abytes, cl_mem b, size_t boff, size_t bbytes) {
    return a == b && aoff < boff + bbytes && boff < aoff + abytes;
}

clbnb_status clbnb_g4_check_weight(clbnb_context *ctx, cl_command_queue queue, const clbnb_vector *packed,
                                   const clbnb_absmax *absmax, clbnb_quant_type type, size_t blocksize, size_t n,
                                   size_t k, clbnb_g4_weight *w) {
    if (!packed || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    if (!packed->mem || !absmax->absmax.mem) return CLBNB_ERROR_NULL_ARGUMENT;
    int nested = absmax->absmax2.mem != NULL;
    if (nested && !absmax->offset.mem) return CLBNB_ERROR_NULL_ARGUMENT;
    if (packed->dtype != CLBNB_DTYPE_U8) return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (absmax->absmax.dtype != (nested ? CLBNB_DTYPE_U8 : CLBNB_DTYPE_F32)) return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (nested && (absmax->absmax2.dtype != CLBNB_DTYPE_F32 || absmax->offset.dtype != CLBNB_DTYPE_F32 ||
                   (absmax->code2.mem && absmax->code2.dtype != CLBNB_DTYPE_F32)))
        return CLBNB_ERROR_UNSUPPORTED_DTYPE;
    if (type != CLBNB_QUANT_NF4 && type != CLBNB_QUANT_FP4) return CLBNB_ERROR_INVALID_QUANT_TYPE;
    if (blocksize < 32 || blocksize > 4096 || !clbnb_is_pow2(blocksize)) return CLBNB_ERROR_INVALID_BLOCKSIZE;
    if (nested && (!clbnb_is_pow2(absmax->blocksize2) || absmax->blocksize2 > ((size_t)1 << 30)))
        return CLBNB_ERROR_INVALID_BLOCKSIZE;
    size_t numel;
    if (clbnb_mul_overflows(n, k, &numel) || numel > SIZE_MAX - 1) return CLBNB_ERROR_SIZE_OVERFLOW;
    size_t nbytes = clbnb_packed_4bit_bytes(numel), nblocks = clbnb_blocks_count(numel, blocksize);
    CLBNB_TRY(clbnb_check_vector(packed, CLBNB_DT(CLBNB_DTYPE_U8), nbytes));
    CLBNB_TRY(clbnb_check_vector(&absmax->absmax, CLBNB_DT(absmax->absmax.dtype), nblocks));
    memset(w, 0, sizeof *w);
    w->packed = packed->mem;
    w->poff = packed->offset;
    w->absmax = absmax->absmax.mem;
    w->aoff = absmax->absmax.offset / clbnb_dtype_size(absmax->absmax.dtype);
    w->nested = nested;
    w->log2bs = log2_of(blocksize);
    w->qtype = type == CLBNB_QUANT_FP4 ? 1 : 0;
    w->blocksize = blocksize;
    if (nested) {
        CLBNB_TRY(clbnb_check_vector(&absmax->absmax2, CLBNB_DT(CLBNB_DTYPE_F32),
                                     clbnb_blocks_count(nblocks, absmax->blocksize2)));
        CLBNB_TRY(clbnb_check_vector(&absmax->offset, CLBNB_DT(CLBNB_DTYPE_F32), 1));
        if (absmax->code2.mem) {
            CLBNB_TRY(clbnb_check_vector(&absmax->code2, CLBNB_DT(CLBNB_DTYPE_F32), 256));
            w->code2 = absmax->code2.mem;
            w->c2off = absmax->code2.offset / 4;
        } else {
            CLBNB_TRY(clbnb_builtin_table(ctx, queue, CLBNB_QUANT_BLOCKWISE8, &w->code2));
        }
        w->absmax2 = absmax->absmax2.mem;
        w->a2off = absmax->absmax2.offset / 4;
        w->offs = absmax->offset.mem;
        w->ooff = absmax->offset.offset / 4;
        w->log2bs2 = log2_of(absmax->blocksize2);
    } else {
        w->absmax2 = w->code2 = w->offs = w->absmax;
    }
    return CLBNB_SUCCESS;
}

/* Output `out` must not overlap any input region of the weight (inputs listed by the caller). */
clbnb_status clbnb_g4_check_out_overlap(const clbnb_matrix *out, const clbnb_matrix *in, const clbnb_vector *packed,
                                        const clbnb_absmax *absmax, const clbnb_vector *bias) {
    size_t ob, ib;
    matrix_bytes(out, &ob);
    matrix_bytes(in, &ib);
    if (regions_overlap(out->mem, out->offset, ob, in->mem, in->offset, ib)) return CLBNB_ERROR_INVALID_ARGUMENT;
    const clbnb_vector *vs[6] = {packed, &absmax->absmax, NULL, NULL, NULL, bias};
    if (absmax->absmax2.mem) {
        vs[2] = &absmax->absmax2;
        vs[3] = &absmax->offset;
        vs[4] = absmax->code2.mem ? &absmax->code2 : NULL;
    }
    for (int i = 0; i < 6; i++) {
        if (!vs[i]) continue;
        size_t vb = vs[i]->n * clbnb_dtype_size(vs[i]->dtype);
        if (regions_overlap(out->mem, out->offset, ob, vs[i]->mem, vs[i]->offset, vb))
            return CLBNB_ERROR_INVALID_ARGUMENT;
    }
    return CLBNB_SUCCESS;
}

clbnb_status clbnb_g4_set_weight_args(cl_kernel k, cl_uint first, const clbnb_g4_weight *w) {
    cl_ulong poff = w->poff, aoff = w->aoff, a2off = w->a2off, c2off = w->c2off, ooff = w->ooff;
    cl_int nested = w->nested, log2bs = w->log2bs, log2bs2 = w->log2bs2, qtype = w->qtype;
    struct {
        size_t size;
        const void *value;
    } a[14] = {{sizeof(cl_mem), &w->packed}, {sizeof poff, &poff},          {sizeof(cl_mem), &w->absmax},
               {sizeof aoff, &aoff},         {sizeof(cl_mem), &w->absmax2}, {sizeof a2off, &a2off},
               {sizeof(cl_mem), &w->code2},  {sizeof c2off, &c2off},        {sizeof(cl_mem), &w->offs},
               {sizeof ooff, &ooff},         {sizeof nested, &nested},      {sizeof log2bs, &log2bs},
               {sizeof log2bs2, &log2bs2},   {sizeof qtype, &qtype}};
    for (cl_uint i = 0; i < 14; i++) {
        cl_int err = clSetKernelArg(k, first + i, a[i].size, a[i].value);
        if (err != CL_SUCCESS) return (clbnb_status)err;
    }
    return CLBNB_SUCCESS;
}

/* ---- variant choice ---------------------------------------------------------------------------- */
/* AUTO for M rows of x of dtype xdt. */
static clbnb_gemm_4bit_variant auto_variant_for(const clbnb_context *ctx, size_t m, clbnb_dtype xdt) {
    if (m <= 1) return CLBNB_GEMM_4BIT_GEMV;
    /* GPUs above M = 64, and above M = 32 on the nv_mma path with f16 x: the GEMM variant, which
     * there decodes W inside the tensor-core GEMM (src/gemm_4bit_mma.c). H100, 4096 x 4096 / 8192 x
     * 28672, GEMM variant against the fused small-batch kernel (which decodes W once per 64 rows of
     * x in registers, 2 warps of 64 x 64 per work-group): M = 128 52.9 / 311.8 against 69.1-70.1 /
     * 732-733 us; M = 64 37.9 / 262.4 against 46.1 / 352.1; M = 32 29.4 / 227.8 against 44.5 /
     * 208.6 (mixed: the small-batch kernel keeps M <= 32); M = 16 (64-row tiles) 32.3 / 281 against
     * 19.2 / 137. */
    if (m > 32 && ctx && ctx->info.path[CLBNB_FAMILY_GEMM_4BIT] == CLBNB_PATH_NV_MMA && xdt == CLBNB_DTYPE_F16 &&
        !(ctx->info.type & CL_DEVICE_TYPE_CPU))
        return CLBNB_GEMM_4BIT_DEQUANT_SGEMM;
    /* CPU devices: CLBlast SGEMM on PoCL runs at a few GFLOP/s, slower than decoding the weight
     * once per 8 rows of x for any M measured (M = 128: ~6x), so the fused kernel serves every M */
    if (m <= 64 || (ctx && (ctx->info.type & CL_DEVICE_TYPE_CPU))) return CLBNB_GEMM_4BIT_SMALL_BATCH;
    return CLBNB_GEMM_4BIT_DEQUANT_SGEMM;
}

clbnb_gemm_4bit_variant clbnb_gemm_4bit_auto_variant(const clbnb_context *ctx, size_t m) {
    return auto_variant_for(ctx, m, CLBNB_DTYPE_F16);
}

/* ---- fused variants ---------------------------------------------------------------------------- */
/* Shape of g4_gemv: warps per work-group (they split K), weight rows per work-group, 16-byte
 * chunks per row and work-item in flight. H100 sweep (M = 1, NF4, f16; K x N = 4096 x 4096 /
 * 4096 x 14336 / 8192 x 28672): 2 warps, 4 rows, 2 chunks: 10.8 / 22.0 / 63.0 us; 1 warp:
 * 11.3 / 22.8 / 62.5; 2 rows: 11.8 / 24.3 / 73.2; 4 chunks: 11.8 / 25.1 / 70.9 (a prmt-based
 * nibble decode measured within noise and was dropped); 8 rows (session 5): 1 warp x 2 chunks
 * 14.6 / 26.1 / 75.8, 2 warps x 2 chunks 11.5 / 25.9 / 71.9, 1 chunk ~100 us at 8192 x 28672;
 * 4 rows with 3 chunks: 12.5 / 24.3 / 72.5, 4 warps x 2 chunks 11.0 / 24.6 / 65.5, 1 chunk (2, 4
 * or 8 warps) 75.5 - 90.1 us at 8192 x 28672.
 * Nested absmax: the 256-entry code read through the cache instead of staged in local memory
 * before a barrier: 12.0 / 25.3 / 69.6 -> 11.5 / 24.3 / 68.4 us (plain: 11.3 / 22.3 / 64.8).
 * Session 9 at 8192 x 28672, plain / nested, against 65.0 / 68.5 us: the decode replaced by one add
 * per word (a diagnostic, not a GEMV) 51.2 / 49.2 us, so this shape's loads alone sit at 89 % of
 * copy and the table decode costs the rest; a byte-pair table (one 8-byte local load per byte,
 * 16 interleaved copies, each warp its own rows) 70.1 us at best (4 warps x 4 rows), 72 - 88 us
 * elsewhere; one base pointer and strides instead of a pointer per row (96 registers instead of
 * 124) 66.0 - 66.6 / 66.8 - 68.5 us; the next step's chunks loaded before the current ones are
 * used 66.3 - 81.7 us (66.3 with 4 warps and one chunk per row in flight, nested 71.2). None kept.
 * Session 15, plain absmax built as a constant (gemv_specialize), 12 shapes: default 11.0 / 22.0 /
 * 63.0 us; 1 warp 11.5 / 22.8 / 63.5; 4 warps 11.0 / 23.6 / 64.0; 4 warps x 1 chunk 10.5 / 23.4 /
 * 69.4-69.6; 3 chunks 11.0 / 22.3 / 65.8-66.1; 8 rows 11.0-11.3 / 23.8-24.1 / 65.3; others slower.
 * The development knob CLBNB_G4_GEMV_CONFIG="warps,rows,unroll" overrides it (read per call:
 * benchmarks sweep it). */
static void gemv_shape(int *warps, int *rows, int *unroll) {
    *warps = 2, *rows = 4, *unroll = 2;
    const char *env = getenv("CLBNB_G4_GEMV_CONFIG");
    int w, r, u;
    if (env && sscanf(env, "%d,%d,%d", &w, &r, &u) == 3 && (w == 1 || w == 2 || w == 4 || w == 8 || w == 16) &&
        (r == 1 || r == 2 || r == 4 || r == 8) && u >= 1 && u <= 8)
        *warps = w, *rows = r, *unroll = u;
}

/* g4_gemv built for plain absmax (-DG4V_PLAIN: the branches on the absmax kind fold; see
 * cl/gemm_4bit.cl) on GPUs; CPU devices keep one build for both kinds. The development knob
 * CLBNB_G4_GEMV_SPECIALIZE=0|1 turns it off / on on any device (read per call: A/B runs, tests). */
static int gemv_specialize(int cpu_dev) { return clbnb_env_switch("CLBNB_G4_GEMV_SPECIALIZE", !cpu_dev); }

/* Shape of g4_mma (cl/gemm_4bit_mma.cl): warps per work-group (they split K), m16 tiles of weight
 * rows per warp, n8 tiles of x rows per work-group. Local memory: warps * nt * 2 KiB (<= 32 KiB).
 * H100, M = 16: 8192 x 28672 fastest with 64 rows per work-group and 2 warps
 * (137 us; 32 rows x 4 warps: 148 us), 4096 x 4096 with 32 rows and 8 warps (19 us; 4 warps:
 * 27 us; 16 rows: 59 us): 64 rows where that still gives two work-groups per compute unit, else
 * 32 rows and more warps on K. M = 64, 8192 x 28672: 353 us (dequantize + GEMM: 840 us).
 * CLBNB_G4_MMA_CONFIG="warps,wr,nt" overrides it (development knob, read per call). */
static void mma_shape(size_t m, size_t n, size_t cus, int *warps, int *wr, int *nt) {
    *nt = m <= 8 ? 1 : m <= 16 ? 2 : m <= 32 ? 4 : 8;
    const size_t slices = (m + 8 * (size_t)*nt - 1) / (8 * (size_t)*nt);
    if ((n + 63) / 64 * slices >= 2 * cus) {
        *wr = 4, *warps = 2;
    } else {
        /* few weight rows: 64 rows of x per work-group stage too much x per warp (M = 64 at
         * 4096 x 4096: 156 us with 8 n8 tiles, 46 us with 4 and two row slices) */
        *wr = 2, *warps = 8;
        if (*nt > 4) *nt = 4;
    }
    while (*warps * *nt > 16)
        *warps /= 2;
    const char *env = getenv("CLBNB_G4_MMA_CONFIG");
    int w, r, t;
    if (env && sscanf(env, "%d,%d,%d", &w, &r, &t) == 3 && (w == 1 || w == 2 || w == 4 || w == 8) &&
        (r == 1 || r == 2 || r == 4) && (t == 1 || t == 2 || t == 4 || t == 8) && w * t <= 16)
        *warps = w, *wr = r, *nt = t;
}

static clbnb_status run_fused(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                              const clbnb_g4_weight *w, const clbnb_vector *bias, const clbnb_matrix *out,
                              clbnb_gemm_4bit_variant variant, cl_uint num_events, const cl_event *wait_list,
                              cl_event *event) {
    const size_t m = x->rows, k = x->cols, n = out->cols;
    const int fast = (k % w->blocksize == 0) && (w->poff % 16 == 0);
    char options[160], kname[32];
    const char *program = NULL; /* "gemm_4bit" unless a branch names another (options set there) */
    int warps = 8, rn = 1, unroll = 4, xvec = 0, gemv_plain = 0; /* g4_gemv built for plain absmax */
    cl_uint param;
    size_t global[2], local[2];

    pthread_mutex_lock(&ctx->lock);
    clbnb_path path = ctx->info.path[CLBNB_FAMILY_GEMM_4BIT];
    const int cpu_dev = (ctx->info.type & CL_DEVICE_TYPE_CPU) != 0;
    const size_t cus = ctx->info.compute_units ? ctx->info.compute_units : 1;
    if (!fast) {
        /* any K: element-wise kernel, up to 4 rows of x per work-item */
        snprintf(kname, sizeof kname, "g4_general");
        param = variant == CLBNB_GEMM_4BIT_GEMV ? 1 : 4;
        global[0] = n;
        global[1] = (m + param - 1) / param;
        local[0] = path == CLBNB_PATH_CPU ? 16 : 64;
        local[1] = 1;
    } else {
        size_t mb = 1;
        if (variant != CLBNB_GEMM_4BIT_GEMV) mb = m <= 2 ? 2 : m <= 4 ? 4 : 8;
        if (path == CLBNB_PATH_CPU) {
            /* one work-item per weight row and mb rows of x */
            snprintf(kname, sizeof kname, "g4_cpu_mb%zu", mb);
            param = 1;
            global[0] = n;
            local[0] = 16;
        } else if (variant == CLBNB_GEMM_4BIT_GEMV || m == 1) {
            /* CLBNB_PATH_GENERIC (and CLBNB_PATH_NV_MMA): rn weight rows per warp, one row of x per
             * work-group row (see gemv_shape) */
            mb = 1;
            gemv_shape(&warps, &rn, &unroll);
            /* x rows 16-byte aligned: wide loads of x */
            xvec = x->offset % 16 == 0 && (x->ld * clbnb_dtype_size(x->dtype)) % 16 == 0;
            snprintf(kname, sizeof kname, "g4_gemv");
            gemv_plain = !w->nested && gemv_specialize(cpu_dev);
            param = 0;
            global[0] = (n + (size_t)rn - 1) / (size_t)rn * 32 * (size_t)warps;
            local[0] = 32 * (size_t)warps;
        } else if (path == CLBNB_PATH_NV_MMA && x->dtype == CLBNB_DTYPE_F16) {
            /* tensor cores: weights decoded to f16 in registers, mma.sync with f32 sums */
            int nt;
            mma_shape(m, n, cus, &warps, &rn, &nt);
            mb = 8 * (size_t)nt;
            program = "gemm_4bit_mma";
            snprintf(kname, sizeof kname, "g4_mma");
            snprintf(options, sizeof options,
                     "-DOUT_DTYPE=%d -DG4M_WARPS=%d -DG4M_WR=%d -DG4M_NT=%d -DG4_XVEC=%d -DCLBNB_PTX_EMULATE=%d",
                     (int)out->dtype, warps, rn, nt, x->offset % 8 == 0 && (x->ld * 2) % 8 == 0, !ctx->info.nv_ptx_mma);
            param = 0;
            global[0] = (n + 16 * (size_t)rn - 1) / (16 * (size_t)rn) * 32 * (size_t)warps;
            local[0] = 32 * (size_t)warps;
        } else {
            /* register-tiled small batch: 32 * rn weight rows x mb rows of x per work-group, K split
             * over the warps. H100 (M = 16): 4 warps x 4 rows per item where that gives at least
             * one work-group per compute unit (8192 x 28672: 421 us vs 748 us), else 16 warps x 1
             * row (4096 x 4096: 62 us vs 188 us). CPU devices: one shape (one program build). */
            mb = m <= 2 ? 2 : m <= 4 ? 4 : m <= 8 ? 8 : 16;
            warps = 4;
            rn = 4;
            if (!cpu_dev && (n + 127) / 128 * ((m + mb - 1) / mb) < cus) {
                warps = 16;
                rn = 1;
            }
            snprintf(kname, sizeof kname, "g4_gt_mb%zu", mb);
            param = 0;
            global[0] = (n + 32 * (size_t)rn - 1) / (32 * (size_t)rn) * 32 * (size_t)warps;
            local[0] = 32 * (size_t)warps;
        }
        global[1] = (m + mb - 1) / mb;
        local[1] = 1;
    }
    if (!program)
        snprintf(options, sizeof options,
                 "-DX_DTYPE=%d -DOUT_DTYPE=%d -DG4_WARPS=%d -DG4T_RN=%d -DG4V_RN=%d -DG4V_U=%d -DG4_XVEC=%d",
                 (int)x->dtype, (int)out->dtype, warps, rn, rn, unroll, xvec);
    if (gemv_plain) clbnb_options_append(options, sizeof options, " -DG4V_PLAIN");
    cl_kernel kern = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, program ? program : "gemm_4bit", options, kname, &kern);
    if (s == CLBNB_SUCCESS) {
        cl_ulong xoff = x->offset, ldx = x->ld, outoff = out->offset, ldo = out->ld;
        cl_ulong cm = m, cn = n, ck = k;
        cl_mem bmem = bias ? bias->mem : x->mem;
        cl_ulong boff = bias ? bias->offset / clbnb_dtype_size(bias->dtype) : 0;
        cl_int bdt = bias ? (cl_int)bias->dtype : -1;
        s = clbnb_set_args(kern, 3, CLBNB_ARG(x->mem), CLBNB_ARG(xoff), CLBNB_ARG(ldx));
        if (s == CLBNB_SUCCESS) s = clbnb_g4_set_weight_args(kern, 3, w);
        if (s == CLBNB_SUCCESS) {
            const struct {
                size_t size;
                const void *value;
            } a[10] = {{sizeof bmem, &bmem},     {sizeof boff, &boff},  {sizeof bdt, &bdt}, {sizeof(cl_mem), &out->mem},
                       {sizeof outoff, &outoff}, {sizeof ldo, &ldo},    {sizeof cm, &cm},   {sizeof cn, &cn},
                       {sizeof ck, &ck},         {sizeof param, &param}};
            for (cl_uint i = 0; i < 10 && s == CLBNB_SUCCESS; i++)
                s = (clbnb_status)clSetKernelArg(kern, 17 + i, a[i].size, a[i].value);
        }
        if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, kern, 2, global, local, num_events, wait_list, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    return s;
}

/* ---- public entry points ----------------------------------------------------------------------- */
clbnb_status clbnb_gemm_4bit_ex(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                                const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                                size_t blocksize, const clbnb_vector *bias, const clbnb_matrix *out,
                                clbnb_gemm_4bit_variant variant, cl_uint num_events, const cl_event *wait_list,
                                cl_event *event) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!x || !out || !packed || !absmax) return CLBNB_ERROR_NULL_ARGUMENT;
    if ((unsigned)variant >= CLBNB_GEMM_4BIT_VARIANT_COUNT) return CLBNB_ERROR_INVALID_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(x, CLBNB_DT_FLOAT));
    CLBNB_TRY(clbnb_check_matrix(out, CLBNB_DT_FLOAT));
    if (out->rows != x->rows) return CLBNB_ERROR_INVALID_SHAPE;
    const size_t n = out->cols, k = x->cols;
    clbnb_g4_weight w;
    CLBNB_TRY(clbnb_g4_check_weight(ctx, queue, packed, absmax, type, blocksize, n, k, &w));
    if (bias) CLBNB_TRY(clbnb_check_vector(bias, CLBNB_DT_FLOAT, n));
    CLBNB_TRY(clbnb_g4_check_out_overlap(out, x, packed, absmax, bias));
    if (variant == CLBNB_GEMM_4BIT_AUTO) variant = auto_variant_for(ctx, x->rows, x->dtype);
    if (variant == CLBNB_GEMM_4BIT_DEQUANT_SGEMM) {
        /* tensor cores for f16 activations on the nv_mma path, CLBlast SGEMM otherwise */
        if (ctx->info.path[CLBNB_FAMILY_GEMM_4BIT] == CLBNB_PATH_NV_MMA && x->dtype == CLBNB_DTYPE_F16)
            return clbnb_g4_dequant_mma(ctx, queue, x, &w, packed, absmax, type, bias, out, num_events, wait_list,
                                        event);
        return clbnb_g4_dequant_sgemm(ctx, queue, x, &w, bias, out, num_events, wait_list, event);
    }
    return run_fused(ctx, queue, x, &w, bias, out, variant, num_events, wait_list, event);
}

clbnb_status clbnb_gemm_4bit(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *x,
                             const clbnb_vector *packed, const clbnb_absmax *absmax, clbnb_quant_type type,
                             size_t blocksize, const clbnb_vector *bias, const clbnb_matrix *out, cl_uint num_events,
                             const cl_event *wait_list, cl_event *event) {
    return clbnb_gemm_4bit_ex(ctx, queue, x, packed, absmax, type, blocksize, bias, out, CLBNB_GEMM_4BIT_AUTO,
                              num_events, wait_list, event);
}
