"""Prometheus metrics on a loopback port, in a registry of their own (no process-global state)."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.daemon.config import split_hostport


@dataclass
class Metrics:
    verdicts: object
    latency: object
    drift: object
    last_promotion: object
    bump_failures: object
    preemptions: object
    registry: object

    def verdict(self, decision: str) -> None:
        self.verdicts.labels(decision=decision).inc()  # type: ignore[attr-defined]

    def observe_latency(self, seconds: float) -> None:
        self.latency.observe(seconds)  # type: ignore[attr-defined]

    def set_drift(self, drifting: bool) -> None:
        self.drift.set(1 if drifting else 0)  # type: ignore[attr-defined]

    def promoted(self, when: float) -> None:
        self.last_promotion.set(when)  # type: ignore[attr-defined]

    def bump_failed(self) -> None:
        self.bump_failures.inc()  # type: ignore[attr-defined]

    def preempted(self) -> None:
        self.preemptions.inc()  # type: ignore[attr-defined]


def create(listen: str) -> tuple[Metrics, object | None]:
    """The metrics, and the HTTP server serving them on `listen` (None when disabled)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

    registry = CollectorRegistry()
    metrics = Metrics(
        verdicts=Counter(
            "kumo_audit_daemon_verdicts",
            "Decisions made by the daemon",
            ["decision"],
            registry=registry,
        ),
        latency=Histogram(
            "kumo_audit_daemon_audit_seconds",
            "From the change being seen to the verdict",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30),
            registry=registry,
        ),
        drift=Gauge(
            "kumo_audit_daemon_drift",
            "1 while the live tree differs from its release",
            registry=registry,
        ),
        last_promotion=Gauge(
            "kumo_audit_daemon_last_promotion_timestamp_seconds",
            "When the last promotion succeeded",
            registry=registry,
        ),
        bump_failures=Counter(
            "kumo_audit_daemon_epoch_bump_failures",
            "Config epoch bumps that failed after every retry",
            registry=registry,
        ),
        preemptions=Counter(
            "kumo_audit_daemon_preemptions",
            "Candidates whose check a newer candidate interrupted (no decision recorded for them)",
            registry=registry,
        ),
        registry=registry,
    )
    server = None
    if listen:
        hostport = split_hostport(listen)
        assert hostport is not None  # validated by the configuration
        server = start_http_server(hostport[1], addr=hostport[0], registry=registry)
    return metrics, server
