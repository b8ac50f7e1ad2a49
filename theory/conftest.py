"""The theory checks run on one torch thread, as the whole suite does (tests/conftest.py sets it for tests/)."""

import torch

torch.set_num_threads(1)
