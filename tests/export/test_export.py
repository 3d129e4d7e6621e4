"""`ganforge export`: ONNX and TorchScript round trips for every generator family, checked against the torch
generator by an oracle outside the exporter (onnxruntime / torch.jit.load on fresh seeds and batch sizes),
the self-check caught on a deliberately perturbed model (and passed by a tiny perturbation), and the errors."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from ganforge import export
from ganforge.cli import main
from ganforge.nets.layers import has_spectral_norm
from ganforge.nets.load import load_generator
from ganforge.run import load_weights, save_weights

HAS_ONNX = all(importlib.util.find_spec(p) is not None for p in export.ONNX_PACKAGES)
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript, onnxruntime (pip install 'ganforge[export]')")
FORMATS = [pytest.param("onnx", marks=needs_onnx), "torchscript"]
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # TorchScript is deprecated upstream

TINY = ["--steps", "2", "--batch-size", "8", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--device", "cpu", "--quiet", "--no-report"]
RUNS: dict[str, list[str]] = {
    "dcgan": ["--dataset", "digits", "--arch", "dcgan", "--set", "train.ema_decay=0.9"],  # batch norm; EMA kept
    "resnet-cond": ["--dataset", "digits", "--preset", "cgan-projection"],  # conditional batch norm, y input
    "mlp": ["--dataset", "digits", "--arch", "mlp"],
    "mlp-toy2d": ["--dataset", "toy2d-ring", "--arch", "mlp"],  # [N, 2] points
    "r3gan": ["--dataset", "digits", "--arch", "r3gan"],  # [1, 2, 1] resampling buffer, replicate padding
    "sagan": ["--dataset", "digits", "--preset", "sagan"],  # spectral norm in G, self-attention
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Tiny trained runs, made on first use and shared by the module's tests."""
    root = tmp_path_factory.mktemp("runs")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            path = root / name
            assert main(["train", *RUNS[name], *TINY, "--out", str(path)]) == 0
            if name == "sagan":
                wake_attention(path)
            made[name] = path
        return made[name]

    return get


def wake_attention(run: Path) -> None:
    """Set self-attention's gamma (0 at init, barely moved by 2 steps) to 0.5, so the attention path counts."""
    weights, meta = load_weights(run / "generator.safetensors")
    gammas = [k for k in weights if k.endswith("gamma")]
    assert gammas
    save_weights({**weights, **{k: torch.tensor(0.5) for k in gammas}}, run / "generator.safetensors", meta)


def seeded(z_dim: int, seeds: range) -> torch.Tensor:
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])  # [n, z]


