"""Paper-ready output of a comparison, as pure functions: records or summary rows in, text and figures out.

- ``stats``: mean ± standard deviation with n, the 95 % t interval, a paired t-test over seeds;
- ``style``: a fixed colour per rule and line style per schedule, the same in every figure;
- ``latex``: a LaTeX (booktabs) table of a comparison;
- ``figures``: a figure saved as PNG, PDF and SVG side by side.

Example:
    >>> from locallearn.report import format_mean_sd, mean_sd
    >>> format_mean_sd(mean_sd([0.871, 0.875, 0.869]), scale=100), format_mean_sd(mean_sd([0.871]), scale=100)
    ('87.17 ± 0.31', '87.10')
"""

from locallearn.report.figures import save_figure
from locallearn.report.latex import latex_table
from locallearn.report.stats import MeanSD, format_ci, format_mean_sd, mean_sd, paired_test
from locallearn.report.style import Style, style_for

__all__ = ["MeanSD", "Style", "format_ci", "format_mean_sd", "latex_table", "mean_sd", "paired_test", "save_figure", "style_for"]
