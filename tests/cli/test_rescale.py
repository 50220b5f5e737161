"""`irn rescale` and `irn chart` end to end through `irn.cli.main(argv)`, with a tiny random model
(conftest.py's `tiny_x2` file)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import identity_irn
from PIL import Image
from sample_images import (
    rgb_array,
    write_all_modes,
    write_animated_gif,
    write_multipage_tiff,
    write_truncated,
)

import irn
from irn.cli.main import main
from irn.imaging.io import jpeg_roundtrip
from irn.imaging.resize import imresize


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def save_rgb(path: Path, h: int = 14, w: int = 10, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb_array(h, w, seed)).save(path)
    return path


def psnr_y_and_rgb(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Independent reference: MATLAB BT.601 Y (16 + (65.481 R + 128.553 G + 24.966 B)/255 at 0-255) and RGB."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    w = np.array([65.481, 128.553, 24.966]) / 255
    ya, yb = 16 + a @ w, 16 + b @ w
    return 10 * math.log10(255**2 / np.mean((ya - yb) ** 2)), 10 * math.log10(255**2 / np.mean((a - b) ** 2))


def hidden_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*")]


# ------------------------------------------------------------------ main runs
def test_roundtrip_end_to_end(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = save_rgb(tmp_path / "in" / "a.png", 14, 10, seed=1)
    b = save_rgb(tmp_path / "in" / "b.png", 15, 9, seed=2)  # odd size: padded, LR 8x5, cropped back
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    code, stdout, stderr = run_cli(
        ["rescale", "roundtrip", str(a), str(b), "--model", str(tiny_x2), "-o", str(out), "--json", str(summary)],
        capsys,
    )
    assert code == 0, stderr
    assert Image.open(out / "a_x2_lr.png").size == (5, 7)
    assert Image.open(out / "b_x2_lr.png").size == (5, 8)
    assert Image.open(out / "b_x2_rt.png").size == (9, 15)
    data = json.loads(summary.read_text())
    assert data["counts"] == {"ok": 2, "skipped": 0, "failed": 0}
    assert data["scale"] == 2 and data["z"] == "sample" and data["seed"] == 0
    for src, item in zip((a, b), data["images"], strict=True):
        assert item["status"] == "ok" and item["input"] == str(src)
        expected = psnr_y_and_rgb(np.asarray(Image.open(src)), np.asarray(Image.open(item["outputs"]["hr"])))
        assert item["psnr_y"] == pytest.approx(expected[0], abs=1e-3)
        assert item["psnr_rgb"] == pytest.approx(expected[1], abs=1e-3)
        assert f"{src} -> " in stdout and f"PSNR-Y {item['psnr_y']:.2f} dB" in stdout
    mean_y = (data["images"][0]["psnr_y"] + data["images"][1]["psnr_y"]) / 2
    assert data["mean_psnr_y"] == pytest.approx(mean_y, abs=1e-3)
    assert f"mean over 2 image(s), x2: PSNR-Y {mean_y:.2f} dB" in stdout
    assert data["exact_images"] == 0
    assert hidden_files(out) == []  # no temporary file left behind


def test_roundtrip_bicubic_scores_the_baseline_on_the_same_image(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--bicubic: MATLAB-style bicubic down to the model's LR size, 8-bit, up to the input size, 8-bit,
    scored like the reconstruction; printed beside it and written to the JSON (absent without the flag)."""
    src = save_rgb(tmp_path / "in" / "a.png", 15, 9, seed=3)  # odd size: LR 8x5
    summary = tmp_path / "s.json"
    argv = ["rescale", "roundtrip", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / "o")]
    code, stdout, stderr = run_cli([*argv, "--bicubic", "--json", str(summary)], capsys)
    assert code == 0, stderr
    item = json.loads(summary.read_text())["images"][0]
    hr = torch.from_numpy(np.asarray(Image.open(src)).copy()).permute(2, 0, 1)[None].double() / 255
    lr = torch.round(imresize(hr, size=(8, 5)).clamp(0, 1) * 255) / 255
    up = torch.round(imresize(lr, size=(15, 9)).clamp(0, 1) * 255)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    expected = psnr_y_and_rgb(np.asarray(Image.open(src)), up)
    assert item["bicubic_psnr_y"] == pytest.approx(expected[0], abs=1e-3)
    assert item["bicubic_psnr_rgb"] == pytest.approx(expected[1], abs=1e-3)
    assert item["bicubic_psnr_y"] != pytest.approx(item["psnr_y"], abs=1e-2)  # a different decoder
    data = json.loads(summary.read_text())
    assert data["mean_bicubic_psnr_y"] == pytest.approx(item["bicubic_psnr_y"], abs=1e-4)
    assert f"(bicubic: PSNR-Y {item['bicubic_psnr_y']:.2f} dB" in stdout
    assert stdout.count("(bicubic: ") == 2  # the image's line and the mean
    # with a lossy LR the baseline's LR is stored the same way (format and quality), for a fair comparison
    big = save_rgb(tmp_path / "in" / "b.png", 40, 32, seed=4)
    lossy = tmp_path / "lossy.json"
    argv = ["rescale", "roundtrip", str(big), "--model", str(tiny_x2), "-o", str(tmp_path / "j")]
    code, _, stderr = run_cli([*argv, "--bicubic", "--format", "jpg", "--quality", "30", "--json", str(lossy)], capsys)
    assert code == 0, stderr
    item = json.loads(lossy.read_text())["images"][0]
    hr = torch.from_numpy(np.asarray(Image.open(big)).copy()).permute(2, 0, 1)[None].double() / 255
    lr = jpeg_roundtrip(torch.round(imresize(hr, size=(20, 16)).clamp(0, 1) * 255) / 255, 30)
    up = torch.round(imresize(lr, size=(40, 32)).clamp(0, 1) * 255)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    assert item["bicubic_psnr_y"] == pytest.approx(psnr_y_and_rgb(np.asarray(Image.open(big)), up)[0], abs=1e-3)
    code, stdout, _ = run_cli([*argv, "-o", str(tmp_path / "o2"), "--json", str(tmp_path / "t.json")], capsys)
    assert code == 0 and "(bicubic: " not in stdout
    assert "bicubic_psnr_y" not in json.loads((tmp_path / "t.json").read_text())["images"][0]


