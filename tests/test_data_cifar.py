"""CIFAR-10/100 from fixtures written in the official formats: pixels, labels, splits, normalisation,
the refusing unpickler (a code-carrying pickle never runs), and the errors for missing or damaged files."""

from __future__ import annotations

import os
import pickle
import pickletools

import numpy as np
import pytest
import torch

from locallearn import data
from locallearn.data import DataFormatError, UnsafePickleError, write_cifar_fixture
from locallearn.data.fixtures import python2_pickle


def _raw_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_cifar10_py(root, train_rows, train_labels, test_rows, test_labels, dump=python2_pickle):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, (rows, labels) in enumerate(zip(np.array_split(train_rows, 5), np.array_split(train_labels, 5)), start=1):
        (folder / f"data_batch_{i}").write_bytes(dump({"data": rows, "labels": [int(v) for v in labels]}))
    (folder / "test_batch").write_bytes(dump({"data": test_rows, "labels": [int(v) for v in test_labels]}))
    return folder


def _train_stats(train_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images = train_rows.reshape(-1, 3, 32, 32).astype(np.float64)
    return images.mean(axis=(0, 2, 3)), images.std(axis=(0, 2, 3))


@pytest.mark.parametrize("dump", [python2_pickle, lambda obj: pickle.dumps(obj, protocol=4)], ids=["python2-cPickle", "python3-protocol4"])
def test_cifar10_python_version_pixels_labels_and_normalisation(tmp_path, dump):
    train, test = _raw_images(10, 0), _raw_images(3, 1)
    train_labels, test_labels = np.arange(10) % 10, np.array([7, 0, 3])
    _write_cifar10_py(tmp_path, train, train_labels, test, test_labels, dump)
    ds = data.load("cifar10", data_dir=tmp_path, val_size=0)
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32) and ds.num_classes == 10
    assert ds.x_train.dtype == torch.float32 and len(ds.x_val) == 0
    assert ds.y_test.tolist() == [7, 0, 3] and ds.y_train.tolist() == train_labels.tolist()
    mean, std = _train_stats(train)  # the format: 1024 red, 1024 green, 1024 blue, each 32x32 row-major
    for c, r, col in [(0, 0, 0), (1, 2, 3), (2, 31, 30)]:
        raw = test[1, c * 1024 + r * 32 + col]
        assert float(ds.x_test[1, c, r, col]) == pytest.approx((raw - mean[c]) / std[c], abs=1e-5)
    torch.testing.assert_close(ds.x_train.mean(dim=(0, 2, 3)).double(), torch.zeros(3, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(ds.x_train.std(dim=(0, 2, 3), unbiased=False).double(), torch.ones(3, dtype=torch.float64), atol=1e-5, rtol=0)


def test_fixture_pickles_are_python2_cpickle_files_that_the_stock_unpickler_also_reads(tmp_path):
    root = write_cifar_fixture(tmp_path, n_train=12, n_test=4, seed=3)
    raw = (root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    assert ops[0] == ("PROTO", 2)
    assert {arg for name, arg in ops if name == "GLOBAL"} == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    assert not {name for name, _ in ops} & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}  # Python 2 str only
    stock = pickle.loads(raw, encoding="latin1")
    assert sorted(stock) == ["batch_label", "data", "filenames", "labels"]
    assert stock["data"].dtype == np.uint8 and stock["data"].shape == (3, 3072)  # 12 images over 5 batches
    ds = data.load("cifar10", data_dir=root, val_size=0)
    batches = [pickle.loads((root / "cifar-10-batches-py" / f"data_batch_{i}").read_bytes(), encoding="latin1") for i in range(1, 6)]
    assert ds.y_train.tolist() == sum((b["labels"] for b in batches), [])
    assert sorted(ds.y_train.tolist()) == sorted(list(range(10)) + [0, 1])  # every class once, then cycling


def test_binary_version_reads_the_same_images_and_labels_as_the_python_version(tmp_path):
    for variant in ("cifar10", "cifar100"):
        py = data.load(variant, data_dir=write_cifar_fixture(tmp_path / f"{variant}-py", n_train=15, n_test=6, variant=variant), val_size=5)
        binary = data.load(variant, data_dir=write_cifar_fixture(tmp_path / f"{variant}-bin", n_train=15, n_test=6, variant=variant, layout="binary"), val_size=5)
        for split in ("train", "val", "test"):
            assert torch.equal(py.split(split)[0], binary.split(split)[0]) and torch.equal(py.split(split)[1], binary.split(split)[1])


def test_binary_record_is_label_byte_then_planar_pixels(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    pixels = _raw_images(6, 5)
    for i in range(1, 6):
        np.concatenate([[i], pixels[i]]).astype(np.uint8).tofile(folder / f"data_batch_{i}.bin")
    np.concatenate([[9], pixels[0], [4], pixels[1]]).astype(np.uint8).tofile(folder / "test_batch.bin")
    ds = data.load("cifar10", data_dir=tmp_path, val_size=0)
    assert ds.y_train.tolist() == [1, 2, 3, 4, 5] and ds.y_test.tolist() == [9, 4]
    mean, std = _train_stats(pixels[1:])
    assert float(ds.x_test[1, 2, 5, 7]) == pytest.approx((pixels[1, 2048 + 5 * 32 + 7] - mean[2]) / std[2], abs=1e-5)


def test_cifar100_fine_labels_by_default_coarse_as_an_option(tmp_path):
    root = write_cifar_fixture(tmp_path, n_train=120, n_test=10, variant="cifar100")
    fine = data.load("cifar100", data_dir=root, val_size=0)
    coarse = data.load("cifar100", data_dir=root, val_size=0, labels="coarse")
    assert fine.num_classes == 100 and coarse.num_classes == 20
    stock = pickle.loads((root / "cifar-100-python" / "train").read_bytes(), encoding="latin1")
    assert fine.y_train.tolist() == stock["fine_labels"] and coarse.y_train.tolist() == stock["coarse_labels"]
    assert torch.equal(fine.x_train, coarse.x_train)
    with pytest.raises(ValueError, match="labels must be one of 'fine', 'coarse'; got 'superclass'"):
        data.load("cifar100", data_dir=root, labels="superclass")


def test_validation_split_is_seeded_disjoint_and_drawn_from_the_training_set(tmp_path):
    root = write_cifar_fixture(tmp_path, n_train=40, n_test=5)
    full = data.load("cifar10", data_dir=root, val_size=0)
    a = data.load("cifar10", data_dir=root, val_size=8, split_seed=1)
    again = data.load("cifar10", data_dir=root, val_size=8, split_seed=1)
    other = data.load("cifar10", data_dir=root, val_size=8, split_seed=2)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (32, 8, 5)
    assert torch.equal(a.x_val, again.x_val) and not torch.equal(a.x_val, other.x_val)

    raw = np.concatenate([pickle.loads((root / "cifar-10-batches-py" / f"data_batch_{i}").read_bytes(), encoding="latin1")["data"]
                          for i in range(1, 6)])
    train_rows = raw[np.sort(np.random.default_rng(1).permutation(40)[8:])]  # the documented draw: the first 8 are val
    mean, std = _train_stats(train_rows)

    def images(x: torch.Tensor) -> set[bytes]:  # undo the normalisation, identify each image by its bytes
        pixels = np.rint(x.double().numpy() * std[None, :, None, None] + mean[None, :, None, None]).astype(np.uint8)
        return {row.tobytes() for row in pixels.reshape(len(x), -1)}

    assert images(a.x_train) == {row.tobytes() for row in train_rows}
    assert images(a.x_train).isdisjoint(images(a.x_val)) and images(a.x_train) | images(a.x_val) == {row.tobytes() for row in raw}
    assert a.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-5  # statistics of the training split, not of all 40
    assert a.x_val.mean(dim=(0, 2, 3)).abs().max() > 1e-4
    assert len(full.x_val) == 0 and len(full.x_train) == 40


def test_fractional_val_size_and_train_size(tmp_path):
    root = write_cifar_fixture(tmp_path, n_train=40, n_test=5)
    ds = data.load("cifar10", data_dir=root, val_size=0.25, train_size=10)
    assert (len(ds.x_train), len(ds.x_val)) == (10, 10)
    with pytest.raises(ValueError, match="train_size=31 but only 30 training images remain"):
        data.load("cifar10", data_dir=root, val_size=10, train_size=31)
    with pytest.raises(ValueError, match="holds 40 images but val_size=5000 takes 5000"):
        data.load("cifar10", data_dir=root)
    with pytest.raises(ValueError, match="val_size must be >= 0"):
        data.load("cifar10", data_dir=root, val_size=-1)


def _payload_pickle(marker) -> bytes:
    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('ran')",))

    return pickle.dumps({"data": Payload(), "labels": [0]}, protocol=2)


def test_a_cifar_pickle_that_carries_code_is_refused_and_its_code_never_runs(tmp_path):
    root = write_cifar_fixture(tmp_path / "data", n_train=10, n_test=2)
    marker = tmp_path / "pwned"
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(_payload_pickle(marker))
    with pytest.raises(UnsafePickleError, match=r"data_batch_3: refused to unpickle: the pickle asks for the global __builtin__\.exec"):
        data.load("cifar10", data_dir=root, val_size=0)
    assert not marker.exists()  # the code never ran
    pickle.loads(_payload_pickle(marker))  # the control: a plain unpickler does run it
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("payload", [
    pickle.dumps({"data": np.zeros((1, 3072), dtype=object), "labels": [0]}, protocol=4),  # object arrays may hold anything
    pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}, protocol=5),  # numpy's protocol-5 path: another global
    pickle.dumps({"data": np.zeros((1, 3072), np.uint8).view(np.recarray), "labels": [0]}, protocol=4),  # an ndarray subclass
    pickle.dumps({"data": os.system, "labels": [0]}, protocol=4),
], ids=["object-dtype", "protocol-5", "ndarray-subclass", "os.system"])
def test_anything_beyond_plain_numeric_arrays_is_refused(tmp_path, payload):
    root = write_cifar_fixture(tmp_path, n_train=5, n_test=1)
    (root / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="test_batch: refused to unpickle"):
        data.load("cifar10", data_dir=root, val_size=0)


def test_a_missing_folder_says_what_was_expected_where_it_looked_and_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        data.load("cifar10", data_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "cifar-10-batches-py/ (data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, test_batch)" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    with pytest.raises(FileNotFoundError, match="no data folder given; pass --data-dir"):
        data.load("cifar100")
    with pytest.raises(FileNotFoundError, match=f"data folder {tmp_path / 'nope'} does not exist"):
        data.load("cifar10", data_dir=tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file; expected a folder"):
        data.load("cifar10", data_dir=tmp_path / "file")
    root = write_cifar_fixture(tmp_path / "partial", n_train=10, n_test=2)
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="lacks data_batch_4; expected all of data_batch_1"):
        data.load("cifar10", data_dir=root, val_size=0)


def test_truncated_or_corrupt_files_get_a_clear_error(tmp_path):
    root = write_cifar_fixture(tmp_path / "py", n_train=10, n_test=2)
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="data_batch_1: not a readable CIFAR python-version batch \\(truncated or corrupt"):
        data.load("cifar10", data_dir=root, val_size=0)
    batch.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DataFormatError, match="expected a CIFAR batch dict with 'data' and 'labels'; found list"):
        data.load("cifar10", data_dir=root, val_size=0)
    batch.write_bytes(python2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}))
    with pytest.raises(DataFormatError, match="label 10 is outside 0..9"):
        data.load("cifar10", data_dir=root, val_size=0)
    root = write_cifar_fixture(tmp_path / "bin", n_train=10, n_test=2, variant="cifar100", layout="binary")
    test = root / "cifar-100-binary" / "test.bin"
    test.write_bytes(test.read_bytes()[:-1])
    with pytest.raises(DataFormatError, match="test.bin: 6147 bytes is not a whole number of 3074-byte records"):
        data.load("cifar100", data_dir=root, val_size=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::locallearn.divergence.DivergenceWarning")  # random images: nothing to learn
def test_a_cifar_fixture_trains_a_cnn_with_the_local_loss_augmentation(tmp_path):
    from locallearn.experiment import RunSpec, run

    root = write_cifar_fixture(tmp_path, n_train=48, n_test=16)
    ds = data.load("cifar10", data_dir=root, val_size=16)
    spec = RunSpec(data="cifar10", data_dir=str(root), model="cnn", channels=(4, 8), epochs=1, batch_size=16,
                   augment="crop4,flip,cutout16", progress=False)
    result = run(spec, ds)
    assert len(result.final("test")) == 2 and all(0.0 <= a <= 1.0 for a in result.final("test"))
    assert result.config["data_source"]["augment"] == "Compose(RandomCrop(padding=4), HorizontalFlip(p=0.5), Cutout(length=16))"
