"""Zip extraction for ``irn data`` that refuses any member landing outside the target folder.

Every member is checked before the first byte is written (:func:`plan_extraction`): absolute
paths, ``..`` components, symlinks with absolute or ``..`` targets, and members reaching
through an existing symlink out of the folder make the whole archive refused. So does a member
that would replace a file which no earlier extraction of the same archive wrote (and which differs
from the member): a user's ``README.md`` is never overwritten by the archive's. What an extraction
is about to write is listed in :func:`in_progress_path` first, so an extraction cut short may be
redone; after a verified, complete extraction the caller records :func:`marker_path` (the checksum,
then the members written).
"""

from __future__ import annotations

import os
import re
import stat
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from irn.atomic import atomic_write
from irn.errors import IRNError
from irn.progress import byte_bar

CHUNK_BYTES = 1 << 20  # bytes copied at a time from a member to its file
MARKER_PREFIX = ".irn-extracted-"
IN_PROGRESS_PREFIX = ".irn-extracting-"


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


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            crc = zlib.crc32(chunk, crc)
    return crc


def check_replacements(planned: list[_PlannedMember], root: Path, archive_name: str) -> None:
    """Refuse (nothing written) when a file or link member would replace a file under ``root`` that no
    earlier extraction of ``archive_name`` wrote (listed in its marker or in-progress list) and whose
    content is not the member's."""
    ours = set(read_marker(marker_path(root, archive_name))[1]) | set(_read_lines(in_progress_path(root, archive_name)))
    clashes: list[str] = []
    for member in planned:
        if member.kind == "dir":
            continue
        destination = Path(root, *member.parts)
        relative = "/".join(member.parts)
        if os.path.lexists(destination) and not (
            destination.is_symlink() or destination.is_file() or destination.is_dir()
        ):  # a pipe, a socket, a device: never written through
            clashes.append(f"{destination} (not a regular file)")
            continue
        if not (destination.is_file() or destination.is_symlink()) or relative in ours:
            continue
        if member.kind == "symlink":
            same = destination.is_symlink() and os.readlink(destination) == member.link_target
        else:
            same = (
                not destination.is_symlink()
                and destination.stat().st_size == member.info.file_size
                and _crc32(destination) == member.info.CRC
            )
        if not same:
            clashes.append(str(destination))
    if clashes:
        shown = ", ".join(clashes[:3]) + (f" and {len(clashes) - 3} more" if len(clashes) > 3 else "")
        raise UnsafeArchiveError(
            f"refusing to extract {archive_name} into {root}: it would replace {len(clashes)} file(s) it did not "
            f"write: {shown}; move them away (or extract into another --root); nothing was extracted"
        )


def extract_zip(path: Path, root: Path, *, progress: bool = False) -> list[str]:
    """Extract the zip at ``path`` into ``root`` after :func:`plan_extraction` and
    :func:`check_replacements` accepted every member. The members are listed in
    :func:`in_progress_path` before the first is written; files are written atomically (temporary
    file, then rename); symlinks are created last. Returns the paths written (relative, ``/``)."""
    if not zipfile.is_zipfile(path):
        raise IRNError(f"{path} is not a zip archive")
    root_real = os.path.realpath(root)
    written: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            planned = plan_extraction(archive, root)
            check_replacements(planned, root, path.name)
            root.mkdir(parents=True, exist_ok=True)
            listed = [f"{'/'.join(m.parts)}\n" for m in planned if m.kind != "dir"]
            with atomic_write(in_progress_path(root, path.name), "w") as f:
                f.write("".join(listed))
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
                        written.append("/".join(member.parts))
            for member in planned:
                if member.kind == "symlink" and member.link_target is not None:
                    destination = Path(root_real, *member.parts)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    if destination.is_symlink() or destination.is_file():
                        destination.unlink()
                    os.symlink(member.link_target, destination)
                    written.append("/".join(member.parts))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise IRNError(f"{path} is a damaged zip archive ({exc})") from None
    except OSError as exc:
        raise IRNError(f"extracting {path} into {root} failed: {exc}") from None
    return written


def _write_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path, bar: tqdm) -> None:
    with atomic_write(destination) as sink, archive.open(info) as source:
        while chunk := source.read(CHUNK_BYTES):
            sink.write(chunk)
            bar.update(len(chunk))
    modified = time.mktime((*info.date_time, 0, 0, -1))
    os.utime(destination, (modified, modified))


def marker_path(folder: Path, archive_name: str) -> Path:
    """``<folder>/.irn-extracted-<archive>``: written after a verified, complete extraction."""
    return folder / f"{MARKER_PREFIX}{archive_name}"


def in_progress_path(folder: Path, archive_name: str) -> Path:
    """``<folder>/.irn-extracting-<archive>``: the members an extraction is writing (removed when done)."""
    return folder / f"{IN_PROGRESS_PREFIX}{archive_name}"


def _read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (FileNotFoundError, NotADirectoryError):
        return []


def read_marker(marker: Path) -> tuple[str | None, list[str]]:
    """(the checksum, the members written) of a marker; (None, []) when there is none. Markers of
    earlier versions hold the checksum alone."""
    lines = _read_lines(marker)
    return (lines[0].strip(), lines[1:]) if lines else (None, [])
