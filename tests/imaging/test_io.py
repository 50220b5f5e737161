"""Image I/O: every input kind converted (and said so), bad files refused with one line, atomic writes."""

from __future__ import annotations

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
    write_exif_rotated,
    write_multipage_tiff,
    write_png_header_only,
    write_truncated,
)

from irn.imaging import io
from irn.imaging.io import ImageReadError, ImageTooLargeError, read_image, read_image_checked, write_image


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_all_modes(tmp_path_factory.mktemp("modes"))


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return io.to_uint8(x)


def test_rgb_is_exact_and_has_no_notes(files: dict[str, Path]) -> None:
    rgb, alpha, notes = read_image_checked(files["rgb"])
    assert rgb.dtype == torch.float32 and rgb.shape == (3, 14, 10)
    assert np.array_equal(as_uint8(rgb), rgb_array())
    assert alpha is None and notes == []
    assert torch.equal(read_image(files["rgb"]), rgb)


def test_rgba_keeps_alpha_apart(files: dict[str, Path]) -> None:
    rgb, alpha, notes = read_image_checked(files["rgba"])
    expected = np.asarray(Image.open(files["rgba"]))
    assert np.array_equal(as_uint8(rgb), expected[:, :, :3])
    assert alpha is not None and alpha.shape == (1, 14, 10)
    assert np.array_equal((alpha[0] * 255).round().byte().numpy(), expected[:, :, 3])
    assert notes == []


@pytest.mark.parametrize(
    ("kind", "note"),
    [
        ("grey", "converted from greyscale"),
        ("palette", "converted from palette"),
        ("cmyk", "converted from CMYK"),
        ("grey16", "converted from 16-bit greyscale"),
        ("rgb16", "converted from 16-bit colour"),
        ("exif", "EXIF orientation 6 applied"),
    ],
)
def test_conversions_are_noted(files: dict[str, Path], kind: str, note: str) -> None:
    rgb, alpha, notes = read_image_checked(files[kind])
    assert any(n.startswith(note) for n in notes), notes
    assert rgb.shape[0] == 3 and rgb.dtype == torch.float32
    assert 0 <= rgb.min() and rgb.max() <= 1
    assert alpha is None


def test_greyscale_becomes_three_equal_channels(files: dict[str, Path]) -> None:
    rgb = read_image(files["grey"])
    assert torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[1], rgb[2])
    assert np.array_equal(as_uint8(rgb)[:, :, 0], rgb_array()[:, :, 0])


def test_sixteen_bit_greyscale_keeps_full_precision(files: dict[str, Path]) -> None:
    rgb = read_image(files["grey16"])
    expected = (rgb_array()[:, :, 0].astype(np.float64) * 257 + 3) / 65535
    assert np.abs(rgb[0].numpy() - expected).max() < 1e-6  # not rounded to 8 bits


def test_palette_matches_its_rgb_rendering(files: dict[str, Path]) -> None:
    rgb = read_image(files["palette"])
    assert np.array_equal(as_uint8(rgb), np.asarray(Image.open(files["palette"]).convert("RGB")))


def test_palette_with_transparency_gives_alpha(tmp_path: Path) -> None:
    im = Image.fromarray(rgb_array()).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    im.info["transparency"] = 0
    im.save(tmp_path / "t.png", transparency=0)
    _, alpha, notes = read_image_checked(tmp_path / "t.png")
    assert alpha is not None and alpha.min() == 0 and alpha.max() == 1
    assert "converted from palette with transparency" in notes


def test_exif_orientation_is_applied(files: dict[str, Path]) -> None:
    rgb = read_image(files["exif"])
    # orientation 6: the stored pixels are shown rotated 90 degrees clockwise
    assert rgb.shape == (3, 10, 14)
    assert np.array_equal(as_uint8(rgb), np.rot90(rgb_array(), k=-1))


def test_cmyk_is_close_to_the_original_colours(files: dict[str, Path]) -> None:
    rgb = as_uint8(read_image(files["cmyk"])).astype(int)
    # Pillow's CMYK round trip is exact (0 without JPEG); JPEG at quality 95 adds a little
    # (measured: mean 1.5, max 7 levels); a wrong conversion (K ignored, inverted) is ~100 off
    error = np.abs(rgb - rgb_array().astype(int))
    assert error.mean() < 3 and error.max() <= 16


