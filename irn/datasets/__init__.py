"""Datasets: the registry of benchmark/training sets and resumable, verified downloads.

- :mod:`.registry`: what can be fetched (dataset and archive specs, pinned checksums, DIV2K)
- :mod:`.transfer`: checksum verification, on irn's one resumable downloader (:mod:`irn.zoo.transfer`)
- :mod:`.archive`: zip extraction that refuses members landing outside the target folder
- :mod:`.download`: the flow for one archive or dataset (:func:`fetch_archive`,
  :func:`download_dataset`, :func:`download_url`) and what is on disk (:func:`archive_status`)

The public names of all four are importable from here too (``irn.download``, the older flat
name, points at this package).
"""

from irn.datasets.archive import (
    IN_PROGRESS_PREFIX,
    MARKER_PREFIX,
    UnsafeArchiveError,
    check_replacements,
    extract_zip,
    in_progress_path,
    marker_path,
    plan_extraction,
    read_marker,
)
from irn.datasets.download import (
    FetchResult,
    archive_name_from_url,
    archive_status,
    download_dataset,
    download_url,
    fetch_archive,
)
from irn.datasets.registry import (
    DATASETS,
    DIV2K,
    MANUAL_DATASETS,
    ArchiveSpec,
    Checksum,
    DatasetSpec,
    ManualDataset,
    count_images,
    get_dataset,
    parse_parts,
)
from irn.datasets.transfer import (
    CHUNK_BYTES,
    NETWORK_CHUNK_BYTES,
    USER_AGENT,
    ChecksumError,
    DownloadError,
    FetchOptions,
    check_found_file,
    download_file,
    file_digest,
    format_bytes,
    free_name,
    part_path,
    verify_checksum,
)

__all__ = [
    "CHUNK_BYTES",
    "DATASETS",
    "DIV2K",
    "IN_PROGRESS_PREFIX",
    "MANUAL_DATASETS",
    "MARKER_PREFIX",
    "NETWORK_CHUNK_BYTES",
    "USER_AGENT",
    "ArchiveSpec",
    "Checksum",
    "ChecksumError",
    "DatasetSpec",
    "DownloadError",
    "FetchOptions",
    "FetchResult",
    "ManualDataset",
    "UnsafeArchiveError",
    "archive_name_from_url",
    "archive_status",
    "check_found_file",
    "check_replacements",
    "count_images",
    "download_dataset",
    "download_file",
    "download_url",
    "extract_zip",
    "fetch_archive",
    "file_digest",
    "format_bytes",
    "free_name",
    "get_dataset",
    "in_progress_path",
    "marker_path",
    "parse_parts",
    "part_path",
    "plan_extraction",
    "read_marker",
    "verify_checksum",
]
