"""Sign-symmetric feedback (Liao, Leibo & Poggio, AAAI 2016; Moskovitz et al. 2018): ``B = M * sign(W)``
follows the signs of the current weights, with magnitudes ``M`` all one (``usf``), redrawn every
training batch (``brsf``) or drawn once (``frsf``).

Example:
    >>> import torch
    >>> layer = USFLinear(4, 3)
    >>> _ = layer(torch.randn(2, 4))
    >>> torch.equal(layer.feedback, layer.weight.detach().sign())
    True
"""

from __future__ import annotations

import torch
from torch import Tensor

from locallearn._params import check_number
from locallearn.feedback.fa import FAConv2d, FALinear, _draw_like


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
