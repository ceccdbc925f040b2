"""The application factory; the lifespan builds every connection and starts the workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial

from fastapi import FastAPI

from app import __version__
from app.auth.dependencies import current_principal
from app.billing.router import router as billing_router
from app.db.engine import (
    asyncpg_dsn,
    make_runtime_engine,
    make_session_factory,
    resolve_database_url,
)
from app.db.listen import Wakeups
from app.db.migrate import upgrade_to_head
from app.db.session import get_session
from app.delivery import repository as delivery_repo
from app.delivery.router import router as delivery_router
from app.errors import (
    declare_server_errors,
    document_problem_validation_errors,
    install_error_handlers,
)
from app.guard import InputGuard
from app.inbound.router import router as inbound_router
from app.inbound.selfcheck import check_callback_mode
from app.jobs import repository as repo
from app.jobs.router import router as jobs_router
from app.logging import configure_logging, held_secrets, register_secrets, url_password
from app.media.context import build_media_context
from app.media.router import router as media_router
from app.media.upload_router import router as upload_router
from app.net import UrlPolicy, make_safe_client, make_upstream_client
from app.ops.admin import router as admin_router
from app.ops.router import router as ops_router
from app.providers.registry import build_registry
from app.request_id import RequestIdMiddleware
from app.runtime import Runtime
from app.settings import Settings
from app.workers import archiver, dispatcher, janitor, poller, submitter
from app.workers.loop import Pool, run_loop

log = logging.getLogger(__name__)

DESCRIPTION = """\
A webhook-driven gateway in front of the **Kling 3.0 Motion Control** video API
(`kling-v3-motion-control`). Create a job with a character image and a motion video; the
gateway validates it, forwards it to the cheapest healthy provider, reconciles the
provider's callbacks with a fallback poller and reports the result.

Authenticate with `Authorization: Bearer <api key>` (`motion-gateway keys create`).
Errors are `application/problem+json` with a stable `code`.
"""


async def build_runtime(settings: Settings) -> Runtime:
    database_url = await asyncio.to_thread(resolve_database_url, settings)
    if settings.auto_migrate:
        await upgrade_to_head(database_url)
    register_secrets(url_password(database_url))
    engine = make_runtime_engine(database_url, settings)
    upstream_client = make_upstream_client(
        timeout_s=settings.provider_submit_timeout_s,
        connect_s=5.0,
        user_agent=f"motion-gateway/{__version__}",
    )
    url_policy = UrlPolicy.for_environment(settings.environment.value, settings.url_allowlist_cidrs)
    webhook_client = make_safe_client(
        url_policy,
        timeout_s=settings.webhook_timeout_s,
        verify=settings.webhook_ca_bundle or True,
        user_agent=f"motion-gateway-webhooks/{__version__}",
    )
    media_client = make_safe_client(
        url_policy,
        timeout_s=settings.media_probe_timeout_s,
        user_agent=f"motion-gateway-media-check/{__version__}",
    )
    runtime = Runtime(
        settings=settings,
        database_url=database_url,
        engine=engine,
        session_factory=make_session_factory(engine),
        registry=build_registry(settings, upstream_client),
        url_policy=url_policy,
        upstream_client=upstream_client,
        webhook_client=webhook_client,
        media_client=media_client,
        media=build_media_context(settings),
    )
    runtime.callback = await check_callback_mode(settings)
    return runtime


def start_workers(rt: Runtime, stop: asyncio.Event) -> tuple[list[asyncio.Task[None]], list[Pool]]:
    """The LISTEN connection and one loop per worker, each with its pool of in-flight work."""
    channels = [
        repo.CHANNEL_SUBMIT,
        repo.CHANNEL_POLL,
        repo.CHANNEL_ARCHIVE,
        delivery_repo.CHANNEL_DELIVER,
    ]
    wakeups = Wakeups(asyncpg_dsn(rt.database_url), channels)
    wake = wakeups.events
    sweep_s, size = rt.settings.worker_sweep_interval_s, rt.settings.worker_concurrency
    submit_pool = Pool(size, wake[repo.CHANNEL_SUBMIT])
    poll_pool = Pool(size, wake[repo.CHANNEL_POLL])
    deliver_pool = Pool(rt.settings.dispatcher_concurrency, wake[delivery_repo.CHANNEL_DELIVER])
    archive_pool = Pool(rt.settings.archive_concurrency, wake[repo.CHANNEL_ARCHIVE])
    loops = [
        wakeups.run(stop),
        run_loop(
            "submitter",
            partial(submitter.step, rt, submit_pool),
            wake[repo.CHANNEL_SUBMIT],
            stop,
            sweep_s,
        ),
        run_loop(
            "poller", partial(poller.step, rt, poll_pool), wake[repo.CHANNEL_POLL], stop, sweep_s
        ),
        run_loop(
            "dispatcher",
            partial(dispatcher.step, rt, rt.webhook_client, deliver_pool),
            wake[delivery_repo.CHANNEL_DELIVER],
            stop,
            sweep_s,
        ),
        run_loop(
            "archiver",
            partial(archiver.step, rt, archive_pool),
            wake[repo.CHANNEL_ARCHIVE],
            stop,
            sweep_s,
        ),
        run_loop("janitor", janitor.Janitor(rt).step, asyncio.Event(), stop, sweep_s),
    ]
    pools = [submit_pool, poll_pool, deliver_pool, archive_pool]
    return [asyncio.create_task(loop) for loop in loops], pools


def create_app(settings: Settings | None = None) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = settings or Settings()
        configure_logging(active.log_level, json=active.log_json, secrets=held_secrets(active))
        runtime = await build_runtime(active)
        app.state.runtime = runtime
        stop = asyncio.Event()
        tasks, pools = (
            start_workers(runtime, stop) if active.role in ("worker", "all") else ([], [])
        )
        log.info("motion-gateway ready (role=%s, callbacks=%s)", active.role, runtime.callback.mode)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            grace_s = active.effective_shutdown_grace_s
            await asyncio.gather(*(pool.drain(grace_s=grace_s) for pool in pools))
            await runtime.webhook_client.aclose()
            await runtime.media_client.aclose()
            await runtime.upstream_client.aclose()
            await runtime.engine.dispose()

    app = FastAPI(
        title="motion-gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # `/v1/jobs/` is not `/v1/jobs`: a 404, not a redirect to an absolute http:// URL.
        redirect_slashes=False,
    )
    app.add_middleware(InputGuard)
    install_error_handlers(app)
    app.include_router(jobs_router)
    app.include_router(delivery_router)
    app.include_router(inbound_router)
    app.include_router(upload_router)
    app.include_router(media_router)
    app.include_router(billing_router)
    app.include_router(admin_router)
    app.include_router(ops_router)
    # Added last, so outermost: the guard's own 413/404/422 carry the request id too.
    app.add_middleware(RequestIdMiddleware)
    declare_server_errors(app, database_dependencies=(get_session, current_principal))
    document_problem_validation_errors(app)
    return app
