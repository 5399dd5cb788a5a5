/* cli_inspect.c: `clbnb inspect FILE`: tensors, dtypes, shapes, sizes and bitsandbytes quant states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *kind_name(clbnb_linear_kind k) {
    return k == CLBNB_LINEAR_NF4 ? "nf4" : k == CLBNB_LINEAR_FP4 ? "fp4" : "int8";
}

int cli_inspect(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: clbnb inspect FILE (.safetensors, .safetensors.index.json or a directory)\n");
        return 2;
    }
    clbnb_file_error fe;
    clbnb_checkpoint *ck = NULL;
    clbnb_status s = clbnb_checkpoint_open(&ck, argv[1], &fe);
    if (s != CLBNB_SUCCESS) {
        fprintf(stderr, "clbnb: %s: %s: %s\n", argv[1], clbnb_status_string(s), fe.message);
        return 1;
    }
    size_t n = clbnb_checkpoint_count(ck);
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += (double)clbnb_checkpoint_tensor(ck, i)->nbytes;
    printf("%s: %zu shard(s), %zu tensors, %.3f MB of tensor data\n", argv[1], clbnb_checkpoint_shard_count(ck), n,
           total / 1e6);
    for (size_t sh = 0; sh < clbnb_checkpoint_shard_count(ck); sh++) {
        const clbnb_safetensors *st = clbnb_checkpoint_shard(ck, sh);
        for (size_t m = 0; m < clbnb_safetensors_metadata_count(st); m++) {
            const char *k, *v;
            clbnb_safetensors_metadata_at(st, m, &k, &v);
            printf("metadata[%zu] %s = %s\n", sh, k, v);
        }
    }
    printf("\n%-60s %-8s %-20s %12s\n", "tensor", "dtype", "shape", "bytes");
    for (size_t i = 0; i < n; i++) {
        const clbnb_st_tensor *t = clbnb_checkpoint_tensor(ck, i);
        char shape[128];
        size_t o = (size_t)snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < t->ndim && o < sizeof shape - 24; d++)
            o +=
                (size_t)snprintf(shape + o, sizeof shape - o, "%s%llu", d ? ", " : "", (unsigned long long)t->shape[d]);
        snprintf(shape + o, sizeof shape - o, "]");
        printf("%-60s %-8s %-20s %12zu\n", t->name, clbnb_st_dtype_name(t->dtype), shape, t->nbytes);
        if (strstr(t->name, ".quant_state.bitsandbytes__") && t->dtype == CLBNB_ST_U8 && t->nbytes < 4096)
            printf("    quant_state %.*s\n", (int)t->nbytes, (const char *)t->data);
    }
    clbnb_linear_info *li = NULL;
    size_t nl = 0;
    s = clbnb_checkpoint_list_linear(ck, &li, &nl, &fe);
    if (s != CLBNB_SUCCESS) {
        printf("\nquantized linear weights: invalid: %s: %s\n", clbnb_status_string(s), fe.message);
    } else {
        printf("\nquantized linear weights: %zu\n", nl);
        for (size_t i = 0; i < nl; i++) {
            printf("  %-50s %-4s [%zu, %zu]", li[i].prefix, kind_name(li[i].kind), li[i].out_features,
                   li[i].in_features);
            if (li[i].kind != CLBNB_LINEAR_INT8)
                printf(" blocksize %zu%s dtype %s storage %s", li[i].blocksize, li[i].nested ? " nested" : "",
                       clbnb_dtype_name(li[i].dtype), clbnb_dtype_name(li[i].quant_storage));
            printf("%s%s\n", li[i].has_bias ? " bias " : "", li[i].has_bias ? clbnb_dtype_name(li[i].bias_dtype) : "");
        }
    }
    free(li);
    clbnb_checkpoint_close(ck);
    return s == CLBNB_SUCCESS ? 0 : 1;
}
