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
"""

from __future__ import annotations

import contextvars
import math
from copy import deepcopy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ._params import check_choice, check_number

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

InputGrad = Callable[[Tensor], Tensor]

#: Layers with parameters that :func:`convert` leaves as they are without complaint.
KEPT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
    nn.PReLU, nn.Embedding, nn.EmbeddingBag,
)


# --------------------------------------------------------------------------- autograd Functions


class _LinearFn(torch.autograd.Function):
    """``F.linear`` whose input gradient is made by ``input_grad(grad_output)``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, input_grad: InputGrad) -> Tensor:
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None)  # x only serves the weight gradient
        ctx.x_shape = x.shape
        ctx.input_grad = input_grad
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.input_grad(grad_out).view(ctx.x_shape)
        flat = grad_out.reshape(-1, grad_out.shape[-1])
        if ctx.needs_input_grad[1]:
            grad_w = flat.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = flat.sum(0)
        return grad_x, grad_w, grad_b, None


class _Conv2dFn(torch.autograd.Function):
    """``F.conv2d`` (numeric padding) whose input gradient is made by ``input_grad(grad_output)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, input_grad, stride, padding, dilation, groups):
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None)
        ctx.x_shape = x.shape
        ctx.input_grad = input_grad
        ctx.has_bias = bias is not None
        ctx.conf = (weight.shape, stride, padding, dilation, groups)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        weight_shape, stride, padding, dilation, groups = ctx.conf
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = ctx.input_grad(grad_out).view(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            grad_w = torch.nn.grad.conv2d_weight(x, weight_shape, grad_out, stride, padding, dilation, groups)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None


def fa_linear(x: Tensor, weight: Tensor, bias: Tensor | None, feedback: Tensor) -> Tensor:
    """``F.linear(x, weight, bias)`` whose backward uses ``feedback`` (shape of ``weight``) for the input.

    The input gradient is ``grad_output @ feedback``; the weight and bias gradients are the usual ones.

    Example:
        >>> w = torch.randn(3, 4, requires_grad=True)
        >>> x = torch.randn(2, 4, requires_grad=True)
        >>> fa_linear(x, w, None, w.detach()).sum().backward()
        >>> torch.allclose(x.grad, w.sum(0).expand(2, 4))
        True
    """
    if feedback.shape != weight.shape:
        raise ValueError(f"feedback must have the weight's shape {tuple(weight.shape)}; got {tuple(feedback.shape)}.")
    return _LinearFn.apply(x, weight, bias, lambda g: g.matmul(feedback))


def fa_conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    feedback: Tensor,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """``F.conv2d`` whose backward uses ``feedback`` (shape of ``weight``) in place of ``weight`` for the input.

    Example:
        >>> w = torch.randn(4, 2, 3, 3, requires_grad=True)
        >>> y = fa_conv2d(torch.randn(1, 2, 8, 8), w, None, torch.randn(4, 2, 3, 3), stride=2, padding=1)
        >>> y.shape
        torch.Size([1, 4, 4, 4])
    """
    if feedback.shape != weight.shape:
        raise ValueError(f"feedback must have the weight's shape {tuple(weight.shape)}; got {tuple(feedback.shape)}.")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    shape = x.shape

    def input_grad(g: Tensor) -> Tensor:
        return torch.nn.grad.conv2d_input(shape, feedback, g, stride, padding, dilation, groups)

    return _Conv2dFn.apply(x, weight, bias, input_grad, stride, padding, dilation, groups)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


# --------------------------------------------------------------------------- FA layers


def _draw_like(weight: Tensor, fan_in: int, scale: float) -> Tensor:
    """A fixed random matrix from the default init of nn.Linear / nn.Conv2d, times ``scale``."""
    bound = scale / math.sqrt(fan_in)
    return torch.empty_like(weight, requires_grad=False).uniform_(-bound, bound)


class _FAMixin:
    """Holds the ``feedback`` buffer; shared by FALinear and FAConv2d."""

    feedback: Tensor
    scale: float

    def _init_feedback(self, scale: float) -> None:
        self.scale = check_number(scale, name="scale", owner=type(self).__name__, low=0.0, low_inclusive=False)
        w = self.weight
        fan_in = w[0].numel()
        self.register_buffer("feedback", _draw_like(w.detach(), fan_in, self.scale))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}"


class FALinear(_FAMixin, nn.Linear):
    """``nn.Linear`` whose backward sends the error to its input through the fixed buffer ``feedback``.

    ``feedback`` has the weight's shape and is drawn from the weight's default init
    (uniform in +-1/sqrt(in_features)) times ``scale``; set it by hand to pick another B.

    Example:
        >>> layer = FALinear(4, 3, scale=0.5)
        >>> layer.feedback.shape, layer.feedback.abs().max() <= 0.25
        (torch.Size([3, 4]), tensor(True))
        >>> layer(torch.randn(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, scale: float = 1.0, **factory) -> None:
        super().__init__(in_features, out_features, bias, **factory)
        self._init_feedback(scale)

    def forward(self, x: Tensor) -> Tensor:
        return fa_linear(x, self.weight, self.bias, self.feedback)


class _Conv2dPadding:
    """Explicit padding for ``padding_mode != 'zeros'`` or string padding, as nn.Conv2d does it."""

    def _padded(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        if self.padding_mode == "zeros" and not isinstance(self.padding, str):
            return x, self.padding
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, self._reversed_padding_repeated_twice, mode=mode), (0, 0)


class FAConv2d(_FAMixin, _Conv2dPadding, nn.Conv2d):
    """``nn.Conv2d`` (any stride, padding, padding mode, dilation, groups) with FA backward.

    Example:
        >>> conv = FAConv2d(3, 8, 3, stride=2, padding=1)
        >>> conv.feedback.shape
        torch.Size([8, 3, 3, 3])
        >>> conv(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, scale: float = 1.0,
                 **factory) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, **factory)
        self._init_feedback(scale)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        return fa_conv2d(x, self.weight, self.bias, self.feedback, self.stride, padding, self.dilation, self.groups)


# --------------------------------------------------------------------------- sign symmetry


class _SignMixin:
    """Sign-symmetric feedback ``B = M * sign(W)``, rebuilt from the current ``W`` at every
    forward pass that records a graph; subclasses say what the magnitudes ``M`` are. Put in
    front of an FA layer, whose backward then uses this ``B``.

    ``feedback`` (a non-persistent buffer) holds the ``B`` of the latest training forward pass.
    """

    feedback: Tensor
    scale: float

    def _init_feedback(self, scale: float) -> None:
        self.scale = check_number(scale, name="scale", owner=type(self).__name__, low=0.0, low_inclusive=False)
        self._init_magnitude()
        self.register_buffer("feedback", self._sign_feedback(), persistent=False)

    def _init_magnitude(self) -> None:
        """Draw any fixed magnitudes (only ``frsf`` has some)."""

    def _magnitude(self) -> Tensor | float:
        raise NotImplementedError

    def _sign_feedback(self) -> Tensor:
        return self.weight.detach().sign() * self._magnitude()

    def _random_magnitude(self) -> Tensor:
        """``|R|``, ``R`` drawn as FA draws its ``B``: the layer's default init times ``scale``."""
        w = self.weight.detach()
        return _draw_like(w, w[0].numel(), self.scale).abs_()

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and self.weight.requires_grad:
            self.feedback = self._sign_feedback()
        return super().forward(x)


class _UniformMagnitude:
    """uSF (Liao et al. 2016): ``B = scale * sign(W)``."""

    def _magnitude(self) -> float:
        return self.scale


class _BatchRandomMagnitude:
    """brSF (Liao et al. 2016): ``B = |R| * sign(W)`` with ``R`` redrawn at every training forward pass."""

    def _magnitude(self) -> Tensor:
        return self._random_magnitude()


class _FixedRandomMagnitude:
    """frSF (Liao et al. 2016): ``B = |R| * sign(W)`` with ``|R|`` drawn once (buffer ``magnitude``)."""

    magnitude: Tensor

    def _init_magnitude(self) -> None:
        self.register_buffer("magnitude", self._random_magnitude())

    def _magnitude(self) -> Tensor:
        return self.magnitude


class SignLinear(_SignMixin, FALinear):
    """``nn.Linear`` whose backward sends the error to its input through ``M * sign(W)``.

    Use a mode class (:class:`USFLinear`, :class:`BRSFLinear`, :class:`FRSFLinear`) or
    :func:`convert` with ``mode="usf" | "brsf" | "frsf"``.

    Example:
        >>> layer = USFLinear(4, 3)
        >>> y = layer(torch.randn(2, 4))
        >>> torch.equal(layer.feedback, layer.weight.detach().sign())
        True
    """


class SignConv2d(_SignMixin, FAConv2d):
    """``nn.Conv2d`` whose backward sends the error to its input through ``M * sign(W)``.

    Example:
        >>> conv = FRSFConv2d(2, 4, 3, padding=1)
        >>> bool((conv.feedback.sign() == conv.weight.detach().sign()).all()), conv.magnitude.min() >= 0
        (True, tensor(True))
    """


class USFLinear(_UniformMagnitude, SignLinear):
    """uSF ``nn.Linear``: ``B = scale * sign(W)``."""


class BRSFLinear(_BatchRandomMagnitude, SignLinear):
    """brSF ``nn.Linear``: ``B = |R| * sign(W)``, ``R`` redrawn every training batch."""


class FRSFLinear(_FixedRandomMagnitude, SignLinear):
    """frSF ``nn.Linear``: ``B = |R| * sign(W)``, ``|R|`` fixed."""


class USFConv2d(_UniformMagnitude, SignConv2d):
    """uSF ``nn.Conv2d``: ``B = scale * sign(W)``."""


class BRSFConv2d(_BatchRandomMagnitude, SignConv2d):
    """brSF ``nn.Conv2d``: ``B = |R| * sign(W)``, ``R`` redrawn every training batch."""


class FRSFConv2d(_FixedRandomMagnitude, SignConv2d):
    """frSF ``nn.Conv2d``: ``B = |R| * sign(W)``, ``|R|`` fixed."""


# --------------------------------------------------------------------------- DFA


class _ErrorSlot:
    """Receives the gradient at the network output during backward (one slot per forward call)."""

    def __init__(self) -> None:
        self.error: Tensor | None = None
        self.layers: list[tuple["_DFAMixin", int, torch.dtype, torch.device]] = []

    def fill(self, grad: Tensor) -> None:
        self.error = grad.reshape(grad.shape[0], -1)

    def get(self) -> Tensor:
        if self.error is None:
            raise RuntimeError("DFA: the output error is missing; backward must start from the converted model's output.")
        return self.error


_CURRENT_SLOT: contextvars.ContextVar[_ErrorSlot | None] = contextvars.ContextVar("dfa_slot", default=None)


class _DFAMixin:
    """DFA layer: its input receives ``e @ feedback`` with ``e`` the error at the network output.

    ``feedback`` (shape ``(outputs, input numel per sample)``) is drawn at the first forward
    pass under :func:`convert` (``mode='dfa'``), uniform in +-scale/sqrt(outputs).
    """

    feedback: Tensor | None
    scale: float

    def _init_feedback(self, scale: float) -> None:
        self.scale = check_number(scale, name="scale", owner=type(self).__name__, low=0.0, low_inclusive=False)
        self.register_buffer("feedback", None)

    def _dfa_input_grad(self, x: Tensor) -> InputGrad | None:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return None
        slot = _CURRENT_SLOT.get()
        if slot is None:
            raise RuntimeError(
                f"{type(self).__name__} must run inside the model given to convert(..., mode='dfa'), "
                "whose output error it needs."
            )
        numel = x[0].numel()
        if self.feedback is not None and self.feedback.shape[1] != numel:
            raise ValueError(
                f"{type(self).__name__}: DFA feedback was drawn for inputs of {self.feedback.shape[1]} values "
                f"per sample; got {numel}. DFA needs a fixed input size."
            )
        slot.layers.append((self, numel, x.dtype, x.device))

        def input_grad(g: Tensor) -> Tensor:
            return slot.get().matmul(self.feedback)

        return input_grad

    def _draw_dfa(self, outputs: int, numel: int, dtype: torch.dtype, device: torch.device) -> None:
        if self.feedback is None:
            bound = self.scale / math.sqrt(outputs)
            self.feedback = torch.empty(outputs, numel, dtype=dtype, device=device).uniform_(-bound, bound)
        elif self.feedback.shape[0] != outputs:
            raise ValueError(
                f"{type(self).__name__}: DFA feedback was drawn for {self.feedback.shape[0]} outputs; got {outputs}."
            )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + "feedback"
        if self.feedback is None and key in state_dict:  # drawn lazily: make room for the saved one
            self.feedback = torch.empty_like(state_dict[key], device=self.weight.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}"


class DFALinear(_DFAMixin, nn.Linear):
    """``nn.Linear`` for direct feedback alignment; use it through :func:`convert` (``mode='dfa'``).

    Example:
        >>> model = convert(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), mode="dfa")
        >>> type(model[2]).__name__
        'DFALinear'
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, scale: float = 1.0, **factory) -> None:
        super().__init__(in_features, out_features, bias, **factory)
        self._init_feedback(scale)

    def forward(self, x: Tensor) -> Tensor:
        input_grad = self._dfa_input_grad(x)
        if input_grad is None:
            return F.linear(x, self.weight, self.bias)
        return _LinearFn.apply(x, self.weight, self.bias, input_grad)


class DFAConv2d(_DFAMixin, _Conv2dPadding, nn.Conv2d):
    """``nn.Conv2d`` for direct feedback alignment; use it through :func:`convert` (``mode='dfa'``).

    Example:
        >>> model = convert(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)), mode="dfa")
        >>> model(torch.randn(3, 1, 4, 4)).sum().backward()
        >>> model[3].feedback.shape, model[0].feedback is None  # the conv's input is the data: no feedback
        (torch.Size([2, 16]), True)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, scale: float = 1.0,
                 **factory) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, **factory)
        self._init_feedback(scale)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        input_grad = self._dfa_input_grad(x)
        if input_grad is None:
            return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return _Conv2dFn.apply(x, self.weight, self.bias, input_grad, self.stride, padding, self.dilation,
                               self.groups)


