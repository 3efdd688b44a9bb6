"""Load the user's own data (npz, CSV, Parquet, arrays) as torch datasets.

Everything here validates its input up front and raises :class:`RetainError`
with a message naming the problem, because a bad column found during training
is much harder to trace back to the file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from retain.errors import DataNotFoundError, RetainError
from retain.extras import require

__all__ = ["as_dataset", "data_home", "from_arrays", "load"]

NPZ_KEYS = ("X_train", "y_train", "X_test", "y_test")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")
SUFFIXES = (".npz", *TABLE_SUFFIXES)
SPLIT_COL = "split"


def data_home(root: str | os.PathLike[str] | None = None) -> Path:
    """Folder where downloaded datasets live.

    ``root`` if given, else ``$RETAIN_DATA`` if set, else the per-user cache
    folder. One place to change so every dataset (and the CLI) agrees.
    """
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get("RETAIN_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    platformdirs = require("platformdirs", "data")

    return Path(platformdirs.user_cache_dir("retain"))


# --------------------------------------------------------------------------- arrays


def _fmt_names(names: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    extra = len(names) - limit
    return shown + (f", ... ({extra} more)" if extra > 0 else "")


def _to_numpy(a: Any, what: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as e:
        raise RetainError(f"{what} could not be turned into an array: {e}") from e


def _features(x: np.ndarray, what: str) -> torch.Tensor:
    if x.ndim == 0:
        raise RetainError(f"{what} is a scalar; expected an array of shape [N, ...].")
    if x.dtype.kind not in "biuf":
        raise RetainError(
            f"{what} has dtype {x.dtype}; features must be numbers. "
            "Convert them to numbers first (e.g. one-hot encode text)."
        )
    if x.ndim == 1:  # N scalar samples -> [N, 1]
        x = x.reshape(-1, 1)
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise RetainError(
            f"{what} contains {int(bad.sum())} NaN/inf values in {rows} of {len(x)} samples. "
            "Drop or fill them before loading."
        )
    return torch.from_numpy(np.ascontiguousarray(x))


def encode_labels(
    y: np.ndarray, what: str, classes: Sequence[str] | None = None
) -> tuple[torch.Tensor, list[str] | None]:
    """Integer labels -> int64, text -> int64 via a sorted vocabulary, real -> float32."""
    if y.ndim == 0:
        raise RetainError(f"{what} is a scalar; expected one label per sample.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind in "OUS":
        if y.dtype.kind == "O" and any(v is None or v != v for v in y.ravel()):
            raise RetainError(f"{what} has missing values; every sample needs a label.")
        text = y.astype(str)
        vocab = list(classes) if classes is not None else sorted(set(text.ravel().tolist()))
        index = {c: i for i, c in enumerate(vocab)}
        unknown = sorted(set(text.ravel().tolist()) - set(index))
        if unknown:
            raise RetainError(f"{what} has labels not in classes: {_fmt_names(unknown)}")
        mapped = np.vectorize(index.__getitem__, otypes=[np.int64])(text)
        return torch.from_numpy(mapped), vocab
    if y.dtype.kind == "b" or y.dtype.kind in "iu":
        return torch.from_numpy(y.astype(np.int64)), None
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            raise RetainError(
                f"{what} has {int((~finite).sum())} NaN/inf values; every sample needs a label."
            )
        if np.all(y == np.round(y)):
            return torch.from_numpy(y.astype(np.int64)), None
        return torch.from_numpy(y.astype(np.float32)), None  # regression target
    raise RetainError(f"{what} has dtype {y.dtype}; labels must be numbers or text.")


def _reshape(x: torch.Tensor, shape: Sequence[int] | None, what: str) -> torch.Tensor:
    if shape is None:
        return x
    shape = tuple(int(s) for s in shape)
    per_sample = int(np.prod(x.shape[1:]))
    want = int(np.prod(shape))
    if want != per_sample or any(s <= 0 for s in shape):
        raise RetainError(
            f"cannot reshape {what} to shape={shape}: each sample has {per_sample} values "
            f"but that shape needs {want}."
        )
    return x.reshape(len(x), *shape)


def _dataset(x: torch.Tensor, y: torch.Tensor, classes: list[str] | None) -> TensorDataset:
    ds = TensorDataset(x, y)
    if classes is not None:
        ds.classes = classes  # type: ignore[attr-defined]
    return ds


def from_arrays(
    x: Any, y: Any, shape: Sequence[int] | None = None, classes: Sequence[str] | None = None
) -> TensorDataset:
    """Wrap feature/label arrays (numpy, torch or lists) in a checked ``TensorDataset``.

    x becomes float32 [N, ...] (a 1-D x becomes [N, 1]); y becomes int64 for
    integer or text labels (text mapped through a sorted vocabulary stored as
    ``dataset.classes``) and float32 for real-valued regression targets.
    """
    xa, ya = _to_numpy(x, "x"), _to_numpy(y, "y")
    xt = _reshape(_features(xa, "x"), shape, "x")
    yt, vocab = encode_labels(ya, "y", classes)
    if len(xt) != len(yt):
        raise RetainError(f"x has {len(xt)} samples but y has {len(yt)}; they must match.")
    if len(xt) == 0:
        raise RetainError("x and y are empty; need at least one sample.")
    return _dataset(xt, yt, vocab)


def as_dataset(obj: Any) -> Dataset:
    """Accept a torch ``Dataset`` as is, or an ``(x, y)`` pair of arrays.

    Lets APIs take either form without each caller converting.
    """
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, tuple | list) and len(obj) == 2:
        return from_arrays(obj[0], obj[1])
    raise RetainError(
        f"expected a torch Dataset or an (x, y) pair of arrays, got {type(obj).__name__}. "
        "Use retain.datasets.load(path) for files."
    )


# --------------------------------------------------------------------------- files


def file_suffix(path: Path) -> str:
    """The data-file suffix of ``path`` (``.csv.gz`` counts as one), lower case."""
    name = path.name.lower()
    for s in SUFFIXES:
        if name.endswith(s):
            return s
    return path.suffix.lower()


def load(
    path: str | os.PathLike[str],
    label_col: str = "label",
    feature_cols: Sequence[str] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    shape: Sequence[int] | None = None,
) -> tuple[TensorDataset, TensorDataset]:
    """Read a user's data file into ``(train, test)`` datasets.

    ``.npz`` needs keys X_train, y_train, X_test, y_test. CSV/TSV/Parquet hold
    one row per sample: feature columns (default: all but ``label_col`` and an
    optional ``split`` column of train/test values) plus the label column; with
    no ``split`` column rows are split at random (stratified when possible,
    seeded). ``shape`` reshapes each sample's features, e.g. ``(1, 28, 28)``.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"data file not found: {p}")
    if p.is_dir():
        raise RetainError(f"{p} is a folder; pass a .npz, .csv or .parquet file.")
    suffix = file_suffix(p)
    if suffix not in SUFFIXES:
        raise RetainError(
            f"unknown file type {suffix or '(none)'!r} for {p.name}; "
            f"supported: {', '.join(SUFFIXES)}."
        )
    if p.stat().st_size == 0:
        raise RetainError(f"{p} is empty (0 bytes).")
    if suffix == ".npz":
        return _load_npz(p, shape)
    return _load_table(p, suffix, label_col, feature_cols, test_size, seed, shape)


