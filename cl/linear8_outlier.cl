// =================================================================================================
// linear8_outlier.cl: the LLM.int8 outlier product on GPUs (MatMul8bitLt, threshold > 0),
//   out[m, n] = RN_odt(out[m, n] + sum_j x[m, c_j] * RN_xdt(fl32(fl32(cb[n, c_j] * scb[n]) * fl32(1/127))))
// over the count[0] outlier columns c_j (ascending, read on the device): the same bits as
// lay_outlier_add in layers.cl (the CPU path's kernel), which reads cb[n, c_j] per output element.
//
// On a GPU those cb reads are one 32-byte sector per lane (consecutive n are ldcb bytes apart); a
// tiled kernel that gathered them once per work-group still spent ~4x a plain read-modify-write of
// the output (45.8 us for 2048 x 4096 f16 with 8 columns on an H100). So the work is split:
//   lin8_outlier_weights: the dequantized weights of the first OA_WCAP outlier columns, gathered
//                         once into w[j * ldw + n] (f32; N * OA_WCAP * 4 bytes of workspace);
//   lin8_outlier_add:     one work-item per 8 consecutive outputs and OA_RPT rows: w as float8
//                         (coalesced, from L2), x[m, c_j] broadcast across the lanes of a row, the
//                         output read and written with 16-byte accesses (inc_wide_io.cl). Columns
//                         past OA_WCAP (rare: 8 is typical at threshold 6) gather cb directly.
//
// Options: IN_DTYPE = OUT_DTYPE = the output's dtype (read-modify-write), X_DTYPE = x's dtype,
// OA_WCAP, and the work-group shape OA_VN (lanes along n) x OA_TR (lanes along m), OA_RPT.
// =================================================================================================
//! include inc_wide_io

#ifndef X_DTYPE
#define X_DTYPE CLBNB_DTYPE_F32
#endif
#ifndef OA_WCAP
#define OA_WCAP 16 // outlier columns whose weights lin8_outlier_weights stages
#endif
#ifndef OA_VN
#define OA_VN 32 // local size 0: each lane covers 8 outputs n
#endif
#ifndef OA_TR
#define OA_TR 8 // local size 1
#endif
#ifndef OA_RPT
#define OA_RPT 4 // rows per work-item: a work-group covers OA_TR * OA_RPT rows
#endif

#define OA_C127 7.874015718698502e-3f

inline float oa_weight(__global const char *cb, ulong ldcb, __global const float *scb, ulong n, ulong c) {
    return clbnb_round_to_dtype((float)cb[n * ldcb + c] * scb[n] * OA_C127, X_DTYPE);
}

__kernel void lin8_outlier_weights(__global float *w, ulong ldw, __global const char *cb, ulong ldcb,
                                   __global const float *scb, __global const int *ocols,
                                   __global const int *ocount, ulong cols) {
    const ulong n = get_global_id(0);
    if (n >= cols) return;
    const int cnt = min(ocount[0], OA_WCAP);
    for (int j = 0; j < cnt; j++) w[(ulong)j * ldw + n] = oa_weight(cb, ldcb, scb, n, (ulong)ocols[j]);
}

// 8 weights w[n0 .. n0 + 7] of outlier column j (zero past `cols`).
inline float8 oa_weights8(int j, ulong n0, ulong cols, __global const float *w, ulong ldw,
                          __global const char *cb, ulong ldcb, __global const float *scb, ulong c) {
    if (j < OA_WCAP && n0 + 8 <= cols) return vload8(0, w + (ulong)j * ldw + n0);
    float v[8];
    for (int e = 0; e < 8; e++) {
        const ulong n = n0 + e;
        v[e] = n >= cols ? 0.0f : j < OA_WCAP ? w[(ulong)j * ldw + n] : oa_weight(cb, ldcb, scb, n, c);
    }
    return vload8(0, v);
}

// out_al: every row of the output starts at a multiple of 8 elements (ooff and ldo multiples of 8).
__kernel __attribute__((reqd_work_group_size(OA_VN, OA_TR, 1))) void
lin8_outlier_add(__global uchar *out, ulong ooff, ulong ldo, int out_al, __global const uchar *x, ulong xoff,
                 ulong ldx, __global const float *w, ulong ldw, __global const char *cb, ulong ldcb,
                 __global const float *scb, __global const int *ocols, __global const int *ocount, ulong rows,
                 ulong cols) {
    const int cnt = ocount[0];
    const ulong n0 = get_global_id(0) * 8;
    if (cnt <= 0 || n0 >= cols) return;
    const ulong m0 = get_group_id(1) * (OA_TR * OA_RPT) + get_local_id(1);
    float8 acc[OA_RPT];
    for (int i = 0; i < OA_RPT; i++) acc[i] = (float8)(0.0f);
    for (int j = 0; j < cnt; j++) {
        const ulong c = (ulong)ocols[j];
        const float8 wv = oa_weights8(j, n0, cols, w, ldw, cb, ldcb, scb, c);
        for (int i = 0; i < OA_RPT; i++) {
            const ulong m = m0 + OA_TR * i;
            if (m < rows) acc[i] += clbnb_load_float(x, xoff + m * ldx + c, X_DTYPE) * wv;
        }
    }
    for (int i = 0; i < OA_RPT; i++) {
        const ulong m = m0 + OA_TR * i;
        if (m >= rows) break;
        const ulong row = ooff + m * ldo;
        store8_out_tail(out, row + n0, row + cols, out_al, load8_in_tail(out, row + n0, row + cols, out_al) + acc[i]);
    }
}
