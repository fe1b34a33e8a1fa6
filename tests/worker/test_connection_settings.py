"""Connection settings: security consistency, secrets from files, secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from worker.errors import SettingsError
from worker.settings import load_settings

BASE = {"input_topic": "in", "output_topic": "out", "dlq_topic": "dlq", "backend": "m:B"}
SECRET = "s3cr3t-never-shown"
SCRAM = {
    "security_protocol": "SASL_SSL",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "worker",
}


@pytest.fixture(autouse=True)
def _no_packflow_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("PACKFLOW_"):
            monkeypatch.delenv(name)


def test_plaintext_is_the_default_and_needs_nothing():
    s = load_settings(**BASE)
    assert (s.security_protocol, s.sasl_mechanism, s.ssl_check_hostname) == (
        "PLAINTEXT",
        None,
        True,
    )
    assert s.max_request_size == 1024 * 1024
    assert s.compression_type is None


def test_a_password_comes_from_a_file_without_its_trailing_newline(tmp_path):
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    s = load_settings(**BASE, **SCRAM, sasl_password_file=str(secret_file))
    assert s.sasl_password is not None
    assert s.sasl_password.get_secret_value() == SECRET
    assert SECRET not in repr(s)
    assert SECRET not in str(s.model_dump())


def test_each_secret_file_is_also_an_environment_variable(tmp_path, monkeypatch):
    for name in ("ssl_key_password", "sasl_oauth_client_secret"):
        path = tmp_path / name
        path.write_text(f"{name}-value")
        monkeypatch.setenv(f"PACKFLOW_{name.upper()}_FILE", str(path))
    cert = tmp_path / "client.pem"
    cert.write_text("not parsed by the settings")
    s = load_settings(
        **BASE,
        security_protocol="SASL_SSL",
        ssl_certfile=str(cert),
        sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_endpoint_url="https://idp.example/token",
        sasl_oauth_client_id="worker",
    )
    assert s.ssl_key_password is not None
    assert s.ssl_key_password.get_secret_value() == "ssl_key_password-value"
    assert s.sasl_oauth_client_secret is not None
    assert s.sasl_oauth_client_secret.get_secret_value() == "sasl_oauth_client_secret-value"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"sasl_password": SECRET, "sasl_password_file": "/x"}, "give --sasl-password / "),
        ({"sasl_password_file": "/no/such/file"}, "cannot read --sasl-password-file"),
        ({"security_protocol": "PLAINTEXT", "sasl_password": SECRET}, "needs --security-protocol"),
        ({"sasl_mechanism": None}, "needs --sasl-mechanism"),
        ({"sasl_username": None, "sasl_password": SECRET}, "needs --sasl-username"),
        ({}, "needs --sasl-password / PACKFLOW_SASL_PASSWORD or --sasl-password-file"),
        ({"sasl_mechanism": "GSSAPI", "sasl_password": SECRET}, "--sasl-mechanism"),
    ],
)
def test_an_inconsistent_security_setting_is_one_line_naming_it(extra, expected):
    given = {**SCRAM, **extra}
    with pytest.raises(SettingsError) as caught:
        load_settings(**BASE, **{k: v for k, v in given.items() if v is not None})
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)


def test_an_empty_secret_file_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SettingsError, match="is empty"):
        load_settings(**BASE, **SCRAM, sasl_password_file=str(empty))


def test_tls_files_need_a_tls_protocol_and_must_exist(tmp_path):
    with pytest.raises(SettingsError, match="--ssl-cafile / PACKFLOW_SSL_CAFILE needs"):
        load_settings(**BASE, ssl_cafile=__file__)
    with pytest.raises(SettingsError, match="is not a file"):
        load_settings(**BASE, security_protocol="SSL", ssl_cafile=str(tmp_path / "none.pem"))
    with pytest.raises(SettingsError, match="--ssl-keyfile / PACKFLOW_SSL_KEYFILE needs"):
        load_settings(**BASE, security_protocol="SSL", ssl_keyfile=__file__)


def test_oauthbearer_needs_an_http_token_endpoint_and_client_credentials():
    oauth = {"security_protocol": "SASL_SSL", "sasl_mechanism": "oauthbearer"}
    with pytest.raises(SettingsError, match="needs --sasl-oauth-token-endpoint-url"):
        load_settings(**BASE, **oauth)
    with pytest.raises(SettingsError, match="must be an http"):
        load_settings(
            **BASE,
            **oauth,
            sasl_oauth_token_endpoint_url="ftp://x",
            sasl_oauth_client_id="c",
            sasl_oauth_client_secret=SECRET,
        )


def test_a_secret_given_wrongly_is_never_echoed_in_the_error():
    with pytest.raises(SettingsError) as caught:
        load_settings(**BASE, **SCRAM, sasl_password=["not", SECRET])
    assert "--sasl-password" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_kafka_options_come_from_repeated_flags_or_a_json_variable(monkeypatch):
    s = load_settings(**BASE, kafka_options=("request.timeout.ms=5000", "consumer.client.rack=a"))
    assert s.client_options.consumer == {"request_timeout_ms": 5000, "client_rack": "a"}
    monkeypatch.setenv("PACKFLOW_KAFKA_OPTIONS", '{"producer.retry.backoff.ms": 20}')
    assert load_settings(**BASE).client_options.producer == {"retry_backoff_ms": 20}
    with pytest.raises(SettingsError, match=r"--kafka-option / PACKFLOW_KAFKA_OPTIONS: 'x' is"):
        load_settings(**BASE, kafka_options=("x",))


def test_compression_is_one_of_kafkas_codecs():
    assert load_settings(**BASE, compression_type="ZSTD").compression_type == "zstd"
    assert load_settings(**BASE, compression_type="none").compression_type is None
    with pytest.raises(SettingsError, match="--compression-type"):
        load_settings(**BASE, compression_type="brotli")


def test_the_cli_prints_one_line_without_the_secret_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKFLOW_")}
    env["PACKFLOW_SASL_PASSWORD"] = SECRET
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker",
            "--input-topic",
            "i",
            "--output-topic",
            "o",
            "--dlq-topic",
            "d",
            "--backend",
            "m:B",
            "--security-protocol",
            "SASL_SSL",
            "--sasl-mechanism",
            "PLAIN",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "needs --sasl-username" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "worker", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    assert SECRET not in help_text
