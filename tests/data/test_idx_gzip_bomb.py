"""Gzipped IDX files are decompressed only as far as their header declares: gzip bombs are cheap errors."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from ganforge.data.files import IDX_MAX_BYTES, read_idx
from ganforge.errors import GanforgeError

from conftest import write_idx

MB = 1 << 20


def _header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


def _peak_while(fn) -> int:
    """Peak bytes traced by tracemalloc while `fn` runs (numpy reports its buffers to tracemalloc too)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _raises(path: Path, match: str):
    def fn():
        with pytest.raises(GanforgeError, match=match) as e:
            read_idx(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)  # one line, naming the file

    return fn


def test_measurement_sees_a_real_load(tmp_path):
    """Sanity for the assertions below: tracemalloc does see an honest 4 MB load, and not much more."""
    path = write_idx(tmp_path / "big-idx3-ubyte", np.ones((5000, 28, 28), np.uint8), gz=True)
    peak = _peak_while(lambda: read_idx(path))
    assert 5000 * 784 <= peak < 3 * 5000 * 784 + 2 * MB


def test_header_declaring_a_huge_payload_is_refused_without_allocating(tmp_path):
    path = tmp_path / "huge-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(_header((10**6, 10**4, 10**4)) + bytes(1000))  # claims 10^14 bytes
    start = time.perf_counter()
    peak = _peak_while(_raises(path, r"over the \d+ byte limit"))
    assert time.perf_counter() - start < 1.0
    assert peak < 1 * MB


def test_header_just_over_the_cap_is_refused_and_under_it_is_read_lazily(tmp_path):
    over = tmp_path / "over.gz"
    with gzip.open(over, "wb") as f:
        f.write(_header((IDX_MAX_BYTES // 4 + 1,), code=0x0C) + bytes(16))
    assert _peak_while(_raises(over, "byte limit")) < 1 * MB
    under = tmp_path / "under.gz"  # within the cap, but only 16 bytes of the 2 GiB claimed are there
    with gzip.open(under, "wb") as f:
        f.write(_header((IDX_MAX_BYTES // 4,), code=0x0C) + bytes(16))
    assert _peak_while(_raises(under, "IDX size mismatch: .* file has 16$")) < 4 * MB  # a chunk or two, not 2 GiB


def test_gzip_bomb_behind_a_small_header_is_read_only_as_far_as_declared(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    zeros = bytes(MB)
    with gzip.open(path, "wb", compresslevel=1) as f:  # streamed: the test never holds 200 MB either
        f.write(_header((10, 28, 28)))
        for _ in range(200):
            f.write(zeros)
    assert path.stat().st_size < 2 * MB  # a real bomb: 200 MB inside
    peak = _peak_while(_raises(path, r"IDX size mismatch: header says \(10, 28, 28\) \(7840 bytes of data\), "
                                     r"file has more than 7840"))
    assert peak < 2 * MB  # far below the 200 MB the file expands to


def test_valid_gzip_idx_loads_like_the_plain_file(tmp_path):
    rng = np.random.default_rng(0)
    for code, dtype in ((0x08, np.uint8), (0x0B, ">i2"), (0x0E, ">f8")):
        arr = rng.integers(-100, 100, size=(7, 5, 3)).astype(dtype)
        blob = _header(arr.shape, code) + arr.tobytes()
        (tmp_path / "plain").write_bytes(blob)
        (tmp_path / "packed.gz").write_bytes(gzip.compress(blob))
        plain, packed = read_idx(tmp_path / "plain"), read_idx(tmp_path / "packed.gz")
        assert plain.dtype == packed.dtype == np.dtype(dtype) and plain.shape == packed.shape == (7, 5, 3)
        np.testing.assert_array_equal(plain, arr)
        np.testing.assert_array_equal(packed, arr)
        packed[0, 0, 0] = 1  # writable, as before


def test_damaged_gzip_is_still_a_clear_error(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    good = gzip.compress(_header(arr.shape) + arr.tobytes())
    cases = {
        "truncated": good[:-12],  # stream cut before its end marker
        "bad-crc": good[:-8] + bytes(4) + good[-4:],  # CRC still checked: the extra byte reaches the trailer
        "trailing-junk": good + b"junk!",
    }
    for name, blob in cases.items():
        path = tmp_path / f"{name}.gz"
        path.write_bytes(blob)
        with pytest.raises(GanforgeError, match="corrupt gzip data"):
            read_idx(path)
