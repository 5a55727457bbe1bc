"""Right to erasure: every trace of one visitor, in every store, made final on disk.

What a visitor leaves behind, and where:
  - their profile (profile store) and every event they sent (event log);
  - their searches (search log), including searches sent with only a session id, found
    through the session ids their searches and events carry;
  - the text of their queries inside synonym evidence and the audit trail's copies of it, when
    nobody else searched the same text (a query others typed too says nothing about them);
  - old page copies: deleted rows are overwritten (SQLite secure_delete) and each database's
    WAL is checkpointed and truncated, so the files on disk no longer hold them.
Access logs never held visitor ids (they name route templates), so there is nothing to erase there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from search.analytics.search_log import SearchLog
    from search.personalization.visitors import Visitors
    from synonyms.synonym_store import SynonymStore

log = structlog.get_logger("vitrine.erasure")


def erase_visitor(visitors: Visitors, search_log: SearchLog, synonyms: SynonymStore | None, visitor_id: str) -> dict[str, int]:
    search_log.flush()  # searches still queued for the writer are erased too
    # Gather the traces first: deleting the events and searches deletes the way to find them.
    search_sessions, searched = search_log.trace_of(visitor_id)
    event_sessions, event_queries = visitors.events.trace_of(visitor_id)
    sessions = search_sessions | event_sessions
    erased = visitors.erase(visitor_id)
    erased["searches"] = search_log.delete_visitor(visitor_id)
    session_searches, session_queries = search_log.delete_sessions(sessions, visitor_id)
    erased["session_searches"] = session_searches
    queries = searched | event_queries | session_queries
    personal = queries - search_log.searched_by_others(queries)
    erased["synonym_evidence"] = synonyms.forget_queries(personal) if synonyms is not None else 0
    search_log.checkpoint()
    visitors.events.checkpoint()
    visitors.profiles.checkpoint()
    # Counts only: the visitor id itself is not written to the log.
    log.info("visitor erased", **erased)
    return erased