def _load_npz(p: Path, shape: Sequence[int] | None) -> tuple[TensorDataset, TensorDataset]:
    try:
        # open the file ourselves: np.load leaks its handle when the zip is corrupt
        with open(p, "rb") as f, np.load(f, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise RetainError(
                    f"{p.name} is missing key(s) {_fmt_names(missing)}; it has "
                    f"{_fmt_names(z.files) or 'no arrays'}. Save it with "
                    "np.savez(path, X_train=..., y_train=..., X_test=..., y_test=...)."
                )
            arrays = {k: z[k] for k in NPZ_KEYS}
    except RetainError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise RetainError(f"{p} is not a readable .npz file ({e}).") from e
    out = []
    classes: list[str] | None = None
    ys = [arrays["y_train"], arrays["y_test"]]
    if any(y.dtype.kind in "OUS" for y in ys):  # one vocabulary for both splits
        classes = sorted({str(v) for y in ys for v in y.ravel().tolist()})
    for part in ("train", "test"):
        xk, yk = f"X_{part}", f"y_{part}"
        x = _reshape(_features(arrays[xk], f"{p.name}[{xk!r}]"), shape, f"{p.name}[{xk!r}]")
        y, vocab = encode_labels(arrays[yk], f"{p.name}[{yk!r}]", classes)
        if len(x) != len(y):
            raise RetainError(
                f"{p.name}: {xk} has {len(x)} samples but {yk} has {len(y)}; they must match."
            )
        if len(x) == 0:
            raise RetainError(f"{p.name}: {xk} is empty; need at least one sample.")
        out.append(_dataset(x, y, vocab))
    return out[0], out[1]


def read_table_file(p: Path, suffix: str):  # -> pd.DataFrame
    """A CSV or Parquet file as a DataFrame; an empty or unreadable file is a RetainError."""
    pd = require("pandas", "data")

    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",")
    except pd.errors.EmptyDataError as e:
        raise RetainError(f"{p} is empty (no header or rows).") from e
    except ImportError as e:
        raise RetainError(f"reading {p.name} needs an extra package: {e}") from e
    except Exception as e:  # parser/arrow errors have many types; all mean "unreadable"
        kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
        raise RetainError(f"{p} is not a readable {kind} file ({type(e).__name__}: {e}).") from e


