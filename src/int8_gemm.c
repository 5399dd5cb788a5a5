/* int8_gemm.c: the int8 GEMM entry points: validation, path choice, launch. One kernel call per
 * operation; the epilogue (int32 out, LLM.int8 dequant, SwitchBack mixed / row-wise dequant) is a
 * compile-time option of the same kernels, so every path produces the same bits. */
#include <stdio.h>
#include <stdlib.h>

#include "gemm_4bit_internal.h"

enum epilogue { EPI_INT32 = 0, EPI_LLM_INT8 = 1, EPI_MIXED = 2, EPI_ROWWISE = 3 };

struct gemm_call {
    const clbnb_matrix *a, *b, *out;
    enum epilogue epilogue;
    const clbnb_vector *sa, *sb, *bias;    /* NULL where the epilogue has none */
    const clbnb_outlier_product *outliers; /* LLM.int8 outlier product to fuse, or NULL */
    int *fused;                            /* set to 1 when the launched kernel fused it */
};

static clbnb_status validate(const clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c,
                             cl_uint num_events, const cl_event *wait_list) {
    CLBNB_TRY(clbnb_check_context_queue(ctx, queue));
    CLBNB_TRY(clbnb_check_wait_list(num_events, wait_list));
    if (!c->a || !c->b || !c->out) return CLBNB_ERROR_NULL_ARGUMENT;
    CLBNB_TRY(clbnb_check_matrix(c->a, CLBNB_DT(CLBNB_DTYPE_I8)));
    CLBNB_TRY(clbnb_check_matrix(c->b, CLBNB_DT(CLBNB_DTYPE_I8)));
    uint32_t out_types = c->epilogue == EPI_INT32 ? CLBNB_DT(CLBNB_DTYPE_I32) : CLBNB_DT_FLOAT;
    CLBNB_TRY(clbnb_check_matrix(c->out, out_types));
    size_t M = c->a->rows, N = c->b->rows, K = c->a->cols;
    if (c->b->cols != K || c->out->rows != M || c->out->cols != N) return CLBNB_ERROR_INVALID_SHAPE;
    if (K > CLBNB_INT8_GEMM_MAX_K) return CLBNB_ERROR_K_TOO_LARGE;
    if (M > UINT32_MAX / 2 || N > UINT32_MAX / 2) return CLBNB_ERROR_INVALID_SHAPE;
    uint32_t stat_types =
        c->epilogue == EPI_LLM_INT8 ? CLBNB_DT(CLBNB_DTYPE_F32) : CLBNB_DT(CLBNB_DTYPE_F32) | CLBNB_DT(CLBNB_DTYPE_F16);
    if (c->epilogue != EPI_INT32) {
        if (!c->sa || !c->sb) return CLBNB_ERROR_NULL_ARGUMENT;
        CLBNB_TRY(clbnb_check_vector(c->sa, stat_types, M));
        CLBNB_TRY(clbnb_check_vector(c->sb, stat_types, c->epilogue == EPI_MIXED ? 1 : N));
        if (c->bias) CLBNB_TRY(clbnb_check_vector(c->bias, CLBNB_DT_FLOAT, N));
    }
    return CLBNB_SUCCESS;
}

static cl_ulong byte_offset(const clbnb_vector *v) { return v ? v->offset : 0; }
static cl_mem mem_of(const clbnb_vector *v) { return v ? v->mem : NULL; }

/* Tile shape of the tensor-core kernel (see cl/mma_gemm.cl): warps per work-group along M
 * and N, m16 / n8 tiles per warp, bytes of K per stage, pipeline stages. Local memory is
 * STAGES * (BM + BN) * BK bytes, which must fit in 48 KiB on NVIDIA's OpenCL. The development knob
 * CLBNB_INT8_MMA_CONFIG="wm,wn,mt,nt,bk,stages,swizzle,unroll,volatile" overrides it (read per call: benchmarks sweep
 * it). */
struct mma_config {
    int warps_m, warps_n, mt, nt, bk, stages, swizzle, unroll, asm_volatile;
};

