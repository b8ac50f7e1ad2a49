"""Shared fixtures: small data sets that need no download."""

from __future__ import annotations

import pytest
import torch

from locallearn import data


@pytest.fixture(scope="session")
def synthetic() -> data.Dataset:
    return data.load("synthetic")


@pytest.fixture(scope="session")
def digits() -> data.Dataset:
    return data.load("digits")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test models are small: a second OpenMP thread only adds stalls (up to 100x on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
