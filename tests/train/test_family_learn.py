"""Each preset learns: short CPU runs on the built-in digits beat their untrained starting point on a
measured criterion — pixel-space Fréchet distance to the 1,797 real digits, the class accuracy of
conditional samples and the agreement of InfoGAN's categorical code with the digit classes, both
judged by a logistic-regression classifier fitted here on the real digits (chance: 0.1).

The default runs are small (about 100-300 steps, width 16); @slow runs every preset longer
(`make test-slow`; docs/presets.md records what they reached)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.config import Config, apply_dict, get_preset, set_value
from ganforge.metrics.fid import fid
from ganforge.run import RunDir
from ganforge.train import Trainer

N_EVAL = 500


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    d = load_digits()
    x = d.images.reshape(-1, 64) / 8.0 - 1.0  # [1797, 64] in [-1, 1], as the data source scales them
    clf = LogisticRegression(max_iter=3000).fit(x, d.target)
    assert clf.score(x, d.target) > 0.95
    return x, clf, d.target  # pixels [1797, 64], the fitted classifier, the true classes [1797]


def measure(t: Trainer, digits) -> dict[str, float]:
    """Pixel FID to the real digits; class accuracy (conditional) or code/class agreement (InfoGAN)."""
    x_real, clf, _ = digits
    z = torch.randn(N_EVAL, t.cfg.model.z_dim, generator=torch.Generator().manual_seed(123))
    k = t.cfg.model.num_classes or t.cfg.model.info_cat or None
    y = torch.arange(N_EVAL) % k if k else None
    x = t.generate(z, y).reshape(N_EVAL, 64).double().numpy()  # [N, 1, 8, 8] -> [N, 64]
    out = {"fid": fid(x_real, x)["fid"]}
    if k:
        pred = clf.predict(x)
        if t.cfg.model.num_classes:
            out["class_acc"] = float((pred == y.numpy()).mean())
        else:
            out["code_agreement"] = matched_accuracy(y.numpy(), pred, k)
    return out


def matched_accuracy(codes: np.ndarray, classes: np.ndarray, k: int) -> float:
    """Accuracy of the best one-to-one mapping of codes to classes (Hungarian matching)."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((k, 10))
    np.add.at(counts, (codes, classes), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(codes))


def train_preset(name: str, steps: int, width: int, tmp_path, digits, **sets) -> tuple[Trainer, dict, dict]:
    cfg = Config()
    apply_dict(cfg, get_preset(name).overrides)
    apply_dict(cfg, get_preset(name).for_data("digits"))  # the recipe `--preset NAME --dataset digits` trains
    cfg.preset = name
    base = {"data.dataset": "digits", "train.steps": steps, "train.batch_size": 32, "model.g_width": width,
            "model.d_width": width, "log.log_every": 50, "log.grad_every": 10**6, "log.sample_every": 10**6,
            "log.checkpoint_every": 10**6, "alarms.enabled": False}
    if name != "infogan":
        base["model.z_dim"] = 32
    for k, v in {**base, **sets}.items():
        set_value(cfg, k, v)
    t = Trainer(cfg)
    before = measure(t, digits)
    run = RunDir(tmp_path / name)
    run.create()
    t.train(run, quiet=True)
    after = measure(t, digits)
    print(f"\n{name} {steps} steps width {width} {sets or ''}: before {before} after {after}")  # shown with -s
    return t, before, after


# preset -> (steps, width, FID after / FID before must be below)
FAST = {
    "dcgan-ns": (150, 16, 0.7),
    "lsgan": (150, 16, 0.8),
    "wgan": (100, 16, 0.85),
    "began": (120, 16, 0.9),
}


@pytest.mark.parametrize("name", list(FAST))
def test_preset_beats_its_untrained_start(tmp_path, digits, name):
    steps, width, ratio = FAST[name]
    _, before, after = train_preset(name, steps, width, tmp_path, digits)
    assert after["fid"] < ratio * before["fid"], (before, after)


