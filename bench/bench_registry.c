/* bench_registry.c: the list of benchmarks `clbnb bench` runs, in order. */
#include "bench.h"

void bench_run_all(bench_session *s) {
    bench_copy(s); /* always: the in-run reference of every memory-bound figure */
    bench_copy_ceilings(s);
    bench_quant(s);
    bench_int8_gemm(s);
    bench_gemm_4bit(s);
    bench_layers(s);
}
