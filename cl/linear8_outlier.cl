// =================================================================================================
// linear8_outlier.cl: the LLM.int8 outlier product on GPUs (MatMul8bitLt, threshold > 0),
//   out[m, n] = RN_odt(out[m, n] + sum_j x[m, c_j] * RN_xdt(fl32(fl32(cb[n, c_j] * scb[n]) * fl32(1/127))))
// over the count[0] outlier columns c_j (ascending, read on the device): the same bits as
// lay_outlier_add in layers.cl (the CPU path's kernel), which reads cb[n, c_j] per output element.
// On a GPU those reads are one 32-byte sector per lane (consecutive n are ldcb bytes apart): 8
// outlier columns of a 2048 x 4096 output cost ~430 us of L2 traffic on an H100. Here a work-group
// stages the dequantized weights of OA_TN columns and the x values of OA_TR * OA_RPT rows for OA_JC
// outlier columns at a time in local memory, so each is read once per work-group.
// =================================================================================================

#ifndef OA_TN
#define OA_TN 64 // outputs n per work-group (local size 0)
#endif
#ifndef OA_TR
#define OA_TR 8 // local size 1
#endif
#ifndef OA_RPT
#define OA_RPT 8 // rows per work-item: a work-group covers OA_TR * OA_RPT rows
#endif
#ifndef OA_JC
#define OA_JC 8 // outlier columns per local-memory pass
#endif
#define OA_THREADS (OA_TN * OA_TR)
#define OA_ROWS (OA_TR * OA_RPT)

__kernel __attribute__((reqd_work_group_size(OA_TN, OA_TR, 1))) void
lin8_outlier_add_tiled(__global uchar *out, ulong ooff, ulong ldo, int odt, __global const uchar *x, ulong xoff,
                       ulong ldx, int xdt, __global const char *cb, ulong cboff, ulong ldcb,
                       __global const float *scb, ulong scboff, __global const int *ocols,
                       __global const int *ocount, ulong rows, ulong cols) {
    __local float wl[OA_JC][OA_TN];
    __local float xl[OA_ROWS][OA_JC + 1]; // +1: row-strided writes spread over the banks
    const int cnt = ocount[0];
    if (cnt <= 0) return; // the same for the whole work-group
    const uint ln = get_local_id(0), lr = get_local_id(1), tid = lr * OA_TN + ln;
    const ulong n0 = get_group_id(0) * OA_TN, m0 = get_group_id(1) * OA_ROWS, n = n0 + ln;
    // the outputs are loaded first, all together, so their latency overlaps the staging below (the
    // compiler cannot move a load of `out` above a store to it, so loading each row just before its
    // store serialized them): the H100 threshold-6 forward, 2048 x 4096^2, 257.8 -> 253.6 us
    float o[OA_RPT], acc[OA_RPT];
    for (int i = 0; i < OA_RPT; i++) {
        const ulong m = m0 + lr + OA_TR * i;
        o[i] = n < cols && m < rows ? clbnb_load_float(out, ooff + m * ldo + n, odt) : 0.0f;
        acc[i] = 0.0f;
    }
    for (int j0 = 0; j0 < cnt; j0 += OA_JC) {
        const int jn = min(OA_JC, cnt - j0);
        barrier(CLK_LOCAL_MEM_FENCE); // the previous pass is done with wl / xl
        for (uint e = tid; e < OA_JC * OA_TN; e += OA_THREADS) {
            const uint j = e / OA_TN, nl = e % OA_TN;
            const ulong nn = n0 + nl;
            float w = 0.0f;
            if ((int)j < jn && nn < cols) {
                const ulong c = (ulong)ocols[j0 + j];
                w = clbnb_lin8_outlier_weight((float)cb[cboff + nn * ldcb + c], scb[scboff + nn], xdt);
            }
            wl[j][nl] = w;
        }
        for (uint e = tid; e < OA_ROWS * OA_JC; e += OA_THREADS) {
            const uint r = e / OA_JC, j = e % OA_JC;
            const ulong m = m0 + r;
            float v = 0.0f;
            if ((int)j < jn && m < rows) v = clbnb_load_float(x, xoff + m * ldx + (ulong)ocols[j0 + j], xdt);
            xl[r][j] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int j = 0; j < jn; j++) {
            const float w = wl[j][ln];
            for (int i = 0; i < OA_RPT; i++) acc[i] += xl[lr + OA_TR * i][j] * w;
        }
    }
    if (n >= cols) return;
    for (int i = 0; i < OA_RPT; i++) {
        const ulong m = m0 + lr + OA_TR * i;
        if (m < rows) clbnb_store_float(out, ooff + m * ldo + n, odt, o[i] + acc[i]);
    }
}
