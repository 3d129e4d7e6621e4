"""The `conditional` and `infogan_codes` metric groups: tiny cGAN / InfoGAN runs end to end through the CLI,
and oracle generators built from real digits (the classifier's own held-out split) whose class accuracy and
code agreement are known in advance: the classifier's real accuracy for a perfect generator, chance for one
that ignores its labels."""

import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch
import torch.nn as nn

from ganforge.config import Config, set_value
from ganforge.errors import GanforgeError
from ganforge.evaluate import evaluate_generator, format_table
from ganforge.evaluate.real import classifier_test_set
from ganforge.metrics import best_matching_accuracy
from ganforge.metrics.features import select_extractor

TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=100", "--set", "log.checkpoint_every=2", "--set", "log.log_every=1",
        "--quiet", "--no-report"]
N = 1000  # 100 samples per class: class accuracy within +-0.017 (4 sigma) of its expectation
K = 10
CONDITIONAL_KEYS = ("class_accuracy", "class_accuracy_real", "class_accuracy_ratio", "intra_fid", "intra_fid_floor")


def _cfg(**sets: Any) -> Config:
    """A digits config at the classifier's 8x8 geometry, all 1,797 items."""
    cfg = Config()
    for k, v in {"data.dataset": "digits", "data.image_size": 8, "data.channels": 1, "model.z_dim": 16, **sets}.items():
        set_value(cfg, k, v)
    return cfg


class _Oracle(nn.Module):
    """G(z, y): a real image of class mapping[y] (uniform over that class's images, the index taken from z);
    `ignore`: a real image of any class, whatever y says."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mapping: Optional[list[int]] = None,
                 ignore: bool = False) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))  # generate() reads the device from a parameter
        self.images, self.ignore, self.num_classes = images, ignore, K
        self.by_class = [images[labels == c] for c in range(K)]
        self.mapping = list(range(K)) if mapping is None else mapping

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = torch.arange(len(z)) % K if y is None else y
        u = 0.5 * (1 + torch.erf(z[:, 0] / math.sqrt(2.0)))  # [B] uniform on (0, 1)
        if self.ignore:
            return self.images[(u * len(self.images)).long().clamp(max=len(self.images) - 1)]
        out = []
        for c, ui in zip(y.tolist(), u):
            pool = self.by_class[self.mapping[c]]
            out.append(pool[min(int(ui * len(pool)), len(pool) - 1)])
        return torch.stack(out)  # [B, 1, 8, 8]


@pytest.fixture(scope="module")
def held_out() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """The digits classifier's held-out images, their labels and the classifier's predictions on them."""
    x, y, _ = classifier_test_set(_cfg())
    assert x is not None and y is not None and len(x) == 450
    pred = select_extractor("digits", (1, 8, 8))(x)[1]
    return x, y, pred


def _expected(labels: torch.Tensor, pred: np.ndarray) -> tuple[float, float]:
    """(mean, std) of the class accuracy of a perfect oracle drawing N // K items of each class uniformly from
    the held-out images: item-wise Bernoulli(acc_k) with acc_k the classifier's accuracy on class k."""
    acc = np.array([np.mean(pred[labels.numpy() == c] == c) for c in range(K)])  # [K]
    per = N // K
    return float(acc.mean()), float(math.sqrt(np.sum(per * acc * (1 - acc))) / N)


def test_a_perfect_conditional_generator_scores_the_classifiers_real_accuracy(held_out):
    x, y, pred = held_out
    cfg = _cfg(**{"model.conditioning": "concat", "model.num_classes": K})
    r = evaluate_generator(_Oracle(x, y), cfg, None, 0, n=N, metrics=["conditional"], write=False)
    m, p = r["metrics"], r["protocol"]["conditional"]
    assert set(m) == set(CONDITIONAL_KEYS)
    real = float(np.mean(pred == y.numpy()))
    assert m["class_accuracy_real"] == pytest.approx(real, abs=1e-12) == pytest.approx(442 / 450, abs=1e-12)  # 98.22%
    mean, std = _expected(y, pred)
    tol = 4 * std + abs(mean - real)  # 4 sigma around the class-balanced expectation, plus its gap to the real accuracy
    assert abs(m["class_accuracy"] - real) <= tol, (m["class_accuracy"], real, tol)
    assert m["class_accuracy_ratio"] == pytest.approx(m["class_accuracy"] / real, rel=1e-12)
    assert p["per_class_n"] == N // K and len(p["class_accuracy_per_class"]) == K and p["intra_fid_n"] == 87
    assert "digits_split test part (450)" in p["real"] and "biased upward at small n" in p["intra_fid_note"]
    assert m["intra_fid"] == pytest.approx(np.mean(p["intra_fid_per_class"]), rel=1e-3)
    # real digits of the right class: intra-FID near the real-vs-real floor (the oracle repeats ~45 images
    # per class, so somewhat above it), and far below a generator that ignores its labels (next test)
    assert m["intra_fid_floor"] < m["intra_fid"] < 4 * m["intra_fid_floor"], (m["intra_fid"], m["intra_fid_floor"])


