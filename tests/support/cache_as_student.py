"""Run as another user by tests/test_shared_cache_other_user.py: ask the run cache for each case, print JSON.

    python cache_as_student.py '[{"config": {...}, "shared": "/folder", "personal": "/folder"}, ...]'

For each case: the uid, the bnlib file imported, whether compute() ran, the record, the folder the entry came
from or went to, and the warning messages.
"""

import json
import os
import sys
import warnings

import torch

from bnlib import cache


def ask(config, shared, personal):
    computed = []

    def compute():
        computed.append(True)
        return {"computed_by": os.getuid()}, {"weight": torch.ones(2)}

    os.environ[cache.SHARED_CACHE_ENV] = shared
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = cache.cached(config, compute, device="cpu", description="student", cache_dir=personal, verbose=False)
    return {"uid": os.getuid(), "bnlib": cache.__file__, "computed": bool(computed), "record": entry.record,
            "folder": entry.folder and str(entry.folder), "warnings": [str(warning.message) for warning in caught]}


if __name__ == "__main__":
    print(json.dumps([ask(**case) for case in json.loads(sys.argv[1])]))
