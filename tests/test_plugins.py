"""Plugins: modules named by entry points (group ``scenesense.plugins``) or ``SCENESENSE_PLUGINS``
are imported by the command line and by experiment workers, so their components are usable there."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scenesense import experiment
from scenesense.registry import PLUGINS_ENV, PluginError, load_plugins

REPO = Path(__file__).resolve().parents[1]

PLUGIN = textwrap.dedent('''
    from scenesense.fusions import FUSIONS
    from scenesense.fusions.concat import ConcatFusion

    @FUSIONS.register("plugin_concat")
    class PluginConcat(ConcatFusion):
        """Concatenation, registered by a plugin module."""
''')


def _child(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scenesense", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=REPO, timeout=300, check=False)


def test_a_module_named_in_the_environment_registers_its_components_for_the_cli(tmp_path):
    (tmp_path / "lab_fusions.py").write_text(PLUGIN)
    env = {"PYTHONPATH": str(tmp_path), PLUGINS_ENV: "lab_fusions"}
    listed = _child(["list", "fusions"], env)
    assert listed.returncode == 0, listed.stderr
    assert "plugin_concat" in listed.stdout
    dry = _child(["train", "--fusion", "plugin_concat", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    without = _child(["train", "--fusion", "plugin_concat", "--dry-run"], {"PYTHONPATH": str(tmp_path)})
    assert without.returncode == 2 and "unknown fusion 'plugin_concat'" in without.stderr


def test_a_plugin_that_fails_to_import_is_one_line_naming_it(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    for modules, culprit in (("broken_plugin", "broken_plugin"), ("json, no_such_plugin", "no_such_plugin")):
        proc = _child(["list"], {"PYTHONPATH": str(tmp_path), PLUGINS_ENV: modules})
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"scenesense: error: plugin module '{culprit}' "
                                                       f"({PLUGINS_ENV}) failed to import: "), proc.stderr


def test_entry_points_of_installed_packages_are_imported(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "lab_plugin_ep.py").parent.mkdir()
    (site / "lab_plugin_ep.py").write_text("LOADED = True\n")
    dist = site / "lab_plugin_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-plugin-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[scenesense.plugins]\nlab = lab_plugin_ep\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "lab_plugin_ep", raising=False)
    assert load_plugins() == ["lab_plugin_ep"]
    assert sys.modules["lab_plugin_ep"].LOADED
    monkeypatch.setenv(PLUGINS_ENV, "lab_plugin_ep, json")
    assert load_plugins() == ["lab_plugin_ep", "json"]  # each module once
    monkeypatch.setenv(PLUGINS_ENV, "no_such_module_here")
    with pytest.raises(PluginError, match="'no_such_module_here' .* ModuleNotFoundError"):
        load_plugins()


def test_experiment_workers_load_the_plugins(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(experiment, "load_plugins", lambda: calls.append(1) or [])
    monkeypatch.setattr(experiment.api, "train", lambda cfg, run_dir: None)
    config = {"data": {"dataset": "synthetic"}}
    assert experiment.train_cell(config, str(tmp_path / "cell"), threads=1) == str(tmp_path / "cell")
    assert calls == [1]
