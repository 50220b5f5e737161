"""irn hybrid: the DCT-diagonal blur, the ADMM solver against the plain recipe, outputs, CLI errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import fft as sfft

from irn.cli.main import main
from irn.errors import IRNError
from irn.experiments import hybrid
from irn.imaging.io import write_image
from irn.imaging.resize import imresize


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These images are tiny: one thread avoids thread start-up costs dominating on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pattern(seed: int, size: int = 48) -> torch.Tensor:
    """(3, size, size) in [0, 1]: random blobs at two scales (an image with edges and texture)."""
    g = torch.Generator().manual_seed(seed)
    coarse = imresize(torch.rand(3, size // 8, size // 8, generator=g, dtype=torch.float64), size=(size, size))
    fine = torch.rand(3, size, size, generator=g, dtype=torch.float64)
    return (0.7 * coarse + 0.3 * fine).clamp(0, 1).float()


@pytest.mark.parametrize(("h", "w", "sigma"), [(20, 28, 1.5), (20, 28, 12.0), (9, 7, 3.0)])
def test_dct_diagonalises_the_symmetric_blur(h: int, w: int, sigma: float) -> None:
    x = torch.rand(3, h, w, dtype=torch.float64)
    eig = np.outer(hybrid.dct_eigenvalues(h, sigma), hybrid.dct_eigenvalues(w, sigma))
    via_dct = sfft.idctn(eig * sfft.dctn(x.numpy(), axes=(-2, -1), norm="ortho"), axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(hybrid.blur(x, sigma).numpy(), via_dct, atol=1e-12)


def test_blur_is_self_adjoint_and_keeps_constants() -> None:
    x, y = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    assert torch.allclose((hybrid.blur(x, 2.5) * y).sum(), (x * hybrid.blur(y, 2.5)).sum())
    flat = torch.full((3, 17, 23), 0.3, dtype=torch.float64)
    assert torch.allclose(hybrid.blur(flat, 4.0), flat)


def test_admm_reaches_a_lower_loss_than_the_plain_recipe() -> None:
    near, far = pattern(1), pattern(2)
    config = hybrid.HybridConfig(sigma=2.0)
    x_gd, _ = hybrid.solve_gd(near, far, hybrid.HybridConfig(sigma=2.0, solver="gd", steps=200, lr=0.3))
    x_admm, info = hybrid.solve_admm(near, far, config)
    loss_gd = float(hybrid.hybrid_loss(x_gd.double(), near.double(), far.double(), config)[0])
    loss_admm = float(hybrid.hybrid_loss(x_admm.double(), near.double(), far.double(), config)[0])
    loss_near = float(hybrid.hybrid_loss(near.double(), near.double(), far.double(), config)[0])
    assert loss_admm < loss_gd < loss_near
    assert info.stopped == "converged"
    assert x_admm.min() >= 0 and x_admm.max() <= 1


def test_admm_solution_is_stationary() -> None:
    """Projected gradient at the ADMM result is tiny compared with at the start (KKT for the box)."""
    near, far = pattern(3), pattern(4)
    config = hybrid.HybridConfig(sigma=3.0, tol=1e-6, iterations=300)
    x, _ = hybrid.solve_admm(near, far, config)

    def projected_gradient(x: torch.Tensor) -> float:
        x = x.double().requires_grad_(True)
        (grad,) = torch.autograd.grad(hybrid.hybrid_loss(x, near.double(), far.double(), config)[0], x)
        step = (x - grad * x.numel()).clamp(0, 1) - x
        return float(step.detach().norm())

    assert projected_gradient(x) < 0.02 * projected_gradient(near)


def test_admm_stays_stable_for_a_heavy_far_weight() -> None:
    near, far = pattern(5), pattern(6)
    losses = []
    for iterations in (30, 200):
        config = hybrid.HybridConfig(sigma=2.0, far_weight=32.0, iterations=iterations, tol=0.0)
        x, _ = hybrid.solve_admm(near, far, config)
        losses.append(float(hybrid.hybrid_loss(x.double(), near.double(), far.double(), config)[0]))
    x_gd, _ = hybrid.solve_gd(near, far, hybrid.HybridConfig(sigma=2.0, far_weight=32.0, solver="gd"))
    loss_gd = float(hybrid.hybrid_loss(x_gd.double(), near.double(), far.double(), config)[0])
    assert losses[1] <= losses[0] * (1 + 1e-4)
    assert losses[1] < loss_gd


def test_without_the_far_term_the_result_is_near() -> None:
    near, far = pattern(7, 32), pattern(8, 32)
    x, _ = hybrid.solve_admm(near, far, hybrid.HybridConfig(far_weight=0.0))
    assert torch.allclose(x, near, atol=1e-5)


def test_config_validation() -> None:
    with pytest.raises(IRNError, match="--sigma"):
        hybrid.HybridConfig(sigma=0)
    with pytest.raises(IRNError, match="--near-weight"):
        hybrid.HybridConfig(near_weight=0)
    with pytest.raises(IRNError, match="--solver"):
        hybrid.HybridConfig(solver="sgd")  # type: ignore[arg-type]


def test_viewing_strip_shows_each_distance() -> None:
    x = pattern(9, 64)
    strip = hybrid.viewing_strip(x, (1, 2, 4), sigma=2.0)
    assert strip.height > 64
    assert strip.width >= 64 + 32 + 16 + 64
    far_view = hybrid.view_at_distance(x, 4)
    assert far_view.shape == (3, 16, 16) and far_view.min() >= 0 and far_view.max() <= 1


def test_cli_writes_png_strip_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    near_path, far_path = tmp_path / "near.png", tmp_path / "far.png"
    write_image(pattern(10, 64), near_path)
    write_image(pattern(11, 80)[:, :, :60], far_path)  # another size and aspect: cropped and resized
    out = tmp_path / "res" / "hy.png"
    argv = ["hybrid", str(near_path), str(far_path), "-o", str(out), "--size", "48x40", "--sigma", "2"]
    assert main([*argv, "--far-weight", "3", "--distances", "1,2,4"]) == 0
    with Image.open(out) as im:
        assert im.size == (48, 40) and im.mode == "RGB"
    with Image.open(tmp_path / "res" / "hy_strip.png") as strip:
        assert strip.width > 48 + 24 + 12
    doc = json.loads((tmp_path / "res" / "hy.json").read_text())
    assert doc["size_wh"] == [48, 40] and doc["config"]["far_weight"] == 3.0 and doc["distances"] == [1, 2, 4]
    assert doc["loss"] == pytest.approx(doc["near_term"] + doc["far_term"])
    assert doc["solver"]["solver"] == "admm"
    assert "loss" in capsys.readouterr().out

    assert main([*argv, "--solver", "gd", "--steps", "3", "-o", str(tmp_path / "gd.png")]) == 0
    assert json.loads((tmp_path / "gd.json").read_text())["solver"]["iterations"] == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sigma", "-1"], "--sigma"),
        (["--size", "12"], "--size"),
        (["--distances", "1,x"], "--distances"),
        (["--far-weight", "-2"], "--far-weight"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    near_path = tmp_path / "near.png"
    write_image(pattern(12, 16), near_path)
    assert main(["hybrid", str(near_path), str(near_path), "-o", str(tmp_path / "o.png"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irn: error:") and message in err and "\n" not in err


def test_cli_missing_input_and_bad_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    near_path = tmp_path / "near.png"
    write_image(pattern(13, 16), near_path)
    assert main(["hybrid", str(near_path), str(tmp_path / "nope.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert "no such FAR image" in capsys.readouterr().err
    assert main(["hybrid", str(near_path), str(near_path), "-o", str(tmp_path / "o.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
    for out, message in ((near_path / "o.png", f"{near_path} is a file, not a folder"), (tmp_path, "is a folder")):
        assert main(["hybrid", str(near_path), str(near_path), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"irn: error: -o {out}: ") and message in err and "\n" not in err, err


@pytest.mark.parametrize(
    ("taken", "output", "message"),
    [
        ("hy2/h_strip.png", "hy2/h.png", "-o (its strip) {d}/hy2/h_strip.png: is a folder, expected a file"),
        ("hy2/h.json", "hy2/h.png", "-o (its JSON) {d}/hy2/h.json: is a folder, expected a file"),
        (None, "near.png/sub/h.png", "-o {d}/near.png/sub/h.png: {d}/near.png is a file, not a folder"),
    ],
)
def test_cli_refuses_an_unwritable_output_before_the_solve(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    taken: str | None,
    output: str,
    message: str,
) -> None:
    """Every file hybrid writes (the PNG, its strip, its JSON) is checked up front: one line, exit 2,
    no solve and nothing written."""
    near_path = tmp_path / "near.png"
    write_image(pattern(14, 16), near_path)
    if taken is not None:
        (tmp_path / taken).mkdir(parents=True)

    def no_solve(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the hybrid was solved before the output was checked")

    monkeypatch.setattr(hybrid, "make_hybrid", no_solve)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["hybrid", str(near_path), str(near_path), "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"irn: error: {message.format(d=tmp_path)}", err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no partial output
