"""`python -m gateway_otel.simulator`: run the gateway simulator on a local port (see `--help`)."""

from ._server import main

if __name__ == "__main__":
    raise SystemExit(main())
