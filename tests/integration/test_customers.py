import pandas as pd
import pytest

from usage_features.config import RepoPaths
from usage_features.ingestion.customers import load_customers, read_customers
from usage_features.ingestion.readers import InputError
from usage_features.schema import CUSTOMER_SCHEMA


def customers(**overrides):
    frame = pd.DataFrame({
        "customer_id": ["a", "b"],
        "signup_at": ["2026-01-01T00:00:00Z", "2026-01-05T12:00:00+02:00"],
        "churned_at": ["2026-03-01T00:00:00Z", None],
        "plan": ["pro", "free"],
    })
    return frame.assign(**overrides)


class TestLoadingCustomers:
    @pytest.mark.parametrize("suffix", [".csv", ".parquet"])
    def test_a_valid_table_is_typed_in_utc(self, tmp_path, suffix):
        path = tmp_path / f"c{suffix}"
        getattr(customers(), "to_csv" if suffix == ".csv" else "to_parquet")(path, index=False)
        table = read_customers(path)
        assert table.schema == CUSTOMER_SCHEMA
        assert table.column("signup_at")[1].as_py() == pd.Timestamp("2026-01-05T10:00Z")
        assert table.column("churned_at")[1].as_py() is None

    def test_churn_before_signup_is_an_error_naming_the_customer(self, tmp_path):
        path = tmp_path / "c.csv"
        customers(churned_at=["2025-12-01T00:00:00Z", None]).to_csv(path, index=False)
        with pytest.raises(InputError, match=r"churned_at before signup_at \(e.g. 'a'\)"):
            read_customers(path)

    def test_duplicates_and_bad_dates_are_all_reported(self, tmp_path):
        path = tmp_path / "c.csv"
        customers(customer_id=["a", "a"], signup_at=["yesterday", "2026-01-01T00:00:00Z"]
                  ).to_csv(path, index=False)
        with pytest.raises(InputError, match="unparseable signup_at.*duplicate customer_id"):
            read_customers(path)

    def test_a_missing_column_is_named(self, tmp_path):
        path = tmp_path / "c.csv"
        customers().drop(columns="plan").to_csv(path, index=False)
        with pytest.raises(InputError, match="missing required column.*plan"):
            read_customers(path)

    def test_loading_replaces_the_repos_table(self, tmp_path):
        path, repo = tmp_path / "c.csv", RepoPaths(tmp_path / "repo")
        customers().to_csv(path, index=False)
        assert load_customers(path, repo) == 2
        customers().iloc[:1].to_csv(path, index=False)
        assert load_customers(path, repo) == 1
        assert pd.read_parquet(repo.customers).customer_id.tolist() == ["a"]
