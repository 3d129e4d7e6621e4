"""The PyTorch GAN trainer: alternating D and G updates, with maintenance on intervals."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import torch

from .. import stats
from ..config import Config, flatten, validate
from ..data import Source, Spec, build_source, is_points, toy2d_centers
from ..errors import GanforgeError
from ..nets import build_nets, resolve_arch, resolve_labels
from ..nets.heads import class_grid_inputs
from ..objectives import build_objective
from ..alarms import Alarms, check_config as check_alarms
from ..report.tensorboard import TensorBoardWriter
from ..report import save_grid, save_points
from .checkpoint import (
    atomic_write,
    load_checkpoint,
    load_module_state,
    rng_state,
    save_checkpoint,
    save_weights,
    set_rng_state,
    weights_step,
)
from . import gradflow
from .gradflow import layer_grad_norms  # noqa: F401  (re-exported: ganforge.train.layer_grad_norms)
from .ema import EMA
from . import distributed, fastpath
from .graphs import Batch, StepGraph
from .optim import build_optimizer, check_optim, clip_gradients, load_optimizer_state, lr_at, set_lr
from .progress import Progress
from .rundir import RunDir
from .watchdog import Watchdog

log = logging.getLogger("ganforge")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanforgeError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return torch.device(name)


def spec_from_config(cfg: Config) -> Spec:
    """The data shape recorded in a resolved config (no data loading needed)."""
    if is_points(cfg.data.dataset):
        return Spec(kind="points", shape=(2,))
    if cfg.data.image_size is None or cfg.data.channels is None:
        raise GanforgeError("config has no resolved data.image_size / data.channels")
    return Spec(kind="image", shape=(cfg.data.channels, cfg.data.image_size, cfg.data.image_size),
                num_classes=cfg.model.num_classes)


class Trainer:
    """Owns the networks, optimisers, data source and run directory of one training run."""

    def __init__(self, cfg: Config, device: Optional[torch.device] = None, progress: bool = False) -> None:
        validate(cfg)
        check_optim(cfg.g_optim)
        check_optim(cfg.d_optim)
        from ..evaluate import check_eval_config

        check_eval_config(cfg)
        check_alarms(cfg.alarms)
        if cfg.train.engine != "torch":
            raise GanforgeError(f"this trainer runs --engine torch, not '{cfg.train.engine}'")
        self.rank, self.world, local_rank = distributed.init_from_env()  # torchrun: N > 1 processes
        if device is None and self.world > 1 and cfg.train.device in ("auto", "cuda") and torch.cuda.is_available():
            device = torch.device("cuda", local_rank)
        self.device = device or pick_device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        self.source: Source = build_source(cfg.data, cfg.train.seed, self.device, cfg.train.batch_size, progress)
        if self.world > 1:
            self.source.shard(self.rank, self.world, cfg.train.seed)
        spec = self.source.spec
        self.cfg = cfg = cfg.copy()
        # Resolve "auto" and native sizes so that config.yaml states exactly what ran.
        cfg.model.arch = resolve_arch(cfg.model.arch, spec)
        resolve_labels(cfg.model, spec, cfg.data.dataset)  # model.num_classes for conditional runs
        if spec.kind == "image":
            cfg.data.channels, cfg.data.image_size = spec.channels, spec.image_size
        self.G, self.D = (m.to(self.device) for m in build_nets(spec, cfg.model))
        self.objective = build_objective(cfg.objective)
        self.objective.setup(cfg, self.G, self.D)  # bad combinations fail here, before the run directory
        # bf16 autocast, channels_last, fused Adam, TF32, CUDA graphs, torch.compile: where measured to pay
        self.fast = fastpath.choose(cfg, self.device, self.world, self.objective.graph_blocker())
        self.fast.prepare(self.G, self.D)
        if self.world > 1:
            distributed.broadcast_module(self.G)
            distributed.broadcast_module(self.D)
        self.ema = EMA(self.G, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None
        self.opt_G = build_optimizer(self.G.parameters(), cfg.g_optim, self.fast.fused, capturable=self.fast.graphs)
        self.opt_D = build_optimizer(self.D.parameters(), cfg.d_optim, self.fast.fused, capturable=self.fast.graphs)
        self.graph = StepGraph(self) if self.fast.graphs else None  # train/graphs.py
        # train.compile: torch.compile'd wrappers that share G's and D's parameters (None: eager)
        self.compiled = (torch.compile(self.G), torch.compile(self.D)) if self.fast.compile else None
        gen = torch.Generator().manual_seed(cfg.train.seed + 1)
        n_fixed = 2500 if spec.kind == "points" else cfg.log.n_samples
        self.fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=gen).to(self.device)
        self.step = 0
        self.run: Optional[RunDir] = None
        self.stop_requested = False  # set by a signal handler: stop (and checkpoint) after this step
        self.watchdog = Watchdog(cfg.watchdog)  # NaN/inf -> roll back with a lower lr (train/watchdog.py)
        if self.world > 1:
            torch.manual_seed(cfg.train.seed + 1_000_003 * self.rank)  # each rank draws its own noise

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "objective": self.objective.state_dict(),
            "data": self.source.state_dict(),
            "rng": rng_state(),
            "fixed_z": self.fixed_z.cpu(),
            **({"G_ema": self.ema.state_dict()} if self.ema is not None else {}),
            "watchdog": self.watchdog.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "checkpoint") -> None:
        load_module_state(self.G, state["G"], f"{where}: G")
        load_module_state(self.D, state["D"], f"{where}: D")
        load_optimizer_state(self.opt_G, state["opt_G"])
        load_optimizer_state(self.opt_D, state["opt_D"])
        if self.graph is not None:
            self.graph.reset()  # the captured step read the optimiser state tensors just replaced
        self.objective.load_state_dict(state["objective"])
        self.source.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.fixed_z = state["fixed_z"].to(self.device)
        if self.ema is not None:
            load_module_state(self.ema.model, state["G_ema"], f"{where}: G_ema")
        self.step = int(state["step"])
        if "watchdog" in state:
            self.watchdog.load_state_dict(state["watchdog"])

    def save(self) -> None:
        assert self.run is not None
        if self.rank != 0:
            return
        save_checkpoint(self.state_dict(), self.run.last)
        meta = {"step": str(self.step), "arch": self.cfg.model.arch, "z_dim": str(self.cfg.model.z_dim)}
        meta["ema"] = "true" if self.ema is not None else "false"  # generator.safetensors holds the EMA weights
        save_weights((self.ema.model if self.ema is not None else self.G).state_dict(), self.run.generator, meta)

    def resume_from(self, run: RunDir) -> None:
        run.readonly = self.rank != 0  # multi-process: only rank 0 touches the run's files
        if run.last.is_file():
            self.load_state_dict(load_checkpoint(run.last), str(run.last))
            if self.world > 1:  # the checkpoint holds rank 0's noise and data order: give each rank its own again
                torch.manual_seed(self.cfg.train.seed + 1_000_003 * self.rank + self.step)
                self.source.shard(self.rank, self.world, self.cfg.train.seed + self.step)
            run.truncate_stats(self.step)
            if weights_step(run.generator) != self.step:  # killed between last.pt and the weights file
                self.run = run
                self.save()
        else:
            log.warning("no checkpoint in %s yet: starting from step 0", run.path)
            run.truncate_stats(0)  # records of the attempt that died before its first checkpoint

    # ------------------------------------------------------------------ training

    def _phase(self, phase: str, real: torch.Tensor, labels: Optional[torch.Tensor], grads: bool) -> None:
        """One update of D or G: zero, accumulate the objective's gradients, clip, step."""
        net, other, opt, ocfg = (
            (self.D, self.G, self.opt_D, self.cfg.d_optim) if phase == "D" else (self.G, self.D, self.opt_G, self.cfg.g_optim)
        )
        net.requires_grad_(True)
        other.requires_grad_(False)
        opt.zero_grad(set_to_none=not self.fast.graphs)  # graphs: the same gradient buffers every step
        z = torch.randn(real.shape[0], self.cfg.model.z_dim, device=self.device)
        try:
            with self.fast.autocast():
                self.objective.accumulate_gradients(phase, *(self.compiled or (self.G, self.D)), real, labels, z)
        except Exception as exc:  # noqa: BLE001 - only a compiled step is retried
            if self.compiled is None:
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            log.warning("torch.compile failed (%s: %s); training continues eagerly", type(exc).__name__, first)
            self.compiled = None
            opt.zero_grad(set_to_none=not self.fast.graphs)
            with self.fast.autocast():
                self.objective.accumulate_gradients(phase, self.G, self.D, real, labels, z)
        if self.world > 1:
            distributed.average_gradients(net.parameters())  # data parallel: the mean over the ranks
        self.watchdog.observe_grads(phase, net.parameters())
        before = gradflow.report_before_step(net, phase) if grads else None  # grad/<phase>/<layer>
        norm = clip_gradients([p for p in net.parameters() if p.grad is not None], ocfg)
        if norm is not None:
            stats.report(f"grad/{phase}/preclip_total", norm)
        opt.step()
        self.objective.after_step(phase, self.G, self.D)  # e.g. WGAN's weight clipping
        if phase == "G" and self.ema is not None:
            self.ema.update(self.G)
        if before is not None:
            gradflow.report_after_step(net, phase, before)  # weight/<phase>/<layer>, update/<phase>/<layer>

    def _step(self, batches: list[Batch], grads: bool) -> None:
        """One training step: a D update on each of the n_dis batches, then a G update on the last."""
        for real, labels in batches:
            self._phase("D", real, labels, grads)
        self._phase("G", real, labels, grads)

    def train(self, run: RunDir, quiet: bool = False, progress: bool = False) -> Path:
        """Train to cfg.train.steps, writing samples, stats and checkpoints into `run`."""
        self.run, cfg = run, self.cfg
        run.readonly = self.rank != 0
        total, B = cfg.train.steps, cfg.train.batch_size
        if self.rank == 0:
            atomic_write(run.config, lambda tmp: tmp.write_text(cfg.to_yaml()))
        if self.step >= total:
            log.info("run is already at step %d of %d: nothing to do", self.step, total)
            return run.path
        self.alarms = Alarms(cfg.alarms, run.path, self.step) if self.rank == 0 else None  # RUN/alarms.jsonl
        self.tb = TensorBoardWriter(run.path) if cfg.log.tensorboard and self.rank == 0 else None  # --tensorboard
        if self.step == 0:
            self.write_samples()
        bar = Progress(total, self.step, enabled=progress and not quiet)
        self.G.train()
        self.D.train()
        self.watchdog.start(self)
        self._t_log, self._s_log = time.perf_counter(), self.step
        while self.step < total:
            lr_g = lr_at(cfg.g_optim, self.step, total) * self.watchdog.lr_scale
            lr_d = lr_at(cfg.d_optim, self.step, total) * self.watchdog.lr_scale
            set_lr(self.opt_G, lr_g)
            set_lr(self.opt_D, lr_d)
            grads = self.step % cfg.log.grad_every == 0
            batches = [self.source.batch(B) for _ in range(cfg.objective.n_dis)]
            batches = [(self.fast.batch(real), labels) for real, labels in batches]
            if grads or self.graph is None or not self.graph.step(batches):
                self._step(batches, grads)
            self.step += 1
            if end_of_step(self, bar, lr_g, lr_d):
                break
        bar.close()
        if self.tb is not None:
            self.tb.close()
        return run.path

    def _observe(self, record: dict[str, Any]) -> Optional[dict[str, Any]]:
        """A log-interval record made whole: means over the ranks, alarms, TensorBoard (None on ranks > 0)."""
        if self.world > 1:
            record = distributed.mean_over_ranks(record, self.device)
            record["images_per_s"] *= self.world  # all ranks together
            if self.rank != 0:
                return None
        self.alarms.observe(self.step, record, self)  # adds "diversity"; logs and writes alarms
        if self.tb is not None:
            self.tb.scalars(self.step, record)
        return record

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """G(z, y) in eval mode, by the EMA generator when train.ema_decay is set."""
        G = self.ema.model if self.ema is not None else self.G
        was_training = G.training
        G.eval()
        ys = y.split(1024) if y is not None else [None] * len(z.split(1024))
        out = torch.cat([G(chunk, yc) for chunk, yc in zip(z.split(1024), ys)])
        G.train(was_training)
        return out

    def write_samples(self) -> Path:
        assert self.run is not None
        path = self.run.sample_path(self.step)
        if self.rank != 0:
            return path
        z, y, nrow = class_grid_inputs(self.fixed_z, self.cfg.model.num_classes)  # one row per class
        x = self.generate(z, y)
        if self.source.spec.kind == "points":
            centers, _ = toy2d_centers(self.cfg.data.dataset)
            save_points(x, path, centers, title=f"{self.cfg.data.dataset} step {self.step}")
        else:
            save_grid(x, path, nrow)
        if getattr(self, "tb", None) is not None:
            self.tb.images(self.step, x)
        return path


