"""The divergence watchdog: NaN/inf in a loss or a gradient rolls the run back with a lower learning rate.

Every step the trainer hands the watchdog each phase's gradients; at the end of the step one
device->host sync checks the step's losses (the `loss/*` names reported to ganforge.stats since the
last log record) and the gradient norms for NaN/inf. On a checkpoint step the weights are checked
too, so a checkpoint is only ever written from finite weights.

The training loop (train/loop.py) runs it for both engines: torch (tensors on its device) and numpy
(gradients and weights are numpy arrays; the check runs on the CPU).

On a bad step the run goes back to the last good checkpoint (or, before the first one exists, to
the in-memory state it started from), both learning rates are multiplied by `watchdog.lr_factor`
once more, and a `{"event": "rollback"}` record goes to stats.jsonl and the log. After
`watchdog.max_rollbacks` rollbacks the next bad step stops the run with DivergedError (exit 3).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Iterable, Optional

import numpy as np
import torch

from .. import stats
from ..config import WatchdogConfig
from ..errors import DivergedError, GanforgeError
from ..run import load_checkpoint

TrainLoop = Any  # train/loop.py (not imported: the loop imports this module); .run, .step, .engine, state_dict()

log = logging.getLogger("ganforge")


def _as_tensor(x: Any) -> torch.Tensor:
    """A torch tensor (detached) as it is; a number, a numpy array or a ganforge.backprop Tensor's numpy
    array (its .data: the numpy engine's parameters) as a CPU torch tensor (an array's shares its memory)."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (float, int, np.generic)):
        return torch.tensor(float(x))
    if not isinstance(x, np.ndarray):
        x = x.data
    return torch.from_numpy(np.ascontiguousarray(x))


def _total_norm(tensors: Iterable[Any]) -> Optional[torch.Tensor]:
    """The 2-norm of all tensors (or numpy arrays) together, as a device tensor (no host sync); None if there are none."""
    tensors = [_as_tensor(t) for t in tensors]
    if not tensors:
        return None
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t.float()) for t in tensors]))


