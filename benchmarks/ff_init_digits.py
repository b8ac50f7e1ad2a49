"""Forward-Forward's initialisation on digits (issue 23 follow-up): the width threshold of Hinton's code with
PyTorch's default initialisation against his N(0, 1/fan_in) one, MLP 3x256, 10 epochs, seed 0, one thread.

    python benchmarks/ff_init_digits.py --out benchmarks/results/ff-init
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import locallearn as ll
from locallearn import io

VARIANTS = {"hinton_init=False (PyTorch's default init)": {"hinton_init": False},
            "hinton_init=True (the default: N(0, 1/fan_in), zero biases)": {"hinton_init": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/ff-init")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = ll.data.load("digits")
    rows = []
    for label, kw in VARIANTS.items():
        ll.seed_everything(0)
        net = ll.build_mlp(ds.input_shape, (256, 256, 256), ds.num_classes)
        trainer = ll.Trainer(net, ds, rule=ll.rules.create("forward-forward", **kw),
                             config=ll.TrainConfig(epochs=args.epochs, progress=False))
        trainer.fit()
        rows.append((label, [100 * a for a in trainer.evaluate("test")]))
    out = Path(args.out)
    lines = [f"# Forward-Forward initialisation, digits, MLP 3x256, {args.epochs} epochs, seed 0", "",
             f"Command: `python benchmarks/ff_init_digits.py --out {args.out}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"locallearn {ll.__version__}, torch {torch.__version__}, 1 thread); threshold = the layer width (Hinton's code).", "",
             "| rule options | test accuracy % per exit (first -> last) |", "|---|---|"]
    lines += [f"| {label} | {' / '.join(f'{a:.1f}' for a in accs)} |" for label, accs in rows]
    io.write_text(out / "results.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
