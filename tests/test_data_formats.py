"""SVHN (.mat), STL-10 (binary) and class-per-folder image trees from fixtures in the exact on-disk formats,
plus the option handling of ``data.load`` and the ``--data NAME --data-dir DIR`` path of the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from locallearn import data
from locallearn.cli import main
from locallearn.data import DataFormatError


def _stats(x_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = x_nchw.astype(np.float64)
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def _write_svhn(folder, name, images_nhwc: np.ndarray, labels: np.ndarray) -> None:
    X = np.ascontiguousarray(images_nhwc.transpose(1, 2, 3, 0))  # the file's (32, 32, 3, N)
    scipy.io.savemat(folder / f"{name}_32x32.mat", {"X": X, "y": labels.reshape(-1, 1).astype(np.uint8)})


def test_svhn_label_10_is_the_digit_0_and_pixels_keep_their_place(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    _write_svhn(tmp_path, "train", train, np.array([10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]))
    _write_svhn(tmp_path, "test", test, np.array([10, 3, 9]))
    ds = data.load("svhn", data_dir=tmp_path, val_size=0)
    assert ds.x_train.shape == (12, 3, 32, 32) and ds.num_classes == 10
    assert ds.y_test.tolist() == [0, 3, 9] and ds.y_train.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0]
    mean, std = _stats(train.transpose(0, 3, 1, 2))
    for n, r, c, ch in [(0, 0, 0, 0), (2, 5, 17, 1), (1, 31, 2, 2)]:  # X[r, c, ch, n] is pixel (r, c) of channel ch
        assert float(ds.x_test[n, ch, r, c]) == pytest.approx((test[n, r, c, ch] - mean[ch]) / std[ch], abs=1e-5)
    split = data.load("svhn", data_dir=tmp_path, val_size=4, split_seed=3)
    assert (len(split.x_train), len(split.x_val)) == (8, 4)
    assert sorted(split.y_train.tolist() + split.y_val.tolist()) == sorted(ds.y_train.tolist())


def test_svhn_extra_joins_the_training_set_and_bad_files_are_named(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in (("train", 4), ("test", 2), ("extra", 3)):
        _write_svhn(tmp_path, name, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.full(n, 5))
    assert len(data.load("svhn", data_dir=tmp_path, val_size=0, extra=True).x_train) == 7
    (tmp_path / "extra_32x32.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks extra_32x32\.mat.*http://ufldl\.stanford\.edu/housenumbers/"):
        data.load("svhn", data_dir=tmp_path, extra=True)
    test = tmp_path / "test_32x32.mat"
    test.write_bytes(test.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=r"test_32x32\.mat: not a readable SVHN \.mat file \(truncated or corrupt"):
        data.load("svhn", data_dir=tmp_path, val_size=0)
    _write_svhn(tmp_path, "test", rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), np.array([0, 3]))
    with pytest.raises(DataFormatError, match=r"labels must lie in 1\.\.10 \(10: the digit 0\); found 0\.\.3"):
        data.load("svhn", data_dir=tmp_path, val_size=0)
    with pytest.raises(FileNotFoundError, match=r"looked for .*train_32x32\.mat.*expected train_32x32\.mat, test_32x32\.mat"):
        data.load("svhn", data_dir=tmp_path / "..")


def _write_stl10(folder, split: str, images_nchw: np.ndarray, labels: np.ndarray) -> None:
    column_major = images_nchw.transpose(0, 1, 3, 2)  # the file stores [channel, column, row]
    np.ascontiguousarray(column_major).tofile(folder / f"{split}_X.bin")
    labels.astype(np.uint8).tofile(folder / f"{split}_y.bin")


def test_stl10_bytes_are_column_major_and_labels_1_to_10_become_0_to_9(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5, 3, 96, 96), dtype=np.uint8)
    _write_stl10(folder, "train", train, np.array([1, 2, 10, 4, 5]))
    raw = np.zeros(2 * 3 * 96 * 96, np.uint8)
    raw[1] = 255  # byte 1 of image 0: the second pixel down the first column -> row 1, column 0
    raw[3 * 96 * 96 + 2 * 96 * 96 + 5 * 96 + 7] = 255  # image 1, channel 2, column 5, row 7
    raw.tofile(folder / "test_X.bin")
    np.array([10, 1], np.uint8).tofile(folder / "test_y.bin")
    ds = data.load("stl10", data_dir=tmp_path, val_size=0)
    assert ds.x_train.shape == (5, 3, 96, 96) and ds.y_train.tolist() == [0, 1, 9, 3, 4] and ds.y_test.tolist() == [9, 0]
    bright = [tuple(int(v) for v in np.unravel_index(int(img.flatten().argmax()), (3, 96, 96))) for img in ds.x_test]
    assert bright == [(0, 1, 0), (2, 7, 5)]
    mean, std = _stats(train)
    assert float(ds.x_train[2, 1, 40, 3]) == pytest.approx((train[2, 1, 40, 3] - mean[1]) / std[1], abs=1e-5)


def test_stl10_truncated_and_mismatched_files_get_a_clear_error(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    for split in ("train", "test"):
        _write_stl10(folder, split, np.zeros((2, 3, 96, 96), np.uint8), np.array([1, 2]))
    (folder / "test_X.bin").write_bytes((folder / "test_X.bin").read_bytes()[:-10])
    with pytest.raises(DataFormatError, match=r"test_X\.bin: 55286 bytes is not a whole number of 27648-byte 96x96x3 images"):
        data.load("stl10", data_dir=tmp_path, val_size=0)
    _write_stl10(folder, "test", np.zeros((2, 3, 96, 96), np.uint8), np.array([1, 2, 3]))
    with pytest.raises(DataFormatError, match=r"test_y\.bin: 3 labels for the 2 images of test_X\.bin"):
        data.load("stl10", data_dir=tmp_path, val_size=0)
    (folder / "test_y.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks test_y\.bin.*stl10_binary\.tar\.gz"):
        data.load("stl10", data_dir=tmp_path)


def _write_tree(root, counts: dict[str, int], size=(6, 4), colour_of=None) -> None:
    for k, (cls, n) in enumerate(counts.items()):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            colour = colour_of(k, i) if colour_of else (10 * k, 20 * i, 200)
            Image.new("RGB", size, colour).save(root / cls / f"img{i}.png")


def test_image_folder_classes_sorted_by_folder_name_with_resize_and_stratified_test(tmp_path):
    _write_tree(tmp_path, {"zebra": 10, "ant": 5, "moth": 5}, size=(6, 4))
    (tmp_path / "ant" / "notes.txt").write_text("not an image")  # skipped
    ds = data.load("image-folder", data_dir=tmp_path, size=8, val_size=0, test_fraction=0.2)
    assert ds.num_classes == 3 and ds.x_train.shape[1:] == (3, 8, 8)
    assert sorted(ds.y_test.tolist()) == [0, 1, 2, 2]  # 20 % of each class: ant, moth 1 each, zebra 2
    assert sorted(ds.y_train.tolist()) == [0] * 4 + [1] * 4 + [2] * 8
    native = data.load("image-folder", data_dir=tmp_path, val_size=0.25)
    assert native.x_train.shape[1:] == (3, 4, 6) and len(native.x_val) == 4  # height 4, width 6
    grey = data.load("image-folder", data_dir=tmp_path, channels=1, val_size=0)
    assert grey.x_train.shape[1:] == (1, 4, 6)


def test_image_folder_pixels_and_train_test_folders(tmp_path):
    _write_tree(tmp_path / "train", {"b": 3, "a": 3}, colour_of=lambda k, i: (50 * i, 100 * k, 7))
    _write_tree(tmp_path / "test", {"a": 1}, colour_of=lambda k, i: (255, 0, 30))
    ds = data.load("image-folder", data_dir=tmp_path, val_size=0)
    assert ds.y_train.tolist() == [0, 0, 0, 1, 1, 1] and ds.y_test.tolist() == [0]  # "a" < "b"
    raw = np.array([[50 * i, 100 * k, 7] for k in (1, 0) for i in range(3)], dtype=np.float64)  # class a is written second
    mean, std = raw.mean(0), raw.std(0)
    std[std == 0] = 1.0
    expected = (np.array([255, 0, 30]) - mean) / std
    torch.testing.assert_close(ds.x_test[0, :, 2, 3].double(), torch.from_numpy(expected), atol=1e-5, rtol=0)
    (tmp_path / "test" / "c").mkdir()
    Image.new("RGB", (6, 4)).save(tmp_path / "test" / "c" / "x.png")
    with pytest.raises(DataFormatError, match=r"has classes \['c'\] that the training folder lacks"):
        data.load("image-folder", data_dir=tmp_path)


def test_image_folder_errors_name_the_file_and_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no class subfolders; expected one subfolder of images per class"):
        data.load("image-folder", data_dir=tmp_path)
    _write_tree(tmp_path, {"a": 2, "b": 2})
    Image.new("RGB", (5, 5)).save(tmp_path / "b" / "odd.png")
    with pytest.raises(DataFormatError, match=r"odd\.png is 5x5 pixels but .*img0\.png is 6x4; pass size="):
        data.load("image-folder", data_dir=tmp_path)
    (tmp_path / "b" / "odd.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFormatError, match=r"odd\.png is not a readable image"):
        data.load("image-folder", data_dir=tmp_path, size=4)
    (tmp_path / "b" / "odd.png").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="class folder .*empty holds no images"):
        data.load("image-folder", data_dir=tmp_path)


def test_load_passes_options_and_names_the_ones_a_dataset_takes(tmp_path):
    assert {"cifar10", "cifar100", "svhn", "stl10", "image-folder"} <= set(data.names())
    with pytest.raises(ValueError, match=r"The dataset 'svhn' has no option 'size'\. Its options are: val_size, train_size, extra\."):
        data.load("svhn", data_dir=tmp_path, size=32)
    with pytest.raises(ValueError, match="The dataset 'digits' has no option 'val_size'. Its options are: none."):
        data.load("digits", val_size=0)


@pytest.mark.slow
def test_cli_trains_from_an_image_folder_given_by_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    _write_tree(tmp_path / "imgs", {"a": 6, "b": 6}, size=(8, 8), colour_of=lambda k, i: tuple(int(v) for v in rng.integers(0, 256, 3)))
    out = tmp_path / "run.json"
    code = main(["train", "--data", "image-folder", "--data-dir", str(tmp_path / "imgs"), "--widths", "8", "--epochs", "1",
                 "--augment", "crop2,flip,cutout4", "--out", str(out), "--no-progress"])
    assert code == 0
    record = json.loads(out.read_text())
    assert record["config"]["data"] == "image-folder"
