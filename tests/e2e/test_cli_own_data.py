"""A user's own data through the command line: column mapping, stored mapping, exit statuses."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.integration.test_ingest import stored
from usage_features.cli import app
from usage_features.config import RepoPaths

runner = CliRunner()
WAREHOUSE_MAP = ["--map", "occurred_at=timestamp", "--map", "account_id=customer_id",
                 "--map", "event_name=event_type", "--map", "adoption_score=feature_adoption_score",
                 "--map", "id=event_id"]
STORED_MAP = """\
events:
  columns:
    occurred_at: timestamp
    account_id: customer_id
    event_name: event_type
    adoption_score: feature_adoption_score
    id: event_id
customers:
  columns:
    account_id: customer_id
    created_at: signup_at
"""


def warehouse_csv(path, rows=3, bad=0):
    lines = ["id,occurred_at,account_id,event_name,adoption_score,region"]
    for i in range(rows):
        lines.append(f"{uuid.uuid4()},2026-02-0{i + 1}T09:00:00Z,00042,Login,0.4,eu")
    for _ in range(bad):
        lines.append(f"{uuid.uuid4()},2026-02-01T09:00:00Z,00042,teleport,0.4,eu")
    path.write_text("\n".join(lines) + "\n")
    return path


def stored_events(repo) -> pd.DataFrame:
    return stored(RepoPaths(repo))


def ingest(*args):
    return runner.invoke(app, ["ingest", *map(str, args), "--json"])


class TestColumnMapping:
    def test_map_flags_rename_warehouse_columns_and_keep_leading_zeros(self, tmp_path):
        source, repo = warehouse_csv(tmp_path / "export.csv"), tmp_path / "repo"

        result = ingest(source, "--repo", repo, *WAREHOUSE_MAP)

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accepted"] == 3
        assert "ignoring extra column(s): region" in result.stderr
        stored = stored_events(repo)
        assert set(stored.customer_id) == {"00042"} and set(stored.event_type) == {"login"}

    def test_without_a_mapping_the_missing_columns_are_named(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "export.csv"), "--repo", tmp_path / "repo")
        assert result.exit_code == 2
        assert "missing required column(s): customer_id, timestamp, event_type" in result.output
        assert "(the file's other columns: id, occurred_at, account_id" in result.output

    def test_the_stored_mapping_is_used_without_flags(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "usage_features.yaml").write_text(STORED_MAP)

        result = ingest(warehouse_csv(tmp_path / "export.csv"), "--repo", repo)

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accepted"] == 3

    def test_a_flag_overrides_the_stored_mapping_for_its_column(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "usage_features.yaml").write_text(STORED_MAP)
        source = tmp_path / "export.csv"
        warehouse_csv(source)
        source.write_text(source.read_text().replace("occurred_at", "happened_at", 1))

        assert ingest(source, "--repo", repo).exit_code == 2
        result = ingest(source, "--repo", repo, "--map", "happened_at=timestamp")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["accepted"] == 3

    def test_an_unknown_target_column_is_an_error(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv"), "--repo", tmp_path / "repo",
                        "--map", "occurred_at=occurred")
        assert result.exit_code == 2
        assert "unknown target column(s) occurred" in result.output

    def test_two_sources_for_one_target_is_an_error(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv"), "--repo", tmp_path / "repo",
                        "--map", "occurred_at=timestamp", "--map", "id=timestamp")
        assert result.exit_code == 2
        assert "'occurred_at' and 'id' are both mapped to 'timestamp'" in result.output

    def test_a_malformed_flag_is_an_error(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv"), "--repo", tmp_path / "repo",
                        "--map", "occurred_at")
        assert result.exit_code == 2
        assert "expected SRC=DEST" in result.output

    def test_a_broken_settings_file_is_an_error(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "usage_features.yaml").write_text("events:\n  columns:\n    a: nowhere\n")
        result = ingest(warehouse_csv(tmp_path / "e.csv"), "--repo", repo)
        assert result.exit_code == 2
        assert "unknown target column(s) nowhere" in result.output


class TestIngestExitStatus:
    def test_every_row_rejected_exits_1_with_the_summary(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv", rows=0, bad=2), "--repo",
                        tmp_path / "repo", *WAREHOUSE_MAP)
        assert result.exit_code == 1
        summary = json.loads(result.stdout)
        assert (summary["read"], summary["rejected"]) == (2, 2)
        assert set(summary) == {"read", "accepted", "rejected", "duplicates",
                                "rejected_by_reason", "quarantine_files", "unlisted_by_name"}
        assert "every row read (2) was rejected" in result.stderr

    def test_rejections_over_the_allowed_fraction_exit_1_and_keep_the_valid_rows(self, tmp_path):
        repo = tmp_path / "repo"
        result = ingest(warehouse_csv(tmp_path / "e.csv", rows=3, bad=1), "--repo", repo,
                        *WAREHOUSE_MAP, "--max-rejected-fraction", "0.2")
        assert result.exit_code == 1
        assert "1 of 4 rows (25.0%) rejected" in result.stderr
        assert "the 3 valid new row(s) were committed" in result.stderr
        assert len(stored_events(repo)) == 3

    def test_rejections_within_the_allowed_fraction_exit_0(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv", rows=3, bad=1), "--repo",
                        tmp_path / "repo", *WAREHOUSE_MAP, "--max-rejected-fraction", "0.25")
        assert result.exit_code == 0, result.output

    def test_some_rejected_rows_without_a_limit_exit_0(self, tmp_path):
        result = ingest(warehouse_csv(tmp_path / "e.csv", rows=1, bad=3), "--repo",
                        tmp_path / "repo", *WAREHOUSE_MAP)
        assert result.exit_code == 0, result.output

    def test_a_reingested_file_of_duplicates_exits_0(self, tmp_path):
        source, repo = warehouse_csv(tmp_path / "e.csv"), tmp_path / "repo"
        ingest(source, "--repo", repo, *WAREHOUSE_MAP)
        result = ingest(source, "--repo", repo, *WAREHOUSE_MAP)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["duplicates"] == 3

    @pytest.mark.parametrize("fraction", ["-0.1", "1.5"])
    def test_the_fraction_must_be_within_0_and_1(self, tmp_path, fraction):
        result = ingest(warehouse_csv(tmp_path / "e.csv"), "--repo", tmp_path / "repo",
                        *WAREHOUSE_MAP, "--max-rejected-fraction", fraction)
        assert result.exit_code == 2


class TestLoadCustomers:
    def customers_csv(self, path, signup="2026-01-01T00:00:00Z"):
        path.write_text(f"account_id,created_at,churned_at\n00042,{signup},\n"
                        "00043,2026-01-02T00:00:00+01:00,2026-02-01T00:00:00Z\n")
        return path

    def test_a_mapped_file_without_plan_loads(self, tmp_path):
        repo = tmp_path / "repo"
        result = runner.invoke(app, ["load-customers", str(self.customers_csv(tmp_path / "c.csv")),
                                     "--repo", str(repo), "--map", "account_id=customer_id",
                                     "--map", "created_at=signup_at"])
        assert result.exit_code == 0, result.output
        table = pd.read_parquet(RepoPaths(repo).customers)
        assert table.customer_id.tolist() == ["00042", "00043"]
        assert table.plan.isna().all() and pd.isna(table.churned_at.iloc[0])

    def test_the_stored_customers_mapping_is_used(self, tmp_path):
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "usage_features.yaml").write_text(STORED_MAP)
        result = runner.invoke(app, ["load-customers", str(self.customers_csv(tmp_path / "c.csv")),
                                     "--repo", str(repo)])
        assert result.exit_code == 0, result.output

    def test_a_naive_signup_is_refused_naming_the_row(self, tmp_path):
        result = runner.invoke(app, ["load-customers",
                                     str(self.customers_csv(tmp_path / "c.csv", "2026-01-01")),
                                     "--repo", str(tmp_path / "repo"),
                                     "--map", "account_id=customer_id",
                                     "--map", "created_at=signup_at"])
        assert result.exit_code == 2
        assert "row 1 (customer '00042'): naive_signup_at" in result.output


def test_a_truncated_parquet_input_is_a_clear_error_not_a_traceback(tmp_path):
    whole = tmp_path / "whole.parquet"
    pd.DataFrame({"event_id": [str(uuid.uuid4())], "customer_id": ["a"]}).to_parquet(whole)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[:100])
    result = ingest(cut, "--repo", tmp_path / "repo")
    assert result.exit_code == 2
    assert "cut.parquet: not a readable Parquet file" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
