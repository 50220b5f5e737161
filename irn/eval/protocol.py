"""The evaluation protocol behind ``irn eval``: score a rescaling model (IRN, the official x3, IRN-Color,
SAIN, T-IRN), or the bicubic baseline, on folders of HR images.

Protocol (the IRN paper's, as its official evaluation code runs it):

1. each HR image is cropped top-left to a multiple of the scale (modcrop);
2. bicubic (``model=None``): LR = MATLAB bicubic downscale (antialiased) rounded to 8 bits, the
   reconstruction = MATLAB bicubic upscale of that LR rounded to 8 bits ("Bicubic & Bicubic");
   a model: LR = ``model.downscale(hr)`` (8-bit), reconstruction = ``model.upscale(lr)``
   with the latent drawn per ``z`` (``sample``, seeds 0..N-1 for ``draws=N``; ``zero``; or
   ``auto``, the default: the checkpoint's ``recommended_z``, else the architecture's: SAIN samples
   its Gaussian mixture, T-IRN and IRN-Color use z = 0), rounded to 8 bits as the official code saves it; with
   ``jpeg`` (``webp``) the LR, the model's and bicubic's, is stored as a JPEG (WebP) of that quality
   before upscaling, as SAIN's official test does;
3. PSNR and SSIM of the reconstruction against the HR, on the Y channel (MATLAB BT.601) and on
   RGB, ``crop_border`` (default: the scale) pixels removed per side (:mod:`irn.eval.metrics`);
   the model's LR is scored against the MATLAB bicubic LR (PSNR-Y, no crop); optional LPIPS
   (AlexNet, RGB, same crop); wall time per image (downscale + upscale).

IRN-Color models (scale 1) follow the same steps with the grey image as the LR: it is scored
against the BT.601 luma (``grey_psnr``, PSNR on 0-255, no crop), the restored colour image on RGB
and Y with no border cropped by default; their baseline (``baseline="grey"``) is the luma copied
to the three channels, what a grey image shows without colorization.

A dataset is named after its folder, or after the folder's parent when the folder is called
``HR`` (``.../Set5/HR`` -> ``Set5``). Without data folders, the Set5 and Set14 ``HR`` folders
under ``shared/datasets/`` beside the source checkout are used when present.

:func:`evaluate` runs it all and returns the report (the dict ``irn eval --json`` writes);
:func:`prepare_evaluation` and :func:`run_evaluation` are its two halves (every check that
needs no image work, then the work). Mistakes raise :class:`irn.errors.InputError` naming the
parameter; ``names`` maps a parameter to what the caller's user calls it (the CLI's flags).
Tables and saved images are in :mod:`irn.eval.report`.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from irn.errors import InputError
from irn.eval.metrics import SSIM_WINDOW, build_lpips, lpips_distance, psnr, ssim
from irn.eval.report import method_label, save_images
from irn.imaging.io import IMAGE_SUFFIXES, check_output_path, lossy_roundtrip, read_image, read_image_checked
from irn.imaging.resize import imresize
from irn.nn.linear import rgb_to_luma
from irn.nn.network import Rescaler
from irn.nn.restoration import CompressionRestorer
from irn.pipeline import for_inference, run_restorer
from irn.progress import progress_bar
from irn.zoo import architecture_of, load_irn, resolve_device, restorer_of

DEFAULT_DATASETS = ("Set5", "Set14")
#: the lossy formats an LR can be stored in before upscaling: parameter -> (Pillow format, its name)
LOSSY = {"jpeg": ("JPEG", "JPEG"), "webp": ("WEBP", "WebP")}
Z_CHOICES = ("auto", "sample", "zero")
#: the model-free methods: MATLAB bicubic down and up (rescaling), the luma as RGB (decolorization)
BASELINES = ("bicubic", "grey")


def default_data_dirs() -> list[Path]:
    """``shared/datasets/{Set5,Set14}/HR`` beside the source checkout, those that exist."""
    root = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    return [root / name / "HR" for name in DEFAULT_DATASETS if (root / name / "HR").is_dir()]


def _namer(names: Mapping[str, str] | None) -> Any:
    """``key -> names[key]``, else the parameter's own name (``save_images``, ``crop_border``, ...)."""
    given = dict(names or {})
    defaults = {"bicubic": "model=None (bicubic)"}
    return lambda key: given.get(key, defaults.get(key, key))


# ----------------------------------------------------------------------------- datasets
@dataclass
class Dataset:
    name: str
    folder: Path
    images: list[Path]


def _dataset_name(folder: Path) -> str:
    return folder.parent.name if folder.name.lower() == "hr" and folder.parent.name else folder.name


