"""Checkpoints and weights from strangers: code in pickles never runs, corrupt or foreign files are named."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.run import load_checkpoint, load_weights

TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=100", "--set", "log.checkpoint_every=2", "--quiet"]

MARKER = Path("/tmp") / f"ganforge-pwned-{os.getpid()}"


class Evil:
    """Unpickling this calls os.system, which would create the marker file."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny dcgan run (2 steps) shared by the tests here; each test copies it before damaging it."""
    from ganforge.cli import main

    run = tmp_path_factory.mktemp("hostile") / "run"
    assert main(["train", "--steps", "2", "--out", str(run), "--arch", "dcgan", *TINY]) == 0
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture(autouse=True)
def _no_marker():
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a pickled payload was executed"


def _evil_files(tmp_path: Path) -> dict[str, Path]:
    """The same payload in every container a .pt file can be: torch zip, torch legacy, plain pickle."""
    payload = {"format": 1, "step": 2, "G": Evil()}
    out = {}
    out["torch-zip"] = tmp_path / "zip.pt"
    torch.save(payload, out["torch-zip"])
    out["torch-legacy"] = tmp_path / "legacy.pt"
    torch.save(payload, out["torch-legacy"], _use_new_zipfile_serialization=False)
    out["pickle"] = tmp_path / "plain.pt"
    out["pickle"].write_bytes(pickle.dumps(payload, protocol=2))
    return out


def test_the_payload_really_runs_when_unpickled(tmp_path):
    """The oracle: plain pickle.load of these files does create the marker (so its absence below means something)."""
    pickle.loads(pickle.dumps(Evil()))
    assert MARKER.exists()
    MARKER.unlink()


@pytest.mark.parametrize("kind", ["torch-zip", "torch-legacy", "pickle"])
def test_malicious_pickle_checkpoint_is_refused_by_load_and_resume(run, tmp_path, run_cli, kind):
    evil = _evil_files(tmp_path)[kind]
    with pytest.raises(GanforgeError, match="refused to load a checkpoint that is not plain weights|not a readable checkpoint"):
        load_checkpoint(evil)
    shutil.copy(evil, run / "checkpoints" / "last.pt")
    code, _, err = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert code == 2, err
    assert "last.pt" in err and ("refused" in err or "not a readable checkpoint" in err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not MARKER.exists()


@pytest.mark.parametrize("kind", ["torch-zip", "pickle"])
def test_malicious_pickle_as_generator_weights_is_refused_by_sample(run, tmp_path, run_cli, kind):
    shutil.copy(_evil_files(tmp_path)[kind], run / "generator.safetensors")
    code, _, err = run_cli("sample", "--run", run, "--n", "4", "--out", tmp_path / "x.npy")
    assert code == 2 and "not a valid safetensors file" in err, err
    assert not (tmp_path / "x.npy").exists()


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


@pytest.mark.parametrize(
    "blob",
    [
        b"",  # empty
        b"\x05\x00\x00\x00\x00\x00\x00\x00{oops",  # header is not JSON
        struct.pack("<Q", 1 << 60) + b"{}",  # header length far beyond the file
        _safetensors_bytes({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}, b"\0" * 8),  # data short
        _safetensors_bytes({"w": {"dtype": "NOPE", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),  # bad dtype
    ],
    ids=["empty", "not-json", "huge-header-length", "truncated-data", "unknown-dtype"],
)
def test_corrupt_safetensors_is_a_clear_error(run, tmp_path, run_cli, blob):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(blob)
    with pytest.raises(GanforgeError, match="not a valid safetensors file"):
        load_weights(bad)
    shutil.copy(bad, run / "generator.safetensors")
    code, _, err = run_cli("sample", "--run", run, "--n", "2", "--out", tmp_path / "x.npy")
    assert code == 2 and "generator.safetensors: not a valid safetensors file" in err, err


def test_weights_of_the_wrong_shape_name_the_tensor(run, tmp_path, run_cli):
    from safetensors.torch import save_file

    weights, meta = load_weights(run / "generator.safetensors")
    name = sorted(weights)[0]
    weights[name] = torch.zeros(*[d + 1 for d in weights[name].shape])
    save_file(weights, str(run / "generator.safetensors"), metadata=meta)
    code, _, err = run_cli("sample", "--run", run, "--n", "2", "--out", tmp_path / "x.npy")
    assert code == 2 and "does not match the configured architecture" in err and f"shape {name}" in err, err


def test_checkpoint_from_another_architecture_names_the_mismatch(run, tmp_path, run_cli):
    """An mlp run's checkpoint and weights dropped into a dcgan run: resume and sample both name the tensors."""
    other = tmp_path / "mlp"
    assert run_cli("train", "--steps", "2", "--out", other, "--arch", "mlp", *TINY)[0] == 0
    shutil.copy(other / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    shutil.copy(other / "generator.safetensors", run / "generator.safetensors")
    code, _, err = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert code == 2, err
    assert "last.pt: G does not match the configured architecture: missing net." in err and "unexpected" in err, err
    code, _, err = run_cli("sample", "--run", run, "--n", "2", "--out", tmp_path / "x.npy")
    assert code == 2 and "generator.safetensors does not match the configured architecture" in err, err


def test_truncated_and_foreign_checkpoints_are_clear_errors(run, tmp_path, run_cli):
    last = run / "checkpoints" / "last.pt"
    blob = last.read_bytes()
    cases = {
        "truncated": blob[: len(blob) // 2],
        "empty": b"",
        "text": b"hello, I am not a checkpoint\n",
    }
    for name, data in cases.items():
        last.write_bytes(data)
        code, _, err = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
        assert code == 2 and "last.pt" in err and "Traceback" not in err, (name, err)
    torch.save({"step": 3, "weights": torch.zeros(2)}, last)  # plain weights, but not ganforge's
    code, _, err = run_cli("train", "--resume", run, "--steps", "4", "--quiet")
    assert code == 2 and "not a ganforge checkpoint" in err, err


def test_sample_eval_and_report_never_modify_the_run_state(run, tmp_path, run_cli):
    """Checkpoints, weights, config, stats and log are byte-identical (and untouched) after sample, eval and report
    (eval and report add their own files: metrics.jsonl, eval/, report.html)."""
    state = ["checkpoints/last.pt", "generator.safetensors", "config.yaml", "stats.jsonl", "log.txt"]
    before = {p: (hashlib.sha256((run / p).read_bytes()).hexdigest(), os.stat(run / p).st_mtime_ns) for p in state}
    for out in ("x.npy", "grid.png", "pngs"):
        code, _, err = run_cli("sample", "--run", run, "--n", "3", "--out", tmp_path / out)
        assert code == 0, err
    code, _, err = run_cli("eval", "--run", run, "--n", "32", "--metrics", "fid", "--features", "pixels")
    assert code == 0, err
    code, _, err = run_cli("report", run)
    assert code == 0, err
    after = {p: (hashlib.sha256((run / p).read_bytes()).hexdigest(), os.stat(run / p).st_mtime_ns) for p in state}
    assert after == before
