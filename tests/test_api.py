"""The image-level API: PIL images, numpy arrays and tensors in, the same kind out, sizes and alpha."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import random_irn
from PIL import Image

import irn
from irn.imaging.resize import imresize
from irn.nn import IRN


@pytest.fixture(scope="module")
def model() -> IRN:
    """The tests' tiny x2 model with small random weights, N(0, 0.01) each."""
    return random_irn(2, std=0.01, last_std=0.01, seed=1)


def fast(model: IRN) -> IRN:
    from irn.nn.fast import optimize_for_inference

    return optimize_for_inference(model)


def rgb(h: int = 9, w: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_pil_in_pil_out_with_padding_sizes(model: IRN) -> None:
    im = Image.fromarray(rgb(9, 7))
    lr = irn.downscale_image(model, im)
    assert isinstance(lr, Image.Image) and lr.mode == "RGB" and lr.size == (4, 5)  # ceil(7/2) x ceil(9/2)
    hr = irn.upscale_image(model, lr, seed=0)
    assert hr.size == (8, 10)  # exactly 2x the LR
    assert irn.upscale_image(model, lr, seed=0, size=(9, 7)).size == (7, 9)
    assert irn.roundtrip_image(model, im, seed=0).size == (7, 9)


def test_pil_matches_the_tensor_api(model: IRN) -> None:
    arr = rgb(8, 6)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected_lr = model.downscale(x)
        expected_rt = model.roundtrip(x, z="zero")
    lr = np.asarray(irn.downscale_image(model, Image.fromarray(arr)))
    assert np.array_equal(lr, (expected_lr[0].permute(1, 2, 0) * 255).round().byte().numpy())
    rt = irn.roundtrip_image(model, arr, z="zero")
    assert np.array_equal(rt, (expected_rt[0].permute(1, 2, 0) * 255).round().byte().numpy())


def test_a_bf16_model_takes_images_and_gives_what_the_fp32_model_gives() -> None:
    """A model converted with .to(torch.bfloat16) gets its pixels in bf16 from the image API (it used to
    answer "the image is torch.float32 ... convert it", which a PIL image cannot do), tiled or not; the
    result is the fp32 model's within bf16 rounding."""
    m32 = random_irn(2, std=0.05, last_std=0.05, seed=3)
    m16 = random_irn(2, std=0.05, last_std=0.05, seed=3).to(torch.bfloat16)
    im = Image.fromarray(rgb(40, 36))
    for kw in ({}, {"max_memory": 1}):  # max_memory 1 byte: tiles
        lr16 = np.asarray(irn.downscale_image(m16, im, **kw)).astype(int)
        lr32 = np.asarray(irn.downscale_image(m32, im, **kw)).astype(int)
        assert lr16.shape == lr32.shape == (20, 18, 3) and np.abs(lr16 - lr32).mean() < 1.5
        rt16 = np.asarray(irn.roundtrip_image(m16, im, z="zero", **kw)).astype(int)
        rt32 = np.asarray(irn.roundtrip_image(m32, im, z="zero", **kw)).astype(int)
        assert rt16.shape == (40, 36, 3) and np.abs(rt16 - rt32).mean() < 2.5


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_numpy_dtype_is_kept(model: IRN, dtype: type) -> None:
    base = rgb(6, 6)
    arr = {np.uint8: base, np.uint16: base.astype(np.uint16) * 257, np.float32: base.astype(np.float32) / 255}[dtype]
    lr = irn.downscale_image(model, arr)
    assert lr.dtype == dtype and lr.shape == (3, 3, 3)
    # the values, not just the type: each dtype's full range maps to [0, 1] and back
    x = torch.from_numpy(base).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = model.downscale(x)[0].permute(1, 2, 0).numpy()
    full = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    np.testing.assert_allclose(lr.astype(np.float64) / full, expected, atol=0.5 / full + 1e-6)


def test_greyscale_array_becomes_rgb(model: IRN) -> None:
    assert irn.downscale_image(model, rgb(6, 4)[:, :, 0]).shape == (3, 2, 3)


def test_alpha_is_resized_with_bicubic_and_reattached(model: IRN) -> None:
    alpha = np.linspace(0, 255, 8 * 6).reshape(8, 6, 1).round().astype(np.uint8)
    rgba = np.concatenate([rgb(8, 6), alpha], axis=2)
    lr = irn.downscale_image(model, Image.fromarray(rgba))
    assert lr.mode == "RGBA" and lr.size == (3, 4)
    expected = (imresize(torch.from_numpy(alpha[:, :, 0] / 255.0), scale=0.5).clamp(0, 1) * 255).round()
    assert np.array_equal(np.asarray(lr)[:, :, 3], expected.numpy().astype(np.uint8))
    rec = irn.roundtrip_image(model, rgba, seed=0)
    assert rec.shape == (8, 6, 4) and rec.dtype == np.uint8


def test_tensors_keep_their_rank(model: IRN) -> None:
    x = torch.rand(3, 7, 5)
    assert irn.downscale_image(model, x).shape == (3, 4, 3)
    assert irn.roundtrip_image(model, x[None]).shape == (1, 3, 7, 5)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda m: irn.IRN(irn.IRNConfig(scale=3)), "scale must be 2, 4 or 8, got 3"),
        (lambda m: m.encode(torch.rand(3, 8, 8)), "expected an image batch (B, 3, H, W), got shape (3, 8, 8)"),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), z="gauss"), "z must be 'sample', 'zero', 'auto' or a tensor"),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), size=(9, 8)), "size (9, 8): the output can be cropped to at most"),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), size=(0, 0)), "size (0, 0): the output can be cropped to at most"),
        (lambda m: irn.roundtrip_image(m, np.zeros((8, 8, 3), np.int32)), "unsupported array dtype int32"),
        (lambda m: irn.roundtrip_image(m, "photo.png"), "got str (a path? read it with irn.imaging.io.read_image"),
        (lambda m: irn.roundtrip_image(m, np.zeros((0, 0, 3), np.uint8)), "empty image (0x0 pixels)"),
        (
            lambda m: irn.downscale_image(m, torch.full((3, 8, 8), 200, dtype=torch.uint8)),
            "a tensor image must be floating point in [0, 1], got torch.uint8 (8-bit pixels: divide by 255",
        ),
        (lambda m: m.downscale(torch.ones(1, 3, 8, 8, dtype=torch.int64)), "the image must be a torch.float32 tensor"),
        (lambda m: m.encode(torch.rand(1, 3, 8, 8, dtype=torch.float64)), "the image is torch.float64 but the model"),
        (lambda m: m.upscale(torch.ones(1, 3, 4, 4, dtype=torch.uint8)), "lr must be a torch.float32 tensor in [0, 1]"),
        (lambda m: m.decode(torch.rand(1, 3, 4, 4), torch.randn(1, 9, 4, 4).double()), "z is torch.float64 but"),
        (lambda m: irn.load("x2", device="foo"), "device 'foo': not a device name (cpu, cuda, cuda:N, mps, auto)"),
        (lambda m: fast(m).upscale(torch.rand(1, 3, 4, 4), z="zero", size=(0, 5)), "can be cropped to at most"),
        (lambda m: fast(m).upscale(torch.rand(1, 3, 4, 4), z="zero", size=(9, 8)), "can be cropped to at most"),
        (lambda m: fast(m).decode(torch.rand(1, 3, 4, 4), torch.zeros(1, 9, 4, 4, dtype=torch.int64)), "z must be a"),
        (
            lambda m: irn.roundtrip_image(m, np.full((8, 8, 3), 200.0, np.float32)),
            "a float array must hold values in [0, 1], got up to 200 (divide by 255, or pass a uint8 array)",
        ),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), seed=2**70), "seed must be an integer in [0, 2^63)"),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), temperature=float("nan")), "temperature must be a finite number"),
        (lambda m: m.upscale(torch.rand(1, 3, 4, 4), temperature=-1.0), "temperature must be a finite number >= 0"),
    ],
)
def test_api_mistakes_are_irn_errors_and_value_errors(model: IRN, call, words: str) -> None:
    with pytest.raises(irn.InputError) as exc:
        call(model)
    assert isinstance(exc.value, irn.IRNError) and isinstance(exc.value, ValueError)
    assert words in str(exc.value) and "\n" not in str(exc.value)


