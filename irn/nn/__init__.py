"""Invertible building blocks. Every block: ``forward(x, rev=False) -> (y, logdet per sample)``."""

from irn.nn.coupling import AffineCoupling
from irn.nn.haar import HaarDownsampling
from irn.nn.linear import ColorTransform, ConvDownsampling, rgb_to_luma
from irn.nn.network import IRN, IRNColor, IRNConfig, build_network, quantize
from irn.nn.subnets import DenseBlock

__all__ = [
    "IRN",
    "AffineCoupling",
    "ColorTransform",
    "ConvDownsampling",
    "DenseBlock",
    "HaarDownsampling",
    "IRNColor",
    "IRNConfig",
    "build_network",
    "quantize",
    "rgb_to_luma",
]
