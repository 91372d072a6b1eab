from usage_features.cli import app

app(prog_name="usage-features")
