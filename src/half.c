/* half.c: host conversions between f32 and the 16-bit float formats (fp16, bf16), rounding to
 * nearest even as the device's vstore_half_rte and clbnb_f32_to_bf16 in cl/common.cl do. */
#include <string.h>

#include "internal.h"

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t clbnb_f32_to_f16(float f) {
    const uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    const int exp = (int)((x >> 23) & 0xff);
    if (exp == 255) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0)); /* Inf, quiet NaN */
    const int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* fp16 subnormal or zero: shift the full significand, round half to even */
        if (e < -10) return (uint16_t)sign;
        const uint32_t m = mant | 0x800000u;
        const int shift = 14 - e;
        uint32_t h = m >> shift;
        const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry into the exponent is correct, up to Inf */
    return (uint16_t)(sign | h);
}

float clbnb_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu;
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        const float f = (float)m * (1.0f / 16777216.0f); /* exact */
        return sign ? -f : f;
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t clbnb_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float clbnb_bf16_to_f32(uint16_t b) { return bits_f32((uint32_t)b << 16); }
