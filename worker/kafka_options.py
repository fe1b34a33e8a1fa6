"""``--kafka-option``: Kafka client options the worker has no flag for, checked at start-up.

An option is ``KEY=VALUE``. ``KEY`` is either Kafka's dotted name (``request.timeout.ms``) or
aiokafka's parameter name (``request_timeout_ms``); ``consumer.KEY`` or ``producer.KEY`` sets it
on one side only. An option without a side goes to every client that takes it (consumer,
producer, admin client). Each key is checked against the parameters of aiokafka's clients, and
each value converted to the parameter's type, so that a typo fails at start-up with the closest
known names instead of being ignored.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["ClientOptions", "parse_kafka_options"]

Side = Literal["consumer", "producer"]
_SIDES: tuple[Side, ...] = ("consumer", "producer")

#: Options the worker sets itself: overriding them would break a guarantee or a setting.
_MANAGED: dict[str, str] = {
    "bootstrap_servers": "use --bootstrap-servers",
    "client_id": "the worker names its clients after --worker-id",
    "group_id": "use --group-id",
    "group_instance_id": "use --group-instance-id",
    "enable_auto_commit": "the worker commits offsets itself, after publishing",
    "auto_commit_interval_ms": "the worker commits offsets itself, after publishing",
    "isolation_level": "follows --delivery",
    "auto_offset_reset": "use --auto-offset-reset",
    "acks": "the delivery guarantees need acks from all in-sync replicas",
    "enable_idempotence": "the delivery guarantees need an idempotent producer",
    "transactional_id": "exactly-once derives it from the group and partition",
    "transaction_timeout_ms": "exactly-once sets it",
    "key_serializer": "the worker sends bytes",
    "value_serializer": "the worker sends bytes",
    "key_deserializer": "the worker reads bytes",
    "value_deserializer": "the worker reads bytes",
    "max_batch_size": "follows the topics' max.message.bytes",
    "security_protocol": "use --security-protocol",
    "ssl_context": "use the --ssl-* settings",
    "sasl_mechanism": "use --sasl-mechanism",
    "sasl_plain_username": "use --sasl-username",
    "sasl_plain_password": "use --sasl-password or --sasl-password-file",
    "sasl_oauth_token_provider": "use the --sasl-oauth-* settings",
    "compression_type": "use --compression-type",
    "max_request_size": "use --max-request-size",
    "session_timeout_ms": "use --session-timeout-ms",
    "heartbeat_interval_ms": "use --heartbeat-interval-ms",
    "max_poll_interval_ms": "use --max-poll-interval-ms",
    "rebalance_timeout_ms": "use --rebalance-timeout-ms",
    "fetch_max_bytes": "use --fetch-max-bytes",
    "max_partition_fetch_bytes": "use --max-partition-fetch-bytes",
    "fetch_min_bytes": "use --fetch-min-bytes",
    "fetch_max_wait_ms": "follows --max-batch-wait-ms",
    "linger_ms": "use --linger-ms",
    "loop": "not a client option",
    "topics": "use --input-topic",
}

#: Parameters whose default is None but whose values are numbers.
_NUMBER_WHEN_NONE = {"max_poll_records"}

_SCALAR_TYPES = (bool, int, float, str)


def _parameters(client: type) -> dict[str, Any]:
    """``name -> default`` of a client's keyword parameters that a string can set."""
    found = {}
    for name, parameter in inspect.signature(client).parameters.items():
        default = parameter.default
        if name == "self" or default is inspect.Parameter.empty:
            continue
        if default is None or isinstance(default, _SCALAR_TYPES):
            found[name] = default
    return found


_CONSUMER = _parameters(AIOKafkaConsumer)
_PRODUCER = _parameters(AIOKafkaProducer)
_ADMIN = _parameters(AIOKafkaAdminClient)
_KNOWN = {"consumer": _CONSUMER, "producer": _PRODUCER}


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Checked, typed options per client (aiokafka keyword arguments)."""

    consumer: dict[str, Any] = field(default_factory=dict)
    producer: dict[str, Any] = field(default_factory=dict)
    admin: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.consumer or self.producer or self.admin)


def parse_kafka_options(raw: Mapping[str, Any]) -> ClientOptions:
    """Check ``raw`` (``KEY -> VALUE`` as given) and sort it by client.

    Raises ``ValueError`` with one line naming the option and what is wrong with it: an unknown
    key (with the closest known ones), a key the worker manages (and the flag to use), or a value
    of the wrong type.
    """
    options = ClientOptions()
    for given, value in raw.items():
        side, name = _split(given)
        if name in _MANAGED:
            raise ValueError(f"Kafka option {given!r} cannot be set here: {_MANAGED[name]}")
        sides = (side,) if side else _SIDES
        takers = [s for s in sides if name in _KNOWN[s]]
        if not takers:
            raise ValueError(_unknown(given, side, name))
        default = _KNOWN[takers[0]][name]
        typed = _convert(given, name, value, default)
        for taker in takers:
            getattr(options, taker)[name] = typed
        if side is None and name in _ADMIN:
            options.admin[name] = typed
    return options


def _split(given: str) -> tuple[Side | None, str]:
    key = given.strip()
    side: Side | None = None
    for candidate in _SIDES:
        if key.startswith(candidate + "."):
            side, key = candidate, key[len(candidate) + 1 :]
            break
    return side, key.replace(".", "_").replace("-", "_").lower()


def _unknown(given: str, side: Side | None, name: str) -> str:
    known = sorted(set(_KNOWN[side]) if side else set(_CONSUMER) | set(_PRODUCER))
    candidates = [k for k in known if k not in _MANAGED]
    dotted = "." in given.removeprefix(f"{side}.") if side else "." in given
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    shown = [_show(c, side, dotted) for c in close]
    where = f"the {side}" if side else "any Kafka client"
    hint = f" (closest: {', '.join(shown)})" if shown else ""
    return f"unknown Kafka option {given!r}: not an option of {where}{hint}"


def _show(name: str, side: Side | None, dotted: bool) -> str:
    ambiguous = name.startswith(tuple(f"{s}_" for s in _SIDES))
    text = name.replace("_", ".") if dotted and not ambiguous else name
    return f"{side}.{text}" if side else text


def _convert(given: str, name: str, value: Any, default: Any) -> Any:
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    elif not isinstance(value, str):
        raise ValueError(
            f"Kafka option {given!r}: expected a single value, got {type(value).__name__}"
        )
    text = value.strip()
    try:
        if isinstance(default, bool):
            if text.lower() not in {"true", "false"}:
                raise ValueError(text)
            return text.lower() == "true"
        if isinstance(default, int) or (default is None and name in _NUMBER_WHEN_NONE):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "int" if default is None else type(default).__name__
        wanted = {"bool": "true or false", "int": "an integer", "float": "a number"}[kind]
        raise ValueError(f"Kafka option {given!r}: expected {wanted}, got {value!r}") from None
    return text
