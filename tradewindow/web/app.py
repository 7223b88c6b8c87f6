"""App assembly: one FastAPI application serving the JSON API under /api/v1 and the web UI."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from tradewindow import __version__
from tradewindow.bonded import api as bonded_api
from tradewindow.bonded import pages as bonded_pages
from tradewindow.customs import api as customs_api
from tradewindow.customs import pages as customs_pages
from tradewindow.ecommerce import api as ecommerce_api
from tradewindow.ecommerce import pages as ecommerce_pages
from tradewindow.logistics import api as logistics_api
from tradewindow.logistics import pages as logistics_pages
from tradewindow.notifications import api as notifications_api
from tradewindow.notifications import pages as notifications_pages
from tradewindow.notifications import service as notifications_service
from tradewindow.platform import api as platform_api
from tradewindow.platform.db import make_engine
from tradewindow.platform.metrics import MetricsMiddleware
from tradewindow.platform.settings import Settings, get_settings
from tradewindow.platform.web import BodySizeLimit, install_error_handlers
from tradewindow.registry import api as registry_api
from tradewindow.registry import pages as registry_pages
from tradewindow.registry import service as registry_service
from tradewindow.stats import api as stats_api
from tradewindow.stats import pages as stats_pages
from tradewindow.tariff import api as tariff_api
from tradewindow.tariff import pages as tariff_pages
from tradewindow.titles import api as titles_api
from tradewindow.titles import pages as titles_pages

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """The single window of a free-trade zone: file once; customs, quarantine, licensing
and the zone authority act on the same filing.

Authenticate with `POST /api/v1/auth/token` and send `Authorization: Bearer <token>` (or an API
key). Errors always have the shape `{"errors": [{"path", "code", "message"}]}`; a request that
fails validation lists every problem at once. Each endpoint's description names the roles that
may call it."""


def _docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Trade Window API",
                               swagger_js_url="/static/vendor/swagger-ui-5.35.0-bundle.js",
                               swagger_css_url="/static/vendor/swagger-ui-5.35.0.css",
                               swagger_favicon_url="/static/vendor/swagger-favicon-32x32.png")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The interactive docs are served from vendored Swagger UI files: the machines are offline.
    app = FastAPI(title="Trade Window", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.add_api_route("/docs", _docs, include_in_schema=False)
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.authenticator = registry_service
    # Relayed events become notifications and webhook deliveries (the worker runs in this process
    # for the demo; `tradewindow worker` installs the same subscriber).
    notifications_service.install()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # FastAPI tries the routes one by one in this order: the customs API, whose lodging is the
    # busiest request, goes first (after seven routers, finding its route cost a tenth of a
    # lodgement's Python). No other router's paths overlap its paths.
    for router in (customs_api.router, platform_api.router, registry_api.router, registry_pages.router,
                   notifications_api.router, notifications_pages.router,
                   tariff_api.router, tariff_pages.router, customs_pages.router,
                   logistics_api.router, logistics_pages.router, bonded_api.router, bonded_pages.router,
                   ecommerce_api.router, ecommerce_pages.router,
                   stats_api.router, stats_pages.router, titles_api.router, titles_pages.router):
        app.include_router(router)
    return app
