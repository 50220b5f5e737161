"""Deployment (issue 20): the light ONNX runtime against irn's torch path, in one run.

    python benchmarks/deploy.py [--model x2] [--size 512] [--reps 5] [--rounds 3] [--threads 1]
                                [--onnx DIR] [--json benchmarks/results/s12_deploy.json]

- Speed: downscale then upscale (z = 0) of one smooth RGB image of SIZE x SIZE, in fresh processes
  (torch: ``irn.load(MODEL)``, the fast CPU path; ONNX: ``irn.onnx.load(DIR)``), alternating the two
  for ROUNDS rounds of REPS timed repetitions after a warm-up; the figure is the median, the ratio
  ONNX / torch.
- Peak memory: each process's peak resident set (``ru_maxrss``) after its work, and what importing
  its runtime alone costs.
- Outputs: the largest difference between the two LR and HR results (same input, z = 0).
- Install size: the files of every distribution needed, from this environment's package records:
  ``pip install irn`` (irn's requirements, recursively) against the light runtime (onnxruntime,
  numpy, Pillow and their requirements; irn's own files counted in both).

Without ``--onnx``, the model is exported first (``irn.onnx.export.export_onnx``; a minute or two).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, resource, sys, time
import numpy as np
kind, model_name, out = sys.argv[1], sys.argv[2], sys.argv[6]
size, reps, threads = (int(v) for v in sys.argv[3:6])
rng = np.random.default_rng(0)
low = rng.random((3, size // 16, size // 16)).astype(np.float32)
img = np.kron(low, np.ones((16, 16), np.float32))[None]  # smooth enough, and the same in both
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if kind == "torch":
    import torch, irn
    torch.set_num_threads(threads)
    model = irn.load(model_name)
    x = torch.from_numpy(img)
    def work():
        with torch.inference_mode():
            lr = model.downscale(x)
            hr = model.upscale(lr, z="zero")
        return lr.numpy(), hr.numpy()
else:
    from irn import onnx
    model = onnx.load(model_name, threads=threads)
    def work():
        lr = model.downscale(img)
        return lr, model.upscale(lr, z="zero")
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lr, hr = work()
times = []
for _ in range(reps):
    t = time.perf_counter(); work(); times.append(time.perf_counter() - t)
np.save(out + "_lr.npy", lr); np.save(out + "_hr.npy", hr)
print(json.dumps({"times": times, "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rss_after_load_kib": rss_import, "rss_start_kib": rss0}))
"""


def run_worker(kind: str, model: str, size: int, reps: int, threads: int, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, kind, model, str(size), str(reps), str(threads), str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise SystemExit(f"deploy: the {kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _name(requirement: str) -> str | None:
    if ";" in requirement and "extra ==" in requirement.split(";", 1)[1]:
        return None  # an optional extra's requirement
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement)
    return match.group(1) if match else None


def closure(roots: list[str]) -> set[str]:
    """The distributions ``roots`` need, recursively, among those installed here (normalised names)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [n for r in dist.requires or [] if (n := _name(r))]
    return seen


def installed_bytes(names: set[str]) -> int:
    total = 0
    for name in names:
        dist = metadata.distribution(name)
        for f in dist.files or []:
            path = Path(dist.locate_file(f))
            if path.is_file():
                total += path.stat().st_size
    return total


def irn_own_bytes() -> int:
    return sum(p.stat().st_size for p in (REPO / "irn").rglob("*.py"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="x2")
    p.add_argument("--onnx", type=Path, default=None, help="an existing ONNX export of --model")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="irn-deploy-") as tmp:
        folder = args.onnx
        if folder is None:
            import irn
            from irn.onnx.export import export_onnx

            folder = Path(tmp) / "onnx"
            export_onnx(irn.load(args.model), folder)
        results: dict[str, list[dict]] = {"torch": [], "onnx": []}
        for _ in range(args.rounds):
            for kind, model in (("torch", args.model), ("onnx", str(folder))):
                results[kind].append(run_worker(kind, model, args.size, args.reps, args.threads, Path(tmp) / kind))
        import numpy as np

        diff_lr = float(np.abs(np.load(Path(tmp) / "torch_lr.npy") - np.load(Path(tmp) / "onnx_lr.npy")).max())
        diff_hr = float(np.abs(np.load(Path(tmp) / "torch_hr.npy") - np.load(Path(tmp) / "onnx_hr.npy")).max())
    med = {k: statistics.median(t for r in v for t in r["times"]) for k, v in results.items()}
    peak = {k: max(r["peak_rss_kib"] for r in v) / 1024 for k, v in results.items()}
    load = {k: max(r["rss_after_load_kib"] for r in v) / 1024 for k, v in results.items()}
    full = closure(["irn"])
    light = closure(["onnxruntime", "numpy", "pillow"]) | {"irn"}
    size_full = installed_bytes(full - {"irn"}) + irn_own_bytes()
    size_light = installed_bytes(light - {"irn"}) + irn_own_bytes()
    report = {
        "command": "python benchmarks/deploy.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": args.model,
        "image": f"{args.size}x{args.size}",
        "threads": args.threads,
        "median_seconds": med,
        "ratio_onnx_over_torch": med["onnx"] / med["torch"],
        "peak_rss_mib": peak,
        "rss_after_loading_mib": load,
        "max_abs_diff": {"lr": diff_lr, "hr": diff_hr},
        "install_bytes": {"pip install irn": size_full, "light runtime": size_light},
        "install_distributions": {"pip install irn": sorted(full), "light runtime": sorted(light)},
    }
    print(f"deploy: {args.model} down + up (z = 0) of a {args.size}x{args.size} image, {args.threads} thread(s)")
    ratio = med["onnx"] / med["torch"]
    print(f"  median time   torch {med['torch']:.3f} s   onnx {med['onnx']:.3f} s   ratio {ratio:.2f}")
    print(f"  peak RSS      torch {peak['torch']:.0f} MiB   onnx {peak['onnx']:.0f} MiB")
    print(f"  after loading torch {load['torch']:.0f} MiB   onnx {load['onnx']:.0f} MiB")
    print(f"  max |diff|    LR {diff_lr:.2e}   HR {diff_hr:.2e}")
    print(
        f"  install size  pip install irn {size_full / 1e6:.0f} MB ({len(full)} distributions)   "
        f"light runtime {size_light / 1e6:.0f} MB ({len(light)})"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
