"""Issue 30, part 3: every command runs the newer rescalers, SAIN and T-IRN, as it runs IRN.

``irn rescale`` (down, up, roundtrip; PNG, JPEG and WebP LRs; the lossy warning only where the model is
not made for the format: :func:`irn.zoo.purpose.lr_formats`), tiling and alpha, ``irn eval`` with
``--jpeg`` and ``--webp``, ``irn export`` (pt, safetensors, ONNX against the torch model, SAIN's mixture
drawn by the torch-free runtime), the Python API, and the experiments. Models are tiny random SAIN and
T-IRN networks saved with ``irn.save``; the official names are served from those files by replacing the
download (``irn.zoo.pretrained.fetch``), since these machines cannot fetch the official weights.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import random_irn, randomise, shared_path
from PIL import Image

import irn
from irn.cli.main import main
from irn.imaging.io import lossy_roundtrip, read_image
from irn.nn.network import Rescaler, quantize
from irn.nn.sain import SAIN, SAINConfig
from irn.nn.tirn import TIRN, TIRNConfig
from irn.zoo.catalogue import Pretrained

ARCHS = ("sain", "tirn")
Capsys = pytest.CaptureFixture[str]


def tiny_sain(scale: int = 2, v_blocks: int = 1, seed: int = 0) -> SAIN:
    """A SAIN with one E-block, ``v_blocks`` V-blocks and growth 8, every weight random."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SAIN(SAINConfig(scale=scale, e_blocks=1, v_blocks=v_blocks, growth=8))
    return randomise(model, seed=seed).eval()  # type: ignore[return-value]


def tiny_tirn(scale: int = 2, seed: int = 0) -> TIRN:
    """A T-IRN with one tri-branch block per stage and growth 8, every weight random."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TIRN(TIRNConfig(scale=scale, blocks_per_stage=(1,) * (scale // 2), growth=8))
    return randomise(model, seed=seed).eval()  # type: ignore[return-value]


BUILD: dict[str, Callable[[], Rescaler]] = {"sain": tiny_sain, "tirn": tiny_tirn}


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny SAIN and T-IRN (x2) saved in our format, once for the module."""
    folder = tmp_path_factory.mktemp("newer")
    return {name: irn.save(build(), folder / f"{name}.pt", {"note": f"tiny {name}"}) for name, build in BUILD.items()}


