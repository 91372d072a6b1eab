"""``python -m usage_features.cli``; also the file to give ``spark-submit`` (it wants a .py)."""

from usage_features.cli import main

if __name__ == "__main__":
    main()
