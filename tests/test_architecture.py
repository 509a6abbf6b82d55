"""The architecture is checked, not described: the import-linter contracts in ``pyproject.toml``
(layers, extraction apart from datasets, no import cycle inside any package) hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "lint-imports not found: install the dev extra (pip install -e '.[dev]')"
    return [exe]


def test_the_import_contracts_hold():
    proc = subprocess.run([*_lint_imports(), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The same contracts, against a copy of the package where a low layer imports a high one."""
    copy = tmp_path / "src"
    shutil.copytree(REPO / "src" / "scenesense", copy / "scenesense")
    low = copy / "scenesense" / "layers" / "mlp.py"
    low.write_text(low.read_text() + "\nfrom scenesense import api as _api  # a layer importing the top\n")
    proc = subprocess.run([*_lint_imports(), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                          env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)})
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "BROKEN" in proc.stdout and "scenesense.layers.mlp -> scenesense.api" in proc.stdout
