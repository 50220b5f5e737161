"""Pretrained models by name (irn.zoo.catalogue, irn.zoo.pretrained): downloaded on first use from a local
HTTP server (Range support written here) serving files the tests write, verified against their git
blob id, cached under IRN_HOME. The matrix: a good file, a truncated one, a wrong one, the server gone,
a dropped connection, a resumed .part, Ctrl+C mid-download, a cached file changed afterwards."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from helpers import local_http_server, random_irn

import irn
from irn.cli.main import main
from irn.zoo import catalogue, pretrained, transfer
from irn.zoo.catalogue import Pretrained, Remote
from irn.zoo.errors import CheckpointError

OWNER_REPO, COMMIT, FILE_PATH = "owner/repo", "0123456789abcdef0123456789abcdef01234567", "models/Tiny.pth"
URL_PATH = f"/{OWNER_REPO}/{COMMIT}/{FILE_PATH}"  # what the server is asked for


@dataclasses.dataclass
class ServerState:
    """``files``: path -> bytes; ``cut_first``: paths whose first answer stops after half the body."""

    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    cut_first: set[str] = dataclasses.field(default_factory=set)
    requests: list[tuple[str, str | None]] = dataclasses.field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        wanted = self.headers.get("Range")
        state.requests.append((self.path, wanted))
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0  # type: ignore[union-attr]
        if start >= len(data) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in state.cut_first:
            state.cut_first.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, ServerState]]:
    state = ServerState()
    with local_http_server(Handler, state) as url:
        yield url, state


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, bytes]:
    """An official-format x2 state dict (growth 32: about 0.8 MB, a dozen 64 KiB network reads)."""
    model = random_irn(2, 1, growth=32)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return model, path.read_bytes()


def blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """IRN_HOME in the test's folder; no retry waits."""
    folder = tmp_path / "irn-home"
    monkeypatch.setenv("IRN_HOME", str(folder))
    monkeypatch.setattr(transfer.time, "sleep", lambda s: None)
    return folder


