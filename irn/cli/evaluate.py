"""``irn eval``: score an IRN model, or the bicubic baseline, on folders of HR images.

Protocol (the IRN paper's, as its official evaluation code runs it):

1. each HR image is cropped top-left to a multiple of the scale (modcrop);
2. ``--method bicubic``: LR = MATLAB bicubic downscale (antialiased) rounded to 8 bits, the
   reconstruction = MATLAB bicubic upscale of that LR rounded to 8 bits ("Bicubic & Bicubic");
   ``--model``: LR = ``model.downscale(hr)`` (8-bit), reconstruction = ``model.upscale(lr)``
   with the latent drawn per ``--z`` (``sample``, seeds 0..N-1 for ``--draws N``; ``zero``; or
   ``auto``, the default: the checkpoint's ``recommended_z``),
   rounded to 8 bits as the official code saves it;
3. PSNR and SSIM of the reconstruction against the HR, on the Y channel (MATLAB BT.601) and on
   RGB, ``--crop-border`` (default: the scale) pixels removed per side (:mod:`irn.eval.metrics`);
   the model's LR is scored against the MATLAB bicubic LR (PSNR-Y, no crop); optional LPIPS
   (AlexNet, RGB, same crop); wall time per image (downscale + upscale).

A dataset is named after its folder, or after the folder's parent when the folder is called
``HR`` (``.../Set5/HR`` -> ``Set5``). Without ``--data``, the Set5 and Set14 ``HR`` folders
under ``shared/datasets/`` beside the source checkout are used when present.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irn.cli.common import add_device_argument, number_type
from irn.errors import IRNError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from irn.nn.network import IRN

HELP = "Evaluate an IRN model or bicubic on HR image folders: PSNR/SSIM (Y, RGB), LR PSNR, LPIPS, time."

#: Per-image figures, in table order: JSON key -> (column title, decimals).
COLUMNS: dict[str, tuple[str, int]] = {
    "psnr_y": ("PSNR-Y", 4),
    "ssim_y": ("SSIM-Y", 5),
    "psnr_rgb": ("PSNR-RGB", 4),
    "ssim_rgb": ("SSIM-RGB", 5),
    "lr_psnr_y": ("LR PSNR-Y", 4),
    "lpips": ("LPIPS", 4),
    "time_ms": ("ms", 1),
}
DEFAULT_DATASETS = ("Set5", "Set14")


def default_data_dirs() -> list[Path]:
    """``shared/datasets/{Set5,Set14}/HR`` beside the source checkout, those that exist."""
    root = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    return [root / name / "HR" for name in DEFAULT_DATASETS if (root / name / "HR").is_dir()]


_positive_int = number_type(int, "a whole number", lambda v: v >= 1, "must be at least 1, got {value}")
_non_negative_int = number_type(int, "a whole number", lambda v: v >= 0, "must not be negative, got {value}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", metavar="NAME|PATH", help="shipped model name (x2, x4) or checkpoint file")
    what.add_argument("--method", choices=("bicubic",), help="baseline instead of a model: MATLAB bicubic down and up")
    parser.add_argument(
        "--scale", type=_positive_int, help="scale factor; required for --method, checked against a model's own"
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="DIR",
        help="folder of HR images (repeatable); default: Set5/HR and Set14/HR in shared/datasets beside the checkout",
    )
    parser.add_argument(
        "--z",
        choices=("auto", "sample", "zero"),
        default="auto",
        help="latent for upscaling: Gaussian sample (the paper), zeros, or auto (default): the one the "
        "checkpoint recommends (metadata recommended_z; sample when it names none)",
    )
    parser.add_argument(
        "--draws", type=_positive_int, default=1, help="latent draws per image with seeds 0..N-1 (default 1)"
    )
    parser.add_argument(
        "--crop-border",
        type=_non_negative_int,
        metavar="PX",
        help="pixels cut per side before scoring (default: scale)",
    )
    parser.add_argument(
        "--y-only", action="store_true", help="score on the Y channel only (no RGB figures; about twice as fast)"
    )
    parser.add_argument("--lpips", action="store_true", help="also LPIPS (AlexNet; needs its weights in TORCH_HOME)")
    parser.add_argument("--json", metavar="PATH", help="write all figures to PATH as JSON")
    parser.add_argument(
        "--save-images", metavar="DIR", help="write HR, LR, reconstruction, bicubic and a comparison per image"
    )
    add_device_argument(parser)


# ----------------------------------------------------------------------------- datasets
@dataclass
class Dataset:
    name: str
    folder: Path
    images: list[Path]


def _dataset_name(folder: Path) -> str:
    return folder.parent.name if folder.name.lower() == "hr" and folder.parent.name else folder.name


def find_datasets(dirs: Sequence[str | Path]) -> list[Dataset]:
    """Each folder's image files (sorted by name, not recursive) as a named dataset."""
    from irn.imaging.io import IMAGE_SUFFIXES

    datasets: list[Dataset] = []
    seen: set[Path] = set()
    for text in dirs:
        folder = Path(text).expanduser()
        if not folder.exists():
            raise IRNError(f"--data {folder}: no such folder")
        if not folder.is_dir():
            raise IRNError(f"--data {folder}: is a file; expected a folder of HR images")
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            raise IRNError(f"--data {folder}: no image files ({kinds}) in this folder")
        name, n = _dataset_name(folder), 2
        while any(d.name == name for d in datasets):
            name, n = f"{_dataset_name(folder)}-{n}", n + 1
        datasets.append(Dataset(name, folder, images))
    return datasets


