"""Your own optimiser and LR schedule in the Trainer; callback events; callback state in checkpoints; step loggers."""

from __future__ import annotations

import json

import pytest
import torch

import locallearn as ll
from locallearn.callbacks import BatchEnd
from locallearn.loggers import StepLogger, TensorBoardLogger, WindowLogger


def _trainer(ds, *, seed=0, widths=(16, 16), **kwargs):
    ll.seed_everything(seed)
    config = kwargs.pop("config", None) or ll.TrainConfig(epochs=2, batch_size=64, progress=False)
    return ll.Trainer(ll.build_mlp(ds.input_shape, widths, ds.num_classes), ds, config=config, **kwargs)


def _same_weights(a: ll.Trainer, b: ll.Trainer) -> None:
    for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_an_optimizer_factory_equals_the_named_optimizer(synthetic):
    config = ll.TrainConfig(epochs=2, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.5, progress=False)
    named = _trainer(synthetic, config=config)
    named.fit()
    own = _trainer(synthetic, config=ll.TrainConfig(epochs=2, batch_size=64, progress=False),
                   optimizer=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.5))
    own.fit()
    _same_weights(named, own)
    train = own.result.config["train"]
    assert train["optimizer"]["class"] == "torch.optim.sgd.SGD" and train["optimizer"]["defaults"]["lr"] == 0.05
    assert "lr" not in train and "momentum" not in train  # the config's numbers did not apply: not recorded


def test_one_optimizer_instance_per_stage(synthetic):
    ll.seed_everything(0)
    net = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes)
    ll.prepare(net, "local")
    # fused, as the named "adam" is built (locallearn.optim.FUSED): the same update to the last bit
    optimizers = [torch.optim.Adam(stage.parameters(), lr=3e-3, fused=True) for stage in net.stages]
    own = ll.Trainer(net, synthetic, config=ll.TrainConfig(epochs=1, progress=False), optimizer=optimizers)
    assert own.optimizers == optimizers
    own.fit()
    named = _trainer(synthetic, config=ll.TrainConfig(epochs=1, lr=3e-3, progress=False))
    named.fit()
    _same_weights(named, own)


def test_an_lr_scheduler_factory_equals_the_named_schedule_and_batch_interval_steps_per_update(synthetic):
    config = ll.TrainConfig(epochs=3, batch_size=64, lr_schedule="cosine", progress=False)
    named = _trainer(synthetic, config=config)
    named.fit()
    own = _trainer(synthetic, config=ll.TrainConfig(epochs=3, batch_size=64, progress=False),
                   lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3))
    own.fit()
    _same_weights(named, own)
    assert own.result.config["train"]["lr_schedule"]["settings"]["T_max"] == 3
    per_update = _trainer(synthetic, lr_interval="batch",
                          lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda n: 1.0 / (1 + n)))
    per_update.fit()
    updates = 2 * -(-len(synthetic.x_train) // 64)  # 2 epochs of ceil(420 / 64) batches
    assert per_update.step == updates
    assert per_update.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3 / (1 + updates))


class Spy(ll.Callback):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def on_batch_end(self, trainer, batch: BatchEnd) -> None:
        self.events.append(("batch", batch.step, batch.epoch, batch.stages, [float(v) for v in batch.losses], batch.size))

    def on_evaluate(self, trainer, split, accuracy) -> None:
        self.events.append(("evaluate", trainer.step, split, accuracy))

    def on_epoch_end(self, trainer, record) -> None:
        self.events.append(("epoch", record["epoch"], record["train_loss"]))


