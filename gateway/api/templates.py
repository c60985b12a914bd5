"""Templates: stored per app, `#name#` placeholders filled from a push's `template_kv`."""

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.store import App
from gateway.store.records import Template
from gateway.timefmt import iso_ms

from .context import ApiContext
from .errors import ApiError
from .models import Id, TemplateBody

# A placeholder is `#name#`, name being ID characters other than `#`. Any
# other `#` is literal text.
PLACEHOLDER = re.compile(r"#([^#\s\x00-\x1f\x7f]{1,128})#")


class MissingKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill every placeholder in one pass; a value is inserted as it is (never re-expanded)."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise MissingKey(key)
        return values[key]

    return PLACEHOLDER.sub(fill, text)


def render_template(template: Template, values: Mapping[str, str], field: str) -> tuple[str, str]:
    """The template's (title, content) filled from `values`; a missing key is a 400
    whose field is `<field>.<key>` (e.g. `template_kv.name`)."""
    try:
        return render(template.title, values), render(template.content, values)
    except MissingKey as exc:
        raise ApiError(
            400,
            "invalid_request",
            f"{field}.{exc.key}: template {template.name!r} needs a value for #{exc.key}#"
            f" but {field} has no key {exc.key!r}",
            field=f"{field}.{exc.key}",
        ) from None


async def load_template(ctx: ApiContext, app: App, name: str) -> Template:
    """A push's template; an unknown name is a 400 naming the field `template`."""
    template = await ctx.store.get_template(app.app_id, name)
    if template is None:
        raise ApiError(
            400,
            "unknown_template",
            f"template: no template {name!r} in this app (create it with PUT /v1/templates/{name})",
            field="template",
        )
    return template


def template_view(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "title": template.title,
        "content": template.content,
        "updated_at": iso_ms(template.updated_at),
    }


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["templates"])
    AppDep = Annotated[App, Depends(ctx.authenticate)]

    def not_found(name: str) -> ApiError:
        return ApiError(404, "not_found", f"no template {name!r} in this app")

    @api.put("/v1/templates/{name:path}")
    async def put_template(name: Id, body: TemplateBody, app: AppDep) -> dict[str, Any]:
        """Create or replace a template: `#key#` placeholders in title and content."""
        template, created = await ctx.store.put_template(app.app_id, name, body.title, body.content)
        return {**template_view(template), "created": created}

    @api.get("/v1/templates/{name:path}")
    async def get_template(name: Id, app: AppDep) -> dict[str, Any]:
        template = await ctx.store.get_template(app.app_id, name)
        if template is None:
            raise not_found(name)
        return template_view(template)

    @api.delete("/v1/templates/{name:path}")
    async def delete_template(name: Id, app: AppDep) -> dict[str, Any]:
        """Delete a template; messages already pushed with it keep their text."""
        if not await ctx.store.delete_template(app.app_id, name):
            raise not_found(name)
        return {"name": name, "deleted": True}

    return api
