"""The CIFAR augmentations: cutout as local-loss applies it, reflect-padded crops (InfoPro), per-channel padding."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from locallearn.data import augment


def _cutout_masks(height: int, width: int, length: int) -> dict[bytes, tuple[int, int]]:
    """Every mask the local-loss formula can give: centre (y, x) anywhere, box clipped (np.clip) at the borders."""
    masks = {}
    for y in range(height):
        for x in range(width):
            keep = torch.ones(height, width)
            y1, y2 = min(max(y - length // 2, 0), height), min(max(y + length // 2, 0), height)
            x1, x2 = min(max(x - length // 2, 0), width), min(max(x + length // 2, 0), width)
            keep[y1:y2, x1:x2] = 0.0
            masks[keep.numpy().tobytes()] = (y, x)
    return masks


def test_cutout_zeroes_one_clipped_square_per_image_as_the_local_loss_formula_and_reaches_every_centre():
    height, width, length = 8, 7, 4
    x = torch.rand(1500, 3, height, width) + 1.0  # no zeros of its own
    out = augment.Cutout(length=length)(x, torch.Generator().manual_seed(0))
    allowed = _cutout_masks(height, width, length)
    keep = (out != 0).to(torch.float32)
    assert torch.equal(keep[:, 0], keep[:, 1]) and torch.equal(keep[:, 0], keep[:, 2])  # one mask for every channel
    seen = {mask.numpy().tobytes() for mask in keep[:, 0]}
    assert seen <= set(allowed)  # each image's cut is one the formula allows
    assert seen == set(allowed)  # and every centre occurs (uniform over all pixels)
    torch.testing.assert_close(out, x * keep, rtol=0, atol=0)  # the rest of the image is untouched


def test_cutout_is_seeded_and_holes_add_up():
    x = torch.ones(50, 1, 32, 32)
    first = augment.Cutout(length=16)(x, torch.Generator().manual_seed(4))
    assert torch.equal(first, augment.Cutout(length=16)(x, torch.Generator().manual_seed(4)))
    assert not torch.equal(first, augment.Cutout(length=16)(x, torch.Generator().manual_seed(5)))
    assert int((first == 0).sum(dim=(1, 2, 3)).max()) == 16 * 16  # a full square when the centre is inside
    two = augment.Cutout(length=16, holes=2)(x, torch.Generator().manual_seed(4))
    assert float((two == 0).float().mean()) > float((first == 0).float().mean())
    with pytest.raises(ValueError, match="The 'length' parameter of Cutout must be an int >= 1. Got 0 instead."):
        augment.Cutout(length=0)


def test_reflect_crop_is_infopros_reflect_pad_then_crop_at_the_drawn_offset():
    x = torch.randn(5, 3, 6, 6)
    out = augment.RandomCrop(padding=4, fill="reflect")(x, torch.Generator().manual_seed(2))
    offsets = torch.randint(0, 9, (2, 5), generator=torch.Generator().manual_seed(2))
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(5):
        top, left = int(offsets[0, i]), int(offsets[1, i])
        torch.testing.assert_close(out[i], padded[i, :, top : top + 6, left : left + 6], rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs padding < the image side"):
        augment.RandomCrop(padding=4, fill="reflect")(torch.zeros(1, 1, 4, 4), torch.Generator())


def test_min_padding_is_per_channel_for_colour_images():
    x = torch.stack([torch.full((3, 3), v) for v in (-2.0, 0.5, 3.0)]).unsqueeze(0).repeat(40, 1, 1, 1)
    x[:, :, 1, 1] += 1.0
    out = augment.RandomCrop(padding=1)(x, torch.Generator().manual_seed(0))
    for c, v in enumerate((-2.0, 0.5, 3.0)):
        assert set(out[:, c].flatten().tolist()) <= {v, v + 1.0}  # padding of channel c is channel c's minimum


def test_the_cifar_recipes_parse():
    assert repr(augment.parse("crop4,flip,cutout16")) == "Compose(RandomCrop(padding=4), HorizontalFlip(p=0.5), Cutout(length=16))"
    assert repr(augment.parse("crop4reflect,flip")) == "Compose(RandomCrop(padding=4, fill='reflect'), HorizontalFlip(p=0.5))"
    with pytest.raises(ValueError, match="cutoutN"):
        augment.parse("cutout")
