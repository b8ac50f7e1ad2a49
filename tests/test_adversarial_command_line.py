"""Adversarial command lines (issue 24): options the messages offer must parse, and the command says its version."""

from __future__ import annotations

import pytest
import torch

import locallearn as ll
from locallearn import cli
from tests._adversarial import TRAIN, one_line_error


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_cuda_with_an_index_parses_and_is_refused_for_what_it_is(capsys):
    """--device cuda:0 was refused by the parser although the messages offer cuda:N."""
    err = one_line_error(capsys, cli.main([*TRAIN, "--device", "cuda:0"]))
    assert "invalid" not in err and "cuda" in err.lower()


def test_a_malformed_device_is_a_parser_error_listing_the_forms(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([*TRAIN, "--device", "gpu"])
    assert info.value.code == 2
    assert "expected cpu, cuda, cuda:N (such as cuda:0) or auto; got 'gpu'" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"locallearn {ll.__version__}"
