"""Compare configurations side by side: a grid of rules x schedules x models, each trained once per seed.

A grid entry names a rule with its hyper-parameters and, optionally, its schedule:
``RULE[:KEY=VALUE...][@SCHEDULE[:KEY=VALUE...]]``, for example ``predsim:beta=0.5``,
``local@sequential`` or ``ib:variant=kde@decoupled:capacity=8``. An entry without ``@`` runs under
every schedule of the grid. A model entry is ``mlp`` or ``cnn`` with optional ``RunSpec`` fields,
``mlp:widths=(128,128)``. Combinations a schedule refuses (``sequential`` trains one stage at a time,
so it refuses a global rule such as ``e2e``) are left out and listed in ``Plan.skipped`` (``compare`` also
names them in a warning and in its result's ``skipped``). ``run_grid`` and ``compare`` take a results store
(``locallearn.store``): a run already in it is not run again, and every new record is added to it as it ends.

Every record is one run (one configuration and seed) in the schema of ``run_record``: its configuration ``key``
(rule, schedule, their options, model, data and the training settings: everything but the seed), a readable
``label``, every exit's test and validation accuracy (``test_accuracy[k - 1]`` is exit ``k``; exit 1 is the first
stage's head), the time per epoch of the whole network and of each stage, and the per-epoch ``history``.
``summarise`` groups records by ``key`` only, so it never merges two configurations.

Example:
    >>> from locallearn.experiment import RunSpec
    >>> base = RunSpec(data="synthetic", widths=(16, 16), epochs=1, progress=False)
    >>> plan = plan_grid(base, rules=["local", "e2e"], schedules=["simultaneous", "sequential"])
    >>> [spec_label(s) for s in plan.specs], [note.split(":")[0] for note in plan.skipped]
    (['local@simultaneous', 'local@sequential', 'e2e@simultaneous'], ['e2e@sequential'])
    >>> records = compare(base, rules=["local"], schedules=["simultaneous", "sequential"], seeds=[0])
    >>> [(r["label"], len(r["history"]), len(r["test_accuracy"])) for r in records]
    [('local@simultaneous', 1, 2), ('local@sequential', 2, 2)]
    >>> [row["label"] for row in summarise(records)]
    ['local@simultaneous', 'local@sequential']
"""

from __future__ import annotations

import ast
import dataclasses
import json
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from locallearn import data as datasets
from locallearn.data import BatchData
from locallearn.data.fingerprint import train_sha256
from locallearn.distributed import is_writer
from locallearn.experiment import RunSpec, check_spec, data_options, model_family, run
from locallearn.report.stats import MeanSD, format_ci, format_mean_sd, mean_sd
from locallearn.rules import RULES
from locallearn.schedules import SCHEDULES
from locallearn.provenance import finish, provenance
from locallearn.store import RUNS, ResultsStore, record_id

# RunSpec fields that name no part of a configuration: the seed varies within one; the progress bar and the
# checkpoint's path change no result; the data's folder is stood for by the content hash (``data_content``), so
# the same files moved are the same configuration and other files under one path are not.
NOT_IN_KEY = ("seed", "progress", "checkpoint_path", "data_dir")
MODEL_NAMES = ("mlp", "cnn")


def parse_value(text: str) -> Any:
    """A Python literal (number, bool, tuple...) when ``text`` is one, else the text itself;
    ``true`` / ``false`` are booleans too, as a shell user writes them.

    Example:
        >>> parse_value("0.5"), parse_value("(128, 128)"), parse_value("kde"), parse_value("true")
        (0.5, (128, 128), 'kde', True)
    """
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def split_entries(text: str) -> list[str]:
    """Comma-separated entries, a comma inside brackets belonging to its entry's value.

    Example:
        >>> split_entries("local, mlp:widths=(32,32),joint:weights=[1,2]")
        ['local', 'mlp:widths=(32,32)', 'joint:weights=[1,2]']
    """
    entries, depth, current = [], 0, ""
    for char in text:
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    return [e.strip() for e in [*entries, current] if e.strip()]


