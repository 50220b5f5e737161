"""What every section of ``benchmarks/run.py`` shares: the table row, the models it measures
(trained weights or seeded random ones), interleaved timing, ratio cells, the machine line,
difference and PSNR helpers, test images written as PNGs, and the table itself."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import irn
from irn.errors import IRNError
from irn.nn.network import IRN, IRNConfig
from irn.zoo import load_checkpoint, resolve, save

REPO = Path(__file__).resolve().parents[1]
NOT_MEASURED = "not measured (no GPU)"
TOLERANCE = 1e-4
RANDOM_WEIGHTS = "random weights (seeded)"


@dataclass
class Row:
    """One line of the table."""

    section: str
    case: str
    variant: str
    device: str
    value: str
    ratio: str = ""
    agreement: str = ""
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    paper: str = ""  # ratio to the paper's code measured in the same run (--paper-code)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{gpu}; load average {load:.1f} at start"
    )


# ---------------------------------------------------------------------------------- the models
def find_checkpoint(scale: int, checkpoint: str | None) -> tuple[str, Path, IRN] | None:
    """(the name or path asked for, its file, the plain model) of ``checkpoint`` if given and of
    this scale, else of the shipped ``x{scale}`` model; None if neither loads."""
    for candidate in ([checkpoint] if checkpoint else []) + [f"x{scale}"]:
        try:
            path = resolve(candidate)
            model, meta = load_checkpoint(path)
        except IRNError:
            continue
        if model.scale == scale:
            model.metadata = meta  # type: ignore[assignment]  # recommended_z, as irn.load attaches it
            return str(candidate), path, model
    return None


def random_model(scale: int) -> IRN:
    """The plain model with seeded random weights (speed does not depend on the values)."""
    model = IRN(IRNConfig(scale=scale)).eval()
    gen = torch.Generator().manual_seed(scale)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            p.requires_grad_(False)
    return model


def load_model(scale: int, checkpoint: str | None) -> tuple[IRN, str]:
    """(the plain :class:`irn.nn.network.IRN` in eval mode, where its weights came from): trained
    weights if ``checkpoint`` is given or the shipped model exists, else seeded random ones.

    Always the plain eager network (``irn.zoo.load_checkpoint``), whatever ``irn.load`` returns:
    it is the baseline every other variant is measured against."""
    found = find_checkpoint(scale, checkpoint)
    if found is None:
        return random_model(scale), RANDOM_WEIGHTS
    source, _, model = found
    return model.eval().requires_grad_(False), source


def load_file(scale: int, checkpoint: str | None, folder: str | Path) -> tuple[Path, str]:
    """(a checkpoint file with the weights :func:`load_model` uses, a note): the checkpoint itself,
    or with random weights those weights written by :func:`irn.zoo.save` to ``folder``."""
    found = find_checkpoint(scale, checkpoint)
    if found is not None:
        return found[1], found[0]
    path = save(random_model(scale), Path(folder) / f"random_x{scale}.pt")
    return path, f"{RANDOM_WEIGHTS}, written by irn.save to a temporary file that irn.load reads"


def load_as_returned(path: str | Path) -> Any:
    """The model exactly as ``irn.load(path)`` returns it (today :func:`irn.zoo.load`)."""
    return irn.load(path)


# ---------------------------------------------------------------------------------- the timing
def interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every variant, run round-robin ``repeats`` times after one warm-up call each."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def fmt_ratio(baseline: float, value: float) -> str:
    return f"{baseline / value:.2f}x"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def vs_paper(anchor: float | None, value: float) -> str:
    """The "vs paper's code" cell: the paper's median time over ``value``, empty without --paper-code."""
    return "" if anchor is None else fmt_ratio(anchor, value)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------ the inputs
def write_pngs(folder: Path, count: int, size: tuple[int, int]) -> None:
    """``count`` smooth-noise RGB PNGs of ``size`` (H, W) (compressible like a photo, not like noise)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    for k in range(count):
        path = folder / f"img{k:02d}.png"
        if path.exists():
            continue
        coarse = torch.from_numpy(rng.random((1, 3, h // 16 + 1, w // 16 + 1), dtype=np.float32))
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
        img = img + torch.from_numpy(rng.normal(0, 0.03, (3, h, w)).astype(np.float32))
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(path)


# ------------------------------------------------------------------------------------- the table
def print_table(rows: list[Row]) -> None:
    header = ("section", "case", "variant", "device", "result", "vs baseline", "vs paper's code", "agreement", "note")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r.section} | {r.case} | {r.variant} | {r.device} | {r.value} | {r.ratio} | {r.paper} "
            f"| {r.agreement} | {r.note} |"
        )
