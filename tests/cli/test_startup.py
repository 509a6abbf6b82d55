"""Start-up: the parser and every command's help load no model code, heavy library or optional extra."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scenesense.cli import main
from scenesense.cli.listing import KINDS, registries

HEAVY = ("torch", "sklearn", "pandas", "h5py", "scipy", "matplotlib", "tqdm", "transformers",
         "sentence_transformers", "opensmile", "cv2", "av", "lightning", "faster_whisper")

_PROBE = f"""
import argparse, json, sys
from scenesense.cli import build_parser
parser = build_parser()
parser.format_help()
for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
        for sub in action.choices.values():
            sub.format_help()
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
"""


def test_help_of_every_command_loads_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_lazy_packages_give_their_names_on_first_use():
    code = ("import sys, scenesense.predict, scenesense.analyze; before = 'torch' in sys.modules; "
            "from scenesense.predict import Predictor; from scenesense.analyze import analyze_media; "
            "print(before, 'torch' in sys.modules, Predictor.__module__, analyze_media.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "scenesense.predict.predictor", "scenesense.analyze.pipeline"]


def test_every_listed_kind_has_its_registry():
    assert tuple(registries()) == KINDS


def test_an_unknown_recipe_is_a_usage_error_naming_the_recipes(capsys):
    assert main(["train", "--recipe", "nope", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown recipe 'nope'" in err and "residual_cross_attention" in err


LAZY_PACKAGES = ["scenesense.analyze", "scenesense.data", "scenesense.evaluation", "scenesense.predict",
                 "scenesense.runs", "scenesense.training"]


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_an_unknown_name_of_a_lazy_package_is_an_attribute_error(package):
    module = __import__(package, fromlist=["x"])
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        module.nope  # noqa: B018
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_a_lazy_package_exports_exactly_its_listed_names_from_their_modules(package):
    module = __import__(package, fromlist=["x"])
    assert sorted(module.__all__) == sorted(module._LAZY)  # the name -> module map lists every export once
    for name, defining in module._LAZY.items():
        source = __import__(defining, fromlist=["x"])  # first: a loaded submodule must not hide its namesake
        assert getattr(module, name) is getattr(source, name), name