def test_an_exactly_reconstructed_image_does_not_make_the_mean_inf(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save_rgb(tmp_path / "a.png", 14, 10, seed=1)
    dot = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (0, 0, 0)).save(dot)
    # a fresh network is the plain Haar transform (its last convolutions are zero): with z = 0 a flat
    # image comes back exactly (PSNR inf), a textured one does not
    haar = irn.save(identity_irn(2), tmp_path / "haar.pt")
    summary = tmp_path / "s.json"
    argv = ["rescale", "roundtrip", str(a), str(dot), "--model", str(haar), "-o", str(tmp_path / "o")]
    code, stdout, stderr = run_cli([*argv, "--z", "zero", "--json", str(summary)], capsys)
    assert code == 0, stderr
    data = json.loads(summary.read_text())
    assert data["images"][1]["psnr_y"] is None and data["exact_images"] == 1  # inf is null in the JSON
    assert data["mean_psnr_y"] == pytest.approx(data["images"][0]["psnr_y"], abs=1e-4)
    assert "mean over 1 image(s) (1 reconstructed exactly, PSNR inf, left out), x2: PSNR-Y" in stdout


def test_roundtrip_is_reproducible_with_seed_and_zero_latent(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = save_rgb(tmp_path / "a.png")
    results = []
    for name, extra in (("s1", ["--seed", "5"]), ("s2", ["--seed", "5"]), ("zero", ["--z", "zero"])):
        code, _, err = run_cli(
            ["rescale", "roundtrip", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / name), *extra], capsys
        )
        assert code == 0, err
        results.append(np.asarray(Image.open(tmp_path / name / "a_x2_rt.png")))
    assert np.array_equal(results[0], results[1])
    assert not np.array_equal(results[0], results[2])


