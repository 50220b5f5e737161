"""Dataset downloads for ``irn data``: a registry of known archives with pinned checksums,
resumable HTTP downloads, checksum verification, and zip extraction that refuses any member
landing outside the target folder.

The flow for one archive (:func:`fetch_archive`):

1. If ``<folder>/.irn-extracted-<archive>`` records the same checksum, the archive was already
   extracted: nothing is done (``force=True`` redoes it).
2. If the archive file is already there (an earlier run with ``keep_archive``, or a manual
   download saved under the expected name) it is used; otherwise it is downloaded to
   ``<archive>.part``. A ``.part`` left by an interrupted run is continued with an HTTP
   ``Range`` request; a server that ignores the range (HTTP 200) restarts it from byte 0.
3. The checksum is verified before anything is extracted. A mismatch moves the file aside to
   ``<archive>.bad`` and stops with a message saying so.
4. Every member is checked before the first byte is written: absolute paths, ``..``
   components, symlinks with absolute or ``..`` targets, and members reaching through an
   existing symlink out of the folder make the whole archive refused.

Network and archive problems raise :class:`irn.errors.IRNError` subclasses with one-line
messages; the CLI prints them as ``irn: error: ...``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from irn._version import __version__
from irn.errors import IRNError

CHUNK_BYTES = 1 << 20
USER_AGENT = f"irn/{__version__} (dataset downloader; +https://data.vision.ee.ethz.ch/cvl/DIV2K/)"
MARKER_PREFIX = ".irn-extracted-"
_HEX_LENGTHS = {"sha256": 64, "md5": 32}


class DownloadError(IRNError):
    """The archive could not be fetched (host unreachable, HTTP error, interrupted transfer)."""


class ChecksumError(IRNError):
    """The downloaded file does not match its pinned checksum (it has been moved aside)."""


class UnsafeArchiveError(IRNError):
    """The archive has a member that would land outside the target folder (nothing was written)."""


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


@dataclass(frozen=True)
class FetchOptions:
    """How to fetch: ``retries`` automatic resumes after a dropped connection (waiting
    ``retry_delay * 2**k`` s), ``timeout`` seconds per socket operation, whether to keep the
    archive after extraction, re-extract even if done (``force``), and show progress bars."""

    retries: int = 3
    retry_delay: float = 1.0
    timeout: float = 60.0
    keep_archive: bool = False
    force: bool = False
    progress: bool = True


@dataclass(frozen=True)
class FetchResult:
    """What happened to one archive: ``status`` is ``"extracted"`` or ``"already extracted"``."""

    url: str
    archive: Path
    folder: Path
    status: str


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


def format_bytes(count: float) -> str:
    """``3530603713 -> '3.53 GB'`` (powers of 1000, as tqdm shows them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _note(message: str) -> None:
    print(f"irn: {message}", file=sys.stderr, flush=True)


def _manual_hint(url: str, dest: Path) -> str:
    return (
        f"if this machine cannot reach it, download {url} another way, save it as {dest} and rerun "
        "the same command: it verifies and extracts a file found there"
    )


class _Interrupted(Exception):
    """The transfer stopped before the end; the bytes so far are in the ``.part`` file."""

    def __init__(self, done: int, total: int | None, reason: str) -> None:
        super().__init__(reason)
        self.done = done
        self.total = total
        self.reason = reason


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``'bytes 100-199/200' -> (100, 200)``; ``'bytes */200' -> (None, 200)``."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", header or "")
    if match is None:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _transfer(url: str, part: Path, dest: Path, expected_size: int | None, options: FetchOptions) -> bool:
    """One HTTP request appending to (or restarting) ``part``. True when the file is complete,
    False when ``part`` was discarded and the caller should request again from byte 0."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=options.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _, total = _content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return True
            _note(f"the server cannot resume {part.name} at byte {offset} (HTTP 416); starting over")
            part.unlink()
            return False
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; {_manual_hint(url, dest)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(f"cannot reach {url} ({reason}); {_manual_hint(url, dest)}") from None

    with response:
        status = getattr(response, "status", None) or 200
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.strip().isdigit() else None
        if offset and status == 206:
            start, _ = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                _note(f"the server resumed {part.name} at the wrong byte ({start}, not {offset}); starting over")
                part.unlink()
                return False
            mode = "ab"
        else:
            if offset:
                _note(f"the server ignored the resume request (HTTP {status}); restarting {part.name} from byte 0")
            offset = 0
            mode = "wb"
        total = offset + length if length is not None else expected_size
        if expected_size is not None and length is not None and total != expected_size:
            raise DownloadError(
                f"{url} is {total} bytes but {dest.name} should be {expected_size} bytes: this server or "
                "mirror does not serve the expected file"
            )
        done = offset
        with (
            part.open(mode) as sink,
            tqdm(
                total=total,
                initial=offset,
                desc=dest.name,
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                disable=not options.progress,
                dynamic_ncols=True,
                mininterval=0.5,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:  # only network errors are resumable
                    raise _Interrupted(done, total, str(exc) or type(exc).__name__) from exc
                if not chunk:
                    break
                sink.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
        if total is not None and done < total:
            raise _Interrupted(done, total, "the connection closed early")
    return True


def download_file(url: str, dest: Path, *, expected_size: int | None = None, options: FetchOptions) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a ``.part`` left by an earlier
    run with an HTTP Range request, and retrying a dropped connection ``options.retries`` times.
    Returns ``dest``; on failure the ``.part`` file stays for the next run to continue."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None and offset > expected_size:
            _note(f"{part} is larger than the expected {expected_size} bytes; starting over")
            part.unlink()
            offset = 0
        if expected_size is not None and offset == expected_size and offset > 0:
            break
        if offset:
            _note(f"resuming {dest.name} at {format_bytes(offset)}")
        try:
            if _transfer(url, part, dest, expected_size, options):
                break
        except _Interrupted as exc:
            failures += 1
            so_far = format_bytes(exc.done) + (f" of {format_bytes(exc.total)}" if exc.total is not None else "")
            if failures > options.retries:
                raise DownloadError(
                    f"download of {url} stopped at {so_far} ({exc.reason}); rerun the same command to resume "
                    f"from {part}"
                ) from None
            delay = min(options.retry_delay * 2 ** (failures - 1), 30.0)
            retry = f"retry {failures}/{options.retries}"
            _note(f"download stopped at {so_far} ({exc.reason}); resuming in {delay:g} s ({retry})")
            time.sleep(delay)
    os.replace(part, dest)
    return dest


def file_digest(path: Path, algorithm: str, *, progress: bool = False) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with (
        path.open("rb") as source,
        tqdm(
            total=path.stat().st_size,
            desc=f"verifying {path.name}",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
            mininterval=0.5,
        ) as bar,
    ):
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: Checksum, *, progress: bool = False) -> None:
    """Raise :class:`ChecksumError` after moving ``path`` aside to ``<path>.bad`` if it does not match."""
    actual = file_digest(path, checksum.algorithm, progress=progress)
    if actual != checksum.hexdigest:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        raise ChecksumError(
            f"{path.name} failed verification ({checksum.algorithm} {actual}, expected {checksum.hexdigest}); "
            f"moved it aside to {bad}, nothing was extracted; rerun to download it again"
        )


@dataclass(frozen=True)
class _PlannedMember:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    kind: Literal["file", "dir", "symlink"]
    link_target: str | None


def _is_within(path: str, root: str) -> bool:
    return path == root or os.path.commonpath([path, root]) == root


def _member_problem(name: str) -> tuple[tuple[str, ...], str | None]:
    """The member's path components, and why it is unsafe (None when it is not)."""
    normalised = name.replace("\\", "/")
    parts = tuple(piece for piece in normalised.split("/") if piece not in ("", "."))
    if normalised.startswith("/") or re.match(r"[A-Za-z]:", normalised):
        return parts, "absolute path"
    if ".." in parts:
        return parts, "'..' in the path"
    return parts, None


