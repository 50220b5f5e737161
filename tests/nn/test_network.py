"""The invertible network (irn.nn.network): exact inverses, log-determinants against autograd, no hidden
state, sizes."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import autograd_logdet, random_irn
from torch import nn

from irn.nn import IRN, IRNConfig, quantize


# ------------------------------------------------------------------ invertibility
@pytest.mark.parametrize(("scale", "blocks"), [(2, (2,)), (4, (2, 2)), (8, (1, 1, 1))])
def test_flow_inverts_to_1e5(scale: int, blocks: tuple[int, ...]) -> None:
    model = random_irn(scale, blocks, growth=32, last_std=0.05)
    x = torch.rand(2, 3, 2 * scale, 3 * scale)
    with torch.no_grad():
        y, logdet = model(x)
        back, logdet_rev = model(y, rev=True)
    assert y.shape == (2, 3 * scale * scale, 2, 3)
    assert (back - x).abs().max() < 1e-5
    torch.testing.assert_close(logdet_rev, -logdet, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(("scale", "blocks", "size"), [(2, (2,), (17, 23)), (4, (1, 1), (13, 10)), (4, (1, 1), (3, 5))])
def test_encode_decode_odd_sizes_via_padding(scale: int, blocks: tuple[int, ...], size: tuple[int, int]) -> None:
    model = random_irn(scale, blocks, growth=32, last_std=0.05)
    h, w = size
    hr = torch.rand(1, 3, h, w)
    with torch.no_grad():
        lr, z = model.encode(hr)
        back = model.decode(lr, z, size=(h, w))
    lh, lw = -(-h // scale), -(-w // scale)  # ceil
    assert lr.shape == (1, 3, lh, lw)
    assert z.shape == (1, 3 * (scale * scale - 1), lh, lw)
    assert back.shape == hr.shape
    assert (back - hr).abs().max() < 1e-5


def test_downscale_is_quantised_and_upscale_has_scale_times_size() -> None:
    model = random_irn(2, growth=32, last_std=0.05)
    hr = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        lr = model.downscale(hr)
        up = model.upscale(lr, z="zero")
        up_cropped = model.upscale(lr, z="zero", size=(9, 7))
    assert lr.shape == (1, 3, 5, 4)
    assert torch.equal(lr, quantize(lr)) and lr.min() >= 0 and lr.max() <= 1
    assert torch.equal((lr * 255).round() / 255, lr)
    assert up.shape == (1, 3, 10, 8)
    assert torch.equal(up_cropped, up[..., :9, :7])


def test_upscale_latent_modes() -> None:
    model = random_irn(2, growth=32, last_std=0.05)
    lr = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        a = model.upscale(lr, seed=3)
        b = model.upscale(lr, seed=3)
        c = model.upscale(lr, seed=4)
        cold = model.upscale(lr, seed=3, temperature=0.0)
        zero = model.upscale(lr, z="zero")
        given = model.upscale(lr, z=torch.zeros(1, 9, 6, 5))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(cold, zero) and torch.equal(given, zero)
    with pytest.raises(ValueError, match="z must have shape"):
        model.upscale(lr, z=torch.zeros(1, 9, 3, 3))


# ------------------------------------------------------------------ log-determinants
@pytest.mark.parametrize(("scale", "blocks"), [(2, (2,)), (4, (1, 1))])
def test_network_logdet_matches_autograd(scale: int, blocks: tuple[int, ...]) -> None:
    model = random_irn(scale, blocks, std=0.2, last_std=0.2, dtype=torch.float64)
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    _, logdet = model(x)
    torch.testing.assert_close(logdet[0], autograd_logdet(model, x))
    y, _ = model(x)
    _, logdet_rev = model(y, rev=True)
    torch.testing.assert_close(logdet_rev[0], autograd_logdet(lambda v: model(v, rev=True), y))


def test_logdet_is_per_sample() -> None:
    model = random_irn(2, growth=32, last_std=0.05)
    x = torch.rand(3, 3, 4, 4)
    with torch.no_grad():
        _, batch = model(x)
        singles = torch.cat([model(x[i : i + 1])[1] for i in range(3)])
    assert batch.shape == (3,)
    torch.testing.assert_close(batch, singles)


# ------------------------------------------------------------------ no hidden state
def _module_state(model: nn.Module) -> dict[str, dict[str, object]]:
    """Every module's plain attributes and buffers, copied by value (an in-place change shows)."""
    state = {}
    for name, m in model.named_modules():
        plain = {k: v for k, v in vars(m).items() if k not in ("_parameters", "_buffers", "_modules")}
        plain = copy.deepcopy({k: v for k, v in plain.items() if not callable(v) or isinstance(v, torch.Tensor)})
        plain["_parameter_names"] = sorted(m._parameters)
        plain["_buffers"] = {k: None if b is None else b.detach().clone() for k, b in m._buffers.items()}
        state[name] = plain
    return state


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_no_state_stashed_on_modules() -> None:
    model = random_irn(4, (1, 1), growth=32, last_std=0.05)
    before = _module_state(model)
    hr = torch.rand(1, 3, 8, 8, requires_grad=True)
    y, logdet = model(hr)
    (y.square().sum() + logdet.sum()).backward()
    model(y.detach(), rev=True)
    model.roundtrip(torch.rand(1, 3, 7, 5), seed=1)
    after = _module_state(model)
    assert before.keys() == after.keys()
    for name in before:
        assert before[name].keys() == after[name].keys(), f"{name}: attributes added or removed"
        for key, value in before[name].items():
            assert _same(after[name][key], value), f"{name}.{key} changed"


def test_the_state_check_sees_in_place_changes() -> None:
    """The check above is not blind to a block that keeps state by mutating what it already holds."""
    model = random_irn(2, growth=32, last_std=0.05)
    before = _module_state(model)
    model.operations[0].haar_weights.mul_(1.0 + 1e-6)
    after = _module_state(model)
    assert not _same(after["operations.0"]["_buffers"], before["operations.0"]["_buffers"])
    model = random_irn(2, growth=32, last_std=0.05)
    model.operations[1].history = []
    before = _module_state(model)
    model.operations[1].history.append(1)
    assert not _same(_module_state(model)["operations.1"]["history"], before["operations.1"]["history"])


# ------------------------------------------------------------------ sizes and the config
@pytest.mark.parametrize(("scale", "count"), [(2, 1_667_952), (4, 4_355_136)])
def test_parameter_counts_match_the_paper(scale: int, count: int) -> None:
    assert IRN(IRNConfig(scale=scale)).num_parameters() == count


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="scale"):
        IRNConfig(scale=3)
    with pytest.raises(ValueError, match="blocks_per_level"):
        IRNConfig(scale=4, blocks_per_level=(8,))
    with pytest.raises(ValueError, match="unknown IRN config keys"):
        IRNConfig.from_dict({"scale": 2, "depth": 3})
    assert IRNConfig.from_dict(IRNConfig(scale=8).to_dict()) == IRNConfig(scale=8)


def test_upscale_default_latent_follows_the_files_recommendation() -> None:
    model = random_irn(2, growth=32, last_std=0.05)
    lr = torch.rand(1, 3, 6, 5)
    torch.testing.assert_close(model.upscale(lr, seed=3), model.upscale(lr, z="sample", seed=3))
    assert model.recommended_z() == "sample"
    model.metadata = {"recommended_z": "zero"}
    assert model.recommended_z() == "zero"
    torch.testing.assert_close(model.upscale(lr, seed=3), model.upscale(lr, z="zero"))
    assert not torch.equal(model.upscale(lr, seed=3), model.upscale(lr, z="sample", seed=3))
