"""Data-parallel training with 2 processes on the CPU (gloo), as torchrun would start them."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from helpers import tiny_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world: int, port: int, run_dir: str, sets: dict, steps: int, resume: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from ganforge.run import RunDir
    from ganforge.train import Trainer

    t = Trainer(tiny_config(**sets, **{"train.steps": steps}))
    run = RunDir(run_dir)
    if resume:
        t.resume_from(run)
    elif rank == 0:
        run.create()
    dist.barrier()
    start = t.step
    t.train(run)
    params = {f"G.{n}": p.detach().clone() for n, p in t.G.named_parameters()}
    params.update({f"D.{n}": p.detach().clone() for n, p in t.D.named_parameters()})
    torch.save({"params": params, "start": start, "step": t.step, "source_n": t.source.sampler.n if hasattr(t.source, "sampler") else None},
               Path(out) / f"rank{rank}.pt")
    from ganforge.train import distributed

    distributed.shutdown(clean=True)
    # The gloo worker threads must be gone before the interpreter exits (else a random SIGABRT at exit).
    threads = [Path(f"/proc/self/task/{t}/comm").read_text().strip() for t in os.listdir("/proc/self/task")]
    torch.save({"threads": threads}, Path(out) / f"threads{rank}.pt")


def run_two(tmp_path: Path, name: str, sets: dict, steps: int, resume: bool = False) -> list[dict]:
    out = tmp_path / f"out-{name}-{steps}"
    out.mkdir()
    mp.spawn(worker, args=(2, free_port(), str(tmp_path / name), sets, steps, resume, str(out)), nprocs=2, join=True)
    for r in range(2):
        threads = torch.load(out / f"threads{r}.pt", weights_only=True)["threads"]
        assert not [t for t in threads if "gloo" in t], f"rank {r}: process group threads left after shutdown: {threads}"
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


CASES = {
    "dcgan-ns": {},
    "wgan-gp": {"model.arch": "mlp", "objective.name": "wgan-gp", "train.n_dis": 2},
    "r1": {"objective.r1.gamma": 1.0, "objective.r1.every": 1},
}


@pytest.mark.parametrize("name", CASES)
def test_two_ranks_keep_identical_weights_and_resume(tmp_path, name):
    from ganforge.run import read_stats

    ranks = run_two(tmp_path, name, CASES[name], steps=3)
    for key, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][key]), key
    assert ranks[0]["source_n"] == ranks[1]["source_n"] == 32  # each rank has half of the 64 items
    stats = read_stats(tmp_path / name / "stats.jsonl")
    assert [r["step"] for r in stats] == [1, 2, 3]  # written once, by rank 0
    assert (tmp_path / name / "checkpoints" / "last.pt").is_file()

    again = run_two(tmp_path, name, CASES[name], steps=5, resume=True)
    assert again[0]["start"] == again[1]["start"] == 3 and again[0]["step"] == 5
    for key, value in again[0]["params"].items():
        assert torch.equal(value, again[1]["params"][key]), key
    moved = [k for k, v in again[0]["params"].items() if not torch.equal(v, ranks[0]["params"][k])]
    # the resumed steps trained on: every G parameter moved (a WGAN critic's last bias gets no gradient)
    assert {k for k in again[0]["params"] if k.startswith("G.")} <= set(moved)
    assert [r["step"] for r in read_stats(tmp_path / name / "stats.jsonl")] == [1, 2, 3, 4, 5]


def test_torchrun_cli(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    run = tmp_path / "run"
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "ganforge", "train", "--out", str(run),
           "--steps", "3", "--batch-size", "8", "--z-dim", "8", "--set", "model.g_width=8", "--set", "model.d_width=8",
           "--set", "data.max_items=64", "--set", "log.log_every=1", "--quiet", "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("run directory:") == 1  # rank 0 alone reports
    assert (run / "checkpoints" / "last.pt").is_file() and len((run / "stats.jsonl").read_text().splitlines()) == 3
