"""Checksum verification for ``irn data``, on the one downloader of irn (:mod:`irn.zoo.transfer`).

The resumable HTTP download itself (``<dest>.part``, HTTP ``Range`` resume, retries after a dropped
connection) is :func:`irn.zoo.transfer.download_file`, shared with the pretrained models; its names
are importable from here as before. :func:`verify_checksum` moves a file that does not match its
checksum aside to ``<file>.bad``.
"""

from __future__ import annotations

from pathlib import Path

from irn.datasets.registry import Checksum
from irn.zoo.transfer import (
    CHUNK_BYTES,
    NETWORK_CHUNK_BYTES,
    USER_AGENT,
    ChecksumError,
    DownloadError,
    FetchOptions,
    aside_words,
    file_digest,
    format_bytes,
    free_name,
    note,
    part_path,
    set_aside,
)
from irn.zoo.transfer import download_file as _download_file

__all__ = [
    "CHUNK_BYTES",
    "NETWORK_CHUNK_BYTES",
    "USER_AGENT",
    "ChecksumError",
    "DownloadError",
    "FetchOptions",
    "check_found_file",
    "download_file",
    "file_digest",
    "format_bytes",
    "free_name",
    "part_path",
    "verify_checksum",
]

_note = note


def _manual_hint(url: str, dest: Path) -> str:
    return (
        f"if this machine cannot reach it, download {url} another way, save it as {dest} and rerun "
        "the same command: it verifies and extracts a file found there"
    )


def download_file(url: str, dest: Path, *, expected_size: int | None = None, options: FetchOptions) -> Path:
    """:func:`irn.zoo.transfer.download_file` of an archive: the same resumable download into
    ``dest.part``, its errors ending with how to place the archive by hand (the next run verifies and
    extracts a file found there)."""
    return _download_file(url, dest, expected_size=expected_size, options=options, hint=_manual_hint(url, dest))


def verify_checksum(path: Path, checksum: Checksum, *, progress: bool = False, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` after moving the download ``path`` aside to ``<name>.bad`` (or the
    first free ``.bad.N``; ``name`` defaults to ``path``'s) if it does not match."""
    actual = file_digest(path, checksum.algorithm, progress=progress)
    if actual != checksum.hexdigest:
        shown = name or path.name
        bad, already = set_aside(
            path, path.with_name(shown + ".bad"), actual, lambda p: file_digest(p, checksum.algorithm)
        )
        raise ChecksumError(
            f"{shown} failed verification ({checksum.algorithm} {actual}, expected {checksum.hexdigest}); "
            f"{aside_words(bad, already)}, nothing was extracted; rerun to download it again"
        )


def check_found_file(path: Path, checksum: Checksum, size: int | None, *, progress: bool = False) -> None:
    """A file found under the archive's name (a manual download, or one kept by ``--keep-archives``) is
    used only if it is the archive: its size (when known) and then its checksum must match. Otherwise it
    is left as it is and the run stops, naming it."""
    actual_size = path.stat().st_size
    why = None
    if size is not None and actual_size != size:
        why = f"it is {actual_size} bytes, the archive is {size}"
    else:
        actual = file_digest(path, checksum.algorithm, progress=progress)
        if actual != checksum.hexdigest:
            why = f"its {checksum.algorithm} is {actual}, expected {checksum.hexdigest}"
    if why is not None:
        raise ChecksumError(
            f"{path} is not the archive ({why}); it was left untouched and nothing was extracted: "
            "move it away (or delete it) and rerun to download the archive"
        )
