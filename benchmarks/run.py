"""Speed and memory of irn (issue 7), printed as one table, each optimisation against its baseline.

    .venv/bin/python benchmarks/run.py                      # everything (hours on a shared 2-core CPU)
    .venv/bin/python benchmarks/run.py --only inference     # sections: inference, whole, training, gpu, data, tiling
    .venv/bin/python benchmarks/run.py --quick              # small sizes, one repeat: a smoke run
    .venv/bin/python benchmarks/run.py --paper-code DIR     # also time the paper's code, in the same run

The anchor of issue 7 is the paper's own code. ``--paper-code DIR`` (a local checkout of
https://github.com/pkuxmq/Invertible-Image-Rescaling; nothing of it ships with irn) adds it as a
variant of ``inference``, ``whole`` and ``training``, with our weights, interleaved with ours; the
column "vs paper's code" is then each variant's speed over it (see ``paper_anchor.py``).

Sections:

* ``inference`` -- down+up (``downscale`` then ``upscale(seed=0)``) in this process on 512x512,
  x2 and x4: the plain eager fp32 :class:`irn.IRN` (the baseline) and
  :class:`irn.nn.fast.FastIRN`, interleaved run by run, medians, megapixels (HR) per second and
  the ratio to the baseline. Agreement: the largest absolute difference of ``encode`` (LR and z)
  and of ``decode`` given the same (quantised LR, z), which must be <= 1e-4 in fp32. On a GPU the
  same for the bf16-mixed/channels-last/compiled flow (:func:`irn.nn.fast.accelerated_flow`),
  whose agreement is reported, not required.
* ``whole`` -- one down+up per fresh process (``python benchmarks/run.py --child ...``): its
  time and its peak resident memory (``ru_maxrss``: everything the process ever held, torch's
  libraries included), 512x512 and 2040x1356, x2 and x4, plain and fast, alternating.
* ``training`` -- the training objective (:meth:`irn.train.module.IRNLightning.losses`, paper Eq. 5-9)
  forward + backward + Adam step, 144x144 patches: batch 4 on CPU (x2, x4), plain eager fp32 against
  channels-last and against DDP over two CPU processes of half the threads each (2 + 2 patches,
  gloo; :class:`DataParallelStep`, agreement by the averaged gradient).
* ``gpu`` -- the trainer's GPU recipes (``trainer.precision``, ``channels_last``, ``compile``) at the
  paper's configuration (batch 16, 144x144, ``configs/x{2,4}.yaml``) through ``irn train`` itself:
  it/s (median of 5 timed windows), GPU utilisation, data wait, peak memory and Set5 PSNR-Y after
  the same number of steps against fp32 (:mod:`gpu_training`). Without CUDA: "not measured".
* ``data`` -- training patches per second from a folder of 2040x1356 PNGs written to /tmp, by
  :class:`irn.train.data.PatchDataset` through a DataLoader, with and without the decoded-image cache.
* ``tiling`` -- PSNR of tiled against whole-image down and up for growing overlaps (the measurement
  behind :data:`irn.imaging.tiling.DEFAULT_OVERLAP`); needs trained weights (``--x2``/``--x4`` checkpoints or
  the shipped models), else runs on random weights and says so.

Weights: the shipped/trained checkpoints when given or found, else seeded random ones; speed
does not depend on the values. The machine is printed with the table; on a shared machine the
absolute times move with the load, the interleaved ratios much less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from paper_anchor import PaperModel, load_paper_code, paper_training_step

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("inference", "whole", "training", "gpu", "data", "tiling")
NOT_MEASURED = "not measured (no GPU)"
LABELS = {
    "paper": "the paper's code (anchor, --paper-code)",
    "plain": "plain eager fp32 (baseline)",
    "fast": "FastIRN (irn.nn.fast)",
    "api": "Python API (irn.downscale_image + irn.upscale_image)",
    "channels-last": "channels-last (trainer.channels_last)",
    "ddp": "DDP, {world} CPU processes x {threads} (trainer.devices={world}, strategy=ddp)",
}
TOLERANCE = 1e-4


@dataclass
class Row:
    """One line of the table."""

    section: str
    case: str
    variant: str
    device: str
    value: str
    ratio: str = ""
    agreement: str = ""
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    paper: str = ""  # ratio to the paper's code measured in the same run (--paper-code)


# ------------------------------------------------------------------------------------ helpers
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{gpu}; load average {load:.1f} at start"
    )


def load_model(scale: int, checkpoint: str | None) -> Any:
    """A trained model if ``checkpoint`` is given or the shipped one exists, else seeded random weights."""
    import irn
    from irn.nn import IRN, IRNConfig

    for candidate in ([checkpoint] if checkpoint else []) + [f"x{scale}"]:
        try:
            model = irn.load(candidate)
            if model.scale == scale:
                return model.cpu().eval(), str(candidate)
        except irn.IRNError:
            continue
    model = IRN(IRNConfig(scale=scale)).eval()
    gen = torch.Generator().manual_seed(scale)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            p.requires_grad_(False)
    return model, "random weights (seeded)"


def interleaved(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of every variant, run round-robin ``repeats`` times after one warm-up call each."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def fmt_ratio(baseline: float, value: float) -> str:
    return f"{baseline / value:.2f}x"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def vs_paper(anchor: float | None, value: float) -> str:
    """The "vs paper's code" cell: the paper's median time over ``value``, empty without --paper-code."""
    return "" if anchor is None else fmt_ratio(anchor, value)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------- (a) inference
