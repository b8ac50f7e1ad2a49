"""Direct feedback alignment layers (Nøkland, NeurIPS 2016): the error ``e`` at the network output reaches
each converted layer's input through its own fixed random matrix ``D_k``. The output error is caught by
hooks that :func:`attach_dfa` registers on the network's first and last modules (one slot per forward
call, held in a context variable, so nested passes never mix).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from locallearn.feedback import convert
    >>> model = convert(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), mode="dfa")
    >>> model(torch.randn(4, 3)).sum().backward()
    >>> model[2].feedback.shape, model[0].feedback is None  # the first layer's input is the data: no feedback
    (torch.Size([2, 5]), True)
"""

from __future__ import annotations

import contextvars
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from locallearn._params import check_number
from locallearn.feedback.fa import _FeedbackConv2d
from locallearn.feedback.functional import InputGrad, _Conv2dFn, _LinearFn


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
        >>> from locallearn.feedback import convert
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


class DFAConv2d(_DFAMixin, _FeedbackConv2d):
    """``nn.Conv2d`` for direct feedback alignment; use it through :func:`convert` (``mode='dfa'``).

    Example:
        >>> from locallearn.feedback import convert
        >>> model = convert(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)), mode="dfa")
        >>> model(torch.randn(3, 1, 4, 4)).sum().backward()
        >>> model[3].feedback.shape, model[0].feedback is None  # the conv's input is the data: no feedback
        (torch.Size([2, 16]), True)
    """

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
        >>> from locallearn.feedback import convert_layers
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
