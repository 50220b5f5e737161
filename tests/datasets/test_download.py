"""`irn data`: downloads from a local HTTP server (with Range support written here) serving
zip archives made by the tests: good, corrupt, truncated, path-escaping; plus an unreachable
host and the DIV2K registry."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import re
import socket
import stat
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import local_http_server, public_names

from irn.cli.main import main
from irn.datasets import download, registry
from irn.datasets.archive import UnsafeArchiveError, _member_problem, extract_zip
from irn.datasets.registry import Checksum
from irn.datasets.transfer import FetchOptions


@dataclasses.dataclass
class ServerState:
    """What the test server serves and what it saw. ``truncate_first``: paths whose first
    response is cut after half the body; ``ignore_range``: paths answered 200 even to a Range."""

    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    truncate_first: set[str] = dataclasses.field(default_factory=set)
    ignore_range: set[str] = dataclasses.field(default_factory=set)
    requests: list[tuple[str, str | None, int]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class RangeHandler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        # Every request is recorded before any byte of the answer is sent: a client that gives up
        # on the headers (a wrong Content-Length) may return before this handler finishes.
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        path = self.path
        range_header = self.headers.get("Range")
        data = state.files.get(path)
        if data is None:
            with state.lock:
                state.requests.append((path, range_header, 404))
            self.send_error(404)
            return
        start = 0
        if range_header is not None and path not in state.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            assert match is not None, range_header
            start = int(match.group(1))
            if start >= len(data):
                with state.lock:
                    state.requests.append((path, range_header, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        else:
            status = 200
        with state.lock:
            state.requests.append((path, range_header, status))
            truncate = path in state.truncate_first
            state.truncate_first.discard(path)
        body = data[start:]
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Type", "application/zip")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    """A threaded HTTP server on 127.0.0.1; yields its base URL and its state."""
    state = ServerState()
    with local_http_server(RangeHandler, state) as url:
        yield url, state


def make_zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip (stored, so its size is the payload's) with member names kept verbatim;
    ``links`` adds Unix symlink members ``name -> target``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, payload in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6)), payload)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def image_members(folder: str = "DIV2K_valid_HR", count: int = 3, size: int = 60_000) -> dict[str, bytes]:
    """Incompressible stand-ins for PNGs (content is irrelevant to the downloader)."""
    rng = random.Random(0)
    return {f"{folder}/{801 + index:04d}.png": rng.randbytes(size) for index in range(count)}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> set[str]:
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if not path.is_dir()}


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("irn: error:")]


def test_good_archive_downloads_verifies_and_extracts(server, tmp_path, capsys) -> None:
    base, state = server
    members = image_members()
    archive = make_zip(members)
    state.files["/good.zip"] = archive
    root = tmp_path / "datasets"
    argv = ["data", "download", f"{base}/good.zip", "--sha256", sha256(archive), "--root", str(root)]

    assert main(argv) == 0
    assert files_under(root) == set(members) | {".irn-extracted-good.zip"}
    for name, payload in members.items():
        assert (root / name).read_bytes() == payload
    marker = (root / ".irn-extracted-good.zip").read_text().splitlines()
    assert marker == [f"sha256:{sha256(archive)}", *members]  # the checksum, then the members written
    assert "good.zip: extracted into" in capsys.readouterr().out
    assert [(path, rng) for path, rng, _ in state.requests] == [("/good.zip", None)]

    # A second run sees the marker and neither downloads nor extracts again.
    assert main(argv + ["--quiet"]) == 0
    assert "good.zip: already extracted" in capsys.readouterr().out
    assert len(state.requests) == 1


def test_an_archive_fetched_by_another_irn_at_once_is_waited_for_not_fetched_twice(server, tmp_path) -> None:
    """Two ``irn data download`` of one archive at once: the second waits on ``<archive>.lock`` while the
    first downloads and extracts, then finds the marker and does nothing (before the lock, both wrote
    the one ``.part``: a corrupt archive moved aside, or a rename under the other's feet)."""
    import fcntl

    base, state = server
    members = image_members()
    archive = make_zip(members)
    state.files["/good.zip"] = archive
    root = tmp_path / "datasets"
    root.mkdir()
    lock = root / "good.zip.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what the first process holds while it works
    checksum = Checksum("sha256", sha256(archive))
    options = FetchOptions(progress=False)
    result: dict[str, object] = {}

    def second() -> None:
        result["r"] = download.download_url(f"{base}/good.zip", root, checksum, options=options)

    waiter = threading.Thread(target=second, daemon=True)  # never keeps pytest from exiting
    try:
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and state.requests == []  # waiting, not downloading
        first = download.download_url(f"{base}/good.zip", tmp_path / "elsewhere", checksum, options=options)
        for path in first.folder.rglob("*"):  # the first process's work, as if it were done in root
            if path.is_file():
                target = root / path.relative_to(first.folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    finally:
        lock.unlink()
        os.close(fd)  # the first process lets go
    waiter.join(30)
    assert not waiter.is_alive()
    assert result["r"].status == "already extracted"  # type: ignore[attr-defined]
    assert len(state.requests) == 1  # the first's only
    assert files_under(root) == set(members) | {".irn-extracted-good.zip"}  # no .part, .bad or .lock left


def test_where_the_file_system_refuses_locks_the_fetch_goes_on_and_leaves_no_lock_file(
    server, tmp_path, monkeypatch
) -> None:
    """flock refused (some network file systems): the archive is fetched unlocked, and the ``.lock`` this
    run made is removed all the same (a ``.lock`` that was there before is not this run's to remove)."""
    import errno
    import fcntl

    def refused(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refused)
    base, state = server
    members = image_members()
    archive = make_zip(members)
    state.files["/good.zip"] = archive
    root = tmp_path / "datasets"
    checksum = Checksum("sha256", sha256(archive))
    result = download.download_url(f"{base}/good.zip", root, checksum, options=FetchOptions(progress=False))
    assert result.status == "extracted"
    assert files_under(root) == set(members) | {".irn-extracted-good.zip"}
    other = tmp_path / "other"
    other.mkdir()
    (other / "good.zip.lock").write_text("someone else's")
    download.download_url(f"{base}/good.zip", other, checksum, options=FetchOptions(progress=False))
    assert (other / "good.zip.lock").read_text() == "someone else's"


def test_md5_and_keep_archives(server, tmp_path) -> None:
    base, state = server
    archive = make_zip({"Set5/HR/baby.png": b"not really a png"})
    state.files["/bench%20mark.zip"] = archive
    md5 = hashlib.md5(archive).hexdigest()
    argv = ["data", "download", f"{base}/bench%20mark.zip", "--md5", md5, "--root", str(tmp_path), "--keep-archives"]
    assert main(argv + ["--quiet"]) == 0
    assert (tmp_path / "Set5/HR/baby.png").read_bytes() == b"not really a png"
    assert (tmp_path / "bench mark.zip").read_bytes() == archive


def test_corrupt_archive_is_refused_moved_aside_and_not_extracted(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    corrupt = bytearray(archive)
    corrupt[len(corrupt) // 2] ^= 0xFF
    state.files["/corrupt.zip"] = bytes(corrupt)
    argv = ["data", "download", f"{base}/corrupt.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]

    assert main(argv) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert "corrupt.zip failed verification" in errors[0]
    assert f"expected {sha256(archive)}" in errors[0]
    assert "moved it aside" in errors[0] and "nothing was extracted" in errors[0]
    assert files_under(tmp_path) == {"corrupt.zip.bad"}
    assert (tmp_path / "corrupt.zip.bad").read_bytes() == bytes(corrupt)


def test_truncated_download_resumes_with_range_on_the_next_run(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    state.files["/big.zip"] = archive
    state.truncate_first.add("/big.zip")
    argv = ["data", "download", f"{base}/big.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]

    assert main(argv + ["--retries", "0"]) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert "stopped at" in errors[0] and "rerun the same command to resume" in errors[0]
    part = tmp_path / "big.zip.part"
    half = len(archive) // 2
    assert part.stat().st_size == half
    assert files_under(tmp_path) == {"big.zip.part"}

    assert main(argv) == 0
    assert "resuming big.zip" in capsys.readouterr().err
    assert state.requests == [("/big.zip", None, 200), ("/big.zip", f"bytes={half}-", 206)]
    assert files_under(tmp_path) == set(image_members()) | {".irn-extracted-big.zip"}


def test_dropped_connection_is_resumed_automatically_within_one_run(server, tmp_path) -> None:
    base, state = server
    archive = make_zip(image_members())
    state.files["/big.zip"] = archive
    state.truncate_first.add("/big.zip")
    checksum = Checksum("sha256", sha256(archive))
    options = FetchOptions(retries=2, retry_delay=0.0, progress=False)
    result = download.download_url(f"{base}/big.zip", tmp_path, checksum, options=options)
    assert result.status == "extracted"
    assert [status for _, _, status in state.requests] == [200, 206]
    assert (tmp_path / "DIV2K_valid_HR/0801.png").read_bytes() == image_members()["DIV2K_valid_HR/0801.png"]


def test_server_ignoring_range_restarts_the_part_file_cleanly(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    state.files["/norange.zip"] = archive
    state.ignore_range.add("/norange.zip")
    (tmp_path / "norange.zip.part").write_bytes(b"stale bytes from some other file" * 10)
    argv = ["data", "download", f"{base}/norange.zip", "--sha256", sha256(archive), "--root", str(tmp_path)]
    assert main(argv + ["--quiet"]) == 0
    assert "ignored the resume request" in capsys.readouterr().err
    assert state.requests == [("/norange.zip", "bytes=320-", 200)]
    assert files_under(tmp_path) == set(image_members()) | {".irn-extracted-norange.zip"}


def test_path_escaping_archive_is_refused_before_writing_anything(server, tmp_path, capsys) -> None:
    base, state = server
    outside = tmp_path / "outside"
    outside.mkdir()
    absolute_target = outside / "absolute_evil.txt"
    archive = make_zip(
        {
            "DIV2K_valid_HR/0801.png": b"harmless, listed first",
            "../evil.txt": b"escaped with ..",
            absolute_target.as_posix(): b"escaped with an absolute path",
        }
    )
    with zipfile.ZipFile(io.BytesIO(archive)) as check:  # the names really are stored verbatim
        assert "../evil.txt" in check.namelist() and absolute_target.as_posix() in check.namelist()
    state.files["/evil.zip"] = archive
    root = tmp_path / "root"
    argv = ["data", "download", f"{base}/evil.zip", "--sha256", sha256(archive), "--root", str(root), "--quiet"]

    assert main(argv) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1
    assert f"refusing to extract evil.zip into {root}: 2 unsafe member(s)" in errors[0]
    assert "'../evil.txt' ('..' in the path)" in errors[0] and "absolute path" in errors[0]
    assert "nothing was extracted" in errors[0]
    assert not (tmp_path / "evil.txt").exists()
    assert not absolute_target.exists()
    assert files_under(root) == {"evil.zip"}  # the verified download only: no member, no marker
    assert files_under(outside) == set()


def test_symlink_members_pointing_out_are_refused(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip({"data/a.png": b"a"}, links={"data/etc": "/etc", "data/up": "../../outside"})
    state.files["/links.zip"] = archive
    argv = ["data", "download", f"{base}/links.zip", "--sha256", sha256(archive), "--root", str(tmp_path / "r")]
    assert main(argv + ["--quiet"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert "'data/etc' (symlink to the absolute path '/etc')" in error
    assert "'data/up' (symlink to '../../outside'" in error
    assert files_under(tmp_path / "r") == {"links.zip"}


def test_symlink_inside_is_kept_and_links_cannot_be_written_through(tmp_path) -> None:
    good = tmp_path / "good.zip"
    good.write_bytes(make_zip({"d/target.png": b"t"}, links={"d/alias.png": "target.png"}))
    assert extract_zip(good, tmp_path / "out") == ["d/target.png", "d/alias.png"]
    alias = tmp_path / "out/d/alias.png"
    assert alias.is_symlink() and alias.read_bytes() == b"t"

    through = tmp_path / "through.zip"
    through.write_bytes(make_zip({"l/x.txt": b"x"}, links={"l": "sub"}))
    with pytest.raises(UnsafeArchiveError, match="written through the symlink member 'l'"):
        extract_zip(through, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_existing_symlink_in_the_root_does_not_let_members_out(tmp_path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "DIV2K_valid_HR").symlink_to(outside, target_is_directory=True)
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"DIV2K_valid_HR/0801.png": b"x"}))
    with pytest.raises(UnsafeArchiveError, match="reaches outside through the existing symlink"):
        extract_zip(archive, root)
    assert files_under(outside) == set()


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a/b.png", None),
        ("./a/b.png", None),
        ("a/../../b.png", "'..' in the path"),
        ("..\\b.png", "'..' in the path"),
        ("/etc/passwd", "absolute path"),
        ("\\\\server\\share\\x", "absolute path"),
        ("C:/Windows/x", "absolute path"),
    ],
)
def test_member_name_checks(name: str, problem: str | None) -> None:
    assert _member_problem(name)[1] == problem


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_host_is_one_clear_line_with_exit_code_2(tmp_path, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}/DIV2K_valid_HR.zip"
    argv = ["data", "download", url, "--sha256", "0" * 64, "--root", str(tmp_path), "--timeout", "5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    (error,) = error_lines(err)
    assert error.startswith(f"irn: error: cannot reach {url} (")
    assert f"save it as {tmp_path / 'DIV2K_valid_HR.zip'} and rerun the same command" in error
    assert files_under(tmp_path) == set()


def test_div2k_mirror_unreachable_names_the_url_and_the_dataset_folder(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("IRN_DIV2K_BASE_URL", f"http://127.0.0.1:{free_port()}/mirror/")
    assert main(["data", "download", "div2k", "--parts", "valid_hr", "--root", str(tmp_path), "--timeout", "5"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert "/mirror/DIV2K_valid_HR.zip" in error
    assert str(tmp_path / "DIV2K" / "DIV2K_valid_HR.zip") in error


def test_div2k_mirror_serving_a_different_file_is_stopped_by_the_pinned_size(server, tmp_path, capsys) -> None:
    base, state = server
    state.files["/mirror/DIV2K_valid_HR.zip"] = make_zip(image_members())
    argv = ["data", "download", "div2k", "--parts", "valid_hr", "--root", str(tmp_path), "--base-url", f"{base}/mirror"]
    assert main(argv + ["--quiet"]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert "DIV2K_valid_HR.zip should be 448993893 bytes" in error
    assert state.requests[0][0] == "/mirror/DIV2K_valid_HR.zip"
    assert files_under(tmp_path) == set()


def test_div2k_layout_through_a_mirror_with_matching_checksums(server, tmp_path, capsys, monkeypatch) -> None:
    """The registry path end to end: the DIV2K entries are swapped for ones pinned to the test's archives."""
    base, state = server
    train = make_zip(image_members("DIV2K_train_HR", count=2))
    valid = make_zip(image_members("DIV2K_valid_HR", count=2))
    lr_x4 = make_zip(image_members("DIV2K_valid_LR_bicubic/X4", count=2, size=100))
    served = {"train_hr": train, "valid_hr": valid, "valid_lr_x4": lr_x4}
    archives = tuple(
        dataclasses.replace(spec, checksum=Checksum("sha256", sha256(served[spec.part])), size=len(served[spec.part]))
        if spec.part in served
        else spec
        for spec in registry.DIV2K.archives
    )
    monkeypatch.setitem(registry.DATASETS, "div2k", dataclasses.replace(registry.DIV2K, archives=archives))
    for spec in archives:
        if spec.part in served:
            state.files[f"/m/{spec.filename}"] = served[spec.part]
    root = tmp_path / "datasets"

    assert main(["data", "download", "div2k", "--root", str(root), "--base-url", f"{base}/m/", "--quiet"]) == 0
    assert sorted(path for path, _, _ in state.requests) == ["/m/DIV2K_train_HR.zip", "/m/DIV2K_valid_HR.zip"]
    assert {p.name for p in (root / "DIV2K/DIV2K_train_HR").iterdir()} == {"0801.png", "0802.png"}
    assert {p.name for p in (root / "DIV2K/DIV2K_valid_HR").iterdir()} == {"0801.png", "0802.png"}
    assert not (root / "DIV2K/DIV2K_train_HR.zip").exists()  # archives are deleted after extraction

    monkeypatch.setenv("IRN_DIV2K_BASE_URL", f"{base}/m")
    assert main(["data", "download", "div2k", "--root", str(root), "--parts", "valid_lr_x4,valid_hr", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "DIV2K_valid_LR_bicubic_X4.zip: extracted" in out and "DIV2K_valid_HR.zip: already extracted" in out

    assert main(["data", "list", "--root", str(root)]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"train_hr\*\s+DIV2K_train_HR\.zip .* extracted", listing)
    assert re.search(r"valid_lr_x4\s+DIV2K_valid_LR_bicubic_X4\.zip .*DIV2K_valid_LR_bicubic/X4/ .* extracted", listing)
    assert re.search(r"train_lr_x2\s+.* missing", listing)
    assert f"prepare by hand into {root / 'Set5/HR'}/" in listing


def test_bad_requests_are_one_line_errors(tmp_path, capsys) -> None:
    cases = [
        (["data", "download", "imagenet"], "unknown dataset 'imagenet'"),
        (["data", "download", "div2k", "--parts", "train_hr,x3"], "div2k has no part 'x3'"),
        (["data", "download", "http://example.invalid/a.zip"], "give --sha256 or --md5"),
        (["data", "download", "div2k", "--sha256", "0" * 64], "checksums are pinned"),
        (["data", "download", "http://example.invalid/a.zip", "--md5", "xyz"], "md5 checksum is 32 hex digits"),
    ]
    for argv, message in cases:
        assert main(argv + ["--root", str(tmp_path)]) == 2
        (error,) = error_lines(capsys.readouterr().err)
        assert message in error
    assert files_under(tmp_path) == set()
    (tmp_path / "a_file").write_text("keep me")
    assert main(["data", "download", "div2k", "--parts", "valid_lr_x8", "--root", str(tmp_path / "a_file")]) == 2
    (error,) = error_lines(capsys.readouterr().err)
    assert f"--root {tmp_path / 'a_file'}: is a file, expected a folder" in error
    assert (tmp_path / "a_file").read_text() == "keep me"


def test_registry_pins_every_div2k_archive() -> None:
    spec = registry.DIV2K
    assert spec.base_url == "https://data.vision.ee.ethz.ch/cvl/DIV2K/"
    assert {a.part for a in spec.archives} >= {"train_hr", "valid_hr", "train_lr_x2", "train_lr_x4", "train_lr_x8"}
    for archive in spec.archives:
        assert archive.checksum.algorithm == "sha256" and len(archive.checksum.hexdigest) == 64
        assert archive.size is not None and archive.size > 1_000_000
        assert spec.url(archive).startswith(spec.base_url) and spec.url(archive).endswith(archive.filename)
    assert spec.archive("train_hr").checksum.hexdigest.startswith("9d0b9c46")
    assert spec.archive("train_hr").size == 3530603713
    assert [a.part for a in registry.parse_parts(spec, None)] == ["train_hr", "valid_hr"]
    assert len(registry.parse_parts(spec, "all")) == len(spec.archives)


def test_the_package_re_exports_every_public_name_of_its_modules() -> None:
    """``from irn.datasets import X`` (and ``irn.download.X``, the older flat name) works for each public X."""
    import irn
    import irn.datasets as package
    from irn.datasets import archive, transfer

    for module in (registry, transfer, archive, download):
        public = public_names(module)
        missing = sorted(name for name in public if name not in package.__all__)
        assert not missing, f"{module.__name__}: {missing}"
        for name in public:
            if name != "CHUNK_BYTES":  # archive.py and transfer.py each have their own read size
                assert getattr(package, name) is getattr(module, name)
    assert irn.download is package and irn.download.download_dataset is download.download_dataset


# ---------------------------------------------------------------------- never destroy a user's file
def test_extraction_never_replaces_a_file_it_did_not_write(server, tmp_path, capsys) -> None:
    base, state = server
    members = {"README.md": b"the archive's readme", **image_members(count=2)}
    archive = make_zip(members)
    state.files["/data.zip"] = archive
    (tmp_path / "README.md").write_bytes(b"my notes")
    argv = ["data", "download", f"{base}/data.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "would replace 1 file(s) it did not write" in errors[0]
    assert str(tmp_path / "README.md") in errors[0] and "nothing was extracted" in errors[0]
    assert (tmp_path / "README.md").read_bytes() == b"my notes"
    assert not (tmp_path / "DIV2K_valid_HR").exists()
    # a file identical to the member is no clash; once the user moved theirs away, it extracts
    (tmp_path / "README.md").write_bytes(members["README.md"])
    assert main(argv) == 0
    assert (tmp_path / "DIV2K_valid_HR/0801.png").read_bytes() == members["DIV2K_valid_HR/0801.png"]


def test_files_of_an_earlier_extraction_of_the_same_archive_may_be_replaced(tmp_path) -> None:
    members = image_members(count=2)
    path = tmp_path / "data.zip"
    path.write_bytes(make_zip(members))
    root = tmp_path / "out"
    # an extraction cut short: its list was written, one file is there (from an older copy of the archive)
    (root / "DIV2K_valid_HR").mkdir(parents=True)
    (root / "DIV2K_valid_HR/0801.png").write_bytes(b"older")
    (root / ".irn-extracting-data.zip").write_text("DIV2K_valid_HR/0801.png\nDIV2K_valid_HR/0802.png\n")
    assert extract_zip(path, root) == list(members)
    assert (root / "DIV2K_valid_HR/0801.png").read_bytes() == members["DIV2K_valid_HR/0801.png"]
    # a marker's member list counts the same way (irn data download --force over edited files)
    (root / ".irn-extracting-data.zip").unlink()
    (root / ".irn-extracted-data.zip").write_text("sha256:x\nDIV2K_valid_HR/0802.png\n")
    (root / "DIV2K_valid_HR/0802.png").write_bytes(b"edited")
    assert extract_zip(path, root) == list(members)
    # ... but not a file of the same name that another archive wrote
    other = tmp_path / "other.zip"
    other.write_bytes(make_zip({"DIV2K_valid_HR/0802.png": b"other"}))
    with pytest.raises(UnsafeArchiveError, match="it did not write"):
        extract_zip(other, root)
    assert (root / "DIV2K_valid_HR/0802.png").read_bytes() == members["DIV2K_valid_HR/0802.png"]


def test_a_users_file_under_the_archive_name_is_left_untouched(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    state.files["/data.zip"] = archive
    argv = ["data", "download", f"{base}/data.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]
    (tmp_path / "data.zip").write_bytes(b"a half-finished browser download")
    assert main(argv) == 2
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and f"{tmp_path / 'data.zip'} is not the archive" in errors[0]
    assert "left untouched" in errors[0]
    assert files_under(tmp_path) == {"data.zip"}
    assert (tmp_path / "data.zip").read_bytes() == b"a half-finished browser download"
    assert state.requests == []  # never taken for a partial download to resume
    # the same bytes as the archive: used, not downloaded again, and (yours) not deleted after extraction
    (tmp_path / "data.zip").write_bytes(archive)
    assert main(argv) == 0 and state.requests == []
    assert (tmp_path / "data.zip").read_bytes() == archive
    assert (tmp_path / "DIV2K_valid_HR/0801.png").is_file()


def test_a_second_bad_download_does_not_replace_the_first(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    first, second = archive[:-10] + b"0123456789", archive[:-10] + b"9876543210"
    state.files["/bad.zip"] = first
    argv = ["data", "download", f"{base}/bad.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    state.files["/bad.zip"] = second  # other wrong bytes, same size: kept beside the first
    assert main(argv) == 2
    assert files_under(tmp_path) == {"bad.zip.bad", "bad.zip.bad.1"}
    assert "moved it aside to " + str(tmp_path / "bad.zip.bad.1") in capsys.readouterr().err
    assert (tmp_path / "bad.zip.bad").read_bytes() == first and (tmp_path / "bad.zip.bad.1").read_bytes() == second


def test_the_same_bad_download_again_does_not_pile_up_copies(server, tmp_path, capsys) -> None:
    base, state = server
    archive = make_zip(image_members())
    state.files["/bad.zip"] = archive[:-10] + b"0123456789"
    argv = ["data", "download", f"{base}/bad.zip", "--sha256", sha256(archive), "--root", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    capsys.readouterr()
    assert main(argv) == 2 and main(argv) == 2  # the server keeps sending the same wrong bytes
    assert files_under(tmp_path) == {"bad.zip.bad"}
    assert (tmp_path / "bad.zip.bad").read_bytes() == state.files["/bad.zip"]
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 2
    assert all("refused before and are kept at " + str(tmp_path / "bad.zip.bad") in e for e in errors)


class StopAfter:
    """A stand-in progress bar that raises KeyboardInterrupt (Ctrl+C) at its ``n``-th update."""

    def __init__(self, n: int, updates: list[int]) -> None:
        self.n, self.updates = n, updates

    def __enter__(self) -> StopAfter:
        if self.n == 0:
            raise KeyboardInterrupt
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, count: int) -> None:
        self.updates.append(count)
        if len(self.updates) == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("moment", [0, 2, "verify", "extract"])
def test_ctrl_c_at_any_moment_leaves_a_resumable_state(server, tmp_path, capsys, monkeypatch, moment) -> None:
    """Ctrl+C when the transfer starts (0), after 2 network reads, while verifying, while extracting: the
    folder holds nothing, a ``.part`` of what was received, or the verified archive; the rerun finishes."""
    from irn.datasets import archive as archive_module
    from irn.datasets import transfer
    from irn.zoo import transfer as downloader  # the one downloader, shared with the pretrained models

    base, state = server
    members = image_members(count=4, size=100_000)
    archive = make_zip(members)
    state.files["/big.zip"] = archive
    argv = ["data", "download", f"{base}/big.zip", "--sha256", sha256(archive), "--root", str(tmp_path)]
    updates: list[int] = []
    with monkeypatch.context() as m:
        if isinstance(moment, int):
            m.setattr(downloader, "byte_bar", lambda *a, **k: StopAfter(moment, updates))
        elif moment == "verify":
            m.setattr(transfer, "file_digest", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        else:
            m.setattr(archive_module, "byte_bar", lambda *a, **k: StopAfter(2, updates))
        assert main(argv) == 130
    assert "irn: interrupted" in capsys.readouterr().err
    left = files_under(tmp_path)
    part = tmp_path / "big.zip.part"
    if moment == 0:
        assert left == set()  # no empty .part to stand in the next run's way
    elif moment == 2:
        assert left == {"big.zip.part"} and part.read_bytes() == archive[: sum(updates)]
        assert max(updates) <= 64 << 10  # progress (and Ctrl+C) at a 64 KiB grain
    elif moment == "verify":
        assert left == {"big.zip.part"} and part.read_bytes() == archive  # complete, not yet the archive
    else:
        assert "big.zip" in left and ".irn-extracting-big.zip" in left and ".irn-extracted-big.zip" not in left
    assert main(argv + ["--quiet"]) == 0
    # a zip found in the folder is kept (it could be yours): the one verified before the Ctrl+C too
    kept = {"big.zip"} if moment == "extract" else set()
    assert files_under(tmp_path) == set(members) | {".irn-extracted-big.zip"} | kept
    for name, payload in members.items():
        assert (tmp_path / name).read_bytes() == payload
    if moment == 2:
        assert state.requests[-1][1] == f"bytes={sum(updates)}-"  # resumed where it stopped


def test_a_pipe_at_a_members_path_is_never_written_through(tmp_path) -> None:
    import os

    path = tmp_path / "data.zip"
    path.write_bytes(make_zip({"d/x.png": b"x"}))
    (tmp_path / "out" / "d").mkdir(parents=True)
    os.mkfifo(tmp_path / "out" / "d" / "x.png")
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        extract_zip(path, tmp_path / "out")
