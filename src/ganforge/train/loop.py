"""The training loop, one for both engines: the step schedule, learning rates, the divergence
watchdog, alarms, maintenance intervals (stats, samples, checkpoints, evaluation) and resume.

An engine (train/engine.py: TorchEngine in torch_engine.py, NumpyEngine in numpy_engine.py) owns
the networks, optimisers and data source and takes one step when asked; everything around the
step lives here and reads top to bottom:

    while step < total:
        lr_g, lr_d = train_step()          # schedule x watchdog scale -> engine.step(n_dis batches)
        end_of_step(...)                   # watchdog check (rollback), maintenance, requested stop
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from .. import stats
from ..alarms import Alarms, check_config as check_alarms
from ..config import Config, flatten, validate
from ..report import save_grid, save_points
from ..report.tensorboard import TensorBoardWriter
from ..run import RunDir, atomic_write, load_checkpoint, save_checkpoint, save_weights, weights_step
from ..data import toy2d_centers
from ..nets.packing import check_pack
from .engine import Engine
from .optim import check_optim, lr_at
from .progress import Progress
from .watchdog import Watchdog

log = logging.getLogger("ganforge")

# In-training evaluation (ganforge.evaluate.make_eval_hook): hook(run, step, G, checkpoint, ema) -> record
EvalHook = Callable[..., Any]


def check_config(cfg: Config) -> None:
    """Everything about a config that can be checked before data or networks exist."""
    validate(cfg)
    check_optim(cfg.g_optim)
    check_optim(cfg.d_optim)
    check_alarms(cfg.alarms)
    check_pack(cfg)  # train.batch_size a multiple of model.pack


class TrainLoop:
    """Trains one engine to cfg.train.steps, writing stats, samples and checkpoints into a run directory.

    The engine's attributes (G, D, opt_G, objective, source, fast, ...) are reachable through the loop.
    """

    def __init__(self, engine: Engine, eval_hook: Optional[EvalHook] = None) -> None:
        self.engine = engine
        self.cfg: Config = engine.cfg
        self.step = 0
        self.run: Optional[RunDir] = None
        self.stop_requested = False  # set by a signal handler: stop (and checkpoint) after this step
        self.nothing_to_train = False  # set by train() when the run is already at train.steps
        self.watchdog = Watchdog(self.cfg.watchdog)  # NaN/inf -> roll back with a lower lr
        self.eval_hook = eval_hook
        if eval_hook is None and self.cfg.log.eval_every:
            log.warning("log.eval_every is %d but no evaluation hook was given: nothing will be evaluated "
                        "(pass eval_hook=ganforge.evaluate.make_eval_hook(cfg))", self.cfg.log.eval_every)
        self.alarms: Optional[Alarms] = None
        self.tb: Optional[TensorBoardWriter] = None

    def __getattr__(self, name: str) -> Any:
        engine = self.__dict__.get("engine")
        if engine is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(engine, name)

    @property
    def main(self) -> bool:
        """Rank 0 (the only process that writes) or a single process."""
        return self.engine.rank == 0

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, **self.engine.state_dict(), "watchdog": self.watchdog.state_dict()}

    def load_state_dict(self, state: dict[str, Any], where: str = "checkpoint") -> None:
        self.engine.load_state_dict(state, where)
        self.step = int(state["step"])
        if "watchdog" in state:
            self.watchdog.load_state_dict(state["watchdog"])

    def save(self) -> None:
        """checkpoints/last.pt and generator.safetensors (rank 0 only)."""
        assert self.run is not None
        if not self.main:
            return
        save_checkpoint(self.state_dict(), self.run.last)
        weights, extra = self.engine.generator_weights()
        meta = {"step": str(self.step), "arch": self.cfg.model.arch, "z_dim": str(self.cfg.model.z_dim), **extra}
        save_weights(weights, self.run.generator, meta)

    def resume_from(self, run: RunDir) -> None:
        """Continue from run's last checkpoint (or from step 0 when it has none yet)."""
        run.readonly = not self.main  # multi-process: only rank 0 touches the run's files
        if not run.last.is_file():
            log.warning("no checkpoint in %s yet: starting from step 0", run.path)
            run.truncate_stats(0)  # records of the attempt that died before its first checkpoint
            return
        self.load_state_dict(load_checkpoint(run.last), str(run.last))
        self.engine.after_resume(self.step)
        run.truncate_stats(self.step)
        if self.main and weights_step(run.generator) != self.step:  # killed between last.pt and the weights
            self.run = run
            self.save()

    # ------------------------------------------------------------------ training

    def train_step(self) -> tuple[float, float]:
        """One step at the scheduled learning rates (times watchdog.lr_scale) and ramps (R3GAN's gamma, beta2,
        EMA): a D update on each of train.n_dis batches, then a G update. Returns the learning rates."""
        cfg = self.cfg
        ramp = cfg.train.ramp_steps or cfg.train.steps  # the schedules' length, in G steps
        lr_g = lr_at(cfg.g_optim, self.step, ramp) * self.watchdog.lr_scale
        lr_d = lr_at(cfg.d_optim, self.step, ramp) * self.watchdog.lr_scale
        self.engine.set_lr(lr_g, lr_d)
        self.engine.set_schedule(self.step, ramp)  # values of this step alone: a function of the step, no state
        batches = [self.engine.batch() for _ in range(cfg.train.n_dis)]
        self.engine.step(batches, grads=self.step % cfg.log.grad_every == 0)
        self.step += 1
        return lr_g, lr_d

    def train(self, run: RunDir, quiet: bool = False, progress: bool = False) -> Path:
        """Train to cfg.train.steps, writing samples, stats and checkpoints into `run`."""
        self.run, cfg = run, self.cfg
        run.readonly = not self.main
        if self.step >= cfg.train.steps:  # the run and its config.yaml stay as they are
            self.nothing_to_train = True
            log.warning("run is already at step %d of --steps %d: nothing to train (give a larger --steps to continue)",
                        self.step, cfg.train.steps)
            return run.path
        if self.main:
            atomic_write(run.config, lambda tmp: tmp.write_text(cfg.to_yaml()))
        self.alarms = Alarms(cfg.alarms, run.path, self.step) if self.main else None  # RUN/alarms.jsonl
        self.tb = TensorBoardWriter(run.path) if cfg.log.tensorboard and self.main else None
        if self.step == 0:
            self.write_samples()
        bar = Progress(cfg.train.steps, self.step, enabled=progress and not quiet)
        self.engine.train_mode()
        self.watchdog.start(self)
        self._t_log, self._s_log = time.perf_counter(), self.step
        try:
            with self.engine.session(self.watchdog):  # the phases queue their gradient norms for the watchdog
                while self.step < cfg.train.steps:
                    lr_g, lr_d = self.train_step()
                    if self.end_of_step(bar, lr_g, lr_d):
                        break
        finally:
            bar.close()
            if self.tb is not None:
                self.tb.close()
        return run.path

    def end_of_step(self, bar: Progress, lr_g: float, lr_d: float) -> bool:
        """The watchdog's check (a rollback on a bad step), the maintenance intervals, then a requested
        stop. Returns True when training must stop now."""
        cfg, step = self.cfg, self.step
        saving = self._due(cfg.log.checkpoint_every) or self.stop_requested
        bad = self.watchdog.bad_step(self, weights=saving)  # one host sync per step
        if bad:
            self.watchdog.rollback(self, bad)  # or DivergedError after watchdog.max_rollbacks
            self._t_log, self._s_log = time.perf_counter(), self.step
            return False
        self.maintenance(bar, lr_g, lr_d)
        if self.stop_requested:
            if not self._due(cfg.log.checkpoint_every):  # (maintenance saved on those steps)
                self.save()
            log.info("stopped on request at step %d; checkpoint saved", step)
            return True
        return False

    def _due(self, every: int) -> bool:
        """An interval falls on this step (and every interval on the last step)."""
        return self.step % every == 0 or self.step == self.cfg.train.steps

    def maintenance(self, bar: Progress, lr_g: float, lr_d: float) -> None:
        """After a good step: a stats record (log.log_every), a sample grid, a checkpoint, an evaluation."""
        log_cfg = self.cfg.log
        if self._due(log_cfg.log_every):
            self.log_record(bar, lr_g, lr_d)
        else:
            bar.update(self.step, None)
        if self._due(log_cfg.sample_every):
            self.write_samples()
        if self._due(log_cfg.checkpoint_every):
            self.save()
        if self.eval_hook is not None and self.main and log_cfg.eval_every and self._due(log_cfg.eval_every):
            G, ema = self.engine.eval_generator()
            self.eval_hook(self.run, self.step, G, self.state_dict, ema)  # RUN/metrics.jsonl, best.pt

    def log_record(self, bar: Progress, lr_g: float, lr_d: float) -> None:
        """A stats record: to stats.jsonl, the progress bar, the log, the alarms and TensorBoard."""
        now = time.perf_counter()
        record = {"step": self.step, **stats.collect(), "lr/G": lr_g, "lr/D": lr_d}
        record["images_per_s"] = (self.step - self._s_log) * self.cfg.train.batch_size / max(now - self._t_log, 1e-9)
        self._t_log, self._s_log = now, self.step
        whole = self.engine.gather(record)  # the mean over ranks (None on ranks > 0)
        if whole is None:
            return
        if self.alarms is not None:
            self.alarms.observe(self.step, whole, self.engine.probe())  # adds "diversity"; writes alarms
        if self.tb is not None:
            self.tb.scalars(self.step, whole)
        assert self.run is not None
        self.run.append_stats(whole)
        bar.update(self.step, whole)
        log.info("step %d/%d %s", self.step, self.cfg.train.steps, summary_line(whole))
        if any(isinstance(v, float) and v != v for v in whole.values()):
            log.warning("step %d: non-finite values in the statistics (training diverged?)", self.step)

    def write_samples(self) -> Path:
        """RUN/samples/step_NNNNNNN.png from the fixed noise (one row per class for conditional runs)."""
        assert self.run is not None
        path = self.run.sample_path(self.step)
        if not self.main:
            return path
        x, nrow = self.engine.sample_grid()
        if self.engine.source.spec.kind == "points":
            centers, _ = toy2d_centers(self.cfg.data.dataset)
            save_points(x, path, centers, title=f"{self.cfg.data.dataset} step {self.step}{self.engine.title}")
        else:
            save_grid(x, path, nrow)
        if self.tb is not None:
            self.tb.images(self.step, x)
        return path


def summary_line(record: dict[str, Any]) -> str:
    keys = ("loss/D", "loss/G", "D(x)", "D(G(z))", "images_per_s")
    return " ".join(f"{k}={record[k]:.4g}" for k in keys if k in record)


def config_diff(saved: Config, new: Config, allowed: tuple[str, ...]) -> list[str]:
    """Dotted keys whose values differ between two configs, ignoring `allowed` prefixes."""
    a, b = flatten(saved.to_dict()), flatten(new.to_dict())
    return [k for k in a if a.get(k) != b.get(k) and not k.startswith(allowed)]


__all__ = ["TrainLoop", "EvalHook", "check_config", "config_diff", "summary_line"]
