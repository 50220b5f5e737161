"""The one downloader of irn: resumable HTTP downloads into a ``.part`` file (torch-free).

Pretrained models (:mod:`irn.zoo.pretrained`) and datasets (:mod:`irn.datasets`) both download with
:func:`download_file`: the bytes go to ``<dest>.part``; a ``.part`` left by an interrupted run is
continued with an HTTP ``Range`` request, and a server that ignores the range (HTTP 200) restarts it
from byte 0. A dropped connection is resumed ``FetchOptions.retries`` times. Ctrl+C leaves the
``.part`` with what was received (an empty one is removed), never a file under the final name: the
caller verifies the complete ``.part`` and only then renames it. Errors are one-line
:class:`irn.errors.IRNError` subclasses naming the URL and where to put the file by hand.
:func:`exclusive` is the lock a caller holds around download, check and rename so that two processes
never write one ``.part`` at once (pretrained models hold it; ``<dest>.lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX (Windows): downloads go unlocked
    fcntl = None  # type: ignore[assignment]

from irn._version import __version__
from irn.errors import IRNError
from irn.progress import byte_bar

CHUNK_BYTES = 1 << 20  # bytes read at a time from a file being verified
NETWORK_CHUNK_BYTES = 64 << 10  # bytes read at a time from the network (progress and Ctrl+C at this grain)
USER_AGENT = f"irn/{__version__} (downloader of datasets and pretrained models)"


class DownloadError(IRNError):
    """The file could not be fetched (host unreachable, HTTP error, interrupted transfer)."""


class ChecksumError(IRNError):
    """The downloaded file does not match its pinned checksum (it has been moved aside)."""


@dataclass(frozen=True)
class FetchOptions:
    """How to fetch: ``retries`` automatic resumes after a dropped connection (waiting
    ``retry_delay * 2**k`` s), ``timeout`` seconds per socket operation, whether to keep the
    archive after extraction, re-extract even if done (``force``; both for datasets), and show
    progress bars."""

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


def note(message: str) -> None:
    """One line ``irn: message`` on stderr (what a download is doing: resuming, restarting)."""
    print(f"irn: {message}", file=sys.stderr, flush=True)


def manual_hint(url: str, dest: Path) -> str:
    """How to place a file by hand: the default end of every error of :func:`download_file`."""
    return (
        f"if this machine cannot reach it, download {url} another way, save it as {dest} and rerun "
        "the same command: it verifies a file found there"
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


def _transfer(url: str, part: Path, dest: Path, expected_size: int | None, options: FetchOptions, hint: str) -> bool:
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
            note(f"the server cannot resume {part.name} at byte {offset} (HTTP 416); starting over")
            part.unlink()
            return False
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; {hint}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(f"cannot reach {url} ({reason}); {hint}") from None

    with response:
        status = getattr(response, "status", None) or 200
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.strip().isdigit() else None
        if offset and status == 206:
            start, _ = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                note(f"the server resumed {part.name} at the wrong byte ({start}, not {offset}); starting over")
                part.unlink()
                return False
            mode = "ab"
        else:
            if offset:
                note(f"the server ignored the resume request (HTTP {status}); restarting {part.name} from byte 0")
            offset = 0
            mode = "wb"
        total = offset + length if length is not None else expected_size
        if expected_size is not None and length is not None and total != expected_size:
            raise DownloadError(
                f"{url} is {total} bytes but {dest.name} should be {expected_size} bytes: this server or "
                f"mirror does not serve the expected file; {hint}"
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


def lock_path(dest: Path) -> Path:
    """``<dest>.lock``: held by the one irn process that downloads ``dest`` (:func:`exclusive`)."""
    return dest.with_name(dest.name + ".lock")


@contextlib.contextmanager
def exclusive(path: Path, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if needed, removed on release), printing
    ``waiting`` once if another process holds it. Two irn processes that fetch the same file at once
    would otherwise write one ``.part`` together (a corrupt file) and rename it under each other.

    The lock is ``flock`` (POSIX), released by the system when a process dies, so a ``.lock`` left by a
    killed process never blocks; a lock taken on a file its holder removed meanwhile is taken again on
    the new one. Where ``flock`` is missing or refused (Windows, some network file systems), nothing is
    locked."""
    fd, told, made_unlocked = -1, False, False
    while fcntl is not None:
        existed = os.path.lexists(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                if not told:
                    note(waiting)
                    told = True
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # flock refused here (a file system without locks): go on unlocked
            os.close(fd)
            fd, made_unlocked = -1, not existed  # the file this call made is removed all the same
            break
        except BaseException:  # Ctrl+C while waiting
            os.close(fd)
            raise
        try:
            locked_current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            locked_current = False
        if locked_current:
            break
        os.close(fd)  # its holder removed the file as it let go: lock the one there now
    try:
        yield
    finally:
        if fd >= 0:
            with contextlib.suppress(OSError):
                path.unlink()  # while holding it: a process that opened it retries on the new one
            os.close(fd)
        elif made_unlocked:
            with contextlib.suppress(OSError):
                path.unlink()


def _try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` on ``fd`` if it is free; False when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def part_path(dest: Path) -> Path:
    """``<dest>.part``: where the download of ``dest`` collects its bytes until it is verified."""
    return dest.with_name(dest.name + ".part")


def download_file(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    options: FetchOptions,
    hint: str | None = None,
) -> Path:
    """Download ``url`` into ``dest.part``, resuming a ``.part`` left by an earlier run with an HTTP
    Range request, and retrying a dropped connection ``options.retries`` times. Returns the complete
    ``.part`` (the caller verifies it, then renames it to ``dest``); on failure or Ctrl+C the ``.part``
    keeps what was received for the next run to continue, and an empty one is removed.

    ``hint`` ends every error message (default: :func:`manual_hint`, how to place the file by hand)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    try:
        _download(url, part, dest, expected_size, options, hint or manual_hint(url, dest))
    except BaseException:
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
        raise
    return part


def _download(url: str, part: Path, dest: Path, expected_size: int | None, options: FetchOptions, hint: str) -> None:
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None and offset > expected_size:
            note(f"{part} is larger than the expected {expected_size} bytes; starting over")
            part.unlink()
            offset = 0
        if expected_size is not None and offset == expected_size and offset > 0:
            break
        if offset:
            note(f"resuming {dest.name} at {format_bytes(offset)}")
        try:
            if _transfer(url, part, dest, expected_size, options, hint):
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
            note(f"download stopped at {so_far} ({exc.reason}); resuming in {delay:g} s ({retry})")
            time.sleep(delay)


def file_digest(path: Path, algorithm: str, *, progress: bool = False, prefix: bytes = b"") -> str:
    """Hex digest of ``prefix`` then the file, read in 1 MiB chunks (``prefix``: e.g. a git blob header)."""
    digest = hashlib.new(algorithm)
    digest.update(prefix)
    with (
        path.open("rb") as source,
        byte_bar(path.stat().st_size, f"verifying {path.name}", progress) as bar,
    ):
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def set_aside(path: Path, base: Path, digest: str, digest_of: Callable[[Path], str]) -> tuple[Path, bool]:
    """Move a refused file ``path`` (whose digest is ``digest``) aside to ``base`` (``<file>.bad``), or the
    first free ``base.1``, ``base.2``, ... Returns where its bytes now are, and whether they were there
    already: a copy refused before with the same size and digest (``digest_of``) is kept and ``path``
    deleted, so the same wrong download fetched again and again does not pile up copies."""
    size = path.stat().st_size
    candidate, n = base, 0
    while candidate.exists() or candidate.is_symlink():
        same_size = candidate.is_file() and not candidate.is_symlink() and candidate.stat().st_size == size
        if same_size and digest_of(candidate) == digest:
            path.unlink()
            return candidate, True
        n += 1
        candidate = base.with_name(f"{base.name}.{n}")
    os.replace(path, candidate)
    return candidate, False


def aside_words(where: Path, already: bool) -> str:
    """How a refusal message says where :func:`set_aside` left the refused bytes."""
    if already:
        return f"the same bytes were refused before and are kept at {where} (this copy deleted)"
    return f"moved it aside to {where}"


def free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, ...: the first that does not exist."""
    candidate, n = path, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
