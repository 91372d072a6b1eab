"""The Feast adapter: everything of the project that uses Feast beyond its public names, and
every change to the process's state Feast needs.

- :mod:`.store`: open a repo's ``FeatureStore``, ``feast apply`` in process (inside
  :func:`.store.as_under_the_feast_cli`, which sets ``sys.path``, ``FEAST_FS_YAML_FILE_PATH``
  and Feast's log level as the feast CLI would, and restores them and the working directory);
- :mod:`.online`: the online store read directly, its SQLite tables checked and created
  (Feast's provider, SQLite connection and table names);
- :mod:`.registry`: a copied repo's registries re-pointed at the copy (the registry proto);
- :mod:`.definitions`: the Feast fields and sources of a repo's definitions
  (``churn_features.py``), a ``SparkSource`` under a Spark config.

The offline store Feast loads by the name in ``feature_store*.yaml`` is a Feast plugin of its
own, :mod:`usage_features.adapters.feast_offline_store`. ``tests/unit/test_architecture.py``
holds everything else to Feast's public names (the feature repo) or to no Feast at all.
The package imports nothing itself: each module is imported where it is used.
"""
