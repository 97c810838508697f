"""`gateway-otel doctor`: this process's destinations and OpenRouter Broadcast's, side by side, and what clashes.

The checks are pure functions of the two lists and the settings; `diagnose()` gathers them (the environment, and
OpenRouter's management API when a key is set). A finding names the setting to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ._broadcast import BroadcastDestination
from ._settings import ConfigurationError, Settings

__all__ = ["Finding", "Report", "diagnose", "findings"]

# Where each local destination type is pointed, for the advice.
_ADDRESS_VARIABLE = {
    "otlp": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "openobserve": "OPENOBSERVE_URL",
    "phoenix": "PHOENIX_COLLECTOR_ENDPOINT",
    "arize": "ARIZE_COLLECTOR_ENDPOINT",
}
_CHANGE_BROADCAST = "or disable that destination in OpenRouter (Settings → Observability)"


@dataclass(frozen=True)
class Finding:
    level: str
    """`warning` (something to change) or `error` (something could not be checked)."""
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level, "message": self.message}


@dataclass
class Report:
    local: list[Any] = field(default_factory=list)
    broadcast: list[BroadcastDestination] | None = None
    broadcast_note: str = ""
    """Why Broadcast was not listed (no key, no SDK, an API error), or where it came from."""
    settings: Settings | None = None
    findings: list[Finding] = field(default_factory=list)


def _host(url: str | None) -> str | None:
    if not url or url in ("stdout",):
        return None
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return (parts.hostname or "").lower() or None


def _project(local: Any) -> str | None:
    return dict(local.resource_attributes).get("openinference.project.name")


def _comparable(value: Any) -> str | None:
    """A config value that can be compared: present and not masked."""
    if not isinstance(value, str) or not value or "..." in value or "****" in value:
        return None
    return value


def _duplicate(local: Any, remote: BroadcastDestination) -> tuple[str, str] | None:
    """(the shared place, what to change) when `local` and `remote` deliver the same calls there; else None."""
    if local.type == "arize" and remote.type == "arize":
        project, remote_project = _project(local), _comparable(remote.config.get("modelId"))
        space = dict(local.headers).get("arize-space-id")
        remote_space = _comparable(remote.config.get("spaceKey"))
        remote_host = remote.host or "otlp.arize.com"
        if project != remote_project or (space and remote_space and space != remote_space):
            return None
        if _host(local.endpoint) != remote_host:
            return None
        return (
            f"Arize AX project {project!r}",
            "set ARIZE_PROJECT_NAME to another project or remove arize from GATEWAY_OTEL_DESTINATIONS, "
            "or give that Broadcast destination another Model Id (its project) or disable it in OpenRouter "
            "(Settings → Observability)",
        )
    host = _host(local.endpoint)
    if host and host == remote.host and host not in ("localhost", "127.0.0.1", "::1"):
        variable = _ADDRESS_VARIABLE.get(local.type, "its endpoint")
        return (
            host,
            f"remove {local.id} from GATEWAY_OTEL_DESTINATIONS (or point {variable} elsewhere), {_CHANGE_BROADCAST}",
        )
    return None


def findings(
    local: Sequence[Any], broadcast: Sequence[BroadcastDestination] | None, settings: Settings | None
) -> list[Finding]:
    """What to change: the same calls reaching one backend twice, content leaving despite privacy, split traces."""
    found: list[Finding] = []
    remote_on = [d for d in broadcast or () if d.enabled]
    for item in (d for d in local if d.enabled):
        for remote in remote_on:
            duplicate = _duplicate(item, remote)
            if duplicate is None:
                continue
            where, change = duplicate
            label = f"{remote.name!r}, id {remote.id}" if remote.name else remote.id
            found.append(
                Finding(
                    "warning",
                    f"the same OpenRouter calls reach {where} twice: from this process (destination {item.id}) and "
                    f"from OpenRouter Broadcast (destination {label}); token and cost totals there count each call "
                    f"twice. Change one: {change}.",
                )
            )
    open_content = [d for d in remote_on if d.privacy_mode is False]
    if settings is not None and not settings.capture_content and open_content:
        names = ", ".join(f"{d.name or d.id!r} ({d.type})" for d in open_content)
        found.append(
            Finding(
                "warning",
                "this process records no prompts or completions (capture_content is off) but OpenRouter Broadcast "
                f"sends them to {names}: turn on Privacy Mode for "
                f"{'it' if len(open_content) == 1 else 'them'} in OpenRouter (Settings → Observability).",
            )
        )
    if settings is not None and settings.openrouter_trace is False and remote_on:
        found.append(
            Finding(
                "warning",
                "OpenRouter Broadcast is on but trace join is off (GATEWAY_OTEL_OPENROUTER_TRACE=false): its spans "
                "form traces unrelated to this process's; set GATEWAY_OTEL_OPENROUTER_TRACE=auto to nest them.",
            )
        )
    return found


def trace_join_text(settings: Settings) -> str:
    join = {
        None: "on for calls to OpenRouter",
        True: "on for calls to every gateway",
        False: "off",
    }[settings.openrouter_trace]
    names = ", ".join(f"{k}={v}" for k, v in settings.trace_metadata)
    return (
        f"trace join: {join} (GATEWAY_OTEL_OPENROUTER_TRACE={settings.trace_join})"
        + (f", default names {names}" if names else "")
        + f"; W3C traceparent: {'on' if settings.propagate_traceparent else 'off'} (GATEWAY_OTEL_TRACEPARENT)"
        + f"; content capture: {'on' if settings.capture_content else 'off'}"
    )


def diagnose(
    environ: Mapping[str, str] | None = None,
    *,
    url: str,
    workspace_id: str | None = None,
    retry_seconds: float = 20.0,
) -> Report:
    """Gather both sides and check them; problems reading either side become findings, never exceptions."""
    from . import _broadcast
    from .destinations import _api
    from .destinations._configure import environment

    env = environment(environ)  # the process environment over the .env file, as configure() reads it
    report = Report()
    try:
        report.settings = Settings.load(environ=env)
    except ConfigurationError as error:
        report.findings.append(Finding("error", f"settings: {error}"))
    try:
        report.local = _api.list_destinations(environ)
    except (ConfigurationError, LookupError) as error:
        report.findings.append(Finding("error", f"this process's destinations: {error}"))
    key = _broadcast.management_key(env)
    if key is None:
        report.broadcast_note = (
            f"not checked: set {' or '.join(_broadcast.KEY_VARIABLES)} to compare with OpenRouter Broadcast"
        )
    else:
        try:
            report.broadcast = _broadcast.list_broadcast_destinations(
                key[0], workspace_id=workspace_id, url=url, retry_seconds=retry_seconds
            )
            report.broadcast_note = f"with {key[1]}" + (f", workspace {workspace_id}" if workspace_id else "")
        except (_broadcast.BroadcastError, ConfigurationError) as error:
            report.broadcast_note = "not checked"
            report.findings.append(Finding("error", f"OpenRouter Broadcast: {error}"))
    report.findings.extend(findings(report.local, report.broadcast, report.settings))
    return report
