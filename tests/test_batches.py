"""Data as batches: DataLoader input, augmentation, device choice, mixed precision."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import locallearn as ll
from locallearn.cli import main
from locallearn.data import SeededSampler, augment
from locallearn.exits.collect import collect_exit_logits

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without a GPU")


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, sampler=SeededSampler(len(x), seed=seed))


def _fit(data, schedule: str, **config) -> ll.Trainer:
    ll.seed_everything(0)
    net = ll.build_mlp((1, 8, 8), (32, 32), 10, dropout=0.1)
    trainer = ll.Trainer(net, data, rule="local", schedule=schedule,
                         config=ll.TrainConfig(epochs=2, batch_size=64, progress=False, eval_every=0, **config))
    trainer.fit()
    return trainer


@pytest.mark.parametrize("schedule", ["simultaneous", "sequential", "decoupled"])
def test_a_seeded_dataloader_gives_the_parameters_of_the_in_memory_path(digits, schedule):
    memory = _fit(digits, schedule)
    streamed = _fit(_loader(digits.x_train, digits.y_train, 64, seed=0), schedule)
    for a, b in zip(memory.net.parameters(), streamed.net.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    if schedule == "sequential":  # the loader cannot be cached: the frozen prefix was run again per batch
        assert memory.result.history[-1]["stage_inputs"] == "cached"
        assert streamed.result.history[-1]["stage_inputs"] == "recomputed"


def test_dataloader_training_evaluates_the_splits_it_is_given(digits):
    trainer = ll.Trainer(ll.build_mlp((1, 8, 8), (16,), 10), _loader(digits.x_train, digits.y_train, 64, seed=0),
                         val_data=DataLoader(TensorDataset(digits.x_val, digits.y_val), batch_size=100),
                         config=ll.TrainConfig(epochs=1, progress=False))
    record = trainer.fit().history[-1]
    assert "val_accuracy" in record and "test_accuracy" not in record
    reference = [(logits.argmax(1) == digits.y_val).float().mean().item() for logits in trainer.net(digits.x_val)]
    assert record["val_accuracy"] == pytest.approx(reference)
    with pytest.raises(ValueError, match="No test data: pass test_data="):
        trainer.evaluate("test")
    with pytest.raises(ValueError, match="augment.*applies to in-memory datasets"):
        ll.Trainer(ll.build_mlp((1, 8, 8), (16,), 10), [(digits.x_train, digits.y_train)],
                   config=ll.TrainConfig(augment="flip", progress=False))


def test_batches_that_are_not_pairs_of_tensors_get_a_clear_error(digits):
    with pytest.raises(TypeError, match=r"Batch 0 of the training data is a Tensor; expected a pair \(inputs, labels\)"):
        ll.train(ll.build_mlp((1, 8, 8), (16,), 10), [digits.x_train[:8]], epochs=1, progress=False)
    with pytest.raises(TypeError, match="a locallearn Dataset or an iterable"):
        ll.train(ll.build_mlp((1, 8, 8), (16,), 10), 3, epochs=1, progress=False)


def test_random_crop_is_pad_then_crop_at_the_drawn_offset_per_image():
    torch.manual_seed(0)
    x = torch.randn(6, 2, 5, 7)
    out = augment.RandomCrop(padding=2)(x, torch.Generator().manual_seed(3))
    offsets = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(3))
    for i in range(6):  # the torchvision-style definition, one image and channel at a time
        padded = torch.stack([F.pad(channel, (2, 2, 2, 2), value=float(channel.min())) for channel in x[i]])
        top, left = int(offsets[0, i]), int(offsets[1, i])
        torch.testing.assert_close(out[i], padded[:, top : top + 5, left : left + 7], rtol=0, atol=0)


def test_random_crop_reaches_every_offset_and_flip_mirrors_half_the_images():
    x = torch.zeros(2000, 1, 3, 3)
    x[:, :, 1, 1] = 1.0  # a single bright pixel: where it lands tells the offset
    out = augment.RandomCrop(padding=1, fill=0.0)(x, torch.Generator().manual_seed(0))
    landed = out.flatten(1).argmax(1)[out.flatten(1).amax(1) > 0]
    assert set(landed.tolist()) == set(range(9))  # all 3 x 3 offsets occur
    assert (out.flatten(1).amax(1) > 0).all()  # with padding 1 the pixel never leaves a 3x3 image
    ramp = torch.arange(4.0).expand(1000, 1, 2, 4)
    flipped = augment.HorizontalFlip(p=0.5)(ramp, torch.Generator().manual_seed(0))
    mirrored = (flipped[:, 0, 0, 0] == 3).float().mean().item()
    assert 0.45 < mirrored < 0.55
    assert torch.equal(augment.HorizontalFlip(p=0.0)(ramp, torch.Generator()), ramp)


def test_augment_specs_parse_or_say_what_is_expected():
    assert augment.parse("none") is None and augment.parse("") is None
    assert repr(augment.parse("crop4, flip0.25")) == "Compose(RandomCrop(padding=4), HorizontalFlip(p=0.25))"
    with pytest.raises(ValueError, match="Unknown augmentation 'rotate'.*cropN"):
        augment.parse("crop2,rotate")
    with pytest.raises(ValueError, match="image batches of shape \\(N, C, H, W\\)"):
        augment.parse("flip")(torch.zeros(4, 16), torch.Generator())


def test_augmented_training_is_seeded_and_resumes_exactly(digits, tmp_path):
    first = _fit(digits, "simultaneous", augment="crop2,flip")
    again = _fit(digits, "simultaneous", augment="crop2,flip")
    plain = _fit(digits, "simultaneous")
    assert all(torch.equal(a, b) for a, b in zip(first.net.parameters(), again.net.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(first.net.parameters(), plain.net.parameters()))
    assert first.result.config["data_source"]["augment"] == "Compose(RandomCrop(padding=2), HorizontalFlip(p=0.5))"

    ll.seed_everything(0)
    net = ll.build_mlp((1, 8, 8), (32, 32), 10, dropout=0.1)
    config = ll.TrainConfig(epochs=2, batch_size=64, progress=False, eval_every=0, augment="crop2,flip",
                            checkpoint_path=str(tmp_path / "run.pt"))
    ll.Trainer(net, digits, config=config).fit(epochs=1)
    ll.seed_everything(0)
    resumed = ll.Trainer(ll.build_mlp((1, 8, 8), (32, 32), 10, dropout=0.1), digits, config=config)
    resumed.load_checkpoint(tmp_path / "run.pt")
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(first.net.parameters(), resumed.net.parameters()))


def test_sequential_with_augmentation_recomputes_the_frozen_prefix(digits):
    trainer = _fit(digits, "sequential", augment="flip")
    assert {r["stage_inputs"] for r in trainer.result.history} == {"recomputed"}


def test_mixed_precision_on_the_cpu_follows_full_precision(digits):
    mixed, full = _fit(digits, "simultaneous", amp=True), _fit(digits, "simultaneous")
    assert mixed.autocast_dtype == torch.bfloat16 and mixed.scaler is None
    for a, b in zip(mixed.result.history, full.result.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=0.01)
    assert mixed.result.history[-1]["train_loss"][0] < mixed.result.history[0]["train_loss"][0] - 0.1
    assert any(p.dtype == torch.float32 for p in mixed.net.parameters())  # weights stay float32


def test_exit_logits_collect_from_a_dataloader_as_from_tensors(digits):
    net = ll.build_mlp((1, 8, 8), (16, 16), 10)
    from_tensors = collect_exit_logits(net, digits.x_val, digits.y_val, split="val", batch_size=50)
    loader = DataLoader(TensorDataset(digits.x_val, digits.y_val), batch_size=33)
    from_loader = collect_exit_logits(net, loader, split="val")
    torch.testing.assert_close(from_tensors.logits, from_loader.logits)
    assert torch.equal(from_tensors.labels, from_loader.labels)


def test_information_plane_callback_reads_a_dataloader_split(digits, tmp_path):
    plane = ll.info.InformationPlane(split="val", estimator_kw={"bins": 10})
    ll.train(ll.build_mlp((1, 8, 8), (16, 16), 10), _loader(digits.x_train, digits.y_train, 64, 0),
             val_data=DataLoader(TensorDataset(digits.x_val, digits.y_val), batch_size=64),
             callbacks=[plane], epochs=1, progress=False)
    assert [(p["epoch"], p["stage"]) for p in plane.points] == [(0, 1), (0, 2), (1, 1), (1, 2)]  # stages from 1


def test_device_auto_falls_back_and_unknown_devices_are_refused():
    assert ll.TrainConfig(device="auto") and ll.device.resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="Unknown device 'gpu0'"):
        ll.device.resolve_device("gpu0")


@no_gpu
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="sees no CUDA GPU. Use --device cpu"):
        ll.Trainer(ll.build_mlp((4,), (8,), 2), ll.data.load("synthetic"), config=ll.TrainConfig(device="cuda"))


@no_gpu
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "synthetic"],
        ["compare", "--data", "synthetic", "--rules", "local"],
        ["infoplane", "--data", "synthetic", "--out", "unused"],
        ["exits", "--checkpoint", "unused.pt", "--out", "unused"],
        ["bench", "quick"],
    ],
)
def test_every_command_that_runs_a_network_takes_device(argv, capsys):
    assert main([*argv, "--device", "cuda"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err


def test_the_pipeline_reads_its_batches_from_a_dataloader_as_from_tensors(synthetic):
    nets = []
    for data in (synthetic, _loader(synthetic.x_train, synthetic.y_train, 32, seed=0)):
        ll.seed_everything(0)
        nets.append(ll.build_mlp(synthetic.input_shape, (32, 32), synthetic.num_classes))
        result = ll.train(nets[-1], data, val_data=[(synthetic.x_val, synthetic.y_val)], batch_size=32,
                          schedule=ll.schedules.create("pipeline", workers=2), epochs=2, progress=False)
        assert len(result.history[-1]["worker_samples_per_s"]) == 2 and result.final("val")[-1] > 0.5
    for a, b in zip(*(net.parameters() for net in nets)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_a_run_on_a_seeded_dataloader_resumes_exactly(digits, tmp_path):
    def trainer() -> ll.Trainer:
        ll.seed_everything(0)
        config = ll.TrainConfig(epochs=2, batch_size=64, progress=False, eval_every=0, checkpoint_path=str(tmp_path / "r.pt"))
        return ll.Trainer(ll.build_mlp((1, 8, 8), (32, 32), 10, dropout=0.1),
                          _loader(digits.x_train, digits.y_train, 64, seed=5), config=config)

    whole = trainer()
    whole.fit()
    trainer().fit(epochs=1)
    resumed = trainer()
    resumed.load_checkpoint(tmp_path / "r.pt")
    resumed.fit()
    assert all(torch.equal(a, b) for a, b in zip(whole.net.parameters(), resumed.net.parameters()))


def test_compare_runs_a_grid_on_data_given_as_dataloaders(digits):
    from locallearn.compare import compare
    from locallearn.experiment import RunSpec

    loaders = ll.data.BatchData(
        "digits-as-loaders", _loader(digits.x_train, digits.y_train, 64, seed=0),
        val=DataLoader(TensorDataset(digits.x_val, digits.y_val), batch_size=128),
        test=DataLoader(TensorDataset(digits.x_test, digits.y_test), batch_size=128), num_classes=10,
    )
    records = compare(RunSpec(widths=(32, 32), epochs=2, progress=False), rules=["local", "e2e"], seeds=[0], data=loaders)
    assert [r["config"]["data"] for r in records] == ["digits-as-loaders"] * 2
    in_memory = compare(RunSpec(widths=(32, 32), epochs=2, batch_size=64, progress=False), rules=["local"], seeds=[0])
    streamed = compare(RunSpec(widths=(32, 32), epochs=2, batch_size=64, progress=False), rules=["local"], seeds=[0], data=loaders)
    assert streamed[0]["history"][-1]["test_accuracy"] == pytest.approx(in_memory[0]["history"][-1]["test_accuracy"], abs=1e-6)


def test_a_ready_made_tensor_source_keeps_its_own_order_for_a_feature_cache():
    from locallearn.data.batches import TensorBatches
    from locallearn.schedules.base import TrainState

    x, y = torch.randn(20, 3), torch.arange(20)
    source = TensorBatches(x, y, batch_size=6, seed=5)
    state = TrainState(net=None, rule=None, optimizers=[], source=source, batch_size=64, seed=0, epochs=1)
    state.epoch = 2
    cached = [yb.tolist() for _, yb in state.batches(x, y)]
    assert cached == [yb.tolist() for _, yb in source.epoch(2)]
