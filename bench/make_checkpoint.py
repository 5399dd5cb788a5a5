#!/usr/bin/env python3
"""Writes a synthetic f16 safetensors checkpoint for the conversion benchmark (issue 6):
`bench/make_checkpoint.py OUT [GiB] [square|llama]`
  square (default): N linear weights [4096, 4096] named like a transformer's
    (model.layers.{i}.mlp.{up,down}_proj.weight), plus an embedding [1024, 4096] and a norm that
    `clbnb quantize` keeps;
  llama: Llama-2-7B's shapes: embed_tokens and lm_head [32000, 4096] (kept, 262 MB each: the
    largest tensors), then per layer q/k/v/o [4096, 4096], gate/up [11008, 4096], down
    [4096, 11008] and two norms, as many layers as fit;
about GiB gibibytes in all (default 1). Values are N(0, 0.02)-like; only the standard library is
used, so it runs on a bare machine."""
import json, math, os, random, struct, sys

out = sys.argv[1]
gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
rows = cols = 4096
n_weights = max(1, int(round(gib * (1 << 30) / (rows * cols * 2))))
random.seed(1)
# one 4096 x 4096 f16 tile of normal values (bytes), rotated per tensor so tensors differ
chunk = rows * cols // 16
base = struct.pack(f"<{chunk}e", *(random.gauss(0.0, 0.02) for _ in range(chunk))) * 16
layout = sys.argv[3] if len(sys.argv) > 3 else "square"
if layout == "llama":
    budget = gib * (1 << 30) - 2 * 2 * 32000 * cols
    tensors = [("model.embed_tokens.weight", [32000, cols])]
    layer = 0
    while budget > 0:
        p = f"model.layers.{layer}"
        for name, shape in [("self_attn.q_proj", [4096, 4096]), ("self_attn.k_proj", [4096, 4096]),
                            ("self_attn.v_proj", [4096, 4096]), ("self_attn.o_proj", [4096, 4096]),
                            ("mlp.gate_proj", [11008, 4096]), ("mlp.up_proj", [11008, 4096]),
                            ("mlp.down_proj", [4096, 11008])]:
            if budget <= 0:
                break
            tensors.append((f"{p}.{name}.weight", shape))
            budget -= 2 * math.prod(shape)
        tensors += [(f"{p}.input_layernorm.weight", [cols]), (f"{p}.post_attention_layernorm.weight", [cols])]
        layer += 1
    tensors += [("model.norm.weight", [cols]), ("lm_head.weight", [32000, cols])]
else:
    tensors = [("model.embed_tokens.weight", [1024, cols]), ("model.norm.weight", [cols])]
    tensors += [(f"model.layers.{i // 2}.mlp.{'up' if i % 2 == 0 else 'down'}_proj.weight", [rows, cols])
                for i in range(n_weights)]
header, offset = {}, 0
for name, shape in tensors:
    nbytes = 2 * math.prod(shape)
    header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + nbytes]}
    offset += nbytes
blob = json.dumps(header, separators=(",", ":")).encode()
blob += b" " * (-len(blob) % 8)
with open(out + ".tmp", "wb") as f:
    f.write(struct.pack("<Q", len(blob)) + blob)
    for i, (name, shape) in enumerate(tensors):
        nbytes = 2 * math.prod(shape)
        shift = 2 * ((i * 7919) % (len(base) // 2))
        rot = base[shift:] + base[:shift]
        while nbytes > 0:  # tensors larger than the 32 MiB tile repeat it
            f.write(rot[:nbytes])
            nbytes -= len(rot)
os.replace(out + ".tmp", out)
print(f"{out}: {len(tensors)} tensors, {offset / 1e9:.2f} GB of data, largest "
      f"{max(2 * math.prod(sh) for _, sh in tensors) / 1e6:.0f} MB")
