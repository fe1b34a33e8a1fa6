"""--kafka-option: keys checked against aiokafka's clients, values typed, sides sorted."""

from __future__ import annotations

import pytest

from worker.kafka_options import parse_kafka_options


def test_a_dotted_kafka_name_and_an_aiokafka_name_are_the_same_option():
    dotted = parse_kafka_options({"request.timeout.ms": "5000"})
    named = parse_kafka_options({"request_timeout_ms": 5000})
    assert dotted == named
    assert dotted.consumer == dotted.producer == dotted.admin == {"request_timeout_ms": 5000}


def test_a_side_prefix_sets_one_client_only():
    options = parse_kafka_options(
        {"consumer.metadata.max.age.ms": "1024", "producer.retry.backoff.ms": "50"}
    )
    assert options.consumer == {"metadata_max_age_ms": 1024}
    assert options.producer == {"retry_backoff_ms": 50}
    assert options.admin == {}


def test_an_option_without_a_side_goes_to_the_clients_that_take_it():
    options = parse_kafka_options({"client.rack": "eu-west-1a", "check.crcs": "false"})
    assert options.consumer == {"client_rack": "eu-west-1a", "check_crcs": False}
    assert options.producer == {}
    assert options.admin == {}


def test_values_are_converted_to_the_parameter_type():
    options = parse_kafka_options({"consumer.max.poll.records": "200", "check_crcs": True})
    assert options.consumer == {"max_poll_records": 200, "check_crcs": True}


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "reqest.timeout.ms",
            "unknown Kafka option 'reqest.timeout.ms': not an option of any "
            "Kafka client (closest: request.timeout.ms",
        ),
        ("producer.check.crcs", "not an option of the producer"),
        ("consumer.metadata_max_age", "(closest: consumer.metadata_max_age_ms)"),
    ],
)
def test_an_unknown_key_names_it_and_the_closest_known_ones(key, expected):
    with pytest.raises(ValueError, match="unknown Kafka option") as caught:
        parse_kafka_options({key: "1"})
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("key", "flag"),
    [
        ("acks", "acks from all in-sync replicas"),
        ("enable.auto.commit", "commits offsets itself"),
        ("producer.compression.type", "use --compression-type"),
        ("sasl.plain.password", "use --sasl-password or --sasl-password-file"),
        ("consumer.session.timeout.ms", "use --session-timeout-ms"),
        ("consumer.fetch.min.bytes", "use --fetch-min-bytes"),
        ("fetch.max.wait.ms", "follows --max-batch-wait-ms"),
    ],
)
def test_an_option_the_worker_manages_is_refused_with_the_flag_to_use(key, flag):
    with pytest.raises(ValueError, match="cannot be set here") as caught:
        parse_kafka_options({key: "1"})
    assert flag in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value", "wanted"),
    [
        ("request.timeout.ms", "soon", "expected an integer, got 'soon'"),
        ("check.crcs", "yes", "expected true or false, got 'yes'"),
        ("request.timeout.ms", [1, 2], "expected a single value, got list"),
    ],
)
def test_a_value_of_the_wrong_type_is_one_clear_error(key, value, wanted):
    with pytest.raises(ValueError, match="Kafka option") as caught:
        parse_kafka_options({key: value})
    assert wanted in str(caught.value)
