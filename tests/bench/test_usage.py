"""Which process limited a phase: the verdict the table prints in "saturated"."""

from __future__ import annotations

import os

import pytest

from bench.usage import Snapshot, snapshot, usage

CORES = os.cpu_count() or 1


def snap(
    wall: float,
    server: float,
    threads: dict[int, float],
    workers: list[float],
    publishers: list[float],
    machine: tuple[int, int],
    engines: dict[int, float] | None = None,
) -> Snapshot:
    return Snapshot(wall, {1: server}, threads, workers, publishers, engines or {}, machine)


def test_cpu_per_message_is_split_by_process() -> None:
    before = snap(0.0, 1.0, {1: 0.5, 2: 0.5}, [0.0, 0.0], [0.0], (0, 0))
    after = snap(10.0, 6.0, {1: 4.5, 2: 1.5}, [1.0, 2.0], [0.5], (1000, 4000))
    used = usage(before, after, 100_000)
    assert used["server_cpu_seconds"] == pytest.approx(5.0)
    assert used["server_core_pct"] == pytest.approx(50.0)
    assert used["server_busiest_thread_core_pct"] == pytest.approx(40.0)
    assert used["device_workers_cpu_us_per_msg"] == pytest.approx(30.0)
    assert used["device_worker_busiest_core_pct"] == pytest.approx(20.0)
    assert used["publisher_cpu_us_per_msg"] == pytest.approx(5.0)
    assert used["machine_busy_pct"] == pytest.approx(25.0)
    assert used["bottleneck"] == "none"


def test_a_saturated_server_thread_names_the_server() -> None:
    before = snap(0.0, 0.0, {1: 0.0, 2: 0.0}, [0.0], [0.0], (0, 0))
    after = snap(10.0, 12.0, {1: 9.5, 2: 2.5}, [9.5], [1.0], (1900, 2000))
    assert usage(before, after, 1000)["bottleneck"] == "server"


def test_a_saturated_generator_with_a_server_below_is_flagged() -> None:
    before = snap(0.0, 0.0, {1: 0.0}, [0.0, 0.0], [0.0, 0.0], (0, 0))
    after = snap(10.0, 5.0, {1: 5.0}, [2.0, 3.0], [9.5, 1.0], (1000, 2000))
    used = usage(before, after, 1000)
    assert used["bottleneck"] == "GENERATOR"
    assert used["publisher_core_pct"] == pytest.approx(95.0)  # the busiest publisher
    assert used["publisher_cpu_seconds"] == pytest.approx(10.5)


def test_all_cores_busy_with_no_process_saturated_is_the_machine() -> None:
    before = snap(0.0, 0.0, {1: 0.0}, [0.0], [0.0], (0, 0))
    after = snap(10.0, 8.0, {1: 8.0}, [8.0], [3.0], (1900, 2000))
    used = usage(before, after, 1000)
    expected = "machine" if CORES == 2 else "machine (shared)"
    assert used["bottleneck"] == expected


def test_a_busy_machine_with_an_idle_benchmark_is_shared() -> None:
    before = snap(0.0, 0.0, {1: 0.0}, [0.0], [0.0], (0, 0))
    after = snap(10.0, 1.0, {1: 1.0}, [1.0], [0.0], (1950, 2000))
    used = usage(before, after, 1000)
    assert used["bottleneck"] == "machine (shared)"
    assert used["outside_benchmark_pct"] > 50


def test_several_node_processes_and_the_engines_are_counted() -> None:
    # Two nodes, one of them started during the phase (counted from 0); a PostgreSQL
    # backend that ended during it is not counted, one born during it is.
    before = Snapshot(0.0, {10: 1.0}, {10: 1.0}, [0.0], [0.0], {50: 2.0, 51: 1.0}, (0, 0))
    after = Snapshot(
        10.0, {10: 3.0, 11: 2.0}, {10: 3.0, 11: 2.0}, [1.0], [0.0], {50: 3.0, 52: 0.5}, (0, 0)
    )
    used = usage(before, after, 1000)
    assert used["server_cpu_seconds"] == pytest.approx(4.0)
    assert used["server_busiest_thread_core_pct"] == pytest.approx(20.0)
    assert used["engines_cpu_seconds"] == pytest.approx(1.5)
    assert used["engines_cpu_us_per_msg"] == pytest.approx(1500.0)


def test_snapshot_reads_real_processes() -> None:
    pid = os.getpid()
    taken = snapshot([pid, 2**22 + 7], [pid], [pid], [pid])  # a PID that is not there
    assert taken.server[pid] >= 0 and pid in taken.server_threads
    assert list(taken.server) == [pid] and list(taken.engines) == [pid]
    busy, total = taken.machine
    assert 0 < busy <= total
