"""Command line: `ganforge train | sample | demo` -> config -> library calls.

Input errors print one line to stderr and exit with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any, Callable, Optional, Sequence

from . import __version__
from .config import (
    PRESETS,
    Config,
    apply_dict,
    load_yaml,
    parse_assignment,
    set_value,
    with_recipe,
)
from .errors import GanforgeError

log = logging.getLogger("ganforge")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Keys a resumed run may change; every other difference from the saved config is a conflict.
SPEED_KEYS = ("train.precision", "train.channels_last", "train.fused_optim", "train.tf32", "train.cuda_graphs", "train.compile")
RESUMABLE_KEYS = ("train.steps", "train.device", *SPEED_KEYS, "log.", "data.workers", "watchdog.", "alarms.")


def _defaults() -> Config:
    return Config()


def _names(kind: str) -> str:
    """Valid names for a registry, for help texts (imports lazily to keep --help fast)."""
    if kind == "dataset":
        from .data import SOURCES

        return ", ".join(SOURCES.names())
    if kind == "arch":
        from .nets import ARCHS

        return "auto, " + ", ".join(ARCHS.names())
    if kind == "objective":
        from .objectives import OBJECTIVES

        return ", ".join(OBJECTIVES.names())
    if kind == "metric":
        from .evaluate import GROUPS

        return ",".join(GROUPS)
    if kind == "optimizer":
        from .train.optim import OPTIMIZERS

        return ", ".join(OPTIMIZERS)
    raise KeyError(kind)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    d = _defaults()
    p = argparse.ArgumentParser(
        prog="ganforge",
        description="Train GANs by backpropagation, watch the gradients, generate and measure images.",
        epilog="Run 'ganforge COMMAND --help' for a command's options.",
    )
    p.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a GAN and write a run directory (config, stats, samples, checkpoints)",
        description="Train a GAN. Settings come from (later wins): defaults < --preset < --config < flags < --set.",
    )
    _add_train_options(t, d)

    _add_sample_parser(sub)

    r = sub.add_parser(
        "report",
        help="write RUN_DIR/report.html: curves, gradient flow, alarms, samples (or --compare several runs)",
        description="Write one self-contained HTML page (images embedded, no network) about a run, "
        "or with --compare put several runs side by side.",
    )
    r.add_argument("run", nargs="?", metavar="RUN_DIR", help="a run directory written by 'ganforge train'")
    r.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="two or more run directories to compare on one page")
    r.add_argument("--out", metavar="FILE.html", help="where to write (default: RUN_DIR/report.html; --compare: compare.html)")

    _add_eval_parser(sub)
    _add_export_parser(sub)
    _add_serve_parser(sub)

    demo = sub.add_parser("demo", help="the quick start: train the 'demo' preset on the built-in digits")
    demo.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (default: runs/demo-TIMESTAMP)")
    demo.add_argument("--steps", type=int, default=None, help=f"G updates (default: {PRESETS['demo'].overrides['train']['steps']})")
    demo.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    demo.add_argument("--quiet", action="store_true", help="print nothing but errors and the result paths (default: off)")
    return p


def _run_command(sub: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command that reads one run directory (--run RUN_DIR)."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="a run directory written by 'ganforge train'")
    return p


def _add_sample_parser(sub: Any) -> None:
    """`ganforge sample`: samples by seed, class grids, InfoGAN traversals, latent walks (ganforge.sample)."""
    s = _run_command(
        sub, "sample",
        "generate images (or 2-D points) from a trained run: by seed, class grids, InfoGAN traversals, latent walks",
        "Generate from a run's generator (its EMA weights when kept). Sample i uses seed SEED+i, or "
        "--seeds lists them: the same seed gives the same image in any batch. The Python API is ganforge.load(RUN_DIR).",
    )
    s.add_argument("--n", type=int, default=None, metavar="N",
                   help="how many samples: seeds SEED..SEED+N-1 (default: 64; --class-grid: 10 columns; "
                   "--traverse: 1 noise row per category, or 3 rows without categories)")
    s.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="PATH.png: one grid; PATH.npy: the raw array ([N, C, H, W] in [-1, 1], or [N, 2] points); "
        "PATH.gif or PATH.mp4: an --interpolate walk; anything else: a directory of PNG files",
    )
    s.add_argument("--seed", type=int, default=None, help="first seed: sample i uses seed SEED+i (default: 0)")
    s.add_argument("--seeds", default=None, metavar="LIST",
                   help="one sample per seed, e.g. 1,5,9 or 0-7 (default: none; then --seed and --n)")
    s.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="truncation trick around the mean latent (0 for Gaussian z): z' = PSI z; "
                   "1 is off, 0 the mean image (default: off)")
    s.add_argument("--class", dest="label", type=int, default=None, metavar="K",
                   help="generate class K only (conditional runs; InfoGAN: category K) (default: all classes)")
    s.add_argument("--class-grid", action="store_true",
                   help="a grid with one row per class (InfoGAN: per category), the same seeds in every row (default: off)")
    s.add_argument("--traverse", action="store_true",
                   help="InfoGAN code traversal: one row per category, each continuous code swept from -1 to 1 "
                   "left to right (default: off)")
    s.add_argument("--interpolate", type=int, default=None, metavar="K",
                   help="a latent walk (slerp) through K seeds and back to the first: --out walk.gif, or walk.mp4 "
                   "with pip install 'ganforge[video]' (default: off)")
    s.add_argument("--steps", type=int, default=None, metavar="N",
                   help="frames from one seed to the next (--interpolate, default: 16) or values of each "
                   "continuous code (--traverse, default: 10)")
    s.add_argument("--fps", type=int, default=None, metavar="N", help="frames per second of an --interpolate video (default: 16)")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")


def _add_train_options(t: argparse.ArgumentParser, d: Config) -> None:
    g = t.add_argument_group("what to train")
    g.add_argument("--config", metavar="FILE.yaml", help="a YAML file of config sections (default: none)")
    g.add_argument("--preset", metavar="NAME", help=f"a named recipe: {', '.join(sorted(PRESETS))} (default: none)")
    g.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    g.add_argument("--dataset", metavar="NAME", help=f"data source: {_names('dataset')} (default: {d.data.dataset})")
    g.add_argument("--data", metavar="PATH", help="directory with the data files (mnist, fashion-mnist, cifar10, folder) (default: none; fashion-mnist: /usr/share/datasets/fashion-mnist)")
    g.add_argument("--image-size", type=int, metavar="N", help="resize images to NxN (default: the data set's own size; folder: 64)")
    g.add_argument("--channels", type=int, choices=(1, 3), help="1 grayscale or 3 RGB (default: the data set's own; folder: 3)")
    g.add_argument("--arch", metavar="NAME", help=f"architecture: {_names('arch')} (default: {d.model.arch}: dcgan for images, mlp for toy2d)")
    g.add_argument("--objective", metavar="NAME", help=f"loss: {_names('objective')} (default: {d.objective.name})")
    g.add_argument("--engine", metavar="NAME", help=f"training engine: torch, or numpy (the from-scratch ganforge.backprop engine; mlp/dcgan, ns/minimax) (default: {d.train.engine})")

    h = t.add_argument_group("how to train")
    h.add_argument("--steps", type=int, metavar="N", help=f"total G updates; with --resume, the new total (default: {d.train.steps})")
    h.add_argument("--batch-size", type=int, metavar="N", help=f"batch size (default: {d.train.batch_size})")
    h.add_argument("--lr", type=float, metavar="LR", help=f"learning rate of G and D (default: {d.g_optim.lr})")
    h.add_argument("--optimizer", metavar="NAME", help=f"optimiser of G and D: {_names('optimizer')} (default: {d.g_optim.name})")
    h.add_argument("--n-dis", type=int, metavar="N", help=f"D updates per G update (default: {d.train.n_dis})")
    h.add_argument("--z-dim", type=int, metavar="N", help=f"noise dimension (default: {d.model.z_dim})")
    h.add_argument("--seed", type=int, metavar="N", help=f"random seed (default: {d.train.seed})")
    h.add_argument("--device", metavar="auto|cpu|cuda", help=f"where to train (default: {d.train.device})")
    h.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config key, e.g. --set g_optim.schedule=cosine --set d_optim.clip_norm=10 (repeatable; default: none)",
    )

    o = t.add_argument_group("output")
    o.add_argument("--out", metavar="RUN_DIR", help="new run directory (default: runs/DATASET-ARCH-TIMESTAMP)")
    o.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint (default: none)")
    o.add_argument("--quiet", action="store_true", help="print nothing but errors and the result paths (default: off)")
    o.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    o.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N steps into RUN_DIR/metrics.jsonl and keep the best checkpoint (default: 0, off)")
    o.add_argument("--eval-metric", metavar="NAME", help="metric that picks the best checkpoint, e.g. fid, kid_mean, modes_covered (default: fid)")
    o.add_argument("--tensorboard", action="store_const", const=True, default=None,
                   help="also write TensorBoard scalars and sample grids to RUN_DIR/tensorboard (needs: pip install tensorboard) (default: off)")
    o.add_argument("--no-report", action="store_true", help="do not write RUN_DIR/report.html at the end (default: write it)")


# Flag name -> dotted config keys it sets.
FLAG_KEYS: dict[str, tuple[str, ...]] = {
    "dataset": ("data.dataset",),
    "data": ("data.path",),
    "image_size": ("data.image_size",),
    "channels": ("data.channels",),
    "arch": ("model.arch",),
    "objective": ("objective.name",),
    "engine": ("train.engine",),
    "steps": ("train.steps",),
    "batch_size": ("train.batch_size",),
    "lr": ("g_optim.lr", "d_optim.lr"),
    "optimizer": ("g_optim.name", "d_optim.name"),
    "n_dis": ("train.n_dis",),
    "z_dim": ("model.z_dim",),
    "seed": ("train.seed",),
    "device": ("train.device",),
    "eval_every": ("log.eval_every",),
    "eval_metric": ("log.eval_metric",),
    "tensorboard": ("log.tensorboard",),
}


def config_from_args(args: argparse.Namespace, base: Optional[Config] = None) -> Config:
    """Apply --preset (and its part for the data set), --config, flags and --set, in that order, on `base`
    (defaults if None). A new run without --preset gets its data set's recipe (config.DATA_RECIPES)."""
    return with_recipe(lambda cfg: _apply_args(args, cfg), args.preset, base)  # cmd_train names the recipe


