"""Turning a template `Action` into what to run: argv, time limit and cancelation method.

Pure: it only evaluates format strings against a symbol table. Every problem is an
`ActionSetupError`, which the session reports as a FAILED result.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from openjd.model import FormatStringError, SymbolTable, evaluate_let_bindings

from .process import CancelMethod

TASK_NOTIFY_PERIOD = 120
ENV_NOTIFY_PERIOD = 30
ON_EXIT_TIMEOUT = 300
MAX_LET_LENGTH = 4096
_INT = re.compile(r"[+-]?[0-9]+")


class ActionSetupError(Exception):
    """The action cannot start; its message becomes the result's `fail_message`."""


@dataclass(frozen=True)
class ResolvedAction:
    argv: list[str]
    timeout: int | None
    """The declared time limit in seconds."""
    cancel_mode: str | None
    """TERMINATE, NOTIFY_THEN_TERMINATE, or None when the template declares no cancelation."""
    notify_period: int | None
    """The declared period, or the default for NOTIFY_THEN_TERMINATE; None for TERMINATE."""

    def with_default_timeout(self, default: int | None) -> ResolvedAction:
        return self if self.timeout is not None else replace(self, timeout=default)

    @property
    def cancel_method(self) -> CancelMethod:
        if self.cancel_mode == "NOTIFY_THEN_TERMINATE":
            return CancelMethod(notify_period=float(self.notify_period or 0))
        return CancelMethod()


def _expr_kind(value: Any) -> str:
    """'null', 'list', 'scalar', or 'text' for values that are not typed EXPR values."""
    if "openjd._openjd_rs" not in sys.modules:
        return "text"
    from openjd.expr import ExprValue, TypeCode

    if not isinstance(value, ExprValue):
        return "text"
    if value.is_null:
        return "null"
    return "list" if value.type.type_code == TypeCode.LIST else "scalar"


def resolve_args(args: Sequence[Any] | None, symtab: SymbolTable) -> list[str]:
    """Whole-field expressions are typed: a null argument is dropped, a list is flattened."""
    resolved: list[str] = []
    for arg in args or ():
        try:
            value = arg.resolve_value(symtab=symtab)
        except FormatStringError:
            resolved.append(arg.resolve(symtab=symtab))
            continue
        kind = _expr_kind(value)
        if kind == "null":
            continue
        if kind == "list":
            resolved.extend(str(item) for item in value)
        else:
            resolved.append(value if isinstance(value, str) else str(value))
    return resolved


def _optional_int(
    value: Any, symtab: SymbolTable, *, name: str, low: int, high: int | None
) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    resolved = value.resolve_value(symtab=symtab)
    if _expr_kind(resolved) == "null":
        return None
    text = str(resolved)
    limit = f"between {low} and {high}" if high else f"at least {low}"
    if not _INT.fullmatch(text) or not (low <= int(text) <= (high or sys.maxsize)):
        raise ActionSetupError(f"{name} must be an integer {limit}, got '{text}'.")
    return int(text)


def resolve_cancelation(
    cancelation: Any, symtab: SymbolTable, default_period: int
) -> tuple[str | None, int | None]:
    """(mode, notify period); a deferred mode resolving to null means no cancelation declared."""
    if cancelation is None:
        return None, None
    mode_field = cancelation.mode
    if hasattr(mode_field, "resolve_value"):
        resolved = mode_field.resolve_value(symtab=symtab)
        if _expr_kind(resolved) == "null":
            return None, None
        mode = str(resolved)
        if mode not in ("TERMINATE", "NOTIFY_THEN_TERMINATE"):
            raise ActionSetupError(
                f"Cancelation mode must be TERMINATE or NOTIFY_THEN_TERMINATE, got '{mode}'."
            )
    else:
        mode = str(getattr(mode_field, "value", mode_field))
    period = _optional_int(
        getattr(cancelation, "notifyPeriodInSeconds", None),
        symtab,
        name="notifyPeriodInSeconds",
        low=1,
        high=600,
    )
    if mode == "TERMINATE":
        if period is not None:
            raise ActionSetupError(
                "Cancelation mode TERMINATE does not take notifyPeriodInSeconds."
            )
        return mode, None
    return mode, period if period is not None else default_period


def resolve_action(action: Any, symtab: SymbolTable, *, default_period: int) -> ResolvedAction:
    try:
        argv = [action.command.resolve(symtab=symtab), *resolve_args(action.args, symtab)]
        timeout = _optional_int(action.timeout, symtab, name="timeout", low=1, high=None)
        mode, period = resolve_cancelation(action.cancelation, symtab, default_period)
    except (FormatStringError, ValueError) as exc:
        raise ActionSetupError(str(exc)) from exc
    if not argv[0]:
        raise ActionSetupError("The action's command resolved to an empty string.")
    return ResolvedAction(
        argv=argv,
        timeout=timeout,
        cancel_mode=mode,
        notify_period=period,
    )


def apply_let(symtab: SymbolTable, bindings: Sequence[str] | None) -> None:
    """Evaluate a script's `let` bindings in order into the table."""
    if not bindings:
        return
    for binding in bindings:
        if len(binding) > MAX_LET_LENGTH:
            raise ActionSetupError(
                f"let binding {binding[:40]!r}... is longer than {MAX_LET_LENGTH} characters."
            )
    try:
        evaluate_let_bindings(symtab=symtab, let_bindings=list(bindings))
    except (FormatStringError, ValueError) as exc:
        raise ActionSetupError(str(exc)) from exc