@pytest.mark.parametrize("maker", [write_animated_gif, write_multipage_tiff])
def test_multi_frame_images_are_refused(tmp_path: Path, maker) -> None:  # type: ignore[no-untyped-def]
    path = maker(tmp_path / ("anim.gif" if maker is write_animated_gif else "pages.tif"))
    with pytest.raises(ImageReadError, match="multi-frame") as exc:
        read_image_checked(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_single_frame_gif_is_fine(tmp_path: Path) -> None:
    write_animated_gif(tmp_path / "one.gif", frames=1)
    rgb, _, notes = read_image_checked(tmp_path / "one.gif")
    assert rgb.shape == (3, 8, 8) and "converted from palette" in notes


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: p.write_text("not pixels\n"), "not an image"),
        (lambda p: write_truncated(p, "PNG"), "truncated"),
        (lambda p: write_truncated(p, "JPEG"), "truncated"),
        (lambda p: None, "no such file"),
    ],
    ids=["zero-byte", "text", "truncated-png", "truncated-jpeg", "missing"],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, make, words: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageReadError) as exc:
        read_image_checked(path)
    message = str(exc.value)
    assert words in message and str(path) in message and "\n" not in message


def test_pixel_limit(tmp_path: Path) -> None:
    Image.fromarray(rgb_array(20, 10)).save(tmp_path / "big.png")
    with pytest.raises(ImageTooLargeError) as exc:
        read_image_checked(tmp_path / "big.png", max_pixels=199)
    assert (exc.value.width, exc.value.height, exc.value.limit) == (10, 20, 199)
    assert "over the limit" in str(exc.value)
    assert read_image_checked(tmp_path / "big.png", max_pixels=200).rgb.shape == (3, 20, 10)


def test_pillow_decompression_bomb_becomes_our_message(tmp_path: Path) -> None:
    path = write_png_header_only(tmp_path / "bomb.png", 20_000, 10_000)  # 200 MP, no pixel data
    saved = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError) as exc:
        read_image_checked(path, max_pixels=50_000_000)
    assert "20000x10000 = 200 MP is over the limit of 50 MP" in str(exc.value)
    assert Image.MAX_IMAGE_PIXELS == saved  # Pillow's global is restored


def test_write_image_rgba_and_refusal_for_jpeg(tmp_path: Path) -> None:
    rgb = torch.rand(3, 6, 5)
    alpha = torch.rand(1, 6, 5)
    write_image(rgb, tmp_path / "a.png", alpha=alpha)
    back, back_alpha, _ = read_image_checked(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"
    assert (back - rgb).abs().max() <= 0.5 / 255 + 1e-6
    assert back_alpha is not None and (back_alpha - alpha).abs().max() <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError, match="cannot store an alpha channel"):
        write_image(rgb, tmp_path / "a.jpg", alpha=alpha)


def test_write_image_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half")  # type: ignore[attr-defined]  # half-written, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_image(torch.rand(3, 4, 4), target)
    assert list(tmp_path.iterdir()) == []


def test_to_tensor_rgba_arrays() -> None:
    arr = rgb_array(4, 3)
    rgba = np.concatenate([arr, np.full((4, 3, 1), 128, np.uint8)], 2)
    rgb, alpha = io.to_tensor_rgba(rgba)
    assert rgb.shape == (3, 4, 3) and alpha is not None and alpha.shape == (1, 4, 3)
    assert torch.allclose(alpha, torch.full((1, 4, 3), 128 / 255))
    grey, none = io.to_tensor_rgba(arr[:, :, 0].astype(np.uint16) * 257)
    assert none is None and torch.allclose(grey[0], torch.from_numpy(arr[:, :, 0] / 255).float())


def test_our_limit_replaces_pillows_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses over 200 pixels, warns over 100
    path = tmp_path / "wide.png"
    Image.fromarray(rgb_array(10, 30)).save(path)  # 300 pixels
    assert read_image_checked(path, max_pixels=1000).rgb.shape == (3, 10, 30)  # a higher limit of ours wins
    assert read_image(path).shape == (3, 10, 30)  # no limit at all
    with pytest.raises(ImageTooLargeError, match="30x10 = 300 pixels is over the limit of 50 pixels"):
        read_image_checked(path, max_pixels=50)
    assert Image.MAX_IMAGE_PIXELS == 100