def test_down_then_up_of_a_standalone_lr(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "photo.png", 15, 9)
    code, _, err = run_cli(["rescale", "down", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / "lr")], capsys)
    assert code == 0, err
    lr = tmp_path / "lr" / "photo_x2_lr.png"
    assert Image.open(lr).size == (5, 8)  # ceil(9/2) x ceil(15/2)
    code, _, err = run_cli(
        ["rescale", "up", str(lr), "--model", str(tiny_x2), "-o", str(tmp_path / "hr"), "--z", "zero"], capsys
    )
    assert code == 0, err
    up = tmp_path / "hr" / "photo_x2_up.png"
    assert Image.open(up).size == (10, 16)  # exactly 2x the LR
    # the files hold the model's own outputs (8-bit): what model.downscale / upscale give
    model = irn.load(tiny_x2)
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(Image.open(src))).permute(2, 0, 1)[None].float() / 255
        lr_expected = model.downscale(x)
        lr_file = torch.from_numpy(np.asarray(Image.open(lr))).permute(2, 0, 1)[None].float() / 255
        up_expected = model.upscale(lr_file, z="zero")
    to8 = lambda t: (t[0].permute(1, 2, 0) * 255).round().byte().numpy()  # noqa: E731
    assert np.array_equal(np.asarray(Image.open(lr)), to8(lr_expected))
    assert np.array_equal(np.asarray(Image.open(up)), to8(up_expected))