def agreement(plain: Any, other: Any, hr: torch.Tensor) -> tuple[float, float]:
    """(encode difference, max |decode difference| given the same quantised LR and sampled z).

    The encode difference is the larger of max |LR difference| (LR in [0, 1]) and the z difference
    relative to max(1, max |z|): a trained model's forward z can reach hundreds (each coupling block
    multiplies the latent branch by exp(s)), where fp32 itself resolves only ~1e-5 absolute."""
    from irn.nn.network import quantize

    with torch.inference_mode():
        lr_p, z_p = plain.encode(hr)
        lr_o, z_o = other.encode(hr)
        z_scale = max(1.0, float(z_p.abs().max()))
        enc = max(max_diff(lr_p, lr_o), max_diff(z_p, z_o) / z_scale)
        lr_q = quantize(lr_p)
        z = torch.randn(z_p.shape, generator=torch.Generator().manual_seed(0)).to(z_p)
        dec = max_diff(plain.decode(lr_q, z), other.decode(lr_q, z))
    return enc, dec


class ApiModel:
    """The Python API as a model: ``downscale``/``upscale`` through :mod:`irn.api` (the pipeline's
    fast path, tiling under its memory budget), on tensors as a user passes them."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def downscale(self, hr: torch.Tensor) -> torch.Tensor:
        from irn.api import downscale_image

        return downscale_image(self.model, hr)

    def upscale(self, lr: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        from irn.api import upscale_image

        return upscale_image(self.model, lr, z="sample", seed=seed)


def bench_inference(args: argparse.Namespace) -> list[Row]:
    from irn.nn.fast import FastIRN

    rows = []
    side = 128 if args.quick else 512
    for scale in (2, 4):
        plain, source = load_model(scale, getattr(args, f"x{scale}"))
        models: dict[str, Any] = {"plain": plain, "fast": FastIRN(plain), "api": ApiModel(plain)}
        if args.paper is not None:
            models = {"paper": PaperModel(args.paper, plain), **models}
        hr = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))

        def down_up(model: Any, hr: torch.Tensor = hr) -> Callable[[], object]:
            def run() -> object:
                with torch.inference_mode():
                    return model.upscale(model.downscale(hr), seed=0)

            return run

        times = interleaved({name: down_up(m) for name, m in models.items()}, args.repeats)
        agree = {name: agreement(plain, m, hr) for name, m in models.items() if name not in ("plain", "api")}
        base = statistics.median(times["plain"])
        anchor = statistics.median(times["paper"]) if "paper" in times else None
        mp = side * side / 1e6
        case = f"x{scale} {side}x{side} down+up"
        for name in models:
            t = statistics.median(times[name])
            ok = ""
            if name in agree:
                enc, dec = agree[name]
                ok = f"enc {enc:.1e}, dec {dec:.1e} " + ("ok" if max(enc, dec) <= TOLERANCE else "FAIL")
            rows.append(
                Row(
                    "inference",
                    case,
                    LABELS[name],
                    "cpu",
                    f"{mp / t:.3f} MP/s ({t:.2f} s)",
                    fmt_ratio(base, t),
                    ok,
                    f"runs {', '.join(f'{x:.2f}' for x in times[name])} s; {source}",
                    {"seconds": times[name]},
                    vs_paper(anchor, t),
                )
            )
        if torch.cuda.is_available():
            rows += gpu_inference(plain, hr, scale, case, args)
        else:
            rows.append(Row("inference", case, "GPU: bf16-mixed + channels-last + compile", "cuda", NOT_MEASURED))
    return rows


def gpu_inference(plain: Any, hr: torch.Tensor, scale: int, case: str, args: argparse.Namespace) -> list[Row]:
    import copy

    from irn.nn.fast import AcceleratorOptions, accelerated_flow
    from irn.nn.network import quantize

    device = torch.device("cuda")
    model = copy.deepcopy(plain).to(device)
    x = hr.to(device)
    variants: dict[str, Callable[[], object]] = {}
    flows = {
        "fp32 eager": lambda x, rev: model(x, rev),
        "bf16-mixed + channels-last + compile": accelerated_flow(
            copy.deepcopy(model), AcceleratorOptions(precision="bf16-mixed", compile=True)
        ),
    }
    c = plain.config.in_channels

    def down_up(flow: Callable[..., Any]) -> Callable[[], object]:
        def run() -> object:
            with torch.inference_mode():
                out, _ = flow(x, False)
                lr = quantize(out[:, :c])
                z = torch.randn(out[:, c:].shape, device=device)
                hr_out, _ = flow(torch.cat((lr, z), 1), True)
                sync(device)
                return hr_out

        return run

    for name, flow in flows.items():
        variants[name] = down_up(flow)
    times = interleaved(variants, args.repeats)
    base = statistics.median(times["fp32 eager"])
    with torch.inference_mode():
        ref, _ = flows["fp32 eager"](x, False)
        got, _ = flows["bf16-mixed + channels-last + compile"](x, False)
    rows = []
    mp = hr.shape[-1] * hr.shape[-2] / 1e6
    for name in variants:
        t = statistics.median(times[name])
        note = "" if name == "fp32 eager" else f"forward PSNR vs fp32 {psnr(ref.clamp(0, 1), got.clamp(0, 1)):.1f} dB"
        rows.append(Row("inference", case, f"GPU: {name}", "cuda", f"{mp / t:.1f} MP/s", fmt_ratio(base, t), note))
    return rows


# --------------------------------------------------------------------------- whole process runs
def child(args: argparse.Namespace) -> None:
    """One down+up in this fresh process; prints a JSON line with times and peak RSS."""
    start = time.perf_counter()
    from irn.nn.fast import FastIRN, return_freed_memory_promptly

    if args.child_variant == "fast":
        return_freed_memory_promptly()
    plain, source = load_model(args.child_scale, getattr(args, f"x{args.child_scale}"))
    model: Any = plain
    if args.child_variant == "fast":
        model = FastIRN(plain)
    elif args.child_variant == "api":
        model = ApiModel(plain)
    elif args.child_variant == "paper":
        model = PaperModel(args.paper, plain)  # a copy of the weights: our model is dropped
        del plain
    h, w = args.child_size
    hr = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    with torch.inference_mode():
        lr = model.downscale(hr)
        model.upscale(lr, seed=0)
    t1 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"down_up_s": t1 - t0, "process_s": t1 - start, "peak_bytes": peak, "weights": source}))


def bench_whole(args: argparse.Namespace) -> list[Row]:
    sizes = [(128, 128)] if args.quick else [(512, 512), (1356, 2040)]
    rows = []
    for h, w in sizes:
        for scale in (2, 4):
            variants = (["paper"] if args.paper is not None else []) + ["plain", "fast", "api"]
            results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
            for _ in range(args.whole_repeats):
                for variant in variants:
                    cmd = [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--child",
                        variant,
                        str(scale),
                        str(h),
                        str(w),
                    ]
                    for s in (2, 4):
                        if getattr(args, f"x{s}"):
                            cmd += [f"--x{s}", getattr(args, f"x{s}")]
                    if args.paper is not None:
                        cmd += ["--paper-code", str(args.paper.root)]
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            base = statistics.median(r["down_up_s"] for r in results["plain"])
            anchor = statistics.median(r["down_up_s"] for r in results["paper"]) if "paper" in results else None
            for variant in variants:
                rs = results[variant]
                t = statistics.median(r["down_up_s"] for r in rs)
                total = statistics.median(r["process_s"] for r in rs)
                peak = statistics.median(r["peak_bytes"] for r in rs)
                rows.append(
                    Row(
                        "whole",
                        f"x{scale} {w}x{h} one process",
                        LABELS[variant],
                        "cpu",
                        f"{h * w / 1e6 / t:.3f} MP/s, down+up {t:.1f} s, process {total:.1f} s, "
                        f"peak RSS {peak / 2**30:.2f} GiB",
                        fmt_ratio(base, t),
                        "",
                        f"{len(rs)} runs: "
                        + ", ".join(f"{r['down_up_s']:.1f}s/{r['peak_bytes'] / 2**30:.2f}GiB" for r in rs),
                        {"runs": rs},
                        vs_paper(anchor, t),
                    )
                )
    return rows


# -------------------------------------------------------------------------------- (b) training
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
    for scale in (2, 4):
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


# ------------------------------------------------------------------------- (b') GPU training
def bench_gpu(args: argparse.Namespace) -> list[Row]:
    """The trainer's GPU recipes through ``irn train`` itself (:mod:`gpu_training`)."""
    import gpu_training as gt

    device = args.gpu_device
    steps, warmup = (8, 3) if args.quick else (args.gpu_steps, args.gpu_warmup)
    case = "x{scale} batch {batch} {patch}x{patch}, " + f"{steps} steps ({warmup} warm-up)"
    if device == "cuda" and not torch.cuda.is_available():
        return [
            Row("gpu", case.format(scale=s, batch=16, patch=144), gt.LABELS[r], "cuda", NOT_MEASURED)
            for s in args.gpu_scales
            for r in ["fp32", *[r for r in args.gpu_recipes if r != "fp32"]]
        ]
    train_dir = Path(args.train_dir) if args.train_dir else None
    if train_dir is None:
        train_dir = Path(args.data_dir)
        write_pngs(train_dir, 2 if args.quick else 8, (256, 384) if args.quick else (1356, 2040))
    val_dir = Path(args.val_dir) if args.val_dir else None
    overrides = gt.QUICK_OVERRIDES if args.quick else []
    batch, patch = (2, 16) if args.quick else (16, 144)
    rows = []
    for scale, name, result, cells in gt.run_all(
        args.gpu_scales, args.gpu_recipes, steps, warmup, train_dir, val_dir, device, overrides
    ):
        rows.append(
            Row(
                "gpu",
                case.format(scale=scale, batch=batch, patch=patch),
                gt.LABELS[name],
                device,
                raw={} if result is None else asdict(result),
                **cells,
            )
        )
    return rows