def smooth_array(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """(h, w, channels) uint8: a smooth colour field (like a photograph, so JPEG and WebP behave)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, channels, max(2, h // 6), max(2, w // 6), generator=g)
    img = torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return (img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_png(path: Path, h: int = 32, w: int = 40, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_array(h, w, seed)).save(path)
    return path


def run_cli(args: list[str], capsys: Capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def serve_official_names(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> None:
    """``sain-x2-jpeg`` and ``sain-x2-webp`` resolve to the tiny SAIN file, ``tirn-x2`` to the tiny T-IRN:
    what a verified download would hand over, without the network."""
    by_arch = {"sain": files["sain"], "tirn": files["tirn"]}

    def fetch(entry: Pretrained, *, options: object = None) -> Path:
        return by_arch[entry.arch]

    monkeypatch.setattr("irn.zoo.pretrained.fetch", fetch)


# ------------------------------------------------------------------ irn rescale
@pytest.mark.parametrize("arch", ARCHS)
def test_rescale_down_up_roundtrip(arch: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys) -> None:
    src = save_png(tmp_path / "in" / "a.png", 33, 27, seed=1)  # odd sizes: padded, cropped back
    model = str(model_files[arch])
    out = tmp_path / "out"
    argv = ["rescale", "roundtrip", str(src), "--model", model, "-o", str(out), "--json", str(tmp_path / "rt.json")]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0, err
    assert "PSNR-Y" in stdout and "warning" not in err
    assert Image.open(out / "a_x2_lr.png").size == (14, 17) and Image.open(out / "a_x2_rt.png").size == (27, 33)
    summary = json.loads((tmp_path / "rt.json").read_text())
    assert summary["z"] == {"sain": "sample", "tirn": "zero"}[arch]  # --z auto: the architecture's latent

    code, _, err = run_cli(["rescale", "down", str(src), "--model", model, "-o", str(tmp_path / "d")], capsys)
    assert code == 0, err
    lr_file = tmp_path / "d" / "a_x2_lr.png"
    assert np.array_equal(np.asarray(Image.open(lr_file)), np.asarray(Image.open(out / "a_x2_lr.png")))
    code, _, err = run_cli(["rescale", "up", str(lr_file), "--model", model, "-o", str(tmp_path / "u")], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "u" / "a_x2_up.png").size == (28, 34)  # exactly 2x the LR

    # the roundtrip's reconstruction is the library's: downscale, then upscale with the recommended latent
    net = irn.load(model)
    hr = read_image(src)[None]
    expected = quantize(net.roundtrip(hr, z="auto", seed=0))[0]
    written = torch.from_numpy(np.array(Image.open(out / "a_x2_rt.png"))).permute(2, 0, 1) / 255
    assert (written - expected).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("arch", ARCHS)
def test_latent_flags(arch: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys) -> None:
    """--z sample and --z zero work for every architecture; --seed makes a sample reproducible."""
    src = save_png(tmp_path / "a.png", 24, 24)
    outputs = {}
    runs = {
        "s0": ["--z", "sample"],
        "s0b": ["--z", "sample"],
        "s1": ["--z", "sample", "--seed", "1"],
        "zero": ["--z", "zero"],
        "auto": [],
    }
    for name, flags in runs.items():
        argv = ["rescale", "roundtrip", str(src), "--model", str(model_files[arch]), "-o", str(tmp_path / name)]
        assert run_cli([*argv, *flags], capsys)[0] == 0
        outputs[name] = np.asarray(Image.open(tmp_path / name / "a_x2_rt.png"))
    assert np.array_equal(outputs["s0"], outputs["s0b"]) and not np.array_equal(outputs["s0"], outputs["s1"])
    assert np.array_equal(outputs["auto"], outputs["s0" if arch == "sain" else "zero"])


@pytest.mark.parametrize(
    ("arch", "fmt", "warned"),
    [("sain", "jpg", False), ("sain", "webp", False), ("tirn", "jpg", True), ("tirn", "webp", True)],
)
def test_lossy_lr_by_path(
    arch: str, fmt: str, warned: bool, model_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A SAIN file loaded by path is compression-aware: no warning for jpg or webp; a T-IRN (lossless) is
    warned. Either way the reconstruction upscales what the lossy file holds."""
    src = save_png(tmp_path / "a.png")
    out = tmp_path / "out"
    argv = ["rescale", "roundtrip", str(src), "--model", str(model_files[arch]), "-o", str(out), "--format", fmt]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert ("does not survive lossy compression" in err) is warned
    lr_file = out / f"a_x2_lr.{fmt}"
    assert Image.open(lr_file).format == {"jpg": "JPEG", "webp": "WEBP"}[fmt]
    net = irn.load(model_files[arch])
    stored = read_image(lr_file)[None]
    expected = quantize(net.upscale(stored, z="auto", seed=0, size=(32, 40)))[0]
    written = torch.from_numpy(np.array(Image.open(out / "a_x2_rt.png"))).permute(2, 0, 1) / 255
    assert (written - expected).abs().max() <= 1 / 255 + 1e-6
    # the LR the file holds is the model's, stored at --quality 95
    lr = net.downscale(read_image(src)[None])
    pillow = {"jpg": "JPEG", "webp": "WEBP"}[fmt]
    assert (lossy_roundtrip(lr, pillow, 95) - stored).abs().max() <= 1 / 255 + 1e-6


def test_png_lr_of_a_sain_file_gets_the_note(model_files: dict[str, Path], tmp_path: Path, capsys: Capsys) -> None:
    src = save_png(tmp_path / "a.png", 16, 16)
    argv = ["rescale", "down", str(src), "--model", str(model_files["sain"]), "-o", str(tmp_path / "o")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0 and "warning" not in err
    assert "is trained for a JPEG or WebP LR; add --format jpg or --format webp" in err


@pytest.mark.parametrize(
    ("name", "fmt", "words"),
    [
        ("sain-x2-jpeg", "jpg", None),
        ("sain-x2-jpeg", "webp", "(--model sain-x2-jpeg is made for a JPEG LR)"),
        ("sain-x2-webp", "webp", None),
        ("sain-x2-webp", "jpg", "(--model sain-x2-webp is made for a WebP LR)"),
        ("sain-x2-webp", "png", "is trained for a WebP LR; add --format webp"),
        ("tirn-x2", "jpg", "does not survive lossy compression well"),
        ("tirn-x2", "png", None),
    ],
)
def test_lossy_lr_by_name_follows_the_catalogue(
    name: str,
    fmt: str,
    words: str | None,
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: Capsys,
) -> None:
    """A model loaded by name is made for its catalogue purpose: sain-*-jpeg for jpg, sain-x2-webp for
    webp (the other lossy format is warned, naming what it is made for), tirn-* for a PNG LR."""
    serve_official_names(monkeypatch, model_files)
    src = save_png(tmp_path / "a.png", 16, 16)
    argv = ["rescale", "roundtrip", str(src), "--model", name, "-o", str(tmp_path / "o"), "--format", fmt]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    if words is None:
        assert "warning" not in err and "note: --model" not in err
    else:
        assert words in err
    assert irn.load(name).metadata["purpose"] == {"sain-x2-jpeg": "JPEG", "sain-x2-webp": "WebP"}.get(name, "lossless")


def test_shipped_names_carry_their_purpose(tmp_path: Path, capsys: Capsys) -> None:
    """x2-jpeg by name: made for JPEG (its purpose and its card agree), so webp is warned with what it is
    made for; a path to the same file has no purpose, the card says JPEG."""
    from irn.zoo.purpose import lr_formats

    assert irn.load("x2-jpeg").metadata["purpose"] == "JPEG" and lr_formats(irn.load("x2-jpeg")) == ("JPEG",)
    assert irn.load("x2").metadata["purpose"] == "lossless" and lr_formats(irn.load("x2")) == ()
    by_path = irn.load(irn.zoo.resolve("x2-jpeg"))
    assert "purpose" not in by_path.metadata and lr_formats(by_path) == ("JPEG",)
    src = save_png(tmp_path / "a.png", 12, 12)
    argv = ["rescale", "down", str(src), "--model", "x2-jpeg", "--format", "webp", "-o", str(tmp_path / "o")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0 and "(--model x2-jpeg is made for a JPEG LR)" in err


def test_official_sain_file_is_compression_aware(tmp_path: Path, capsys: Capsys) -> None:
    """The official-format SAIN fixture, by path: no warning for webp, and it rescales."""
    official = shared_path("fixtures", "official_sain_x2_seed3.pth")
    src = save_png(tmp_path / "a.png", 16, 16)
    argv = ["rescale", "roundtrip", str(src), "--model", str(official), "--format", "webp", "-o", str(tmp_path / "o")]
    code, stdout, err = run_cli(argv, capsys)
    assert code == 0 and "warning" not in err and "PSNR-Y" in stdout


# ------------------------------------------------------------------ tiling and alpha
@pytest.mark.parametrize("arch", ARCHS)
def test_tiled_equals_untiled_in_the_cli(
    arch: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys
) -> None:
    src = save_png(tmp_path / "a.png", 48, 40)
    images = {}
    for name, extra in {"whole": [], "tiled": ["--tile", "16"]}.items():
        argv = ["rescale", "roundtrip", str(src), "--model", str(model_files[arch]), "-o", str(tmp_path / name)]
        code, _, err = run_cli([*argv, "--z", "sample", "--seed", "3", *extra], capsys)
        assert code == 0, err
        assert ("tiles of 16 px" in err) == bool(extra)
        images[name] = [np.asarray(Image.open(tmp_path / name / f"a_x2_{k}.png")).astype(int) for k in ("lr", "rt")]
    for whole, tiled in zip(images["whole"], images["tiled"], strict=True):
        assert np.abs(whole - tiled).max() <= 1 and (whole != tiled).mean() < 0.01


@pytest.mark.parametrize("build", [lambda: tiny_sain(v_blocks=0), tiny_tirn, lambda: tiny_tirn(scale=4)])
def test_tiles_with_partial_context_agree_with_the_whole_image(build: Callable[[], Rescaler]) -> None:
    """Tiles that see only part of the image (4 LR pixels of core, 10 of context) give the untiled
    result to 1e-5, and a tiled SAIN draws its mixture reproducibly: the same draw as untiled."""
    from irn.imaging.tiling import Tiling, tiled_downscale, tiled_upscale

    model = build()
    hr = torch.from_numpy(smooth_array(48, 44, seed=2)).permute(2, 0, 1)[None].float() / 255
    tiling = Tiling(tile=4, overlap=10)
    with torch.no_grad():
        lr = model.downscale(hr)
        assert (tiled_downscale(model, hr, tiling) - lr).abs().max() <= 1 / 255 + 1e-6
        for z in ("zero", "sample"):
            whole = model.upscale(lr, z=z, seed=5)
            tiled = tiled_upscale(model, lr, tiling, z=z, seed=5)
            torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
        again = tiled_upscale(model, lr, Tiling(tile=6, overlap=10), z="sample", seed=5)  # another tile size
        torch.testing.assert_close(again, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_alpha_follows_as_for_irn(arch: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys) -> None:
    rgba = np.concatenate([smooth_array(20, 18, seed=4), smooth_array(20, 18, seed=5, channels=1)], axis=2)
    src = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(src)
    outs = {}
    for name, model in {
        "new": str(model_files[arch]),
        "irn": str(irn.save(random_irn(2), tmp_path / "irn.pt")),
    }.items():
        code, _, err = run_cli(["rescale", "roundtrip", str(src), "--model", model, "-o", str(tmp_path / name)], capsys)
        assert code == 0, err
        outs[name] = [Image.open(tmp_path / name / f"a_x2_{k}.png") for k in ("lr", "rt")]
    for new, ref in zip(outs["new"], outs["irn"], strict=True):
        assert new.mode == ref.mode == "RGBA" and new.size == ref.size
        assert np.array_equal(np.asarray(new)[..., 3], np.asarray(ref)[..., 3])  # the same alpha as IRN's
    # the API too: an RGBA array comes back RGBA with the same alpha
    back = irn.roundtrip_image(irn.load(model_files[arch]), rgba)
    assert back.shape == rgba.shape and np.array_equal(back[..., 3], np.asarray(outs["irn"][1])[..., 3])


# ------------------------------------------------------------------ irn eval
@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "Tiny" / "HR"
    save_png(folder / "a.png", 36, 44, seed=6)
    save_png(folder / "b.png", 40, 32, seed=7)
    return folder


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("flag", ["--jpeg", "--webp"])
def test_eval_with_a_lossy_lr(
    arch: str, flag: str, model_files: dict[str, Path], hr_folder: Path, tmp_path: Path, capsys: Capsys
) -> None:
    """``irn eval --jpeg Q`` / ``--webp Q``: the LR stored in that format before upscaling, the figure
    is the one computed by hand; the JSON and the heading name the format and quality."""
    from irn.eval.metrics import psnr

    out = tmp_path / "e.json"
    argv = ["eval", "--model", str(model_files[arch]), "--data", str(hr_folder), flag, "70", "--json", str(out)]
    code, stdout, err = run_cli([*argv, "--device", "cpu"], capsys)
    assert code == 0, err
    report = json.loads(out.read_text())
    fmt, key = {"--jpeg": ("JPEG", "jpeg"), "--webp": ("WEBP", "webp")}[flag]
    other = "webp" if key == "jpeg" else "jpeg"
    assert report[key] == 70 and report[other] is None and report["arch"] == arch
    assert report["z"] == {"sain": "sample", "tirn": "zero"}[arch]
    label = {"sain": "SAIN", "tirn": "T-IRN"}[arch]
    assert f"{label} {model_files[arch]}, z={report['z']}, {'JPEG' if key == 'jpeg' else 'WebP'} LR q70" in stdout

    net = irn.load(model_files[arch])
    hr = read_image(hr_folder / "a.png")[None].double()
    with torch.no_grad():
        lr = lossy_roundtrip(net.downscale(hr.float()), fmt, 70)
        rec = net.upscale(lr, z=report["z"], seed=0, size=tuple(hr.shape[-2:]))
    rec = torch.round(rec.double().clamp(0, 1) * 255) / 255
    image = next(i for i in report["datasets"]["Tiny"]["images"] if i["name"] == "a")
    assert image["psnr_y"] == pytest.approx(float(psnr(rec, hr, 2, True)), abs=1e-6)


def test_eval_refuses_jpeg_and_webp_at_once(model_files: dict[str, Path], hr_folder: Path, capsys: Capsys) -> None:
    argv = ["eval", "--model", str(model_files["sain"]), "--data", str(hr_folder), "--jpeg", "90", "--webp", "90"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and lines[0].startswith("irn: error: irn eval: argument --webp")
    assert "not allowed with argument --jpeg" in lines[0]
    from irn.errors import InputError
    from irn.eval.protocol import evaluate

    with pytest.raises(InputError, match="the LR is stored in one format"):
        evaluate(str(model_files["sain"]), [hr_folder], jpeg=90, webp=90, device="cpu", progress=False)
    with pytest.raises(InputError, match="webp must be a WebP quality from 1 to 100"):
        evaluate(str(model_files["sain"]), [hr_folder], webp=101, device="cpu", progress=False)


def test_eval_bicubic_with_a_webp_lr(hr_folder: Path, capsys: Capsys) -> None:
    from irn.eval.metrics import psnr
    from irn.eval.protocol import evaluate
    from irn.imaging.resize import imresize

    report = evaluate(None, [hr_folder], scale=2, webp=50, y_only=True, device="cpu", progress=False)
    hr = read_image(hr_folder / "b.png")[None].double()
    lr = torch.round(imresize(hr, 0.5).clamp(0, 1) * 255) / 255
    rec = torch.round(imresize(lossy_roundtrip(lr, "WEBP", 50), 2).clamp(0, 1) * 255) / 255
    image = next(i for i in report["datasets"]["Tiny"]["images"] if i["name"] == "b")
    assert image["psnr_y"] == pytest.approx(float(psnr(rec, hr, 2, True)), abs=1e-6)


# ------------------------------------------------------------------ irn export
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_export_pt_and_safetensors(
    arch: str, fmt: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys
) -> None:
    dst = tmp_path / f"m.{fmt}"
    code, _, err = run_cli(["export", str(model_files[arch]), "-o", str(dst), "--format", fmt], capsys)
    assert code == 0 and f"wrote {dst} ({fmt};" in err
    back, original = irn.load(dst), irn.load(model_files[arch])
    assert type(back) is type(original) and back.metadata["note"] == f"tiny {arch}"
    x = torch.from_numpy(smooth_array(16, 20)).permute(2, 0, 1)[None].float() / 255
    torch.testing.assert_close(back.roundtrip(x, seed=1), original.roundtrip(x, seed=1), rtol=0, atol=0)


def test_export_by_name_keeps_the_purpose(
    model_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Capsys
) -> None:
    from irn.zoo.purpose import lr_formats

    serve_official_names(monkeypatch, model_files)
    assert run_cli(["export", "sain-x2-webp", "-o", str(tmp_path / "w.pt")], capsys)[0] == 0
    model = irn.load(tmp_path / "w.pt")
    assert model.metadata["purpose"] == "WebP" and lr_formats(model) == ("WEBP",)
    assert lr_formats(irn.load(model_files["sain"])) == ("JPEG", "WEBP")  # by path: the architecture's


def test_export_refuses_what_onnx_cannot_take_in_one_line(tmp_path: Path, capsys: Capsys) -> None:
    from irn.nn.restoration import CompressionRestorer, RestorerConfig

    crm = irn.save(CompressionRestorer(RestorerConfig(features=4, blocks=1, growth=2)), tmp_path / "crm.pt")
    code, _, err = run_cli(["export", str(crm), "--format", "onnx", "-o", str(tmp_path / "o")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "does not export to ONNX: a restorer has no encoder and decoder to export" in lines[0]
    assert "(the architectures that do: irn, conv, color, sain, tirn)" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def exported(model_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Each tiny model (SAIN with a mixture far from N(0, 1)) and the folder of its ONNX export."""
    pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install 'irn[onnx]')")
    pytest.importorskip("onnxscript", reason="needs onnxscript (pip install 'irn[onnx]')")
    from irn.onnx.export import export_onnx

    out = {}
    for arch in ARCHS:
        model = irn.load(model_files[arch])
        if arch == "sain":
            with torch.no_grad():  # weights 0.21/0.21/0.57/0/0, means -2/3/0.5, stds 0.05/0.14/0.05
                model.gmm.gmm_para.copy_(
                    torch.tensor([[0.0, 0.0, 1.0, -30.0, -30.0], [-2.0, 3.0, 0.5, 0, 0], [-6.0, -4.0, -6.0, 0, 0]])
                )
        folder = tmp_path_factory.mktemp(f"onnx_{arch}")
        export_onnx(model, folder)
        out[arch] = (model, folder)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_export_agrees_with_the_torch_model(arch: str, exported: dict[str, tuple]) -> None:
    from irn import onnx as runtime

    model, folder = exported[arch]
    onnx_model = runtime.load(folder)
    doc = json.loads((folder / "model.json").read_text())
    assert doc["arch"] == arch and doc["scale"] == 2 and doc["latent_channels"] == 9
    assert doc["recommended_z"] == onnx_model.recommended_z() == {"sain": "sample", "tirn": "zero"}[arch]
    assert doc["lr_formats"] == {"sain": ["JPEG", "WEBP"], "tirn": []}[arch]
    for n, h, w in ((1, 16, 12), (2, 27, 21)):  # dynamic batch and size; odd sizes padded as torch pads
        hr = torch.from_numpy(np.stack([smooth_array(h, w, seed=i) for i in range(n)])).permute(0, 3, 1, 2) / 255
        hr = hr.float()
        with torch.no_grad():
            lr_t, z_t = model.encode(hr)
            lr_q = quantize(lr_t)
        lr_o, z_o = onnx_model.encode(hr.numpy())
        steps = np.abs(lr_o - lr_q.numpy()) * 255  # 8-bit levels: a value at a level boundary may land one over
        assert lr_o.shape == tuple(lr_q.shape) and steps.max() <= 1 + 1e-4 and (steps > 0.5).mean() < 1e-3
        np.testing.assert_allclose(z_o, z_t.numpy(), rtol=0, atol=1e-4)
        z = torch.randn(z_t.shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            hr_t = model.decode(lr_q, z).clamp(0, 1)
            zero_t = model.upscale(lr_q, z="zero", size=(h, w))
        np.testing.assert_allclose(onnx_model.decode(lr_q.numpy(), z.numpy()), hr_t.numpy(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(onnx_model.upscale(lr_q.numpy(), z="zero", size=(h, w)), zero_t.numpy(), atol=1e-4)


def test_onnx_runtime_draws_sains_mixture(exported: dict[str, tuple]) -> None:
    """The runtime draws z from the mixture model.json holds (numpy's numbers, torch's distribution)."""
    from irn import onnx as runtime

    model, folder = exported["sain"]
    onnx_model = runtime.load(folder)
    lr = np.zeros((1, 3, 40, 40), np.float32)
    z = onnx_model.sample_latent(lr, "auto", seed=3)
    assert np.array_equal(z, onnx_model.sample_latent(lr, "sample", seed=3)) and z.shape == (1, 9, 40, 40)
    with torch.no_grad():
        z_torch = model.sample_latent(torch.from_numpy(lr), "sample", seed=3).numpy()
    weights = model.gmm.weights().detach().numpy()
    for draws in (z, z_torch):
        for mean, share in zip((-2.0, 3.0, 0.5), weights[:3], strict=True):
            near = np.abs(draws - mean) < 0.6
            assert abs(near.mean() - share) < 0.03
    assert np.abs(onnx_model.sample_latent(lr, "sample", temperature=0.0, seed=1)).max() == 0


def test_onnx_runtime_command_with_the_newer_rescalers(
    exported: dict[str, tuple], tmp_path: Path, capsys: Capsys
) -> None:
    """``irn-onnx``: T-IRN upscales with z = 0 by default; writing a SAIN's LR as WebP is not warned, a
    T-IRN's is."""
    from irn import onnx as runtime

    src = save_png(tmp_path / "a.png", 20, 22)
    for arch, warned in (("sain", False), ("tirn", True)):
        folder = exported[arch][1]
        assert runtime.main(["down", str(folder), str(src), "-o", str(tmp_path / f"{arch}.webp")]) == 0
        assert ("does not survive lossy compression" in capsys.readouterr().err) is warned
    folder = exported["tirn"][1]
    assert runtime.main(["roundtrip", str(folder), str(src), "-o", str(tmp_path / "auto.png")]) == 0
    assert runtime.main(["roundtrip", str(folder), str(src), "-o", str(tmp_path / "zero.png"), "--z", "zero"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "auto.png")), np.asarray(Image.open(tmp_path / "zero.png")))


# ------------------------------------------------------------------ the Python API
@pytest.mark.parametrize("arch", ARCHS)
def test_api_images(arch: str, model_files: dict[str, Path]) -> None:
    model = irn.load(model_files[arch])
    arr = smooth_array(25, 31, seed=8)
    lr = irn.downscale_image(model, Image.fromarray(arr))
    assert isinstance(lr, Image.Image) and lr.size == (16, 13)
    up = irn.upscale_image(model, lr, seed=2)
    assert up.size == (32, 26)
    default = irn.upscale_image(model, np.asarray(lr), seed=2)
    explicit = irn.upscale_image(model, np.asarray(lr), z="sample" if arch == "sain" else "zero", seed=2)
    assert np.array_equal(default, explicit) and np.array_equal(default, np.asarray(up))
    z = torch.zeros(1, 9, 13, 16)
    assert np.array_equal(irn.upscale_image(model, np.asarray(lr), z=z), irn.upscale_image(model, lr, z="zero"))
    rec = irn.roundtrip_image(model, arr, seed=2)
    assert rec.shape == arr.shape and rec.dtype == np.uint8
    for kwargs in ({"jpeg": 80}, {"webp": 80}):
        lossy = irn.roundtrip_image(model, arr, seed=2, **kwargs)
        assert lossy.shape == arr.shape and not np.array_equal(lossy, rec)
    with pytest.raises(irn.InputError, match="give jpeg or webp, not both"):
        irn.roundtrip_image(model, arr, jpeg=80, webp=80)


def test_api_runs_an_x4_sain_and_tirn() -> None:
    arr = smooth_array(24, 20, seed=9)
    for model in (tiny_sain(scale=4), tiny_tirn(scale=4)):
        lr = irn.downscale_image(model, arr)
        assert lr.shape == (6, 5, 3)
        assert irn.upscale_image(model, lr).shape == (24, 20, 3)
        assert irn.roundtrip_image(model, arr).shape == arr.shape


# ------------------------------------------------------------------ the experiments
@pytest.mark.parametrize("arch", ARCHS)
def test_decay_and_craft_run_the_newer_rescalers(
    arch: str, model_files: dict[str, Path], tmp_path: Path, capsys: Capsys
) -> None:
    src = save_png(tmp_path / "a.png", 24, 24)
    spec = f"irn:{model_files[arch]}"
    argv = ["decay", str(src), "-m", f"{spec}@zero,{spec}@sample", "-n", "2", "-o", str(tmp_path / "d")]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    decay = json.loads((tmp_path / "d" / "decay.json").read_text())
    text = json.dumps(decay)
    assert {"sain": "SAIN x2", "tirn": "T-IRN x2"}[arch] in text
    code, _, err = run_cli(["craft", str(src), str(src), "-o", str(tmp_path / "c.png"), "--resizer", spec], capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "c.png").size == (24, 24)
