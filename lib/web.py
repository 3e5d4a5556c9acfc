"""The seed's HTML and image routes beside the UI: /dashboard, /report/{type}, /visualization/{type}.

They take the dashboard's link parameters (range, filters) plus ``metric``, ``dimension``,
``theme`` and, for reports, ``format`` (html, pdf or zip); errors come back as JSON in the API's
one shape.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lib import reports, visualization
from lib.api import ApiError, ApiState, _now, _spec, error_body
from lib.export import chart_png


def routes(state: ApiState) -> list[Route]:
    def choices(request: Request) -> tuple[str | None, str, str]:
        metric = request.query_params.get("metric") or None
        dimension = request.query_params.get("dimension") or "hardware"
        theme = request.query_params.get("theme") or state.settings.theme
        if theme not in ("light", "dark"):
            raise ApiError(400, f"theme={theme!r} is not light or dark", {"parameter": "theme"})
        return metric, dimension, theme

    def guarded(function):
        def handle(request: Request) -> Response:
            try:
                return function(request)
            except ApiError as exc:
                return JSONResponse(
                    error_body(exc.code, exc.kind, exc.message, exc.details), status_code=exc.code
                )
            except LookupError as exc:
                return JSONResponse(error_body(404, "not_found", str(exc)), status_code=404)
            except ValueError as exc:
                return JSONResponse(error_body(400, "bad_request", str(exc)), status_code=400)

        return handle

    def build(request: Request, kind: str) -> reports.Report:
        metric, dimension, _ = choices(request)
        with state.store().cursor() as cur:
            return reports.build(cur, kind, _spec(request), _now(), metric, dimension)

    def report(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in reports.REPORT_TYPES:
            raise ApiError(
                404, f"No report type {kind!r}: choose one of {', '.join(reports.REPORT_TYPES)}."
            )
        shape = request.query_params.get("format", "html")
        _, _, theme = choices(request)
        built = build(request, kind)
        name = f"{kind}_report"
        if shape == "html":
            return HTMLResponse(reports.to_html(built, theme))
        if shape == "pdf":
            return Response(
                reports.to_pdf(built),
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
            )
        if shape == "zip":
            return Response(
                reports.to_zip(built, theme),
                media_type="application/zip",
                headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
            )
        raise ApiError(400, f"format={shape!r} is not html, pdf or zip", {"parameter": "format"})

    def dashboard(request: Request) -> Response:
        _, _, theme = choices(request)
        return HTMLResponse(
            visualization.dashboard_html(
                [build(request, kind) for kind in reports.REPORT_TYPES], theme
            )
        )

    def picture(request: Request) -> Response:
        kind = request.path_params["kind"]
        metric, dimension, theme = choices(request)
        if kind not in visualization.VISUALIZATION_TYPES:
            raise ApiError(
                404,
                f"No visualization type {kind!r}: choose one of "
                f"{', '.join(visualization.VISUALIZATION_TYPES)}.",
            )
        with state.store().cursor() as cur:
            chart = visualization.from_store(kind, cur, _spec(request), _now(), metric, dimension)
        return Response(chart_png(chart, dark=theme == "dark"), media_type="image/png")

    return [
        Route("/dashboard", guarded(dashboard)),
        Route("/report/{kind}", guarded(report)),
        Route("/visualization/{kind}", guarded(picture)),
    ]
