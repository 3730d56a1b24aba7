"""The one resource every asset uses: where the home is and the pseudonymisation key."""

from __future__ import annotations

import dagster as dg

from lake.home import Home, resolve_home
from lake.privacy import key_from_text


class LakeResource(dg.ConfigurableResource):
    """Configured from KOMMUNELAKE_HOME and KOMMUNELAKE_PSEUDONYM_KEY (see .env.example)."""

    home: str
    pseudonym_key: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Once per run (and sensor evaluation), before any asset writes: a lake whose Delta
        # commits are not atomic (network share, S3 without conditional PUT) is refused here.
        self.lake_home().require_atomic()

    def lake_home(self) -> Home:
        return resolve_home(self.home)

    def key(self) -> bytes:
        return key_from_text(self.pseudonym_key)


def lake_resource() -> LakeResource:
    return LakeResource(
        home=dg.EnvVar("KOMMUNELAKE_HOME"), pseudonym_key=dg.EnvVar("KOMMUNELAKE_PSEUDONYM_KEY")
    )
