"""Data contracts: one pandera (polars) DataFrameModel per dataset, plus shared checks.

A dataset's YAML names its contract as `module:Class` relative to this package, e.g.
`cpr_persons:CprPersons`, so adding a dataset never means editing a registry here.
"""

from __future__ import annotations

import importlib

import pandera.polars as pa


def load_contract(ref: str) -> type[pa.DataFrameModel]:
    """Resolve `module:Class` (relative to `schemas`) to a DataFrameModel class."""
    module_name, _, class_name = ref.partition(":")
    if not class_name:
        raise ValueError(f"contract reference {ref!r} must look like 'module:Class'")
    module = importlib.import_module(f"schemas.{module_name}")
    contract = getattr(module, class_name, None)
    if not (isinstance(contract, type) and issubclass(contract, pa.DataFrameModel)):
        raise ValueError(f"schemas.{module_name} has no DataFrameModel named {class_name!r}")
    return contract
