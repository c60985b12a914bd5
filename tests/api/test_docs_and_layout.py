"""`/docs` from packaged files under a CSP, the OpenAPI description, and import directions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import httpx
from click.testing import CliRunner

from gateway.cli import main
from tests.harness import RunningGateway

ROOT = Path(__file__).resolve().parents[2]


async def test_docs_load_nothing_from_elsewhere(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "<script>" not in page.text  # no inline script: start-up code is a file
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith("/docs/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-security-policy"] == csp
            assert asset.headers["x-content-type-options"] == "nosniff"
        assert "/openapi.json" in (await client.get("/docs/init.js")).text
        assert (await client.get("/redoc")).status_code == 404  # it would load a CDN


async def test_openapi_documents_bodies_errors_and_the_key(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        schema = (await client.get("/openapi.json")).json()
    simple = schema["paths"]["/v1/push/simple"]["post"]
    ref = simple["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/SimplePushBody"
    assert "MultipleTarget" in schema["components"]["schemas"]
    assert {"400", "401", "413", "429", "503"} <= set(simple["responses"])
    assert "422" not in simple["responses"]
    assert simple["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_gateway_does_not_import_the_simulator() -> None:
    for path in (ROOT / "gateway").rglob("*.py"):
        assert not any(n.split(".")[0] == "client_sim" for n in _imports(path)), path


def test_the_api_cli_and_purge_use_only_the_store_interface() -> None:
    users = [*(ROOT / "gateway" / "api").glob("*.py"), ROOT / "gateway" / "cli.py"]
    users += [ROOT / "gateway" / n for n in ("cli_ops.py", "cli_http.py", "cli_load.py")]
    users += [ROOT / "gateway" / "retention.py"]
    for path in users:
        for name in _imports(path):
            assert not name.startswith("gateway.store."), f"{path.name} imports {name}"
            assert name != "sqlite3", path


def test_pushgate_sim_is_registered_by_the_simulator() -> None:
    outcome = CliRunner().invoke(main, ["--help"])
    assert outcome.exit_code == 0
    assert re.search(r"^\s+sim\s", outcome.output, re.MULTILINE), outcome.output
