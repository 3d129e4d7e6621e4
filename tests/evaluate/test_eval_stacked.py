"""Stacked digits: the data source builds the stacks it claims, and the mode counter
(the shipped digits classifier on each channel) counts constructed stacks correctly."""

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_source
from ganforge.errors import GanforgeError
from ganforge.evaluate import _stacked_digits
from ganforge.metrics import stacked_modes
from ganforge.metrics.features import classifier_extractor
from ganforge.data.splits import digits_split


def _test_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    _, te = digits_split()
    return torch.as_tensor(d.images[te].astype(np.float32) / 8.0 - 1.0), torch.as_tensor(d.target[te])


def test_stacked_digits_source_shapes_labels_and_channels():
    src = build_source(DataConfig(dataset="stacked-digits", max_items=500), 0, torch.device("cpu"))
    assert src.spec.shape == (3, 8, 8) and src.spec.num_classes == 1000 and len(src) == 500
    from sklearn.datasets import load_digits

    d = load_digits()
    base = torch.as_tensor(d.images.astype(np.float32) / 8.0 - 1.0).flatten(1)  # [1797, 64]
    x, y = src.all_images(), src.labels
    for i in range(0, 500, 50):  # every channel is a base digit whose label is that place of the mode
        for c, place in enumerate((100, 10, 1)):
            match = (base == x[i, c].flatten()).all(1).nonzero().flatten()
            assert len(match) >= 1
            assert int(y[i]) // place % 10 in set(d.target[match.numpy()].tolist())
    assert len(torch.unique(y)) > 300  # 500 random stacks hit many of the 1,000 modes


def test_stacked_source_rejects_one_channel():
    with pytest.raises(GanforgeError, match="3 channels"):
        build_source(DataConfig(dataset="stacked-digits", channels=1), 0, torch.device("cpu"))
    with pytest.raises(GanforgeError, match="needs --data"):
        build_source(DataConfig(dataset="stacked-mnist"), 0, torch.device("cpu"))


def test_mode_counter_on_constructed_stacks():
    x, y = _test_digits()
    ext = classifier_extractor("digits")
    # One stack per mode: image of digit d drawn from the held-out digits for each place.
    by_digit = [x[y == d] for d in range(10)]
    modes = np.arange(1000)
    places = np.stack([modes // 100, modes // 10 % 10, modes % 10], axis=1)  # [1000, 3]
    rng = np.random.default_rng(0)
    stacks = torch.stack([
        torch.stack([by_digit[d][rng.integers(len(by_digit[d]))] for d in row]) for row in places
    ])  # [1000, 3, 8, 8]
    digits = _stacked_digits(ext, stacks)
    assert (digits == places).all(1).mean() >= 0.9  # each stack's three digits read back
    out = stacked_modes(digits)
    assert 900 <= out["modes_covered"] <= 1000
    assert 0.0 <= out["mode_kl"] < 0.15
    # A collapsed "generator": the same stack repeated covers one mode with KL = log(1000).
    same = stacks[314:315].expand(200, -1, -1, -1)
    collapsed = stacked_modes(_stacked_digits(ext, same))
    assert collapsed["modes_covered"] == 1
    assert collapsed["mode_kl"] == pytest.approx(np.log(1000), rel=1e-9)


def test_stacked_mnist_from_idx_files(idx_dir):
    src = build_source(DataConfig(dataset="stacked-mnist", path=str(idx_dir), max_items=40), 0, torch.device("cpu"))
    x, y = src.batch(40)
    assert x.shape == (40, 3, 28, 28) and x.min() >= -1 and x.max() <= 1
    # idx_dir labels are index % 10 and its images are distinct: recover each channel's digit.
    from ganforge.data.files import load_idx_split

    images, labels = load_idx_split(idx_dir, "train")
    base = torch.as_tensor(images).float().div(127.5).sub(1).flatten(1)  # [60, 784]
    for i in range(40):
        digits = [int(labels[(base == x[i, c].flatten()).all(1).nonzero()[0, 0]]) for c in range(3)]
        assert int(y[i]) == 100 * digits[0] + 10 * digits[1] + digits[2]


class _StackOracle(torch.nn.Module):
    """G(z): a real stack drawn uniformly from `stacks` (the index from z's first entry); `modes` limits
    it to the stacks of the first `modes` modes it meets (a generator that misses the rest)."""

    def __init__(self, stacks: torch.Tensor) -> None:
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # generate() reads the device from a parameter
        self.stacks = stacks

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0] / 2**0.5))  # [B] uniform on (0, 1)
        return self.stacks[(u * len(self.stacks)).long().clamp(max=len(self.stacks) - 1)]


