"""benchmarks/throughput.py runs and reports what it claims: the reference, ganforge, and each
--ablate variant with exactly its one speed choice switched (read back from the trainer)."""

import json

import pytest

from helpers import load_benchmark

from ganforge.train import fastpath

import torch


@pytest.mark.skipif(not fastpath.bf16_supported(torch.device("cpu")), reason="the CPU defaults differ without native bf16")
def test_throughput_json_with_ablations(capsys):
    bench = load_benchmark("throughput")
    assert bench.main(["--steps", "1", "--rounds", "1", "--json", "--ablate"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["who"]: r for r in result["rows"]}
    assert list(rows) == ["reference", "ganforge"] + [f"ganforge, {v}" for v in bench.ABLATIONS["cpu"]]
    assert rows["ganforge"]["choices"] == "bf16 autocast + channels_last + fused Adam"
    assert rows["ganforge, fp32 (no bf16 autocast)"]["choices"] == "float32 + fused Adam"
    assert rows["ganforge, no channels_last"]["choices"] == "bf16 autocast + fused Adam"
    assert rows["ganforge, no fused Adam"]["choices"] == "bf16 autocast + channels_last"
    assert rows["reference"]["speedup_vs_reference"] == 1.0
    for r in rows.values():
        assert r["ms_per_step"] > 0 and r["images_per_s"] == pytest.approx(64 / (r["ms_per_step"] / 1e3))
    assert result["speedup_vs_reference"] == {"dcgan28-b64": rows["ganforge"]["speedup_vs_reference"]}


def test_a_presets_nets_are_timed_against_ganforge_with_every_speed_choice_off(capsys):
    bench = load_benchmark("throughput")
    assert bench.main(["--setups", "resnet8-b64", "--steps", "1", "--rounds", "1", "--json"]) == 0
    rows = {r["who"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert list(rows) == ["reference", "ganforge"]
    assert rows["reference"]["choices"] == "ganforge, every choice off: float32"
    assert rows["ganforge"]["choices"] == "float32 + channels_last + fused Adam"
    assert rows["ganforge"]["fraction_of_peak"] is None  # no FLOP count for these nets
