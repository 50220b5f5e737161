"""Deployment (issue 20): ``irn export --format onnx|safetensors`` and the torch-free runtime
:mod:`irn.onnx`, against the torch model it came from.

The ONNX tests need onnx, onnxscript and onnxruntime (``pip install "irn[onnx]"``; CI installs them)
and skip with that reason when they are absent. Models are tiny random ones of each kind (Haar x2 and
x4, the x3's learnable downsampling, IRN-Color), so each export takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, random_irn
from PIL import Image

import irn
from irn.cli.main import main

pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install 'irn[onnx]')")
pytest.importorskip("onnxscript", reason="needs onnxscript (pip install 'irn[onnx]')")

from irn import onnx as runtime  # noqa: E402 - after the skips
from irn.onnx.export import export_onnx  # noqa: E402

KINDS = {"x2": (2, "haar"), "x4": (4, "haar"), "x3": (3, "conv"), "color": (1, "color")}


def smooth_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(n, 3, h, w) in [0, 1]: smooth colour fields, like photographs rather than noise."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, max(2, h // 6), max(2, w // 6), generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[irn.IRN, Path]]:
    out = {}
    for name, (scale, kind) in KINDS.items():
        model = random_irn(scale, 1, growth=8, kind=kind).eval()
        model.metadata = {"note": f"tiny {name}", "recommended_z": "sample"}
        folder = tmp_path_factory.mktemp(f"onnx_{name}")
        export_onnx(model, folder)
        out[name] = (model, folder)
    return out


@pytest.mark.parametrize("name", list(KINDS))
def test_onnx_graphs_agree_with_the_torch_model(exported: dict, name: str) -> None:
    model, folder = exported[name]
    onnx_model = runtime.load(folder)
    s = model.scale
    doc = json.loads((folder / "model.json").read_text())
    assert doc["scale"] == s and doc["latent_channels"] == model.latent_channels and doc["kind"] == model.config.kind
    assert doc["card"]["note"] == f"tiny {name}" and onnx_model.recommended_z() == "sample"
    for n, h, w in ((1, 8 * max(s, 1), 6 * max(s, 1)), (3, 13 * max(s, 1) + 1, 7 * max(s, 1) + 1)):  # dynamic B, H, W
        hr = smooth_images(n, h, w, seed=h)
        with torch.no_grad():
            lr_t, z_t = model.encode(hr)
            lr_q = irn.nn.network.quantize(lr_t)
        lr_o, z_o = onnx_model.encode(hr.numpy())
        assert lr_o.shape == tuple(lr_q.shape) and z_o.shape == tuple(z_t.shape)  # the same padding
        # 8-bit levels: a value within fp32 rounding of a level boundary may land one level over
        level_steps = np.abs(lr_o - lr_q.numpy()) * 255
        assert level_steps.max() <= 1.0 + 1e-4 and (level_steps > 0.5).mean() < 1e-3
        np.testing.assert_allclose(z_o, z_t.numpy(), rtol=0, atol=1e-4 * max(1.0, float(z_t.abs().max())))
        z = torch.randn(z_t.shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            hr_t = model.decode(lr_q, z).clamp(0, 1)
        hr_o = onnx_model.decode(lr_q.numpy(), z.numpy())
        np.testing.assert_allclose(hr_o, hr_t.numpy(), rtol=0, atol=1e-4)
        # the image API: zero latent, cropped back
        hr_o = onnx_model.upscale(lr_q.numpy(), z="zero", size=(h, w))
        with torch.no_grad():
            hr_t = model.upscale(lr_q, z="zero", size=(h, w))
        np.testing.assert_allclose(hr_o, hr_t.numpy(), rtol=0, atol=1e-4)


def test_padding_rule_is_the_networks(exported: dict) -> None:
    model, _ = exported["x4"]
    for h, w in ((9, 10), (3, 17), (2, 2), (4, 3), (1, 7)):
        x = torch.rand(1, 3, h, w)
        np.testing.assert_array_equal(runtime.pad(x.numpy(), 4), model._pad(x).numpy())


def test_sampled_latent_is_seeded_and_scaled(exported: dict) -> None:
    onnx_model = runtime.load(exported["x2"][1])
    lr = np.zeros((1, 3, 4, 5), np.float32)
    a = onnx_model.sample_latent(lr, "sample", temperature=0.5, seed=3)
    assert a.shape == (1, 9, 4, 5) and np.array_equal(
        a, onnx_model.sample_latent(lr, "sample", temperature=0.5, seed=3)
    )
    assert 0.3 < a.std() < 0.7
    with pytest.raises(irn.InputError, match="z must have shape"):
        onnx_model.upscale(lr, z=np.zeros((1, 9, 4, 4), np.float32))
    with pytest.raises(irn.InputError, match=r"expected an LR batch \(B, 3, H, W\)"):
        onnx_model.upscale(np.zeros((1, 4, 4, 5), np.float32))


NO_TORCH = """
import sys, importlib.abc
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here")
sys.meta_path.insert(0, NoTorch())
from irn.onnx import main
code = main(sys.argv[1:])
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch was imported"
sys.exit(code)
"""


def run_without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_the_runtime_works_without_torch_and_handles_images_as_irn_rescale(exported: dict, tmp_path: Path) -> None:
    model, folder = exported["x2"]
    saved = irn.save(model, tmp_path / "tiny.pt", model.metadata)
    rgba = (smooth_images(1, 37, 29)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    alpha = np.linspace(0, 255, 37 * 29).reshape(37, 29, 1).astype(np.uint8)
    src = tmp_path / "in.png"
    Image.fromarray(np.concatenate([rgba, alpha], 2), mode="RGBA").save(src)

    done = run_without_torch("down", str(folder), str(src), "-o", str(tmp_path / "lr_onnx.png"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lr_size"] == [19, 15]
    assert main(["rescale", "down", str(src), "--model", str(saved), "-o", str(tmp_path / "torch")]) == 0
    a = np.asarray(Image.open(tmp_path / "lr_onnx.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "torch" / "in_x2_lr.png")).astype(int)
    assert a.shape == b.shape == (19, 15, 4)  # odd sizes padded the same way, alpha kept
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.01

    done = run_without_torch(
        "up", str(folder), str(tmp_path / "lr_onnx.png"), "-o", str(tmp_path / "up.png"), "--z", "zero"
    )
    assert done.returncode == 0, done.stderr
    up_onnx = np.asarray(Image.open(tmp_path / "up.png")).astype(int)
    lr_in = tmp_path / "lr_onnx.png"
    assert main(["rescale", "up", str(lr_in), "--model", str(saved), "--z", "zero", "-o", str(tmp_path / "t")]) == 0
    up_torch = np.asarray(Image.open(tmp_path / "t" / "lr_onnx_x2_up.png")).astype(int)
    assert up_onnx.shape == up_torch.shape == (38, 30, 4)
    assert np.abs(up_onnx - up_torch).max() <= 1

    done = run_without_torch("roundtrip", str(folder), str(src), "-o", str(tmp_path / "rt.png"), "--z", "zero")
    assert done.returncode == 0, done.stderr
    assert np.asarray(Image.open(tmp_path / "rt.png")).shape == (37, 29, 4)


def test_runtime_errors_are_one_line(exported: dict, tmp_path: Path) -> None:
    folder = exported["x2"][1]
    bad_json = tmp_path / "bad"
    bad_json.mkdir()
    (bad_json / "model.json").write_text("{not json")
    newer = tmp_path / "newer"
    newer.mkdir()
    doc = json.loads((folder / "model.json").read_text())
    (newer / "model.json").write_text(json.dumps({**doc, "format_version": 99}))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((folder / "model.json").read_text())
    (broken / "encoder.onnx").write_bytes(b"not a graph")
    (broken / "decoder.onnx").write_bytes(b"not a graph")
    not_image = tmp_path / "x.png"
    not_image.write_bytes(b"hello")
    cases = [
        ((str(tmp_path / "none"), "in.png"), "no such folder"),
        ((str(bad_json), "in.png"), "model.json: damaged"),
        ((str(newer), "in.png"), "format version 99"),
        ((str(broken), "in.png"), "cannot load the encoder graph"),
        ((str(folder), str(not_image)), "not an image"),
        ((str(folder), str(tmp_path / "missing.png")), "no such file"),
    ]
    for (model_dir, src), words in cases:
        done = subprocess.run(
            [sys.executable, "-m", "irn.onnx", "down", model_dir, src, "-o", str(tmp_path / "o.png")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("irn-onnx: error:"), done.stderr
        assert words in lines[0], lines[0]
    assert not (tmp_path / "o.png").exists()


def test_irn_export_writes_onnx_and_safetensors_from_any_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = random_irn(2, 1, growth=8).eval()
    saved = irn.save(model, tmp_path / "tiny.pt", {"note": "cli"})
    assert main(["export", str(saved), "--format", "onnx", "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json"]
    assert json.loads((tmp_path / "out" / "model.json").read_text())["card"]["note"] == "cli"
    assert main(["export", str(saved), "-o", str(tmp_path / "m.safetensors")]) == 0
    back = irn.load(tmp_path / "m.safetensors")
    assert back.metadata["note"] == "cli"
    x = smooth_images(1, 16, 16)
    torch.testing.assert_close(back.downscale(x), irn.load(saved).downscale(x), rtol=0, atol=0)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "nope.pt"), "--format", "onnx", "-o", str(tmp_path / "o2")]) == 2
    assert "no such checkpoint or model file" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "out"), "-o", str(tmp_path / "again.pt")]) == 2  # an export, not a model
    assert "an ONNX export (a folder); irn export reads a checkpoint or model file" in capsys.readouterr().err
    # an -o whose suffix names another format: one line, nothing written
    for argv, words in (
        (["-o", str(tmp_path / "x.onnx")], f"for ONNX give a folder: --format onnx -o {tmp_path / 'x'}_onnx, or name"),
        (["-o", str(tmp_path / "x.ONNX")], "a .ONNX name for a pt file; for ONNX give a folder"),
        (["--format", "safetensors", "-o", str(tmp_path / "x.pt")], "a .pt name for a safetensors file"),
        (["--format", "pt", "-o", str(tmp_path / "x.safetensors")], "use --format safetensors, or name it x.pt"),
        (["--format", "onnx", "-o", str(tmp_path / "x.onnx")], f"name the folder, e.g. -o {tmp_path / 'x'}_onnx"),
    ):
        assert main(["export", str(saved), *argv]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not any(tmp_path.glob("x.*")) and not (tmp_path / "again.pt").exists()
    assert main(["export", str(saved), "-o", str(tmp_path / "m.SAFETENSORS")]) == 0  # the suffix's case aside
    assert "(safetensors;" in capsys.readouterr().err

    from irn.nn.restoration import CompressionRestorer, RestorerConfig
    from irn.zoo import attach_restorer

    crm = CompressionRestorer(RestorerConfig(features=4, blocks=1, growth=2))
    jpeg = irn.save(attach_restorer(model, crm), tmp_path / "jpeg.pt")
    assert main(["export", str(jpeg), "--format", "onnx", "-o", str(tmp_path / "o3")]) == 0
    assert "carries a compression restoration module; the ONNX export leaves it out" in capsys.readouterr().err
    assert "restoration module" in json.loads((tmp_path / "o3" / "model.json").read_text())["card"]["onnx_note"]
