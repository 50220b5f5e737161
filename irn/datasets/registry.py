"""The datasets ``irn data`` knows: archive and dataset specs with pinned checksums, the DIV2K
entries, the evaluation sets prepared by hand, and looking them up (:func:`get_dataset`,
:func:`parse_parts`).

Downloading is :mod:`irn.datasets.transfer`, extraction :mod:`irn.datasets.archive`, and the
flow that ties them together :mod:`irn.datasets.download`.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from irn.errors import IRNError

_HEX_LENGTHS = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class Checksum:
    """A file digest: ``algorithm`` is ``"sha256"`` or ``"md5"``, ``hexdigest`` lower-case hex."""

    algorithm: Literal["sha256", "md5"]
    hexdigest: str

    def __post_init__(self) -> None:
        length = _HEX_LENGTHS.get(self.algorithm)
        if length is None:
            raise IRNError(f"unknown checksum algorithm {self.algorithm!r}; use sha256 or md5")
        if not re.fullmatch(f"[0-9a-f]{{{length}}}", self.hexdigest):
            raise IRNError(f"a {self.algorithm} checksum is {length} hex digits, got {self.hexdigest!r}")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


@dataclass(frozen=True)
class ArchiveSpec:
    """One downloadable zip of a dataset.

    ``contents`` is the folder the archive creates inside the dataset folder and
    ``num_images`` the number of PNGs in it; ``size`` is the archive's size in bytes.
    """

    part: str
    filename: str
    checksum: Checksum
    size: int | None
    contents: str
    num_images: int
    description: str


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset that ``irn data download`` can fetch: ``<root>/<folder>/<archive contents>``."""

    name: str
    title: str
    homepage: str
    base_url: str
    env_var: str
    folder: str
    archives: tuple[ArchiveSpec, ...]
    default_parts: tuple[str, ...]
    checksum_source: str

    def archive(self, part: str) -> ArchiveSpec:
        for spec in self.archives:
            if spec.part == part:
                return spec
        known = ", ".join(spec.part for spec in self.archives)
        raise IRNError(f"{self.name} has no part {part!r}; known parts: {known} (or 'all')")

    def url(self, spec: ArchiveSpec, base_url: str | None = None) -> str:
        """The archive's URL: ``base_url`` (a mirror), else ``$<env_var>``, else the official base."""
        base = base_url or os.environ.get(self.env_var) or self.base_url
        return base.rstrip("/") + "/" + urllib.parse.quote(spec.filename)


@dataclass(frozen=True)
class ManualDataset:
    """A dataset that is prepared by hand (no stable official archive to pin)."""

    name: str
    folder: str
    description: str
    source: str


def _div2k_archive(
    part: str, filename: str, sha256: str, size: int, contents: str, num_images: int, description: str
) -> ArchiveSpec:
    return ArchiveSpec(part, filename, Checksum("sha256", sha256), size, contents, num_images, description)


