"""The flow's parts (irn.nn.haar, irn.nn.coupling, irn.nn.subnets): log-determinants against autograd,
initialisation, the Haar sub-band order."""

from __future__ import annotations

import pytest
import torch
from helpers import autograd_logdet, randomise

from irn.nn import AffineCoupling, DenseBlock, HaarDownsampling


# ------------------------------------------------------------------ log-determinants
@pytest.mark.parametrize("rev", [False, True])
def test_haar_logdet_matches_autograd(rev: bool) -> None:
    haar = HaarDownsampling(3).double()
    x = torch.rand(1, 12 if rev else 3, 2 if rev else 4, 2 if rev else 4, dtype=torch.float64)
    _, logdet = haar(x, rev=rev)
    torch.testing.assert_close(logdet[0], autograd_logdet(lambda v: haar(v, rev=rev), x))


@pytest.mark.parametrize("rev", [False, True])
def test_coupling_logdet_matches_autograd(rev: bool) -> None:
    block = randomise(AffineCoupling(12, 3, growth=8), std=0.2, last_std=0.2).double()
    x = torch.randn(1, 12, 2, 2, dtype=torch.float64)
    _, logdet = block(x, rev=rev)
    assert logdet.abs() > 1e-3  # the scale path is active, so the test can fail
    torch.testing.assert_close(logdet[0], autograd_logdet(lambda v: block(v, rev=rev), x))


# ------------------------------------------------------------------ initialisation
def test_dense_block_initialisation() -> None:
    block = DenseBlock(3, 9)
    assert torch.count_nonzero(block.conv5.weight) == 0 and torch.count_nonzero(block.conv5.bias) == 0
    assert torch.count_nonzero(block.conv1.weight) > 0
    assert block.conv1.weight.std() < 0.1  # Xavier normal scaled by 0.1
    assert block(torch.rand(1, 3, 5, 5)).abs().max() == 0


def test_fresh_coupling_is_identity() -> None:
    block = AffineCoupling(12, 3)
    x = torch.rand(2, 12, 3, 3)
    y, logdet = block(x)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(2))


def test_set_log_scale_scales_the_latent_branch_and_stays_invertible() -> None:
    block = AffineCoupling(12, 3)
    block.set_log_scale(0.9)
    x = torch.rand(2, 12, 3, 3, dtype=torch.float64)
    block.double()
    y, logdet = block(x)
    torch.testing.assert_close(y[:, :3], x[:, :3])
    torch.testing.assert_close(y[:, 3:], x[:, 3:] * torch.exp(torch.tensor(0.9, dtype=torch.float64)))
    torch.testing.assert_close(logdet, torch.full((2,), 0.9 * 9 * 3 * 3, dtype=torch.float64))
    back, back_logdet = block(y, rev=True)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(back_logdet, -logdet)
    with pytest.raises(ValueError, match="log-scale must be in"):
        block.set_log_scale(1.0)


def test_haar_channel_order() -> None:
    """Channel k*C + c holds sub-band k of input channel c; band 0 is the 2x2 mean."""
    x = torch.rand(1, 3, 4, 6)
    y, _ = HaarDownsampling(3)(x)
    mean = x.reshape(1, 3, 2, 2, 3, 2).mean(dim=(3, 5))
    torch.testing.assert_close(y[:, :3], mean)
    a, b, c, d = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]  # [[a, b], [c, d]]
    torch.testing.assert_close(y[:, 3:6], (a - b + c - d) / 4)  # left minus right column
    torch.testing.assert_close(y[:, 6:9], (a + b - c - d) / 4)  # top minus bottom row
    torch.testing.assert_close(y[:, 9:12], (a - b - c + d) / 4)  # diagonal
