"""Tiny trained runs for the API and `ganforge sample` tests, built once per session through ganforge.train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

TINY: dict[str, Any] = {
    "data": {"dataset": "digits", "max_items": 64},
    "model": {"z_dim": 16, "g_width": 8, "d_width": 8},
    "train": {"steps": 2, "batch_size": 8},
    "log": {"n_samples": 10, "log_every": 1},
}


def tiny(**sections: dict[str, Any]) -> dict[str, Any]:
    """TINY with some sections' keys replaced or added."""
    return {k: {**TINY.get(k, {}), **sections.get(k, {})} for k in {*TINY, *sections}}


def _train(factory: Any, name: str, config: dict[str, Any], preset: str | None = None) -> Path:
    from ganforge.api import train

    return train(config, factory.mktemp(name) / "run", preset=preset, report=False)


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory) -> Path:
    """An unconditional DCGAN on 8x8 digits, without an EMA of G (the digits' recipe keeps one)."""
    return _train(tmp_path_factory, "plain", tiny(model={"arch": "dcgan"}, train={"ema_decay": None, "ema_rampup": False}))


@pytest.fixture(scope="session")
def ema_run(tmp_path_factory) -> Path:
    """The same, keeping an EMA of G (generator.safetensors holds the EMA)."""
    return _train(tmp_path_factory, "ema", tiny(train={"steps": 3, "ema_decay": 0.5}))


@pytest.fixture(scope="session")
def cgan_run(tmp_path_factory) -> Path:
    """A conditional GAN (10 digit classes)."""
    return _train(tmp_path_factory, "cgan", TINY, preset="cgan")


@pytest.fixture(scope="session")
def info_run(tmp_path_factory) -> Path:
    """An InfoGAN: 10 categories and 2 continuous codes carved out of z."""
    return _train(tmp_path_factory, "info", tiny(model={"info_cat": 10, "info_cont": 2}), preset="infogan")
