"""Behaviour and search logs, and the reports computed from them."""
