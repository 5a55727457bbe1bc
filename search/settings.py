"""The one settings object. Every knob of Vitrine is here, validated at start-up.

Environment variables override defaults with the prefix VITRINE_ and `__` for nesting, e.g.
VITRINE_INDEX_DIR=/srv/index, VITRINE_RANKING__SEMANTIC_WEIGHT=0.6,
VITRINE_INDEX__BACKEND=onnx.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from indexer.config import IndexConfig

DEFAULT_STAGES = [
    "lexical", "semantic", "filter", "fuse", "words", "proximity", "learned", "understood", "feedback", "personalize", "stock",
    "merchandise", "sort", "pins",
]


class RankingSettings(BaseModel):
    # The pipeline, in order. Names come from search.stages.STAGES (checked when the engine
    # assembles it, so settings stay a leaf module that every layer may import).
    stages: list[str] = Field(default_factory=lambda: list(DEFAULT_STAGES))
    # Fusion of lexical and semantic relevance, chosen by measurement (benchmarks/README.md).
    fusion: Literal["convex", "rrf"] = "convex"
    semantic_weight: float = Field(default=0.5, ge=0, le=1)
    # How convex fusion puts BM25 and cosine on one scale over the result set: min-max,
    # z-score through the normal CDF, or rank alone (benchmarks/README.md measures each).
    fusion_normalisation: Literal["minmax", "zscore", "rank"] = "minmax"
    # Convex fusion's weight decided per query (search/stages/fusion_weight.py): a small fitted
    # model reads how the words matched and how the retrievers agree, and sets w for this
    # query; semantic_weight is used when off, with rrf, or without a model file.
    # `fusion_weight_model` None = the model shipped in the package. Off by default: fitted on
    # the shared datasets it does not beat the constant weight out of sample, and fitted on one
    # dataset it loses on another (benchmarks/README.md, "Per-query fusion weight").
    adaptive_fusion: bool = False
    fusion_weight_model: Path | None = None
    rrf_k: int = Field(default=60, ge=1)
    # When at least `relax_below` products contain every query word, each of them gains this
    # much over products that only resemble the query in meaning (0 = pure fusion).
    full_match_bonus: float = Field(default=0.3, ge=0, le=1)
    # Each product gains this much x the share of the query's words it contains (typo, synonym
    # and completion alternatives count), so one missing word costs less than two, whatever
    # the embedding thinks; 0 turns it off. Chosen on three datasets (benchmarks/README.md).
    words_weight: float = Field(default=1.0, ge=0, le=5)
    # How much a query word counts towards that share by the field it is found in (its best
    # field): a word in the title, brand or categories names the product, one found only in
    # the attributes or deep in the description merely mentions it. A word the query
    # understanding recognised as a facet value ("navy", "linen") counts whole in the
    # attributes. A field not listed counts whole. Full matches keep the whole share.
    # Chosen by measurement on three datasets (benchmarks/README.md, "Field-aware word coverage").
    word_field_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "title": 1.0, "brand": 1.0, "categories": 1.0, "attributes": 0.5, "description": 0.25,
        }
    )
    # Convex fusion's semantic weight at least this when no product contains every query word
    # and none names any of them (title, brand, categories, a recognised facet value): the
    # words are only mentioned in descriptions or attributes ("something warm for winter
    # walks"), so meaning decides. 0 turns the rule off (semantic_weight applies).
    unnamed_semantic_weight: float = Field(default=1.0, ge=0, le=1)
    # Products containing every query word gain up to this much when the title says adjacent
    # query words side by side ("coffee cup" vs "12-Cup Coffee Maker"); 0 turns it off.
    proximity_weight: float = Field(default=0.2, ge=0, le=1)
    # Learned fusion (search/stages/learned.py): a LambdaMART model re-orders the best
    # `learned_top` products of the fusion above per query; off, or without a model file,
    # convex fusion decides alone. `learned_model` None = the model shipped in the package.
    # Off by default: cross-validated it gains on every dataset, but trained without
    # CrowdFlower (the only human-judged set) it loses 0.008 nDCG@10 there to convex fusion
    # (benchmarks/README.md), so on an unseen catalog it is not yet known to be safe.
    learned_fusion: bool = False
    learned_model: Path | None = None
    learned_top: int = Field(default=100, ge=2, le=1000)
    # Pseudo-relevance feedback on the query embedding (search/stages/feedback.py): the
    # semantic part of convex fusion is computed again with the query vector moved towards the
    # mean vector of the `feedback_docs` best products so far, by `feedback_weight` (Rocchio's
    # beta; 0 turns it off). Hybrid mode with convex fusion only; no extra model call. 2 and 3:
    # the best mean gain over CrowdFlower, fashion and the sample shop, and the choice made
    # without each of fashion and the sample shop (benchmarks/README.md, "Pseudo-relevance feedback").
    feedback_weight: float = Field(default=2.0, ge=0, le=10)
    feedback_docs: int = Field(default=3, ge=1, le=100)
    # Products with the facet values the query names ("red", "dress", "for her") gain this much
    # x the share of named facets they have; "cheap" lifts cheaper products by up to
    # cheap_weight (search/stages/understood.py). 0 turns either off.
    understood_weight: float = Field(default=0.5, ge=0, le=5)
    cheap_weight: float = Field(default=0.3, ge=0, le=5)
    # Candidates each retriever hands to fusion.
    lexical_candidates: int = Field(default=1000, ge=10, le=100_000)
    semantic_candidates: int = Field(default=200, ge=10, le=10_000)
    # Totals, facets, sorting and paging over every matching product (search/stages/exact.py).
    # False restores the capped behaviour of earlier versions, for benchmarks.latency's
    # comparison only: counts and sorting over the ranked pool, filters masking the unfiltered
    # pool (faster on head queries of a large catalog, and wrong there).
    exact_results: bool = True
    # A product that does not contain every query word still matches when its meaning is this
    # close to the query (cosine similarity of the embeddings).
    semantic_match_threshold: float = Field(default=0.5, ge=-1, le=1)
    # The last resort before an empty page: nearest neighbours at least this close. Made-up
    # words reach 0.32 on average against the sample shop (p90 0.38), so a lower bar answers
    # nonsense with random products instead of an honest, reported zero-result page.
    semantic_relaxed_threshold: float = Field(default=0.4, ge=-1, le=1)
    # Products missing a query word still match when their BM25 is at least this share of the
    # best full match's (e.g. "men gloves" for "green gloves for men"): a rare, telling word
    # outweighs a common one. 0 = only full matches and close meanings. Chosen by measurement
    # (benchmarks/README.md): fashion hybrid nDCG@10 0.9544 -> 0.9593, CrowdFlower unchanged.
    partial_match_ratio: float = Field(default=0.7, ge=0, le=1)
    # Below this many full matches, products matching some of the words are added (relaxation).
    relax_below: int = Field(default=10, ge=0)
    # BM25 field boosts: a word in the title says more than one deep in the description.
    field_boosts: dict[str, float] = Field(
        default_factory=lambda: {
            "title": 3.0, "brand": 2.0, "categories": 2.0, "attributes": 1.5, "description": 1.0,
        }
    )
    # Typo tolerance: words at least this long match terms one edit away; twice as long, two.
    fuzzy_min_length: int = Field(default=5, ge=3)
    fuzzy_score_factor: float = Field(default=0.6, ge=0, le=1)
    # Search-as-you-type: prefixes of at least this many characters complete the last word.
    prefix_min_length: int = Field(default=2, ge=1)
    max_query_terms: int = Field(default=32, ge=1)
    # An approved synonym matches at this weight (the shopper's own word ranks a little higher).
    synonym_weight: float = Field(default=0.9, ge=0, le=1)

    @field_validator("word_field_weights")
    @classmethod
    def _shares(cls, weights: dict[str, float]) -> dict[str, float]:
        if any(not 0 <= w <= 1 for w in weights.values()):
            raise ValueError("word_field_weights are shares of a word: each between 0 and 1")
        return weights

    def word_weight_of(self, field_name: str) -> float:
        """What a query word found in `field_name` counts for (words stage)."""
        return self.word_field_weights.get(field_name, 1.0)


class PersonalizationSettings(BaseModel):
    """How anonymous behaviour becomes visitor affinities, and how much they may move results."""

    # Where profiles live: "database" (with the rest of the state: a SQLite file in the data
    # directory, or PostgreSQL when database_url is set), "sqlite" (always the file), or a
    # redis:// URL shared by several service processes.
    profile_store: str = "database"
    # Re-ranking weight of affinity matches, relative to fused relevance (which spans 0..1).
    # 0 turns the personalize stage off.
    impact: float = Field(default=0.5, ge=0, le=1)
    # Old behaviour fades: an event's weight halves every half-life.
    half_life_days: float = Field(default=7.0, gt=0)
    # The current visit counts this many times more than the decayed history.
    session_weight: float = Field(default=2.0, ge=0)
    # A visit ends after this much inactivity when the shop sends no session_id.
    session_timeout_minutes: float = Field(default=30.0, gt=0)
    # No attribute value's score exceeds this (in event-weight units): one burst of clicks
    # on red things cannot drown everything else the visitor looked at.
    cap: float = Field(default=8.0, gt=0)
    # Below this much evidence an attribute's preferences are trusted proportionally less:
    # confidence = evidence / (evidence + prior).
    prior: float = Field(default=1.0, ge=0)
    event_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 0.5, "click": 1.0, "add_to_cart": 3.0, "purchase": 5.0, "search": 0.0}
    )
    # How much a full preference for a product's value in each attribute adds to its affinity
    # match (capped at 1). Size is the stock stage's business.
    attribute_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "colour": 0.5, "brand": 0.5, "category": 0.25, "material": 0.2, "pattern": 0.2, "gender": 0.25,
            "usage": 0.2, "price_band": 0.2,
        }
    )
    # Product attributes (catalog `attributes` keys) profiled besides brand, category, colour.
    profile_attributes: list[str] = Field(default_factory=lambda: ["material", "pattern", "gender"])
    # A size counts as "the visitor's size" at this share of their strongest size signal.
    size_min_share: float = Field(default=0.3, gt=0, le=1)
    recent_limit: int = Field(default=20, ge=1, le=200)
    # A visitor's affinities are reused this long between searches (search-as-you-type sends
    # one per keystroke). Events ingested by this process take effect at once; by another
    # process (Redis profiles), within this delay.
    profile_cache_seconds: float = Field(default=1.0, ge=0)
    # Behaviour older than this is deleted (events, and profiles not seen since).
    retention_days: int = Field(default=180, ge=1)


class StockSettings(BaseModel):
    # Products with no variant in stock: "sink" below everything in stock, or "hide".
    sold_out: Literal["sink", "hide"] = "sink"
    sold_out_penalty: float = Field(default=10.0, ge=0)
    # Lift of relevant products available in the visitor's size (or with no sizes at all) over
    # relevant ones whose size is sold out: larger than fused relevance plus personalization,
    # so "available in my size" comes first among relevant results.
    size_boost: float = Field(default=2.0, ge=0)


class AnalyticsSettings(BaseModel):
    # Record every search (query, results, segment, latency) for the reports.
    search_log: bool = True
    # The search log writer commits what has queued this often: a kill -9 loses at most this.
    flush_interval_seconds: float = Field(default=0.25, gt=0, le=5)
    # Records waiting for the writer; beyond this they are dropped (and counted), never waited for.
    queue_size: int = Field(default=100_000, ge=100)
    # With shared stores (database_url, Redis profiles): events and search-log rows accepted
    # while a store is down wait in a local file (state_dir/pending.db), at most this many; past
    # it new event batches are refused with 503 and search-log rows dropped (and counted).
    buffer_size: int = Field(default=100_000, ge=100)
    # A click or purchase without a search_id belongs to the visitor's last search this recent.
    attribution_window_minutes: float = Field(default=30.0, gt=0)
    # Abandoned-search webhook (off when unset): one JSON POST per abandoned search of a visitor.
    abandoned_webhook_url: str | None = None
    # Signs each body (X-Vitrine-Signature: sha256=HMAC) so the receiver can trust it.
    webhook_secret: str | None = None
    webhook_max_attempts: int = Field(default=6, ge=1)
    # First retry after this long, doubling each time; then the dead-letter table.
    webhook_retry_seconds: float = Field(default=60.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_check_every_seconds: float = Field(default=60.0, gt=0)


class SynonymSettings(BaseModel):
    # A shopper's word maps to the closest catalog term only if at least this similar.
    semantic_threshold: float = Field(default=0.5, ge=-1, le=1)
    # Optional generative provider: any OpenAI-compatible endpoint (off while llm_url is unset).
    llm_url: str | None = None
    llm_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = Field(default=20.0, gt=0)
    llm_max_queries: int = Field(default=50, ge=1)


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # How often a process looks for catalog changes written by others and for a new index.
    refresh_interval_seconds: float = Field(default=0.25, gt=0)
    # Admin endpoints need this key (`Authorization: Bearer <key>` or X-Admin-Key); it opens
    # every route. Unset together with search_key: development mode (everything open, loudly).
    admin_key: str | None = None
    # When set, the public routes (search, suggest, events, products, similar, recent) need it
    # or the admin key. It ships in storefront JavaScript, so it only opens public routes.
    search_key: str | None = None
    # Storefront widgets call /search and /suggest from the shop's own domain. A JSON list or
    # comma-separated origins; "*" is refused in production.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    # The demo shop pages (/, /shop/...): on for `vitrine demo`, off for a production API.
    demo_shop: bool = False
    # Opens /metrics (besides the admin key) and nothing else: give it to the Prometheus
    # scraper (`authorization: {credentials: ...}` in its scrape config).
    metrics_key: str | None = None
    # Worker processes of `vitrine serve` on this machine (each loads the index and the model).
    workers: int = Field(default=1, ge=1, le=64)
    # Admin page sessions (signed cookie) last this long.
    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


class LimitSettings(BaseModel):
    """What one request may ask for, checked before any work is done, and how often."""

    # Request bodies above this many bytes are refused with 413 before being parsed.
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Requests per second per client (IP) on the public routes, with bursts of `burst`;
    # 0 turns rate limiting off. Each key (search or admin) also gets `per_key_per_second`.
    per_client_per_second: float = Field(default=50.0, ge=0)
    per_key_per_second: float = Field(default=500.0, ge=0)
    burst: int = Field(default=100, ge=1)
    # Admin logins (page form and wrong keys) per client per minute: guessing a key is slow.
    logins_per_minute: float = Field(default=10.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", env_nested_delimiter="__", extra="ignore")

    index_dir: Path = Path("var/index")
    index: IndexConfig = Field(default_factory=IndexConfig)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    personalization: PersonalizationSettings = Field(default_factory=PersonalizationSettings)
    stock: StockSettings = Field(default_factory=StockSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    synonyms: SynonymSettings = Field(default_factory=SynonymSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    # VITRINE_ENV=production refuses to start without an admin key or with CORS left at "*".
    env: Literal["development", "production"] = "development"
    # Behavioural data (events, profiles, search log, synonyms). None: `<index_dir>/state`.
    data_dir: Path | None = None
    # Shared state in PostgreSQL (VITRINE_DATABASE_URL=postgresql://user@host:5432/db): every
    # store (events, profiles, search log, synonyms, merchandising) and the catalog change feed
    # that keeps replicas in step. None: SQLite files in `state_dir` (one machine).
    database_url: str | None = None
    query_cache_size: int = Field(default=10_000, ge=0)
    # At start-up the vectors of this many of the last 30 days' most searched queries (from
    # the search log) are encoded, for at most warm_query_seconds, so the head of the query
    # distribution never waits for the encoder after a restart. 0: none.
    warm_queries: int = Field(default=500, ge=0)
    warm_query_seconds: float = Field(default=15.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"


    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL (leave it unset for SQLite files)")
        return value or None

    @property
    def state_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.index_dir / "state"


@lru_cache
def get_settings() -> Settings:
    return Settings()
