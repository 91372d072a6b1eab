from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from usage_features.config import RepoPaths
from usage_features.ingestion.customers import load_customers, read_customers
from usage_features.ingestion.readers import InputError
from usage_features.ingestion.settings import Limits
from usage_features.schema import CUSTOMER_SCHEMA

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def customers(**overrides):
    frame = pd.DataFrame({
        "customer_id": ["a", "b"],
        "signup_at": ["2026-01-01T00:00:00Z", "2026-01-05T12:00:00+02:00"],
        "churned_at": ["2026-03-01T00:00:00Z", None],
        "plan": ["pro", "free"],
    })
    return frame.assign(**overrides)


def read(tmp_path, frame, suffix=".csv", **kwargs):
    path = tmp_path / f"c{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return read_customers(path, now=NOW, **kwargs)


class TestLoadingCustomers:
    @pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
    def test_a_valid_table_is_typed_in_utc(self, tmp_path, suffix):
        table = read(tmp_path, customers(), suffix)
        assert table.schema == CUSTOMER_SCHEMA
        assert table.column("signup_at")[1].as_py() == pd.Timestamp("2026-01-05T10:00Z")
        assert table.column("churned_at")[1].as_py() is None

    def test_churn_before_signup_is_an_error_naming_the_row_and_customer(self, tmp_path):
        with pytest.raises(InputError, match=r"row 1 \(customer 'a'\): "
                                             r"churned_at_before_signup_at"):
            read(tmp_path, customers(churned_at=["2025-12-01T00:00:00Z", None]))

    def test_duplicates_and_bad_dates_are_all_reported(self, tmp_path):
        frame = customers(customer_id=["a", "a"], signup_at=["yesterday", "2026-01-01T00:00:00Z"])
        with pytest.raises(InputError, match=r"2 invalid row\(s\), nothing loaded") as error:
            read(tmp_path, frame)
        assert "row 1 (customer 'a'): unparseable_signup_at, duplicate_customer_id" in str(
            error.value)
        assert "row 2 (customer 'a'): duplicate_customer_id" in str(error.value)

    def test_a_missing_required_column_is_named(self, tmp_path):
        with pytest.raises(InputError, match=r"missing required column.*signup_at"):
            read(tmp_path, customers().drop(columns="signup_at"))

    def test_loading_replaces_the_repos_table(self, tmp_path):
        path, repo = tmp_path / "c.csv", RepoPaths(tmp_path / "repo")
        customers().to_csv(path, index=False)
        assert load_customers(path, repo, now=NOW) == 2
        customers().iloc[:1].to_csv(path, index=False)
        assert load_customers(path, repo, now=NOW) == 1
        assert pd.read_parquet(repo.customers).customer_id.tolist() == ["a"]

    def test_a_refused_file_keeps_the_previous_table(self, tmp_path):
        path, repo = tmp_path / "c.csv", RepoPaths(tmp_path / "repo")
        customers().to_csv(path, index=False)
        load_customers(path, repo, now=NOW)
        customers(signup_at=["2026-01-01T00:00:00", "2026-01-01T00:00:00Z"]).to_csv(
            path, index=False)
        with pytest.raises(InputError, match="naive_signup_at"):
            load_customers(path, repo, now=NOW)
        assert pd.read_parquet(repo.customers).customer_id.tolist() == ["a", "b"]


class TestOptionalColumns:
    @pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
    def test_plan_and_churned_at_may_be_absent(self, tmp_path, suffix):
        table = read(tmp_path, customers().drop(columns=["plan", "churned_at"]), suffix)
        assert table.column("plan").to_pylist() == [None, None]
        assert table.column("churned_at").to_pylist() == [None, None]
        assert table.schema == CUSTOMER_SCHEMA

    @pytest.mark.parametrize("empty", ["", None, "   "])
    def test_an_empty_churned_at_means_active(self, tmp_path, empty):
        table = read(tmp_path, customers(churned_at=[empty, empty]))
        assert table.column("churned_at").to_pylist() == [None, None]

    @pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
    def test_an_empty_or_null_plan_is_null(self, tmp_path, suffix):
        table = read(tmp_path, customers(plan=["", None]), suffix)
        assert table.column("plan").to_pylist() == [None, None]

    def test_a_null_plan_in_parquet_is_null(self, tmp_path):
        path = tmp_path / "c.parquet"
        pq.write_table(pa.table({
            "customer_id": ["a"], "plan": pa.array([None], pa.string()),
            "signup_at": pa.array([datetime(2026, 1, 1, tzinfo=UTC)],
                                  pa.timestamp("us", tz="UTC")),
            "churned_at": pa.array([None], pa.timestamp("us", tz="UTC"))}), path)
        table = read_customers(path, now=NOW)
        assert table.to_pylist() == [{"customer_id": "a", "plan": None, "churned_at": None,
                                      "signup_at": datetime(2026, 1, 1, tzinfo=UTC)}]


