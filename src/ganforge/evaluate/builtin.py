"""The built-in metric groups, registered in the order of GROUPS (and of the output)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..metrics import class_coverage, fid, inception_score, kid, memorisation, nearest_neighbours, prdc
from ..metrics import stacked_modes, toy2d_modes
from ..report import save_grid
from ..run import RunDir
from .core import generate_n
from .groups import EvalContext, MetricGroup, Result, metric_group
from .real import cached, extract, real_key, stacked_digits

KID_SUBSETS, KID_SUBSET_SIZE, PRDC_K = 100, 1000, 5
NEAREST_PAIRS = 16
STACKED_N = 26_000  # samples for stacked mode counting (VEEGAN, PacGAN)
MEM_REFERENCE_MAX = 20_000  # training items searched for each generated item's nearest neighbour


class PairedWithFloor(MetricGroup):
    """Compares n generated with n real items and reports the real-vs-real floor beside it."""

    paired = True
    uses_floor = True


@metric_group
class FidGroup(PairedWithFloor):
    """Fréchet distance between real and generated features, with the real-vs-real floor."""

    name = "fid"
    lower_is_better = {"fid": True}

    def compute(self, ctx: EvalContext) -> Result:
        out = {"fid": fid(ctx.f_real, ctx.f_fake)["fid"]}
        if ctx.f_floor is not None:
            out["fid_floor"] = fid(ctx.f_real, ctx.f_floor)["fid"]
        return out, {}


@metric_group
class KidGroup(PairedWithFloor):
    """Kernel inception distance over random subsets, with the real-vs-real floor."""

    name = "kid"
    lower_is_better = {"kid_mean": True}

    def compute(self, ctx: EvalContext) -> Result:
        m = min(KID_SUBSET_SIZE, ctx.n // 2)  # subsets of all n would all be the same set
        out = dict(kid(ctx.f_real, ctx.f_fake, subsets=KID_SUBSETS, subset_size=m, seed=ctx.seed))
        if ctx.f_floor is not None:
            floor = kid(ctx.f_real, ctx.f_floor, subsets=KID_SUBSETS, subset_size=m, seed=ctx.seed)
            out["kid_floor_mean"] = floor["kid_mean"]
        return out, {"kid": {"subsets": KID_SUBSETS, "subset_size": m, "kernel": "(x.y/D + 1)^3"}}


@metric_group
class PrdcGroup(MetricGroup):
    """Precision, recall, density and coverage of the generated features."""

    name = "prdc"
    paired = True
    lower_is_better = {"precision": False, "recall": False, "density": False, "coverage": False}

    def compute(self, ctx: EvalContext) -> Result:
        return dict(prdc(ctx.f_real, ctx.f_fake, k=PRDC_K)), {"prdc": {"k": PRDC_K, "reference": "real"}}


@metric_group
class ScoreGroup(MetricGroup):
    """Inception score, or the same score under the data set's own classifier."""

    name = "score"
    lower_is_better = {"classifier_score": False, "inception_score": False}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if ctx.ext.classifier and not ctx.stacked:
            return None
        return f"extractor {ctx.ext.name} is not a classifier"

    def compute(self, ctx: EvalContext) -> Result:
        key = "inception_score" if ctx.ext.name == "inception-v3" else "classifier_score"
        splits = 10 if ctx.n >= 1000 else 1
        s = inception_score(ctx.ext.probabilities(ctx.fake), splits=splits)
        out = {key: s["inception_score"], key + "_std": s["inception_score_std"]}
        out[key + "_real"] = inception_score(ctx.ext.probabilities(ctx.ref), splits=splits)["inception_score"]
        return out, {"score": {"splits": splits, "classifier": ctx.ext.name}}


@metric_group
class ClassesGroup(MetricGroup):
    """Class coverage and KL of the generated class histogram against the real one."""

    name = "classes"
    lower_is_better = {"class_kl": True, "class_coverage": False}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if ctx.data_classes and ctx.labelled and not ctx.stacked:
            return None
        return f"'{ctx.name}' has no labels or no shipped classifier for its classes ({ctx.ext.name})"

    def compute(self, ctx: EvalContext) -> Result:
        real = ctx.real
        assert ctx.p_fake is not None and real.train_labels is not None and real.num_classes is not None
        out = class_coverage(ctx.p_fake, real.train_labels[ctx.ref_idx], real.num_classes)
        return dict(out), {"classes": {"classes": real.num_classes, "real_histogram": "true labels of the reference set",
                                       "kl": "KL(generated || real)"}}


