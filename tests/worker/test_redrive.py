"""``packflow-worker redrive`` without a broker: reading dead letters back, filters, headers,
loop protection, counting, the table, pacing and the command line's one-line errors."""

from __future__ import annotations

import dataclasses
import os

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

import worker.redrive
from worker._rate import TokenBucket
from worker.cli import main as worker_main
from worker.codec import DeadLetter, encode_dead_letter
from worker.connection_settings import ConnectionSettings
from worker.errors import SettingsError
from worker.redrive import (
    REDRIVE_COUNT_HEADER,
    Condition,
    NotADeadLetterError,
    NotSelected,
    RedriveOptions,
    RedriveReport,
    Resend,
    Selection,
    Skip,
    parse_time,
    plan,
    read_dead_letter,
    redrive_count,
    redrive_headers,
)

LETTER = DeadLetter(
    error_type="ValueError",
    message="step 'execute' of Scorer failed on events/1@1842: bad",
    step="execute",
    topic="events",
    partition=1,
    offset=1842,
    timestamp=1_764_070_000_000,
    value=b'{"id": 7}',
    record_index=3,
)
WRITTEN_AT = 1_764_070_000_500  # the dead-letter message's own timestamp


def dead_letter_message(
    letter: DeadLetter = LETTER,
    *,
    headers: tuple[tuple[str, bytes], ...] = (("h", b"v"), ("packflow-source", b"events/1/1842")),
    value: bytes | None = None,
    timestamp: int = WRITTEN_AT,
) -> ConsumerRecord:
    body = encode_dead_letter(letter, worker_id="w-1", backend="Scorer") if value is None else value
    return ConsumerRecord("dlq", 0, 5, timestamp, 0, b"key-7", body, None, 1, len(body), headers)


EVERYTHING = Selection()


def decide(record: ConsumerRecord, selection: Selection = EVERYTHING, **kwargs):
    return plan(record, selection, max_redrives=kwargs.pop("max_redrives", 3), **kwargs)


# Reading dead letters back


@pytest.mark.parametrize(
    "letter",
    [
        LETTER,
        dataclasses.replace(LETTER, record_index=None, timestamp=None),
        LETTER.without_value(),
        dataclasses.replace(LETTER, value=None),  # a tombstone input
        dataclasses.replace(LETTER, value=b"\xff\x00 not utf-8", step="decode"),
        dataclasses.replace(LETTER, value=b"", message="", step="decode"),
    ],
)
def test_a_dead_letter_reads_back_as_the_worker_wrote_it(letter):
    stored = read_dead_letter(encode_dead_letter(letter, worker_id="w-1", backend="Scorer"))
    assert stored.letter == letter
    assert (stored.worker, stored.backend) == ("w-1", "Scorer")
    assert stored.row == (letter.error_type, letter.step)


def envelope(**changes) -> bytes:
    body = orjson.loads(encode_dead_letter(LETTER, worker_id="w", backend="B"))
    for path, value in changes.items():
        *parents, name = path.split("__")
        target = body
        for parent in parents:
            target = target[parent]
        if value is ...:
            del target[name]
        else:
            target[name] = value
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (envelope(error=...), "error missing or not an object"),
        (envelope(source="events/1/1842"), "source missing or not an object"),
        (envelope(error__type=...), "error.type missing or not a string"),
        (envelope(error__step=""), "error.step missing or not a string"),
        (envelope(source__partition="1"), "source.partition missing or not an integer"),
        (envelope(source__offset=True), "source.offset missing or not an integer"),
        (envelope(value="***"), "value is not base64"),
        (envelope(value=...), "value missing"),
        (envelope(value=42), "value missing or not a string"),
    ],
)
def test_a_message_that_is_not_a_dead_letter_is_named_by_its_first_fault(value, reason):
    with pytest.raises(NotADeadLetterError) as caught:
        read_dead_letter(value)
    assert str(caught.value) == reason


# Filters


