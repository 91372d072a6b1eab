"""``python -m usage_features.cli``; also the file to give ``spark-submit`` (it wants a .py)."""

from usage_features.cli import app

if __name__ == "__main__":
    app(prog_name="usage-features")
