"""The class load test (marker `load`: `make test-load`, which CI runs after `make test`): 8 kernels at once run
notebook 04 in quick mode against one shared, read-only run cache, each with a fresh personal cache.

Its time and memory are measured by `make bench` (load_test_slowest_wall_s, load_test_summed_peak_mb), not here.
"""

import pytest

from bench.load import LOAD_KERNELS, run_load_test

pytestmark = [pytest.mark.load, pytest.mark.slow]


def test_every_kernel_reads_the_shared_cache_and_none_trains_again():
    results = run_load_test(LOAD_KERNELS)
    # each kernel: exit code 0, no entry in its personal cache, and a run "read from the shared run cache"
    assert results["load_test_problems"] == []
    assert len(results["load_test_wall_s"]) == LOAD_KERNELS and results["load_test_summed_peak_mb"] > 0
