"""How the worker reaches Kafka: security (TLS, SASL, OAUTHBEARER) and client options.

The settings are named after Kafka's own client options. Every secret is a ``SecretStr`` and
can come from a file instead (``--sasl-password-file``, ``PACKFLOW_SASL_PASSWORD_FILE``: how
Kubernetes mounts secrets); a secret is never part of a log line, an error or ``--help``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker._setting_names import ENV_PREFIX, json_object
from worker._setting_names import describe_setting as _named
from worker.kafka_options import ClientOptions, parse_kafka_options

__all__ = ["SECRET_FIELDS", "ConnectionSettings", "SecurityProtocol"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
Compression = Literal["gzip", "snappy", "lz4", "zstd"]

#: Secret settings, each with a ``<name>_file`` setting that reads it from a file.
SECRET_FIELDS = ("ssl_key_password", "sasl_password", "sasl_oauth_client_secret")
_NEEDS_CRAMJAM = {"snappy", "lz4", "zstd"}


class ConnectionSettings(BaseSettings):
    """The Kafka connection part of :class:`~worker.settings.WorkerSettings`.

    Also usable alone (``ConnectionSettings(bootstrap_servers=...)``) by tools that talk to the
    same cluster: it reads the same ``PACKFLOW_*`` variables.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        env_ignore_empty=True,  # PACKFLOW_X="" (passed through by a chart or compose) is unset
    )

    bootstrap_servers: str = "localhost:9092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    ssl_check_hostname: bool = True
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    sasl_oauth_token_endpoint_url: str | None = None
    sasl_oauth_client_id: str | None = None
    sasl_oauth_client_secret: SecretStr | None = None
    sasl_oauth_client_secret_file: Path | None = None
    sasl_oauth_scope: str | None = None
    group_instance_id: str | None = Field(default=None, min_length=1)
    compression_type: Compression | None = None
    max_request_size: int = Field(default=1024 * 1024, ge=1024)
    kafka_options: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in SECRET_FIELDS:
            path = data.get(f"{name}_file")
            if path in (None, ""):
                continue
            if data.get(name) not in (None, ""):
                raise ValueError(f"give {_named(name)} or {_named(name + '_file')}, not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise ValueError(
                    f"cannot read {_named(name + '_file')} {str(path)!r}: {reason}"
                ) from None
            secret = text.rstrip("\r\n")
            if not secret:
                raise ValueError(f"{_named(name + '_file')} {str(path)!r} is empty")
            data = {**data, name: secret}
        return data

    @field_validator("bootstrap_servers")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("compression_type", mode="before")
    @classmethod
    def _compression(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return None if value in {"", "none"} else value
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{str(value)!r} is not a file")
        return value

    @field_validator("kafka_options", mode="before")
    @classmethod
    def _parse_kafka_options(cls, value: Any) -> Any:
        value = json_object(value)
        if isinstance(value, list | tuple):
            pairs = {}
            for item in value:
                key, sep, text = str(item).partition("=")
                if not sep or not key.strip():
                    raise ValueError(f"{item!r} is not KEY=VALUE")
                pairs[key.strip()] = text
            value = pairs
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, got {type(value).__name__}")
        parse_kafka_options(value)
        return value

    @model_validator(mode="after")
    def _check_security(self) -> ConnectionSettings:
        protocol = self.security_protocol
        uses_tls = protocol in {"SSL", "SASL_SSL"}
        uses_sasl = protocol.startswith("SASL_")
        tls_files = [f for f in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, f)]
        if tls_files and not uses_tls:
            raise ValueError(
                f"{_named(tls_files[0])} needs --security-protocol SSL or SASL_SSL "
                f"(it is {protocol})"
            )
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError(f"{_named('ssl_keyfile')} needs {_named('ssl_certfile')}")
        if self.ssl_key_password and not self.ssl_certfile:
            raise ValueError(f"{_named('ssl_key_password')} needs {_named('ssl_certfile')}")
        sasl_given = [
            f
            for f in ("sasl_mechanism", "sasl_username", "sasl_password")
            if getattr(self, f) is not None
        ]
        if sasl_given and not uses_sasl:
            raise ValueError(
                f"{_named(sasl_given[0])} needs --security-protocol SASL_PLAINTEXT or "
                f"SASL_SSL (it is {protocol})"
            )
        if uses_sasl:
            self._check_sasl()
        if self.compression_type in _NEEDS_CRAMJAM and not importlib.util.find_spec("cramjam"):
            raise ValueError(
                f"--compression-type {self.compression_type} needs the cramjam library: "
                "pip install 'packflow[compression]'"
            )
        return self

    def _check_sasl(self) -> None:
        mechanism = self.sasl_mechanism
        if mechanism is None:
            raise ValueError(
                f"--security-protocol {self.security_protocol} needs {_named('sasl_mechanism')}"
                " (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
            )
        if mechanism == "OAUTHBEARER":
            needed = ("sasl_oauth_token_endpoint_url", "sasl_oauth_client_id")
            missing = [f for f in needed if not getattr(self, f)]
            if self.sasl_oauth_client_secret is None:
                missing.append("sasl_oauth_client_secret")
            if missing:
                raise ValueError(f"--sasl-mechanism OAUTHBEARER needs {_named(missing[0])}")
            url = self.sasl_oauth_token_endpoint_url or ""
            if not url.startswith(("https://", "http://")):
                raise ValueError(
                    f"{_named('sasl_oauth_token_endpoint_url')} must be an http(s) URL"
                )
            return
        if not self.sasl_username:
            raise ValueError(f"--sasl-mechanism {mechanism} needs {_named('sasl_username')}")
        if self.sasl_password is None:
            raise ValueError(
                f"--sasl-mechanism {mechanism} needs {_named('sasl_password')} "
                f"or {_named('sasl_password_file')}"
            )

    @property
    def client_options(self) -> ClientOptions:
        """The checked ``--kafka-option`` values, by client."""
        return parse_kafka_options(self.kafka_options)