def test_where_conditions_all_hold_and_read_the_named_fields():
    stored = read_dead_letter(dead_letter_message().value)
    for text in (
        "error.type=ValueError",
        "error.step=execute",
        "source.topic=events",
        "source.partition=1",
        "worker=w-1",
        "backend=Scorer",
    ):
        assert Condition.parse(text).matches(stored), text
    assert Selection.parse(["error.type=ValueError", "source.partition=1"]).selects(stored, 0)
    assert not Selection.parse(["error.type=ValueError", "error.step=decode"]).selects(stored, 0)
    assert not Selection.parse(["error.type=valueerror"]).selects(stored, 0)  # case matters
    assert not Selection.parse(source_partition=0).selects(stored, 0)
    assert Selection.parse(source_partition=1).selects(stored, 0)


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("error.kind=ValueError", "unknown field 'error.kind' (known: error.type, error.step,"),
        ("error.type", "'error.type' is not FIELD=VALUE"),
        ("=ValueError", "is not FIELD=VALUE"),
        ("source.partition=one", "a partition is an integer"),
    ],
)
def test_a_bad_where_is_one_clear_line(where, fragment):
    with pytest.raises(SettingsError, match="--where") as caught:
        Selection.parse([where])
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_two_values_for_one_field_select_nothing_and_are_refused():
    with pytest.raises(SettingsError, match="together select nothing"):
        Selection.parse(["error.type=ValueError", "error.type=KeyError"])
    assert Selection.parse(["error.type=A", "error.type=A"]).where  # the same twice is fine


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1764070000500", 1_764_070_000_500),
        ("2025-11-25T11:26:40Z", 1_764_070_000_000),
        ("2025-11-25T11:26:40.5+00:00", 1_764_070_000_500),
        ("2025-11-25T12:26:40+01:00", 1_764_070_000_000),
        ("2025-11-25T11:26:40", 1_764_070_000_000),  # no offset: UTC
    ],
)
def test_times_are_iso_8601_or_epoch_milliseconds(text, ms):
    assert parse_time(text, "--since") == ms


def test_a_bad_time_names_its_flag():
    with pytest.raises(SettingsError, match="--until 'yesterday' is neither an ISO-8601 time"):
        parse_time("yesterday", "--until")
    with pytest.raises(SettingsError, match="--since must be before --until"):
        Selection.parse(since="2025-11-25T12:00:00Z", until="2025-11-25T11:00:00Z")


def test_since_is_inclusive_and_until_exclusive_on_the_dead_letter_messages_timestamp():
    record = dead_letter_message()  # written at WRITTEN_AT; the source message is older
    window = Selection(since_ms=WRITTEN_AT, until_ms=WRITTEN_AT + 1)
    assert isinstance(decide(record, window), Resend)
    assert isinstance(decide(record, Selection(until_ms=WRITTEN_AT)), NotSelected)
    assert isinstance(decide(record, Selection(since_ms=WRITTEN_AT + 1)), NotSelected)
    assert isinstance(decide(record, Selection(since_ms=LETTER.timestamp + 1)), Resend)


# Headers and decisions


def test_the_redrive_count_is_zero_without_a_header_and_the_largest_of_several():
    assert redrive_count(None) == 0
    assert redrive_count([("h", b"v")]) == 0
    assert redrive_count([(REDRIVE_COUNT_HEADER, b"2"), (REDRIVE_COUNT_HEADER, b"5")]) == 5
    for bad in (b"two", b"-1", b"\xff"):
        with pytest.raises(ValueError):  # noqa: PT011 - any ValueError
            redrive_count([(REDRIVE_COUNT_HEADER, bad)])


def test_redriven_headers_drop_the_source_and_carry_the_count_one_higher():
    headers = [
        ("a", b"1"),
        ("packflow-source", b"events/1/1842"),
        (REDRIVE_COUNT_HEADER, b"1"),
        ("b", b"2"),
        ("a", b"3"),
    ]
    assert redrive_headers(headers, 2) == [
        ("a", b"1"),
        ("b", b"2"),
        ("a", b"3"),
        (REDRIVE_COUNT_HEADER, b"2"),
    ]


def test_a_dead_letter_goes_back_to_its_source_topic_with_its_original_value_key_and_headers():
    decision = decide(dead_letter_message())
    assert isinstance(decision, Resend)
    assert (decision.topic, decision.key, decision.value) == ("events", b"key-7", b'{"id": 7}')
    assert decision.headers == [("h", b"v"), (REDRIVE_COUNT_HEADER, b"1")]
    assert decision.row == ("ValueError", "execute")
    assert decide(dead_letter_message(), target_topic="fixed").topic == "fixed"


def test_loop_protection_skips_a_dead_letter_redriven_max_redrives_times():
    def at(count: bytes, max_redrives: int = 3):
        return decide(
            dead_letter_message(headers=((REDRIVE_COUNT_HEADER, count),)),
            max_redrives=max_redrives,
        )

    assert at(b"2").headers == [(REDRIVE_COUNT_HEADER, b"3")]
    assert at(b"3") == Skip(("ValueError", "execute"), "redriven 3+ times already (--max-redrives)")
    assert isinstance(at(b"9"), Skip)
    assert isinstance(at(b"3", max_redrives=4), Resend)
    assert at(b"x") == Skip(("ValueError", "execute"), "bad packflow-redrive-count header")


