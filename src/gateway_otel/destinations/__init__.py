"""Where telemetry goes: SDK providers built from explicit arguments and environment variables."""

from ._configure import DESTINATION_NAMES, Providers, configure

__all__ = ["DESTINATION_NAMES", "Providers", "configure"]
