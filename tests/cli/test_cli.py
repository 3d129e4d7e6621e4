import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganforge.config import Config

TINY = ["--set", "data.max_items=64", "--set", "model.g_width=8", "--set", "model.d_width=8", "--z-dim", "8",
        "--batch-size", "8", "--set", "log.sample_every=2", "--set", "log.checkpoint_every=2", "--set", "log.log_every=1"]


def test_help_lists_every_option_with_its_default(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    for opt in ("--config", "--preset", "--dataset", "--data", "--arch", "--objective", "--steps", "--batch-size",
                "--seed", "--device", "--out", "--resume", "--set", "--quiet", "--lr", "--image-size"):
        assert opt in out, opt
    d = Config()
    for default in (f"default: {d.data.dataset}", f"default: {d.train.steps}", f"default: {d.train.batch_size}",
                    f"default: {d.objective.name}", f"default: {d.train.device}"):
        assert default in out, default
    code, out, _ = run_cli("--help")
    assert code == 0 and "train" in out and "sample" in out


def test_console_script_and_module_entry_points():
    script = Path(sys.executable).with_name("ganforge")  # installed beside the interpreter
    for cmd in ([sys.executable, "-m", "ganforge", "--help"], [str(script), "--help"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "train" in r.stdout, (cmd, r.stderr)


def test_train_sample_resume_end_to_end(tmp_path, run_cli):
    run = tmp_path / "run"
    code, out, err = run_cli("train", "--dataset", "digits", "--steps", "4", "--out", run, "--quiet", *TINY)
    assert code == 0, err
    assert str(run) in out and err == ""
    assert (run / "config.yaml").is_file() and (run / "log.txt").is_file()
    assert (run / "samples" / "step_0000004.png").is_file()

    code, out, err = run_cli("sample", "--run", run, "--n", "10", "--out", tmp_path / "s.npy")
    assert code == 0, err
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (10, 1, 8, 8) and x.dtype == np.float32 and -1 <= x.min() and x.max() <= 1
    assert run_cli("sample", "--run", run, "--n", "10", "--out", tmp_path / "grid.png")[0] == 0
    assert run_cli("sample", "--run", run, "--n", "3", "--out", tmp_path / "pngs")[0] == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["sample_00000.png", "sample_00001.png", "sample_00002.png"]
    again = tmp_path / "again.npy"
    run_cli("sample", "--run", run, "--n", "10", "--out", again)
    assert np.array_equal(np.load(again), x)  # same seed, same samples
    ckpt = (run / "checkpoints" / "last.pt").read_bytes()

    code, out, err = run_cli("train", "--resume", run, "--steps", "6", "--quiet")
    assert code == 0, err
    assert (run / "samples" / "step_0000006.png").is_file()
    assert (run / "checkpoints" / "last.pt").read_bytes() != ckpt
    assert "steps: 6" in (run / "config.yaml").read_text()


def test_toy2d_sample_outputs_points(tmp_path, run_cli):
    run = tmp_path / "toy"
    code, _, err = run_cli("train", "--dataset", "toy2d-ring", "--steps", "2", "--out", run, "--quiet", "--batch-size", "16")
    assert code == 0, err
    assert run_cli("sample", "--run", run, "--n", "7", "--out", tmp_path / "p.npy")[0] == 0
    assert np.load(tmp_path / "p.npy").shape == (7, 2)
    assert run_cli("sample", "--run", run, "--n", "7", "--out", tmp_path / "p.png")[0] == 0
    code, _, err = run_cli("sample", "--run", run, "--n", "7", "--out", tmp_path / "dir")
    assert code == 2 and "2-D points" in err


def test_train_with_a_config_file_and_idx_data(tmp_path, run_cli, idx_dir):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  dataset: mnist\nmodel:\n  arch: mlp\ntrain:\n  steps: 2\n")
    code, _, err = run_cli("train", "--config", cfg, "--data", idx_dir, "--out", tmp_path / "r", "--quiet", *TINY)
    assert code == 0, err
    assert "arch: mlp" in (tmp_path / "r" / "config.yaml").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--arch", "vit"], "unknown architecture 'vit'"),
        (["--objective", "wgan-xx"], "unknown objective 'wgan-xx'"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--dataset", "mnist"], "needs --data DIR"),
        (["--dataset", "cifar10", "--data", "/no/such/dir"], "no such directory"),
        (["--image-size", "12"], "cannot make 12x12"),
        (["--lr", "0"], "lr"),
        (["--lr", "-0.1"], "lr"),
        (["--batch-size", "0"], "batch_size"),
        (["--batch-size", "-4"], "batch_size"),
        (["--steps", "0"], "steps"),
        (["--steps", "-1"], "steps"),
        (["--set", "train.stepz=3"], "did you mean 'train.steps'"),
        (["--set", "train.steps=abc"], "train.steps"),
        (["--set", "oops"], "key=value"),
        (["--config", "/no/such.yaml"], "config file not found"),
        (["--dataset", "toy2d-ring", "--arch", "dcgan"], "use --arch mlp"),
        (["--device", "cuda:0"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "cuda"),
    ],
)
def test_input_errors_exit_2_with_one_clear_line(tmp_path, run_cli, args, message):
    code, out, err = run_cli("train", "--out", tmp_path / "r", "--steps", "1", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0], lines[0]
    assert not (tmp_path / "r").exists()  # nothing written for a refused run


@pytest.mark.parametrize("steps", ["2", "4"])
def test_resume_at_or_below_the_saved_step_trains_nothing_and_says_so(tmp_path, run_cli, steps):
    run = tmp_path / "run"
    assert run_cli("train", "--dataset", "digits", "--steps", "4", "--out", run, "--quiet", *TINY)[0] == 0
    ckpt, weights = (run / "checkpoints" / "last.pt").read_bytes(), (run / "generator.safetensors").read_bytes()
    stats, config = (run / "stats.jsonl").read_text(), (run / "config.yaml").read_text()
    code, out, err = run_cli("train", "--resume", run, "--steps", steps, "--quiet")
    assert code == 0 and out == ""
    assert err.strip() == f"nothing to train: {run} is already at step 4 of --steps {steps}"
    assert (run / "checkpoints" / "last.pt").read_bytes() == ckpt and (run / "generator.safetensors").read_bytes() == weights
    assert (run / "stats.jsonl").read_text() == stats and (run / "config.yaml").read_text() == config
    code, _, err = run_cli("train", "--resume", run, "--steps", steps)  # not quiet: the log line says it
    assert code == 0 and "nothing to train (give a larger --steps to continue)" in err


def test_existing_run_dir_and_conflicting_resume(tmp_path, run_cli):
    run = tmp_path / "run"
    assert run_cli("train", "--steps", "2", "--out", run, "--quiet", *TINY)[0] == 0
    code, _, err = run_cli("train", "--steps", "2", "--out", run, "--quiet", *TINY)
    assert code == 2 and "already exists; use --resume" in err
    code, _, err = run_cli("train", "--resume", run, "--dataset", "toy2d-ring")
    assert code == 2 and "data.dataset is 'digits' in the run but 'toy2d-ring' here" in err
    code, _, err = run_cli("train", "--resume", run, "--lr", "0.1")
    assert code == 2 and "g_optim.lr" in err
    code, _, err = run_cli("train", "--resume", tmp_path / "nothing")
    assert code == 2 and "no such run directory" in err
    code, _, err = run_cli("sample", "--run", tmp_path / "nothing", "--n", "2", "--out", tmp_path / "x.png")
    assert code == 2 and "no such run directory" in err


def test_a_locked_run_is_refused(tmp_path, run_cli):
    from ganforge.run import RunDir

    run = tmp_path / "run"
    assert run_cli("train", "--steps", "2", "--out", run, "--quiet", *TINY)[0] == 0
    holder = RunDir(run)
    holder.lock()
    try:
        code, _, err = run_cli("train", "--resume", run, "--steps", "3", "--quiet")
        assert code == 2 and "in use by another ganforge process" in err
    finally:
        holder.unlock()


def test_list_presets(run_cli):
    code, out, _ = run_cli("train", "--list-presets")
    assert code == 0 and "demo" in out and "mlp-gan" in out and "toy2d" in out


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed")
def test_train_fashion_mnist_runs(tmp_path, run_cli):
    code, _, err = run_cli("train", "--dataset", "fashion-mnist", "--steps", "2", "--out", tmp_path / "f", "--quiet", *TINY)
    assert code == 0, err
    assert "image_size: 28" in (tmp_path / "f" / "config.yaml").read_text()
