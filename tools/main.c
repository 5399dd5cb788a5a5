/* main.c: `clbnb <command> [options]`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: clbnb <command> [options]\n"
        "\n"
        "commands:\n"
        "  devices                     list every OpenCL device with its probe results and kernel paths\n"
        "  demo [--device SEL]         probe, compile, quantize and measure on one device\n"
        "  bench [--device SEL] [--filter STR] [--json FILE] [--runs N]\n"
        "                              kernel benchmarks (median of N runs, profiling events)\n"
        "  build [--device SEL]        compile every kernel program (fills the cache), print failing logs\n"
        "  quantize IN OUT --type nf4|fp4|int8 [--blocksize N] [--double-quant]\n"
        "           [--quant-storage u8|f16|bf16|f32] [--skip PATTERN]... [--device SEL]\n"
        "                              quantize the linear weights of a safetensors checkpoint (bitsandbytes layout)\n"
        "  dequantize IN OUT [--dtype f16|bf16|f32] [--device SEL] [--chunk SIZE]\n"
        "                              restore full-precision weights from a bitsandbytes checkpoint\n"
        "  inspect FILE                tensors, dtypes, shapes, sizes and quant states of a checkpoint\n"
        "  version                     print the library version\n"
        "\n"
        "device selection: --device, else CLBNB_DEVICE, else the first GPU, else the first device;\n"
        "a selector is an index (as `clbnb devices` numbers them) or a case-insensitive substring\n"
        "of the platform, device or vendor name (e.g. pocl, nvidia).\n"
        "environment: CLBNB_DEVICE, CLBNB_PATH (generic | family=path,...), CLBNB_CACHE_DIR (0 = off),\n"
        "             CLBNB_KERNEL_DIR (load cl/*.cl from disk)\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "devices") == 0) return cli_devices(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0) return cli_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "demo") == 0) return cli_demo(argc - 1, argv + 1);
    if (strcmp(cmd, "build") == 0) return cli_build(argc - 1, argv + 1);
    if (strcmp(cmd, "quantize") == 0) return cli_quantize(argc - 1, argv + 1);
    if (strcmp(cmd, "dequantize") == 0) return cli_dequantize(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0) return cli_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("clbnb %s\n", clbnb_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "clbnb: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
