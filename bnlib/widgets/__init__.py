"""Interactive pieces: the figure backend, the momentum explorer and its displays, live curves, the drift player,
predict questions.

Notebooks write `from bnlib import widgets` and then `widgets.momentum_explorer(...)`.
"""

from bnlib.widgets.backend import use_widget_backend
from bnlib.widgets.drift_player import DriftPlayer
from bnlib.widgets.explorer import MomentumExplorer, momentum_explorer
from bnlib.widgets.live import live_curves
from bnlib.widgets.predict import PredictQuestion, range_question

__all__ = [
    "DriftPlayer", "MomentumExplorer", "PredictQuestion", "live_curves", "momentum_explorer", "range_question",
    "use_widget_backend",
]  # fmt: skip
