# Vigil: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A real TAK server (taky, from PyPI) in a venv of its own, for the CoT tests; its Flask and
# gunicorn stay out of Vigil's environment.
TAK := .tak
# The official AsyncAPI parser (npm), which checks docs/asyncapi.json in the tests.
ASYNCAPI := .asyncapi
OUT ?= demo-out
# A third-party virtual ONVIF camera (ipycam, PyPI) for the camera tests. --no-deps: it asks for
# opencv-python, which would shadow Vigil's headless OpenCV; it needs only cv2 and numpy.
IPYCAM := $(VENV)/.ipycam
AOT := tracks/_kernels_aot.sha256

.PHONY: demo test lint bench system-packages clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench,serve]'
	touch $(STAMP)

demo: $(STAMP) $(AOT)
	$(VENV)/bin/vigil demo --out $(OUT)

# The tracker's kernels compiled ahead of time (vigil.tracks.aot), so that a vigil track run
# does not start numba; without them numba compiles the same kernels at run time.
$(AOT): $(STAMP) tracks/kernels.py tracks/aot.py
	$(PY) -m vigil.tracks.aot || echo "tracker kernels not compiled ahead of time: numba's JIT runs them"

$(IPYCAM): $(STAMP)
	$(PY) -m pip install --quiet --no-deps ipycam==1.3.0 && touch $(IPYCAM) \
	  || echo "ipycam could not be installed: the ONVIF camera tests skip"

$(TAK)/bin/taky:
	test -x $(TAK)/bin/python || $(PYTHON) -m venv $(TAK)
	$(TAK)/bin/pip install --quiet taky==0.10 || echo "taky could not be installed: the TAK server test skips"

$(ASYNCAPI)/node_modules/@asyncapi/parser/package.json:
	command -v npm >/dev/null && npm install --silent --no-audit --no-fund --prefix $(ASYNCAPI) @asyncapi/parser@3.6.6 \
	  || echo "the AsyncAPI parser could not be installed: its test skips"

# System packages the tests need: Mosquitto (broker tests), Chromium (map tests), GDAL's
# ogrinfo and gdal_viewshed (GeoPackage and viewshed checks), ffmpeg (the virtual ONVIF
# camera's RTSP stream) and opencv-doc (OpenCV's real
# pedestrian clip vtest.avi, Apache-2.0/BSD-3-Clause, for the daylight detection checks),
# PostgreSQL 15 with PostGIS 3 (the history store's tests start a throwaway cluster).
# Installed through apt-get when missing and running as root (waiting up to 15 min for a busy apt
# lock); otherwise those tests skip with the reason.
system-packages:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v ogrinfo >/dev/null || missing="$$missing gdal-bin"; \
	  command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	  [ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing="$$missing opencv-doc"; \
	  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql-15"; \
	  [ -f /usr/share/postgresql/15/extension/postgis.control ] || missing="$$missing postgresql-15-postgis-3"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get -o DPkg::Lock::Timeout=900 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq $$missing >/dev/null; \
	  fi; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) .ci/lint_imports.py

# pytest exits 5 when it collects nothing (pytest-xdist keeps that status); any non-zero
# status fails the target. Test files run on one worker per core (`-n auto`, whole files per
# worker: the browser, broker and database fixtures are per file or per worker); many tests
# wait on brokers, browsers and subprocesses, so two workers on two cores finish well ahead
# of one. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP) $(AOT) system-packages $(IPYCAM) $(TAK)/bin/taky $(ASYNCAPI)/node_modules/@asyncapi/parser/package.json lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

bench: $(STAMP) $(AOT)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(TAK) $(ASYNCAPI) $(OUT) .pytest_cache build