def parse_named(text: str, *, what: str) -> tuple[str, dict[str, Any]]:
    """``NAME[:KEY=VALUE...]`` -> ``(name, options)``.

    Example:
        >>> parse_named("predsim:beta=0.5:sim_dim=64", what="rule")
        ('predsim', {'beta': 0.5, 'sim_dim': 64})
    """
    name, *options = [part.strip() for part in text.strip().split(":")]
    if not name:
        raise ValueError(f"A {what} entry needs a name before its options (NAME:KEY=VALUE); got {text!r}.")
    kw = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Options of the {what} entry {text!r} must be KEY=VALUE (e.g. predsim:beta=0.5); got {option!r}.")
        if key.strip() in kw:
            raise ValueError(f"The {what} entry {text!r} gives {key.strip()!r} twice.")
        kw[key.strip()] = parse_value(value.strip())
    return name, kw


@dataclass(frozen=True)
class Entry:
    """A rule with its options and, optionally, a schedule with its options (``None``: the grid's)."""

    rule: str
    rule_kw: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    schedule_kw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Entry":
        """``RULE[:KEY=VALUE...][@SCHEDULE[:KEY=VALUE...]]``.

        Example:
            >>> Entry.parse("local@sequential:cache=False")
            Entry(rule='local', rule_kw={}, schedule='sequential', schedule_kw={'cache': False})
        """
        rule_text, at, schedule_text = text.partition("@")
        rule, rule_kw = parse_named(rule_text, what="rule")
        if not at:
            return cls(rule, rule_kw)
        schedule, schedule_kw = parse_named(schedule_text, what="schedule")
        return cls(rule, rule_kw, schedule, schedule_kw)


def _options(kw: dict[str, Any]) -> str:
    """``:key=value`` for each option, a string quoted only where it would read back as another type."""
    return "".join(f":{k}={v}" if not isinstance(v, str) or parse_value(v) == v else f":{k}={v!r}"
                   for k, v in sorted(kw.items()))


def spec_label(spec: RunSpec) -> str:
    """A configuration's readable name: ``rule[:options]@schedule[:options]``.

    Example:
        >>> spec_label(RunSpec(rule="predsim", rule_kw={"beta": 0.5}, schedule="sequential"))
        'predsim:beta=0.5@sequential'
    """
    return f"{spec.rule}{_options(spec.rule_kw)}@{spec.schedule}{_options(spec.schedule_kw)}"


def model_label(spec: RunSpec) -> str:
    """The model with its sizes, e.g. ``mlp 256-256-256`` or ``cnn 32-64-64``.

    Example:
        >>> model_label(RunSpec(model="cnn", channels=(16, 32)))
        'cnn 16-32'
    """
    return model_family(spec).describe()


def data_content(spec: RunSpec, ds: datasets.Dataset | BatchData | None) -> dict[str, Any] | None:
    """What a run of ``spec`` on ``ds`` learns from, beyond the names in the spec: the data set's own name, the
    sizes of its three splits after ``train_size`` / ``eval_size``, and the SHA-256 of the training split it
    trains on (inputs and labels, ``locallearn.data.fingerprint.train_sha256``: taken once per loaded data set).
    ``None`` where the content is unknown: data given as loaders (a ``BatchData``), or no data given.

    Example:
        >>> ds = datasets.load("synthetic")
        >>> content = data_content(RunSpec(data="synthetic", train_size=100, eval_size=50), ds)
        >>> content["name"], content["train"], content["val"], content["test"], len(content["train_sha256"])
        ('synthetic', 100, 50, 50, 64)
    """
    if not isinstance(ds, datasets.Dataset):
        return None
    kept = lambda x, size: len(x) if size is None else min(len(x), size)  # noqa: E731
    return {"name": ds.name, "train": kept(ds.x_train, spec.train_size), "val": kept(ds.x_val, spec.eval_size),
            "test": kept(ds.x_test, spec.eval_size), "train_sha256": train_sha256(ds, spec.train_size)}


