"""Declarative checks of an estimator's parameters, run where scikit-learn runs them: in `fit`.

Each estimator states its rules as a mapping from parameter name to a rule (in the spirit of
scikit-learn's `_parameter_constraints`, which is private to scikit-learn); `check_params` raises a
TypeError for a value of the wrong kind and a ValueError for one out of range, naming the estimator,
the parameter, what it accepts and what it got.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Number:
    """An integer (`integer=True`) or real number within [low, high]; None too when `optional`."""

    integer: bool = False
    low: float | None = None
    high: float | None = None
    optional: bool = False

    def describe(self) -> str:
        text = "an integer" if self.integer else "a real number"
        if self.low is not None:
            text += f" >= {self.low}"
        if self.high is not None:
            text += f" {'and ' if self.low is not None else ''}<= {self.high}"
        return text + (" or None" if self.optional else "")

    def problem(self, value: object) -> type[Exception] | None:
        if value is None:
            return None if self.optional else TypeError
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, kind):
            return TypeError
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return ValueError
        return None


@dataclass(frozen=True)
class Flag:
    """True or False."""

    def describe(self) -> str:
        return "True or False"

    def problem(self, value: object) -> type[Exception] | None:
        return None if isinstance(value, (bool, np.bool_)) else TypeError


@dataclass(frozen=True)
class OneOf:
    """One of a few strings; None too when `optional`."""

    options: tuple[str, ...]
    optional: bool = False

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self.options)) + (" or None" if self.optional else "")

    def problem(self, value: object) -> type[Exception] | None:
        if value is None:
            return None if self.optional else TypeError
        if not isinstance(value, str):
            return TypeError
        return None if value in self.options else ValueError


Rule = Number | Flag | OneOf


def check_params(estimator: object, rules: Mapping[str, Rule]) -> None:
    """Raise on the first parameter of `estimator` (an attribute of that name) that breaks its rule."""
    for name, rule in rules.items():
        value = getattr(estimator, name)
        error = rule.problem(value)
        if error is not None:
            raise error(f"{type(estimator).__name__}: {name} must be {rule.describe()}, got {value!r}")
