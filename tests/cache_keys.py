"""Cache keys under other library versions: torch's and bnlib's versions belong in every key."""

import torch

import bnlib


def keys_with_other_versions(monkeypatch, key):
    """[key() with torch's version changed, key() with bnlib's version changed]; undoes `monkeypatch` after each."""
    keys = []
    for module in (torch, bnlib):
        monkeypatch.setattr(module, "__version__", "0.0.1")
        keys.append(key())
        monkeypatch.undo()
    return keys
