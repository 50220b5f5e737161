"""Every model irn knows by name (plain data, torch-free): the shipped ones, in irn's checkpoints
folder, and the official pretrained files, downloaded on first use into the cache folder.

Each :class:`Pretrained` entry names its architecture (a registry name, :mod:`irn.zoo.registry`), its
scale, what it is for, the latent it decodes best with, its licence and source; a downloadable one
pins its file (:class:`Remote`: repository, commit, path, git blob sha1, size when known). ``irn
models`` prints this table; :func:`irn.zoo.pretrained.resolve` turns a name into a verified file.

Shipped files are looked up, in order, in ``$IRN_CHECKPOINT_DIR``, in ``irn/checkpoints/`` inside an
installed wheel, and in ``checkpoints/`` beside the package in a source checkout
(:func:`checkpoint_dirs`). Downloaded files live in ``<cache>/models/`` (:func:`models_dir`): the cache
folder is ``$IRN_HOME`` if set, else ``$XDG_CACHE_HOME/irn``, else ``~/.cache/irn`` (:func:`cache_dir`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from irn.zoo.transfer import format_bytes, part_path

Purpose = Literal["lossless", "JPEG", "WebP", "colour"]

PROJECT_LICENCE = "Apache-2.0"
SAIN_REPO = "yang-jin-hai/SAIN"
SAIN_COMMIT = "e361d7a0d34b31468f1e47b3e4f181b0e2ca7d46"
SAIN_SOURCE = "SAIN (Yang et al., AAAI 2023), github.com/yang-jin-hai/SAIN"
TIRN_REPO = "Jingwei-Bao/T-InvBlocks"
TIRN_COMMIT = "3590f069420ae2e88d4e2804a4b93c4e3dc5530d"
TIRN_SOURCE = "T-IRN (Bao et al., AAAI 2025), github.com/Jingwei-Bao/T-InvBlocks"
SHIPPED_SOURCE = "this project (irn train), checkpoints/README.md"


@dataclass(frozen=True)
class Remote:
    """A file pinned in a public git repository: fetched from ``url`` (``base``/repo/commit/path, GitHub's
    raw file host) and accepted only if its git blob id (sha1 of ``b"blob <size>\\0"`` + the bytes) is
    ``blob_sha1``; ``size`` in bytes when known."""

    repo: str
    commit: str
    path: str
    blob_sha1: str
    size: int | None = None
    base: str = "https://raw.githubusercontent.com"  # the host serving ``<repo>/<commit>/<path>``

    @property
    def url(self) -> str:
        return f"{self.base}/{self.repo}/{self.commit}/{self.path}"


@dataclass(frozen=True)
class Pretrained:
    """One model by name. ``arch``: its registry architecture; ``purpose``: what its LR is for
    (``lossless``: a PNG LR; ``JPEG``/``WebP``: an LR stored in that lossy format; ``colour``: a grey
    image that restores its colours); ``latent``: the latent it decodes best with (``sample``,
    ``zero``); ``file``: the file name (in the checkpoints folder when shipped, else in the cache);
    ``remote``: where a downloadable file comes from (None: shipped with irn); ``handover``: for a model
    made for a lossy LR, ``(quality, name)`` when the lossless model ``name`` of its scale was measured
    to reconstruct better from ``quality`` up (docs/evaluation.md), which ``irn rescale`` then advises."""

    name: str
    arch: str
    scale: int
    purpose: Purpose
    latent: str
    licence: str
    source: str
    file: str
    remote: Remote | None = None
    note: str = ""
    handover: tuple[int, str] | None = None

    @property
    def shipped(self) -> bool:
        return self.remote is None

    @property
    def url(self) -> str | None:
        return self.remote.url if self.remote is not None else None


def _sain(name: str, scale: int, purpose: Purpose, file: str, blob: str, note: str) -> Pretrained:
    remote = Remote(SAIN_REPO, SAIN_COMMIT, f"experiments/pretrained_models/{file}", blob)
    return Pretrained(name, "sain", scale, purpose, "sample", "Apache-2.0", SAIN_SOURCE, file, remote, note)


def _tirn(name: str, scale: int, file: str, blob: str) -> Pretrained:
    remote = Remote(TIRN_REPO, TIRN_COMMIT, f"experiments/pretrained_TIRN/{file}", blob)
    note = "the T-InvBlock IRN, trained on DIV2K with z = 0"
    return Pretrained(name, "tirn", scale, "lossless", "zero", "Apache-2.0", TIRN_SOURCE, file, remote, note)


#: every model name, shipped first, in the order ``irn models`` lists them
CATALOGUE: tuple[Pretrained, ...] = (
    Pretrained(
        "x2",
        "irn",
        2,
        "lossless",
        "sample",
        PROJECT_LICENCE,
        SHIPPED_SOURCE,
        "irn_x2.pt",
        note="trained on a CPU on SunHays80 + CBSD432",
    ),
    Pretrained(
        "x4",
        "irn",
        4,
        "lossless",
        "sample",
        PROJECT_LICENCE,
        SHIPPED_SOURCE,
        "irn_x4.pt",
        note="trained on a CPU on SunHays80 + CBSD432",
    ),
    Pretrained(
        "color",
        "color",
        1,
        "colour",
        "sample",
        PROJECT_LICENCE,
        SHIPPED_SOURCE,
        "irn_color.pt",
        note="IRN-Color: a grey image that restores its colours (irn color)",
    ),
    Pretrained(
        "x2-jpeg",
        "irn",
        2,
        "JPEG",
        "sample",
        PROJECT_LICENCE,
        SHIPPED_SOURCE,
        "irn_x2_jpeg.pt",
        note="the x2 for an LR stored as a JPEG below quality 90 (from 90 up: x2)",
        # Set5 PSNR-Y, irn eval --jpeg Q: x2-jpeg leads below quality 90, the session-15 x2 from 90 up
        handover=(90, "x2"),
    ),
    _sain(
        "sain-x2-jpeg",
        2,
        "JPEG",
        "SAINx2_JPEG.pth",
        "96647627e347d65aa9004577b3072a0f3079db80",
        "the official SAIN x2 for a JPEG LR, trained on DIV2K",
    ),
    _sain(
        "sain-x2-webp",
        2,
        "WebP",
        "SAINx2_WebP.pth",
        "8ded1d7557e239a1f39e7cd30aa762ccd1012676",
        "the official SAIN x2 for a WebP LR, trained on DIV2K",
    ),
    _sain(
        "sain-x4-jpeg",
        4,
        "JPEG",
        "SAINx4_JPEG.pth",
        "6cbd6b4f992f72a8b06b464ff724c46380631988",
        "the official SAIN x4 for a JPEG LR, trained on DIV2K",
    ),
    _tirn("tirn-x2", 2, "TIRNx2.pth", "35236f32ba0eeae6f922a31e1b6cb7b2332c59a5"),
    _tirn("tirn-x4", 4, "TIRNx4.pth", "cfc9dff89fe6669ff21e71640f1e52047c7340cd"),
)

_BY_NAME = {entry.name: entry for entry in CATALOGUE}
if len(_BY_NAME) != len(CATALOGUE):  # pragma: no cover - a typo in the table above
    raise RuntimeError("two catalogue entries share a name")

#: shipped model names and their file names
SHIPPED: dict[str, str] = {e.name: e.file for e in CATALOGUE if e.shipped}


def names() -> list[str]:
    """Every model name, shipped first."""
    return [e.name for e in CATALOGUE]


def get(name: str) -> Pretrained | None:
    """The entry called ``name``, or None."""
    return _BY_NAME.get(name)


def describe_names() -> str:
    """``shipped models: x2, ...; pretrained, downloaded on first use: sain-x2-jpeg, ...`` (for messages)."""
    shipped = ", ".join(e.name for e in CATALOGUE if e.shipped)
    remote = ", ".join(e.name for e in CATALOGUE if not e.shipped)
    return f"shipped models: {shipped}; pretrained, downloaded on first use: {remote}; irn models lists them"


def checkpoint_dirs() -> list[Path]:
    """Folders searched for shipped models, in order."""
    package = Path(__file__).resolve().parents[1]  # irn/
    dirs = []
    if os.environ.get("IRN_CHECKPOINT_DIR"):
        dirs.append(Path(os.environ["IRN_CHECKPOINT_DIR"]))
    dirs += [package / "checkpoints", package.parent / "checkpoints"]
    return dirs


def shipped_path(entry: Pretrained) -> Path | None:
    """The first shipped file of ``entry`` found in :func:`checkpoint_dirs`, or None."""
    for folder in checkpoint_dirs():
        candidate = folder / entry.file
        if candidate.is_file():
            return candidate
    return None


def cache_dir() -> Path:
    """irn's cache folder: ``$IRN_HOME``, else ``$XDG_CACHE_HOME/irn``, else ``~/.cache/irn``."""
    if os.environ.get("IRN_HOME"):
        return Path(os.environ["IRN_HOME"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "irn"
    return Path.home() / ".cache" / "irn"


def models_dir() -> Path:
    """Where downloaded models live: ``<cache>/models``."""
    return cache_dir() / "models"


def cached_path(entry: Pretrained) -> Path:
    """Where the downloaded file of ``entry`` is kept (whether or not it is there yet)."""
    return models_dir() / entry.file


def local_path(entry: Pretrained) -> Path | None:
    """The file of ``entry`` on this machine (shipped, or downloaded), or None."""
    if entry.shipped:
        return shipped_path(entry)
    path = cached_path(entry)
    return path if path.is_file() else None


def status(entry: Pretrained) -> str:
    """``shipped``, ``cached``, ``partial download (x of y)``, ``not downloaded``, or ``missing`` (a
    shipped file not found)."""
    if entry.shipped:
        return "shipped" if shipped_path(entry) is not None else "missing"
    path = cached_path(entry)
    if path.is_file():
        return "cached"
    part = part_path(path)
    if part.is_file():
        size = entry.remote.size if entry.remote is not None else None
        total = f" of {format_bytes(size)}" if size is not None else ""
        return f"partial download ({format_bytes(part.stat().st_size)}{total})"
    return "not downloaded"


def size_of(entry: Pretrained) -> int | None:
    """The file's size in bytes: on disk when it is there, else the pinned size (None when unknown)."""
    path = local_path(entry)
    if path is not None:
        return path.stat().st_size
    return entry.remote.size if entry.remote is not None else None
