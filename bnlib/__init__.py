"""bnlib: the small helper package behind the BatchNorm-in-PyTorch lecture notebooks."""

from bnlib.config import Settings, settings
from bnlib.runtime import derive_seeds, resolve_device, seed_everything

__version__ = "0.1.0"
__all__ = ["Settings", "__version__", "derive_seeds", "resolve_device", "seed_everything", "settings"]
