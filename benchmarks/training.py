"""The ``training`` section of ``benchmarks/run.py``: the training objective
(:meth:`irn.train.module.IRNLightning.losses`, paper Eq. 5-9) forward + backward + Adam step on the
CPU, plain eager fp32 against channels-last and against DDP over CPU processes
(:class:`DataParallelStep`), with the paper's code as the anchor (``--paper-code``)."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from benchmarks.common import Row, fmt_ratio, interleaved, max_diff, plural, sync, vs_paper
from benchmarks.paper_anchor import paper_training_step

LABELS = {
    "paper": "the paper's code (anchor, --paper-code)",
    "plain": "plain eager fp32 (baseline)",
    "channels-last": "channels-last (trainer.channels_last)",
    "ddp": "DDP, {world} CPU processes x {threads} (trainer.devices={world}, strategy=ddp)",
}


def bench_batch(batch: int, patch: int) -> torch.Tensor:
    """The training batch every variant of the training section steps on (CPU, [0, 1])."""
    return torch.rand(batch, 3, patch, patch, generator=torch.Generator().manual_seed(2))


def training_step_fn(
    scale: int, batch: int, patch: int, device: torch.device, variant: str
) -> tuple[Callable[[], float], Any]:
    """One step of the paper's objective: forward + backward + Adam. Returns (step, the LightningModule)."""
    from irn.train.config import TrainConfig
    from irn.train.module import IRNLightning

    config = TrainConfig()
    config.model.scale = scale
    config.data.batch_size = batch
    config.data.patch_size = patch
    config.trainer.channels_last = variant == "channels-last"
    lit = IRNLightning(config).to(device)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial weights everywhere (fresh last convolutions are zero)
        for p in lit.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)  # p may be channels-last: draw contiguous
    optimizer = torch.optim.Adam(lit.model.parameters(), lr=2e-4)
    hr = bench_batch(batch, patch).to(device)
    if variant == "channels-last":
        hr = hr.contiguous(memory_format=torch.channels_last)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = lit.losses(hr, step=1000, generator=torch.Generator(device=device).manual_seed(3))["loss"]
        loss.backward()
        optimizer.step()
        sync(device)
        return float(loss.detach())

    return step, lit


