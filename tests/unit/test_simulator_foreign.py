"""The simulation as a foreign product's export: roles, names, offsets, duplicates, settings."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml
from typer.testing import CliRunner

from usage_features.domain.value_objects import EventType
from usage_features.domain.vocabulary import (
    Role,
    VocabularyError,
    normalise_event_name,
    parse_vocabulary,
)
from usage_features.simulation import SimulationConfig, simulate
from usage_features.simulation.foreign import (
    FOREIGN_SCHEMA,
    OFFSETS,
    as_foreign_export,
    crm_vocabulary,
    foreign_accounts,
    foreign_settings_yaml,
    vocabulary_from_spec,
)

SMALL = SimulationConfig(customers=200, days=90, seed=5, start=date(2026, 1, 1))
CRM = crm_vocabulary()


@pytest.fixture(scope="module")
def sim():
    return simulate(SMALL)


@pytest.fixture(scope="module")
def export(sim):
    """The export without duplicates: row i is the simulator's event i."""
    return as_foreign_export(sim.events, CRM, seed=5, duplicate_fraction=0.0)


def vocab(types: dict, **kw):
    return parse_vocabulary(types, **kw)


def declared_names(table: pa.Table) -> list[str]:
    return [normalise_event_name(n) for n in table.column("event_type_name").to_pylist()]


def simulated_count(sim, *types: EventType) -> int:
    return sum(Counter(sim.events.column("event_type").to_pylist())[t.value] for t in types)


def role_counts(table: pa.Table, vocabulary) -> Counter:
    role = {t.name: t.role for t in vocabulary.types}
    return Counter(role[n] for n in declared_names(table))


class TestColumns:
    def test_the_export_has_account_time_and_name_only(self, export):
        assert export.schema == FOREIGN_SCHEMA
        assert export.column_names == ["account_id", "event_time", "event_type_name"]
        assert "event_id" not in export.column_names
        assert not any("score" in c for c in export.column_names)

    def test_account_ids_are_the_customer_numbers(self, sim, export):
        expected = [int(c.removeprefix("cust-")) for c in sim.events["customer_id"].to_pylist()]
        assert export.column("account_id").to_pylist() == expected


class TestDeterminism:
    def test_the_same_seed_gives_the_same_table(self, sim):
        assert as_foreign_export(sim.events, CRM, seed=1).equals(
            as_foreign_export(sim.events, CRM, seed=1))

    def test_another_seed_gives_another_table(self, sim):
        assert not as_foreign_export(sim.events, CRM, seed=1).equals(
            as_foreign_export(sim.events, CRM, seed=2))


class TestRoles:
    def test_each_role_gets_exactly_its_simulated_events(self, sim, export):
        counts = role_counts(export, CRM)
        assert counts[Role.CORE] == simulated_count(sim, EventType.MONITORING_RUN)
        assert counts[Role.LOCK_IN] == simulated_count(sim, EventType.INTEGRATION_CONNECT)
        assert counts[Role.BASIC] == simulated_count(sim, EventType.LOGIN,
                                                     EventType.DASHBOARD_VIEW)
        assert counts[None] == simulated_count(
            sim, EventType.ALERT_CONFIGURED, EventType.REPORT_EXPORT, EventType.USER_INVITED,
            EventType.API_CALL)

    def test_types_sharing_a_role_all_get_events(self, export):
        counts = Counter(declared_names(export))
        assert all(counts[t.name] > 0 for t in CRM.types)

    def test_each_account_has_its_own_mix_of_role_less_types(self, export):
        role_less = {t.name for t in CRM.types if t.role is None}
        per_account: dict[int, Counter] = {}
        for account, name in zip(export["account_id"].to_pylist(), declared_names(export)):
            if name in role_less:
                per_account.setdefault(account, Counter())[name] += 1
        favourites = {c.most_common(1)[0][0] for c in per_account.values()
                      if sum(c.values()) >= 100}
        assert len(favourites) >= 4

    def test_a_role_without_a_type_falls_back_to_the_role_less_types(self, sim):
        vocabulary = vocab({"login": {"role": "basic"}, "search": {}, "add_contact": {}})
        counts = role_counts(as_foreign_export(sim.events, vocabulary, 0, 0.0), vocabulary)
        assert counts[Role.BASIC] == simulated_count(sim, EventType.LOGIN,
                                                     EventType.DASHBOARD_VIEW)
        assert counts[None] == sim.events.num_rows - counts[Role.BASIC]

    def test_without_role_less_types_every_declared_type_takes_the_rest(self, sim):
        vocabulary = vocab({"run": {"role": "core"}, "open": {"role": "basic"}})
        table = as_foreign_export(sim.events, vocabulary, 0, 0.0)
        counts = Counter(declared_names(table))
        assert sum(counts.values()) == sim.events.num_rows
        assert counts["run"] > simulated_count(sim, EventType.MONITORING_RUN)
        assert counts["open"] > simulated_count(sim, EventType.LOGIN, EventType.DASHBOARD_VIEW)

    def test_a_single_type_takes_every_event(self, sim):
        table = as_foreign_export(sim.events, vocab({"used": {}}), 0, 0.0)
        assert set(declared_names(table)) == {"used"}


