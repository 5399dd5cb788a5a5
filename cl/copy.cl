// =================================================================================================
// copy.cl: device-to-device copy. The benchmarks use it as the bandwidth reference that every
// memory-bound kernel is measured against, so it must be as fast as a plain kernel can be:
// 16-byte vectors, one read and one write per element.
//
// Access pattern per device kind: on GPUs a grid-stride loop (consecutive work-items touch
// consecutive vectors: coalesced); on CPUs (PoCL runs each work-item's loop serially) every
// work-item streams one contiguous chunk, which is what the hardware prefetchers want.
// =================================================================================================

// Copies n16 uint4 elements from src[soff..] to dst[doff..] (offsets in uint4 units).
__kernel void copy_vec16_off(__global uint4 *restrict dst, ulong doff, __global const uint4 *restrict src, ulong soff,
                             ulong n16) {
#if CLBNB_DEVICE_CPU
    ulong items = get_global_size(0);
    ulong chunk = (n16 + items - 1) / items;
    ulong begin = get_global_id(0) * chunk;
    ulong end = min(begin + chunk, n16);
    for (ulong i = begin; i < end; i++) dst[doff + i] = src[soff + i];
#else
    ulong stride = get_global_size(0);
    for (ulong i = get_global_id(0); i < n16; i += stride) dst[doff + i] = src[soff + i];
#endif
}

// Copies n bytes one at a time (unaligned offsets and the tail); offsets in bytes.
__kernel void copy_bytes_off(__global uchar *restrict dst, ulong doff, __global const uchar *restrict src, ulong soff,
                             ulong n) {
#if CLBNB_DEVICE_CPU
    ulong items = get_global_size(0);
    ulong chunk = (n + items - 1) / items;
    ulong begin = get_global_id(0) * chunk;
    ulong end = min(begin + chunk, n);
    for (ulong i = begin; i < end; i++) dst[doff + i] = src[soff + i];
#else
    ulong stride = get_global_size(0);
    for (ulong i = get_global_id(0); i < n; i += stride) dst[doff + i] = src[soff + i];
#endif
}
