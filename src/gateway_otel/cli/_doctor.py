"""`gateway-otel doctor`: this process's destinations and OpenRouter Broadcast's, side by side, and what clashes.

The checks are pure functions of the two lists and the settings; `diagnose()` gathers them (the environment, and
OpenRouter's management API when a key is set). A finding names the setting to change. The Broadcast comparison is
optional: when it cannot be made with what the user has (no key, an application key rather than a management key,
no `[openrouter]` extra) that is a note, not a problem; it is an error only when a management key was given.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._env import environment
from .._errors import BroadcastError, ConfigurationError
from ._openrouter import add_openrouter_options
from ._render import indent, table

if TYPE_CHECKING:  # imported where used: every other command would pay for the exporters and the SDK
    from .._settings import Settings
    from ..openrouter import BroadcastDestination

__all__ = ["COMMANDS", "Finding", "Report", "add_commands", "diagnose", "findings", "run"]

COMMANDS = ("doctor",)

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
    from .._settings import Settings
    from ..destinations import list_destinations
    from ..openrouter import KEY_VARIABLES, list_broadcast_destinations, management_key

    env = environment(environ)  # the process environment over the .env file, as configure() reads it
    report = Report()
    try:
        report.settings = Settings.load(environ=env)
    except ConfigurationError as error:
        report.findings.append(Finding("error", f"settings: {error}"))
    try:
        report.local = list_destinations(environ)
    except (ConfigurationError, LookupError) as error:
        report.findings.append(Finding("error", f"this process's destinations: {error}"))
    key = management_key(env)
    if key is None:
        report.broadcast_note = (
            f"not checked: set {' or '.join(KEY_VARIABLES)} to compare with OpenRouter Broadcast"
        )
    elif importlib.util.find_spec("openrouter") is None:
        report.broadcast_note = (
            "not checked: comparing with OpenRouter Broadcast needs the openrouter SDK "
            "(pip install 'gateway-otel[openrouter]')"
        )
    else:
        try:
            report.broadcast = list_broadcast_destinations(
                key[0], workspace_id=workspace_id, url=url, retry_seconds=retry_seconds
            )
            report.broadcast_note = f"with {key[1]}" + (f", workspace {workspace_id}" if workspace_id else "")
        except BroadcastError as error:
            if key[1] == "OPENROUTER_MANAGEMENT_KEY":  # asked for: what stopped it is a problem
                report.broadcast_note = "not checked"
                report.findings.append(Finding("error", f"OpenRouter Broadcast: {error}"))
            elif error.status in (401, 403):  # an application's key: it cannot read Broadcast's settings
                report.broadcast_note = (
                    f"not checked: {key[1]} is an application key, and reading Broadcast's settings needs a "
                    f"management key (OpenRouter answered {error.status}); set OPENROUTER_MANAGEMENT_KEY to compare"
                )
            else:
                report.broadcast_note = f"not checked with {key[1]}: {error}"
        except ConfigurationError as error:
            report.broadcast_note = "not checked"
            report.findings.append(Finding("error", f"OpenRouter Broadcast: {error}"))
    report.findings.extend(findings(report.local, report.broadcast, report.settings))
    return report


# --- the command ---------------------------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    doctor = commands.add_parser(
        "doctor", help="this process's destinations, OpenRouter Broadcast's, trace join, and what clashes"
    )
    doctor.add_argument("--workspace", metavar="ID", help="OpenRouter workspace id (default: the key's default)")
    add_openrouter_options(doctor)
    doctor.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from ..openrouter import server_url

    report = diagnose(
        url=server_url(args.server_url), workspace_id=args.workspace, retry_seconds=args.retry_for
    )
    problems = len(report.findings)
    if args.json:
        data = {
            "destinations": [d.to_dict() for d in report.local],
            "broadcast": None if report.broadcast is None else [d.to_dict() for d in report.broadcast],
            "broadcast_note": report.broadcast_note,
            "trace_join": None if report.settings is None else report.settings.trace_join,
            "propagate_traceparent": None if report.settings is None else report.settings.propagate_traceparent,
            "findings": [f.to_dict() for f in report.findings],
        }
        print(json.dumps(data, indent=2))
        return 1 if problems else 0
    print("This process exports to (GATEWAY_OTEL_DESTINATIONS):")
    rows = [
        (
            d.id,
            "yes" if d.enabled else "no",
            "on" if d.privacy_mode else "off",
            f"{d.sampling_rate:g}",
            " ".join(
                [f"project={p}" for p in [dict(d.resource_attributes).get("openinference.project.name")] if p]
                + [d.shown_endpoint or "-"]
            ),
        )
        for d in report.local
    ]
    print(indent(table(rows, ("id", "enabled", "privacy", "sampling", "target")) if rows else "(none)"))
    print(f"OpenRouter Broadcast ({report.broadcast_note}):")
    if report.broadcast is not None:
        remote = [
            (
                d.id,
                d.type,
                d.name or "-",
                "yes" if d.enabled else "no",
                "on" if d.privacy_mode else "off",
                "-" if d.sampling_rate is None else f"{d.sampling_rate:g}",
                d.target or "-",
            )
            for d in report.broadcast
        ]
        headers = ("id", "type", "name", "enabled", "privacy", "sampling", "target")
        print(indent(table(remote, headers) if remote else "(none)"))
    if report.settings is not None:
        print(trace_join_text(report.settings)[0].upper() + trace_join_text(report.settings)[1:])
    for finding in report.findings:
        print(f"{finding.level}: {finding.message}")
    print(f"{problems} problem{'' if problems == 1 else 's'} found" if problems else "No problems found.")
    return 1 if problems else 0