def test_submodules_are_reachable_from_a_plain_import() -> None:
    code = "import irn; print(irn.metrics.psnr.__name__, irn.tiling.spans.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["psnr", "spans"]


def test_library_errors_name_their_parameter_and_the_cli_says_the_flag() -> None:
    import argparse

    from irn.cli.main import flag_for
    from irn.errors import InputError

    with pytest.raises(InputError) as info:
        irn.IRN(scale=2).sample_latent(torch.zeros(1, 3, 2, 2), z="sample", temperature=-1.0)
    assert info.value.param == "temperature" and str(info.value).startswith("temperature must be")
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", "--temperature", type=float)
    assert info.value.with_name(flag_for(parser, info.value.param)).startswith("--temperature must be")
    assert flag_for(parser, "nothing") == "nothing"


def test_color_and_x3_models_through_the_image_api() -> None:
    """IRN-Color: a grey PIL image (mode L) or (H, W) array comes out of downscale_image; upscale_image
    takes it (or a colour image, read as its luma) back to RGB. x3: 3 x the LR size."""
    colour = random_irn(1, 1, growth=8, kind="color")
    photo = Image.fromarray(rgb(11, 9))
    grey = irn.downscale_image(colour, photo)
    assert grey.mode == "L" and grey.size == photo.size
    expected = colour.decolorize(irn.io.to_tensor_rgba(photo)[0][None])[0, 0]
    torch.testing.assert_close(torch.from_numpy(np.asarray(grey).astype(np.float32) / 255), expected)
    array = irn.downscale_image(colour, np.asarray(photo))
    assert array.shape == (11, 9) and np.array_equal(array, np.asarray(grey))
    back = irn.upscale_image(colour, grey, z="zero")
    assert back.mode == "RGB" and back.size == photo.size
    assert np.array_equal(np.asarray(irn.upscale_image(colour, grey.convert("RGB"), z="zero")), np.asarray(back))
    x3 = random_irn(3, 1, growth=8, kind="conv")
    lr = irn.downscale_image(x3, photo)
    assert lr.size == (3, 4) and irn.upscale_image(x3, lr, seed=0).size == (9, 12)
    assert irn.roundtrip_image(x3, photo, seed=0).size == photo.size


