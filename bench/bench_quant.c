/* bench_quant.c: quantization benchmarks (issue 3). */
#include "bench.h"

void bench_quant(bench_session *s) { (void)s; }
