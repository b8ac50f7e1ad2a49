"""A rule's setup runs once per net and rule configuration, and what was prepared is state of the net."""

from __future__ import annotations

import copy

import pytest
import torch

import locallearn as ll
from locallearn import rules

X, Y = torch.randn(6, 16), torch.tensor([0, 1, 2, 3, 0, 1])


def _params(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("name", ["predsim", "predsim-bio", "auglocal", "dtp", "infopro", "fa-heads", "dfa", "forward-forward"])
def test_a_second_setup_of_the_same_or_an_equal_rule_changes_nothing(name):
    net = ll.build_mlp((16,), (12, 12, 12), 4)
    rule = rules.create(name)
    rule.setup(net)
    before, modules = _params(net), [type(m) for m in net.modules()]
    rule.setup(net)  # the same instance again
    twin = rules.create(name)
    twin.setup(net)  # an equal one: bound to the net, its setup does not run again
    after = _params(net)
    assert [type(m) for m in net.modules()] == modules and before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net.prepared_rules == [rule, twin]
    if name == "forward-forward":
        assert twin.num_classes == 4  # what its setup would have read, taken from the net
    ll.backward(net, X, Y, twin)  # the twin trains the net as prepared


def test_a_deep_copy_of_a_prepared_net_is_prepared_and_keeps_its_named_rules():
    net = ll.build_mlp((16,), (12, 12), 4)
    rule = ll.prepare(net, "predsim")
    twin = copy.deepcopy(net)
    projection = twin.stages[0].aux["predsim"].weight.clone()
    ll.backward(twin, X, Y, rule)  # the original instance: equal to the copy's, so bound, not set up again
    ll.backward(twin, X, Y, "predsim")
    assert twin.named_rules["predsim"] is not rule and type(twin.named_rules["predsim"]) is type(rule)
    assert twin.stages[0].aux["predsim"].weight.shape == projection.shape
    assert len(list(twin.parameters())) == len(list(net.parameters()))


def test_a_rule_of_the_same_name_with_other_hyper_parameters_is_bound_to_the_modules_there():
    net = ll.build_mlp((16,), (12, 12, 12), 4)
    ll.prepare(net, rules.create("infopro", lambda1=2.0))
    decoder = net.stages[0].aux["infopro"].decoder
    later = ll.prepare(net, rules.create("infopro", lambda1=1.0, lambda2=3.0))
    assert net.stages[0].aux["infopro"].decoder is decoder  # the trained decoders stay
    assert (net.stages[0].aux["infopro"].lambda_recon, net.stages[0].aux["infopro"].lambda_sup) == later.stage_weights(0, 3)
    with pytest.raises(ValueError, match="prepared for rule 'infopro'; rule 'predsim' cannot train it too"):
        rules.create("predsim").setup(net)  # a direct call is refused as prepare refuses it