/* `int8_rows`: M of an int8 GEMM; `g4_rows`: M of a GEMM with a 4-bit B (0 for the f16 GEMM, which
 * keeps the large tile). */
static struct mma_config mma_config(const clbnb_context *ctx, size_t int8_rows, size_t g4_rows) {
    /* 128 x 128 x 64, 8 warps of 64 x 32, 2 stages, padded rows (40 KiB), fragment loops unrolled
     * and non-volatile asm so the compiler interleaves ldmatrix and mma: the fastest of the sweeps on
     * the H100 (418 TOPS at 4096^3; 376 with volatile asm, 314 with 4 warps of 64 x 64; the swizzled
     * 3-stage layout measured slower) */
    struct mma_config c = {2, 4, 4, 4, 64, 2, 0, 1, 0};
    /* int8 with M <= 16 (small batches; M <= 4 takes the skinny kernel): 16 x 128 x 128 tiles, 4
     * warps of 16 x 32, so the tensor cores do not multiply 112 rows of padding and each B tile
     * brings 128 bytes of K. H100, M = 16, 4096 x 4096 / 28672 x 8192: 29.2 / 176.6 us with the
     * large tile; 16 x 128 x 128: 26.9 - 27.4 / 113.2 - 113.7; 16 x 128 x 64: 28.2 / 149.6; 16 x
     * 256 x 64: 28.2 / 148.6; 16 x 128 x 64 with 3 stages: 26.4 / 148.1; 16 x 128 x 128 with 2
     * warps of 16 x 64 and 3 stages: 26.6 / 139.0. */
    if (int8_rows > 0 && int8_rows <= 16) c = (struct mma_config){1, 4, 1, 4, 128, 2, 0, 1, 0};
    /* 4-bit B with M <= 64: tiles of 64 (32) rows, 8 warps, so no work-group decodes its weights for
     * rows of padding. H100, 4096 x 4096 / 8192 x 28672, M = 64: 2 x 4 warps of 32 x 32 37.9 / 262.4
     * us; 1 x 8 of 64 x 16 37.4 / 268.8; 1 x 4 of 64 x 32 42.0 / 292.0; 16 warps 39.2-39.7 / 294-297;
     * the large tile 48.3 / 304 (measured before the loads moved after the decode). M = 32: 1 x 8
     * warps of 32 x 16 29.4 / 227.8; 2 x 4 of 16 x 32 30.2 / 228.4; 1 x 4 of 32 x 32 34.8 / 269.1;
     * 16 warps 32.3-32.8 / 231-259. M = 128 keeps the large tile (52.9 / 311.8; 16 warps 62.5 /
     * 470-489, 4 x 2 of 32 x 64 60.4 / 433). */
    if (g4_rows > 0 && g4_rows <= 32)
        c = (struct mma_config){1, 8, 2, 2, 64, 2, 0, 1, 0};
    else if (g4_rows > 0 && g4_rows <= 64)
        c = (struct mma_config){2, 4, 2, 4, 64, 2, 0, 1, 0};
    const char *env = getenv("CLBNB_INT8_MMA_CONFIG");
    struct mma_config e;
    if (env &&
        sscanf(env, "%d,%d,%d,%d,%d,%d,%d,%d,%d", &e.warps_m, &e.warps_n, &e.mt, &e.nt, &e.bk, &e.stages, &e.swizzle,
               &e.unroll, &e.asm_volatile) == 9 &&
        e.warps_m > 0 && e.warps_n > 0 && e.mt > 0 && e.nt > 0 && e.nt % 2 == 0 && e.bk % 32 == 0 && e.bk > 0 &&
        e.bk <= 128 && e.stages >= 2 && e.warps_m * e.warps_n <= 32)
        c = e;
    (void)ctx;
    return c;
}

