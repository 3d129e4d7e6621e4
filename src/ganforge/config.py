"""Typed configuration: the single source of truth for a run, saved as config.yaml in its directory.

Precedence (later wins): dataclass defaults < --preset < --config FILE < CLI flags < --set key=value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import logging
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import yaml

from .errors import GanforgeError, unknown_name


log = logging.getLogger("ganforge")

ENGINES = ("torch", "numpy")  # train.engine (--engine): the PyTorch trainer, or ganforge.backprop's


def _positive(key: str, v: Any) -> None:
    """GanforgeError unless `v` is None or > 0."""
    if v is not None and not v > 0:
        raise GanforgeError(f"{key} must be positive, got {v}")


def _non_negative(key: str, v: Any) -> None:
    """GanforgeError unless `v` >= 0."""
    if not v >= 0:
        raise GanforgeError(f"{key} must be >= 0, got {v}")


def _one_of(key: str, v: Any, valid: tuple[str, ...]) -> None:
    """GanforgeError unless `v` is one of `valid`."""
    if v not in valid:
        raise GanforgeError(f"{key} must be {', '.join(valid[:-1])} or {valid[-1]}, got '{v}'")


def _in_range(key: str, v: float, lo: float, hi: float, closed: str = "[)") -> None:
    """GanforgeError unless lo <= v < hi ('[)'), lo < v <= hi ('(]'), lo <= v <= hi ('[]') or lo < v < hi ('()')."""
    ok = (v >= lo if closed[0] == "[" else v > lo) and (v <= hi if closed[1] == "]" else v < hi)
    if not ok:
        raise GanforgeError(f"{key} must be in {closed[0]}{lo:g}, {hi:g}{closed[1]}, got {v}")


@dataclass
class DataConfig:
    dataset: str = "digits"  # a registered data source name (ganforge.data)
    path: Optional[str] = None  # --data: a directory of files for mnist / fashion-mnist / cifar10 / folder
    split: str = "train"  # train | test (IDX and cifar10 files)
    image_size: Optional[int] = None  # None: the data set's native size
    channels: Optional[int] = None  # 1 or 3; None: native (folder: 3)
    loader: str = "auto"  # auto | memory | stream (folder only streams)
    workers: int = 2  # DataLoader worker processes when streaming
    max_items: Optional[int] = None  # use only the first N items (quick experiments, tests)

    def check(self, prefix: str = "data") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _positive(f"{prefix}.image_size (--image-size)", self.image_size)
        _positive(f"{prefix}.max_items", self.max_items)
        if self.channels not in (None, 1, 3):
            raise GanforgeError(f"{prefix}.channels (--channels) must be 1 or 3, got {self.channels}")
        _one_of(f"{prefix}.split", self.split, ("train", "test"))
        _one_of(f"{prefix}.loader", self.loader, ("auto", "memory", "stream"))
        _non_negative(f"{prefix}.workers", self.workers)


@dataclass
class ModelConfig:
    arch: str = "auto"  # --arch; auto: mlp for 2-D points (toy2d), model.image_arch for images
    image_arch: str = "dcgan"  # the architecture auto picks for images (presets set it; the data decide)
    z_dim: int = 100
    g_width: Optional[int] = None  # None: the architecture's default (mlp 128 units, dcgan 64 channels)
    d_width: Optional[int] = None
    depth: int = 2  # mlp: hidden layers of G and of D
    g_activation: str = "leaky_relu"  # mlp: G's hidden activation, leaky_relu (slope 0.2) | relu
    # The GAN family (ganforge.nets): labels, layers and heads.
    conditioning: str = "none"  # none | concat (cGAN) | projection (projection D) | acgan (auxiliary classifier)
    # how labels enter G: auto (cbn for resnet, else embed) | embed (concatenated to z) | mul (z times a label
    # embedding: G cannot keep the label and drop its noise) | cbn (conditional batch norm, resnet)
    g_conditioning: str = "auto"
    num_classes: Optional[int] = None  # resolved from the data set when conditioning is on
    spectral_norm_d: bool = False  # spectral normalisation on every D weight
    spectral_norm_g: bool = False  # ... and on G's
    attention: Optional[Union[int, str]] = None  # resnet: SAGAN self-attention at this resolution, or auto
    info_cat: int = 0  # InfoGAN: categories of the categorical code (0: none); carved out of z
    info_cont: int = 0  # InfoGAN: continuous codes, uniform on [-1, 1]; carved out of z
    info_noise_std: float = 1.0  # InfoGAN: G sees its noise entries times this (ClusterGAN's 0.1: the codes dominate)
    pack: int = 1  # PacGAN (Lin et al. 2018): D judges packs of K samples (1: off); train.batch_size a multiple of it

    def check(self, prefix: str = "model") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        for key in ("z_dim", "g_width", "d_width", "depth", "pack"):
            _positive(f"{prefix}.{key}", getattr(self, key))
        _positive(f"{prefix}.info_noise_std", self.info_noise_std)
        if self.info_cat < 0 or self.info_cont < 0 or self.info_cat == 1:
            raise GanforgeError(
                f"{prefix}.info_cat must be 0 or >= 2 and {prefix}.info_cont >= 0, got {self.info_cat}, {self.info_cont}"
            )
        codes = self.info_cat + self.info_cont
        if codes >= self.z_dim:
            raise GanforgeError(
                f"{prefix}.z_dim ({self.z_dim}) must exceed the InfoGAN codes it carries (info_cat + info_cont = {codes})"
            )
        _one_of(f"{prefix}.g_activation", self.g_activation, ("leaky_relu", "relu"))
        if isinstance(self.attention, str) and self.attention != "auto":
            raise GanforgeError(f"{prefix}.attention must be a resolution (e.g. 16), auto or null, got '{self.attention}'")


# The objective's sections: one per GAN family (or penalty), read by ganforge.objectives.


@dataclass
class WGANConfig:
    """objective.wgan: WGAN's weight clipping (Arjovsky et al. 2017)."""

    clip: float = 0.01  # D's weights are clipped to [-clip, clip] after each D step

    def check(self, prefix: str = "objective.wgan") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _positive(f"{prefix}.clip", self.clip)


