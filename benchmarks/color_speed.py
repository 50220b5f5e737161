"""Issue 29.4: IRN-Color (and the x3 model) on the fast CPU path against the plain model, in one run.

For each model, ``decolorize``/``downscale`` and ``colorize``/``upscale`` (z = 0) of one random image,
plain eager fp32 (the baseline) and :class:`irn.nn.fast.FastIRN` (what ``irn.load`` returns) interleaved
``--repeats`` times; medians, their ratio, and the largest difference of the outputs::

    python benchmarks/color_speed.py --size 256 --threads 1 --json benchmarks/results/s14_color_speed.json
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # python benchmarks/NAME.py: import the benchmarks package (and irn) from this checkout
    ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import irn
from irn.nn.fast import optimize_for_inference
from irn.zoo import load_checkpoint, resolve


def timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(name: str, size: int, repeats: int) -> list[dict[str, object]]:
    """Rows of one shipped model (``color``) or a random-weight x3 (``x3``)."""
    if name == "x3":
        plain = irn.IRN(irn.IRNConfig(kind="conv", scale=3, blocks_per_level=(12,))).eval().requires_grad_(False)
    else:
        plain, _ = load_checkpoint(resolve(name))
        plain.eval().requires_grad_(False)
    fast = optimize_for_inference(plain)
    hr = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows = []
    with torch.inference_mode():
        lr = plain.downscale(hr)
        ops: dict[str, Callable[[irn.IRN], Callable[[], torch.Tensor]]] = {
            "down": lambda m: lambda: m.downscale(hr),
            "up": lambda m: lambda: m.upscale(lr, z="zero"),
        }
        for op, make in ops.items():
            make(plain)(), make(fast)()  # warm-up (oneDNN primitives, repacked weights)
            times: dict[str, list[float]] = {"plain": [], "fast": []}
            outs: dict[str, torch.Tensor] = {}
            for _ in range(repeats):
                for variant, model in (("plain", plain), ("fast", fast)):
                    t, outs[variant] = timed(make(model))
                    times[variant].append(t)
            p, f = statistics.median(times["plain"]), statistics.median(times["fast"])
            rows.append(
                {
                    "model": name,
                    "op": op,
                    "size": size,
                    "plain_s": round(p, 3),
                    "fast_s": round(f, 3),
                    "speedup": round(p / f, 2),
                    "max_diff": float((outs["plain"] - outs["fast"]).abs().max()),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="color,x3", help="comma-separated: color (shipped) and/or x3 (random weights)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = [row for name in args.models.split(",") if name for row in measure(name, args.size, args.repeats)]
    for r in rows:
        print(
            f"{r['model']:>5} {r['op']:>4} {r['size']}x{r['size']}: plain {r['plain_s']} s, fast {r['fast_s']} s "
            f"(x{r['speedup']}), max diff {r['max_diff']:.2g}"
        )
    if args.json:
        from benchmarks.train_ab import cpu_name
        from irn.imaging.io import write_json

        write_json(args.json, {"benchmark": "color_speed", "cpu": cpu_name(), "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
