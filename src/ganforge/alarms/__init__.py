"""Training alarms: why a GAN run is failing, said as it happens.

At every stats.jsonl record the trainer calls `Alarms.observe(step, record, trainer)`. Each alarm
is logged (logger "ganforge", WARNING) and appended to RUN/alarms.jsonl as
{"step", "kind", "message", "value", "threshold"}. An alarm fires when its condition starts to
hold and again only after the condition has cleared (no repeats on every record).

Kinds and their thresholds (config section `alarms`, e.g. --set alarms.max_loss=50):

    divergence           a NaN/inf loss, D output or gradient norm; or |loss/D|, |loss/G| > max_loss
    vanishing_gradients  D(G(z)) < confident_fake and grad/G/total < max(vanishing_grad,
                         vanishing_ratio * its peak so far): the saturating minimax loss against a
                         confident D (the non-saturating loss keeps G's gradients large there)
    exploding_gradients  grad/G/total or grad/D/total > exploding_grad, or any layer's
                         update/<G|D>/<layer> > max_update_ratio (an update as large as the weights)
    d_overpowers_g       D(x) > 1 - pinned and D(G(z)) < pinned for `patience` records in a row
    g_overpowers_d       D(G(z)) > 1 - pinned for `patience` records in a row
    mode_collapse        diversity < min_diversity: the mean pairwise distance of samples from the
                         fixed noise batch divided by that of real samples (1 = as diverse as the data);
                         or, where a classifier ships for the data set (ganforge.metrics.features),
                         class_coverage (the fraction of classes the classifier finds among those
                         samples) < min_coverage_ratio * its peak so far

Each kind is a Detector class registered in DETECTORS (ganforge.alarms.detectors); they are checked
in registration order. A new alarm is one Detector subclass and one `@DETECTORS.register("kind")`.
"""

from .detectors import DETECTORS, KINDS, Detector, DetectorRegistry, Finding, Sustained
from .monitor import ALARMS_FILE, Alarms, check_config, read_alarms
from .probes import Probes, generate_as_trained, mean_pairwise_distance

__all__ = [
    "ALARMS_FILE", "Alarms", "DETECTORS", "Detector", "DetectorRegistry", "Finding", "KINDS", "Probes", "Sustained",
    "check_config", "generate_as_trained", "mean_pairwise_distance", "read_alarms",
]
