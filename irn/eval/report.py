"""How an evaluation's figures are shown: the markdown tables ``irn eval`` prints, the saved
images with their side-by-side comparison, and the JSON file (through the project's one JSON
rule, :func:`irn.imaging.io.write_json`). The figures come from :mod:`irn.eval.protocol`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from irn.errors import InputError
from irn.eval.metrics import psnr
from irn.imaging.io import to_pil, write_image, write_json
from irn.zoo.errors import CheckpointError
from irn.zoo.registry import get_architecture

#: Per-image figures, in table order: JSON key -> (column title, decimals).
COLUMNS: dict[str, tuple[str, int]] = {
    "psnr_y": ("PSNR-Y", 4),
    "ssim_y": ("SSIM-Y", 5),
    "psnr_rgb": ("PSNR-RGB", 4),
    "ssim_rgb": ("SSIM-RGB", 5),
    "lr_psnr_y": ("LR PSNR-Y", 4),
    "grey_psnr": ("grey PSNR", 4),
    "lpips": ("LPIPS", 4),
    "time_ms": ("ms", 1),
}


# ----------------------------------------------------------------------------- tables
def format_figure(key: str, v: float, spread: float | None = None) -> str:
    """``v`` with the decimals of its column (``inf`` for an infinite PSNR), ``± spread`` if given."""
    decimals = COLUMNS[key][1]
    text = f"{v:.{decimals}f}" if math.isfinite(v) else ("inf" if v > 0 else str(v))
    if spread is not None:
        text += f" ± {spread:.{decimals}f}"
    return text


def arch_label(arch: str | None) -> str:
    """How the tables name a model of registry architecture ``arch`` (its entry's ``label``); "IRN" for a
    report without one (written before the field) or of an architecture this irn does not know."""
    try:
        return get_architecture(arch or "irn").label
    except CheckpointError:
        return "IRN"


def method_label(
    model_name: str | None, z: str | None, draws: int, baseline: str = "bicubic", arch: str | None = None
) -> str:
    """``baseline`` ("bicubic", "grey") when ``z`` is None, else "IRN NAME, z=Z" (the architecture's label:
    SAIN, T-IRN for those, :func:`arch_label`) and ", N draws" for more than one."""
    if z is None:
        return baseline
    kind = arch_label(arch)
    head = f"{kind} {model_name}" if model_name else kind
    return f"{head}, z={z}" + (f", {draws} draws" if draws > 1 else "")


def markdown_table(
    name: str,
    scale: int,
    label: str,
    images: list[dict[str, Any]],
    mean: dict[str, float],
    std: dict[str, float] | None,
) -> str:
    """One dataset's figures as a markdown table (per image, then the mean)."""
    keys = [k for k in COLUMNS if k in mean]
    head = ["image", "size"] + [COLUMNS[k][0] for k in keys]
    lines = [
        f"### {name} (×{scale}, {label}, {len(images)} image{'' if len(images) == 1 else 's'})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * len(keys)) + "|",
    ]
    for img in images:
        spread = img.get("std", {})
        cells = [img["name"], f"{img['width']}×{img['height']}"]
        cells += [format_figure(k, img[k], spread.get(k) if std is not None else None) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**mean**", ""] + [f"**{format_figure(k, mean[k], std[k] if std is not None else None)}**" for k in keys]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_tables(report: dict[str, Any]) -> str:
    """Every dataset of an evaluation report (:func:`irn.eval.protocol.evaluate`) as a markdown
    table, separated by blank lines: what ``irn eval`` prints."""
    is_model = report["method"] == "irn"
    label = method_label(
        report["model"], report["z"] if is_model else None, report["draws"], report["method"], report.get("arch")
    )
    if report.get("jpeg") is not None:  # the LR stored as a JPEG (irn eval --jpeg Q)
        label += f", JPEG LR q{report['jpeg']}" + (" + CRM" if report.get("restorer") else "")
    if report.get("webp") is not None:  # the LR stored as a WebP (irn eval --webp Q)
        label += f", WebP LR q{report['webp']}"
    spread = report["draws"] > 1
    return "\n\n".join(
        markdown_table(name, report["scale"], label, d["images"], d["mean"], d["std"] if spread else None)
        for name, d in report["datasets"].items()
    )


def write_report(path: str | os.PathLike[str], report: dict[str, Any], what: str = "path") -> Path:
    """Write ``report`` to ``path`` as strict JSON (:func:`irn.imaging.io.write_json`: infinities
    become null), atomically; a failed write is one line naming ``what`` (``--json`` for the CLI)."""
    try:
        return write_json(path, report)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot write ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- saved images
def _crop_box(hr: Tensor, bicubic: Tensor, side: int) -> tuple[int, int]:
    """Top-left (y, x) of the side x side window where bicubic loses the most detail."""
    err = (bicubic - hr).abs().mean(1, keepdim=True)
    stride = max(1, side // 4)
    pooled = F.avg_pool2d(err, side, stride=stride)
    i = int(pooled.flatten().argmax())
    return (i // pooled.shape[-1]) * stride, (i % pooled.shape[-1]) * stride


def comparison_image(panels: list[tuple[str, Tensor]], hr: Tensor, bicubic: Tensor) -> Image.Image:
    """Side-by-side PIL image: the full panels (each HR-sized) over zoomed crops of one region."""
    h, w = hr.shape[-2:]
    side = max(8, min(h, w) // 4)
    top, left = _crop_box(hr, bicubic, side)
    zoom = max(1, w // side)
    label_h, gap = 14, 4
    width = len(panels) * (w + gap) - gap
    canvas = Image.new("RGB", (width, label_h + h + gap + side * zoom), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (label, image) in enumerate(panels):
        x0 = i * (w + gap)
        if image.shape[-2:] != hr.shape[-2:]:  # the LR, shown with its pixels enlarged
            f = h // image.shape[-2]
            image = image.repeat_interleave(f, -2).repeat_interleave(f, -1)
        full = to_pil(image[0].float())
        canvas.paste(full, (x0, label_h))
        draw.text((x0 + 2, 1), label, fill="black")
        draw.rectangle((x0 + left, label_h + top, x0 + left + side - 1, label_h + top + side - 1), outline="red")
        crop = full.crop((left, top, left + side, top + side)).resize((side * zoom, side * zoom), Image.NEAREST)
        canvas.paste(crop, (x0, label_h + h + gap))
    return canvas


def save_images(
    folder: Path,
    stem: str,
    hr: Tensor,
    lr: Tensor,
    bicubic: Tensor,
    reconstruction: Tensor | None,
    scale: int,
    rec_psnr: float,
    crop: int,
    color: bool = False,
) -> None:
    """``STEM_hr/lr/bicubic[/rec]/compare.png`` in ``folder``: one image's tensors (1, 3, h, w) in
    [0, 1]; ``reconstruction`` None for the bicubic baseline, ``rec_psnr`` its PSNR-Y for the label.
    ``color`` (decolorization): ``lr`` is the grey image (1, 1, h, w), ``bicubic`` the grey baseline
    (``STEM_baseline.png``) and ``rec_psnr`` the PSNR on RGB."""
    folder.mkdir(parents=True, exist_ok=True)
    write_image(hr[0].float(), folder / f"{stem}_hr.png")
    write_image(lr[0].float(), folder / f"{stem}_{'grey' if color else 'lr'}.png")
    write_image(bicubic[0].float(), folder / f"{stem}_{'baseline' if color else 'bicubic'}.png")
    bic_psnr = float(psnr(bicubic, hr, crop, not color))  # the same border crop as rec_psnr
    if color:
        panels = [("HR", hr), ("grey", lr.expand(-1, 3, -1, -1)), (f"grey as RGB {bic_psnr:.2f} dB", bicubic)]
    else:
        panels = [("HR", hr), (f"LR x1/{scale}", lr), (f"bicubic {bic_psnr:.2f} dB", bicubic)]
    if reconstruction is not None:
        write_image(reconstruction[0].float(), folder / f"{stem}_rec.png")
        panels.append((f"IRN {rec_psnr:.2f} dB", reconstruction))
    image = comparison_image(panels, hr, bicubic)
    image.save(folder / f"{stem}_compare.png")
