"""Figures, one module by what they draw; every helper takes `ax=None` and returns what it drew on."""
