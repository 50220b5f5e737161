"""The ``inference`` and ``whole`` sections of ``benchmarks/run.py``: down+up (``downscale`` then
``upscale`` with seed 0) of every variant, in this process (interleaved, medians, agreement with
the plain model) and one run per fresh process (``run.py --child ...``: time and peak RSS).

Variants (``--variants``): ``paper`` (the paper's code, ``--paper-code``), ``plain`` (the eager fp32
:class:`irn.nn.network.IRN`, the baseline), ``fast`` (:class:`irn.nn.fast.FastIRN`), ``api``
(:func:`irn.api.downscale_image` / :func:`irn.api.upscale_image`) and ``load`` (the model exactly as
``irn.load(path)`` returns it, through its own ``downscale`` / ``upscale(z="sample")``).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    NOT_MEASURED,
    TOLERANCE,
    Row,
    fmt_ratio,
    interleaved,
    load_as_returned,
    load_file,
    load_model,
    max_diff,
    psnr,
    sync,
    vs_paper,
)
from benchmarks.paper_anchor import PaperModel
from irn.nn.fast import AcceleratorOptions, FastIRN, accelerated_flow, return_freed_memory_promptly
from irn.nn.network import quantize

#: the variants of the inference and whole sections, in the order they run and are printed
VARIANTS = ("paper", "plain", "fast", "api", "load")
LABELS = {
    "paper": "the paper's code (anchor, --paper-code)",
    "plain": "plain eager fp32 (baseline)",
    "fast": "FastIRN (irn.nn.fast)",
    "api": "Python API (irn.downscale_image + irn.upscale_image)",
    "load": 'irn.load(...).downscale/.upscale(z="sample")',
}
#: the script the whole section starts once per run
RUN_SCRIPT = Path(__file__).resolve().with_name("run.py")


def agreement(plain: Any, other: Any, hr: torch.Tensor) -> tuple[float, float]:
    """(encode difference, max |decode difference| given the same quantised LR and sampled z).

    The encode difference is the larger of max |LR difference| (LR in [0, 1]) and the z difference
    relative to max(1, max |z|): a trained model's forward z can reach hundreds (each coupling block
    multiplies the latent branch by exp(s)), where fp32 itself resolves only ~1e-5 absolute."""
    with torch.inference_mode():
        lr_p, z_p = plain.encode(hr)
        lr_o, z_o = other.encode(hr)
        z_scale = max(1.0, float(z_p.abs().max()))
        enc = max(max_diff(lr_p, lr_o), max_diff(z_p, z_o) / z_scale)
        lr_q = quantize(lr_p)
        z = torch.randn(z_p.shape, generator=torch.Generator().manual_seed(0)).to(z_p)
        dec = max_diff(plain.decode(lr_q, z), other.decode(lr_q, z))
    return enc, dec


class ApiModel:
    """The Python API as a model: ``downscale``/``upscale`` through :mod:`irn.api` (the pipeline's
    fast path, tiling under its memory budget), on tensors as a user passes them."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def downscale(self, hr: torch.Tensor) -> torch.Tensor:
        from irn.api import downscale_image  # here: the other variants' --child processes do not hold irn.api

        return downscale_image(self.model, hr)

    def upscale(self, lr: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        from irn.api import upscale_image

        return upscale_image(self.model, lr, z="sample", seed=seed)


def down_up(variant: str, model: Any, hr: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One down+up of ``variant``: the ``load`` model through its own methods, with sampled z."""
    lr = model.downscale(hr)
    if variant == "load":
        return model.upscale(lr, z="sample", seed=seed)
    return model.upscale(lr, seed=seed)


def selected(args: argparse.Namespace) -> list[str]:
    """The variants ``--variants`` asks for, in :data:`VARIANTS` order; ``paper`` only with --paper-code."""
    wanted = getattr(args, "variants", None) or VARIANTS
    return [v for v in VARIANTS if v in wanted and (v != "paper" or args.paper is not None)]


def bench_inference(args: argparse.Namespace) -> list[Row]:
    rows = []
    side = 128 if args.quick else 512
    variants = [v for v in VARIANTS if v in selected(args) or v == "plain"]  # plain: the baseline, always
    with tempfile.TemporaryDirectory(prefix="irn_bench_") as tmp:
        for scale in args.scales:
            plain, source = load_model(scale, getattr(args, f"x{scale}"))
            notes = {v: source for v in variants}
            models: dict[str, Any] = {}
            for v in variants:
                if v == "paper":
                    models[v] = PaperModel(args.paper, plain)
                elif v == "plain":
                    models[v] = plain
                elif v == "fast":
                    models[v] = FastIRN(plain)
                elif v == "api":
                    models[v] = ApiModel(plain)
                else:
                    path, notes[v] = load_file(scale, getattr(args, f"x{scale}"), tmp)
                    models[v] = load_as_returned(path)
                    notes[v] += f"; {type(models[v]).__name__}"
            hr = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))

            def run_of(variant: str, model: Any, hr: torch.Tensor = hr) -> Callable[[], object]:
                def run() -> object:
                    with torch.inference_mode():
                        return down_up(variant, model, hr)

                return run

            times = interleaved({name: run_of(name, m) for name, m in models.items()}, args.repeats)
            agree = {
                name: agreement(plain, m, hr)
                for name, m in models.items()
                if name not in ("plain", "api") and hasattr(m, "encode") and hasattr(m, "decode")
            }
            base = statistics.median(times["plain"])
            anchor = statistics.median(times["paper"]) if "paper" in times else None
            mp = side * side / 1e6
            case = f"x{scale} {side}x{side} down+up"
            for name in models:
                t = statistics.median(times[name])
                ok = ""
                if name in agree:
                    enc, dec = agree[name]
                    ok = f"enc {enc:.1e}, dec {dec:.1e} " + ("ok" if max(enc, dec) <= TOLERANCE else "FAIL")
                rows.append(
                    Row(
                        "inference",
                        case,
                        LABELS[name],
                        "cpu",
                        f"{mp / t:.3f} MP/s ({t:.2f} s)",
                        fmt_ratio(base, t),
                        ok,
                        f"runs {', '.join(f'{x:.2f}' for x in times[name])} s; {notes[name]}",
                        {"seconds": times[name]},
                        vs_paper(anchor, t),
                    )
                )
            if torch.cuda.is_available():
                rows += gpu_inference(plain, hr, case, args)
            else:
                rows.append(Row("inference", case, "GPU: bf16-mixed + channels-last + compile", "cuda", NOT_MEASURED))
    return rows


def gpu_inference(plain: Any, hr: torch.Tensor, case: str, args: argparse.Namespace) -> list[Row]:
    device = torch.device("cuda")
    model = copy.deepcopy(plain).to(device)
    x = hr.to(device)
    variants: dict[str, Callable[[], object]] = {}
    flows = {
        "fp32 eager": lambda x, rev: model(x, rev),
        "bf16-mixed + channels-last + compile": accelerated_flow(
            copy.deepcopy(model), AcceleratorOptions(precision="bf16-mixed", compile=True)
        ),
    }
    c = plain.config.in_channels

    def flow_down_up(flow: Callable[..., Any]) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                out, _ = flow(x, False)
                lr = quantize(out[:, :c])
                z = torch.randn(out[:, c:].shape, device=device)
                hr_out, _ = flow(torch.cat((lr, z), 1), True)
                sync(device)
                return hr_out

        return run

    for name, flow in flows.items():
        variants[name] = flow_down_up(flow)
    times = interleaved(variants, args.repeats)
    base = statistics.median(times["fp32 eager"])
    with torch.inference_mode():
        ref, _ = flows["fp32 eager"](x, False)
        got, _ = flows["bf16-mixed + channels-last + compile"](x, False)
    rows = []
    mp = hr.shape[-1] * hr.shape[-2] / 1e6
    for name in variants:
        t = statistics.median(times[name])
        note = "" if name == "fp32 eager" else f"forward PSNR vs fp32 {psnr(ref.clamp(0, 1), got.clamp(0, 1)):.1f} dB"
        rows.append(Row("inference", case, f"GPU: {name}", "cuda", f"{mp / t:.1f} MP/s", fmt_ratio(base, t), note))
    return rows


# --------------------------------------------------------------------------- whole process runs
def child(args: argparse.Namespace) -> None:
    """One down+up in this fresh process; prints a JSON line with times and peak RSS.

    The ``load`` variant reads ``--x{scale}`` (the file the parent passes) with ``irn.load`` and
    nothing else: the process holds only what ``irn.load`` builds."""
    start = time.perf_counter()
    variant, scale = args.child_variant, args.child_scale
    if variant == "fast":
        return_freed_memory_promptly()
    checkpoint = getattr(args, f"x{scale}")
    if variant == "load":
        if checkpoint is None:  # run by hand: the weights load_model would use, as a file
            checkpoint, _ = load_file(scale, None, tempfile.mkdtemp(prefix="irn_bench_"))
        model, source = load_as_returned(checkpoint), str(checkpoint)
    else:
        plain, source = load_model(scale, checkpoint)
        model = plain
        if variant == "fast":
            model = FastIRN(plain)
        elif variant == "api":
            model = ApiModel(plain)
        elif variant == "paper":
            model = PaperModel(args.paper, plain)  # a copy of the weights: our model is dropped
            del plain
    h, w = args.child_size
    hr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    with torch.inference_mode():
        down_up(variant, model, hr)
    t1 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"down_up_s": t1 - t0, "process_s": t1 - start, "peak_bytes": peak, "weights": source}))


def whole_sizes(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(H, W) of the whole section: ``--whole-sizes`` (WxH), else 512x512 and 2040x1356 (128x128 with --quick)."""
    if getattr(args, "whole_sizes", None):
        return [(h, w) for w, h in args.whole_sizes]
    return [(128, 128)] if args.quick else [(512, 512), (1356, 2040)]


def bench_whole(args: argparse.Namespace) -> list[Row]:
    variants = selected(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="irn_bench_") as tmp:
        files = {s: load_file(s, getattr(args, f"x{s}"), tmp) for s in args.scales} if "load" in variants else {}
        for h, w in whole_sizes(args):
            for scale in args.scales:
                results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
                for _ in range(args.whole_repeats):
                    for variant in variants:
                        cmd = [sys.executable, str(RUN_SCRIPT), "--child", variant, str(scale), str(h), str(w)]
                        for s in (2, 4):
                            if variant == "load" and s == scale:
                                cmd += [f"--x{s}", str(files[s][0])]
                            elif getattr(args, f"x{s}"):
                                cmd += [f"--x{s}", getattr(args, f"x{s}")]
                        if args.paper is not None:
                            cmd += ["--paper-code", str(args.paper.root)]
                        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                        results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
                base = statistics.median(r["down_up_s"] for r in results["plain"]) if "plain" in results else None
                anchor = statistics.median(r["down_up_s"] for r in results["paper"]) if "paper" in results else None
                for variant in variants:
                    rs = results[variant]
                    t = statistics.median(r["down_up_s"] for r in rs)
                    total = statistics.median(r["process_s"] for r in rs)
                    peak = statistics.median(r["peak_bytes"] for r in rs)
                    note = f"{len(rs)} runs: " + ", ".join(
                        f"{r['down_up_s']:.1f}s/{r['peak_bytes'] / 2**30:.2f}GiB" for r in rs
                    )
                    if variant == "load":
                        note += f"; {files[scale][1]}"
                    rows.append(
                        Row(
                            "whole",
                            f"x{scale} {w}x{h} one process",
                            LABELS[variant],
                            "cpu",
                            f"{h * w / 1e6 / t:.3f} MP/s, down+up {t:.1f} s, process {total:.1f} s, "
                            f"peak RSS {peak / 2**30:.2f} GiB",
                            fmt_ratio(base, t) if base is not None else "no baseline (plain not in --variants)",
                            "",
                            note,
                            {"runs": rs},
                            vs_paper(anchor, t),
                        )
                    )
    return rows
