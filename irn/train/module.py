"""The IRN training objective as a LightningModule (its callbacks are :mod:`irn.train.callbacks`,
the export of its checkpoints :mod:`irn.train.export`, the run :mod:`irn.train.run`).

Objective (IRN paper, Eq. 5-9; the official code's sums)::

    L = lambda_fit    * mean_b sum_pixels (y - bicubic_down(x))^2          (LR guidance)
      + lambda_rec    * mean_b sum_pixels sqrt((x - f^-1(Q(y), z))^2 + eps) (HR reconstruction)
      + lambda_latent * sum(z_fwd^2) / B                                    (latent matching)

with (y, z_fwd) = f(x), Q rounding to 8-bit levels with a straight-through gradient, and
the reconstruction's z drawn from N(0, T^2) for a fraction of the batch (z = 0 for the
rest); T may ramp from 0 (see :class:`irn.train.config.LossConfig`). An IRN-Color model
(``model.kind: color``) has the same objective with the grey image as y, guided towards the BT.601
luma of x instead of the bicubic LR (the official IRN-Color objective). Devices, precision and
DDP belong to the ``lightning.Trainer``.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from irn.eval.metrics import psnr
from irn.imaging.io import jpeg_roundtrip
from irn.imaging.resize import imresize
from irn.nn.coupling import AffineCoupling
from irn.nn.linear import rgb_to_luma
from irn.nn.network import IRN, IRNConfig, quantize
from irn.nn.network import build_network as network_of
from irn.nn.restoration import CompressionRestorer
from irn.pipeline import for_inference
from irn.train.config import TrainConfig, config_from_dict
from irn.train.hardware import resolve_channels_last
from irn.train.perceptual import DiscriminatorVGG128, VGGFeatures
from irn.zoo import load_checkpoint, resolve, restorer_of


def quantize_ste(x: Tensor) -> Tensor:
    """Round to 8-bit levels in [0, 1] in the forward pass, identity gradient (paper Sec. 3.4)."""
    return x + (quantize(x) - x).detach()


def jpeg_ste(x: Tensor, quality: int) -> Tensor:
    """What a JPEG of ``quality`` (Pillow) holds of ``x`` in the forward pass, identity gradient (the
    straight-through estimator of IRN-Compression)."""
    return x + (jpeg_roundtrip(x.float(), quality).to(x.dtype) - x).detach()


def jpeg_quality_at(config: TrainConfig, generator: torch.Generator | None) -> int | None:
    """The JPEG quality of one training step: the fixed one, or a random one in [low, high]."""
    q = config.loss.jpeg_quality
    if q is None or isinstance(q, int):
        return q
    low, high = q[0], q[-1]
    if high == low:
        return low
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(low, high + 1, (1,), generator=generator, device=device).item())


def validation_jpeg_quality(config: TrainConfig) -> int | None:
    q = config.loss.jpeg_quality
    return q if q is None or isinstance(q, int) else int(round((q[0] + q[-1]) / 2))


def charbonnier(x: Tensor, y: Tensor, eps: float) -> Tensor:
    """Per-image Charbonnier L1, sum over (C, H, W) of sqrt((x - y)^2 + eps) -> (B,)."""
    return torch.sqrt((x - y) ** 2 + eps).flatten(1).sum(1)


def psnr_y(x: Tensor, y: Tensor, crop_border: int) -> Tensor:
    """PSNR-Y (dB, (B,)) of (B, 3, H, W) images in [0, 1] after rounding both to 8-bit levels.

    :func:`irn.eval.metrics.psnr` on MATLAB's BT.601 Y, ``crop_border`` pixels removed from every
    side (the official IRN evaluation protocol), computed in float64.
    """
    return psnr(quantize(x.double()), quantize(y.double()), crop_border=crop_border, y_channel=True).float()


def psnr_rgb(x: Tensor, y: Tensor) -> Tensor:
    """PSNR (dB, (B,)) over all channels of images in [0, 1] rounded to 8-bit levels, no border cropped."""
    return psnr(quantize(x.double()), quantize(y.double()), crop_border=0, y_channel=False).float()


def network_config(config: TrainConfig) -> IRNConfig:
    """The architecture a training config trains (its ``model`` section)."""
    m = config.model
    return IRNConfig(
        scale=m.scale, blocks_per_level=tuple(m.blocks_per_level), growth=m.growth, clamp=m.clamp, kind=m.kind
    )


def build_network(config: TrainConfig) -> IRN:
    """The untrained network of ``config`` (its kind's class)."""
    return network_of(network_config(config))


def lr_target(config: TrainConfig, hr: Tensor, margin: int = 0) -> Tensor:
    """What the LR output is guided towards: MATLAB bicubic of ``hr`` at 1/scale, or for a colour model
    the BT.601 luma (B, 1, H, W). With ``margin``, ``hr`` is a training patch with that much context
    per side (:func:`irn.train.data.random_patch`): the target is the patch's part of the context's
    bicubic LR, i.e. the crop of the whole image's LR, as the official data loader makes it."""
    if margin:
        s = config.model.scale
        if margin % s:
            raise ValueError(f"the context margin {margin} is not a multiple of the scale {s}")
        if config.model.kind == "color":
            return rgb_to_luma(hr[..., margin:-margin, margin:-margin])
        m = margin // s
        return imresize(hr, scale=1.0 / s)[..., m:-m, m:-m]
    if config.model.kind == "color":
        return rgb_to_luma(hr)
    return imresize(hr, scale=1.0 / config.model.scale)


def set_initial_log_scales(model: IRN, values: float | list[float]) -> None:
    """Start the coupling blocks at log-scale s = ``values`` (one for all, or one per Haar level);
    see :meth:`irn.nn.coupling.AffineCoupling.set_log_scale`. 0 keeps the official start."""
    per_level = values if isinstance(values, list) else [values] * len(model.config.blocks_per_level)
    level = -1
    for op in model.operations:
        if not isinstance(op, AffineCoupling):
            level += 1  # a Haar step starts the next level
        elif per_level[level]:
            op.set_log_scale(per_level[level])


def init_weights(model: IRN, init: IRN) -> None:
    """Copy ``init``'s weights into ``model``: the same architecture, or a smaller scale whose
    Haar levels match ``model``'s first levels (an x2 model starts the first level of an x4);
    the remaining levels keep their identity initialisation."""
    a, b = init.config, model.config
    n = len(a.blocks_per_level)
    fits = (a.kind, a.in_channels, a.growth, a.clamp) == (b.kind, b.in_channels, b.growth, b.clamp) and (
        a.blocks_per_level == b.blocks_per_level[:n]
    )
    if a.kind != "haar":  # one stage: only the same architecture
        fits = fits and a == b
    if not fits:
        raise ValueError(f"architecture {a} does not match {b} or its first levels")
    state = model.state_dict()
    state.update(init.state_dict())
    model.load_state_dict(state)


def lr_factor(step: int, warmup_steps: int, milestones: list[int], gamma: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then x gamma at each milestone."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * gamma ** sum(1 for m in milestones if step >= m)


def _numpy_state_to_torch(state: tuple[Any, ...]) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached))


