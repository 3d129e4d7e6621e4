"""Property tests (hypothesis): configs and data files from random input give a result or a GanforgeError.

Never another exception, never a traceback from the CLI.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ganforge.config import OLD_KEYS, Config, all_keys, from_dict, load_yaml, parse_assignment, set_value, validate
from ganforge.data.files import read_idx, safe_unpickle
from ganforge.data.folder import load_folder_into_memory
from ganforge.errors import GanforgeError

FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = all_keys()
SECTIONS = sorted({k.split(".")[0] for k in KEYS if "." in k})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
# Dotted paths inside a section ('lr', 'gp.weight'), old ones too ('gp_lambda': migrated), and random names.
leaf_names = st.sampled_from(sorted({k.split(".", 1)[1] for k in [*KEYS, *OLD_KEYS] if "." in k})) | st.text(max_size=10)


def nest(dotted: str, value: typing.Any) -> dict:
    """'a.b.c', v -> {'a': {'b': {'c': v}}}."""
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


def deep_set(d: dict, dotted: str, value: typing.Any) -> None:
    """Set `dotted` in the nested mapping `d`, unless a value that is not a mapping is in the way."""
    *path, leaf = dotted.split(".")
    for p in path:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            return
    d[leaf] = value


@st.composite
def config_dicts(draw) -> dict:
    """Mostly real section and key names (so values reach the type checks), some random ones."""
    out: dict = {}
    for _ in range(draw(st.integers(0, 4))):
        section = draw(st.sampled_from(SECTIONS) | st.text(max_size=8))
        if draw(st.integers(0, 9)) == 0:
            out[section] = draw(values)  # a section that is not a mapping
        else:
            out[section] = {}
            for leaf, value in draw(st.dictionaries(leaf_names, values, max_size=3)).items():
                deep_set(out[section], leaf, value)
    return out


def _leaf_type(dotted: str):
    obj: typing.Any = Config()
    *path, leaf = dotted.split(".")
    for p in path:
        obj = getattr(obj, p)
    return typing.get_type_hints(type(obj))[leaf]


@FAST
@given(config_dicts())
@example({"g_optim": {"lr": 10**400}})  # an integer beyond float range
@example({"g_optim": {"lr": float("inf")}})
@example({"train": {"steps": float("nan")}})
@example({"data": [1, 2]})
@example({"objective": {"gp_lambda": 3, "gp": {"weight": 3}}})  # an old key and its new one
@example({"objective": {"r1": [1], "r1_every": 2}})  # an old key whose new section is not a mapping
@example({"objective": {"n_dis": 2, "began_lambda_k": 0.1}, "train": {"steps": 3}})
def test_any_mapping_gives_a_config_or_a_clear_error(data):
    try:
        cfg = from_dict(data)
    except GanforgeError as e:
        assert str(e) and "\n" not in str(e)
        return
    try:
        validate(cfg)
    except GanforgeError as e:
        assert str(e)
        return
    # A valid config survives its own YAML (config.yaml is what --resume reads back).
    assert from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


@FAST
@given(st.sampled_from(KEYS), values)
def test_a_wrong_value_names_its_key_and_a_right_one_is_stored(key, value):
    data = nest(key, value)
    try:
        cfg = from_dict(data)
    except GanforgeError as e:
        assert f"'{key}" in str(e), (key, str(e))  # "config key 'g_optim.lr': expected ..."
        return
    stored = cfg
    for part in key.split("."):
        stored = getattr(stored, part)
    tp = _leaf_type(key)
    allowed = tuple(a for a in (typing.get_args(tp) or (tp,)) if isinstance(a, type))
    if typing.get_origin(tp) is tuple:
        allowed = (tuple,)
    assert isinstance(stored, allowed) or (stored is None and type(None) in typing.get_args(tp)), (key, stored, tp)
    if isinstance(stored, float):
        assert np.isfinite(stored)


@FAST
@given(st.text(max_size=40))
@example("g_optim.lr=1e999")
@example("=")
@example("..=1")
@example("train=3")
@example("objective.gp_lambda=-1")
@example("objective.r1_every.x=2")
def test_set_assignments_from_any_text(text):
    try:
        key, value = parse_assignment(text)
        cfg = Config()
        set_value(cfg, key, value)
        validate(cfg)
    except GanforgeError as e:
        assert str(e)


@FAST
@given(st.text(max_size=120) | st.sampled_from(["[1, 2]", "3", "- a\n- b", "a: [", "!!python/object:os.system {}", "train: 5"]))
def test_yaml_files_from_any_text(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text)
        try:
            data = load_yaml(path)
        except GanforgeError as e:
            assert str(path) in str(e)
            return
        assert isinstance(data, dict)
        try:
            from_dict(data, str(path))
        except GanforgeError:
            pass


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["--set", "train.steps=0", "g_optim.lr=-1", "--steps", "x", "--lr", "nan", "--bogus",
                                 "data.channels=2", "log.nope=1", "watchdog.lr_factor=2", "--config", "/nonexistent.yaml",
                                 "--channels", "5", "train.batch_size=true"]), max_size=6))
def test_the_cli_never_prints_a_traceback(argv):
    from ganforge.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["train", "--print-config", *argv])
        except SystemExit as e:  # argparse's own usage errors
            code = e.code
    assert code in (0, 2), (argv, err.getvalue())
    assert "Traceback" not in err.getvalue()


# ----------------------------------------------------------------------------- data files


idx_headers = st.builds(
    lambda code, dims: bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims),
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
    st.lists(st.integers(0, 6) | st.integers(0, 2**32 - 1), min_size=0, max_size=5),
)


@FAST
@given(st.binary(max_size=300) | st.builds(lambda h, body: h + body, idx_headers, st.binary(max_size=300)))
def test_idx_reader_on_random_bytes(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x-idx3-ubyte"
        path.write_bytes(blob)
        try:
            arr = read_idx(path)
        except GanforgeError as e:
            assert str(path) in str(e)
            return
        header = 4 + 4 * blob[3]
        assert arr.size * arr.dtype.itemsize == len(blob) - header  # every byte accounted for


@FAST
@given(st.binary(max_size=400) | st.builds(lambda b: b"\x80\x02" + b, st.binary(max_size=200)))
def test_cifar_unpickler_on_random_bytes(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data_batch_1"
        path.write_bytes(blob)
        try:
            safe_unpickle(path)
        except GanforgeError as e:
            assert str(path) in str(e)


def _image_bytes() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    out = {}
    for fmt, ext in (("PNG", ".png"), ("JPEG", ".jpg"), ("BMP", ".bmp"), ("WEBP", ".webp")):
        buf = io.BytesIO()
        im.save(buf, fmt)
        out[ext] = buf.getvalue()
    return out


IMAGES = _image_bytes()


@st.composite
def damaged_images(draw) -> tuple[str, bytes]:
    """A real PNG/JPEG/BMP/WebP with random bytes overwritten, cut short, or random bytes after a magic number."""
    ext = draw(st.sampled_from(sorted(IMAGES)))
    data = bytearray(IMAGES[ext])
    how = draw(st.sampled_from(["flip", "cut", "random"]))
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    else:
        data = data[: draw(st.integers(0, 16))] + draw(st.binary(max_size=200))
    return ext, bytes(data)


@settings(max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_images())
def test_image_loader_on_damaged_files_loads_or_skips(case):
    ext, blob = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{ext}"
        path.write_bytes(blob)
        x, kept, skipped = load_folder_into_memory([path], 8, 3)  # never raises
        assert (kept, skipped) in (([0], []), ([], [path]))
        assert x.shape == (len(kept), 3, 8, 8) and str(x.dtype) == "torch.uint8"


@pytest.mark.parametrize(
    "args, yaml_text, message",
    [
        (["--set", "train.steps=abc"], None, "config key 'train.steps': expected int, got 'abc'"),
        (["--set", "g_optim.lrr=0.1"], None, "unknown config key 'g_optim.lrr' (did you mean 'g_optim.lr'?)"),
        (["--set", "g_optim.lr=.inf"], None, "config key 'g_optim.lr': expected a finite number"),
        (["--set", "watchdog.lr_factor=2"], None, "watchdog.lr_factor must be in (0, 1]"),
        (["--set", "log.checkpoint_every=0"], None, "log.checkpoint_every must be positive"),
        ([], "- just\n- a list\n", "expected a mapping of config sections, got list"),
        ([], "train: 5\n", "config key 'train' is a section; expected a mapping"),
        ([], "train:\n  stepz: 5\n", "unknown config key 'train.stepz' (did you mean 'train.steps'?)"),
        ([], "train: {steps: [1, 2]}\n", "config key 'train.steps': expected int"),
    ],
)
def test_config_errors_from_the_cli_name_the_key_and_exit_2(tmp_path, run_cli, args, yaml_text, message):
    if yaml_text is not None:
        (tmp_path / "c.yaml").write_text(yaml_text)
        args = [*args, "--config", tmp_path / "c.yaml"]
    code, _, err = run_cli("train", "--out", tmp_path / "run", *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()
