"""Templates: stored per app, `#name#` placeholders filled from a push's `template_kv`.

A template is compiled once per push call into its literal parts and
placeholders, so the size of what it renders to is known from the sizes of
the values before anything is rendered: a small request can never make the
gateway build a huge text (a 64 KB template of `#a#` x 21,845 and a 10 KB
value would otherwise render to 218 MB).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter

from gateway.store import App, Template
from gateway.timefmt import iso_ms

from .context import Ctx, CurrentApp, body_openapi, json_body
from .errors import AUTHENTICATED, ApiError, error_responses
from .models import Id, TemplateBody

# A placeholder is `#name#`, name being ID characters other than `#`. Any
# other `#` is literal text.
PLACEHOLDER = re.compile(r"#([^#\s\x00-\x1f\x7f]{1,128})#")


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class CompiledText:
    """A text as literal parts and placeholder keys: parts[0], key, parts[1], key, …"""

    parts: tuple[str, ...]
    literal_bytes: int
    counts: dict[str, int]  # placeholder key -> occurrences, in order of first appearance

    @classmethod
    def of(cls, text: str) -> "CompiledText":
        parts = tuple(PLACEHOLDER.split(text))
        counts: dict[str, int] = {}
        for key in parts[1::2]:
            counts[key] = counts.get(key, 0) + 1
        return cls(parts, sum(utf8_size(p) for p in parts[0::2]), counts)

    def rendered_size(self, values: Mapping[str, str]) -> int:
        """UTF-8 bytes of the rendered text (every key must be in `values`)."""
        return self.literal_bytes + sum(n * utf8_size(values[k]) for k, n in self.counts.items())

    def render(self, values: Mapping[str, str]) -> str:
        """Every placeholder filled in one pass; a value is never expanded again."""
        parts = list(self.parts)
        parts[1::2] = [values[k] for k in self.parts[1::2]]
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    name: str
    title: CompiledText
    content: CompiledText

    @classmethod
    def of(cls, template: Template) -> "CompiledTemplate":
        title, content = CompiledText.of(template.title), CompiledText.of(template.content)
        return cls(template.name, title, content)

    @property
    def parts(self) -> int:
        return len(self.title.parts) + len(self.content.parts)

    def rendered_size(self, values: Mapping[str, str], field: str) -> int:
        """Bytes of the rendered title + content; a missing key is a 400 whose field is
        `<field>.<key>` (e.g. `template_kv.name`)."""
        for key in (*self.title.counts, *self.content.counts):
            if key not in values:
                raise ApiError(
                    400,
                    "invalid_request",
                    f"{field}.{key}: template {self.name!r} needs a value for #{key}#"
                    f" but {field} has no key {key!r}",
                    field=f"{field}.{key}",
                )
        return self.title.rendered_size(values) + self.content.rendered_size(values)

    def render(
        self, values: Mapping[str, str], field: str, *, limit: int, target: str | None = None
    ) -> tuple[str, str]:
        """(title, content) filled from `values`, after checking that the two together
        stay within `limit` bytes (else a 413 naming `target`, before anything is rendered)."""
        size = self.rendered_size(values, field)
        if size > limit:
            where = f"{target}: " if target else ""
            raise ApiError(
                413,
                "payload_too_large",
                f"{where}the rendered title and content would be {size} bytes; the push"
                f" payload limit is {limit}",
                field=target,
            )
        return self.title.render(values), self.content.render(values)


async def load_template(ctx: Ctx, app: App, name: str) -> CompiledTemplate:
    """A push's template, compiled; an unknown name is a 400 naming the field `template`."""
    template = await ctx.store.get_template(app.app_id, name)
    if template is None:
        raise ApiError(
            400,
            "unknown_template",
            f"template: no template {name!r} in this app (create it with PUT /v1/templates/{name})",
            field="template",
        )
    return CompiledTemplate.of(template)


def template_view(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "title": template.title,
        "content": template.content,
        "updated_at": iso_ms(template.updated_at),
    }


def _not_found(name: str) -> ApiError:
    return ApiError(404, "not_found", f"no template {name!r} in this app")


router = APIRouter(tags=["templates"], responses=error_responses(*AUTHENTICATED))


@router.put(
    "/v1/templates/{name:path}",
    openapi_extra=body_openapi(TemplateBody),
    responses=error_responses(408, 413),
)
async def put_template(
    name: Id, ctx: Ctx, app: CurrentApp, body: Annotated[TemplateBody, json_body(TemplateBody)]
) -> dict[str, Any]:
    """Create or replace a template: `#key#` placeholders in title and content."""
    template, created = await ctx.store.put_template(app.app_id, name, body.title, body.content)
    return {**template_view(template), "created": created}


@router.get("/v1/templates/{name:path}", responses=error_responses(404))
async def get_template(name: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    template = await ctx.store.get_template(app.app_id, name)
    if template is None:
        raise _not_found(name)
    return template_view(template)


@router.delete("/v1/templates/{name:path}", responses=error_responses(404))
async def delete_template(name: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    """Delete a template; messages already pushed with it keep their text."""
    if not await ctx.store.delete_template(app.app_id, name):
        raise _not_found(name)
    return {"name": name, "deleted": True}