def test_batch_and_evaluate_events_in_order(synthetic):
    spy = Spy()
    trainer = _trainer(synthetic, callbacks=[spy])
    trainer.fit()
    batches = [e for e in spy.events if e[0] == "batch"]
    per_epoch = -(-len(synthetic.x_train) // 64)
    assert [e[1] for e in batches] == list(range(1, 2 * per_epoch + 1))
    assert {e[3] for e in batches} == {(1, 2)} and sum(e[5] for e in batches[:per_epoch]) == len(synthetic.x_train)
    kinds = [e[0] if e[0] != "evaluate" else e[2] for e in spy.events]
    assert kinds == ["batch"] * per_epoch + ["val", "test", "epoch"] + ["batch"] * per_epoch + ["val", "test", "epoch"]
    epoch_1 = [e[4] for e in batches[:per_epoch]]
    epoch_loss = spy.events[per_epoch + 2][2]  # the epoch record's train_loss: the mean of its updates' losses
    assert epoch_loss == pytest.approx([sum(col) / per_epoch for col in zip(*epoch_1)])
    assert spy.events[per_epoch][3] == trainer.result.history[0]["val_accuracy"]


def test_sequential_updates_name_the_stage_in_training(synthetic):
    spy = Spy()
    _trainer(synthetic, schedule="sequential", callbacks=[spy], config=ll.TrainConfig(epochs=1, progress=False)).fit()
    stages = [e[3] for e in spy.events if e[0] == "batch"]
    assert stages == [(1,)] * (len(stages) // 2) + [(2,)] * (len(stages) // 2)


def test_pipeline_warns_that_batch_events_stay_in_its_workers_and_refuses_batch_lr_steps(synthetic):
    with pytest.raises(ValueError, match="lr_interval='batch' needs the updates in this process; the 'pipeline'"):
        _trainer(synthetic, schedule="pipeline", lr_interval="batch", lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1))
    assert not ll.schedules.create("pipeline").batch_events and ll.schedules.create("decoupled").batch_events


class LossReads:
    """A stand-in for a device loss: counts the reads (``float``), adds without reading."""

    reads = 0

    def __init__(self, value: float) -> None:
        self.value = value

    def __add__(self, other: "LossReads") -> "LossReads":
        return LossReads(self.value + other.value)

    def __float__(self) -> float:
        LossReads.reads += 1
        return float(self.value)


class _Rows(WindowLogger):
    def __init__(self, every):
        super().__init__(every=every)
        self.rows = []

    def open(self, trainer):
        pass

    def write(self, row):
        self.rows.append(row)

    def close(self):
        pass


def test_a_logger_reads_the_losses_once_per_row_not_per_update(synthetic):
    trainer = _trainer(synthetic)
    logger = _Rows(every=5)
    logger.on_fit_start(trainer)
    LossReads.reads = 0
    for step in range(1, 21):
        logger.on_batch_end(trainer, BatchEnd(step, 1, (1, 2), [LossReads(step), LossReads(2 * step)], 8))
    assert LossReads.reads == 4 * 2  # 4 rows x 2 stages, for 20 updates
    assert [row["step"] for row in logger.rows] == [5, 10, 15, 20]
    assert logger.rows[0]["loss"] == {1: 3.0, 2: 6.0}  # the mean of steps 1..5
    assert logger.rows[0]["lr"] == {1: 1e-3, 2: 1e-3}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_resumed_run_continues_the_step_log_exactly(synthetic, tmp_path, suffix):
    config = lambda **kw: ll.TrainConfig(epochs=3, batch_size=64, progress=False, **kw)  # noqa: E731
    whole = _trainer(synthetic, config=config(), callbacks=[StepLogger(tmp_path / f"whole{suffix}", every=3)])
    whole.fit()
    path = tmp_path / f"resumed{suffix}"
    stopped = _trainer(synthetic, config=config(checkpoint_path=str(tmp_path / "two.pt")), callbacks=[StepLogger(path, every=3)])
    stopped.fit(epochs=2)  # the last checkpoint: after epoch 2, with 2 updates in the open window (every=3, 7 a epoch)
    with open(path, "a") as f:
        f.write("rows the stopped run wrote after its checkpoint\n")
    again = _trainer(synthetic, config=config(checkpoint_path=str(tmp_path / "two.pt")), callbacks=[StepLogger(path, every=3)])
    again.load_checkpoint(tmp_path / "two.pt")
    again.fit()
    assert path.read_text() == (tmp_path / f"whole{suffix}").read_text()
    lines = path.read_text().splitlines()
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in lines]
        assert rows[-1] == {"step": whole.step, "epoch": 3, "event": "evaluate", "split": "test",
                            "accuracy": whole.result.final("test")}
    else:
        assert lines[0].startswith("step,epoch,event,split,loss_1,loss_2,lr_1,lr_2,accuracy_1")


def test_callback_state_is_checked_on_resume(synthetic, tmp_path):
    checkpoint = tmp_path / "run.pt"
    config = ll.TrainConfig(epochs=1, progress=False, checkpoint_path=str(checkpoint))
    _trainer(synthetic, config=config, callbacks=[StepLogger(tmp_path / "log.csv", every=1000)]).fit()
    # 'every' is larger than the run: the window was open at the checkpoint, so its state is not empty
    assert ll.io.load_checkpoint(checkpoint)["callbacks"][0]["class"] == "StepLogger"
    with pytest.raises(ValueError, match=r"holds the state of callbacks \['StepLogger'\]; this trainer has \[\]"):
        _trainer(synthetic, config=config).load_checkpoint(checkpoint)


def test_bad_input_is_refused_in_one_line(synthetic):
    with pytest.raises(ValueError, match="optimizer= has 1 optimisers for a net of 2 stages"):
        _trainer(synthetic, optimizer=[None])
    net_params = ll.build_mlp(synthetic.input_shape, (16, 16), synthetic.num_classes).parameters()
    with pytest.raises(ValueError, match="takes a factory params -> Optimizer or one Optimizer .* got one Adam"):
        _trainer(synthetic, optimizer=torch.optim.Adam(net_params))
    with pytest.raises(ValueError, match="The optimizer factory returned str for stage 1"):
        _trainer(synthetic, optimizer=lambda params: "sgd")
    foreign = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="optimizer of stage 1 must hold exactly that stage's trainable parameters"):
        _trainer(synthetic, optimizer=[foreign, foreign])
    with pytest.raises(ValueError, match="'lr_interval' parameter of Trainer must be one of"):
        _trainer(synthetic, lr_interval="step")
    with pytest.raises(ValueError, match="StepLogger writes .csv or .jsonl files; got 'log.txt'"):
        StepLogger("log.txt")
    with pytest.raises(ValueError, match="'every' parameter of StepLogger must be an int >= 1"):
        StepLogger("log.csv", every=0)


def test_tensorboard_logger_writes_scalars(synthetic, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = _trainer(synthetic, callbacks=[TensorBoardLogger(tmp_path / "tb", every=2)])
    trainer.fit()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"loss/stage_1", "loss/stage_2", "lr/stage_1", "accuracy/val/exit_2", "accuracy/test/exit_1"} <= set(tags)
    assert [e.step for e in events.Scalars("accuracy/test/exit_2")] == [trainer.step // 2, trainer.step]
    assert events.Scalars("accuracy/test/exit_2")[-1].value == pytest.approx(trainer.result.final("test")[1])
    assert len(events.Scalars("loss/stage_1")) == trainer.step // 2
