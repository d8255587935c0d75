"""Deciding, for one instance, whether it leaves and how: the rules in order, then ``otherwise``.

The worker asks before any stage runs, on the header as received, so a dropped instance costs
no de-identification and the rules see the values de-identification would remove. Without
rules the decision is the gateway's behaviour before rules existed: every destination, each
with its own profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom import Dataset

from gateway.pipeline.stage import Quarantine
from gateway.rules.match import CompiledRule, Facts, UnreadableHeader, compile_rule

#: The name audited when ``rules.otherwise: drop`` drops an instance no rule matched.
OTHERWISE = "otherwise"


class Dropped(Exception):
    """A rule said the instance must not leave; ``rule`` is its name, for the audit."""

    def __init__(self, rule: str):
        super().__init__(rule)
        self.rule = rule


@dataclass(frozen=True)
class Decision:
    """What happens to one instance. ``rule`` is the rule that decided (None: no rule matched
    and it goes where it would without rules); ``routes`` maps each profile to run to the
    destinations that receive its output (none: the outbox only)."""

    rule: str | None
    drop: bool = False
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def profiles(self) -> list[str]:
        return list(self.routes)

    def or_raise(self) -> Decision:
        """This decision, or :class:`Dropped` when it is a drop."""
        if self.drop:
            raise Dropped(self.rule or OTHERWISE)
        return self


class Router:
    """The compiled rules of one configuration, and where instances go by default."""

    def __init__(self, rules: list[CompiledRule], profile_by_destination: dict[str, str],
                 default_profile: str, otherwise: str = "forward"):
        self.rules = rules
        self.profile_by_destination = dict(profile_by_destination)
        self.default_profile = default_profile
        self.otherwise = otherwise
        self.default = Decision(None, routes=self._routes(tuple(self.profile_by_destination), None))

    @classmethod
    def from_config(cls, config) -> Router:
        """The router of ``config`` (a :class:`gateway.config.GatewayConfig`), already checked."""
        rules = [compile_rule(spec) for spec in config.rules.ordered]
        return cls(rules, config.profile_by_destination(), config.deid.profile, config.rules.otherwise)

    @classmethod
    def forwarding(cls, profile_by_destination: dict[str, str], default_profile: str) -> Router:
        """No rules: everything to every destination, as before rules existed."""
        return cls([], profile_by_destination, default_profile)

    @property
    def profiles(self) -> list[str]:
        """Every profile some decision can ask for, the default ones first."""
        found = list(self.default.routes)
        for rule in self.rules:
            if not rule.drop:
                found += list(self._routes(rule.destinations, rule.profile))
        return list(dict.fromkeys(found))

    def decide(self, ds: Dataset, calling_ae: str | None = None, address: str | None = None) -> Decision:
        """The first matching rule's decision, else the default (or a drop, with ``otherwise:
        drop``). Raises Quarantine when the header cannot be read where a rule looks: an
        instance the rules cannot judge does not leave."""
        facts = Facts(ds, calling_ae, address)
        try:
            rule = next((rule for rule in self.rules if rule.matches(facts)), None)
        except UnreadableHeader:
            raise Quarantine("rules cannot read the header") from None
        if rule is None:
            return Decision(OTHERWISE, drop=True) if self.otherwise == "drop" else self.default
        if rule.drop:
            return Decision(rule.name, drop=True)
        return Decision(rule.name, routes=self._routes(rule.destinations, rule.profile))

    def _routes(self, destinations: tuple[str, ...] | None, profile: str | None) -> dict[str, tuple[str, ...]]:
        """Profile -> destinations: ``profile`` for all of them when given, else each its own."""
        chosen = tuple(self.profile_by_destination) if destinations is None else destinations
        if profile is not None:
            return {profile: chosen}
        routes: dict[str, tuple[str, ...]] = {}
        for destination in chosen:
            own = self.profile_by_destination[destination]
            routes[own] = (*routes.get(own, ()), destination)
        return routes or {self.default_profile: ()}
