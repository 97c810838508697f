"""`python -m gateway_otel`: the `gateway-otel` command."""

import sys

from .cli import main

sys.exit(main())