@dataclass
class GPConfig:
    """objective.gp: WGAN-GP's gradient penalty (Gulrajani et al. 2017; lambda in the paper)."""

    weight: float = 10.0  # weight (lambda) of the gradient penalty on random interpolates

    def check(self, prefix: str = "objective.gp") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.weight", self.weight)


@dataclass
class R1Config:
    """objective.r1: the R1 penalty gamma/2 E||grad D(x)||^2 on real data (Mescheder et al. 2018), any objective."""

    gamma: float = 0.0  # 0: off
    every: int = 1  # lazy R1: apply it every N D steps (scaled by N)
    gamma_final: Optional[float] = None  # R3GAN: gamma ramps (cosine) to this over train.ramp_steps (None: constant)

    def check(self, prefix: str = "objective.r1") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.gamma", self.gamma)
        _positive(f"{prefix}.every", self.every)
        if self.gamma_final is not None:
            _non_negative(f"{prefix}.gamma_final", self.gamma_final)


@dataclass
class R2Config(R1Config):
    """objective.r2: the R2 penalty gamma/2 E||grad D(G(z))||^2 on generated data (R3GAN: with R1's gamma), any objective."""

    def check(self, prefix: str = "objective.r2") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        super().check(prefix)


@dataclass
class ACConfig:
    """objective.ac: AC-GAN's auxiliary classifier (model.conditioning acgan)."""

    weight: float = 1.0  # weight of the auxiliary classification loss
    # D's step also teaches its classifier the labels G was given (the paper: 1). 0: it learns from real
    # images only, so G cannot pass with images whose class only D's classifier sees (docs/presets.md).
    fake_weight: float = 1.0

    def check(self, prefix: str = "objective.ac") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.weight", self.weight)
        _non_negative(f"{prefix}.fake_weight", self.fake_weight)


@dataclass
class InfoConfig:
    """objective.info: InfoGAN's Q head (model.info_cat, model.info_cont)."""

    weight: float = 1.0  # weight of the mutual-information (Q) loss

    def check(self, prefix: str = "objective.info") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.weight", self.weight)


@dataclass
class BEGANConfig:
    """objective.began: BEGAN's equilibrium controller (Berthelot et al. 2017)."""

    gamma: float = 0.5  # diversity ratio E[L(G(z))] / E[L(x)] the controller aims for
    lambda_k: float = 0.001  # learning rate of the equilibrium controller k_t

    def check(self, prefix: str = "objective.began") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.gamma", self.gamma)
        _non_negative(f"{prefix}.lambda_k", self.lambda_k)


@dataclass
class ObjectiveConfig:
    name: str = "ns"  # ns (non-saturating) | minimax (the original saturating loss) | wgan | wgan-gp | rpgan | ...
    wgan: WGANConfig = field(default_factory=WGANConfig)
    gp: GPConfig = field(default_factory=GPConfig)
    r1: R1Config = field(default_factory=R1Config)
    r2: R2Config = field(default_factory=R2Config)
    ac: ACConfig = field(default_factory=ACConfig)
    info: InfoConfig = field(default_factory=InfoConfig)
    began: BEGANConfig = field(default_factory=BEGANConfig)

    def check(self, prefix: str = "objective") -> None:
        """Each family section's range checks (the name is checked when the objective is built)."""
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if dataclasses.is_dataclass(section):
                section.check(f"{prefix}.{f.name}")


@dataclass
class OptimConfig:
    name: str = "adam"  # sgd | adagrad | rmsprop | adam
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)  # adam
    momentum: float = 0.0  # sgd, rmsprop
    alpha: float = 0.99  # rmsprop smoothing
    eps: float = 1e-8
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | linear | cosine | step
    step_size: int = 1000  # step schedule: multiply by gamma every step_size steps
    gamma: float = 0.5
    min_lr_factor: float = 0.0  # linear / cosine: final lr = lr * min_lr_factor (reached at train.ramp_steps)
    beta2_final: Optional[float] = None  # adam, R3GAN: betas[1] ramps (cosine) to this over train.ramp_steps (None: constant)
    clip_norm: Optional[float] = None  # clip the total gradient norm (off by default)
    clip_value: Optional[float] = None  # clip every gradient element to [-v, v] (off by default)

    def check(self, prefix: str) -> None:
        """Range checks of this section (names are checked by train/optim.py); GanforgeError naming the key."""
        _positive(f"{prefix}.lr (--lr)", self.lr)
        for key in ("eps", "step_size", "clip_norm", "clip_value"):
            _positive(f"{prefix}.{key}", getattr(self, key))
        for i, b in enumerate(self.betas):
            _in_range(f"{prefix}.betas[{i}]", b, 0.0, 1.0, "[)")
        _in_range(f"{prefix}.momentum", self.momentum, 0.0, 1.0, "[)")
        _in_range(f"{prefix}.alpha", self.alpha, 0.0, 1.0, "()")
        _non_negative(f"{prefix}.weight_decay", self.weight_decay)
        _in_range(f"{prefix}.gamma", self.gamma, 0.0, 1.0, "(]")
        _in_range(f"{prefix}.min_lr_factor", self.min_lr_factor, 0.0, 1.0, "[]")
        if self.beta2_final is not None:
            _in_range(f"{prefix}.beta2_final", self.beta2_final, 0.0, 1.0, "[)")
            if self.name != "adam":
                raise GanforgeError(f"{prefix}.beta2_final ramps Adam's betas[1]; {prefix}.name is '{self.name}', not adam "
                                    f"(--set {prefix}.beta2_final=null turns the ramp off)")


