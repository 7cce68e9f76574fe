"""Interactive pieces: the figure backend, the momentum explorer, live curves, the drift player, predict questions."""
