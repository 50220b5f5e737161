"""Issue 29.2, "find where the rest goes": one ``irn train`` step of configs/cpu_x2.yaml taken apart.

Times, in one process and interleaved over ``--steps`` steps per precision (medians), the parts of a
training step as ``irn train`` runs them: the batch (8 patches with their target context from the
decoded-image cache, collated), the LR target (MATLAB bicubic of patch + context, fp32), the objective's
forward and backward (under the trainer's autocast), gradient clipping and the Adam step. Their sum
against ``irn train``'s own s/step (benchmarks/train_ab.py, ``--train-ab JSON``) leaves Lightning's
share (hooks, logging, callbacks)::

    python benchmarks/step_profile.py --threads 1 --json benchmarks/results/s14_step_profile.json \
        --train-ab benchmarks/results/s14_precision_ab.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from irn.train.config import load_config
from irn.train.data import IRNDataModule
from irn.train.module import IRNLightning, lr_target

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def clock(times: dict[str, list[float]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    times.setdefault(name, []).append(time.perf_counter() - start)


def profile(precision: str, steps: int, config: str) -> dict[str, float]:
    cfg = load_config(config, [f"--trainer.precision={precision}"])
    module = IRNLightning(cfg)
    module.train()
    data = IRNDataModule(cfg.data, cfg.model.scale, seed=0, max_steps=steps + 2, kind=cfg.model.kind)
    data.setup("fit")
    assert data.train_set is not None
    optimizer = torch.optim.Adam(module.model.parameters(), lr=1e-5, betas=(0.9, 0.999), weight_decay=1e-5)
    dtype = torch.bfloat16 if precision == "bf16-mixed" else None
    times: dict[str, list[float]] = {}
    b = cfg.data.batch_size
    for step in range(steps + 2):  # the first two steps warm up (oneDNN primitives)
        t: dict[str, list[float]] = {}
        with clock(t, "batch"):
            batch = torch.stack([data.train_set[step * b + k] for k in range(b)])
        with clock(t, "lr target"):
            region = batch.float() / 255.0
            margin = (region.shape[-1] - cfg.data.patch_size) // 2
            ref = lr_target(cfg, region, margin)
            hr = region[..., margin:-margin, margin:-margin] if margin else region
        with clock(t, "forward"):
            with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = module.losses(hr, 1000, torch.Generator().manual_seed(step), lr_ref=ref)["loss"]
        with clock(t, "backward"):
            loss.backward()
        with clock(t, "clip"):
            torch.nn.utils.clip_grad_norm_(module.model.parameters(), 10.0)
        with clock(t, "adam"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if step >= 2:
            for k, v in t.items():
                times.setdefault(k, []).extend(v)
    out = {k: round(statistics.median(v), 4) for k, v in times.items()}
    out["sum"] = round(sum(out.values()), 4)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", default=str(REPO / "configs" / "cpu_x2.yaml"))
    p.add_argument("--train-ab", default=None, help="a train_ab.py JSON: irn train's own s/step per precision")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {precision: profile(precision, args.steps, args.config) for precision in ("32-true", "bf16-mixed")}
    measured: dict[str, float] = {}
    if args.train_ab:
        doc = json.loads(Path(args.train_ab).read_text())
        names = {"fp32": "32-true", "bf16": "bf16-mixed"}
        measured = {names[r["variant"]]: r["s_per_step"] for r in doc["results"] if r["variant"] in names}
    for precision, parts in rows.items():
        line = ", ".join(f"{k} {v}" for k, v in parts.items())
        whole = measured.get(precision)
        rest = f"; irn train {whole} s/step, the rest (Lightning) {whole - parts['sum']:.3f}" if whole else ""
        print(f"{precision}: {line}{rest}")
    ratio = {k: round(rows["32-true"][k] / rows["bf16-mixed"][k], 2) for k in rows["32-true"] if rows["bf16-mixed"][k]}
    print("fp32 / bf16 per part:", ratio)
    if args.json:
        from benchmarks.train_ab import cpu_name
        from irn.imaging.io import write_json

        write_json(
            args.json,
            {
                "benchmark": "step_profile",
                "cpu": cpu_name(),
                "threads": args.threads,
                "parts_s": rows,
                "fp32_over_bf16": ratio,
                "irn_train_s_per_step": measured,
            },
        )


if __name__ == "__main__":
    main()
