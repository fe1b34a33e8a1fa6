"""The throughput bench's summary: medians over rounds, the issue's ratios and targets, a table.

Rows are the backlog phases plus ``perf_producer`` / ``perf_consumer`` (the ``perf`` phase's
two tools), ``together_worker`` / ``together_quix`` (the ``together`` phase's two),
``together_best_worker`` / ``together_best_pipe`` (the ``together_best`` phase's) and
``ab_worker`` / ``ab_baseline`` (the ``ab`` phase's). Each
row holds the median over rounds of records/s, of the process's CPU seconds per 1,000
messages and of the broker's, and the 1-minute load averages seen.
A ratio of two sequential phases is the ratio of their medians; ``per_round`` beside it
pairs the phases of each round. A ratio of two rows that ran at once (``together``,
``together_best``, ``ab``) is the median of its rounds' pairs: the two rows of a pair met
the same machine in the same window, two medians may come from different rounds (on this
machine a round's CPU per message moves by up to 2x, the same for both rows of a pair), so
the pairs are the measurement; the ratio of the medians is kept beside it
(``ratio_of_medians``).
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

#: (name, numerator row, denominator row, figure, target text, test of the target)
RATIOS: list[tuple[str, str, str, str, str, Any]] = [
    ("worker_over_best", "worker", "best", "records_per_s", ">= 0.9", lambda v: v >= 0.9),
    ("worker_over_quix", "worker", "quix", "records_per_s", ">= 1.0", lambda v: v >= 1.0),
    ("worker_over_forward", "worker", "forward", "records_per_s", "-", None),
    ("worker_over_confluent", "worker", "confluent", "records_per_s", "-", None),
    ("worker_over_bare", "worker", "bare", "records_per_s", "-", None),
    (
        "worker_cpu_over_quix_cpu",
        "worker",
        "quix",
        "process_cpu_s_per_1000",
        "<= 0.667",
        lambda v: v <= 2 / 3,
    ),
    (
        "worker_cpu_over_quix_cpu_together",
        "together_worker",
        "together_quix",
        "process_cpu_s_per_1000",
        "<= 0.667",
        lambda v: v <= 2 / 3,
    ),
    (
        # The worker's messages per CPU second over the best pipe's, both run at once: the
        # side-by-side form of worker_over_best (records/s is shared there, CPU is not).
        "worker_over_best_per_cpu_together",
        "together_best_pipe",
        "together_best_worker",
        "process_cpu_s_per_1000",
        ">= 0.9",
        lambda v: v >= 0.9,
    ),
    (
        "worker_cpu_over_baseline_cpu_ab",
        "ab_worker",
        "ab_baseline",
        "process_cpu_s_per_1000",
        "-",
        None,
    ),
    ("eos_over_alo", "eos", "worker", "records_per_s", ">= 0.5", lambda v: v >= 0.5),
    ("worker_over_perf_consumer", "worker", "perf_consumer", "records_per_s", "-", None),
]
#: The phases fed at a fixed rate (no backlog row; summed up by :func:`latency_summary`).
LATENCY_PHASES = ("latency", "latency_best")
COLUMNS = ("records_per_s", "process_cpu_s_per_1000", "broker_cpu_s_per_1000")


def _rows_run_at_once(result: Any) -> dict[str, Any] | None:
    """The rows of a phase whose contenders ran at once (together, together_best, ab)."""
    rows = result.get("rows") if isinstance(result, dict) else None
    return rows if isinstance(rows, dict) else None


def _rows_of_round(phases: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One round's phase results as table rows (``perf`` split into its two tools)."""
    rows = {}
    for name, result in phases.items():
        if name == "perf":
            for tool in ("producer", "consumer"):
                if isinstance(result.get(tool), dict):
                    rows[f"perf_{tool}"] = {**result[tool], "load_1min": result.get("load_1min")}
        elif (at_once := _rows_run_at_once(result)) is not None:
            for row_name, row in at_once.items():
                rows[row_name] = {**row, "load_1min": result.get("load_1min")}
        elif name not in LATENCY_PHASES and isinstance(result, dict) and "error" not in result:
            rows[name] = result
    return rows


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def summarise(rounds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row: the median of each column over rounds, every round's values, load seen."""
    per_row: dict[str, list[dict[str, Any]]] = {}
    for rnd in rounds:
        for name, row in _rows_of_round(rnd["phases"]).items():
            per_row.setdefault(name, []).append(row)
    summary = {}
    for name, rows in per_row.items():
        entry: dict[str, Any] = {"rounds": len(rows)}
        for column in COLUMNS:
            values = [r.get(column) for r in rows]
            entry[column] = _median(values)
            entry[f"{column}_by_round"] = values
        loads = [x for r in rows for x in (r.get("load_1min") or [])]
        entry["load_1min_range"] = [min(loads), max(loads)] if loads else None
        summary[name] = entry
    return summary


def latency_summary(rounds: list[dict[str, Any]], phase: str = "latency") -> dict[str, Any] | None:
    """Median p50/p99 (ms, 0.1) of the ``phase`` phases (``latency``, ``latency_best``) and
    their rates."""
    runs = [r["phases"][phase] for r in rounds if phase in r["phases"]]
    runs = [r for r in runs if "latency" in r]
    if not runs:
        return None
    p50 = _median([r["latency"].get("p50_ms") for r in runs])
    p99 = _median([r["latency"].get("p99_ms") for r in runs])
    return {
        "rate_per_s": _median([r["achieved_rate_per_s"] for r in runs]),
        "p50_ms": None if p50 is None else round(p50, 1),
        "p99_ms": None if p99 is None else round(p99, 1),
        "p99_ms_by_round": [r["latency"].get("p99_ms") for r in runs],
        "p99_ms_through_worker_by_round": [r["latency_through_worker"].get("p99_ms") for r in runs],
        "p99_ms_to_input_by_round": [r["latency_to_input"].get("p99_ms") for r in runs],
        "broker_gc_pause_ms_by_round": [(r.get("broker_gc") or {}).get("pause_ms") for r in runs],
        "target": "p99 < 50 ms" if phase == "latency" else "-",
        "met": None if p99 is None or phase != "latency" else p99 < 50.0,
    }


def _side_by_side_rows(rounds: list[dict[str, Any]]) -> set[str]:
    """The rows that come from phases run at once."""
    return {
        row
        for rnd in rounds
        for result in rnd["phases"].values()
        for row in _rows_run_at_once(result) or ()
    }


def ratios(summary: dict[str, Any], rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's ratios, with same-round pairs and whether each target is met (``None``
    where a phase is missing); see the module docstring for which statistic each one is."""
    found: dict[str, Any] = {}
    together = _side_by_side_rows(rounds)
    by_round = [_rows_of_round(rnd["phases"]) for rnd in rounds]
    for name, top, bottom, column, target, test in RATIOS:
        a, b = summary.get(top, {}).get(column), summary.get(bottom, {}).get(column)
        if not a or not b:
            continue
        of_medians = round(a / b, 3)
        pairs = []
        for rows in by_round:
            x, y = rows.get(top, {}).get(column), rows.get(bottom, {}).get(column)
            if x and y:
                pairs.append(round(x / y, 3))
        paired = top in together and bottom in together and bool(pairs)
        value = round(statistics.median(pairs), 3) if paired else of_medians
        found[name] = {
            "value": value,
            "statistic": "median of same-window pairs" if paired else "ratio of medians",
            "per_round": pairs,
            "target": target,
            "met": None if test is None else bool(test(value)),
        }
        if paired:
            found[name]["ratio_of_medians"] = of_medians
    return found


def overhead(summary: dict[str, Any], backend: dict[str, Any], batches: list[Any]) -> Any:
    """The worker's CPU per message beyond the backend's own time (us per message)."""
    worker = summary.get("worker", {}).get("process_cpu_s_per_1000")
    if worker is None:
        return None
    worker_us = worker * 1000.0
    median = _median([b.get("backend_us_per_record") for b in batches if b])
    in_events = None if median is None else round(median, 2)
    own = backend.get("cpu_us_per_record")
    return {
        "worker_cpu_us_per_msg": round(worker_us, 2),
        "backend_cpu_us_per_record_in_process": own,
        "overhead_us_per_msg": None if own is None else round(worker_us - own, 2),
        "backend_us_per_record_from_batch_metrics": in_events,
        "overhead_us_per_msg_by_batch_metrics": (
            None if in_events is None else round(worker_us - in_events, 2)
        ),
    }


def _cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(result: dict[str, Any]) -> None:
    """The summary table, ratios and targets on stderr."""
    out = sys.stderr
    print(f"\nworkload {result['workload']}, {result['records']:,} records", file=out)
    head = f"{'phase':<22}{'rec/s':>10}  {'by round':<22}{'CPU s/1k':>10}{'broker s/1k':>13}"
    print(head + "  load 1-min", file=out)
    for name, row in result["summary"].items():
        rounds = " ".join(_cell(v) for v in row["records_per_s_by_round"])
        load = row["load_1min_range"]
        print(
            f"{name:<22}{_cell(row['records_per_s']):>10}  {rounds:<22}"
            f"{_cell(row['process_cpu_s_per_1000'], 4):>10}"
            f"{_cell(row['broker_cpu_s_per_1000'], 4):>13}"
            f"  {'-' if not load else f'{load[0]:.2f}-{load[1]:.2f}'}",
            file=out,
        )
    for key, who in (("latency", "worker"), ("latency_best", "best pipe")):
        lat = result.get(key)
        if not lat:
            continue
        met = lat["met"]
        verdict = "" if met is None else f" (target < 50 ms: {'met' if met else 'NOT met'})"
        print(
            f"latency ({who}) at {_cell(lat['rate_per_s'])}/s: p50 {lat['p50_ms']} ms, "
            f"p99 {lat['p99_ms']} ms{verdict}",
            file=out,
        )
        print(
            f"  p99 by round {lat['p99_ms_by_round']}; of it, to the input "
            f"{lat['p99_ms_to_input_by_round']} and through the {who} "
            f"{lat['p99_ms_through_worker_by_round']}; broker GC pauses (ms) "
            f"{lat['broker_gc_pause_ms_by_round']}",
            file=out,
        )
    for name, ratio in result["ratios"].items():
        verdict = "" if ratio["met"] is None else ("  met" if ratio["met"] else "  NOT met")
        paired = "ratio_of_medians" in ratio
        how = f" (median of pairs; of medians {ratio['ratio_of_medians']:.3f})" if paired else ""
        print(
            f"{name:<34}{ratio['value']:>7.3f}  rounds {ratio['per_round']}{how}"
            f"  target {ratio['target']}{verdict}",
            file=out,
        )
    if result.get("overhead"):
        o = result["overhead"]
        print(
            f"worker CPU {o['worker_cpu_us_per_msg']} us/msg - backend "
            f"{o['backend_cpu_us_per_record_in_process']} us/record = overhead "
            f"{o['overhead_us_per_msg']} us/msg (with the backend's time from batch_metrics, "
            f"wall time in the executor thread: {o['overhead_us_per_msg_by_batch_metrics']})",
            file=out,
        )