def test_a_generator_that_ignores_its_labels_scores_chance(held_out):
    x, y, _ = held_out
    cfg = _cfg(**{"model.conditioning": "concat", "model.num_classes": K})
    r = evaluate_generator(_Oracle(x, y, ignore=True), cfg, None, 0, n=N, metrics=["conditional"], write=False)
    m = r["metrics"]
    # balanced requests: E[accuracy] = sum_k (1/K) P(pred = k) = 1/K exactly; std <= sqrt(0.1 * 0.9 / N) = 0.0095
    assert abs(m["class_accuracy"] - 1 / K) <= 4 * math.sqrt(0.1 * 0.9 / N), m["class_accuracy"]
    assert m["intra_fid"] > 10 * m["intra_fid_floor"]


def test_an_infogan_oracle_has_its_codes_matched_to_the_classes(held_out):
    x, y, pred = held_out
    perm = np.random.default_rng(3).permutation(K).tolist()
    cfg = _cfg(**{"model.info_cat": K, "model.info_cont": 2})
    r = evaluate_generator(_Oracle(x, y, mapping=perm), cfg, None, 0, n=N, metrics=["infogan_codes"], write=False)
    m, p = r["metrics"], r["protocol"]["infogan_codes"]
    assert set(m) == {"code_agreement", "code_agreement_real"}
    assert p["matching"] == perm and p["per_code_n"] == N // K and np.array(p["confusion"]).sum() == N
    real = m["code_agreement_real"]
    assert real == pytest.approx(442 / 450, abs=1e-12)
    mean, std = _expected(y, pred)  # with the matching recovered, agreement is the class accuracy of the oracle
    assert abs(m["code_agreement"] - real) <= 4 * std + abs(mean - real), m["code_agreement"]


