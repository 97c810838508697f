"""`python -m gateway_otel.cli`: the `gateway-otel` command."""

import sys

from . import main

sys.exit(main())