# ---------------------------------------------------------------------------- (c) data loading
def write_pngs(folder: Path, count: int, size: tuple[int, int]) -> None:
    """``count`` smooth-noise RGB PNGs of ``size`` (H, W) (compressible like a photo, not like noise)."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    for k in range(count):
        path = folder / f"img{k:02d}.png"
        if path.exists():
            continue
        coarse = torch.from_numpy(rng.random((1, 3, h // 16 + 1, w // 16 + 1), dtype=np.float32))
        img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
        img = img + torch.from_numpy(rng.normal(0, 0.03, (3, h, w)).astype(np.float32))
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(path)


def bench_data(args: argparse.Namespace) -> list[Row]:
    from torch.utils.data import DataLoader

    from irn.train.data import PatchDataset, StepBatchSampler

    folder = Path(args.data_dir)
    count, size = (2, (256, 384)) if args.quick else (8, (1356, 2040))
    write_pngs(folder, count, size)
    batches = 3 if args.quick else 12
    rows = []
    for cache in (False, True):
        for workers in (0, 2):
            t0 = time.perf_counter()
            dataset = PatchDataset(folder, 144, seed=0, augment=True, cache=cache)
            setup = time.perf_counter() - t0
            loader = DataLoader(dataset, batch_sampler=StepBatchSampler(16, 0, batches + 1), num_workers=workers)
            it = iter(loader)
            next(it)  # workers started, first batch
            t1 = time.perf_counter()
            n = sum(b.shape[0] for b in it)
            dt = time.perf_counter() - t1
            rows.append(
                Row(
                    "data",
                    f"{count} PNGs {size[1]}x{size[0]}, batch 16, 144x144",
                    f"cache={cache}, workers={workers}",
                    "cpu",
                    f"{n / dt:.0f} patches/s",
                    note=f"cache fill {setup:.1f} s" if cache else "",
                )
            )
    return rows


# ------------------------------------------------------------------------------ (d) tiling overlap
def bench_tiling(args: argparse.Namespace) -> list[Row]:
    from irn.imaging.io import read_image
    from irn.imaging.tiling import Tiling, tiled_downscale, tiled_upscale
    from irn.nn.fast import FastIRN

    image = REPO.parent / "shared" / "datasets" / "Set14" / "HR" / "baboon.png"
    hr = read_image(image)[None] if image.exists() else torch.rand(1, 3, 480, 500)
    if args.quick:
        hr = hr[..., :96, :96]
    rows = []
    for scale in (2, 4):
        plain, source = load_model(scale, getattr(args, f"x{scale}"))
        model = FastIRN(plain)
        tile = 16 if args.quick else 48
        with torch.inference_mode():
            lr = model.downscale(hr)
            up = model.upscale(lr, z="zero", size=tuple(hr.shape[-2:]))
            for overlap in (0, 2, 4, 8, 16, 32) if not args.quick else (0, 8):
                t = Tiling(tile=tile, overlap=overlap)
                lr_t = tiled_downscale(model, hr, t)
                up_t = tiled_upscale(model, lr, t, z="zero", size=tuple(hr.shape[-2:]))
                rows.append(
                    Row(
                        "tiling",
                        f"x{scale} {image.name if image.exists() else 'random'} tile {tile} LR px",
                        f"overlap {overlap} LR px",
                        "cpu",
                        f"down PSNR {psnr(lr_t, lr):.1f} dB, up PSNR {psnr(up_t, up):.1f} dB",
                        note=source,
                    )
                )
    return rows


# ------------------------------------------------------------------------------------ the table
def print_table(rows: list[Row]) -> None:
    header = ("section", "case", "variant", "device", "result", "vs baseline", "vs paper's code", "agreement", "note")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r.section} | {r.case} | {r.variant} | {r.device} | {r.value} | {r.ratio} | {r.paper} "
            f"| {r.agreement} | {r.note} |"
        )


def gpu_recipes() -> dict[str, Any]:
    import gpu_training

    return gpu_training.RECIPES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per variant (median)")
    parser.add_argument("--whole-repeats", type=int, default=3, help="fresh processes per variant and case")
    parser.add_argument("--x2", help="x2 checkpoint (default: shipped x2, else random weights)")
    parser.add_argument("--x4", help="x4 checkpoint (default: shipped x4, else random weights)")
    parser.add_argument("--data-dir", default="/tmp/irn_bench_pngs", help="where the data section writes PNGs")
    parser.add_argument("--json", help="also write the rows as JSON here")
    gpu = parser.add_argument_group("gpu section", "the trainer's GPU recipes through irn train (gpu_training.py)")
    gpu.add_argument("--gpu-scales", nargs="+", type=int, choices=(2, 4), default=[2, 4])
    gpu.add_argument(
        "--gpu-recipes",
        nargs="+",
        choices=list(gpu_recipes()),
        default=list(gpu_recipes()),
        help="fp32 always runs first (the baseline)",
    )
    gpu.add_argument("--gpu-steps", type=int, default=1000, help="training steps per recipe")
    gpu.add_argument("--gpu-warmup", type=int, default=100, help="steps before the timed windows")
    gpu.add_argument("--gpu-device", choices=("cuda", "cpu"), default="cuda", help="cpu: a (slow) smoke run")
    gpu.add_argument("--train-dir", help="training images (default: PNGs written to --data-dir)")
    gpu.add_argument("--val-dir", help="validation images for the quality figure, e.g. Set5/HR (default: none)")
    parser.add_argument(
        "--paper-code",
        metavar="DIR",
        help="a checkout of the paper's code (github.com/pkuxmq/Invertible-Image-Rescaling): time it in the "
        "same run as the anchor of inference, whole and training",
    )
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "SCALE", "H", "W"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.paper = load_paper_code(args.paper_code) if args.paper_code else None
    if args.child:
        args.child_variant, args.child_scale = args.child[0], int(args.child[1])
        args.child_size = (int(args.child[2]), int(args.child[3]))
        child(args)
        return 0
    if args.quick:
        args.repeats, args.whole_repeats = 1, 1
    print(f"machine: {machine()}", flush=True)
    rows: list[Row] = []
    benches = {
        "inference": bench_inference,
        "whole": bench_whole,
        "training": bench_training,
        "gpu": bench_gpu,
        "data": bench_data,
        "tiling": bench_tiling,
    }
    for name in SECTIONS:
        if name in args.only:
            t0 = time.perf_counter()
            new = benches[name](args)
            rows += new
            print(f"[{name}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
            for r in new:
                print(
                    f"  {r.case} | {r.variant} | {r.value} | {r.ratio} | {r.paper} | {r.agreement}",
                    file=sys.stderr,
                    flush=True,
                )
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