class CheckQueue:
    """Values queued during a step for the end-of-step check (device tensors: no host sync)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, torch.Tensor]] = []

    def observe_grads(self, phase: str, params: Iterable[Any]) -> None:
        """Queue the norm of this phase's gradients (torch parameters, or the numpy engine's)."""
        norm = _total_norm(p.grad for p in params if p.grad is not None)
        if norm is not None:
            self.items.append((f"gradient norm of {phase}", norm))

    def queue(self, name: str, value: torch.Tensor) -> None:
        self.items.append((name, value))

    def take(self) -> list[tuple[str, torch.Tensor]]:
        """The queued values, emptying the queue."""
        items, self.items = self.items, []
        return items


class NoChecks(CheckQueue):
    """Outside training (or with the watchdog off) nothing is queued."""

    def observe_grads(self, phase: str, params: Iterable[Any]) -> None:
        pass

    def queue(self, name: str, value: torch.Tensor) -> None:
        pass


class Watchdog:
    """Detects non-finite losses, gradients and weights; rolls the trainer back at most K times."""

    def __init__(self, cfg: WatchdogConfig) -> None:
        self.cfg = cfg
        self.rollbacks = 0  # rollbacks so far in this run (saved in checkpoints)
        self.pending = CheckQueue()  # what the engine's phases queue during a step
        self._snapshot: Optional[dict[str, Any]] = None  # the start state, until a checkpoint exists

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    @property
    def lr_scale(self) -> float:
        """The factor on both scheduled learning rates: lr_factor ** rollbacks."""
        return self.cfg.lr_factor**self.rollbacks

    def state_dict(self) -> dict[str, Any]:
        return {"rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rollbacks = int(state.get("rollbacks", 0))

    # ------------------------------------------------------------------ detection

    def start(self, trainer: "TrainLoop") -> None:
        """Remember the state training starts from (a CPU copy) when no checkpoint holds it."""
        self.pending.take()
        if self.enabled and not (trainer.run is not None and trainer.run.last.is_file()):
            self._snapshot = {"step": trainer.step, "state": _cpu_copy(trainer.state_dict())}

    def sink(self) -> CheckQueue:
        """Where an engine's phases queue their gradient norms while training."""
        return self.pending if self.enabled else NoChecks()

    def bad_step(self, trainer: "TrainLoop", weights: bool) -> Optional[str]:
        """What was non-finite in the step just taken (None if all is well): one host sync."""
        if not self.enabled:
            return None
        checks = self.pending.take()
        for name, value in stats.pending("loss/").items():
            checks.append((name, torch.as_tensor(value, dtype=torch.float32)))
        if weights:
            for label, net in trainer.engine.nets().items():
                norm = _total_norm(net.parameters())
                if norm is not None:
                    checks.append((f"weight norm of {label}", norm))
        if not checks:
            return None
        device = next((v.device for _, v in checks if v.device.type != "cpu"), torch.device("cpu"))
        values = torch.stack([v.detach().float().reshape(()).to(device) for _, v in checks])
        if bool(torch.isfinite(values).all()):
            return None
        bad = [f"{name} = {float(v):g}" for (name, _), v in zip(checks, values.cpu()) if not torch.isfinite(v)]
        return ", ".join(bad)

    # ------------------------------------------------------------------ recovery

    def rollback(self, trainer: "TrainLoop", reason: str) -> None:
        """Restore the last good state with a lower learning rate, or raise DivergedError after K rollbacks."""
        run, failed = trainer.run, trainer.step
        assert run is not None
        stats.collect()  # drop the bad step's statistics
        if self.rollbacks >= self.cfg.max_rollbacks:
            run.append_stats({"step": failed, "event": "diverged", "reason": reason, "rollbacks": self.rollbacks})
            kept = f"the last good checkpoint {run.last} is kept" if run.last.is_file() else "no checkpoint was written"
            msg = (
                f"training diverged at step {failed} ({reason}) after {self.rollbacks} rollback(s) "
                f"(watchdog.max_rollbacks={self.cfg.max_rollbacks}); {kept}. Try a lower --lr or gradient clipping"
            )
            log.warning("watchdog: training diverged at step %d (%s); stopping after %d rollback(s)", failed, reason, self.rollbacks)
            raise DivergedError(msg)
        rollbacks = self.rollbacks + 1
        source = self._restore(trainer)
        self.rollbacks = rollbacks
        run.truncate_stats(trainer.step)
        record = {
            "step": trainer.step,
            "event": "rollback",
            "failed_step": failed,
            "reason": reason,
            "rollback": rollbacks,
            "max_rollbacks": self.cfg.max_rollbacks,
            "lr_scale": self.lr_scale,
            "restored_from": source,
        }
        run.append_stats(record)
        log.warning(
            "step %d: non-finite %s; rollback %d of %d to step %d (%s), learning rates x%g",
            failed, reason, rollbacks, self.cfg.max_rollbacks, trainer.step, source, self.lr_scale,
        )

    def _restore(self, trainer: "TrainLoop") -> str:
        run = trainer.run
        assert run is not None
        snap_step = self._snapshot["step"] if self._snapshot is not None else -1
        if run.last.is_file():
            try:
                state = load_checkpoint(run.last)
            except GanforgeError as e:
                if self._snapshot is None:
                    raise
                log.warning("cannot roll back to %s (%s): using the start state", run.last, e)
            else:
                if int(state["step"]) >= snap_step:
                    trainer.load_state_dict(state, str(run.last))
                    return str(run.last)
        if self._snapshot is None:
            raise GanforgeError(f"nothing to roll back to: no checkpoint at {run.last}")
        trainer.load_state_dict(copy.deepcopy(self._snapshot["state"]), "start state")
        return "start state"


def _cpu_copy(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", copy=True)
    if isinstance(x, dict):
        return {k: _cpu_copy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_cpu_copy(v) for v in x)
    return copy.deepcopy(x)


__all__ = ["Watchdog", "CheckQueue", "NoChecks"]
