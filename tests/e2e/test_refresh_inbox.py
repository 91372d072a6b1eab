"""The inbox contract of ``refresh``, end to end (docs/operations.md, "The inbox contract").

Before it, a CSV cut inside its last field was ingested whole and its true row later rejected
as conflicting (the cut value kept for good, exit 0); a zero-byte file failed every refresh
(exit 2, and ``--json`` printed nothing); a symbolic link was followed out of the inbox and
its target's first line printed (``:x:`` turned into an emoji); a re-delivery with every value
changed had its rows rejected with exit 0 and no alarm.

One small trained repo for the module; each test delivers its own events (new ids) into its own
inbox, so the tests do not depend on each other's days. ``--max-lag-hours`` is large: the
freshness alarm is not what these tests are about.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import copy_feature_repo, populate
from tests.factories import churn_dataset
from usage_features.adapters.event_log import EventLog
from usage_features.cli import app
from usage_features.config import RepoPaths
from usage_features.service_layer.train import TrainConfig, train

runner = CliRunner()
HEADER = "event_id,customer_id,timestamp,event_type,feature_adoption_score\n"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = copy_feature_repo(tmp_path_factory.mktemp("inbox") / "feature_repo")
    events, customers = churn_dataset(seed=5, customers=30)
    populate(repo, events, customers)
    train(TrainConfig(repo=repo, importance_repeats=1))
    repo_customers = customers[customers.churned_at.isna()].customer_id.tolist()
    repo.joinpath("live.txt").write_text("\n".join(repo_customers))
    return repo


def refresh(repo, inbox, *extra: str):
    return runner.invoke(app, ["refresh", "--repo", str(repo), "--inbox", str(inbox),
                               "--max-lag-hours", "100000", *extra])


def rows(repo, n: int = 5, score: str = "0.635") -> list[str]:
    """``n`` CSV rows of new events (fresh ids) for live customers, the last two days."""
    customers = repo.joinpath("live.txt").read_text().split()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return [f"{uuid.uuid4()},{customers[i % len(customers)]},"
            f"{(start + timedelta(minutes=i)).isoformat()},login,{score}\n" for i in range(n)]


def stored(repo, ids: list[str]) -> dict[str, float]:
    """The event log's adoption score of each of ``ids`` that is stored."""
    found = {}
    for path in EventLog(RepoPaths(repo)).files():
        table = pq.read_table(path, columns=["event_id", "feature_adoption_score"]).to_pandas()
        table = table[table.event_id.isin(ids)]
        found.update(zip(table.event_id, table.feature_adoption_score))
    return found


def ids_of(lines: list[str]) -> list[str]:
    return [line.split(",")[0] for line in lines]


def summary_of(result) -> dict:
    return json.loads(result.stdout)


def test_a_csv_still_being_written_waits_and_its_cut_value_is_never_stored(repo, tmp_path):
    lines = rows(repo)
    path = tmp_path / "day.csv"
    whole = HEADER + "".join(lines)
    path.write_text(whole[:-3])  # cut inside the last field: 0.6 for 0.635
    first = refresh(repo, tmp_path, "--json")
    assert first.exit_code == 0, first.output
    summary = summary_of(first)
    assert summary["files_ingested"] == [] and summary["status"] == "done"
    assert "does not end with a newline" in summary["files_waiting"]["day.csv"]
    assert stored(repo, ids_of(lines)) == {}
    assert not RepoPaths(repo).data.joinpath("inbox.json").exists() or not any(
        e["file"] == "day.csv" for e in json.loads(
            RepoPaths(repo).data.joinpath("inbox.json").read_text()).values())

    path.write_text(whole)  # the exporter finished
    second = refresh(repo, tmp_path, "--json")
    assert second.exit_code == 0, second.output
    summary = summary_of(second)
    assert summary["files_ingested"] == ["day.csv"] and summary["files_waiting"] == {}
    assert summary["events_accepted"] == len(lines) and summary["events_rejected"] == 0
    assert stored(repo, ids_of(lines)) == dict.fromkeys(ids_of(lines), 0.635)


