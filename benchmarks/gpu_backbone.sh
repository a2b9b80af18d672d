#!/usr/bin/env bash
# Train the molecule backbone on the full MOSES training set on the GPU machine, resuming the last run
# (issue 31; docs/guide/molecule-backbone-gpu.md). Run it with the device tool, carrying .gpu:
#   bash benchmarks/gpu_backbone.sh [MINUTES, default 8.5] [recipe flags of plugen.molecules.train_full]
# Reads .gpu/moses-train-selfies.npz (token cache), .gpu/checkpoint/ and .gpu/selfies-vae-moses.json (the
# previous run's, if any) and .gpu/wheels/*.whl (zuko: plugen's one dependency missing from the GPU image);
# writes under $OUT: checkpoint/ (carry it back as .gpu/checkpoint), selfies-vae-moses.{safetensors,json}
# (weights and training record), train.log, gpu_machine.txt. DEVICE=cpu PYTHON=... run it on a CPU (slowly).
set -u
out=${OUT:?"set OUT to the folder the weights and checkpoint go to"}
minutes=${1:-8.5}
shift || true
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu_machine.txt" 2>&1
site=""
if ! ${PYTHON:-python3} -c "import zuko" 2>/dev/null && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  ${PYTHON:-python3} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl || exit 1
  site=/tmp/site:
fi
PYTHONPATH="${site}src" ${PYTHON:-python3} benchmarks/gpu_backbone.py --minutes "$minutes" --out "$out" --device "${DEVICE:-cuda}" "$@" 2>&1
