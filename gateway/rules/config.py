"""Settings of the routing and filter rules: an ordered list, the first rule that matches decides.

A rule matches on the original header (before de-identification) and on who sent the instance;
it drops the instance, or names the profile that applies and the destinations that receive it.
Each rule is compiled when the configuration is loaded (:func:`gateway.rules.match.compile_rule`),
so an unknown keyword, a bad regular expression or a misspelt SOP Class stops start-up with a
message naming the rule; the destinations and profiles a rule names are checked against their
sections by :meth:`RulesConfig.check_references`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.rules.conditions import MatchSpec
from gateway.rules.match import compile_rule
from gateway.settings_base import Section

BuiltinName = Literal["drop-screenshots", "drop-dose-reports", "drop-presentation-states", "drop-key-objects"]


class RuleSpec(Section):
    """One rule, or ``use:`` one of the built-in rules in its place in the order."""

    # Audited with every instance the rule decides; letters, digits, '.', '_' and '-'.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    use: BuiltinName | None = None
    match: MatchSpec = Field(default_factory=MatchSpec)
    # drop: never de-identified nor forwarded; the drop is audited with the rule's name.
    drop: bool = False
    # The profile that applies (instead of each destination's own), and the destinations
    # that receive the instance (every destination when omitted).
    profile: str | None = None
    destinations: list[str] | None = None

    @model_validator(mode="after")
    def _compiles(self) -> RuleSpec:
        compile_rule(self)  # ValueError naming the rule
        return self

    @property
    def label(self) -> str:
        return self.name or str(self.use)


class RulesConfig(Section):
    # Checked in order; the first rule whose every condition holds decides.
    ordered: list[RuleSpec] = Field(default_factory=list)
    # When no rule matches: forward (every destination, with its own profile: the behaviour
    # without rules) or drop (only what some rule lets through leaves the gateway).
    otherwise: Literal["forward", "drop"] = "forward"

    @model_validator(mode="after")
    def _unique_names(self) -> RulesConfig:
        labels = [rule.label for rule in self.ordered]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique: {repeated[0]!r} is used twice")
        return self

    def check_references(self, destinations: list[str], profiles: list[str]) -> None:
        """Every destination and profile a rule names exists; ValueError naming the rule."""
        for rule in self.ordered:
            unknown = [d for d in rule.destinations or [] if d not in destinations]
            if unknown:
                raise ValueError(f"rules: rule {rule.label!r} names unknown destination {unknown[0]!r}; "
                                 f"known: {destinations}")
            if rule.profile is not None and rule.profile not in profiles:
                raise ValueError(f"rules: rule {rule.label!r} names unknown profile {rule.profile!r}")

    def profiles(self) -> list[str]:
        """The profiles rules ask for, beside those of the destinations."""
        return list(dict.fromkeys(rule.profile for rule in self.ordered if rule.profile))