class TestCustomerRules:
    @pytest.mark.parametrize("column", ["signup_at", "churned_at"])
    def test_a_naive_timestamp_is_rejected_with_row_and_reason(self, tmp_path, column):
        frame = customers(**{column: ["2026-01-01T00:00:00Z", "2026-02-01 10:00:00"]})
        with pytest.raises(InputError, match=rf"row 2 \(customer 'b'\): naive_{column}"):
            read(tmp_path, frame)

    def test_a_typed_naive_parquet_timestamp_is_rejected(self, tmp_path):
        frame = customers().assign(signup_at=pd.to_datetime(["2026-01-01", "2026-01-02"]))
        with pytest.raises(InputError, match="naive_signup_at"):
            read(tmp_path, frame, ".parquet")

    def test_a_signup_in_2999_is_in_the_future(self, tmp_path):
        with pytest.raises(InputError, match=r"row 2 \(customer 'b'\): future_signup_at"):
            read(tmp_path, customers(signup_at=["2026-01-01T00:00:00Z",
                                                "2999-01-01T00:00:00Z"]))

    @pytest.mark.parametrize("signup", ["0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z"])
    def test_a_signup_before_1970_is_implausible(self, tmp_path, signup):
        with pytest.raises(InputError, match="implausible_signup_at"):
            read(tmp_path, customers(signup_at=[signup, "2026-01-01T00:00:00Z"]))

    def test_the_plausible_range_follows_the_limits(self, tmp_path):
        limits = Limits(earliest_timestamp=datetime(2026, 1, 2, tzinfo=UTC))
        with pytest.raises(InputError, match=r"row 1 \(customer 'a'\): implausible_signup_at"):
            read(tmp_path, customers(), limits=limits)

    def test_an_empty_signup_is_missing(self, tmp_path):
        with pytest.raises(InputError, match="missing_signup_at"):
            read(tmp_path, customers(signup_at=["", "2026-01-01T00:00:00Z"]))

    def test_ids_are_trimmed_and_keep_leading_zeros(self, tmp_path):
        table = read(tmp_path, customers(customer_id=[" 00042 ", "007"]))
        assert table.column("customer_id").to_pylist() == ["00042", "007"]

    def test_ids_differing_only_by_whitespace_are_duplicates(self, tmp_path):
        with pytest.raises(InputError, match="duplicate_customer_id"):
            read(tmp_path, customers(customer_id=["acme", " acme"]))

    @pytest.mark.parametrize(("bad", "reason"), [("x" * 257, "customer_id_too_long"),
                                             ("ac\u202eme", "invalid_customer_id"),
                                             ("", "empty_customer_id")])
    def test_id_limits_apply(self, tmp_path, bad, reason):
        with pytest.raises(InputError, match=reason):
            read(tmp_path, customers(customer_id=[bad, "b"]))

    def test_a_ragged_row_is_named_not_a_missing_column(self, tmp_path):
        path = tmp_path / "c.csv"
        path.write_text("customer_id,signup_at\na,2026-01-01T00:00:00Z\n"
                        "b,2026-01-01T00:00:00Z,extra\n")
        with pytest.raises(InputError, match=r"row 2 \(customer 'b'\): malformed_row"):
            read_customers(path, now=NOW)

    def test_columns_are_mapped(self, tmp_path):
        frame = customers().rename(columns={"customer_id": "account_id",
                                            "signup_at": "created"})
        table = read(tmp_path, frame, columns={"account_id": "customer_id",
                                               "created": "signup_at"})
        assert table.column("customer_id").to_pylist() == ["a", "b"]

    def test_more_rejected_rows_than_shown_are_counted(self, tmp_path):
        frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(15)],
                              "signup_at": ["2026-01-01 00:00:00"] * 15})
        with pytest.raises(InputError, match=r"(?s)15 invalid row\(s\).*and 5 more row\(s\)"):
            read(tmp_path, frame)