def _numpy_state_from_torch(state: tuple[Any, ...]) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = state
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


def hardware_description(world_size: int = 1) -> str:
    """E.g. "1 x NVIDIA H200" or "CPU (2 threads)"."""
    if torch.cuda.is_available():
        return f"{world_size} x {torch.cuda.get_device_name(0)}"
    return f"{world_size} x CPU ({torch.get_num_threads()} threads)"


def to_channels_last(model: torch.nn.Module) -> None:
    """``model``'s parameters in NHWC (channels-last), its buffers left in the default layout: DDP
    broadcasts buffers at every step and refuses the channels-last strides of the Haar weights
    ((12, 1, 2, 2) with strides (4, 1, 2, 1): "some elements ... refer to a single memory location")."""
    model.to(memory_format=torch.channels_last)
    for module in model.modules():
        for name, buffer in module._buffers.items():
            if buffer is not None and buffer.dim() == 4:
                module._buffers[name] = buffer.clone(memory_format=torch.contiguous_format)


class IRNLightning(L.LightningModule):
    """IRN + its training objective. ``config`` is a :class:`TrainConfig` or its dict."""

    def __init__(self, config: TrainConfig | dict[str, Any]) -> None:
        super().__init__()
        if isinstance(config, dict):
            config = config_from_dict(config)
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.model = build_network(config)
        # IRN-Compression's CRM, trained with the IRN (model.restorer); exported into the model's file.
        # It starts as the identity, so a run from a trained IRN starts at that IRN's JPEG quality, or
        # from the CRM the model.init_from file carries
        self.restorer = CompressionRestorer().identity_start() if config.model.restorer else None
        # IRN+: the frozen VGG19 of the feature loss (not a submodule: no weights in the checkpoints)
        # and the discriminator, trained with the IRN (its weights in the training checkpoints only)
        self.__dict__["vgg"] = VGGFeatures() if config.loss.lambda_feature > 0 else None
        self.discriminator = DiscriminatorVGG128() if config.loss.lambda_gan > 0 else None
        set_initial_log_scales(self.model, config.model.init_log_scale)
        if config.model.init_from:
            init, _ = load_checkpoint(resolve(config.model.init_from))  # a shipped name or a file
            try:
                init_weights(self.model, init)
            except ValueError as exc:
                raise ValueError(f"model.init_from {config.model.init_from}: {exc}") from None
            carried = restorer_of(init)
            if carried is not None and self.restorer is None:
                raise ValueError(
                    f"model.init_from {config.model.init_from} carries a compression restoration module: set "
                    "model.restorer: true to train it on (without it, the model file would lose it)"
                )
            if carried is not None and self.restorer is not None:
                if carried.config != self.restorer.config:
                    raise ValueError(
                        f"model.init_from {config.model.init_from}: its compression restoration module "
                        f"({carried.config}) is not the one training builds ({self.restorer.config})"
                    )
                self.restorer.load_state_dict(carried.state_dict())
        self._channels_last = resolve_channels_last(config)[0]
        if self._channels_last:
            to_channels_last(self.model)
        # optim.ema_decay: the moving average of the network's weights, a frozen copy (a submodule, so the
        # training checkpoints carry it as "ema.*"), which validation, the best checkpoint and export use
        self.ema: IRN | None = None
        self.ema_updates = 0
        self._step_skipped = False
        if config.optim.ema_decay is not None:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)
        # torch.compile'd network forward for the objective (a function, not a module: the state
        # dict keeps the network's own keys); torch compiles it at the first step
        self._compiled_flow: Any = None
        if config.trainer.compile is not None:
            try:
                self._compiled_flow = self._compile_flow()
            except RuntimeError as exc:  # e.g. a Python version dynamo does not support yet
                raise ValueError(f"trainer.compile: {' '.join(str(exc).split())}") from None
        self.nonfinite_in_row = 0
        self.nonfinite_total = 0
        self.stopped_for_nonfinite = False
        self.train_seconds_before = 0.0
        self._fit_started: float | None = None

    # ------------------------------------------------------------------ objective
    def rec_temperature(self, step: int) -> float:
        lo = self.config.loss
        if lo.rec_temperature_ramp_steps > 0:
            return lo.rec_temperature * min(1.0, step / lo.rec_temperature_ramp_steps)
        return lo.rec_temperature

    def _compile_flow(self) -> Any:
        # static shapes: the flow runs at two fixed shapes (the patch forward, the LR + z inverse), one
        # graph each; torch's automatic dynamic shapes would recompile the second call symbolically, which
        # its CPU inductor (torch 2.14) cannot lower ("cannot determine truth value of Relational")
        return torch.compile(self.model.forward, mode=self.config.trainer.compile, dynamic=False)

    def __getstate__(self) -> dict[str, Any]:
        # a compiled function does not pickle (ddp_spawn pickles the module): rebuilt on first use
        return {**super().__getstate__(), "_compiled_flow": None}

    def flow(self, x: Tensor, rev: bool = False) -> tuple[Tensor, Tensor]:
        """The network's raw flow (``trainer.compile``'d when set): (B, C, H, W) -> (output, logdet (B,))."""
        if self.config.trainer.compile is not None:
            if self._compiled_flow is None:
                self._compiled_flow = self._compile_flow()
            return self._compiled_flow(x, rev)
        return self.model(x, rev)

    def losses(
        self, hr: Tensor, step: int, generator: torch.Generator | None = None, lr_ref: Tensor | None = None
    ) -> dict[str, Tensor]:
        """hr (B, 3, P, P) in [0, 1] -> {"fit", "rec", "latent", "loss"} (weighted total). ``lr_ref``: the
        fit term's target (default: :func:`lr_target` of ``hr`` itself, without context)."""
        cfg = self.config
        b = hr.shape[0]
        if lr_ref is None:
            with torch.autocast(device_type=hr.device.type, enabled=False):
                lr_ref = lr_target(cfg, hr.float())
        out, _ = self.flow(hr)
        c = self.model.lr_channels
        y, z = out[:, :c], out[:, c:]
        l_fit = ((y.float() - lr_ref) ** 2).flatten(1).sum(1).mean()
        l_latent = (z.float() ** 2).flatten(1).sum(1).mean()
        y_in = y
        if cfg.loss.y_noise_std > 0:
            noise = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            y_in = y + cfg.loss.y_noise_std * noise
        y_q = quantize_ste(y_in)
        terms: dict[str, Tensor] = {}
        quality = jpeg_quality_at(cfg, generator)
        if quality is not None:  # the LR is stored as a JPEG (IRN-Compression), straight-through
            y_j = jpeg_ste(y_q, quality)
            if self.restorer is not None:
                restored = self.restorer(y_j)
                terms["restore"] = ((restored.float() - y_q.detach().float()) ** 2).flatten(1).sum(1).mean()
                y_j = quantize_ste(restored)  # as validation, eval and rescale use it: 8-bit levels
            y_q = y_j
        z_rec = torch.zeros_like(z)
        n_sample = int(round(cfg.loss.rec_sample_fraction * b))
        temperature = self.rec_temperature(step)
        if n_sample > 0 and temperature > 0:
            draw = torch.randn((n_sample, *z.shape[1:]), generator=generator, device=z.device, dtype=z.dtype)
            z_rec = torch.cat((draw * temperature, z_rec[n_sample:]), 0)
        rec, _ = self.flow(torch.cat((y_q, z_rec), 1), rev=True)
        l_rec = charbonnier(rec[:, :3].float(), hr.float(), cfg.loss.charbonnier_eps).mean()
        total = cfg.lambda_fit * l_fit + cfg.loss.lambda_rec * l_rec + cfg.loss.lambda_latent * l_latent
        if "restore" in terms:
            total = total + cfg.loss.lambda_restore * terms["restore"]
        total = total + self._perceptual_terms(rec[:, :3].float(), hr.float(), step, terms)
        if "discriminator" in terms:  # IRN+: the discriminator's term trains it alone during the warm-up
            irn_on = 1.0 if step >= cfg.loss.gan_warmup_steps else 0.0  # (the IRN's lr is 0 then, too)
            total = irn_on * total + terms["discriminator"]
        return {"loss": total, "fit": l_fit, "rec": l_rec, "latent": l_latent, **terms}

    def _perceptual_terms(self, rec: Tensor, hr: Tensor, step: int, terms: dict[str, Tensor]) -> Tensor:
        """IRN+'s terms for the IRN, added to ``terms`` (with the discriminator's own); returns their
        weighted sum. ``feature``: the official L1 of VGG19 conv5_4 features, per image the sum over
        (C, H, W) of sqrt(d^2 + eps), averaged over the batch (as the reconstruction term); ``gan``:
        the IRN's vanilla-GAN term, -log D(rec), through a copy of the discriminator whose weights take
        no gradient from it; ``discriminator``: the discriminator's own term on real HR and detached
        reconstructions (added to the loss by :meth:`losses`). One optimizer step updates both
        networks."""
        lo = self.config.loss
        total = rec.new_zeros(())
        vgg = self.__dict__.get("vgg")
        if vgg is not None:
            vgg.to(rec.device)
            terms["feature"] = charbonnier(vgg(rec), vgg(hr).detach(), lo.charbonnier_eps).mean()
            total = total + lo.lambda_feature * terms["feature"]
        if self.discriminator is not None:
            bce = torch.nn.functional.binary_cross_entropy_with_logits
            d = self.discriminator
            real, fake = d(hr), d(rec.detach())
            terms["discriminator"] = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
            frozen = {name: p.detach() for name, p in d.named_parameters()}
            judged = torch.func.functional_call(d, frozen, (rec,))
            terms["gan"] = bce(judged, torch.ones_like(judged))
            total = total + lo.lambda_gan * terms["gan"]
        return total

    def _step_generator(self, device: torch.device) -> torch.Generator:
        seed = (self.config.trainer.seed * 1_000_003 + self.global_step * 7919 + self.global_rank) % (2**63)
        return torch.Generator(device=device).manual_seed(seed)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor | None:
        """``batch``: uint8 (B, 3, P + 2 m, P + 2 m), the patches with their context margin m
        (:func:`irn.train.data.target_margin`), from which the LR target is made."""
        region = batch.float() / 255.0
        margin = max(0, (region.shape[-1] - self.config.data.patch_size) // 2)
        with torch.autocast(device_type=region.device.type, enabled=False):
            lr_ref = lr_target(self.config, region, margin)
        hr = region[..., margin:-margin, margin:-margin] if margin > 0 else region
        if self._channels_last:
            hr = hr.contiguous(memory_format=torch.channels_last)
        terms = self.losses(hr, self.global_step, self._step_generator(hr.device), lr_ref=lr_ref)
        finite = torch.isfinite(terms["loss"].detach()).float().reshape(1)
        if self.trainer.world_size > 1:
            finite = self.all_gather(finite).min().reshape(1)
        if finite.item() < 1:
            self._count_nonfinite()
            return None
        bs = hr.shape[0]
        self.log("loss", terms["loss"].detach(), prog_bar=True, batch_size=bs)
        for key in ("fit", "rec", "latent", "restore", "feature", "gan", "discriminator"):
            if key in terms:
                self.log(f"train/{key}", terms[key].detach(), prog_bar=True, batch_size=bs)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=bs)
        self.log("train/rec_temperature", self.rec_temperature(self.global_step), batch_size=bs)
        self.log("train/seconds", self.train_seconds(), batch_size=bs)
        return terms["loss"]

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimiser's step, then the moving average's (inside the step, so a checkpoint written by a
        callback at the end of this batch, or by a stop signal, holds both). A step skipped for a
        non-finite loss or gradient leaves the average as it is."""
        self._step_skipped = False
        super().optimizer_step(*args, **kwargs)  # runs training_step (the closure), then the update
        if self.ema is not None and not self._step_skipped:
            self.update_ema()

    @torch.no_grad()
    def update_ema(self) -> None:
        """One step of the weights' moving average: ema += (1 - d) (w - ema), with d = min(ema_decay,
        (1 + n) / (10 + n)) after n updates, so that the first hundreds of steps do not keep the start."""
        assert self.ema is not None and self.config.optim.ema_decay is not None
        n = self.ema_updates
        decay = min(self.config.optim.ema_decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - decay)
        for mine, theirs in zip(self.ema.buffers(), self.model.buffers(), strict=True):
            mine.copy_(theirs)
        self.ema_updates = n + 1

    def _count_nonfinite(self) -> None:
        self._step_skipped = True  # the weights do not move: nor does their average
        self.nonfinite_in_row += 1
        self.nonfinite_total += 1
        self.log("train/nonfinite_total", float(self.nonfinite_total), batch_size=1)
        print(
            f"irn train: non-finite loss or gradient at step {self.global_step}, step skipped "
            f"({self.nonfinite_in_row} in a row)",
            flush=True,
        )
        if self.nonfinite_in_row >= self.config.trainer.max_nonfinite_steps:
            self.stopped_for_nonfinite = True
            self.trainer.should_stop = True

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:  # Lightning calls this hook for a step whose training_step returned None too
            return
        if self.trainer.precision == "16-mixed":  # overflowing gradients: its GradScaler skips the step
            self.nonfinite_in_row = 0  # the loss was finite
            return
        # one reduction and one device sync for all gradients (not one per parameter)
        if not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            for p in self.parameters():
                p.grad = None
            self._count_nonfinite()
        else:  # a finite loss and finite gradients: the run of non-finite steps is over
            self.nonfinite_in_row = 0

    # ------------------------------------------------------------------ validation
    def validation_step(self, batch: tuple[Tensor, list[str]], batch_idx: int) -> None:
        """Scores the weights as ``irn rescale`` runs them: without the trainer's mixed-precision autocast."""
        hr, _ = batch
        s = self.config.model.scale
        # on a CPU the fast path: the plain model's outputs in less time; malloc left as training wants it;
        # the weights' moving average where optim.ema_decay keeps one (what export writes)
        net = for_inference(self.ema if self.ema is not None else self.model, release_memory=False)
        with torch.autocast(device_type=hr.device.type, enabled=False):
            lr = net.downscale(hr)
            lr_ref = quantize(lr_target(self.config, hr))
            lr_in = lr
            quality = validation_jpeg_quality(self.config)
            if quality is not None:  # scored as it is used: from the stored JPEG (restored by the CRM)
                lr_in = jpeg_roundtrip(lr, quality)
                if self.restorer is not None:
                    lr_in = quantize(self.restorer(lr_in).clamp(0, 1))
            x0 = net.upscale(lr_in, z="zero")
            xs = net.upscale(lr_in, z="sample", seed=batch_idx)
        if self.config.model.kind == "color":  # the colour image on RGB, the grey image against the luma
            self.log("val/psnr_rgb_z0", psnr_rgb(x0, hr).mean(), batch_size=1, sync_dist=False)
            self.log("val/psnr_rgb_sample", psnr_rgb(xs, hr).mean(), batch_size=1, sync_dist=False)
            self.log("val/grey_psnr", psnr_rgb(lr, lr_ref).mean(), batch_size=1, sync_dist=False)
        else:
            self.log("val/psnr_y_z0", psnr_y(x0, hr, s).mean(), batch_size=1, sync_dist=False)
            self.log("val/psnr_y_sample", psnr_y(xs, hr, s).mean(), batch_size=1, sync_dist=False)
            self.log("val/lr_psnr_y", psnr_y(lr, lr_ref, 0).mean(), batch_size=1, sync_dist=False)
        self.log("val/train_seconds", self.train_seconds(), batch_size=1)
        if batch_idx == 0:
            self._log_grid(hr, lr, x0, xs)

    def _log_grid(self, hr: Tensor, lr: Tensor, x0: Tensor, xs: Tensor) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger
        from torchvision.utils import make_grid

        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                up = torch.nn.functional.interpolate(lr, size=hr.shape[-2:], mode="nearest").expand_as(hr)
                tiles = torch.cat((hr, up, x0, xs), 0)[..., :256, :256].clamp(0, 1)
                grid = make_grid(tiles, nrow=4, padding=2)
                logger.experiment.add_image("val/hr_lr_z0_sample", grid, self.global_step)

    # ------------------------------------------------------------------ optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        o = self.config.optim
        d_params = set(self.discriminator.parameters()) if self.discriminator is not None else set()
        params = [p for p in self.parameters() if p.requires_grad and p not in d_params]  # the IRN (+ CRM)
        groups: list[dict[str, Any]] = [{"params": params}]
        if d_params:  # IRN+: the discriminator's own Adam settings, in the same step
            d_group = {"params": list(self.discriminator.parameters()), "lr": o.lr_discriminator}  # type: ignore[union-attr]
            groups.append({**d_group, "betas": tuple(o.betas_discriminator), "weight_decay": 0.0})
        optimizer = torch.optim.Adam(groups, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        milestones, warmup, gamma = list(o.milestones), o.warmup_steps, o.gamma
        gan_warmup = self.config.loss.gan_warmup_steps if d_params else 0

        def irn_factor(step: int) -> float:  # IRN+: the IRN stands still while the discriminator warms up
            return 0.0 if step < gan_warmup else lr_factor(step, warmup, milestones, gamma)

        def d_factor(step: int) -> float:
            return lr_factor(step, warmup, milestones, gamma)

        factors = [irn_factor, d_factor] if d_params else [irn_factor]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """The Trainer's clipping (``trainer.gradient_clip_val``), on the IRN (+ CRM) only: IRN+'s
        discriminator shares the optimizer step but keeps its own gradients unclipped (official)."""
        if self.discriminator is None or not gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        irn_params = optimizer.param_groups[0]["params"]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(irn_params, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(irn_params, gradient_clip_val)

    # ------------------------------------------------------------------ state
    def on_fit_start(self) -> None:
        self._fit_started = time.monotonic()

    def train_seconds(self) -> float:
        since = time.monotonic() - self._fit_started if self._fit_started is not None else 0.0
        return self.train_seconds_before + since

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": _numpy_state_to_torch(np.random.get_state()),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["irn"] = {
            "nonfinite_in_row": self.nonfinite_in_row,
            "nonfinite_total": self.nonfinite_total,
            "train_seconds": self.train_seconds(),
            "network": self.model.config.to_dict(),
            "hardware": hardware_description(self.trainer.world_size if self._trainer is not None else 1),
            "data": str(Path(self.config.data.train_dir).resolve()),  # as this run read it (cwd-relative)
            "rng": rng,
            "ema_updates": self.ema_updates,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("irn", {})
        self.nonfinite_in_row = int(state.get("nonfinite_in_row", 0))
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        self.train_seconds_before = float(state.get("train_seconds", 0.0))
        self.ema_updates = int(state.get("ema_updates", 0))
        weights = checkpoint.get("state_dict")
        if isinstance(weights, dict):  # a run resumed with optim.ema_decay switched on or off
            has_ema = any(k.startswith("ema.") for k in weights)
            if self.ema is not None and not has_ema:  # the average starts at the checkpoint's weights
                weights.update(
                    {"ema." + k[len("model.") :]: v for k, v in list(weights.items()) if k.startswith("model.")}
                )
                self.ema_updates = 0
            elif self.ema is None and has_ema:
                for k in [k for k in weights if k.startswith("ema.")]:
                    del weights[k]
        rng = state.get("rng")
        if rng:
            torch.set_rng_state(rng["torch"])
            np.random.set_state(_numpy_state_from_torch(rng["numpy"]))
            random.setstate(rng["python"])
            if "cuda" in rng and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(rng["cuda"])
