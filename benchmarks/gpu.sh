#!/usr/bin/env bash
# The GPU checks and figures (issue: speed and scale), one command for a machine with a CUDA GPU:
# the GPU tests, then the throughput, latency and scaling parts of the suite on the GPU.
#   bash benchmarks/gpu.sh [output folder, default benchmarks/results]
set -u
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu_machine.txt"
timeout 240 python -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$out/gpu_tests.txt"
timeout 440 python benchmarks/suite.py --parts throughput,latency,scaling --device cuda --output "$out/suite_cuda"
