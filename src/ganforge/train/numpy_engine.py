"""`ganforge train --engine numpy`: the GAN trainer on the from-scratch numpy engine (ganforge.backprop).

The networks, losses, optimisers, clipping and backward passes are ganforge.backprop's (numpy
only). This bridge reuses the PyTorch side for everything around them: data sources (batches
converted with .numpy()), the learning-rate schedule maths (optim.lr_at), the run directory,
stats.jsonl, sample grids and checkpoint files (numpy arrays become torch tensors only at the file
boundary), and the divergence watchdog (train/watchdog.py, `watchdog.*`: a NaN/inf loss or gradient
rolls back to the last good checkpoint with a lower lr; DivergedError, exit 3, after
watchdog.max_rollbacks). The run directory is the torch trainer's: `ganforge sample --run RUN` builds
the torch G from config.yaml and loads generator.safetensors, whose keys are the torch nets' keys.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import torch

from .. import stats
from ..backprop import Tensor, no_grad
from ..backprop import nn as bnn
from ..backprop import optim as boptim
from ..backprop.gan import G_LOSSES, gan_d
from ..backprop.models import (DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                               MLPGenerator)
from ..config import Config, OptimConfig
from ..data import Source, build_source
from ..errors import GanforgeError
from ..run import Spec, is_points
from . import gradflow
from .engine import resolve
from .optim import clip_gradients, optimizer_arguments
from .watchdog import CheckQueue, NoChecks

log = logging.getLogger("ganforge")

DATASETS = ("digits", "mnist", "fashion-mnist", "toy2d-ring", "toy2d-grid")
ARCHS = ("auto", "mlp", "dcgan")


# --------------------------------------------------------------------------- what the engine runs


def check_numpy_config(cfg: Config) -> None:
    """GanforgeError naming the first option the numpy engine does not support."""
    m, o, t, lg = cfg.model, cfg.objective, cfg.train, cfg.log

    def no(option: str, why: str = "") -> GanforgeError:
        return GanforgeError(f"--engine numpy does not support {option}{why}; use --engine torch")

    if cfg.data.dataset not in DATASETS:
        raise no(f"--dataset {cfg.data.dataset}", f" (numpy engine data: {', '.join(DATASETS)})")
    if m.arch not in ARCHS:
        raise no(f"--arch {m.arch}", " (numpy engine architectures: mlp, dcgan)")
    if m.arch == "auto" and m.image_arch not in ARCHS and not is_points(cfg.data.dataset):
        raise no(f"model.image_arch {m.image_arch}", " (numpy engine architectures: mlp, dcgan; or --arch mlp)")
    if o.name not in G_LOSSES:
        raise no(f"--objective {o.name}", f" (numpy engine objectives: {', '.join(sorted(G_LOSSES))})")
    if t.device not in ("auto", "cpu"):
        raise no(f"--device {t.device}", " (it runs on the CPU)")
    unsupported = {
        "model.conditioning": m.conditioning != "none",
        "model.spectral_norm_d": m.spectral_norm_d,
        "model.spectral_norm_g": m.spectral_norm_g,
        "model.attention": m.attention is not None,
        "model.info_cat": m.info_cat != 0,
        "model.info_cont": m.info_cont != 0,
        "objective.r1.gamma": o.r1.gamma != 0,
        "objective.r1.gamma_final": o.r1.gamma_final is not None,
        "objective.r2.gamma": o.r2.gamma != 0,
        "objective.r2.gamma_final": o.r2.gamma_final is not None,
        "g_optim.beta2_final": cfg.g_optim.beta2_final is not None,
        "d_optim.beta2_final": cfg.d_optim.beta2_final is not None,
        "train.ema_decay": t.ema_decay is not None,
        "train.ema_rampup": t.ema_rampup,
        "train.diffaugment": bool(t.diffaugment.strip()),
        "log.eval_every (--eval-every)": lg.eval_every != 0,
        "log.tensorboard (--tensorboard)": lg.tensorboard,
    }
    for key, is_set in unsupported.items():
        if is_set:
            raise no(key)


def build_numpy_nets(spec: Spec, arch: str, cfg: Config, rng: np.random.Generator) -> tuple[bnn.Module, bnn.Module]:
    """(G, D) on the numpy engine with the torch nets' module paths (same state_dict keys)."""
    m = cfg.model
    if arch == "mlp":
        G = MLPGenerator(m.z_dim, spec.shape, m.g_width or 128, image=spec.kind == "image", depth=m.depth,
                         activation=m.g_activation, rng=rng)
        return G, MLPDiscriminator(spec.shape, m.d_width or 128, depth=m.depth, rng=rng)
    if spec.kind != "image":
        raise GanforgeError("architecture 'dcgan' makes images; for 2-D points (toy2d) use --arch mlp")
    c, h, w = spec.shape
    if h != w or h not in DCGAN_SIZES:
        raise GanforgeError(f"architecture 'dcgan' cannot make {h}x{w} images; sizes: "
                            f"{', '.join(map(str, DCGAN_SIZES))} (set --image-size)")
    return (DCGANGenerator(m.z_dim, c, h, m.g_width or 64, rng=rng),
            DCGANDiscriminator(c, h, m.d_width or 64, rng=rng))


