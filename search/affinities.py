"""What a visitor prefers, as the ranking stages read it (the profile itself lives in
`search.personalization`: the core only sees this read-time view, handed to it per request)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Affinities:
    """Read-time view of a profile: per attribute, value (lower-case) -> preference in [0, 1].

    A value's preference is its share of the visitor's (decayed) signal on that attribute, times
    the confidence in the attribute (little evidence -> lower confidence): a visitor who only
    looked at red things has red near 1; one who looked at four brands has each near 1/4.
    """

    prefs: dict[str, dict[str, float]] = field(default_factory=dict)
    returning: bool = False
    events: int = 0

    def __bool__(self) -> bool:
        return any(self.prefs.values())

    def of(self, attribute: str) -> dict[str, float]:
        return self.prefs.get(attribute, {})

    def top(self, attribute: str, n: int = 3) -> list[tuple[str, float]]:
        values = self.of(attribute)
        return sorted(values.items(), key=lambda kv: -kv[1])[:n]
