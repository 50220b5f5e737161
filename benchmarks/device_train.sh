#!/usr/bin/env bash
# Issue 16's GPU run: one call of the `device` tool turns a lent GPU into a better model.
#
#   here, once:  bash benchmarks/device_train.sh prepare
#                (copies the held-out split's images into datasets/device_train and datasets/device_val:
#                 SunHays80 + the first 200 CBSD432 training images, the 12 held-out CBSD432 images; ~25 MB)
#   device run:  command "bash benchmarks/device_train.sh 4 8", carry ["datasets/device_train", "datasets/device_val"]
#   CPU check:   bash benchmarks/device_train.sh 2 1 tiny     (3 steps of a small batch: the plumbing only)
#
# Trains from the shipped model (checkpoints/irn_xS.pt) with its CPU recipe (configs/cpu_xS.yaml: the
# loss weights that keep the sampled latent working) at the paper's batch and patch (16 x 144²), in
# bf16-mixed on the GPU (validation always runs in fp32), for MINUTES of wall time, validating on the
# 12 held-out images. Into $OUT (default out/device_train): the exported best model (split into 15 MiB
# parts when over 16 MiB: cat irn_xS.pt.part-* > irn_xS.pt), metrics.csv, train.log and summary.json
# (steps, it/s, the held-out figures) - 8 files at most, as the device tool brings back.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
py=${PYTHON:-python3}  # the device machine's python3 has torch and lightning; here: PYTHON=.venv/bin/python

if [ "${1:-}" = prepare ]; then
    "$py" benchmarks/background_train.py split > /dev/null
    rm -rf datasets/device_train datasets/device_val
    mkdir -p datasets/device_train datasets/device_val
    cp -L datasets/cpu_train/SunHays80/* datasets/device_train/
    ls datasets/cpu_train/CBSD432 | sort | head -200 | while read -r f; do cp -L "datasets/cpu_train/CBSD432/$f" datasets/device_train/; done
    ls datasets/cpu_val | sort | grep '^CBSD432_' | head -12 | while read -r f; do cp -L "datasets/cpu_val/$f" datasets/device_val/; done
    du -sh datasets/device_train datasets/device_val
    exit 0
fi

scale=${1:?usage: device_train.sh SCALE MINUTES [tiny] | prepare}
minutes=${2:?usage: device_train.sh SCALE MINUTES [tiny] | prepare}
out=${OUT:-out/device_train}
run=${TMPDIR:-/tmp}/irn_device_train/x$scale
mkdir -p "$out"
rm -rf "$run"
seconds=$("$py" -c "print(int(float('$minutes') * 60))")
hms=$(printf '00:%02d:%02d:%02d' $((seconds / 3600)) $((seconds % 3600 / 60)) $((seconds % 60)))
args=(--config "configs/cpu_x$scale.yaml" "--model.init_from=checkpoints/irn_x$scale.pt"
      --data.train_dir=datasets/device_train --data.val_dir=datasets/device_val --data.val_max_images=12
      "--trainer.run_dir=$run" "--trainer.max_time=$hms" --trainer.progress_bar=false)
if [ "${3:-}" = tiny ]; then
    args+=(--trainer.max_steps=3 --data.batch_size=2 --data.patch_size=48 --trainer.accelerator=cpu
           --trainer.val_every_n_steps=3 --trainer.checkpoint_every_n_steps=3 --trainer.threads=1)
else
    args+=(--data.batch_size=16 --data.patch_size=144 --data.num_workers=8 --trainer.accelerator=gpu
           --trainer.precision=bf16-mixed --trainer.threads=null --trainer.val_every_n_steps=500
           --trainer.checkpoint_every_n_steps=500 --trainer.checkpoint_every_minutes=2)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || rm -f "$out/nvidia-smi.txt"
set +e
"$py" -m irn.cli train "${args[@]}" > "$out/train.log" 2>&1
status=$?
set -e
cp "$run"/csv/version_*/metrics.csv "$out/metrics.csv" 2>/dev/null || true
best="$run/checkpoints/best.ckpt"
[ -f "$best" ] || best="$run/checkpoints/last.ckpt"
if [ -f "$best" ]; then
    "$py" -m irn.cli export "$best" -o "$out/irn_x$scale.pt" >> "$out/train.log" 2>&1
    if [ "$(stat -c %s "$out/irn_x$scale.pt")" -gt $((16 * 1024 * 1024)) ]; then
        split -b 15M "$out/irn_x$scale.pt" "$out/irn_x$scale.pt.part-" && rm "$out/irn_x$scale.pt"
    fi
fi
"$py" - "$out" "$status" <<'PY'
import csv, json, sys
from pathlib import Path
out, status = Path(sys.argv[1]), int(sys.argv[2])
rows = list(csv.DictReader((out / "metrics.csv").open())) if (out / "metrics.csv").exists() else []
train = [(int(r["step"]), float(r["train/seconds"])) for r in rows if r.get("train/seconds")]
val = [{k: float(v) for k, v in r.items() if k.startswith("val/") and v} | {"step": int(r["step"])} for r in rows if r.get("val/psnr_y_sample")]
its = None
if len(train) > 2:  # the steady rate: from the second logged step on (the first pays for start-up)
    (s0, t0), (s1, t1) = train[1], train[-1]
    its = (s1 - s0) / (t1 - t0) if t1 > t0 else None
steps = max((int(r["step"]) + 1 for r in rows if r.get("step")), default=0)
summary = {"exit_code": status, "steps": steps, "it_per_s": its, "validation": val,
           "files": sorted(p.name for p in out.iterdir())}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary))
PY
exit "$status"
