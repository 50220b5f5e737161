"""`irn color` (IRN-Color: invertible decolorization) and `irn rescale` with an x3 model, end to end
through `irn.cli.main(argv)` with tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import identity_irn, random_irn, shared_path
from PIL import Image
from sample_images import rgb_array
from test_rescale import run_cli, save_rgb  # the rescale tests' helpers, the same machinery

import irn


@pytest.fixture(scope="module")
def color_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return irn.save(random_irn(1, 2, kind="color"), tmp_path_factory.mktemp("m") / "color.pt")


def test_color_down_up_roundtrip(tmp_path: Path, color_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_rgb(tmp_path / "in" / "photo.png", 13, 11)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(["color", "down", str(src), "--model", str(color_model), "-o", str(out)], capsys)
    assert code == 0
    grey_path = out / "photo_grey.png"
    with Image.open(grey_path) as grey_file:
        assert grey_file.mode == "L" and grey_file.size == (11, 13)
        grey = np.asarray(grey_file)
    model = irn.load(color_model)
    rgb = irn.io.read_image(src)[None]
    expected = (model.decolorize(rgb)[0, 0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(grey, expected)

    code, _, err = run_cli(["color", "up", str(grey_path), "--model", str(color_model), "-o", str(out)], capsys)
    assert code == 0 and "converted from greyscale" not in err  # a grey file is what colour up takes
    deep = tmp_path / "deep" / "photo_grey.png"  # a 16-bit grey file: no note either
    deep.parent.mkdir()
    Image.fromarray(grey.astype(np.uint16) * 257).save(deep)
    code, _, err = run_cli(["color", "up", str(deep), "--model", str(color_model), "-o", str(tmp_path / "o16")], capsys)
    assert code == 0 and "greyscale" not in err, err
    with Image.open(out / "photo_color.png") as colour_file:  # NAME_grey -> NAME_color
        assert colour_file.mode == "RGB" and colour_file.size == (11, 13)
        colour = np.asarray(colour_file)
    assert model.recommended_z() == "zero"  # a file that names no latent: the official IRN-Color's z = 0
    again = model.colorize(torch.from_numpy(grey.astype(np.float32) / 255)[None, None], z="zero")
    assert np.abs(colour.astype(int) - (again[0].permute(1, 2, 0).numpy() * 255).round().astype(int)).max() <= 1

    summary = tmp_path / "rt.json"
    argv = ["color", "roundtrip", str(src), "--model", str(color_model), "-o", str(out), "--baseline"]
    code, stdout, _ = run_cli([*argv, "--json", str(summary)], capsys)
    assert code == 0 and "(baseline: PSNR-Y" in stdout and "x1" not in stdout
    report = json.loads(summary.read_text())
    image = report["images"][0]
    assert report["command"] == "color roundtrip" and report["grey_format"] == "png"
    assert set(image["outputs"]) == {"grey", "color"} and image["outputs"]["color"].endswith("photo_rt.png")
    assert image["grey_size"] == image["color_size"] == [13, 11]
    luma = np.round(rgb_array(13, 11, 0).astype(np.float64) @ np.array([0.299, 0.587, 0.114]))
    baseline_rgb = 10 * np.log10(255**2 / np.mean((np.repeat(luma[..., None], 3, 2) - rgb_array(13, 11, 0)) ** 2))
    assert image["baseline_psnr_rgb"] == pytest.approx(baseline_rgb, abs=0.05)
    assert report["mean_baseline_psnr_rgb"] == image["baseline_psnr_rgb"]


def test_color_keeps_alpha_and_refuses_the_other_kind(
    tmp_path: Path, color_model: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rgba = np.concatenate([rgb_array(12, 9, 3), np.full((12, 9, 1), 128, np.uint8)], axis=2)
    src = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(src)
    out = tmp_path / "out"
    assert run_cli(["color", "down", str(src), "--model", str(color_model), "-o", str(out)], capsys)[0] == 0
    with Image.open(out / "a_grey.png") as grey:
        assert grey.mode == "LA" and np.asarray(grey)[..., 1].min() == 128
    code, _, err = run_cli(["color", "down", str(src), "--model", str(tiny_x2), "-o", str(out)], capsys)
    assert code == 2 and "not an IRN-Color one: use irn rescale" in err and err.count("\n") == 1
    code, _, err = run_cli(["rescale", "down", str(src), "--model", str(color_model), "-o", str(out)], capsys)
    assert code == 2 and "an IRN-Color model" in err and "use irn color" in err and err.count("\n") == 1
    code, _, _ = run_cli(["color", "down", str(src), "-o", str(tmp_path / "shipped")], capsys)
    assert code == 0 and (tmp_path / "shipped" / "a_grey.png").is_file()  # the shipped colour model by default


def test_a_fresh_color_model_restores_the_grey_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """At the official start (YUV, identity couplings) with z = 0 the colour image is the grey one on RGB."""
    model = irn.save(identity_irn(1, 1, kind="color"), tmp_path / "fresh.pt")
    src = save_rgb(tmp_path / "p.png", 10, 12, seed=4)
    argv = ["color", "roundtrip", str(src), "--model", str(model), "-o", str(tmp_path / "o"), "--z", "zero"]
    code, _, _ = run_cli([*argv, "--baseline", "--json", str(tmp_path / "r.json")], capsys)
    image = json.loads((tmp_path / "r.json").read_text())["images"][0]
    assert code == 0 and image["psnr_rgb"] == pytest.approx(image["baseline_psnr_rgb"], abs=0.05)


@pytest.mark.parametrize("size", [(17, 23), (9, 12)])
def test_rescale_with_an_x3_model(tmp_path: Path, size: tuple[int, int], capsys: pytest.CaptureFixture[str]) -> None:
    """The official x3's architecture through irn rescale: sizes that are not multiples of 3 pad and crop back."""
    model_path = irn.save(random_irn(3, 2, kind="conv"), tmp_path / "x3.pt")
    src = save_rgb(tmp_path / "in.png", *size)
    out = tmp_path / "out"
    argv = ["rescale", "roundtrip", str(src), "--model", str(model_path), "-o", str(out), "--bicubic"]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and "x3" in stdout
    h, w = size
    with Image.open(out / "in_x3_lr.png") as lr, Image.open(out / "in_x3_rt.png") as rt:
        assert lr.size == (-(-w // 3), -(-h // 3)) and rt.size == (w, h)
    code, _, _ = run_cli(
        ["rescale", "up", str(out / "in_x3_lr.png"), "--model", str(model_path), "-o", str(out)], capsys
    )
    with Image.open(out / "in_x3_up.png") as up:
        assert code == 0 and up.size == (3 * -(-w // 3), 3 * -(-h // 3))


def test_rescale_jpg_uses_the_restorer_a_model_carries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An IRN file with its CRM (IRN-Compression): roundtrip --format jpg and up of a .jpg restore the
    decoded JPEG before the inverse pass (a note says so); a PNG LR is used as it is."""
    from irn.nn.restoration import CompressionRestorer, RestorerConfig
    from irn.zoo import attach_restorer

    crm = CompressionRestorer(RestorerConfig(features=4, blocks=1, growth=2))
    with torch.no_grad():  # restores every LR to mid-grey: easy to see in the output
        for p in crm.parameters():
            p.zero_()
        crm.conv_last.bias.fill_(0.5)
    model = irn.save(attach_restorer(identity_irn(2), crm), tmp_path / "jpeg_x2.pt")
    src = save_rgb(tmp_path / "in.png", 16, 12, seed=5)
    out = tmp_path / "out"
    argv = ["rescale", "roundtrip", str(src), "--model", str(model), "-o", str(out), "--z", "zero"]
    code, _, err = run_cli([*argv, "--format", "jpg"], capsys)
    assert code == 0 and "restored by the model's compression restoration module" in err
    assert "does not survive lossy compression" not in err  # this model is made for a JPEG LR
    with Image.open(out / "in_x2_rt.png") as rt:
        assert np.abs(np.asarray(rt).astype(int) - 128).max() <= 1  # the CRM's mid-grey, upscaled
    up = ["rescale", "up", str(out / "in_x2_lr.jpg"), "--model", str(model), "--z", "zero", "-o", str(out)]
    code, _, err = run_cli(up, capsys)
    assert code == 0 and "compression restoration module" in err
    with Image.open(out / "in_x2_up.png") as hr:
        assert np.abs(np.asarray(hr).astype(int) - 128).max() <= 1  # restored, then upscaled
    disguised = tmp_path / "jpeg_named.png"  # a JPEG is a JPEG whatever its name
    disguised.write_bytes((out / "in_x2_lr.jpg").read_bytes())
    code, _, err = run_cli([*up[:2], str(disguised), *up[3:]], capsys)
    assert code == 0 and "compression restoration module" in err
    code, _, err = run_cli([*argv[:-2], "--z", "zero", "-o", str(tmp_path / "png")], capsys)
    assert code == 0 and "restoration" not in err
    code, _, err = run_cli(["rescale", "up", str(src), "--model", str(model), "-o", str(tmp_path / "up")], capsys)
    assert code == 0 and "restoration" not in err  # a PNG LR is used as it is


def test_the_restorer_runs_in_tiles_within_max_memory(tmp_path: Path) -> None:
    """The CRM on overlapping tiles with its whole receptive radius as context: the untiled result,
    chosen by the memory budget or forced; on its own device and dtype whatever the input's."""
    from irn.imaging.tiling import RESTORER_BYTES_PER_LR_PIXEL
    from irn.nn.restoration import CompressionRestorer, RestorerConfig
    from irn.pipeline import run_restorer

    torch.manual_seed(0)
    crm = CompressionRestorer(RestorerConfig(features=4, blocks=1, growth=2)).eval()
    assert crm.receptive_radius == 18
    lr = torch.rand(1, 3, 45, 38)
    whole = run_restorer(crm, lr)
    notes: list[str] = []
    tiled = run_restorer(crm, lr, tile=16, notes=notes)
    assert torch.equal(tiled, whole) and "tiles of 16 LR px with 18 px context" in notes[0]
    notes = []
    budgeted = run_restorer(crm, lr, max_memory=RESTORER_BYTES_PER_LR_PIXEL * 45 * 38 - 1, notes=notes)
    assert torch.equal(budgeted, whole) and notes  # over the budget: tiles
    assert run_restorer(crm.double(), lr).dtype == torch.float32  # a double CRM, a float LR
    torch.testing.assert_close(run_restorer(crm.double(), lr), whole, atol=1 / 255, rtol=0)


def test_the_shipped_color_model_beats_the_grey_baseline() -> None:
    """irn.load("color") (checkpoints/irn_color.pt): on a crop of Set5's butterfly its restored colours
    (sampled z, the file's recommendation) score a higher PSNR-RGB than the grey image copied to RGB."""
    from irn.eval.metrics import psnr
    from irn.nn import rgb_to_luma
    from irn.nn.network import quantize

    hr = irn.io.read_image(shared_path("datasets", "Set5", "HR", "butterfly.png"))[None, :, 64:160, 64:160]
    model = irn.load("color")
    assert isinstance(model, irn.IRNColor) and model.recommended_z() == "sample" and model.metadata["steps"] > 0
    with torch.no_grad():
        restored = quantize(model.colorize(model.decolorize(hr), seed=0))
    baseline = quantize(rgb_to_luma(hr)).expand(-1, 3, -1, -1)
    ours, theirs = float(psnr(restored, hr, 0, False)), float(psnr(baseline, hr, 0, False))
    assert ours > theirs + 0.5, (ours, theirs)
