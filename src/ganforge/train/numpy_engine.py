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
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Optional

import numpy as np
import torch

from .. import stats
from ..alarms import Alarms, check_config as check_alarms
from ..backprop import Tensor, no_grad
from ..backprop import nn as bnn
from ..backprop import optim as boptim
from ..backprop.gan import G_LOSSES, gan_d
from ..backprop.models import (DCGAN_SIZES, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                               MLPGenerator)
from ..config import Config, OptimConfig, validate
from ..data import Source, Spec, build_source, toy2d_centers
from ..errors import GanforgeError
from ..nets import resolve_arch
from ..report import save_grid, save_points
from .checkpoint import atomic_write, load_checkpoint, save_checkpoint, save_weights
from .optim import check_optim, lr_at
from .progress import Progress
from .rundir import RunDir
from .trainer import end_of_step
from .watchdog import Watchdog

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
        "objective.r1_gamma": o.r1_gamma != 0,
        "train.ema_decay": t.ema_decay is not None,
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
        G = MLPGenerator(m.z_dim, spec.shape, m.g_width or 128, image=spec.kind == "image", rng=rng)
        return G, MLPDiscriminator(spec.shape, m.d_width or 128, rng=rng)
    if spec.kind != "image":
        raise GanforgeError("architecture 'dcgan' makes images; for 2-D points (toy2d) use --arch mlp")
    c, h, w = spec.shape
    if h != w or h not in DCGAN_SIZES:
        raise GanforgeError(f"architecture 'dcgan' cannot make {h}x{w} images; sizes: "
                            f"{', '.join(map(str, DCGAN_SIZES))} (set --image-size)")
    return (DCGANGenerator(m.z_dim, c, h, m.g_width or 64, rng=rng),
            DCGANDiscriminator(c, h, m.d_width or 64, rng=rng))


