#!/usr/bin/env bash
# Everything a lent GPU should check, in one call (see /work/.library/device/README.md):
#   the CUDA tests (CUDA graphs replayed vs eager steps), then the throughput table with every
#   speed choice switched off in turn. Output goes to $OUT (or ./gpu-check) as log files.
set -uo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
$PY - <<'PY' 2>&1 | tee "$OUT/imports.txt"
import importlib
missing = [m for m in ("torch", "numpy", "yaml", "safetensors", "PIL", "matplotlib", "scipy", "sklearn", "pytest")
           if importlib.util.find_spec(m) is None]
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "missing:", missing or "none")
PY
$PY -m pytest -q -p no:cacheprovider tests/train/test_graphs_cuda.py tests/train/test_graphs.py 2>&1 | tee "$OUT/tests.txt"
$PY benchmarks/throughput.py --device cuda --rounds 3 --json-out "$OUT/throughput.json" 2>&1 | tee "$OUT/throughput.txt"
