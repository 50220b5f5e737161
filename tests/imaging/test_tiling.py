"""Tiled rescaling (irn.imaging.tiling) against the whole-image path, and `irn rescale --tile/--max-memory`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import random_irn
from PIL import Image

import irn
from irn.cli.main import main
from irn.imaging.tiling import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    Tiling,
    estimate_memory,
    image_buffer_bytes,
    plan_tiling,
    spans,
    tiled_downscale,
    tiled_encode,
    tiled_upscale,
    tiles,
    tiling_for_budget,
)
from irn.nn.fast import FastIRN


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def test_spans_cover_every_pixel_once() -> None:
    got = list(spans(37, 10, 4))
    assert [(a, b) for a, b, _, _ in got] == [(0, 10), (10, 20), (20, 30), (30, 37)]
    assert [(ca, cb) for _, _, ca, cb in got] == [(0, 14), (6, 24), (16, 34), (26, 37)]
    cores = list(tiles(7, 12, Tiling(tile=5, overlap=2)))
    assert len(cores) == 2 * 3
    covered = torch.zeros(7, 12, dtype=torch.int64)
    for rows, cols, _, _ in cores:
        covered[rows, cols] += 1
    assert covered.eq(1).all()
    with pytest.raises(ValueError, match="tile"):
        Tiling(tile=0)
    with pytest.raises(ValueError, match="overlap"):
        Tiling(overlap=-1)


@pytest.mark.parametrize("scale", [2, 4])
def test_tiled_equals_untiled_with_enough_overlap(scale: int) -> None:
    """One coupling block per level: an LR pixel depends on inputs at most 10 (x2) / 15 (x4) LR
    pixels away, so an overlap of 16 makes tiles agree with the whole image up to fp32 rounding."""
    model = random_irn(scale, growth=16)
    h, w = 40 * scale + 2, 36 * scale + 2  # not a multiple of the scale: padded, then cropped back
    hr = torch.rand(1, 3, h, w)
    tiling = Tiling(tile=12, overlap=16)  # 12-pixel LR cores, cut on multiples of the scale in HR
    lr_h, lr_w = math.ceil(h / scale), math.ceil(w / scale)
    # the tiles really are cut: most contexts are smaller than the LR image in both directions
    assert sum(cb - ca < lr_h for _, _, ca, cb in spans(lr_h, 12, 16)) >= 2
    assert sum(cb - ca < lr_w for _, _, ca, cb in spans(lr_w, 12, 16)) >= 2
    with torch.no_grad():
        lr = model.downscale(hr)
        lr_tiled = tiled_downscale(model, hr, tiling)
        lr_full, z_full = model.encode(hr)
        lr_enc, z_enc = tiled_encode(model, hr, tiling)
        up = model.upscale(lr, seed=3, size=(h, w))
        up_tiled = tiled_upscale(model, lr, tiling, seed=3, size=(h, w))
        up0 = model.upscale(lr, z="zero")
        up0_tiled = tiled_upscale(model, lr, tiling, z="zero")
    assert lr_tiled.shape == lr.shape == (1, 3, lr_h, lr_w)
    assert up_tiled.shape == (1, 3, h, w) and up0_tiled.shape == up0.shape
    assert psnr(lr_tiled, lr) >= 60
    assert z_enc is not None and (z_enc - z_full).abs().max() < 1e-4 and (lr_enc - lr_full).abs().max() < 1e-4
    assert psnr(up_tiled, up) >= 60
    assert psnr(up0_tiled, up0) >= 60


def test_tiles_without_overlap_do_not_agree() -> None:
    """The overlap is what makes tiling work: cut tiles without context show their seams."""
    model = random_irn(2, growth=16)
    hr = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        lr = model.downscale(hr)
        up = model.upscale(lr, z="zero")
        assert psnr(tiled_downscale(model, hr, Tiling(tile=8, overlap=0)), lr) < 60
        assert psnr(tiled_upscale(model, lr, Tiling(tile=8, overlap=0), z="zero"), up) < 60


def test_tiles_through_the_fast_path_with_a_given_latent() -> None:
    model = random_irn(2, growth=16)
    fast = FastIRN(model)
    lr = torch.rand(2, 3, 20, 18)
    z = torch.randn(2, model.latent_channels, 20, 18)
    with torch.no_grad():
        up = model.upscale(lr, z=z)
        up_tiled = tiled_upscale(fast, lr, Tiling(tile=7, overlap=12), z=z)
    assert psnr(up_tiled, up) >= 60
    with pytest.raises(ValueError, match="z must have shape"):
        tiled_upscale(model, lr, Tiling(), z=z[:1])
    # size crops, as model.upscale's does, and cannot enlarge or empty the output
    with torch.no_grad():
        cropped = tiled_upscale(fast, lr, Tiling(tile=7, overlap=12), z=z, size=(37, 30))
    torch.testing.assert_close(cropped, up_tiled[..., :37, :30], rtol=0, atol=0)
    for size in ((41, 36), (40, 37), (0, 36)):
        with pytest.raises(irn.InputError, match="can be cropped to at most"):
            tiled_upscale(fast, lr, Tiling(tile=7, overlap=12), z=z, size=size)


def test_budget_picks_tiles_only_when_needed() -> None:
    plain = random_irn(4, growth=32)
    fast = FastIRN(plain)
    assert tiling_for_budget(fast, 512, 512, 4 * 2**30, overlap=32) is None
    budget = 5 * 2**29  # 2.5 GiB
    assert estimate_memory(fast, 6000, 8000) > budget
    for op in ("down", "up"):
        chosen = tiling_for_budget(fast, 6000, 8000, budget, overlap=32, op=op)
        assert chosen is not None and chosen.overlap == 32 and chosen.tile >= 64
        side = 4 * (chosen.tile + 2 * chosen.overlap)
        assert estimate_memory(fast, side, side) + image_buffer_bytes(fast, 6000, 8000, op) <= budget
        # the fewest tiles along the 2000 LR px side: one tile fewer would not fit
        count = -(-2000 // chosen.tile)
        assert chosen.tile == -(-2000 // count)
        larger = 4 * (-(-2000 // (count - 1)) + 2 * chosen.overlap)
        assert estimate_memory(fast, larger, larger) + image_buffer_bytes(fast, 6000, 8000, op) > budget
    # up holds the latent and the HR output besides the LR; down only the HR input and the LR
    assert image_buffer_bytes(fast, 6000, 8000, "up") > image_buffer_bytes(fast, 6000, 8000, "down")
    with pytest.raises(ValueError, match="does not fit"):
        tiling_for_budget(fast, 6000, 8000, 600 * 2**20, overlap=32, op="up")
    # the plain path needs far more per pixel than the fast one
    assert estimate_memory(plain, 1000, 1000) > estimate_memory(fast, 1000, 1000)


def test_unmeetable_budget_uses_default_tiles_and_says_so() -> None:
    fast = FastIRN(random_irn(4, growth=32))
    notes: list[str] = []
    tiling = plan_tiling(fast, 6000, 8000, "up", max_memory=600 * 2**20, notes=notes)
    assert tiling == Tiling(tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP)
    assert notes == [
        "up: a 8000x6000 image does not fit in 600 MiB even in 128-pixel tiles (the whole-image buffers "
        f"alone take {image_buffer_bytes(fast, 6000, 8000, 'up') / 2**20:.0f} MiB); running in tiles of "
        f"{4 * DEFAULT_TILE} px, beyond the budget"
    ]
    assert plan_tiling(fast, 6000, 8000, "up", max_memory=2 * 2**30, notes=notes) is not None
    assert len(notes) == 1  # a budget that tiles can meet adds no note here


# ---------------------------------------------------------------------------- irn rescale
def test_rescale_tile_and_max_memory_match_whole_image(
    tmp_path: Path, tiny_x2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--tile 32` (16-pixel LR cores, 32-pixel LR overlap) on a 128x112 image: 4 x 4 tiles, whose
    contexts (up to 48 LR pixels) do not span the 64x56 LR image."""
    src = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (112, 128, 3), dtype=np.uint8)).save(src)
    outputs = {}
    for name, extra in (("whole", []), ("tiled", ["--tile", "32"]), ("budget", ["--max-memory", "1K"])):
        out = tmp_path / name
        code = main(["rescale", "roundtrip", str(src), "--model", str(tiny_x2), "-o", str(out), *extra])
        err = capsys.readouterr().err
        assert code == 0, err
        assert ("tiles of" in err) == (name != "whole")
        outputs[name] = {
            kind: torch.from_numpy(np.asarray(Image.open(out / f"photo_x2_{kind}.png"), dtype=np.float32) / 255)
            for kind in ("lr", "rt")
        }
    for name in ("tiled", "budget"):
        for kind in ("lr", "rt"):
            assert psnr(outputs[name][kind], outputs["whole"][kind]) >= 60


