"""The `paper-3ep` suite's seeds beside the authors' train.py at 3 epochs (issue 23): mean +- sd, difference,
a t-test's p-value and a verdict computed from the numbers.

The authors' numbers are those of issue 23: anokland/local-loss ``train.py`` run for 3 epochs on the same torch,
Fashion-MNIST MLP 3x1024 without BatchNorm (``--no-batch-norm``), dropout 0.025, Adam 5e-4, batch 128, crop + flip,
all 60,000 training images, last epoch's test accuracy: backprop 84.49 +- 0.93 % over 3 seeds (sd taken as the
sample standard deviation), predsim 84.28 % (1 seed). Ours: the finished cells of the suite's constant-learning-rate
model (``mlp-3x1024-lr-constant``: their milestones lie past epoch 3, so their 3-epoch run never decays), last exit,
only cells whose key is the current suite's, or for predsim also the suite's earlier recipe with ``nn.Linear``'s head
init, on a row of its own (cells of older code are listed, not counted).

Test: Welch's t-test (unequal variances, Welch-Satterthwaite degrees of freedom) where the authors have 2 or more
seeds; with one seed of theirs, whether it could be one more draw of our seeds' spread (``t = d / (s sqrt(1 + 1/n))``,
``n - 1`` degrees of freedom: their own seed noise is unknown, ours stands in for it).
Verdict: "within 0.5 point" when |difference| <= 0.5; else "seed noise" when p > 0.05; else "a real gap".

Command (writes ``comparison.md`` and ``comparison.json`` into the results folder):

    python benchmarks/authors_3ep.py --results benchmarks/results/paper-3ep

Example:
    >>> row = compare([83.7, 84.0, 84.3], AUTHORS["e2e"])
    >>> row["difference"], row["verdict"].split(":")[0]
    (-0.49, 'within 0.5 point')
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from scipy import stats

from locallearn.io import write_json, write_text

SUITE, MODEL_LABEL = "paper-3ep", "mlp-3x1024-lr-constant"
#: issue 23: the authors' train.py, 3 epochs, the recipe without BatchNorm (test accuracy in %, one value per seed
#: where known; otherwise mean, sd and the number of seeds)
AUTHORS: dict[str, dict[str, Any]] = {
    "e2e": {"label": "backprop (--backprop)", "mean": 84.49, "sd": 0.93, "n": 3},
    "predsim": {"label": "predsim (--nonlin leakyrelu)", "mean": 84.28, "sd": None, "n": 1},
}
WITHIN, LEVEL = 0.5, 0.05


def welch(mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int) -> tuple[float, float, float]:
    """Welch's two-sample t-test from summary statistics: ``(t, degrees of freedom, two-sided p)``.

    Example:
        >>> t, df, p = welch(1.0, 1.0, 3, 0.0, 1.0, 3)
        >>> round(t, 4), round(df, 1), round(p, 3)
        (1.2247, 4.0, 0.288)
    """
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    t = (mean_a - mean_b) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return t, df, float(2 * stats.t.sf(abs(t), df))


def compare(ours: Sequence[float], authors: dict[str, Any]) -> dict[str, Any]:
    """Our per-seed accuracies (%) against the authors' entry: the statistics and the verdict sentence."""
    n = len(ours)
    mean = statistics.fmean(ours) if n else math.nan
    sd = statistics.stdev(ours) if n > 1 else math.nan
    difference = round(mean - authors["mean"], 2)
    if n < 2:
        test, t, df, p = "none (fewer than 2 of our seeds)", math.nan, math.nan, math.nan
    elif authors["n"] >= 2:
        test = "Welch two-sample t-test"
        t, df, p = welch(mean, sd, n, authors["mean"], authors["sd"], authors["n"])
    else:  # their one seed as one more draw with our spread: t = d / (s sqrt(1 + 1/n)), n - 1 df
        test = "their single seed as one more draw of our spread"
        t, df = (mean - authors["mean"]) / (sd * math.sqrt(1 + 1 / n)), n - 1
        p = float(2 * stats.t.sf(abs(t), df))
    seeds = f"{n} of our seed{'s' if n != 1 else ''}"
    if not n:
        verdict = "no finished seed yet"
    elif abs(difference) <= WITHIN:
        verdict = f"within {WITHIN} point: {difference:+.2f} pt ({seeds})"
    elif not math.isnan(p) and p > LEVEL:
        verdict = f"seed noise: {difference:+.2f} pt, p = {p:.2f} > {LEVEL} ({test})"
    elif math.isnan(p):
        verdict = f"undecided: {difference:+.2f} pt with too few seeds to test"
    else:
        verdict = f"a real gap: {difference:+.2f} pt, p = {p:.3f} <= {LEVEL} ({test})"
    return {"n": n, "mean": mean, "sd": sd, "authors": authors, "difference": difference, "test": test,
            "t": t, "df": df, "p": p, "verdict": verdict}


