"""Paired comparisons over seeds: each configuration against a reference trained on the same seeds.

A configuration's runs and the reference's share the seed (the same data order and, for the same
model, the same initialisation), so their difference is tested with a paired t-test
(``locallearn.report.stats.paired_test``) rather than two independent samples.

Example:
    >>> runs = [{"config": c, "group": "digits", "seed": s, "value": v}
    ...         for c, vs in (("e2e", (0.95, 0.96, 0.94)), ("local", (0.93, 0.95, 0.92))) for s, v in enumerate(vs)]
    >>> (row,) = paired_against_reference(runs, reference=lambda config: config == "e2e")
    >>> row["config"], row["reference"], round(100 * row["mean_difference"], 2), row["n"]
    ('local', 'e2e', -1.67, 3)
    >>> print(markdown_table([row], what="last-exit test accuracy"))
    | configuration | against | difference in last-exit test accuracy (points) | 95 % CI | t | p (two-sided) | n |
    |---|---|---|---|---|---|---|
    | local | e2e | -1.67 | [-3.10, -0.23] | -5.00 | 0.038 | 3 |
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from locallearn.report.stats import paired_test


def paired_against_reference(runs: Sequence[dict[str, Any]], *, reference: Callable[[Any], bool]) -> list[dict[str, Any]]:
    """``runs``: one entry per run, ``{"config", "group", "seed", "value"}`` (configurations are compared only
    within their group, e.g. one data set and model). In each group the first configuration for which
    ``reference(config)`` holds (else the group's first) is the reference; every other configuration with
    two or more seeds in common with it gets one row: ``paired_test`` of its values against the reference's."""
    groups: dict[Any, dict[Any, dict[Any, float]]] = {}
    for run in runs:
        groups.setdefault(run["group"], {}).setdefault(run["config"], {})[run["seed"]] = run["value"]
    rows = []
    for group, configs in groups.items():
        base = next((c for c in configs if reference(c)), next(iter(configs)))
        for config, values in configs.items():
            if config == base:
                continue
            test = paired_test(values, configs[base])
            if test is not None:
                rows.append({"group": group, "config": config, "reference": base, **test})
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], *, what: str, scale: float = 100.0, unit: str = "points") -> str:
    """The rows of ``paired_against_reference`` as a Markdown table (differences times ``scale``)."""
    lines = [f"| configuration | against | difference in {what} ({unit}) | 95 % CI | t | p (two-sided) | n |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = (scale * v for v in r["ci95"])
        lines.append(f"| {r['config']} | {r['reference']} | {scale * r['mean_difference']:.2f} | [{low:.2f}, {high:.2f}] "
                     f"| {r['t']:.2f} | {r['p']:.2g} | {r['n']} |")
    return "\n".join(lines)
