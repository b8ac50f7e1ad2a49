"""The READMEs' numbers, generated from the committed results (``python -m benchmarks readme``).

A generated block sits between ``<!-- readme:NAME -->`` and ``<!-- /readme:NAME -->`` in README.md or
benchmarks/README.md; ``update`` rewrites every block from the results under ``benchmarks/results``
and leaves the prose around it alone; ``stale`` names the blocks whose text differs from what the
results give (the test suite fails on any).

Example:
    >>> text = "intro\\n<!-- readme:x -->\\nold\\n<!-- /readme:x -->\\nmore"
    >>> print(replace_blocks(text, {"x": lambda: "new"}))
    intro
    <!-- readme:x -->
    new
    <!-- /readme:x -->
    more
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from locallearn import io
from locallearn.bench.anchors import anchors_for
from locallearn.bench.tables import MIB, schedule_totals, summary_rows
from locallearn.compare import format_table, summarise
from locallearn.report.stats import format_mean_sd, mean_sd
from locallearn.bench.results_dir import REPOSITORY
from locallearn.store import FOLDER_STORE, read_store

ROOT = REPOSITORY
RESULTS = Path("benchmarks") / "results"
READMES = ("README.md", "benchmarks/README.md")
_BLOCK = re.compile(r"(<!-- readme:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /readme:(?P=name) -->)", re.S)


def _cells(suite: str, root: Path) -> list[dict[str, Any]]:
    return read_store(root / RESULTS / suite).records


def _rows(suite: str, root: Path, **where: Any) -> list[dict[str, Any]]:
    return [r for r in summary_rows(_cells(suite, root)) if all(r[k] == v for k, v in where.items())]


def _pm(ms: tuple[float, float], scale: float = 100.0) -> str:
    return format_mean_sd(ms, scale=scale)  # one seed: no ±


def demo(root: Path = ROOT) -> str:
    """What ``make demo`` prints, from the committed demo records."""
    records = read_store(root / RESULTS / "demo" / "results.json").records
    return format_table(summarise(records))


def engine(root: Path = ROOT) -> str:
    """Per exit accuracy, CPU time and saved bytes of the engine suite, as multiples of e2e's."""
    lines = ["| rule (simultaneous) | test acc % exit 1 / 2 / 3 | CPU time / epoch × e2e | saved-for-backward bytes × e2e |",
             "|---|---|---|---|"]
    for r in _rows("engine", root):
        per_exit = " / ".join(f"{100 * ms[0]:.1f}" for ms in r["per_exit"])
        lines.append(f"| {r['rule']} | {per_exit} | {r['cpu_ratio'][0]:.2f} ({r['epoch_cpu_s'][0]:.1f} s) "
                     f"| {r['saved_ratio'][0]:.2f} ({r['saved_bytes_peak'][0] / MIB:.2f} MiB) |")
    return "\n".join(lines)


def memory(root: Path = ROOT) -> str:
    """``local`` / ``e2e`` peak saved bytes for L = 2, 4, 8 stages, one and four layers per stage."""
    rows = [r for r in io.read_json(root / RESULTS / "memory" / "memory.json")["rows"] if r["label"] == "local"]
    parts = []
    for layers in sorted({r["layers_per_stage"] for r in rows}):
        mine = sorted((r for r in rows if r["layers_per_stage"] == layers and r["stages"] > 1), key=lambda r: r["stages"])
        ratios = " / ".join(f"{r['saved_ratio']:.2f}" for r in mine)
        parts.append(f"{ratios} for L = {' / '.join(str(r['stages']) for r in mine)} with {layers} layer(s) per stage")
    return "Peak saved-for-backward bytes of `local` over `e2e`: " + "; ".join(parts) + "."


def memory_table(root: Path = ROOT) -> str:
    """``local`` / ``e2e`` peak saved bytes for every L and layers per stage, with the 1.3 / L target."""
    rows = [r for r in io.read_json(root / RESULTS / "memory" / "memory.json")["rows"] if r["label"] == "local"]
    depths = sorted({r["stages"] for r in rows})
    lines = ["| stages L | " + " | ".join(map(str, depths)) + " |", "|---|" + "---|" * len(depths)]
    for layers in sorted({r["layers_per_stage"] for r in rows}):
        ratio = {r["stages"]: r["saved_ratio"] for r in rows if r["layers_per_stage"] == layers}
        lines.append(f"| {layers} layer(s) per stage | " + " | ".join(f"{ratio[d]:.3f}" for d in depths) + " |")
    lines.append("| target 1.3 / L | " + " | ".join(f"{1.3 / d:.3f}" for d in depths) + " |")
    return "\n".join(lines)