def config_key(spec: RunSpec, data: datasets.Dataset | BatchData | None = None) -> dict[str, Any]:
    """Everything a run's result depends on but its seed: every ``RunSpec`` field but those in ``NOT_IN_KEY``
    (rule, schedule, their options, model, data name and subset sizes, every training setting), and
    ``data_content``: what the data ``data`` it runs on holds (``data_content``; ``None``: unknown). Two runs
    on different subsets of one data set, or on a data set changed on disk, never share a key.

    Example:
        >>> key = config_key(RunSpec(rule="local", schedule="sequential"))
        >>> key["rule"], key["schedule"], key["model"], key["data"], key["momentum"], "seed" in key
        ('local', 'sequential', 'mlp', 'digits', 0.9, False)
        >>> config_key(RunSpec(train_size=200), datasets.load("digits"))["data_content"]["train"]
        200
    """
    values = {k: v for k, v in dataclasses.asdict(spec).items() if k not in NOT_IN_KEY}
    values["data_content"] = data_content(spec, data)
    return json.loads(json.dumps(values, default=list))  # tuples as lists: a key reads back equal from JSON


def _key_id(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


@dataclass
class Plan:
    """The runnable configurations of a grid, in run order, and the combinations left out (with why)."""

    specs: list[RunSpec]
    skipped: list[str]


def _model_overrides(text: str) -> dict[str, Any]:
    name, kw = parse_named(text, what="model")
    if name not in MODEL_NAMES:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(MODEL_NAMES)}.")
    fields = {f.name for f in dataclasses.fields(RunSpec)} - {"model", "rule", "schedule", "seed"}
    unknown = sorted(set(kw) - fields)
    if unknown:
        raise ValueError(f"The model entry {text!r} sets {', '.join(unknown)}, which a run spec has not. "
                         f"Its fields are: {', '.join(sorted(fields))}.")
    return {"model": name, **kw}


