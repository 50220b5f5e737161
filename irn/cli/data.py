"""``irn data``: list the known datasets and where they go; download, verify and extract them.

irn data list [--root datasets]
irn data download div2k [--root datasets] [--parts train_hr,valid_hr|all] [--base-url URL]
irn data download URL.zip --sha256 HEX [--root DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "List, download, verify and extract datasets (DIV2K) into datasets/."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser(
        "list", help="show the known datasets, where they go and what is there", description="Show the known datasets."
    )
    listing.add_argument("--root", type=Path, default=Path("datasets"), help="datasets folder (default: datasets)")

    download = actions.add_parser(
        "download",
        help="download, verify and extract a dataset",
        description=(
            "Download a dataset's archives (resuming a partial download), verify their checksums and "
            "extract them, refusing any archive member that would land outside the target folder."
        ),
    )
    download.add_argument(
        "dataset",
        help="a dataset name from `irn data list` (div2k), or the http(s) URL of a zip archive "
        "(then --sha256 or --md5 is required and it is extracted into --root)",
    )
    download.add_argument("--root", type=Path, default=Path("datasets"), help="datasets folder (default: datasets)")
    download.add_argument(
        "--parts",
        default=None,
        help="comma-separated archive parts, or 'all' (default for div2k: train_hr,valid_hr; see `irn data list`)",
    )
    download.add_argument(
        "--base-url",
        default=None,
        help="mirror serving the same archive files (default: $IRN_DIV2K_BASE_URL, else the official site)",
    )
    checksum = download.add_mutually_exclusive_group()
    checksum.add_argument("--sha256", default=None, help="expected SHA-256 of an archive given by URL")
    checksum.add_argument("--md5", default=None, help="expected MD5 of an archive given by URL")
    download.add_argument(
        "--retries", type=int, default=3, help="automatic resumes after a dropped connection (default: 3)"
    )
    download.add_argument("--timeout", type=float, default=60.0, help="seconds to wait on the network (default: 60)")
    download.add_argument(
        "--keep-archives", action="store_true", help="keep the zip files after extraction (default: delete them)"
    )
    download.add_argument("--force", action="store_true", help="extract again even if already extracted")
    download.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "list":
        return _run_list(args.root)
    return _run_download(args)


def _run_list(root: Path) -> int:
    from irn.datasets.download import archive_status
    from irn.datasets.registry import DATASETS, MANUAL_DATASETS, count_images
    from irn.datasets.transfer import format_bytes

    for spec in DATASETS.values():
        mirror = os.environ.get(spec.env_var)
        print(f"{spec.name}  {spec.title}")
        print(f"  source: {mirror + '  (from $' + spec.env_var + ')' if mirror else spec.base_url}")
        print(f"  checksums: {spec.checksum_source}")
        print(f"  {'part':<13} {'archive':<31} {'size':>9}  {'extracts to':<52} status")
        for archive in spec.archives:
            default = "*" if archive.part in spec.default_parts else " "
            destination = f"{root / spec.folder / archive.contents}/ ({archive.num_images} PNG)"
            size = format_bytes(archive.size) if archive.size is not None else "?"
            status = archive_status(spec, archive, root)
            print(f"  {archive.part + default:<13} {archive.filename:<31} {size:>9}  {destination:<52} {status}")
        print(f"  (* downloaded by default: irn data download {spec.name} --root {root})")
    for manual in MANUAL_DATASETS:
        folder = root / manual.folder
        found = count_images(folder)
        status = f"present ({found} PNG)" if found else "missing"
        print(f"{manual.name}  {manual.description}: prepare by hand into {folder}/  [{status}]")
        print(f"  source: {manual.source}")
    return 0


def _run_download(args: argparse.Namespace) -> int:
    from irn.datasets.download import download_dataset, download_url
    from irn.datasets.registry import Checksum
    from irn.datasets.transfer import FetchOptions
    from irn.errors import IRNError
    from irn.imaging.io import check_output_path

    if args.retries < 0:
        raise IRNError("--retries must be 0 or more")
    if not args.timeout > 0:  # NaN too
        raise IRNError("--timeout must be positive")
    check_output_path(args.root, "--root", folder=True)
    options = FetchOptions(
        retries=args.retries,
        timeout=args.timeout,
        keep_archive=args.keep_archives,
        force=args.force,
        progress=not args.quiet,
    )
    if "://" in args.dataset:
        if args.parts is not None or args.base_url is not None:
            raise IRNError("--parts and --base-url apply to a named dataset, not to an archive given by URL")
        if args.sha256 is None and args.md5 is None:
            raise IRNError(
                f"give --sha256 or --md5 for {args.dataset}: an archive from a URL is only extracted once verified"
            )
        checksum = Checksum("sha256", args.sha256.lower()) if args.sha256 else Checksum("md5", args.md5.lower())
        results = [download_url(args.dataset, args.root, checksum, options=options)]
    else:
        if args.sha256 is not None or args.md5 is not None:
            raise IRNError(
                f"{args.dataset}'s checksums are pinned in irn; --sha256/--md5 are for an archive given by URL"
            )
        results = download_dataset(args.dataset, args.root, parts=args.parts, base_url=args.base_url, options=options)
    for result in results:
        print(f"{result.archive.name}: {result.status} into {result.folder}")
    return 0
