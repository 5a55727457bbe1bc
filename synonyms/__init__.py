"""Synonyms: AI-suggested synonym lists with merchandiser review (not built yet; see the issues)."""
