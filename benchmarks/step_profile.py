"""Issue 29.2, "find where the rest goes": one ``irn train`` step of configs/cpu_x2.yaml taken apart.

Times, in one process, the variants (fp32, bf16-mixed, bf16-mixed + channels-last) taking turns step by
step over ``--steps`` steps (medians), the parts of a
training step as ``irn train`` runs them: the batch (8 patches with their target context from the
decoded-image cache, collated), the LR target (MATLAB bicubic of patch + context, fp32), the objective's
forward and backward (under the trainer's autocast), gradient clipping and the Adam step. Their sum
against ``irn train``'s own s/step (benchmarks/train_ab.py, ``--train-ab JSON``) leaves Lightning's
share (hooks, logging, callbacks)::

    python benchmarks/step_profile.py --threads 1 --json benchmarks/results/s14_step_profile.json \
        --train-ab benchmarks/results/s14_precision_ab.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/NAME.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

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


#: the variants: (name, trainer.precision, trainer.channels_last)
VARIANTS = (("fp32", "32-true", False), ("bf16", "bf16-mixed", False), ("bf16-cl", "bf16-mixed", True))


class Variant:
    """One precision / memory-format variant of the step, with its own module and optimizer."""

    def __init__(self, precision: str, channels_last: bool, config: str, steps: int) -> None:
        overrides = [f"--trainer.precision={precision}", f"--trainer.channels_last={str(channels_last).lower()}"]
        self.cfg = cfg = load_config(config, overrides)
        self.module = IRNLightning(cfg)
        self.module.train()
        self.optimizer = torch.optim.Adam(self.module.model.parameters(), lr=1e-5, weight_decay=1e-5)
        self.dtype = torch.bfloat16 if precision == "bf16-mixed" else None
        self.channels_last = channels_last
        self.times: dict[str, list[float]] = {}

    def step(self, batch: torch.Tensor, step: int, keep: bool) -> None:
        cfg, t = self.cfg, {}  # type: ignore[var-annotated]
        with clock(t, "lr target"):
            region = batch.float() / 255.0
            margin = (region.shape[-1] - cfg.data.patch_size) // 2
            ref = lr_target(cfg, region, margin)
            hr = region[..., margin:-margin, margin:-margin] if margin else region
            if self.channels_last:
                hr = hr.contiguous(memory_format=torch.channels_last)
        with clock(t, "forward"):
            with torch.autocast("cpu", dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
                loss = self.module.losses(hr, 1000, torch.Generator().manual_seed(step), lr_ref=ref)["loss"]
        with clock(t, "backward"):
            loss.backward()
        with clock(t, "clip"):
            torch.nn.utils.clip_grad_norm_(self.module.model.parameters(), 10.0)
        with clock(t, "adam"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if keep:
            for k, v in t.items():
                self.times.setdefault(k, []).extend(v)


def profile(steps: int, config: str) -> dict[str, dict[str, float]]:
    """Medians per part and variant; the variants take turns step by step (the VM's drift hits all)."""
    variants = {name: Variant(precision, cl, config, steps) for name, precision, cl in VARIANTS}
    cfg = next(iter(variants.values())).cfg
    data = IRNDataModule(cfg.data, cfg.model.scale, seed=0, max_steps=steps + 2, kind=cfg.model.kind)
    data.setup("fit")
    assert data.train_set is not None
    batch_times: list[float] = []
    b = cfg.data.batch_size
    for step in range(steps + 2):  # the first two steps warm up (oneDNN primitives)
        start = time.perf_counter()
        batch = torch.stack([data.train_set[step * b + k] for k in range(b)])
        if step >= 2:
            batch_times.append(time.perf_counter() - start)
        for v in variants.values():
            v.step(batch, step, keep=step >= 2)
    out = {}
    for name, v in variants.items():
        parts = {"batch": round(statistics.median(batch_times), 4)}
        parts |= {k: round(statistics.median(x), 4) for k, x in v.times.items()}
        parts["sum"] = round(sum(parts.values()), 4)
        out[name] = parts
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
    rows = profile(args.steps, args.config)
    measured: dict[str, float] = {}
    if args.train_ab:
        doc = json.loads(Path(args.train_ab).read_text())
        measured = {r["variant"]: r["s_per_step"] for r in doc["results"] if r["variant"] in rows}
    for precision, parts in rows.items():
        line = ", ".join(f"{k} {v}" for k, v in parts.items())
        whole = measured.get(precision)
        rest = f"; irn train {whole} s/step, the rest (Lightning) {whole - parts['sum']:.3f}" if whole else ""
        print(f"{precision}: {line}{rest}")
    ratio = {name: {k: round(rows["fp32"][k] / parts[k], 2) for k in parts if parts[k]} for name, parts in rows.items()}
    print("fp32 / variant, per part:", ratio)
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
                "fp32_over_variant": ratio,
                "irn_train_s_per_step": measured,
            },
        )


if __name__ == "__main__":
    main()
