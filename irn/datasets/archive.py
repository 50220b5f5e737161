"""Zip extraction for ``irn data`` that refuses any member landing outside the target folder.

Every member is checked before the first byte is written (:func:`plan_extraction`): absolute
paths, ``..`` components, symlinks with absolute or ``..`` targets, and members reaching
through an existing symlink out of the folder make the whole archive refused. After a
verified, complete extraction the caller records :func:`marker_path`.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from irn.datasets.progress import byte_bar
from irn.errors import IRNError

CHUNK_BYTES = 1 << 20  # bytes copied at a time from a member to its file
MARKER_PREFIX = ".irn-extracted-"


class UnsafeArchiveError(IRNError):
    """The archive has a member that would land outside the target folder (nothing was written)."""


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
            with byte_bar(sum(member.info.file_size for member in files), f"extracting {path.name}", progress) as bar:
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
