"""Bike-rental features: station status (per station) and city weather (no entity)."""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

# A docking station.
station = Entity(name="station", join_keys=["station_id"], value_type=ValueType.INT64)

# Status snapshots, one Parquet file per load under data/station_status/; a corrected snapshot
# is re-sent with the same observed_at and a later loaded_at.
station_status_source = FileSource(
    name="station_status_source", path="data/station_status",
    timestamp_field="observed_at", created_timestamp_column="loaded_at",
    field_mapping={"bikes": "bikes_available"})

# A status older than 30 minutes is not trusted.
station_status_fv = FeatureView(
    name="station_status", entities=[station], ttl=timedelta(minutes=30),
    schema=[Field(name="bikes_available", dtype=Int64, description="bikes docked"),
            Field(name="docks_available", dtype=Int64, description="free docks")],
    source=station_status_source)

# City-wide weather: a view without entities.
weather_source = FileSource(name="weather_source", path="data/weather.parquet",
                            timestamp_field="observed_at")

weather_fv = FeatureView(
    name="city_weather", entities=[], ttl=timedelta(hours=2),
    schema=[Field(name="temperature_c", dtype=Float64, description="air temperature")],
    source=weather_source)

# What the demand model reads, in training and online.
rental_model_v1 = FeatureService(name="rental_model_v1",
                                 features=[station_status_fv, weather_fv])
