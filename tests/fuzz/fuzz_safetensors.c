/* fuzz_safetensors.c: libFuzzer target for the safetensors header parser and the bitsandbytes
 * QuantState JSON parser (built with -DCLBNB_FUZZ=ON and clang; see tests/fuzz/CMakeLists.txt).
 * The input is parsed as a safetensors image; every accepted tensor is read completely (so an
 * out-of-bounds view is caught by AddressSanitizer), and tensors named *.quant_state.* (plus the
 * whole input) go through clbnb_quant_state_json_parse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clbnb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copy so that any read past the end is reported */
    uint8_t *img = malloc(size ? size : 1);
    if (!img) return 0;
    if (size) memcpy(img, data, size);
    clbnb_safetensors *st = NULL;
    clbnb_file_error fe;
    if (clbnb_safetensors_open_memory(&st, img, size, &fe) == CLBNB_SUCCESS) {
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < clbnb_safetensors_count(st); i++) {
            const clbnb_st_tensor *t = clbnb_safetensors_tensor(st, i);
            for (size_t k = 0; k < t->nbytes; k++)
                sink ^= ((const uint8_t *)t->data)[k];
            (void)clbnb_safetensors_find(st, t->name);
            if (strstr(t->name, ".quant_state.")) {
                clbnb_quant_state_info info;
                if (clbnb_quant_state_json_parse(t->data, t->nbytes, &info, &fe) == CLBNB_SUCCESS) {
                    char buf[1024];
                    size_t len;
                    (void)clbnb_quant_state_json_write(&info, buf, sizeof buf, &len);
                }
            }
        }
        for (size_t i = 0; i < clbnb_safetensors_metadata_count(st); i++) {
            const char *k, *v;
            clbnb_safetensors_metadata_at(st, i, &k, &v);
            sink ^= (uint8_t)(k[0] ^ v[0]);
        }
        (void)sink;
        clbnb_safetensors_close(st);
    }
    clbnb_quant_state_info info;
    (void)clbnb_quant_state_json_parse((const char *)img, size, &info, &fe);
    char f[64];
    if (size >= 4) {
        float x;
        memcpy(&x, img, 4);
        clbnb_format_python_float(x, f, sizeof f);
    }
    free(img);
    return 0;
}