def run_exported(path: Path, fmt: str, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    """The exported file, loaded by its own runtime (not through ganforge.export)."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return session.run(None, dict(zip(names, (x.numpy() for x in inputs))))[0]
    return torch.jit.load(str(path), map_location="cpu")(*inputs).detach().numpy()


def reported_diff(out: str) -> float:
    return float(re.search(r"on 16 seeds = (\S+)", out).group(1))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(RUNS))
def test_round_trip_matches_torch_on_any_batch(run_cli, runs, tmp_path, name: str, fmt: str) -> None:
    run = runs(name)
    out = tmp_path / f"g.{fmt}"
    code, stdout, err = run_cli("export", run, "--format", fmt, "--out", out)
    assert code == 0, err
    assert out.is_file() and reported_diff(stdout) <= 1e-4
    G, cfg = load_generator(run)
    assert has_spectral_norm(G) == (name == "sagan")  # sagan: spectral norm folded into the exported weights
    conditional = cfg.model.conditioning != "none"
    for n in (3, 16, 1):  # dynamic batch: the export traced 2 rows
        z = seeded(cfg.model.z_dim, range(100, 100 + n))
        inputs = (z, torch.arange(n) % cfg.model.num_classes) if conditional else (z,)
        with torch.no_grad():
            expected = G(*inputs).numpy()
        got = run_exported(out, fmt, inputs)
        assert got.shape == expected.shape == ((n, 2) if name == "mlp-toy2d" else (n, 1, 8, 8))
        assert np.abs(got - expected).max() <= 1e-4
    assert ("y [N] int64 class 0..9" in stdout) == conditional
    if fmt == "onnx":
        check_onnx_interface(out, conditional, cfg.model.z_dim, "points" if name == "mlp-toy2d" else "images")
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left beside it


def check_onnx_interface(path: Path, conditional: bool, z_dim: int, output: str) -> None:
    """Named inputs z (float32) and y (int64) with a symbolic batch axis, the named output, opset 18."""
    import onnx

    model = onnx.load(str(path))
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == (["z", "y"] if conditional else ["z"]) and [o.name for o in model.graph.output] == [output]
    assert inputs["z"].elem_type == onnx.TensorProto.FLOAT and inputs["z"].shape.dim[1].dim_value == z_dim
    assert inputs["z"].shape.dim[0].dim_param  # the batch axis is symbolic
    if conditional:
        assert inputs["y"].elem_type == onnx.TensorProto.INT64
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == export.OPSET


class Shifted(torch.nn.Module):
    """A deliberately wrong export: the portable generator plus a constant."""

    def __init__(self, inner: torch.nn.Module, delta: float) -> None:
        super().__init__()
        self.inner, self.delta = inner, delta

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z) + self.delta


def perturb(monkeypatch: pytest.MonkeyPatch, delta: float) -> None:
    original = export.portable_module
    monkeypatch.setattr(export, "portable_module", lambda G, conditional: Shifted(original(G, conditional), delta))


@pytest.mark.parametrize("fmt", FORMATS)
def test_perturbed_export_is_caught_and_not_written(run_cli, runs, tmp_path, monkeypatch, fmt: str) -> None:
    perturb(monkeypatch, 1e-3)
    out = tmp_path / "new" / "deeper" / f"g.{fmt}"
    code, stdout, err = run_cli("export", runs("dcgan"), "--format", fmt, "--out", out)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "export check failed" in err and "not written" in err, err
    assert float(re.search(r"by up to (\S+)", err).group(1)) == pytest.approx(1e-3, rel=1e-3)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no file, no temporary, no new folders


def test_small_perturbation_passes_and_is_measured(run_cli, runs, tmp_path, monkeypatch) -> None:
    """The other side of the tolerance: a 2e-5 error passes, and the printed difference measures it."""
    perturb(monkeypatch, 2e-5)
    out = tmp_path / "g.pt"
    code, stdout, err = run_cli("export", runs("dcgan"), "--format", "torchscript", "--out", out)
    assert code == 0, err
    assert reported_diff(stdout) == pytest.approx(2e-5, rel=0.05)
    assert "EMA weights" in stdout and "at step 2" in stdout


def test_unknown_format(run_cli, runs, tmp_path) -> None:
    code, _, err = run_cli("export", runs("dcgan"), "--format", "onx", "--out", tmp_path / "g.onnx")
    assert code == 2 and err.count("\n") == 1
    assert "unknown --format 'onx'" in err and "onnx, torchscript" in err
    assert list(tmp_path.iterdir()) == []


def test_run_without_generator_weights(run_cli, runs, tmp_path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    (run / "config.yaml").write_text((runs("dcgan") / "config.yaml").read_text())
    code, _, err = run_cli("export", run, "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 2 and err.count("\n") == 1 and "no generator weights yet" in err
    code, _, err = run_cli("export", tmp_path / "missing", "--format", "torchscript", "--out", tmp_path / "g.pt")
    assert code == 2 and "no such run directory" in err
    assert not (tmp_path / "g.pt").exists()


def test_out_in_missing_folder_is_created(run_cli, runs, tmp_path) -> None:
    out = tmp_path / "a" / "b" / "g.pt"
    code, stdout, err = run_cli("export", runs("dcgan"), "--format", "torchscript", "--out", out)
    assert code == 0 and out.is_file(), err
    assert f"wrote {out}" in stdout


def test_out_that_cannot_be_a_file_is_refused(run_cli, runs, tmp_path) -> None:
    code, _, err = run_cli("export", runs("dcgan"), "--format", "torchscript", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "is a directory; give a file name" in err
    (tmp_path / "plain").write_text("a file, not a folder")
    code, _, err = run_cli("export", runs("dcgan"), "--format", "torchscript", "--out", tmp_path / "plain" / "g.pt")
    assert code == 2 and err.count("\n") == 1 and "could not create the folder" in err
    run = runs("dcgan")
    weights = (run / "generator.safetensors").read_bytes()
    for own in ("generator.safetensors", "checkpoints/last.pt", "config.yaml"):
        code, _, err = run_cli("export", run, "--format", "torchscript", "--out", run / own)
        assert code == 2 and err.count("\n") == 1 and "is a file of the run" in err, err
    assert (run / "generator.safetensors").read_bytes() == weights


def test_missing_onnx_packages_name_the_extra(run_cli, runs, tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    code, _, err = run_cli("export", runs("dcgan"), "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert code == 2 and err.count("\n") == 1
    assert "needs onnxruntime" in err and "pip install 'ganforge[export]'" in err
    assert list(tmp_path.iterdir()) == []


@needs_onnx
def test_readme_example_runs(run_cli, runs, tmp_path, monkeypatch) -> None:
    """The README's "Export" snippet, run on an exported 8x8 DCGAN (z_dim 64)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Export"):]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    assert run_cli("export", runs("dcgan"), "--format", "onnx", "--out", "generator.onnx")[0] == 0
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["images"].shape == (8, 1, 8, 8) and np.abs(scope["images"]).max() <= 1
