"""The formal claims behind locallearn (theory/README.md), each with an executable check.

``python -m theory`` runs every check and writes theory/RESULTS.md; ``python -m pytest theory`` runs their
fast versions. Each ``tNN_*.py`` module states one claim in its docstring and has ``check(fast=...)``
returning a :class:`theory._claim.Result`.
"""
