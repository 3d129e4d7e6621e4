import copy
import logging

import pytest
import yaml

from ganforge.config import (
    OLD_KEYS,
    PRESETS,
    Config,
    GPConfig,
    OptimConfig,
    TrainConfig,
    all_keys,
    apply_dict,
    flatten,
    from_dict,
    load_yaml,
    migrate,
    parse_assignment,
    set_value,
    validate,
)
from ganforge.errors import GanforgeError


def test_defaults_are_valid_and_round_trip_through_yaml():
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
        ("train.n_dis", 0, "n_dis"),
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


# ----------------------------------------------------------------------------- nested objective sections, old keys

NEW_OBJECTIVE_KEYS = ["objective.name", "objective.wgan.clip", "objective.gp.weight", "objective.r1.gamma", "objective.r1.every",
                      "objective.r1.gamma_final", "objective.r2.gamma", "objective.r2.every", "objective.r2.gamma_final",
                      "objective.ac.weight", "objective.ac.fake_weight", "objective.info.weight", "objective.began.gamma", "objective.began.lambda_k"]
# A value other than the default for every old key (a migration that drops the value is caught).
OLD_VALUES = {"objective.n_dis": 3, "objective.clip": 0.05, "objective.gp_lambda": 5.0, "objective.r1_gamma": 2.0,
              "objective.r1_every": 4, "objective.ac_weight": 0.5, "objective.info_weight": 2.0,
              "objective.began_gamma": 0.7, "objective.began_lambda_k": 0.01}


def nest(dotted, value):
    """'a.b.c', v -> {'a': {'b': {'c': v}}}."""
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def lookup(cfg, dotted):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.fixture
def warnings_logged():
    """Warnings of the 'ganforge' logger (the CLI turns its propagation off, so caplog may not see them)."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger, handler = logging.getLogger("ganforge"), Keep(logging.WARNING)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_all_keys_lists_the_nested_objective_sections_and_train_n_dis():
    keys = all_keys()
    assert [k for k in keys if k.startswith("objective.")] == NEW_OBJECTIVE_KEYS
    assert "train.n_dis" in keys
    assert not set(OLD_KEYS) & set(keys)
    assert "objective.gp" not in keys and "objective.r1" not in keys  # sections are not leaves
    assert sorted(flatten(Config().to_dict())) == sorted(keys)  # to_dict / to_yaml write the same nested keys


def test_nested_sections_round_trip_through_yaml_and_set():
    cfg = Config()
    sets = [("objective.gp.weight", 3.0), ("objective.r1.every", 2), ("objective.began.lambda_k", 0.5), ("train.n_dis", 4)]
    for key, value in sets:
        set_value(cfg, *parse_assignment(f"{key}={value}"))
        assert lookup(cfg, key) == value
    text = cfg.to_yaml()
    assert "gp:\n    weight: 3.0" in text and "n_dis: 4" in text
    assert from_dict(yaml.safe_load(text)) == cfg
    with pytest.raises(GanforgeError, match=r"config key 'objective.gp' is a section; expected a mapping, got 5"):
        set_value(Config(), "objective.gp", 5)


def test_the_old_key_table_covers_every_old_key_and_points_at_real_keys():
    assert set(OLD_KEYS) == set(OLD_VALUES)
    assert set(OLD_KEYS.values()) <= set(all_keys())
    for old, new in OLD_KEYS.items():
        assert OLD_VALUES[old] != lookup(Config(), new)


@pytest.mark.parametrize("old", sorted(OLD_VALUES))
def test_an_old_key_in_a_mapping_migrates_with_one_warning(old, warnings_logged):
    new, value = OLD_KEYS[old], OLD_VALUES[old]
    want = from_dict(nest(new, value))
    assert not warnings_logged
    got = from_dict(nest(old, value), "old.yaml")
    assert got == want and lookup(got, new) == value
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert f"'{old}'" in message and f"'{new}'" in message and "old.yaml" in message


@pytest.mark.parametrize("old", sorted(OLD_VALUES))
def test_an_old_key_in_set_migrates_with_one_warning(old, warnings_logged):
    new, value = OLD_KEYS[old], OLD_VALUES[old]
    want, got = Config(), Config()
    set_value(want, *parse_assignment(f"{new}={value}"))
    set_value(got, *parse_assignment(f"{old}={value}"))  # what --set old=value does
    assert got == want
    assert len(warnings_logged) == 1 and f"'{new}'" in warnings_logged[0].getMessage()


def test_every_old_key_at_once_from_a_config_file(tmp_path, warnings_logged):
    path = tmp_path / "old.yaml"
    path.write_text("objective:\n" + "".join(f"  {k.split('.', 1)[1]}: {v}\n" for k, v in OLD_VALUES.items()))
    cfg = from_dict(load_yaml(path), str(path))
    for old, value in OLD_VALUES.items():
        assert lookup(cfg, OLD_KEYS[old]) == value
    assert sorted(r.getMessage().split("'")[1] for r in warnings_logged) == sorted(OLD_KEYS)


# config.yaml as `ganforge train` wrote it before the objective sections (the keys that moved, in their old places).
OLD_RUN_CONFIG = """\
data: {dataset: digits, path: null, split: train, image_size: null, channels: null, loader: auto, workers: 2, max_items: 64}
model: {arch: dcgan, z_dim: 8, g_width: 8, d_width: 8, conditioning: none, g_conditioning: auto, num_classes: null,
  spectral_norm_d: false, spectral_norm_g: false, attention: null, info_cat: 0, info_cont: 0}
