"""Scheduling policies (round robin, weighted round robin, least connections) over the servers that may take
new clients."""

from __future__ import annotations

from typing import Protocol, Sequence


class Weighted(Protocol):
    weight: int
    active: int
    current_weight: int


class Scheduler(Protocol):
    def pick(self, candidates: Sequence[Weighted]) -> Weighted: ...


class RoundRobin:
    """Each candidate in turn, ignoring weights."""

    def __init__(self) -> None:
        self.turn = -1

    def pick(self, candidates: Sequence[Weighted]) -> Weighted:
        self.turn = (self.turn + 1) % 1_000_000_007
        return candidates[self.turn % len(candidates)]


class WeightedRoundRobin:
    """Smooth weighted round robin: a server of weight 3 next to one of weight 1 gets 3 of every 4 clients,
    interleaved rather than in bursts."""

    def pick(self, candidates: Sequence[Weighted]) -> Weighted:
        total = 0
        best = candidates[0]
        for c in candidates:
            c.current_weight += c.weight
            total += c.weight
            if c.current_weight > best.current_weight:
                best = c
        best.current_weight -= total
        return best


class LeastConnections:
    """The candidate with the fewest active connections per unit of weight; ties go round robin."""

    def __init__(self) -> None:
        self.turn = -1

    def pick(self, candidates: Sequence[Weighted]) -> Weighted:
        self.turn = (self.turn + 1) % 1_000_000_007
        n = len(candidates)
        best = candidates[self.turn % n]
        best_load = best.active / best.weight
        for i in range(1, n):
            c = candidates[(self.turn + i) % n]
            load = c.active / c.weight
            if load < best_load:
                best, best_load = c, load
        return best


def make(name: str) -> Scheduler:
    """The scheduler for a config name (round_robin, weighted_round_robin, least_connections)."""
    if name == "weighted_round_robin":
        return WeightedRoundRobin()
    if name == "least_connections":
        return LeastConnections()
    return RoundRobin()
