"""The PyTorch engine: networks, optimisers, objective and data on a torch device; one GAN step
(n_dis D updates, then a G update) through the objective, with the speed choices of train/fastpath.py
and, on CUDA, the whole step as one graph (train/graphs.py)."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Optional

import torch

from .. import stats
from ..config import Config
from ..data import Source, build_source
from ..errors import GanforgeError
from ..nets import build_nets
from ..nets.heads import class_grid_inputs
from ..objectives import build_objective
from ..run import load_module_state, pick_device, rng_state, set_rng_state
from . import distributed, fastpath, gradflow
from .ema import EMA
from .engine import Batch, resolve
from .graphs import StepGraph
from .watchdog import CheckQueue, NoChecks
from .optim import build_optimizer, clip_gradients, cosine_ramp, load_optimizer_state, set_beta2, set_lr

log = logging.getLogger("ganforge")


class TorchEngine:
    """Owns the torch networks, optimisers, objective and data source of one run (see engine.Engine)."""

    title = ""

    def __init__(self, cfg: Config, device: Optional[torch.device] = None, progress: bool = False) -> None:
        if cfg.train.engine != "torch":
            raise GanforgeError(f"this engine runs --engine torch, not '{cfg.train.engine}'")
        self.rank, self.world, local_rank = distributed.init_from_env()  # torchrun: N > 1 processes
        if device is None and self.world > 1 and cfg.train.device in ("auto", "cuda") and torch.cuda.is_available():
            device = torch.device("cuda", local_rank)
        self.device = device or pick_device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        self.source: Source = build_source(cfg.data, cfg.train.seed, self.device, cfg.train.batch_size, progress)
        if self.world > 1:
            self.source.shard(self.rank, self.world, cfg.train.seed)
        self.cfg = cfg = resolve(cfg, self.source)
        self.G, self.D = (m.to(self.device) for m in build_nets(self.source.spec, cfg.model))
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
        self.watch: CheckQueue = NoChecks()  # the watchdog's queue while training (session)
        self.graph = StepGraph(self) if self.fast.graphs else None  # train/graphs.py
        # train.compile: torch.compile'd wrappers that share G's and D's parameters (None: eager)
        self.compiled = (torch.compile(self.G), torch.compile(self.D)) if self.fast.compile else None
        gen = torch.Generator().manual_seed(cfg.train.seed + 1)
        n_fixed = 2500 if self.source.spec.kind == "points" else cfg.log.n_samples
        self.fixed_z = torch.randn(n_fixed, cfg.model.z_dim, generator=gen).to(self.device)
        if self.world > 1:
            torch.manual_seed(cfg.train.seed + 1_000_003 * self.rank)  # each rank draws its own noise

    def nets(self) -> dict[str, Any]:
        return {"G": self.G, "D": self.D}

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "objective": self.objective.state_dict(),
            "data": self.source.state_dict(),
            "rng": rng_state(),
            "fixed_z": self.fixed_z.cpu(),
            **({"G_ema": self.ema.state_dict()} if self.ema is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "checkpoint") -> None:
        if state.get("engine", "torch") != "torch":
            raise GanforgeError(f"{where}: a checkpoint of the {state['engine']} engine (this run uses --engine torch)")
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

    def after_resume(self, step: int) -> None:
        if self.world > 1:  # the checkpoint holds rank 0's noise and data order: give each rank its own again
            torch.manual_seed(self.cfg.train.seed + 1_000_003 * self.rank + step)
            self.source.shard(self.rank, self.world, self.cfg.train.seed + step)

    def generator_weights(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        G = self.ema.model if self.ema is not None else self.G
        return G.state_dict(), {"ema": "true" if self.ema is not None else "false"}

    # ------------------------------------------------------------------ training

    def batch(self) -> Batch:
        real, labels = self.source.batch(self.cfg.train.batch_size)
        return self.fast.batch(real), labels

    def set_lr(self, lr_g: float, lr_d: float) -> None:
        set_lr(self.opt_G, lr_g)
        set_lr(self.opt_D, lr_d)

    def set_schedule(self, step: int, steps: int) -> None:
        """R3GAN's ramps at update `step` of `steps`: R1/R2 gamma, Adam's beta2, the EMA's half-life (each
        only when its key is set: objective.r1/r2.gamma_final, g_optim/d_optim.beta2_final, train.ema_rampup)."""
        o = self.cfg.objective
        if o.r1.gamma_final is not None or o.r2.gamma_final is not None:
            r1, r2 = (c.gamma if c.gamma_final is None else cosine_ramp(c.gamma, c.gamma_final, step, steps)
                      for c in (o.r1, o.r2))
            self.objective.set_gamma(r1, r2)
            stats.report("ramp/r1_gamma", r1)
            stats.report("ramp/r2_gamma", r2)
        for who, opt, ocfg in (("G", self.opt_G, self.cfg.g_optim), ("D", self.opt_D, self.cfg.d_optim)):
            if ocfg.beta2_final is not None:
                beta2 = cosine_ramp(ocfg.betas[1], ocfg.beta2_final, step, steps)
                set_beta2(opt, beta2)
                stats.report(f"ramp/beta2_{who}", beta2)
        if self.ema is not None and self.cfg.train.ema_rampup:
            self.ema.ramp(cosine_ramp(0.0, 1.0, step, steps))
            stats.report("ramp/ema_decay", self.ema.decay)

    def train_mode(self) -> None:
        self.G.train()
        self.D.train()

    @contextlib.contextmanager
    def session(self, watchdog: Any) -> Iterator[None]:
        self.watch = watchdog.sink()
        try:
            yield
        finally:
            self.watch = NoChecks()

    def step(self, batches: list[Batch], grads: bool) -> None:
        """One training step, replayed as a captured graph where that is on (not on per-layer steps)."""
        if grads or self.graph is None or not self.graph.step(batches):
            self.eager_step(batches, grads)

    def eager_step(self, batches: list[Batch], grads: bool) -> None:
        """A D update on each of the n_dis batches, then a G update on the last."""
        for real, labels in batches:
            self._phase("D", real, labels, grads)
        self._phase("G", real, labels, grads)

    def _phase(self, phase: str, real: torch.Tensor, labels: Optional[torch.Tensor], grads: bool) -> None:
        """One update of D or G: zero, accumulate the objective's gradients, clip, step."""
        net, other, opt, ocfg = (
            (self.D, self.G, self.opt_D, self.cfg.d_optim) if phase == "D" else (self.G, self.D, self.opt_G, self.cfg.g_optim)
        )
        net.requires_grad_(True)
        other.requires_grad_(False)
        opt.zero_grad(set_to_none=not self.fast.graphs)  # graphs: the same gradient buffers every step
        z = torch.randn(real.shape[0], self.cfg.model.z_dim, device=self.device)
        self._accumulate(phase, opt, real, labels, z)
        if self.world > 1:
            distributed.average_gradients(net.parameters())  # data parallel: the mean over the ranks
        self.watch.observe_grads(phase, net.parameters())
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

    def _accumulate(self, phase: str, opt: torch.optim.Optimizer, real: torch.Tensor,
                    labels: Optional[torch.Tensor], z: torch.Tensor) -> None:
        """The objective's forward and backward passes; a failing torch.compile falls back to eager once."""
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

    # ------------------------------------------------------------------ around the step

    def gather(self, record: dict[str, Any]) -> Optional[dict[str, Any]]:
        if self.world > 1:
            record = distributed.mean_over_ranks(record, self.device)
            record["images_per_s"] *= self.world  # all ranks together
            if self.rank != 0:
                return None
        return record

    def probe(self) -> Any:
        return self

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

    def sample_grid(self) -> tuple[torch.Tensor, Optional[int]]:
        z, y, nrow = class_grid_inputs(self.fixed_z, self.cfg.model.num_classes)  # one row per class
        return self.generate(z, y), nrow

    def eval_generator(self) -> tuple[torch.nn.Module, bool]:
        return (self.ema.model, True) if self.ema is not None else (self.G, False)

    def close(self) -> None:
        self.source.close()


__all__ = ["TorchEngine"]
