"""Feature extractors: the shipped classifiers meet their accuracy targets, features do not
depend on the extraction batch size, Inception weights are hash-checked, fallbacks say so."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_source
from ganforge.errors import GanforgeError
from ganforge.metrics import fid, kid
from ganforge.metrics.features import (
    INCEPTION_SHA256,
    classifier_extractor,
    classifier_path,
    select_extractor,
    sha256_file,
)
from ganforge.data.splits import digits_split

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    src = build_source(DataConfig(dataset="digits"), 0, torch.device("cpu"))
    _, test_idx = digits_split()
    idx = torch.as_tensor(test_idx)
    return src.all_images()[idx], src.labels[idx]


def test_digits_split_is_fixed_disjoint_and_complete():
    tr, te = digits_split()
    assert len(tr) == 1347 and len(te) == 450
    assert len(np.intersect1d(tr, te)) == 0 and len(np.union1d(tr, te)) == 1797
    tr2, te2 = digits_split()
    np.testing.assert_array_equal(te, te2)


def test_shipped_digits_classifier_meets_its_target():
    x, y = _digits_test()
    _, pred = classifier_extractor("digits")(x)
    acc = float((torch.as_tensor(pred) == y).float().mean())
    assert 0.97 <= acc <= 1.0
    meta = classifier_extractor("digits").info
    assert float(meta["test_accuracy"]) == pytest.approx(acc, abs=5e-4)  # the recorded number is this one


@pytest.mark.skipif(not FASHION.is_dir() or not classifier_path("fashion-mnist").is_file(), reason="fashion-mnist files not installed")
def test_shipped_fashion_classifier_meets_its_target():
    src = build_source(DataConfig(dataset="fashion-mnist", split="test"), 0, torch.device("cpu"))
    x, y = src.all_images(), src.labels
    _, pred = classifier_extractor("fashion-mnist")(x, batch=1000)
    acc = float((torch.as_tensor(pred) == y).float().mean())
    assert 0.91 <= acc <= 1.0


def test_shipped_weights_are_small():
    for name in ("digits", "fashion-mnist"):
        assert classifier_path(name).is_file()
        assert classifier_path(name).stat().st_size < 1_000_000


def test_features_and_fid_do_not_depend_on_the_batch_size():
    x, _ = _digits_test()
    ext = classifier_extractor("digits")
    f_big, p_big = ext(x, batch=450)
    f_small, p_small = ext(x, batch=7)
    np.testing.assert_allclose(f_small, f_big, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p_small, p_big)
    real, fake = f_big[:225], f_big[225:]
    ref = fid(real, fake)["fid"]
    assert fid(f_small[:225], f_small[225:])["fid"] == pytest.approx(ref, rel=1e-6)
    assert 0.0 < ref < 50.0  # two halves of real test digits: close but not identical
    assert kid(f_small[:225], f_small[225:], subsets=5, subset_size=100)["kid_mean"] == pytest.approx(
        kid(real, fake, subsets=5, subset_size=100)["kid_mean"], rel=1e-4, abs=1e-6)


def test_feature_dim_and_geometry_conversion():
    ext = classifier_extractor("digits")
    x = torch.rand(5, 3, 32, 32) * 2 - 1  # RGB 32x32 is converted to the net's 1x8x8
    f, p = ext(x)
    assert f.shape == (5, 128) and f.dtype == np.float64 and p.shape == (5,)


def test_wrong_inception_weights_hash_is_an_error(tmp_path):
    fake = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    fake.write_bytes(b"not the inception weights")
    assert sha256_file(fake) != INCEPTION_SHA256
    with pytest.raises(GanforgeError, match="SHA-256 .* does not match"):
        select_extractor("digits", (1, 8, 8), "auto", inception_weights=fake)
    with pytest.raises(GanforgeError, match="no such file"):
        select_extractor("digits", (1, 8, 8), "auto", inception_weights=tmp_path / "missing.pth")


def test_missing_inception_weights_fall_back_and_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch-fidelity cache
    ext = select_extractor("digits", (1, 8, 8), "inception")
    assert ext.name == "classifier:digits"
    assert "Inception-v3 weights not found" in ext.note and "--inception-weights" in ext.note
    assert INCEPTION_SHA256 in ext.note and "Falling back" in ext.note


def test_data_without_a_shipped_classifier_falls_back_to_pixels():
    ext = select_extractor("cifar10", (3, 32, 32))
    assert ext.name == "pixels16" and "fallback" in ext.note and not ext.classifier
    f, p = ext(torch.zeros(4, 3, 32, 32))
    assert f.shape == (4, 3 * 16 * 16) and p is None
    mnist = select_extractor("mnist", (1, 28, 28))
    if not classifier_path("mnist").is_file():  # no mnist net is shipped: said so
        assert mnist.name == "pixels16" and "mnist" in mnist.note
    with pytest.raises(GanforgeError, match="no classifier is shipped for 'cifar10'"):
        select_extractor("cifar10", (3, 32, 32), "classifier")
    with pytest.raises(GanforgeError, match="unknown --features"):
        select_extractor("digits", (1, 8, 8), "vgg")
