"""Registered metrics (lm-evaluation-harness style): a name, whether higher is better, and how per-example values
aggregate over a split or slice.

An aggregation is a name in :data:`AGGREGATIONS` or a function of the per-example values: ``"mean"`` averages
them; ``"pooled"`` takes ``(numerator, denominator)`` pairs and divides the sums (token accuracy pools the scored
positions of every example). A metric may name a ``during_training`` stand-in that validation reads instead (greedy
exact match is teacher-forced exact match for a deterministic decoder, at 1/T the cost).

Built in: ``token_acc`` (pooled), ``accuracy`` (per-example mean of the token accuracy, then the mean over
examples, MQAR/Chomsky style), ``exact_match`` and ``tf_exact_match``. Tasks and plugins add theirs with
:func:`register_metric`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Aggregation = Callable[[Sequence[Any]], float]


def _mean(values: Sequence[Any]) -> float:
    return sum(values) / len(values) if values else 0.0


def _pooled(values: Sequence[Any]) -> float:
    total = sum(d for _, d in values)
    return sum(c for c, _ in values) / total if total else 0.0


AGGREGATIONS: dict[str, Aggregation] = {"mean": _mean, "pooled": _pooled}


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool = True
    aggregation: str | Aggregation = "mean"
    during_training: str | None = None
    description: str = ""

    def aggregate(self, values: Sequence[Any]) -> float:
        fn = AGGREGATIONS[self.aggregation] if isinstance(self.aggregation, str) else self.aggregation
        return float(fn(values))


METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, higher_is_better: bool = True, aggregation: str | Aggregation = "mean", *,
                    during_training: str | None = None, description: str = "") -> MetricSpec:
    """Register a metric; registering the same declaration twice is a no-op, a different one under a taken name is
    an error (two plugins must not silently disagree on what a metric means)."""
    if isinstance(aggregation, str) and aggregation not in AGGREGATIONS:
        raise ValueError(f"metric {name!r}: unknown aggregation {aggregation!r} (one of {', '.join(AGGREGATIONS)})")
    spec = MetricSpec(name, higher_is_better, aggregation, during_training, description)
    old = METRICS.get(name)
    if old is not None and old != spec:
        raise ValueError(f"metric {name!r} is already registered differently: {old}")
    METRICS[name] = spec
    return spec


def get_metric(name: str) -> MetricSpec:
    if name not in METRICS:
        from arena.errors import suggest

        raise ValueError(f"unknown metric {name!r}{suggest(name, METRICS)}; register it with "
                         "arena.metrics.register_metric")
    return METRICS[name]


def validation_metric(name: str) -> str:
    """The metric validation during training reads for ``name`` (its ``during_training`` stand-in, else itself)."""
    return get_metric(name).during_training or name


def aggregate(per: dict[str, Sequence[Any]], idx: Sequence[int], primary: str) -> dict[str, float]:
    """Every metric in ``per`` (name -> per-example values) over the examples ``idx``, plus ``n``."""
    out = {name: get_metric(name).aggregate([values[i] for i in idx]) for name, values in per.items()}
    out["n"] = float(len(idx))
    if primary not in out:
        raise ValueError(f"unknown metric {primary!r}; this scorer computes {', '.join(per)}")
    return out


register_metric("token_acc", aggregation="pooled", description="scored positions predicted right, pooled")
register_metric("accuracy", description="per-example share of scored positions right, averaged over examples")
register_metric("exact_match", during_training="tf_exact_match", description="every scored position right "
                "(generative tasks: the greedy generation equals the target)")
register_metric("tf_exact_match", description="every scored position right under teacher forcing")
