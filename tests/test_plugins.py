"""Outside registrations: a rule in a module of its own, outside the package, named through ``--plugin``
(train, compare, bench, torchrun, the pipeline's spawned workers) and through an installed package's
entry points (built here as a dist-info folder on a temporary path: no network, no pip)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import locallearn
from locallearn import io, plugins
from locallearn._registry import Registry
from locallearn.plugin_option import split_plugins

REPO = Path(locallearn.__file__).resolve().parent.parent
SMALL = ["--data", "synthetic", "--widths", "16,16", "--epochs", "1", "--no-progress"]

OUTSIDE_RULE = '''
"""A rule of one's own: each stage's head cross-entropy times a constant (a test plugin)."""
from torch.nn import functional as F

from locallearn._params import check_number
from locallearn.rules import RULES, LocalRule


@RULES.register("outside-local")
class OutsideLocal(LocalRule):
    detach_inputs = True

    def __init__(self, *, scale: float = 0.5) -> None:
        self.scale = check_number(scale, name="scale", owner="OutsideLocal", low=0.0, low_inclusive=False)

    def stage_loss(self, out, y):
        return self.scale * F.cross_entropy(out.logits, y)
'''


@pytest.fixture
def outside_rule(tmp_path) -> Path:
    path = tmp_path / "plugin_src" / "outside_rule.py"
    path.parent.mkdir()
    path.write_text(OUTSIDE_RULE)
    return path


def _installed_package(root: Path) -> Path:
    """A package ``ep_pkg`` 'installed' in ``root``: its code and a dist-info with entry_points.txt."""
    (root / "ep_pkg").mkdir(parents=True)
    (root / "ep_pkg" / "__init__.py").write_text(textwrap.dedent('''
        """Outside rule and dataset, declared through entry points (a test package)."""
        from torch.nn import functional as F

        from locallearn.data import Dataset, load
        from locallearn.rules import LocalRule


        class HalfLocal(LocalRule):
            """Half the cross-entropy of each stage's head."""

            detach_inputs = True

            def stage_loss(self, out, y):
                return 0.5 * F.cross_entropy(out.logits, y)


        def load_blobs(*, split_seed=0, data_dir=None):
            """The synthetic blobs under another name."""
            ds = load("synthetic", split_seed=split_seed)
            return Dataset("ep-blobs", ds.x_train, ds.y_train, ds.x_val, ds.y_val, ds.x_test, ds.y_test, num_classes=4)


        def broken():
            raise AssertionError("never called")
    '''))
    info = root / "ep_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[locallearn.rules]\nep-local = ep_pkg:HalfLocal\n\n"
        "[locallearn.datasets]\nep-blobs = ep_pkg:load_blobs\n\n"
        "[locallearn.tests-widgets]\nplain = ep_pkg:HalfLocal\nmissing = ep_pkg_absent.mod:Thing\n"
    )
    return root


def _run(args: list[str], cwd: Path, *, pythonpath: list[Path] = (), launcher: list[str] | None = None,
         timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *map(str, pythonpath)])}
    command = (launcher or [sys.executable, "-m", "locallearn.cli"]) + args
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _trained_rule(results: Path) -> tuple[dict, list]:
    record = io.read_json(results)
    return record["config"], record["history"]


@pytest.mark.slow
def test_plugin_rule_runs_under_train_and_is_recorded(outside_rule, tmp_path):
    _run(["train", *SMALL, "--plugin", str(outside_rule), "--rule", "outside-local", "--rule-opt", "scale=0.25",
          "--out", "r.json", "--checkpoint", "run.pt"], tmp_path)
    config, history = _trained_rule(tmp_path / "r.json")
    assert config["rule"] == {"name": "outside-local", "scale": 0.25}
    assert config["plugins"] == [str(outside_rule)]
    assert len(history) == 1 and len(history[0]["train_loss"]) == 2
    # another command on the run: the exits of its checkpoint, whose rule is the plugin's
    done = _run(["exits", "--plugin", str(outside_rule), "--checkpoint", "run.pt", "--out", "exits"], tmp_path)
    assert "runner agrees with offline policy: True" in done.stdout
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "locallearn.cli", "exits", "--checkpoint", "run.pt", "--out", "x"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and f"had loaded plugins this command has not: {outside_rule}; give them with --plugin" in done.stderr


@pytest.mark.slow
def test_plugin_by_module_name_and_without_it_the_error_names_the_known_rules(outside_rule, tmp_path):
    _run(["train", *SMALL, "--plugin", "outside_rule", "--rule", "outside-local", "--out", "r.json"], tmp_path,
         pythonpath=[outside_rule.parent])
    assert _trained_rule(tmp_path / "r.json")[0]["rule"]["name"] == "outside-local"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "locallearn.cli", "train", *SMALL, "--rule", "outside-local"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and "Unknown rule 'outside-local'. Known rules: " in done.stderr
    done = subprocess.run([sys.executable, "-m", "locallearn.cli", "train", "--plugin", "no_such_plugin_module"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("locallearn: error: Plugin module 'no_such_plugin_module' not found")


@pytest.mark.slow
def test_plugin_rule_runs_under_compare(outside_rule, tmp_path):
    _run(["compare", *SMALL, "--plugin", str(outside_rule), "--rules", "local,outside-local:scale=2.0", "--seeds", "1",
          "--out", "c.json"], tmp_path)
    records = io.read_json(tmp_path / "c.json")
    rules = [r["config"]["rule"] for r in records["records"]]
    assert {"name": "outside-local", "scale": 2.0} in rules and any(r["name"] == "local" for r in rules)


@pytest.mark.slow
def test_plugin_rule_runs_under_torchrun(outside_rule, tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "locallearn.cli"]
    done = _run(["train", *SMALL, "--plugin", str(outside_rule), "--rule", "outside-local", "--out", "r.json"], tmp_path,
                launcher=launcher)
    assert done.stdout.count("results written to") == 1
    config, _ = _trained_rule(tmp_path / "r.json")
    assert config["rule"]["name"] == "outside-local" and config["data_parallel"]["world_size"] == 2


@pytest.mark.slow
def test_plugin_rule_runs_in_spawned_pipeline_workers(outside_rule, tmp_path):
    """Spawned workers unpickle the rule: they must load the plugin file first (it is not importable by name)."""
    _run(["train", *SMALL, "--plugin", str(outside_rule), "--rule", "outside-local", "--schedule", "pipeline",
          "--workers", "2", "--schedule-opt", "start_method=spawn", "--out", "r.json"], tmp_path)
    config, history = _trained_rule(tmp_path / "r.json")
    assert config["rule"]["name"] == "outside-local" and config["schedule"]["start_method"] == "spawn"
    assert history[-1]["worker_stages"] == [[0], [1]]


@pytest.mark.slow
def test_plugin_rule_runs_under_bench(outside_rule, tmp_path):
    """The quick suite runs every registered rule: the plugin's joins it."""
    _run(["bench", "quick", "--plugin", str(outside_rule), "--seeds", "1", "--epochs", "1", "--no-progress",
          "--out", str(tmp_path / "quick")], tmp_path, timeout=600)
    records = io.read_json(tmp_path / "quick" / "cells.json")["records"]
    assert any('"rule": "outside-local"' in r["key"] for r in records)


@pytest.mark.slow
def test_entry_points_of_an_installed_package(tmp_path):
    site = _installed_package(tmp_path / "site")
    done = _run(["rules"], tmp_path, pythonpath=[site])
    assert "ep-local" in done.stdout
    _run(["train", "--data", "ep-blobs", "--widths", "16,16", "--epochs", "1", "--no-progress", "--rule", "ep-local",
          "--out", "r.json"], tmp_path, pythonpath=[site])
    config, history = _trained_rule(tmp_path / "r.json")
    assert config["rule"]["name"] == "ep-local" and config["data"] == "ep-blobs" and history
    assert any("ep-local = ep_pkg:HalfLocal (group locallearn.rules, distribution ep-pkg 0.1)" in p for p in config["plugins"])


def test_registry_loads_its_group_once_and_reports_a_broken_entry_point(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_installed_package(tmp_path / "site")))
    widgets = Registry("widget", group="locallearn.tests-widgets")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert widgets.names() == ["plain"]
        assert widgets.names() == ["plain"]  # loaded once: one warning
    assert [str(w.message).split(":")[0] for w in caught] == ["The widget plugin 'missing' failed to load"]
    assert widgets.get("plain").__name__ == "HalfLocal" and widgets.get("plain").name == "plain"
    with pytest.raises(ValueError, match="The widget 'missing' is a plugin that failed to load: entry point missing = "
                       r"ep_pkg_absent.mod:Thing \(group locallearn.tests-widgets, distribution ep-pkg 0.1\): ModuleNotFoundError"):
        widgets.get("missing")
    assert Registry("widget").names() == []  # no group: no entry points


def test_load_plugin_refuses_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="Plugin file .*absent.py' does not exist"):
        plugins.load_plugin(str(tmp_path / "absent.py"))
    clash = tmp_path / "json.py"
    clash.write_text("X = 1\n")
    with pytest.raises(ValueError, match="would be imported as module 'json', which is already the module of"):
        plugins.load_plugin(str(clash))
    with pytest.raises(ValueError, match="A plugin is a module name or the path of a .py file; got ''"):
        plugins.load_plugin("")
    with pytest.raises(ValueError, match="--plugin needs a module name or the path of a .py file after it"):
        split_plugins(["train", "--plugin"])
    assert split_plugins(["bench", "quick", "--seeds", "1", "--plugin=a.py"]) == (["a.py"], ["bench", "quick", "--seeds", "1"])
