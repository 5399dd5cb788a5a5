/* demo.h: the quantization part of `clbnb demo` (demo_quant.c). Returns 1 when every check passed. */
#ifndef CLBNB_DEMO_H
#define CLBNB_DEMO_H
#include "clbnb.h"
int demo_quantization(clbnb_context *ctx, cl_command_queue queue);
#endif