def test_acgan_samples_are_of_the_requested_class(tmp_path, digits):
    # z times the label and a classifier taught on real images: classes come later than with concatenated
    # labels (measured, seeds 0 and 1: 0.28 and 0.35 at 150 steps, 0.50 and 0.61 at 300, 0.92 and 0.90 at 600
    # steps width 32), but G keeps its noise (the concatenated recipe drew one image per class)
    t, before, after = train_preset("acgan", 300, 16, tmp_path, digits)
    assert before["class_acc"] < 0.2  # untrained: chance
    assert after["class_acc"] > 0.4
    assert after["fid"] < 0.5 * before["fid"]
    # variety within a class: the samples' per-pixel spread over 100 noise vectors, against the real
    # digits' of that class (measured: 0.60 here; 0.03 for the concatenated recipe at 300 and 2,000 steps)
    x_real, _, classes = digits
    ratios = []
    for k in range(10):
        z = torch.randn(100, t.cfg.model.z_dim, generator=torch.Generator().manual_seed(k))
        x = t.generate(z, torch.full((100,), k)).reshape(100, 64).double().numpy()  # [100, 1, 8, 8] -> [100, 64]
        ratios.append(x.std(0).mean() / x_real[classes == k].std(0).mean())
    assert 0.3 < float(np.mean(ratios)) < 1.5, ratios


def test_cgan_samples_are_of_the_requested_class(tmp_path, digits):
    _, before, after = train_preset("cgan", 300, 16, tmp_path, digits)
    assert before["class_acc"] < 0.2
    assert after["class_acc"] > 0.4
    assert after["fid"] < 0.6 * before["fid"]


def test_infogan_categorical_code_agrees_with_the_digit_classes(tmp_path, digits):
    """Trained without labels, the 10-way code ends up choosing the digit clearly better than chance."""
    # the digits recipe (MLP nets of 512 units, 10 noise entries at std 0.1); measured at 400 steps: agreement
    # 0.114 -> 0.542, FID 45.8 -> 11.4, info/mi_cat 0.004, 0.046, 0.77, 1.98, 2.19, 2.24, 2.26, 2.28
    # without the recipe's EMA of G (0.999, for its 8,000 steps): after 400 steps it would still weigh the
    # untrained G 0.67
    t, before, after = train_preset("infogan", 400, 512, tmp_path, digits, **{"train.ema_decay": None})
    assert before["code_agreement"] < 0.2
    assert after["code_agreement"] > 0.4
    assert after["fid"] < 0.4 * before["fid"]
    from ganforge.run import read_stats

    mi = [r["info/mi_cat"] for r in read_stats(t.run.stats)]
    # the lower bound ln K - CE on I(c; G(z, c)) climbs from ~0 toward ln K
    assert mi[0] < 0.1 and mi == sorted(mi) and 2.0 < mi[-1] <= math.log(10)


# ---------------------------------------------------------------------------- slow: every preset, longer

SLOW = {  # preset -> (steps, width, FID ratio bound, extra bound)
    "dcgan-ns": (600, 32, 0.4, None),
    "lsgan": (600, 32, 0.5, None),
    "wgan": (600, 32, 0.6, None),
    "wgan-gp": (500, 16, 0.8, None),
    "sngan-hinge": (500, 16, 0.8, None),
    "sagan": (500, 16, 0.9, None),
    "began": (600, 32, 0.8, None),
    "infogan": (2000, 512, 0.25, ("code_agreement", 0.7)),  # measured: FID 45.8 -> 6.4, agreement 0.816
    "cgan": (600, 32, 0.5, ("class_acc", 0.6)),
    # FID only: with conditional BN in G and a spectrally normalised projection, the classes emerge
    # too slowly for a CPU run (class accuracy still ~0.1 after 400 steps; see docs/presets.md)
    "cgan-projection": (400, 16, 0.8, None),
    "acgan": (600, 32, 0.5, ("class_acc", 0.9)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SLOW))
def test_every_preset_learns_in_a_longer_run(tmp_path, digits, name):
    steps, width, ratio, extra = SLOW[name]
    # G itself, not an EMA (infogan's digits recipe keeps one of 0.999, sized for its 8,000 steps)
    _, before, after = train_preset(name, steps, width, tmp_path, digits, **{"train.ema_decay": None})
    assert after["fid"] < ratio * before["fid"], (before, after)
    if extra is not None:
        key, bound = extra
        assert after[key] > bound, (before, after)


@pytest.mark.slow
def test_projection_discriminator_makes_the_requested_classes(tmp_path, digits):
    """The projection D (Miyato & Koyama 2018) on DCGAN nets with a label embedding in G."""
    _, before, after = train_preset("cgan", 300, 16, tmp_path, digits, **{"model.conditioning": "projection"})
    assert before["class_acc"] < 0.2
    assert after["class_acc"] > 0.8