def build_numpy_optimizer(params: Any, cfg: OptimConfig) -> boptim.Optimizer:
    """The numpy optimiser for an OptimConfig, with the arguments train/optim.build_optimizer gives torch."""
    params = list(params)
    if cfg.name == "sgd":
        return boptim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adagrad":
        return boptim.Adagrad(params, lr=cfg.lr, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return boptim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                              weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return boptim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    check_optim(cfg)  # raises, naming the valid optimisers
    raise AssertionError(cfg.name)


# --------------------------------------------------------------------------- per-layer statistics
# The same keys as train/gradflow.py: grad|weight|update/<G|D>/<layer> and .../total.


def _layers(net: bnn.Module) -> Iterator[tuple[str, list[bnn.Parameter]]]:
    for name, module in net.named_modules():
        params = [p for p in module._parameters.values() if p is not None]
        if params:
            yield name or "root", params


def _sq(arrays: list[np.ndarray]) -> float:
    return float(sum(np.square(a, dtype=np.float64).sum() for a in arrays))


def _report_norms(squares: dict[str, float], prefix: str) -> None:
    for name, sq in squares.items():
        stats.report(f"{prefix}/{name}", sq ** 0.5)
    if squares:
        stats.report(f"{prefix}/total", sum(squares.values()) ** 0.5)


def report_before_step(net: bnn.Module, phase: str) -> dict[str, list[np.ndarray]]:
    """Report grad/<phase>/<layer> (before clipping) and return copies of the weights."""
    squares = {}
    for name, params in _layers(net):
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            squares[name] = _sq(grads)
    _report_norms(squares, f"grad/{phase}")
    return {name: [p.data.copy() for p in params] for name, params in _layers(net)}


def report_after_step(net: bnn.Module, phase: str, before: dict[str, list[np.ndarray]]) -> None:
    """Report weight/<phase>/<layer> and update/<phase>/<layer> = ||w - w_before|| / ||w_before||."""
    _report_norms({name: _sq([p.data for p in params]) for name, params in _layers(net)}, f"weight/{phase}")
    tiny = float(np.finfo(np.float32).tiny)
    deltas, weights = {}, {}
    for name, params in _layers(net):
        deltas[name] = _sq([p.data - old for p, old in zip(params, before[name])])
        weights[name] = _sq(before[name])
    for name in deltas:
        stats.report(f"update/{phase}/{name}", deltas[name] ** 0.5 / max(weights[name] ** 0.5, tiny))
    if deltas:
        stats.report(f"update/{phase}/total", sum(deltas.values()) ** 0.5 / max(sum(weights.values()) ** 0.5, tiny))


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


class NumpyTrainer:
    """Owns the numpy networks and optimisers, the data source and the run directory of one run."""

    engine = "numpy"

    def __init__(self, cfg: Config, progress: bool = False) -> None:
        validate(cfg)
        check_optim(cfg.g_optim)
        check_optim(cfg.d_optim)
        check_alarms(cfg.alarms)
        if cfg.train.engine != "numpy":
            raise GanforgeError(f"this trainer runs --engine numpy, not '{cfg.train.engine}'")
        check_numpy_config(cfg)  # before any data is read or a run directory made
        self.device = "cpu (numpy engine)"
        self.source: Source = build_source(cfg.data, cfg.train.seed, torch.device("cpu"), cfg.train.batch_size, progress)
        spec = self.source.spec
        self.cfg = cfg = cfg.copy()
        cfg.model.arch = resolve_arch(cfg.model.arch, spec)  # config.yaml states exactly what ran
        cfg.model.num_classes = None
        if spec.kind == "image":
            cfg.data.channels, cfg.data.image_size = spec.channels, spec.image_size
        self.rng = np.random.default_rng(cfg.train.seed)  # weights, then the noise of every step
        self.G, self.D = build_numpy_nets(spec, cfg.model.arch, cfg, self.rng)
        self.g_loss = G_LOSSES[cfg.objective.name]
        self.opt_G = build_numpy_optimizer(self.G.parameters(), cfg.g_optim)
        self.opt_D = build_numpy_optimizer(self.D.parameters(), cfg.d_optim)
        n_fixed = 2500 if spec.kind == "points" else cfg.log.n_samples
        fixed = np.random.default_rng(cfg.train.seed + 1).standard_normal((n_fixed, cfg.model.z_dim))
        self.fixed_z = fixed.astype(np.float32)  # [n_fixed, z]
        self.step = 0
        self.run: Optional[RunDir] = None
        self.stop_requested = False  # set by a signal handler: stop (and checkpoint) after this step
        self.watchdog = Watchdog(cfg.watchdog)  # NaN/inf -> roll back with a lower lr (train/watchdog.py)
        self._watching = False  # True inside train(): the phases queue their gradient norms for the watchdog

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as torch tensors and plain values (a weights-only checkpoint)."""
        return {
            "engine": "numpy",
            "step": self.step,
            "G": to_torch(self.G.state_dict()),
            "D": to_torch(self.D.state_dict()),
            "opt_G": to_torch(self.opt_G.state_dict()),
            "opt_D": to_torch(self.opt_D.state_dict()),
            "data": self.source.state_dict(),
            "rng": json.dumps(self.rng.bit_generator.state),  # PCG64's 128-bit ints survive as JSON
            "fixed_z": to_torch(self.fixed_z),
            "watchdog": self.watchdog.state_dict(),  # the rollback count: a lowered lr stays lowered
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
        self.step = int(state["step"])
        if "watchdog" in state:
            self.watchdog.load_state_dict(state["watchdog"])

    def save(self) -> None:
        assert self.run is not None
        save_checkpoint(self.state_dict(), self.run.last)
        meta = {"step": str(self.step), "arch": self.cfg.model.arch, "z_dim": str(self.cfg.model.z_dim),
                "ema": "false", "engine": "numpy"}
        save_weights(to_torch(self.G.state_dict()), self.run.generator, meta)

    def resume_from(self, run: RunDir) -> None:
        if run.last.is_file():
            self.load_state_dict(load_checkpoint(run.last), str(run.last))
            run.truncate_stats(self.step)
        else:
            log.warning("no checkpoint in %s yet: starting from step 0", run.path)
            run.truncate_stats(0)  # records of the attempt that died before its first checkpoint

    # ------------------------------------------------------------------ training

    def batch(self) -> np.ndarray:
        """The next real batch from the data source, as float32 numpy."""
        x, _ = self.source.batch(self.cfg.train.batch_size)
        return x.numpy().astype(np.float32, copy=False)  # [B, C, H, W] or [B, 2]

    def noise(self, n: int) -> np.ndarray:
        return self.rng.standard_normal((n, self.cfg.model.z_dim), dtype=np.float32)  # [n, z]

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
        """One update of D or G: zero, accumulate gradients, clip, step (as Trainer._phase)."""
        net, other, opt, ocfg = (
            (self.D, self.G, self.opt_D, self.cfg.d_optim) if phase == "D" else (self.G, self.D, self.opt_G, self.cfg.g_optim)
        )
        net.requires_grad_(True)
        other.requires_grad_(False)
        opt.zero_grad()
        self.accumulate_gradients(phase, real, z)
        if self._watching:
            self.watchdog.observe_grads(phase, net.parameters())  # checked at the end of the step
        before = report_before_step(net, phase) if grads else None  # grad/<phase>/<layer>
        params = [p for p in net.parameters() if p.grad is not None]
        if ocfg.clip_value is not None:
            bnn.clip_grad_value_(params, ocfg.clip_value)
        if ocfg.clip_norm is not None:
            stats.report(f"grad/{phase}/preclip_total", bnn.clip_grad_norm_(params, ocfg.clip_norm))
        opt.step()
        if before is not None:
            report_after_step(net, phase, before)  # weight/<phase>/<layer>, update/<phase>/<layer>

    def train_step(self) -> tuple[float, float]:
        """n_dis D updates and one G update at the current step's learning rates; returns them.

        The learning rates are the schedule's times watchdog.lr_scale (lr_factor ** rollbacks). Inside
        train() the watchdog then checks the step (Watchdog.bad_step); a train_step on its own does not.
        """
        cfg = self.cfg
        lr_g = lr_at(cfg.g_optim, self.step, cfg.train.steps) * self.watchdog.lr_scale
        lr_d = lr_at(cfg.d_optim, self.step, cfg.train.steps) * self.watchdog.lr_scale
        for opt, lr in ((self.opt_G, lr_g), (self.opt_D, lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
        grads = self.step % cfg.log.grad_every == 0
        for _ in range(cfg.objective.n_dis):
            real = self.batch()
            self._phase("D", real, self.noise(len(real)), grads)
        self._phase("G", real, self.noise(len(real)), grads)
        self.step += 1
        return lr_g, lr_d

    def train(self, run: RunDir, quiet: bool = False, progress: bool = False) -> Path:
        """Train to cfg.train.steps, writing samples, stats and checkpoints into `run`."""
        # With the watchdog on, a NaN/inf is its to report (one log line per rollback, exit 3 at the end):
        # numpy's own "overflow/invalid value encountered" RuntimeWarnings would only repeat it on stderr.
        fp_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
        with blas_threads(), (fp_quiet if self.watchdog.enabled else contextlib.nullcontext()):
            return self._train(run, quiet, progress)

    def _train(self, run: RunDir, quiet: bool, progress: bool) -> Path:
        self.run, cfg = run, self.cfg
        total = cfg.train.steps
        atomic_write(run.config, lambda tmp: tmp.write_text(cfg.to_yaml()))
        if self.step >= total:
            log.info("run is already at step %d of %d: nothing to do", self.step, total)
            return run.path
        self.alarms = Alarms(cfg.alarms, run.path, self.step)  # RUN/alarms.jsonl, from the records
        if self.step == 0:
            self.write_samples()
        bar = Progress(total, self.step, enabled=progress and not quiet)
        self.G.train()
        self.D.train()
        self.watchdog.start(self)  # the start state, in memory, until a checkpoint exists
        self._t_log, self._s_log = time.perf_counter(), self.step
        self._watching = True
        try:
            while self.step < total:
                lr_g, lr_d = self.train_step()
                if end_of_step(self, bar, lr_g, lr_d):  # watchdog, maintenance, a requested stop
                    break
        finally:
            self._watching = False
        bar.close()
        return run.path

    def _observe(self, record: dict[str, Any]) -> dict[str, Any]:
        """A log-interval record made whole: the alarms' probes and checks (RUN/alarms.jsonl)."""
        record.update(self._diversity())
        self.alarms.observe(self.step, record)
        return record

    def _diversity(self) -> dict[str, float]:
        """The alarms' probes (Alarms.measure: diversity, class coverage) on the numpy G."""
        view = SimpleNamespace(source=self.source, cfg=self.cfg, fixed_z=torch.from_numpy(self.fixed_z),
                               G=_TorchView(self.G))
        return self.alarms.measure(view)

    def generate(self, z: np.ndarray) -> np.ndarray:
        """G(z) in eval mode (BatchNorm uses its running statistics), in chunks of 1024."""
        was_training = self.G.training
        self.G.eval()
        with no_grad():
            out = np.concatenate([self.G(Tensor(z[i:i + 1024])).data for i in range(0, len(z), 1024)])
        self.G.train(was_training)
        return out

    def write_samples(self) -> Path:
        assert self.run is not None
        path = self.run.sample_path(self.step)
        x = torch.from_numpy(self.generate(self.fixed_z))
        if self.source.spec.kind == "points":
            centers, _ = toy2d_centers(self.cfg.data.dataset)
            save_points(x, path, centers, title=f"{self.cfg.data.dataset} step {self.step} (numpy engine)")
        else:
            save_grid(x, path)
        return path


__all__ = ["NumpyTrainer", "check_numpy_config", "build_numpy_nets", "build_numpy_optimizer", "to_torch", "from_torch"]
