"""Synthetic "Demo Kommune" (kommunekode 0350): seeded, deterministic register and fagsystem
extracts for demos and tests.

No real personal data: names come from short lists of common Danish names and CPR numbers are
synthetic. Each dataset carries injected defects at ``defect_rate`` (default 1 %) of its rows per
defect kind, at least one per kind once a dataset has 100 rows; ``defects`` documents the rule
and ``home/drop/_demo_manifest.json`` lists every injected row.
"""

from .generator import generate
from .summary import DatasetSummary, DemoSummary

__all__ = ["DatasetSummary", "DemoSummary", "generate"]
