# se_edge: every target creates .venv and installs the project into it when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUN    ?= runs/demo

.PHONY: install demo test test-all bench device-test clean readme-tables

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The whole pipeline on scikit-learn's digits: runs/demo/{report.json,report.md,*.png,*.tflite,*.pte}
demo: $(STAMP)
	$(BIN)/se-edge run --out $(RUN)

## Unit and integration tests (CPU only, no network, no ../shared)
## One worker per core (files kept whole, so a module's fixture is built once); one thread per worker,
## or two workers' OpenMP pools spin against each other on two cores.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --dist loadfile --durations=40 tests

## Latency of an existing run's artifacts (not a test; run `make demo` first)
bench: $(STAMP)
	$(BIN)/se-edge bench latency --run $(RUN) --runs 200 --json $(RUN)/bench.json

## Load the exported files of a run in their runtimes, here and on DEVICE (local | local:/path/to/python |
## adb[:SERIAL] | ssh:[user@]host[:port]), and check outputs against the host reference and latency
DEVICE ?= local
device-test: $(STAMP)
	$(BIN)/python -m pytest -q device_tests --run-dir $(RUN) --se-device $(DEVICE)

## A real ssh device on loopback: sshd on 127.0.0.1 (Debian's openssh-server, installed here where missing),
## throwaway keys, the old-runtime venv as the device's Python; `se-edge bench latency --device ssh:...` on RUN
device-test-ssh: $(STAMP) old-runtime-venv
	@test -x /usr/sbin/sshd || (command -v apt-get >/dev/null && apt-get install -y --no-install-recommends openssh-server >/dev/null) \
		|| echo "openssh-server could not be installed; the test will skip and say why"
	@test -f $(RUN)/run.json || $(MAKE) demo
	$(BIN)/python -m pytest -q device_tests/test_ssh_loopback.py --run-dir $(RUN) -rs -s

## ExecuTorch's Arm backend for `se-edge export --target ethos-u55-128`: it needs ethos-u-vela 5.1.0 and
## tosa-tools (executorch[ethos-u]) while the benchmarks use Vela 5.2.0, so a venv that sees .venv's packages
## and overrides those three
ethosu-venv: .venv-ethosu/.installed-stamp

.venv-ethosu/.installed-stamp: $(STAMP)
	@test -x .venv-ethosu/bin/python || $(PYTHON) -m venv .venv-ethosu
	echo "import site; site.addsitedir('$(CURDIR)/.venv/lib/python3.11/site-packages')" > .venv-ethosu/lib/python3.11/site-packages/_se_edge_main.pth
	.venv-ethosu/bin/python -m pip install --quiet --disable-pip-version-check 'ethos-u-vela==5.1.0' 'ml_dtypes==0.5.1' 'tosa-tools==2026.5.0'
	@touch $@

## RUN's float model to a .pte for Ethos-U55-128 through the Arm backend, checked (device_tests/test_ethosu.py)
ethosu-test: ethosu-venv
	@test -f $(RUN)/run.json || $(MAKE) demo
	$(BIN)/python -m pytest -q device_tests/test_ethosu.py --run-dir $(RUN) -rs -s

.PHONY: app-venv app-test native-runner arm64-board device-test-arm64 old-runtime-venv old-runtime-test device-test-ssh ethosu-venv ethosu-test
OLD_VENV := .venv-tflite-old

## The native runners: native/pte_runner against the executorch wheel (build/pte_runner/pte_runner) and
## native/tflite_runner against ai-edge-litert's libLiteRt.so (build/tflite_runner/tflite_runner).
## Says why and does nothing where cmake or a C++ compiler is missing.
## ARCH=arm64: cross-built with Debian's aarch64 toolchain (installed here where missing) against the aarch64 wheels
## of the same versions (pip download --platform, unpacked, never installed): build/arm64/{pte_runner,tflite_runner},
## and build/arm64/bundle with both and their libraries, for `--native build/arm64/bundle` on an arm64 device.
ARCH ?= host
# Debian packages, installed where missing (the package lists refreshed once if the first try fails)
apt_install = $(APT) $(1) >/dev/null || (apt-get update -qq && $(APT) $(1) >/dev/null)
APT := DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends
native-runner: $(STAMP)
ifeq ($(ARCH),arm64)
	@command -v aarch64-linux-gnu-g++ >/dev/null || $(call apt_install,g++-aarch64-linux-gnu)
