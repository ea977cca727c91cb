"""Vendor adapters: one module per vendor kind, each implementing `syncd.adapter.Adapter`.

A vendor module imports only `adapter`, `model`, `errors`, `http` (and `ical` where
needed), never another vendor, the state store, the planner or the simulators.
"""