def _loss_module(lit: Any, step: int) -> torch.nn.Module:
    """``lit.losses(hr, step, generator)["loss"]`` as a module: what Lightning wraps in DDP."""

    class Objective(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lit = lit

        def forward(self, hr: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return self.lit.losses(hr, step=step, generator=generator)["loss"]

    return Objective()


@contextlib.contextmanager
def zero_z_reconstruction(lit: Any) -> Iterator[None]:
    """The objective with z = 0 in the reconstruction term (no random draw): what the gradient
    agreement of :class:`DataParallelStep` and :func:`plain_gradient` compares."""
    sampled, lit.config.loss.rec_sample_fraction = lit.config.loss.rec_sample_fraction, 0.0
    try:
        yield
    finally:
        lit.config.loss.rec_sample_fraction = sampled


def _ddp_worker(
    rank: int, world: int, threads: int, rendezvous: str, scale: int, batch: int, patch: int, conn: Any
) -> None:
    """One rank of :class:`DataParallelStep`: the weights of :func:`training_step_fn` (same seed on
    every rank), rows ``rank::world`` of :func:`bench_batch`, gradients averaged by DDP (gloo).
    Commands from ``conn``: "step" (a training step; replies its seconds and loss), "gradient"
    (one objective with z = 0 for the reconstruction, backward, no update; rank 0 replies the averaged
    gradient, flattened, and the loss), "stop"."""
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world)
    try:
        _, lit = training_step_fn(scale, batch // world, patch, torch.device("cpu"), "plain")
        params = list(lit.model.parameters())
        ddp = torch.nn.parallel.DistributedDataParallel(_loss_module(lit, step=1000))
        optimizer = torch.optim.Adam(params, lr=2e-4)
        hr = bench_batch(batch, patch)[rank::world].contiguous()
        while (command := conn.recv()) != "stop":
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            if command == "gradient":
                with zero_z_reconstruction(lit):
                    loss = ddp(hr, torch.Generator().manual_seed(3))
            else:
                loss = ddp(hr, torch.Generator().manual_seed(3 + rank))
            loss.backward()
            if command == "gradient":
                total = loss.detach().clone()
                dist.all_reduce(total)
                flat = torch.cat([p.grad.flatten() for p in params]) if rank == 0 else None
                conn.send((flat, float(total) / world))
                continue
            optimizer.step()
            conn.send((time.perf_counter() - start, float(loss.detach())))
    finally:
        dist.destroy_process_group()


class DataParallelStep:
    """The training step of :func:`training_step_fn` data-parallel over ``world`` CPU processes of
    ``threads`` threads each, ``batch / world`` patches per process, DDP over gloo: what
    ``irn train --trainer.accelerator=cpu --trainer.devices=N --trainer.strategy=ddp`` runs (Lightning
    gives each process cores / N threads). Calling it runs one step on all ranks and returns the mean
    loss; :meth:`gradient` is the agreement check; :meth:`close` stops the processes."""

    def __init__(self, scale: int, batch: int, patch: int, world: int, threads: int) -> None:
        if batch % world:
            raise ValueError(f"batch {batch} does not split over {world} processes")
        self._dir = tempfile.TemporaryDirectory(prefix="irn_ddp_")
        rendezvous = f"file://{self._dir.name}/rendezvous"
        context = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for rank in range(world):
            ours, theirs = context.Pipe()
            proc = context.Process(
                target=_ddp_worker, args=(rank, world, threads, rendezvous, scale, batch, patch, theirs), daemon=True
            )
            proc.start()
            self.conns.append(ours)
            self.procs.append(proc)

    def _ask(self, command: str) -> list[Any]:
        for conn in self.conns:
            conn.send(command)
        return [conn.recv() for conn in self.conns]

    def __call__(self) -> float:
        return statistics.fmean(loss for _, loss in self._ask("step"))

    def gradient(self) -> tuple[torch.Tensor, float]:
        """(the averaged gradient flattened, the loss) of the objective with z = 0, no update."""
        return self._ask("gradient")[0]

    def close(self) -> None:
        for conn in self.conns:
            conn.send("stop")
        for proc in self.procs:
            proc.join(timeout=60)
        self._dir.cleanup()


def plain_gradient(lit: Any, hr: torch.Tensor) -> tuple[torch.Tensor, float]:
    """What :meth:`DataParallelStep.gradient` computes, in this process on the whole batch."""
    params = list(lit.model.parameters())
    for p in params:
        p.grad = None
    with zero_z_reconstruction(lit):
        loss = _loss_module(lit, step=1000)(hr, torch.Generator().manual_seed(3))
    loss.backward()
    flat = torch.cat([p.grad.flatten() for p in params])
    for p in params:
        p.grad = None
    return flat, float(loss.detach())


def paper_step(code: Any, lit: Any, batch: int, patch: int) -> Callable[[], float]:
    """The paper's training step on the weights and the batch of :func:`training_step_fn`'s ``lit``."""
    from irn.imaging.resize import imresize

    hr = bench_batch(batch, patch)
    lr_ref = imresize(hr, scale=1.0 / lit.config.model.scale)
    cfg = lit.config
    weights = (cfg.lambda_fit, cfg.loss.lambda_rec, cfg.loss.lambda_latent)
    return paper_training_step(code, lit.model, hr, lr_ref, weights, cfg.loss.charbonnier_eps)[0]


def bench_training(args: argparse.Namespace) -> list[Row]:
    rows = []
    batch, patch = (2, 48) if args.quick else (4, 144)
    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    world = 2 if threads >= 2 else 1
    for scale in args.scales:
        built = {v: training_step_fn(scale, batch, patch, cpu, v) for v in ("plain", "channels-last")}
        steps: dict[str, Callable[[], object]] = {v: fn for v, (fn, _) in built.items()}
        # agreement: the first step's loss from identical weights and data
        first = {v: fn() for v, fn in steps.items()}
        # fresh weights (training_step_fn's seed) for the gradient check of the data-parallel step
        plain_grad = plain_gradient(training_step_fn(scale, batch, patch, cpu, "plain")[1], bench_batch(batch, patch))
        ddp = DataParallelStep(scale, batch, patch, world, max(1, threads // world)) if world > 1 else None
        try:
            ddp_agree = ""
            if ddp is not None:
                grad, loss = ddp.gradient()
                g_diff = max_diff(grad, plain_grad[0]) / float(plain_grad[0].abs().max())
                ddp_agree = (
                    f"gradient (z = 0) max diff {g_diff:.1e} of max |g|, loss rel. diff "
                    f"{abs(loss - plain_grad[1]) / abs(plain_grad[1]):.1e}"
                )
                steps["ddp"] = ddp
            if args.paper is not None:
                steps = {"paper": paper_step(args.paper, built["plain"][1], batch, patch), **steps}
            times = interleaved(steps, args.repeats)
        finally:
            if ddp is not None:
                ddp.close()
        base = statistics.median(times["plain"])
        anchor = statistics.median(times["paper"]) if "paper" in times else None
        case = f"x{scale} batch {batch} {patch}x{patch} step"
        for v in steps:
            t = statistics.median(times[v])
            agree = ""
            if v == "channels-last":
                agree = f"first loss rel. diff {abs(first[v] - first['plain']) / abs(first['plain']):.1e}"
            elif v == "ddp":
                agree = ddp_agree
            elif v == "paper":
                agree = "its objective (IRNModel.optimize_parameters), bicubic LR given"
            rows.append(
                Row(
                    "training",
                    case,
                    LABELS[v].format(world=world, threads=plural(max(1, threads // world), "thread")),
                    "cpu",
                    f"{batch / t:.2f} patches/s ({t:.2f} s/step)",
                    fmt_ratio(base, t),
                    agree,
                    f"runs {', '.join(f'{x:.2f}' for x in times[v])} s",
                    {"seconds": times[v]},
                    vs_paper(anchor, t),
                )
            )
    return rows
