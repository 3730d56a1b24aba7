"""Small helpers shared by tests that break and fix a demo home's deliveries."""

from __future__ import annotations

from lake.home import Home


def redeliver_cpr(home: Home, old: str, new: str, name: str = "cpr_personer.csv") -> None:
    """Deliver `name`: the latest CPR extract (in the drop folder, or rejected and moved to
    rejected/) with `old` replaced by `new` once; earlier files leave the drop folder, as when a
    sender replaces an export."""
    folder = home.drop / "cpr_persons"
    latest = max(
        [*folder.glob("*.csv"), *folder.glob("rejected/*.csv")], key=lambda p: p.stat().st_mtime_ns
    )
    text = latest.read_text()
    for path in folder.glob("*.csv"):
        path.unlink()
    (folder / name).write_text(text.replace(old, new, 1))
