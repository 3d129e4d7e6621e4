"""The Python face of ganforge: `load(RUN_DIR)` -> a Generator, `train(config)` -> a run directory.

    import ganforge
    run = ganforge.train({"data": {"dataset": "digits"}, "train": {"steps": 200}})
    G = ganforge.load(run)
    images = G.to_pil(G.sample(seeds=[1, 5, 9], truncation=0.7))

`ganforge.load` and `ganforge.train` are these functions, imported on first use (`import ganforge`
stays light). The CLI's `ganforge sample` and `ganforge train` go through the same code.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Optional, Sequence, Union

import torch.distributed

from .config import Config, apply_dict, load_yaml, with_recipe
from .errors import DivergedError, GanforgeError
from .evaluate import make_eval_hook
from .report.html import write_report
from .run import RunDir
from .sample import Generator
from .train import Trainer, distributed

log = logging.getLogger("ganforge")

ConfigLike = Union[Config, Mapping[str, Any], str, Path]


def load(run_dir: str | Path, device: str = "auto", ema: bool = True) -> Generator:
    """The generator of a run directory, ready to sample.

    device: "auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N".
    ema: use the EMA weights when the run kept an EMA (train.ema_decay; generator.safetensors then
    holds them); ema=False reads the trained weights from checkpoints/last.pt. `Generator.ema` says
    which were loaded.
    """
    return Generator.from_run(run_dir, device, ema)


def train(config: ConfigLike, out: Optional[str | Path] = None, *, preset: Optional[str] = None,
          progress: bool = False, report: bool = True) -> Path:
    """Train a GAN from Python, as `ganforge train` does, and return the new run directory.

    config: a Config (trained as it is), or a mapping of config sections or a YAML file, applied like
    `ganforge train [--preset NAME] --config FILE` (without a preset, the data set's recipe).
    out: the new run directory (default: runs/DATASET-ARCH-TIMESTAMP). progress: a progress bar.
    report: write RUN/report.html at the end (also when training diverged).
    """
    cfg = resolve_config(config, preset)
    trainer = new_trainer(cfg, progress)
    run = open_run(trainer, out)
    train_run(trainer, run, progress=progress, report=report)
    return run.path


def resolve_config(config: ConfigLike, preset: Optional[str] = None) -> Config:
    """A Config as given (a copy), or a mapping / YAML file of sections applied on the preset (default:
    the data set's recipe, config.DATA_RECIPES) on the defaults."""
    if isinstance(config, Config):
        if preset is not None:
            raise GanforgeError("preset=: give it with a mapping or a YAML file, not with a Config (apply it yourself)")
        return config.copy()
    if isinstance(config, (str, Path)):
        data, source = load_yaml(config), str(config)
    elif isinstance(config, Mapping):
        data, source = dict(config), "config"
    else:
        raise GanforgeError(f"config: a Config, a mapping of config sections or a YAML path, got {type(config).__name__}")
    return with_recipe(lambda cfg: apply_dict(cfg, data, source), preset)


def new_trainer(cfg: Config, progress: bool = False) -> Trainer:
    """A Trainer for cfg with its in-training evaluation (log.eval_every) hooked in."""
    return Trainer(cfg, progress=progress, eval_hook=make_eval_hook(cfg))


def default_run_dir(cfg: Config) -> Path:
    """runs/DATASET-ARCH-TIMESTAMP (with -1, -2, ... when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{cfg.data.dataset}-{cfg.model.arch}-{stamp}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def open_run(trainer: Trainer, out: Optional[str | Path] = None, run: Optional[RunDir] = None) -> RunDir:
    """The run directory: `run` (a resumed one), or a new one at `out` created by rank 0; with several
    processes every rank waits until it exists."""
    world = trainer.engine.world
    if world > 1 and out is None and run is None:
        raise GanforgeError("training with torchrun needs --out RUN_DIR (or --resume RUN_DIR): the same directory on every rank")
    if run is None:
        run = RunDir(out if out is not None else default_run_dir(trainer.cfg))
        if trainer.main:
            run.create()
    if world > 1:
        torch.distributed.barrier()  # the run directory exists before the other ranks use it
    return run


def train_run(trainer: Trainer, run: RunDir, *, resume: bool = False, progress: bool = False, quiet: bool = False,
              report: bool = True, notes: Sequence[str] = (),
              guard: Optional[Callable[[Trainer], ContextManager[Any]]] = None) -> None:
    """Train into `run`: lock it (rank 0), log to RUN/log.txt, resume from its checkpoint (resume=True),
    train, write report.html (report=True; also when training diverged), then release the data source,
    the lock, the log file and any process group. `notes`: lines logged first; `guard(trainer)`: a
    context manager around the loop (the CLI's Ctrl-C handler)."""
    main, handler, trained = trainer.main, None, False
    try:
        if main:
            run.lock()
            handler = run.setup_logging(quiet)
        if resume:
            trainer.resume_from(run)
            log.info("resuming %s at step %d of %d", run.path, trainer.step, trainer.cfg.train.steps)
        for line in notes:
            log.info("%s", line)
        _log_start(trainer, run)
        with guard(trainer) if guard is not None else contextlib.nullcontext():
            trainer.train(run, quiet=quiet or not main, progress=progress and main)
        trained = True
    except DivergedError:
        if report and main:  # a failed run is when the report (alarms, gradient flow) matters most
            write_report_after_training(run)
        raise
    finally:
        _close(trainer, run, handler, trained)
    if report and main and not trainer.stop_requested and not trainer.nothing_to_train:
        write_report_after_training(run)


def _log_start(trainer: Trainer, run: RunDir) -> None:
    cfg, fast = trainer.cfg, getattr(trainer.engine, "fast", None)
    log.info("training %s on %s (%s, %s) on %s%s -> %s", cfg.model.arch, cfg.data.dataset, cfg.objective.name,
             cfg.g_optim.name, trainer.device, f" ({fast.describe()})" if fast is not None else "", run.path)


def _close(trainer: Trainer, run: RunDir, handler: Optional[logging.Handler], clean: bool) -> None:
    """Release the data source, the run's lock, its log file and any process group."""
    trainer.engine.close()
    run.unlock()
    if handler is not None:
        log.removeHandler(handler)
        handler.close()
    if trainer.engine.world > 1:
        distributed.shutdown(clean=clean)


def write_report_after_training(run: RunDir) -> Optional[Path]:
    """report.html at the end of training; a failure is logged as a warning and does not fail the run."""
    try:
        return write_report(run.path)
    except Exception as e:  # noqa: BLE001 - training succeeded; say what went wrong and carry on
        log.warning("warning: could not write %s: %s (try: ganforge report %s)", run.report, e, run.path)
        return None


__all__ = ["Generator", "load", "train", "resolve_config", "new_trainer", "default_run_dir", "open_run", "train_run"]
