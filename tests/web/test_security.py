"""What `imagen serve` must never do: serve a file outside output.dir, answer
without the token, show a config secret, or answer a rebound host name."""

from __future__ import annotations

import json

import attrs
import pytest
from starlette.testclient import TestClient

from imagen_core import Session, hookimpl
from imagen_core.config import require_env, setting
from imagen_web.app import create_app
from imagen_web.security import (
    AddressError,
    check_bind,
    host_name,
    is_loopback,
    parse_addr,
    resolve_inside,
)
from tests.helpers import registered, write_config
from tests.web.conftest import small

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def secret_file(tmp_path):
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"\x89PNG not yours")
    return secret


@pytest.fixture
def image(client):
    return client.post("/v1/generate", json=small()).json()


@pytest.mark.parametrize(
    "path",
    [
        "/images/../../../outside/secret.png",
        "/images/%2e%2e/%2e%2e/%2e%2e/outside/secret.png",
        "/images/%2E%2E%2F%2E%2E%2F%2E%2E%2Foutside%2Fsecret.png",
        "/images/..%2f..%2f..%2foutside%2fsecret.png",
        "/images//etc/passwd",
        "/images/%2Fetc%2Fpasswd",
        "/images/nothing-here.png",
        "/images/",
    ],
)
def test_images_outside_output_dir_are_404(client, image, secret_file, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.json()["error"]["code"] == "not_found"
    assert b"not yours" not in response.content


def test_traversal_is_refused_before_the_url_is_normalised(output_dir, secret_file):
    # httpx would fold "a/../b" away: check the resolver with what a raw client sends.
    output_dir.mkdir(parents=True)
    (output_dir / "ok.png").write_bytes(b"\x89PNG")
    relative_to_out = "../../../outside/secret.png"
    assert (output_dir / relative_to_out).resolve() == secret_file.resolve()
    assert resolve_inside(output_dir, relative_to_out) is None
    assert resolve_inside(output_dir, str(secret_file)) is None  # absolute
    assert resolve_inside(output_dir, "ok.png\x00.png") is None
    assert resolve_inside(output_dir, "ok.png") == (output_dir / "ok.png").resolve()


def test_a_symlink_pointing_outside_is_404_one_inside_is_served(
    client, image, output_dir, secret_file
):
    (output_dir / "escape.png").symlink_to(secret_file)
    (output_dir / "escape-dir").symlink_to(secret_file.parent, target_is_directory=True)
    assert client.get("/images/escape.png").status_code == 404
    assert client.get("/images/escape-dir/secret.png").status_code == 404
    (output_dir / "alias.png").symlink_to(output_dir / image["id"])
    assert client.get("/images/alias.png").status_code == 200


def test_only_image_files_are_served(client, image, output_dir):
    sidecar = "/images/" + image["id"].removesuffix(".png") + ".json"
    assert client.get(sidecar).status_code == 404
    (output_dir / ".imagen-1-abc.png").write_bytes(b"\x89PNG partial")
    assert client.get("/images/.imagen-1-abc.png").status_code == 404


@pytest.fixture
def guarded(session):
    with TestClient(create_app(session, token=TOKEN)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/backends"),
        ("GET", "/v1/images"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/x"),
        ("DELETE", "/v1/jobs/x"),
        ("GET", "/v1/usage"),
        ("GET", "/v1/openapi.json"),
        ("POST", "/v1/generate"),
        ("POST", "/v1/jobs"),
        ("GET", "/images/x.png"),
    ],
)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", "Bearer "]
)
def test_with_a_token_every_api_call_needs_it(guarded, output_dir, method, path, authorization):
    headers = {"authorization": authorization} if authorization else {}
    body = small() if method == "POST" else None
    response = guarded.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not output_dir.exists() or not any(output_dir.rglob("*.png"))


def test_the_right_token_opens_the_api_and_the_cookie_only_images(guarded):
    auth = {"authorization": f"Bearer {TOKEN}"}
    made = guarded.post("/v1/generate", json=small(), headers=auth)
    assert made.status_code == 200
    assert guarded.get(made.json()["url"], headers=auth).status_code == 200
    guarded.cookies.set("imagen_token", TOKEN)
    assert guarded.get(made.json()["url"]).status_code == 200  # <img> tags send the cookie
    assert guarded.get("/v1/backends").status_code == 401  # ... the API wants the header
    guarded.cookies.clear()
    assert guarded.get(made.json()["url"]).status_code == 401
    # The page itself holds no data: it loads without the token and asks for it.
    assert guarded.get("/").status_code == 200
    assert guarded.get("/static/app.js").status_code == 200


BASE64_TOKEN = "q8+fX/2wZrJ0bK9m+Tn/aW1pZ2Vu=="  # as `openssl rand -base64 24` makes them


