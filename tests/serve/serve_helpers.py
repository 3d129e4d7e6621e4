"""Shared by the serve tests: tiny runs (trained for real, a few steps), a server on a free port of
127.0.0.1 in a thread, and a client that asks it and nothing else."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ganforge.run import RunDir
from ganforge.serve import ServeServer, make_server
from ganforge.train import Trainer

from conftest import write_idx
from helpers import tiny_config


def fashion_dir(path: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Fashion-MNIST-shaped IDX files (28x28 grey, 10 labels), as tests/conftest.py's idx_dir."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    for prefix, n, gz in (("train", n_train, True), ("t10k", n_test, False)):
        write_idx(path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), gz)
        write_idx(path / f"{prefix}-labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10, gz)
    return path


def train_run(path: Path, steps: int = 2, **sets: Any) -> Path:
    """A run trained for `steps` steps with a generator written at the end."""
    cfg = tiny_config(**{"train.steps": steps, "log.checkpoint_every": steps, "log.sample_every": steps, **sets})
    run = RunDir(path)
    run.create()
    Trainer(cfg).train(run)
    return run.path


def fashion_run(path: Path, data: Path, **sets: Any) -> Path:
    """A 28x28 fashion-mnist DCGAN run at the data set's usual size (z 100, 64 channels), 1 step."""
    return train_run(path, 1, **{"data.dataset": "fashion-mnist", "data.path": str(data), "model.z_dim": 100,
                                 "model.g_width": None, "model.d_width": None, **sets})


@contextmanager
def running(root: Path) -> Iterator[ServeServer]:
    """A server for `root` on a free port of 127.0.0.1, shut down on exit."""
    server = make_server(root, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def get(server: ServeServer, path: str, timeout: float = 60) -> tuple[int, Any]:
    """(status, parsed JSON or raw bytes) of GET `path` from the server (only ever 127.0.0.1)."""
    assert server.url.startswith("http://127.0.0.1:")
    try:
        with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=timeout) as r:
            status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    return status, json.loads(body) if ctype.startswith("application/json") else body


def with_nearest(server: ServeServer, query: str, timeout: float = 120) -> dict[str, Any]:
    """The answer to /api/sample?QUERY once its nearest training images are ready (the server builds
    the training set's features in the background on first use, answering "pending" meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(server, f"/api/sample?{query}")
        assert status == 200, body
        if not body["nearest_pending"]:
            return body
        assert body["nearest"] is None and "computing the training set's features" in body["notes"][-1]
        assert time.monotonic() < deadline, "the nearest training images were never ready"
        time.sleep(0.2)
