"""Resumable HTTP downloads and checksum verification for ``irn data``.

:func:`download_file` downloads to ``<dest>.part``; a ``.part`` left by an interrupted run is
continued with an HTTP ``Range`` request, and a server that ignores the range (HTTP 200)
restarts it from byte 0. A dropped connection is resumed ``FetchOptions.retries`` times.
:func:`verify_checksum` moves a file that does not match its checksum aside to ``<file>.bad``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from irn._version import __version__
from irn.datasets.registry import Checksum
from irn.errors import IRNError
from irn.progress import byte_bar

CHUNK_BYTES = 1 << 20  # bytes read at a time from a file being verified
NETWORK_CHUNK_BYTES = 64 << 10  # bytes read at a time from the network (progress and Ctrl+C at this grain)
USER_AGENT = f"irn/{__version__} (dataset downloader; +https://data.vision.ee.ethz.ch/cvl/DIV2K/)"


class DownloadError(IRNError):
    """The archive could not be fetched (host unreachable, HTTP error, interrupted transfer)."""


class ChecksumError(IRNError):
    """The downloaded file does not match its pinned checksum (it has been moved aside)."""


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
            byte_bar(total, dest.name, options.progress, initial=offset) as bar,
        ):
            while True:
                try:
                    chunk = response.read(NETWORK_CHUNK_BYTES)
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


def part_path(dest: Path) -> Path:
    """``<dest>.part``: where the download of ``dest`` collects its bytes until it is verified."""
    return dest.with_name(dest.name + ".part")


def download_file(url: str, dest: Path, *, expected_size: int | None = None, options: FetchOptions) -> Path:
    """Download ``url`` into ``dest.part``, resuming a ``.part`` left by an earlier run with an HTTP
    Range request, and retrying a dropped connection ``options.retries`` times. Returns the complete
    ``.part`` (the caller verifies it, then renames it to ``dest``); on failure or Ctrl+C the ``.part``
    keeps what was received for the next run to continue, and an empty one is removed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    try:
        _download(url, part, dest, expected_size, options)
    except BaseException:
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
        raise
    return part


def _download(url: str, part: Path, dest: Path, expected_size: int | None, options: FetchOptions) -> None:
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


def file_digest(path: Path, algorithm: str, *, progress: bool = False) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with (
        path.open("rb") as source,
        byte_bar(path.stat().st_size, f"verifying {path.name}", progress) as bar,
    ):
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, ...: the first that does not exist."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def verify_checksum(path: Path, checksum: Checksum, *, progress: bool = False, name: str | None = None) -> None:
    """Raise :class:`ChecksumError` after moving the download ``path`` aside to ``<name>.bad`` (or the
    first free ``.bad.N``; ``name`` defaults to ``path``'s) if it does not match."""
    actual = file_digest(path, checksum.algorithm, progress=progress)
    if actual != checksum.hexdigest:
        shown = name or path.name
        bad = free_name(path.with_name(shown + ".bad"))
        os.replace(path, bad)
        raise ChecksumError(
            f"{shown} failed verification ({checksum.algorithm} {actual}, expected {checksum.hexdigest}); "
            f"moved it aside to {bad}, nothing was extracted; rerun to download it again"
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
