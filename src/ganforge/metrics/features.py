"""Feature extractors for evaluation: small shipped CNN classifiers, a pixel fallback,
and Inception-v3 (torch-fidelity) when the user supplies its weights file.

Every extractor maps images [N, C, H, W] in [-1, 1] (or points [N, 2]) to features
[N, D] (float64 numpy) and, when it is a classifier, class predictions [N].
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.base import adapt_images
from ..errors import GanforgeError
from ..run import load_module_state, load_weights

ASSETS = Path(__file__).resolve().parent.parent / "assets"

# The classifier each data set is measured with; the file is ASSETS/<net>.safetensors.
CLASSIFIER_FOR: dict[str, str] = {
    "digits": "digits",
    "stacked-digits": "digits",
    "mnist": "mnist",
    "stacked-mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
}

# Input geometry each shipped classifier is trained on: (channels, size).
CLASSIFIER_INPUT: dict[str, tuple[int, int]] = {
    "digits": (1, 8),
    "mnist": (1, 28),
    "fashion-mnist": (1, 28),
}

# Images are resized to at most this side for the pixel fallback.
PIXEL_SIZE = 16

# Inception-v3 FID weights (torch-fidelity v0.2.0 release, a port of the 2015-12-05 TF graph;
# 95,628,359 bytes; torch.hub names carry the first 8 hex digits of the SHA-256).
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILENAME
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"


class FeatureNet(nn.Module):
    """A small CNN classifier: three conv-BN-ReLU-pool stages, a 128-unit feature layer, logits.

    `features(x)` returns the penultimate (post-ReLU) activations [B, feat_dim].
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
                 width: int = 32, feat_dim: int = 128) -> None:
        super().__init__()
        chans = (in_channels, width, 2 * width, 2 * width)
        layers: list[nn.Module] = []
        size = image_size
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(chans[-1] * size * size, feat_dim)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(feat_dim, num_classes)
        self.config = {"in_channels": in_channels, "image_size": image_size, "num_classes": num_classes,
                       "width": width, "feat_dim": feat_dim}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x).flatten(1)  # [B, C * s * s]
        return F.relu(self.fc(h))  # [B, feat_dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))  # [B, num_classes]


def classifier_path(name: str) -> Path:
    return ASSETS / f"{name}.safetensors"


def save_classifier(net: FeatureNet, path: str | Path, metadata: dict[str, str]) -> None:
    """Write a FeatureNet's weights and its constructor arguments as .safetensors."""
    from safetensors.torch import save_file

    meta = {k: str(v) for k, v in net.config.items()}
    meta.update(metadata)
    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


def load_classifier(path: str | Path) -> tuple[FeatureNet, dict[str, str]]:
    """(FeatureNet in eval mode, the file's metadata) from a .safetensors file."""
    state, meta = load_weights(path)
    try:
        kwargs = {k: int(meta[k]) for k in ("in_channels", "image_size", "num_classes", "width", "feat_dim")}
    except (KeyError, ValueError):
        raise GanforgeError(f"{path}: not a ganforge feature-net file (constructor metadata missing)") from None
    net = FeatureNet(**kwargs)
    load_module_state(net, state, str(path))
    return net.eval(), meta


@dataclass
class Extractor:
    """A named feature map (and optional classifier) applied in batches; see module docstring."""

    name: str
    fn: Callable[[torch.Tensor], tuple[torch.Tensor, Optional[torch.Tensor]]]
    classifier: bool = False
    note: str = ""  # why this extractor was chosen (fallbacks say so)
    info: dict[str, str] = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(features [N, D] float64, predicted classes [N] or None)."""
        feats, preds = [], []
        for chunk in x.split(batch):
            f, logits = self.fn(chunk)
            feats.append(f.double().cpu())
            if logits is not None:
                preds.append(logits.argmax(1).cpu())
        feat = torch.cat(feats).numpy()  # [N, D]
        return feat, (torch.cat(preds).numpy() if preds else None)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch: int = 500) -> np.ndarray:
        """Softmax class probabilities [N, K] (classifiers only)."""
        out = []
        for chunk in x.split(batch):
            _, logits = self.fn(chunk)
            if logits is None:
                raise ValueError(f"extractor {self.name} is not a classifier")
            out.append(logits.double().softmax(1).cpu())
        return torch.cat(out).numpy()


def to_geometry(x: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """Images [N, C, H, W] in [-1, 1] converted to `channels` (RGB->luma) and `size` (area/bilinear)."""
    return adapt_images(x.float(), channels, size)


def classifier_extractor(name: str, path: Optional[Path] = None) -> Extractor:
    """The shipped classifier `name` (features: its 128-d penultimate layer)."""
    path = path or classifier_path(name)
    net, meta = load_classifier(path)
    c, s = net.config["in_channels"], net.config["image_size"]

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_geometry(x, c, s)  # [B, c, s, s]
        f = net.features(x)
        return f, net.head(f)

    acc = meta.get("test_accuracy", "?")
    return Extractor(f"classifier:{name}", fn, classifier=True,
                     note=f"shipped {name} classifier (test accuracy {acc})", info=meta)


def pixel_extractor(shape: tuple[int, ...], note: str) -> Extractor:
    """Fallback: raw pixels, resized to at most PIXEL_SIZE x PIXEL_SIZE, flattened."""
    c, size = shape[0], min(shape[-1], PIXEL_SIZE)

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return to_geometry(x, c, size).flatten(1), None  # [B, c * size * size]

    return Extractor(f"pixels{size}", fn, note=note)


def points_extractor() -> Extractor:
    """2-D points are their own features."""
    return Extractor("points", lambda x: (x.float(), None), note="toy2d: the 2-D points themselves")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def inception_hint() -> str:
    return (
        f"Inception-v3 weights not found: download {INCEPTION_URL} on a machine with internet "
        f"(sha256 {INCEPTION_SHA256}), then pass --inception-weights PATH "
        f"(or put it in torch-fidelity's cache and pip install 'ganforge[fidelity]')"
    )


def find_inception_weights() -> Optional[Path]:
    """torch-fidelity's cache file, when present (TORCH_HOME or ~/.cache/torch/hub/checkpoints)."""
    home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    p = home / "hub" / "checkpoints" / INCEPTION_FILENAME
    return p if p.is_file() else None


