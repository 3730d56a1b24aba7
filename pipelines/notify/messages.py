"""Notification texts in Danish and Norwegian (bokmål), the webhook payload and the e-mail.

Short and factual: which dataset, what failed, counts, the first failing checks, since when,
what to do and a link to the asset in the Dagster UI. Every string goes through
`lake.privacy.redact` on the way out, and only counts, check, step and file names are used:
never a metadata value that could be data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lake.privacy import redact
from pipelines.notify.incidents import CHECK_FAILED, RUN_FAILED, STALE, Incident

OPENED, RESOLVED = "open", "resolved"
MAX_LISTED = 3  # "the first few" failing checks / steps / files in a message

TEXTS: dict[str, dict[str, str]] = {
    "da": {
        "title_check_failed": "Datakvalitet: blokerende tjek fejlede for {asset}",
        "title_check_failed_resolved": "Løst: blokerende tjek er i orden igen for {asset}",
        "title_run_failed": "Kørsel fejlede for {asset}",
        "title_run_failed_no_asset": "Kørsel fejlede i kommunelake",
        "title_stale": "Forældede data: {asset} er ikke opdateret til tiden",
        "title_stale_resolved": "Løst: {asset} er opdateret igen",
        "dataset": "Datasæt",
        "check": "Tjek",
        "failing_checks": "Fejlende tjek",
        "counts": "Antal",
        "files": "Filer",
        "steps": "Fejlede trin",
        "assets": "Fejlede assets",
        "errors": "Fejltype",
        "run": "Kørsel",
        "since": "Siden",
        "unknown": "ukendt",
        "age": "Senest indlæst for {age} timer siden; forventet mindst hver {limit}. time.",
        "todo_check_failed": "Hvad nu: se tjekkets detaljer i Dagster og de afviste rækker med "
        "kommunelake sql \"select * from quality.quarantine where dataset = '{dataset}'\", "
        "ret filen (eller dataset-YAML'en) og kør {asset} igen.",
        "todo_run_failed": "Hvad nu: se kørslens log i Dagster, ret årsagen og kør igen.",
        "todo_stale": "Hvad nu: kontrollér at der er leveret en ny fil i drop/{dataset}/, "
        "og at kørslerne er startet; kør {asset} igen.",
        "resolved": "Åbnet {since}, løst {now}. Der er ikke mere at gøre.",
        "link": "Link",
    },
    "no": {
        "title_check_failed": "Datakvalitet: blokkerende kontroll feilet for {asset}",
        "title_check_failed_resolved": "Løst: blokkerende kontroll er i orden igjen for {asset}",
        "title_run_failed": "Kjøring feilet for {asset}",
        "title_run_failed_no_asset": "Kjøring feilet i kommunelake",
        "title_stale": "Utdaterte data: {asset} er ikke oppdatert i tide",
        "title_stale_resolved": "Løst: {asset} er oppdatert igjen",
        "dataset": "Datasett",
        "check": "Kontroll",
        "failing_checks": "Feilende kontroller",
        "counts": "Antall",
        "files": "Filer",
        "steps": "Feilede steg",
        "assets": "Feilede assets",
        "errors": "Feiltype",
        "run": "Kjøring",
        "since": "Siden",
        "unknown": "ukjent",
        "age": "Sist lastet inn for {age} timer siden; forventet minst hver {limit}. time.",
        "todo_check_failed": "Hva nå: se kontrollens detaljer i Dagster og de avviste radene med "
        "kommunelake sql \"select * from quality.quarantine where dataset = '{dataset}'\", "
        "rett filen (eller datasettets YAML) og kjør {asset} på nytt.",
        "todo_run_failed": "Hva nå: se kjøringens logg i Dagster, rett årsaken og kjør på nytt.",
        "todo_stale": "Hva nå: kontroller at en ny fil er levert i drop/{dataset}/ og at "
        "kjøringene er startet; kjør {asset} på nytt.",
        "resolved": "Åpnet {since}, løst {now}. Det er ikke mer å gjøre.",
        "link": "Lenke",
    },
}


@dataclass(frozen=True)
class Message:
    """One notification, ready for every channel."""

    key: str  # incident key + status, for logs and the outbox
    kind: str
    status: str  # open | resolved
    title: str
    text: str
    link: str
    language: str
    to: tuple[str, ...]  # e-mail recipients (the dataset's contact)
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "status": self.status,
            "title": self.title,
            "text": self.text,
            "link": self.link,
            "language": self.language,
            "to": list(self.to),
            "payload": dict(self.payload),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Message:
        return cls(
            key=raw["key"],
            kind=raw["kind"],
            status=raw["status"],
            title=raw["title"],
            text=raw["text"],
            link=raw["link"],
            language=raw["language"],
            to=tuple(raw.get("to") or ()),
            payload=dict(raw.get("payload") or {}),
        )


def asset_link(ui_url: str, asset: str, *, checks: bool = True) -> str:
    path = "/".join(quote(part, safe="") for part in asset.split("/"))
    return f"{ui_url.rstrip('/')}/assets/{path}" + ("?view=checks" if checks else "")


def run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{quote(run_id, safe='')}"


def render(
    incident: Incident, status: str, language: str, ui_url: str, now: dt.datetime
) -> Message:
    t = TEXTS.get(language, TEXTS["da"])
    language = language if language in TEXTS else "da"
    asset = incident.asset
    values = {"asset": asset, "dataset": incident.dataset or asset}

    if incident.kind == RUN_FAILED:
        title = t["title_run_failed" if asset else "title_run_failed_no_asset"].format(**values)
        link = run_link(ui_url, incident.run_id)
    else:
        suffix = "_resolved" if status == RESOLVED else ""
        title = t[f"title_{incident.kind}{suffix}"].format(**values)
        link = asset_link(ui_url, asset, checks=incident.kind == CHECK_FAILED)

    lines = [title, ""]
    if incident.dataset and asset:
        lines.append(f"{t['dataset']}: {incident.dataset} ({asset})")
    if status == RESOLVED:
        if incident.kind == CHECK_FAILED:
            lines.append(f"{t['check']}: {incident.check}")
        lines.append(t["resolved"].format(since=_when(incident.since, t), now=_when(now, t)))
    else:
        lines += _details(incident, t)
    lines += ["", f"{t['link']}: {link}"]
    text = "\n".join(lines)

    title, text = redact(title), redact(text)
    payload = {
        "kind": incident.kind,
        "status": status,
        "dataset": redact(incident.dataset) or None,
        "asset": asset or None,
        "check": redact(incident.check) if incident.kind == CHECK_FAILED else None,
        "severity": incident.severity,
        "title": title,
        "text": text,
        "link": link,
        "counts": dict(incident.counts),
        "opened_at": incident.since,
        "language": language,
        "run_id": incident.run_id or None,
    }
    return Message(
        key=f"{incident.key}|{status}",
        kind=incident.kind,
        status=status,
        title=title,
        text=text,
        link=link,
        language=language,
        to=incident.recipients,
        payload=payload,
    )


def _details(incident: Incident, t: Mapping[str, str]) -> list[str]:
    values = {"asset": incident.asset, "dataset": incident.dataset or incident.asset}
    lines = []
    if incident.kind == CHECK_FAILED:
        lines.append(f"{t['check']}: {incident.check} ({incident.severity})")
        if incident.failing_checks:
            lines.append(f"{t['failing_checks']}: {_first(incident.failing_checks)}")
    if incident.kind == RUN_FAILED:
        lines.append(f"{t['run']}: {incident.run_id}")
        if len(incident.assets) > 1:
            lines.append(f"{t['assets']}: {_first(incident.assets)}")
        if incident.steps:
            lines.append(f"{t['steps']}: {_first(incident.steps)}")
        if incident.errors:
            lines.append(f"{t['errors']}: {_first(incident.errors)}")
    if incident.kind == STALE:
        age, limit = incident.counts.get("age_hours"), incident.counts.get("freshness_hours")
        if age is not None and limit is not None:
            lines.append(t["age"].format(age=_number(age), limit=_number(limit)))
    if incident.counts and incident.kind != STALE:
        counts = ", ".join(f"{k} = {_number(v)}" for k, v in incident.counts.items())
        lines.append(f"{t['counts']}: {counts}")
    if incident.files:
        lines.append(f"{t['files']}: {_first(incident.files)}")
    lines.append(f"{t['since']}: {_when(incident.since, t)}")
    lines.append("")
    lines.append(t[f"todo_{incident.kind}"].format(**values))
    return lines


def _first(items: tuple[str, ...]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" (+{len(items) - MAX_LISTED})" if len(items) > MAX_LISTED else "")


def _number(value: float) -> str:
    # No thousands separator: "1,000" reads as one in Danish and Norwegian.
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _when(value: str | dt.datetime | None, t: Mapping[str, str]) -> str:
    if value is None:
        return t["unknown"]
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    except ValueError:
        return t["unknown"]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
