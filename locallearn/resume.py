"""What a resumed run may change: its config against the config stored in the checkpoint, field by field.

A resumed run must train exactly as the run that wrote the checkpoint would have, so every
field of its config (rule and schedule hyper-parameters, training settings, data, net and
the command line's run spec) must match. Two kinds of field may change, and the change is
returned so the Trainer records it in the results:

* fields that decide only where and how often results are written or where the run
  computes: ``checkpoint_path``, ``progress``, ``eval_every``, ``device`` (and the resolved
  device), ``data_dir``, and the data-parallel world (``data_parallel``: the number of
  processes and the backend; every process count trains on the same global batches);
* ``epochs``, upward only, when the schedule trains every stage each epoch and neither an
  LR schedule nor the schedule itself (``plans_by_epoch_count``: freezeout's annealing)
  depends on the count (otherwise the epochs already trained were planned for another total).

The data is compared by its fingerprint (``locallearn.data.fingerprint``: name, size and a
SHA-256 of the training split): other data is refused, whatever folder it comes from; the
folder alone may change (the same files moved).

Example:
    >>> saved = {"train": {"lr": 0.001, "epochs": 2, "progress": True}}
    >>> check_resume(saved, {"train": {"lr": 0.001, "epochs": 4, "progress": False}}, path="run.pt", epochs_may_grow=True)
    {'train.epochs': [2, 4], 'train.progress': [True, False]}
    >>> check_resume(saved, {"train": {"lr": 0.5, "epochs": 2, "progress": True}}, path="run.pt", epochs_may_grow=True)
    Traceback (most recent call last):
    ...
    ValueError: Checkpoint run.pt was made with another configuration: train.lr is 0.001 there, 0.5 now. Resume with the checkpoint's settings, or start a new run with another checkpoint path.
"""

from __future__ import annotations

from typing import Any

#: Fields (by their last name, under "train" or "spec") a resumed run may change freely.
FREE = frozenset({"checkpoint_path", "progress", "eval_every", "device", "resolved_device", "data_dir", "compile"})
#: Top-level sections a resumed run may change: the data-parallel world (the global batches are the same);
#: the plugins loaded (the rule, schedule... themselves, by name and parameters, must still match).
FREE_SECTIONS = frozenset({"data_parallel", "plugins"})
#: The data's fingerprint: compared field by field except the folder (the same content may move).
FINGERPRINT = "data_fingerprint"
#: Top-level entries left out of the comparison: the resume log itself; the command line's spec
#: when one side has none (a checkpoint written by the CLI, resumed from Python).
RESUME_LOG = "resumed"
_MISSING = "(missing)"


def differences(saved: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every ``(field, saved value, current value)`` where two nested configs differ.

    Example:
        >>> differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 4}})
        [('a.c', 2, 3), ('a.d', '(missing)', 4)]
    """
    if isinstance(saved, dict) and isinstance(current, dict):
        found = []
        for key in list(saved) + [k for k in current if k not in saved]:
            field = f"{prefix}.{key}" if prefix else str(key)
            found += differences(saved.get(key, _MISSING), current.get(key, _MISSING), field)
        return found
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)):
        saved, current = list(saved), list(current)  # a tuple written as a list still matches
    return [] if saved == current else [(prefix, saved, current)]


def _short(value: Any) -> str:
    """A value for a message: a SHA-256 cut to 12 hex digits."""
    return repr(value[:12] + "...") if isinstance(value, str) and len(value) == 64 else repr(value)


def check_resume(saved: dict[str, Any], current: dict[str, Any], *, path: Any, epochs_may_grow: bool) -> dict[str, list[Any]]:
    """The allowed changes ``{field: [saved, current]}``; any other change raises one line naming every field."""
    saved = {k: v for k, v in saved.items() if k != RESUME_LOG}
    current = {k: v for k, v in current.items() if k != RESUME_LOG}
    for optional in ("spec", FINGERPRINT):  # a checkpoint from Python, or written before fingerprints
        if optional not in saved or optional not in current:
            saved.pop(optional, None)
            current.pop(optional, None)
    allowed: dict[str, list[Any]] = {}
    refused: list[str] = []
    for field, old, new in differences(saved, current):
        section, _, name = field.partition(".")
        if section in FREE_SECTIONS or (section in ("train", "spec") and name in FREE) or field == f"{FINGERPRINT}.data_dir":
            allowed[field] = [old, new]
        elif section == FINGERPRINT:
            refused.append(f"the training data's {name or 'fingerprint'} is {_short(old)} there, {_short(new)} now "
                           "(other data than the run was trained on)")
        elif section in ("train", "spec") and name == "epochs" and isinstance(old, int) and isinstance(new, int):
            if new > old and epochs_may_grow:
                allowed[field] = [old, new]
            else:
                why = "a resumed run may only add epochs" if new < old else (
                    "the schedule or the LR schedule depends on the epoch count, so it cannot grow on resume"
                )
                refused.append(f"{field} is {old!r} there, {new!r} now ({why})")
        else:
            refused.append(f"{field} is {old!r} there, {new!r} now")
    if refused:
        raise ValueError(
            f"Checkpoint {path} was made with another configuration: {'; '.join(refused)}. "
            "Resume with the checkpoint's settings, or start a new run with another checkpoint path."
        )
    return allowed
