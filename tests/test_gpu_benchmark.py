"""benchmarks/gpu.py: the GPU training recipes, run on the CPU (issue 7: "when no GPU is
available, the GPU paths still run on CPU in tests (compile off) and the figures are marked not
measured")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

from benchmarks import gpu

BENCHMARKS = REPO / "benchmarks"


def checkout_env() -> dict[str, str]:
    """A script's folder, not the cwd, starts its sys.path: this checkout's irn first (not an installed one)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def smooth_pngs(folder: Path, n: int, size: tuple[int, int] = (48, 64)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        low = rng.uniform(0, 255, (size[0] // 8, size[1] // 8, 3)).astype(np.uint8)
        Image.fromarray(low).resize(size[::-1], Image.BICUBIC).save(folder / f"img{i}.png")
    return folder


def test_recipes_are_the_trainers_own_options() -> None:
    from irn.train.config import load_config

    for name, recipe in gpu.RECIPES.items():
        cfg = load_config(REPO / "configs" / "x2.yaml", recipe.overrides())
        t = cfg.trainer
        assert (t.precision, t.channels_last, t.compile) == (recipe.precision, recipe.channels_last, recipe.compile)
        assert name in gpu.LABELS
    assert gpu.RECIPES["fp32"] == gpu.Recipe("32-true", False, None)


def test_gpu_section_on_the_cpu_trains_every_recipe_and_compares_with_fp32(tmp_path: Path) -> None:
    """``run.py --only gpu --gpu-device cpu``: the recipes through irn train on the CPU (compile off),
    5 timed windows each, the quality delta against fp32 and the utilisation marked n/a."""
    train, val = smooth_pngs(tmp_path / "train", 3), smooth_pngs(tmp_path / "val", 1, (32, 32))
    report = tmp_path / "rows.json"
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--only", "gpu", "--gpu-device", "cpu"]
    cmd += ["--gpu-scales", "2", "--gpu-recipes", "bf16-mixed+cl", "fp32", "--train-dir", str(train)]
    cmd += ["--val-dir", str(val), "--json", str(report)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["fp32 eager (baseline; trainer defaults)", "bf16-mixed + channels-last"]
    fp32, mixed = (r["raw"] for r in rows)
    for row, raw in zip(rows, (fp32, mixed), strict=True):
        assert row["section"] == "gpu" and row["device"] == "cpu"
        assert row["case"] == "x2 batch 2 16x16, 8 steps (3 warm-up)"
        assert len(raw["window_it_s"]) == 5 and all(r > 0 for r in raw["window_it_s"])
        assert raw["it_s"] == sorted(raw["window_it_s"])[2]  # the median window
        assert 0 <= raw["data_wait"] < 1 and raw["gpu_util"] is None and raw["peak_gib"] is None
        assert 0 < raw["psnr_y_z0"] < 100 and raw["steps"] == 8 and raw["batch"] == 2
        assert "GPU util n/a" in row["note"]
    assert rows[0]["ratio"] == "1.00x"
    assert rows[1]["ratio"] == f"{mixed['it_s'] / fp32['it_s']:.2f}x"
    delta = mixed["psnr_y_z0"] - fp32["psnr_y_z0"]
    assert f"{delta:+.3f} dB vs fp32" in rows[1]["agreement"]
    assert fp32["psnr_y_z0"] != mixed["psnr_y_z0"]  # bf16 training took other steps
    assert "| gpu | x2 batch 2 16x16" in out.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the section measures")
def test_gpu_section_without_cuda_says_not_measured(tmp_path: Path) -> None:
    report = tmp_path / "rows.json"
    cmd = [sys.executable, str(BENCHMARKS / "run.py"), "--only", "gpu", "--gpu-recipes", "bf16-mixed", "--json"]
    out = subprocess.run([*cmd, str(report)], capture_output=True, text=True, cwd=REPO, env=checkout_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    assert [(r["case"], r["variant"], r["value"]) for r in rows] == [
        (f"x{s} batch 16 144x144, 1000 steps (100 warm-up)", v, "not measured (no GPU)")
        for s in (2, 4)
        for v in ("fp32 eager (baseline; trainer defaults)", "bf16-mixed")
    ]


def test_a_failing_recipe_is_reported_and_the_others_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train = smooth_pngs(tmp_path / "train", 2)
    real = gpu.run_recipe

    def failing(name: str, *args: object) -> object:
        if name == "bf16-mixed":
            raise RuntimeError("CUDA graphs: capture failed\nsecond line")
        return real(name, *args)

    monkeypatch.setattr(gpu, "run_recipe", failing)
    rows = gpu.run_all([2], ["bf16-mixed", "fp32"], 8, 3, train, None, "cpu", gpu.QUICK_OVERRIDES)
    assert [(scale, name) for scale, name, _, _ in rows] == [(2, "fp32"), (2, "bf16-mixed")]
    assert rows[0][2] is not None and rows[0][3]["agreement"] == "no validation images"
    assert rows[1][2] is None
    assert rows[1][3] == {"value": "failed: RuntimeError: CUDA graphs: capture failed second line"}


def test_utilisation_sampler_falls_back_to_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without NVML (nvidia-ml-py) the sampler asks ``nvidia-smi``; without either it reads nothing."""
    monkeypatch.setattr(torch.cuda, "utilization", lambda index: (_ for _ in ()).throw(ModuleNotFoundError("pynvml")))
    monkeypatch.setenv("PATH", str(tmp_path))
    sampler = gpu.UtilisationSampler(0, period=0.01)
    assert sampler.read() is None
    sampler.start()
    assert sampler.stop() is None
    fake = tmp_path / "nvidia-smi"
    fake.write_text('#!/bin/sh\n[ "$3" = "-i" ] && [ "$4" = "0" ] && echo 57\n')
    fake.chmod(0o755)
    sampler = gpu.UtilisationSampler(0, period=0.01)
    sampler.start()
    time.sleep(0.3)
    assert sampler.stop() == 57.0 and len(sampler.samples) >= 2
