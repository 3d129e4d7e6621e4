"""Hostile image folders and data files: every file is loaded correctly or skipped, counted and named.

Never a crash, never a hang (each case runs under a timeout).
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import struct
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.config import DataConfig
from ganforge.data import build_source
from ganforge.data.files import load_cifar10, load_idx_split, read_idx
from ganforge.data.folder import FolderDataset, list_images, load_image
from ganforge.errors import GanforgeError

from conftest import write_idx


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block takes longer than `seconds`."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG whose header declares width x height 8-bit gray pixels, with one tiny IDAT (~100 bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def _jpeg_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", subsampling=0, **kw)  # 4:4:4: no colour bleeding across the 8x8 blocks
    return buf.getvalue()


RED, BLUE = (255, 0, 0), (0, 0, 255)


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, set[str], dict[str, np.ndarray]]:
    """A folder of good-but-awkward images (with the expected pixels) and bad files (that must be skipped)."""
    root = tmp_path / "hostile"
    (root / "sub").mkdir(parents=True)
    good: dict[str, np.ndarray] = {}  # name -> expected [C, 8, 8] uint8 after load_image(size=8, channels=3)

    # 16-bit grayscale: 65535 -> 255, 32896 -> 128 (x / 65535 * 255, rounded).
    g16 = np.full((8, 8), 32896, dtype=np.uint16)
    g16[:4] = 65535
    Image.fromarray(g16).save(root / "gray16.png")
    exp = np.full((3, 8, 8), 128, np.uint8)
    exp[:, :4] = 255
    good["gray16.png"] = exp
    # A dark 16-bit image (every value <= 255) is still 16-bit: 255 -> 1, 0 -> 0 (not stretched to white).
    dark = np.zeros((8, 8), dtype=np.uint16)
    dark[:, :4] = 255
    Image.fromarray(dark).save(root / "dark16.png")
    exp = np.zeros((3, 8, 8), np.uint8)
    exp[:, :, :4] = 1
    good["dark16.png"] = exp

    # Palette: two colours, exact after conversion.
    pal = Image.new("P", (8, 8))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.paste(1, (0, 0, 8, 4))
    pal.save(root / "palette.PNG")  # upper-case extension
    exp = np.empty((3, 8, 8), np.uint8)
    exp[:, :4] = np.array([200, 100, 50])[:, None, None]
    exp[:, 4:] = np.array([10, 20, 30])[:, None, None]
    good["palette.PNG"] = exp

    # RGBA and LA: transparent -> white, opaque kept.
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 1] = 90
    rgba[:, :4, 3] = 255  # left half opaque green-ish, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(root / "sub" / "rgba.png")
    exp = np.full((3, 8, 8), 255, np.uint8)
    exp[:, :, :4] = np.array([0, 90, 0])[:, None, None]
    good["sub/rgba.png"] = exp
    la = np.zeros((8, 8, 2), np.uint8)
    la[..., 0] = 40
    la[4:, :, 1] = 255  # bottom half opaque gray 40, top transparent
    Image.fromarray(la, "LA").save(root / "la.png")
    exp = np.full((3, 8, 8), 255, np.uint8)
    exp[:, 4:] = 40
    good["la.png"] = exp

    # CMYK JPEG of one flat colour (JPEG is lossy: compared with a tolerance below).
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    (root / "cmyk.JPEG").write_bytes(_jpeg_bytes(cmyk, quality=100))
    good["cmyk.JPEG"] = np.broadcast_to(np.array(RED, np.uint8)[:, None, None], (3, 8, 8)).copy()

    # EXIF-rotated JPEG: stored 16 wide x 8 tall, left half red, right half blue, Orientation 6
    # (display rotated 90 degrees clockwise): shown 8 wide x 16 tall, red on top, blue below.
    stored = np.zeros((8, 16, 3), np.uint8)
    stored[:, :8] = RED
    stored[:, 8:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "rotated.jpg").write_bytes(_jpeg_bytes(Image.fromarray(stored), quality=100, exif=exif.tobytes()))
    # load_image(size 8): 8x16 -> centre crop rows 4..12: top half red, bottom half blue.
    exp = np.empty((3, 8, 8), np.uint8)
    exp[:, :4] = np.array(RED)[:, None, None]
    exp[:, 4:] = np.array(BLUE)[:, None, None]
    good["rotated.jpg"] = exp

    # --- bad files: each must be skipped and named.
    ok = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(ok).save(png, "PNG")
    bad = {
        "truncated.png": png.getvalue()[: len(png.getvalue()) // 2],
        "truncated.jpg": _jpeg_bytes(Image.fromarray(ok))[:300],
        "empty.png": b"",
        "text.jpg": b"I am plain text with an image extension\n" * 3,
        "bomb.png": png_declaring(40000, 40000),  # 1.6e9 pixels: over twice PIL's MAX_IMAGE_PIXELS -> error
        "bomb-warning.png": png_declaring(10000, 10000),  # 1e8 pixels: PIL's warning range, made an error
    }
    for name, data in bad.items():
        (root / name).write_bytes(data)
    # Symlinks: a loop of file links, and a directory link back to the root (must not be walked forever).
    os.symlink(root / "loop-b.png", root / "loop-a.png")
    os.symlink(root / "loop-a.png", root / "loop-b.png")
    os.symlink(root, root / "sub" / "up")
    os.mkfifo(root / "fifo.png")  # opening a FIFO for reading would block forever
    bad_names = set(bad) | {"loop-a.png", "loop-b.png", "fifo.png"}
    return root, bad_names, good


def _expected_ok(name: str, got: np.ndarray, want: np.ndarray) -> None:
    tol = 12 if name.lower().endswith((".jpg", ".jpeg")) else 1
    diff = np.abs(got.astype(int) - want.astype(int)).max()
    assert diff <= tol, f"{name}: max pixel difference {diff} > {tol}"


def test_each_awkward_image_loads_with_the_right_pixels(hostile):
    root, _, good = hostile
    with deadline(60):
        for name, want in good.items():
            got = load_image(root / name, 8, 3)
            assert got.shape == (3, 8, 8) and got.dtype == np.uint8
            _expected_ok(name, got, want)
            gray = load_image(root / name, 8, 1)  # and as one channel: ITU-R 601 luma of the RGB result
            luma = (want.astype(float) * np.array([299, 587, 114])[:, None, None] / 1000).sum(0)
            assert gray.shape == (1, 8, 8) and np.abs(gray[0] - luma).max() <= (12 if name.endswith(("jpg", "JPEG")) else 1)


def test_orientation_is_applied(hostile):
    """Without EXIF transposition the crop would be red left / blue right; with it, red top / blue bottom."""
    root = hostile[0]
    got = load_image(root / "rotated.jpg", 8, 3)
    assert tuple(got[:, 0, 7]) == pytest.approx(RED, abs=12) and tuple(got[:, 7, 0]) == pytest.approx(BLUE, abs=12)


def test_folder_source_loads_the_good_skips_counts_and_names_the_bad(hostile, caplog, monkeypatch):
    root, bad_names, good = hostile
    files = list_images(root)
    listed = {str(p.relative_to(root)) for p in files}
    assert listed == set(good) | bad_names  # every image extension, any case; the directory loop not followed
    cfg = DataConfig(dataset="folder", path=str(root), image_size=8, channels=3)
    caplog.set_level(logging.WARNING, logger="ganforge")
    monkeypatch.setattr(logging.getLogger("ganforge"), "propagate", True)  # the CLI turns it off
    with deadline(120):
        src = build_source(cfg, seed=0, device=torch.device("cpu"))
    assert len(src) == len(good)
    skipped = {str(Path(p).relative_to(root)) for p in src.skipped}
    assert skipped == bad_names
    assert f"skipped {len(bad_names)} unreadable file(s) of {len(files)}" in caplog.text
    for name in bad_names:
        assert name in caplog.text, name
    # The kept images are the good ones, in listing order, with the right pixels.
    kept = [str(p.relative_to(root)) for p in files if str(p.relative_to(root)) not in bad_names]
    images = src.images.numpy()  # uint8 [N, 3, 8, 8]
    for name, img in zip(kept, images):
        _expected_ok(name, img, good[name])


def test_streaming_skips_bad_files_too(hostile):
    root, bad_names, good = hostile
    files = list_images(root)
    ds = FolderDataset(files, None, 8, 3)
    with deadline(120):
        for i, f in enumerate(files):
            x, _ = ds[i]
            assert x.shape == (3, 8, 8)


def test_a_folder_of_only_bad_files_is_a_clear_error(hostile, tmp_path):
    root, bad_names, _ = hostile
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    for name in ("truncated.png", "empty.png", "text.jpg", "bomb.png"):
        (only_bad / name).write_bytes((root / name).read_bytes())
    cfg = DataConfig(dataset="folder", path=str(only_bad), image_size=8)
    with deadline(60), pytest.raises(GanforgeError, match="none of the 4 image files could be read"):
        build_source(cfg, seed=0, device=torch.device("cpu"))
    cfg.loader = "stream"
    with deadline(60), pytest.raises(GanforgeError, match="none of the sampled image files could be read"):
        build_source(cfg, seed=0, device=torch.device("cpu"))


# ----------------------------------------------------------------------------- IDX and CIFAR files


def _idx_header(dtype: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(">BBBB", 0, 0, dtype, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)


@pytest.mark.parametrize(
    "blob, match",
    [
        (b"", "bad magic number empty"),
        (b"\x00\x00\x08", "bad magic number"),
        (b"\x12\x34\x08\x01" + b"\0" * 8, "bad magic number"),  # first two bytes must be zero
        (b"\x00\x00\x07\x01" + b"\0" * 8, "bad magic number"),  # unknown dtype code
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x09" + b"\0" * 40, "9 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00", "header truncated"),
        (_idx_header(0x08, (2, 28, 28)) + b"\0" * 100, "IDX size mismatch"),
        (_idx_header(0x08, (2, 3)) + b"\0" * 7, "IDX size mismatch"),  # one byte too many
        (_idx_header(0x0D, (0xFFFFFFFF,) * 4) + b"\0" * 16, "IDX size mismatch"),  # 2^128 elements: no overflow
        (b"\x1f\x8b" + b"not really gzip", "corrupt gzip data"),
    ],
)
def test_bad_idx_files_are_clear_errors(tmp_path, blob, match):
    path = tmp_path / "f-idx3-ubyte"
    path.write_bytes(blob)
    with pytest.raises(GanforgeError, match=match):
        read_idx(path)


def test_idx_images_and_labels_that_disagree(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((4,), np.uint8))
    with pytest.raises(GanforgeError, match="5 train images but labels of shape"):
        load_idx_split(tmp_path, "train")
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 784), np.uint8))
    with pytest.raises(GanforgeError, match="must be a 3-D uint8 IDX array"):
        load_idx_split(tmp_path, "train")


@pytest.mark.parametrize(
    "batch, match",
    [
        ({b"data": np.zeros((4, 3072), np.float32), b"labels": [0] * 4}, "'data' must be uint8 of shape"),
        ({b"data": np.zeros((4, 1024), np.uint8), b"labels": [0] * 4}, "'data' must be uint8 of shape"),
        ({b"data": np.zeros((4, 3, 32, 32), np.uint8), b"labels": [0] * 4}, "'data' must be uint8 of shape"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, "'labels' must be 4 integers"),
        ({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}, "'labels' must be 4 integers in 0..9"),
        ({b"images": np.zeros((4, 3072), np.uint8)}, "needs 'data' and 'labels'"),
        ([1, 2, 3], "needs 'data' and 'labels'"),
    ],
)
def test_cifar_batches_of_the_wrong_shape_are_clear_errors(tmp_path, batch, match):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(GanforgeError, match=match):
        load_cifar10(tmp_path, "train")
