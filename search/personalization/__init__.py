"""Personalization: behaviour events, visitor profiles and segments (the ranking stages that
use them are search.stages.personalize and search.stages.stock)."""
