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



def test_the_check_catches_a_rule_whose_flags_do_not_say_what_it_does():
    from torch import nn
    from torch.nn import functional as F

    from locallearn.rules import RULES
    from locallearn.rules.base import LocalRule

    class Quiet(LocalRule):
        """Attaches a module in its setup without declaring changes_net."""

        def setup(self, net):
            for stage in net.stages:
                stage.aux["extra"] = nn.Identity()

        def stage_loss(self, out, y):
            return F.cross_entropy(out.logits, y)

    class Shuffling(Quiet):
        """Changes the batch without declaring transforms_batch."""

        changes_net = True

        def transform_batch(self, x, y):
            return x.flip(0), y.flip(0)

    for name, cls, match in (("test-quiet", Quiet, "does not declare changes_net"),
                             ("test-shuffling", Shuffling, "does not declare transforms_batch")):
        RULES.register(name)(cls)
        try:
            with pytest.raises(AssertionError, match=match):
                check_rule(cls())
        finally:
            del RULES._classes[name]


def test_the_check_catches_a_schedule_that_does_not_give_what_it_declares_and_refusals_name_the_schedules_that_do():
    from locallearn.schedules import SCHEDULES
    from locallearn.schedules.base import train_step
    from locallearn.schedules.simultaneous import Simultaneous

    class Forgetful(Simultaneous):
        """Declares carries_input (the default) but never hands the stages the network input."""

        def train_epoch(self, state):
            for x, y in state.train_batches():
                train_step(state, x, y, [0], x=x)
                train_step(state, state.net.stages[0].block(x).detach(), y, [1, 2])  # no x= for the later stages
            return [0, 1, 2]

    class Greedy(Simultaneous):
        """Needs a local rule; carries the input and the rule's batches."""

        needs_local_rule = True

    SCHEDULES.register("test-forgetful")(Forgetful)
    SCHEDULES.register("test-greedy")(Greedy)
    try:
        with pytest.raises(AssertionError, match="declares carries_input, but stage 2 got no StageOutput.x"):
            check_schedule(Forgetful())
        with pytest.raises(ValueError, match="rule 'e2e' backpropagates across stages") as refused:
            Greedy().check(rules.create("e2e"))
        offered = str(refused.value).split("Use ")[1]
        assert "'test-forgetful'" in offered and "'test-greedy'" not in offered and "'sequential'" not in offered
        with pytest.raises(ValueError, match="builds its own batches") as refused:
            schedules.create("pipeline").check(rules.create("forward-forward"))
        offered = str(refused.value).split("; use ")[1]
        assert "'test-greedy'" in offered and "'sequential'" not in offered
    finally:
        del SCHEDULES._classes["test-forgetful"], SCHEDULES._classes["test-greedy"]