SWITCHES = ("auto", "on", "off")
DIFFAUGMENT_POLICIES = ("translation", "cutout", "color")


@dataclass
class TrainConfig:
    steps: int = 2000  # G updates in total (a resumed run continues to this number)
    batch_size: int = 64
    n_dis: int = 1  # --n-dis: D updates per G update (each on its own batch)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    engine: str = "torch"  # torch | numpy (ganforge.backprop, the from-scratch engine: MLP/DCGAN, ns/minimax)
    ema_decay: Optional[float] = None  # e.g. 0.999: keep an EMA of G's weights for samples and metrics (None: off)
    ema_rampup: bool = False  # R3GAN: the EMA's half-life ramps (cosine) from 0 to ema_decay's over ramp_steps
    ramp_steps: Optional[int] = None  # G steps of the ramps (linear/cosine lr, *.gamma_final, beta2_final, ema_rampup); None: steps
    diffaugment: str = ""  # DiffAugment policy for D's inputs: comma list of translation, cutout, color ("": off)
    precision: str = "auto"  # auto | fp32 | bf16 (autocast for the networks; losses stay float32). See train/fastpath.py
    channels_last: str = "auto"  # auto | on | off (memory layout of conv nets and batches)
    fused_optim: str = "auto"  # auto | on | off: Adam's fused kernel (one kernel for all parameters)
    tf32: str = "auto"  # auto | on | off: TensorFloat-32 matrix products for float32 on CUDA
    cuda_graphs: str = "auto"  # auto | on | off: capture the whole step as one CUDA graph and replay it
    compile: str = "auto"  # auto | on | off: torch.compile G and D, with a guarded fall-back to eager

    def check(self, prefix: str = "train") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _positive(f"{prefix}.steps (--steps)", self.steps)
        _positive(f"{prefix}.batch_size (--batch-size)", self.batch_size)
        _positive(f"{prefix}.n_dis (--n-dis)", self.n_dis)
        if self.engine not in ENGINES:
            raise unknown_name("engine", self.engine, ENGINES)
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:")):
            raise GanforgeError(f"{prefix}.device (--device) must be auto, cpu, cuda or cuda:N, got '{dev}'")
        _one_of(f"{prefix}.precision", self.precision, ("auto", "fp32", "bf16"))
        for key in ("channels_last", "fused_optim", "tf32", "cuda_graphs", "compile"):
            _one_of(f"{prefix}.{key}", getattr(self, key), SWITCHES)
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise GanforgeError(f"{prefix}.ema_decay must be in [0, 1) or null, got {self.ema_decay}")
        if self.ema_rampup and self.ema_decay is None:
            raise GanforgeError(f"{prefix}.ema_rampup needs {prefix}.ema_decay (the decay the ramp ends at)")
        _positive(f"{prefix}.ramp_steps", self.ramp_steps)
        bad = [p.strip() for p in self.diffaugment.split(",") if p.strip() and p.strip() not in DIFFAUGMENT_POLICIES]
        if bad:
            raise GanforgeError(f"{prefix}.diffaugment: unknown policy '{bad[0]}'; valid: {', '.join(DIFFAUGMENT_POLICIES)}")


@dataclass
class LogConfig:
    log_every: int = 50  # stats.jsonl line and progress line
    grad_every: int = 50  # per-layer gradient norms
    sample_every: int = 500  # sample grid from the fixed noise batch
    checkpoint_every: int = 500
    n_samples: int = 64  # images in each sample grid
    tensorboard: bool = False  # --tensorboard: scalars and sample grids under RUN/tensorboard
    eval_every: int = 0  # --eval-every: evaluate into RUN/metrics.jsonl every N steps (0: off)
    eval_metric: str = "fid"  # --eval-metric: the metric that picks checkpoints/best.pt
    eval_n: Optional[int] = None  # samples per evaluation during training (None: ganforge eval's default)

    def check(self, prefix: str = "log") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        for key in ("log_every", "grad_every", "sample_every", "checkpoint_every", "n_samples"):
            _positive(f"{prefix}.{key}", getattr(self, key))


