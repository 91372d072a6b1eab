"""Training the churn classifier on point-in-time features from Feast."""
