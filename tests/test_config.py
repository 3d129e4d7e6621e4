import pytest

from ganforge.config import (
    PRESETS,
    Config,
    all_keys,
    apply_dict,
    from_dict,
    parse_assignment,
    set_value,
    validate,
)
from ganforge.errors import GanforgeError


def test_defaults_are_valid_and_round_trip_through_yaml():
    import yaml

    cfg = Config()
    validate(cfg)
    again = from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


def test_every_preset_is_valid():
    for name, preset in PRESETS.items():
        cfg = apply_dict(Config(), preset.overrides, name)
        validate(cfg)


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("g_optim.lr=1e-3", "g_optim.lr", 1e-3),
        ("train.steps=10", "train.steps", 10),
        ("data.path=/tmp/x", "data.path", "/tmp/x"),
        ("g_optim.betas=[0.0, 0.9]", "g_optim.betas", [0.0, 0.9]),
        ("d_optim.clip_norm=null", "d_optim.clip_norm", None),
    ],
)
def test_parse_assignment(text, key, value):
    assert parse_assignment(text) == (key, value)


def test_set_value_coerces_types():
    cfg = Config()
    set_value(cfg, "g_optim.lr", 1)  # int -> float
    assert cfg.g_optim.lr == 1.0 and isinstance(cfg.g_optim.lr, float)
    set_value(cfg, "g_optim.betas", [0.0, 0.9])
    assert cfg.g_optim.betas == (0.0, 0.9)


def test_unknown_key_suggests_the_closest():
    with pytest.raises(GanforgeError, match=r"unknown config key 'g_optim.lrr' \(did you mean 'g_optim.lr'\?\)"):
        set_value(Config(), "g_optim.lrr", 0.1)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"train": {"steps": "many"}}, "train.steps"),
        ({"train": {"batch_size": 3.5}}, "train.batch_size"),
        ({"train": 5}, "is a section"),
        ({"g_optim": {"betas": [0.5]}}, "g_optim.betas"),
        ({"model": {"arch": 3}}, "model.arch"),
    ],
)
def test_wrong_types_name_the_key(data, match):
    with pytest.raises(GanforgeError, match=match):
        from_dict(data)


def test_yaml_that_is_not_a_mapping(tmp_path):
    from ganforge.config import load_yaml

    p = tmp_path / "c.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(GanforgeError, match="expected a mapping"):
        load_yaml(p)


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("train.steps", 0, "steps"),
        ("train.batch_size", -1, "batch_size"),
        ("g_optim.lr", 0.0, "lr"),
        ("d_optim.lr", -1e-3, "lr"),
        ("objective.n_dis", 0, "n_dis"),
        ("g_optim.betas", [1.0, 0.9], "betas"),
        ("d_optim.clip_norm", 0.0, "clip_norm"),
        ("train.device", "tpu", "device"),
        ("data.channels", 2, "channels"),
    ],
)
def test_out_of_range_values(key, value, match):
    cfg = Config()
    set_value(cfg, key, value)
    with pytest.raises(GanforgeError, match=match):
        validate(cfg)


def test_all_keys_lists_dotted_leaves():
    keys = all_keys()
    assert "g_optim.lr" in keys and "data.dataset" in keys and "data" not in keys