def _grey_crm_model():  # noqa: ANN202
    """An IRN carrying a CRM that restores every LR to mid-grey: easy to see in the output."""
    from helpers import grey_restorer, identity_irn

    from irn.zoo import attach_restorer

    return attach_restorer(identity_irn(2), grey_restorer().eval())


def test_a_jpeg_lr_meets_the_restorer_the_model_carries(tmp_path) -> None:  # noqa: ANN001
    """upscale_image restores a PIL image read from a JPEG (or any LR with restore=True) with the
    model's CRM first; roundtrip_image(jpeg=Q) stores the LR as a JPEG in between and restores it."""
    model = _grey_crm_model()
    Image.fromarray(rgb(8, 6)).save(tmp_path / "lr.jpg", quality=90)
    Image.fromarray(rgb(8, 6)).save(tmp_path / "lr.png")
    with Image.open(tmp_path / "lr.jpg") as jpg, Image.open(tmp_path / "lr.png") as png:
        restored = np.asarray(irn.upscale_image(model, jpg, z="zero")).astype(int)
        as_is = np.asarray(irn.upscale_image(model, png, z="zero")).astype(int)
        forced = np.asarray(irn.upscale_image(model, png, z="zero", restore=True)).astype(int)
        skipped = np.asarray(irn.upscale_image(model, jpg, z="zero", restore=False)).astype(int)
    assert np.abs(restored - 128).max() <= 1 and np.abs(forced - 128).max() <= 1
    assert np.abs(as_is - 128).max() > 20 and np.abs(skipped - 128).max() > 20
    rt = np.asarray(irn.roundtrip_image(model, rgb(16, 12), z="zero", jpeg=75)).astype(int)
    assert np.abs(rt - 128).max() <= 1
    plain = random_irn(2, (1,))
    with pytest.raises(irn.InputError, match="carries no compression restoration module"):
        irn.upscale_image(plain, rgb(8, 6), restore=True)
    with pytest.raises(irn.InputError, match="JPEG quality from 1 to 100"):
        irn.roundtrip_image(plain, rgb(8, 6), jpeg=0)
    out = irn.roundtrip_image(plain, rgb(16, 12), z="zero", jpeg=95)  # no CRM: the decoded JPEG as it is
    assert out.shape == (16, 12, 3)
