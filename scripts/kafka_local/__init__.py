"""Start a real Apache Kafka broker from Maven Central jars, without Docker.

Used by ``scripts/kafka`` (the CLI) and by the pytest fixtures in ``tests/conftest.py``::

    from kafka_local import LocalKafka

    broker = LocalKafka(tmp_path / "kafka", tie_to_parent=True)
    bootstrap = broker.start()  # "127.0.0.1:<port>"
    ...
    broker.stop()

    secured = LocalKafka(tmp_path / "secure", secure=True, tie_to_parent=True)
    secured.start()  # the SASL_SSL listener's address
    settings = secured.security.client_settings("mtls")  # PACKFLOW_* for a worker

Standard library only (plus the ``openssl`` command for a secured broker), so the CLI
runs before any virtual env exists.
"""

from ._errors import (
    AlreadyRunningError,
    DownloadError,
    JavaNotFoundError,
    KafkaLocalError,
    NotRunningError,
    PortInUseError,
    StartupError,
)
from ._pki import PkiError
from ._probe import BrokerMetadata, ProbeError, check_bootstrap, fetch_metadata
from ._secure import BrokerSecurity, Credentials, Listener, OAuthValidation
from .broker import (
    DEFAULT_JVM_OPTIONS,
    DEFAULT_KAFKA_VERSION,
    DEFAULT_LIBS_ROOT,
    DEFAULT_STATE_DIR,
    LocalKafka,
    default_kafka_version,
    default_libs_root,
)

__all__ = [
    "DEFAULT_JVM_OPTIONS",
    "DEFAULT_KAFKA_VERSION",
    "DEFAULT_LIBS_ROOT",
    "DEFAULT_STATE_DIR",
    "AlreadyRunningError",
    "BrokerMetadata",
    "BrokerSecurity",
    "Credentials",
    "DownloadError",
    "JavaNotFoundError",
    "KafkaLocalError",
    "Listener",
    "LocalKafka",
    "NotRunningError",
    "OAuthValidation",
    "PkiError",
    "PortInUseError",
    "ProbeError",
    "StartupError",
    "check_bootstrap",
    "default_kafka_version",
    "default_libs_root",
    "fetch_metadata",
]
