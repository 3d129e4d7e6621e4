"""Metric groups for generators that take a class: `conditional` (cGAN, projection cGAN, AC-GAN:
G(z, y) with y the class) and `infogan_codes` (InfoGAN: G(z, c) with c the categorical code), both
judged by the data set's shipped classifier and registered after the built-in groups."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ..metrics import best_matching, class_accuracy, code_agreement, confusion_matrix, per_class_accuracy, per_class_fid
from .core import generate_n
from .groups import EvalContext, MetricGroup, Result, metric_group
from .real import cached, classifier_test_set, extract, real_key


def _classified(ctx: EvalContext) -> Optional[str]:
    """None when the data set's own classifier can name the classes of generated items, else why not."""
    if ctx.data_classes and ctx.labelled and not ctx.stacked:
        return None
    return f"'{ctx.name}' has no labels or no shipped classifier for its classes ({ctx.ext.name})"


def _per_class(ctx: EvalContext, k: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """n // k samples for each class (or code value) 0..k-1, generated with noise seeded by --seed:
    (requested [m], their features [m, D], their predicted classes [m])."""
    assert ctx.G is not None
    per = max(1, ctx.n // k)
    requested = torch.arange(k).repeat_interleave(per)  # [k * per]
    x = generate_n(ctx.G, ctx.cfg, len(requested), ctx.seed, labels=requested)
    feats, pred = extract(ctx.ext, x, ctx.name)
    assert pred is not None
    return requested, feats, pred


def _real_accuracy(ctx: EvalContext) -> tuple[float, np.ndarray, str]:
    """The classifier's accuracy on the real split its accuracy is documented on, per class [K], and the split."""
    x, y, what = classifier_test_set(ctx.cfg)
    k = ctx.real.num_classes
    assert k is not None
    if x is None or y is None:
        return float("nan"), np.full(k, np.nan), what
    pred = cached(("test_pred", real_key(ctx.cfg)[:-1], ctx.ext.name), lambda: extract(ctx.ext, x, ctx.name)[1])
    return float(np.mean(pred == y.numpy())), per_class_accuracy(pred, y, k), what


def _rounded(v: np.ndarray, digits: int = 4) -> list[Optional[float]]:
    """A float array as a JSON-friendly list (NaN -> None)."""
    return [None if not np.isfinite(a) else round(float(a), digits) for a in v]


def _class_reference(ctx: EvalContext, per: int) -> tuple[int, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """(m, reference, floor): m training items per class for the reference and m others for the floor
    (indices into real.train, class by class), m = min(per, smallest class // 2); (m, None, None) if m < 2."""
    labels = ctx.real.train_labels
    k = ctx.real.num_classes
    assert labels is not None and k is not None
    counts = torch.bincount(labels.cpu(), minlength=k)  # [K]
    m = min(per, int(counts.min()) // 2)
    if m < 2:
        return m, None, None
    gen = torch.Generator().manual_seed(ctx.seed + 2)
    ref, floor = [], []
    for c in range(k):
        idx = torch.nonzero(labels.cpu() == c).flatten()  # [count_c]
        idx = idx[torch.randperm(len(idx), generator=gen)]
        ref.append(idx[:m])
        floor.append(idx[m : 2 * m])
    return m, torch.cat(ref), torch.cat(floor)  # [K * m] each


def _intra_fid(ctx: EvalContext, requested: torch.Tensor, feats: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """intra_fid and its real-vs-real floor at the same n per class; their per-class values for the protocol."""
    k, labels = ctx.real.num_classes, ctx.real.train_labels
    assert k is not None and labels is not None
    m, ref, floor = _class_reference(ctx, int((requested == 0).sum()))
    if ref is None or floor is None:
        return {}, {"intra_fid": f"not computed: {m} items per class (needs 2 training items of each class "
                                 "for the reference and 2 others for the floor)"}
    keep = torch.cat([torch.nonzero(requested == c).flatten()[:m] for c in range(k)])  # [K * m]
    key, name, real = real_key(ctx.cfg), ctx.ext.name, ctx.real.train
    f_ref = cached(("intra_ref", key, name, m, ctx.seed), lambda: extract(ctx.ext, real[ref], ctx.name)[0])
    f_floor = cached(("intra_floor", key, name, m, ctx.seed), lambda: extract(ctx.ext, real[floor], ctx.name)[0])
    y = labels.cpu()[ref]  # [K * m], class by class; the floor's labels are the same
    fids = np.array(list(per_class_fid(f_ref, y, feats[keep.numpy()], requested[keep]).values()))  # [K]
    floors = np.array(list(per_class_fid(f_ref, y, f_floor, y).values()))  # [K]
    proto = {"intra_fid_n": m, "intra_fid_per_class": _rounded(fids, 3), "intra_fid_floor_per_class": _rounded(floors, 3),
             "intra_fid_reference": f"{m} training items of each class; floor: {m} other training items of that class",
             "intra_fid_note": f"small n per class ({m}: --n / classes, at most half the smallest class; CPU runs keep "
                               f"--n small): FID ({feats.shape[1]}-d features) is biased upward at small n, so read "
                               "intra_fid against intra_fid_floor, measured at the same n"}
    return {"intra_fid": float(fids.mean()), "intra_fid_floor": float(floors.mean())}, proto


@metric_group
class ConditionalGroup(MetricGroup):
    """Whether G(z, y) draws class y (class accuracy under the shipped classifier), and intra-FID."""

    name = "conditional"
    lower_is_better = {"class_accuracy": False, "intra_fid": True}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if ctx.cfg.model.conditioning == "none":
            return "model.conditioning is 'none': the generator takes no class labels"
        return _classified(ctx)

    def compute(self, ctx: EvalContext) -> Result:
        k = ctx.real.num_classes
        assert k is not None
        requested, feats, pred = _per_class(ctx, k)
        acc = class_accuracy(pred, requested)["class_accuracy"]
        real, real_per_class, what = _real_accuracy(ctx)
        out = {"class_accuracy": acc, "class_accuracy_real": real,
               "class_accuracy_ratio": acc / real if real > 0 else float("nan")}
        proto: dict[str, Any] = {
            "per_class_n": len(requested) // k, "classes": k, "classifier": ctx.ext.name,
            "class_accuracy_per_class": _rounded(per_class_accuracy(pred, requested, k)),
            "real": f"{what}: the split the classifier's accuracy is documented on",
            "class_accuracy_real_per_class": _rounded(real_per_class),
        }
        values, entries = _intra_fid(ctx, requested, feats)
        out.update(values)
        proto.update(entries)
        return out, {"conditional": proto}


@metric_group
class InfoganCodesGroup(MetricGroup):
    """Whether InfoGAN's categorical code picks the class: accuracy of the best code -> class matching."""

    name = "infogan_codes"
    lower_is_better = {"code_agreement": False}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if ctx.cfg.model.info_cat < 2:
            return "model.info_cat is 0: the generator has no categorical code"
        return _classified(ctx)

    def compute(self, ctx: EvalContext) -> Result:
        k, codes = ctx.real.num_classes, ctx.cfg.model.info_cat
        assert k is not None
        requested, _, pred = _per_class(ctx, codes)
        confusion = confusion_matrix(requested, pred, codes, k)  # [codes, K]
        real, _, what = _real_accuracy(ctx)
        out = {**code_agreement(requested, pred, codes, k), "code_agreement_real": real}
        proto = {"per_code_n": len(requested) // codes, "codes": codes, "classes": k, "classifier": ctx.ext.name,
                 "matching": [int(c) for c in best_matching(confusion)],
                 "confusion": confusion.tolist(),
                 "protocol": "G(z, c) for each value c of the categorical code, classified; confusion = code x "
                             "predicted class; best one-to-one matching by the Hungarian algorithm (-1: unmatched)",
                 "real": f"code_agreement_real: the classifier's accuracy on the {what}, "
                         "what a generator whose codes are exactly the classes would score"}
        return out, {"infogan_codes": proto}
