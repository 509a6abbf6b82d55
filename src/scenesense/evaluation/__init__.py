"""Evaluation: pure metrics, report rendering and plots (matplotlib is imported only when plotting).

The names below load on first use, so a module that needs only the report helpers (such as
``scenesense predict``'s table) does not import scikit-learn, which the metrics use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scenesense.utils.lazy import lazy_exports

if TYPE_CHECKING:  # for static tools; at run time each name loads on first use (see _LAZY)
    from scenesense.evaluation.functional import METRICS as METRICS
    from scenesense.evaluation.functional import MetricInfo as MetricInfo
    from scenesense.evaluation.functional import classification_metrics as classification_metrics
    from scenesense.evaluation.functional import confusion_matrix as confusion_matrix
    from scenesense.evaluation.functional import higher_is_better as higher_is_better
    from scenesense.evaluation.plots import plot_confusion_matrix as plot_confusion_matrix
    from scenesense.evaluation.plots import plot_loss_curves as plot_loss_curves
    from scenesense.evaluation.report import format_metrics_table as format_metrics_table
    from scenesense.evaluation.report import markdown_table as markdown_table
    from scenesense.evaluation.report import metrics_to_markdown as metrics_to_markdown
    from scenesense.evaluation.report import write_predictions_csv as write_predictions_csv

_LAZY = {
    "METRICS": "scenesense.evaluation.functional",
    "MetricInfo": "scenesense.evaluation.functional",
    "classification_metrics": "scenesense.evaluation.functional",
    "confusion_matrix": "scenesense.evaluation.functional",
    "higher_is_better": "scenesense.evaluation.functional",
    "plot_confusion_matrix": "scenesense.evaluation.plots",
    "plot_loss_curves": "scenesense.evaluation.plots",
    "format_metrics_table": "scenesense.evaluation.report",
    "markdown_table": "scenesense.evaluation.report",
    "metrics_to_markdown": "scenesense.evaluation.report",
    "write_predictions_csv": "scenesense.evaluation.report",
}

__all__ = ["METRICS", "MetricInfo", "classification_metrics", "confusion_matrix", "format_metrics_table",
           "higher_is_better", "markdown_table", "metrics_to_markdown", "plot_confusion_matrix",
           "plot_loss_curves", "write_predictions_csv"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
