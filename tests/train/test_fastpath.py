import pytest
import torch

from ganforge.config import set_value, validate
from ganforge.errors import GanforgeError
from ganforge.train import fastpath

from helpers import tiny_config
from helpers import train

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not fastpath.bf16_supported(CPU), reason="this CPU has no native bf16")


def resolved(**sets):
    cfg = tiny_config(**{"data.image_size": 8, "data.channels": 1, **sets})
    return fastpath.choose(cfg, CPU)


@needs_bf16
def test_auto_picks_bf16_and_channels_last_for_dcgan_on_a_bf16_cpu():
    fp = resolved(**{"model.arch": "dcgan"})
    assert fp.bf16 and fp.channels_last


def test_auto_picks_channels_last_for_conv_nets_in_float32_on_a_cpu():
    for arch in fastpath.CPU_CHANNELS_LAST_ARCHS:  # float32 asked for: the same on CPUs with and without bf16
        fp = resolved(**{"model.arch": arch, "train.precision": "fp32"})
        assert fp.channels_last and not fp.bf16, arch
        assert not resolved(**{"model.arch": arch, "train.channels_last": "off"}).channels_last
    assert not resolved(**{"model.arch": "mlp", "data.image_size": None}).channels_last


def test_a_channels_last_run_trains_and_saves_a_contiguous_generator(tmp_path):
    from safetensors.torch import load_file

    t, run = train(tiny_config(**{"model.arch": "resnet", "train.steps": 2}), tmp_path / "run")
    assert t.fast.channels_last and not t.fast.bf16
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in t.G.parameters())
    for name, w in load_file(str(run.generator)).items():
        assert torch.isfinite(w).all(), name


def test_auto_keeps_float32_where_it_was_not_measured_to_pay(monkeypatch):
    assert not resolved(**{"model.arch": "mlp"}).bf16
    assert not resolved(**{"model.arch": "resnet"}).bf16
    fp = resolved(**{"model.arch": "dcgan", "train.precision": "fp32", "train.channels_last": "off"})
    assert not fp.bf16 and not fp.channels_last
    assert resolved(**{"model.arch": "dcgan", "train.precision": "fp32"}).channels_last  # the CPU's float32 choice
    assert not resolved(**{"model.arch": "began"}).channels_last
    monkeypatch.setattr(fastpath, "bf16_supported", lambda device: False)
    assert not resolved(**{"model.arch": "dcgan"}).bf16
    with pytest.raises(GanforgeError, match="no native bf16"):
        resolved(**{"model.arch": "dcgan", "train.precision": "bf16"})


@pytest.mark.parametrize("key, value", [("train.precision", "fp16"), ("train.channels_last", "yes")])
def test_bad_values_are_refused(key, value):
    cfg = tiny_config()
    set_value(cfg, key, value)
    with pytest.raises(GanforgeError, match=key):
        validate(cfg)


@needs_bf16
def test_bf16_step_keeps_weights_gradients_and_losses_in_float32(tmp_path):
    t, run = train(tiny_config(**{"model.arch": "dcgan", "train.steps": 3}), tmp_path / "run")
    assert t.fast.bf16 and t.fast.channels_last
    for p in list(t.G.parameters()) + list(t.D.parameters()):
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
    conv = t.D.net[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    from ganforge.run import read_stats

    last = read_stats(run.stats)[-1]
    assert 0 < last["D(x)"] < 1 and last["loss/D"] > 0


@needs_bf16
def test_bf16_resume_is_bit_identical(tmp_path):
    sets = {"model.arch": "dcgan", "train.precision": "bf16"}
    straight, _ = train(tiny_config(**sets, **{"train.steps": 6}), tmp_path / "a")
    train(tiny_config(**sets, **{"train.steps": 3}), tmp_path / "b")
    resumed, _ = train(tiny_config(**sets, **{"train.steps": 6}), tmp_path / "b", resume=True)
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