objective:
  name: wgan-gp
  n_dis: 5
  clip: 0.02
  gp_lambda: 7.5
  r1_gamma: 0.25
  r1_every: 2
  ac_weight: 0.5
  info_weight: 1.5
  began_gamma: 0.4
  began_lambda_k: 0.002
g_optim: {name: adam, lr: 0.0001, betas: [0.0, 0.9]}
d_optim: {name: adam, lr: 0.0001, betas: [0.0, 0.9]}
train: {steps: 6, batch_size: 8, seed: 0, device: auto, engine: torch, ema_decay: null, diffaugment: ''}
log: {log_every: 1, grad_every: 1, sample_every: 100, checkpoint_every: 100}
preset: wgan-gp
"""


def test_an_old_runs_config_yaml_loads(tmp_path, warnings_logged):
    path = tmp_path / "config.yaml"
    path.write_text(OLD_RUN_CONFIG)
    cfg = from_dict(load_yaml(path), str(path))
    validate(cfg)
    o = cfg.objective
    assert (o.name, cfg.train.n_dis, o.wgan.clip, o.gp.weight) == ("wgan-gp", 5, 0.02, 7.5)
    assert (o.r1.gamma, o.r1.every, o.ac.weight, o.info.weight) == (0.25, 2, 0.5, 1.5)
    assert (o.began.gamma, o.began.lambda_k) == (0.4, 0.002)
    assert cfg.train.steps == 6 and cfg.preset == "wgan-gp"
    assert len(warnings_logged) == len(OLD_KEYS)
    again = from_dict(yaml.safe_load(cfg.to_yaml()))  # written back in the new layout: no old key left
    assert again == cfg and len(warnings_logged) == len(OLD_KEYS)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"objective": {"gp_lambda": 5, "gp": {"weight": 5}}},
         r"config key 'objective.gp_lambda' is the old name of 'objective.gp.weight', and both are given; "
         r"keep only 'objective.gp.weight'"),
        ({"objective": {"n_dis": 2}, "train": {"n_dis": 3}}, r"'objective.n_dis' is the old name of 'train.n_dis', and both"),
        ({"objective": {"r1": 1, "r1_gamma": 1.0}},
         r"cannot move old config key 'objective.r1_gamma' to 'objective.r1.gamma': 'objective.r1' is 1, not a section"),
        ({"objective": {"clip": {"x": 1}}}, r"config key 'objective.wgan.clip': expected float"),
        ({"objective": {"gp_lamda": 5}}, r"unknown config key 'objective.gp_lamda' \(did you mean 'objective.gp.weight'\?\)"),
        # the penalty's weight is objective.gp.weight (lambda in the paper, a Python keyword): lambda is not a key
        ({"objective": {"gp": {"lambda": 5}}},
         r"unknown config key 'objective\.gp\.lambda' \(did you mean 'objective.gp.weight'\?\)"),
    ],
)
def test_an_old_key_that_cannot_be_migrated_is_refused_by_name(data, match):
    with pytest.raises(GanforgeError, match=match):
        from_dict(data)


def test_migration_leaves_the_callers_mapping_alone():
    data = {"objective": {"name": "hinge", "gp_lambda": 5.0, "r1_gamma": 2.0, "r1": {"every": 4}, "n_dis": 3}, "train": {"steps": 7}}
    before = copy.deepcopy(data)
    assert migrate(data) == {"objective": {"name": "hinge", "gp": {"weight": 5.0}, "r1": {"every": 4, "gamma": 2.0}},
                             "train": {"steps": 7, "n_dis": 3}}
    assert data == before
    assert migrate({"train": {"steps": 7}}) == {"train": {"steps": 7}}  # nothing old: nothing moved


def test_presets_use_the_new_keys_only(warnings_logged):
    for name, preset in PRESETS.items():
        apply_dict(Config(), preset.overrides, name)
        assert not set(flatten(preset.overrides)) & set(OLD_KEYS), name
    assert not warnings_logged
    assert from_dict(PRESETS["wgan-gp"].overrides).train.n_dis == 5
    assert from_dict(PRESETS["wgan"].overrides).objective.wgan.clip == 0.01


# Each section's own check, and validate() reaching it: a bad value is named by its full dotted key.
SECTION_CASES = [
    ("data.workers", -1), ("data.loader", "disk"), ("model.z_dim", 0), ("model.info_cat", 1),
    ("objective.wgan.clip", 0.0), ("objective.gp.weight", -1.0), ("objective.r1.gamma", -0.5), ("objective.r1.every", 0),
    ("objective.ac.weight", -1.0), ("objective.info.weight", -2.0), ("objective.began.gamma", -0.1),
    ("objective.began.lambda_k", -1e-3), ("g_optim.momentum", 1.0), ("d_optim.alpha", 0.0), ("d_optim.min_lr_factor", 2.0),
    ("train.n_dis", 0), ("train.precision", "fp16"), ("train.ema_decay", 1.0), ("log.grad_every", 0), ("watchdog.lr_factor", 2.0),
    ("watchdog.max_rollbacks", -1),
]


@pytest.mark.parametrize("key, value", SECTION_CASES)
def test_each_sections_check_names_the_full_key_and_the_value(key, value):
    cfg = Config()
    set_value(cfg, key, value)
    *path, _ = key.split(".")
    section, prefix = lookup(cfg, ".".join(path)), ".".join(path)
    with pytest.raises(GanforgeError) as direct:
        section.check(prefix)
    with pytest.raises(GanforgeError) as through_validate:
        validate(cfg)
    for e in (direct.value, through_validate.value):
        text = str(e)
        assert text.startswith(key) and str(value) in text and "\n" not in text, text
    Config().objective.check("objective")  # the defaults pass


def test_a_section_check_uses_the_prefix_it_is_given():
    with pytest.raises(GanforgeError, match=r"^objective\.gp\.weight must be >= 0, got -1.0$"):
        GPConfig(weight=-1.0).check("objective.gp")
    with pytest.raises(GanforgeError, match=r"^d_optim\.betas\[1\] must be in \[0, 1\), got 1.5$"):
        OptimConfig(betas=(0.5, 1.5)).check("d_optim")
    with pytest.raises(GanforgeError, match=r"^train\.n_dis \(--n-dis\) must be positive, got 0$"):
        TrainConfig(n_dis=0).check("train")


@pytest.mark.parametrize(
    "sets, recipe",
    [
        ({"data.dataset": "toy2d-ring"}, "r3gan"),
        ({"data.dataset": "toy2d-grid"}, "r3gan"),
        ({"data.dataset": "toy2d-ring", "train.engine": "numpy"}, "toy2d"),  # no R1/R2, no rpgan on numpy
        ({"data.dataset": "digits"}, "demo"),
        ({"data.dataset": "digits", "train.engine": "numpy"}, "dcgan"),  # no rpgan, no R3GAN nets on numpy
        ({"data.dataset": "fashion-mnist"}, None),
    ],
)
def test_without_a_preset_each_data_set_gets_its_recipe_for_its_engine(sets, recipe):
    from ganforge.config import DATA_RECIPES, with_recipe

    cfg = with_recipe(lambda c: [set_value(c, k, v) for k, v in sets.items()])
    assert cfg.preset == recipe
    assert set(DATA_RECIPES) == {"torch", "numpy"}
    if recipe == "r3gan":  # the recipe's budget for points, then what the user gave
        assert (cfg.objective.name, cfg.model.depth, cfg.model.g_activation) == ("rpgan", 4, "relu")
    user = with_recipe(lambda c: [set_value(c, k, v) for k, v in {**sets, "model.depth": 3}.items()])
    assert user.model.depth == 3
