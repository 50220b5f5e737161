"""irn craft: exact resizer matrices, crafted thumbnails verified through the real libraries,
the box-constrained solver against a generic QP solver, IRN crafting, the detector, the CLI."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import public_names, random_irn, shared_path
from PIL import Image

from irn.cli.main import main
from irn.experiments.craft import attack, detect, resizers, solver
from irn.nn.network import IRN

HAS_CV2 = importlib.util.find_spec("cv2") is not None
NO_CV2 = "OpenCV (the 'opencv' extra, opencv-python-headless) is not installed"


def _resizers() -> list:
    return [
        pytest.param(name, marks=pytest.mark.skipif(not HAS_CV2, reason=NO_CV2)) if name.startswith("cv2-") else name
        for name in resizers.LINEAR_RESIZERS
    ]


def _scene(size: int, seed: int, kind: str) -> np.ndarray:
    """A smooth synthetic photo-like (size, size, 3) uint8 picture, drawn at 4x and Lanczos-reduced."""
    rng = np.random.default_rng(seed)
    n = size * 4
    yy, xx = np.mgrid[0:n, 0:n] / n
    channels = []
    for c in range(3):
        if kind == "cover":
            v = 0.5 + 0.3 * np.sin(2 * np.pi * (xx * (1 + c) + rng.random())) * np.cos(2 * np.pi * yy * 1.5)
            v += 0.15 * (xx - yy)
        else:  # a disc and bars: a different picture
            disc = ((xx - 0.4) ** 2 + (yy - 0.55) ** 2 < 0.08).astype(float)
            bars = (np.sin(2 * np.pi * 4 * (xx + 0.3 * c)) > 0).astype(float)
            v = 0.15 + 0.6 * disc + 0.2 * bars
        channels.append(v)
    arr = (np.clip(np.stack(channels, -1), 0, 1) * 255).round().astype(np.uint8)
    return np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.LANCZOS))


def _float_reference(name: str, x: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    """The library's own floating-point resize of x (H, W, 3) in [0, 1] to out (h, w)."""
    h, w = out
    if name.startswith("pil-"):
        flt = {
            "pil-nearest": Image.Resampling.NEAREST,
            "pil-bilinear": Image.Resampling.BILINEAR,
            "pil-bicubic": Image.Resampling.BICUBIC,
            "pil-lanczos": Image.Resampling.LANCZOS,
        }[name]
        planes = [Image.fromarray(x[..., c].astype(np.float32), mode="F") for c in range(3)]
        return np.stack([np.asarray(p.resize((w, h), flt)) for p in planes], -1).astype(np.float64)
    if name.startswith("cv2-"):
        import cv2

        flag = {"cv2-nearest": cv2.INTER_NEAREST, "cv2-linear": cv2.INTER_LINEAR, "cv2-area": cv2.INTER_AREA}[name]
        return cv2.resize(x, (w, h), interpolation=flag)
    t = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
    if name.startswith("torch-"):
        mode = "bicubic" if "bicubic" in name else "bilinear"
        y = torch.nn.functional.interpolate(
            t, size=(h, w), mode=mode, align_corners=False, antialias=name.endswith("-aa")
        )
    else:
        from irn.imaging.resize import imresize

        y = imresize(t, size=(h, w))
    return y[0].numpy().transpose(1, 2, 0)