/* Outlier columns per pass (OL_JC) of the tile's fused LLM.int8 outlier product into an output of
 * dtype `out` (cl/mma_gemm.cl, OUTLIERS), or 0 where it does not fuse it. It fuses for 2-byte
 * outputs staged in local memory, with a column of the outlier operands beside the stage buffers
 * in 48 KiB, each work-item's 16-byte pieces of the staged tile in the same columns, and their sums
 * (8 per piece) in registers. */
static int mma_outlier_columns(const struct mma_config *m, clbnb_dtype out) {
    const int threads = 32 * m->warps_m * m->warps_n, bm = 16 * m->mt * m->warps_m, bn = 8 * m->nt * m->warps_n;
    const int row_bytes = m->swizzle ? m->bk : m->bk + 16, smem = m->stages * (bm + bn) * row_bytes;
    const int pieces_per_item = (bm * bn / 8 + threads - 1) / threads;
    const int jc = (49152 - smem) / ((bm + bn) * 4);
    if ((out != CLBNB_DTYPE_F16 && out != CLBNB_DTYPE_BF16) || bm * (2 * bn + 16) > smem || threads % (bn / 8) != 0 ||
        pieces_per_item > 8 || jc < 1)
        return 0;
    return jc < 32 ? jc : 32;
}

/* Whether the tensor-core kernel is built for the call's epilogue kind and output dtype (and, with
 * the outlier product fused, x's dtype): constants in place of the kernel's tests of its cfg
 * argument, see cl/mma_gemm.cl. On where the device runs the PTX; off under the PTX emulation, where
 * each of the test suite's eight combinations would cost a ~30 s PoCL build for the same bits.
 * CLBNB_INT8_MMA_SPECIALIZE=0|1 overrides (development knob, read per call). */
static int mma_specialize(const clbnb_context *ctx) {
    return clbnb_env_switch("CLBNB_INT8_MMA_SPECIALIZE", ctx->info.nv_ptx_mma != 0);
}

/* Work-items per output column of the skinny kernel (SK_TL in cl/int8_gemm.cl) for M rows of A.
 * H100 sweep, 32 / 64 / 128 / 256 lanes (64 and up with a tree reduction down to one value):
 * M = 1, 4096 x 4096: 12.5 / 15.4 / 16.8 / 21.5 us; 28672 x 8192: 90.6 / 87.8 / 94.5 / 124.9 us.
 * M = 4, 4096 x 4096: 21.0 / 20.5 / 19.7 / 23.6 us; 28672 x 8192: 116.0 / 103.7 / 109.8 / 142.6 us
 * (126.5 us with the former 16 accumulators per work-item). Serving M = 16 here: 47 - 64 /
 * 460 - 610 us, against 29 / 177 us for the mma kernel. CLBNB_INT8_SKINNY_LANES=32|64|128|256
 * overrides it (development knob, read per call). */
static int skinny_lanes(size_t m) {
    int lanes = m <= 1 ? 32 : 64;
    const char *env = getenv("CLBNB_INT8_SKINNY_LANES");
    int v;
    if (env && sscanf(env, "%d", &v) == 1 && (v == 32 || v == 64 || v == 128 || v == 256)) lanes = v;
    return lanes;
}

/* How many K slices: enough work-groups to give every compute unit two, when the output tiles
 * alone cannot (small M: token generation, small batches). `at_most`: no more work-groups than
 * that (rounded down), for the f16 GEMM, where with the 4-bit decode a partly filled last wave cost
 * more than the slices gained (the dequantize-first route cuts K alike, so both sum in one order).
 * H100, M = 128, 4096 x 4096 (32 tiles): 9 slices 63.7 us, 8 52.6, 6 55.0, 5 58.6, 4 54.8; M = 64
 * (64 x 128 tiles, 32 of them): 8 slices 42.2, 6 45.8, 5 48.1, 4 50.6. */
