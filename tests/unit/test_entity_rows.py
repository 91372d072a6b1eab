"""Entity rows for batch scoring are read as ingest reads events."""

from usage_features.serving.entities import read_entities


def test_a_customer_id_is_trimmed_as_ingest_stores_it_and_keeps_its_zeros(tmp_path):
    path = tmp_path / "entities.csv"
    path.write_text("customer_id,event_timestamp\n cust-1 ,2026-03-01T10:00:00Z\n"
                    "\u00a000042\t,2026-03-01T10:00:00Z\n")
    rows = read_entities(path)
    assert rows.rows.customer_id.tolist() == ["cust-1", "00042"]
    assert not rows.errors
