"""The whole training step as one CUDA graph: captured once, replayed every step (train.cuda_graphs).

A small GAN step is launch-bound: on an H100 a DCGAN-28 step at batch 64 is ~7 ms of kernel launches
around ~1 ms of work, and replaying the step captured as one graph took it to 1.2 ms
(../shared/PERF_NOTES.md). What capture needs, and where it comes from:

- static inputs: each step's real batches (and labels) are copied into buffers the graph reads;
- noise drawn inside the graph (CUDA's generator is graph-safe: each replay draws new noise);
- no host synchronisation inside the step: the optimisers are built capturable, with the learning
  rate a device tensor that schedules and the watchdog write into (optim.set_lr);
- gradients zeroed in place (the trainer's `set_to_none=False` in graph mode), so every replay
  writes the same buffers;
- what the step reports (ganforge.stats: losses, D(x), clip norms) and the watchdog's gradient norms
  are captured as tensors that each replay overwrites, and are re-reported after every replay;
- host-side counters (Objective.advance) are advanced here, as the step's Python code does not run;
- warm-up: the first steps run eagerly on a side stream (optimiser state, cuDNN plans), then the
  step is captured; steps that log per-layer gradients (log.grad_every) run eagerly.

A rollback or a resume loads new optimiser state, so the trainer calls `reset()` and the step is
captured again. A capture that fails leaves the run on eager steps, with one warning.

On other devices the same plumbing runs with EagerReplay, a stand-in that re-runs the step where a
graph would replay it, so that tests check it on machines without a GPU.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional, Union

import torch

from .. import stats
from .watchdog import CheckQueue

log = logging.getLogger("ganforge")

Batch = tuple[torch.Tensor, Optional[torch.Tensor]]  # (real images, labels or None)
WARMUP_STEPS = 3  # eager steps on a side stream before a capture


class EagerReplay:
    """Stand-in for a CUDA graph on other devices: the capture runs the step, a replay runs it again."""

    capture_runs_step = True

    def capture(self, fn: Callable[[], None]) -> None:
        fn()

    def replay(self, fn: Callable[[], None]) -> None:
        fn()


class CudaGraph:
    capture_runs_step = False  # capturing records kernels; nothing is computed until a replay

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, fn: Callable[[], None]) -> None:
        with torch.cuda.graph(self.graph):
            fn()

    def replay(self, fn: Callable[[], None]) -> None:
        self.graph.replay()


class StepGraph:
    """Runs the torch engine's steps (n_dis D updates and one G update) by replaying one captured graph."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine  # train/torch_engine.py: TorchEngine
        self.cuda = engine.device.type == "cuda"
        self.failed = False
        self.reset()

    def reset(self) -> None:
        """Forget the captured step (new optimiser state after a rollback or resume); capture again."""
        self.backend: Optional[Union[CudaGraph, EagerReplay]] = None
        self.static: list[Batch] = []
        self.sums: dict[str, Union[float, torch.Tensor]] = {}
        self.counts: dict[str, int] = {}
        self.checks: list[tuple[str, torch.Tensor]] = []
        self.warmup = WARMUP_STEPS if self.cuda else 0

    def step(self, batches: list[Batch]) -> bool:
        """Take one training step through the graph; False when the trainer must take it eagerly."""
        if self.failed:
            return False
        if self.warmup > 0:
            self.warmup -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.engine.eager_step(batches, grads=False)
            torch.cuda.current_stream().wait_stream(side)
            return True
        if self.backend is None:
            return self._capture(batches)
        for (real, labels), (s_real, s_labels) in zip(batches, self.static):
            s_real.copy_(real)
            if labels is not None and s_labels is not None:
                s_labels.copy_(labels)
        if isinstance(self.backend, EagerReplay):
            self._rerun()
        else:
            self.backend.replay(self._captured_step)
        self._publish()
        return True

    # ------------------------------------------------------------------ internals

    def _captured_step(self) -> None:
        self.engine.eager_step(self.static, grads=False)

    def _isolated(self, fn: Callable[[], None]) -> tuple[dict, dict, list]:
        """Run fn with fresh stats and check queues and the objective's host state restored after it."""
        e = self.engine
        host_state = e.objective.state_dict()
        outer, e.watch = e.watch, CheckQueue()
        try:
            with stats.isolated() as (sums, counts):
                fn()
            return sums, counts, e.watch.take()
        finally:
            e.watch = outer
            e.objective.load_state_dict(host_state)

    def _capture(self, batches: list[Batch]) -> bool:
        backend = CudaGraph() if self.cuda else EagerReplay()
        self.static = [(r.clone(), None if y is None else y.clone()) for r, y in batches]
        try:
            if self.cuda:
                torch.cuda.synchronize()
            self.sums, self.counts, self.checks = self._isolated(lambda: backend.capture(self._captured_step))
        except Exception as exc:  # noqa: BLE001 - any capture failure: train on without graphs
            return self._give_up(f"the capture failed ({type(exc).__name__}: {exc})", ran=False)
        constants = [name for name, v in self.sums.items() if not isinstance(v, torch.Tensor)]
        if constants:  # reported as host numbers: a replay would repeat the captured values
            return self._give_up(f"the step reports host numbers ({', '.join(constants)})", ran=backend.capture_runs_step)
        self.backend = backend
        if not backend.capture_runs_step:
            backend.replay(self._captured_step)
        self._publish()
        return True

    def _give_up(self, why: str, ran: bool) -> bool:
        self.failed, self.backend = True, None
        log.warning("CUDA graphs off for this run: %s; training continues with eager steps", why)
        if ran:  # the stand-in's capture took the step: keep its statistics
            self._publish()
        return ran

    def _rerun(self) -> None:
        """EagerReplay: run the step again and write its results into the captured tensors, as a replay would."""
        sums, counts, checks = self._isolated(self._captured_step)
        for name, value in sums.items():
            self.sums[name].copy_(value)  # type: ignore[union-attr]
        for (_, slot), (_, value) in zip(self.checks, checks):
            slot.copy_(value)

    def _publish(self) -> None:
        """What the step's Python code would have done: report statistics, queue checks, count D updates."""
        e = self.engine
        stats.merge(self.sums, self.counts)
        for name, value in self.checks:
            e.watch.queue(name, value.clone())
        e.objective.advance(len(self.static))  # the D updates of the step: one per batch
