"""Every registered rule and schedule passes the conformance suite of ``locallearn.testing``."""

from __future__ import annotations

import pytest

from locallearn import rules, schedules
from locallearn.testing import check_rule, check_schedule


@pytest.mark.parametrize("name", rules.names())
@pytest.mark.parametrize("head, conv", [("linear", False), ("mlp", False), ("conv", True)])
def test_every_rule_conforms(name, head, conv):
    check_rule(rules.create(name), head=head, conv=conv)


@pytest.mark.parametrize("name", [n for n in schedules.names() if n != "pipeline"])
def test_every_in_process_schedule_conforms(name):
    check_schedule(schedules.create(name))


def test_the_check_catches_a_rule_that_is_not_local():
    from torch.nn import functional as F

    from locallearn.rules import RULES
    from locallearn.rules.base import LocalRule

    class Leaky(LocalRule):
        """Claims to be local, but ties each stage to the previous stage's live output."""

        detach_inputs = True

        def stage_loss(self, out, y):
            loss = F.cross_entropy(out.logits, y)
            if out.index > 0:
                loss = loss + (out.h_out.mean() - self.previous.mean()) ** 2
            self.previous = out.h_out
            return loss

    RULES.register("test-leaky")(Leaky)
    try:
        with pytest.raises((AssertionError, RuntimeError), match="is not local"):
            check_rule(Leaky())
    finally:
        del RULES._classes["test-leaky"]

