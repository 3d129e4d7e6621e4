"""Every preset on every kind of data: a preset is a recipe (loss, regularisers, optimiser, widths) and the
architecture follows the data, so each pair trains a few steps, or exits 2 with one line when the pair
truly cannot work (the reasons allowed are listed below)."""

from __future__ import annotations

import pytest

from ganforge.config import PRESETS

# kind -> CLI arguments choosing data of that kind (the idx_dir / cifar_dir fixtures supply files)
KINDS = {
    "points": ["--dataset", "toy2d-ring"],
    "gray8": ["--dataset", "digits"],
    "gray28": ["--dataset", "mnist", "--data", "{idx_dir}"],
    "color32": ["--dataset", "cifar10", "--data", "{cifar_dir}"],
}
# (preset, kind) pairs that cannot work, and the words of the one-line reason
CANNOT = {
    **{(p, "points"): "needs labelled data" for p in ("cgan", "cgan-projection", "acgan", "r3gan-cond")},
    ("began", "points"): "autoencoder",
}
SMALL = ["--steps", "2", "--batch-size", "8",  # 8: divisible by any preset's model.pack (2, 4)
         "--device", "cpu", "--quiet", "--no-report", "--set", "data.max_items=32",
         "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "log.n_samples=4"]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_on_every_kind_of_data_or_says_why_not(tmp_path, run_cli, idx_dir, cifar_dir, preset, kind):
    data = [a.format(idx_dir=idx_dir, cifar_dir=cifar_dir) for a in KINDS[kind]]
    code, out, err = run_cli("train", "--preset", preset, *data, *SMALL, "--out", tmp_path / "run")
    why = CANNOT.get((preset, kind))
    if why is None:
        assert code == 0, err
        assert (tmp_path / "run" / "generator.safetensors").is_file()
    else:
        lines = [line for line in err.splitlines() if line.startswith("ganforge train: error:")]
        assert code == 2 and len(lines) == 1 and why in lines[0], err
