"""The composition root: builds the store, broker, services and schema, and the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import strawberry
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..adapters.keyphrases import YakeKeyphrases, yake_installed
from ..adapters.offload import ProcessOffload, ThreadOffload
from ..adapters.rendering.renderer import OffloadedRenderer
from ..adapters.worker_pool import WorkerPool
from ..auth.tokens import TokenVerifier
from ..domain import languages
from ..domain.access import SessionAccess
from ..domain.audit import AuditService
from ..domain.chat_apps import ChatAppRegistry
from ..domain.clock import Clock, SystemClock
from ..domain.collaborators import SessionCollaborators
from ..domain.conversation import ConversationService
from ..domain.erasure import ErasureService
from ..domain.errors import DomainError
from ..domain.export import ExportLimits, ExportService
from ..domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from ..domain.live import LiveAccess
from ..domain.models import Principal
from ..domain.ports import Offload, Store
from ..domain.redaction import redact_details
from ..domain.retention import RetentionService
from ..domain.search import SearchService
from ..domain.sessions import SessionService
from ..domain.sharing import SharingService
from ..domain.templates import TemplateService
from ..domain.title_service import TitlePolicy, TitleService
from ..domain.titles import (
    KeyphraseTitleGenerator,
    KeyphraseTitler,
    OpeningWordsTitleGenerator,
    TitleGenerator,
)
from ..domain.validation import Limits
from ..realtime.hub import Hub
from ..realtime.memory import InProcessBroker
from ..realtime.notifications import Router
from ..realtime.protocol import ChannelBroker
from ..resolvers.audit import AuditQueries
from ..resolvers.context import Context, Services
from ..resolvers.erasure import ErasureMutations
from ..resolvers.export import ExportMutations
from ..resolvers.organise import OrganiseMutations, OrganiseQueries
from ..resolvers.retention import RetentionMutations
from ..resolvers.search import SearchQueries
from ..resolvers.sessions import SessionMutations, SessionQueries
from ..resolvers.sharing import SharingMutations, SharingQueries
from ..resolvers.subscriptions import SessionSubscriptions
from ..resolvers.templates import TemplateMutations, TemplateQueries
from ..resolvers.turns import TurnMutations
from ..schema.build import build_schema
from ..storage.sqlite.store import SqliteStore
from .chat_apps import load_chat_apps
from .error_codes import ErrorCodes, coded
from .errors import SettingsError
from .execution import Seam, seam_config
from .execution.private import graphql_schema
from .graphql_http import GraphQLHTTP
from .logging import configure_logging
from .metrics import metrics_endpoint
from .rate_limits import PrincipalRateLimit
from .readiness import Readiness
from .settings import Settings, load_settings, token_config
from .startup import StartupFailures
from .timing import ServerTiming
from .title_llm import ChatCompletionsTitleGenerator
from .websocket import GraphQLWebSocket

log = structlog.get_logger("sessionhub.server")

GRAPHIQL_DIR = Path(str(resources.files("sessionhub.server") / "static" / "graphiql"))


@dataclass(frozen=True, slots=True)
class Components:
    """What the composition root built: the adapters it chose and the services over them."""

    settings: Settings
    store: Store
    broker: ChannelBroker
    titles: TitleService
    services: Services

    def context(self, principal: Principal | None, request_id: str) -> Context:
        return Context(principal, request_id, self.services)


async def _sweep_expired_shares(sharing: SharingService, interval: float) -> None:
    """Shares end by themselves when they expire; this records each end in the audit trail
    and tells live followers. Access itself never waits for it: the policy checks expiry
    on every request."""
    while True:
        try:
            await sharing.expire_due()
        except DomainError:
            log.exception("sharing.expiry_sweep_failed")
        await asyncio.sleep(interval)


async def _apply_retention(sessions: SessionService) -> None:
    """Each chat app's retentionDays onto its sessions, once at start (in the background:
    batches let requests through meanwhile). Expiry itself is checked on every request."""
    try:
        applied = await sessions.apply_retention()
    except DomainError:
        log.exception("retention.apply_failed")
        return
    log.info("retention.applied", sessions=applied)


async def _remove_expired_sessions(retention: RetentionService, interval: float) -> None:
    """Sessions past their retention, removed for good every `interval` seconds (they are
    invisible from the moment they expire; this reclaims the storage). Failures are logged
    and the next round tries again."""
    while True:
        await asyncio.sleep(interval)
        try:
            report = await retention.run()
        except DomainError:
            log.exception("retention.run_failed")
            continue
        if report.removed:
            log.info(
                "retention.removed",
                sessions=report.removed,
                turns=report.turns,
                chat_apps={a.chat_app_id: a.removed for a in report.chat_apps},
            )


def build_store(settings: Settings, languages: Languages = NO_CONFIGURED_LANGUAGES) -> Store:
    """The store the settings name; turns and titles of the chat apps in `languages` are
    stemmed in theirs."""
    if settings.mongo:
        try:
            from ..storage.mongo import MongoStore
        except ImportError as exc:
            raise SettingsError(
                "SESSIONHUB_DATABASE_URL names a MongoDB server, but this installation has no "
                "MongoDB driver: install the `mongo` extra (pip install 'sessionhub[mongo]')."
            ) from exc

        return MongoStore.from_url(
            settings.database_url,
            settings.mongo_database_name,
            redact=redact_details,
            search_mode=settings.mongo_search,
            transactions={"detect": None, "on": True, "off": False}[settings.mongo_transactions],
            create_indexes=settings.mongo_create_indexes,
            languages=languages,
        )
    return SqliteStore(
        settings.sqlite_path,
        readers=settings.sqlite_readers,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        languages=languages,
    )


def build_broker(settings: Settings, store: Store) -> ChannelBroker:
    """In process for one instance; Redis pub/sub when several share the store."""
    router = Router(store)
    if settings.redis_url:
        from ..realtime.redis import RedisBroker

        return RedisBroker(settings.redis_url, router)
    return InProcessBroker(router)


def build_title_offload(settings: Settings) -> Offload:
    """Where the CPU work of titles runs: the offline generator and the topic checks."""
    return ProcessOffload() if settings.title_worker_process else ThreadOffload()


def build_title_generator(settings: Settings, offload: Offload) -> TitleGenerator:
    """Offline keyphrase titles (the opening words without the `titles` extra); an
    OpenAI-compatible model first when one is configured."""
    offline: TitleGenerator = (
        KeyphraseTitleGenerator(KeyphraseTitler(YakeKeyphrases()), offload)
        if yake_installed()
        else OpeningWordsTitleGenerator()
    )
    if settings.title_llm_url is None or settings.title_llm_model is None:
        return offline
    key = settings.title_llm_api_key
    return ChatCompletionsTitleGenerator(
        settings.title_llm_url,
        settings.title_llm_model,
        key.get_secret_value() if key is not None else None,
        settings.title_llm_timeout_seconds,
        fallback=offline,
    )


def build_export_service(
    settings: Settings, store: Store, access: SessionAccess, clock: Clock
) -> ExportService:
    """Exports rendered in a pool of worker processes, within the settings' budgets."""
    limits = ExportLimits(
        max_turns=settings.export_max_turns,
        max_chars=settings.export_max_chars,
        max_pdf_chars=settings.export_max_pdf_chars,
        max_bytes=settings.export_max_bytes,
        max_in_progress=settings.export_workers + settings.export_queue_size,
        max_in_progress_per_principal=settings.export_max_in_progress_per_principal,
    )
    pool = WorkerPool(settings.export_workers, settings.export_time_budget_seconds)
    return ExportService(store, access, clock, OffloadedRenderer(pool), limits)


