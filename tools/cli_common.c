/* cli_common.c: helpers shared by the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *cli_option(int argc, char **argv, int *i, const char *name) {
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) != 0) return NULL;
    if (argv[*i][len] == '=') return argv[*i] + len + 1;
    if (argv[*i][len] == '\0' && *i + 1 < argc) return argv[++*i];
    return NULL;
}

clbnb_context *cli_open_context(const char *selector) {
    clbnb_context *ctx = NULL;
    clbnb_status s = clbnb_context_init_from_selector(&ctx, selector);
    if (s != CLBNB_SUCCESS) {
        fprintf(stderr, "clbnb: cannot open device '%s': %s\n", selector ? selector : "(default)",
                clbnb_status_string(s));
        if (s == CLBNB_ERROR_NO_DEVICE)
            fprintf(stderr, "  no OpenCL platform found: install an ICD (e.g. apt-get install pocl-opencl-icd)\n");
        return NULL;
    }
    return ctx;
}

static const char *yes_no(int v) { return v ? "yes" : "no"; }

void cli_print_device(const clbnb_device_info *in, const char *ind) {
    static const char *dot4_names[] = {"emulated", "nv_dp4a (inline PTX)", "khr_integer_dot_product", "amdgcn_sdot4"};
    printf("%splatform        %s (%s)\n", ind, in->platform_name, in->platform_version);
    printf("%sdevice         %s  [%s]\n", ind, in->device_name, in->vendor);
    printf("%stype           %s\n", ind,
           in->type & CL_DEVICE_TYPE_GPU   ? "GPU"
           : in->type & CL_DEVICE_TYPE_CPU ? "CPU"
                                           : "accelerator/other");
    printf("%sversions       device \"%s\", driver \"%s\", %s\n", ind, in->device_version, in->driver_version,
           in->opencl_c_version);
    printf("%scompute units  %u @ %u MHz, max work-group %zu, SIMD width %u\n", ind, in->compute_units,
           in->max_clock_mhz, in->max_work_group_size, in->simd_width);
    printf("%smemory         global %.1f GiB, max alloc %.1f GiB, local %llu KiB\n", ind,
           (double)in->global_mem_bytes / (1 << 30), (double)in->max_alloc_bytes / (1 << 30),
           (unsigned long long)(in->local_mem_bytes >> 10));
    if (in->nv_cc_major >= 0)
        printf("%sNVIDIA         compute capability %d.%d\n", ind, in->nv_cc_major, in->nv_cc_minor);
    if (in->amd_gfxip_major >= 0)
        printf("%sAMD            gfxip %d.%d\n", ind, in->amd_gfxip_major, in->amd_gfxip_minor);
    printf("%sfp16           cl_khr_fp16 %s, half arithmetic (compile test) %s\n", ind, yes_no(in->has_fp16_ext),
           yes_no(in->fp16_arithmetic));
    printf("%sint8 dot       cl_khr_integer_dot_product %s", ind, yes_no(in->has_khr_int_dot));
    if (in->has_khr_int_dot)
        printf(" (caps 0x%x, packed signed accelerated %s)", in->khr_int_dot_caps,
               yes_no(in->khr_int_dot_packed_signed_accelerated));
    printf(", PTX dp4a %s, PTX mma.sync %s, amdgcn sdot4 %s -> dot4 = %s\n", yes_no(in->nv_ptx_dp4a),
           yes_no(in->nv_ptx_mma), yes_no(in->amd_sdot4), dot4_names[in->dot4_impl]);
    printf("%ssubgroups      cl_khr_subgroups %s, cl_intel_subgroups %s, Intel DPAS %s, 2D block I/O %s", ind,
           yes_no(in->has_subgroups), yes_no(in->has_intel_subgroups), yes_no(in->has_intel_dpas),
           yes_no(in->has_intel_2d_block_io));
    if (in->intel_subgroup_sizes[0]) {
        printf(", sizes");
        for (int i = 0; i < 8 && in->intel_subgroup_sizes[i]; i++)
            printf(" %u", in->intel_subgroup_sizes[i]);
    }
    printf("\n%spaths          ", ind);
    for (int f = 0; f < CLBNB_FAMILY_COUNT; f++)
        printf("%s%s=%s", f ? ", " : "", clbnb_family_name((clbnb_family)f), clbnb_path_name(in->path[f]));
    printf("\n");
}