@metric_group
class ModesGroup(MetricGroup):
    """Mode counting: PacGAN's protocol on toy2d mixtures, the 1,000 digit stacks on stacked data."""

    name = "modes"
    lower_is_better = {"mode_kl": True, "modes_covered": False, "high_quality_fraction": False}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if ctx.points or (ctx.stacked and ctx.data_classes):
            return None
        return f"mode counting needs toy2d or stacked data with its digit classifier, not '{ctx.name}' with {ctx.ext.name}"

    def compute(self, ctx: EvalContext) -> Result:
        if ctx.points:
            proto = {"protocol": "PacGAN: high quality within 3 sigma of the nearest mode; "
                     "a mode is covered by >= 1 high-quality sample", "n": ctx.n}
            return dict(toy2d_modes(ctx.fake.numpy(), ctx.name)), {"modes": proto}
        # 1,000 modes need more samples than FID's n: at 2,000 a perfect sampler covers ~865 (1 - e^-2)
        # and its KL to uniform is ~0.25; VEEGAN and PacGAN count modes on 26,000 samples.
        n = max(ctx.n, STACKED_N)
        fake = ctx.fake if n == ctx.n else generate_n(ctx.G, ctx.cfg, n, ctx.seed)
        real = ctx.real.train[:n]  # the first n training stacks, then the test split's if they run out
        if len(real) < n and ctx.real.held_out is not None:
            real = torch.cat([real, ctx.real.held_out[: n - len(real)]])
        out = dict(stacked_modes(stacked_digits(ctx.ext, fake)))
        real_modes = stacked_modes(stacked_digits(ctx.ext, real))
        out.update({f"{k}_real": real_modes[k] for k in ("modes_covered", "mode_kl", "mode_kl_dependence", "mode_kl_channels")})
        proto = {"protocol": "each channel classified by the digit classifier; mode = 100*d0+10*d1+d2; "
                 "KL(generated || uniform over 1000) = mode_kl_dependence (KL(joint || product of the channels' "
                 "histograms)) + mode_kl_channels (each channel's KL to uniform over 10, summed); the plug-in KL's "
                 "own bias is about 999 / (2 n); the real columns: as many real stacks (train, then test split)",
                 "n": n, "n_real": len(real)}
        return out, {"modes": proto}


@metric_group
class MemorisationGroup(MetricGroup):
    """How many generated items are closer to a training item than held-out items are."""

    name = "memorisation"
    lower_is_better = {"memorised_fraction": True}

    def applies(self, ctx: EvalContext) -> Optional[str]:
        if not ctx.points and ctx.real.held_out is not None:
            return None
        return f"'{ctx.name}' has no held-out split to set the memorisation threshold"

    def compute(self, ctx: EvalContext) -> Result:
        real, ext, name = ctx.real, ctx.ext, ctx.name
        held = real.held_out
        assert held is not None
        mem_ref = (real.mem_train if real.mem_train is not None else real.train)[:MEM_REFERENCE_MAX]
        n_mem = min(ctx.n, 1000, len(held))
        f_train = cached(("mem_train", real_key(ctx.cfg), ext.name), lambda: extract(ext, mem_ref, name)[0])
        f_test = cached(("held_out", real_key(ctx.cfg), ext.name, n_mem), lambda: extract(ext, held[:n_mem], name)[0])
        out = dict(memorisation(ctx.f_fake[:n_mem], f_train, f_test))
        first = " (the first)" if len(mem_ref) == MEM_REFERENCE_MAX else ""
        proto = {"n_fake": n_mem, "reference": f"{len(mem_ref)} training items{first}",
                 "held_out": f"{n_mem} items of the {real.held_out_name}",
                 "threshold": "5th percentile of held-out nearest-training distances"}
        if ctx.write and ctx.run_dir is not None:
            grid = _nearest_grid(ctx.fake[:n_mem], mem_ref, ctx.f_fake[:n_mem], f_train, ctx.run_dir, ctx.step)
            ctx.files["nearest"] = str(grid)
        return out, {"memorisation": proto}


def _nearest_grid(fake: torch.Tensor, train: torch.Tensor, f_fake: np.ndarray, f_train: np.ndarray,
                  run_dir: Path, step: int) -> Path:
    """RUN/eval/nearest_step_NNNNNNN.png: the closest (generated, training) pairs, generated on top."""
    dist, idx = nearest_neighbours(f_fake, f_train)
    order = np.argsort(dist, kind="stable")[:NEAREST_PAIRS]
    pairs = torch.cat([fake[order], train[torch.as_tensor(idx[order])]])  # [2k, C, H, W]
    return save_grid(pairs, RunDir(run_dir).eval_dir / f"nearest_step_{max(step, 0):07d}.png", nrow=len(order))