def _load_table(
    p: Path,
    suffix: str,
    label_col: str,
    feature_cols: Sequence[str] | None,
    test_size: float,
    seed: int,
    shape: Sequence[int] | None,
) -> tuple[TensorDataset, TensorDataset]:
    pd = require("pandas", "data")

    df = read_table_file(p, suffix)
    df.columns = [str(c) for c in df.columns]
    if len(df) == 0:
        raise RetainError(f"{p} has a header but no data rows.")
    if label_col not in df.columns:
        raise RetainError(
            f"{p.name} has no label column {label_col!r}; columns are: "
            f"{_fmt_names(list(df.columns), 30)}. Pass label_col='...' to pick one."
        )
    has_split = SPLIT_COL in df.columns and label_col != SPLIT_COL
    if feature_cols is None:
        feats = [c for c in df.columns if c != label_col and not (has_split and c == SPLIT_COL)]
    else:
        feats = [str(c) for c in feature_cols]
        missing = [c for c in feats if c not in df.columns]
        if missing:
            raise RetainError(
                f"{p.name} has no feature column(s) {_fmt_names(missing)}; columns are: "
                f"{_fmt_names(list(df.columns), 30)}."
            )
        if label_col in feats:
            raise RetainError(f"label column {label_col!r} is also listed in feature_cols.")
    if not feats:
        raise RetainError(f"{p.name} has no feature columns besides {label_col!r}.")
    non_numeric = [
        c
        for c in feats
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if non_numeric:
        raise RetainError(
            f"{p.name}: feature column(s) {_fmt_names(non_numeric)} are not numeric. "
            "Encode them as numbers or leave them out with feature_cols=[...]."
        )
    x = df[feats].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        counts = bad.sum(axis=0)
        detail = ", ".join(f"{c!r}: {int(n)}" for c, n in zip(feats, counts, strict=True) if n)
        raise RetainError(
            f"{p.name}: {int(bad.any(axis=1).sum())} row(s) have NaN/inf features "
            f"(per column: {detail}). Drop or fill them (e.g. df.dropna()) before loading."
        )

    ycol = df[label_col]
    if ycol.isna().any():
        raise RetainError(
            f"{p.name}: label column {label_col!r} has {int(ycol.isna().sum())} missing "
            "value(s); every row needs a label."
        )
    if pd.api.types.is_bool_dtype(ycol) or pd.api.types.is_numeric_dtype(ycol):
        yarr = ycol.to_numpy()
    else:
        yarr = ycol.astype(str).to_numpy(dtype=object)
    y, classes = encode_labels(yarr, f"{p.name}: label column {label_col!r}")
    xt = _reshape(torch.from_numpy(x.astype(np.float32)), shape, f"{p.name} features")

    if has_split:
        split = df[SPLIT_COL].astype(str).str.strip().str.lower().to_numpy()
        unknown = sorted(set(split.tolist()) - {"train", "test"})
        if unknown:
            raise RetainError(
                f"{p.name}: column {SPLIT_COL!r} must hold 'train' or 'test', found "
                f"{_fmt_names(unknown)}. Rename the column if it is a feature."
            )
        tr = np.flatnonzero(split == "train")
        te = np.flatnonzero(split == "test")
        for name, idx in (("train", tr), ("test", te)):
            if len(idx) == 0:
                raise RetainError(f"{p.name}: column {SPLIT_COL!r} has no {name!r} rows.")
    else:
        tr, te = split_indices(y, test_size, seed, p.name)
    trt, tet = torch.from_numpy(tr), torch.from_numpy(te)
    return _dataset(xt[trt], y[trt], classes), _dataset(xt[tet], y[tet], classes)


def split_indices(
    y: torch.Tensor, test_size: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split, stratified by class when every class can be split."""
    train_test_split = require("sklearn.model_selection", "data").train_test_split

    if not isinstance(test_size, float | int) or not 0 < float(test_size) < 1:
        raise RetainError(f"test_size must be a fraction between 0 and 1, got {test_size!r}.")
    n = len(y)
    if n < 2:
        raise RetainError(f"{name} has {n} row(s); need at least 2 to make a train/test split.")
    idx = np.arange(n)
    stratify = y.numpy() if y.dtype == torch.int64 else None
    try:
        tr, te = train_test_split(
            idx, test_size=float(test_size), random_state=seed, stratify=stratify
        )
    except ValueError:  # a class too small to stratify, or too few rows for it
        tr, te = train_test_split(idx, test_size=float(test_size), random_state=seed)
    if len(tr) == 0 or len(te) == 0:
        raise RetainError(f"{name}: test_size={test_size} leaves an empty train or test set.")
    return np.sort(tr), np.sort(te)
