/* cli_bench.c: `clbnb bench`: runs the benchmarks, prints a table, optionally writes JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

int cli_bench(int argc, char **argv) {
    const char *selector = NULL, *filter = NULL, *json_path = NULL, *v;
    int runs = 100;
    for (int i = 1; i < argc; i++) {
        if ((v = cli_option(argc, argv, &i, "--device")))
            selector = v;
        else if ((v = cli_option(argc, argv, &i, "--filter")))
            filter = v;
        else if ((v = cli_option(argc, argv, &i, "--json")))
            json_path = v;
        else if ((v = cli_option(argc, argv, &i, "--runs")))
            runs = atoi(v);
        else {
            fprintf(stderr, "clbnb bench: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    clbnb_context *ctx = cli_open_context(selector);
    if (!ctx) return 1;
    const clbnb_device_info *info = clbnb_context_device_info(ctx);
    bench_session s = {0};
    s.ctx = ctx;
    s.queue = clbnb_context_default_queue(ctx);
    s.filter = filter;
    s.runs = runs;
    s.warmup = runs >= 10 ? 5 : 1;
    s.out = stdout;
    s.records = cJSON_CreateArray();
    /* cold caches: read a buffer larger than any last-level cache before each timed run */
    if (!bench_flush_init(&s, (info->type & CL_DEVICE_TYPE_CPU) ? ((size_t)64 << 20) : ((size_t)256 << 20))) {
        fprintf(stderr, "clbnb bench: cannot set up the cache flush\n");
        bench_flush_release(&s);
        clbnb_context_free(ctx);
        return 1;
    }
    printf("clbnb %s bench on %s (%s), %d runs per figure, median of kernel time\n", clbnb_version(), info->device_name,
           info->platform_name, runs);
    printf("%-34s %-22s %13s %18s %s\n", "operation", "shape", "median", "rate", "ratio to in-run reference");
    bench_run_all(&s);
    int rc = s.failures ? 1 : 0;
    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "clbnb_version", clbnb_version());
        cJSON_AddStringToObject(root, "device", info->device_name);
        cJSON_AddStringToObject(root, "platform", info->platform_name);
        cJSON_AddStringToObject(root, "driver", info->driver_version);
        cJSON_AddNumberToObject(root, "runs", runs);
        cJSON_AddNumberToObject(root, "copy_gbps", s.copy_gbps);
        cJSON_AddItemToObject(root, "records", s.records);
        s.records = NULL;
        char *text = cJSON_Print(root);
        FILE *f = fopen(json_path, "w");
        if (!f || !text || fputs(text, f) < 0) {
            fprintf(stderr, "clbnb bench: cannot write %s\n", json_path);
            rc = 1;
        }
        if (f) fclose(f);
        free(text);
        cJSON_Delete(root);
    }
    cJSON_Delete(s.records);
    bench_flush_release(&s);
    clbnb_context_free(ctx);
    return rc;
}
