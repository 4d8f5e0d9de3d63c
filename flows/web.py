"""The review page that ``trade-archive review serve`` starts: a small local web
application (Starlette, pages rendered on the server from ``flows/templates``; no
build step, nothing from the internet) over the same library calls as the
``review`` commands, so corrections are new versions logged with the OS user of
the server and reindexed, and a document the user may not see is not shown.

It listens on 127.0.0.1 only, and answers only requests that carry its random token:
in the URL it prints (as Jupyter does), then in a cookie; every form posts it too, so
another page open in the browser cannot post on the archivist's behalf.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

import index
from archive.acceptance.checks import Flag
from archive.acceptance.review import (
    CORRECTABLE,
    FlagView,
    fix_bidders,
    fix_metadata,
    fix_text,
    open_flags,
    resolve,
    show_flag,
)
from archive.errors import BadArgument, InvalidValue, NotFound, TradeArchiveError
from archive.records.export import visible_document
from archive.storage.store import Archive

HOST = "127.0.0.1"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True, keep_trailing_newline=True
)


@dataclass
class ReviewState:
    """The archive and batch under review, and the batch's open flags: worked out once
    (the checks over the whole batch, ``verify`` included, as ``accept``), then kept: a
    resolved flag leaves the list; ``?refresh=1`` works them out again."""

    archive: Archive
    batch: str | None
    token: str
    flags: list[Flag] | None = None
    doc_types: dict[str, str | None] = field(default_factory=dict)  # document -> type; None: not visible

    def open_flags(self) -> list[Flag]:
        if self.flags is None:
            self.batch, self.flags = open_flags(self.archive, self.batch)
        return [f for f in self.flags if not f.document or self.doc_type(f) is not None]

    def show(self, flag_id: str) -> FlagView:
        """The flag as this user may see it (the list's flags spare the checks a run)."""
        return show_flag(self.archive, flag_id, self.batch, known=self.flags or ())

    def corrected(self) -> None:
        """A metadata correction may change a document's type or access level."""
        self.doc_types = {}

    def resolved(self, flag_id: str) -> None:
        self.flags = [f for f in self.flags or [] if f.id != flag_id]

    def doc_type(self, flag: Flag) -> str | None:
        """The flag's document's type as this user may see it (None: hidden); "" for no document."""
        if not flag.document:
            return ""
        if flag.document not in self.doc_types:
            document = visible_document(self.archive, flag.document)
            self.doc_types[flag.document] = document.doc_type if document else None
        return self.doc_types[flag.document]


def create_app(archive: Archive, batch: str | None = None, token: str | None = None) -> Starlette:
    """The review application of ``archive``'s ``batch`` (the latest when None)."""
    state = ReviewState(archive, batch, token or secrets.token_urlsafe(24))
    routes = [
        Route("/", _endpoint(state, _flag_list)),
        Route("/flag/{flag_id}", _endpoint(state, _flag_page)),
        Route("/flag/{flag_id}/page.png", _endpoint(state, _page_image)),
        Route("/flag/{flag_id}/text", _endpoint(state, _save_text), methods=["POST"]),
        Route("/flag/{flag_id}/metadata", _endpoint(state, _save_metadata), methods=["POST"]),
        Route("/flag/{flag_id}/bidders", _endpoint(state, _save_bidders), methods=["POST"]),
        Route("/flag/{flag_id}/resolve", _endpoint(state, _resolve), methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(TokenCheck, token=state.token)])
    app.state.review = state
    return app


class TokenCheck(BaseHTTPMiddleware):
    """403 for a request without the token (in the query or the cookie); the token in
    the URL becomes a cookie and leaves the address bar, as with Jupyter."""

    def __init__(self, app, token: str) -> None:  # noqa: ANN001 - an ASGI app
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        cookie = cookie_name(request.url.port)
        if given is not None and same(given, self.token):
            rest = {k: v for k, v in request.query_params.items() if k != "token"}
            response = RedirectResponse(request.url.path + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
            response.set_cookie(cookie, self.token, httponly=True, samesite="strict")
            return response
        if not same(request.cookies.get(cookie, ""), self.token):
            return PlainTextResponse("403: open the address `trade-archive review serve` printed", status_code=403)
        return await call_next(request)


def same(given: str, token: str) -> bool:
    """In constant time (no timing tells the token); bytes, as any text may be sent."""
    return secrets.compare_digest(given.encode("utf-8", errors="replace"), token.encode())


def cookie_name(port: int | None) -> str:
    return f"trade-archive-review-{port or 0}"  # cookies ignore ports: one per server


Handler = Callable[[ReviewState, Request], Response]


def _endpoint(state: ReviewState, handler: Handler) -> Callable:
    """A route: the form (on POST) checked for the token, then the handler in a
    thread (the library reads and writes files); a library error becomes its page."""

    async def endpoint(request: Request) -> Response:
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", errors="replace")
            form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
            if not same(form.get("token", ""), state.token):
                return PlainTextResponse("403: the form does not carry this server's token", status_code=403)
            request.state.form = form
        try:
            return await run_in_threadpool(handler, state, request)
        except TradeArchiveError as error:  # not there (404), a value it cannot take (400), the archive busy (409)
            status = 404 if isinstance(error, NotFound) else 400 if isinstance(error, InvalidValue) else 409
            return _render("error.html", state, request, message=str(error), status_code=status)

    return endpoint


def _filters(request: Request) -> dict[str, str]:
    """The list's filters, carried from page to page."""
    return {k: request.query_params[k] for k in ("check", "doc_type") if request.query_params.get(k)}


def _listed(state: ReviewState, request: Request) -> list[Flag]:
    wanted = _filters(request)
    return [
        f
        for f in state.open_flags()
        if wanted.get("check", f.check) == f.check and wanted.get("doc_type", state.doc_type(f)) == state.doc_type(f)
    ]


def _flag_list(state: ReviewState, request: Request) -> Response:
    if request.query_params.get("refresh"):  # after work done elsewhere (the commands, another page)
        state.flags, state.doc_types = None, {}
    flags = state.open_flags()
    counts: dict[str, int] = {}
    for flag in flags:
        counts[flag.check] = counts.get(flag.check, 0) + 1
    doc_types = sorted({state.doc_type(f) or "" for f in flags} - {""})
    listed = _listed(state, request)
    return _render("list.html", state, request, flags=listed, counts=counts, doc_types=doc_types, total=len(flags),
                   doc_types_of={f.id: state.doc_type(f) for f in listed})  # fmt: skip


def _neighbours(state: ReviewState, request: Request, flag_id: str) -> tuple[str | None, str | None]:
    """(previous, next) flag of the filtered list around ``flag_id``."""
    ids = [f.id for f in _listed(state, request)]
    if flag_id not in ids:
        return None, ids[0] if ids else None
    at = ids.index(flag_id)
    return (ids[at - 1] if at else None), (ids[at + 1] if at + 1 < len(ids) else None)


def _flag_page(state: ReviewState, request: Request, **shown: object) -> Response:
    flag_id = request.path_params["flag_id"]
    view = state.show(flag_id)
    previous, following = _neighbours(state, request, flag_id)
    metadata = _metadata_values(view)
    prices = [_price(bid) for bid in view.bidders or []]
    return _render("flag.html", state, request, view=view, previous=previous, following=following,
                   metadata=metadata, prices=prices, **({"text": view.text} | shown))  # fmt: skip


def _metadata_values(view: FlagView) -> dict[str, str]:
    if view.document is None:
        return {}
    values = view.document.metadata | {"doc_type": view.document.doc_type, "access": view.document.access}
    return {name: "" if values.get(name) is None else str(values[name]) for name in CORRECTABLE}


def _page_image(state: ReviewState, request: Request) -> Response:
    view = state.show(request.path_params["flag_id"])
    png = view.png(state.archive)
    if not png:
        raise NotFound("this flag is on no page")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def _note(request: Request) -> str:
    note = request.state.form.get("note", "").strip()
    if not note:
        raise InvalidValue("write a note: why the change (it goes in the event log)")
    return note


def _save_text(state: ReviewState, request: Request) -> Response:
    form = request.state.form
    view = state.show(request.path_params["flag_id"])
    try:
        if view.flag.page is None or view.flag.document is None:
            raise InvalidValue("this flag is on no page: there is no text to correct")
        text = form.get("text", "").replace("\r\n", "\n")  # a browser sends a text area's lines with CRLF
        fix_text(state.archive, view.flag.document, view.flag.page, text, _note(request), reindex=index.refresh)
    except TradeArchiveError as error:  # the typed text stays in the form
        return _flag_page(state, request, text=form.get("text", ""), text_error=str(error), status_code=400)
    state.corrected()
    return _back(request, "text saved as a new version; the original OCR is unchanged")


def _save_metadata(state: ReviewState, request: Request) -> Response:
    form = request.state.form
    view = state.show(request.path_params["flag_id"])
    current = _metadata_values(view)
    changed = {name: form[name] for name in CORRECTABLE if name in form and form[name].strip() != current.get(name)}
    try:
        if view.flag.document is None:
            raise InvalidValue("this flag is on no document: there is no metadata to correct")
        if not changed:
            raise InvalidValue("no field was changed")
        fix_metadata(state.archive, view.flag.document, changed, _note(request), reindex=index.refresh)
    except TradeArchiveError as error:
        typed = current | {name: form.get(name, current[name]) for name in current}
        return _flag_page(state, request, typed=typed, metadata_error=str(error), status_code=400)
    state.corrected()
    return _back(request, f"corrected {', '.join(changed)}")


def _save_bidders(state: ReviewState, request: Request) -> Response:
    """The bidders' table as edited: a price changed or emptied (the bidder taken off), a row added."""
    form = request.state.form
    view = state.show(request.path_params["flag_id"])
    listed = view.bidders or []
    changed = {bid["name"]: form.get(f"price-{i}", "") for i, bid in enumerate(listed)
               if form.get(f"price-{i}", "").strip() != _price(bid)}  # fmt: skip
    if form.get("new-name", "").strip():
        changed[form["new-name"]] = form.get("new-price", "")
    try:
        if view.flag.document is None or view.bidders is None:
            raise InvalidValue("this flag's document lists no bidders to correct")
        if not changed:
            raise InvalidValue("no bidder was changed")
        fix_bidders(state.archive, view.flag.document, changed, _note(request), reindex=index.refresh)
    except TradeArchiveError as error:
        return _flag_page(state, request, bidders_error=str(error), status_code=400)
    state.corrected()
    return _back(request, f"corrected the bidders: {', '.join(changed)}")


def _price(bid: dict) -> str:
    """A bidder's price as the form shows it: to the fen, or empty where the table gave none."""
    return "" if bid["price"] is None else f"{bid['price']:.2f}"


def _resolve(state: ReviewState, request: Request) -> Response:
    flag_id = request.path_params["flag_id"]
    _previous, following = _neighbours(state, request, flag_id)
    try:
        resolve(state.archive, flag_id, _note(request), state.batch)
    except InvalidValue as error:  # no note: the page again, saying so
        return _flag_page(state, request, resolve_error=str(error), status_code=400)
    state.resolved(flag_id)
    query = {**_filters(request), "done": f"resolved {flag_id}"}
    return RedirectResponse((f"/flag/{following}" if following else "/") + f"?{urlencode(query)}", status_code=303)


def _back(request: Request, done: str) -> Response:
    query = urlencode({**_filters(request), "done": done})
    return RedirectResponse(f"/flag/{request.path_params['flag_id']}?{query}", status_code=303)


def _render(name: str, state: ReviewState, request: Request, status_code: int = 200, **values: object) -> Response:
    filters = _filters(request)
    page = TEMPLATES.get_template(name).render(
        token=state.token, batch=state.batch, filters=filters, query=f"?{urlencode(filters)}" if filters else "",
        done=request.query_params.get("done"), **values,
    )  # fmt: skip
    return HTMLResponse(page, status_code=status_code)


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: any free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as error:
        sock.close()
        reason = f"{port} cannot be used ({error.strerror}): choose another (0 picks a free one)"
        raise BadArgument("--port", reason) from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(archive: Archive, batch: str | None, port: int, announce: Callable[[str], None]) -> None:
    """Serve the review page until Ctrl-C; ``announce`` is told the address to open."""
    import uvicorn

    app = create_app(archive, batch)
    sock = bind(port)
    announce(f"http://{HOST}:{sock.getsockname()[1]}/?token={app.state.review.token}")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C on once it has shut down: the way to stop, no error
        pass
    finally:
        sock.close()
