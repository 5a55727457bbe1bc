"""Synonyms: suggestions mined from failed searches (`generators`), reviewed by a merchandiser
(`synonym_store`: approve, edit, reject, revert, with an audit trail); only approved ones change
results (the service hands them to the engine)."""
