"""A model name or path -> a file on disk (torch-free): :func:`resolve`, which every ``--model`` and
:func:`irn.load` go through, and :func:`fetch`, the verified download of a pretrained file.

A downloadable name (``sain-x2-jpeg``, ...) is fetched on first use into ``<cache>/models/``
(:func:`irn.zoo.catalogue.models_dir`): the bytes go to ``<file>.part`` (resumed with an HTTP Range
request after an interruption, :mod:`irn.zoo.transfer`), the complete ``.part`` is checked against the
pinned git blob id (sha1 of ``b"blob <size>\\0"`` + the bytes, what ``git hash-object`` prints), and only
then renamed to the file's name, atomically. A file that fails the check is moved aside to
``<file>.bad`` (``.bad.1``, ... for other wrong bytes, the same wrong bytes never kept twice; never
loaded, never kept under the real name). Ctrl+C leaves only the ``.part``.
One process at a time downloads a file (it holds ``<file>.lock``, :func:`irn.zoo.transfer.exclusive`);
another that needs it meanwhile waits, then checks and uses the file the first renamed into place.

The cached file is checked again every time it is used, not remembered as checked: a sha1 of these
files (5-40 MB) takes tens of milliseconds, less than reading the weights, and a file changed or
replaced in the cache after its first check can never be loaded (a size-and-mtime record could be
fooled by a file of the same size and time).

Offline, a refused connection, an HTTP error or a wrong hash is one line (:class:`CheckpointError`)
naming the URL and where to put the file by hand.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from irn.zoo.catalogue import (
    Pretrained,
    Remote,
    cached_path,
    checkpoint_dirs,
    describe_names,
    get,
    shipped_path,
)
from irn.zoo.errors import CheckpointError
from irn.zoo.transfer import (
    ChecksumError,
    DownloadError,
    FetchOptions,
    aside_words,
    download_file,
    exclusive,
    file_digest,
    lock_path,
    note,
    part_path,
    set_aside,
)


class PretrainedDownloadError(CheckpointError, DownloadError):
    """A pretrained file could not be downloaded (offline, refused, HTTP error, interrupted transfer)."""


class PretrainedChecksumError(CheckpointError, ChecksumError):
    """A pretrained file is not the pinned one (its git blob id differs); it was moved aside."""


def git_blob_sha1(path: Path, *, progress: bool = False) -> str:
    """The git blob id of a file: sha1 of ``b"blob <size>\\0"`` followed by its bytes."""
    size = path.stat().st_size
    return file_digest(path, "sha1", progress=progress, prefix=b"blob %d\x00" % size)


def manual_hint(entry: Pretrained, dest: Path) -> str:
    remote = entry.remote
    assert remote is not None
    return (
        f"to place it by hand, download {remote.url} another way and save it as {dest} "
        f"(irn checks its git blob sha1, {remote.blob_sha1}, before using it)"
    )


def _verify(entry: Pretrained, path: Path, dest: Path, options: FetchOptions, what: str) -> None:
    """Raise :class:`PretrainedChecksumError` after moving ``path`` aside to ``<dest>.bad`` (or the first
    free ``.bad.N``) unless its git blob id is the pinned one. ``what``: the file, in words."""
    remote = entry.remote
    assert remote is not None
    actual = git_blob_sha1(path, progress=options.progress)
    if actual == remote.blob_sha1:
        return
    bad, already = set_aside(path, dest.with_name(dest.name + ".bad"), actual, git_blob_sha1)
    raise PretrainedChecksumError(
        f"{entry.name}: {what} is not the pinned file (git blob sha1 {actual}, expected {remote.blob_sha1}); "
        f"{aside_words(bad, already)}, nothing was loaded; rerun to download it again, "
        f"or {manual_hint(entry, dest)}"
    )


def fetch(entry: Pretrained, *, options: FetchOptions | None = None) -> Path:
    """The verified local file of a downloadable entry: the cached file if it passes the check, else a
    download (resuming a ``.part``), checked, then renamed into place. Raises :class:`CheckpointError`
    subclasses with one line naming the URL and where to put the file by hand."""
    remote = entry.remote
    if remote is None:
        raise ValueError(f"{entry.name} is shipped, not downloaded")
    options = options or FetchOptions()
    dest = cached_path(entry)
    if dest.is_file():  # downloaded earlier, or placed there by hand
        _verify(entry, dest, dest, options, f"the file found at {dest}")
        return dest
    with contextlib.ExitStack() as held:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            waiting = f"waiting for another irn process that is downloading {entry.name} into {dest.parent}"
            held.enter_context(exclusive(lock_path(dest), waiting))  # one download of a file at a time
        except OSError as exc:
            raise PretrainedDownloadError(
                f"{entry.name}: cannot write to the model cache {dest.parent} ({exc.strerror or exc}); set IRN_HOME "
                f"to a writable folder, or download {remote.url} and pass its path"
            ) from None
        if dest.is_file():  # another irn process downloaded it while this one waited
            _verify(entry, dest, dest, options, f"the file found at {dest}")
            return dest
        return _download(entry, remote, dest, options)


def _download(entry: Pretrained, remote: Remote, dest: Path, options: FetchOptions) -> Path:
    """:func:`fetch`'s download, under the lock: resume or reuse the ``.part``, verify it, rename it."""
    part = part_path(dest)
    if part.is_file() and git_blob_sha1(part) == remote.blob_sha1:  # complete before an interruption
        os.replace(part, dest)
        return dest
    note(f"downloading {entry.name} ({entry.file}) from {remote.url} to {dest}")
    try:
        part = download_file(
            remote.url, dest, expected_size=remote.size, options=options, hint=manual_hint(entry, dest)
        )
    except DownloadError as exc:
        raise PretrainedDownloadError(f"{entry.name}: {exc}") from None
    _verify(entry, part, dest, options, f"the download of {remote.url}")
    os.replace(part, dest)  # only a verified file gets the real name
    return dest


def resolve(name_or_path: str | os.PathLike[str], *, options: FetchOptions | None = None) -> Path:
    """Turn a model name (shipped: ``"x2"``; downloadable: ``"sain-x2-jpeg"``, fetched and verified on
    first use) or a path into an existing file path."""
    text = str(name_or_path)
    if not text.strip():  # Path("") is the current folder
        raise CheckpointError(f"{text!r}: an empty model name or path ({describe_names()})")
    entry = get(text)
    if entry is not None and entry.shipped:
        shipped = shipped_path(entry)
        if shipped is not None:
            return shipped
        searched = ", ".join(str(d) for d in checkpoint_dirs())
        raise CheckpointError(f"shipped model {text!r} ({entry.file}) not found in: {searched}")
    if entry is not None:
        return fetch(entry, options=options)
    path = Path(text).expanduser()
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file ({describe_names()})")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a checkpoint file")
    return path
