"""Data set files: fetching (mirrors, streaming download, md5 checks) and reading formats.

Every file a data set needs is named with the md5 its publisher gives. A file already on disk is
verified once per process; a missing one is streamed from each mirror in turn into a temporary
file in the destination directory, hashed while it streams, and renamed into place only when its
md5 matches, so a partial or corrupt download never takes the final name.

The formats read here are gzipped IDX (MNIST, Fashion-MNIST) and CIFAR-10's binary archive.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import math
import os
import struct
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from pathlib import PurePosixPath

import numpy as np

from dltune._imports import require
from dltune.exceptions import DLTuneError

__all__ = [
    "CIFAR10_ARCHIVE",
    "IDX_IMAGES",
    "IDX_LABELS",
    "MIRROR_ENV",
    "DatasetError",
    "ensure_files",
    "file_md5",
    "file_urls",
    "read_cifar10_archive",
    "read_idx",
    "read_idx_pair",
]

logger = logging.getLogger(__name__)

#: Environment variable naming a base URL tried before a data set's own mirrors. It serves the
#: layout of a data directory: ``$DLTUNE_DATA_MIRROR/<data set>/<file>``.
MIRROR_ENV = "DLTUNE_DATA_MIRROR"

#: Seconds to wait for a server to connect or to send the next block.
TIMEOUT_SECONDS = 60.0

_CHUNK_BYTES = 1 << 20

# (path, size, mtime_ns) -> md5 hex of files already hashed in this process.
_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


class DatasetError(DLTuneError):
    """A data set cannot be loaded: files missing, a download failed, or a file is corrupt.

    Example:
        >>> from dltune.torch.datasets import DatasetError
        >>> issubclass(DatasetError, DLTuneError)
        True
    """


class _ChecksumMismatch(DatasetError):
    pass


def file_md5(path: Path) -> str:
    """The md5 hex digest of a file, computed once per process for an unchanged file.

    Args:
        path: The file to hash.

    Returns:
        The lowercase hex digest.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = Path(tmp) / "a.txt"
        ...     _ = p.write_bytes(b"abc")
        ...     file_md5(p)
        '900150983cd24fb0d6963f7d28e17f72'
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(key)
    if known is not None:
        return known
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while block := stream.read(_CHUNK_BYTES):
            digest.update(block)
    hexdigest = digest.hexdigest()
    with _verified_lock:
        _verified[key] = hexdigest
    return hexdigest


def file_urls(dataset: str, filename: str, mirrors: Sequence[str]) -> list[str]:
    """The URLs to try for one file, in order: ``$DLTUNE_DATA_MIRROR`` first, then ``mirrors``.

    Args:
        dataset: The data set's name (the folder under ``$DLTUNE_DATA_MIRROR``).
        filename: The file's name.
        mirrors: Base URLs, each serving the data set's files directly.

    Example:
        >>> file_urls("mnist", "a.gz", ["https://example.org/mnist/"])
        ['https://example.org/mnist/a.gz']
    """
    urls = []
    env = os.environ.get(MIRROR_ENV, "").strip()
    if env:
        urls.append(f"{env.rstrip('/')}/{dataset}/{filename}")
    urls.extend(f"{mirror.rstrip('/')}/{filename}" for mirror in mirrors)
    return urls


def ensure_files(
    dataset: str,
    directory: Path,
    files: Mapping[str, str],
    mirrors: Sequence[str],
    *,
    download: bool,
    progress: bool,
) -> None:
    """Make sure each of ``files`` is in ``directory`` with its md5, downloading what is missing.

    Args:
        dataset: The data set's name, for messages and the ``$DLTUNE_DATA_MIRROR`` layout.
        directory: Where the files live (created when a download starts).
        files: File name -> expected md5 hex digest.
        mirrors: Base URLs tried in order after ``$DLTUNE_DATA_MIRROR``.
        download: Fetch missing files; ``False`` raises instead.
        progress: Show a progress bar on stderr while downloading (else log at INFO).

    Raises:
        DatasetError: A file on disk has the wrong md5, a file is missing and ``download`` is
            ``False`` or no mirror could deliver it, or a download's md5 does not match.
    """
    missing = []
    for filename, expected in files.items():
        path = directory / filename
        if not path.is_file():
            missing.append(filename)
            continue
        actual = file_md5(path)
        if actual != expected:
            raise DatasetError(
                f"data set {dataset!r}: {path} is corrupt or incomplete: its md5 is {actual}, "
                f"expected {expected}; delete it and load {dataset!r} again to download it "
                f"afresh, or fetch it by hand from "
                f"{' or '.join(file_urls(dataset, filename, mirrors))}"
            )
    if not missing:
        return
    if not download:
        raise DatasetError(
            _missing_message(
                dataset,
                directory,
                files,
                missing,
                mirrors,
                "they are missing and download=False (pass download=True to fetch them)",
            )
        )
    for filename in missing:
        _fetch(dataset, directory, filename, files[filename], mirrors, files, progress)


