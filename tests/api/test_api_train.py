"""ganforge.train(config) -> run directory, from a Config, a dict or a YAML file; and the README's
"Use a trained generator" example, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import ganforge
from ganforge.api import resolve_config
from ganforge.config import Config
from ganforge.errors import GanforgeError

from api_runs import TINY

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_api_example() -> str:
    """The first python block of the README's "Use a trained generator" section."""
    text = README.read_text()
    section = text[text.index("## Use a trained generator"):]
    section = section[: section.index("\n## ", 1)]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_api_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = readme_api_example()
    assert "ganforge.train(" in code and "ganforge.load(" in code
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    assert (tmp_path / "runs" / "api-demo" / "generator.safetensors").is_file()
    assert all((tmp_path / f"seed{s}.png").is_file() for s in (1, 5, 9))
    printed = capsys.readouterr().out.split()
    assert printed == ["8", "64", "None", "True"]  # the comment in the README says so


def test_train_from_a_dict_a_yaml_file_and_a_config(tmp_path):
    run = ganforge.train(TINY, tmp_path / "from-dict", report=True)
    assert run == tmp_path / "from-dict" and (run / "report.html").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == 2 and saved["model"]["g_width"] == 8 and saved["preset"] == "demo"  # digits' recipe
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(TINY))
    from_yaml = ganforge.train(path, tmp_path / "from-yaml", preset="lsgan", report=False)
    saved = yaml.safe_load((from_yaml / "config.yaml").read_text())
    assert saved["objective"]["name"] == "lsgan" and saved["preset"] == "lsgan" and not (from_yaml / "report.html").exists()
    cfg = resolve_config(TINY)
    cfg.train.steps = 1
    from_cfg = ganforge.train(cfg, tmp_path / "from-config", report=False)
    assert yaml.safe_load((from_cfg / "config.yaml").read_text())["train"]["steps"] == 1
    assert cfg.train.steps == 1 and ganforge.load(from_cfg).step == 1


def test_train_refuses_bad_configs_and_existing_runs_in_one_line(tmp_path):
    with pytest.raises(GanforgeError, match="train.stepz"):
        ganforge.train({"train": {"stepz": 3}}, tmp_path / "a")
    with pytest.raises(GanforgeError, match="config file not found"):
        ganforge.train(tmp_path / "missing.yaml", tmp_path / "b")
    with pytest.raises(GanforgeError, match="a Config, a mapping"):
        ganforge.train(42, tmp_path / "c")
    with pytest.raises(GanforgeError, match="preset="):
        ganforge.train(Config(), tmp_path / "d", preset="demo")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x").write_text("taken")
    with pytest.raises(GanforgeError, match="already exists"):
        ganforge.train(TINY, tmp_path / "e")
