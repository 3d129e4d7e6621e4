"""Time one GAN training step on the numpy engine (ganforge.backprop) and on PyTorch CPU.

The same model-building and step code runs on both engines, because ganforge.backprop
mirrors torch's names. Both use the same number of threads (numpy's BLAS pool decides,
or --threads). Reports the median ms/step after a warm-up.

    python benchmarks/backprop_speed.py [--steps 200] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

BATCH, Z = 64, 100


def blas_threads() -> int:
    """Threads numpy's BLAS uses (asked before torch loads its own libraries)."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return int(pools[0]["num_threads"])
    except ImportError:
        pass
    return os.cpu_count() or 1


def mlp(nn: Any) -> tuple[Any, Any]:
    """The tutorial's MLP GAN on 28x28 images."""
    G = nn.Sequential(nn.Linear(Z, 128), nn.LeakyReLU(0.2), nn.Linear(128, 128), nn.LeakyReLU(0.2),
                      nn.Linear(128, 784), nn.Tanh())
    D = nn.Sequential(nn.Linear(784, 128), nn.LeakyReLU(0.2), nn.Linear(128, 128),
                      nn.LeakyReLU(0.2), nn.Linear(128, 1))
    return G, D


def dcgan28(nn: Any) -> tuple[Any, Any]:
    """DCGAN for 1x28x28: z [B, 100, 1, 1] -> 256x7x7 -> 128x14x14 -> 1x28x28."""
    G = nn.Sequential(
        nn.ConvTranspose2d(Z, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Conv2d(128, 1, 7, 1, 0), nn.Flatten())
    return G, D


def gan_step(G: Any, D: Any, opt_g: Any, opt_d: Any, F: Any, real: Any, z: Any, ones: Any,
             zeros: Any) -> None:
    """Non-saturating GAN: D step on real + fake, then G step. Engine-agnostic."""
    fake = G(z)
    loss_d = (F.binary_cross_entropy_with_logits(D(real), ones)
              + F.binary_cross_entropy_with_logits(D(fake.detach()), zeros))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()


def time_both(steps: dict[str, Callable[[], None]], n: int, warmup: int,
              rounds: int = 5) -> dict[str, float]:
    """Median ms/step per engine; engines alternate in rounds so load drifts hit both alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(max(n // rounds, 1)):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def numpy_engine(model: str) -> Callable[[], None]:
    from ganforge import backprop as bp
    from ganforge.backprop import Tensor, nn, optim, functional as F
    bp.manual_seed(0)
    G, D = (mlp if model == "mlp" else dcgan28)(nn)
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    rng = np.random.default_rng(0)
    shape = (BATCH, 784) if model == "mlp" else (BATCH, 1, 28, 28)
    zshape = (BATCH, Z) if model == "mlp" else (BATCH, Z, 1, 1)
    real = Tensor(rng.uniform(-1, 1, shape).astype(np.float32))
    ones, zeros = np.ones((BATCH, 1), np.float32), np.zeros((BATCH, 1), np.float32)

    def step() -> None:
        z = Tensor(rng.standard_normal(zshape, dtype=np.float32))
        gan_step(G, D, opt_g, opt_d, F, real, z, ones, zeros)
    return step


def torch_engine(model: str) -> Callable[[], None]:
    import torch
    from torch import nn, optim
    import torch.nn.functional as F
    torch.manual_seed(0)
    G, D = (mlp if model == "mlp" else dcgan28)(nn)
    opt_g = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    shape = (BATCH, 784) if model == "mlp" else (BATCH, 1, 28, 28)
    zshape = (BATCH, Z) if model == "mlp" else (BATCH, Z, 1, 1)
    real = torch.rand(shape) * 2 - 1
    ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)

    def step() -> None:
        gan_step(G, D, opt_g, opt_d, F, real, torch.randn(zshape), ones, zeros)
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="timed MLP steps (DCGAN: steps/10)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="threads for both engines")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    np_threads = blas_threads()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="blas")
        np_threads = args.threads
    import torch
    torch.set_num_threads(np_threads)

    rows = []
    for model, steps, warmup in (("mlp", args.steps, args.warmup),
                                 ("dcgan28", max(args.steps // 10, 5), max(args.warmup // 4, 2))):
        ms = time_both({"numpy": numpy_engine(model), "torch": torch_engine(model)}, steps, warmup)
        rows.append((model, ms["numpy"], ms["torch"]))

    result = {
        "numpy_threads": np_threads, "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__, "torch": torch.__version__, "batch": BATCH,
        **{f"{engine}_{model}_ms": round(ms, 3) for model, a, b in rows
           for engine, ms in (("numpy", a), ("torch", b))},
        **{f"numpy_over_torch_{model}": round(a / b, 3) for model, a, b in rows},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"numpy {np.__version__} (BLAS threads {np_threads}), torch {torch.__version__} "
          f"(threads {torch.get_num_threads()}), batch {BATCH}, float32, median ms/step")
    print(f"{'engine':<18}{'model':<10}{'ms/step':>10}{'ratio':>8}")
    for model, a, b in rows:
        print(f"{'ganforge.backprop':<18}{model:<10}{a:>10.2f}{a / b:>8.2f}")
        print(f"{'torch (CPU)':<18}{model:<10}{b:>10.2f}{1.0:>8.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
