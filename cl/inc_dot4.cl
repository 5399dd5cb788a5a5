// =================================================================================================
// inc_dot4.cl: DOT4(a, b, acc) = acc + sum of the four signed 8-bit products of two packed ints.
// One macro, mapped per device by the host's CLBNB_DOT4_IMPL (clbnb_dot4_impl):
//   1 NVIDIA: inline PTX dp4a.s32.s32      2 cl_khr_integer_dot_product
//   3 AMD: __builtin_amdgcn_sdot4          0 portable emulation (also the generic path's choice)
// DOT4_IMPL overrides CLBNB_DOT4_IMPL (the generic path compiles with DOT4_IMPL=0).
// =================================================================================================
#ifndef DOT4_IMPL
#define DOT4_IMPL CLBNB_DOT4_IMPL
#endif

inline int dot4_emulated(int a, int b, int acc) {
    char4 x = as_char4(a), y = as_char4(b);
    return acc + (int)x.s0 * (int)y.s0 + (int)x.s1 * (int)y.s1 + (int)x.s2 * (int)y.s2 + (int)x.s3 * (int)y.s3;
}

#if DOT4_IMPL == 1
inline int dot4_device(int a, int b, int acc) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(acc));
    return d;
}
#define DOT4(a, b, acc) dot4_device((a), (b), (acc))
#elif DOT4_IMPL == 2
#pragma OPENCL EXTENSION cl_khr_integer_dot_product : enable
// plain dot + add: the saturating accumulate variant is slow on some drivers and never needed
// here (the host bounds K so int32 cannot overflow)
#define DOT4(a, b, acc) ((acc) + dot_4x8packed_ss_int((uint)(a), (uint)(b)))
#elif DOT4_IMPL == 3
#define DOT4(a, b, acc) __builtin_amdgcn_sdot4((a), (b), (acc), false)
#else
#define DOT4(a, b, acc) dot4_emulated((a), (b), (acc))
#endif
