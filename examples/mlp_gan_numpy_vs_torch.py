"""The tutorial's MLP GAN on 784-pixel images, trained twice: on the numpy engine and on PyTorch.

The tutorial's GAN is two small multilayer perceptrons playing a game:

    G: z [100] -> 128 -> 128 -> 784 pixels (tanh)     makes an image from noise
    D: 784 pixels -> 128 -> 128 -> 1 logit            says how real an image looks

Each step, D takes one gradient step on  -log D(x) - log(1 - D(G(z)))  (real images x, fakes
G(z)), then G takes one on the non-saturating loss  -log D(G(z)).  Every gradient comes from
backpropagation: the loss's derivative is pushed from D's logit back through D (and, for G's
step, on through G) to every weight, and Adam turns it into an update.

This script runs that same recipe (`--preset mlp-gan`, 28x28 images) twice with one config that
differs only in `train.engine`:

  * numpy  - ganforge.backprop: the from-scratch reverse-mode autodiff engine (numpy only)
  * torch  - PyTorch autograd, the production trainer

Both start from the same initial weights (the numpy G and D are copied into the torch nets: their
state_dict keys are identical) and see the same real batches in the same order; only the noise
streams differ (numpy's and torch's generators). The two loss curves should therefore tell the same
story without being identical. Both start at the equilibrium values of an undecided D (loss/D near
2 log 2 = 1.39 at the first steps' blend of real and fake scores, loss/G near log 2 = 0.69); within a
few hundred steps D gets ahead (loss/D ~0.5, loss/G ~2.5) and the game settles there, with the
generated images improving slowly, as is usual for this small MLP GAN. A different engine would
show up as a different curve; a bug in one engine's backward pass as a curve that does not move.

Data: Fashion-MNIST from /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)
when it is there, else scikit-learn's 8x8 digits resized to 28x28. Output: one PNG with the two loss
curves side by side above each engine's final samples, plus both run directories (stats.jsonl,
samples, checkpoints; `ganforge sample --run OUT/numpy --n 64 --out s.png` works on either).

    python examples/mlp_gan_numpy_vs_torch.py                # ~1-2 minutes on 2 CPU cores
    python examples/mlp_gan_numpy_vs_torch.py --steps 300 --out /tmp/gan-cmp
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np


def build_config(engine: str, dataset: str, steps: int, batch: int, seed: int):
    """The tutorial's MLP GAN config; only train.engine differs between the two runs."""
    from ganforge.config import Config, apply_dict, get_preset, set_value

    cfg = Config()
    apply_dict(cfg, get_preset("mlp-gan").overrides)
    cfg.preset = "mlp-gan"
    every = max(steps // 100, 1)
    for key, value in {
        "data.dataset": dataset, "data.image_size": 28, "data.channels": 1,
        "train.engine": engine, "train.steps": steps, "train.batch_size": batch, "train.seed": seed,
        "train.device": "cpu", "log.log_every": every, "log.grad_every": every * 5,
        "log.sample_every": steps, "log.checkpoint_every": steps,
        "alarms.enabled": False,  # no periodic probes: images/s measures training alone
    }.items():
        set_value(cfg, key, value)
    return cfg


def train_both(out: Path, dataset: str, steps: int, batch: int, seed: int) -> dict[str, Path]:
    from ganforge.run import RunDir
    from ganforge.train import Trainer
    from ganforge.train.numpy_engine import to_torch

    numpy_trainer = Trainer(build_config("numpy", dataset, steps, batch, seed))
    torch_trainer = Trainer(build_config("torch", dataset, steps, batch, seed))
    torch_trainer.G.load_state_dict(to_torch(numpy_trainer.G.state_dict()))  # same starting point
    torch_trainer.D.load_state_dict(to_torch(numpy_trainer.D.state_dict()))
    runs = {}
    for name, trainer in (("numpy", numpy_trainer), ("torch", torch_trainer)):
        run = RunDir(out / name)
        if run.path.exists():
            shutil.rmtree(run.path)
        run.create()
        t0 = time.perf_counter()
        trainer.train(run, quiet=True)
        trainer.source.close()
        print(f"{name:5s}: {steps} steps in {time.perf_counter() - t0:5.1f} s -> {run.path}")
        runs[name] = run.path
    return runs


def plot(runs: dict[str, Path], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from ganforge.run import read_stats

    fig, axes = plt.subplots(2, 2, figsize=(11, 9), gridspec_kw={"height_ratios": [1, 1.1]})
    for col, (name, run) in enumerate(runs.items()):
        records = read_stats(run / "stats.jsonl")
        steps = [r["step"] for r in records]
        ax = axes[0, col]
        ax.plot(steps, [r["loss/D"] for r in records], label="loss/D", color="tab:red")
        ax.plot(steps, [r["loss/G"] for r in records], label="loss/G", color="tab:blue")
        ax.axhline(2 * np.log(2), color="tab:red", ls=":", lw=1, label="2 log 2 (D at equilibrium)")
        ax.axhline(np.log(2), color="tab:blue", ls=":", lw=1, label="log 2 (G at equilibrium)")
        speed = np.median([r["images_per_s"] for r in records[1:]] or [records[0]["images_per_s"]])
        ax.set_title(f"{'numpy engine (ganforge.backprop)' if name == 'numpy' else 'PyTorch'}: "
                     f"{speed:,.0f} images/s")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        last = sorted((run / "samples").glob("*.png"))[-1]
        axes[1, col].imshow(Image.open(last), cmap="gray")
        axes[1, col].set_title(f"{name}: samples at step {int(last.stem.split('_')[1])}")
        axes[1, col].axis("off")
    lo = min(a.get_ylim()[0] for a in axes[0])
    hi = max(a.get_ylim()[1] for a in axes[0])
    for a in axes[0]:
        a.set_ylim(lo, hi)  # one scale for both engines
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1500, help="training steps of each run (default: 1500)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and noise (default: 0)")
    p.add_argument("--threads", type=int, default=1, help="threads for numpy's BLAS and for torch (default: 1)")
    p.add_argument("--out", default="runs/mlp-gan-numpy-vs-torch", help="output directory (default: %(default)s)")
    p.add_argument("--dataset", default="auto", choices=("auto", "fashion-mnist", "digits"),
                   help="auto: fashion-mnist when installed, else digits resized to 28x28 (default: auto)")
    args = p.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from ganforge.data import FASHION_MNIST_DEFAULT

    torch.set_num_threads(args.threads)
    dataset = args.dataset
    if dataset == "auto":
        dataset = "fashion-mnist" if FASHION_MNIST_DEFAULT.is_dir() else "digits"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"MLP GAN on {dataset} (28x28 = 784 pixels), batch {args.batch_size}, {args.steps} steps, "
          f"{args.threads} thread(s) per engine")
    with threadpool_limits(args.threads):
        runs = train_both(out, dataset, args.steps, args.batch_size, args.seed)
    png = out / "losses_numpy_vs_torch.png"
    plot(runs, png, f"The tutorial's MLP GAN on {dataset}, same config and initial weights, two engines")
    print(f"loss curves: {png}")


if __name__ == "__main__":
    main()
