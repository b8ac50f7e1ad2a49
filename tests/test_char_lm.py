"""The character LM: per-position labels in the engine, LayerSkip's loss, KV-cached greedy, self-speculative
decoding identical to greedy, CALM exits and their calibration, bits per character, the corpus."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

import locallearn as ll
from locallearn import lm, models, rules
from locallearn.net import LocalNet

CONTEXT = 48


@pytest.fixture(scope="module")
def corpus() -> lm.Corpus:
    return lm.Corpus.from_text(lm.generated_text(600, seed=0), name="generated")


@pytest.fixture(scope="module")
def trained(corpus) -> LocalNet:
    """A tiny LM trained a little (joint), so its early exits agree with the last exit often."""
    torch.manual_seed(0)
    net = models.build("char-lm", (CONTEXT,), corpus.vocab_size, dim=24, depth=3, heads=2)
    lm.train_lm(net, corpus, "joint", steps=60, batch_size=16, context=CONTEXT, lr=1e-2)
    return net.eval()


def _net(vocab: int = 11, depth: int = 3) -> LocalNet:
    torch.manual_seed(0)
    return models.build("char-lm", (16,), vocab, dim=16, depth=depth, heads=2)


def _batch(vocab: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, vocab, (4, 17), generator=torch.Generator().manual_seed(0))
    return ids[:, :-1], ids[:, 1:]


def test_every_exit_shares_one_unembedding():
    net = _net()
    assert all(s.head is net.stages[0].head for s in net.stages)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for s in net.stages for p in s.parameters())


def test_local_loss_of_each_stage_is_its_own_next_token_cross_entropy():
    net = _net()
    x, y = _batch()
    with torch.no_grad():
        expected = [float(F.cross_entropy(z.flatten(0, 1), y.reshape(-1))) for z in net(x)]
    step = ll.backward(net, x, y, "local")
    assert step.losses == pytest.approx(expected, rel=1e-6)
    assert [tuple(z.shape) for z in step.logits] == [(4, 16, 11)] * 3


def test_joint_with_layerskip_weights_is_the_weighted_sum_of_exit_losses():
    x, y = _batch()
    weights = lm.layerskip_weights(3, e_scale=0.5)
    net, reference = _net(), _net()
    ll.backward(net, x, y, lm.lm_rule("joint", 3, e_scale=0.5))
    sum(w * F.cross_entropy(z.flatten(0, 1), y.reshape(-1)) for w, z in zip(weights, reference(x))).backward()
    for p, q in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_layerskip_weights_follow_the_sum_l_scale():
    l_sum = [1, 3, 6, 10]
    raw = [0.3 * s for s in l_sum[:-1]] + [l_sum[-1]]
    assert lm.layerskip_weights(4, e_scale=0.3) == pytest.approx([r / sum(raw) for r in raw])


def test_e2e_trains_the_blocks_from_the_last_exit_only():
    net = _net()
    x, y = _batch()
    ll.backward(net, x, y, lm.lm_rule("e2e", 3))
    reference = _net()
    F.cross_entropy(reference(x)[-1].flatten(0, 1), y.reshape(-1)).backward()
    for p, q in zip(net.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


REFUSING = [name for name in rules.names() if not rules.RULES.get(name).sequence_labels]


@pytest.mark.parametrize("name", REFUSING)
def test_rules_without_per_position_labels_refuse_a_language_model(name):
    net = _net()
    x, y = _batch()
    with pytest.raises(ValueError, match=rf"Rule '{name}' does not take per-position labels.*rules that do: e2e, joint, local"):
        ll.backward(net, x, y, rules.create(name))


def test_image_labels_of_shape_n_by_1_are_still_refused_with_the_hint():
    net = ll.build_mlp((1, 4, 4), (8,), 3)
    with pytest.raises(ValueError, match=r"Flatten them with y.view\(-1\)"):
        ll.backward(net, torch.randn(5, 1, 4, 4), torch.zeros(5, 1, dtype=torch.long), "local")


def test_train_lm_refuses_other_rules(corpus):
    with pytest.raises(ValueError, match="'rule' parameter of train_lm must be one of 'e2e', 'joint', 'local'"):
        lm.train_lm(_net(corpus.vocab_size), corpus, "predsim", steps=1, batch_size=2, context=16)


def test_bits_per_char_is_the_cross_entropy_in_bits(corpus):
    net = _net(corpus.vocab_size).eval()
    ids = corpus.part("val")[: 16 * 3 + 1]
    x, y = ids[:-1].view(3, 16), ids[1:].view(3, 16)
    with torch.no_grad():
        expected = [float(F.cross_entropy(z.flatten(0, 1), y.reshape(-1))) / math.log(2) for z in net(x)]
    assert lm.bits_per_char(net, ids, context=16) == pytest.approx(expected, rel=1e-6)


def test_training_lowers_bits_per_char(corpus, trained):
    untrained = models.build("char-lm", (CONTEXT,), corpus.vocab_size, dim=24, depth=3, heads=2)
    val = corpus.part("val")
    assert lm.bits_per_char(trained, val, context=CONTEXT)[-1] < lm.bits_per_char(untrained, val, context=CONTEXT)[-1] - 1


def test_greedy_with_a_kv_cache_equals_recomputing_the_sequence(trained, corpus):
    prompt = corpus.encode("the cat ")
    assert torch.equal(lm.greedy(trained, prompt, 30), lm.greedy(trained, prompt, 30, cache=False))


@pytest.mark.parametrize("exit,draft", [(1, 1), (1, 4), (2, 3), (2, 8)])
def test_self_speculative_decoding_is_token_for_token_the_full_greedy_output(trained, corpus, exit, draft):
    for text in ("the cat ", "a dog chases", "t"):
        prompt = corpus.encode(text)
        out, stats = lm.speculative(trained, prompt, 36, exit=exit, draft=draft)
        assert torch.equal(out, lm.greedy(trained, prompt, 36)), (text, exit, draft)
        assert stats.drafted >= 36 - stats.rounds and 0 <= stats.accepted <= stats.drafted
    assert stats.accepted > 0  # the trained early exit's drafts are accepted at times: the verification is exercised


def test_speculative_decoding_matches_greedy_on_an_untrained_model_too():
    net = _net(depth=4).eval()
    prompt = torch.tensor([1, 2, 3])
    assert torch.equal(lm.speculative(net, prompt, 12, exit=2, draft=5)[0], lm.greedy(net, prompt, 12))


def test_calm_never_exiting_is_greedy_and_always_exiting_is_the_first_stage_alone(trained, corpus):
    prompt = corpus.encode("the bird ")
    ids, exits = lm.calm(trained, prompt, 20, threshold=math.inf)
    assert torch.equal(ids, lm.greedy(trained, prompt, 20)) and (exits == 2).all()
    ids, exits = lm.calm(trained, prompt, 20, threshold=0.0)
    first_only = LocalNet(list(trained.stages[:1]))
    assert torch.equal(ids, lm.greedy(first_only, prompt, 20)) and (exits == 0).all()


def test_state_propagation_fills_the_cache_as_the_skipped_block_would(trained):
    """CALM's state propagation: for a token that exited, a skipped block's keys and values are computed from
    the copied state with fill_cache; a later token then attends to them exactly as if the block had run."""
    from locallearn.models.transformer import KVCache

    block = trained.stages[2].block.blocks[0]
    h = torch.randn(1, 3, 24)
    kv = KVCache()
    block.fill_cache(h[:, :2], kv, 0)
    with_past = block(h[:, 2:], kv, 0)
    full = block(h)[:, 2:]
    torch.testing.assert_close(with_past, full)


def test_calm_calibration_accepts_thresholds_while_the_p_value_holds(trained, corpus):
    val = corpus.part("val")
    prompts = [val[i : i + 8] for i in range(0, 160, 8)]
    result = lm.calibrate_calm(trained, prompts, 16, delta=0.3, epsilon=0.2, grid=(0.9, 0.6, 0.3, 0.0))
    tested = result.tested
    accepted = [t for t in tested if t["p_value"] <= 0.2]
    assert accepted == tested[: len(accepted)]  # fixed-sequence: stops at the first failure
    assert len(tested) == len(accepted) + (len(tested) < 4 or tested[-1]["p_value"] > 0.2)
    for t in tested:
        expected = 1.0 if t["mean_inconsistency"] >= 0.3 else math.exp(-2 * len(prompts) * (0.3 - t["mean_inconsistency"]) ** 2)
        assert t["p_value"] == pytest.approx(expected)
    assert result.threshold == (accepted[-1]["threshold"] if accepted else math.inf)


def test_corpus_windows_are_next_character_pairs_and_the_hash_is_recorded(corpus):
    x, y = corpus.windows("val", context=10, batch_size=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 1:], y[:, :-1])
    again = lm.Corpus.from_text(lm.generated_text(600, seed=0), name="generated")
    assert again.sha256 == corpus.sha256 and len(corpus.sha256) == 64


def test_fortunes_missing_says_how_to_install_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install -y fortunes-min"):
        lm.fortunes(tmp_path)