@dataclass
class WatchdogConfig:
    """The divergence watchdog (ganforge.train.watchdog): NaN/inf in a loss or gradient -> roll back."""

    enabled: bool = True  # check every step's losses and gradient norms for NaN/inf
    max_rollbacks: int = 3  # K: rollbacks to the last good checkpoint before the run stops (exit 3)
    lr_factor: float = 0.5  # both learning rates are multiplied by this at every rollback

    def check(self, prefix: str = "watchdog") -> None:
        """Range checks of this section; GanforgeError naming the first bad key."""
        _non_negative(f"{prefix}.max_rollbacks", self.max_rollbacks)
        _in_range(f"{prefix}.lr_factor", self.lr_factor, 0.0, 1.0, "(]")


@dataclass
class AlarmConfig:
    """Thresholds of the training alarms (ganforge.alarms), checked at every stats.jsonl record."""

    enabled: bool = True
    confident_fake: float = 0.05  # D(G(z)) below this: D confidently rejects the fakes
    vanishing_ratio: float = 0.1  # ... and G's total gradient norm below this fraction of its peak so far: vanishing
    vanishing_grad: float = 1e-4  # ... or below this absolute value: vanishing gradients in G
    exploding_grad: float = 1e3  # total gradient norm of G or D above this: exploding gradients
    max_update_ratio: float = 1.0  # a layer's ||update|| / ||weight|| above this: exploding updates
    pinned: float = 0.02  # D(x) > 1-pinned and D(G(z)) < pinned: D overpowers G; D(G(z)) > 1-pinned: G overpowers D
    patience: int = 3  # consecutive records a D/G balance condition must hold before it fires
    max_loss: float = 100.0  # |loss/D| or |loss/G| above this (or NaN/inf anywhere): divergence
    min_diversity: float = 0.05  # generated / real mean pairwise distance below this: mode collapse (a fresh G: ~0.1-0.3)
    diversity_samples: int = 64  # generated (fixed noise) and real samples in that comparison
    min_coverage_ratio: float = 0.5  # class coverage (shipped classifier) below this fraction of its peak: mode collapse
    diversity_warmup: int = 0  # no mode-collapse alarm before this step


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    alarms: AlarmConfig = field(default_factory=AlarmConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    preset: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(dataclasses.asdict(self))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def copy(self) -> "Config":
        return copy.deepcopy(self)


# ----------------------------------------------------------------------------- parsing


def _to_plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_describe(a) for a in args) + " or null"
    if origin is tuple:
        return "a list of " + str(len(typing.get_args(tp))) + " numbers"
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check `value` against the annotated type `tp`, converting int -> float and list -> tuple."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(key, value, a)
            except GanforgeError:
                pass
        raise GanforgeError(f"config key '{key}': expected {_describe(tp)}, got {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise GanforgeError(f"config key '{key}': expected {_describe(tp)}, got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float range
                number = float("inf")
            if not math.isfinite(number):
                raise GanforgeError(f"config key '{key}': expected a finite number, got {value!r}")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):  # YAML 1.1 reads on/off (and yes/no) as booleans: the switches mean on/off
            return "on" if value else "off"
    raise GanforgeError(f"config key '{key}': expected {_describe(tp)}, got {value!r}")


def _unknown_key(key: str, valid: list[str]) -> GanforgeError:
    close = difflib.get_close_matches(key, valid + list(OLD_KEYS), n=1)
    hint = f" (did you mean '{OLD_KEYS.get(close[0], close[0])}'?)" if close else ""
    shown = key if key.isprintable() else repr(key)[1:-1]  # the error stays one line
    return GanforgeError(f"unknown config key '{shown}'{hint}")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config mapping as {dotted key: value}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def all_keys(obj: Any = None, prefix: str = "") -> list[str]:
    """Every dotted leaf key of the config, e.g. 'g_optim.lr'."""
    obj = Config() if obj is None else obj
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += all_keys(value, prefix + f.name + ".")
        else:
            out.append(prefix + f.name)
    return out


# Keys that moved (old dotted key -> new dotted key): the objective's flat keys went to one section per
# GAN family, and n_dis (read by the training loop, not the loss) to train. A mapping that still uses an
# old key (a run directory's config.yaml written before the move, a --config file, --set) is migrated
# when it is applied, with one logged warning per old key.
OLD_KEYS: dict[str, str] = {
    "objective.n_dis": "train.n_dis",
    "objective.clip": "objective.wgan.clip",
    "objective.gp_lambda": "objective.gp.weight",
    "objective.r1_gamma": "objective.r1.gamma",
    "objective.r1_every": "objective.r1.every",
    "objective.ac_weight": "objective.ac.weight",
    "objective.info_weight": "objective.info.weight",
    "objective.began_gamma": "objective.began.gamma",
    "objective.began_lambda_k": "objective.began.lambda_k",
}


def _section(d: dict[Any, Any], key: str, copies: set[int]) -> Any:
    """d[key]; a mapping not in `copies` is replaced by a shallow copy first (the caller's data stay as they were)."""
    value = d.get(key)
    if isinstance(value, dict) and id(value) not in copies:
        value = d[key] = dict(value)
        copies.add(id(value))
    return value