@pytest.mark.parametrize("name", _resizers())
def test_matrices_match_the_library(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((37, 29, 3))
    op = resizers.resize_matrices(name, (37, 29), (13, 11))
    ours = op.apply(x)
    theirs = _float_reference(name, x, (13, 11))
    assert ours.shape == theirs.shape == (13, 11, 3)
    assert np.abs(ours - theirs).max() < 2e-6  # Pillow's float path stores float32
    # the library's 8-bit path: within one grey level of the rounded linear map on a smooth image
    smooth = _scene(64, 0, "cover")
    op64 = resizers.resize_matrices(name, (64, 64), (24, 20))
    lib = resizers.library_resize(smooth, name, (24, 20)).astype(np.float64)
    assert np.abs(lib - np.round(op64.apply(smooth.astype(np.float64)))).max() <= 1


@pytest.mark.parametrize("name", _resizers())
def test_crafted_thumbnail_through_the_library(name: str, tmp_path: Path) -> None:
    cover, target = _scene(64, 0, "cover"), _scene(32, 1, "target")
    result = attack.craft(cover, target, name)
    path = tmp_path / "x.png"
    Image.fromarray(result.image).save(path)
    with Image.open(path) as im:
        reopened = np.asarray(im.convert("RGB"))
    thumb = resizers.library_resize(reopened, name, (32, 32))
    assert resizers.psnr(thumb, target) >= 40
    assert resizers.psnr(reopened, cover) >= result.psnr_bound - 0.2
    check = attack.verify(reopened, cover, target, name)
    assert check.psnr_target == pytest.approx(resizers.psnr(thumb, target))


def test_pillow_own_resize_shows_the_target(tmp_path: Path) -> None:
    """Independent of library_resize: Image.open(...).resize(...) with Pillow's default filter."""
    cover, target = _scene(64, 2, "cover"), _scene(32, 3, "target")
    result = attack.craft(cover, target, "pil-bicubic")
    path = tmp_path / "x.png"
    Image.fromarray(result.image).save(path)
    with Image.open(path) as im:
        thumb = np.asarray(im.resize((32, 32)))  # Pillow's default: BICUBIC, antialiased
    assert resizers.psnr(thumb, target) >= 40
    assert resizers.psnr(result.image, cover) >= result.psnr_bound - 0.2
    assert resizers.psnr(result.image, cover) < resizers.psnr(cover, cover)  # it did change


def test_least_change_is_exact_and_minimal() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((24, 20, 3)) * 255
    b = rng.random((8, 10, 3)) * 255
    op = resizers.resize_matrices("pil-bicubic", (24, 20), (8, 10))
    x = solver.least_change(a, b, op)
    assert np.abs(op.apply(x) - b).max() < 1e-8
    # any other solution of D x = B is farther from A: add a null-space direction
    noise = rng.standard_normal(a.shape)
    other = x + noise - op.pinv(op.apply(noise))
    assert np.abs(op.apply(other) - b).max() < 1e-8
    assert np.sum((other - a) ** 2) > np.sum((x - a) ** 2)


def test_boxed_solver_matches_dykstra_projection() -> None:
    """The solver's x is the projection of A onto {D x = B} and the box: compare with Dykstra's
    alternating projections (slow, but a plainly correct reference) on a dense small problem."""
    rng = np.random.default_rng(3)
    a = np.clip(rng.normal(200, 60, (12, 10, 1)), 0, 255)  # bright cover: the bound is active
    b = rng.uniform(30, 90, (6, 5, 1))
    op = resizers.resize_matrices("pil-bilinear", (12, 10), (6, 5))
    x, info = solver.solve_boxed(a, b, op, tol=1e-6, stall=0.0, max_newton=100)
    assert info.clipped_fraction > 0.05
    dense = np.kron(op.rows.toarray(), op.cols.toarray())
    pinv = np.linalg.pinv(dense)
    ref, p, q = a.ravel().copy(), np.zeros(a.size), np.zeros(a.size)
    for _ in range(20000):
        y = ref + p + pinv @ (b.ravel() - dense @ (ref + p))
        p = ref + p - y
        ref_new = np.clip(y + q, 0, 255)
        q = y + q - ref_new
        ref = ref_new
    assert np.abs(dense @ ref - b.ravel()).max() < 1e-3  # Dykstra converged (feasible problem)
    assert np.abs(x.ravel() - ref).max() < 0.01
    assert x.min() >= 0 and x.max() <= 255


def _tiny_irn(seed: int = 0) -> IRN:
    """Two coupling blocks as a fresh IRN has them (the Haar transform) but with random last
    convolutions, N(0, 0.05), so that the couplings do something; frozen."""
    return random_irn(2, 2, std=None, last_std=0.05, seed=seed).requires_grad_(False)


def test_irn_downscale_craft_reaches_the_target() -> None:
    model = _tiny_irn()
    cover, target = _scene(32, 4, "cover"), _scene(16, 5, "target")
    result = attack.craft_irn(cover, target, model, weight=math.inf, rounds=1, gauss_newton=3)
    stages = result.details["stages"]
    assert [s["stage"] for s in stages] == ["box", "gauss-newton", "gauss-newton", "gauss-newton"]
    assert stages[-1]["psnr_target"] > stages[0]["psnr_target"] + 3  # the true Jacobian corrects the couplings
    check = attack.verify(attack.png_roundtrip(result.image), cover, target, "irn:", model=model)
    assert check.psnr_target >= 40
    # a smaller weight trades target fidelity for cover fidelity
    soft = attack.craft_irn(cover, target, model, weight=1.0, rounds=1, gauss_newton=1)
    soft_check = attack.verify(attack.png_roundtrip(soft.image), cover, target, "irn:", model=model)
    assert soft_check.psnr_cover > check.psnr_cover + 1
    assert soft_check.psnr_target < check.psnr_target


def test_irn_adam_steps_lower_the_objective() -> None:
    model = _tiny_irn(1)
    cover, target = _scene(32, 6, "cover"), _scene(16, 7, "target")
    weight = 3.0

    def objective(r: attack.CraftResult) -> float:
        x = r.image.astype(np.float64)
        lr = attack._irn_lr(model, x)
        return float(np.mean((x - cover) ** 2) + weight * np.mean((lr - target) ** 2))

    before = attack.craft_irn(cover, target, model, weight=weight, rounds=1, gauss_newton=0, steps=0)
    after = attack.craft_irn(cover, target, model, weight=weight, rounds=1, gauss_newton=0, steps=8)
    assert objective(after) < objective(before)


def test_reverse_craft_improves_on_its_start() -> None:
    model = _tiny_irn(2)
    cover, target = _scene(16, 8, "cover"), _scene(32, 9, "target")
    result = attack.craft_reverse(cover, target, model, weight=10.0, steps=15)
    assert result.image.shape == (16, 16, 3) and result.upscaled.shape == (32, 32, 3)

    def loss(pc: float, pt: float) -> float:
        return 10 ** (-pc / 10) + 10.0 * 10 ** (-pt / 10)

    assert loss(result.psnr_cover, result.psnr_target) < loss(result.psnr_cover_start, result.psnr_target_start)
    with torch.no_grad():
        lr = torch.from_numpy(result.image.transpose(2, 0, 1).copy())[None].float() / 255
        up = resizers.as_uint8(model.upscale(lr, z="zero"))
    assert resizers.psnr(up, target) == pytest.approx(result.psnr_target)


def test_check_flags_a_crafted_image_and_passes_natural_ones() -> None:
    cover, target = _scene(128, 10, "cover"), _scene(32, 11, "target")
    crafted = attack.craft(cover, target, "pil-nearest").image
    flagged = detect.check_image(crafted)
    assert flagged.suspicious and flagged.min_psnr < detect.CHECK_THRESHOLD_DB
    assert flagged.worst_size == (32, 32) and flagged.worst_method == "nearest"
    assert not detect.check_image(cover).suspicious
    cv2_style = attack.craft(cover, target, "torch-bilinear").image  # samples at phase 0 (between pixels)
    assert detect.check_image(cv2_style).suspicious


def test_check_passes_photos() -> None:
    folder = shared_path("datasets", "Set14", "HR")
    for name in ("lenna.png", "baboon.png", "ppt3.png"):
        with Image.open(folder / name) as im:
            report = detect.check_image(np.asarray(im.convert("RGB")))
        assert not report.suspicious, (name, report.min_psnr)


def _save(arr: np.ndarray, path: Path) -> Path:
    Image.fromarray(arr).save(path)
    return path


def test_cli_craft_writes_png_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cover = _save(_scene(64, 12, "cover"), tmp_path / "cover.png")
    target = _save(_scene(32, 13, "target"), tmp_path / "target.png")
    out, js = tmp_path / "x.png", tmp_path / "r.json"
    code = main([
        "craft", str(cover), str(target), "-o", str(out), "--resizer", "pil-lanczos", "--size", "32x32",
        "--json", str(js),
    ])  # fmt: skip
    assert code == 0
    doc = json.loads(js.read_text())
    assert json.loads(capsys.readouterr().out) == doc
    with Image.open(out) as im:
        thumb = np.asarray(im.resize((32, 32), Image.Resampling.LANCZOS))
    with Image.open(target) as im:
        assert resizers.psnr(thumb, np.asarray(im)) == pytest.approx(doc["psnr_target"])
    assert doc["psnr_target"] >= 40 and doc["bound_gap_db"] <= 0.2
    assert doc["size"] == [32, 32] and doc["resizer"] == "pil-lanczos"


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cover = _scene(128, 14, "cover")
    crafted = attack.craft(cover, _scene(64, 15, "target"), "pil-nearest").image
    assert main(["craft", "--check", str(_save(crafted, tmp_path / "c.png"))]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "suspicious"
    assert main(["craft", "--check", str(_save(cover, tmp_path / "n.png"))]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "clean"


def test_cli_irn_and_reverse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import irn

    ckpt = irn.save(_tiny_irn(3), tmp_path / "tiny.pt", {"note": "test"})
    cover = _save(_scene(32, 16, "cover"), tmp_path / "cover.png")
    target = _save(_scene(16, 17, "target"), tmp_path / "target.png")
    code = main([
        "craft", str(cover), str(target), "-o", str(tmp_path / "x.png"), "--resizer", f"irn:{ckpt}",
        "--gauss-newton", "1",
    ])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["psnr_target"] > 30 and doc["psnr_bound"] is None
    big = _save(_scene(32, 18, "target"), tmp_path / "big.png")
    small = _save(_scene(16, 19, "cover"), tmp_path / "small.png")
    code = main([
        "craft", "--reverse", str(small), str(big), "-o", str(tmp_path / "lr.png"), "--resizer", f"irn:{ckpt}",
        "--steps", "5", "--upscaled", str(tmp_path / "up.png"),
    ])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["size"] == [16, 16] and doc["upscaled_size"] == [32, 32]
    assert (tmp_path / "up.png").is_file()


def test_irn_progress_hook_counts_the_units_and_changes_nothing() -> None:
    model = _tiny_irn(4)
    cover, target = _scene(32, 22, "cover"), _scene(16, 23, "target")
    for weight, steps in ((5.0, 2), (math.inf, 2)):
        settings = {"rounds": 2, "gauss_newton": 2, "cg_steps": 3, "steps": steps}
        stages: list[str] = []
        hooked = attack.craft_irn(cover, target, model, weight=weight, progress=stages.append, **settings)
        plain = attack.craft_irn(cover, target, model, weight=weight, **settings)
        assert np.array_equal(hooked.image, plain.image)
        assert len(stages) == attack.craft_irn_units(weight=weight, **settings)
        adam = ["Adam"] * (steps if math.isfinite(weight) else 0)
        assert stages == ["box round"] * 2 + ["Gauss-Newton"] * 6 + adam
    stages = []
    attack.craft_reverse(_scene(16, 24, "cover"), _scene(32, 25, "target"), model, steps=4, progress=stages.append)
    assert stages == ["Adam"] * 4


class _FakeBar:
    """Stands in for irn.progress.progress_bar: records the total, the updates and the descriptions."""

    made: list[_FakeBar] = []

    def __init__(self, *, total: int, desc: str, **_: object) -> None:
        self.total, self.desc, self.count, self.descs = total, desc, 0, []
        _FakeBar.made.append(self)

    def __enter__(self) -> _FakeBar:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def update(self, n: int) -> None:
        self.count += n

    def set_description_str(self, desc: str, refresh: bool = True) -> None:
        self.descs.append(desc)


def test_cli_craft_progress_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import irn
    import irn.progress

    ckpt = irn.save(_tiny_irn(5), tmp_path / "tiny.pt", {"note": "test"})
    cover = _save(_scene(32, 26, "cover"), tmp_path / "cover.png")
    target = _save(_scene(16, 27, "target"), tmp_path / "target.png")
    code = main([
        "craft", str(cover), str(target), "-o", str(tmp_path / "x.png"), "--resizer", f"irn:{ckpt}",
        "--gauss-newton", "1", "--cg-steps", "2", "--steps", "2", "--weight", "5", "--curve", "2,inf",
    ])  # fmt: skip
    assert code == 0
    assert "\r" not in capsys.readouterr().err  # stderr is not a terminal: the real bar stays silent
    monkeypatch.setattr(irn.progress, "progress_bar", _FakeBar)
    _FakeBar.made = []
    code = main([
        "craft", str(cover), str(target), "-o", str(tmp_path / "y.png"), "--resizer", f"irn:{ckpt}",
        "--gauss-newton", "1", "--cg-steps", "2", "--steps", "2", "--weight", "5", "--curve", "2,inf",
    ])  # fmt: skip
    assert code == 0
    craft_bar, curve_bar = _FakeBar.made
    assert (craft_bar.total, craft_bar.count) == (1 + 2 + 2, 5)  # box round, CG steps, Adam steps
    assert craft_bar.desc.startswith("crafting for irn:") and craft_bar.descs[-1].endswith(": Adam")
    assert (curve_bar.total, curve_bar.count) == (5 + 3, 8)  # weight inf skips Adam
    assert "weight 2 (1/2), box round" in curve_bar.descs[0] and "weight inf (2/2)" in curve_bar.descs[-1]
    big = _save(_scene(32, 28, "target"), tmp_path / "big.png")
    small = _save(_scene(16, 29, "cover"), tmp_path / "small.png")
    _FakeBar.made = []
    code = main([
        "craft", "--reverse", str(small), str(big), "-o", str(tmp_path / "lr.png"), "--resizer", f"irn:{ckpt}",
        "--steps", "3",
    ])  # fmt: skip
    assert code == 0
    (bar,) = _FakeBar.made
    assert (bar.total, bar.count) == (3, 3) and bar.descs == [f"reverse craft for irn:{ckpt}: Adam"] * 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.png", "t.png", "-o", "x.png"], "no such file"),
        (["c.png", "t.png", "-o", "x.png", "--size", "12"], "--size must look like"),
        (["c.png", "t.png", "-o", "x.png", "--size", "0x5"], "--size must be at least 1 pixels per side"),
        (["c.png", "t.png", "-o", "x.png", "--resizer", "pil-box"], "unknown resizer 'pil-box'"),
        (["c.png", "t.png", "-o", "x.jpg"], "must be a .png"),
        (["c.png", "t.png"], "-o OUT.png"),
        (["c.png", "t.png", "-o", "x.png", "--size", "128x128"], "not smaller"),
        (["--check", "c.png", "t.png"], "--check takes one IMAGE"),
        (["--reverse", "c.png", "t.png", "-o", "x.png"], "--reverse needs an IRN"),
        (["c.png", "t.png", "-o", "x.png", "--resizer", "irn:nope.pt"], "no such checkpoint"),
        (["c.png", "t.png", "-o", "x.png", "--json", "."], "--json .: is a folder, expected a file"),
        (["c.png", "t.png", "-o", "c.png/x.png"], "-o c.png/x.png: c.png is a file, not a folder"),
        (["c.png", "t.png", "-o", "c.png"], "-o c.png is the COVER image: writing it would overwrite it"),
        (["c.png", "t.png", "-o", "./t.png"], "-o t.png is the TARGET image: writing it would overwrite it"),
        (["c.png", "t.png", "-o", "x.png", "--json", "c.png"], "--json c.png is the COVER image: writing it would"),
        (["--check", "c.png", "--json", "c.png"], "--json c.png is the IMAGE: writing it would overwrite it"),
        (["--check", "c.png", "-o", "x.png"], "--check writes no image: drop -o"),
        (["c.png", "t.png", "-o", "x.png", "--upscaled", "u.png"], "--upscaled applies to --reverse only"),
        (
            ["--reverse", "c.png", "t.png", "-o", "x.png", "--resizer", "irn:x2", "--upscaled", "x.png"],
            "--upscaled x.png is the -o output: writing it would overwrite it",
        ),
        (["c.png", "t.png", "-o", "x.png", "--weight", "5"], "--weight applies to irn:MODEL resizers and --reverse"),
        (["--reverse", "c.png", "t.png", "-o", "x.png", "--resizer", "irn:x2", "--weight", "inf"], "finite --weight"),
        (["c.png", "t.png", "-o", "sub.png"], "-o sub.png: is a folder, expected a file"),
        (["c.png", "t.png", "-o", "x.png", "--json", "c.png/f.json"], "c.png is a file, not a folder"),
        (["--check", "c.png", "--json", "."], "--json .: is a folder"),
        (["--check", "c.png", "--threshold", "nan"], "--threshold must be a finite number of dB, got nan"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(_scene(64, 20, "cover"), tmp_path / "c.png")
    _save(_scene(32, 21, "target"), tmp_path / "t.png")
    (tmp_path / "sub.png").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["craft", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irn: error:") and "\n" not in err and message in err


def test_the_package_re_exports_every_public_name_of_its_modules() -> None:
    """``from irn.experiments.craft import X`` (and ``irn.craft.X``) works for each public X of the parts."""
    import irn
    import irn.experiments.craft as package

    for module in (resizers, solver, attack, detect):
        public = public_names(module)
        missing = sorted(name for name in public if name not in package.__all__)
        assert not missing, f"{module.__name__}: {missing}"
        for name in public:
            assert getattr(package, name) is getattr(module, name)
    assert irn.craft is package and irn.craft.craft is attack.craft