@pytest.mark.parametrize(
    "cookie",
    [
        "imagen_token=q8%2BfX%2F2wZrJ0bK9m%2BTn%2FaW1pZ2Vu%3D%3D",  # as the gallery stores it
        f"imagen_token={BASE64_TOKEN}",  # as a script may write it
        # after a cookie of another app on this host that http.cookies cannot parse
        'theme={"dark": true}; imagen_token=q8%2BfX%2F2wZrJ0bK9m%2BTn%2FaW1pZ2Vu%3D%3D',
    ],
)
def test_a_token_with_base64_characters_opens_images_by_cookie(session, cookie):
    with TestClient(create_app(session, token=BASE64_TOKEN)) as client:
        auth = {"authorization": f"Bearer {BASE64_TOKEN}"}
        made = client.post("/v1/generate", json=small(), headers=auth)
        assert made.status_code == 200
        assert client.get(made.json()["url"], headers={"cookie": cookie}).status_code == 200
        wrong = cookie.replace("q8", "Q8")
        assert client.get(made.json()["url"], headers={"cookie": wrong}).status_code == 401


def test_a_loopback_server_answers_only_loopback_host_names(session):
    app = create_app(session, allowed_hosts=("127.0.0.1", "localhost", "::1"))
    with TestClient(app, base_url="http://localhost:8080") as local:
        assert local.get("/v1/backends").status_code == 200
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example"):
        with TestClient(app, base_url=f"http://{host}") as rebound:
            response = rebound.get("/v1/backends")
            assert response.status_code == 400 and response.json()["error"]["code"] == "bad_host"
    with TestClient(app, base_url="http://[::1]:8080") as ipv6:
        assert ipv6.get("/v1/backends").status_code == 200


@attrs.frozen
class KeyedConfig:
    url: str = setting("https://user:hunter2@api.example.com/v1", help="service")
    api_token_env: str = setting("KEYED_SECRET_VAR", help="token variable")


class Keyed:
    def __init__(self, config: KeyedConfig) -> None:
        self.config = config

    def generate(self, request, progress):
        require_env(self.config.api_token_env)
        raise RuntimeError(f"cannot reach {self.config.url}")


class KeyedPlugin:
    @hookimpl
    def register_backends(self, register):
        register("keyed", Keyed, config=KeyedConfig)


def test_no_answer_holds_a_config_value(isolated_env, output_dir, pm, monkeypatch):
    path = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}'}}\n"
        "backends:\n"
        "  mock: {type: mock}\n"
        "  keyed: {type: keyed, url: 'https://bob:pa55word@render.example.org', "
        "api_token_env: MY_RENDER_TOKEN}\n"
        "  comfy: {type: comfyui, url: 'http://alice:letmein@10.1.2.3:8188'}\n",
    )
    secrets = ("pa55word", "MY_RENDER_TOKEN", "render.example.org", "letmein", "10.1.2.3")
    with registered(pm, KeyedPlugin(), "keyed"), TestClient(create_app(Session(path))) as client:
        answers = [
            client.get("/v1/backends"),
            client.get("/v1/openapi.json"),
            client.post("/v1/generate", json=small(backend="keyed")),  # its variable is unset
            client.post("/v1/generate", json=small(backend="comfy")),  # not installed
        ]
        monkeypatch.setenv("MY_RENDER_TOKEN", "tok-value-xyz")
        answers.append(client.post("/v1/generate", json=small(backend="keyed")))
        answers.append(client.post("/v1/jobs", json=small(backend="keyed")))
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 503, 422, 502, 202]
    assert answers[2].json()["error"] == {
        "code": "backend_unavailable",
        "message": "backend 'keyed' is not set up on this server (see the server's log)",
    }
    # The backend's own error text carried the URL: its credentials are cut out.
    assert "https://***@render.example.org" in answers[4].json()["error"]["message"]
    backends = {b["name"]: b for b in answers[0].json()["backends"]}
    assert backends["comfy"] == {
        "name": "comfy",
        "type": "comfyui",
        "default": False,
        "available": False,
        "price": None,
        "capabilities": None,
    }
    text = json.dumps([a.json() for a in answers])
    for secret in (*secrets[:2], "tok-value-xyz", "letmein", "10.1.2.3"):
        assert secret not in text, secret


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        (":8080", ("", 8080)),  # every interface
    ],
)
def test_parse_addr(addr, expected):
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("8080", "--addr '8080' is not HOST:PORT, e.g. 127.0.0.1:8080"),
        (":", "--addr ':' is not HOST:PORT"),
        ("host:http", "--addr 'host:http' is not HOST:PORT"),
        ("host:70000", "--addr 'host:70000': port must be 0-65535, got 70000"),
        ("::1:8080", "write an IPv6 host in brackets, e.g. [::1]:8080"),
    ],
)
def test_parse_addr_refuses(addr, message):
    with pytest.raises(AddressError) as info:
        parse_addr(addr)
    assert message in str(info.value)


def test_loopback_and_tokens():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("myhost.lan")  # a name may resolve anywhere
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(AddressError, match="reachable from other machines"):
        check_bind("0.0.0.0", None)
    check_bind("", TOKEN)
    with pytest.raises(AddressError, match=r"without a host \(every interface\) is reachable"):
        check_bind("", None)
    with pytest.raises(AddressError, match="at least 16 characters"):
        check_bind("127.0.0.1", "short")
    assert host_name("[::1]:8080") == "::1" and host_name("LocalHost:80") == "localhost"
    assert host_name("example.org") == "example.org"
