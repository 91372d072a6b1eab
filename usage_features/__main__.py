from usage_features.cli import main

main()