def recipes(cells: Sequence[Any]) -> dict[str, tuple[str, str]]:
    """Cell key -> (rule, recipe) for the suite's constant-LR cells: the current recipe, and for a rule whose
    heads start at zero (``head_kw={"zero_weight": True}``, as train.py) the same cell with ``nn.Linear``'s
    init (the suite's recipe before that change), so its seeds are shown apart, not mixed."""
    out = {}
    for cell in cells:
        if cell.model_label != MODEL_LABEL or cell.spec.rule not in AUTHORS:
            continue
        zero = cell.spec.head_kw.get("zero_weight", False)
        out[cell.key] = (cell.spec.rule, "zero-weight heads, as train.py" if zero else "as train.py")
        if zero:
            plain = dataclasses.replace(cell, spec=dataclasses.replace(cell.spec, head_kw={}))
            out[plain.key] = (cell.spec.rule, "nn.Linear head init (the suite before the zero-weight heads)")
    return out


def our_seeds(records: list[dict], known: dict[str, tuple[str, str]]) -> tuple[dict[tuple[str, str], list[tuple[int, float]]], list[str]]:
    """Last-exit test accuracy (%) per (rule, recipe) and seed of the constant-LR cells whose key is known; the
    other finished cells of that model, described, as not counted."""
    counted: dict[tuple[str, str], list[tuple[int, float]]] = {variant: [] for variant in dict.fromkeys(known.values())}
    left_out = []
    for record in records:
        if record.get("model_label") != MODEL_LABEL or record.get("rule") not in AUTHORS:
            continue
        accuracy = 100 * record["test_accuracy"][-1]
        if record["key"] in known:
            counted[known[record["key"]]].append((record["seed"], accuracy))
        else:
            left_out.append(f"{record['rule']} seed {record['seed']}: {accuracy:.2f} % (a cell of an older recipe or code)")
    return {variant: sorted(rows) for variant, rows in counted.items()}, left_out


def _fmt(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def report(rows: dict[tuple[str, str], dict[str, Any]], seeds: dict[tuple[str, str], list[tuple[int, float]]],
           left_out: list[str], command: str) -> str:
    lines = [
        "# `paper-3ep` against the authors' train.py (3 epochs, no BatchNorm)",
        "",
        f"Command: `{command}` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}), from the finished cells"
        f" of `{MODEL_LABEL}` (constant learning rate, as the authors' 3-epoch run) in `cells.json`; last exit, test accuracy.",
        "",
        "| rule | recipe | ours: mean ± sd (seeds) | authors | difference (pt) | test | p | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (rule, recipe), row in rows.items():
        a = row["authors"]
        theirs = f"{a['mean']:.2f}" + (f" ± {a['sd']:.2f}" if a["sd"] is not None else "") + f" ({a['n']} seed{'s' if a['n'] > 1 else ''})"
        per_seed = ", ".join(f"{acc:.2f}" for _, acc in seeds[rule, recipe])
        lines.append(f"| {rule} | {recipe} | {_fmt(row['mean'])} ± {_fmt(row['sd'])} ({row['n']}: {per_seed or 'none'}) | {theirs} | "
                     f"{_fmt(row['difference'])} | {row['test']} | {_fmt(row['p'], 3)} | {row['verdict']} |")
    lines += ["", "Verdict rule: within 0.5 point of the authors' mean; otherwise seed noise when the test's p > 0.05;"
              " otherwise a real gap. The authors' numbers: issue 23 (their train.py on the same torch)."]
    if left_out:
        lines += ["", "Finished cells of this model not counted (their key is none of the recipes above):", ""]
        lines += [f"- {item}" for item in left_out]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=f"benchmarks/results/{SUITE}", help="the suite's results folder (cells.json)")
    args = parser.parse_args(argv)
    from locallearn.bench.suites import SUITES
    from locallearn.store import read_store

    folder = Path(args.results)
    records = read_store(folder).records
    seeds, left_out = our_seeds(records, recipes(SUITES[SUITE].cells()))
    rows = {variant: compare([acc for _, acc in rows], AUTHORS[variant[0]]) for variant, rows in seeds.items()}
    command = "python benchmarks/authors_3ep.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    text = report(rows, seeds, left_out, command)
    write_text(folder / "comparison.md", text)
    write_json(folder / "comparison.json", {"command": command, "not_counted": left_out, "rows": [
        {"rule": rule, "recipe": recipe, "seeds": seeds[rule, recipe], **row} for (rule, recipe), row in rows.items()]})
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
