"""Training and validation data for IRN.

Training samples are random HR crops (patch x patch, uint8 (3, P, P)) from a folder of
images (searched recursively), with flips and 90-degree rotations. Sample ``i`` is a pure
function of (seed, i): which image, where, which augmentation. The batch sampler starts
at the run's global step, so a resumed run sees exactly the batches an uninterrupted run
would have seen, on every rank. The bicubic LR reference is made on the training device
(:func:`irn.imaging.resize.imresize`), not here, but from the context the official code gives it:
the official data loader downscales the *whole* training image and crops the patch's part of that LR,
so next to the patch border the target sees the pixels outside the patch. A training sample is
therefore the patch plus a :func:`target_margin` of context on every side (mirrored at the image
border as MATLAB's ``imresize`` mirrors it), at a place aligned to the scale; the training step
downscales it and keeps the patch's part, which equals the crop of the whole image's bicubic LR
(tests/train/test_training.py checks it).

Validation images are whole HR images modcropped (top-left) to a multiple of the scale,
float32 (3, H, W) in [0, 1], batch size 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from irn.errors import IRNError
from irn.imaging.io import IMAGE_SUFFIXES, check_output_path, read_image
from irn.train.config import ConfigError, DataConfig, TrainConfig
from irn.zoo import CheckpointError, resolve


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by path."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_uint8(path: Path) -> Tensor:
    """An image file as a uint8 (3, H, W) tensor (any mode converted to RGB), turned upright by its
    EXIF orientation as :func:`irn.imaging.io.read_image` does (so training, validation and ``irn eval`` see
    the same pixels)."""
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return (read_image(path) * 255).round().to(torch.uint8)
        if int(im.getexif().get(0x0112, 1) or 1) != 1:
            im = ImageOps.exif_transpose(im)
        if im.mode != "RGB":
            im = im.convert("RGB")
        arr = np.asarray(im, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def check_paths(cfg: TrainConfig) -> None:
    """Checks that need the file system: data folders exist and hold images, the run folder can be one."""
    try:
        check_output_path(cfg.trainer.run_dir, "trainer.run_dir", folder=True)
    except IRNError as exc:
        raise ConfigError(str(exc)) from None

    for key, folder in (("data.train_dir", cfg.data.train_dir), ("data.val_dir", cfg.data.val_dir)):
        if folder is None:
            continue
        path = Path(folder)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{key}: {folder!r} is a file; give the folder of training images")
        if not path.is_dir():
            raise ConfigError(f"{key}: folder {folder!r} does not exist (relative paths resolve against {Path.cwd()})")
        if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.rglob("*") if p.is_file()):
            raise ConfigError(f"{key}: folder {folder!r} holds no images")
    if cfg.data.val_dir is not None:
        _check_validation_sizes(Path(cfg.data.val_dir), cfg.model.scale, cfg.data.val_max_images)
    if cfg.model.init_from is not None:
        try:
            resolve(cfg.model.init_from)  # a shipped name (x2, x4, ...) or a file
        except CheckpointError as exc:
            raise ConfigError(f"model.init_from: {exc}") from None


def _check_validation_sizes(folder: Path, scale: int, max_images: int | None) -> None:
    """Validation modcrops each image to the scale and crops ``scale`` px per side before PSNR-Y:
    an image under 3 x scale px a side would fail at the first validation, after the run started."""
    need = 3 * scale
    for path in list_images(folder)[:max_images]:  # the images validation uses (irn.train.data.FolderImages)
        try:
            with Image.open(path) as im:
                w, h = im.size
        except Exception:  # noqa: BLE001 - any reason a header cannot be read
            raise ConfigError(f"data.val_dir: {path} is not a readable image") from None
        if min(h - h % scale, w - w % scale) < need:
            raise ConfigError(
                f"data.val_dir: {path} is {w}x{h}, too small to validate at scale {scale} "
                f"(needs at least {need}x{need}: a {scale} px border is cropped per side)"
            )


def target_margin(kind: str, scale: int) -> int:
    """Context (HR pixels per side) a training patch needs for its bicubic LR target to equal the crop
    of the whole image's: MATLAB's antialiased bicubic at 1/s reads about 1.5 s + 0.5 pixels beyond an
    output pixel's footprint, so 2 s (a multiple of s, which keeps the LR grid aligned) covers it. A
    colour model's target (the luma) is per pixel: none."""
    return 0 if kind == "color" else 2 * scale


def _mirror(start: int, stop: int, size: int) -> Tensor:
    """Indices ``start .. stop - 1`` folded into ``0 .. size - 1`` by symmetric reflection (the edge pixel
    repeated, as MATLAB's ``imresize`` and numpy's ``symmetric`` padding extend an image)."""
    idx = np.arange(start, stop)
    period = 2 * size
    idx = np.mod(idx, period)
    idx = np.where(idx >= size, period - 1 - idx, idx)
    return torch.from_numpy(idx)


