"""Fixed random feedback: the only custom backward in locallearn.

Backprop sends the error to a layer's input through the transpose of the
layer's own weights ("weight transport"). Feedback alignment (FA, Lillicrap
et al. 2016) sends it through a fixed random matrix ``B`` of the same shape as
``W`` instead; direct feedback alignment (DFA, Nøkland 2016) sends the error
at the network's output ``e`` to every layer's input through its own fixed
random matrix ``D_k``. In both, the weight and bias gradients stay the usual
ones (input activations times the error arriving at the layer's output).

What is here:

* :func:`fa_linear`, :func:`fa_conv2d` - functional forms whose backward
  uses ``feedback`` in place of ``weight`` for the input gradient;
* :class:`FALinear`, :class:`FAConv2d` - ``nn.Linear`` / ``nn.Conv2d`` with
  a ``feedback`` buffer; :class:`DFALinear`, :class:`DFAConv2d` - the DFA twins;
* :class:`SignLinear`, :class:`SignConv2d` (with their mode subclasses) -
  sign-symmetric feedback (Liao, Leibo & Poggio 2016; Moskovitz et al. 2018):
  ``B = M * sign(W)`` follows the signs of the current weights, with magnitudes
  ``M`` that are all one (``usf``), redrawn every training batch (``brsf``) or
  drawn once and fixed (``frsf``);
* :func:`convert` - turns the supported layers of any model into FA, DFA or
  sign-symmetric layers in place (per-layer math in a table keyed by layer type).

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> weight = model[0].weight
    >>> model = convert(model, mode="fa")
    >>> type(model[0]).__name__, model[0].weight is weight
    ('FALinear', True)
    >>> nn.functional.cross_entropy(model(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1])).backward()
    >>> model[0].weight.grad.shape
    torch.Size([8, 4])

What counts as unsupported in :func:`convert`: a module that owns parameters
directly (not through children) and is neither a plain ``nn.Linear`` /
``nn.Conv2d`` (exact type) nor one of the layers in :data:`KEPT_LAYERS`.
Those kept layers transport no matrix of weights to their input's error:
normalisation layers and ``nn.PReLU`` only rescale each unit by its own local
gain, and ``nn.Embedding`` has no input gradient at all. Anything else with
parameters (``nn.Conv1d``, ``nn.ConvTranspose2d``, ``nn.MultiheadAttention``,
recurrent layers, subclasses of ``nn.Linear``, custom modules using their own
parameters) would still use its weights' transpose, so it is reported.

Where it lives: ``functional`` (the autograd Functions and :func:`fa_linear`,
:func:`fa_conv2d`), ``fa`` (the FA layers), ``sign`` (sign symmetry), ``dfa``
(the DFA layers and the hooks that catch the output error, :func:`attach_dfa`) and
``convert`` (the per-layer tables, :func:`convert`, :func:`convert_layers`,
:func:`backprop_copy`); every public name is importable from ``locallearn.feedback``.
"""

from __future__ import annotations

from locallearn.feedback.convert import KEPT_LAYERS, backprop_copy, convert, convert_layers
from locallearn.feedback.dfa import DFAConv2d, DFALinear, attach_dfa
from locallearn.feedback.fa import FAConv2d, FALinear
from locallearn.feedback.functional import fa_conv2d, fa_linear
from locallearn.feedback.sign import BRSFConv2d, BRSFLinear, FRSFConv2d, FRSFLinear, SignConv2d, SignLinear, USFConv2d, USFLinear

__all__ = [
    "fa_linear",
    "fa_conv2d",
    "FALinear",
    "FAConv2d",
    "DFALinear",
    "DFAConv2d",
    "SignLinear",
    "SignConv2d",
    "USFLinear",
    "BRSFLinear",
    "FRSFLinear",
    "USFConv2d",
    "BRSFConv2d",
    "FRSFConv2d",
    "backprop_copy",
    "convert",
    "convert_layers",
    "attach_dfa",
    "KEPT_LAYERS",
]
