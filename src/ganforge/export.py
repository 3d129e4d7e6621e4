"""`ganforge export`: a run's generator as a portable ONNX or TorchScript file that checks itself.

The file's inputs are `z` [N, z_dim] float32 ~ N(0, I) and, for conditional runs, `y` [N] int64 class
labels; InfoGAN codes are not separate inputs: they are the last info_cat + info_cont entries of z, as
everywhere in ganforge. Its output is `images` [N, C, H, W] float32 in [-1, 1] (toy2d: `points` [N, 2]).
The batch size N is dynamic. The weights are the run's generator.safetensors (its EMA when the run kept
one), spectral norm folded into the weights, batch norm in eval mode.

ONNX: torch.onnx.export(dynamo=True) at opset 18 (the TorchScript-based exporter cannot export R3GAN's
resampling filter, whose kernel is sized by the input's channels). TorchScript: torch.jit.trace.
The file is written to a temporary name, run on 16 seeds beside the torch generator (onnxruntime, or
torch.jit.load), and moved into place only if the largest absolute difference is at most 1e-4.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import parametrize

from .errors import GanforgeError, unknown_name
from .nets.load import load_run_generator
from .run import RunDir, atomic_write, make_parent_dir

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}  # for examples in messages; --out may have any name
OPSET = 18
TOLERANCE = 1e-4
CHECK_SEEDS = 16
EXAMPLE_BATCH = 2  # traced / exported with 2 rows, checked with 16: the check also covers the dynamic batch
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
INSTALL_HINT = "pip install 'ganforge[export]'"


@dataclass(frozen=True)
class ExportResult:
    """What `export_generator` wrote: the file, its interface and the measured difference from torch."""

    path: Path
    format: str
    inputs: tuple[str, ...]  # e.g. ("z [N, 64] float32 ~ N(0, I)", "y [N] int64 class 0..9")
    output: str  # e.g. "images [N, 1, 8, 8] float32 in [-1, 1]"
    max_diff: float  # largest |exported - torch| over CHECK_SEEDS seeds
    ema: bool
    step: Optional[int]
    tolerance: float


class PortableGenerator(nn.Module):
    """forward(z) -> G(z): the explicit signature that tracing and export see."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)


class PortableConditionalGenerator(nn.Module):
    """forward(z, y) -> G(z, y), y [N] int64 class labels."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.G(z, y)


def fold_parametrizations(G: nn.Module) -> nn.Module:
    """Replace every parametrized weight (spectral norm) by its current value, in place; G must be in
    eval mode (no power iteration). Never call this on a deep copy: removal edits the shared class."""
    for module in list(G.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return G


def portable_module(G: nn.Module, conditional: bool) -> nn.Module:
    """G (eval mode, its own copy) with folded weights, wrapped with an explicit forward signature."""
    G = fold_parametrizations(G.eval())
    wrapped = PortableConditionalGenerator(G) if conditional else PortableGenerator(G)
    return wrapped.eval()


def check_inputs(z_dim: int, num_classes: Optional[int], n: int = CHECK_SEEDS) -> tuple[torch.Tensor, ...]:
    """(z,) or (z, y) for the check: row i is seed i's noise; y cycles through the classes."""
    z = torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(s)) for s in range(n)])  # [n, z]
    if num_classes is None:
        return (z,)
    return z, torch.arange(n, dtype=torch.int64) % num_classes  # [n]


def require_onnx() -> None:
    """GanforgeError naming what to install when the ONNX packages are missing."""
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise GanforgeError(f"--format onnx needs {', '.join(missing)}: {INSTALL_HINT} (or pip install {' '.join(missing)})")


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' deprecation notes and torchvision-missing log lines (the check is the verdict)."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _onnx_build(module: nn.Module, example: tuple[torch.Tensor, ...], names: tuple[str, ...], output: str) -> Any:
    batch = torch.export.Dim("batch")
    shapes = {name: {0: batch} for name in names}
    with _quiet_exporters():
        return torch.onnx.export(module, example, None, input_names=list(names), output_names=[output],
                                 opset_version=OPSET, dynamo=True, dynamic_shapes=shapes, verbose=False)


def _onnx_save(program: Any, path: Path) -> None:
    with _quiet_exporters():
        program.save(str(path), external_data=False)


def _onnx_run(path: Path, inputs: tuple[torch.Tensor, ...], names: tuple[str, ...]) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {n: x.numpy() for n, x in zip(names, inputs)})[0]


def _script_build(module: nn.Module, example: tuple[torch.Tensor, ...], names: tuple[str, ...], output: str) -> Any:
    with _quiet_exporters(), torch.no_grad():
        return torch.jit.trace(module, example, check_trace=False)


def _script_save(traced: Any, path: Path) -> None:
    with _quiet_exporters():
        torch.jit.save(traced, str(path))


def _script_run(path: Path, inputs: tuple[torch.Tensor, ...], names: tuple[str, ...]) -> np.ndarray:
    with _quiet_exporters(), torch.no_grad():
        return torch.jit.load(str(path), map_location="cpu")(*inputs).numpy()