def test_rescale_rejects_bad_tile_and_memory_values(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (["--tile", "8"], ["--tile", "big"], ["--max-memory", "lots"], ["--max-memory", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["rescale", "down", "x.png", *bad])
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_a_grey_lr_keeps_its_one_channel_in_tiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """IRN-Color's "LR" (the grey image) has 1 channel and its output 3: tiled runs, and ``irn color
    --tile``, give the untiled images (tiles used to assume as many LR channels as HR ones)."""
    model = random_irn(1, 1, growth=8, kind="color")
    hr = torch.rand(1, 3, 30, 26)
    tiling = Tiling(tile=8, overlap=10)
    with torch.no_grad():
        grey = model.downscale(hr)
        assert grey.shape == (1, 1, 30, 26)
        torch.testing.assert_close(tiled_downscale(model, hr, tiling), grey, rtol=0, atol=1 / 255 + 1e-6)
        rgb = tiled_upscale(model, grey, tiling, z="sample", seed=2)
        torch.testing.assert_close(rgb, model.upscale(grey, z="sample", seed=2), rtol=0, atol=1e-5)
    src = tmp_path / "a.png"
    Image.fromarray((hr[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(src)
    saved = irn.save(model, tmp_path / "color.pt")
    for name, extra in (("whole", []), ("tiled", ["--tile", "16"])):
        assert main(["color", "roundtrip", str(src), "--model", str(saved), "-o", str(tmp_path / name), *extra]) == 0
    for image in ("a_grey.png", "a_rt.png"):
        whole = np.asarray(Image.open(tmp_path / "whole" / image)).astype(int)
        tiled = np.asarray(Image.open(tmp_path / "tiled" / image)).astype(int)
        assert whole.shape == tiled.shape and np.abs(whole - tiled).max() <= 1
