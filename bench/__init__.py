"""Benchmarks: `python -m bench` compares pushgate with Mosquitto (see compare.py)."""