def test_a_file_modified_within_the_settle_time_waits(repo, tmp_path):
    lines = rows(repo, 3)
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "".join(lines))
    waiting = refresh(repo, tmp_path, "--json", "--settle-seconds", "3600")
    assert waiting.exit_code == 0, waiting.output
    assert "settle" in summary_of(waiting)["files_waiting"]["day.csv"]
    assert stored(repo, ids_of(lines)) == {}
    an_hour_ago = datetime.now(UTC).timestamp() - 3700
    os.utime(path, (an_hour_ago, an_hour_ago))
    taken = refresh(repo, tmp_path, "--json", "--settle-seconds", "3600")
    assert summary_of(taken)["files_ingested"] == ["day.csv"], taken.output


def test_an_empty_and_a_truncated_file_are_set_aside_while_the_others_go_on(repo, tmp_path):
    lines = rows(repo)
    (tmp_path / "a-empty.csv").write_bytes(b"")
    frame = pd.read_csv(pd.io.common.StringIO(HEADER + "".join(rows(repo))))
    frame.to_parquet(tmp_path / "whole.parquet", index=False)
    whole = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "whole.parquet").unlink()
    (tmp_path / "b-cut.parquet").write_bytes(whole[: len(whole) - 100])
    (tmp_path / "c-good.csv").write_text(HEADER + "".join(lines))

    result = refresh(repo, tmp_path, "--json")
    assert result.exit_code == 1, result.output  # done, with alarms
    summary = summary_of(result)
    assert summary["status"] == "done with alarms" and summary["exit_status"] == 1
    assert summary["files_ingested"] == ["c-good.csv"]
    assert summary["files_set_aside"]["a-empty.csv"] == "empty (0 bytes)"
    assert "no footer" in summary["files_set_aside"]["b-cut.parquet"]
    assert any("a-empty.csv set aside" in a for a in summary["alarms"])
    assert stored(repo, ids_of(lines)) == dict.fromkeys(ids_of(lines), 0.635)
    manifest = json.loads(RepoPaths(repo).data.joinpath("inbox.json").read_text())
    assert manifest[hashlib.sha256(b"").hexdigest()]["reason"] == "empty (0 bytes)"

    later = rows(repo, 4, score="0.25")
    (tmp_path / "a-empty.csv").write_text(HEADER + "".join(later))  # re-delivered whole
    (tmp_path / "b-cut.parquet").write_bytes(whole)
    again = refresh(repo, tmp_path, "--json")
    assert again.exit_code == 0, again.output
    assert summary_of(again)["files_ingested"] == ["a-empty.csv", "b-cut.parquet"]
    assert stored(repo, ids_of(later)) == dict.fromkeys(ids_of(later), 0.25)


def test_a_symbolic_link_out_of_the_inbox_is_refused_and_its_target_never_read(
        repo, tmp_path, monkeypatch):
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "events.csv").symlink_to(secret)
    lines = rows(repo, 3)
    (inbox / "good.csv").write_text(HEADER + "".join(lines))
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):
        opened.append(os.fspath(path) if not isinstance(path, int) else "")
        return real_os_open(path, *args, **kwargs)

    def spy_open(path, *args, **kwargs):
        opened.append(os.fspath(path) if not isinstance(path, int) else "")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    result = refresh(repo, inbox, "--json")
    monkeypatch.undo()
    assert result.exit_code == 1, result.output
    summary = summary_of(result)
    assert summary["files_ingested"] == ["good.csv"]
    assert summary["files_refused"]["events.csv"].startswith("a symbolic link")
    assert "root:x" not in result.output
    assert not [p for p in opened if "passwd" in p or p.endswith("events.csv")]


