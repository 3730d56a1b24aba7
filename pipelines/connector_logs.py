"""The connectors' loggers in Dagster's event log, with CPR numbers masked.

Connectors log with plain `logging` (they know nothing of Dagster). Their loggers are in
dagster.yaml's `managed_python_loggers`, so a retry or an SFTP pickup warning shows in the
run's log in the UI, not only on the worker's stderr. A retry warning names the request URL,
and a register lookup by CPR has the number in its path: before these records can reach the
run storage, each logger masks CPR-shaped numbers (`lake.privacy.redact`).
"""

from __future__ import annotations

import logging
import threading

from lake.privacy import RedactCprFilter

# Every logger under connectors/ (tests/pipelines/test_connector_logs.py checks that none is
# missing here or in dagster.yaml). A logger's filter sees only its own records, not those
# of its children, so each is named, not their parent "connectors".
CONNECTOR_LOGGERS = ("connectors.http", "connectors.paging", "connectors.sftp")

_LOCK = threading.Lock()


def mask_connector_logs() -> None:
    """Put the CPR-masking filter on every connector logger (once per process); called
    where connectors run, not at import, so importing configures no logging."""
    with _LOCK:
        for name in CONNECTOR_LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactCprFilter) for f in logger.filters):
                logger.addFilter(RedactCprFilter())
