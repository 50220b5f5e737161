"""irn decay: repeated rescaling, the IRN round trip's idempotence, outputs and CLI errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from helpers import random_irn
from PIL import Image

import irn
from irn import IRN
from irn.cli.main import main
from irn.errors import IRNError
from irn.experiments.decay import (
    DecayConfig,
    Rescaler,
    decay_trace,
    gif_cycles,
    irn_rescaler,
    kernel_rescaler,
    make_rescaler,
    pil_rescaler,
)
from irn.imaging.io import write_image
from irn.nn.network import quantize


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """These images are tiny: one thread avoids thread start-up costs dominating on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def perturbed_irn(seed: int = 0) -> IRN:
    """A small IRN whose coupling blocks are *not* the identity: a fresh one's weights with its last
    convolutions N(0, 0.01), close enough to the Haar transform that its round trip has a fixed point; frozen."""
    return random_irn(2, 2, std=None, last_std=0.01, seed=seed).requires_grad_(False)


def smooth_image(h: int = 48, w: int = 48) -> torch.Tensor:
    """(3, h, w) in about [0.25, 0.75]: smooth colour waves plus a little noise."""
    g = torch.Generator().manual_seed(1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack(
        [0.5 + 0.2 * torch.sin(6 * xx + 1), 0.5 + 0.2 * torch.cos(5 * yy), 0.5 + 0.15 * torch.sin(4 * (xx + yy))]
    )
    return img + 0.03 * torch.randn(img.shape, generator=g)


def texture_image(h: int = 48, w: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.rand(3, h, w, generator=g)


def test_irn_roundtrip_is_exact_with_the_same_z() -> None:
    model = perturbed_irn()
    g = torch.Generator().manual_seed(3)
    lr = quantize(0.3 + 0.4 * torch.rand(2, 3, 12, 16, generator=g))
    z = 0.1 * torch.randn(2, model.latent_channels, 12, 16, generator=g)
    hr = model.decode(lr, z)
    assert (hr - torch.nn.functional.interpolate(lr, scale_factor=2)).abs().max() > 1e-3  # not a plain copy
    lr_back, z_back = model.encode(hr)
    assert torch.allclose(lr_back, lr, atol=2e-6)
    assert torch.allclose(z_back, z, atol=2e-6)


def test_irn_roundtrip_survives_8bit_quantisation_of_the_hr() -> None:
    """down(Q(up(lr))) gives lr back after rounding, except for rare one-level flips."""
    model = perturbed_irn()
    g = torch.Generator().manual_seed(4)
    lr = quantize(0.3 + 0.4 * torch.rand(1, 3, 32, 32, generator=g))
    z = 0.02 * torch.randn(1, model.latent_channels, 32, 32, generator=g)
    hr = model.decode(lr, z)
    assert hr.min() > 0 and hr.max() < 1  # no clamping: only the 8-bit rounding is in the way
    levels = ((quantize(model.encode(quantize(hr))[0]) - lr) * 255).round().abs()
    assert levels.max() <= 1
    assert (levels > 0).float().mean() < 0.01


def test_irn_cycles_reach_a_fixed_point_while_bicubic_keeps_changing() -> None:
    config = DecayConfig(cycles=6, gif_frames=7, gif_crop=16)
    trace = decay_trace(smooth_image(), irn_rescaler(perturbed_irn(), z="zero", name="irn"), config)
    assert trace.fixed_point_cycle is not None and trace.fixed_point_cycle <= 3
    k = trace.fixed_point_cycle
    assert trace.psnr_vs_previous[k - 1] is None  # identical images
    assert trace.psnr_vs_original[k - 1 :] == [trace.psnr_vs_original[k - 1]] * (config.cycles - k + 1)
    assert trace.orbit_period == 1
    assert trace.hr_clipped_fraction == [0.0] * config.cycles  # only 8-bit rounding perturbs the cycle

    bicubic = decay_trace(texture_image(), kernel_rescaler("cubic", 2, "bicubic"), config)
    assert bicubic.fixed_point_cycle is None
    psnr = bicubic.psnr_vs_original
    assert all(p is not None and math.isfinite(p) for p in psnr)
    assert all(a > b for a, b in zip(psnr, psnr[1:], strict=False))  # it keeps decaying
    assert bicubic.lr_changed_fraction[0] is None and bicubic.lr_max_change[0] is None  # no LR before cycle 1
    assert all(f > 0.1 for f in bicubic.lr_changed_fraction[1:])
    assert bicubic.ssim_vs_original[-1] < bicubic.ssim_vs_original[0] < 1


def _flipping_rescaler() -> Rescaler:
    """Box down, nearest up, then a left-right flip: the 8-bit sequence has period 2 from cycle 1."""
    return Rescaler(
        name="flip",
        scale=2,
        down=lambda hr: torch.nn.functional.avg_pool2d(hr, 2),
        up=lambda lr, cycle: torch.nn.functional.interpolate(lr, scale_factor=2, mode="nearest").flip(-1),
        description="test map with period 2",
    )


@pytest.mark.parametrize("make", [lambda: irn_rescaler(perturbed_irn(), z="zero"), _flipping_rescaler])
def test_periodicity_shortcut_gives_the_same_figures(make: Callable[[], Rescaler]) -> None:
    image = smooth_image(32, 32)
    fast = decay_trace(image, make(), DecayConfig(cycles=9, gif_frames=10, gif_crop=16))
    full = decay_trace(image, make(), DecayConfig(cycles=9, gif_frames=10, gif_crop=16, shortcut=False))
    assert fast.computed_cycles < 9 and full.computed_cycles == 9
    assert fast.orbit_start == full.orbit_start and fast.orbit_period == full.orbit_period
    a, b = fast.to_dict(), full.to_dict()
    for d in (a, b):
        d.pop("seconds")
        d.pop("computed_cycles")
    assert a == b
    assert all(torch.equal(fast.frames[c], full.frames[c]) for c in full.frames)
    assert torch.equal(fast.final, full.final)


def test_pillow_rescaler_matches_pillow_resize() -> None:
    img = quantize(texture_image(16, 20))[None]
    lr = pil_rescaler("pil-lanczos", 2).down(img)
    from irn.imaging.io import to_pil, to_tensor

    expected = to_tensor(to_pil(img).resize((10, 8), Image.Resampling.LANCZOS))[None]
    assert torch.equal(lr, expected)


def test_make_rescaler_names_and_errors() -> None:
    models = {"m": perturbed_irn()}
    assert make_rescaler("irn:m@zero", 2, models=models).info["z"] == "zero"
    r = make_rescaler("irn:m", 2, default_z="resample", seed=5, models=models)
    assert r.name == "irn:m@resample" and r.info["seed"] == 5
    assert make_rescaler("lanczos3", 2).name == "lanczos3"
    with pytest.raises(IRNError, match="unknown method"):
        make_rescaler("bogus", 2)
    with pytest.raises(IRNError, match="x2"):
        make_rescaler("irn:m", 4, models=models)


def test_sampled_z_is_fixed_across_cycles_and_resample_is_not() -> None:
    model = perturbed_irn()
    lr = quantize(0.3 + 0.4 * torch.rand(1, 3, 8, 8))
    fixed = irn_rescaler(model, z="sample", seed=7)
    assert torch.equal(fixed.up(lr, 1), fixed.up(lr, 2))
    fresh = irn_rescaler(model, z="resample", seed=7)
    assert not torch.equal(fresh.up(lr, 1), fresh.up(lr, 2))


def test_gif_cycles_spread_and_include_ends() -> None:
    assert gif_cycles(5, 50) == [0, 1, 2, 3, 4, 5]
    picked = gif_cycles(200, 50)
    assert picked[0] == 0 and picked[-1] == 200 and len(picked) == 50


def test_cli_writes_valid_json_plot_and_gif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "in.png"
    write_image(smooth_image(40, 36), image)
    ckpt = irn.save(perturbed_irn(), tmp_path / "tiny.pt", {"note": "random test model"})
    out = tmp_path / "out"
    argv = ["decay", str(image), "-o", str(out), "-n", "3", "--gif-crop", "24", "--save-final"]
    argv += ["-m", f"bicubic,pil-lanczos,irn:{ckpt}@zero", "-m", f"irn:{ckpt}@sample"]
    assert main(argv) == 0
    doc = json.loads((out / "decay.json").read_text())
    assert doc["scale"] == 2 and doc["cycles"] == 3 and doc["size_hw"] == [40, 36] and doc["jpeg"] is None
    assert list(doc["methods"]) == ["bicubic", "pil-lanczos", f"irn:{ckpt}@zero", f"irn:{ckpt}@sample"]
    for m in doc["methods"].values():
        assert len(m["psnr_vs_original"]) == len(m["ssim_vs_original"]) == len(m["lr_changed_fraction"]) == 3
    with Image.open(out / "decay.png") as plot:
        assert plot.format == "PNG" and plot.size == (900, 560)
    with Image.open(out / "decay.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 4  # cycles 0..3
    finals = sorted(p.name for p in out.glob("final_*.png"))
    assert len(finals) == 4
    with Image.open(out / "final_bicubic.png") as final:
        assert final.size == (36, 40)
    assert "fixed point" in capsys.readouterr().out


def test_cli_jpeg_between_steps_changes_the_result(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    write_image(texture_image(32, 32), image)
    for name, extra in (("plain", []), ("jpeg", ["--jpeg", "50", "--jpeg-on", "lr"])):
        assert main(["decay", str(image), "-o", str(tmp_path / name), "-n", "2", "-m", "bicubic", *extra]) == 0
    plain = json.loads((tmp_path / "plain" / "decay.json").read_text())
    jpeg = json.loads((tmp_path / "jpeg" / "decay.json").read_text())
    assert jpeg["jpeg"] == {"quality": 50, "on": "lr"}
    assert jpeg["methods"]["bicubic"]["psnr_vs_original"][0] < plain["methods"]["bicubic"]["psnr_vs_original"][0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-m", "bogus"], "unknown method"),
        (["-m", "bicubic", "-n", "0"], "--cycles"),
        (["-m", "bicubic", "--jpeg", "101"], "--jpeg"),
        (["-m", "irn:/no/such/model.pt"], "no such checkpoint"),
        (["-m", "bicubic,bicubic"], "twice"),
        (["-m", "bicubic", "--device", "warp9"], "--device 'warp9': not a device name"),
        (["-m", "bicubic", "-o", "in.png"], "-o in.png: is a file, expected a folder"),
        (["-m", "bicubic", "-s", "1"], "--scale must be 2 or more (1 does not rescale), got 1"),
        (["-m", "bicubic", "-o", "."], "(its decay.png) decay.png is the input image: writing it would overwrite it"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    image = tmp_path / ("decay.png" if extra[-1:] == ["."] else "in.png")
    write_image(smooth_image(16, 16), image)
    before = image.read_bytes()
    monkeypatch.chdir(tmp_path)
    argv = ["decay", str(image), "-o", str(tmp_path / "o"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("irn: error:") and message in err and "\n" not in err
    assert image.read_bytes() == before


def test_cli_missing_image_and_wrong_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decay", str(tmp_path / "none.png"), "-o", str(tmp_path / "o"), "-m", "bicubic"]) == 2
    assert "no such image" in capsys.readouterr().err
    image = tmp_path / "in.png"
    write_image(smooth_image(16, 16), image)
    ckpt = irn.save(perturbed_irn(), tmp_path / "tiny.pt")
    assert main(["decay", str(image), "-o", str(tmp_path / "o"), "-s", "4", "-m", f"irn:{ckpt}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "rescales by x2" in err and "\n" not in err


def test_cli_default_methods_name_a_shipped_irn_only_where_there_is_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from irn.cli.decay import default_methods

    assert default_methods(2) == ["bicubic", "pil-lanczos", "irn:x2@zero", "irn:x2@sample"]
    assert default_methods(4) == ["bicubic", "pil-lanczos", "irn:x4@zero", "irn:x4@sample"]
    image = tmp_path / "in.png"
    write_image(smooth_image(24, 24), image)
    assert main(["decay", str(image), "-o", str(tmp_path / "o"), "-s", "3", "-n", "1"]) == 0  # no shipped x3
    assert "no shipped IRN for x3" in capsys.readouterr().err
    assert list(json.loads((tmp_path / "o" / "decay.json").read_text())["methods"]) == ["bicubic", "pil-lanczos"]


@pytest.mark.parametrize(
    ("taken", "extra", "message"),
    [
        ("o/decay.json", [], "-o {d}/o (its decay.json) {d}/o/decay.json: is a folder, expected a file"),
        ("o/decay.gif", [], "-o {d}/o (its decay.gif) {d}/o/decay.gif: is a folder, expected a file"),
        (
            "o/final_bicubic.png",
            ["--save-final"],
            "-o {d}/o (its final_bicubic.png) {d}/o/final_bicubic.png: is a folder, expected a file",
        ),
        (None, ["-o", "{d}/in.png/o"], "-o {d}/in.png/o: {d}/in.png is a file, not a folder"),
    ],
)
def test_cli_refuses_an_unwritable_output_before_the_cycles(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    taken: str | None,
    extra: list[str],
    message: str,
) -> None:
    """Every file decay writes (JSON, plot, GIF, the final images) is checked up front: one line,
    exit 2, no cycle run and nothing written."""
    from irn.experiments import decay

    image = tmp_path / "in.png"
    write_image(smooth_image(16, 16), image)
    if taken is not None:
        (tmp_path / taken).mkdir(parents=True)

    def no_cycles(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the cycles ran before the outputs were checked")

    monkeypatch.setattr(decay, "decay_trace", no_cycles)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = ["decay", str(image), "-o", str(tmp_path / "o"), "-n", "2", "-m", "bicubic"]
    assert main([*argv, *(a.format(d=tmp_path) for a in extra)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"irn: error: {message.format(d=tmp_path)}", err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no partial output
