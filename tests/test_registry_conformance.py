"""Every registered name of every axis passes its public conformance check, and the checks catch
what they are for. Registering a name without a passing check fails this suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from locallearn import data, exits, heads, info, models, rules, schedules
from locallearn.models import MODELS, ModelFamily
from locallearn.net import LocalNet, Stage
from locallearn.testing import check_dataset, check_exit_policy, check_head, check_model
from test_data_formats import _write_stl10, _write_svhn, _write_tree


def _idx(path: Path, array: np.ndarray) -> None:
    """One IDX file (unsigned bytes) of ``array``, in the format the MNIST files use."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _idx_folder(folder: Path) -> Path:
    """A folder of the four (Fashion-)MNIST IDX files, small images, just over the 5,000 validation rows."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 5100), ("t10k", 60)):
        images = rng.integers(0, 256, size=(n, 4, 4))
        labels = rng.integers(0, 10, size=n)
        _idx(folder / f"{stem}-images-idx3-ubyte", images)
        _idx(folder / f"{stem}-labels-idx1-ubyte", labels)
    return folder


def _mnist1d(folder: Path) -> tuple[None, dict]:
    pytest.importorskip("mnist1d")
    return None, {}


def _svhn(folder: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 12)):
        _write_svhn(folder, split, rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8), rng.integers(1, 11, size=n))
    return folder, {"val_size": 8}


def _stl10(folder: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    (folder / "stl10_binary").mkdir()
    for split, n in (("train", 30), ("test", 10)):
        _write_stl10(folder / "stl10_binary", split, rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8),
                     rng.integers(1, 11, size=n))
    return folder, {"val_size": 6}


def _image_tree(folder: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    _write_tree(folder, {"ant": 12, "bee": 12}, colour_of=lambda k, i: tuple(int(v) for v in rng.integers(0, 256, 3)))
    return folder, {"val_size": 4}


# dataset name -> writes its on-disk fixture into a folder; gives the data_dir (None: embedded) and loader options
DATASET_FIXTURES = {
    "digits": lambda folder: (None, {}),
    "synthetic": lambda folder: (None, {}),
    "fashion-mnist": lambda folder: (_idx_folder(folder), {}),
    "mnist": lambda folder: (_idx_folder(folder), {}),
    "mnist1d": _mnist1d,
    "cifar10": lambda folder: (data.write_cifar_fixture(folder, n_train=60, n_test=20, seed=0), {"val_size": 10}),
    "cifar100": lambda folder: (data.write_cifar_fixture(folder, n_train=120, n_test=20, variant="cifar100", seed=0), {"val_size": 10}),
    "svhn": _svhn,
    "stl10": _stl10,
    "image-folder": _image_tree,
}


def test_every_registered_dataset_has_a_fixture_here():
    missing = sorted(set(data.DATASETS.names()) - set(DATASET_FIXTURES))
    assert not missing, f"add a fixture writer for {missing} to DATASET_FIXTURES in {__file__}"


@pytest.mark.parametrize("name", data.DATASETS.names())
def test_every_dataset_conforms(name, tmp_path):
    folder, options = DATASET_FIXTURES[name](tmp_path)
    check_dataset(name, data_dir=folder, **options)


@pytest.mark.parametrize("name", models.names())
def test_every_model_conforms(name):
    check_model(name)


@pytest.mark.parametrize("name", heads.HEADS.names())
def test_every_head_conforms(name):
    check_head(name)


@pytest.mark.parametrize("name", exits.EXIT_POLICIES.names())
def test_every_exit_policy_conforms(name):
    check_exit_policy(name)


def test_every_axis_lists_names_with_a_check():
    """The axes this suite and test_conformance / test_info_estimators cover are all non-empty registries."""
    for registry in (rules.RULES, schedules.SCHEDULES, heads.HEADS, exits.EXIT_POLICIES, info.ESTIMATORS, MODELS, data.DATASETS):
        assert registry.names(), registry.kind


class _Registered:
    """Registers a test class under a temporary name and removes it afterwards."""

    def __init__(self, registry, name, cls):
        self.registry, self.name, self.cls = registry, name, cls

    def __enter__(self):
        self.registry.register(self.name)(self.cls)
        return self.cls

    def __exit__(self, *exc):
        del self.registry._classes[self.name]


class _Toy(ModelFamily):
    """One linear stage per ``stages``."""

    tiny_input_shape = (4,)

    def __init__(self, *, stages: int = 1) -> None:
        self.stages = stages

    def num_stages(self) -> int:
        return self.stages

    def build(self, input_shape, num_classes) -> LocalNet:
        return LocalNet([Stage(nn.Linear(input_shape[0], 4), nn.Linear(4, num_classes)) for _ in range(self.stages)])

    @classmethod
    def tiny(cls, stages: int):
        return cls(stages=stages)


def test_check_model_passes_a_correct_toy():
    with _Registered(MODELS, "test-toy", _Toy):
        check_model("test-toy")


def test_check_model_catches_a_wrong_stage_count():
    class Liar(_Toy):
        def num_stages(self) -> int:
            return self.stages + 1

    with _Registered(MODELS, "test-liar", Liar), pytest.raises(AssertionError, match="num_stages"):
        check_model("test-liar")


def test_check_model_catches_a_build_that_ignores_the_seed():
    class Unseeded(_Toy):
        def build(self, input_shape, num_classes) -> LocalNet:
            net = super().build(input_shape, num_classes)
            with torch.no_grad():
                net.stages[0].block.weight.copy_(torch.from_numpy(np.random.default_rng().normal(size=(4, 4))))
            return net

    with _Registered(MODELS, "test-unseeded", Unseeded), pytest.raises(AssertionError, match="same seed differ"):
        check_model("test-unseeded")


def test_check_model_catches_a_one_stage_net_where_local_is_not_e2e():
    class Noisy(nn.Module):
        """Adds noise from its own generator, which advances between calls: two runs never agree."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 4)
            self.generator = torch.Generator().manual_seed(0)

        def forward(self, x):
            return self.linear(x) + torch.randn(x.shape, generator=self.generator)

    class NoisyToy(_Toy):
        def build(self, input_shape, num_classes) -> LocalNet:
            torch.manual_seed(0)
            return LocalNet([Stage(Noisy(), nn.Linear(4, num_classes)) for _ in range(self.stages)])

    with _Registered(MODELS, "test-noisy", NoisyToy), pytest.raises(AssertionError, match="'local' and 'e2e'"):
        check_model("test-noisy")


