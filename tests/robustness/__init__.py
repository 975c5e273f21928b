"""The robustness suite: hostile inputs, faults and load, each with a defined outcome (see docs/robustness.md).

This folder is a package so that its conftest.py does not shadow tests/conftest.py (`from conftest import ...`).
"""