def _move(data: dict[Any, Any], old: str, new: str, source: str, copies: set[int]) -> bool:
    """Move the value at dotted `old` in `data` (a copy) to dotted `new`; False when `old` is absent."""
    *path, leaf = old.split(".")
    parent: Any = data
    for p in path:
        parent = _section(parent, p, copies) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or leaf not in parent:
        return False
    *new_path, new_leaf = new.split(".")
    target: Any = data
    for i, p in enumerate(new_path):
        target.setdefault(p, {})
        target = _section(target, p, copies)
        if not isinstance(target, dict):
            where = ".".join(new_path[: i + 1])
            raise GanforgeError(f"{source}: cannot move old config key '{old}' to '{new}': '{where}' is {target!r}, not a section")
    if new_leaf in target:
        raise GanforgeError(f"{source}: config key '{old}' is the old name of '{new}', and both are given; keep only '{new}'")
    target[new_leaf] = parent.pop(leaf)
    return True


def migrate(data: dict[Any, Any], source: str = "config") -> dict[Any, Any]:
    """A copy of the nested mapping `data` with every OLD_KEYS key moved to its new key, one warning each."""
    out, copies = dict(data), set()
    for old, new in OLD_KEYS.items():
        if _move(out, old, new, source, copies):
            log.warning("%s: config key '%s' is now '%s' (the old name still works)", source, old, new)
    return out


def apply_dict(cfg: Config, data: Any, source: str = "config") -> Config:
    """Apply a nested mapping (from YAML or a preset) onto `cfg` in place, migrating old keys and checking keys and types."""
    if not isinstance(data, dict):
        raise GanforgeError(f"{source}: expected a mapping of config sections, got {type(data).__name__}")
    for key, value in migrate(data, source).items():
        _apply(cfg, str(key), value, source)
    return cfg


def _apply(obj: Any, key: str, value: Any, source: str, prefix: str = "") -> None:
    full = prefix + key
    names = {f.name for f in dataclasses.fields(obj)}
    if key not in names:
        raise _unknown_key(full, all_keys())
    current = getattr(obj, key)
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise GanforgeError(f"{source}: config key '{full}' is a section; expected a mapping, got {value!r}")
        for k, v in value.items():
            _apply(current, str(k), v, source, full + ".")
        return
    setattr(obj, key, _coerce(full, value, _field_types(type(obj))[key]))


def set_value(cfg: Config, dotted: str, value: Any) -> None:
    """Set one dotted key ('g_optim.lr') to an already-parsed value (an old key is migrated)."""
    parts = dotted.split(".")
    nested: Any = value
    for p in reversed(parts[1:]):
        nested = {p: nested}
    apply_dict(cfg, {parts[0]: nested}, "--set")


def parse_assignment(text: str) -> tuple[str, Any]:
    """'g_optim.lr=1e-3' -> ('g_optim.lr', 0.001); the value is read as YAML."""
    if "=" not in text:
        raise GanforgeError(f"--set expects key=value, got '{text}'")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    # YAML reads '1e-3' as a string; numbers in scientific notation are what users type.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return key.strip(), value


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise GanforgeError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GanforgeError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    return data


def from_dict(data: dict[str, Any], source: str = "config") -> Config:
    return apply_dict(Config(), data, source)


# ----------------------------------------------------------------------------- validation


def validate(cfg: Config) -> None:
    """Range checks that do not need the data or the networks: each section's own check. Raises GanforgeError.

    Not here: cfg.alarms (ganforge.alarms.check_config), the optimiser and objective names (checked when built).
    """
    cfg.train.check("train")
    cfg.model.check("model")
    cfg.data.check("data")
    cfg.log.check("log")
    cfg.watchdog.check("watchdog")
    cfg.g_optim.check("g_optim")
    cfg.d_optim.check("d_optim")
    cfg.objective.check("objective")


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """A recipe (loss, regularisers, optimiser, widths). The architecture follows the data: a preset names
    model.image_arch, and toy2d points get the mlp. `per_data`: the recipe's budget for a data set (steps,
    batch, widths), keyed by data set name or by kind ("points" for toy2d-*, "images" for the rest)."""

    name: str
    summary: str
    overrides: dict[str, Any]
    per_data: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_data(self, dataset: str) -> dict[str, Any]:
        """The per-data part for `dataset`: its own entry, else its kind's, else nothing."""
        kind = "points" if dataset.startswith("toy2d") else "images"
        return self.per_data.get(dataset, self.per_data.get(kind, {}))


PRESETS: dict[str, Preset] = {}

# The recipe a data set gets when no --preset is given, per engine (other data sets: the dataclass defaults).
# The numpy engine has no R1/R2, no relativistic or hinge loss and no ResNet: its toy2d runs keep the plain
# toy2d recipe and its digits runs get DCGAN.
DATA_RECIPES = {
    "torch": {"toy2d-ring": "r3gan", "toy2d-grid": "r3gan", "digits": "demo"},
    "numpy": {"toy2d-ring": "toy2d", "toy2d-grid": "toy2d", "digits": "dcgan"},
}


def register_preset(name: str, summary: str, overrides: dict[str, Any],
                    per_data: Optional[dict[str, dict[str, Any]]] = None) -> None:
    if name in PRESETS:
        raise KeyError(f"preset '{name}' registered twice")
    from_dict(overrides, f"preset {name}")  # fail at import if a preset names a bad key
    for data, part in (per_data or {}).items():
        from_dict(part, f"preset {name} ({data})")
    PRESETS[name] = Preset(name, summary, overrides, dict(per_data or {}))


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise unknown_name("preset", name, PRESETS)
    return PRESETS[name]


