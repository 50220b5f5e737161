"""Invertible building blocks. Every block: ``forward(x, rev=False) -> (y, logdet per sample)``."""

from irn.nn.coupling import AffineCoupling
from irn.nn.haar import HaarDownsampling
from irn.nn.network import IRN, IRNConfig, quantize
from irn.nn.subnets import DenseBlock

__all__ = ["IRN", "AffineCoupling", "DenseBlock", "HaarDownsampling", "IRNConfig", "quantize"]
