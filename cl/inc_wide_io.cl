// =================================================================================================
// inc_wide_io.cl: 8 consecutive elements of an f32 / f16 / bf16 array as one float8, read and
// written with 16-byte (f16, bf16) or 2 x 16-byte (f32) accesses where the caller can vouch for the
// alignment. IN_DTYPE is the dtype the loads read, OUT_DTYPE the dtype the stores write (program
// options; f32 by default). Stores round to nearest even, as clbnb_store_float does.
// =================================================================================================

#ifndef IN_DTYPE
#define IN_DTYPE CLBNB_DTYPE_F32
#endif
#ifndef OUT_DTYPE
#define OUT_DTYPE CLBNB_DTYPE_F32
#endif

// 8 consecutive input elements starting at element e (a multiple of 8); `al` = the byte offset of
// the buffer is a multiple of 16.
inline float8 load8_in(__global const uchar *x, ulong e, int al) {
#if IN_DTYPE == CLBNB_DTYPE_F32
    if (al) {
        __global const float4 *p = (__global const float4 *)x + (e >> 2);
        return (float8)(p[0], p[1]);
    }
    return vload8(0, (__global const float *)x + e);
#elif IN_DTYPE == CLBNB_DTYPE_F16
    if (al) {
        uint4 r = ((__global const uint4 *)x)[e >> 3];
        return vload_half8(0, (const __private half *)&r);
    }
    return vload_half8(0, (__global const half *)x + e);
#else
    uint4 r;
    if (al) {
        r = ((__global const uint4 *)x)[e >> 3];
    } else {
        ushort8 h = vload8(0, (__global const ushort *)x + e);
        r = (uint4)((uint)h.s0 | ((uint)h.s1 << 16), (uint)h.s2 | ((uint)h.s3 << 16), (uint)h.s4 | ((uint)h.s5 << 16),
                    (uint)h.s6 | ((uint)h.s7 << 16));
    }
    return (float8)(as_float(r.x << 16), as_float(r.x & 0xffff0000u), as_float(r.y << 16), as_float(r.y & 0xffff0000u),
                    as_float(r.z << 16), as_float(r.z & 0xffff0000u), as_float(r.w << 16), as_float(r.w & 0xffff0000u));
#endif
}

// 8 input elements from e, zero beyond n (the partial last chunk).
inline float8 load8_in_tail(__global const uchar *x, ulong e, ulong n, int al) {
    if (e + 8 <= n) return load8_in(x, e, al);
    float v[8];
    for (int j = 0; j < 8; j++) v[j] = e + j < n ? clbnb_load_float(x, e + j, IN_DTYPE) : 0.0f;
    return vload8(0, v);
}

// 8 output elements at element e (a multiple of 8); `al` = the output byte offset is a multiple of 16.
inline void store8_out(__global uchar *out, ulong e, int al, float8 v) {
#if OUT_DTYPE == CLBNB_DTYPE_F32
    if (al) {
        __global float4 *p = (__global float4 *)out + (e >> 2);
        p[0] = v.lo;
        p[1] = v.hi;
    } else {
        vstore8(v, 0, (__global float *)out + e);
    }
#elif OUT_DTYPE == CLBNB_DTYPE_F16
    if (al) {
        uint4 r;
        vstore_half8_rte(v, 0, (__private half *)&r);
        ((__global uint4 *)out)[e >> 3] = r;
    } else {
        vstore_half8_rte(v, 0, (__global half *)out + e);
    }
#else
    uint4 r = (uint4)((uint)clbnb_f32_to_bf16(v.s0) | ((uint)clbnb_f32_to_bf16(v.s1) << 16),
                      (uint)clbnb_f32_to_bf16(v.s2) | ((uint)clbnb_f32_to_bf16(v.s3) << 16),
                      (uint)clbnb_f32_to_bf16(v.s4) | ((uint)clbnb_f32_to_bf16(v.s5) << 16),
                      (uint)clbnb_f32_to_bf16(v.s6) | ((uint)clbnb_f32_to_bf16(v.s7) << 16));
    if (al) {
        ((__global uint4 *)out)[e >> 3] = r;
    } else {
        __global ushort *p = (__global ushort *)out + e;
        vstore8((ushort8)((ushort)r.x, (ushort)(r.x >> 16), (ushort)r.y, (ushort)(r.y >> 16), (ushort)r.z,
                          (ushort)(r.z >> 16), (ushort)r.w, (ushort)(r.w >> 16)),
                0, p);
    }
#endif
}

// 8 outputs from e, only those below n.
inline void store8_out_tail(__global uchar *out, ulong e, ulong n, int al, float8 v) {
    if (e + 8 <= n) {
        store8_out(out, e, al, v);
        return;
    }
    float t[8];
    vstore8(v, 0, t);
    for (int j = 0; j < 8; j++)
        if (e + j < n) clbnb_store_float(out, e + j, OUT_DTYPE, t[j]);
}

