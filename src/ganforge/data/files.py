"""Readers for the standard data-set file formats: IDX (MNIST family) and CIFAR-10 python batches.

Both read untrusted files: sizes and magic numbers are checked, gzipped IDX data is decompressed only
up to the size its header declares (so a gzip bomb cannot exhaust memory), and CIFAR's pickles go through
an unpickler that admits only numpy arrays and plain containers.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import stat
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import GanforgeError

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


IDX_MAX_BYTES = 2**31  # 2 GiB of data; the largest real IDX array (EMNIST ByClass train images) is ~550 MB
_CHUNK = 1 << 20  # 1 MiB per read: memory grows with the data that really arrives, not with a header's claim


def _read_upto(path: Path, f: BinaryIO, n: int) -> bytearray:
    """Up to `n` bytes from `f` (fewer at end of file), read in bounded chunks."""
    buf = bytearray()
    try:
        while len(buf) < n:
            chunk = f.read(min(_CHUNK, n - len(buf)))
            if not chunk:
                break
            buf += chunk
    except (OSError, EOFError, ValueError, zlib.error) as e:
        if not isinstance(f, gzip.GzipFile):
            raise  # a plain file's read error, as before
        raise GanforgeError(f"{path}: corrupt gzip data ({e})") from None
    return buf


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not) into a numpy array, checking magic number and size.

    The header is read first; headers declaring more than IDX_MAX_BYTES of data are refused, and
    at most the declared size plus one byte is ever decompressed, so a gzip bomb cannot exhaust memory.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        magic = _read_upto(path, f, 4)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_DTYPES:
            raise GanforgeError(f"{path}: not an IDX file (bad magic number {magic.hex() or 'empty'})")
        ndim = magic[3]
        if ndim < 1 or ndim > 4:
            raise GanforgeError(f"{path}: IDX file with {ndim} dimensions; expected 1 to 4")
        shape = _read_upto(path, f, 4 * ndim)
        if len(shape) < 4 * ndim:
            raise GanforgeError(f"{path}: IDX header truncated")
        dims = tuple(int.from_bytes(shape[4 * i : 4 + 4 * i], "big") for i in range(ndim))
        dtype = np.dtype(IDX_DTYPES[magic[2]])
        expected = math.prod(dims) * dtype.itemsize  # exact: np.prod would wrap around on huge headers
        mismatch = f"{path}: IDX size mismatch: header says {dims} ({expected} bytes of data), file has"
        st = os.fstat(raw.fileno())
        if not gz and stat.S_ISREG(st.st_mode) and st.st_size - 4 - 4 * ndim != expected:
            raise GanforgeError(f"{mismatch} {st.st_size - 4 - 4 * ndim}")  # known without reading
        if expected > IDX_MAX_BYTES:
            raise GanforgeError(
                f"{path}: IDX header says {dims} ({expected} bytes of data), over the {IDX_MAX_BYTES} byte limit"
            )
        data = _read_upto(path, f, expected + 1)  # one extra byte tells trailing data apart
    if len(data) != expected:
        raise GanforgeError(f"{mismatch} {len(data) if len(data) < expected else f'more than {expected}'}")
    return np.frombuffer(data, dtype=dtype).reshape(dims)  # writable: the bytearray is ours alone


def find_file(directory: Path, stem: str) -> Path:
    """Find `stem` or `stem.gz` (also the dotted 'idx3.ubyte' spelling some mirrors use)."""
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx").replace("-ubyte", ".ubyte")]
    candidates += [c + ".gz" for c in candidates[2:]]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise GanforgeError(f"{directory}: missing {stem}[.gz]")


def load_idx_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style images [N, 28, 28] uint8 and labels [N] from a directory of IDX files."""
    directory = Path(directory)
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(find_file(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_file(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise GanforgeError(f"{directory}: {prefix} images must be a 3-D uint8 IDX array, got {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise GanforgeError(f"{directory}: {len(images)} {prefix} images but labels of shape {labels.shape}")
    return images, labels.astype(np.int64)


class _SafeUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's batches contain: numpy arrays, dtypes and plain containers."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load '{module}.{name}' (only numpy arrays are allowed)")


def safe_unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _SafeUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, RecursionError) as e:  # damaged pickles raise all of these
        raise GanforgeError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {str(e)[:200]})") from None


def _get(d: dict, key: str) -> Any:
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


def load_cifar10(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images [N, 3, 32, 32] uint8 and labels [N] from the python-pickle batches."""
    directory = Path(directory)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    files = [directory / n for n in names if (directory / n).is_file()]
    if not files:
        raise GanforgeError(f"{directory}: no CIFAR-10 batches ({', '.join(names)}) found")
    xs, ys = [], []
    for path in files:
        d = safe_unpickle(path)
        try:
            data, labels = np.asarray(_get(d, "data")), np.asarray(_get(d, "labels"))
        except (KeyError, TypeError):
            raise GanforgeError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' entries") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise GanforgeError(f"{path}: 'data' must be uint8 of shape [N, 3072], got {data.dtype} {data.shape}")
        if labels.shape != (data.shape[0],) or (labels.size and (labels.min() < 0 or labels.max() > 9)):
            raise GanforgeError(f"{path}: 'labels' must be {data.shape[0]} integers in 0..9")
        xs.append(data.reshape(-1, 3, 32, 32))  # [N, 3, 32, 32]
        ys.append(labels.astype(np.int64))
    return np.concatenate(xs), np.concatenate(ys)
