"""Functional feedback alignment: ``F.linear`` / ``F.conv2d`` whose backward sends the error to the
input through ``feedback`` instead of the weight (the only custom autograd Functions in locallearn).

Example:
    >>> import torch
    >>> w = torch.randn(3, 4)
    >>> fa_linear(torch.randn(2, 4), w, None, torch.randn(3, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

InputGrad = Callable[[Tensor], Tensor]


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
