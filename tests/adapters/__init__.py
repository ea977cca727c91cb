"""Adapter tests: the shared contract (`contract.py`) and one module per vendor kind."""
