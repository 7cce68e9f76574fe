"""Cache keys under another library: torch's version and bnlib's code fingerprint belong in every key."""

import torch

from bnlib import cache


def keys_with_other_versions(monkeypatch, key):
    """[key() with torch's version changed, key() with bnlib's code changed]; undoes `monkeypatch` after each."""
    keys = []
    for module, name, other in ((torch, "__version__", "0.0.1"), (cache, "code_fingerprint", lambda: "0" * 64)):
        monkeypatch.setattr(module, name, other)
        keys.append(key())
        monkeypatch.undo()
    return keys
