/* bench_quant.c: quantization benchmarks (issue 3), one file per kernel family. */
#include "bench.h"

void bench_quant(bench_session *s) {
    bench_quant_blockwise(s);
    bench_quant_int8(s);
}