class TestNames:
    def test_every_name_normalises_to_a_declared_one(self, export):
        assert set(declared_names(export)) <= set(CRM.names)

    def test_a_small_share_of_names_is_spelled_otherwise(self, export):
        names = export.column("event_type_name").to_pylist()
        odd = [n for n in names if n not in CRM.names]
        assert 0.01 < len(odd) / len(names) < 0.03
        assert any(n != n.strip() for n in odd) and any(n.strip() != n.lower() for n in odd)

    def test_name_noise_zero_writes_the_declared_names_only(self, sim):
        table = as_foreign_export(sim.events, CRM, 0, 0.0, name_noise=0.0)
        assert set(table.column("event_type_name").to_pylist()) <= set(CRM.names)


class TestTimes:
    def test_every_time_is_the_simulator_s_instant(self, sim, export):
        parsed = [datetime.fromisoformat(t) for t in export["event_time"].to_pylist()]
        assert parsed == sim.events["timestamp"].to_pylist()

    def test_times_carry_varied_offsets_one_per_account(self, export):
        suffix = pc.utf8_slice_codeunits(export["event_time"], 26)
        assert set(suffix.to_pylist()) >= {"Z", "+05:30", "-08:00"}
        assert set(suffix.to_pylist()) <= {s.decode() for _, s in OFFSETS}
        per_account = pa.table({"a": export["account_id"], "s": suffix}).group_by("a").aggregate(
            [("s", "count_distinct")])
        assert set(per_account["s_count_distinct"].to_pylist()) == {1}


class TestDuplicates:
    @staticmethod
    def extra_copies(table: pa.Table) -> int:
        counts = table.group_by(table.column_names).aggregate([([], "count_all")])
        return sum(n - 1 for n in counts["count_all"].to_pylist())

    def test_no_identical_rows_without_duplicates(self, export):
        assert self.extra_copies(export) == 0

    @pytest.mark.parametrize("fraction", [0.01, 0.05])
    def test_the_stated_fraction_of_rows_is_copied_verbatim(self, sim, fraction):
        table = as_foreign_export(sim.events, CRM, seed=3, duplicate_fraction=fraction)
        expected = round(fraction * sim.events.num_rows)
        assert table.num_rows == sim.events.num_rows + expected
        assert self.extra_copies(table) == expected

    def test_a_copy_follows_its_original(self, sim):
        table = as_foreign_export(sim.events, CRM, seed=3, duplicate_fraction=0.05)
        rows = table.to_pylist()
        assert sum(a == b for a, b in itertools.pairwise(rows)) == self.extra_copies(table)

    def test_a_fraction_outside_0_1_is_refused(self, sim):
        with pytest.raises(ValueError, match="duplicate_fraction"):
            as_foreign_export(sim.events, CRM, 0, duplicate_fraction=1.5)


