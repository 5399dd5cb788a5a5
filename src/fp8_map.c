/* fp8_map.c: bitsandbytes' create_fp8_map (spec 1.4) and get_block_sizes (spec 7). */
#include <math.h>
#include <string.h>

#include "internal.h"

clbnb_status clbnb_fp8_map_create(float code[256], int is_signed, int exponent_bits, int precision_bits,
                                  int total_bits) {
    if (!code) return CLBNB_ERROR_NULL_ARGUMENT;
    const int has_sign = is_signed ? 1 : 0;
    if (exponent_bits < 1 || precision_bits < 0 || total_bits < 1 || total_bits > 8 ||
        exponent_bits + precision_bits != total_bits - has_sign)
        return CLBNB_ERROR_INVALID_ARGUMENT;
    /* Python builds a list of doubles in this order: for E, for mantissa pattern (ascending), value,
     * then -value when signed; all values are dyadic, so the doubles are exact. */
    double values[256];
    size_t count = 0;
    const int bias = 1 << (exponent_bits - 1);
    const int n_mant = 1 << precision_bits;
    for (int e = 0; e < (1 << exponent_bits); e++) {
        for (int m = 0; m < n_mant; m++) {
            double v = (e != 0 ? 1.0 : 0.0) + ldexp((double)m, -precision_bits);
            v = e == 0 ? ldexp(v, -bias) : ldexp(v, -(e - bias - 1));
            values[count++] = v;
            if (has_sign) values[count++] = -v;
        }
    }
    /* torch.tensor(values) is float32; a value outside f32 would become inf and the map NaN */
    for (size_t i = 0; i < count; i++) {
        float f = (float)values[i];
        if (!isfinite(f) || (double)f != values[i]) return CLBNB_ERROR_INVALID_ARGUMENT;
    }
    /* list.sort(): stable insertion sort by value (-0.0 == 0.0 keeps the insertion order) */
    for (size_t i = 1; i < count; i++) {
        double v = values[i];
        size_t j = i;
        while (j > 0 && values[j - 1] > v) {
            values[j] = values[j - 1];
            j--;
        }
        values[j] = v;
    }
    /* padding zeros (Python int 0 -> +0.0), sorted again (stable: after the existing zeros) */
    if (count < 256) {
        size_t first_pos = 0; /* index of the first value > 0 */
        while (first_pos < count && !(values[first_pos] > 0.0))
            first_pos++;
        size_t pad = 256 - count;
        memmove(values + first_pos + pad, values + first_pos, (count - first_pos) * sizeof(double));
        for (size_t i = 0; i < pad; i++)
            values[first_pos + i] = 0.0;
        count = 256;
    }
    float f[256], mx = -INFINITY;
    for (size_t i = 0; i < 256; i++) {
        f[i] = (float)values[i];
        if (f[i] > mx) mx = f[i];
    }
    /* code /= code.max(), in float32 */
    for (size_t i = 0; i < 256; i++)
        code[i] = f[i] / mx;
    return CLBNB_SUCCESS;
}

size_t clbnb_fp8_block_size(size_t features) {
    if (features == 0) return 1024; /* get_block_sizes' initial value when no entry matches */
    size_t b = 64;
    while (b < features && b < 4096)
        b <<= 1;
    return b;
}
