"""Train the small CNN classifiers that ganforge evaluates with (features + class predictions).

    python scripts/train_feature_nets.py                       # digits and fashion-mnist
    python scripts/train_feature_nets.py --nets mnist --data /path/to/mnist

Reproducible: a fixed seed, one thread, deterministic CPU kernels. Writes
src/ganforge/assets/<name>.safetensors (with its test accuracy in the metadata) and
prints one markdown table row per net for docs/feature_nets.md.

Splits: mnist / fashion-mnist use their official train / test files. scikit-learn's
digits have no official split: the 1,797 images are permuted with numpy's
default_rng(0) and the first 1,347 (75%) train, the last 450 test (`digits_split`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.config import DataConfig
from ganforge.data import build_source
from ganforge.metrics.features import ASSETS, FeatureNet, save_classifier
from ganforge.data.splits import digits_split

# name -> (epochs, batch size, learning rate)
RECIPES = {"digits": (60, 64, 2e-3), "mnist": (4, 128, 2e-3), "fashion-mnist": (6, 128, 2e-3)}


def load_split(name: str, split: str, data: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [N, 1, H, W] float in [-1, 1], labels [N]) of one split."""
    if name == "digits":
        src = build_source(DataConfig(dataset="digits"), 0, torch.device("cpu"))
        train_idx, test_idx = digits_split()
        idx = torch.as_tensor(train_idx if split == "train" else test_idx)
        return src.all_images()[idx], src.labels[idx]
    src = build_source(DataConfig(dataset=name, path=data, split=split), 0, torch.device("cpu"))
    return src.all_images(), src.labels


@torch.no_grad()
def accuracy(net: FeatureNet, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    pred = torch.cat([net(c).argmax(1) for c in x.split(1000)])
    return float((pred == y).float().mean())


def train_one(name: str, data: str | None, seed: int, out_dir: Path) -> dict[str, float]:
    epochs, bs, lr = RECIPES[name]
    x_tr, y_tr = load_split(name, "train", data)
    x_te, y_te = load_split(name, "test", data)
    torch.manual_seed(seed)
    net = FeatureNet(in_channels=1, image_size=x_tr.shape[-1], num_classes=10)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(x_tr) + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for i in range(0, len(x_tr), bs):
            idx = perm[i : i + bs]
            xb = x_tr[idx]
            # Small random shifts (up to 1 pixel of 8, 2 of 28) for robustness to generated images.
            shift = max(1, xb.shape[-1] // 14)
            dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(xb), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"{name} epoch {epoch + 1}/{epochs} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    test_acc, train_acc = accuracy(net, x_te, y_te), accuracy(net, x_tr, y_tr)
    seconds = time.perf_counter() - t0
    meta = {"dataset": name, "test_accuracy": f"{test_acc:.4f}", "train_accuracy": f"{train_acc:.4f}",
            "seed": str(seed), "epochs": str(epochs), "n_train": str(len(x_tr)), "n_test": str(len(x_te))}
    path = out_dir / f"{name}.safetensors"
    save_classifier(net, path, meta)
    print(f"| {name} | {len(x_tr)} | {len(x_te)} | {epochs} | {train_acc:.2%} | {test_acc:.2%} | "
          f"{seconds:.0f} s | {path.stat().st_size / 1024:.0f} KiB |")
    return {"test_accuracy": test_acc, "train_accuracy": train_acc}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nets", nargs="+", default=["digits", "fashion-mnist"], choices=sorted(RECIPES))
    p.add_argument("--data", default=None, help="IDX directory for mnist (fashion-mnist defaults to /usr/share/datasets/fashion-mnist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: bit-reproducible)")
    p.add_argument("--out", type=Path, default=ASSETS, help=f"output directory (default: {ASSETS})")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if "mnist" in args.nets and args.data is None:
        p.error("--nets mnist needs --data DIR with the MNIST IDX files")
    print("| net | train images | test images | epochs | train accuracy | test accuracy | time | file |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.nets:
        train_one(name, args.data if name == "mnist" else None, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
