"""A small CNN trained a little on digits, shared by the early-exit test modules."""

import torch

from locallearn import build_cnn, data, seed_everything


def trained_digits_cnn(*, every_exit: bool, steps: int):
    """Digits and a 3-stage CNN after ``steps`` Adam steps on the summed loss of every exit
    (``every_exit``) or of the last exit only (a backbone for the auxiliary heads to be fitted on)."""
    ds = data.load("digits")
    seed_everything(0)
    net = build_cnn((1, 8, 8), channels=(4, 8, 8), num_classes=10)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        optimiser.zero_grad()
        logits = net(ds.x_train[:512]) if every_exit else net(ds.x_train[:512])[-1:]
        sum(torch.nn.functional.cross_entropy(z, ds.y_train[:512]) for z in logits).backward()
        optimiser.step()
    return ds, net