def plan_extraction(archive: zipfile.ZipFile, root: Path) -> list[_PlannedMember]:
    """Check every member of ``archive`` against ``root`` without writing anything.

    Raises :class:`UnsafeArchiveError` naming the offending members if any would land outside
    ``root``: an absolute path, a ``..`` component, a symlink whose target is absolute or has
    ``..`` (it could point out directly or through another link), a symlink that other members
    would be written through, or a path that reaches out through a symlink already on disk.
    """
    root_real = os.path.realpath(root)
    planned: list[_PlannedMember] = []
    problems: list[str] = []
    for info in archive.infolist():
        parts, problem = _member_problem(info.filename)
        is_link = info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)
        target: str | None = None
        if problem is None and is_link:
            target = archive.read(info).decode("utf-8", "surrogateescape")
            target_normalised = target.replace("\\", "/")
            if target_normalised.startswith("/") or re.match(r"[A-Za-z]:", target_normalised):
                problem = f"symlink to the absolute path {target!r}"
            elif ".." in target_normalised.split("/"):
                problem = f"symlink to {target!r} (link targets may not contain '..')"
        if problem is None and parts:
            destination = os.path.join(root_real, *parts)
            parent_real = os.path.realpath(os.path.dirname(destination))
            if not _is_within(parent_real, root_real):
                problem = f"reaches outside through the existing symlink at {os.path.dirname(destination)}"
            elif not is_link and os.path.islink(destination) and not info.is_dir():
                real = os.path.realpath(destination)
                if not _is_within(real, root_real):
                    problem = f"would overwrite through the existing symlink {destination}"
            elif is_link and os.path.isdir(destination) and not os.path.islink(destination):
                problem = f"symlink would replace the existing folder {destination}"
        if problem is not None:
            problems.append(f"{info.filename!r} ({problem})")
            continue
        if not parts:
            continue
        kind: Literal["file", "dir", "symlink"] = "symlink" if is_link else ("dir" if info.is_dir() else "file")
        planned.append(_PlannedMember(info, parts, kind, target))
    link_paths = {member.parts for member in planned if member.kind == "symlink"}
    for member in planned:
        for depth in range(1, len(member.parts)):
            if member.parts[:depth] in link_paths:
                problems.append(
                    f"{member.info.filename!r} (written through the symlink member {'/'.join(member.parts[:depth])!r})"
                )
                break
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise UnsafeArchiveError(
            f"refusing to extract {Path(archive.filename or '?').name} into {root}: {len(problems)} unsafe "
            f"member(s): {shown}; nothing was extracted"
        )
    return planned


