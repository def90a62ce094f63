"""Drivers that run several stages in a row: the engines parity compares (sides.py), the accuracy
ladder (ladder.py), reports that include the ladder (reports.py) and the demo (demo.py).

The stages (train/, export/, hardware_sim/) import only the core (dsatgo_deploy.*);
everything that needs two of them sits here, above them (docs/architecture.md).
"""