def test_a_fifo_in_the_inbox_is_refused_without_blocking(repo, tmp_path):
    os.mkfifo(tmp_path / "events.csv")
    (tmp_path / "good.csv").write_text(HEADER + "".join(rows(repo, 2)))
    results = []
    worker = threading.Thread(target=lambda: results.append(refresh(repo, tmp_path, "--json")),
                              daemon=True)
    worker.start()
    worker.join(300)
    if worker.is_alive():  # it opened the FIFO: release it so that the run can end
        os.close(os.open(tmp_path / "events.csv", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("refresh blocked on a FIFO in the inbox")
    [result] = results
    assert result.exit_code == 1, result.output
    summary = summary_of(result)
    assert "named pipe" in summary["files_refused"]["events.csv"]
    assert summary["files_ingested"] == ["good.csv"]


def test_a_redelivery_with_changed_values_is_an_alarm_and_keeps_the_stored_values(repo,
                                                                                  tmp_path):
    lines = rows(repo, 6)
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "".join(lines))
    assert refresh(repo, tmp_path, "--json").exit_code == 0
    path.write_text(HEADER + "".join(line.replace(",0.635\n", ",0.111\n") for line in lines))
    result = refresh(repo, tmp_path, "--json")
    assert result.exit_code == 1, result.output
    summary = summary_of(result)
    assert summary["files_ingested"] == ["day.csv"]
    assert summary["rejected_by_reason"] == {"conflicting_event_id": len(lines)}
    assert any("conflicting_event_id" in a and "day.csv" in a for a in summary["alarms"])
    assert stored(repo, ids_of(lines)) == dict.fromkeys(ids_of(lines), 0.635)
    assert summary["quarantine_files"]


def test_rejected_rows_are_an_alarm(repo, tmp_path):
    lines = rows(repo, 3)
    bad = lines[0].replace(",login,", ",not-a-type-!,").replace(",0.635", ",7")
    (tmp_path / "day.csv").write_text(HEADER + "".join(lines[1:]) + bad)
    result = refresh(repo, tmp_path, "--json")
    assert result.exit_code == 1, result.output
    summary = summary_of(result)
    assert summary["events_accepted"] == 2 and summary["events_rejected"] == 1
    assert any("1 of 3 row(s) rejected" in a for a in summary["alarms"])


def test_an_unreadable_file_is_set_aside_and_its_text_printed_literally(repo, tmp_path):
    (tmp_path / "passwd.csv").write_text("root:x:0:0:root:/root:/bin/bash [bold]\n")
    result = refresh(repo, tmp_path)
    assert result.exit_code == 1, result.output
    assert "alarm: inbox file passwd.csv set aside: missing required column(s)" in result.output
    assert "root:x:0:0:root:/root:/bin/bash [bold]" in result.output  # no emoji, no markup
    assert "\u274c" not in result.output


class TestStatuses:
    def test_busy_prints_its_json_object_and_exits_3(self, repo, tmp_path):
        with open(RepoPaths(repo).data / ".refresh.lock", "a+") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            result = refresh(repo, tmp_path, "--json")
        assert result.exit_code == 3
        summary = summary_of(result)
        assert summary["status"] == "busy" and summary["exit_status"] == 3
        assert "another refresh" in summary["error"]

    @pytest.mark.parametrize("option", [("--model", "missing.skops"),
                                        ("--config", "absent.yaml")])
    def test_an_error_prints_its_json_object_and_exits_2(self, repo, tmp_path, option):
        result = refresh(repo, tmp_path, "--json", option[0], str(tmp_path / option[1]))
        assert result.exit_code == 2, result.output
        summary = summary_of(result)
        assert summary["status"] == "error" and summary["exit_status"] == 2
        assert option[1] in summary["error"]


def test_ingest_prints_a_files_text_literally(repo, tmp_path):
    """Beside refresh, ``ingest``'s notes quote a file's column names: no emoji, no markup
    (before, ``[/b]`` stopped the command with a markup error)."""
    path = tmp_path / "day.csv"
    path.write_text(HEADER.rstrip("\n") + ",:x: [/b]\n"
                    + "".join(line.rstrip("\n") + ",1\n" for line in rows(repo, 2)))
    result = runner.invoke(app, ["ingest", str(path), "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    assert "ignoring extra column(s): :x: [/b]" in result.output