# format -> (build in memory, save to a file, run the saved file)
Build = Callable[[nn.Module, tuple[torch.Tensor, ...], tuple[str, ...], str], Any]
Run = Callable[[Path, tuple[torch.Tensor, ...], tuple[str, ...]], np.ndarray]
EXPORTERS: dict[str, tuple[Build, Callable[[Any, Path], None], Run]] = {
    "onnx": (_onnx_build, _onnx_save, _onnx_run),
    "torchscript": (_script_build, _script_save, _script_run),
}


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b|; inf when the shapes differ or either holds NaN/inf."""
    if a.shape != b.shape:
        return float("inf")
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(d.max()) if np.isfinite(d).all() else float("inf")


def describe(cfg: Any, out_shape: tuple[int, ...]) -> tuple[tuple[str, ...], str]:
    """(input descriptions, output description) of the exported generator, for users and the README."""
    m = cfg.model
    z = f"z [N, {m.z_dim}] float32 ~ N(0, I)"
    if m.info_cat or m.info_cont:
        z += f" (InfoGAN: its last {m.info_cat + m.info_cont} entries carry the codes, {m.info_cat} categorical then {m.info_cont} continuous)"
    inputs = (z, f"y [N] int64 class 0..{m.num_classes - 1}") if m.conditioning != "none" else (z,)
    dims = ", ".join(["N", *map(str, out_shape[1:])])
    output = f"points [{dims}] float32" if len(out_shape) == 2 else f"images [{dims}] float32 in [-1, 1]"
    return inputs, output


def _check_out(out: Path, fmt: str, run_dir: Path) -> None:
    """Refuse an --out that is a folder or one of the run's own files (its weights, checkpoints, config)."""
    if out.is_dir():
        raise GanforgeError(f"--out {out} is a directory; give a file name such as {out / ('generator' + SUFFIX[fmt])}")
    run = RunDir(run_dir)
    own = [run.config, run.stats, run.generator, run.best_generator, run.alarms, run.metrics, run.report]
    target = out.resolve()
    if target in {p.resolve() for p in own} or run.path.resolve() / "checkpoints" in target.parents:
        raise GanforgeError(f"--out {out} is a file of the run {run_dir}; write the export elsewhere (e.g. {run.path / ('generator' + SUFFIX[fmt])})")


def _missing_folders(out: Path) -> list[Path]:
    """The folders above `out` that do not exist yet (deepest first), to remove again if the export fails."""
    return [p for p in out.absolute().parents if not p.exists()]


def _write_checked(out: Path, fmt: str, artifact: Any, check: tuple[tuple[torch.Tensor, ...], tuple[str, ...], np.ndarray],
                   tolerance: float) -> float:
    """Save `artifact` beside `out`, run it on the check inputs, and move it into place if it matches the
    reference within `tolerance`; otherwise remove it (and any folders made for it). Returns the difference."""
    inputs, names, reference = check
    save, run = EXPORTERS[fmt][1:]
    diff: list[float] = []

    def write(tmp: Path) -> None:
        save(artifact, tmp)
        try:
            got = run(tmp, inputs, names)
        except Exception as e:  # noqa: BLE001 - onnxruntime and torch.jit raise many types for a bad file
            raise GanforgeError(f"export check failed: the {fmt} file does not run ({_first_line(e)}); {out} not written") from None
        diff.append(max_abs_diff(got, reference))
        if not diff[0] <= tolerance:
            raise GanforgeError(f"export check failed: the {fmt} file differs from the torch generator by up to "
                                f"{diff[0]:.3g} on {CHECK_SEEDS} seeds (tolerance {tolerance:.0e}); {out} not written")

    created = _missing_folders(out)
    make_parent_dir(out)
    try:
        atomic_write(out, write)
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return diff[0]


def export_generator(run_dir: str | Path, fmt: str, out: str | Path, tolerance: float = TOLERANCE) -> ExportResult:
    """Write the run's generator to `out` as `fmt` (onnx | torchscript) after checking it against torch."""
    if fmt not in FORMATS:
        raise unknown_name("--format", fmt, FORMATS)
    if fmt == "onnx":
        require_onnx()
    out = Path(out)
    _check_out(out, fmt, Path(run_dir))
    G, cfg, meta = load_run_generator(run_dir, "cpu")  # the reference: G exactly as ganforge samples it (EMA)
    conditional = cfg.model.conditioning != "none"
    module = portable_module(load_run_generator(run_dir, "cpu")[0], conditional)  # its own copy, folded
    inputs = check_inputs(cfg.model.z_dim, cfg.model.num_classes if conditional else None)
    with torch.no_grad():
        reference = G(*inputs).numpy()
    names = ("z", "y") if conditional else ("z",)
    try:
        artifact = EXPORTERS[fmt][0](module, tuple(x[:EXAMPLE_BATCH] for x in inputs), names,
                                     "points" if reference.ndim == 2 else "images")
    except Exception as e:  # noqa: BLE001 - the exporters raise many types for an unsupported graph
        raise GanforgeError(f"--format {fmt}: could not export this generator ({_first_line(e)})") from None
    diff = _write_checked(out, fmt, artifact, (inputs, names, reference), tolerance)
    step = int(meta["step"]) if str(meta.get("step", "")).isdigit() else None
    described_inputs, described_output = describe(cfg, reference.shape)
    return ExportResult(out, fmt, described_inputs, described_output, diff, meta.get("ema") == "true", step, tolerance)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
