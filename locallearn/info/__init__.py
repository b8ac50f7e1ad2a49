"""Mutual-information estimators (pure: arrays in, numbers out) and the information plane.

Nothing here imports the training engine; ``InformationPlane`` is a trainer callback by duck typing.

Every estimator family is a pure function plus a batch-accumulating class registered in
``ESTIMATORS``; results are in nats, or in bits with ``base=2``.

Example:
    >>> from locallearn.info import ESTIMATORS, binning_mi
    >>> ESTIMATORS.names()
    ['binning', 'hsic', 'kde', 'ksg', 'neural']
    >>> binning_mi([0, 1, 2, 3], [0, 1, 2, 3], discrete_x=True, discrete_y=True, base=2)
    2.0
"""

from ._estimator import ESTIMATORS, Estimator
from .binning import BinningMI, binning_mi, discrete_mi
from .hsic import HSIC, gaussian_gram, hsic, hsic_tensor
from .kde import KDEMI, kde_mi, kde_mi_tensor
from .ksg import KSGMI, ksg_mi
from .neural import NeuralMI, dv_bound, infonce_bound, neural_mi
from .plane import InformationPlane, average_planes, plane_point, plot_information_plane, save_plane

__all__ = [
    "ESTIMATORS", "Estimator",
    "BinningMI", "binning_mi", "discrete_mi",
    "HSIC", "gaussian_gram", "hsic", "hsic_tensor",
    "KDEMI", "kde_mi", "kde_mi_tensor",
    "KSGMI", "ksg_mi",
    "NeuralMI", "dv_bound", "infonce_bound", "neural_mi",
    "InformationPlane", "average_planes", "plane_point", "plot_information_plane", "save_plane",
]
