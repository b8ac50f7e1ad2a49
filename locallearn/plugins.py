"""Outside registrations: a rule (schedule, head, exit policy, estimator, model, dataset) of your own,
named on the command line like a built-in one, without editing locallearn.

Two ways in:

* **Entry points** of an installed package, one group per axis: ``locallearn.rules``,
  ``locallearn.schedules``, ``locallearn.heads``, ``locallearn.policies``,
  ``locallearn.estimators``, ``locallearn.models``, ``locallearn.datasets``. In the package's
  ``pyproject.toml``::

      [project.entry-points."locallearn.rules"]
      drtp = "my_package.rules:DRTP"

  An entry point names a class (or a dataset's loader function), filed under the entry
  point's name, or a module, which is imported and registers its own classes with the
  registry's decorator (``@RULES.register("drtp")``). A registry loads its group the first
  time it is asked for a name or its names, in every process (torchrun ranks, pipeline
  workers). One that fails to load is reported by a warning, and naming it gives the reason.
* **``--plugin MODULE``** on every ``locallearn`` command (repeatable; an importable module
  name or the path of a ``.py`` file), or ``load_plugin`` in Python: the module registers
  its classes when imported. Under torchrun every rank runs the same command line, so each
  loads them; the pipeline schedule's spawned workers load the same plugins (``loaded()``)
  before they rebuild the run they are handed.

A plugin file usually holds ``@RULES.register("my-rule") class MyRule(LocalRule): ...``; this one
only sets a constant, to leave the registries as they are:

Example:
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "locallearn_doctest_plugin.py"
    >>> _ = path.write_text("ANSWER = 42\\n")
    >>> load_plugin(str(path)).ANSWER, loaded()[-1] == str(path)
    (42, True)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

_LOADED: list[str] = []  # the specs given to load_plugin, in order (files as absolute paths)
_ENTRY_POINTS: list[str] = []  # the entry points loaded: "entry point NAME = VALUE (group G, distribution D V)"


def load_plugin(spec: str) -> ModuleType:
    """Import a plugin module by name (``my_package.rules``) or from a ``.py`` file; loading the same
    one again does nothing. A file is imported as the module named after its stem."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"A plugin is a module name or the path of a .py file; got {spec!r}.")
    if spec.endswith(".py") or Path(spec).is_file():
        return _load_file(Path(spec))
    try:
        module = importlib.import_module(spec)
    except ModuleNotFoundError as error:
        if error.name is None or not spec.startswith(error.name):
            raise  # the plugin itself imports something missing: its own error says what
        raise ImportError(
            f"Plugin module {spec!r} not found ({error}); give an importable module name or the path of a .py file."
        ) from None
    _record(spec)
    return module


def _load_file(path: Path) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Plugin file {str(path)!r} does not exist; expected a module name or a .py file.")
    name = path.stem
    present = sys.modules.get(name)
    if present is not None:
        if Path(getattr(present, "__file__", None) or "").resolve() == path:
            _record(str(path))
            return present
        raise ValueError(
            f"Plugin file {str(path)!r} would be imported as module {name!r}, which is already the module of "
            f"{getattr(present, '__file__', None) or 'a built-in'}; rename the file."
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Plugin file {str(path)!r} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: pickling its classes (spawned workers) finds them by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    _record(str(path))
    return module


def _record(spec: str) -> None:
    if spec not in _LOADED:
        _LOADED.append(spec)


def load_plugins(specs: Iterable[str]) -> tuple[str, ...]:
    """``load_plugin`` each of ``specs`` in order; returns what is loaded now (``loaded()``)."""
    for spec in specs:
        load_plugin(spec)
    return loaded()


def loaded() -> tuple[str, ...]:
    """The plugins this process has loaded through ``load_plugin``, in order (files as absolute paths)."""
    return tuple(_LOADED)


def provenance() -> list[str]:
    """What a results file records of the outside code in a run: the loaded plugins, then the entry points."""
    return [*_LOADED, *_ENTRY_POINTS]


class PluginsFirst:
    """Loads this process's plugins when unpickled: put it before anything that refers to plugin classes in
    what a spawned process receives (its arguments are unpickled in order).

    Example:
        >>> import pickle
        >>> pickle.loads(pickle.dumps(PluginsFirst())) == loaded()
        True
    """

    def __init__(self) -> None:
        self.specs = loaded()

    def __reduce__(self) -> tuple[Any, tuple[tuple[str, ...]]]:
        return load_plugins, (self.specs,)


def load_entry_points(registry: Any) -> None:
    """File the entry points of ``registry.group`` in ``registry``, a ``locallearn._registry.Registry`` (which
    calls this itself, once; not imported here, so that the two modules do not import each other)."""
    for entry in importlib.metadata.entry_points(group=registry.group):
        dist = "" if entry.dist is None else f", distribution {entry.dist.name} {entry.dist.version}"
        where = f"entry point {entry.name} = {entry.value} (group {registry.group}{dist})"
        try:
            target = entry.load()
        except Exception as error:  # a broken plugin must not take the built-in names down with it
            reason = f"{where}: {type(error).__name__}: {error}"
            registry.failed[entry.name] = reason
            warnings.warn(f"The {registry.kind} plugin {entry.name!r} failed to load: {reason}", stacklevel=2)
            continue
        _ENTRY_POINTS.append(where)
        if inspect.ismodule(target) or any(target is known for known in registry._classes.values()):
            continue  # a module registered its own classes when imported; so did a decorated class
        if entry.name in registry._classes and registry._classes[entry.name] is not target:
            warnings.warn(f"{where} names a {registry.kind} {entry.name!r} that is already registered; ignored.", stacklevel=2)
            continue
        registry.register(entry.name)(target)
