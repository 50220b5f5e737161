#!/usr/bin/env bash
# Issue 7's GPU figures on a lent GPU machine (the `device` tool's `run`), one call per scale:
#   here, once:   cp -r ../shared/datasets/Set5 ../shared/datasets/SunHays80 datasets/
#   run:          command "bash benchmarks/device_gpu.sh 2", carry ["datasets/Set5", "datasets/SunHays80"]
# That machine has torch, lightning, tensorboard and nvidia-ml-py but not irn (so PYTHONPATH) nor
# lpips (tests/eval/test_metrics.py then fails to collect; the rest runs). Everything lands in $OUT:
# nvidia-smi, the CUDA tests, the GPU training recipes (benchmarks/gpu.py) and, with a
# second argument "inference", the GPU inference rows. Without $OUT: out/device.
set -o pipefail
scale=${1:-2}
out=${OUT:-out/device}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors tests/nn/test_fast_backends.py tests/eval/test_metrics.py tests/imaging/test_resize.py \
    -k "cuda or gpu or accelerated" 2>&1 | tail -20 > "$out/cuda_tests.txt"
python3 benchmarks/run.py --only gpu --gpu-scales "$scale" --train-dir datasets/SunHays80 \
    --val-dir datasets/Set5/HR --json "$out/gpu_x$scale.json" 2>&1 | tee "$out/gpu_x$scale.log" | tail -40
if [ "${2:-}" = inference ]; then
    python3 benchmarks/run.py --only inference --repeats 5 --json "$out/inference.json" 2>&1 | tail -30
fi
