"""A comparison as a LaTeX table (booktabs): one row per configuration, test accuracy in percent as
mean ± standard deviation over the n seeds (no ± for one seed) and its 95 % t interval.

Example:
    >>> from locallearn.report.stats import mean_sd
    >>> rows = [{"label": "local@simultaneous", "model_label": "mlp 256", "data": "digits", "epochs": 5, "seeds": 3,
    ...          "final": mean_sd([0.95, 0.96, 0.94]), "best": mean_sd([0.95, 0.96, 0.95])}]
    >>> print(latex_table(rows, caption="Digits, 5 epochs."))
    \\begin{table}[t]
    \\centering
    \\caption{Digits, 5 epochs.}
    \\begin{tabular}{lllrrlll}
    \\toprule
    configuration & model & data & epochs & $n$ & last exit (\\%) & 95\\,\\% CI & best exit (\\%) \\\\
    \\midrule
    local@simultaneous & mlp 256 & digits & 5 & 3 & $95.00 \\pm 1.00$ & $[92.52, 97.48]$ & $95.33 \\pm 0.58$ \\\\
    \\bottomrule
    \\end{tabular}
    \\end{table}
"""

from __future__ import annotations

from typing import Any, Sequence

from locallearn.report.stats import format_ci, format_mean_sd

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: Any) -> str:
    """``text`` with LaTeX's special characters escaped.

    Example:
        >>> escape("predsim:beta=0.99 & 50%_x")
        'predsim:beta=0.99 \\\\& 50\\\\%\\\\_x'
    """
    return "".join(_SPECIAL.get(c, c) for c in str(text))


def _math(text: str) -> str:
    return "--" if text == "–" else "$" + text.replace("±", r"\pm") + "$"


def latex_table(rows: Sequence[dict[str, Any]], *, caption: str = "", label: str = "") -> str:
    """The rows of ``locallearn.compare.summarise`` (``final``/``best`` as ``MeanSD`` of accuracies) as a table."""
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [r"\begin{tabular}{lllrrlll}", r"\toprule",
              r"configuration & model & data & epochs & $n$ & last exit (\%) & 95\,\% CI & best exit (\%) \\", r"\midrule"]
    for r in rows:
        cells = [escape(r["label"]), escape(r["model_label"]), escape(r["data"]), str(r["epochs"]), str(r["seeds"]),
                 _math(format_mean_sd(r["final"], scale=100)), _math(format_ci(r["final"], scale=100)),
                 _math(format_mean_sd(r["best"], scale=100))]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)