def find_datasets(dirs: Sequence[str | Path], what: str = "data") -> list[Dataset]:
    """Each folder's image files (sorted by name, not recursive) as a named dataset; ``what``
    names the parameter in error messages (``--data`` for the CLI)."""
    datasets: list[Dataset] = []
    seen: set[Path] = set()
    for text in dirs:
        folder = Path(text).expanduser()
        if not folder.exists():
            raise InputError(f"{what} {folder}: no such folder")
        if not folder.is_dir():
            raise InputError(f"{what} {folder}: is a file; expected a folder of HR images")
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            kinds = ", ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(f"{what} {folder}: no image files ({kinds}) in this folder")
        name, n = _dataset_name(folder), 2
        while any(d.name == name for d in datasets):
            name, n = f"{_dataset_name(folder)}-{n}", n + 1
        datasets.append(Dataset(name, folder, images))
    return datasets


def check_sizes(datasets: Sequence[Dataset], scale: int, crop: int, what: str = "crop_border") -> None:
    """Refuse, before any work, images too small for the modcrop, the border crop and SSIM's window
    (``what`` names the border-crop parameter in the message)."""
    need = 2 * crop + SSIM_WINDOW
    for dataset in datasets:
        for path in dataset.images:
            try:
                with Image.open(path) as im:
                    w, h = im.size
            except Exception:  # noqa: BLE001 - let the real reader say what is wrong
                read_image_checked(path, max_pixels=None)
                raise InputError(f"{path}: cannot read the image size") from None
            mh, mw = h - h % scale, w - w % scale
            if min(mh, mw) < need:
                raise InputError(
                    f"{path}: {w}x{h} (cropped to a multiple of {scale}: {mw}x{mh}) is too small to score: "
                    f"needs at least {need}x{need} ({crop} px border per side + the {SSIM_WINDOW}x{SSIM_WINDOW} "
                    f"SSIM window); use {what} or leave the image out"
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
    return torch.round(x.double().clamp(0, 1) * 255) / 255


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def run_image(
    hr: Tensor,
    scale: int,
    model: Rescaler | None,
    z: str,
    draws: int,
    device: str,
    color: bool = False,
    jpeg: int | None = None,
    restorer: CompressionRestorer | None = None,
    webp: int | None = None,
) -> Outputs:
    """Bicubic baseline and (with a model) the model's round trip of one modcropped HR (1, 3, H, W).
    ``color``: the decolorization task, whose reference "LR" is the 8-bit BT.601 luma and whose
    baseline is that luma on all three channels. ``jpeg`` (``webp``): the LR (the model's and
    bicubic's) is stored as a JPEG (WebP) of that quality before upscaling; ``restorer`` (a model's
    CRM) then restores a decoded JPEG before the model's inverse pass."""
    lossy = ("JPEG", jpeg) if jpeg is not None else ("WEBP", webp) if webp is not None else None
    hr = hr.to(device=device, dtype=torch.float64)
    size = (hr.shape[-2], hr.shape[-1])
    _sync(device)
    start = time.perf_counter()
    if color:
        lr_bicubic = _quantize64(rgb_to_luma(hr))
        bicubic = lr_bicubic.expand(-1, 3, -1, -1)
    else:
        lr_bicubic = _quantize64(imresize(hr, 1 / scale))
        stored = lossy_roundtrip(lr_bicubic, *lossy) if lossy is not None else lr_bicubic
        bicubic = _quantize64(imresize(stored, scale))
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
        lr_in = lr
        if lossy is not None:
            lr_in = lossy_roundtrip(lr, *lossy)
            if restorer is not None and jpeg is not None:
                lr_in = run_restorer(restorer, lr_in).to(lr.dtype)
        _sync(device)
        down_seconds = time.perf_counter() - start
        for seed in range(draws):
            start = time.perf_counter()
            rec = model.upscale(lr_in, z=z, seed=seed if z == "sample" else None, size=size)  # type: ignore[arg-type]
            _sync(device)
            seconds.append(down_seconds + time.perf_counter() - start)
            reconstructions.append(_quantize64(rec))
    return Outputs(hr, _quantize64(lr), lr_bicubic, bicubic, reconstructions, seconds)


def score(
    out: Outputs, crop: int, lpips_net: nn.Module | None, is_model: bool, rgb: bool = True, color: bool = False
) -> list[dict[str, float]]:
    """Figures of each reconstruction (one dict per draw); ``rgb=False`` skips PSNR/SSIM on RGB.
    The LR figure is ``lr_psnr_y`` (PSNR-Y against the bicubic LR), or for ``color`` ``grey_psnr``
    (the grey image against the 8-bit luma)."""
    lr_key = "grey_psnr" if color else "lr_psnr_y"
    lr_psnr = float(psnr(out.lr, out.lr_bicubic, 0, not color)) if is_model else None
    rows = []
    for rec, seconds in zip(out.reconstructions, out.seconds, strict=True):
        row = {"psnr_y": float(psnr(rec, out.hr, crop, True)), "ssim_y": float(ssim(rec, out.hr, crop, True))}
        if rgb:
            row["psnr_rgb"] = float(psnr(rec, out.hr, crop, False))
            row["ssim_rgb"] = float(ssim(rec, out.hr, crop, False))
        if lr_psnr is not None:
            row[lr_key] = lr_psnr
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


# ----------------------------------------------------------------------------- the evaluation
@dataclass
class Evaluation:
    """A checked evaluation, ready to run (:func:`prepare_evaluation`): the model as it runs (on a
    CPU the fast path) or None for bicubic, the latent ``z`` resolved from ``auto``, the datasets."""

    model: Rescaler | None
    model_name: str | None
    scale: int
    z: str
    draws: int
    crop: int
    device: str
    datasets: list[Dataset]
    y_only: bool = False
    lpips: bool = False
    save_images: Path | None = None
    names: dict[str, str] = field(default_factory=dict)
    #: the decolorization task (an IRN-Color model, or the grey baseline)
    color: bool = False
    #: the LR is stored as a JPEG of this quality before upscaling (None: 8-bit PNG)
    jpeg: int | None = None
    #: the LR is stored as a WebP of this quality before upscaling (None: 8-bit PNG; never with ``jpeg``)
    webp: int | None = None
    #: the model's registry architecture ("irn", "sain", "tirn", ...; None for a baseline)
    arch: str | None = None
    #: the model's compression restoration module, run on the decoded JPEG (``use_restorer``)
    restorer: CompressionRestorer | None = None

    @property
    def is_model(self) -> bool:
        return self.model is not None

    @property
    def method(self) -> str:
        """ "irn", "bicubic" or "grey"."""
        return "irn" if self.is_model else ("grey" if self.color else "bicubic")

    @property
    def label(self) -> str:
        """What the tables call the method: "bicubic", "grey", or "IRN x4, z=zero" (", 5 draws")."""
        return method_label(self.model_name, self.z if self.is_model else None, self.draws, self.method, self.arch)


def prepare_evaluation(
    model: Rescaler | str | os.PathLike[str] | None,
    data: Sequence[str | os.PathLike[str]] | None = None,
    *,
    scale: int | None = None,
    z: str = "auto",
    draws: int = 1,
    crop_border: int | None = None,
    y_only: bool = False,
    lpips: bool = False,
    device: str = "auto",
    save_images: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    names: Mapping[str, str] | None = None,
    baseline: str = "bicubic",
    jpeg: int | None = None,
    use_restorer: bool = True,
    webp: int | None = None,
) -> Evaluation:
    """Every check that needs no image work, in one place; see :func:`evaluate` for the parameters."""
    name = _namer(names)
    for key, quality in (("jpeg", jpeg), ("webp", webp)):
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100
        ):
            raise InputError(f"{name(key)} must be a {LOSSY[key][1]} quality from 1 to 100, got {quality!r}")
    if jpeg is not None and webp is not None:
        raise InputError(f"{name('jpeg')} and {name('webp')}: the LR is stored in one format, give one of them")
    lossy_key = "jpeg" if jpeg is not None else "webp" if webp is not None else None
    if baseline not in BASELINES:
        raise InputError(f"{name('baseline')} must be one of {', '.join(BASELINES)}, got {baseline!r}")
    if save_images is not None:
        check_output_path(save_images, name("save_images"), folder=True)
    if z not in Z_CHOICES:
        raise InputError(f"{name('z')} must be one of {', '.join(Z_CHOICES)}, got {z!r}")
    for key, value, low in (("draws", draws, 1), ("scale", scale, 1), ("crop_border", crop_border, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise InputError(f"{name(key)} must be a whole number of at least {low}, got {value!r}")
    device = resolve_device(device, name("device"))
    if model is None:
        color = baseline == "grey"
        method = name("grey") if color else name("bicubic")
        if color and scale not in (None, 1):
            raise InputError(f"{method} keeps the image size: {name('scale')} {scale} does not apply")
        if not color and scale is None:
            raise InputError(f"{method} needs {name('scale')} (e.g. {name('scale')} 4)")
        if draws != 1:
            raise InputError(f"{name('draws')} applies to a model's sampled latent, not to {method}")
        runner, model_scale, z_used = None, 1 if color else scale, z
        restorer, arch = None, None
    else:
        if isinstance(model, Rescaler):
            loaded = model.to(device)
        else:
            model_name = str(model) if model_name is None else model_name
            loaded = load_irn(model, device=device)
        if scale is not None and scale != loaded.scale:
            raise InputError(
                f"{name('scale')} {scale} does not match the model{' ' + model_name if model_name else ''}, "
                f"which rescales by {loaded.scale}"
            )
        recommended = z == "auto"
        z_used = loaded.recommended_z() if recommended else z
        if z_used == "zero" and draws != 1:
            zero = "the zero latent"
            if recommended:
                zero += f" (which {model_name or 'the model'} recommends)"
            raise InputError(f"{name('draws')} needs {name('z')} sample: {zero} gives the same result every time")
        # on a CPU the fast path (the same figures, faster)
        runner, model_scale = for_inference(loaded), loaded.scale
        color = loaded.config.kind == "color"
        method = f"the colour model{' ' + model_name if model_name else ''}"
        restorer = restorer_of(loaded) if (jpeg is not None and use_restorer) else None
        arch = architecture_of(loaded).name
    if color and lossy_key is not None:
        raise InputError(f"{name(lossy_key)} applies to rescaling, not to {method}")
    if color and y_only:
        raise InputError(f"{name('y_only')} does not apply to {method}: decolorization is scored on RGB")
    crop = (0 if color else model_scale) if crop_border is None else crop_border
    dirs = list(data) if data else default_data_dirs()
    if not dirs:
        raise InputError(
            f"no {name('data')} given and the default Set5/Set14 HR folders (shared/datasets beside the checkout) "
            f"are absent; pass {name('data')} DIR with a folder of HR images"
        )
    datasets = find_datasets(dirs, name("data"))
    return Evaluation(
        model=runner,
        model_name=model_name,
        scale=model_scale,
        z=z_used,
        draws=draws,
        crop=crop,
        device=device,
        datasets=datasets,
        y_only=y_only,
        lpips=lpips,
        save_images=Path(save_images) if save_images is not None else None,
        names=dict(names or {}),
        color=color,
        jpeg=jpeg,
        restorer=restorer,
        webp=webp,
        arch=arch,
    )


def run_evaluation(ev: Evaluation, progress: bool = True) -> dict[str, Any]:
    """Score ``ev``'s datasets: the report (see :func:`evaluate`); a progress bar per dataset on
    stderr while it runs (``progress=False``: none)."""
    name = _namer(ev.names)
    scale, crop, model, is_model, device = ev.scale, ev.crop, ev.model, ev.is_model, ev.device
    check_sizes(ev.datasets, scale, crop, name("crop_border"))
    lpips_net = build_lpips(device) if ev.lpips else None
    save_root = ev.save_images
    if save_root is not None:
        inputs = {d.folder.resolve(): d.folder for d in ev.datasets}
        for dataset in ev.datasets:
            target = (save_root / dataset.name).resolve()
            if target in inputs:
                raise InputError(
                    f"{name('save_images')} {save_root}: would write {dataset.name}'s images into the data folder "
                    f"{inputs[target]} (over its files); choose another folder"
                )

    report: dict[str, Any] = {
        "scale": scale,
        "method": ev.method,
        "model": ev.model_name if is_model else None,
        "arch": ev.arch,
        "z": ev.z if is_model else None,
        "draws": ev.draws,
        "jpeg": ev.jpeg,
        "webp": ev.webp,
        "restorer": ev.restorer is not None,
        "crop_border": crop,
        "device": device,
        "datasets": {},
    }
    warmed_up = False
    for dataset in ev.datasets:
        # saved images are named after the input's stem; inputs sharing one (a.png, a.jpg) keep their suffix
        stem_count = Counter(p.stem for p in dataset.images)
        save_stems = {p: p.stem if stem_count[p.stem] == 1 else f"{p.stem}_{p.suffix[1:]}" for p in dataset.images}
        images: list[dict[str, Any]] = []
        draws_per_image: list[list[dict[str, float]]] = []
        bar = progress_bar(dataset.images, desc=dataset.name, unit="img", enabled=progress)
        for path in bar:
            hr = read_image(path)
            hr = hr[None, :, : hr.shape[-2] - hr.shape[-2] % scale, : hr.shape[-1] - hr.shape[-1] % scale]
            if torch.equal(hr, torch.round(hr * 255) / 255):  # 8-bit levels: make them exact in float64
                hr = torch.round(hr.double() * 255) / 255
            if not warmed_up and device != "cpu":  # one untimed pass: first GPU calls pay for setup
                run_image(hr, scale, model, ev.z, 1, device, ev.color, ev.jpeg, ev.restorer, ev.webp)
                warmed_up = True
            out = run_image(hr, scale, model, ev.z, ev.draws, device, ev.color, ev.jpeg, ev.restorer, ev.webp)
            rows = score(out, crop, lpips_net, is_model, rgb=not ev.y_only, color=ev.color)
            draws_per_image.append(rows)
            keys = list(rows[0])
            entry: dict[str, Any] = {
                "name": path.stem,
                "file": path.name,
                "height": hr.shape[-2],
                "width": hr.shape[-1],
            }
            entry.update({k: _mean([r[k] for r in rows]) for k in keys})
            if ev.draws > 1:
                entry["std"] = {k: _std([r[k] for r in rows]) for k in keys}
            images.append(entry)
            if save_root is not None:
                save_images(
                    save_root / dataset.name,
                    save_stems[path],
                    out.hr,
                    out.lr,
                    out.bicubic,
                    out.reconstructions[0] if is_model else None,
                    scale,
                    entry["psnr_rgb" if ev.color else "psnr_y"],
                    crop,
                    color=ev.color,
                )
        mean, std = summarise(draws_per_image)
        record: dict[str, Any] = {"folder": str(dataset.folder), "count": len(images), "mean": mean}
        if ev.draws > 1:
            record["std"] = std
        record["images"] = images
        report["datasets"][dataset.name] = record
    return report


def evaluate(
    model: Rescaler | str | os.PathLike[str] | None,
    data: Sequence[str | os.PathLike[str]] | None = None,
    *,
    scale: int | None = None,
    z: str = "auto",
    draws: int = 1,
    crop_border: int | None = None,
    y_only: bool = False,
    lpips: bool = False,
    device: str = "auto",
    save_images: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    progress: bool = True,
    names: Mapping[str, str] | None = None,
    baseline: str = "bicubic",
    jpeg: int | None = None,
    use_restorer: bool = True,
    webp: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` (a model name such as ``"x4"`` or ``"sain-x2-jpeg"``, a checkpoint path, or a
    rescaler: :class:`irn.IRN`, SAIN, T-IRN, moved to ``device``), or when it is None the ``baseline``
    ("bicubic", or "grey": the luma as RGB, the baseline of IRN-Color models), on folders of HR images.

    ``data``: image folders (default: :func:`default_data_dirs`); ``scale``: needed for bicubic,
    checked against a model's own; ``z``: ``"auto"`` (the model's ``recommended_z``),
    ``"sample"`` (seeds 0..``draws``-1) or ``"zero"``; ``crop_border``: pixels cut per side before
    scoring (default: the scale; 0 for colour models); ``y_only``: no RGB figures; ``lpips``: also LPIPS;
    ``save_images``: a folder for HR, LR, reconstruction, bicubic and a comparison per image;
    ``model_name``: how the report names the model (default: the name or path given);
    ``jpeg``: store the LR (the model's and bicubic's) as a JPEG of that quality before upscaling (the
    model's compression restoration module, when its file carries one, restores the decoded JPEG
    first unless ``use_restorer`` is False); ``webp``: the same with a WebP (Pillow's lossy WebP), not
    with ``jpeg``;
    ``names``: parameter -> what error messages call it.

    Returns ``{"scale", "method" ("irn" for any model | "bicubic" | "grey"), "model", "arch", "z", "draws",
    "jpeg", "webp", "restorer", "crop_border",
    "device", "datasets": {name: {"folder", "count", "mean", ["std",] "images": [...]}}}``, each
    image ``{"name", "file", "height", "width", "psnr_y", "ssim_y", ...}`` (plus ``"std"`` for
    ``draws`` > 1; ``"grey_psnr"`` in place of ``"lr_psnr_y"`` for a colour model). Raises
    :class:`irn.errors.InputError` (or :class:`irn.CheckpointError`).
    """
    ev = prepare_evaluation(
        model,
        data,
        scale=scale,
        z=z,
        draws=draws,
        crop_border=crop_border,
        y_only=y_only,
        lpips=lpips,
        device=device,
        save_images=save_images,
        model_name=model_name,
        names=names,
        baseline=baseline,
        jpeg=jpeg,
        use_restorer=use_restorer,
        webp=webp,
    )
    return run_evaluation(ev, progress=progress)