def _fetch(
    dataset: str,
    directory: Path,
    filename: str,
    expected: str,
    mirrors: Sequence[str],
    files: Mapping[str, str],
    progress: bool,
) -> None:
    """Download one file from the first URL that delivers it with the right md5."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"data set {dataset!r}: cannot create the data directory {directory}: {exc}; "
            "choose another data_dir"
        ) from exc
    failures: list[str] = []
    mismatch: _ChecksumMismatch | None = None
    for url in file_urls(dataset, filename, mirrors):
        try:
            _download(url, directory / filename, expected, progress)
            return
        except _ChecksumMismatch as exc:
            logger.warning("%s", exc)
            mismatch = mismatch or exc
            failures.append(str(exc))
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # it holds the response open
            reason = getattr(exc, "reason", None) or exc
            logger.warning("downloading %s failed: %s", url, reason)
            failures.append(f"{url}: {reason}")
    if mismatch is not None:
        others = [f for f in failures if f != str(mismatch)]
        raise DatasetError(str(mismatch) + ("; also " + "; ".join(others) if others else ""))
    raise DatasetError(
        _missing_message(
            dataset,
            directory,
            files,
            [name for name in files if not (directory / name).is_file()],
            mirrors,
            f"downloading {filename!r} failed ({'; '.join(failures)})",
        )
    )


def _download(url: str, dest: Path, expected: str, progress: bool) -> None:
    """Stream ``url`` into a temporary file beside ``dest``, check its md5, rename it."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "dltune"})
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with _reporter(url, dest, total, progress) as advance:
                    while block := response.read(_CHUNK_BYTES):
                        digest.update(block)
                        out.write(block)
                        advance(len(block))
        actual = digest.hexdigest()
        if actual != expected:
            raise _ChecksumMismatch(
                f"checksum mismatch for {url}: expected md5 {expected}, got {actual}; the "
                f"download was deleted and nothing was saved to {dest}"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    stat = dest.stat()
    with _verified_lock:
        _verified[(str(dest.resolve()), stat.st_size, stat.st_mtime_ns)] = expected
    logger.info("downloaded %s (%d bytes) to %s", url, stat.st_size, dest)


@contextlib.contextmanager
def _reporter(
    url: str, dest: Path, total: int | None, progress: bool
) -> Iterator[Callable[[int], None]]:
    """Progress of one download: a rich bar on stderr, or an INFO log line."""
    if not progress:
        size = f"{total} bytes" if total is not None else "unknown size"
        logger.info("downloading %s (%s) to %s", url, size, dest)
        yield lambda n: None
        return
    feature = "download progress bars"
    rich_progress = require("rich.progress", extra="torch", feature=feature)
    rich_console = require("rich.console", extra="torch", feature=feature)
    with rich_progress.Progress(
        rich_progress.TextColumn("{task.description}"),
        rich_progress.BarColumn(),
        rich_progress.DownloadColumn(),
        rich_progress.TransferSpeedColumn(),
        rich_progress.TimeRemainingColumn(),
        console=rich_console.Console(stderr=True),
    ) as bar:
        task = bar.add_task(f"downloading {dest.name}", total=total)
        yield lambda n: bar.advance(task, n)


def _missing_message(
    dataset: str,
    directory: Path,
    files: Mapping[str, str],
    missing: Sequence[str],
    mirrors: Sequence[str],
    cause: str,
) -> str:
    lines = [
        f"data set {dataset!r} needs {len(missing)} file(s) in {directory}, and {cause}. "
        "Fetch them and put them in that directory:"
    ]
    for filename in missing:
        urls = " or ".join(file_urls(dataset, filename, mirrors))
        lines.append(f"  {filename} (md5 {files[filename]}) from {urls}")
    lines.append(
        f"or set {MIRROR_ENV} to a base URL that serves <base>/{dataset}/<file>, "
        "then load the data set again"
    )
    return "\n".join(lines)


# --- file formats ---------------------------------------------------------------------------

IDX_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions
IDX_LABELS = 0x00000801  # unsigned bytes, 1 dimension


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (the MNIST format).

    Args:
        path: The ``.gz`` file.
        magic: The expected magic number: :data:`IDX_IMAGES` or :data:`IDX_LABELS`.

    Returns:
        The array, shaped as the header says (read-only: a view of the file's bytes).

    Raises:
        DatasetError: Naming the file, when it is not gzip, has another magic number, or is
            shorter or longer than its header says.
    """
    try:
        with gzip.open(path, "rb") as stream:
            header = stream.read(4)
            if len(header) < 4:
                raise DatasetError(f"{path} is not an IDX file: it ends within its magic number")
            found = int.from_bytes(header, "big")
            if found != magic:
                raise DatasetError(
                    f"{path} is corrupt or not this kind of IDX file: magic number "
                    f"0x{found:08x}, expected 0x{magic:08x}; delete it and load again"
                )
            n_dims = magic & 0xFF
            raw_dims = stream.read(4 * n_dims)
            if len(raw_dims) < 4 * n_dims:
                raise DatasetError(f"{path} is truncated: it ends within its header")
            dims = struct.unpack(f">{n_dims}I", raw_dims)
            size = math.prod(dims)
            data = stream.read(size)
            if len(data) < size:
                raise DatasetError(
                    f"{path} is truncated: its header promises {size} bytes of data "
                    f"(shape {dims}), it holds {len(data)}"
                )
            if stream.read(1):
                raise DatasetError(f"{path} is corrupt: it holds more data than its header says")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is not a readable gzip file ({exc}); delete it") from exc
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, H, W)`` and labels ``(N,)`` from two gzipped IDX files of one split."""
    x = read_idx(images, IDX_IMAGES)
    y = read_idx(labels, IDX_LABELS)
    if len(x) != len(y):
        raise DatasetError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    return x, y


CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
_CIFAR_FOLDER = "cifar-10-batches-bin"
_CIFAR_TRAIN = tuple(f"{_CIFAR_FOLDER}/data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = f"{_CIFAR_FOLDER}/test_batch.bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the red, green and blue planes


def read_cifar10_archive(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, x_test, y_test)`` from ``cifar-10-binary.tar.gz``, read without extracting.

    The five training batches are concatenated in order; a batch may hold any whole number of
    records. The archive is refused whole if any member's path is absolute or has ``..``.

    Raises:
        DatasetError: Naming the archive, for an unreadable archive, an unsafe or missing
            member, or a batch that is not whole records.
    """
    wanted = {*_CIFAR_TRAIN, _CIFAR_TEST}
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = _safe_member_name(path, member.name)
                if name not in wanted:
                    continue
                stream = archive.extractfile(member) if member.isfile() else None
                if stream is None:
                    raise DatasetError(f"{path}: member {member.name!r} is not a regular file")
                with stream:
                    blobs[name] = stream.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path} is not a readable .tar.gz archive ({exc}); delete it") from exc
    missing = sorted(wanted - blobs.keys())
    if missing:
        raise DatasetError(f"{path} lacks the member(s) {', '.join(missing)}")
    train = [_cifar_records(path, name, blobs[name]) for name in _CIFAR_TRAIN]
    x_test, y_test = _cifar_records(path, _CIFAR_TEST, blobs[_CIFAR_TEST])
    x = np.concatenate([batch[0] for batch in train])
    y = np.concatenate([batch[1] for batch in train])
    return x, y, x_test, y_test


def _safe_member_name(archive: Path, name: str) -> str:
    """The member's path without a leading ``./``; refuses absolute paths and ``..``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise DatasetError(
            f"{archive}: refusing the archive: member {name!r} points outside its folder "
            "(an absolute path or '..'); it is not the published file, delete it"
        )
    return pure.as_posix()


def _cifar_records(archive: Path, name: str, blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    if not blob or len(blob) % _CIFAR_RECORD:
        raise DatasetError(
            f"{archive}: member {name} has {len(blob)} bytes, not a whole number of "
            f"{_CIFAR_RECORD}-byte records (1 label byte and 3x32x32 pixels)"
        )
    records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0]