def with_recipe(layers: Callable[[Config], Any], preset: Optional[str] = None, base: Optional[Config] = None) -> Config:
    """`base` (defaults if None) < the preset and its part for the final data set < `layers(cfg)` (what the
    user gave: files, flags, --set). A new config without a preset gets its data set's recipe for its engine
    (DATA_RECIPES)."""

    def build(recipe: Optional[Preset], dataset: Optional[str]) -> Config:
        cfg = (base or Config()).copy()
        if recipe is not None:
            apply_dict(cfg, recipe.overrides, f"preset {recipe.name}")
            if dataset is not None:
                apply_dict(cfg, recipe.for_data(dataset), f"preset {recipe.name} ({dataset})")
            cfg.preset = recipe.name
        ramps = {name: (o.name, o.beta2_final) for name, o in (("g_optim", cfg.g_optim), ("d_optim", cfg.d_optim))}
        layers(cfg)
        _drop_adam_ramps(cfg, ramps)
        return cfg

    recipe = get_preset(preset) if preset else None
    log.disabled = True  # a first pass only finds the data set: its warnings come again in the second
    try:
        first = build(recipe, None)
    finally:
        log.disabled = False
    dataset, recipes = first.data.dataset, DATA_RECIPES.get(first.train.engine, {})
    if recipe is None and base is None and dataset in recipes:
        recipe = get_preset(recipes[dataset])
    return build(recipe, dataset)


def _drop_adam_ramps(cfg: Config, before: dict[str, tuple[str, Optional[float]]]) -> None:
    """Turn off a recipe's Adam beta2 ramp (`beta2_final`) where the user's layers switched that optimiser
    away from Adam and left the ramp as the recipe set it: `--optimizer sgd` works with every recipe, as
    Adam's betas are ignored by SGD. A ramp the user sets beside a non-Adam optimiser is still an error."""
    for section, (name, beta2_final) in before.items():
        optim = getattr(cfg, section)
        if beta2_final is not None and optim.name != name and optim.name != "adam" and optim.beta2_final == beta2_final:
            log.info("%s.name is '%s': the recipe's Adam beta2 ramp (%s.beta2_final=%s) is off", section, optim.name,
                     section, beta2_final)
            optim.beta2_final = None


def _both(optim: dict[str, Any]) -> dict[str, Any]:
    """The same optimiser settings for G and D."""
    return {"g_optim": optim, "d_optim": optim}


