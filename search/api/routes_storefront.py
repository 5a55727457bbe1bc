"""The storefront: the embeddable search widget (always served) and the demo shop (on with
`server.demo_shop`, which `vitrine demo` sets).

The widget is two static files under /widget. The demo shop is a handful of server-rendered
pages that embed that same widget the way a merchant would, plus product images drawn as SVG
(the sample catalog's image URLs point nowhere, and the demo must work offline).
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from search.api.deps import ServiceDep
from search.settings import Settings

STATIC = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

shop = APIRouter(include_in_schema=False)

# Swatches for the sample catalog's colour names; anything else gets a neutral grey.
SWATCHES = {
    "black": "#2b2d33", "white": "#f3f1ec", "navy": "#24345c", "grey": "#9aa0a8", "blue": "#3d6fc4",
    "beige": "#d9c7a7", "red": "#c73a3a", "green": "#3f8a55", "pink": "#e59ab5", "brown": "#7b5236",
    "olive": "#77773c", "burgundy": "#7d2236", "yellow": "#e7c64a", "orange": "#e58a3a",
    "purple": "#7451a8", "teal": "#2f8c8c", "cream": "#efe6cf", "charcoal": "#45484e",
}
LIGHT = {"white", "beige", "cream", "yellow", "pink"}


class BeaconBody:
    """`navigator.sendBeacon` can post cross-origin without a preflight only with a CORS-safelisted
    type, so the widget sends its last events of a page as text/plain JSON; /events reads them
    as the JSON they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/events":
            headers = [
                (b"content-type", b"application/json") if name == b"content-type" and value.startswith(b"text/plain") else (name, value)
                for name, value in scope["headers"]
            ]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def mount(app: FastAPI, settings: Settings) -> None:
    """The widget files at /widget/vitrine.js and /widget/vitrine.css; the shop when enabled."""
    app.mount("/widget", StaticFiles(directory=STATIC / "widget"), name="widget")
    app.add_middleware(BeaconBody)
    if settings.server.demo_shop:
        app.mount("/shop/static", StaticFiles(directory=STATIC / "shop"), name="shop-static")
        app.include_router(shop)


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, f"shop/{name}", context)


@shop.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Search box, results (from the URL: /?q=shirt&colour=Red), recently viewed."""
    return _page(request, "home.html", title="Vitrine demo shop")


@shop.get("/shop/products/{product_id}", response_class=HTMLResponse)
def product_page(request: Request, service: ServiceDep, product_id: str) -> HTMLResponse:
    product = service.get_product(product_id)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {product_id!r} not found")
    variants = [
        {"sku": v.sku, "size": v.size, "stock": v.stock or 0}
        for v in product.variants
        if v.size
    ]
    return _page(
        request,
        "product.html",
        title=product.title,
        product=product,
        variants=variants,
        colour=product.attributes.get("colour", ""),
        in_stock=product.in_stock,
    )


@shop.get("/shop/cart", response_class=HTMLResponse)
def cart(request: Request) -> HTMLResponse:
    return _page(request, "cart.html", title="Your cart")


@shop.get("/shop/img/{product_id}.svg")
def product_image(service: ServiceDep, product_id: str) -> Response:
    """A drawn stand-in for the product photo: its colour and its product type."""
    product = service.get_product(product_id)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {product_id!r} not found")
    colour = product.attributes.get("colour", "").lower()
    fill = SWATCHES.get(colour, "#b8bec7")
    ink = "#2b2d33" if colour in LIGHT else "#ffffff"
    label = html.escape((product.categories[-1] if product.categories else "Product")[:18])
    # A soft diagonal sheen, seeded by the id, so neighbouring cards do not look identical.
    tilt = int(hashlib.blake2s(product.id.encode(), digest_size=1).digest()[0]) % 60 - 30
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 240" width="240" height="240">'
        f'<rect width="240" height="240" fill="{fill}"/>'
        f'<g transform="rotate({tilt} 120 120)" opacity=".16"><rect x="-60" y="70" width="360" height="36" fill="#fff"/>'
        '<rect x="-60" y="120" width="360" height="12" fill="#fff"/></g>'
        f'<text x="120" y="214" text-anchor="middle" font-family="system-ui,sans-serif" font-size="15" fill="{ink}" '
        f'opacity=".85">{label}</text></svg>'
    )
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
