"""Dataset downloads for ``irn data``: a registry of known archives with pinned checksums,
resumable HTTP downloads, checksum verification, and zip extraction that refuses any member
landing outside the target folder.

The flow for one archive (:func:`fetch_archive`), from the parts in :mod:`irn.datasets.registry`
(what to fetch), :mod:`irn.datasets.transfer` (downloading, verifying) and
:mod:`irn.datasets.archive` (extracting):

1. If ``<folder>/.irn-extracted-<archive>`` records the same checksum, the archive was already
   extracted: nothing is done (``force=True`` redoes it).
2. If the archive file is already there (an earlier run with ``keep_archive``, or a manual
   download saved under the expected name) it is used if its size and checksum match; a file that
   does not is left untouched and the run stops, naming it. Otherwise the archive is downloaded to
   ``<archive>.part``. A ``.part`` left by an interrupted run is continued with an HTTP
   ``Range`` request; a server that ignores the range (HTTP 200) restarts it from byte 0.
   Ctrl+C leaves the ``.part`` with what was received (an empty one is removed).
3. The checksum is verified before anything is extracted, and only then does the ``.part`` take the
   archive's name. A mismatch moves the download aside to ``<archive>.bad`` (``.bad.1``, ... if
   taken; the same wrong bytes again are not kept twice) and stops with a message saying so.
4. Every member is checked before the first byte is written: absolute paths, ``..``
   components, symlinks with absolute or ``..`` targets, and members reaching through an
   existing symlink out of the folder make the whole archive refused; so does a member that would
   replace a file that an earlier extraction of the same archive did not write (and that differs
   from the member). The marker lists the members written.

Two irn processes fetching the same archive at once take turns: the second waits on
``<archive>.lock`` (:func:`irn.zoo.transfer.exclusive`, released by the system if the holder dies),
then finds the archive extracted and does nothing.

Network and archive problems raise :class:`irn.errors.IRNError` subclasses with one-line
messages; the CLI prints them as ``irn: error: ...``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from irn.atomic import atomic_write
from irn.datasets.archive import extract_zip, in_progress_path, marker_path, read_marker
from irn.datasets.registry import ArchiveSpec, Checksum, DatasetSpec, count_images, get_dataset, parse_parts
from irn.datasets.transfer import (
    FetchOptions,
    _note,
    check_found_file,
    download_file,
    format_bytes,
    verify_checksum,
)
from irn.errors import IRNError
from irn.zoo.transfer import exclusive, lock_path


@dataclass(frozen=True)
class FetchResult:
    """What happened to one archive: ``status`` is ``"extracted"`` or ``"already extracted"``."""

    url: str
    archive: Path
    folder: Path
    status: str


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
    if not options.force and read_marker(marker)[0] == str(checksum):
        return FetchResult(url, archive, folder, "already extracted")
    waiting = f"waiting for another irn process that is fetching {archive.name} into {folder}"
    with contextlib.ExitStack() as held:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            held.enter_context(exclusive(lock_path(archive), waiting))  # one fetch of an archive at a time
        except OSError as exc:
            raise IRNError(f"cannot write to the dataset folder {folder} ({exc.strerror or exc})") from None
        if not options.force and read_marker(marker)[0] == str(checksum):  # done by the other meanwhile
            return FetchResult(url, archive, folder, "already extracted")
        return _fetch_locked(url, archive, folder, checksum, size, options, marker)


def _fetch_locked(
    url: str, archive: Path, folder: Path, checksum: Checksum, size: int | None, options: FetchOptions, marker: Path
) -> FetchResult:
    """:func:`fetch_archive` under the archive's lock: download or reuse, verify, extract, mark."""
    found = archive.is_file()
    if found:
        _note(f"found {archive}; verifying it instead of downloading")
        check_found_file(archive, checksum, size, progress=options.progress)
    else:
        part = download_file(url, archive, expected_size=size, options=options)
        verify_checksum(part, checksum, progress=options.progress, name=archive.name)
        os.replace(part, archive)  # only a verified archive gets the archive's name
    members = extract_zip(archive, folder, progress=options.progress)
    with atomic_write(marker, "w") as f:
        f.write("".join(f"{line}\n" for line in (str(checksum), *members)))
    in_progress_path(folder, archive.name).unlink(missing_ok=True)
    if not options.keep_archive and not found:  # a file that was there before (yours) stays
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
