"""Train-time augmentation on whole batches of tensors: vectorised, seeded, on any device.

A transform is called as ``transform(x, generator)`` on a batch ``x`` of shape
``(N, C, H, W)`` and returns a new batch of the same shape. The random draws come
from the CPU ``generator`` (one per epoch in the trainer), so a seeded run, and a
run resumed from a checkpoint, augments exactly the same way.

``parse("crop2,flip")`` builds the local-loss recipe for 28x28 images (Nøkland &
Eidnes 2019: a 2-pixel random crop and a horizontal flip); ``"crop4,flip,cutout16"``
is its CIFAR recipe with cutout (DeVries & Taylor 2017), and ``"crop4reflect,flip"``
InfoPro's CIFAR recipe (Wang et al. 2021: reflect-padded 4-pixel crop and flip).
It is what ``--augment`` and ``TrainConfig.augment`` take.

Example:
    >>> import torch
    >>> augment = parse("crop2,flip")
    >>> x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    >>> augment(x, torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 4, 4])
    >>> augment
    Compose(RandomCrop(padding=2), HorizontalFlip(p=0.5))
"""

from __future__ import annotations

import re
from typing import Protocol, Sequence

import torch
from torch.nn import functional as F

from locallearn._params import check_number


class BatchTransform(Protocol):
    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def _require_images(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(
            f"{name} works on image batches of shape (N, C, H, W); got a batch of shape {tuple(x.shape)}. "
            "Augment image datasets only (digits, mnist, fashion-mnist, cifar10, cifar100, svhn, stl10, image-folder)."
        )


class RandomCrop:
    """Pad every image by ``padding`` pixels and crop it back at a random offset (per image).

    The padding (``fill``) is

    - ``"min"`` (default): each image's own per-channel minimum. For MNIST-like images
      that is the background, exactly what zero-padding the raw pixels gives after
      normalisation; for natural images (CIFAR, SVHN) it approximates the zero padding of
      raw pixels that torchvision's ``RandomCrop(32, padding=4)`` does in local-loss
      (raw 0 is each channel's lowest value after normalisation);
    - ``"reflect"``: the border mirrored, as InfoPro pads CIFAR (``F.pad(..., mode="reflect")``);
    - a number: that constant.

    Example:
        >>> x = torch.ones(3, 1, 5, 5)
        >>> out = RandomCrop(padding=1, fill=0.0)(x, torch.Generator().manual_seed(1))
        >>> out.shape, bool((out.sum(dim=(1, 2, 3)) >= 16).all())  # at most one row and one column padded
        (torch.Size([3, 1, 5, 5]), True)
    """

    def __init__(self, *, padding: int = 2, fill: float | str = "min") -> None:
        self.padding = check_number(padding, name="padding", owner="RandomCrop", low=1, integer=True)
        if fill not in ("min", "reflect"):
            check_number(fill, name="fill", owner="RandomCrop")
        self.fill = fill

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _require_images(x, "RandomCrop")
        n, _, height, width = x.shape
        p = self.padding
        if self.fill == "reflect":
            if p >= min(height, width):
                raise ValueError(f"RandomCrop(fill='reflect') needs padding < the image side; got padding {p} for {height}x{width} images.")
            padded = F.pad(x, (p, p, p, p), mode="reflect")
        else:
            padded = F.pad(x, (p, p, p, p), value=0.0)
            if self.fill == "min":
                background = x.amin(dim=(2, 3), keepdim=True)
            else:
                background = torch.full((n, 1, 1, 1), float(self.fill), dtype=x.dtype, device=x.device)
            inside = torch.zeros_like(padded[:1, :1], dtype=torch.bool)
            inside[..., p : p + height, p : p + width] = True
            padded = torch.where(inside, padded, background)
        offsets = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        rows = (offsets[0, :, None] + torch.arange(height, device=x.device)).view(n, 1, height, 1)
        cols = (offsets[1, :, None] + torch.arange(width, device=x.device)).view(n, 1, 1, width)
        batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        return padded[batch, channel, rows, cols]

    def __repr__(self) -> str:
        fill = "" if self.fill == "min" else f", fill={self.fill!r}" if self.fill == "reflect" else f", fill={self.fill}"
        return f"RandomCrop(padding={self.padding}{fill})"


class HorizontalFlip:
    """Mirror each image left-right with probability ``p`` (drawn per image).

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0]]]])
        >>> HorizontalFlip(p=1.0)(x, torch.Generator())
        tensor([[[[2., 1.]]]])
    """

    def __init__(self, *, p: float = 0.5) -> None:
        self.p = check_number(p, name="p", owner="HorizontalFlip", low=0.0, high=1.0)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _require_images(x, "HorizontalFlip")
        flip = (torch.rand(len(x), generator=generator) < self.p).to(x.device).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(3), x)

    def __repr__(self) -> str:
        return f"HorizontalFlip(p={self.p})"


