"""Shared by the new-rule tests: train a small net on the embedded digits data and return its test accuracy per exit."""

from __future__ import annotations

import locallearn as ll


def digits_accuracy(rule, *, widths=(64, 64), epochs=5, schedule="simultaneous", cnn=False) -> list[float]:
    ds = ll.data.load("digits")
    ll.seed_everything(0)
    build = ll.build_cnn if cnn else ll.build_mlp
    net = build(ds.input_shape, widths, ds.num_classes)
    config = ll.TrainConfig(epochs=epochs, batch_size=32, progress=False)
    return ll.Trainer(net, ds, rule=rule, schedule=schedule, config=config).fit().final("test")