def test_folders_recursion_and_globs(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "photos"
    save_rgb(root / "top.png")
    save_rgb(root / "sub" / "deep.png")
    (root / "readme.txt").write_text("not an image, and not picked up from a folder")
    args = ["rescale", "down", "--model", str(tiny_x2)]
    code, _, err = run_cli([*args, str(root), "-o", str(tmp_path / "flat")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "flat").rglob("*.png")) == ["top_x2_lr.png"]
    code, _, err = run_cli([*args, str(root), "-r", "-o", str(tmp_path / "deep")], capsys)
    assert code == 0, err
    assert (tmp_path / "deep" / "sub" / "deep_x2_lr.png").is_file()
    assert (tmp_path / "deep" / "top_x2_lr.png").is_file()
    code, _, err = run_cli([*args, str(root / "**" / "*.png"), "-o", str(tmp_path / "glob")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "glob").iterdir()) == ["deep_x2_lr.png", "top_x2_lr.png"]
    code, _, err = run_cli([*args, str(tmp_path / "nothing*.png"), "-o", str(tmp_path / "none")], capsys)
    assert code == 2 and "no file matches this pattern" in err


# ------------------------------------------------------------------ bad inputs
BAD_INPUTS = {
    "zero-byte": (lambda p: p.write_bytes(b""), "bad.png", "empty file (0 bytes)"),
    "non-image": (lambda p: p.write_text("hello\n"), "bad.png", "not an image"),
    "truncated": (lambda p: write_truncated(p, "JPEG"), "bad.jpg", "corrupt or truncated"),
    "corrupt-header": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40), "bad.png", "bad.png"),
    "animated-gif": (lambda p: write_animated_gif(p), "bad.gif", "multi-frame image (3 frames"),
    "multi-page-tiff": (lambda p: write_multipage_tiff(p), "bad.tif", "multi-frame image (2 frames"),
    "oversize": (lambda p: save_rgb(p, 300, 400), "bad.png", "400x300 = 0.12 MP is over the limit of 0.1 MP"),
    "missing": (lambda p: None, "bad.png", "no such file"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_reported_and_skipped(
    kind: str, tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, name, words = BAD_INPUTS[kind]
    good = save_rgb(tmp_path / "good.png", 10, 10)
    bad = tmp_path / name
    make(bad)
    out = tmp_path / "out"
    code, _, err = run_cli(
        [
            "rescale",
            "roundtrip",
            str(bad),
            str(good),
            "--model",
            str(tiny_x2),
            "-o",
            str(out),
            "--max-pixels",
            "0.1M",
        ],
        capsys,
    )
    assert code == 1
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert len(lines) == 1 and lines[0].startswith("irn: failed: ") and words in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["good_x2_lr.png", "good_x2_rt.png"]  # nothing for the bad one
    assert "1 written, 0 skipped (outputs exist), 1 failed" in err


def test_only_bad_inputs_exit_1_and_write_nothing(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "empty.png"
    bad.touch()
    code, _, err = run_cli(["rescale", "down", str(bad), "--model", str(tiny_x2), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "empty file" in err
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_max_pixels_raises_the_limit(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "wide.png", 20, 30)  # 600 pixels
    args = ["rescale", "down", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / "o")]
    code, _, err = run_cli([*args, "--max-pixels", "599"], capsys)
    assert (
        code == 1
        and "30x20 = 600 pixels is over the limit of 599 pixels" in err
        and "raise it with --max-pixels" in err
    )
    code, _, err = run_cli([*args, "--max-pixels", "600"], capsys)
    assert code == 0, err
    # for up the limit applies to the HR it would write: the 15x10 LR -> 30x20 = 600 pixels
    lr = tmp_path / "o" / "wide_x2_lr.png"
    up = ["rescale", "up", str(lr), "--model", str(tiny_x2), "-o", str(tmp_path / "u")]
    code, _, err = run_cli([*up, "--max-pixels", "599"], capsys)
    assert code == 1 and "15x10 LR would upscale to 30x20 = 600 pixels, over the limit of 599 pixels" in err
    code, _, err = run_cli([*up, "--max-pixels", "600"], capsys)
    assert code == 0, err


# ------------------------------------------------------------------ input kinds
def test_rgba_alpha_is_carried_with_plain_bicubic(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = write_all_modes(tmp_path / "in")
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["rescale", "roundtrip", str(files["rgba"]), "--model", str(tiny_x2), "-o", str(out)], capsys
    )
    assert code == 0, err
    lr, rt = Image.open(out / "rgba_x2_lr.png"), Image.open(out / "rgba_x2_rt.png")
    assert lr.mode == "RGBA" and rt.mode == "RGBA"
    assert lr.size == (5, 7) and rt.size == (10, 14)
    alpha = torch.from_numpy(np.asarray(Image.open(files["rgba"]))[:, :, 3] / 255.0)[None]
    expected_lr = (imresize(alpha, scale=0.5).clamp(0, 1) * 255).round().numpy()[0]
    assert np.array_equal(np.asarray(lr)[:, :, 3], expected_lr)
    expected_rt = (imresize(torch.from_numpy(expected_lr / 255), scale=2).clamp(0, 1) * 255).round().numpy()
    assert np.abs(np.asarray(rt)[:, :, 3].astype(float) - expected_rt).max() <= 1


@pytest.mark.parametrize(
    ("kind", "note", "lr_size"),
    [
        ("grey", "converted from greyscale", (5, 7)),
        ("palette", "converted from palette", (5, 7)),
        ("cmyk", "converted from CMYK", (5, 7)),
        ("grey16", "converted from 16-bit greyscale", (5, 7)),
        ("rgb16", "converted from 16-bit colour", (5, 7)),
        ("exif", "EXIF orientation 6 applied", (7, 5)),  # shown rotated: 14 wide, 10 high
    ],
)
def test_converted_inputs_say_so(
    kind: str,
    note: str,
    lr_size: tuple[int, int],
    tmp_path: Path,
    tiny_x2: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = write_all_modes(tmp_path / "in")[kind]
    out, summary = tmp_path / "out", tmp_path / "s.json"
    code, _, err = run_cli(
        ["rescale", "down", str(src), "--model", str(tiny_x2), "-o", str(out), "--json", str(summary)], capsys
    )
    assert code == 0, err
    assert f"{src}: note: {note}" in err
    lr = Image.open(out / f"{src.stem}_x2_lr.png")
    assert lr.mode == "RGB" and lr.size == lr_size
    assert any(n.startswith(note) for n in json.loads(summary.read_text())["images"][0]["notes"])


# ------------------------------------------------------------------ outputs
def test_skip_existing_resumes(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = save_rgb(tmp_path / "in" / "a.png", seed=1), save_rgb(tmp_path / "in" / "b.png", seed=2)
    out, summary = tmp_path / "out", tmp_path / "s.json"
    args = ["rescale", "roundtrip", str(tmp_path / "in"), "--model", str(tiny_x2), "-o", str(out)]
    assert run_cli(args, capsys)[0] == 0
    sentinel = rgb_array(14, 10, seed=9)
    Image.fromarray(sentinel).save(out / "a_x2_rt.png")  # a finished output the resumed run must keep
    (out / "b_x2_rt.png").unlink()  # an unfinished one
    code, _, err = run_cli([*args, "--skip-existing", "--json", str(summary)], capsys)
    assert code == 0, err
    assert f"{a}: outputs exist, skipped" in err and f"{b}: outputs exist" not in err
    assert np.array_equal(np.asarray(Image.open(out / "a_x2_rt.png")), sentinel)
    assert (out / "b_x2_rt.png").is_file()
    data = json.loads(summary.read_text())
    assert data["counts"] == {"ok": 1, "skipped": 1, "failed": 0}
    skipped = data["images"][0]
    assert skipped["status"] == "skipped"
    expected = psnr_y_and_rgb(np.asarray(Image.open(a)), sentinel)  # PSNR of what is on disk
    assert skipped["psnr_y"] == pytest.approx(expected[0], abs=1e-3)


def test_never_overwrites_an_input(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pics"
    lr = save_rgb(folder / "photo_x2_lr.png", 6, 5, seed=1)
    up = save_rgb(folder / "photo_x2_up.png", 12, 10, seed=2)  # `up` of photo_x2_lr.png writes this name
    before = {p: p.read_bytes() for p in (lr, up)}
    code, _, err = run_cli(["rescale", "up", str(lr), str(up), "--model", str(tiny_x2), "-o", str(folder)], capsys)
    assert code == 2
    assert err.strip() == f"irn: error: output {up} would overwrite the input {up}; choose another -o"
    assert {p: p.read_bytes() for p in (lr, up)} == before
    assert sorted(p.name for p in folder.iterdir()) == ["photo_x2_lr.png", "photo_x2_up.png"]
    # nor with the JSON summary: an input, or one of the images this run writes
    out = tmp_path / "out"
    for json_path, what in ((lr, f"the input {lr}"), (out / "photo_x2_up.png", "the image output")):
        code, _, err = run_cli(
            ["rescale", "up", str(lr), "--model", str(tiny_x2), "-o", str(out), "--json", str(json_path)], capsys
        )
        assert code == 2 and err.startswith(f"irn: error: --json {json_path} is {what}"), err
    assert {p: p.read_bytes() for p in (lr, up)} == before and not out.exists()


def test_two_inputs_one_output_name_is_refused(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = save_rgb(tmp_path / "x.png")
    b = tmp_path / "x.bmp"
    Image.fromarray(rgb_array()).save(b)
    code, _, err = run_cli(
        ["rescale", "down", str(a), str(b), "--model", str(tiny_x2), "-o", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "would both be written to" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_lossy_lr_format_warns(fmt: str, tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "a.png")
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["rescale", "roundtrip", str(src), "--model", str(tiny_x2), "-o", str(out), "--format", fmt], capsys
    )
    assert code == 0, err
    assert "warning" in err and "does not survive lossy compression well" in err
    assert Image.open(out / f"a_x2_lr.{fmt}").format == {"jpg": "JPEG", "webp": "WEBP"}[fmt]
    assert (out / "a_x2_rt.png").is_file() and "PSNR-Y" in stdout


def test_png_lr_does_not_warn(tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "a.png")
    code, _, err = run_cli(["rescale", "down", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / "o")], capsys)
    assert code == 0 and "warning" not in err


# ------------------------------------------------------------------ user mistakes
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--model", "no_such_model.pt"], "no_such_model.pt: no such checkpoint file"),
        (["--device", "warp9"], "--device 'warp9': not a device name"),
        (["--quality", "0", "--format", "jpg"], "--quality 0: must be between 1 and 100"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(
    extra: list[str], words: str, tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = save_rgb(tmp_path / "a.png")
    args = ["rescale", "down", str(src), "--model", str(tiny_x2), "-o", str(tmp_path / "o"), *extra]
    code, _, err = run_cli(args, capsys)
    assert code == 2
    assert err.startswith("irn: error: ") and words in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--tile", "7"], "irn rescale roundtrip: argument --tile: must be at least 16 pixels, got '7'"),
        (["--temperature", "inf"], "argument --temperature: expected a finite number, got 'inf'"),
        (["--temperature", "nan"], "argument --temperature: expected a finite number, got 'nan'"),
        (["--max-memory", "inf"], "argument --max-memory: expected a size such as 2G or 512M, got 'inf'"),
        (["--seed", "1.5"], "argument --seed: expected an integer, got '1.5'"),
        (["--seed", "99999999999999999999"], "argument --seed: a seed must be in [0, 2^63), got 99999999999999999999"),
        (["--z", "gauss"], "argument --z: invalid choice: 'gauss'"),
    ],
)
def test_argument_errors_are_one_line_exit_2(
    extra: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = save_rgb(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exc:
        main(["rescale", "roundtrip", str(src), "-o", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("irn: error: ") and words in err, err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err
    assert not (tmp_path / "o").exists()


def test_outputs_that_cannot_be_written_are_refused_before_any_work(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = save_rgb(tmp_path / "a.png")
    before = src.read_bytes()
    cases = [
        (["-o", str(src)], f"-o {src}: is a file, expected a folder"),
        (["-o", str(src / "o")], f"-o {src / 'o'}: {src} is a file, not a folder"),
        (["-o", str(tmp_path / "o"), "--json", str(tmp_path)], f"--json {tmp_path}: is a folder, expected a file"),
    ]
    for extra, words in cases:
        code, _, err = run_cli(["rescale", "down", str(src), "--model", str(tiny_x2), *extra], capsys)
        assert code == 2 and err.strip() == f"irn: error: {words}", err
    assert not (tmp_path / "o").exists() and src.read_bytes() == before


def test_bad_checkpoint_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "a.png")
    bad = tmp_path / "model.pt"
    bad.write_text("not a model")
    code, _, err = run_cli(["rescale", "down", str(src), "--model", str(bad), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"irn: error: {bad}:")


# ------------------------------------------------------------------ irn chart
def test_chart_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["chart", "-o", str(tmp_path / "c1.png"), "--size", "160x128"], capsys)
    assert code == 0 and "c1.png (160x128)" in stdout
    run_cli(["chart", "-o", str(tmp_path / "c2.png"), "--size", "160x128"], capsys)
    first, second = np.asarray(Image.open(tmp_path / "c1.png")), np.asarray(Image.open(tmp_path / "c2.png"))
    assert first.shape == (128, 160, 3) and np.array_equal(first, second)  # deterministic
    assert first.std() > 50  # real content, not a flat image
    code, _, err = run_cli(["chart", "-o", str(tmp_path / "c3.png"), "--size", "64"], capsys)
    assert code == 2 and "at least 128x128" in err
    code, _, err = run_cli(["chart", "-o", str(tmp_path / "c1.png" / "c4.png")], capsys)  # under a file
    assert (
        err.strip() == f"irn: error: -o {tmp_path / 'c1.png' / 'c4.png'}: {tmp_path / 'c1.png'} is a file, not a folder"
    )
    assert code == 2
    code, _, err = run_cli(["chart", "-o", str(tmp_path / "c5.png"), "--size", "99999x128"], capsys)
    assert (code, err.strip()) == (2, "irn: error: --size 99999x128: at most 8192x8192 pixels")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["chart", "-o", str(tmp_path / "c6.png"), "--size", "12x"], capsys)
    assert (code, err.strip()) == (2, "irn: error: --size must look like N or WxH (e.g. 512 or 640x480), got '12x'")


def test_chart_default_output_never_replaces_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "chart.png").write_bytes(b"a user's file")
    code, _, err = run_cli(["chart", "--size", "128"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "chart.png exists already; name the output" in err
    assert (tmp_path / "chart.png").read_bytes() == b"a user's file"
    code, _, _ = run_cli(["chart", "--size", "128", "-o", "chart.png"], capsys)  # named: replaced
    assert code == 0 and Image.open(tmp_path / "chart.png").size == (128, 128)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("640x480", {}, (640, 480)),
        (" 640 X 480 ", {}, (640, 480)),
        ("640×480", {}, (640, 480)),
        ("512", {"square": True}, (512, 512)),
        ("512", {}, "must look like WxH"),
        ("0x5", {}, "must be at least 1 pixels per side, got 0x5"),
        ("9000x8", {"lo": 8, "hi": 8192}, "must be between 8 and 8192 pixels per side, got 9000x8"),
        ("-3x4", {}, "must look like"),
        ("axb", {}, "must look like"),
    ],
)
def test_one_wxh_parser(text: str, kwargs: dict[str, object], expected: object) -> None:
    from irn.cli.common import parse_wxh
    from irn.errors import IRNError

    if isinstance(expected, tuple):
        assert parse_wxh(text, "--size", **kwargs) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(IRNError, match=str(expected)):
            parse_wxh(text, "--size", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["rescale roundtrip", "eval", "decay", "craft"])
def test_device_defaults_to_auto_in_every_command(command: str) -> None:
    import argparse

    from irn.cli.main import build_parser

    parser = build_parser()
    words = command.split()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices[words[0]]
    if len(words) > 1:
        sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[words[1]]
    device = next(a for a in sub._actions if "--device" in a.option_strings)
    assert device.default == "auto" and "auto" in device.help


def test_z_auto_follows_the_checkpoint_recommendation(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--z auto (the default) decodes with the latent the checkpoint's metadata recommends."""
    model, _ = irn.zoo.load_checkpoint(tiny_x2)
    zero_path = irn.save(model, tmp_path / "zero.pt", {"recommended_z": "zero"})
    src = save_rgb(tmp_path / "in" / "a.png", 12, 12, seed=3)
    results = {}
    for name, path, extra in (
        ("auto-zero", zero_path, []),
        ("explicit-zero", tiny_x2, ["--z", "zero"]),
        ("auto-none", tiny_x2, []),
    ):
        summary = tmp_path / f"{name}.json"
        out = tmp_path / name
        code, _, stderr = run_cli(
            ["rescale", "roundtrip", str(src), "--model", str(path), "-o", str(out), "--json", str(summary), *extra],
            capsys,
        )
        assert code == 0, stderr
        data = json.loads(summary.read_text())
        results[name] = (data["z"], np.asarray(Image.open(out / "a_x2_rt.png")))
    assert results["auto-zero"][0] == "zero" and results["auto-none"][0] == "sample"
    np.testing.assert_array_equal(results["auto-zero"][1], results["explicit-zero"][1])


def test_cli_reports_out_of_memory_and_unknown_options_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import irn.cli.chart as chart

    def oom(args: object) -> int:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(chart, "run", oom)
    assert main(["chart", "-o", "x.png"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("irn: error: out of memory ([enforce fail") and err.endswith("try a smaller input")
    monkeypatch.setattr(chart, "run", lambda args: (_ for _ in ()).throw(RuntimeError("a bug, not memory")))
    with pytest.raises(RuntimeError, match="a bug, not memory"):  # other errors are not dressed up
        main(["chart", "-o", "x.png"])
    for argv, expected in (
        (
            ["--bogus", "chart"],
            "irn: --bogus: options go after the command, e.g. irn chart --bogus ... (see 'irn --help')",
        ),  # noqa: E501
        (["chart", "--bogus"], "irn chart: unrecognized arguments: --bogus (see 'irn chart --help')"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert capsys.readouterr().err.strip() == f"irn: error: {expected}"


def test_a_closed_pipe_ends_quietly() -> None:
    """`irn data list | head -1`: the reader leaves early; no "Broken pipe" error line."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "irn.cli", "data", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_a_jpeg_trained_model_is_not_warned_off_jpeg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model whose card says it was trained with loss.jpeg_quality (the shipped x2-jpeg): --format jpg
    gets no lossy warning, and a PNG LR gets a note pointing to --format jpg; webp still warns."""
    import irn

    meta = {"config": {"loss": {"jpeg_quality": [75, 95]}}, "intended_lr": "JPEG (quality 75-95)"}
    model = irn.save(identity_irn(2), tmp_path / "jpeg_x2.pt", meta)
    src = save_rgb(tmp_path / "in.png", 16, 12, seed=1)
    argv = ["rescale", "roundtrip", str(src), "--model", str(model)]
    code, _, err = run_cli([*argv, "--format", "jpg", "-o", str(tmp_path / "a")], capsys)
    assert code == 0 and "does not survive lossy compression" not in err and "note: --model" not in err
    code, _, err = run_cli([*argv, "-o", str(tmp_path / "b")], capsys)
    assert code == 0 and "is trained for JPEG (quality 75-95); add --format jpg" in err
    code, _, err = run_cli([*argv, "--format", "webp", "-o", str(tmp_path / "c")], capsys)
    assert code == 0 and "does not survive lossy compression" in err


def test_jpeg_advice_follows_the_measured_handover_between_x2_and_x2_jpeg() -> None:
    """x2-jpeg leads the plain x2 below JPEG quality 90 only (docs/evaluation.md): the advice says which
    model to take at the quality asked for, in both directions; WebP is not JPEG."""
    import irn
    from irn.cli.rescale import lr_format_advice
    from irn.zoo.catalogue import CATALOGUE

    for entry in CATALOGUE:  # a handover names a lossless model of the same scale
        if entry.handover is not None:
            other = next(e for e in CATALOGUE if e.name == entry.handover[1])
            assert other.purpose == "lossless" and other.scale == entry.scale and entry.purpose != "lossless"
    x2, x2_jpeg = irn.load("x2"), irn.load("x2-jpeg")
    assert lr_format_advice(x2_jpeg, "x2-jpeg", ".jpg", "roundtrip", 89) is None
    note = lr_format_advice(x2_jpeg, "x2-jpeg", ".jpg", "down", 95)
    assert note == (
        "irn: note: at --quality 95, --model x2 reconstructs better than x2-jpeg (x2-jpeg leads below quality 90 only)"
    )
    warning = lr_format_advice(x2, "x2", ".jpg", "roundtrip", 75)
    assert warning is not None and "does not survive lossy compression" in warning
    assert warning.endswith("; below quality 90, --model x2-jpeg is made for this LR")
    warning = lr_format_advice(x2, "x2", ".jpg", "roundtrip", 95)
    assert warning is not None and "does not survive lossy compression" in warning and "x2-jpeg" not in warning
    warning = lr_format_advice(x2, "x2", ".webp", "roundtrip", 75)
    assert warning is not None and "x2-jpeg" not in warning
    note = lr_format_advice(x2_jpeg, "x2-jpeg", ".png", "down", 95)  # a PNG LR: points below the handover
    assert note is not None and note.endswith(
        "add --format jpg with --quality below 90 (from 90 up, --model x2 reconstructs better)"
    )
    path_only = lr_format_advice(x2, str(irn.zoo.resolve("x2")), ".jpg", "roundtrip", 75)  # by path: no name
    assert path_only is not None and "x2-jpeg" not in path_only


def test_an_empty_path_is_refused_never_taken_for_the_current_folder(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Path("") is "." : an unset "$IMG" or "$OUT" must not process or write the current folder."""
    monkeypatch.chdir(tmp_path)
    save_rgb(tmp_path / "here.png", 16, 12)
    before = sorted(p.name for p in tmp_path.iterdir())
    empty = "(an unset shell variable?)"
    for argv, words in (
        (["rescale", "down", "", "--model", str(tiny_x2), "-o", "o1"], "an empty argument after down"),
        (["rescale", "down", "here.png", "", "-o", "o1"], "an empty argument after here.png"),
        (["rescale", "down", "here.png", "--model", "", "-o", "o2"], "an empty argument after --model"),
        (["rescale", "down", "here.png", "-o", ""], "an empty argument after -o"),
        (["rescale", "down", "here.png", "--json="], "--json: an empty value"),
        (["eval", "--method", "bicubic", "--scale", "2", "--data", ""], "an empty argument after --data"),
        (["eval", "--method", "bicubic", "--scale", "2", "--data= "], "--data: an empty value"),
        (["decay", "", "-o", "d"], "an empty argument after decay"),
        (["data", "list", "--root", ""], "an empty argument after --root"),
        (["", "rescale"], "an empty argument as the first argument"),
    ):
        with pytest.raises(SystemExit) as exc:
            run_cli(argv, capsys)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and words in err and empty in err, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    # the library's own checks, for the Python API and YAML configs
    import irn
    from irn.errors import IRNError
    from irn.imaging.io import check_output_path

    with pytest.raises(IRNError, match="an empty model name or path"):
        irn.load("")
    with pytest.raises(IRNError, match="trainer.run_dir '': an empty path"):
        check_output_path("", "trainer.run_dir", folder=True)
