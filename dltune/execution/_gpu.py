"""GPUs for local workers: which ones (given or detected), and a lease per GPU.

Each worker process of a GPU run sees exactly one GPU: it starts with ``CUDA_VISIBLE_DEVICES``
set to its GPU's id, so CUDA inside it knows that device as ``cuda:0``. A lease (an exclusive
``flock`` on one small file per GPU in a per-user runtime directory) makes sure one process at
a time trains on a GPU, across separate ``dltune`` runs on the same machine too. The kernel
drops the lock when its holders die, so a crashed run never leaves a GPU taken. This module
neither imports torch nor initialises CUDA.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path

from dltune.exceptions import DLTuneError

__all__ = [
    "AUTO",
    "GPU_ENV",
    "GPUError",
    "GPULease",
    "LEASE_DIR_ENV",
    "NVIDIA_SMI_COMMAND",
    "detect_gpus",
    "gpu_label",
    "lease_dir",
    "resolve_gpus",
]

_logger = logging.getLogger(__name__)

#: The ``gpus`` value that detects the GPUs.
AUTO = "auto"
#: The variable CUDA reads to know which devices a process may see.
GPU_ENV = "CUDA_VISIBLE_DEVICES"
#: Overrides where the GPU leases live (a local directory: leases are per machine).
LEASE_DIR_ENV = "DLTUNE_GPU_LEASE_DIR"
#: How the GPUs are listed when ``CUDA_VISIBLE_DEVICES`` is not set.
NVIDIA_SMI_COMMAND = ("nvidia-smi", "--query-gpu=index", "--format=csv,noheader")
DETECT_TIMEOUT_SECONDS = 10.0
_UUID = re.compile(r"(GPU|MIG)-[0-9A-Za-z/-]+")
_ACCEPTED = (
    "'auto', a comma-separated string such as '0,1', or a sequence of GPU indices (ints >= 0) "
    "or GPU UUIDs ('GPU-...')"
)


class GPUError(DLTuneError, RuntimeError):
    """No GPU was found for ``gpus='auto'``, or the GPU leases cannot be kept."""


def gpu_label(gpu: str) -> str:
    """How messages name a GPU.

    Example:
        >>> gpu_label("1"), gpu_label("GPU-8932f937")
        ('GPU 1', 'GPU-8932f937')
    """
    return f"GPU {gpu}" if gpu.isdigit() else gpu


def _one_id(item: object, given: object) -> str:
    if isinstance(item, bool) or not isinstance(item, int | str):
        raise TypeError(f"gpus={given!r} holds {item!r}; accepted: {_ACCEPTED}")
    text = str(item).strip()
    if text.isdigit() and text.isascii():
        return str(int(text))
    if _UUID.fullmatch(text):
        return text
    raise ValueError(
        f"gpus={given!r} holds {item!r}, which is not a GPU id; accepted: {_ACCEPTED}"
    )


def resolve_gpus(gpus: str | Sequence[int | str]) -> tuple[str, ...]:
    """Check ``gpus`` and return the GPU ids, detecting them for ``'auto'``.

    Args:
        gpus: ``'auto'`` (see :func:`detect_gpus`), a comma-separated string (``'0,1'``, as
            given to ``--gpus``) or a sequence of indices (``[0, 1]``, ``['0', '1']``) or GPU
            UUIDs (``'GPU-...'``).

    Returns:
        The ids as ``CUDA_VISIBLE_DEVICES`` takes them (indices as plain digits), in order.

    Raises:
        TypeError: If ``gpus`` is neither a string nor a sequence of ints and strings.
        ValueError: For an empty list, an id that is no index or UUID, or an id given twice.
        GPUError: If ``'auto'`` finds no GPU.

    Example:
        >>> resolve_gpus("0, 2")
        ('0', '2')
        >>> resolve_gpus([1, "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"])
        ('1', 'GPU-8932f937-d72c-4106-c12f-20bd9faed9f6')
    """
    if isinstance(gpus, str):
        if gpus.strip().lower() == AUTO:
            return detect_gpus()
        items: Sequence[object] = gpus.split(",")
    elif isinstance(gpus, Sequence):
        items = gpus
    else:
        raise TypeError(f"gpus={gpus!r} is not accepted; pass {_ACCEPTED}")
    ids = [_one_id(item, gpus) for item in items]
    if not ids:
        raise ValueError(f"gpus={gpus!r} names no GPU; pass {_ACCEPTED}, or None for no GPU")
    seen: set[str] = set()
    for gpu in ids:
        if gpu in seen:
            raise ValueError(f"gpus={gpus!r} names GPU {gpu!r} twice; list each GPU once")
        seen.add(gpu)
    return tuple(ids)


def _visible_ids(value: str) -> list[str]:
    """The devices ``CUDA_VISIBLE_DEVICES=value`` shows: CUDA stops at the first bad entry."""
    ids: list[str] = []
    for entry in value.split(","):
        try:
            gpu = _one_id(entry, value)
        except ValueError:
            break
        if gpu in ids:
            break
        ids.append(gpu)
    return ids


def _no_gpu(how: str) -> GPUError:
    return GPUError(
        f"gpus='auto' found no GPU: {how}. Name the GPUs (--gpus 0,1), or drop --gpus "
        "(gpus=None) to run on the CPU"
    )


def _query_nvidia_smi(timeout_seconds: float) -> tuple[str, ...]:
    binary = shutil.which(NVIDIA_SMI_COMMAND[0])
    if binary is None:
        raise _no_gpu(f"{GPU_ENV} is not set and nvidia-smi is not on PATH")
    try:
        done = subprocess.run(
            [binary, *NVIDIA_SMI_COMMAND[1:]],
            capture_output=True,
            text=True,
            timeout=timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        command = " ".join(NVIDIA_SMI_COMMAND)
        raise _no_gpu(f"`{command}` did not answer in {timeout_seconds:g} s") from None
    except OSError as exc:
        raise _no_gpu(f"`{' '.join(NVIDIA_SMI_COMMAND)}` could not run ({exc})") from exc
    command = " ".join(NVIDIA_SMI_COMMAND)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise _no_gpu(f"`{command}` failed with code {done.returncode}: {' '.join(said)[:300]}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if not all(line.isdigit() for line in lines):
        raise _no_gpu(f"`{command}` printed {done.stdout[:200]!r}, not GPU indices")
    if not lines:
        raise _no_gpu(f"`{command}` listed no GPU")
    return tuple(str(int(line)) for line in lines)


def detect_gpus(
    environ: Mapping[str, str] | None = None,
    *,
    timeout_seconds: float = DETECT_TIMEOUT_SECONDS,
) -> tuple[str, ...]:
    """The GPUs this machine lets this process use, without importing torch.

    An existing ``CUDA_VISIBLE_DEVICES`` wins (a scheduler such as Slurm sets it): its ids, up to
    the first entry that is no GPU id (``-1`` hides every GPU, as in CUDA). Otherwise the
    indices ``nvidia-smi --query-gpu=index --format=csv,noheader`` lists.

    Args:
        environ: The environment to read (``os.environ`` by default).
        timeout_seconds: How long ``nvidia-smi`` may take.

    Returns:
        The GPU ids, in order.

    Raises:
        GPUError: If no GPU is found; the message says how it looked.

    Example:
        >>> detect_gpus({"CUDA_VISIBLE_DEVICES": "2,3"})
        ('2', '3')
    """
    environ = os.environ if environ is None else environ
    value = environ.get(GPU_ENV)
    if value is not None:
        ids = _visible_ids(value)
        if not ids:
            raise _no_gpu(f"{GPU_ENV}={value!r} hides every GPU")
        _logger.info("gpus='auto': %s from %s=%r", ", ".join(ids), GPU_ENV, value)
        return tuple(ids)
    ids = list(_query_nvidia_smi(timeout_seconds))
    _logger.info("gpus='auto': %s from nvidia-smi", ", ".join(ids))
    return tuple(ids)


def lease_dir() -> Path:
    """Where the GPU leases of this user live (created on first use, private to the user).

    Returns:
        ``$DLTUNE_GPU_LEASE_DIR`` if set, else ``$XDG_RUNTIME_DIR/dltune/gpus``, else
        ``<temp dir>/dltune-<uid>/gpus``: a local directory, as a lease is per machine.

    Example:
        >>> import os
        >>> os.environ["DLTUNE_GPU_LEASE_DIR"] = "/tmp/gpu-leases-doc"
        >>> str(lease_dir())
        '/tmp/gpu-leases-doc'
        >>> del os.environ["DLTUNE_GPU_LEASE_DIR"]
    """
    explicit = os.environ.get(LEASE_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "dltune" / "gpus"
    return Path(tempfile.gettempdir()) / f"dltune-{os.getuid()}" / "gpus"


def _private_parent(path: Path) -> None:
    """Make the temp folder's ``dltune-<uid>`` private; refuse one this user does not own."""
    parent = path.parent
    if not parent.name.startswith("dltune-") or parent.parent != Path(tempfile.gettempdir()):
        return
    parent.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise GPUError(
            f"the GPU lease directory's parent {str(parent)!r} is not a directory owned by this "
            f"user; remove it, or set {LEASE_DIR_ENV} to a private directory"
        )


