"""Errors raised by the local Kafka broker manager; each message is one line."""

from __future__ import annotations


class KafkaLocalError(Exception):
    """Root of every error the local broker manager raises (one-line message)."""


class AlreadyRunningError(KafkaLocalError):
    """A broker already runs for this state directory."""


class NotRunningError(KafkaLocalError):
    """No broker runs for this state directory."""


class PortInUseError(KafkaLocalError):
    """A requested loopback port is already bound by another process."""


class JavaNotFoundError(KafkaLocalError):
    """No usable Java runtime (17 or newer for Kafka 4.x) was found."""


class DownloadError(KafkaLocalError):
    """Maven could not resolve the broker jars."""


class StartupError(KafkaLocalError):
    """The broker process exited or did not answer a metadata request in time."""
