"""Cost of the divergence watchdog per training step (the demo preset on the 8x8 digits, CPU, 1 thread).

    .venv/bin/python benchmarks/watchdog_overhead.py

Prints the isolated cost of the watchdog's per-step work (the gradient norms of both phases and the
one host sync of the end-of-step check) next to the time of a whole training step.
"""

from __future__ import annotations

import tempfile
import time

import torch

from ganforge.cli import build_parser, config_from_args
from ganforge.config import set_value
from ganforge.run import RunDir
from ganforge.train import Trainer


def main(steps: int = 150, reps: int = 200) -> None:
    torch.set_num_threads(1)
    cfg = config_from_args(build_parser().parse_args(["train", "--preset", "demo", "--steps", str(steps), "--device", "cpu"]))
    for k, v in {"log.log_every": 10**6, "log.sample_every": 10**6, "log.checkpoint_every": 10**6, "log.grad_every": 10**6,
                 "alarms.enabled": False}.items():
        set_value(cfg, k, v)
    t = Trainer(cfg)
    run = RunDir(tempfile.mkdtemp() + "/run")
    run.create()
    t0 = time.perf_counter()
    t.train(run)
    step_ms = (time.perf_counter() - t0) / steps * 1e3
    # The watchdog's own work in one step, on the trained nets' real gradients.
    t.watchdog.pending.observe_grads("D", t.D.parameters())  # (grads are left from the last step)
    t0 = time.perf_counter()
    for _ in range(reps):
        t.watchdog.pending.observe_grads("D", t.D.parameters())
        t.watchdog.pending.observe_grads("G", t.G.parameters())
        assert t.watchdog.bad_step(t, weights=False) is None
    dog_ms = (time.perf_counter() - t0) / reps * 1e3
    print(f"training step: {step_ms:.2f} ms; watchdog per step: {dog_ms:.3f} ms ({dog_ms / step_ms * 100:.1f}%)")


if __name__ == "__main__":
    main()