def test_check_head_catches_a_parameter_without_gradient():
    class Dead(nn.Module):
        def __init__(self, in_shape, num_classes):
            super().__init__()
            self.linear = nn.Linear(int(np.prod(in_shape)), num_classes)
            self.unused = nn.Linear(2, 2)

        def forward(self, h):
            return self.linear(h.flatten(1))

    with _Registered(heads.HEADS, "test-dead", Dead), pytest.raises(AssertionError, match="no gradient reaches"):
        check_head("test-dead")


def test_check_exit_policy_catches_a_policy_that_looks_ahead():
    from locallearn.exits.policies.confidence import MaxProbPolicy

    class LooksAhead(MaxProbPolicy):
        def sureness(self, logits):
            own = super().sureness(logits)
            return (own + own[-1:]) / 2  # peeks at the last exit

    with _Registered(exits.EXIT_POLICIES, "test-ahead", LooksAhead), pytest.raises(AssertionError, match="not causal"):
        check_exit_policy("test-ahead")


def test_check_dataset_catches_test_rows_in_the_training_split(monkeypatch):
    real = data.DATASETS.get("synthetic")

    def leaky(*, split_seed: int = 0, data_dir=None):
        ds = real(split_seed=split_seed)
        return data.Dataset("test-leaky", ds.x_train, ds.y_train, ds.x_val, ds.y_val, ds.x_train[:50], ds.y_train[:50], num_classes=4)

    with _Registered(data.DATASETS, "test-leaky", leaky), pytest.raises(AssertionError, match="also stand in the training split"):
        check_dataset("test-leaky")
