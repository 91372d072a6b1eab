"""Training the churn classifier on point-in-time features from Feast."""

#: Observation rows ``train`` fits on at most before it samples whole customers (at least
#: this many rows are kept). 10^8 events of 100,000 customers make 2.5 million weekly rows;
#: 1,000,000 of them took 813 s to train on 2 cores, so the default is half that. 10^7
#: events make about 250,000: all kept. (Here, not in :mod:`.train`: the CLI's ``--help``
#: shows it without importing scikit-learn.)
DEFAULT_MAX_ROWS = 500_000
