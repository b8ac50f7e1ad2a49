"""locallearn: block-wise local learning rules, early exits and mutual-information analysis.

Example:
    >>> import locallearn as ll
    >>> ds = ll.data.load("synthetic")
    >>> ll.seed_everything(0)
    >>> net = ll.build_mlp(ds.input_shape, (32, 32), ds.num_classes)
    >>> result = ll.train(net, ds, rule="local", schedule="sequential", epochs=1, progress=False)
    >>> len(result.final("test"))
    2
"""

__version__ = "0.1.0"

from locallearn import data, exits, graphs, lm, loggers, models, plugins, rules, schedules, tokens
from locallearn.callbacks import BatchEnd
from locallearn.builders import build_cnn, build_mlp
from locallearn.cuts import CutSearch, search_cuts
from locallearn.engine import NonFiniteLossError, StepResult, backward, prepare
from locallearn.heads import HEADS, make_head
from locallearn.net import LocalNet, Stage, StageShape
from locallearn.trainer import Callback, RunResult, TrainConfig, Trainer, seed_everything, train
from locallearn.wrap import wrap
from locallearn.experiment import RunSpec
from locallearn.compare import summarise  # the grid itself is locallearn.compare.compare (the module keeps its name)
from locallearn.compare_report import write_outputs

__all__ = [
    "HEADS", "BatchEnd", "Callback", "CutSearch", "LocalNet", "NonFiniteLossError", "RunResult", "RunSpec", "Stage", "StageShape",
    "StepResult", "TrainConfig", "Trainer",
    "backward", "build_cnn", "build_mlp", "data", "exits", "feedback", "graphs", "info", "lm", "loggers", "make_head", "models",
    "plugins", "prepare", "rules", "schedules", "search_cuts", "seed_everything", "summarise", "tokens", "train", "wrap",
    "write_outputs",
]
