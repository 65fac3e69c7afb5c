"""Tests of dltune.torch.datasets: splits, normalisation, memoisation, downloads, file formats.

Downloads run for real against an HTTP server on 127.0.0.1 serving tiny files in the published
formats (gzipped IDX, CIFAR-10's binary tar.gz), through the same mirror, checksum and parsing
path as the real data sets.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import logging
import math
import re
import socket
import struct
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dltune.exceptions import DLTuneError
from dltune.exceptions import UnknownNameError
from dltune.torch.datasets import DATASETS
from dltune.torch.datasets import MIRROR_ENV
from dltune.torch.datasets import Dataset
from dltune.torch.datasets import DatasetError
from dltune.torch.datasets import DatasetSpec
from dltune.torch.datasets import load_dataset

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(autouse=True)
def _no_outside_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


# --- tiny files in the published formats ----------------------------------------------------


def images_with_ids(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint8 images whose first value is a unique id (2 * index)."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x.reshape(n, -1)[:, 0] = 2 * np.arange(n)
    return x


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path, n_train: int = 50, n_test: int = 20) -> dict[str, Any]:
    """The four MNIST files in ``folder``; returns their md5 and the arrays they hold."""
    folder.mkdir(parents=True, exist_ok=True)
    x, x_test = images_with_ids(n_train, (28, 28), 1), images_with_ids(n_test, (28, 28), 2)
    y, y_test = np.arange(n_train) % 10, np.arange(n_test) % 10
    for name, array, magic in zip(
        MNIST_FILES, (x, y, x_test, y_test), (0x803, 0x801) * 2, strict=True
    ):
        (folder / name).write_bytes(idx_bytes(array, magic))
    return {
        "files": {name: md5(folder / name) for name in MNIST_FILES},
        "raw": (x[:, None], y, x_test[:, None], y_test),
    }


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar_records(x: np.ndarray, y: np.ndarray) -> bytes:
    return np.concatenate([y[:, None].astype(np.uint8), x.reshape(len(x), -1)], axis=1).tobytes()


def write_cifar(folder: Path, per_batch: int = 6, n_test: int = 10) -> dict[str, Any]:
    """A ``cifar-10-binary.tar.gz`` of five small batches and a test batch."""
    folder.mkdir(parents=True, exist_ok=True)
    x, x_test = (
        images_with_ids(5 * per_batch, (3, 32, 32), 3),
        images_with_ids(n_test, (3, 32, 32), 4),
    )
    y, y_test = np.arange(len(x)) % 10, np.arange(n_test) % 10
    members = {"cifar-10-batches-bin/batches.meta.txt": b"airplane\nautomobile\n"}
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        members[f"cifar-10-batches-bin/data_batch_{i + 1}.bin"] = cifar_records(x[part], y[part])
    members["cifar-10-batches-bin/test_batch.bin"] = cifar_records(x_test, y_test)
    path = folder / "cifar-10-binary.tar.gz"
    path.write_bytes(tar_gz(members))
    return {"files": {path.name: md5(path)}, "raw": (x, y, x_test, y_test)}


def first_values(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)[:, 0].astype(np.float64)


def assert_normalised_from_train(data: Dataset, raw: tuple[np.ndarray | None, ...]) -> None:
    """Every split is the raw data, normalised per channel with the train split's statistics.

    Rows are matched to raw rows through their first value (a unique id; normalising keeps its
    order), so this also checks that the splits are disjoint and complete, and the parser:
    pixel order, channel order and labels. Without a raw test pair, the test split is drawn
    from the raw data too.
    """
    x_raw, y_raw, x_test_raw, y_test_raw = raw
    assert x_raw is not None and y_raw is not None
    pooled = [data.x_train, data.x_val] + ([data.x_test] if x_test_raw is None else [])
    union = np.concatenate([first_values(x) for x in pooled])
    assert len(union) == len(x_raw)
    rows = np.empty(len(union), dtype=np.int64)
    rows[np.argsort(union)] = np.argsort(first_values(x_raw))
    train_rows, val_rows, test_rows = np.split(rows, np.cumsum([len(x) for x in pooled[:2]]))
    if x_test_raw is None or y_test_raw is None:
        x_test_raw, y_test_raw = x_raw[test_rows], y_raw[test_rows]
    n_channels = x_raw.shape[1]
    per_channel = x_raw[train_rows].astype(np.float64).reshape(len(train_rows), n_channels, -1)
    shape = (1, n_channels) + (1,) * (x_raw.ndim - 2)
    mean = per_channel.mean(axis=(0, 2)).reshape(shape)
    std = per_channel.std(axis=(0, 2)).reshape(shape)
    for x, y, x_want, y_want in (
        (data.x_train, data.y_train, x_raw[train_rows], y_raw[train_rows]),
        (data.x_val, data.y_val, x_raw[val_rows], y_raw[val_rows]),
        (data.x_test, data.y_test, x_test_raw, y_test_raw),
    ):
        np.testing.assert_allclose(x, (x_want - mean) / std, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(y, y_want)


def toy_spec(n: int = 100, **changes: Any) -> DatasetSpec:
    """A two-channel data set without a test split, each sample with a unique id."""
    x = images_with_ids(n, (2, 3), seed=5)
    y = np.arange(n) % 4

    def read(directory: Path) -> tuple[np.ndarray, np.ndarray, None, None]:
        return x, y, None, None

    fields: dict[str, Any] = {"input_shape": (2, 3), "n_classes": 4, "test_fraction": 0.2}
    return DatasetSpec("toy", read, **(fields | changes))


# --- splits, normalisation, memoisation -----------------------------------------------------


def test_digits_splits_are_60_20_20_stratified_and_disjoint(tmp_path: Path) -> None:
    data = load_dataset("digits", tmp_path)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (1079, 359, 359)
    assert data.input_shape == (1, 8, 8) and data.n_classes == 10 and data.name == "digits"
    for x, y in (
        (data.x_train, data.y_train),
        (data.x_val, data.y_val),
        (data.x_test, data.y_test),
    ):
        assert x.dtype == np.float32 and y.dtype == np.int64
    rows = [{row.tobytes() for row in x} for x in (data.x_train, data.x_val, data.x_test)]
    assert sum(map(len, rows)) == 1797 and len(rows[0] | rows[1] | rows[2]) == 1797
    counts = np.bincount(data.y_val, minlength=10)
    share = np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test])) * 0.2
    assert np.all(np.abs(counts - share) <= 1.5)
    assert not (tmp_path / "digits").exists()  # bundled: nothing is written


def test_digits_normalised_with_train_statistics_only(tmp_path: Path) -> None:
    data = load_dataset("digits", tmp_path)
    # Raw pixels are 0..16 and every split holds both ends, so the affine map shows itself.
    lo, hi = float(data.x_train.min()), float(data.x_train.max())
    for x in (data.x_val, data.x_test):
        assert math.isclose(x.min(), lo, abs_tol=1e-6) and math.isclose(x.max(), hi, abs_tol=1e-6)
    raw_train = (data.x_train.astype(np.float64) - lo) / (hi - lo) * 16
    assert math.isclose(-raw_train.mean() / raw_train.std(), lo, rel_tol=1e-5)
    assert math.isclose(16 / raw_train.std(), hi - lo, rel_tol=1e-5)
    assert abs(float(data.x_train.mean())) < 1e-5 and abs(data.x_train.std() - 1) < 1e-5
    assert abs(float(data.x_val.mean())) > 1e-4  # not re-centred on its own statistics


def test_split_is_stratified_disjoint_and_normalised_per_channel_from_train() -> None:
    spec = toy_spec()
    data = spec.load()
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (70, 10, 20)
    assert_normalised_from_train(data, spec.read(Path()))
    assert np.bincount(data.y_test, minlength=4).tolist() == [5, 5, 5, 5]
    assert sorted(np.bincount(data.y_val, minlength=4).tolist()) == [2, 2, 3, 3]
    # The checker is not vacuous: values off by a little fail it.
    leaky = dataclasses.replace(data, x_train=data.x_train + 0.01)
    with pytest.raises(AssertionError):
        assert_normalised_from_train(leaky, spec.read(Path()))


def test_split_is_deterministic_for_a_seed_and_differs_for_another(tmp_path: Path) -> None:
    first = load_dataset("digits", tmp_path / "a", split_seed=3)
    again = load_dataset("digits", tmp_path / "b", split_seed=3)
    other = load_dataset("digits", tmp_path / "a", split_seed=4)
    assert again is not first
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.y_val, other.y_val)


def test_load_is_memoised_and_arrays_are_read_only(tmp_path: Path) -> None:
    data = load_dataset("digits", tmp_path, split_seed=1)
    assert load_dataset("Digits", str(tmp_path), split_seed=1) is data
    assert DATASETS.get("digits").load(tmp_path, split_seed=1) is data
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        array = getattr(data, name)
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(
        UnknownNameError,
        match=r"unknown data set 'imagenet'; valid names: digits, mnist1d \(alias mnist_1d\), "
        r"mnist, fashion_mnist \(alias fmnist\), cifar10 \(alias cifar_10\)",
    ):
        load_dataset("imagenet")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_split_seed_is_refused(seed: Any) -> None:
    with pytest.raises(ValueError, match=r"split_seed=.* must be an integer >= 0"):
        load_dataset("digits", split_seed=seed)


def test_bad_data_dir_is_refused() -> None:
    with pytest.raises(TypeError, match=r"data_dir=3 must be a path \(str or os.PathLike\)"):
        load_dataset("digits", 3)  # type: ignore[arg-type]  # the bad value under test


def test_reader_output_is_checked_against_the_spec() -> None:
    with pytest.raises(DatasetError, match=r"training labels span 0\.\.3, expected 0\.\.2"):
        toy_spec(n_classes=3).load()
    with pytest.raises(DatasetError, match=r"inputs of shape \(100, 2, 3\).*expected \(N, 2, 4\)"):
        toy_spec(input_shape=(2, 4)).load()
    with pytest.raises(DatasetError, match=r"too small to split: 4 training samples give"):
        toy_spec(n=4).load()
    with pytest.raises(DatasetError, match="has no test split and test_fraction=0"):
        toy_spec(test_fraction=0.0).load()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"files": {"a.gz": "xyz"}}, r"files\['a.gz'\]='xyz' must be an md5 hex digest"),
        ({"mirrors": "http://x/"}, r"mirrors='http://x/' must be a sequence of URLs"),
        ({"mirrors": ("ftp://x/",)}, r"mirror 'ftp://x/' must be an http:// or https:// URL"),
        ({"val_fraction": 1.0}, r"val_fraction=1.0 must be in \(0, 1\)"),
        ({"test_fraction": 0.95}, r"test_fraction=0.95 must be in \[0, 1\) and leave"),
    ],
)
def test_spec_checks_its_fields(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        toy_spec(**changes)


def test_dataset_checks_its_arrays() -> None:
    x = np.zeros((4, 1, 3), dtype=np.float32)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match=r"n_classes=1 must be an integer >= 2"):
        Dataset("d", x, y, x, y, x, y, n_classes=1)
    with pytest.raises(ValueError, match=r"x_val must have shape .* got \(4, 1, 3\) and \(3,\)"):
        Dataset("d", x, y, x, y[:3], x, y, n_classes=2)
    with pytest.raises(ValueError, match=r"x_test has input shape \(3,\), but x_train has"):
        Dataset("d", x, y, x, y, x[:, 0], y, n_classes=2)


# --- mnist1d --------------------------------------------------------------------------------


def test_mnist1d_generated_offline_cached_and_leaves_global_rng_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "mnist1d" / "mnist1d-n5000-seed42.npz"
    cache.parent.mkdir()
    cache.write_bytes(b"not a zip file")  # an unreadable cache is regenerated
    np.random.seed(1234)
    state = np.random.get_state()[1].copy()  # type: ignore[index]  # legacy MT19937 tuple
    with caplog.at_level(logging.WARNING, logger="dltune.torch.datasets"):
        data = load_dataset("mnist1d", tmp_path)
    assert "regenerating mnist1d: its cache" in caplog.text
    assert np.array_equal(np.random.get_state()[1], state)  # type: ignore[index]
    assert data.input_shape == (1, 40) and data.n_classes == 10
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (3600, 400, 1000)
    assert data.x_train.dtype == np.float32 and data.y_test.dtype == np.int64
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["x"].shape == (4000, 40) and npz["x_test"].shape == (1000, 40)
    stamp = cache.stat().st_mtime_ns
    again = load_dataset("mnist_1d", tmp_path, split_seed=1)  # a new split, from the cache
    assert cache.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert not np.array_equal(again.y_val, data.y_val)


# --- downloads through a local HTTP server --------------------------------------------------


def served_spec(name: str, www: tuple[Path, str], folder: str = "") -> tuple[DatasetSpec, Any]:
    """The real spec of ``name``, with tiny files served from ``www`` (under ``folder``)."""
    root, url = www
    written = (write_cifar if name == "cifar10" else write_mnist)(root / folder)
    spec = dataclasses.replace(DATASETS.get(name), mirrors=(url + folder,), files=written["files"])
    return spec, written["raw"]


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_download_verify_and_parse(
    name: str, www: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec, raw = served_spec(name, www)
    with caplog.at_level(logging.INFO, logger="dltune.torch._download"):
        data = spec.load(tmp_path / "data")
    for filename, checksum in spec.files.items():
        assert md5(tmp_path / "data" / name / filename) == checksum
        assert f"downloading {www[1]}{filename}" in caplog.text
    assert data.name == name and data.input_shape == spec.input_shape
    n_train = len(raw[0])
    assert len(data.y_val) == round(n_train * 0.1) and len(data.y_test) == len(raw[2])
    assert_normalised_from_train(data, raw)
    assert not list((tmp_path / "data" / name).glob(".*part"))


def test_present_files_are_used_without_a_network(tmp_path: Path) -> None:
    written = write_mnist(tmp_path / "data" / "mnist")
    spec = dataclasses.replace(
        DATASETS.get("mnist"), mirrors=(closed_port_url(),), files=written["files"]
    )
    data = spec.load(tmp_path / "data", download=False)
    assert_normalised_from_train(data, written["raw"])


def test_progress_bar_goes_to_stderr(
    www: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, _ = served_spec("cifar10", www)
    spec.load(tmp_path / "data", progress=True)
    captured = capsys.readouterr()
    assert "downloading cifar-10-binary.tar.gz" in captured.err and captured.out == ""


def test_mirrors_are_tried_in_order(www: tuple[Path, str], tmp_path: Path) -> None:
    spec, raw = served_spec("mnist", www, folder="good/")
    mirrors = (closed_port_url(), www[1] + "missing/", *spec.mirrors)
    data = dataclasses.replace(spec, mirrors=mirrors).load(tmp_path / "data")
    assert_normalised_from_train(data, raw)


def test_env_mirror_is_tried_first(
    www: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, raw = served_spec("fashion_mnist", www, folder="fashion_mnist/")
    monkeypatch.setenv(MIRROR_ENV, www[1].rstrip("/"))
    spec = dataclasses.replace(spec, mirrors=(closed_port_url(),))
    data = spec.load(tmp_path / "data")
    assert_normalised_from_train(data, raw)


def test_checksum_mismatch_deletes_the_download(www: tuple[Path, str], tmp_path: Path) -> None:
    spec, _ = served_spec("mnist", www)
    files = dict(spec.files)
    actual = files["train-images-idx3-ubyte.gz"]
    files["train-images-idx3-ubyte.gz"] = "0" * 32
    spec = dataclasses.replace(spec, files=files)
    url = re.escape(www[1] + "train-images-idx3-ubyte.gz")
    with pytest.raises(
        DatasetError, match=f"checksum mismatch for {url}: expected md5 0{{32}}, got {actual}"
    ):
        spec.load(tmp_path / "data")
    assert list((tmp_path / "data" / "mnist").iterdir()) == []


def test_offline_error_names_files_directory_and_urls(tmp_path: Path) -> None:
    base = closed_port_url()
    spec = dataclasses.replace(DATASETS.get("mnist"), mirrors=(base,))
    folder = tmp_path / "data" / "mnist"
    with pytest.raises(DatasetError, match=r"data set 'mnist' needs 4 file\(s\) in ") as info:
        spec.load(tmp_path / "data")
    message = str(info.value)
    assert str(folder) in message and "downloading 'train-images-idx3-ubyte.gz' failed" in message
    for filename, checksum in spec.files.items():
        assert f"{filename} (md5 {checksum}) from {base}{filename}" in message
    assert MIRROR_ENV in message
    assert not list(folder.iterdir())


def test_real_specs_name_their_public_urls_when_files_are_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="and download=False") as info:
        load_dataset("cifar10", tmp_path, download=False)
    assert (
        "cifar-10-binary.tar.gz (md5 c32a1d4ab5d03f1284b67883e8d87530) from "
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    ) in str(info.value)
    with pytest.raises(DatasetError, match="and download=False") as info:
        load_dataset("mnist", tmp_path, download=False)
    assert (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz or "
        "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz"
    ) in str(info.value)
    assert not (tmp_path / "mnist").exists()


def test_download_false_with_missing_files(tmp_path: Path) -> None:
    written = write_mnist(tmp_path / "data" / "mnist")
    (tmp_path / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    spec = dataclasses.replace(
        DATASETS.get("mnist"), mirrors=("https://mirror.invalid/m/",), files=written["files"]
    )
    with pytest.raises(
        DatasetError,
        match=r"data set 'mnist' needs 1 file\(s\) in .*mnist, and they are missing and "
        r"download=False \(pass download=True to fetch them\)\. Fetch them and put them in "
        r"that directory:\n  t10k-labels-idx1-ubyte.gz \(md5 [0-9a-f]{32}\) from "
        r"https://mirror.invalid/m/t10k-labels-idx1-ubyte.gz\n",
    ):
        spec.load(tmp_path / "data", download=False)


def test_present_file_with_wrong_checksum_is_reported(tmp_path: Path) -> None:
    written = write_mnist(tmp_path / "data" / "mnist")
    path = tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    spec = dataclasses.replace(DATASETS.get("mnist"), files=written["files"])
    with pytest.raises(
        DatasetError,
        match=rf"{re.escape(str(path))} is corrupt or incomplete: its md5 is {md5(path)}, "
        rf"expected {written['files'][path.name]}; delete it",
    ):
        spec.load(tmp_path / "data")


# --- file formats ----------------------------------------------------------------------------


def spec_for_files(name: str, folder: Path) -> DatasetSpec:
    """The real spec of ``name``, accepting the files now in ``folder``."""
    return dataclasses.replace(
        DATASETS.get(name), mirrors=(), files={p.name: md5(p) for p in folder.iterdir()}
    )


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        (
            "train-images-idx3-ubyte.gz",
            idx_bytes(np.zeros((2, 28, 28)), 0x804),
            r"train-images-idx3-ubyte.gz is corrupt or not this kind of IDX file: magic number "
            r"0x00000804, expected 0x00000803",
        ),
        (
            "train-labels-idx1-ubyte.gz",
            idx_bytes(np.zeros((50, 1)), 0x802),
            r"magic number 0x00000802, expected 0x00000801",
        ),
        (
            "t10k-images-idx3-ubyte.gz",
            gzip.compress(struct.pack(">IIII", 0x803, 20, 28, 28) + bytes(100)),
            r"t10k-images-idx3-ubyte.gz is truncated: its header promises 15680 bytes of data "
            r"\(shape \(20, 28, 28\)\), it holds 100",
        ),
        ("t10k-labels-idx1-ubyte.gz", gzip.compress(b"\0\0"), r"ends within its magic number"),
        ("t10k-labels-idx1-ubyte.gz", gzip.compress(b"\0\0\x08\x01\0"), r"ends within its header"),
        (
            "t10k-labels-idx1-ubyte.gz",
            idx_bytes(np.zeros(20), 0x801) + gzip.compress(b"x"),
            r"holds more data than its header says",
        ),
        ("train-labels-idx1-ubyte.gz", b"plain bytes", r"is not a readable gzip file"),
        (
            "train-labels-idx1-ubyte.gz",
            idx_bytes(np.zeros(49), 0x801),
            r"train-images-idx3-ubyte.gz holds 50 images but .*train-labels-idx1-ubyte.gz "
            r"holds 49 labels",
        ),
    ],
)
def test_corrupt_idx_files_give_clear_errors(
    tmp_path: Path, filename: str, content: bytes, message: str
) -> None:
    folder = tmp_path / "mnist"
    write_mnist(folder)
    (folder / filename).write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        spec_for_files("mnist", folder).load(tmp_path)


def test_labels_outside_the_classes_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(np.full(20, 10), 0x801))
    with pytest.raises(DatasetError, match=r"test labels span 10\.\.10, expected 0\.\.9"):
        spec_for_files("mnist", folder).load(tmp_path)


def cifar_members(per_batch: int = 2) -> dict[str, bytes]:
    record = bytes(3073)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    return {f"cifar-10-batches-bin/{name}": record * per_batch for name in names}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"../evil.bin": b"x"}, r"refusing the archive: member '\.\./evil\.bin' points outside"),
        ({"/etc/evil": b"x"}, r"refusing the archive: member '/etc/evil' points outside"),
        (
            {"cifar-10-batches-bin/../../evil": b"x"},
            r"member 'cifar-10-batches-bin/\.\./\.\./evil' points outside",
        ),
        (
            {"cifar-10-batches-bin/data_batch_3.bin": bytes(3073 * 2 + 5)},
            r"member cifar-10-batches-bin/data_batch_3.bin has 6151 bytes, not a whole number "
            r"of 3073-byte records",
        ),
        (
            {"cifar-10-batches-bin/test_batch.bin": None},
            r"cifar-10-binary.tar.gz lacks the member\(s\) cifar-10-batches-bin/test_batch.bin",
        ),
    ],
)
def test_bad_cifar_archives_are_refused(
    tmp_path: Path, changes: dict[str, bytes | None], message: str
) -> None:
    members = cifar_members()
    for name, data in changes.items():
        if data is None:
            del members[name]
        else:
            members[name] = data
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(tar_gz(members))
    with pytest.raises(DatasetError, match=message):
        spec_for_files("cifar10", folder).load(tmp_path)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.bin").exists()


def test_cifar_archive_that_is_not_gzip_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(b"not an archive")
    with pytest.raises(DatasetError, match=r"is not a readable \.tar\.gz archive"):
        spec_for_files("cifar10", folder).load(tmp_path)


def test_dataset_error_is_a_dltune_error() -> None:
    assert issubclass(DatasetError, DLTuneError)
