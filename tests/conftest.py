"""Shared fixtures: tiny data sets written by the tests themselves, and an in-process CLI runner."""

from __future__ import annotations

import gzip
import pickle
import struct
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py for every folder


@pytest.fixture(autouse=True)
def _small_torch():
    """Deterministic, quiet, single-threaded torch and numpy BLAS for every test (2-core CI: a second BLAS
    thread spinning beside a busy core made FID's 128x128 matrix maths 60x slower)."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """Write an IDX file (uint8 data) as the MNIST distribution does."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    """A fake MNIST directory: 60 training and 20 test images of 28x28, train gzipped, test plain."""
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    for prefix, n, gz in (("train", 60, True), ("t10k", 20, False)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(d / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(d / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return d


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    """Two fake CIFAR-10 training batches and a test batch, pickled like the python version."""
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name, n in (("data_batch_1", 12), ("data_batch_2", 8), ("test_batch", 5)):
        batch = {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}
        with open(d / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return tmp_path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """A folder of images in mixed modes and formats, one corrupt file, upper-case extensions, subfolders."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    (root / "nested" / "deeper").mkdir(parents=True)

    def arr(h: int, w: int, c: int) -> np.ndarray:
        return rng.integers(0, 256, size=(h, w, c) if c > 1 else (h, w), dtype=np.uint8)

    Image.fromarray(arr(40, 30, 3)).save(root / "rgb.png")
    Image.fromarray(arr(20, 20, 1), "L").save(root / "gray.PNG")
    Image.fromarray(arr(32, 32, 4), "RGBA").save(root / "alpha.png")
    Image.fromarray(arr(25, 35, 3)).save(root / "nested" / "photo.JPG", quality=90)
    Image.fromarray(arr(16, 16, 3)).convert("P").save(root / "nested" / "palette.bmp")
    Image.fromarray(arr(24, 24, 3)).save(root / "nested" / "deeper" / "pic.webp")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "notes.txt").write_text("not an image, and not an image extension")
    return root


@pytest.fixture
def run_cli(capsys) -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from ganforge.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse errors and --help
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run
