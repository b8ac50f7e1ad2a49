"""Feedback alignment layers (Lillicrap et al., Nature Communications 2016): ``nn.Linear`` / ``nn.Conv2d``
whose backward sends the error to the input through a fixed random ``feedback`` buffer of the weight's shape.

Example:
    >>> import torch
    >>> FALinear(4, 3)(torch.randn(2, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from locallearn._params import check_number
from locallearn.feedback.functional import fa_conv2d, fa_linear


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


class _FeedbackConv2d(nn.Conv2d):
    """``nn.Conv2d``'s constructor plus ``_init_feedback(scale)`` (FA's or DFA's, from the mixin before it),
    and the explicit padding for ``padding_mode != 'zeros'`` or string padding, as nn.Conv2d does it."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, scale: float = 1.0,
                 **factory) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, **factory)
        self._init_feedback(scale)

    def _padded(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        if self.padding_mode == "zeros" and not isinstance(self.padding, str):
            return x, self.padding
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, self._reversed_padding_repeated_twice, mode=mode), (0, 0)


class FAConv2d(_FAMixin, _FeedbackConv2d):
    """``nn.Conv2d`` (any stride, padding, padding mode, dilation, groups) with FA backward.

    Example:
        >>> conv = FAConv2d(3, 8, 3, stride=2, padding=1)
        >>> conv.feedback.shape
        torch.Size([8, 3, 3, 3])
        >>> conv(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 8, 8, 8])
    """

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded(x)
        return fa_conv2d(x, self.weight, self.bias, self.feedback, self.stride, padding, self.dilation, self.groups)