def check_inception_weights(path: str | Path) -> Path:
    """The path, after checking the file exists and its SHA-256 is the published one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GanforgeError(f"--inception-weights {path}: no such file")
    digest = sha256_file(path)
    if digest != INCEPTION_SHA256:
        raise GanforgeError(
            f"--inception-weights {path}: SHA-256 {digest[:16]}... does not match the published "
            f"{INCEPTION_FILENAME} ({INCEPTION_SHA256[:16]}...); refusing to compute FID with other weights"
        )
    return path


def inception_extractor(path: Path) -> Extractor:
    """torch-fidelity's FID Inception-v3 (2048-d pool features, 1008-way logits); needs torch-fidelity."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GanforgeError(
            "Inception features need torch-fidelity: pip install 'ganforge[fidelity]'"
        ) from None
    net = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
    ).eval()

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_geometry(x, 3, x.shape[-1])
        u8 = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # [B, 3, H, W] as torch-fidelity expects
        f, logits = net(u8)  # [B, 2048], [B, 1008] (torch-fidelity's IS uses all 1008)
        return f, logits

    return Extractor("inception-v3", fn, classifier=True, note=f"Inception-v3 FID weights {path.name} (sha256 checked)")


def select_extractor(
    dataset: str,
    shape: tuple[int, ...],
    features: str = "auto",
    inception_weights: Optional[str | Path] = None,
) -> Extractor:
    """The extractor for a data set: 'auto' (shipped classifier, else pixels), 'classifier',
    'pixels' or 'inception'. Inception without weights falls back, saying so in `note`."""
    valid = ("auto", "classifier", "pixels", "inception")
    if features not in valid:
        raise GanforgeError(f"unknown --features {features!r}; valid: {', '.join(valid)}")
    if len(shape) == 1:
        return points_extractor()
    if inception_weights is not None:
        return inception_extractor(check_inception_weights(inception_weights))
    if features == "inception":
        cached = find_inception_weights()
        if cached is not None:
            return inception_extractor(check_inception_weights(cached))
        fallback = _domain_extractor(dataset, shape, "auto")
        fallback.note = f"{inception_hint()}. Falling back to {fallback.name}: {fallback.note}"
        return fallback
    return _domain_extractor(dataset, shape, features)


def _domain_extractor(dataset: str, shape: tuple[int, ...], features: str) -> Extractor:
    net = CLASSIFIER_FOR.get(dataset)
    has_net = net is not None and classifier_path(net).is_file()
    if features in ("auto", "classifier") and has_net:
        return classifier_extractor(net)
    if features == "classifier":
        why = f"no classifier is shipped for {dataset!r}" if net is None else f"{classifier_path(net)} is missing"
        raise GanforgeError(f"--features classifier: {why} (train one with scripts/train_feature_nets.py)")
    if features == "pixels":
        return pixel_extractor(shape, "raw pixels (requested)")
    why = f"no shipped classifier for {dataset!r}" if net is None else f"no {net} classifier file ({classifier_path(net).name}; train it with scripts/train_feature_nets.py --data DIR)"
    return pixel_extractor(shape, f"fallback: {why}; features are raw pixels at <= {PIXEL_SIZE}x{PIXEL_SIZE}")