def _entry(label: str) -> str:
    rule, _, schedule = label.partition("@")
    return rule if schedule == "simultaneous" else f"{rule}, {schedule}"


def fashion(root: Path = ROOT) -> str:
    """Last-exit accuracy (CPU time × e2e) of every configuration of the fashion suite, one column per model."""
    rows = _rows("fashion", root)
    models = list(dict.fromkeys(r["model_label"] for r in rows))
    lines = ["| rule | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for label in dict.fromkeys(r["label"] for r in rows):
        cells = []
        for model in models:
            r = next((r for r in rows if r["label"] == label and r["model_label"] == model), None)
            cells.append("–" if r is None else f"{_pm(r['final'])} ({r['cpu_ratio'][0]:.2f})")
        lines.append(f"| {_entry(label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper(root: Path = ROOT) -> str:
    """Last-exit accuracy of the paper suite beside the local-loss paper's numbers."""
    rows = _rows("paper", root)
    rows = [r for r in rows if r["epochs"] == max(r["epochs"] for r in rows)]  # the longest run in the folder
    def paired(r: dict) -> str:
        anchor = anchors_for(r["data"], r["model"], r["rule"])[:1]
        return f"`{r['rule']}` {100 * r['final'][0]:.2f} %" + (f" (paper {anchor[0].accuracy:.2f})" if anchor else "")

    return (f"After {rows[0]['epochs']} epochs, {rows[0]['seeds']} seed(s), last exit: {', '.join(map(paired, rows))}; "
            "the paper's numbers are after 200 epochs.")


def _bio_sentence(rows: list[tuple[str, tuple[float, float], tuple[float, float]]], ratios: list[float],
                  source: str) -> str:
    parts = []
    for rule, final, best in rows:
        err = 100 * (1 - final[0])
        best_err = err if best is None else 100 * (1 - best[0])  # None: no validation split to choose on
        note = f" (best exit by validation {best_err:.2f})" if abs(best_err - err) > 0.5 else ""
        spread = "" if getattr(final, "n", None) == 1 else f" ± {100 * final[1]:.2f}"
        parts.append(f"{rule} {err:.2f}{spread}{note}")
    return (f"Last-exit test error %: {', '.join(parts)}; 1-thread CPU time {min(ratios):.2f}-{max(ratios):.2f}x "
            f"e2e (results: `{source}`).")


def bio(root: Path = ROOT) -> str:
    """Last-exit test error of every bio rule and its 1-thread CPU time range over e2e's: from the ``bio`` suite
    once it has run (its longest run), else from the results ``benchmarks/bio_rules.py`` wrote (10 epochs x 3 seeds)."""
    if (root / RESULTS / "bio" / FOLDER_STORE).is_file():
        rows = _rows("bio", root)
        rows = [r for r in rows if r["epochs"] == max(r["epochs"] for r in rows)]
        ratios = [r["cpu_ratio"][0] for r in rows if r["rule"] != "e2e"]
        return _bio_sentence([(r["rule"], r["final"], r["best"]) for r in rows], ratios,
                             "benchmarks/results/bio/results.md")
    result = io.read_json(root / RESULTS / "bio_rules_10ep.json")
    cpu = result["batch_time_s"]["cpu1"]
    return _bio_sentence([(r["rule"], r["final"], r["best"]) for r in result["summary"]],
                         [t / cpu["e2e"] for rule, t in cpu.items() if rule != "e2e"], "benchmarks/results/bio_rules_10ep.md")


def early_exit(root: Path = ROOT) -> str:
    """FLOPs saved, accuracy drop and measured speed-up of the entropy exit policy (mean over rules and seeds)."""
    records = _cells("early_exit", root)
    entropy = [r["policies"]["entropy"] for r in records]
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    speed = {t["batch"]: [] for p in entropy for t in p["timing"]}
    for p in entropy:
        for t in p["timing"]:
            speed[t["batch"]].append(t["speedup"])
    rules = sorted({r["rule"] for r in records})
    return (f"the entropy policy, calibrated on validation for <= {records[0]['cell']['max_drop']} pt, saves "
            f"{100 * mean([p['flops_saved_fraction'] for p in entropy]):.0f} % of the FLOPs at a test accuracy drop of "
            f"{mean([p['accuracy_drop_pt'] for p in entropy]):.2f} pt (mean over {', '.join(rules)} and "
            f"{len({r['seed'] for r in records})} seeds); measured wall-clock speed-up on this CPU: "
            + ", ".join(f"{mean(v):.2f}x at batch {b}" for b, v in sorted(speed.items(), reverse=True)) + ".")


def sequential(root: Path = ROOT) -> str:
    """Total CPU time of ``local`` under ``sequential`` over ``simultaneous`` (same epochs per stage, same run),
    range over seeds, per run folder and model kind."""
    lines = ["| run | MLP | CNN |", "|---|---|---|"]
    for folder in ("fashion", "fashion-3ep", "quick"):
        cells = _cells(folder, root)
        totals = schedule_totals(cells)
        epochs, seeds = cells[0]["epochs"], len({c["seed"] for c in cells})
        row = []
        for kind in ("mlp", "cnn"):
            ratios = sorted(t["cpu_ratio"] for t in totals if t["model_label"].startswith(kind))
            row.append("–" if not ratios else f"{ratios[0]:.2f}x" if ratios[0] == ratios[-1] or len(ratios) == 1
                       else f"{ratios[0]:.2f}–{ratios[-1]:.2f}x")
        lines.append(f"| `{folder}`, {epochs} epoch(s) per stage, {seeds} seed(s) | " + " | ".join(row) + " |")
    return "\n".join(lines)


def memory_time(root: Path = ROOT) -> str:
    """Saved bytes and time per step of e2e + checkpointing and of local at K = 2, 4, 8, as multiples of e2e's."""
    lines = ["| model | K | e2e + checkpointing: saved, time × e2e | local: saved, time × e2e |", "|---|---|---|---|"]
    for record in _cells("memory_time", root):
        rows = {(r["rule"], r["stages"]): r for r in record["rows"]}
        base = rows[("e2e", 1)]
        for k in (2, 4, 8):
            cells = [f"{rows[(rule, k)]['saved_bytes'] / base['saved_bytes']:.2f}, {rows[(rule, k)]['step_s'] / base['step_s']:.2f}"
                     for rule in ("e2e:checkpoint=true", "local")]
            model = record["cell"]["model"]
            layers = "16 layers, " if model in ("mlp", "cnn") else ""  # a registered net's name says its depth
            lines.append(f"| {model} ({layers}batch {record['cell']['batch_size']}) | {k} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput(root: Path = ROOT) -> str:
    """Training throughput as a fraction of the sgemm limit, and the engine against a hand-written loop."""
    from locallearn.bench.programs.throughput import summary

    rows = {r["config"]: r for r in summary(_cells("throughput", root)[-1])}
    part = lambda model, key, fmt: " / ".join(f"{fmt.format(rows[f'{model} {rule}'][key])} ({rule})"  # noqa: E731
                                              for rule in ("local", "e2e"))
    return (f"One thread, batch 128, Adam: the MLP 3x1024 trains at {part('mlp-3x1024', 'fraction', '{:.2f}')} of the "
            f"sgemm limit measured in the same run; the engine takes {part('cnn-16-32-32', 'engine_over_hand', '{:.3f}x')} "
            f"the CPU time of a hand-written loop on the CNN 16-32-32 ({part('mlp-3x1024', 'engine_over_hand', '{:.3f}x')} "
            "on the MLP).")


def rules_26(root: Path = ROOT) -> str:
    """Issue 26's rules beside the field's on the Fashion-MNIST CNN, then the auglocal ablation: accuracy of every
    exit, the last exit, CPU time and saved bytes per batch as multiples of e2e's (same seed, data, model, epochs)."""
    lines = ["| suite | model | rule | epochs | test acc % per exit (first → last) | last exit % | CPU time × e2e "
             "| saved bytes × e2e |", "|---|---|---|---|---|---|---|---|"]
    for suite in ("rules-cnn-fashion", "auglocal-ablation-cnn"):
        for r in _rows(suite, root):
            per_exit = " / ".join(f"{100 * ms[0]:.1f}" for ms in r["per_exit"])
            lines.append(f"| `{suite}` | {r['model_label']} | {r['label'].partition('@')[0]} | {r['epochs']} | {per_exit} "
                         f"| {_pm(r['final'])} | {_pm(r['cpu_ratio'], 1)} | {_pm(r['saved_ratio'], 1)} |")
    return "\n".join(lines)


def cuts(root: Path = ROOT) -> str:
    """Searched against equal cuts: last-exit test accuracy of both splits and their difference paired by seed."""
    records = _cells("cuts", root)
    cell = records[0]["cell"]
    by = {(r["cell"]["seed"], r["cell"]["split"]): r["exit_test_accuracy"][-1] for r in records}
    seeds = sorted({seed for seed, _ in by})
    pair = [(by[(s, "searched")], by[(s, "equal")]) for s in seeds]
    pct = lambda values: format_mean_sd(mean_sd(values), scale=100)  # noqa: E731
    return (f"{cell['model']}, K = {cell['stages']}, `{cell['rule']}`, {cell['epochs']} epochs on {cell['train_size']} "
            f"Fashion-MNIST images, {len(seeds)} seeds: last exit {pct([a for a, _ in pair])} % with the searched "
            f"cuts against {pct([b for _, b in pair])} % with equal cuts (difference paired by seed "
            f"{pct([a - b for a, b in pair])} points).")


def exit_curves(root: Path = ROOT) -> str:
    """ZTW and L2W against joint: the area under each accuracy-vs-FLOPs curve and its difference to joint's by seed."""
    from locallearn.bench.programs.exit_curves import REFERENCE, areas

    records = _cells("exit_curves", root)
    cell = records[0]["cell"]
    (low, high), area = areas(records)
    full = records[0]["full_flops"]
    pct = lambda values: format_mean_sd(mean_sd(values), scale=100)  # noqa: E731
    parts = []
    for label, by_seed in area.items():
        text = f"{label} {pct(list(by_seed.values()))} %"
        if label != REFERENCE:
            text += f" ({pct([by_seed[s] - area[REFERENCE][s] for s in sorted(by_seed)])} pt against joint, paired by seed)"
        parts.append(text)
    return (f"CNN {'-'.join(map(str, cell['channels']))} (K = {len(cell['channels'])}), {cell['epochs']} epochs on "
            f"{cell['train_size']} Fashion-MNIST images, {len(area[REFERENCE])} seeds; mean test accuracy over "
            f"{low / full:.3f}-{high / full:.3f} of the full network's FLOPs (shared max-prob thresholds): "
            + "; ".join(parts) + ".")


BLOCKS: dict[str, Callable[..., str]] = {"demo": demo, "engine": engine, "memory": memory, "fashion": fashion,
                                          "paper": paper, "bio": bio, "early_exit": early_exit,
                                          "sequential": sequential, "memory_table": memory_table,
                                          "memory_time": memory_time, "throughput": throughput,
                                          "rules_26": rules_26, "cuts": cuts, "exit_curves": exit_curves}


def replace_blocks(text: str, blocks: dict[str, Callable[[], str]]) -> str:
    """``text`` with the body of every named block it holds replaced by its generator's output."""
    unknown = sorted({m["name"] for m in _BLOCK.finditer(text)} - set(blocks))
    if unknown:
        raise ValueError(f"Unknown generated block(s) {', '.join(unknown)}; known: {', '.join(blocks)}.")
    return _BLOCK.sub(lambda m: m.group(1) + blocks[m["name"]]() + "\n" + m.group(4), text)


def _generators(root: Path) -> dict[str, Callable[[], str]]:
    return {name: (lambda f=f: f(root)) for name, f in BLOCKS.items()}


def stale(root: Path = ROOT) -> list[str]:
    """``file:block`` for every generated block whose text differs from what the committed results give."""
    out = []
    for name in READMES:
        text = (root / name).read_text()
        for m in _BLOCK.finditer(text):
            if m["body"] != BLOCKS[m["name"]](root) + "\n":
                out.append(f"{name}:{m['name']}")
    return out


def update(root: Path = ROOT) -> list[str]:
    """Rewrite the generated blocks of both READMEs; return the ``file:block`` names that changed."""
    changed = stale(root)
    for name in READMES:
        path = root / name
        text = path.read_text()
        new = replace_blocks(text, _generators(root))
        if new != text:
            io._atomic_replace(path, lambda f, new=new: f.write(new.encode()))
    return changed