def test_a_dead_letter_without_its_value_is_skipped_never_sent_empty():
    omitted = decide(dead_letter_message(LETTER.without_value()))
    assert omitted == Skip(("ValueError", "execute"), "value omitted")
    tombstone = decide(dead_letter_message(dataclasses.replace(LETTER, value=None)))
    assert tombstone == Skip(("ValueError", "execute"), "original had no value (tombstone)")


def test_a_foreign_message_is_skipped_with_its_reason_and_filters_do_not_hide_it():
    decision = decide(
        dead_letter_message(value=b"not json"), Selection.parse(["error.type=ValueError"])
    )
    assert decision == Skip(("(not a dead letter)", "-"), "not JSON")


def test_the_selection_comes_before_the_skip_rules():
    record = dead_letter_message(LETTER.without_value())
    assert decide(record, Selection.parse(["error.step=decode"])) == NotSelected(
        ("ValueError", "execute")
    )


# Counting and the table


def filled_report(*, dry_run: bool = False) -> RedriveReport:
    report = RedriveReport("events-dlq", "packflow-redrive-events-dlq", dry_run=dry_run)
    report.end_offsets = {0: 12, 1: 4}
    for _ in range(3):
        report.add_redriven(("ValueError", "execute"), "events")
    report.add_redriven(("KeyError", "transform_outputs"), "other")
    report.add_skipped(("ValueError", "execute"), "value omitted", "events-dlq/0@3")
    report.add_skipped(("ValueError", "execute"), "bad packflow-redrive-count header", "x/0@4")
    report.add_skipped(("(not a dead letter)", "-"), "not JSON", "events-dlq/1@0")
    report.add_not_selected(("InvalidJsonError", "decode"))
    report.add_not_selected(("InvalidJsonError", "decode"))
    return report


def test_every_dead_letter_counts_once_in_its_row():
    report = filled_report()
    assert (report.redriven, report.skipped, report.not_selected) == (4, 3, 2)
    assert report.targets == {"events": 3, "other": 1}
    row = report.rows[("ValueError", "execute")]
    assert (row.redriven, row.skipped_total, row.not_selected) == (3, 2, 0)
    assert [s.location for s in report.skipped_letters] == [
        "events-dlq/0@3",
        "x/0@4",
        "events-dlq/1@0",
    ]
    assert report.exit_code == 0
    assert dataclasses.replace(report, failure="send failed").exit_code == 1
    assert dataclasses.replace(report, stopped="--limit 4 reached").exit_code == 0
    assert dataclasses.replace(report, stopped="stopped by a signal", interrupted=True).exit_code


def test_the_table_has_a_row_per_error_type_and_step_and_ends_with_the_total():
    lines = filled_report().table().splitlines()
    assert lines[0] == (
        "dead letters of 'events-dlq' up to end offsets 0:12 1:4 "
        "(group 'packflow-redrive-events-dlq'); selected: every dead letter"
    )
    assert lines[1] == "sent 3 to 'events', 1 to 'other'"
    assert lines[2:] == [
        "error type           step               redriven  skipped  not selected  skipped because",
        "InvalidJsonError     decode                    0        0             2",
        "KeyError             transform_outputs         1        0             0",
        "ValueError           execute                   3        2             0"
        "  bad packflow-redrive-count header: 1; value omitted: 1",
        "(not a dead letter)  -                         0        1             0  not JSON: 1",
        "total                                          4        3             2",
    ]


def test_a_dry_run_table_says_so_and_counts_what_would_be_redriven():
    lines = filled_report(dry_run=True).table().splitlines()
    assert lines[1] == "dry run: nothing sent, nothing committed"
    assert "would redrive" in lines[2]
    assert "redriven" not in lines[2]


def test_an_empty_run_still_prints_the_header_and_the_total():
    lines = RedriveReport("dlq", "g").table().splitlines()
    assert lines[0].startswith("dead letters of 'dlq' up to end offsets none")
    assert lines[-1].split() == ["total", "0", "0", "0"]


# Pacing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_token_bucket_paces_to_its_rate_after_a_burst():
    clock = FakeClock()
    bucket = TokenBucket(4.0, burst=2.0, clock=clock)
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]  # the burst
    assert bucket.reserve() == pytest.approx(0.25)
    clock.now += 0.25  # the caller slept as told
    assert bucket.reserve() == pytest.approx(0.25)
    clock.now += 10.0  # idle: the bucket refills to the burst, no more
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]


def test_sleeping_as_told_keeps_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(50.0, clock=clock)
    start = clock.now
    for _ in range(101):
        clock.now += bucket.reserve()
    assert clock.now - start == pytest.approx(2.0)


# Options


def connection() -> ConnectionSettings:
    return ConnectionSettings(bootstrap_servers="127.0.0.1:9")


