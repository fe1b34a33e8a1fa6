"""What one ``packflow-worker redrive`` run is asked to do: :class:`RedriveOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.connection_settings import ConnectionSettings
from worker.errors import SettingsError
from worker.redrive.selection import Selection

__all__ = ["DEFAULT_MAX_REDRIVES", "RedriveOptions"]

DEFAULT_MAX_REDRIVES = 3
"""``--max-redrives``: a message redriven this often that fails again stays a dead letter."""


@dataclass(frozen=True, slots=True)
class RedriveOptions:
    """What one run redrives, where to, and how.

    ``target_topic`` None sends each dead letter to its ``source.topic``; ``group_id`` None
    is ``packflow-redrive-<dlq_topic>``. ``rate`` is messages per second, ``limit`` the most
    dead letters sent; ``max_redrives`` skips a dead letter whose message was already
    redriven that many times. Invalid values raise :class:`SettingsError`.
    """

    dlq_topic: str
    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    target_topic: str | None = None
    group_id: str | None = None
    selection: Selection = field(default_factory=Selection)
    max_redrives: int = DEFAULT_MAX_REDRIVES
    dry_run: bool = False
    rate: float | None = None
    limit: int | None = None
    startup_timeout_seconds: float = 15.0

    def __post_init__(self) -> None:
        for name in ("dlq_topic", "target_topic", "group_id"):
            value = getattr(self, name)
            if value is not None and not value.strip():
                raise SettingsError(f"--{name.replace('_', '-')} must not be empty")
        if self.target_topic == self.dlq_topic:
            raise SettingsError("--target-topic is the dead-letter topic itself")
        if self.max_redrives < 1:
            raise SettingsError("--max-redrives must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise SettingsError("--rate must be above 0")
        if self.limit is not None and self.limit < 1:
            raise SettingsError("--limit must be at least 1")
        if self.startup_timeout_seconds <= 0:
            raise SettingsError("--startup-timeout-seconds must be above 0")

    @property
    def group(self) -> str:
        """The consumer group whose committed offsets make runs resumable."""
        return self.group_id or f"packflow-redrive-{self.dlq_topic}"
