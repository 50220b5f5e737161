"""``irn export``: the network of a Lightning training checkpoint written by ``irn train`` ->
the self-describing model file of :func:`irn.save`, with the run's metadata."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from irn.nn.network import IRN
from irn.nn.restoration import CompressionRestorer
from irn.train.config import TrainConfig, config_from_dict
from irn.train.module import build_network
from irn.zoo import CheckpointError, attach_restorer, save


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a Lightning checkpoint written by ``irn train`` (tensors and plain containers only)."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in first:  # torch's advice to unpickle untrusted code: not for us
            first = "not a PyTorch checkpoint, or one holding Python objects"
        raise CheckpointError(f"{path}: not a readable training checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise CheckpointError(f"{path}: not an irn training checkpoint (no state_dict / config)")
    return ckpt


def trained_on_zero_latent(config: TrainConfig) -> bool:
    """Whether the reconstruction term only ever decoded with z = 0 (see
    :meth:`irn.train.module.IRNLightning.losses`): no sample of a batch drew z
    (``round(rec_sample_fraction * batch_size) == 0``), or z's temperature was 0."""
    lo = config.loss
    return int(round(lo.rec_sample_fraction * config.data.batch_size)) == 0 or lo.rec_temperature == 0


def export_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    format: str | None = None,  # noqa: A002
    weights: str = "average",
) -> dict[str, Any]:
    """Write the network of training checkpoint ``src`` to ``dst`` with :func:`irn.save` (``format``:
    pt or safetensors, default from the suffix); returns the metadata (:func:`model_from_checkpoint`)."""
    model, meta = model_from_checkpoint(src, weights=weights)
    save(model, dst, meta, format=format)  # type: ignore[arg-type]
    return meta


def model_from_checkpoint(src: str | Path, *, weights: str = "average") -> tuple[IRN, dict[str, Any]]:
    """The network of training checkpoint ``src`` (with a CRM trained beside it attached) and its metadata.
    ``weights``: ``"average"``, the moving average of the weights where the run kept one
    (``optim.ema_decay``: what its validation scored), else the trained weights; ``"trained"``, the
    optimiser's weights always.

    Metadata: steps, train_seconds, hardware, config (the whole training config), data
    (training folder, absolute), best validation figure, recommended_z (the latent ``irn rescale --z
    auto`` uses: "zero" when the reconstruction term was trained with z = 0 only), source checkpoint,
    export time (UTC).
    """
    ckpt = read_training_checkpoint(src)
    config = config_from_dict(ckpt["hyper_parameters"]["config"])
    model = build_network(config)
    if weights not in ("average", "trained"):
        raise ValueError(f"weights must be 'average' or 'trained', got {weights!r}")
    has_average = any(k.startswith("ema.") for k in ckpt["state_dict"])
    prefix = "ema." if weights == "average" and has_average else "model."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(state)
    if config.model.restorer:  # the CRM trained with it travels in the same file
        crm = CompressionRestorer()
        crm.load_state_dict(
            {k[len("restorer.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("restorer.")}
        )
        attach_restorer(model, crm)
    extra = ckpt.get("irn", {})
    best = None
    for key, value in ckpt.get("callbacks", {}).items():
        if (
            key.startswith("CheckpointEvery")
            and isinstance(value, dict)
            and math.isfinite(value.get("best", -math.inf))
        ):
            best = {"monitor": value.get("monitor"), "value": float(value["best"])}
    meta = {
        "steps": int(ckpt.get("global_step", 0)),
        "train_seconds": float(extra.get("train_seconds", 0.0)),
        "hardware": extra.get("hardware"),
        # absolute: as the run resolved it (older checkpoints: against the current folder)
        "data": extra.get("data") or str(Path(config.data.train_dir).resolve()),
        "config": config.to_dict(),
        "best_validation": best,
        # a model whose reconstruction term never saw sampled z decodes well only with z = 0
        "recommended_z": "zero" if trained_on_zero_latent(config) else "sample",
        "source_checkpoint": str(Path(src).name),
        # which weights: the moving average (optim.ema_decay) or the optimiser's
        "weights": "average" if prefix == "ema." else "trained",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    model.metadata = meta  # type: ignore[assignment]
    return model, meta
