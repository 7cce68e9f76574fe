"""bnlib.runtime: the one device rule and the seeds a grid or a sweep derives from the lecture's seed."""

import pytest
import torch

from bnlib.runtime import derive_seeds, memory_limit_mb, resolve_device


def test_derive_seeds_starts_at_the_base_seed():
    assert derive_seeds(123, 3) == [123, 124, 125]
    with pytest.raises(ValueError, match="num_seeds"):
        derive_seeds(123, 0)
    with pytest.raises(ValueError, match="base_seed"):
        derive_seeds(-1, 2)


def test_resolve_device_keeps_a_given_device_and_otherwise_picks_the_best():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device().type == expected


def test_memory_limit_mb_reads_cgroup_v2_then_v1_and_treats_no_limit_as_none(tmp_path):
    v2, v1, missing = tmp_path / "memory.max", tmp_path / "limit_in_bytes", tmp_path / "absent"
    v2.write_text("1610612736\n")
    v1.write_text("1073741824\n")
    assert memory_limit_mb((missing, v2, v1)) == 1536
    assert memory_limit_mb((missing, v1)) == 1024
    v2.write_text("max\n")
    assert memory_limit_mb((v2, v1)) is None
    v1.write_text(str(2**63 - 4096))
    assert memory_limit_mb((v1,)) is None
    assert memory_limit_mb((missing,)) is None


def test_memory_limit_mb_takes_bnlib_memory_limit_mb_first_and_rejects_a_bad_value(tmp_path, monkeypatch):
    v2 = tmp_path / "memory.max"
    v2.write_text("1073741824\n")
    monkeypatch.setenv("BNLIB_MEMORY_LIMIT_MB", "1500")
    assert memory_limit_mb((v2,)) == 1500
    for bad in ("lots", "0", "-5"):
        monkeypatch.setenv("BNLIB_MEMORY_LIMIT_MB", bad)
        with pytest.raises(ValueError, match="BNLIB_MEMORY_LIMIT_MB"):
            memory_limit_mb((v2,))
    monkeypatch.setenv("BNLIB_MEMORY_LIMIT_MB", "")
    assert memory_limit_mb((v2,)) == 1024
