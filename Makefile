# The two commands of the README: `make lab` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# JupyterLab refuses to run as root without --allow-root (CI and these build machines run as root).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)
# The lecture's MLPs are too small to gain from several CPU threads, and on a 2-core machine shared
# with JupyterLab or the browser test, OpenMP threads waiting for a busy core made an epoch 10-70x
# slower (0.4 s vs 27 s measured here). Override with `make ... OMP_NUM_THREADS=4`.
export OMP_NUM_THREADS ?= 1

# make bench SUITE=quick skips the full-mode notebook suite (the longest part); SUITE=none skips both suites.
SUITE ?= full

.PHONY: venv lab test test-fast test-load test-browser run warm bench student release site clean

# Live learning curves only where someone watches (make lab): off for tests, run, warm and bench.
test test-fast test-load run warm bench: export BNLIB_LIVE = 0
# An instructor's shared cache (BNLIB_SHARED_CACHE) is not read where the run cache is filled or timed: empty, it is off.
warm bench: export BNLIB_SHARED_CACHE =

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,instructor,deploy]'
	touch $@

venv: $(STAMP)

lab: $(STAMP)  ## JupyterLab on notebooks/, loopback only, token authentication on
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

test: $(STAMP)  ## ruff, unit tests, every notebook in quick mode, the browser test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not load"

# The tier to run while editing: what `make test` runs minus the notebooks, the browser and the tests marked slow.
test-fast: $(STAMP)  ## ruff and the unit tests only (about a minute)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow and not browser"

# A class on one machine: 8 kernels run notebook 04 at once against one read-only shared cache (bench/load.py).
test-load: $(STAMP)  ## the class load test (a few minutes on 2 cores); CI runs it after make test
	$(BIN)/python -m pytest -m load

test-browser: $(STAMP)  ## only the JupyterLab-in-Chromium test
	$(BIN)/python -m pytest -m browser -s

# Without stored widget state the HTML shows each widget's static picture (the explorer's PNG, ipympl's image)
# instead of a view that needs the widget scripts from a CDN.
run: $(STAMP)  ## every notebook in full mode, executed copies and HTML in build/notebooks/; fills the run cache
	mkdir -p build/notebooks
	BNLIB_QUICK=0 $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
		--ExecutePreprocessor.store_widget_state=False --output-dir build/notebooks $(NOTEBOOKS)
	$(BIN)/jupyter nbconvert --to html --output-dir build/notebooks build/notebooks/*.ipynb
	$(BIN)/python tools/export_figures.py build/notebooks build/figures

# Runs the notebooks themselves, so the cache holds exactly what they ask for (BNLIB_CACHE_DIR and
# BNLIB_DATA_DIR are passed through); build/warm/ keeps the executed copies.
warm: $(STAMP)  ## before class: every training the notebooks do in full mode, into the run cache
	mkdir -p build/warm
	BNLIB_QUICK=0 $(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
		--output-dir build/warm $(NOTEBOOKS)

bench: $(STAMP)  ## speed: epoch vs the classic pipeline and bare compute, slider latency, suite time -> build/bench/
	$(BIN)/python -m bench.run --suite $(SUITE)

# Never overwrites a student notebook edited after it was written (it says so and leaves it).
student: $(STAMP)  ## the student edition: solutions replaced by stubs, outputs cleared -> build/student/
	$(BIN)/python tools/make_student.py notebooks build/student

# A fresh folder each time (it replaces only a folder that a former release wrote); no tests, history or cache.
DEST ?= build/release
release: $(STAMP)  ## the class repository: student notebooks, bnlib, a student README and Makefile -> $(DEST)
	$(BIN)/python tools/make_release.py $(DEST)

# Full mode answers from the run cache (make warm first, or it trains); BNLIB_QUICK=1 builds in a few minutes.
site: $(STAMP)  ## the static site: every student notebook executed, widgets working without a kernel -> build/site/
	$(BIN)/python tools/build_site.py --out build/site

clean:
	rm -rf build .pytest_cache .ruff_cache
