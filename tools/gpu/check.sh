#!/usr/bin/env bash
# The GPU check for issue 5, prepared for ONE call of the device tool (15 minutes a session; see README).
#
# Here, before the call (once):   tools/gpu/prepare.sh      # wheels into .whl/, a compact study into .gpudata/
# The call:  run(command="bash tools/gpu/check.sh", carry=[".whl", ".gpudata"], timeout_s=540)
#
# The GPU machine has torch 2.11 (CUDA 13), no TensorRT, no Holoscan: this times the app's stages in-process
# (tools/bench.py --skip-sdk --skip-process) with TorchScript fp16 on CUDA, then the same on its CPU for reference.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
study=.gpudata/PGBM-001/1992-04-02
python3 tools/bench.py --study "$study" --device cuda --backend torchscript --repeat 10 --skip-sdk --skip-process \
  --out "$OUT/bench_cuda_torchscript_fp16.json"
python3 tools/bench.py --study "$study" --device cpu --backend torchscript --repeat 3 --skip-sdk --skip-process \
  --out "$OUT/bench_gpu_host_cpu.json"