def _count_modes(stacks: torch.Tensor, max_items=None, n: int = 2000) -> dict:
    """`ganforge eval --metrics modes` on stacked-digits (data.max_items as given) for an oracle G of `stacks`."""
    from ganforge.config import Config, set_value
    from ganforge.evaluate import evaluate_generator

    cfg = Config()
    set_value(cfg, "data.dataset", "stacked-digits")
    if max_items is not None:
        set_value(cfg, "data.max_items", max_items)
    return evaluate_generator(_StackOracle(stacks), cfg, None, 0, n=n, metrics=["modes"], write=False)


def test_stacked_modes_are_counted_on_the_protocols_26000_samples():
    """At FID's n (2,000) even real stacks cover ~865 of the 1,000 modes; the count uses 26,000 samples,
    where a sampler of real stacks covers nearly all of them with a KL to uniform near its sampling floor."""
    from ganforge.evaluate.builtin import STACKED_N

    src = build_source(DataConfig(dataset="stacked-digits"), 0, torch.device("cpu"))
    real = src.all_images()  # [128000, 3, 8, 8]: the training stacks, drawn with z's own randomness
    r = _count_modes(real)
    m, proto = r["metrics"], r["protocol"]["modes"]
    assert STACKED_N == 26_000 and proto["n"] == 26_000 and proto["n_real"] == 26_000
    # 26,000 uniform draws over 1,000 modes miss each mode with probability e^-26: all covered, and the
    # multinomial KL bias is (M - 1) / 2N = 0.019 (0.0245 measured on the real stacks: the base digits'
    # classes are not quite balanced). The oracle resamples the 128,000 training stacks (PacGAN's count),
    # themselves a sample: their own (M - 1) / 2N = 0.004 more.
    assert len(real) == 128_000
    assert 990 <= m["modes_covered"] <= 1000 and 990 <= m["modes_covered_real"] <= 1000
    assert 0.015 <= m["mode_kl_real"] <= 0.035 and 0.018 <= m["mode_kl"] <= 0.04
    # Why 128,000: a generator that reproduced 25,000 stacks exactly measures twice the bias, at the 0.05
    # bar of issue 12's stacked target.
    small = _count_modes(real[:25_000])
    assert 0.035 <= small["metrics"]["mode_kl"] <= 0.055
    for side in ("", "_real"):  # the split is exact, on both sides
        assert m[f"mode_kl_dependence{side}"] + m[f"mode_kl_channels{side}"] == pytest.approx(m[f"mode_kl{side}"], rel=1e-9)
    # real stacks' channels are independent: their dependence is the plug-in bias (0.019; 0.020 measured),
    # and the base digits' classes nearly balanced (channels 0.0044 measured)
    assert 0.012 <= m["mode_kl_dependence_real"] <= 0.028 and 0.0 <= m["mode_kl_channels_real"] <= 0.01
    # A generator of 300 distinct stacks covers at most ~300 modes, at any sample count.
    few = _count_modes(real[:300])
    assert few["metrics"]["modes_covered"] <= 300 and few["metrics"]["mode_kl"] > 1.0


def test_stacked_real_modes_take_the_test_split_when_training_stacks_run_out():
    """With data.max_items=1000 the 26,000 real stacks are the 1,000 training stacks, then 25,000 of the
    test split's: still 26,000, covering every mode (1,000 alone cover ~630)."""
    train = build_source(DataConfig(dataset="stacked-digits", max_items=1000), 0, torch.device("cpu")).all_images()
    r = _count_modes(train, max_items=1000, n=500)
    m, proto = r["metrics"], r["protocol"]["modes"]
    assert len(train) == 1000 and proto["n_real"] == 26_000
    # the test split stacks digits_split's 450 test digits, whose classes are less even (36-54 each):
    # channels 3 x 0.0088 = 0.026 beside the count's bias of 0.019 (0.043 measured)
    assert m["modes_covered_real"] >= 990 and 0.03 <= m["mode_kl_real"] <= 0.06
    assert 0.018 <= m["mode_kl_channels_real"] <= 0.035
    # the generator repeats 1,000 stacks: 1 - e^-1 of the modes at most, and a KL far above the real one
    assert m["modes_covered"] <= 700 and m["mode_kl"] > 0.4