def _check_sizes(datasets: Sequence[Dataset], scale: int, crop: int) -> None:
    """Refuse, before any work, images too small for the modcrop, the border crop and SSIM's window."""
    from PIL import Image

    from irn.eval.metrics import SSIM_WINDOW
    from irn.imaging.io import read_image_checked

    need = 2 * crop + SSIM_WINDOW
    for dataset in datasets:
        for path in dataset.images:
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except Exception:  # noqa: BLE001 - let the real reader say what is wrong
                read_image_checked(path, max_pixels=None)
                raise IRNError(f"{path}: cannot read the image size") from None
            mh, mw = h - h % scale, w - w % scale
            if min(mh, mw) < need:
                raise IRNError(
                    f"{path}: {w}x{h} (cropped to a multiple of {scale}: {mw}x{mh}) is too small to score: "
                    f"needs at least {need}x{need} ({crop} px border per side + the {SSIM_WINDOW}x{SSIM_WINDOW} "
                    f"SSIM window); use --crop-border or leave the image out"
                )


# ----------------------------------------------------------------------------- one image
@dataclass
class Outputs:
    """One image's pipeline, all (1, 3, h, w) float64 on 8-bit levels, on the device."""

    hr: Tensor
    lr: Tensor
    lr_bicubic: Tensor
    bicubic: Tensor
    reconstructions: list[Tensor]  # one per draw
    seconds: list[float]  # wall time of downscale + upscale, one per draw


def _quantize64(x: Tensor) -> Tensor:
    import torch

    return torch.round(x.double().clamp(0, 1) * 255) / 255


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def run_image(hr: Tensor, scale: int, model: IRN | None, z: str, draws: int, device: str) -> Outputs:
    """Bicubic baseline and (with a model) the IRN round trip of one modcropped HR (1, 3, H, W)."""
    import torch

    from irn.imaging.resize import imresize

    hr = hr.to(device=device, dtype=torch.float64)
    size = (hr.shape[-2], hr.shape[-1])
    _sync(device)
    start = time.perf_counter()
    lr_bicubic = _quantize64(imresize(hr, 1 / scale))
    bicubic = _quantize64(imresize(lr_bicubic, scale))
    _sync(device)
    bicubic_seconds = time.perf_counter() - start
    if model is None:
        return Outputs(hr, lr_bicubic, lr_bicubic, bicubic, [bicubic], [bicubic_seconds])
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    reconstructions, seconds = [], []
    with torch.inference_mode():
        _sync(device)
        start = time.perf_counter()
        lr = model.downscale(hr.to(dtype))
        _sync(device)
        down_seconds = time.perf_counter() - start
        for seed in range(draws):
            start = time.perf_counter()
            rec = model.upscale(lr, z=z, seed=seed if z == "sample" else None, size=size)  # type: ignore[arg-type]
            _sync(device)
            seconds.append(down_seconds + time.perf_counter() - start)
            reconstructions.append(_quantize64(rec))
    return Outputs(hr, _quantize64(lr), lr_bicubic, bicubic, reconstructions, seconds)