def end_of_step(trainer: Any, bar: "Progress", lr_g: float, lr_d: float) -> bool:
    """What follows every training step in both engines: the watchdog's check (a rollback on a bad
    step), then the maintenance intervals (log, samples, checkpoint, eval), then a requested stop.
    Returns True when training must stop now."""
    cfg, step, total = trainer.cfg, trainer.step, trainer.cfg.train.steps
    saving = step % cfg.log.checkpoint_every == 0 or step == total or trainer.stop_requested
    bad = trainer.watchdog.bad_step(trainer, weights=saving)  # one host sync per step
    if bad:
        trainer.watchdog.rollback(trainer, bad)  # or DivergedError after watchdog.max_rollbacks
        trainer._t_log, trainer._s_log = time.perf_counter(), trainer.step
        return False
    maintenance(trainer, bar, lr_g, lr_d)
    if trainer.stop_requested:
        if step % cfg.log.checkpoint_every and step != total:  # (maintenance saved on those steps)
            trainer.save()
        log.info("stopped on request at step %d; checkpoint saved", step)
        return True
    return False


def maintenance(trainer: Any, bar: "Progress", lr_g: float, lr_d: float) -> None:
    """The intervals after a good step (both engines): a stats record (log.log_every), a sample grid,
    a checkpoint, an evaluation (log.eval_every); each also at the last step."""
    cfg, step = trainer.cfg, trainer.step
    done = step == cfg.train.steps
    if step % cfg.log.log_every == 0 or done:
        now = time.perf_counter()
        record = {"step": step, **stats.collect(), "lr/G": lr_g, "lr/D": lr_d}
        record["images_per_s"] = (step - trainer._s_log) * cfg.train.batch_size / max(now - trainer._t_log, 1e-9)
        trainer._t_log, trainer._s_log = now, step
        whole = trainer._observe(record)  # the engine's additions: rank means, alarms, TensorBoard
        if whole is not None:
            publish_record(trainer.run, bar, whole, cfg.train.steps)
    else:
        bar.update(step, None)
    if step % cfg.log.sample_every == 0 or done:
        trainer.write_samples()
    if step % cfg.log.checkpoint_every == 0 or done:
        trainer.save()
    if cfg.log.eval_every and getattr(trainer, "rank", 0) == 0 and (step % cfg.log.eval_every == 0 or done):
        from ..evaluate import eval_in_training

        eval_in_training(trainer)  # RUN/metrics.jsonl; checkpoints/best.pt by log.eval_metric


def publish_record(run: RunDir, bar: "Progress", record: dict[str, Any], total: int) -> None:
    """A log-interval record to stats.jsonl, the progress bar and the log (both engines)."""
    step = record["step"]
    run.append_stats(record)
    bar.update(step, record)
    log.info("step %d/%d %s", step, total, summary_line(record))
    if any(isinstance(v, float) and v != v for v in record.values()):
        log.warning("step %d: non-finite values in the statistics (training diverged?)", step)


def summary_line(record: dict[str, Any]) -> str:
    keys = ("loss/D", "loss/G", "D(x)", "D(G(z))", "images_per_s")
    return " ".join(f"{k}={record[k]:.4g}" for k in keys if k in record)


def config_diff(saved: Config, new: Config, allowed: tuple[str, ...]) -> list[str]:
    """Dotted keys whose values differ between two configs, ignoring `allowed` prefixes."""
    a, b = flatten(saved.to_dict()), flatten(new.to_dict())
    return [k for k in a if a.get(k) != b.get(k) and not k.startswith(allowed)]


__all__ = ["Trainer", "pick_device", "spec_from_config", "layer_grad_norms", "config_diff"]
