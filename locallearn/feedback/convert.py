"""Turning a model's layers into FA, DFA or sign-symmetric layers in place, by a table keyed by layer type,
and back (``backprop_copy``).

Example:
    >>> from torch import nn
    >>> [type(m).__name__ for m in convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), mode="fa")]
    ['FALinear', 'ReLU']
"""

from __future__ import annotations

from copy import deepcopy

from torch import nn

from locallearn._params import check_choice, check_number
from locallearn.feedback.dfa import DFAConv2d, DFALinear, attach_dfa
from locallearn.feedback.fa import FAConv2d, FALinear
from locallearn.feedback.sign import BRSFConv2d, BRSFLinear, FRSFConv2d, FRSFLinear, USFConv2d, USFLinear

#: Layers with parameters that :func:`convert` leaves as they are without complaint.
KEPT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
    nn.PReLU, nn.Embedding, nn.EmbeddingBag,
)


_TABLES: dict[str, dict[type[nn.Module], type[nn.Module]]] = {
    "fa": {nn.Linear: FALinear, nn.Conv2d: FAConv2d},
    "dfa": {nn.Linear: DFALinear, nn.Conv2d: DFAConv2d},
    "usf": {nn.Linear: USFLinear, nn.Conv2d: USFConv2d},
    "brsf": {nn.Linear: BRSFLinear, nn.Conv2d: BRSFConv2d},
    "frsf": {nn.Linear: FRSFLinear, nn.Conv2d: FRSFConv2d},
}
_CONVERTED = {cls: mode for mode, table in _TABLES.items() for cls in table.values()}
_PLAIN = {cls: plain for table in _TABLES.values() for plain, cls in table.items()}


def backprop_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose converted layers are plain ``nn.Linear`` / ``nn.Conv2d`` again.

    The copy has the same weights and computes the same outputs, but its backward is exact
    backprop: the reference against which feedback signals are measured (``locallearn.alignment``).

    Example:
        >>> model = convert(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), mode="usf")
        >>> [type(m).__name__ for m in backprop_copy(model)]
        ['Linear', 'ReLU', 'Linear']
    """
    copy = deepcopy(model)
    for module in copy.modules():
        plain = _PLAIN.get(type(module))
        if plain is not None:
            module.__class__ = plain
    return copy


def convert_layers(model: nn.Module, mode: str = "fa", *, unsupported: str = "raise", scale: float = 1.0) -> nn.Module:
    """The layer swap of :func:`convert` without the DFA hooks (pair it with :func:`attach_dfa`).

    Example:
        >>> type(convert_layers(nn.Linear(2, 2), "dfa")).__name__
        'DFALinear'
    """
    check_choice(mode, name="mode", owner="convert", choices=list(_TABLES))
    check_choice(unsupported, name="unsupported", owner="convert", choices=["raise", "keep"])
    check_number(scale, name="scale", owner="convert", low=0.0, low_inclusive=False)
    table = _TABLES[mode]
    to_convert, refused = [], []
    for name, module in model.named_modules():
        kind = type(module)
        if kind in table:
            to_convert.append(module)
        elif kind in _CONVERTED:
            if _CONVERTED[kind] != mode:
                raise ValueError(f"Layer {name or '<root>'!r} is already converted to {_CONVERTED[kind]!r}; cannot make it {mode!r}.")
        elif not isinstance(module, KEPT_LAYERS) and any(True for _ in module.parameters(recurse=False)):
            refused.append(f"{name or '<root>'!r} ({kind.__name__})")
    if refused and unsupported == "raise":
        raise ValueError(
            f"convert(mode={mode!r}) cannot convert these layers with parameters: {', '.join(refused)}. "
            "Pass unsupported='keep' to leave them as they are (they keep exact backprop)."
        )
    for module in to_convert:
        module.__class__ = table[type(module)]
        module._init_feedback(scale)
    return model


def convert(model: nn.Module, mode: str = "fa", *, unsupported: str = "raise", scale: float = 1.0) -> nn.Module:
    """Turn every plain ``nn.Linear`` / ``nn.Conv2d`` of ``model`` into its FA or DFA twin, in place.

    Each converted module keeps its identity, parameters (the same ``Parameter``
    objects, so an optimiser built before stays valid), hooks and state; only its
    class changes and it gains a ``feedback`` buffer. Returns ``model``.

    Args:
        model: any module; the root may itself be a supported layer.
        mode: ``"fa"`` (each layer's input error goes through its own fixed random B of
            W's shape), ``"dfa"`` (the error ``e`` at the model's output reaches each
            converted layer's input as ``e @ D_k``; the model's own forward call sets this
            up), or a sign-symmetric mode (Liao, Leibo & Poggio 2016; Moskovitz et al.
            2018), where ``B = M * sign(W)`` follows the signs of the current weights:
            ``"usf"`` (``M = scale``), ``"brsf"`` (``M = |R|`` redrawn at every training
            forward pass, i.e. every batch) or ``"frsf"`` (``M = |R|`` drawn once). ``R`` is
            drawn as FA's ``B``: the layer's default init (uniform in +-1/sqrt(fan_in))
            times ``scale`` (Liao et al. do not fix its distribution).
        unsupported: ``"raise"`` to refuse models with layers that would still
            transport their weights (the error names them), or ``"keep"`` to leave
            those layers as they are (they then backpropagate exactly).
        scale: multiplies the fixed random matrices.

    DFA limits: the model must return one tensor of shape ``(N, ...)`` and the
    backward pass must start from it (its gradient is ``e``); each converted
    layer needs a fixed input size (``D_k`` is drawn at the first forward pass
    that needs it; ``load_state_dict`` restores saved ones); a converted layer whose input
    is the data receives no feedback. For a chain (MLP, plain CNN) this is
    exactly DFA: hidden layer k gets ``(e D_{k+1}) * f'(a_k)``. Non-weight
    operations between layers (activations, pooling, BatchNorm, skip sums) stay
    in the path, so in a residual network a block's input error is its layers'
    DFA signals summed through the skip connections.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LSTM(8, 8))
        >>> convert(model)
        Traceback (most recent call last):
        ...
        ValueError: convert(mode='fa') cannot convert these layers with parameters: '2' (LSTM). Pass unsupported='keep' to leave them as they are (they keep exact backprop).
    """
    convert_layers(model, mode, unsupported=unsupported, scale=scale)
    if mode == "dfa" and not getattr(model, "_dfa_attached", False):
        attach_dfa(model, model)
        model._dfa_attached = True
    return model