def score(
    out: Outputs, crop: int, lpips_net: nn.Module | None, is_model: bool, rgb: bool = True
) -> list[dict[str, float]]:
    """Figures of each reconstruction (one dict per draw); ``rgb=False`` skips PSNR/SSIM on RGB."""
    from irn.eval.metrics import lpips_distance, psnr, ssim

    lr_psnr = float(psnr(out.lr, out.lr_bicubic, 0, True)) if is_model else None
    rows = []
    for rec, seconds in zip(out.reconstructions, out.seconds, strict=True):
        row = {"psnr_y": float(psnr(rec, out.hr, crop, True)), "ssim_y": float(ssim(rec, out.hr, crop, True))}
        if rgb:
            row["psnr_rgb"] = float(psnr(rec, out.hr, crop, False))
            row["ssim_rgb"] = float(ssim(rec, out.hr, crop, False))
        if lr_psnr is not None:
            row["lr_psnr_y"] = lr_psnr
        if lpips_net is not None:
            row["lpips"] = float(lpips_distance(lpips_net, rec, out.hr, crop))
        row["time_ms"] = seconds * 1000
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- aggregation
def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if not any(math.isinf(v) for v in values) else float("inf")


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for one value or equal values (also equal infinities)."""
    if len(values) < 2 or len(set(values)) == 1:
        return 0.0
    if not all(math.isfinite(v) for v in values):
        return float("nan")
    return statistics.stdev(values)


def summarise(per_image_draws: list[list[dict[str, float]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Dataset mean (over images of the per-image draw means) and its spread (sample std over draws)."""
    keys = list(per_image_draws[0][0])
    draws = len(per_image_draws[0])
    mean = {k: _mean([_mean([d[k] for d in img]) for img in per_image_draws]) for k in keys}
    per_draw = [{k: _mean([img[i][k] for img in per_image_draws]) for k in keys} for i in range(draws)]
    std = {k: _std([d[k] for d in per_draw]) for k in keys}
    return mean, std


