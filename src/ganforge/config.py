"""Typed configuration: the single source of truth for a run, saved as config.yaml in its directory.

Precedence (later wins): dataclass defaults < --preset < --config FILE < CLI flags < --set key=value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .errors import GanforgeError, unknown_name


ENGINES = ("torch", "numpy")  # train.engine (--engine): the PyTorch trainer, or ganforge.backprop's


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


@dataclass
class ModelConfig:
    arch: str = "auto"  # auto: dcgan for images, mlp for toy2d
    z_dim: int = 100
    g_width: Optional[int] = None  # None: the architecture's default (mlp 128 units, dcgan 64 channels)
    d_width: Optional[int] = None
    # The GAN family (ganforge.nets): labels, layers and heads.
    conditioning: str = "none"  # none | concat (cGAN) | projection (projection D) | acgan (auxiliary classifier)
    g_conditioning: str = "auto"  # how labels enter G: auto (cbn for resnet, else embed) | embed | cbn
    num_classes: Optional[int] = None  # resolved from the data set when conditioning is on
    spectral_norm_d: bool = False  # spectral normalisation on every D weight
    spectral_norm_g: bool = False  # ... and on G's
    attention: Optional[Union[int, str]] = None  # resnet: SAGAN self-attention at this resolution, or auto
    info_cat: int = 0  # InfoGAN: categories of the categorical code (0: none); carved out of z
    info_cont: int = 0  # InfoGAN: continuous codes, uniform on [-1, 1]; carved out of z


@dataclass
class ObjectiveConfig:
    name: str = "ns"  # ns (non-saturating) | minimax (the original saturating loss)
    n_dis: int = 1  # D updates per G update
    clip: float = 0.01  # wgan: D's weights are clipped to [-clip, clip] after each D step
    gp_lambda: float = 10.0  # wgan-gp: weight of the gradient penalty on random interpolates
    r1_gamma: float = 0.0  # R1 penalty gamma/2 E||grad D(x)||^2 on real data, any objective (0: off)
    r1_every: int = 1  # lazy R1: apply it every N D steps (scaled by N)
    ac_weight: float = 1.0  # acgan conditioning: weight of the auxiliary classification loss
    info_weight: float = 1.0  # InfoGAN: weight of the mutual-information (Q) loss
    began_gamma: float = 0.5  # began: diversity ratio E[L(G(z))] / E[L(x)] the controller aims for
    began_lambda_k: float = 0.001  # began: learning rate of the equilibrium controller k_t


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
    min_lr_factor: float = 0.0  # linear / cosine: final lr = lr * min_lr_factor
    clip_norm: Optional[float] = None  # clip the total gradient norm (off by default)
    clip_value: Optional[float] = None  # clip every gradient element to [-v, v] (off by default)


@dataclass
class TrainConfig:
    steps: int = 2000  # G updates in total (a resumed run continues to this number)
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    engine: str = "torch"  # torch | numpy (ganforge.backprop, the from-scratch engine: MLP/DCGAN, ns/minimax)
    ema_decay: Optional[float] = None  # e.g. 0.999: keep an EMA of G's weights for samples and metrics (None: off)
    diffaugment: str = ""  # DiffAugment policy for D's inputs: comma list of translation, cutout, color ("": off)
    precision: str = "auto"  # auto | fp32 | bf16 (autocast for the networks; losses stay float32). See train/fastpath.py
    channels_last: str = "auto"  # auto | on | off (memory layout of conv nets and batches)
    fused_optim: str = "auto"  # auto | on | off: Adam's fused kernel (one kernel for all parameters)
    tf32: str = "auto"  # auto | on | off: TensorFloat-32 matrix products for float32 on CUDA
    cuda_graphs: str = "auto"  # auto | on | off: capture the whole step as one CUDA graph and replay it
    compile: str = "auto"  # auto | on | off: torch.compile G and D, with a guarded fall-back to eager


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


@dataclass
class WatchdogConfig:
    """The divergence watchdog (ganforge.train.watchdog): NaN/inf in a loss or gradient -> roll back."""

    enabled: bool = True  # check every step's losses and gradient norms for NaN/inf
    max_rollbacks: int = 3  # K: rollbacks to the last good checkpoint before the run stops (exit 3)
    lr_factor: float = 0.5  # both learning rates are multiplied by this at every rollback


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
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
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


def apply_dict(cfg: Config, data: Any, source: str = "config") -> Config:
    """Apply a nested mapping (from YAML or a preset) onto `cfg` in place, checking keys and types."""
    if not isinstance(data, dict):
        raise GanforgeError(f"{source}: expected a mapping of config sections, got {type(data).__name__}")
    for key, value in data.items():
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
    """Set one dotted key ('g_optim.lr') to an already-parsed value."""
    parts = dotted.split(".")
    nested: Any = value
    for p in reversed(parts[1:]):
        nested = {p: nested}
    _apply(cfg, parts[0], nested, "--set")


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
    """Range checks that do not need the data or the networks. Raises GanforgeError."""

    def positive(key: str, v: Any) -> None:
        if v is not None and not v > 0:
            raise GanforgeError(f"{key} must be positive, got {v}")

    t = cfg.train
    positive("train.steps (--steps)", t.steps)
    positive("train.batch_size (--batch-size)", t.batch_size)
    positive("objective.n_dis", cfg.objective.n_dis)
    positive("model.z_dim", cfg.model.z_dim)
    positive("model.g_width", cfg.model.g_width)
    positive("model.d_width", cfg.model.d_width)
    positive("data.image_size (--image-size)", cfg.data.image_size)
    if cfg.data.max_items is not None:
        positive("data.max_items", cfg.data.max_items)
    if cfg.data.channels not in (None, 1, 3):
        raise GanforgeError(f"data.channels (--channels) must be 1 or 3, got {cfg.data.channels}")
    if cfg.data.split not in ("train", "test"):
        raise GanforgeError(f"data.split must be train or test, got '{cfg.data.split}'")
    if cfg.data.loader not in ("auto", "memory", "stream"):
        raise GanforgeError(f"data.loader must be auto, memory or stream, got '{cfg.data.loader}'")
    if cfg.data.workers < 0:
        raise GanforgeError(f"data.workers must be >= 0, got {cfg.data.workers}")
    for name in ("log_every", "grad_every", "sample_every", "checkpoint_every", "n_samples"):
        positive(f"log.{name}", getattr(cfg.log, name))
    if cfg.watchdog.max_rollbacks < 0:
        raise GanforgeError(f"watchdog.max_rollbacks must be >= 0, got {cfg.watchdog.max_rollbacks}")
    if not 0.0 < cfg.watchdog.lr_factor <= 1.0:
        raise GanforgeError(f"watchdog.lr_factor must be in (0, 1], got {cfg.watchdog.lr_factor}")
    for which in ("g_optim", "d_optim"):
        o: OptimConfig = getattr(cfg, which)
        positive(f"{which}.lr (--lr)", o.lr)
        positive(f"{which}.eps", o.eps)
        positive(f"{which}.step_size", o.step_size)
        positive(f"{which}.clip_norm", o.clip_norm)
        positive(f"{which}.clip_value", o.clip_value)
        for i, b in enumerate(o.betas):
            if not 0.0 <= b < 1.0:
                raise GanforgeError(f"{which}.betas[{i}] must be in [0, 1), got {b}")
        if not 0.0 <= o.momentum < 1.0:
            raise GanforgeError(f"{which}.momentum must be in [0, 1), got {o.momentum}")
        if not 0.0 < o.alpha < 1.0:
            raise GanforgeError(f"{which}.alpha must be in (0, 1), got {o.alpha}")
        if o.weight_decay < 0:
            raise GanforgeError(f"{which}.weight_decay must be >= 0, got {o.weight_decay}")
        if not 0.0 < o.gamma <= 1.0:
            raise GanforgeError(f"{which}.gamma must be in (0, 1], got {o.gamma}")
        if not 0.0 <= o.min_lr_factor <= 1.0:
            raise GanforgeError(f"{which}.min_lr_factor must be in [0, 1], got {o.min_lr_factor}")
    if t.engine not in ENGINES:
        raise unknown_name("engine", t.engine, ENGINES)
    dev = t.device
    if not (dev in ("auto", "cpu", "cuda") or dev.startswith("cuda:")):
        raise GanforgeError(f"train.device (--device) must be auto, cpu, cuda or cuda:N, got '{dev}'")
    _validate_family(cfg)


def _validate_family(cfg: Config) -> None:
    """Range checks of the GAN-family keys (objectives, conditioning, EMA, DiffAugment)."""
    o, m, t = cfg.objective, cfg.model, cfg.train
    for key in ("clip", "r1_every"):
        if not getattr(o, key) > 0:
            raise GanforgeError(f"objective.{key} must be positive, got {getattr(o, key)}")
    for key in ("gp_lambda", "r1_gamma", "ac_weight", "info_weight", "began_gamma", "began_lambda_k"):
        if not getattr(o, key) >= 0:
            raise GanforgeError(f"objective.{key} must be >= 0, got {getattr(o, key)}")
    if m.info_cat < 0 or m.info_cont < 0 or m.info_cat == 1:
        raise GanforgeError(f"model.info_cat must be 0 or >= 2 and model.info_cont >= 0, got {m.info_cat}, {m.info_cont}")
    if m.info_cat + m.info_cont >= m.z_dim:
        raise GanforgeError(
            f"model.z_dim ({m.z_dim}) must exceed the InfoGAN codes it carries (info_cat + info_cont = {m.info_cat + m.info_cont})"
        )
    if isinstance(m.attention, str) and m.attention != "auto":
        raise GanforgeError(f"model.attention must be a resolution (e.g. 16), auto or null, got '{m.attention}'")
    if t.precision not in ("auto", "fp32", "bf16"):
        raise GanforgeError(f"train.precision must be auto, fp32 or bf16, got '{t.precision}'")
    for key in ("channels_last", "fused_optim", "tf32", "cuda_graphs", "compile"):
        if getattr(t, key) not in ("auto", "on", "off"):
            raise GanforgeError(f"train.{key} must be auto, on or off, got '{getattr(t, key)}'")
    if t.ema_decay is not None and not 0.0 <= t.ema_decay < 1.0:
        raise GanforgeError(f"train.ema_decay must be in [0, 1) or null, got {t.ema_decay}")
    bad = [p for p in t.diffaugment.split(",") if p.strip() and p.strip() not in ("translation", "cutout", "color")]
    if bad:
        raise GanforgeError(f"train.diffaugment: unknown policy '{bad[0]}'; valid: translation, cutout, color")


# ----------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    overrides: dict[str, Any]


PRESETS: dict[str, Preset] = {}


def register_preset(name: str, summary: str, overrides: dict[str, Any]) -> None:
    if name in PRESETS:
        raise KeyError(f"preset '{name}' registered twice")
    from_dict(overrides, f"preset {name}")  # fail at import if a preset names a bad key
    PRESETS[name] = Preset(name, summary, overrides)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise unknown_name("preset", name, PRESETS)
    return PRESETS[name]


register_preset(
    "demo",
    "quick start: DCGAN on the built-in 8x8 digits, about a minute on 2 CPU cores",
    {
        "data": {"dataset": "digits"},
        "model": {"arch": "dcgan", "z_dim": 64, "g_width": 64, "d_width": 64},
        "train": {"steps": 1500, "batch_size": 64},
        "log": {"sample_every": 250, "checkpoint_every": 500},
    },
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
        "model": {"arch": "dcgan"},
        "objective": {"name": "ns"},
        "g_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
)
register_preset(
    "toy2d",
    "MLP GAN on a 2-D Gaussian mixture (toy2d-ring by default): the mode-collapse test bed",
    {
        "data": {"dataset": "toy2d-ring"},
        "model": {"arch": "mlp", "z_dim": 16, "g_width": 128, "d_width": 128},
        "g_optim": {"lr": 2e-3, "schedule": "cosine"},
        "d_optim": {"lr": 2e-3, "schedule": "cosine"},
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
        "model": {"arch": "dcgan"},
        "objective": {"name": "wgan", "clip": 0.01, "n_dis": 5},
        "g_optim": {"name": "rmsprop", "lr": 5e-5},
        "d_optim": {"name": "rmsprop", "lr": 5e-5},
    },
)
register_preset(
    "wgan-gp",
    "WGAN-GP (Gulrajani et al. 2017): ResNet, gradient penalty lambda 10, n_dis 5, Adam lr 1e-4 betas (0, 0.9)",
    {
        "model": {"arch": "resnet"},
        "objective": {"name": "wgan-gp", "gp_lambda": 10.0, "n_dis": 5},
        "g_optim": {**_ADAM_0_9, "lr": 1e-4},
        "d_optim": {**_ADAM_0_9, "lr": 1e-4},
    },
)
register_preset(
    "lsgan",
    "LSGAN (Mao et al. 2017): DCGAN nets, least-squares loss (a=0, b=c=1), Adam lr 2e-4 beta1 0.5",
    {
        "model": {"arch": "dcgan"},
        "objective": {"name": "lsgan"},
        "g_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
)
register_preset(
    "sngan-hinge",
    "SNGAN (Miyato et al. 2018): ResNet, spectral norm on D, hinge loss, n_dis 5, Adam lr 2e-4 betas (0, 0.9)",
    {
        "model": {"arch": "resnet", "spectral_norm_d": True},
        "objective": {"name": "hinge", "n_dis": 5},
        "g_optim": {**_ADAM_0_9, "lr": 2e-4},
        "d_optim": {**_ADAM_0_9, "lr": 2e-4},
    },
)
register_preset(
    "sagan",
    "SAGAN (Zhang et al. 2019): ResNet + self-attention, spectral norm on G and D, hinge, TTUR lr 1e-4 / 4e-4",
    {
        "model": {"arch": "resnet", "attention": "auto", "spectral_norm_d": True, "spectral_norm_g": True},
        "objective": {"name": "hinge", "n_dis": 1},
        "g_optim": {**_ADAM_0_9, "lr": 1e-4},
        "d_optim": {**_ADAM_0_9, "lr": 4e-4},
    },
)
register_preset(
    "began",
    "BEGAN (Berthelot et al. 2017): autoencoder D, L1 losses, gamma 0.5, lambda_k 1e-3, Adam lr 1e-4",
    {
        "model": {"arch": "began", "z_dim": 64},
        "objective": {"name": "began", "began_gamma": 0.5, "began_lambda_k": 0.001},
        "g_optim": {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 1e-4, "betas": [0.5, 0.999]},
    },
)
register_preset(
    "infogan",
    "InfoGAN (Chen et al. 2016): DCGAN nets, a 10-way categorical and 2 continuous codes, G lr 1e-3, D lr 2e-4",
    {
        "model": {"arch": "dcgan", "z_dim": 74, "info_cat": 10, "info_cont": 2},
        "objective": {"name": "infogan", "info_weight": 1.0},
        "g_optim": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
)
register_preset(
    "cgan",
    "conditional GAN (Mirza & Osindero 2014): label embedding into G, one-hot label planes into D (DCGAN nets)",
    {
        "model": {"arch": "dcgan", "conditioning": "concat"},
        "objective": {"name": "ns"},
        "g_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
)
register_preset(
    "cgan-projection",
    "projection cGAN (Miyato & Koyama 2018): ResNet, conditional BN in G, projection D with spectral norm, hinge",
    {
        "model": {"arch": "resnet", "conditioning": "projection", "g_conditioning": "cbn", "spectral_norm_d": True},
        "objective": {"name": "hinge", "n_dis": 5},
        "g_optim": {**_ADAM_0_9, "lr": 2e-4},
        "d_optim": {**_ADAM_0_9, "lr": 2e-4},
    },
)
register_preset(
    "acgan",
    "AC-GAN (Odena et al. 2017): DCGAN nets, label embedding into G, an auxiliary classifier on D's trunk",
    {
        "model": {"arch": "dcgan", "conditioning": "acgan"},
        "objective": {"name": "ns", "ac_weight": 1.0},
        "g_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
        "d_optim": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    },
)
