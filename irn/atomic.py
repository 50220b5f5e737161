"""The one atomic writer (torch-free, so that ``irn data`` and the light runtimes use it too): a file is
replaced in one rename, so a reader sees the old complete file or the new complete one, never half."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Literal

from irn.errors import IRNError

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: Literal["wb", "w"] = "wb", *, fsync: bool = False) -> Iterator[IO]:
    """A new file to write ``path``'s contents into; it replaces ``path`` in one rename when the block ends.

    The file is created beside ``path`` (hidden, unique name) with the permissions a plain ``open``
    gives (0o666 less the umask); on any error it is removed and ``path`` is left as it was, so a
    reader sees the old complete file or the new complete one. ``fsync``: flush to disk before the rename.
    A symbolic link keeps pointing at the (replaced) file; a device or pipe is written through.
    """
    path = Path(path)
    if path.is_dir():
        raise IRNError(f"{path}: is a folder, expected a file")
    if path.is_symlink():  # replace the file the link points to, keep the link
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/stdout): write through it
        with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            yield f
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IRNError(f"{path}: cannot write ({exc.strerror or exc})") from None
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        handle = open(tmp, "xb" if mode == "wb" else "x", **({} if mode == "wb" else {"encoding": "utf-8"}))
    except OSError as exc:
        raise IRNError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with handle as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
