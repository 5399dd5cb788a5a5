/*
 * clbnb.h: the whole public API of clbnb. Include this one header.
 *
 *   clbnb_core.h   status codes, dtypes, descriptors, context + device probe, copy kernel
 *   clbnb_quant.h  quantization: row-wise / global / column-wise int8, block-wise 8-bit,
 *                  NF4 / FP4 4-bit, double quantization, QuantState
 *   clbnb_int8_gemm.h   int8 GEMM with fused dequantization and bias (LLM.int8, SwitchBack)
 *   clbnb_gemm_4bit.h   4-bit NF4/FP4 dequantizing GEMV / GEMM and its input gradient
 *   clbnb_fp8.h    create_fp8_map codes, tensor-wise quantization, FP8-simulated matmuls
 *   clbnb_checkpoint.h  safetensors reader / writer, bitsandbytes QuantState keys and JSON, loader
 *   clbnb_layers.h      Linear8bitLt, SwitchBackLinear, StandardLinear, Linear4bit, embeddings
 */
#ifndef CLBNB_H
#define CLBNB_H

#include "clbnb_checkpoint.h"
#include "clbnb_core.h"
#include "clbnb_fp8.h"
#include "clbnb_gemm_4bit.h"
#include "clbnb_int8_gemm.h"
#include "clbnb_layers.h"
#include "clbnb_quant.h"

#endif /* CLBNB_H */
