"""Test and benchmark harnesses: not part of the shipped package."""