def _merged(*parts: dict[str, Any]) -> dict[str, Any]:
    """Nested config mappings merged section by section, later parts winning (a recipe built on another)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


# R3GAN's recipe and its budget per kind of data (2 CPU cores), here for the demo built on it (issue 12).
_TOY2D_BUDGET = {
    "model": {"z_dim": 16, "g_width": 256, "d_width": 256, "depth": 4, "g_activation": "relu"},
    "train": {"steps": 4000, "batch_size": 256},
    "log": {"sample_every": 500, "checkpoint_every": 1000},
}
_R3GAN = {
    "model": {"image_arch": "r3gan", "z_dim": 64},
    "objective": {"name": "rpgan", "r1": {"gamma": 0.1, "gamma_final": 0.01}, "r2": {"gamma": 0.1, "gamma_final": 0.01}},
    **_both({"name": "adam", "lr": 2e-4, "betas": [0.0, 0.9], "beta2_final": 0.99, "schedule": "cosine",
             "min_lr_factor": 0.25}),
    "train": {"ema_decay": 0.999, "ema_rampup": True},
}
_R3GAN_POINTS = _merged(_TOY2D_BUDGET, {
    **_both({"name": "adam", "lr": 2e-3, "betas": [0.0, 0.9], "beta2_final": 0.99, "schedule": "cosine", "min_lr_factor": 0.0}),
    "train": {"steps": 10000, "ema_decay": None, "ema_rampup": False},
})
# R1 and R2 every 8th D step at 8x the weight (StyleGAN2's lazy regularisation): each costs a second backward pass
_LAZY_R1_R2 = {"r1": {"every": 8}, "r2": {"every": 8}}
# 8x8 images: 16x the paper's learning rate (3.2e-3 -> 8e-4): digits FID 35x the floor at 2e-4, 2.5x here
_R3GAN_8X8 = {"model": {"g_width": 32, "d_width": 32}, **_both({"lr": 3.2e-3})}
_R3GAN_DATA = {
    "points": _R3GAN_POINTS,
    # 25 modes: 92.7% high quality at 10,000 steps, 95.8% at 20,000 (docs/results.md)
    "toy2d-grid": _merged(_R3GAN_POINTS, {"train": {"steps": 20000}}),
    "digits": {**_R3GAN_8X8, "train": {"steps": 1500, "batch_size": 64}},
    # G twice as wide (width 32: 998/1000 modes, KL 0.21; 64: 1000/1000, KL 0.125 [0.124-0.141] over 3 seeds),
    # then R1/R2 every 8th D step, whose saved time buys twice the steps: KL 0.091 [0.086-0.101], FID 0.8x the floor
    "stacked-digits": _merged(_R3GAN_8X8, {"model": {"g_width": 64}, "objective": _LAZY_R1_R2,
                                           "train": {"steps": 6000, "batch_size": 64}}),
    "images": {"model": {"g_width": 32, "d_width": 32}, "train": {"steps": 3000, "batch_size": 64}},
}
# The quick start: r3gan on the 8x8 digits with R1 and R2 taken lazily, every 8th D step at 8 times the
# weight (StyleGAN2's lazy regularisation): FID 2.3x-2.5x the floor in about the time the ResNet + hinge
# demo before it took for 4.6x (each of R1 and R2 costs a second backward pass; full R1/R2: 2.3x at 2.8x the time)
register_preset(
    "demo",
    "quick start on the built-in 8x8 digits: the r3gan recipe (relativistic pairing loss, modern ResNet, EMA of "
    "G, lr 3.2e-3 -> 8e-4) with R1 and R2 every 8th D step; 2-4 min on 2 CPU cores (by the host)",
    _merged(_R3GAN, _R3GAN_DATA["digits"], {
        "data": {"dataset": "digits"},
        "objective": _LAZY_R1_R2,
        "log": {"sample_every": 250, "checkpoint_every": 500},
    }),
)
register_preset(
    "mlp-gan",
    "the tutorial's MLP GAN: G z->128->128->pixels (tanh), D pixels->128->128->1, non-saturating loss",
    {
        "model": {"arch": "mlp", "z_dim": 100, "g_width": 128, "d_width": 128},
        "objective": {"name": "ns"},
    },
)
register_preset(
    "dcgan",
    "DCGAN (Radford et al. 2016): Adam lr 2e-4, beta1 0.5, batch 64, non-saturating loss",
    {
        "model": {"image_arch": "dcgan"},
        "objective": {"name": "ns"},
        **_both({"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}),
    },
)
register_preset(
    "toy2d",
    "MLP GAN on a 2-D Gaussian mixture (toy2d-ring by default): the mode-collapse test bed",
    {
        "data": {"dataset": "toy2d-ring"},
        "model": {"arch": "mlp", "z_dim": 16, "g_width": 128, "d_width": 128},
        **_both({"lr": 2e-3, "schedule": "cosine"}),
        "train": {"steps": 4000, "batch_size": 256},
        "log": {"sample_every": 500, "checkpoint_every": 1000},
    },
)

# The GAN family (ganforge.objectives, ganforge.nets): the papers' hyper-parameters; no data set is fixed.
_ADAM_0_9 = {"name": "adam", "betas": [0.0, 0.9]}
register_preset(
    "dcgan-ns",
    "DCGAN with the non-saturating loss (Radford et al. 2016; Goodfellow et al. 2014): the dcgan recipe",
    PRESETS["dcgan"].overrides,
)
register_preset(
    "wgan",
    "WGAN (Arjovsky et al. 2017): DCGAN nets, weight clipping 0.01, n_dis 5, RMSprop lr 5e-5",
    {
        "model": {"image_arch": "dcgan"},
        "objective": {"name": "wgan", "wgan": {"clip": 0.01}},
        "train": {"n_dis": 5},
        **_both({"name": "rmsprop", "lr": 5e-5}),
    },
)
register_preset(
    "wgan-gp",
    "WGAN-GP (Gulrajani et al. 2017): ResNet, gradient penalty lambda 10, n_dis 5, Adam lr 1e-4 betas (0, 0.9)",
    {
        "model": {"image_arch": "resnet"},
        "objective": {"name": "wgan-gp", "gp": {"weight": 10.0}},
        "train": {"n_dis": 5},
        **_both({**_ADAM_0_9, "lr": 1e-4}),
    },
)
register_preset(
    "lsgan",
    "LSGAN (Mao et al. 2017): DCGAN nets, least-squares loss (a=0, b=c=1), Adam lr 2e-4 beta1 0.5",
    {
        "model": {"image_arch": "dcgan"},
        "objective": {"name": "lsgan"},
        **_both({"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}),
    },
)
register_preset(
    "sngan-hinge",
    "SNGAN (Miyato et al. 2018): ResNet, spectral norm on D, hinge loss, n_dis 5, Adam lr 2e-4 betas (0, 0.9)",
    {
        "model": {"image_arch": "resnet", "spectral_norm_d": True},
        "objective": {"name": "hinge"},
        "train": {"n_dis": 5},
        **_both({**_ADAM_0_9, "lr": 2e-4}),
    },
)
register_preset(
    "sagan",
    "SAGAN (Zhang et al. 2019): ResNet + self-attention, spectral norm on G and D, hinge, TTUR lr 1e-4 / 4e-4",
    {
        "model": {"image_arch": "resnet", "attention": "auto", "spectral_norm_d": True, "spectral_norm_g": True},
        "objective": {"name": "hinge"},
        "train": {"n_dis": 1},
        "g_optim": {**_ADAM_0_9, "lr": 1e-4},
        "d_optim": {**_ADAM_0_9, "lr": 4e-4},
    },
)
register_preset(
    "began",
    "BEGAN (Berthelot et al. 2017): autoencoder D, L1 losses, gamma 0.5, lambda_k 1e-3, Adam lr 1e-4",
    {
        "model": {"image_arch": "began", "z_dim": 64},
        "objective": {"name": "began", "began": {"gamma": 0.5, "lambda_k": 0.001}},
        **_both({"name": "adam", "lr": 1e-4, "betas": [0.5, 0.999]}),
    },
)
register_preset(
    "infogan",
    "InfoGAN (Chen et al. 2016): DCGAN nets, a 10-way categorical and 2 continuous codes, G lr 1e-3, D lr 2e-4; "
    "8x8 digits: MLP nets of 512 units, 10 noise entries at std 0.1, EMA of G, 8,000 steps",
    {
        "model": {"image_arch": "dcgan", "z_dim": 74, "info_cat": 10, "info_cont": 2},
        "objective": {"name": "infogan", "info": {"weight": 1.0}},
        "g_optim": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
    # code agreement over seeds 0, 1, 2: 0.61, 0.50, 0.52 with the DCGAN recipe; 0.92, 0.90, 0.83 with this
    # (docs/presets.md): the paper's fully connected layers, few and quiet noise entries beside the codes, an EMA of G
    {"digits": {"model": {"image_arch": "mlp", "g_width": 512, "d_width": 512, "z_dim": 22, "info_noise_std": 0.1},
                "train": {"steps": 8000, "ema_decay": 0.999}}},
)
register_preset(
    "cgan",
    "conditional GAN (Mirza & Osindero 2014): label embedding into G, one-hot label planes into D (DCGAN nets)",
    {
        "model": {"image_arch": "dcgan", "conditioning": "concat"},
        "objective": {"name": "ns"},
        **_both({"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}),
    },
    # 28x28 and larger: Fashion-MNIST's class accuracy is 0.90 of real at 2,000 steps, 0.94 at 3,000
    {"digits": {}, "images": {"train": {"steps": 3000}}},
)
register_preset(
    "cgan-projection",
    "projection cGAN (Miyato & Koyama 2018): ResNet, conditional BN in G, projection D with spectral norm, hinge; "
    "28x28 and larger: DCGAN nets, z times the label, n_dis 1, 3,000 steps",
    {
        "model": {"image_arch": "resnet", "conditioning": "projection", "g_conditioning": "cbn", "spectral_norm_d": True},
        "objective": {"name": "hinge"},
        "train": {"n_dis": 5},
        **_both({**_ADAM_0_9, "lr": 2e-4}),
    },
    # the ResNet at 28x28 costs 8 s a step on a CPU core (4.5 h for 2,000 steps at n_dis 5); the projection D
    # on DCGAN nets: Fashion-MNIST class accuracy 0.94 of real, FID 9x the floor in 3,000 steps (docs/results.md)
    {"digits": {}, "images": {"model": {"image_arch": "dcgan", "g_conditioning": "mul"}, "train": {"n_dis": 1, "steps": 3000}}},
)
register_preset(
    "acgan",
    "AC-GAN (Odena et al. 2017): DCGAN nets, z times a label embedding into G, an auxiliary classifier on D's "
    "trunk that learns from real images",
    {
        # concatenated labels: every class one image (Fashion-MNIST class accuracy 0.007 of real); z times the
        # label (the reference code's input) and a classifier taught on real images only: 0.93 (docs/presets.md)
        "model": {"image_arch": "dcgan", "conditioning": "acgan", "g_conditioning": "mul"},
        "objective": {"name": "ns", "ac": {"weight": 1.0, "fake_weight": 0.0}},
        **_both({"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}),
    },
)

# Modern baselines (issue 12): R3GAN and PacGAN (their recipes and budgets per kind of data: above).
register_preset(
    "r3gan",
    "R3GAN (Huang et al. 2024): relativistic pairing loss, R1 + R2 (gamma 0.1 -> 0.01), modern ResNet, Adam betas "
    "(0, 0.9 -> 0.99), lr 2e-4 -> 5e-5 (8x8 images: 3.2e-3 -> 8e-4), EMA with ramp-up; toy2d: a 4-layer ReLU MLP, "
    "10,000 steps",
    _R3GAN,
    _R3GAN_DATA,
)
register_preset(
    "r3gan-cond",
    "class-conditional R3GAN: the r3gan recipe with a class embedding into G and a projection head in D",
    {**_R3GAN, "model": {**_R3GAN["model"], "conditioning": "projection", "g_conditioning": "embed"}},
    {
        **{k: v for k, v in _R3GAN_DATA.items() if k in ("digits", "images")},  # stacked data have no classes
        # 28x28 on 2 CPU cores: R1/R2 lazily every 8th D step (1.5 s a step on one core instead of 2.5; 1.24 s
        # at 2 threads) and 4x the paper's learning rate; 650 steps fit 15 minutes. The ramps and the lr's cosine
        # stay those of a 3,000-step run (train.ramp_steps): ramped over 800 steps, the EMA averaged in the first
        # blurry steps (class accuracy 0.81 of real's), where the 3,000-step run was at 0.90 after 500 steps
        "fashion-mnist": _merged(_R3GAN_DATA["images"], {
            "objective": _LAZY_R1_R2,
            **_both({"lr": 8e-4}),
            "train": {"steps": 650, "ramp_steps": 3000},
        }),
    },
)
register_preset(
    "pacgan",
    "PacGAN2 (Lin et al. 2018): D judges packs of 2 samples (model.pack); DCGAN nets and loss; toy2d: a 4-layer ReLU MLP",
    {
        "model": {"image_arch": "dcgan", "pack": 2},
        "objective": {"name": "ns"},
        **_both({"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}),
    },
    {"points": {**_TOY2D_BUDGET, **_both({"lr": 2e-3, "schedule": "cosine"})}},
)