def plan_grid(
    base: RunSpec,
    *,
    rules: Sequence[str | Entry],
    schedules: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> Plan:
    """Expand rule entries x schedules x models over ``base``; check every name and option before any training.

    ``schedules`` (default: ``base.schedule``) apply to the entries that name none; each may carry options
    (``decoupled:capacity=8``). ``models`` (default: ``base``'s model) are model entries.
    """
    entries = [e if isinstance(e, Entry) else Entry.parse(e) for e in rules]
    if not entries:
        raise ValueError("The grid names no rule; give at least one rule entry (e.g. local or predsim:beta=0.5).")
    grid_schedules = [parse_named(s, what="schedule") for s in (schedules or [base.schedule])]
    model_overrides = [(m, _model_overrides(m)) for m in models] if models else [(base.model, {})]
    specs, skipped, seen = [], [], set()
    for model_text, overrides in model_overrides:
        for entry in entries:
            pairs = [(entry.schedule, entry.schedule_kw)] if entry.schedule else grid_schedules
            for schedule, schedule_kw in pairs:
                try:  # a training field of a model entry (mlp:lr=-1) is checked here, as RunSpec checks it
                    spec = dataclasses.replace(base, rule=entry.rule, rule_kw=dict(entry.rule_kw), schedule=schedule,
                                               schedule_kw=dict(schedule_kw), **overrides)
                except (ValueError, TypeError) as error:
                    raise ValueError(f"The model entry {model_text!r}: {error}") from None
                rule_obj = RULES.create(spec.rule, **spec.rule_kw)  # unknown names and options fail here
                schedule_obj = SCHEDULES.create(spec.schedule, **spec.schedule_kw)
                try:
                    schedule_obj.check(rule_obj)
                except ValueError as refusal:
                    skipped.append(f"{spec_label(spec)}: {refusal}")
                    continue
                key = _key_id(config_key(spec))
                if key not in seen:
                    seen.add(key)
                    specs.append(spec)
    return Plan(specs, skipped)


def stage_epoch_times(history: list[dict[str, Any]], stages: int) -> list[float | None]:
    """Median time of one epoch of each stage, from the epochs that trained that stage alone (None if none did);
    ``stages_trained`` numbers stages from 1, as the trainer's history.

    Example:
        >>> stage_epoch_times([{"epoch_time_s": 1.0, "stages_trained": [1]}, {"epoch_time_s": 3.0, "stages_trained": [2]}], 2)
        [1.0, 3.0]
    """
    out = []
    for k in range(stages):
        alone = [r["epoch_time_s"] for r in history if list(r.get("stages_trained", ())) == [k + 1]]
        out.append(statistics.median(alone) if alone else None)
    return out


def epoch_time(times: Sequence[float], epochs: int, *, trainer_epochs: int | None = None) -> float:
    """One epoch of the whole network from the times of the trainer's epochs (wall or CPU): the median epoch
    (robust to a one-off warm-up) when every trainer epoch trains every stage (``trainer_epochs``, the number of
    trainer epochs, default ``len(times)``, equals ``epochs``); else (one stage at a time) the total over the
    stages divided by the epochs, so that it is comparable between schedules.

    Example:
        >>> epoch_time([1.0, 5.0, 2.0], epochs=3), epoch_time([1.0, 3.0], epochs=1)  # the latter: two one-stage epochs
        (2.0, 4.0)
        >>> epoch_time([1.0, 3.0], epochs=2, trainer_epochs=4)  # times of 2 turns of 2 one-stage trainer epochs each
        2.0
    """
    every_stage = (len(times) if trainer_epochs is None else trainer_epochs) == epochs
    return statistics.median(times) if every_stage else sum(times) / epochs


def whole_epoch_time(history: list[dict[str, Any]], epochs: int) -> float:
    """``epoch_time`` of a trainer's history.

    Example:
        >>> whole_epoch_time([{"epoch_time_s": 1.0}, {"epoch_time_s": 3.0}], epochs=1)  # two one-stage epochs
        4.0
    """
    return epoch_time([r["epoch_time_s"] for r in history], epochs)


def run_record(spec: RunSpec, result: Any, *, data: datasets.Dataset | BatchData | None = None) -> dict[str, Any]:
    """One run's record, in the one schema of compare and the benchmark suites (``locallearn.tidy`` writes it as
    CSV): the configuration (``label``, ``key``, rule, schedule and their options, model, data, seed, epochs),
    every exit's final test and validation accuracy (lists, exit ``k`` at index ``k - 1``), the time of one epoch
    of the whole network and of each stage alone, the total, the trainer's ``history`` (epochs and stages
    numbered from 1) and ``config``. Its provenance (version, commit, machine, command, load) is its store's
    ``runs`` entry of the record's ``session``. ``data``: what it ran on, for its key's ``data_content``; a suite's cell adds its measurements (``locallearn.bench.cell``).

    Example:
        >>> from locallearn import data
        >>> spec = RunSpec(data="synthetic", widths=(8,), epochs=1, progress=False)
        >>> record = run_record(spec, run(spec, data.load("synthetic")))
        >>> record["label"], len(record["test_accuracy"]), record["rule_kw"], len(record["history"])
        ('local@simultaneous', 1, {}, 1)
    """
    test = result.final("test")
    return {
        "label": spec_label(spec),
        "key": config_key(spec, data),
        "rule": spec.rule,
        "rule_kw": dict(spec.rule_kw),
        "schedule": spec.schedule,
        "schedule_kw": dict(spec.schedule_kw),
        "model": spec.model,
        "model_label": model_label(spec),
        "data": spec.data,
        "seed": spec.seed,
        "epochs": spec.epochs,
        "test_accuracy": test,
        "val_accuracy": result.final("val"),
        "epoch_time_s": whole_epoch_time(result.history, spec.epochs),
        "stage_epoch_time_s": stage_epoch_times(result.history, len(test)),
        "total_time_s": sum(r["epoch_time_s"] for r in result.history),
        "history": result.history,
        "config": result.config,
    }


class GridRun(list):
    """The records of a grid's runs, finished before (in the store) or now; ``ran`` counts the runs done now and
    ``skipped`` lists the combinations a schedule refused (``compare``), each with why."""

    ran: int = 0
    skipped: Sequence[str] = ()


def _load_all(specs: Sequence[RunSpec], loaded: dict[tuple, datasets.Dataset]) -> None:
    for spec in specs:
        source = (spec.data, spec.data_dir, spec.val_size)
        if source not in loaded:
            loaded[source] = datasets.load(spec.data, data_dir=spec.data_dir, **data_options(spec))


def run_grid(
    specs: Iterable[RunSpec], *, seeds: Sequence[int], callback: Any = None, data: datasets.Dataset | BatchData | None = None,
    store: ResultsStore | None = None, command: str = "",
) -> GridRun:
    """Train every spec once per seed (seed-major); one record per run, in spec order, then seed.
    ``callback(record)`` after each run. ``data`` (a ``Dataset``, or a ``BatchData`` of DataLoaders) replaces the
    specs' named data sets. With a ``store`` (a ``ResultsStore`` of kind ``runs``) a run already in it is not run
    again (its record comes from the store), each new record is added to it as it finishes (under torchrun by
    rank 0 alone), and the invocation's provenance (``command``, version, commit, machine, load) is one
    ``runs`` entry whose ``session`` every new record carries. Every spec still to run has its data loaded and
    its net checked (``check_spec``) before the first run, so a bad entry fails at once."""
    specs = list(specs)
    runs = [dataclasses.replace(spec, seed=seed) for seed in seeds for spec in specs]
    loaded: dict[tuple, datasets.Dataset] = {}
    if data is None:
        _load_all(runs, loaded)  # every run's: what its data holds is part of its key

    def source(spec: RunSpec) -> datasets.Dataset | BatchData:
        return data or loaded[spec.data, spec.data_dir, spec.val_size]

    keys = [record_id({"key": config_key(r, source(r)), "seed": r.seed}) for r in runs]
    todo = [(r, k) for r, k in zip(runs, keys) if store is None or k not in store]

    for spec in {_key_id(config_key(r)): r for r, _ in todo}.values():
        check_spec(spec, source(spec), label=f"{spec_label(spec)} ({model_label(spec)})")
    writer = store is not None and is_writer()
    session = store.start_run(provenance(command, runs=len(runs), runs_to_do=len(todo))) if writer and todo else None
    done: dict[str, dict[str, Any]] = {} if store is None else {record_id(r): r for r in store.records}
    result = GridRun()
    for spec, key in todo:
        record = run_record(spec, run(spec, source(spec)), data=source(spec))
        if session is not None:
            record["session"] = session
            store.add(record)
        done[key] = record
        result.ran += 1
        if callback is not None:
            callback(record)
    if session is not None:
        store.update_run(session, **finish())
    result.extend(done[keys[i]] for i in sorted(range(len(runs)), key=lambda i: (i % len(specs), i)))  # spec, then seed
    return result


def compare(
    base: RunSpec,
    *,
    rules: Sequence[str | Entry],
    seeds: Sequence[int],
    schedules: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    data: datasets.Dataset | BatchData | None = None,
    out: str | Path | None = None,
    force: bool = False,
) -> GridRun:
    """Plan the grid, then train it once per seed; one record per run (see ``run_grid``).
    ``data`` replaces the named data set of ``base``: a ``Dataset`` or a ``BatchData`` of DataLoaders.

    Combinations a schedule refuses are not dropped in silence: they are left out of the runs, listed in the
    result's ``skipped`` (each with the schedule's reason) and named in one ``UserWarning``. With ``out`` (a
    results store, ``locallearn.store``) the records are appended to the store there, runs already in it are
    not run again, and a store of another schema version or kind is refused; ``force=True`` starts it afresh.
    """
    plan = plan_grid(base, rules=rules, schedules=schedules, models=models)
    if plan.skipped:
        warnings.warn(f"compare left out {len(plan.skipped)} combination(s) a schedule refuses: "
                      + "; ".join(plan.skipped), stacklevel=2)
    store = None if out is None else ResultsStore(out, kind=RUNS, fresh=force)
    records = run_grid(plan.specs, seeds=seeds, data=data, store=store, command=f"locallearn.compare.compare(...) -> {out}")
    records.skipped = plan.skipped
    return records


def mean_std(values: Sequence[float | None]) -> MeanSD | None:
    """Mean and sample standard deviation (0 for one value) of the values that are not None, with their number
    (``locallearn.report.stats.mean_sd``: it unpacks as ``(mean, sd)``)."""
    return mean_sd(values)


def exit_accuracies(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Over runs of one configuration (each with ``test_accuracy`` and ``val_accuracy`` lists, one entry per
    exit): every exit's test accuracy, the last exit's and the best exit's (chosen per run on validation
    accuracy, never on test), each as (mean, std); ``best`` is ``None`` when a run has no validation split.

    Example:
        >>> s = exit_accuracies([{"test_accuracy": [0.8, 0.7], "val_accuracy": [0.9, 0.6]}])
        >>> s["per_exit"], s["final"], s["best"]
        ([(0.8, 0.0), (0.7, 0.0)], (0.7, 0.0), (0.8, 0.0))
    """
    exits = max(len(r["test_accuracy"]) for r in runs)
    with_val = all(r["val_accuracy"] for r in runs)
    return {
        "per_exit": [mean_std([r["test_accuracy"][k] if k < len(r["test_accuracy"]) else None for r in runs])
                     for k in range(exits)],
        "final": mean_std([r["test_accuracy"][-1] for r in runs]),
        "best": mean_std([r["test_accuracy"][best_exit(r["val_accuracy"])] for r in runs]) if with_val else None,
    }


def best_exit(val_accuracy: Sequence[float]) -> int:
    """The exit with the highest validation accuracy (the deepest of equals); a run without a validation split
    (``val_size=0``) is refused, since choosing on test accuracy would be a leak.

    Example:
        >>> best_exit([0.8, 0.9, 0.9])
        2
    """
    if not val_accuracy:
        raise ValueError(
            "Best-exit selection needs validation accuracies, and this run has none: its recipe trains on every "
            "training image (val_size=0). Report the last exit, or hold out a validation split (val_size > 0)."
        )
    return max(range(len(val_accuracy)), key=lambda j: (val_accuracy[j], j))


def _accuracy_lists(record: dict[str, Any]) -> dict[str, list[float]]:
    return {split: record[split] for split in ("test_accuracy", "val_accuracy")}


#: Key fields a row shows without help: in its label (rule, schedule, their options) or a column (model, data).
SHOWN = ("rule", "rule_kw", "schedule", "schedule_kw", "model", "data")


def varying_fields(records: Sequence[dict[str, Any]]) -> list[str]:
    """The fields of the records' configuration keys whose value differs between them, in key order, but those
    ``SHOWN`` anyway: what labels, tables and CSVs must add so that no two configurations look alike.

    Example:
        >>> keys = [{"rule": "local", "lr": lr, "activation": "relu"} for lr in (0.001, 0.01)]
        >>> varying_fields([{"key": k} for k in keys])
        ['lr']
    """
    keys = [r["key"] for r in records]
    names = list(dict.fromkeys(name for key in keys for name in key))
    return [n for n in names if n not in SHOWN
            and len({json.dumps(key.get(n, "not recorded"), sort_keys=True, default=list) for key in keys}) > 1]


def field_text(name: str, key: dict[str, Any]) -> str:
    """A key field's value as labels and tables show it: ``(8,8)`` for a list, ``k=v,...`` for options, the data
    content as its name, training size and the start of its hash (``unknown`` without one).

    Example:
        >>> field_text("widths", {"widths": [8, 8]}), field_text("head_kw", {"head_kw": {"hidden": [5]}})
        ('(8,8)', 'hidden=(5)')
    """
    if name == "data_content":  # None, or missing in a record written before the key held it: unknown
        value = key.get(name)
        return "unknown" if value is None else f"{value['name']} {value['train']} {value['train_sha256'][:8]}"
    if name not in key:
        return "not recorded"  # a record written before the key had this field
    value = key[name]
    if isinstance(value, list):
        return "(" + ",".join(str(v) for v in value) + ")"
    if isinstance(value, dict):
        return ",".join(f"{k}={field_text(k, value)}" for k in sorted(value))
    return str(value)


def labelled(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the records, each with ``varying`` (every ``varying_fields`` field's text), the same texts as
    fields of their own where the record has no field of that name, and its ``label`` followed by them
    (``local@simultaneous lr=0.01``), so that two configurations of one comparison never share a label.
    Labelling labelled records again gives the same labels.

    Example:
        >>> keys = [{"rule": "local", "rule_kw": {}, "schedule": "simultaneous", "schedule_kw": {}, "lr": lr}
        ...         for lr in (0.001, 0.01)]
        >>> [r["label"] for r in labelled([{"label": "local@simultaneous", "key": k} for k in keys])]
        ['local@simultaneous lr=0.001', 'local@simultaneous lr=0.01']
    """
    names = varying_fields(records)
    out = []
    for r in records:
        varying = {n: field_text(n, r["key"]) for n in names}
        base = f"{r['key']['rule']}{_options(r['key']['rule_kw'])}@{r['key']['schedule']}{_options(r['key']['schedule_kw'])}"
        out.append({**{n: v for n, v in varying.items() if n not in r}, **r, "varying": varying,
                    "label": " ".join([base, *(f"{n}={v}" for n, v in varying.items())])})
    return out


def summarise(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration ``key`` (never merging two): seeds, accuracy of every exit, of the last
    exit and of the best exit (picked per seed on validation), time per epoch of the whole network and of
    each stage; mean and std over seeds. Labels name every field that varies between the records
    (``labelled``), and ``varying`` holds those fields' values."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in labelled(records):
        groups.setdefault(_key_id(r["key"]), []).append(r)
    rows = []
    for mine in groups.values():
        first = mine[0]
        stages = len(first["stage_epoch_time_s"])
        rows.append({
            "label": first["label"], "key": first["key"], "rule": first["rule"], "schedule": first["schedule"],
            "model": first["model"], "model_label": first.get("model_label", first["model"]), "data": first["data"],
            "epochs": first["epochs"], "data_content": first["key"].get("data_content"),  # None: unknown
            "varying": first["varying"],
            "seeds": len({r["seed"] for r in mine}),
            **exit_accuracies([_accuracy_lists(r) for r in mine]),
            "epoch_time_s": mean_std([r["epoch_time_s"] for r in mine]),
            "stage_epoch_time_s": [mean_std([r["stage_epoch_time_s"][k] for r in mine]) for k in range(stages)],
        })
    return rows


def data_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A line for the ``summarise`` rows whose data content is unknown (records written before the key held a
    hash of the training split, or runs on data given as loaders), none when every row's is known: such rows
    of one name and sizes may come from different data, which their key cannot tell.

    Example:
        >>> data_notes([{"label": "local@simultaneous", "data_content": None}])  # doctest: +ELLIPSIS
        ['Data content unknown (no hash of the training split in the key) for 1 of 1 configurations: local@simultaneous...']
    """
    unknown = [r["label"] for r in rows if r.get("data_content") is None]
    if not unknown:
        return []
    return [f"Data content unknown (no hash of the training split in the key) for {len(unknown)} of {len(rows)} "
            f"configurations: {', '.join(unknown)}. Their records were written before the key held it, or ran on "
            "data given as loaders; runs on other data under the same name and sizes would share their key."]


def _pct(ms: tuple[float, float] | None) -> str:
    return format_mean_sd(ms, scale=100)  # one seed: no ±


def _stage_times(row: dict[str, Any]) -> str:
    times = row["stage_epoch_time_s"]
    return "–" if all(t is None for t in times) else " / ".join("–" if t is None else f"{t[0]:.3f}" for t in times)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of ``summarise`` rows, accuracies in percent, exits numbered from 1; a column for each
    field that varies between the rows (``varying_fields``), after the data."""
    varying = [n for n in dict.fromkeys(n for r in rows for n in r.get("varying", {})) if n != "epochs"]  # a column already
    lines = [
        "| configuration | model | data | " + "".join(f"{n} | " for n in varying) + "epochs | seeds "
        "| test acc % per exit (1 → last) | last exit test acc % "
        "| last exit 95 % CI | best exit (by val) test acc % | time / epoch s | time / stage-epoch s (stage 1 → last) |",
        "|---|---|---|" + "---|" * len(varying) + "---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_exit = " / ".join("–" if ms is None else f"{100 * ms[0]:.1f}" for ms in r["per_exit"])
        columns = "".join(f"{r.get('varying', {}).get(n, '–')} | " for n in varying)
        lines.append(f"| {r['label']} | {r['model_label']} | {r['data']} | {columns}{r['epochs']} | {r['seeds']} | {per_exit} "
                     f"| {_pct(r['final'])} | {format_ci(r['final'], scale=100)} | {_pct(r['best'])} "
                     f"| {format_mean_sd(r['epoch_time_s'], digits=3)} | {_stage_times(r)} |")
    return "\n".join(lines)
