"""The experiment report's modules import downwards only: types, then tables, then renderings, then the report."""

from __future__ import annotations

import subprocess
import sys


def test_tables_and_renderings_never_import_the_report():
    code = ("import sys, scenesense.evaluation.report_html, scenesense.evaluation.report_tables; "
            "print(sorted(m for m in sys.modules if m.startswith('scenesense.evaluation.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "scenesense.evaluation.report_types" in loaded
    assert "scenesense.evaluation.experiment_report" not in loaded
