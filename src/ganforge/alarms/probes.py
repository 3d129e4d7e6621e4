"""The alarms' probes of the networks: sample diversity and class coverage of the fixed noise batch."""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch

from ..config import AlarmConfig
from ..errors import GanforgeError

log = logging.getLogger("ganforge")


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between distinct samples of a batch [N, ...] (N >= 2)."""
    flat = x.detach().float().reshape(x.shape[0], -1)  # [N, D]
    return float(torch.pdist(flat).mean())


@torch.no_grad()
def generate_as_trained(G: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G(z) in training mode (batch statistics, as D sees it), leaving G's buffers (BN running stats) untouched."""
    saved = {name: b.clone() for name, b in G.named_buffers()}
    was_training = G.training
    G.train()
    try:
        return G(z)
    finally:
        G.train(was_training)
        buffers = dict(G.named_buffers())
        for name, value in saved.items():
            buffers[name].copy_(value)


class Probes:
    """Per-record measurements of one run that need its networks; caches what stays fixed over the run."""

    def __init__(self, cfg: AlarmConfig) -> None:
        self.cfg = cfg
        self._real_div: Optional[float] = None
        self._classifier: Any = None  # False: none for this data set

    def measure(self, view: Any) -> dict[str, float]:
        """{"diversity", "class_coverage"} of a view with .source, .cfg, .fixed_z, .G (empty when unknown)."""
        real = self._real_diversity(view)
        if real is None or not real > 0:
            return {}
        n = min(self.cfg.diversity_samples, view.fixed_z.shape[0])
        fake = generate_as_trained(view.G, view.fixed_z[:n])
        out = {"diversity": mean_pairwise_distance(fake) / real}
        classifier = self._load_classifier(view)
        if classifier:
            _, pred = classifier(fake.detach().float().cpu())  # the shipped classifiers run on the CPU
            k = int(classifier.info.get("num_classes", 10))
            out["class_coverage"] = len(set(pred.tolist())) / k
        return out

    def _load_classifier(self, view: Any) -> Any:
        """The shipped classifier for the run's data set, loaded once (False when there is none)."""
        if self._classifier is None:
            self._classifier = False
            spec = view.source.spec
            if spec.kind == "image":
                try:
                    from ..metrics.features import CLASSIFIER_FOR, CLASSIFIER_INPUT, classifier_extractor, classifier_path

                    name = CLASSIFIER_FOR.get(view.cfg.data.dataset)
                    same_channels = name is not None and CLASSIFIER_INPUT.get(name, (None,))[0] == spec.channels
                    if same_channels and classifier_path(name).is_file():  # not stacked (3-digit) data
                        with torch.random.fork_rng(devices=[]):  # building the net draws init weights: keep
                            self._classifier = classifier_extractor(name)  # the run's RNG (resume is bit-exact)
                except (ImportError, GanforgeError) as e:  # the evaluation module absent or a bad file
                    log.info("alarms: no class coverage (%s)", e)
        return self._classifier

    def _real_diversity(self, view: Any) -> Optional[float]:
        """Mean pairwise distance of a fixed set of real samples, computed once (no data RNG used)."""
        if self._real_div is None:
            n, source = self.cfg.diversity_samples, view.source
            if hasattr(source, "all_images"):
                real = source.all_images(limit=n)
            elif hasattr(source, "centers") and hasattr(source, "sigma"):  # toy2d mixtures
                gen = torch.Generator().manual_seed(0)
                k = torch.randint(len(source.centers), (n,), generator=gen)
                real = source.centers[k] + source.sigma * torch.randn(n, 2, generator=gen)  # [n, 2]
            else:
                return None  # streamed folders: no cheap fixed real batch, no diversity alarm
            self._real_div = mean_pairwise_distance(real) if real.shape[0] >= 2 else 0.0
        return self._real_div
