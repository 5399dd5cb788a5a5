#!/usr/bin/env python3
"""Writes a synthetic f16 safetensors checkpoint for the conversion benchmark (issue 6):
`bench/make_checkpoint.py OUT [GiB]` -> N linear weights [4096, 4096] named like a transformer's
(model.layers.{i}.mlp.{up,down}_proj.weight), plus an embedding and a norm that `clbnb quantize`
keeps, about GiB gibibytes in all (default 1). Values are N(0, 0.02)-like; only the standard
library is used, so it runs on a bare machine."""
import json, math, os, random, struct, sys

out = sys.argv[1]
gib = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
rows = cols = 4096
n_weights = max(1, int(round(gib * (1 << 30) / (rows * cols * 2))))
random.seed(1)
# one 4096 x 4096 f16 tile of normal values (bytes), rotated per tensor so tensors differ
chunk = rows * cols // 16
base = struct.pack(f"<{chunk}e", *(random.gauss(0.0, 0.02) for _ in range(chunk))) * 16
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
        f.write(base[shift:] + base[:shift] if nbytes == len(base) else base[:nbytes])
os.replace(out + ".tmp", out)
print(f"{out}: {len(tensors)} tensors, {offset / 1e9:.2f} GB of data")
