"""Paper-ready output: mean ± sd with n, the 95 % t interval, paired tests over seeds, a fixed colour per rule
and line style per schedule in every figure, PDF/SVG beside PNG, a LaTeX table; one seed prints no ±."""

from __future__ import annotations

import math

import pytest
from matplotlib.colors import to_hex
from scipy import stats

from locallearn.bench import plots
from locallearn.compare import compare, format_table, summarise
from locallearn.compare_report import write_outputs
from locallearn.experiment import RunSpec
from locallearn.report import format_ci, format_mean_sd, latex_table, mean_sd, paired_test
from locallearn.report.style import palette, style_for, style_for_rows


def test_mean_sd_and_the_t_interval_follow_the_textbook_formula():
    values = [0.81, 0.86]
    ms = mean_sd(values)
    assert (ms.mean, ms.n) == (pytest.approx(0.835), 2) and ms.sd == pytest.approx(math.sqrt(2 * 0.025**2))
    half = 12.7062047361747 * ms.sd / math.sqrt(2)  # t quantile 0.975 with 1 degree of freedom
    assert ms.ci95() == pytest.approx((0.835 - half, 0.835 + half))
    mean, sd = ms  # unpacks as the (mean, sd) pair it replaces
    assert (mean, sd) == (ms.mean, ms.sd)
    assert format_mean_sd(ms, scale=100, with_n=True) == "83.50 ± 3.54 (n=2)"
    one = mean_sd([0.8])
    assert format_mean_sd(one, scale=100) == "80.00" and format_ci(one) == "–" and one.ci95() is None
    assert mean_sd([None, None]) is None and format_mean_sd(None) == "–"


def test_paired_test_is_scipys_ttest_rel_over_the_common_seeds():
    a = {0: 0.91, 1: 0.93, 2: 0.90, 3: 0.95}
    b = {0: 0.90, 1: 0.90, 2: 0.89, 5: 0.5}  # seed 3 and 5 are not in both: left out
    test = paired_test(a, b)
    reference = stats.ttest_rel([0.91, 0.93, 0.90], [0.90, 0.90, 0.89])
    assert test["n"] == 3 and test["seeds"] == [0, 1, 2]
    assert (test["t"], test["p"]) == pytest.approx((reference.statistic, reference.pvalue))
    diffs = mean_sd([0.01, 0.03, 0.01])
    assert test["mean_difference"] == pytest.approx(diffs.mean) and test["ci95"] == pytest.approx(list(diffs.ci95()))
    assert paired_test({0: 0.9}, {0: 0.8}) is None


def test_colours_are_fixed_per_rule_and_never_repeat():
    rules = [f"rule{i:02d}" for i in range(25)]  # more than any cycle of 10 or 20
    style = style_for(rules, ["simultaneous"])
    colours = [to_hex(style.colour(r)) for r in rules]
    assert len(set(colours)) == 25 and len({to_hex(c) for c in palette(40)}) == 40
    small, large = style_for(["local"], []), style_for(["local", "predsim", "e2e", "sim"], [])
    assert small.colour("local") == large.colour("local") and large.colour("e2e") == "black"  # registered: fixed
    schedules = ["simultaneous", "sequential", "decoupled", "pipeline", "freezeout", "extra-a", "extra-b", "extra-c"]
    styles = [style_for([], schedules).linestyle(s) for s in schedules]
    assert len({str(s) for s in styles}) == len(schedules)
    with pytest.raises(ValueError, match="no line style for schedule 'other'"):
        style.linestyle("other")


@pytest.fixture(scope="module")
def records():
    base = RunSpec(data="synthetic", widths=(8,), epochs=1, lr=0.01, progress=False)
    return compare(base, rules=["e2e", "local", "local@sequential"], seeds=[0, 1])


def test_every_figure_of_a_comparison_uses_one_colour_per_rule_and_style_per_schedule(records):
    rows = summarise(records)
    style = style_for_rows(rows)
    figures = [plots.plot_accuracy_per_exit(rows, style=style), plots.plot_learning_curves(records, style=style)]
    for fig in figures:
        (ax,) = fig.axes
        handles, labels = ax.get_legend_handles_labels()
        assert len(labels) == 3
        for handle, label in zip(handles, labels):
            line = handle.lines[0] if hasattr(handle, "lines") else handle  # an errorbar's data line
            rule, _, schedule = label.partition("@")
            assert to_hex(line.get_color()) == to_hex(style.colour(rule))
            assert line.get_linestyle() == {"simultaneous": "-", "sequential": "--"}[schedule or "simultaneous"]


def test_outputs_have_vector_figures_a_latex_table_and_paired_tests(records, tmp_path):
    paths = {p.name for p in write_outputs(records, tmp_path / "r.json")}
    for stem in ("r_accuracy_per_exit", "r_accuracy_vs_time", "r_learning_curves"):
        assert {f"{stem}.png", f"{stem}.pdf", f"{stem}.svg"} <= paths
    assert (tmp_path / "r_learning_curves.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "r_learning_curves.svg").read_bytes()
    tex = (tmp_path / "r.tex").read_text()
    assert tex.count(r"\\") == 1 + 3 and r"\pm" in tex and "local@sequential" in tex and r"\toprule" in tex
    md = (tmp_path / "r.md").read_text()
    assert "## Paired over seeds" in md and "| local@simultaneous | e2e@simultaneous |" in md
    assert "| 2 |" in md.split("## Paired over seeds")[1]  # n = 2 seeds


def test_one_seed_prints_no_plus_minus(records):
    one_seed = [r for r in records if r["seed"] == 0]
    table = format_table(summarise(one_seed))
    assert "±" not in table and "| 1 |" in table
    assert "±" in format_table(summarise(records))
    assert r"\pm" not in latex_table(summarise(one_seed))