def attach_dfa(first: nn.Module, last: nn.Module) -> None:
    """Make one DFA pass run from ``first``'s forward call to ``last``'s, whose output is the network output.

    A slot for the output error opens when ``first`` is called and closes when ``last``
    returns; the DFA layers called in between read their error from it, and their
    feedback matrices are drawn then if still missing. ``convert(model, mode='dfa')``
    calls ``attach_dfa(model, model)``; a rule whose network is called piece by piece
    passes its first block and last head.

    Example:
        >>> body, top = convert_layers(nn.Sequential(nn.Linear(3, 5), nn.ReLU()), "dfa"), convert_layers(nn.Linear(5, 2), "dfa")
        >>> attach_dfa(body, top)
        >>> top(body(torch.randn(4, 3, requires_grad=True))).sum().backward()
        >>> body[0].feedback.shape, top.feedback.shape
        (torch.Size([2, 3]), torch.Size([2, 5]))
    """
    tokens: list[contextvars.Token] = []

    def open_slot(module: nn.Module, args) -> None:
        tokens.append(_CURRENT_SLOT.set(_ErrorSlot()))

    def close_slot(module: nn.Module, args, output) -> None:
        slot = _CURRENT_SLOT.get()
        if tokens:
            _CURRENT_SLOT.reset(tokens.pop())
        if output is None or slot is None or not slot.layers:  # None: the forward raised
            return
        if not isinstance(output, Tensor):
            raise TypeError(
                f"DFA needs the network to return one tensor (its error drives every layer); got {type(output).__name__}."
            )
        outputs = output[0].numel()
        for layer, numel, dtype, device in slot.layers:
            layer._draw_dfa(outputs, numel, dtype, device)
        if output.requires_grad:
            output.register_hook(slot.fill)

    first.register_forward_pre_hook(open_slot)
    last.register_forward_hook(close_slot, always_call=True)


# --------------------------------------------------------------------------- convert

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
