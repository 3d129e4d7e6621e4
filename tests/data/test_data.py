import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import SOURCES, build_source, toy2d_centers
from ganforge.data.base import EpochSampler
from ganforge.data.files import read_idx
from ganforge.errors import GanforgeError

from conftest import write_idx

CPU = torch.device("cpu")


def build(**kw):
    return build_source(DataConfig(**kw), seed=0, device=CPU, batch_size=8)


def test_registry_lists_every_source():
    assert SOURCES.names() == sorted(
        ["digits", "mnist", "fashion-mnist", "cifar10", "folder", "toy2d-ring", "toy2d-grid", "stacked-digits", "stacked-mnist"]
    )
    with pytest.raises(ValueError, match="unknown dataset 'digit'.*did you mean 'digits'.*valid: cifar10, digits"):
        SOURCES.get("digit")


def test_digits_is_builtin_labelled_and_in_range():
    src = build(dataset="digits")
    assert len(src) == 1797 and src.spec.shape == (1, 8, 8) and src.spec.num_classes == 10
    x, y = src.batch(8)
    assert x.shape == (8, 1, 8, 8) and x.dtype == torch.float32 and y.shape == (8,)
    allx = src.all_images()
    assert allx.min() == -1.0 and allx.max() == 1.0


def test_digits_resized_and_rgb():
    src = build(dataset="digits", image_size=16, channels=3)
    x, _ = src.batch(4)
    assert x.shape == (4, 3, 16, 16)
    assert torch.equal(x[:, 0], x[:, 2])  # gray replicated into RGB


def test_epoch_sampler_covers_each_item_once_per_epoch_and_resumes():
    s = EpochSampler(10, seed=3)
    first = torch.cat([s.take(4), s.take(4), s.take(2)])
    assert sorted(first.tolist()) == list(range(10))
    state = s.state_dict()
    a = s.take(7)
    s2 = EpochSampler(10, seed=99)
    s2.load_state_dict(state)
    assert torch.equal(s2.take(7), a)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_sources_read_gzipped_and_plain(idx_dir, name):
    train = build(dataset=name, path=str(idx_dir))
    assert len(train) == 60 and train.spec.shape == (1, 28, 28) and train.spec.num_classes == 10
    test = build(dataset=name, path=str(idx_dir), split="test")  # the plain, un-gzipped files
    assert len(test) == 20
    raw = read_idx(idx_dir / "t10k-images-idx3-ubyte")
    expect = torch.from_numpy(raw[:3].astype(np.float32)) / 127.5 - 1
    assert torch.allclose(test.all_images(3)[:, 0], expect)


def test_idx_errors_are_clear(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x07\x03garbage")
    with pytest.raises(GanforgeError, match="bad magic"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((2, 3, 3), np.uint8))
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(GanforgeError, match="size mismatch"):
        read_idx(short)
    with pytest.raises(GanforgeError, match="needs --data DIR"):
        build(dataset="mnist")
    with pytest.raises(GanforgeError, match="no such directory"):
        build(dataset="mnist", path=str(tmp_path / "nope"))
    with pytest.raises(GanforgeError, match="missing train-images"):
        build(dataset="mnist", path=str(tmp_path))


def test_cifar10_batches(cifar_dir):
    src = build(dataset="cifar10", path=str(cifar_dir))
    assert len(src) == 20 and src.spec.shape == (3, 32, 32) and src.spec.num_classes == 10
    gray = build(dataset="cifar10", path=str(cifar_dir), split="test", channels=1, image_size=16)
    assert len(gray) == 5 and gray.spec.shape == (1, 16, 16)


def test_cifar10_refuses_foreign_pickles_and_wrong_shapes(tmp_path):
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    d = tmp_path / "evil"
    d.mkdir()
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f, protocol=2)
    with pytest.raises(GanforgeError, match="refused"):
        build(dataset="cifar10", path=str(d))
    assert not marker.exists()

    d2 = tmp_path / "shape"
    d2.mkdir()
    with open(d2 / "data_batch_1", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(GanforgeError, match=r"\[N, 3072\]"):
        build(dataset="cifar10", path=str(d2))


def test_folder_mixed_modes_skips_and_counts_the_corrupt_file(image_folder, caplog):
    src = build(dataset="folder", path=str(image_folder), image_size=16, channels=3)
    assert len(src) == 6  # 7 image-named files, one corrupt
    assert src.skipped == [str(image_folder / "broken.jpg")]
    assert "broken.jpg" in caplog.text
    x, y = src.batch(6)
    assert x.shape == (6, 3, 16, 16) and y is None
    assert x.min() >= -1 and x.max() <= 1
    gray = build(dataset="folder", path=str(image_folder), image_size=8, channels=1)
    assert gray.spec.shape == (1, 8, 8)


def test_folder_alpha_is_composited_on_white(tmp_path):
    from PIL import Image

    d = tmp_path / "a"
    d.mkdir()
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(d / "clear.png")
    src = build(dataset="folder", path=str(d), image_size=8)
    assert torch.allclose(src.all_images(), torch.ones(1, 3, 8, 8))


def test_folder_class_subfolders_give_labels(tmp_path):
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "f" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (10, 10), (i * 50, 0, 0)).save(tmp_path / "f" / cls / f"{i}.png")
    src = build(dataset="folder", path=str(tmp_path / "f"), image_size=8)
    assert src.spec.num_classes == 2 and src.spec.class_names == ["cats", "dogs"]
    assert sorted(src.labels.tolist()) == [0, 0, 1, 1]


def test_folder_without_images_names_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanforgeError, match="empty: no images"):
        build(dataset="folder", path=str(tmp_path / "empty"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"nope")
    with pytest.raises(GanforgeError, match="junk: none of the 1 image files could be read"):
        build(dataset="folder", path=str(tmp_path / "junk"))


def test_folder_streams_through_a_dataloader_and_resumes(image_folder):
    cfg = DataConfig(dataset="folder", path=str(image_folder), image_size=8, loader="stream", workers=0)
    src = build_source(cfg, seed=0, device=CPU, batch_size=2)
    assert type(src).__name__ == "StreamSource"
    a = [src.batch(2)[0] for _ in range(2)]
    state = src.state_dict()
    b = src.batch(2)[0]
    src2 = build_source(cfg, seed=5, device=CPU, batch_size=2)
    src2.load_state_dict(state)
    assert torch.equal(src2.batch(2)[0], b)
    assert a[0].shape == (2, 3, 8, 8)


@pytest.mark.parametrize("name, modes, sigma", [("toy2d-ring", 8, 0.01), ("toy2d-grid", 25, 0.05)])
def test_toy2d_mixtures(name, modes, sigma):
    centers, s = toy2d_centers(name)
    assert centers.shape == (modes, 2) and s == sigma
    src = build(dataset=name)
    x, y = src.batch(4000)
    assert x.shape == (4000, 2) and y is None
    d = torch.cdist(x.double(), centers).min(1).values
    assert (d < 4 * sigma).float().mean() > 0.99  # every point sits on a mode
    nearest = torch.cdist(x.double(), centers).argmin(1)
    assert len(nearest.unique()) == modes  # and every mode is used
    with pytest.raises(GanforgeError, match="2-D points"):
        build(dataset=name, image_size=8)


@pytest.mark.skipif(not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_the_debian_package():
    src = build(dataset="fashion-mnist")  # no --data: the Debian location is the default
    assert len(src) == 60000 and src.spec.shape == (1, 28, 28) and src.spec.num_classes == 10
    assert len(build(dataset="fashion-mnist", split="test")) == 10000
    assert sorted(src.labels.unique().tolist()) == list(range(10))