static cl_uint choose_splits(const clbnb_context *ctx, size_t tiles, size_t K, size_t bk, int at_most) {
    if (ctx->int8_split_k > 0) return (cl_uint)ctx->int8_split_k;
    size_t target = 2 * (size_t)(ctx->info.compute_units ? ctx->info.compute_units : 1);
    if (tiles >= target || K < 4 * bk) return 1;
    size_t splits = at_most ? target / tiles : (target + tiles - 1) / tiles;
    size_t max_splits = K / (2 * bk); /* each slice keeps at least two K stages */
    if (splits > max_splits) splits = max_splits;
    if (splits > 64) splits = 64;
    return (cl_uint)(splits ? splits : 1);
}

static clbnb_status launch(clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c, cl_uint num_events,
                           const cl_event *wait_list, cl_event *event) {
    const clbnb_matrix *a = c->a, *b = c->b, *out = c->out;
    cl_uint M = (cl_uint)a->rows, N = (cl_uint)b->rows, K = (cl_uint)a->cols;
    clbnb_path path = ctx->info.path[CLBNB_FAMILY_INT8_GEMM];
    /* the epilogue configuration travels as a kernel argument (see cl/inc_int8_epilogue.cl) */
    cl_uint cfg = (cl_uint)c->epilogue;
    if (c->epilogue != EPI_INT32)
        cfg |= (cl_uint)out->dtype << 4 | (cl_uint)c->sa->dtype << 8 | (cl_uint)c->sb->dtype << 12 |
               (cl_uint)(c->bias ? c->bias->dtype : CLBNB_DTYPE_F16) << 16 | (cl_uint)(c->bias != NULL) << 20;

    char options[256];
    const char *program, *kernel_name;
    size_t local[3] = {1, 1, 1}, global[3];
    size_t tile_m, tile_n, bk;
    int splittable = 1, skinny = 0, mma_jc = 0, specialize = 0;
    if (path != CLBNB_PATH_CPU && M <= 4) {
        /* small M: memory-bound on B, the skinny kernel streams B once (DOT4 of the device on the
         * dot4 and nv_mma paths, the emulation on the generic path) */
        int aligned = a->offset % 16 == 0 && a->ld % 16 == 0 && b->offset % 16 == 0 && b->ld % 16 == 0;
        int dot4 = path == CLBNB_PATH_GENERIC ? (int)CLBNB_DOT4_EMULATED : (int)ctx->info.dot4_impl;
        const int lanes = skinny_lanes(M);
        snprintf(options, sizeof options, "-DDOT4_IMPL=%d -DALIGNED16=%d -DSK_TL=%d", dot4, aligned, lanes);
        program = "int8_gemm", kernel_name = "int8_gemm_skinny";
        tile_n = (size_t)(256 / lanes);
        local[0] = 256, tile_m = 4, bk = 16, splittable = 0, skinny = 1;
        global[0] = (N + tile_n - 1) / tile_n * 256, global[1] = 1;
    } else if (path == CLBNB_PATH_NV_MMA) {
        int aligned = a->offset % 16 == 0 && a->ld % 16 == 0 && b->offset % 16 == 0 && b->ld % 16 == 0;
        struct mma_config m = mma_config(ctx, M, 0);
        snprintf(options, sizeof options,
                 "-DALIGNED16=%d -DCLBNB_PTX_EMULATE=%d -DWARPS_M=%d -DWARPS_N=%d -DMT=%d -DNT=%d -DBK=%d -DSTAGES=%d "
                 "-DSWIZZLE=%d -DUNROLL=%d -DASM_VOLATILE=%d",
                 aligned, !ctx->info.nv_ptx_mma, m.warps_m, m.warps_n, m.mt, m.nt, m.bk, m.stages, m.swizzle, m.unroll,
                 m.asm_volatile);
        specialize = mma_specialize(ctx);
        if (specialize) clbnb_options_append(options, sizeof options, " -DEPI_CFG_LOW=%uu", (unsigned)(cfg & 0xFFu));
        program = "mma_gemm", kernel_name = "int8_gemm_mma";
        mma_jc = mma_outlier_columns(&m, out->dtype);
        tile_m = (size_t)16 * m.mt * m.warps_m, tile_n = (size_t)8 * m.nt * m.warps_n, bk = (size_t)m.bk;
        local[0] = (size_t)32 * m.warps_m * m.warps_n;
        global[0] = (N + tile_n - 1) / tile_n * local[0], global[1] = (M + tile_m - 1) / tile_m;
    } else if (path == CLBNB_PATH_CPU) {
        options[0] = '\0';
        program = "int8_gemm", kernel_name = "int8_gemm_cpu";
        local[0] = 8, tile_m = 1, tile_n = 4, bk = 8, splittable = 0;
        global[0] = (N + 3) / 4, global[1] = M;
    } else { /* generic and dot4: the tiled kernel, with or without the device's DOT4 */
        int aligned = a->offset % 4 == 0 && a->ld % 4 == 0 && b->offset % 4 == 0 && b->ld % 4 == 0;
        int dot4 = path == CLBNB_PATH_DOT4 ? (int)ctx->info.dot4_impl : (int)CLBNB_DOT4_EMULATED;
        snprintf(options, sizeof options, "-DDOT4_IMPL=%d -DALIGNED4=%d", dot4, aligned);
        program = "int8_gemm", kernel_name = "int8_gemm_tiled";
        local[0] = 16, local[1] = 16, tile_m = 64, tile_n = 64, bk = 32; /* TILE 64 / WPT 4, BK 32 */
        global[0] = (N + 63) / 64 * 16, global[1] = (M + 63) / 64 * 16;
    }
    size_t tiles = ((M + tile_m - 1) / tile_m) * ((N + tile_n - 1) / tile_n);
    cl_uint splits = splittable ? choose_splits(ctx, tiles, K, bk, 0) : 1;
    cl_uint k_chunk = (cl_uint)(((K + splits - 1) / splits + bk - 1) / bk * bk);
    splits = (K + k_chunk - 1) / k_chunk;
    global[2] = splits;
    /* the tensor-core kernel fuses the LLM.int8 outlier product into its epilogue (a variant built
     * with OUTLIERS=1 and six more arguments) unless K is split: the slices' sums are only complete
     * in int8_gemm_epilogue */
    /* development knob CLBNB_INT8_FUSE_OUTLIERS=0: the separate add */
    const int mma_outliers = mma_jc > 0 && splits == 1 && c->outliers && c->epilogue == EPI_LLM_INT8 &&
                             clbnb_env_switch("CLBNB_INT8_FUSE_OUTLIERS", 1);
    if (mma_outliers) {
        clbnb_options_append(options, sizeof options, " -DOUTLIERS=1 -DOL_JC=%d", mma_jc);
        if (specialize) clbnb_options_append(options, sizeof options, " -DOL_XDT=%d", (int)c->outliers->xdt);
    }

    cl_ulong a_off = a->offset, lda = a->ld, b_off = b->offset, ldb = b->ld, out_off = out->offset, ldc = out->ld;
    cl_ulong sa_off = byte_offset(c->sa), sb_off = byte_offset(c->sb), bias_off = byte_offset(c->bias);
    cl_mem sa = mem_of(c->sa), sb = mem_of(c->sb), bias = mem_of(c->bias);
    cl_mem partial = NULL;
    cl_event zeroed = NULL, summed = NULL;
    clbnb_status s = CLBNB_SUCCESS;
    if (splits > 1) {
        CLBNB_TRY(clbnb_scratch_acquire(ctx, (size_t)M * N * sizeof(cl_int), &partial));
        cl_int zero = 0;
        s = (clbnb_status)clEnqueueFillBuffer(queue, partial, &zero, sizeof zero, 0, (size_t)M * N * sizeof(cl_int),
                                              num_events, wait_list, &zeroed);
    }
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    if (s == CLBNB_SUCCESS) s = clbnb_kernel_get_locked(ctx, program, options, kernel_name, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 21, CLBNB_ARG(a->mem), CLBNB_ARG(a_off), CLBNB_ARG(lda), CLBNB_ARG(b->mem),
                           CLBNB_ARG(b_off), CLBNB_ARG(ldb), CLBNB_ARG(M), CLBNB_ARG(N), CLBNB_ARG(K),
                           CLBNB_ARG(k_chunk), CLBNB_ARG(partial), CLBNB_ARG(out->mem), CLBNB_ARG(out_off),
                           CLBNB_ARG(ldc), CLBNB_ARG(sa), CLBNB_ARG(sa_off), CLBNB_ARG(sb), CLBNB_ARG(sb_off),
                           CLBNB_ARG(bias), CLBNB_ARG(bias_off), CLBNB_ARG(cfg));
    if (s == CLBNB_SUCCESS && skinny) { /* the skinny kernel's outlier product (cl/int8_gemm.cl) */
        const clbnb_outlier_product none = {NULL, NULL, NULL, 0, 0, 0}, *o = c->outliers ? c->outliers : &none;
        cl_int fuse = c->outliers != NULL;
        s = clbnb_set_args_from(k, 21, 7, CLBNB_ARG(fuse), CLBNB_ARG(o->x), CLBNB_ARG(o->x_off), CLBNB_ARG(o->ldx),
                                CLBNB_ARG(o->xdt), CLBNB_ARG(o->ocols), CLBNB_ARG(o->ocount));
    }
    if (s == CLBNB_SUCCESS && mma_outliers) {
        const clbnb_outlier_product *o = c->outliers;
        s = clbnb_set_args_from(k, 21, 6, CLBNB_ARG(o->x), CLBNB_ARG(o->x_off), CLBNB_ARG(o->ldx), CLBNB_ARG(o->xdt),
                                CLBNB_ARG(o->ocols), CLBNB_ARG(o->ocount));
    }
    if (s == CLBNB_SUCCESS) {
        if (partial)
            s = clbnb_enqueue(queue, k, 3, global, local, 1, &zeroed, &summed);
        else
            s = clbnb_enqueue(queue, k, 3, global, local, num_events, wait_list, event);
    }
    if (s == CLBNB_SUCCESS && partial) {
        s = clbnb_kernel_get_locked(ctx, "int8_gemm", "-DDOT4_IMPL=0 -DALIGNED4=0", "int8_gemm_epilogue", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 13, CLBNB_ARG(partial), CLBNB_ARG(M), CLBNB_ARG(N), CLBNB_ARG(out->mem),
                               CLBNB_ARG(out_off), CLBNB_ARG(ldc), CLBNB_ARG(sa), CLBNB_ARG(sa_off), CLBNB_ARG(sb),
                               CLBNB_ARG(sb_off), CLBNB_ARG(bias), CLBNB_ARG(bias_off), CLBNB_ARG(cfg));
        size_t elocal[2] = {64, 1}, eglobal[2] = {N, M};
        if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 2, eglobal, elocal, 1, &summed, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (zeroed) clReleaseEvent(zeroed);
    if (summed) clReleaseEvent(summed);
    clbnb_scratch_release(ctx, queue, partial); /* NULL: no split */
    if (c->fused) *c->fused = s == CLBNB_SUCCESS && (skinny || mma_outliers) && c->outliers;
    return s;
}

/* f16 tensor-core GEMM for the 4-bit large-batch path (see internal.h). Split-K when the output
 * tiles cannot fill the device: slices write f32 partial tiles, a reduce kernel sums them. With w4,
 * B is that 4-bit weight, decoded stage by stage in local memory (g4_gemm_mma; b, b_off, ldb unused). */
clbnb_status clbnb_mma_gemm_f16(clbnb_context *ctx, cl_command_queue queue, cl_mem a, size_t a_off, size_t lda,
                                cl_mem b, size_t b_off, size_t ldb, const struct clbnb_g4_weight *w4, size_t M,
                                size_t N, size_t K, const clbnb_matrix *out, const clbnb_vector *bias,
                                cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    if (M > UINT32_MAX / 2 || N > UINT32_MAX / 2 || K > UINT32_MAX / 4) return CLBNB_ERROR_INVALID_SHAPE;
    struct mma_config m = mma_config(ctx, 0, w4 ? M : 0);
    if (w4 && !clbnb_g4_decode_fits(w4, K)) return CLBNB_ERROR_INVALID_SHAPE;
    /* rows are byte rows to the kernel: 2 bytes per f16 element */
    int aligned = a_off % 16 == 0 && (lda * 2) % 16 == 0 && (w4 || (b_off % 16 == 0 && (ldb * 2) % 16 == 0));
    char options[320];
    snprintf(options, sizeof options,
             "-DMMA_F16=1 -DG4_B=%d -DALIGNED16=%d -DCLBNB_PTX_EMULATE=%d -DWARPS_M=%d -DWARPS_N=%d -DMT=%d -DNT=%d "
             "-DBK=%d -DSTAGES=%d -DSWIZZLE=%d -DUNROLL=%d -DASM_VOLATILE=%d",
             w4 != NULL, aligned, !ctx->info.nv_ptx_mma, m.warps_m, m.warps_n, m.mt, m.nt, m.bk, m.stages, m.swizzle,
             m.unroll, m.asm_volatile);
    const char *kname = w4 ? "g4_gemm_mma" : "f16_gemm_mma";
    size_t tile_m = (size_t)16 * m.mt * m.warps_m, tile_n = (size_t)8 * m.nt * m.warps_n, bk = (size_t)m.bk;
    size_t tiles = ((M + tile_m - 1) / tile_m) * ((N + tile_n - 1) / tile_n);
    cl_uint splits = choose_splits(ctx, tiles, 2 * K, bk, 1);
    cl_uint kb = (cl_uint)(2 * K), k_chunk = (cl_uint)(((kb + splits - 1) / splits + bk - 1) / bk * bk);
    splits = (kb + k_chunk - 1) / k_chunk;
    size_t local[3] = {(size_t)32 * m.warps_m * m.warps_n, 1, 1};
    size_t global[3] = {(N + tile_n - 1) / tile_n * local[0], (M + tile_m - 1) / tile_m, splits};
    cl_uint cm = (cl_uint)M, cn = (cl_uint)N;
    cl_ulong ca_off = a_off, clda = 2 * lda, cb_off = b_off, cldb = 2 * ldb, out_off = out->offset, ldc = out->ld;
    cl_ulong zero = 0, bias_off = bias ? bias->offset : 0;
    cl_mem none = NULL, bias_mem = bias ? bias->mem : NULL, partial = NULL;
    cl_uint cfg = 4u | (cl_uint)out->dtype << 4 | (cl_uint)(bias ? bias->dtype : CLBNB_DTYPE_F16) << 16 |
                  (cl_uint)(bias != NULL) << 20;
    if (splits > 1) {
        CLBNB_TRY(clbnb_scratch_acquire(ctx, (size_t)splits * M * N * sizeof(float), &partial));
    }
    cl_event sliced = NULL;
    pthread_mutex_lock(&ctx->lock);
    cl_kernel k = NULL;
    clbnb_status s = clbnb_kernel_get_locked(ctx, "mma_gemm", options, kname, &k);
    if (s == CLBNB_SUCCESS)
        s = clbnb_set_args(k, 21, CLBNB_ARG(a), CLBNB_ARG(ca_off), CLBNB_ARG(clda), CLBNB_ARG(b), CLBNB_ARG(cb_off),
                           CLBNB_ARG(cldb), CLBNB_ARG(cm), CLBNB_ARG(cn), CLBNB_ARG(kb), CLBNB_ARG(k_chunk),
                           CLBNB_ARG(partial), CLBNB_ARG(out->mem), CLBNB_ARG(out_off), CLBNB_ARG(ldc), CLBNB_ARG(none),
                           CLBNB_ARG(zero), CLBNB_ARG(none), CLBNB_ARG(zero), CLBNB_ARG(bias_mem), CLBNB_ARG(bias_off),
                           CLBNB_ARG(cfg));
    if (s == CLBNB_SUCCESS && w4) s = clbnb_g4_set_weight_args(k, 21, w4);
    if (s == CLBNB_SUCCESS)
        s = clbnb_enqueue(queue, k, 3, global, local, num_events, wait_list, partial ? &sliced : event);
    if (s == CLBNB_SUCCESS && partial) {
        s = clbnb_kernel_get_locked(ctx, "mma_gemm", options, "f16_gemm_splitk_reduce", &k);
        if (s == CLBNB_SUCCESS)
            s = clbnb_set_args(k, 14, CLBNB_ARG(partial), CLBNB_ARG(splits), CLBNB_ARG(cm), CLBNB_ARG(cn),
                               CLBNB_ARG(out->mem), CLBNB_ARG(out_off), CLBNB_ARG(ldc), CLBNB_ARG(none),
                               CLBNB_ARG(zero), CLBNB_ARG(none), CLBNB_ARG(zero), CLBNB_ARG(bias_mem),
                               CLBNB_ARG(bias_off), CLBNB_ARG(cfg));
        size_t rlocal[2] = {64, 1}, rglobal[2] = {N, M};
        if (s == CLBNB_SUCCESS) s = clbnb_enqueue(queue, k, 2, rglobal, rlocal, 1, &sliced, event);
    }
    pthread_mutex_unlock(&ctx->lock);
    if (sliced) clReleaseEvent(sliced);
    clbnb_scratch_release(ctx, queue, partial); /* NULL: no split */
    return s;
}

static clbnb_status run(clbnb_context *ctx, cl_command_queue queue, const struct gemm_call *c, cl_uint num_events,
                        const cl_event *wait_list, cl_event *event) {
    CLBNB_TRY(validate(ctx, queue, c, num_events, wait_list));
    return launch(ctx, queue, c, num_events, wait_list, event);
}

clbnb_status clbnb_int8_linear_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                      const clbnb_matrix *b, const clbnb_matrix *c, cl_uint num_events,
                                      const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, c, EPI_INT32, NULL, NULL, NULL, NULL, NULL};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_scaled_matmul(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                      const clbnb_matrix *b, const clbnb_vector *row_stats,
                                      const clbnb_vector *col_stats, const clbnb_vector *bias, const clbnb_matrix *out,
                                      cl_uint num_events, const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_LLM_INT8, row_stats, col_stats, bias, NULL, NULL};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_scaled_matmul_outliers(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                               const clbnb_matrix *b, const clbnb_vector *row_stats,
                                               const clbnb_vector *col_stats, const clbnb_vector *bias,
                                               const clbnb_matrix *out, const clbnb_outlier_product *outliers,
                                               int *fused) {
    *fused = 0;
    struct gemm_call call = {a, b, out, EPI_LLM_INT8, row_stats, col_stats, bias, outliers, fused};
    return run(ctx, queue, &call, 0, NULL, NULL);
}

clbnb_status clbnb_int8_matmul_mixed_dequantize(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                const clbnb_matrix *b, const clbnb_vector *state_x,
                                                const clbnb_vector *state_w, const clbnb_vector *bias,
                                                const clbnb_matrix *out, cl_uint num_events, const cl_event *wait_list,
                                                cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_MIXED, state_x, state_w, bias, NULL, NULL};
    return run(ctx, queue, &call, num_events, wait_list, event);
}

clbnb_status clbnb_int8_matmul_rowwise_dequantize(clbnb_context *ctx, cl_command_queue queue, const clbnb_matrix *a,
                                                  const clbnb_matrix *b, const clbnb_vector *state_x,
                                                  const clbnb_vector *state_w, const clbnb_vector *bias,
                                                  const clbnb_matrix *out, cl_uint num_events,
                                                  const cl_event *wait_list, cl_event *event) {
    struct gemm_call call = {a, b, out, EPI_ROWWISE, state_x, state_w, bias, NULL, NULL};
    return run(ctx, queue, &call, num_events, wait_list, event);
}
