/* cli.h: the subcommands of the `clbnb` tool, one file each. */
#ifndef CLBNB_CLI_H
#define CLBNB_CLI_H

#include "clbnb.h"

int cli_devices(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_build(int argc, char **argv);
int cli_quantize(int argc, char **argv);
int cli_dequantize(int argc, char **argv);
int cli_inspect(int argc, char **argv);

/* Opens the device named by --device (or CLBNB_DEVICE / the default); prints why on failure. */
clbnb_context *cli_open_context(const char *selector);
/* Prints the probe results and chosen paths of a device. */
void cli_print_device(const clbnb_device_info *info, const char *indent);
/* Value of "--name VALUE" or "--name=VALUE" at argv[*i] (advancing *i), else NULL. */
const char *cli_option(int argc, char **argv, int *i, const char *name);

#endif
