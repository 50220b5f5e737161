"""What one architecture of the registry declares (:class:`Architecture`), and the helpers every
architecture shares: the ``module.`` prefix of DataParallel files (:func:`strip_prefix`) and the
checked load of a state dict into a fresh module (:func:`fit_state`).

An architecture is one module under :mod:`irn.zoo.archs` that defines ``ARCHITECTURE``, an
:class:`Architecture`; :mod:`irn.zoo.registry` lists them. The loader asks each architecture whether
it claims an official state dict (``detect``), exactly one must, and builds the module from it
(``infer_config`` then ``build``); our own files name their architecture (the ``"arch"`` field) and
hold its config (``config_class``). See docs/architecture.md, "Adding an architecture".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from torch import Tensor, nn

from irn.zoo.errors import CheckpointError

Role = Literal["rescaler", "restorer"]
Latent = Literal["sample", "zero", "none"]


class ArchConfig(Protocol):
    """The config of an architecture as our files store it: ``to_dict()`` and ``from_dict(d)`` (which
    raises ``ValueError``, ``TypeError`` or ``KeyError`` for a config it cannot take)."""

    def to_dict(self) -> Mapping[str, Any]: ...


def _same(module: nn.Module) -> nn.Module:
    return module


def _as_is(state: dict[str, Any]) -> dict[str, Any]:
    return state


@dataclass(frozen=True)
class Architecture:
    """One architecture of the registry.

    - ``name``: the ``"arch"`` field of our files and the name ``irn models`` shows (never renamed).
    - ``title``: a noun phrase for messages and tables ("an IRN (Haar levels, x2/x4/x8)").
    - ``label``: how reports name a model of it (``irn eval``'s tables, ``irn decay``): "IRN" (the IRN
      family, the default), "SAIN", "T-IRN".
    - ``config_class``: its config (``from_dict``/``to_dict``); the built module carries it as ``.config``.
    - ``detect(state) -> bool``: whether an official state dict (``module.`` prefix stripped, unwrapped
      from a ``state_dict`` key) is this architecture's, from its keys and shapes only. Exactly one
      architecture may claim a state dict (tests/test_registry.py checks every fixture), so a detector
      is strict about the keys that set it apart. It must not raise.
    - ``infer_config(state) -> config``: the config of a claimed state dict (``ValueError`` or
      ``KeyError`` with the reason when the keys do not make sense).
    - ``build(config) -> module``: a fresh module of that config (``ValueError`` for a config that is
      not this architecture's); the loader then loads the weights, checking every key and shape.
    - ``owns(module) -> bool``: whether a module is this architecture's (which ``"arch"`` :func:`irn.save`
      writes); exactly one architecture owns any module.
    - ``role``: ``"rescaler"`` (what the commands run: encode/decode, downscale/upscale) or
      ``"restorer"`` (a module that helps one, e.g. the CRM; the commands refuse it alone).
    - ``latent``: the latent recommended when a file names none (``"sample"``, ``"zero"``, or ``"none"``
      for a module without one). A rescaler's entry reads it from its class (``latent=SAIN.default_z``),
      the one statement of it, which :meth:`~irn.nn.network.Rescaler.recommended_z` answers from;
      ``channels``: its LR and latent channels in words.
    - ``keys``: the keys that identify an official file, in words (for the "not a checkpoint" message).
    - ``origin``: the paper and the official code; ``licence``: the official code's licence.
    - ``onnx``: whether ``irn export --format onnx`` exports it; ``onnx_reason``: why not, one phrase for
      the refusal (what cannot be exported, or what the torch-free runtime could not reproduce).
    - ``lr_formats``: the lossy formats (Pillow's names, ``"JPEG"``, ``"WEBP"``) a file of this architecture
      is made to store its LR in when nothing more specific is known of it (no model name, no card):
      SAIN's ``("JPEG", "WEBP")``; ``()`` for a lossless LR. The rule that uses it: :mod:`irn.zoo.purpose`.
    - ``prepare_state(state) -> state``: official keys -> the module's keys (default: unchanged).
    - ``for_inference(module) -> module``: what :func:`irn.load` hands out (default: the module itself;
      the IRN family: the fast CPU path).
    """

    name: str
    title: str
    config_class: Any
    detect: Callable[[Mapping[str, Any]], bool]
    infer_config: Callable[[Mapping[str, Any]], Any]
    build: Callable[[Any], nn.Module]
    owns: Callable[[nn.Module], bool]
    role: Role = "rescaler"
    latent: Latent = "sample"
    label: str = "IRN"
    channels: str = ""
    keys: str = ""
    origin: str = ""
    licence: str = ""
    onnx: bool = False
    onnx_reason: str = ""
    lr_formats: tuple[str, ...] = ()
    prepare_state: Callable[[dict[str, Any]], dict[str, Any]] = _as_is
    for_inference: Callable[[nn.Module], nn.Module] = _same

    def claims(self, state: Mapping[str, Any]) -> bool:
        """``detect`` that never raises: a detector that trips over an odd value does not claim the file."""
        try:
            return bool(self.detect(state))
        except (AttributeError, TypeError, IndexError, KeyError, ValueError):
            return False

    def from_state(self, state: Mapping[str, Any]) -> tuple[nn.Module, Any]:
        """A fresh module for a claimed official state dict, and its config (the weights are not loaded)."""
        config = self.infer_config(state)
        return self.build(config), config


def strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict without the ``module.`` prefix that DataParallel puts on every key."""
    keys = list(state)
    if keys and all(isinstance(k, str) and k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def fit_state(path: Path | str, model: nn.Module, state: Mapping[str, Any]) -> nn.Module:
    """``model`` with ``state`` loaded, after checking every key and shape (one line naming the file)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"{path}: weights do not fit the architecture: keys {', '.join(parts)}")
    for k, v in expected.items():
        if not isinstance(state[k], Tensor) or state[k].shape != v.shape:
            got = tuple(state[k].shape) if isinstance(state[k], Tensor) else type(state[k]).__name__
            raise CheckpointError(
                f"{path}: weights do not fit the architecture: {k} has shape {got}, expected {tuple(v.shape)}"
            )
    model.load_state_dict(state)
    return model
