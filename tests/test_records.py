"""Campaign records (bmcnn_hw.records): each finished point recorded as it arrives, reused by a
re-run on the same inputs, never reused for other inputs."""

from __future__ import annotations

import json

import numpy as np

from bmcnn_hw.records import PointRecords, fingerprint, run_recorded


def _runner(calls: list):
    def run(jobs, on_result):
        results = []
        for k, job in enumerate(jobs):
            calls.append(job)
            results.append({"value": job * 10})
            if on_result:
                on_result(k, results[-1])
        return results
    return run


def test_an_interrupted_campaign_resumes_from_its_records(tmp_path):
    context = fingerprint(np.arange(4, dtype=np.uint8), {"build": "abc"})
    records = PointRecords(tmp_path / "points", context, lambda job: f"job{job}")
    calls: list = []
    assert run_recorded(records, [1, 2, 3], _runner(calls), print) == [{"value": 10}, {"value": 20}, {"value": 30}]
    (tmp_path / "points" / "job2.json").unlink()  # as if interrupted before job 2 was recorded
    messages: list = []
    calls.clear()
    assert run_recorded(records, [1, 2, 3], _runner(calls), messages.append)[1] == {"value": 20}
    assert calls == [2] and "2 of 3 points finished by an earlier run" in messages[0]


def test_records_of_other_inputs_are_not_reused(tmp_path):
    records = PointRecords(tmp_path, fingerprint(np.zeros(3)), lambda job: f"job{job}")
    run_recorded(records, [1], _runner([]), print)
    other = PointRecords(tmp_path, fingerprint(np.ones(3)), lambda job: f"job{job}")  # other images
    calls: list = []
    run_recorded(other, [1], _runner(calls), print)
    assert calls == [1]
    (tmp_path / "job1.json").write_text("{half a record")
    calls.clear()
    run_recorded(other, [1], _runner(calls), print)
    assert calls == [1] and json.loads((tmp_path / "job1.json").read_text())["result"] == {"value": 10}