class Cutout:
    """Zero one ``length x length`` square per image at a random centre (DeVries & Taylor 2017).

    As local-loss applies it (Nøkland & Eidnes 2019, ``Cutout(n_holes=1, length=16)``
    after normalisation): the centre ``(y, x)`` is uniform over all pixels, the square
    ``[y - length//2, y + length//2) x [x - length//2, x + length//2)`` is clipped at the
    borders (near an edge less is cut), and every channel is multiplied by zero there
    (zero is the training mean after normalisation). ``holes`` squares per image
    (default 1) may overlap.

    Example:
        >>> out = Cutout(length=2)(torch.ones(1, 1, 4, 4), torch.Generator().manual_seed(0))
        >>> int((out == 0).sum()) in (1, 2, 4)  # a 2x2 square, clipped at an edge
        True
    """

    def __init__(self, *, length: int = 16, holes: int = 1) -> None:
        self.length = check_number(length, name="length", owner="Cutout", low=1, integer=True)
        self.holes = check_number(holes, name="holes", owner="Cutout", low=1, integer=True)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        _require_images(x, "Cutout")
        n, _, height, width = x.shape
        half = self.length // 2
        centre_y = torch.randint(0, height, (n, self.holes, 1), generator=generator).to(x.device)
        centre_x = torch.randint(0, width, (n, self.holes, 1), generator=generator).to(x.device)
        rows, cols = torch.arange(height, device=x.device), torch.arange(width, device=x.device)
        in_rows = (rows >= centre_y - half) & (rows < centre_y + half)  # (n, holes, H)
        in_cols = (cols >= centre_x - half) & (cols < centre_x + half)  # (n, holes, W)
        cut = (in_rows[..., :, None] & in_cols[..., None, :]).any(dim=1)  # (n, H, W)
        return x * (~cut).to(x.dtype)[:, None]

    def __repr__(self) -> str:
        holes = "" if self.holes == 1 else f", holes={self.holes}"
        return f"Cutout(length={self.length}{holes})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[BatchTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, generator)
        return x

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"

    def check(self, input_shape: tuple[int, ...]) -> None:
        """Refuse a transform that does not fit images of ``input_shape`` (C, H, W): a crop whose padding is
        not smaller than the image would give crops holding no pixel of it.

        Example:
            >>> parse("crop99").check((1, 8, 8))
            Traceback (most recent call last):
            ...
            ValueError: Augmentation crop99 pads by 99 pixels, as much as or more than the 8 x 8 images: some crops would hold no pixel of the image. Use a padding below 8 (crop2 is usual for 28 x 28).
        """
        for transform in self.transforms:
            if isinstance(transform, RandomCrop):
                if len(input_shape) != 3:
                    raise ValueError(f"Augmentation crop{transform.padding} needs images (C, H, W); the inputs have shape "
                                     f"{tuple(input_shape)}.")
                size = min(input_shape[1:])
                if transform.padding >= size:
                    raise ValueError(
                        f"Augmentation crop{transform.padding} pads by {transform.padding} pixels, as much as or more than "
                        f"the {input_shape[1]} x {input_shape[2]} images: some crops would hold no pixel of the image. "
                        f"Use a padding below {size} (crop2 is usual for 28 x 28)."
                    )


_SPEC = {
    r"crop(\d+)": lambda m: RandomCrop(padding=int(m.group(1))),
    r"crop(\d+)reflect": lambda m: RandomCrop(padding=int(m.group(1)), fill="reflect"),
    r"cutout(\d+)": lambda m: Cutout(length=int(m.group(1))),
    r"flip": lambda m: HorizontalFlip(),
    r"flip([01](?:\.\d+)?)": lambda m: HorizontalFlip(p=float(m.group(1))),
}


def parse(spec: str) -> Compose | None:
    """``"crop2,flip"`` -> the transform; ``""`` or ``"none"`` -> ``None``.

    Items: ``cropN`` (random crop with N-pixel padding), ``cropNreflect`` (the same,
    reflect-padded), ``flip`` (horizontal flip, p = 0.5), ``flipP`` (flip with
    probability P) and ``cutoutN`` (cutout of an N x N square).
    """
    if spec.strip().lower() in ("", "none"):
        return None
    transforms = []
    for item in spec.split(","):
        item = item.strip().lower()
        for pattern, make in _SPEC.items():
            match = re.fullmatch(pattern, item)
            if match:
                transforms.append(make(match))
                break
        else:
            raise ValueError(
                f"Unknown augmentation {item!r} in {spec!r}; expected comma-separated items from: "
                "cropN (random crop with N-pixel padding, e.g. crop2), cropNreflect (reflect-padded, e.g. crop4reflect), "
                "flip, flipP (e.g. flip0.5), cutoutN (cutout of an N x N square, e.g. cutout16)."
            )
    return Compose(transforms)
