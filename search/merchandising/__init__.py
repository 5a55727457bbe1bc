"""Merchandising: rules, ranking profiles and A/B tests a merchandiser controls.

  - rules.py: what a rule is (conditions, actions), validation and matching.
  - profiles.py: ranking profiles (the blend of relevance with behaviour and business signals)
    and the per-product popularity learned from events.
  - experiments.py: A/B tests: deterministic assignment and the report's statistics.
  - store.py: the SQLite store (versioned, every change audited with who and when).
  - service.py: resolves what applies to one request (the engine's hook) and keeps the
    popularity table fresh.
The ranking stages that apply them are search/stages/merchandise.py.
"""