def register(
    monkeypatch: pytest.MonkeyPatch, base: str, data: bytes, *, size: int | None = None, name: str = "tiny-x2"
) -> Pretrained:
    """A catalogue entry ``name`` whose file is ``URL_PATH`` on ``base``, pinned to ``data``'s blob id."""
    remote = Remote(OWNER_REPO, COMMIT, FILE_PATH, blob_sha1(data), size, base=base)
    entry = Pretrained(name, "irn", 2, "lossless", "sample", "Apache-2.0", "tests", "Tiny.pth", remote)
    monkeypatch.setitem(catalogue._BY_NAME, name, entry)
    monkeypatch.setattr(catalogue, "CATALOGUE", (*catalogue.CATALOGUE, entry))
    return entry


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def one_line(exc: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
    return message


# ---------------------------------------------------------------------------- the real catalogue
def test_the_catalogue_pins_every_official_file() -> None:
    pinned = {
        "sain-x2-jpeg": ("yang-jin-hai/SAIN", "experiments/pretrained_models/SAINx2_JPEG.pth"),
        "sain-x2-webp": ("yang-jin-hai/SAIN", "experiments/pretrained_models/SAINx2_WebP.pth"),
        "sain-x4-jpeg": ("yang-jin-hai/SAIN", "experiments/pretrained_models/SAINx4_JPEG.pth"),
        "tirn-x2": ("Jingwei-Bao/T-InvBlocks", "experiments/pretrained_TIRN/TIRNx2.pth"),
        "tirn-x4": ("Jingwei-Bao/T-InvBlocks", "experiments/pretrained_TIRN/TIRNx4.pth"),
    }
    commits = {
        "yang-jin-hai/SAIN": "e361d7a0d34b31468f1e47b3e4f181b0e2ca7d46",
        "Jingwei-Bao/T-InvBlocks": "3590f069420ae2e88d4e2804a4b93c4e3dc5530d",
    }
    assert catalogue.names()[:4] == ["x2", "x4", "color", "x2-jpeg"]
    assert catalogue.SHIPPED == {
        "x2": "irn_x2.pt",
        "x4": "irn_x4.pt",
        "color": "irn_color.pt",
        "x2-jpeg": "irn_x2_jpeg.pt",
    }
    for name, (repo, path) in pinned.items():
        entry = catalogue.get(name)
        assert entry is not None and entry.remote is not None and not entry.shipped
        assert (entry.remote.repo, entry.remote.commit, entry.remote.path) == (repo, commits[repo], path)
        assert entry.url == f"https://raw.githubusercontent.com/{repo}/{commits[repo]}/{path}"
        assert re.fullmatch(r"[0-9a-f]{40}", entry.remote.blob_sha1) and entry.licence == "Apache-2.0"
        assert entry.file == Path(path).name
    assert catalogue.get("sain-x2-webp").purpose == "WebP"  # type: ignore[union-attr]
    assert {e.purpose for e in catalogue.CATALOGUE} == {"lossless", "JPEG", "WebP", "colour"}


def test_git_blob_sha1_is_what_git_hash_object_prints(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 300)
    assert pretrained.git_blob_sha1(path) == blob_sha1(path.read_bytes())
    if shutil.which("git"):
        out = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
        assert pretrained.git_blob_sha1(path) == out.stdout.strip()


def test_the_cache_folder_is_irn_home_else_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRN_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalogue.models_dir() == tmp_path / "h" / "models"
    monkeypatch.delenv("IRN_HOME")
    assert catalogue.models_dir() == tmp_path / "xdg" / "irn" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert catalogue.models_dir() == tmp_path / "user" / ".cache" / "irn" / "models"


def test_an_unknown_name_lists_the_known_ones(home: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        irn.load("sain-x3-jpeg")
    one_line(
        exc, "sain-x3-jpeg: no such checkpoint file (shipped models: x2, x4", "sain-x2-jpeg", "tirn-x4", "irn models"
    )


# ---------------------------------------------------------------------------- the download matrix
def test_a_good_file_is_downloaded_once_verified_and_loaded_by_name(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    entry = register(monkeypatch, base, data)
    loaded = irn.load("tiny-x2")
    assert same_weights(loaded, model) and loaded.metadata["source"] == "official"
    assert files_in(home / "models") == {"Tiny.pth"}  # nothing beside it: no .part, no temporary
    assert (home / "models" / "Tiny.pth").read_bytes() == data
    assert catalogue.status(entry) == "cached" and len(state.requests) == 1
    assert same_weights(irn.load("tiny-x2"), model) and len(state.requests) == 1  # the cache, checked again


def test_a_truncated_file_fails_the_check_and_is_moved_aside(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    _, data = model_bytes
    state.files[URL_PATH] = data[: len(data) // 3]  # the server's copy is cut short
    entry = register(monkeypatch, base, data)
    with pytest.raises(pretrained.PretrainedChecksumError) as exc:
        irn.load("tiny-x2")
    one_line(exc, entry.url or "", entry.remote.blob_sha1, str(home / "models" / "Tiny.pth"), "moved it aside")  # type: ignore[union-attr]
    assert files_in(home / "models") == {"Tiny.pth.bad"}  # never under the real name, no .part
    assert isinstance(exc.value, CheckpointError)


def test_the_same_wrong_download_again_is_not_kept_twice(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    _, data = model_bytes
    state.files[URL_PATH] = data[: len(data) // 3]
    register(monkeypatch, base, data)
    with pytest.raises(pretrained.PretrainedChecksumError):
        irn.load("tiny-x2")
    with pytest.raises(pretrained.PretrainedChecksumError) as exc:
        irn.load("tiny-x2")  # the same wrong bytes again: one copy kept, not two
    one_line(exc, "refused before and are kept at " + str(home / "models" / "Tiny.pth.bad"), "nothing was loaded")
    assert files_in(home / "models") == {"Tiny.pth.bad"}
    assert (home / "models" / "Tiny.pth.bad").read_bytes() == data[: len(data) // 3]
    state.files[URL_PATH] = data[: len(data) // 2]  # other wrong bytes: kept beside the first
    with pytest.raises(pretrained.PretrainedChecksumError) as exc:
        irn.load("tiny-x2")
    one_line(exc, "moved it aside to " + str(home / "models" / "Tiny.pth.bad.1"))
    assert files_in(home / "models") == {"Tiny.pth.bad", "Tiny.pth.bad.1"}


def test_a_truncated_file_of_known_size_is_refused_before_the_check(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    _, data = model_bytes
    state.files[URL_PATH] = data[:1000]
    register(monkeypatch, base, data, size=len(data))
    with pytest.raises(CheckpointError) as exc:
        irn.load("tiny-x2")
    one_line(exc, "is 1000 bytes but Tiny.pth should be", "save it as")
    assert files_in(home / "models") == set()


def test_a_wrong_file_is_never_loaded(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    _, data = model_bytes
    other = random_irn(2, 1, growth=32, seed=1)
    path = home.parent / "other.pth"
    torch.save(other.state_dict(), path)
    state.files[URL_PATH] = path.read_bytes()  # a loadable model, but not the pinned one
    register(monkeypatch, base, data)
    with pytest.raises(pretrained.PretrainedChecksumError) as exc:
        irn.load("tiny-x2")
    one_line(exc, "is not the pinned file", blob_sha1(path.read_bytes()), blob_sha1(data))
    assert files_in(home / "models") == {"Tiny.pth.bad"}


def test_the_server_gone_is_one_line_naming_the_url_and_where_to_put_the_file(
    home, model_bytes, monkeypatch, capsys
) -> None:
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, data = model_bytes
    entry = register(monkeypatch, f"http://127.0.0.1:{port}", data)
    dest = home / "models" / "Tiny.pth"
    with pytest.raises(pretrained.PretrainedDownloadError) as exc:
        irn.load("tiny-x2")
    one_line(exc, f"cannot reach {entry.url}", f"save it as {dest}")
    assert files_in(home / "models") == set()
    # the command line says the same in one line, no traceback
    capsys.readouterr()
    assert main(["export", "tiny-x2", "-o", str(home.parent / "out.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("irn: downloading tiny-x2") and err[1].startswith("irn: error: ")
    assert entry.url in err[1] and str(dest) in err[1]
    # a file placed there by hand is used as is: no network needed
    dest.write_bytes(data)
    assert same_weights(irn.load("tiny-x2"), irn.load(dest))


def test_a_dropped_connection_is_resumed_with_a_range_request(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    state.cut_first.add(URL_PATH)
    register(monkeypatch, base, data, size=len(data))
    assert same_weights(irn.load("tiny-x2"), model)
    assert [r for _, r in state.requests] == [None, f"bytes={len(data) // 2}-"]
    assert files_in(home / "models") == {"Tiny.pth"}


def test_a_part_left_by_an_earlier_run_is_resumed(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    (home / "models").mkdir(parents=True)
    (home / "models" / "Tiny.pth.part").write_bytes(data[:300_000])
    assert same_weights(irn.load("tiny-x2"), model)
    assert state.requests == [(URL_PATH, "bytes=300000-")]
    assert files_in(home / "models") == {"Tiny.pth"}


def test_a_complete_part_is_used_without_the_network(home, model_bytes, monkeypatch) -> None:
    """Ctrl+C while the complete .part was being checked: the next run checks it and needs no server."""
    model, data = model_bytes
    register(monkeypatch, "http://127.0.0.1:9", data)  # nothing would answer
    (home / "models").mkdir(parents=True)
    (home / "models" / "Tiny.pth.part").write_bytes(data)
    assert same_weights(irn.load("tiny-x2"), model)
    assert files_in(home / "models") == {"Tiny.pth"}


class StopAfter:
    """A progress bar that raises KeyboardInterrupt (Ctrl+C) at its ``n``-th update."""

    def __init__(self, n: int, updates: list[int]) -> None:
        self.n, self.updates = n, updates

    def __enter__(self) -> StopAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, count: int) -> None:
        self.updates.append(count)
        if len(self.updates) == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("moment", [1, 3, "verify"])
def test_ctrl_c_mid_download_leaves_only_the_part_and_the_rerun_finishes(
    home, server, model_bytes, monkeypatch, moment
) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    updates: list[int] = []
    with monkeypatch.context() as m:
        if moment == "verify":
            m.setattr(pretrained, "file_digest", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        else:
            m.setattr(transfer, "byte_bar", lambda *a, **k: StopAfter(moment, updates))  # type: ignore[arg-type]
        with pytest.raises(KeyboardInterrupt):
            irn.load("tiny-x2")
    part = home / "models" / "Tiny.pth.part"
    assert files_in(home / "models") == {"Tiny.pth.part"}  # never a file under the real name
    received = len(data) if moment == "verify" else sum(updates)
    assert part.read_bytes() == data[:received]
    assert same_weights(irn.load("tiny-x2"), model)
    assert files_in(home / "models") == {"Tiny.pth"}
    if moment != "verify":
        assert state.requests[-1][1] == f"bytes={received}-"  # resumed where it stopped
    else:
        assert len(state.requests) == 1  # the complete .part needed no second request


def test_ctrl_c_through_the_command_line_is_interrupted_not_a_traceback(
    home, server, model_bytes, monkeypatch, capsys
) -> None:
    base, state = server
    _, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    monkeypatch.setattr(transfer, "byte_bar", lambda *a, **k: StopAfter(2, []))
    assert main(["export", "tiny-x2", "-o", str(home.parent / "out.pt")]) == 130
    assert "irn: interrupted" in capsys.readouterr().err
    assert files_in(home / "models") == {"Tiny.pth.part"}


def test_a_cached_file_changed_afterwards_is_never_loaded(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    irn.load("tiny-x2")
    cached = home / "models" / "Tiny.pth"
    other = random_irn(2, 1, growth=32, seed=2)
    torch.save(other.state_dict(), cached)  # replaced behind irn's back
    with pytest.raises(pretrained.PretrainedChecksumError) as exc:
        irn.load("tiny-x2")
    one_line(exc, f"the file found at {cached}", "moved it aside")
    assert files_in(home / "models") == {"Tiny.pth.bad"}
    assert same_weights(irn.load("tiny-x2"), model)  # the rerun downloads the pinned file again


def test_an_unwritable_cache_is_one_line(tmp_path, model_bytes, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("IRN_HOME", str(blocker))
    _, data = model_bytes
    register(monkeypatch, "http://127.0.0.1:9", data)
    with pytest.raises(pretrained.PretrainedDownloadError) as exc:
        irn.load("tiny-x2")
    one_line(exc, "cannot write to the model cache", "IRN_HOME")


# ---------------------------------------------------------------------------- two irn processes at once
def test_a_download_under_way_elsewhere_is_waited_for_not_repeated(
    home, server, model_bytes, monkeypatch, capsys
) -> None:
    """Another irn holds the download's lock (``<file>.lock``): this one waits, then uses the file the other
    verified and renamed into place, without a request of its own (before the lock, both wrote the one
    ``.part``: a corrupt file moved aside, or a FileNotFoundError for the one whose ``.part`` was renamed)."""
    import fcntl

    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    models = home / "models"
    models.mkdir(parents=True)
    lock = models / "Tiny.pth.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what the other process holds while it downloads
    result: dict[str, object] = {}
    waiter = threading.Thread(target=lambda: result.update(model=irn.load("tiny-x2")))
    waiter.start()
    for _ in range(200):  # until the waiter says it waits
        if "waiting for another irn" in capsys.readouterr().err:
            break
        waiter.join(0.05)
    else:
        pytest.fail("irn.load did not wait for the download's lock")
    assert waiter.is_alive() and state.requests == []
    (models / "Tiny.pth").write_bytes(data)  # the other process finishes: verified, renamed into place
    lock.unlink()
    os.close(fd)
    waiter.join(30)
    assert same_weights(result["model"], model)  # type: ignore[arg-type]
    assert state.requests == [] and files_in(models) == {"Tiny.pth"}


def test_concurrent_first_uses_download_once_and_all_load(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    model, data = model_bytes
    state.files[URL_PATH] = data
    entry = register(monkeypatch, base, data)
    slow = transfer._transfer

    def slowly(*args: object, **kwargs: object) -> bool:
        time.sleep(0.3)  # the transfer takes a while: the others start meanwhile
        return slow(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transfer, "_transfer", slowly)
    results: list[object] = []

    def first_use() -> None:
        try:
            results.append(pretrained.fetch(entry, options=transfer.FetchOptions(progress=False)))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [home / "models" / "Tiny.pth"] * 3
    assert len(state.requests) == 1 and files_in(home / "models") == {"Tiny.pth"}
    assert same_weights(irn.load("tiny-x2"), model)


def test_a_cache_that_cannot_hold_the_lock_is_one_line(home, model_bytes, monkeypatch) -> None:
    """A cache folder irn may not write to (its lock file refused) is the same one line as one it cannot create."""
    _, data = model_bytes
    register(monkeypatch, "http://127.0.0.1:9", data)

    def refused(path: Path, waiting: str) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(pretrained, "exclusive", refused)
    with pytest.raises(pretrained.PretrainedDownloadError) as exc:
        irn.load("tiny-x2")
    one_line(exc, "cannot write to the model cache", "Permission denied", "IRN_HOME")


def test_a_device_that_is_not_there_is_refused_before_any_download(home, server, model_bytes, monkeypatch) -> None:
    base, state = server
    _, data = model_bytes
    state.files[URL_PATH] = data
    register(monkeypatch, base, data)
    for load in (irn.load, irn.zoo.load_irn):
        with pytest.raises(irn.InputError, match="not a device name"):
            load("tiny-x2", device="gpu0")
    assert state.requests == [] and files_in(home / "models") == set()


def test_set_aside_never_counts_a_link_as_the_kept_copy(tmp_path: Path) -> None:
    """A ``.bad`` that is a link to the same bytes is not ours to keep them in: the new copy is moved aside."""
    from irn.zoo.transfer import file_digest, set_aside

    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"wrong bytes")
    (tmp_path / "m.pth.bad").symlink_to(elsewhere)
    refused = tmp_path / "m.pth.part"
    refused.write_bytes(b"wrong bytes")
    digest = file_digest(refused, "sha256")
    where, already = set_aside(refused, tmp_path / "m.pth.bad", digest, lambda p: file_digest(p, "sha256"))
    assert (where, already) == (tmp_path / "m.pth.bad.1", False)
    assert where.read_bytes() == b"wrong bytes" and not refused.exists()
    again = tmp_path / "m.pth.part"
    again.write_bytes(b"wrong bytes")
    where, already = set_aside(again, tmp_path / "m.pth.bad", digest, lambda p: file_digest(p, "sha256"))
    assert (where, already) == (tmp_path / "m.pth.bad.1", True) and not again.exists()  # the kept copy found
