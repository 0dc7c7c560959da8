"""Building the symbol tables that an action's format strings resolve against."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openjd.model import ParameterValue, ParameterValueType, SymbolTable

_PATH = ParameterValueType.PATH
_LIST_PATH = ParameterValueType.LIST_PATH


def map_path(path: str, rules: Sequence[Any]) -> str:
    """Apply the first matching rule; rules are sorted longest source first."""
    for rule in rules:
        changed, result = rule.apply(path=path)
        if changed:
            return str(result)
    return path


def _host_path(path: str) -> str:
    return path.replace("/", "\\") if os.name == "nt" else path


def _mapped(value: ParameterValue, rules: Sequence[Any]) -> Any:
    if value.type == _PATH:
        return _host_path(map_path(value.value, rules))
    if value.type == _LIST_PATH and isinstance(value.value, list):
        return [_host_path(map_path(p, rules)) for p in value.value]
    return value.value


def _add_parameters(
    symtab: SymbolTable,
    prefix: str,
    raw_prefix: str,
    values: Mapping[str, ParameterValue],
    rules: Sequence[Any],
) -> None:
    """`Param.X` holds the typed, path-mapped value; `RawParam.X` the value as submitted."""
    for name, value in values.items():
        key, raw_key = f"{prefix}.{name}", f"{raw_prefix}.{name}"
        symtab[raw_key] = value.value
        symtab[key] = _mapped(value, rules)
        if value.type == ParameterValueType.CHUNK_INT:
            continue
        symtab.expr_types[key] = value.type.value
        if value.type == _LIST_PATH:
            symtab.expr_types[raw_key] = ParameterValueType.LIST_STRING.value
        elif value.type != _PATH:
            symtab.expr_types[raw_key] = value.type.value


def session_symbols(
    *,
    working_directory: Path,
    job_parameters: Mapping[str, ParameterValue],
    rules: Sequence[Any],
    host_rules: list[Any],
    job_name: str | None,
    base: Mapping[str, Any] | None = None,
    task_parameters: Mapping[str, ParameterValue] | None = None,
    step_name: str | None = None,
) -> SymbolTable:
    """The table every action starts from; the session's own values win over `base`."""
    symtab = SymbolTable()
    symtab.expr_host_rules = host_rules
    for name, value in (base or {}).items():
        symtab[name] = value
    symtab["Session.WorkingDirectory"] = str(working_directory)
    symtab.expr_types["Session.WorkingDirectory"] = _PATH.value
    if job_name is not None and "Job.Name" not in symtab:
        symtab["Job.Name"] = job_name
    if step_name is not None:
        symtab["Step.Name"] = step_name
    _add_parameters(symtab, "Param", "RawParam", job_parameters, rules)
    if task_parameters:
        _add_parameters(symtab, "Task.Param", "Task.RawParam", task_parameters, rules)
    return symtab


def add_path_mapping_symbols(symtab: SymbolTable, has_rules: bool, rules_file: Path) -> None:
    symtab["Session.HasPathMappingRules"] = "true" if has_rules else "false"
    symtab.expr_types["Session.HasPathMappingRules"] = ParameterValueType.BOOL.value
    symtab["Session.PathMappingRulesFile"] = str(rules_file)
    symtab.expr_types["Session.PathMappingRulesFile"] = _PATH.value


def add_file_symbols(symtab: SymbolTable, prefix: str, paths: Mapping[str, Path]) -> None:
    for name, path in paths.items():
        symtab[f"{prefix}.{name}"] = str(path)
        symtab.expr_types[f"{prefix}.{name}"] = _PATH.value


def deserialize_base(resolved_symtab: Any) -> dict[str, Any]:
    """Flatten a `SerializedSymbolTable` (e.g. `Step.resolved_symtab`) in the host's path format."""
    from openjd.expr import PathFormat

    host = PathFormat.WINDOWS if os.name == "nt" else PathFormat.POSIX
    table = resolved_symtab.to_symtab(path_format=host)
    return {name: table[name] for name in table.symbols}