def _ensure_dir(path: Path) -> None:
    try:
        _private_parent(path)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise GPUError(
            f"cannot use the GPU lease directory {str(path)!r} ({exc}); set {LEASE_DIR_ENV} to "
            "a writable local directory"
        ) from exc


class GPULease:
    """The right to train on one GPU of this machine, held by one process at a time.

    The lease is an exclusive ``flock`` on ``<lease_dir>/<host>-gpu-<id>.lock``, whose text
    names the holder (``host:pid``). The kernel releases it when every process holding the
    file closes it or dies, so a crash never leaves a GPU taken. A worker process started with
    the lease's file descriptor keeps the GPU taken for its whole life.

    Args:
        gpu: The GPU id (an index or UUID, as :func:`resolve_gpus` returns).
        directory: Where the lease files live (:func:`lease_dir` by default).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> mine, theirs = GPULease("0", folder), GPULease("0", folder)
        >>> mine.try_acquire(), theirs.try_acquire()
        (True, False)
        >>> theirs.holder() == f"{socket.gethostname()}:{os.getpid()}"
        True
        >>> mine.release()
        >>> theirs.try_acquire()
        True
        >>> theirs.release()
    """

    def __init__(self, gpu: str, directory: Path | None = None) -> None:
        self.gpu = gpu
        name = f"{socket.gethostname()}-gpu-{gpu.replace('/', '_')}.lock"
        self.path = (lease_dir() if directory is None else directory) / name
        self._fd: int | None = None
        self.is_held = False

    def __repr__(self) -> str:
        return f"GPULease({self.gpu!r}, held={self.is_held})"

    def _open(self) -> int:
        if self._fd is None:
            _ensure_dir(self.path.parent)
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise GPUError(
                    f"cannot open the GPU lease file {str(self.path)!r} ({exc}); set "
                    f"{LEASE_DIR_ENV} to a writable local directory"
                ) from exc
        return self._fd

    def try_acquire(self) -> bool:
        """Take the lease if no other process holds it; never waits.

        Returns:
            Whether this object holds the lease now.

        Raises:
            GPUError: If the lease file cannot be opened.
        """
        import fcntl

        if self.is_held:
            return True
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()}:{os.getpid()}\n".encode(), 0)
        self.is_held = True
        return True

    def holder(self) -> str | None:
        """Who holds the lease, as its file says (``host:pid``), or ``None`` if unknown."""
        try:
            if self._fd is not None:
                text = os.pread(self._fd, 256, 0)
            else:
                text = self.path.read_bytes()[:256]
        except OSError:
            return None
        first = text.decode(errors="replace").strip().splitlines()
        return first[0] if first else None

    def fileno(self) -> int:
        """The lease file's descriptor, to pass to a process that keeps the GPU taken."""
        return self._open()

    def release(self) -> None:
        """Give the lease back (and close the file); doing it twice is harmless."""
        import fcntl

        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.is_held:
                os.ftruncate(fd, 0)  # before unlocking: the next holder writes its own name
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self.is_held = False
            os.close(fd)
