"""``LocalKafka``: one real Apache Kafka broker (KRaft, broker+controller) on loopback.

Plain (one PLAINTEXT listener) by default; ``secure=True`` gives the secured broker of
``_secure.py`` (TLS, mTLS, SASL SCRAM/PLAIN, OAUTHBEARER, ACLs).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from . import _secure
from ._config import log4j2_config, server_properties
from ._errors import (
    AlreadyRunningError,
    KafkaLocalError,
    NotRunningError,
    PortInUseError,
    StartupError,
)
from ._jars import ensure_jars
from ._java import find_java
from ._ports import LOOPBACK, free_port, is_port_free
from ._probe import ProbeError, fetch_metadata
from ._secure import BrokerSecurity

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KAFKA_VERSION = "4.4.0"
DEFAULT_STATE_DIR = REPO_ROOT / ".kafka" / "broker"
DEFAULT_LIBS_ROOT = REPO_ROOT / ".kafka" / "libs"
#: Small on purpose: the machines that run the tests have 2 cores.
DEFAULT_JVM_OPTIONS: tuple[str, ...] = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_PR_SET_PDEATHSIG = 1
_STARTUP_ATTEMPTS = 3
_MANAGED_SETTINGS = frozenset(
    {
        "log.dirs",
        "log.dir",
        "listeners",
        "advertised.listeners",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "process.roles",
        "node.id",
    }
)
_PLAIN_PORT_NAMES = ("client", "controller")
_EXCEPTION_HEADER = re.compile(r"((?:[\w$]+\.)+[\w$]*(?:Exception|Error)\b.*)$")


def default_libs_root() -> Path:
    """Where jar sets are cached: ``$PACKFLOW_KAFKA_LIBS_DIR`` or ``.kafka/libs``."""
    custom = os.environ.get("PACKFLOW_KAFKA_LIBS_DIR")
    return Path(custom) if custom else DEFAULT_LIBS_ROOT


def default_kafka_version() -> str:
    """The broker version to use: ``$PACKFLOW_KAFKA_VERSION`` or the tested default."""
    return os.environ.get("PACKFLOW_KAFKA_VERSION") or DEFAULT_KAFKA_VERSION


class LocalKafka:
    """A single-node Kafka broker whose whole state lives in ``state_dir``.

    ``start()`` resolves the jars (cached in ``libs_root/<version>``), formats the data
    directory on first use, starts the JVM on free loopback ports (or the ports of the
    previous run when they are still free) and returns once a Metadata request
    succeeds. ``stop()`` shuts it down cleanly; data and committed offsets survive a
    restart on the same ``state_dir``.

    With ``tie_to_parent=True`` the JVM also dies with the Python process that started
    it (Linux ``PR_SET_PDEATHSIG``, plus an ``atexit`` stop), for test fixtures. The
    kernel ties it to the *thread* that called ``start()``: call it from the main thread
    (or one that lives as long as the broker should).

    With ``secure=True`` the broker has the secured listeners, users and ACLs described
    in ``kafka_local._secure`` instead of one PLAINTEXT listener; ``start()`` then
    returns the SASL_SSL listener's address and ``security`` tells every listener and
    credential. ``jwks_url`` (e.g. a test identity provider's) is where the OAUTHBEARER
    listener fetches the keys that sign tokens; without it the broker makes its own
    file JWKS and signs a worker token with it. ``oauth_issuer`` and ``oauth_audience``
    are the ``iss`` and ``aud`` that tokens must carry. A state dir is either plain or
    secured for its whole life.
    """

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        libs_root: Path | str | None = None,
        version: str | None = None,
        port: int | None = None,
        controller_port: int | None = None,
        settings: dict[str, str] | None = None,
        jvm_options: Sequence[str] | None = None,
        offline: bool = False,
        tie_to_parent: bool = False,
        announce: Callable[[str], None] | None = None,
        secure: bool = False,
        jwks_url: str | None = None,
        oauth_issuer: str | None = None,
        oauth_audience: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.libs_root = Path(libs_root or default_libs_root()).resolve()
        self.version = version or default_kafka_version()
        self._requested_port = port
        self._requested_controller_port = controller_port
        self._settings = dict(settings or {})
        self._secure = secure
        oauth_options = (
            ("jwks_url", jwks_url),
            ("oauth_issuer", oauth_issuer),
            ("oauth_audience", oauth_audience),
        )
        given = [name for name, value in oauth_options if value is not None]
        if given and not secure:
            raise KafkaLocalError(f"{given[0]} is an option of the secured broker (secure=True)")
        self._jwks_url = jwks_url
        self._oauth_issuer = oauth_issuer
        self._oauth_audience = oauth_audience
        self._security: BrokerSecurity | None = None
        managed_settings = _MANAGED_SETTINGS | (_secure.MANAGED_SETTINGS if secure else set())
        managed = sorted(managed_settings & set(self._settings))
        if managed:
            raise KafkaLocalError(
                f"setting {managed[0]} is managed by scripts/kafka "
                "(use the state dir and port options instead)"
            )
        self._jvm_options = tuple(jvm_options) if jvm_options is not None else _env_jvm_options()
        self._offline = offline
        self._tie_to_parent = tie_to_parent
        self._announce = announce or (lambda _message: None)
        self._process: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    # -- files in the state dir ------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The broker's ``log.dirs``."""
        return self.state_dir / "data"

    @property
    def log_file(self) -> Path:
        """The broker's own log (log4j2)."""
        return self.state_dir / "broker.log"

    @property
    def jvm_output_file(self) -> Path:
        """The JVM's stdout and stderr (normally empty)."""
        return self.state_dir / "jvm.out"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def _ports_file(self) -> Path:
        return self.state_dir / "broker.ports"

    @property
    def _properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def security_dir(self) -> Path:
        """Where a secured broker keeps its certificates, keys, JWKS and passwords."""
        return self.state_dir / "secure"

    @property
    def security(self) -> BrokerSecurity | None:
        """Listeners, credentials and files of this state dir's secured broker.

        ``None`` for a plain broker's state dir (or one never started). Read from the
        state dir, so ``LocalKafka(state_dir).security`` works in another process too.
        """
        if self._security is not None:
            return self._security
        return _secure.load(self.security_dir)

    # -- state -----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The broker's process id when it runs, else ``None``."""
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_process(pid) else None

    def is_running(self) -> bool:
        """Tell whether this state dir's broker process is alive."""
        return self.pid is not None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>`` of the running broker; ``NotRunningError`` if none runs.

        For a secured broker this is its SASL_SSL listener (see ``security``).
        """
        if not self.is_running():
            raise NotRunningError(f"no Kafka broker is running for {self.state_dir}")
        ports = self._saved_ports()
        if ports is None:
            raise NotRunningError(f"{self._ports_file} is missing or unreadable")
        return f"{LOOPBACK}:{ports[0]}"

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> str:
        """Start the broker and return its bootstrap address once it answers metadata."""
        running = self.pid
        if running is not None:
            raise AlreadyRunningError(
                f"a Kafka broker is already running at {self.bootstrap_servers} "
                f"(pid {running}, state dir {self.state_dir}); stop it first"
            )
        self._check_mode()
        java = find_java(17 if not self.version.startswith(("2.", "3.")) else 11)
        libs = ensure_jars(
            self.libs_root, self.version, offline=self._offline, announce=self._announce
        )
        classpath = str(libs / "*")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        for attempt in range(1, _STARTUP_ATTEMPTS + 1):
            ports = self._choose_ports(fresh=attempt > 1)
            self._write_config(ports)
            self._format_once(java, classpath)
            try:
                return self._launch(java, classpath, ports, deadline)
            except PortInUseError:
                if self._requested_port is not None or attempt == _STARTUP_ATTEMPTS:
                    raise
                self._announce("a chosen port was taken meanwhile; retrying with other ports")
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the broker down (SIGTERM, SIGKILL after ``timeout``)."""
        pid = self.pid
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            raise NotRunningError(f"no Kafka broker is running for {self.state_dir}")
        self._terminate(pid, timeout)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.is_running():
            self.stop()

    # -- steps -----------------------------------------------------------------------
    def _check_mode(self) -> None:
        """A state dir stays plain or secured: its data and users depend on it."""
        secured_before = _secure.security_file(self.security_dir).is_file()
        if self._secure and not secured_before and (self.data_dir / "meta.properties").is_file():
            raise KafkaLocalError(
                f"{self.state_dir} holds a plain broker's data: "
                "start the secured broker in another state dir"
            )
        if not self._secure and secured_before:
            raise KafkaLocalError(
                f"{self.state_dir} holds a secured broker: start it with --secure "
                "(secure=True) or use another state dir"
            )

    @property
    def _port_names(self) -> tuple[str, ...]:
        return _secure.PORT_NAMES if self._secure else _PLAIN_PORT_NAMES

    def _choose_ports(self, *, fresh: bool) -> tuple[int, ...]:
        """One port per name in ``_port_names``: the client port, the controller's, ..."""
        requested = (self._requested_port, self._requested_controller_port)
        for port in requested:
            if port is not None and not is_port_free(port):
                raise PortInUseError(
                    f"port {LOOPBACK}:{port} is already in use: choose another one "
                    "or leave the port out to pick a free one"
                )
        wanted = len(self._port_names)
        saved = None if fresh else self._saved_ports()
        if saved is not None and (len(saved) != wanted or not all(map(is_port_free, saved))):
            saved = None
        chosen: list[int] = []
        for index in range(wanted):
            port = requested[index] if index < len(requested) else None
            port = port or (saved[index] if saved else 0)
            while port in (0, *chosen):
                port = free_port()
            chosen.append(port)
        return tuple(chosen)

    def _saved_ports(self) -> tuple[int, ...] | None:
        try:
            ports = tuple(int(port) for port in self._ports_file.read_text().split())
        except (OSError, ValueError):
            return None
        return ports if len(ports) >= 2 else None

    def _write_config(self, ports: tuple[int, ...]) -> None:
        port, controller_port = ports[0], ports[1]
        settings = self._settings
        if self._secure:
            named = dict(zip(self._port_names, ports, strict=True))
            self._security = _secure.provision(
                self.security_dir,
                named,
                jwks_url=self._jwks_url,
                issuer=self._oauth_issuer,
                audience=self._oauth_audience,
            )
            settings = {**_secure.broker_settings(self._security, named), **self._settings}
        text = server_properties(self.data_dir, port, controller_port, settings)
        self._properties_file.write_text(text)
        if self._secure:
            self._properties_file.chmod(0o600)  # the PLAIN users' passwords are in it
        (self.state_dir / "log4j2.xml").write_text(log4j2_config(self.log_file))
        self._ports_file.write_text(" ".join(map(str, ports)) + "\n")

    def _java_command(self, java: Path, classpath: str) -> list[str]:
        properties = []
        if self._security is not None:
            allowed = self._security.oauth.jwks_url
            properties.append(f"-D{_secure.ALLOWED_URLS_PROPERTY}={allowed}")
        return [
            str(java),
            *self._jvm_options,
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={self.state_dir}",
            *properties,
            "-cp",
            classpath,
        ]

    def _format_once(self, java: Path, classpath: str) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        self._announce(f"formatting a new KRaft data directory in {self.data_dir}")
        cluster_id = _random_cluster_id()
        arguments = [
            _STORAGE_TOOL,
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(self._properties_file),
        ]
        if self._security is not None:
            arguments += _secure.scram_format_arguments(self._security)
        # The arguments go through a java @argfile (mode 0600): SCRAM passwords stay off
        # the process list.
        with tempfile.NamedTemporaryFile(
            "w", dir=self.state_dir, prefix=".format-", suffix=".args"
        ) as argfile:
            argfile.write("".join(_argfile_line(argument) for argument in arguments))
            argfile.flush()
            command = [*self._java_command(java, classpath), f"@{argfile.name}"]
            result = subprocess.run(
                command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
            )
        if result.returncode != 0:
            reason = _last_error_line(result.stderr + result.stdout) or f"exit {result.returncode}"
            raise StartupError(f"formatting {self.data_dir} failed: {reason}")

    def _launch(self, java: Path, classpath: str, ports: tuple[int, ...], deadline: float) -> str:
        command = [*self._java_command(java, classpath), _MAIN_CLASS, str(self._properties_file)]
        with self.jvm_output_file.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if self._tie_to_parent else None,
            )
        self._process = process
        self._pid_file.write_text(f"{process.pid}\n")
        if self._tie_to_parent and not self._atexit_registered:
            atexit.register(self._stop_quietly)
            self._atexit_registered = True
        try:
            self._wait_until_ready(process, ports, deadline)
        except BaseException:
            self._terminate(process.pid, 10.0)
            raise
        return f"{LOOPBACK}:{ports[0]}"

    def _probe_target(self, ports: tuple[int, ...]) -> tuple[int, ssl.SSLContext | None]:
        """The port a readiness probe asks, and the TLS identity it uses there."""
        if self._security is None:
            return ports[0], None
        # The broker's own inter-broker listener, as User:broker: every listener,
        # authorizer and SCRAM user is ready once it answers.
        internal = ports[self._port_names.index("internal")]
        return internal, self._security.probe_context()

    def _wait_until_ready(
        self, process: subprocess.Popen[bytes], ports: tuple[int, ...], deadline: float
    ) -> None:
        last_problem = "no answer yet"
        port, context = self._probe_target(ports)
        while True:
            code = process.poll()
            if code is not None:
                raise self._startup_failure(code, ports)
            try:
                fetch_metadata(LOOPBACK, port, timeout=2.0, ssl_context=context)
                return
            except (OSError, ProbeError) as exc:
                last_problem = str(exc) or type(exc).__name__
            if time.monotonic() >= deadline:
                raise StartupError(
                    f"Kafka did not answer a metadata request on {LOOPBACK}:{port} in time "
                    f"({last_problem}); see {self.log_file}"
                )
            time.sleep(0.2)

    def _startup_failure(self, code: int, ports: tuple[int, ...]) -> KafkaLocalError:
        text = _read_tail(self.log_file) + _read_tail(self.jvm_output_file)
        if "Address already in use" in text:
            *others, last = (f"{LOOPBACK}:{port}" for port in ports)
            return PortInUseError(f"port {', '.join(others)} or {last} is already in use")
        reason = _last_error_line(text) or f"exit code {code}"
        return StartupError(f"Kafka exited during startup: {reason} (see {self.log_file})")

    def _terminate(self, pid: int, timeout: float) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_for_exit(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_for_exit(pid, 10.0)
        self._pid_file.unlink(missing_ok=True)

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self._process
            if process is not None and process.pid == pid:
                if process.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _stop_quietly(self) -> None:
        with contextlib.suppress(KafkaLocalError, OSError):
            if self.is_running():
                self.stop()

    def _is_our_process(self, pid: int) -> bool:
        if not _alive(pid):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return sys.platform != "linux"  # no /proc: trust the pid file
        return _MAIN_CLASS.encode() in cmdline and str(self._properties_file).encode() in cmdline


def _env_jvm_options() -> tuple[str, ...]:
    custom = os.environ.get("PACKFLOW_KAFKA_JVM_OPTS")
    return tuple(custom.split()) if custom else DEFAULT_JVM_OPTIONS


def _random_cluster_id() -> str:
    """A cluster id as Kafka's own ``Uuid.randomUuid()`` makes one: never starting with "-"."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _argfile_line(argument: str) -> str:
    """``argument`` quoted for a java @argfile (one argument per line)."""
    escaped = argument.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"\n'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie is dead


def _die_with_parent() -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _read_tail(path: Path, limit: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _last_error_line(text: str) -> str | None:
    """The most telling line of a JVM failure: the last exception header, if any."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    headers = [m.group(1) for line in lines if (m := _EXCEPTION_HEADER.search(line))]
    if headers:
        return headers[-1][:400]
    errors = [line for line in lines if " ERROR " in line]
    if errors:
        return errors[-1][:400]
    return lines[-1][:400] if lines else None
