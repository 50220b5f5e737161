"""The CRM's identity start (training a restoration module beside a trained IRN)."""

from __future__ import annotations

import pytest
import torch

from irn.errors import InputError
from irn.nn.restoration import CompressionRestorer, RestorerConfig


def test_identity_start_returns_the_input_and_every_weight_can_learn() -> None:
    crm = CompressionRestorer(RestorerConfig(features=8, blocks=2, growth=4)).identity_start()
    x = torch.rand(2, 3, 9, 7)
    assert torch.equal(crm(x), x)
    target = torch.rand(2, 3, 9, 7)
    (crm(x) - target).square().mean().backward()
    for name in ("conv_first", "trunk_conv", "conv_last"):
        assert getattr(crm, name).weight.grad.abs().sum() > 0, name
    # the extra conv_first features keep a (scaled) random start: the trunk does not see zeros
    assert crm.conv_first.weight[3:].abs().sum() > 0
    assert crm.RRDB_trunk[0].RDB1.conv1.weight.abs().max() < 1.0


def test_identity_start_needs_as_many_inputs_as_outputs() -> None:
    with pytest.raises(InputError, match="identity start"):
        crm = CompressionRestorer(RestorerConfig(in_channels=1, out_channels=3, features=8, blocks=1, growth=4))
        crm.identity_start()