class TestCrmVocabulary:
    def test_the_default_has_25_types_with_every_role(self):
        assert len(CRM.types) == 25
        assert {t.name for t in CRM.of_role(Role.CORE)} == {"create_opportunity", "log_call"}
        assert {t.name for t in CRM.of_role(Role.LOCK_IN)} == {"connect_mailbox", "sync_calendar"}
        assert {t.name for t in CRM.of_role(Role.BASIC)} == {"login", "view_dashboard"}

    def test_fifty_types_go_on_with_custom_actions_and_export(self, sim):
        vocabulary = crm_vocabulary(50)
        assert len(set(vocabulary.names)) == 50
        assert vocabulary.names[-1] == "custom_action_50"
        table = as_foreign_export(sim.events, vocabulary, 0, 0.0)
        names = set(declared_names(table))
        assert names <= set(vocabulary.names) and len(names) == 50
        counts = role_counts(table, vocabulary)
        assert counts[Role.CORE] == simulated_count(sim, EventType.MONITORING_RUN)

    def test_spec_names_the_built_in_or_a_file(self, tmp_path):
        assert vocabulary_from_spec("crm") == CRM
        assert len(vocabulary_from_spec("crm:40").types) == 40
        path = tmp_path / "usage_features.yaml"
        path.write_text(foreign_settings_yaml(crm_vocabulary(7)))
        assert vocabulary_from_spec(str(path)) == crm_vocabulary(7)
        path.write_text("events:\n  columns: {a: customer_id}\n")
        with pytest.raises(VocabularyError, match=r"events.types"):
            vocabulary_from_spec(str(path))


class TestSettings:
    def test_the_yaml_declares_the_export_s_columns_and_vocabulary(self):
        raw = yaml.safe_load(foreign_settings_yaml(CRM))
        assert raw["events"]["columns"] == {"account_id": "customer_id",
                                            "event_time": "timestamp",
                                            "event_type_name": "event_type"}
        events = raw["events"]
        parsed = parse_vocabulary(events["types"], events["unlisted"], events["adoption"])
        assert parsed == CRM and events["adoption"] == "breadth"
        assert raw["customers"]["columns"] == {"account_id": "customer_id",
                                               "created_at": "signup_at"}

    def test_names_yaml_would_misread_are_quoted(self):
        vocabulary = vocab({"yes": {}, "null": {}, "view page": {"role": "core"}, "a:b": {}},
                           unlisted="other")
        raw = yaml.safe_load(foreign_settings_yaml(vocabulary))["events"]
        assert parse_vocabulary(raw["types"], raw["unlisted"], raw["adoption"]) == vocabulary


class TestAccounts:
    def test_accounts_are_the_customers_with_integer_ids_and_utc_times(self, sim):
        accounts = foreign_accounts(sim.customers)
        customers = sim.customers.to_pylist()
        assert accounts.column_names == ["account_id", "created_at", "churned_at", "plan"]
        for account, customer in zip(accounts.to_pylist(), customers):
            assert account["account_id"] == int(customer["customer_id"][5:])
            assert account["created_at"].endswith("Z")
            assert datetime.fromisoformat(account["created_at"]) == customer["signup_at"]
            churned = account["churned_at"]
            assert (churned and datetime.fromisoformat(churned)) == customer["churned_at"]
            assert account["plan"] == customer["plan"]
        assert accounts["churned_at"].null_count < accounts.num_rows


class TestCommand:
    def test_simulate_with_a_vocabulary_writes_a_ready_foreign_repo(self, tmp_path):
        from usage_features.cli import app

        result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--customers",
                                          "30", "--days", "40", "--vocabulary", "crm:9"])
        assert result.exit_code == 0, result.output
        assert {p.name for p in tmp_path.iterdir()} == {
            "events.csv", "accounts.csv", "customers.parquet", "usage_features.yaml"}
        header = (tmp_path / "events.csv").read_text().splitlines()[0]
        assert header == '"account_id","event_time","event_type_name"'
        assert vocabulary_from_spec(str(tmp_path / "usage_features.yaml")) == crm_vocabulary(9)
        again = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "b"), "--customers",
                                         "30", "--days", "40", "--vocabulary",
                                         str(tmp_path / "usage_features.yaml")])
        assert again.exit_code == 0, again.output
        assert (tmp_path / "b" / "events.csv").read_bytes() == (
            tmp_path / "events.csv").read_bytes()

    def test_a_bad_vocabulary_is_a_usage_error(self, tmp_path):
        from usage_features.cli import app

        result = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--vocabulary",
                                          str(tmp_path / "missing.yaml")])
        assert result.exit_code == 2
        assert not (tmp_path / "events.csv").exists()


def test_the_export_s_numbers_are_seeded_not_global(sim):
    np.random.seed(0)
    first = as_foreign_export(sim.events, CRM, 9)
    np.random.seed(1)
    assert first.equals(as_foreign_export(sim.events, CRM, 9))