def build_numpy_optimizer(params: Any, cfg: OptimConfig) -> boptim.Optimizer:
    """The numpy optimiser for an OptimConfig, with the arguments torch's gets (train/optim.py)."""
    cls, kwargs = optimizer_arguments(cfg)
    return getattr(boptim, cls)(list(params), **kwargs)


# --------------------------------------------------------------------------- numpy <-> checkpoint files


def to_torch(x: Any) -> Any:
    """numpy arrays (in nested dicts/lists) -> torch tensors, for torch.save / safetensors."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.array(x))  # a copy: the file must not alias live weights
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: to_torch(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(to_torch(v) for v in x)
    return x


def from_torch(x: Any) -> Any:
    """The inverse of to_torch: torch tensors -> numpy arrays."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().copy()
    if isinstance(x, dict):
        return {k: from_torch(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(from_torch(v) for v in x)
    return x


def _load_module(net: bnn.Module, state: dict[str, Any], what: str) -> None:
    try:
        net.load_state_dict(from_torch(state))
    except RuntimeError as e:
        raise GanforgeError(f"{what} does not match the configured architecture: {str(e).splitlines()[-1].strip()}") from None


BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def blas_threads() -> Iterator[None]:
    """numpy's BLAS on one thread while training, unless OPENBLAS_NUM_THREADS (or OMP_/MKL_) is set.

    The engine's matrices are small (batch x width): a second BLAS thread gains little on an idle
    machine, and on a busy one OpenBLAS's spinning threads make steps 10x slower (measured here).
    """
    if any(os.environ.get(v) for v in BLAS_ENV):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it numpy keeps its own setting
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


class _TorchView:
    """A numpy G seen through the few torch calls Alarms.measure makes: train mode, buffers, forward.

    named_buffers() returns torch views sharing the numpy arrays' memory, so the alarms' save and
    restore of BatchNorm statistics acts on the numpy G itself.
    """

    def __init__(self, G: bnn.Module) -> None:
        self.G = G

    @property
    def training(self) -> bool:
        return self.G.training

    def train(self, mode: bool = True) -> "_TorchView":
        self.G.train(mode)
        return self

    def named_buffers(self) -> Iterator[tuple[str, torch.Tensor]]:
        return ((k, torch.from_numpy(b)) for k, b in self.G.named_buffers())

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        with no_grad():
            return torch.from_numpy(self.G(Tensor(z.numpy())).data)


# --------------------------------------------------------------------------- the trainer


class NumpyEngine:
    """Owns the numpy networks and optimisers and the data source of one run (see engine.Engine)."""

    title = " (numpy engine)"
    rank, world = 0, 1  # one process

    def __init__(self, cfg: Config, progress: bool = False) -> None:
        if cfg.train.engine != "numpy":
            raise GanforgeError(f"this engine runs --engine numpy, not '{cfg.train.engine}'")
        check_numpy_config(cfg)  # before any data is read or a run directory made
        self.device = "cpu (numpy engine)"
        self.source: Source = build_source(cfg.data, cfg.train.seed, torch.device("cpu"), cfg.train.batch_size, progress)
        spec = self.source.spec
        self.cfg = cfg = resolve(cfg, self.source)  # config.yaml states exactly what ran (no conditioning here)
        self.rng = np.random.default_rng(cfg.train.seed)  # weights, then the noise of every step
        self.G, self.D = build_numpy_nets(spec, cfg.model.arch, cfg, self.rng)
        self.g_loss = G_LOSSES[cfg.objective.name]
        self.opt_G = build_numpy_optimizer(self.G.parameters(), cfg.g_optim)
        self.opt_D = build_numpy_optimizer(self.D.parameters(), cfg.d_optim)
        n_fixed = 2500 if spec.kind == "points" else cfg.log.n_samples
        fixed = np.random.default_rng(cfg.train.seed + 1).standard_normal((n_fixed, cfg.model.z_dim))
        self.fixed_z = fixed.astype(np.float32)  # [n_fixed, z]
        self.watch: CheckQueue = NoChecks()  # the watchdog's queue while training (session)

    def nets(self) -> dict[str, Any]:
        return {"G": self.G, "D": self.D}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as torch tensors and plain values (a weights-only checkpoint)."""
        return {
            "engine": "numpy",
            "G": to_torch(self.G.state_dict()),
            "D": to_torch(self.D.state_dict()),
            "opt_G": to_torch(self.opt_G.state_dict()),
            "opt_D": to_torch(self.opt_D.state_dict()),
            "data": self.source.state_dict(),
            "rng": json.dumps(self.rng.bit_generator.state),  # PCG64's 128-bit ints survive as JSON
            "fixed_z": to_torch(self.fixed_z),
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "checkpoint") -> None:
        if state.get("engine") != "numpy":
            raise GanforgeError(f"{where}: not a checkpoint of the numpy engine")
        _load_module(self.G, state["G"], f"{where}: G")
        _load_module(self.D, state["D"], f"{where}: D")
        self.opt_G.load_state_dict(from_torch(state["opt_G"]))
        self.opt_D.load_state_dict(from_torch(state["opt_D"]))
        self.source.load_state_dict(state["data"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.fixed_z = from_torch(state["fixed_z"])

    def after_resume(self, step: int) -> None:
        pass

    def generator_weights(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        return to_torch(self.G.state_dict()), {"ema": "false", "engine": "numpy"}

    # ------------------------------------------------------------------ training

    def batch(self) -> tuple[np.ndarray, None]:
        """The next real batch from the data source, as float32 numpy."""
        x, _ = self.source.batch(self.cfg.train.batch_size)
        return x.numpy().astype(np.float32, copy=False), None  # [B, C, H, W] or [B, 2]

    def noise(self, n: int) -> np.ndarray:
        return self.rng.standard_normal((n, self.cfg.model.z_dim), dtype=np.float32)  # [n, z]

    def set_lr(self, lr_g: float, lr_d: float) -> None:
        for opt, lr in ((self.opt_G, lr_g), (self.opt_D, lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr

    def set_schedule(self, step: int, steps: int) -> None:
        """Nothing to ramp: check_numpy_config refuses R3GAN's ramps (train.ramp_steps only times the lr)."""

    def train_mode(self) -> None:
        self.G.train()
        self.D.train()

    @contextlib.contextmanager
    def session(self, watchdog: Any) -> Iterator[None]:
        """BLAS on one thread, the watchdog's queue, and numpy's floating-point warnings off while the
        watchdog is on (a NaN/inf is its to report: one log line per rollback, exit 3 at the end)."""
        fp_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        with blas_threads(), (fp_quiet if watchdog.enabled else contextlib.nullcontext()):
            self.watch = watchdog.sink()
            try:
                yield
            finally:
                self.watch = NoChecks()

    def step(self, batches: list[tuple[np.ndarray, None]], grads: bool) -> None:
        """A D update on each batch, then a G update on the last (noise drawn per phase)."""
        for real, _ in batches:
            self._phase("D", real, self.noise(len(real)), grads)
        self._phase("G", real, self.noise(len(real)), grads)

    def accumulate_gradients(self, phase: str, real: np.ndarray, z: np.ndarray) -> None:
        """One phase's forward pass, loss and backward (the numpy counterpart of an Objective)."""
        if phase == "D":
            with no_grad():
                fake = self.G(Tensor(z))
            real_logits, fake_logits = self.D(Tensor(real)), self.D(fake)
            loss = gan_d(real_logits=real_logits, fake_logits=fake_logits)
            loss.backward()
            stats.report("loss/D", float(loss.data))
            stats.report("D(x)", float(real_logits.sigmoid().data.mean()))
            stats.report("D(G(z))", float(fake_logits.sigmoid().data.mean()))
            stats.report("logit/real", float(real_logits.data.mean()))
            stats.report("logit/fake", float(fake_logits.data.mean()))
        elif phase == "G":
            loss = self.g_loss(fake_logits=self.D(self.G(Tensor(z))))
            loss.backward()
            stats.report("loss/G", float(loss.data))
        else:
            raise ValueError(f"unknown phase {phase!r}")

    def _phase(self, phase: str, real: np.ndarray, z: np.ndarray, grads: bool) -> None:
        """One update of D or G: zero, accumulate gradients, clip, step (as TorchEngine._phase)."""
        net, other, opt, ocfg = (
            (self.D, self.G, self.opt_D, self.cfg.d_optim) if phase == "D" else (self.G, self.D, self.opt_G, self.cfg.g_optim)
        )
        net.requires_grad_(True)
        other.requires_grad_(False)
        opt.zero_grad()
        self.accumulate_gradients(phase, real, z)
        self.watch.observe_grads(phase, net.parameters())  # checked at the end of the step
        before = gradflow.report_before_step(net, phase) if grads else None  # grad/<phase>/<layer>
        norm = clip_gradients([p for p in net.parameters() if p.grad is not None], ocfg, utils=bnn)
        if norm is not None:
            stats.report(f"grad/{phase}/preclip_total", norm)
        opt.step()
        if before is not None:
            gradflow.report_after_step(net, phase, before)  # weight/<phase>/<layer>, update/<phase>/<layer>

    # ------------------------------------------------------------------ around the step

    def gather(self, record: dict[str, Any]) -> dict[str, Any]:
        return record

    def probe(self) -> Any:
        """What the alarms measure (Alarms.measure: diversity, class coverage): the numpy G seen as torch."""
        return SimpleNamespace(source=self.source, cfg=self.cfg, fixed_z=torch.from_numpy(self.fixed_z),
                               G=_TorchView(self.G))

    def generate(self, z: np.ndarray) -> np.ndarray:
        """G(z) in eval mode (BatchNorm uses its running statistics), in chunks of 1024."""
        was_training = self.G.training
        self.G.eval()
        with no_grad():
            out = np.concatenate([self.G(Tensor(z[i:i + 1024])).data for i in range(0, len(z), 1024)])
        self.G.train(was_training)
        return out

    def sample_grid(self) -> tuple[torch.Tensor, None]:
        return torch.from_numpy(self.generate(self.fixed_z)), None

    def eval_generator(self) -> tuple[torch.nn.Module, bool]:
        raise GanforgeError("--engine numpy does not support log.eval_every (--eval-every); use --engine torch")

    def close(self) -> None:
        self.source.close()


__all__ = ["NumpyEngine", "check_numpy_config", "build_numpy_nets", "build_numpy_optimizer", "to_torch", "from_torch"]