def _apply_args(args: argparse.Namespace, cfg: Config) -> None:
    """--config, the flags, then --set, onto cfg."""
    if args.config:
        apply_dict(cfg, load_yaml(args.config), args.config)
    for flag, keys in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            for key in keys:
                set_value(cfg, key, value)
    for text in args.set:
        key, value = parse_assignment(text)
        set_value(cfg, key, value)


# --------------------------------------------------------------------------- commands


def _setup_console_logging(quiet: bool, progress: bool) -> None:
    _reset_logging()
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # With a progress bar the periodic lines live in log.txt; warnings still reach the terminal.
    handler.setLevel(logging.ERROR if quiet else logging.WARNING if progress else logging.INFO)
    log.addHandler(handler)


def _reset_logging() -> None:
    """Drop handlers of an earlier in-process command (tests, notebooks) so lines are not doubled."""
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()


def cmd_train(args: argparse.Namespace) -> int:
    if args.list_presets:
        for name in sorted(PRESETS):
            print(f"{name:16s} {PRESETS[name].summary}")
        return 0
    cfg, run = _train_config(args)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    from .api import new_trainer, open_run, train_run

    progress = sys.stderr.isatty() and not args.quiet
    _setup_console_logging(args.quiet, progress)
    trainer = new_trainer(cfg, progress)
    resume = run is not None
    run = open_run(trainer, args.out, run)
    if not trainer.main:  # rank 0 writes; the others train silently
        _reset_logging()
        args.quiet, args.no_report = True, True
    notes = []
    if trainer.cfg.preset and not args.preset and not args.resume:
        notes.append(f"no --preset: the '{trainer.cfg.preset}' recipe for {trainer.cfg.data.dataset} (config.DATA_RECIPES)")
    try:
        train_run(trainer, run, resume=resume, progress=progress, quiet=args.quiet, report=not args.no_report,
                  notes=notes, guard=_graceful_stop)
    finally:
        _reset_logging()
    return _finish(args, trainer, run) if trainer.main else 0


