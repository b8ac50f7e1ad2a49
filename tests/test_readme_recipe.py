"""The README's own-loop recipe runs as printed and trains every stage from its own loss."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import locallearn as ll

README = Path(__file__).resolve().parents[1] / "README.md"


def _recipe() -> str:
    text = README.read_text()
    match = re.search(r"<!-- recipe:own-loop -->\s*```python\n(.*?)```\s*<!-- /recipe:own-loop -->", text, re.S)
    assert match, "the README lost its own-loop recipe markers"
    return match.group(1)


def test_the_readme_own_loop_recipe_runs_and_learns(capsys):
    torch.manual_seed(0)
    scope: dict = {}
    exec(compile(_recipe(), str(README), "exec"), scope)
    net, ds = scope["net"], scope["ds"]
    assert isinstance(net, ll.LocalNet) and len(net.stages) == 2
    net.eval()
    with torch.no_grad():
        accuracy = [(logits.argmax(1) == ds.y_test).float().mean().item() for logits in net(ds.x_test)]
    assert accuracy[-1] > 0.8, accuracy
    assert len(capsys.readouterr().out.strip().split(",")) == 2
