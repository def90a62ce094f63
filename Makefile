# Two commands on a fresh machine with Python 3.11:
#   make demo   creates .venv, installs everything, runs the whole path on digits
#   make test   creates .venv if needed, runs the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch 2.13.0 CPU (a newer or unpinned torch pulls a multi-GB CUDA build).
TORCH := torch==2.13.0
# lava-nc / lava-dl declare Python < 3.11, numpy < 2 and torch < 2.4: install them
# without their declared dependencies and add their real runtime needs (pyproject
# extra "lava"); dsatgo_deploy.lava_compat repairs their imports on Python 3.11.
LAVA := lava-nc==0.10.0 lava-dl==0.6.0
# NIR consumers beside torch 2.13 (docs/interop.md; tests/export/test_nir_consumers.py). Norse
# declares torchvision, Sinabs declares samna (DYNAP-CNN hardware) and nir<=1.0.4: none is needed
# to import NIR, so both are installed without their declared dependencies; extra "interop" holds
# their real ones. spyx 1.0.0 (JAX) needs numpy>=2 and cannot live beside numpy<2.
# Rockpool 3.1.0 (its NIR writer, tests/export/test_nir_import_more.py) needs only numpy and scipy.
# SpikingJelly 2.0.0 (its NIR writer, the same tests) imports loguru (pure Python).
INTEROP := norse==1.1.0 sinabs==3.1.3 rockpool==3.1.0 spikingjelly==2.0.0 loguru==0.7.3
# lava-dl's own netx files and ground truths, kept from its wheel at install.
LAVA_DL_FILES := $(VENV)/share/lava-dl-0.6.0-netx

.PHONY: all install demo test bench ablation clean

all: test

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --ignore-requires-python $(LAVA)
	$(BIN)/pip install -q --disable-pip-version-check -e ".[lava,dev,onnx,nir,peers,interop]"
	$(BIN)/pip install -q --disable-pip-version-check --no-deps $(INTEROP)
	@# Both lava wheels drop a top-level `tests` package (~110 MB) into site-packages,
	@# which would shadow ours. Keep lava-dl's netx files and recorded ground truths
	@# (BSD-3, with lava-dl's licence) under $(LAVA_DL_FILES): our tests check against
	@# them. Then remove the package, and only if it is lava's.
	@site=$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"); \
	if [ -d "$$site/tests/lava/lib/dl/netx" ]; then rm -rf $(LAVA_DL_FILES); mkdir -p $(LAVA_DL_FILES); \
	  cp -r "$$site/tests/lava/lib/dl/netx/gts" "$$site"/tests/lava/lib/dl/netx/*.net $(LAVA_DL_FILES)/; \
	  cp "$$site"/lava_dl-0.6.0.dist-info/LICENSE $(LAVA_DL_FILES)/LICENSE; fi; \
	if [ -d "$$site/tests/lava" ]; then rm -rf "$$site/tests"; echo "removed lava's stray site-packages/tests"; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dsatgo demo --out demo_out --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Benchmarks print ratios measured in one run. The peer libraries are for the bench only:
# SpikingJelly declares torchvision and torch >= 2.6 (a CUDA build), so no deps for it.
bench: $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check snntorch==1.0.0 loguru==0.7.3
	$(BIN)/pip install -q --disable-pip-version-check --no-deps spikingjelly==2.0.0
	$(BIN)/python bench/reference_vs_lava.py
	$(BIN)/python bench/train_step.py

# `make interop` is kept for venvs made before the NIR consumers joined the install.
.PHONY: interop
interop: $(STAMP)

# The four-setting ablation on digits (about 30 minutes on 2 cores): docs/ablation.md
ablation: $(STAMP)
	PATH=$(BIN):$$PATH bash bench/ablation_digits.sh

clean:
	rm -rf $(VENV) demo_out .pytest_cache *.egg-info