def test_an_infogan_generator_that_ignores_its_code_scores_chance(held_out):
    x, y, pred = held_out
    cfg = _cfg(**{"model.info_cat": K, "model.info_cont": 2})
    r = evaluate_generator(_Oracle(x, y, ignore=True), cfg, None, 0, n=N, metrics=["infogan_codes"], write=False)
    agreement = r["metrics"]["code_agreement"]
    # the null: each code's N // K predictions ~ Multinomial(q), q the classifier's predicted-class shares on the
    # held-out images; the best matching picks the largest cells, so it sits a little above 1/K
    q = np.bincount(pred, minlength=K) / len(pred)
    rng = np.random.default_rng(0)
    null = [best_matching_accuracy(rng.multinomial(N // K, q, size=K)) for _ in range(300)]
    mu, sd = float(np.mean(null)), float(np.std(null))
    assert 1 / K < mu < 0.2 and abs(agreement - mu) <= 4 * sd, (agreement, mu, sd)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    """A 4-step cGAN digits run, evaluated every 2 steps with the best checkpoint by class accuracy."""
    from ganforge.cli import main

    run = tmp_path_factory.mktemp("cond") / "cgan"
    code = main(["train", "--dataset", "digits", "--preset", "cgan", "--steps", "4", "--out", str(run),
                 "--eval-every", "2", "--eval-metric", "class_accuracy", "--set", "log.eval_n=40", *TINY])
    assert code == 0
    return run


def test_a_cgan_run_gets_the_conditional_metrics(cgan_run, run_cli):
    from ganforge.evaluate import read_metrics

    lines = read_metrics(cgan_run)  # in-training evaluation measured them too, and kept the best by class_accuracy
    assert [r["step"] for r in lines] == [2, 4] and all(k in lines[-1]["metrics"] for k in CONDITIONAL_KEYS)
    assert json.loads((cgan_run / "checkpoints" / "best.json").read_text())["metric"] == "class_accuracy"
    code, out, err = run_cli("eval", "--run", str(cgan_run), "--n", "40", "--json", "--no-write")
    assert code == 0, err
    r = json.loads(out)
    m, p = r["metrics"], r["protocol"]["conditional"]
    for key in CONDITIONAL_KEYS:
        assert key in m and math.isfinite(m[key]), key
    assert 0.0 <= m["class_accuracy"] <= 1.0 and m["class_accuracy_real"] == pytest.approx(442 / 450, abs=1e-12)
    assert m["intra_fid"] > m["intra_fid_floor"] >= 0.0 and p["per_class_n"] == 4 and p["intra_fid_n"] >= 2
    assert "code_agreement" not in m  # infogan_codes does not apply to a cGAN
    code, out, err = run_cli("eval", "--run", str(cgan_run), "--n", "40", "--no-write", "--metrics", "conditional")
    assert code == 0, err
    assert "class_accuracy" in out and "(real held-out)" in out and "conditional: per_class_n=4" in out


def test_an_infogan_run_gets_code_agreement(tmp_path, run_cli):
    run = tmp_path / "info"
    code, _, err = run_cli("train", "--dataset", "digits", "--preset", "infogan", "--steps", "2", "--out", str(run),
                           *TINY, "--z-dim", "16")
    assert code == 0, err
    code, out, err = run_cli("eval", "--run", str(run), "--n", "40", "--json", "--no-write", "--metrics", "infogan_codes")
    assert code == 0, err
    r = json.loads(out)
    assert 0.1 <= r["metrics"]["code_agreement"] <= 1.0  # >= 1/K: the best matching takes each code's top class at worst once
    assert len(r["protocol"]["infogan_codes"]["confusion"]) == K and sorted(r["protocol"]["infogan_codes"]["matching"]) == list(range(K))
    assert "infogan_codes confusion:" in format_table(r)
    code, _, err = run_cli("eval", "--run", str(run), "--n", "40", "--no-write", "--metrics", "conditional")
    assert code == 2 and "--metrics conditional: model.conditioning is 'none'" in err


def test_the_groups_do_not_apply_to_an_unconditional_run(tmp_path, run_cli):
    run = tmp_path / "plain"
    code, _, err = run_cli("train", "--dataset", "digits", "--steps", "2", "--out", str(run), *TINY)
    assert code == 0, err
    for group, why in (("conditional", "model.conditioning is 'none': the generator takes no class labels"),
                       ("infogan_codes", "model.info_cat is 0: the generator has no categorical code")):
        code, out, err = run_cli("eval", "--run", str(run), "--n", "40", "--no-write", "--metrics", group)
        assert code == 2 and err.strip() == f"ganforge eval: error: --metrics {group}: {why}", err
    code, out, err = run_cli("eval", "--run", str(run), "--n", "40", "--json", "--no-write")
    assert code == 0, err
    m = json.loads(out)["metrics"]
    assert "fid" in m and not {"class_accuracy", "intra_fid", "code_agreement"} & set(m)


def test_intra_fid_needs_two_items_of_each_class_for_reference_and_floor(held_out):
    x, y, _ = held_out
    cfg = _cfg(**{"model.conditioning": "concat", "model.num_classes": K, "data.max_items": 25})  # 2-3 per class
    r = evaluate_generator(_Oracle(x, y), cfg, None, 0, n=40, metrics=["conditional"], write=False)
    assert set(r["metrics"]) == {"class_accuracy", "class_accuracy_real", "class_accuracy_ratio"}
    assert r["protocol"]["conditional"]["intra_fid"].startswith("not computed: 1 items per class")
    assert r["metrics"]["class_accuracy_real"] == pytest.approx(442 / 450, abs=1e-12)  # the full split, whatever max_items


def test_a_conditional_run_without_a_shipped_classifier_says_why():
    from ganforge.evaluate import METRIC_GROUPS, EvalContext, load_real

    cfg = _cfg(**{"data.dataset": "toy2d-ring", "model.conditioning": "concat"})
    real = load_real(cfg)
    ctx = EvalContext(cfg, real, select_extractor("toy2d-ring", (2,)), None, 0, 0, False)
    assert METRIC_GROUPS.get("conditional").applies(ctx) == "'toy2d-ring' has no labels or no shipped classifier for its classes (points)"
    with pytest.raises(GanforgeError, match="generate: labels must have shape"):
        from ganforge.nets.load import generate

        generate(_Oracle(torch.zeros(K, 1, 8, 8), torch.arange(K)), 4, 16, labels=torch.arange(3))
