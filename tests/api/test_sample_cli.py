"""`ganforge sample`: --seeds, --truncation, --class-grid, --traverse, --interpolate (GIF / MP4), and
one-line errors (exit 2) for bad input. The images are the API's (ganforge.load), bit for bit."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge

from api_runs import cgan_run, info_run, plain_run  # noqa: F401  (session fixtures)


def _one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("ganforge sample: error: "), err
    for w in words:
        assert w in err, (w, err)


def test_seeds_are_reproducible_on_any_batch_and_match_the_api(tmp_path, run_cli, plain_run):
    code, out, err = run_cli("sample", "--run", plain_run, "--seeds", "1,5,9", "--out", tmp_path / "a.npy")
    assert code == 0 and out.strip() == str(tmp_path / "a.npy"), err
    a = np.load(tmp_path / "a.npy")
    G = ganforge.load(plain_run, device="cpu")
    assert np.array_equal(a, G.sample(seeds=[1, 5, 9]).numpy())
    assert run_cli("sample", "--run", plain_run, "--seeds", "0-9", "--out", tmp_path / "b.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "b.npy")[[1, 5, 9]], a)  # the same seeds inside a batch of 10
    assert run_cli("sample", "--run", plain_run, "--seed", "5", "--n", "3", "--out", tmp_path / "c.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "c.npy")[0], a[1])  # --seed 5 --n 3: seeds 5, 6, 7


def test_truncation_zero_makes_every_seed_the_mean_image(tmp_path, run_cli, plain_run):
    code, _, err = run_cli("sample", "--run", plain_run, "--n", "5", "--truncation", "0", "--out", tmp_path / "t.npy")
    assert code == 0, err
    t = np.load(tmp_path / "t.npy")
    assert all(np.array_equal(t[0], row) for row in t)


def test_class_grid_has_one_row_per_class(tmp_path, run_cli, cgan_run):
    code, _, err = run_cli("sample", "--run", cgan_run, "--class-grid", "--seeds", "3,4", "--out", tmp_path / "g.npy")
    assert code == 0, err
    g = np.load(tmp_path / "g.npy")
    assert g.shape == (20, 1, 8, 8)
    G = ganforge.load(cgan_run, device="cpu")
    for k in (0, 7):
        assert np.array_equal(g[2 * k + 1], G.sample(seeds=[4], classes=k)[0].numpy())  # row k, column seed 4
    assert run_cli("sample", "--run", cgan_run, "--class-grid", "--out", tmp_path / "g.png")[0] == 0
    assert Image.open(tmp_path / "g.png").size == (10 * 50 + 2, 10 * 50 + 2)  # 10 columns x 10 classes of 48 px


def test_traverse_draws_categories_by_swept_codes(tmp_path, run_cli, info_run):
    code, _, err = run_cli("sample", "--run", info_run, "--traverse", "--steps", "6", "--out", tmp_path / "tr.npy")
    assert code == 0, err
    x = np.load(tmp_path / "tr.npy")
    assert x.shape == (2 * 10 * 6, 1, 8, 8)  # 2 continuous codes x 10 categories x 6 values
    want, cols = ganforge.load(info_run, device="cpu").traversal([0], steps=6)
    assert cols == 6 and np.array_equal(x, want.numpy())
    assert run_cli("sample", "--run", info_run, "--traverse", "--out", tmp_path / "tr.png")[0] == 0
    assert Image.open(tmp_path / "tr.png").size == (10 * 50 + 2, 20 * 50 + 2)


def test_interpolate_writes_a_gif_of_k_times_steps_frames(tmp_path, run_cli, plain_run):
    gif = tmp_path / "walk.gif"
    code, _, err = run_cli("sample", "--run", plain_run, "--interpolate", "3", "--steps", "4", "--seed", "2", "--out", gif)
    assert code == 0, err
    im = Image.open(gif)
    assert im.n_frames == 12 and im.size == (256, 256)  # 8x8 images enlarged 32 times
    assert im.info["loop"] == 0
    first = np.asarray(im.convert("L"))[::32, ::32]
    G = ganforge.load(plain_run, device="cpu")
    assert np.array_equal(first, np.asarray(G.to_pil(G.sample(seeds=[2]))[0]))  # the walk starts at seed 2
    im.seek(8)
    assert np.array_equal(np.asarray(im.convert("L"))[::32, ::32], np.asarray(G.to_pil(G.sample(seeds=[4]))[0]))


def test_mp4_without_the_video_extra_says_what_to_install(tmp_path, run_cli, plain_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import imageio_ffmpeg -> ImportError
    code, _, err = run_cli("sample", "--run", plain_run, "--interpolate", "2", "--out", tmp_path / "walk.mp4")
    _one_line_error(code, err, "pip install 'ganforge[video]'", "imageio-ffmpeg")
    assert not (tmp_path / "walk.mp4").exists()


def test_mp4_with_the_video_extra(tmp_path, run_cli, plain_run):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v3 as iio

    out = tmp_path / "walk.mp4"
    code, _, err = run_cli("sample", "--run", plain_run, "--interpolate", "2", "--steps", "5", "--fps", "10", "--out", out)
    assert code == 0, err
    frames = iio.imread(out, plugin="FFMPEG")
    assert frames.shape == (10, 256, 256, 3)


@pytest.mark.parametrize("args, words", [
    (["--seeds", "a,b"], ["--seeds a,b", "e.g. 1,5,9"]),
    (["--seeds", "5-2"], ["--seeds 5-2", "low to high"]),
    (["--seeds", "1,2", "--n", "3"], ["--seeds and --n"]),
    (["--truncation", "-1"], ["--truncation -1", "between 0", "and 1"]),
    (["--truncation", "nan"], ["--truncation nan"]),
    (["--class", "1"], ["--class needs a conditional run"]),
    (["--class-grid"], ["--class-grid needs a conditional run"]),
    (["--traverse"], ["--traverse needs an InfoGAN run"]),
    (["--class-grid", "--traverse"], ["--class-grid and --traverse cannot be combined"]),
    (["--interpolate", "1"], ["--interpolate 1", "K >= 2"]),
    (["--interpolate", "3", "--seeds", "1,2"], ["give exactly 3 seeds"]),
    (["--steps", "4"], ["--steps applies to --interpolate and --traverse"]),
    (["--interpolate", "2", "--fps", "0"], ["--fps 0", "from 1 to 100"]),
    (["--n", "0"], ["--n must be positive"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("--") else None)
def test_bad_input_is_one_line_and_exit_2(tmp_path, run_cli, plain_run, args, words):
    out = tmp_path / ("w.gif" if "--interpolate" in args else "s.png")
    code, _, err = run_cli("sample", "--run", plain_run, *args, "--out", out)
    _one_line_error(code, err, *words)
    assert not out.exists()


def test_a_video_needs_interpolate_and_other_suffixes_are_refused(tmp_path, run_cli, plain_run):
    code, _, err = run_cli("sample", "--run", plain_run, "--out", tmp_path / "x.gif")
    _one_line_error(code, err, "--out", "needs --interpolate K")
    code, _, err = run_cli("sample", "--run", plain_run, "--interpolate", "2", "--out", tmp_path / "w.npy")
    assert code == 0, err
    assert np.load(tmp_path / "w.npy").shape == (32, 1, 8, 8)  # 2 seeds x 16 frames


def test_class_k_on_an_infogan_run_is_its_category(tmp_path, run_cli, info_run):
    code, _, err = run_cli("sample", "--run", info_run, "--seeds", "1,2", "--class", "3", "--out", tmp_path / "c.npy")
    assert code == 0, err
    G = ganforge.load(info_run, device="cpu")
    assert np.array_equal(np.load(tmp_path / "c.npy"), G.sample(seeds=[1, 2], codes={"cat": 3}).numpy())
    assert not torch.equal(G.sample(seeds=[1], codes={"cat": 3}), G.sample(seeds=[1], codes={"cat": 4}))
