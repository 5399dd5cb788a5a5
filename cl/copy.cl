// =================================================================================================
// copy.cl: device-to-device copy. The benchmarks use it as the bandwidth reference that every
// memory-bound kernel is measured against, so it must be as fast as a plain kernel can be:
// 16-byte vectors, grid-stride loop, one read and one write per element.
// =================================================================================================

// Copies n16 uint4 elements from src[soff..] to dst[doff..] (offsets in uint4 units).
__kernel void copy_vec16_off(__global uint4 *restrict dst, ulong doff, __global const uint4 *restrict src, ulong soff,
                             ulong n16) {
    ulong stride = get_global_size(0);
    for (ulong i = get_global_id(0); i < n16; i += stride) dst[doff + i] = src[soff + i];
}

// Copies n bytes one at a time (unaligned offsets and the tail); offsets in bytes.
__kernel void copy_bytes_off(__global uchar *restrict dst, ulong doff, __global const uchar *restrict src, ulong soff,
                             ulong n) {
    ulong stride = get_global_size(0);
    for (ulong i = get_global_id(0); i < n; i += stride) dst[doff + i] = src[soff + i];
}
