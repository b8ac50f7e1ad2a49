"""Backbone first, then heads: the backbone stays exactly as trained; neural and scikit-learn heads learn on the
frozen features; a scikit-learn exit works with the policies, calibration, the runner and latency costs."""

import copy

import pytest
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from _exit_nets import trained_digits_cnn
from locallearn import build_mlp, data, seed_everything
from locallearn.exits import (
    EarlyExitRunner, SklearnHead, collect_exit_logits, evaluate, fit_heads, fit_sklearn_heads, for_target_accuracy,
    freeze_backbone, frozen_features, make_estimator, stage_latency,
)


@pytest.fixture(scope="module")
def backbone():
    """A small CNN trained end to end through its last exit only (the auxiliary heads are untouched)."""
    return trained_digits_cnn(every_exit=False, steps=40)


def accuracies(net, x, y):
    return (collect_exit_logits(net, x, y, split="val").logits.argmax(-1) == y).double().mean(1)


def test_fit_heads_trains_only_the_auxiliary_heads_on_eval_mode_features(backbone):
    ds, trained = backbone
    net = copy.deepcopy(trained)
    freeze_backbone(net)
    before = copy.deepcopy(net.state_dict())
    chance = accuracies(net, ds.x_val, ds.y_val)
    fit_heads(net, ds.x_train, ds.y_train, epochs=5, lr=0.01, batch_size=64)
    after = net.state_dict()
    for name, value in before.items():
        changed = not torch.equal(value, after[name])
        # blocks (weights and BatchNorm running statistics) and the last head are frozen; heads 0 and 1 learn
        assert changed == (name.startswith("stages.0.head") or name.startswith("stages.1.head")), name
    gained = accuracies(net, ds.x_val, ds.y_val)
    assert gained[-1] == chance[-1]
    assert (gained[:2] > chance[:2] + 0.3).all(), (chance, gained)
    # the frozen features are the eval-mode block outputs: what the heads see at inference
    net.eval()
    _, features = net(ds.x_val[:5], return_features=True)
    for mine, theirs in zip(frozen_features(net, ds.x_val[:5]), features):
        torch.testing.assert_close(mine, theirs)


def test_fit_heads_refuses_the_last_head(backbone):
    _, net = backbone
    with pytest.raises(ValueError, match="auxiliary exits in 0..1"):
        fit_heads(copy.deepcopy(net), torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), stages=[2])
    for fit in (fit_heads, lambda *a: fit_sklearn_heads(*a, {0: LogisticRegression()})):
        for x, y in ((torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.long)), (torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))):
            with pytest.raises(ValueError, match="as many labels as inputs"):
                fit(copy.deepcopy(net), x, y)


def test_sklearn_head_returns_the_classifiers_log_probabilities_in_label_order():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(90, 5, generator=g)
    y = torch.tensor([1, 3, 4] * 30)  # classes 0 and 2 never seen
    estimator = LogisticRegression(max_iter=500)
    head = SklearnHead(estimator, num_classes=5).fit(h, y)
    p = head(h).exp()
    torch.testing.assert_close(p[:, [1, 3, 4]], torch.from_numpy(estimator.predict_proba(h.numpy())).float())
    assert (p[:, [0, 2]] < 1e-11).all()
    with pytest.raises(TypeError, match="CalibratedClassifierCV"):
        SklearnHead(LinearSVC(), num_classes=5)
    SklearnHead(CalibratedClassifierCV(LinearSVC(), cv=2), num_classes=5).fit(h, y)
    with pytest.raises(RuntimeError, match="fitted"):
        SklearnHead(LogisticRegression(), num_classes=5)(h)
    for bad in (y + 2, y.float(), y[:, None]):  # label 6 >= num_classes, float labels, a column
        with pytest.raises(ValueError, match="1-D integer labels"):
            SklearnHead(LogisticRegression(), num_classes=5).fit(h, bad)


@pytest.mark.parametrize("names", [("logreg", "random-forest"), ("linear-svc", "logreg")])
def test_sklearn_exits_work_with_policies_calibration_runner_and_latency(backbone, names):
    ds, trained = backbone
    net = copy.deepcopy(trained)
    fit_sklearn_heads(net, ds.x_train, ds.y_train, {k: make_estimator(n, seed=0) for k, n in enumerate(names)}, pool=2)
    assert all(isinstance(net.stages[k].head, SklearnHead) for k in (0, 1))
    val = collect_exit_logits(net, ds.x_val, ds.y_val, split="val")
    test = collect_exit_logits(net, ds.x_test, ds.y_test, split="test")
    assert ((test.logits[:2].argmax(-1) == test.labels).double().mean(1) > 0.7).all()
    costs = stage_latency(net, ds.x_val, batch_size=64, rounds=1)
    assert min(costs.heads) > 0  # the scikit-learn heads are costed by measured time (FLOP counters cannot see them)
    for policy in ("max-prob", "entropy"):
        th = for_target_accuracy(val, policy, costs, max_drop=0.02)
        offline = evaluate(test, th, costs)
        online = EarlyExitRunner(net, th).run(ds.x_test)
        assert torch.equal(online.exit, offline.exit) and torch.equal(online.prediction, offline.prediction)


def test_fit_sklearn_heads_subsamples_reproducibly():
    ds = data.load("digits")
    seed_everything(0)
    net = build_mlp(ds.input_shape, (16, 16), 10)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    fit_sklearn_heads(a, ds.x_train, ds.y_train, {0: make_estimator("logreg")}, max_samples=300, seed=3)
    fit_sklearn_heads(b, ds.x_train, ds.y_train, {0: make_estimator("logreg")}, max_samples=300, seed=3)
    torch.testing.assert_close(a(ds.x_val)[0], b(ds.x_val)[0])
    with pytest.raises(ValueError, match="'name' parameter of make_estimator"):
        make_estimator("svm")