endif
	$(BIN)/python -m se_edge.device.native build --arch $(ARCH)

## An arm64 board on this machine (build/arm64-board): a Debian bookworm arm64 sysroot with no Python (libc6,
## libstdc++6, libgcc-s1: apt-get download + dpkg -x, after `dpkg --add-architecture arm64`), the cross-built runners
## in /opt/se_edge, an ARM /proc/cpuinfo and a pinned QEMU CPU model (cortex-a76); run with --device qemu-arm64
arm64-board: $(STAMP)
	@command -v qemu-aarch64-static >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null \
		|| $(call apt_install,qemu-user-static g++-aarch64-linux-gnu)
	@dpkg --print-foreign-architectures | grep -qx arm64 || (dpkg --add-architecture arm64 && apt-get update -qq)
	$(BIN)/python -m se_edge.device.arm64 board

## RUN's exported files on the arm64 board through the native runners, checked against this host bit by bit
device-test-arm64: arm64-board
	@test -f $(RUN)/run.json || $(MAKE) demo
	$(BIN)/python -m pytest -q device_tests/test_arm64_board.py --run-dir $(RUN) -rs -s -p no:cacheprovider

## A stand-in for a board with an older runtime: a venv with only numpy<2 and tflite-runtime 2.14 (no torch)
old-runtime-venv: $(OLD_VENV)/.installed-stamp

$(OLD_VENV)/.installed-stamp:
	@test -x $(OLD_VENV)/bin/python || $(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'numpy<2' 'tflite-runtime==2.14.0'
	@touch $@

## Run RUN's .tflite files in that venv through the local: transport and check parity with the host
old-runtime-test: $(STAMP) old-runtime-venv
	$(BIN)/python -m pytest -q device_tests/test_old_runtime.py --run-dir $(RUN) -rs

## The README's benchmark tables, re-rendered from runs/*/...json (run the benchmarks first)
readme-tables: $(STAMP)
	$(BIN)/python -m se_edge.benchmarks.readme README.md runs

## The apps' own classifier clients in their own venv: MediaPipe Tasks and tflite-support's Task Library (its
## metadata library links libusb-1.0, installed from Debian's packages where missing). Where they cannot be
## installed it says why, and app-test skips with that reason.
APP_VENV := .venv-app
app-venv: $(APP_VENV)/.installed-stamp

$(APP_VENV)/.installed-stamp:
	@ldconfig -p 2>/dev/null | grep -q libusb-1.0 || (command -v apt-get >/dev/null && apt-get install -y --no-install-recommends libusb-1.0-0 >/dev/null) \
		|| echo "libusb-1.0 could not be installed: tflite-support's Task Library will not import (its test skips)"
	@test -x $(APP_VENV)/bin/python || $(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'mediapipe==1.2.2' 'tflite-support==0.4.4' \
		&& touch $@ || echo "the app clients could not be installed; make app-test will skip"

## The app files in MediaPipe's and the Task Library's ImageClassifier, on make demo's run (greyscale) and an RGB
## run (APP_RGB_RUN, made from APP_RGB_DATA: CIFAR-10 where ../shared has it, digits as RGB otherwise)
APP_RGB_RUN  ?= runs/app-rgb
APP_RGB_DATA ?= $(if $(wildcard ../shared/data/cifar10-3k8),../shared/data/cifar10-3k8,digits)
app-test: $(STAMP) app-venv
	@test -f $(RUN)/run.json || $(MAKE) demo
	@test -f $(APP_RGB_RUN)/run.json || $(BIN)/se-edge run --out $(APP_RGB_RUN) --data $(APP_RGB_DATA) --in-chans 3
	$(BIN)/python -m pytest -q device_tests/test_app_clients.py --run-dir $(RUN) -rs -s -p no:cacheprovider
	$(BIN)/python -m pytest -q device_tests/test_app_clients.py --run-dir $(APP_RGB_RUN) -rs -s -p no:cacheprovider

clean:
	rm -rf runs .pytest_cache

## Every test, including the minutes-long purity exports of the larger zoo models (marker `slow`)
test-all: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n auto --dist loadfile tests -m "slow or not slow"