def extract_zip(path: Path, root: Path, *, progress: bool = False) -> int:
    """Extract the zip at ``path`` into ``root`` after :func:`plan_extraction` accepted every
    member. Files are written atomically (temporary file, then rename); symlinks are created
    last. Returns the number of files and links written."""
    if not zipfile.is_zipfile(path):
        raise IRNError(f"{path} is not a zip archive")
    root_real = os.path.realpath(root)
    written = 0
    try:
        with zipfile.ZipFile(path) as archive:
            planned = plan_extraction(archive, root)
            root.mkdir(parents=True, exist_ok=True)
            files = [member for member in planned if member.kind == "file"]
            with tqdm(
                total=sum(member.info.file_size for member in files),
                desc=f"extracting {path.name}",
                unit="B",
                unit_scale=True,
                file=sys.stderr,
                disable=not progress,
                dynamic_ncols=True,
                mininterval=0.5,
            ) as bar:
                for member in planned:
                    destination = Path(root_real, *member.parts)
                    if member.kind == "dir":
                        destination.mkdir(parents=True, exist_ok=True)
                    elif member.kind == "file":
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        if not _is_within(os.path.realpath(destination.parent), root_real):
                            raise UnsafeArchiveError(f"refusing to write {member.info.filename!r} outside {root}")
                        _write_member(archive, member.info, destination, bar)
                        written += 1
            for member in planned:
                if member.kind == "symlink" and member.link_target is not None:
                    destination = Path(root_real, *member.parts)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    if destination.is_symlink() or destination.is_file():
                        destination.unlink()
                    os.symlink(member.link_target, destination)
                    written += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise IRNError(f"{path} is a damaged zip archive ({exc})") from None
    except OSError as exc:
        raise IRNError(f"extracting {path} into {root} failed: {exc}") from None
    return written


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, bar: tqdm) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    try:
        with os.fdopen(handle, "wb") as sink, archive.open(info) as source:
            while chunk := source.read(CHUNK_BYTES):
                sink.write(chunk)
                bar.update(len(chunk))
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
        modified = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(destination, (modified, modified))
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def marker_path(folder: Path, archive_name: str) -> Path:
    """``<folder>/.irn-extracted-<archive>``: written after a verified, complete extraction."""
    return folder / f"{MARKER_PREFIX}{archive_name}"