def test_the_default_group_is_named_after_the_dead_letter_topic():
    assert RedriveOptions("events-dlq", connection()).group == "packflow-redrive-events-dlq"
    assert RedriveOptions("events-dlq", connection(), group_id="mine").group == "mine"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"target_topic": "dlq"}, "--target-topic is the dead-letter topic itself"),
        ({"dlq_topic": " "}, "--dlq-topic must not be empty"),
        ({"max_redrives": 0}, "--max-redrives"),
        ({"rate": 0.0}, "--rate"),
        ({"limit": 0}, "--limit"),
    ],
)
def test_bad_options_are_settings_errors(changes, fragment):
    values = {"dlq_topic": "dlq", "connection": connection(), **changes}
    with pytest.raises(SettingsError, match=fragment):
        RedriveOptions(**values)


def test_the_package_exports_its_public_names():
    for name in worker.redrive.__all__:
        assert hasattr(worker.redrive, name), name
    assert {"redrive", "RedriveOptions", "RedriveReport", "Selection"} <= set(
        worker.redrive.__all__
    )


# The command line (in-process: no broker needed for these)


@pytest.fixture
def run_cli(monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("PACKFLOW_"):
            monkeypatch.delenv(name)

    def run(*args: str) -> tuple[int, str, str]:
        code = 0
        try:
            worker_main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("packflow-worker redrive: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--where", "error.kind=X"], "unknown field 'error.kind'"),
        (["--since", "soon"], "--since 'soon' is neither an ISO-8601 time"),
        (["--rate", "0"], "--rate"),
        (["--limit", "-1"], "--limit"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--security-protocol", "SSL", "--ssl-cafile", "/nope"], "--ssl-cafile"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(run_cli, args, fragment):
    code, out, err = run_cli("redrive", "--dlq-topic", "dlq", *args)
    assert code == 2
    assert fragment in one_error_line(err)
    assert out == ""


def test_a_missing_dlq_topic_is_named(run_cli):
    code, _, err = run_cli("redrive")
    assert code == 2
    assert "--dlq-topic" in one_error_line(err)


def test_a_secret_is_never_printed(run_cli):
    code, out, err = run_cli("redrive", "--dlq-topic", "d", "--sasl-password", "hunter2-secret")
    assert code == 2
    assert "needs --security-protocol SASL_PLAINTEXT or SASL_SSL" in one_error_line(err)
    assert "hunter2-secret" not in out + err


def test_an_unreachable_broker_is_a_start_up_failure(run_cli):
    code, out, err = run_cli(
        "redrive",
        "--dlq-topic",
        "dlq",
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--startup-timeout-seconds",
        "0.5",
    )
    assert code == 2
    assert "Kafka could not be reached at bootstrap servers '127.0.0.1:1'" in one_error_line(err)
    assert out == ""


def test_the_connection_settings_come_from_the_workers_variables(run_cli, monkeypatch):
    monkeypatch.setenv("PACKFLOW_SECURITY_PROTOCOL", "SASL_SSL")
    code, _, err = run_cli("redrive", "--dlq-topic", "dlq")
    assert code == 2
    assert "--security-protocol SASL_SSL needs --sasl-mechanism" in one_error_line(err)


def test_redrive_help_names_the_timestamp_and_the_connection_flags(run_cli):
    code, out, _ = run_cli("redrive", "--help")
    assert code == 0
    assert "Kafka timestamp" in out
    for flag in (
        "--bootstrap-servers",
        "--security-protocol",
        "--ssl-cafile",
        "--ssl-certfile",
        "--ssl-keyfile",
        "--ssl-key-password-file",
        "--sasl-mechanism",
        "--sasl-username",
        "--sasl-password-file",
        "--sasl-oauth-token-endpoint-url",
        "--sasl-oauth-client-id",
        "--sasl-oauth-client-secret-file",
        "--sasl-oauth-scope",
        "--where",
        "--dry-run",
        "--max-redrives",
    ):
        assert flag in out, flag
    assert "--group-instance-id" not in out
    assert "--input-topic" not in out


def test_the_worker_help_still_lists_its_options_and_points_to_redrive(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    assert "--input-topic" in out
    assert "PACKFLOW_MAX_BATCH_SIZE" in out
    assert "packflow-worker redrive --help" in out


def test_worker_flags_still_reach_the_worker(run_cli):
    code, _, err = run_cli("--input-topic", "in", "--output-topic", "out", "--dlq-topic", "dlq")
    assert code == 2
    assert err.startswith("packflow-worker: error: invalid settings: give --backend")


def test_a_where_flag_does_not_parse_as_a_worker_option(run_cli):
    code, _, err = run_cli("--where", "x=1")
    assert code == 2
    assert err.startswith("packflow-worker: error: ")
