"""Hybrid-image solver against the plain recipe, in one run on the same inputs and threads.

Baseline (the plain recipe, :func:`irn.experiments.hybrid.solve_gd`): x = sigmoid(theta), 200 gradient
steps of size 0.3 on the per-pixel gradient, 512 x 512, direct separable Gaussian
convolution, equal weights. Ours: :func:`irn.experiments.hybrid.solve_admm` (DCT-diagonal ADMM).

Both are scored with the same function (:func:`irn.experiments.hybrid.hybrid_loss`, float64, direct
convolution). Reported:

* ``time_ratio``: baseline seconds / seconds our solver needs to reach the baseline's final
  loss (measured by a clean re-run with exactly that many iterations, no callback);
* ``loss_ratio``: our converged loss / the baseline's final loss (< 1: lower), and the
  seconds it took.

Usage: ``python benchmarks/hybrid_bench.py [--size 512] [--sigma 6] [--threads 2] [--out FILE]``.
NEAR/FAR are Set14 lenna/baboon from ../shared when present, else the generated chart and
its mirror image.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/hybrid_bench.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import json
import time

import torch
from torch import Tensor

from irn.experiments import hybrid
from irn.imaging.io import read_image, to_tensor

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "Set14" / "HR"


def inputs(size: int) -> tuple[Tensor, Tensor, str]:
    """NEAR, FAR (3, size, size) in [0, 1] and where they came from."""
    near_path, far_path = SHARED / "lenna.png", SHARED / "baboon.png"
    if near_path.is_file() and far_path.is_file():
        near = hybrid.fit_to(read_image(near_path), (size, size))
        far = hybrid.fit_to(read_image(far_path), (size, size))
        return near, far, "Set14 lenna (near) / baboon (far)"
    from irn.experiments.chart import make_chart

    chart = to_tensor(make_chart(size))
    return chart, chart.flip(-1).flip(-2), "generated chart (near) / chart rotated 180 degrees (far)"


def score(x: Tensor, near: Tensor, far: Tensor, config: hybrid.HybridConfig) -> float:
    with torch.no_grad():
        return float(hybrid.hybrid_loss(x.double(), near.double(), far.double(), config)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sigma", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    near, far, source = inputs(args.size)

    base_cfg = hybrid.HybridConfig(sigma=args.sigma, solver="gd", steps=200, lr=0.3)
    x_base, base_info = hybrid.solve_gd(near, far, base_cfg)
    base_loss = score(x_base, near, far, base_cfg)
    print(f"baseline gd: loss {base_loss:.6f} in {base_info.seconds:.2f} s ({base_cfg.steps} steps)")

    # ADMM with a scoring callback whose own time is subtracted, to find the iteration count
    # at which it first reaches the baseline's loss.
    admm_cfg = hybrid.HybridConfig(sigma=args.sigma, solver="admm", iterations=200, tol=1e-4)
    trace: list[tuple[int, float, float]] = []  # (iteration, solver seconds, loss)
    spent = {"callback": 0.0}
    start = time.perf_counter()

    def record(iteration: int, x: Tensor) -> None:
        t0 = time.perf_counter()
        trace.append((iteration, t0 - start - spent["callback"], score(x, near, far, admm_cfg)))
        spent["callback"] += time.perf_counter() - t0

    x_admm, admm_info = hybrid.solve_admm(near, far, admm_cfg, callback=record)
    admm_loss = score(x_admm, near, far, admm_cfg)
    admm_seconds = admm_info.seconds - spent["callback"]
    reach = next((it for it, _, loss in trace if loss <= base_loss), None)
    print(
        f"admm: converged loss {admm_loss:.6f} after {admm_info.iterations} iterations "
        f"({admm_info.stopped}) in {admm_seconds:.2f} s"
    )

    result: dict[str, object] = {
        "inputs": source,
        "size": args.size,
        "sigma": args.sigma,
        "threads": args.threads,
        "baseline": {"loss": base_loss, "seconds": base_info.seconds, "steps": base_cfg.steps, "lr": base_cfg.lr},
        "admm": {"loss": admm_loss, "seconds": admm_seconds, "iterations": admm_info.iterations},
        "loss_ratio": admm_loss / base_loss,
        "admm_trace": [{"iteration": i, "seconds": round(s, 4), "loss": v} for i, s, v in trace],
    }
    if reach is not None:
        clean_cfg = hybrid.HybridConfig(sigma=args.sigma, solver="admm", iterations=reach, tol=0.0)
        x_reach, reach_info = hybrid.solve_admm(near, far, clean_cfg)
        reach_loss = score(x_reach, near, far, clean_cfg)
        result["reach"] = {"iterations": reach, "seconds": reach_info.seconds, "loss": reach_loss}
        result["time_ratio"] = base_info.seconds / reach_info.seconds
        print(
            f"admm reaches the baseline's loss after {reach} iterations: {reach_info.seconds:.3f} s "
            f"(loss {reach_loss:.6f}); time ratio {base_info.seconds / reach_info.seconds:.1f}x"
        )
    else:
        result["time_ratio"] = None
        print("admm did not reach the baseline's loss")
    print(f"loss ratio (admm converged / baseline) {admm_loss / base_loss:.5f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
