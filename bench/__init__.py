"""`make bench`: training speed against the classic data pipeline and bare compute, slider latency, suite time."""
