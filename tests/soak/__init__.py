"""The at-least-once soak test (issue 4): ``python tests/soak/soak.py --help``."""
