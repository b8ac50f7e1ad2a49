"""Exit policies on hand-made logits with known answers."""

import math

import pytest
import torch

from locallearn.exits import (
    EXIT_POLICIES, AvgPoolPolicy, EntropyPolicy, ExitLogits, LearnedGatePolicy, MarginPolicy, MaxPoolPolicy,
    MaxProbPolicy, PatiencePolicy, WeightedPolicy, synthetic_exit_logits,
)



LN3 = math.log(3.0)


def test_entropy_policy_exits_where_normalised_entropy_is_below_T():
    # exit 0: sample 0 is sure (H/logC ~ 0.08), sample 1 is uniform (H/logC = 1)
    logits = torch.tensor([[[5.0, 0.0], [0.0, 0.0]], [[0.0, 5.0], [0.0, 5.0]]])
    h0 = EntropyPolicy().sureness(logits)[0]
    p = torch.sigmoid(torch.tensor(5.0))
    expected = 1 - (-(p * p.log() + (1 - p) * (1 - p).log()) / math.log(2))
    assert h0[0].item() == pytest.approx(expected.item(), abs=1e-6)
    assert h0[1].item() == pytest.approx(0.0, abs=1e-6)
    decision = EntropyPolicy().decide(logits, [1 - 0.5])  # exit when H/logC <= 0.5
    assert decision.exit.tolist() == [0, 1]
    assert decision.prediction.tolist() == [0, 1]


def test_max_prob_and_margin_thresholds():
    # softmax([ln 3, 0]) = [0.75, 0.25]: max-prob 0.75, margin 0.5
    logits = torch.tensor([[[LN3, 0.0]], [[0.0, LN3]]])
    assert MaxProbPolicy().sureness(logits)[0].item() == pytest.approx(0.75)
    assert MarginPolicy().sureness(logits)[0].item() == pytest.approx(0.5)
    assert MaxProbPolicy().decide(logits, [0.7]).exit.tolist() == [0]
    assert MaxProbPolicy().decide(logits, [0.8]).exit.tolist() == [1]
    assert MarginPolicy().decide(logits, [0.5]).prediction.tolist() == [0]
    assert MarginPolicy().decide(logits, [0.51]).prediction.tolist() == [1]


def test_patience_stops_after_p_unchanged_exits():
    a, b = [2.0, 0.0], [0.0, 2.0]
    # predictions per sample over 4 exits: s0 = a a a a, s1 = a b b b, s2 = a b a b
    logits = torch.tensor([[a, a, a], [a, b, b], [a, b, a], [a, b, b]])
    policy = PatiencePolicy()
    assert policy.decide(logits, [1, 1, 1]).exit.tolist() == [1, 2, 3]
    assert policy.decide(logits, [2, 2, 2]).exit.tolist() == [2, 3, 3]
    assert policy.decide(logits, [1, 1, 1]).prediction.tolist() == [0, 1, 1]


def test_pooling_policies_combine_earlier_exits():
    logits = torch.log(torch.tensor([[[0.9, 0.1]], [[0.2, 0.8]]]))
    avg = AvgPoolPolicy().outputs(logits).exp()
    assert avg[1, 0].tolist() == pytest.approx([0.55, 0.45])
    mx = MaxPoolPolicy().outputs(logits).exp()
    assert mx[1, 0].tolist() == pytest.approx([0.9 / 1.7, 0.8 / 1.7])
    assert AvgPoolPolicy().decide(logits, [0.95]).prediction.tolist() == [0]  # pooled, not the last exit's 1


def test_weighted_policy_learns_to_trust_the_reliable_exit():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (300,), generator=g)
    noisy = torch.randn(300, 4, generator=g) * 3
    right = 4 * torch.nn.functional.one_hot(labels, 4).float()
    val = ExitLogits(torch.stack([noisy, right]), labels, "val")
    policy = WeightedPolicy().fit(val)
    assert policy.weights[1] > 0.8
    assert (policy.outputs(val.logits)[1].argmax(-1) == labels).float().mean() == 1.0


def test_learned_gate_ranks_correct_samples_above_wrong_ones():
    val = synthetic_exit_logits(n_samples=2000, seed=3)
    gate = LearnedGatePolicy(steps=150).fit(val)
    score = gate.sureness(val.logits)[0]
    correct = val.logits[0].argmax(-1) == val.labels

    def auc(s):  # probability that a correct sample scores above a wrong one
        return (s[correct][:, None] > s[~correct][None, :]).float().mean().item()

    assert auc(score) > 0.7
    assert auc(score) >= auc(MaxProbPolicy().sureness(val.logits)[0]) - 0.01


@pytest.mark.parametrize("name", EXIT_POLICIES.names())
def test_every_policy_is_causal(name):
    """The score and output at exit k use exits 0..k only, so the online runner can match offline."""
    data = synthetic_exit_logits(n_samples=200, seed=1)
    policy = EXIT_POLICIES.create(name, **({"steps": 10} if name in ("gate", "weighted") else {}))
    policy.fit(data)
    full_s, full_o = policy.sureness(data.logits), policy.outputs(data.logits)
    for k in range(1, data.n_exits + 1):
        assert torch.allclose(policy.sureness(data.logits[:k]), full_s[:k])
        assert torch.allclose(policy.outputs(data.logits[:k]), full_o[:k])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown exit policy 'nope'. Known exit policies: avg-pool"):
        EXIT_POLICIES.create("nope")
    with pytest.raises(ValueError, match="The 'confidence' parameter of AvgPoolPolicy must be one of"):
        AvgPoolPolicy(confidence="vibes")
    with pytest.raises(ValueError, match="The 'hidden' parameter of LearnedGatePolicy must be an int >= 1. Got 0 instead."):
        LearnedGatePolicy(hidden=0)
    with pytest.raises(ValueError, match="needs 2 thresholds .* Got 1 instead"):
        MaxProbPolicy().decide(torch.zeros(3, 4, 2), [0.5])
    with pytest.raises(RuntimeError, match="must be fitted on validation logits first"):
        LearnedGatePolicy().sureness(torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"shape \[exits, samples, classes\]"):
        MaxProbPolicy().decide(torch.zeros(4, 2), [])


def test_patience_count_is_reset_whenever_the_prediction_changes_pabee():
    # PABEE (Zhou et al. 2020): cnt_k = cnt_{k-1} + 1 if argmax z_k == argmax z_{k-1}, else 0
    import torch

    from locallearn.exits.policies.patience import PatiencePolicy

    a, b = [3.0, 0.0], [0.0, 3.0]
    predictions = [a, a, a, b, b, a, a, a]
    logits = torch.tensor(predictions)[:, None, :]  # 8 exits, 1 sample
    expected, count = [0.0], 0
    for k in range(1, len(predictions)):
        count = count + 1 if predictions[k] == predictions[k - 1] else 0
        expected.append(float(count))
    assert PatiencePolicy().sureness(logits)[:, 0].tolist() == expected == [0, 1, 2, 0, 1, 0, 1, 2]
    assert PatiencePolicy().decide(logits, [2] * 7).exit.tolist() == [2]
    # patience 3 is never reached after the resets (a count carried over the change would reach it at exit 4)
    assert PatiencePolicy().decide(logits, [3] * 7).exit.tolist() == [7]
