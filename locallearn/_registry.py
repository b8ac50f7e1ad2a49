"""One name -> class registry, shared by every axis (rules, schedules, heads, exits, estimators).

A registry made with an entry-point ``group`` (``locallearn.rules``, ...) also holds what
installed packages declare in that group: they are loaded the first time it is asked for a
name or for its names (``locallearn.plugins``).

Example:
    >>> reg = Registry("widget")
    >>> @reg.register("plain")
    ... class Plain:
    ...     def __init__(self, *, size: int = 1) -> None:
    ...         self.size = size
    >>> reg.create("plain", size=3).size
    3
    >>> reg.names()
    ['plain']
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; ``create`` accepts a name or a ready instance."""

    def __init__(self, kind: str, *, group: str | None = None) -> None:
        self.kind = kind
        self.plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"  # "exit policy" -> "exit policies"
        self.group = group  # the entry-point group of outside registrations (None: none)
        self._classes: dict[str, type] = {}
        self._discovered = group is None
        self.failed: dict[str, str] = {}  # entry-point name -> why it did not load

    def _discover(self) -> None:
        """Load the entry points of ``group`` once per process (see ``locallearn.plugins``)."""
        if self._discovered:
            return
        self._discovered = True  # first: a plugin that looks names up while it loads must not recurse
        from locallearn.plugins import load_entry_points

        load_entry_points(self)

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator that files the class under ``name`` and sets ``cls.name``."""

        def decorate(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"A {self.kind} named {name!r} is already registered.")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type:
        """The class registered under ``name``; an unknown name lists the valid ones."""
        self._discover()
        if name in self.failed:
            raise ValueError(f"The {self.kind} {name!r} is a plugin that failed to load: {self.failed[name]}")
        if name not in self._classes:
            raise ValueError(
                f"Unknown {self.kind} {name!r}. Known {self.plural}: {', '.join(self.names())}."
            )
        return self._classes[name]

    def create(self, spec: Any, **kwargs: Any) -> T:
        """Build from a name (with keyword hyper-parameters) or pass an instance through."""
        if isinstance(spec, str):
            cls = self.get(spec)
            params = inspect.signature(cls).parameters.values()
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                accepted = [p.name for p in params if p.kind is p.KEYWORD_ONLY]
                unknown = sorted(set(kwargs) - set(accepted))
                if unknown:
                    raise ValueError(
                        f"The {self.kind} {spec!r} has no parameter {', '.join(map(repr, unknown))}. "
                        f"Its parameters are: {', '.join(accepted) or 'none'}."
                    )
            return cls(**kwargs)
        if kwargs:
            raise TypeError(f"Keyword arguments are only accepted with a {self.kind} name, not an instance.")
        return spec