def fetch_archive(
    url: str,
    archive: Path,
    folder: Path,
    checksum: Checksum,
    *,
    size: int | None = None,
    options: FetchOptions,
) -> FetchResult:
    """Download (or reuse) ``archive`` from ``url``, verify ``checksum``, extract into ``folder``,
    record the marker, and delete the archive unless ``options.keep_archive``."""
    marker = marker_path(folder, archive.name)
    if not options.force and marker.is_file() and marker.read_text().strip() == str(checksum):
        return FetchResult(url, archive, folder, "already extracted")
    if archive.is_file():
        _note(f"found {archive}; verifying it instead of downloading")
    else:
        download_file(url, archive, expected_size=size, options=options)
    verify_checksum(archive, checksum, progress=options.progress)
    extract_zip(archive, folder, progress=options.progress)
    marker.write_text(f"{checksum}\n")
    if not options.keep_archive:
        archive.unlink()
    return FetchResult(url, archive, folder, "extracted")


def download_dataset(
    name: str,
    root: Path,
    *,
    parts: str | Sequence[str] | None = None,
    base_url: str | None = None,
    options: FetchOptions,
) -> list[FetchResult]:
    """Fetch the chosen parts of a registered dataset into ``root/<dataset folder>``, e.g.
    ``download_dataset("div2k", Path("datasets"))`` -> ``datasets/DIV2K/DIV2K_train_HR/0001.png``..."""
    spec = get_dataset(name)
    folder = root / spec.folder
    results = []
    for archive in parse_parts(spec, parts):
        url = spec.url(archive, base_url)
        results.append(
            fetch_archive(url, folder / archive.filename, folder, archive.checksum, size=archive.size, options=options)
        )
    return results


def archive_name_from_url(url: str) -> str:
    """The file name at the end of ``url``'s path (percent-decoded); refused if it is not a plain name."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https", "file"):
        raise IRNError(f"{url!r} is not an http(s) or file URL")
    name = urllib.parse.unquote(posixpath.basename(parsed.path))
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise IRNError(f"cannot tell the archive's file name from {url!r}")
    return name


def download_url(
    url: str, root: Path, checksum: Checksum, *, size: int | None = None, options: FetchOptions
) -> FetchResult:
    """Fetch a zip from any URL, verify it against ``checksum`` and extract it into ``root``."""
    return fetch_archive(url, root / archive_name_from_url(url), root, checksum, size=size, options=options)


def count_images(folder: Path) -> int:
    """Number of ``*.png`` files directly in ``folder`` (0 if it does not exist)."""
    return sum(1 for _ in folder.glob("*.png")) if folder.is_dir() else 0


def archive_status(spec: DatasetSpec, archive: ArchiveSpec, root: Path) -> str:
    """``"extracted"``, ``"present (N PNG)"``, ``"archive downloaded"``, ``"partial download (x of y)"``
    or ``"missing"`` for one archive under ``root``."""
    folder = root / spec.folder
    if marker_path(folder, archive.filename).is_file():
        return "extracted"
    found = count_images(folder / archive.contents)
    if found:
        return f"present ({found} PNG)"
    if (folder / archive.filename).is_file():
        return "archive downloaded"
    part = folder / (archive.filename + ".part")
    if part.is_file():
        total = f" of {format_bytes(archive.size)}" if archive.size is not None else ""
        return f"partial download ({format_bytes(part.stat().st_size)}{total})"
    return "missing"