def _fmt(key: str, v: float, spread: float | None = None) -> str:
    decimals = COLUMNS[key][1]
    text = f"{v:.{decimals}f}" if math.isfinite(v) else ("inf" if v > 0 else str(v))
    if spread is not None:
        text += f" ± {spread:.{decimals}f}"
    return text


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
        cells += [_fmt(k, img[k], spread.get(k) if std is not None else None) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**mean**", ""] + [f"**{_fmt(k, mean[k], std[k] if std is not None else None)}**" for k in keys]
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- saved images
def _crop_box(hr: Tensor, bicubic: Tensor, side: int) -> tuple[int, int]:
    """Top-left (y, x) of the side x side window where bicubic loses the most detail."""
    import torch.nn.functional as F

    err = (bicubic - hr).abs().mean(1, keepdim=True)
    stride = max(1, side // 4)
    pooled = F.avg_pool2d(err, side, stride=stride)
    i = int(pooled.flatten().argmax())
    return (i // pooled.shape[-1]) * stride, (i % pooled.shape[-1]) * stride


def comparison_image(panels: list[tuple[str, Tensor]], hr: Tensor, bicubic: Tensor) -> Any:
    """Side-by-side PIL image: the full panels (each HR-sized) over zoomed crops of one region."""
    from PIL import Image, ImageDraw

    from irn.imaging.io import to_pil

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


def save_images(folder: Path, stem: str, out: Outputs, is_model: bool, scale: int, rec_psnr: float, crop: int) -> None:
    from irn.eval.metrics import psnr
    from irn.imaging.io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    write_image(out.hr[0].float(), folder / f"{stem}_hr.png")
    write_image(out.lr[0].float(), folder / f"{stem}_lr.png")
    write_image(out.bicubic[0].float(), folder / f"{stem}_bicubic.png")
    bic_psnr = float(psnr(out.bicubic, out.hr, crop, True))  # the same border crop as rec_psnr
    panels = [("HR", out.hr), (f"LR x1/{scale}", out.lr), (f"bicubic {bic_psnr:.2f} dB", out.bicubic)]
    if is_model:
        write_image(out.reconstructions[0][0].float(), folder / f"{stem}_rec.png")
        panels.append((f"IRN {rec_psnr:.2f} dB", out.reconstructions[0]))
    image = comparison_image(panels, out.hr, out.bicubic)
    image.save(folder / f"{stem}_compare.png")


# ----------------------------------------------------------------------------- the command
def _load_model(args: argparse.Namespace, device: str) -> tuple[IRN | None, int, str]:
    if args.method == "bicubic":
        if args.scale is None:
            raise IRNError("--method bicubic needs --scale (e.g. --scale 4)")
        if args.draws != 1:
            raise IRNError("--draws applies to a model's sampled latent, not to --method bicubic")
        return None, args.scale, "bicubic"
    from irn.zoo import load

    model = load(args.model, device=device)
    if args.scale is not None and args.scale != model.scale:
        raise IRNError(f"--scale {args.scale} does not match the model {args.model}, which rescales by {model.scale}")
    recommended = args.z == "auto"
    if recommended:
        args.z = model.recommended_z()
    if args.z == "zero" and args.draws != 1:
        zero = f"the zero latent (which {args.model} recommends)" if recommended else "the zero latent"
        raise IRNError(f"--draws needs --z sample: {zero} gives the same result every time")
    label = f"IRN {args.model}, z={args.z}" + (f", {args.draws} draws" if args.draws > 1 else "")
    from irn.pipeline import for_inference

    return for_inference(model), model.scale, label  # on a CPU the fast path (the same figures, faster)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from irn.imaging.io import check_output_path, read_image, refuse_overwriting
    from irn.zoo import resolve_device

    if args.json:
        check_output_path(args.json, "--json")
    if args.save_images:
        check_output_path(args.save_images, "--save-images", folder=True)
    device = resolve_device(args.device, "--device")
    model, scale, label = _load_model(args, device)
    is_model = model is not None
    crop = scale if args.crop_border is None else args.crop_border
    dirs = args.data or default_data_dirs()
    if not dirs:
        raise IRNError(
            "no --data given and the default Set5/Set14 HR folders (shared/datasets beside the checkout) "
            "are absent; pass --data DIR with a folder of HR images"
        )
    datasets = find_datasets(dirs)
    if args.json:
        refuse_overwriting({"--json": args.json}, {f"the data image {p}": p for d in datasets for p in d.images})
    _check_sizes(datasets, scale, crop)
    lpips_net = None
    if args.lpips:
        from irn.eval.metrics import build_lpips

        lpips_net = build_lpips(device)
    save_root = Path(args.save_images) if args.save_images else None
    if save_root is not None:
        inputs = {d.folder.resolve(): d.folder for d in datasets}
        for dataset in datasets:
            target = (save_root / dataset.name).resolve()
            if target in inputs:
                raise IRNError(
                    f"--save-images {save_root}: would write {dataset.name}'s images into the data folder "
                    f"{inputs[target]} (over its files); choose another folder"
                )

    report: dict[str, Any] = {
        "scale": scale,
        "method": "irn" if is_model else "bicubic",
        "model": args.model,
        "z": args.z if is_model else None,
        "draws": args.draws,
        "crop_border": crop,
        "device": device,
        "datasets": {},
    }
    tables = []
    warmed_up = False
    for dataset in datasets:
        # saved images are named after the input's stem; inputs sharing one (a.png, a.jpg) keep their suffix
        stem_count = Counter(p.stem for p in dataset.images)
        save_stems = {p: p.stem if stem_count[p.stem] == 1 else f"{p.stem}_{p.suffix[1:]}" for p in dataset.images}
        images: list[dict[str, Any]] = []
        draws_per_image: list[list[dict[str, float]]] = []
        for path in tqdm(dataset.images, desc=dataset.name, unit="img", file=sys.stderr, leave=False):
            hr = read_image(path)
            hr = hr[None, :, : hr.shape[-2] - hr.shape[-2] % scale, : hr.shape[-1] - hr.shape[-1] % scale]
            if torch.equal(hr, torch.round(hr * 255) / 255):  # 8-bit levels: make them exact in float64
                hr = torch.round(hr.double() * 255) / 255
            if not warmed_up and device != "cpu":  # one untimed pass: first GPU calls pay for setup
                run_image(hr, scale, model, args.z, 1, device)
                warmed_up = True
            out = run_image(hr, scale, model, args.z, args.draws, device)
            rows = score(out, crop, lpips_net, is_model, rgb=not args.y_only)
            draws_per_image.append(rows)
            keys = list(rows[0])
            entry: dict[str, Any] = {
                "name": path.stem,
                "file": path.name,
                "height": hr.shape[-2],
                "width": hr.shape[-1],
            }
            entry.update({k: _mean([r[k] for r in rows]) for k in keys})
            if args.draws > 1:
                entry["std"] = {k: _std([r[k] for r in rows]) for k in keys}
            images.append(entry)
            if save_root is not None:
                save_images(save_root / dataset.name, save_stems[path], out, is_model, scale, entry["psnr_y"], crop)
        mean, std = summarise(draws_per_image)
        record: dict[str, Any] = {"folder": str(dataset.folder), "count": len(images), "mean": mean}
        if args.draws > 1:
            record["std"] = std
        record["images"] = images
        report["datasets"][dataset.name] = record
        tables.append(markdown_table(dataset.name, scale, label, images, mean, std if args.draws > 1 else None))

    print("\n\n".join(tables))
    if args.json:
        _write_json(Path(args.json), report)
    return 0


def _write_json(path: Path, report: dict[str, Any]) -> None:
    from irn.imaging.io import write_json

    try:
        write_json(path, report)
    except OSError as exc:
        raise IRNError(f"--json {path}: cannot write ({exc.strerror or exc})") from None
