"""``irn models``: every model name irn knows (shipped, and pretrained ones downloaded on first use)
with its architecture, scale, purpose, recommended latent, licence, source, size and whether it is on
this machine; ``--architectures``: the registry of architectures those names and any file load as.

The model table is the catalogue (:mod:`irn.zoo.catalogue`, plain data): it is printed without
importing torch. ``--architectures`` reads the registry (:mod:`irn.zoo.registry`), which does.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

HELP = "list the model names (shipped and downloadable) and the architectures irn loads"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the table as JSON on stdout (for machines)")
    parser.add_argument(
        "--architectures",
        action="store_true",
        help="list the registry of architectures instead (what each is, how its official files are recognised)",
    )


def _json(doc: Any) -> str:
    # irn's JSON rule (irn.imaging.io.json_text: strict JSON) on plain values, without importing torch
    return json.dumps(doc, indent=2, allow_nan=False)


def _size(count: int | None) -> str:
    from irn.zoo.transfer import format_bytes

    return format_bytes(count) if count is not None else "?"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    ]
    return "\n".join(lines)


def model_rows() -> list[dict[str, Any]]:
    """One dict per model name (what ``--json`` prints)."""
    from irn.zoo.catalogue import CATALOGUE, local_path, size_of, status

    rows = []
    for entry in CATALOGUE:
        remote = entry.remote
        local = local_path(entry)
        rows.append(
            {
                "name": entry.name,
                "arch": entry.arch,
                "scale": entry.scale,
                "purpose": entry.purpose,
                "latent": entry.latent,
                "licence": entry.licence,
                "source": entry.source,
                "file": entry.file,
                "size": size_of(entry),
                "status": status(entry),
                "path": str(local) if local is not None else None,
                "url": remote.url if remote is not None else None,
                "repo": remote.repo if remote is not None else None,
                "commit": remote.commit if remote is not None else None,
                "repo_path": remote.path if remote is not None else None,
                "blob_sha1": remote.blob_sha1 if remote is not None else None,
                "note": entry.note,
            }
        )
    return rows


def architecture_rows() -> list[dict[str, Any]]:
    """One dict per registered architecture (what ``--architectures --json`` prints)."""
    from irn.zoo.registry import ARCHITECTURES

    return [
        {
            "name": a.name,
            "title": a.title,
            "role": a.role,
            "latent": a.latent,
            "channels": a.channels,
            "official_keys": a.keys,
            "onnx": a.onnx,
            "onnx_reason": a.onnx_reason or None,
            "lr_formats": list(a.lr_formats),
            "licence": a.licence,
            "origin": a.origin,
        }
        for a in ARCHITECTURES
    ]


def run(args: argparse.Namespace) -> int:
    if args.architectures:
        rows = architecture_rows()
        if args.json:
            print(_json({"architectures": rows}))
            return 0
        header = ["ARCH", "ROLE", "LATENT", "ONNX", "WHAT", "OFFICIAL FILES"]
        table = [
            [r["name"], r["role"], r["latent"], "yes" if r["onnx"] else "no", r["title"], r["official_keys"]]
            for r in rows
        ]
        print(_table(header, table))
        return 0
    from irn.zoo.catalogue import models_dir

    rows = model_rows()
    if args.json:
        print(_json({"cache": str(models_dir()), "models": rows}))
        return 0
    header = ["NAME", "ARCH", "SCALE", "PURPOSE", "LATENT", "LICENCE", "SOURCE", "SIZE", "STATUS"]
    table = [
        [
            r["name"],
            r["arch"],
            f"x{r['scale']}",
            r["purpose"],
            r["latent"],
            r["licence"],
            f"{r['repo']}@{r['commit'][:7]}" if r["repo"] else "irn (checkpoints/)",
            _size(r["size"]),
            r["status"],
        ]
        for r in rows
    ]
    print(_table(header, table))
    print(
        f"irn models: downloaded models are kept in {models_dir()} (IRN_HOME sets the cache folder); a name is "
        "downloaded and checked against its pinned git blob sha1 on first use (irn.load(NAME), --model NAME)",
        file=sys.stderr,
    )
    return 0
