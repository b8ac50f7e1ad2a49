"""T3. Feedback alignment with ``B = W`` is backprop, and the weight gradient never depends on ``B``
(theory/README.md, T3).

Example:
    >>> measure()["input_grad_B_equal_W"]
    0.0
"""

from __future__ import annotations

import time

import torch
from torch.nn import functional as F

from locallearn.feedback import fa_linear

from ._claim import FAILS, HOLDS, Result


def measure() -> dict:
    """Largest differences between backprop's and FA's gradients (float64) with ``B = W`` and a random ``B``."""
    torch.manual_seed(0)
    w = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 5, dtype=torch.float64)
    gx, gw = torch.autograd.grad((F.linear(x, w) * upstream).sum(), [x, w])
    hx, hw = torch.autograd.grad((fa_linear(x, w, None, w.detach()) * upstream).sum(), [x, w])
    rx, rw = torch.autograd.grad((fa_linear(x, w, None, torch.randn(5, 7, dtype=torch.float64)) * upstream).sum(), [x, w])
    return {
        "input_grad_B_equal_W": (gx - hx).abs().max().item(), "weight_grad_B_equal_W": (gw - hw).abs().max().item(),
        "weight_grad_random_B": (gw - rw).abs().max().item(), "input_grad_random_B": (gx - rx).abs().max().item(),
    }


def check(*, fast: bool = False) -> Result:
    start = time.process_time()
    m = measure()
    held = max(m["input_grad_B_equal_W"], m["weight_grad_B_equal_W"], m["weight_grad_random_B"]) <= 1e-12 \
        and m["input_grad_random_B"] > 1e-3
    summary = "with B = W both gradients equal backprop's; with a random B only the input gradient changes"
    return Result("T3", "Feedback alignment with B = W is backprop", HOLDS if held else FAILS, summary,
                  [{k: float(f"{v:.3g}") for k, v in m.items()}], "fa_linear, 4x7 input, 5x7 weight, float64",
                  time.process_time() - start)
