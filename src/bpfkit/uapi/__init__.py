"""Kernel constants as data (helper table, program/map/attach types)."""