def _train_config(args: argparse.Namespace) -> tuple[Config, Any]:
    """The config to train (and, with --resume, the run directory), conflicts with a saved run refused."""
    from .config import from_dict
    from .run import RunDir
    from .train import config_diff

    if not args.resume:
        return config_from_args(args), None
    if args.out:
        raise GanforgeError("--out and --resume cannot be used together (a resumed run stays in its directory)")
    run = RunDir(args.resume)
    run.check_resumable()
    saved = from_dict(load_yaml(run.config), str(run.config))
    cfg = config_from_args(args, base=saved)
    conflicts = config_diff(saved, cfg, RESUMABLE_KEYS)
    if conflicts:
        k = conflicts[0]
        raise GanforgeError(
            f"--resume {run.path}: {k} is {_lookup(saved, k)!r} in the run but {_lookup(cfg, k)!r} here "
            f"({len(conflicts)} conflicting key(s); only --steps, --device, the speed choices train.precision/channels_last/fused_optim/tf32/cuda_graphs/compile, log.*, watchdog.* and alarms.* may change)"
        )
    return cfg, run


def _finish(args: argparse.Namespace, trainer: Any, run: Any) -> int:
    """What rank 0 says after training: a stop on request, nothing to train, or the results."""
    if trainer.stop_requested:
        print(f"stopped at step {trainer.step}; checkpoint saved. Continue with: ganforge train --resume {run.path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if trainer.nothing_to_train:  # the loop's warning said so on the console, unless --quiet
        if args.quiet:
            print(f"nothing to train: {run.path} is already at step {trainer.step} of --steps {trainer.cfg.train.steps}",
                  file=sys.stderr)
        return 0
    _print_results(run)
    return 0


def _lookup(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


class _graceful_stop:
    """First Ctrl-C / SIGTERM: finish the current step, checkpoint, stop. Second Ctrl-C: stop now."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.trainer.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.trainer.stop_requested = True
        print("\nstopping after this step (Ctrl-C again to abort without saving)...", file=sys.stderr)

    def __enter__(self) -> "_graceful_stop":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not in the main thread
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _print_results(run: Any) -> None:
    samples = sorted(run.samples.glob("*.png"))
    print(f"run directory:  {run.path}")
    if samples:
        print(f"latest samples: {samples[-1]}")
    print(f"statistics:     {run.stats}")
    print(f"checkpoint:     {run.last}")
    print(f"generator:      {run.generator}")
    if run.report.is_file():
        print(f"report:         {run.report}")


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample import sample_to_path

    path = sample_to_path(args.run, args.n, args.out, seed=args.seed, device=args.device, label=args.label,
                          seeds=args.seeds, truncation=args.truncation, class_grid=args.class_grid,
                          traverse=args.traverse, interpolate=args.interpolate, steps=args.steps, fps=args.fps)
    print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report.html import write_compare, write_report

    if args.compare:
        runs = ([args.run] if args.run else []) + args.compare
        path = write_compare(runs, args.out or "compare.html")
    elif args.run:
        path = write_report(args.run, args.out)
    else:
        raise GanforgeError("give a run directory (ganforge report RUN_DIR) or --compare RUN_A RUN_B ...")
    print(path)
    return 0


def _add_eval_parser(sub: Any) -> None:
    e = _run_command(
        sub, "eval",
        "measure a run's generator: FID/KID with the real-vs-real floor, precision/recall, modes, memorisation",
        "Evaluate a run's generator (its EMA when present) against its real data; each number is "
        "printed with its protocol and appended to RUN_DIR/metrics.jsonl.",
    )
    e.add_argument("--n", type=int, default=None, metavar="N", help="generated (and real) samples (default: min(2000, half the real set); toy2d: 2500)")
    e.add_argument("--json", action="store_true", help="print one JSON object instead of the table (default: off)")
    e.add_argument("--metrics", default=None, metavar="LIST", help=f"comma-separated groups: {_names('metric')} (default: all that apply)")
    e.add_argument("--features", default="auto", metavar="NAME", help="auto | classifier | pixels | inception (default: auto: the shipped classifier, else pixels)")
    e.add_argument("--inception-weights", default=None, metavar="PATH", help="torch-fidelity's weights-inception-2015-12-05-6726825d.pth (SHA-256 checked) for standard FID (default: none)")
    e.add_argument("--seed", type=int, default=0, help="noise and subset seed (default: 0)")
    e.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    e.add_argument("--no-write", action="store_true", help="do not append to RUN_DIR/metrics.jsonl or write eval/ images (default: write)")


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .evaluate import evaluate, format_table

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    result = evaluate(args.run, args.n, metrics=metrics, features=args.features, inception_weights=args.inception_weights,
                      seed=args.seed, device=args.device, write=not args.no_write)
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(format_table(result))
    return 0


def _add_export_parser(sub: Any) -> None:
    x = sub.add_parser(
        "export",
        help="write a run's generator as a portable ONNX or TorchScript file, checked against torch",
        description="Export a run's generator (its EMA when kept): inputs z [N, z_dim] (and y [N] int64 class "
        "labels for conditional runs; InfoGAN codes are part of z), output [N, C, H, W] in [-1, 1] (toy2d: [N, 2]), "
        "any batch size N. The file is run on 16 seeds beside torch and written only if they agree within 1e-4.",
    )
    x.add_argument("run", metavar="RUN_DIR", help="a run directory written by 'ganforge train'")
    x.add_argument("--format", required=True, metavar="onnx|torchscript",
                   help="onnx (opset 18; needs: pip install 'ganforge[export]') or torchscript (torch.jit)")
    x.add_argument("--out", required=True, metavar="FILE", help="the file to write, e.g. generator.onnx or generator.pt (missing folders are created)")


def cmd_export(args: argparse.Namespace) -> int:
    from .export import CHECK_SEEDS, export_generator

    result = export_generator(args.run, args.format, args.out)
    weights = "EMA weights" if result.ema else "its weights (the run kept no EMA)"
    step = f" at step {result.step}" if result.step is not None else ""
    print(f"wrote {result.path}: {result.format}, the generator of {args.run}{step}, {weights}")
    print(f"inputs:  {'; '.join(result.inputs)}")
    print(f"output:  {result.output}")
    print(f"check:   max |{result.format} - torch| on {CHECK_SEEDS} seeds = {result.max_diff:.2g} (tolerance {result.tolerance:.0e})")
    return 0


def _add_serve_parser(sub: Any) -> None:
    v = sub.add_parser(
        "serve",
        help="a local web page: pick a run, watch it train, explore its generator (seed, truncation, class, codes)",
        description="Serve a web page over the runs under RUNS_DIR: curves, latest samples and alarms while a run "
        "trains; a latent explorer with each sample's nearest training image. Only files inside RUNS_DIR are served.",
    )
    v.add_argument("runs", nargs="?", default="runs", metavar="RUNS_DIR", help="a folder of run directories, or one run (default: runs)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on; another than 127.0.0.1 exposes your runs to the network (default: 127.0.0.1)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    v.add_argument("--device", default="cpu", help="where generators run: cpu | cuda | auto (default: cpu)")
    v.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch's CPU threads for one request's forward pass; concurrent requests use the other cores (default: 1)")


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    if not 0 <= args.port <= 65535:
        raise GanforgeError(f"--port must be between 0 and 65535, got {args.port}")
    if args.threads < 1:
        raise GanforgeError(f"--threads must be at least 1, got {args.threads}")
    serve(args.runs, host=args.host, port=args.port, device=args.device, threads=args.threads)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .api import default_run_dir

    argv = ["train", "--preset", "demo", "--device", args.device]
    if args.out:
        argv += ["--out", args.out]
    else:
        argv += ["--out", str(default_run_dir(Config()).with_name(f"demo-{time.strftime('%Y%m%d-%H%M%S')}"))]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    if args.quiet:
        argv.append("--quiet")
    return main(argv)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": cmd_train, "sample": cmd_sample, "report": cmd_report, "demo": cmd_demo,
    "eval": cmd_eval,
    "export": cmd_export,
    "serve": cmd_serve,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except GanforgeError as e:
        print(f"ganforge {args.command}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE)  # DivergedError: 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
