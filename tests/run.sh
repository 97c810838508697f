#!/usr/bin/env bash
# The whole test suite, as CI runs it: ruff, then pytest against each openai major (3.x on httpx2, 2.x and 1.x on
# httpx), each in its own virtual environment under .venvs/ (created on first use, reused afterwards). The openai-3
# run also starts the real servers (Phoenix, the LiteLLM proxy, the rotel collector), each in its own venv in a
# cache outside the checkout (~/.cache/gateway-otel/test-servers, or $GATEWAY_OTEL_TEST_SERVERS), installed by
# its test fixture on first use and reused, by any clone, while its pinned requirements are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off

venv() {  # venv NAME OPENAI_SPEC MAJOR [SPEC...]: a venv with the package, its test extras (and $EXTRAS), that openai
  local dir=".venvs/$1" log
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  log=$(mktemp)
  if ! "$dir/bin/python" -m pip install -q -e ".[test${EXTRAS:+,$EXTRAS}]" "$2" "${@:4}" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2 || true
    echo "tests/run.sh: FAILED to install the package and its test extras into $dir (pip's output above)" >&2
    exit 1
  fi
  grep -v "^WARNING: Location" "$log" || true
  rm -f "$log"
  "$dir/bin/python" -c "import sys, gateway_otel, openai; print('openai', openai.__version__)
sys.exit(0 if openai.__version__.split('.')[0] == '$3' else 'tests/run.sh: expected openai $3.x in $dir')"
}

# Headless Chromium renders the HTML report in tests/test_report.py (Debian's package; ~50 s and ~410 MB once).
if [ ! -x /usr/bin/chromium ]; then
  echo "tests/run.sh: installing chromium (apt) for the report rendering test"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  apt_log=$(mktemp)
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends chromium; } >"$apt_log" 2>&1 || [ ! -x /usr/bin/chromium ]; then
    tail -n 40 "$apt_log" >&2
    echo "tests/run.sh: FAILED to install chromium with apt-get; the report test needs /usr/bin/chromium" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

# docker-compose v1 (Debian's; ~5 MB without the engine, which --no-install-recommends leaves out) validates
# docker-compose.yml without a Docker engine in tests/test_compose.py, which fails under CI=true without it.
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "tests/run.sh: installing docker-compose (apt) for the compose file validation"
  SUDO=$([ "$(id -u)" -eq 0 ] || echo sudo)
  apt_log=$(mktemp)
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends docker-compose; } >"$apt_log" 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then
    tail -n 40 "$apt_log" >&2
    echo "tests/run.sh: FAILED to install docker-compose with apt-get; tests/test_compose.py needs it" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi

# The openai-3 venv has the `prices` extra (tests/test_prices.py); the others run without it, where those tests skip
# and the one that hides genai-prices checks that nothing changes.
EXTRAS=prices venv openai3 "openai>=3,<4" 3
.venvs/openai3/bin/ruff check src tests examples bench
.venvs/openai3/bin/python -m pytest tests "$@"

# The real-server, Chromium and end-to-end tests ran above; the other majors run everything else. The openai-1
# run has wrapt 1.x (the proxies' corner cases differ: an unbuilt proxy raises ValueError there).
for major in 2 1; do
  venv "openai$major" "openai>=$major,<$((major + 1))" "$major" $([ "$major" = 1 ] && echo "wrapt>=1.17,<2")
  GATEWAY_OTEL_SKIP_PHOENIX=1 GATEWAY_OTEL_SKIP_CHROMIUM=1 GATEWAY_OTEL_SKIP_E2E=1 \
    ".venvs/openai$major/bin/python" -m pytest tests "$@"
done