def random_patch(
    image: Tensor, patch: int, rng: np.random.Generator, augment: bool, margin: int = 0, align: int = 1
) -> Tensor:
    """A (C, patch + 2 margin, patch + 2 margin) crop of ``image`` (C, H, W) at a random place: the patch
    and ``margin`` pixels of context on every side, mirrored beyond the image border.

    The patch's top-left corner is a multiple of ``align`` (the scale: the patch's LR pixels are then
    pixels of the whole image's LR, as in the official loader, which crops the LR at random and the HR at
    ``scale`` times that place). Images smaller than the patch are mirror-padded (symmetric) first. With
    ``augment``: random horizontal flip, vertical flip and transpose (the 8 dihedral transforms) of the
    whole crop, which keep the patch centred.
    """
    _, h, w = image.shape
    if h < patch or w < patch:
        ph, pw = max(0, patch - h), max(0, patch - w)
        arr = np.pad(image.numpy(), ((0, 0), (0, ph), (0, pw)), mode="symmetric")
        image = torch.from_numpy(arr)
        _, h, w = image.shape
    top = align * int(rng.integers(0, (h - patch) // align + 1))
    left = align * int(rng.integers(0, (w - patch) // align + 1))
    if margin:
        rows = _mirror(top - margin, top + patch + margin, h)
        cols = _mirror(left - margin, left + patch + margin, w)
        crop = image.index_select(1, rows).index_select(2, cols)
    else:
        crop = image[:, top : top + patch, left : left + patch]
    if augment:
        flips = rng.integers(0, 2, size=3)
        if flips[0]:
            crop = crop.flip(-1)
        if flips[1]:
            crop = crop.flip(-2)
        if flips[2]:
            crop = crop.transpose(-1, -2)
    return crop.contiguous()


class PatchDataset(Dataset[Tensor]):
    """Index ``i`` -> uint8 (3, patch + 2 margin, patch + 2 margin) crop, determined by (seed, i); see
    :func:`random_patch`."""

    def __init__(
        self,
        folder: str | Path,
        patch: int,
        seed: int = 0,
        augment: bool = True,
        cache: bool = True,
        margin: int = 0,
        align: int = 1,
    ) -> None:
        self.paths = list_images(folder)
        if not self.paths:
            raise FileNotFoundError(f"no images under {folder}")
        self.patch = patch
        self.seed = seed
        self.augment = augment
        self.margin = margin
        self.align = align
        self.images: list[Tensor] | None = [read_uint8(p) for p in self.paths] if cache else None

    def __len__(self) -> int:
        return 2**62

    def image(self, k: int) -> Tensor:
        return self.images[k] if self.images is not None else read_uint8(self.paths[k])

    def __getitem__(self, index: int) -> Tensor:
        rng = np.random.default_rng([self.seed, index])
        k = int(rng.integers(0, len(self.paths)))
        return random_patch(self.image(k), self.patch, rng, self.augment, self.margin, self.align)


class StepBatchSampler(Sampler[list[int]]):
    """Batches for global steps ``start_step .. total_steps - 1`` of one rank.

    Batch of step ``t`` on rank ``r`` holds samples ``((t * world + r) * B + k)``, k < B, so
    the data depend only on the step, never on how many times the run was resumed.
    ``len`` is ``total_steps`` (the whole run is one epoch).
    """

    def __init__(self, batch_size: int, start_step: int, total_steps: int, rank: int = 0, world: int = 1) -> None:
        self.batch_size = batch_size
        self.start_step = start_step
        self.total_steps = total_steps
        self.rank = rank
        self.world = world

    def __len__(self) -> int:
        return self.total_steps

    def __iter__(self) -> Iterator[list[int]]:
        b = self.batch_size
        for step in range(self.start_step, self.total_steps):
            first = (step * self.world + self.rank) * b
            yield list(range(first, first + b))


def modcrop(x: Tensor, scale: int) -> Tensor:
    """Crop (..., H, W) top-left to multiples of ``scale``."""
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]


class FolderImages(Dataset[tuple[Tensor, str]]):
    """Whole images of a folder: (float (3, H, W) in [0, 1] modcropped to ``scale``, name)."""

    def __init__(self, folder: str | Path, scale: int, max_images: int | None = None) -> None:
        self.paths = list_images(folder)[:max_images]
        self.scale = scale
        self.images = [modcrop(read_uint8(p), scale) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Tensor, str]:
        return self.images[index].float() / 255.0, self.paths[index].stem


class IRNDataModule(L.LightningDataModule):
    """Training crops and validation images; see the module docstring."""

    def __init__(
        self, config: DataConfig, scale: int, seed: int = 0, max_steps: int = 500000, kind: str = "haar"
    ) -> None:
        super().__init__()
        self.config = config
        self.scale = scale
        self.kind = kind
        self.seed = seed
        self.max_steps = max_steps
        self.train_set: PatchDataset | None = None
        self.val_set: FolderImages | None = None

    def setup(self, stage: str | None = None) -> None:
        c = self.config
        if stage in (None, "fit") and self.train_set is None:
            margin = target_margin(self.kind, self.scale)
            self.train_set = PatchDataset(
                c.train_dir, c.patch_size, self.seed, c.augment, c.cache, margin=margin, align=self.scale
            )
        if stage in (None, "fit", "validate") and c.val_dir is not None and self.val_set is None:
            self.val_set = FolderImages(c.val_dir, self.scale, c.val_max_images)

    def train_dataloader(self) -> DataLoader[Tensor]:
        assert self.train_set is not None
        trainer = self.trainer
        start = trainer.global_step if trainer is not None else 0
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        sampler = StepBatchSampler(self.config.batch_size, start, self.max_steps, rank, world)
        workers = self.config.num_workers
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> DataLoader[tuple[Tensor, str]] | list[object]:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=1, shuffle=False, num_workers=0)
