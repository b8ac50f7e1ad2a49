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