def test_atomic_writes_keep_the_umask_permissions_and_lose_nothing(tmp_path: Path) -> None:
    """Every file irn writes goes through io.atomic_write: mode 0o666 less the umask (mkstemp's
    0o600 made exported models and JSON reports private), and a failed write keeps the old file."""
    import json
    import os

    import irn
    from irn.eval.report import write_report
    from irn.imaging.io import write_json
    from irn.train.callbacks import AtomicCheckpointIO

    old = os.umask(0o022)
    try:
        written = [
            irn.save(identity_irn(growth=4), tmp_path / "m.pt"),
            write_image(torch.rand(3, 8, 8), tmp_path / "a.png"),
        ]
        AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, tmp_path / "c.ckpt")
        write_report(tmp_path / "e.json", {"x": 1.0})
        write_json(tmp_path / "r.json", {"x": 1})
        written += [tmp_path / "c.ckpt", tmp_path / "e.json", tmp_path / "r.json"]
    finally:
        os.umask(old)
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o644, path
    with pytest.raises(RuntimeError, match="disk full"), io.atomic_write(tmp_path / "r.json", "w") as f:
        f.write("{")
        raise RuntimeError("disk full")
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.ckpt", "e.json", "m.pt", "r.json"]


def test_training_reader_turns_images_upright_as_read_image_does(tmp_path: Path) -> None:
    """irn.train.data.read_uint8 (training and validation images) and read_image (irn eval, rescale)
    apply the EXIF orientation alike, so val/psnr_y scores the pixels irn eval scores."""
    from irn.train.data import read_uint8

    arr = rgb_array(20, 30)
    path = write_exif_rotated(tmp_path / "rot.png", arr, orientation=6)
    upright = read_uint8(path)
    assert upright.shape == (3, 30, 20)
    torch.testing.assert_close(upright, (read_image(path) * 255).round().to(torch.uint8), rtol=0, atol=0)
    plain = tmp_path / "plain.png"
    Image.fromarray(arr).save(plain)
    torch.testing.assert_close(read_uint8(plain), torch.from_numpy(arr).permute(2, 0, 1), rtol=0, atol=0)


def test_write_image_takes_uint8_tensors_as_they_are(tmp_path: Path) -> None:
    pixels = torch.from_numpy(rgb_array(6, 5)).permute(2, 0, 1).contiguous()
    write_image(pixels, tmp_path / "u8.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "u8.png")), rgb_array(6, 5))
    with pytest.raises(ValueError, match="expected a float tensor in \\[0, 1\\] \\(or uint8\\), got torch.int64"):
        write_image(pixels.long(), tmp_path / "i64.png")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (a folder no one can create files in)")
def test_output_check_tries_a_real_write(tmp_path: Path) -> None:
    """os.access says yes to root everywhere; check_output_path creates (and removes) a file instead."""
    from irn.errors import IRNError

    with pytest.raises(IRNError, match=r"^--json /proc/irn-x.json: cannot write in /proc \("):
        io.check_output_path("/proc/irn-x.json", "--json")
    with pytest.raises(IRNError, match=r"^-o /proc/irn-out: cannot write in /proc \("):
        io.check_output_path("/proc/irn-out", "-o", folder=True)
    assert io.check_output_path(tmp_path / "new" / "x.png", "-o") == tmp_path / "new" / "x.png"
    assert list(tmp_path.iterdir()) == []  # the probe left nothing behind, and made no folder


def test_atomic_write_keeps_links_and_writes_through_pipes(tmp_path: Path) -> None:
    import os
    import threading

    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    with io.atomic_write(link, "w") as f:
        f.write("new")
    assert link.is_symlink() and target.read_text() == "new"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    with io.atomic_write(fifo) as f:
        f.write(b"through")
    reader.join(timeout=10)
    assert got == [b"through"] and not fifo.is_file()  # still the pipe, not replaced by a file


def test_one_json_rule_for_non_finite_figures(tmp_path: Path) -> None:
    """Every JSON file irn writes is strict JSON: inf/-inf/NaN become null, tuples lists, scalars numbers."""
    import json

    doc = {"a": float("inf"), "b": [float("-inf"), float("nan"), 1.5], "c": (1, 2), "d": np.float32(0.5)}
    doc["e"] = torch.tensor(2.0)
    path = io.write_json(tmp_path / "x.json", doc)
    assert json.loads(path.read_text()) == {"a": None, "b": [None, None, 1.5], "c": [1, 2], "d": 0.5, "e": 2.0}
    assert "Infinity" not in io.json_text({"x": float("inf")}) and "NaN" not in io.json_text([float("nan")])