#: DIV2K (Agustsson & Timofte, NTIRE 2017). Sizes and SHA-256 of the official archives as
#: recorded by TensorFlow Datasets (tensorflow_datasets/datasets/div2k/checksums.tsv).
DIV2K = DatasetSpec(
    name="div2k",
    title="DIV2K: 800 training + 100 validation 2K images (NTIRE 2017)",
    homepage="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
    base_url="https://data.vision.ee.ethz.ch/cvl/DIV2K/",
    env_var="IRN_DIV2K_BASE_URL",
    folder="DIV2K",
    archives=(
        _div2k_archive(
            "train_hr",
            "DIV2K_train_HR.zip",
            "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
            3530603713,
            "DIV2K_train_HR",
            800,
            "training HR images 0001-0800",
        ),
        _div2k_archive(
            "valid_hr",
            "DIV2K_valid_HR.zip",
            "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
            448993893,
            "DIV2K_valid_HR",
            100,
            "validation HR images 0801-0900",
        ),
        _div2k_archive(
            "train_lr_x2",
            "DIV2K_train_LR_bicubic_X2.zip",
            "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",
            925390592,
            "DIV2K_train_LR_bicubic/X2",
            800,
            "training LR, MATLAB bicubic x2",
        ),
        _div2k_archive(
            "valid_lr_x2",
            "DIV2K_valid_LR_bicubic_X2.zip",
            "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",
            117763600,
            "DIV2K_valid_LR_bicubic/X2",
            100,
            "validation LR, MATLAB bicubic x2",
        ),
        _div2k_archive(
            "train_lr_x3",
            "DIV2K_train_LR_bicubic_X3.zip",
            "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",
            427847282,
            "DIV2K_train_LR_bicubic/X3",
            800,
            "training LR, MATLAB bicubic x3",
        ),
        _div2k_archive(
            "valid_lr_x3",
            "DIV2K_valid_LR_bicubic_X3.zip",
            "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",
            54513392,
            "DIV2K_valid_LR_bicubic/X3",
            100,
            "validation LR, MATLAB bicubic x3",
        ),
        _div2k_archive(
            "train_lr_x4",
            "DIV2K_train_LR_bicubic_X4.zip",
            "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
            246914039,
            "DIV2K_train_LR_bicubic/X4",
            800,
            "training LR, MATLAB bicubic x4",
        ),
        _div2k_archive(
            "valid_lr_x4",
            "DIV2K_valid_LR_bicubic_X4.zip",
            "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
            31505881,
            "DIV2K_valid_LR_bicubic/X4",
            100,
            "validation LR, MATLAB bicubic x4",
        ),
        _div2k_archive(
            "train_lr_x8",
            "DIV2K_train_LR_x8.zip",
            "706fa23164fa0756a3accb78e69b937ea47f882b47e13506895deefd623a35c2",
            65753171,
            "DIV2K_train_LR_x8",
            800,
            "training LR, bicubic x8",
        ),
        _div2k_archive(
            "valid_lr_x8",
            "DIV2K_valid_LR_x8.zip",
            "3432f23da7c6887acc5e2cde9669427a7710b3b256c58912dddc19e3eda5bc69",
            8428103,
            "DIV2K_valid_LR_x8",
            100,
            "validation LR, bicubic x8",
        ),
    ),
    default_parts=("train_hr", "valid_hr"),
    checksum_source="SHA-256 and sizes of the official archives, as recorded by TensorFlow Datasets",
)

#: Datasets ``irn data download`` knows by name.
DATASETS: dict[str, DatasetSpec] = {DIV2K.name: DIV2K}

#: Evaluation sets prepared by hand (see datasets/README.md).
MANUAL_DATASETS: tuple[ManualDataset, ...] = (
    ManualDataset(
        "set5",
        "Set5/HR",
        "Set5: 5 HR PNGs (baby, bird, butterfly, head, woman)",
        "the HR images of a super-resolution benchmark bundle (e.g. benchmark/Set5/HR/ in EDSR's "
        "benchmark.tar); copy the 5 PNGs",
    ),
    ManualDataset(
        "set14",
        "Set14/HR",
        "Set14: 14 HR PNGs (baboon ... zebra)",
        "the same bundles (benchmark/Set14/HR/); copy the 14 PNGs",
    ),
)


def get_dataset(name: str) -> DatasetSpec:
    spec = DATASETS.get(name.lower())
    if spec is None:
        raise IRNError(
            f"unknown dataset {name!r}; known: {', '.join(DATASETS)} (or give the URL of a zip archive "
            "with --sha256/--md5); see `irn data list`"
        )
    return spec


def parse_parts(spec: DatasetSpec, parts: str | Sequence[str] | None) -> tuple[ArchiveSpec, ...]:
    """``None`` -> the default parts; ``"all"``; or a comma-separated list / sequence of part names."""
    if parts is None:
        names: list[str] = list(spec.default_parts)
    else:
        raw = parts.split(",") if isinstance(parts, str) else list(parts)
        names = [name.strip() for name in raw if name.strip()]
        if names == ["all"]:
            names = [archive.part for archive in spec.archives]
        if not names:
            raise IRNError("--parts is empty; give part names separated by commas, or 'all'")
    unique = list(dict.fromkeys(names))
    return tuple(spec.archive(name) for name in unique)


def count_images(folder: Path) -> int:
    """Number of ``*.png`` files directly in ``folder`` (0 if it does not exist)."""
    return sum(1 for _ in folder.glob("*.png")) if folder.is_dir() else 0