def build_api_schema() -> strawberry.Schema:
    """The schema of every resolver area; `sessionhub schema` prints its SDL."""
    return build_schema(
        queries=[
            SessionQueries,
            TemplateQueries,
            SearchQueries,
            SharingQueries,
            AuditQueries,
            OrganiseQueries,
        ],
        mutations=[
            SessionMutations,
            TurnMutations,
            SharingMutations,
            ExportMutations,
            OrganiseMutations,
            RetentionMutations,
            ErasureMutations,
            TemplateMutations,
        ],
        subscriptions=[SessionSubscriptions],
        # The server runs operations through the execution seam, not Schema.execute; the
        # codes are for anyone who calls the schema directly.
        extensions=[ErrorCodes],
    )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_json)
    if (weak_secret := settings.jwt_secret_weakness) is not None:
        log.warning(
            "settings.weak_jwt_secret", setting="SESSIONHUB_JWT_SECRET", problem=weak_secret
        )
    clock = clock or SystemClock()
    chat_apps = ChatAppRegistry(load_chat_apps(settings.chat_apps_file))
    verifier = TokenVerifier(token_config(settings))
    store = build_store(settings, chat_apps.languages())
    broker = build_broker(settings, store)
    limits = Limits(
        max_content_chars=settings.max_content_chars, max_title_chars=settings.max_title_chars
    )
    title_offload = build_title_offload(settings)
    titles = TitleService(
        store,
        chat_apps,
        broker,
        clock,
        build_title_generator(settings, title_offload),
        title_offload,
        TitlePolicy(
            first_turns=settings.title_first_turns,
            shift_every=settings.title_shift_every_turns,
            shift_threshold=settings.title_shift_threshold,
            queue_size=settings.title_queue_size,
            workers=settings.title_workers,
        ),
    )
    collaborators = SessionCollaborators.wire(store, chat_apps, broker, clock, limits)
    access = collaborators.access
    sessions = SessionService(collaborators)
    conversation = ConversationService(collaborators, titles)
    link_opens = PrincipalRateLimit(
        settings.link_open_rate, "share links opened", "link-open", settings.redis_url
    )
    sharing = SharingService(collaborators, link_opens)
    retention_service = RetentionService(store, clock)
    hub = Hub(
        store, LiveAccess(access), broker, clock, queue_limit=settings.subscription_queue_limit
    )
    services = Services(
        access=access,
        sessions=sessions,
        conversation=conversation,
        sharing=sharing,
        audit=AuditService(store),
        exports=build_export_service(settings, store, access, clock),
        search=SearchService(store, access, clock),
        templates=TemplateService(store, chat_apps, clock, limits),
        clock=clock,
        retention=retention_service,
        erasure=ErasureService(store, broker, clock, limits, titles=titles),
        realtime=hub,
    )
    components = Components(settings, store, broker, titles, services)
    schema = build_api_schema()
    seam = Seam(schema, seam_config(settings, graphql_schema(schema), chat_apps, limits))
    graphiql_page = (
        (lambda: FileResponse(GRAPHIQL_DIR / "index.html", media_type="text/html"))
        if settings.graphiql
        else None
    )
    endpoint = GraphQLHTTP(
        seam,
        verifier,
        components.context,
        graphiql_page,
        max_body_bytes=settings.max_body_bytes,
    )
    websocket = GraphQLWebSocket(
        seam,
        hub,
        verifier.principal_from_header,
        components.context,
        coded,
        init_timeout=settings.ws_init_timeout_seconds,
        keepalive=settings.ws_keepalive_seconds,
        max_connections_per_principal=settings.ws_max_connections_per_principal,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        await broker.start()
        log.info(
            "server.started",
            version=__version__,
            database=settings.database_url_for_logs,
            chat_apps=[a.id for a in chat_apps.all()],
            graphiql=settings.graphiql,
        )
        sweeper = asyncio.create_task(
            _sweep_expired_shares(sharing, settings.share_expiry_sweep_seconds)
        )
        retention = asyncio.create_task(_apply_retention(sessions))
        # The language detector's model takes half a second to load: not on a request.
        languages_ready = asyncio.create_task(asyncio.to_thread(languages.prepare))
        background = [sweeper, retention, languages_ready]
        if settings.retention_interval_seconds > 0:
            background.append(
                asyncio.create_task(
                    _remove_expired_sessions(retention_service, settings.retention_interval_seconds)
                )
            )
        titles.start()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await titles.stop()
            await services.exports.aclose()
            await hub.close()
            await link_opens.close()
            await broker.close()
            await readiness.close()
            await store.close()

    readiness = Readiness(store, broker)

    async def healthz(request: Request) -> Response:
        # Liveness: the process answers. No store I/O: a store that cannot read or write
        # is readiness's to report (/readyz); restarting the process would not cure it.
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "store": "mongodb" if settings.mongo else "sqlite",
            }
        )

    routes = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", websocket.handle),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readiness.endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint(hub.stats, seam.fallbacks), methods=["GET"]),
    ]
    if settings.graphiql:
        routes.append(Mount("/graphiql-assets", StaticFiles(directory=GRAPHIQL_DIR)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(StartupFailures), Middleware(ServerTiming)],
    )
    app.state.components = components
    app.state.schema = schema
    app.state.seam = seam
    return app
