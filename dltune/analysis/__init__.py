"""Analysis of a study: hyperparameter importance, plot records and their drawings, the report.

Every plot is first computed into a :class:`PlotRecord` (plain, JSON-ready data), then drawn
with plotly (interactive HTML) or matplotlib (PNG); the report, the dashboard and notebooks
share the computation.
"""

from __future__ import annotations

from dltune.analysis._importance import IMPORTANCE_METHODS
from dltune.analysis._importance import NO_IMPORTANCE
from dltune.analysis._importance import param_importances
from dltune.analysis._importance_result import ParamImportances
from dltune.analysis._plots_params import importance_chart
from dltune.analysis._plots_params import parallel_coordinates
from dltune.analysis._plots_params import param_contour
from dltune.analysis._plots_params import param_slices
from dltune.analysis._plots_search import learning_curves
from dltune.analysis._plots_search import optimization_history
from dltune.analysis._plots_search import optimizer_comparison
from dltune.analysis._plots_search import pareto_front
from dltune.analysis._plots_search import timeline
from dltune.analysis._record import PlotRecord
from dltune.analysis._render import plot_records
from dltune.analysis._render import save_png
from dltune.analysis._render import to_matplotlib
from dltune.analysis._render import to_plotly
from dltune.analysis._render import to_plotly_dict
from dltune.analysis._report import build_report
from dltune.analysis._report import write_report
from dltune.analysis._table import rows_to_csv
from dltune.analysis._table import trial_row

__all__ = [
    "IMPORTANCE_METHODS",
    "NO_IMPORTANCE",
    "ParamImportances",
    "PlotRecord",
    "build_report",
    "importance_chart",
    "learning_curves",
    "optimization_history",
    "optimizer_comparison",
    "parallel_coordinates",
    "param_contour",
    "param_importances",
    "param_slices",
    "pareto_front",
    "plot_records",
    "rows_to_csv",
    "save_png",
    "timeline",
    "to_matplotlib",
    "to_plotly",
    "to_plotly_dict",
    "trial_row",
    "write_report",
]
