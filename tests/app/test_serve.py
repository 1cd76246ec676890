"""Serving the page (page.start): it answers only to this machine's names (a foreign page that
renamed itself to 127.0.0.1 through DNS rebinding is refused), refuses uploads and model calls
sent by other sites' pages, deletes uploads and pictures once they are old, and shows the names
in its error messages as text."""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import socket
import time
import uuid

import pytest

from ganforge import GanforgeError

page = pytest.importorskip("ganforge.app.page", reason="the app extra (gradio) is not installed")

CLEANUP_SECONDS = 60  # how long the test waits for the cleanup it shortened to a second or two


@pytest.fixture(scope="module")
def served(runs_dir, tmp_path_factory):
    """The page of the test runs served on a free port of 127.0.0.1, cleaning its files up after
    2 s (every second): the Blocks and its port. Uploads stay in the test's folder."""
    patch = pytest.MonkeyPatch()
    patch.setattr(page, "CACHE_CLEANUP", (1, 2))
    patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    blocks, _ = page.start(runs_dir, port=port)
    try:
        yield blocks, port
    finally:
        blocks.close()
        patch.undo()


def request(port: int, method: str, path: str, headers: dict, body: bytes | None = None):
    """(status, body) of one request with exactly these headers (Host included)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def upload(port: int, origin: str | None, host: str | None = None):
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="edges.png"\r\n'
        f"Content-Type: image/png\r\n\r\nnot really a png\r\n--{boundary}--\r\n"
    ).encode()
    headers = {
        "Host": host or f"127.0.0.1:{port}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    if origin is not None:
        headers["Origin"] = origin
    return request(port, "POST", "/gradio_api/upload", headers, body)


def test_only_this_machines_names_are_answered(served):
    _, port = served
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert request(port, "GET", "/", {"Host": host})[0] == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        status, body = request(port, "GET", "/", {"Host": host})
        assert status == 400 and b"Host" in body, host
    assert upload(port, None, host=f"evil.example:{port}")[0] == 400


def test_uploads_from_another_site_are_refused(served):
    _, port = served
    foreign = [
        "http://evil.example",
        f"http://evil.example:{port}",
        "null",  # a sandboxed frame or a file:// page
        f"http://127.0.0.1:{port + 1}",  # another local server
        f"http://localhost:{port}",  # the page under its other name: not the one it was opened by
    ]
    for origin in foreign:
        status, body = upload(port, origin)
        assert status == 403 and b"another site" in body, origin
    join = {
        "Host": f"127.0.0.1:{port}",
        "Origin": "http://evil.example",
        "Content-Type": "application/json",
    }
    assert request(port, "POST", "/gradio_api/queue/join", join, b"{}")[0] == 403
    for origin in (f"http://127.0.0.1:{port}", None):  # the page itself; a tool without Origin
        status, body = upload(port, origin)
        assert status == 200 and len(json.loads(body)) == 1, origin


def test_uploads_are_deleted_once_old(served):
    blocks, port = served
    status, body = upload(port, f"http://127.0.0.1:{port}")
    assert status == 200
    (path,) = json.loads(body)
    assert path in blocks.upload_file_set  # kept for the cleanup, which removes it from there
    deadline = time.monotonic() + CLEANUP_SECONDS
    while path in blocks.upload_file_set and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path not in blocks.upload_file_set and not os.path.exists(path)


def test_the_page_cleans_up_within_the_hour(runs_dir):
    frequency, age = page.CACHE_CLEANUP
    assert page.build_page(runs_dir).delete_cache == (frequency, age)
    assert 0 < frequency <= 3600 and 0 < age <= 3600


def test_every_address_also_answers_to_this_machines_name():
    assert page.allowed_hosts("192.0.2.7") == {"127.0.0.1", "localhost", "::1", "192.0.2.7"}
    assert socket.gethostname().lower() in page.allowed_hosts("0.0.0.0")
    assert "evil.example" not in page.allowed_hosts("0.0.0.0")


def test_error_messages_show_file_and_run_names_as_text():
    """An upload named like a Markdown image, an error quoting a tag: the message box gets
    their characters, not an image to fetch."""
    markdown_it = pytest.importorskip("markdown_it", reason="no CommonMark renderer")
    named = "'![x](http://evil.example/a.png).png' is not an image <img src=http://evil.example/b>"

    def refuses():
        raise GanforgeError(named)

    def breaks():
        raise RuntimeError(named)

    for handler in (refuses, breaks):
        picture, message = page.guarded(handler, (None,))()
        rendered = markdown_it.MarkdownIt("commonmark").render(message)
        assert picture is None and "<img" not in rendered and "<a " not in rendered
        assert html.unescape(re.sub(r"<[^>]+>", "", rendered)).count(named) == 1


def test_a_handler_that_does_not_apply_leaves_every_output_and_the_message():
    """The samples grid, chained after a run is chosen, does not apply to a translator: it must
    not clear the message, which a bad upload sent meanwhile may have just filled."""
    assert page.guarded(lambda: page.NOT_APPLICABLE, (None,))() == (gr_skip(), gr_skip())
    assert page.guarded(lambda: None, (None,))() == (None, "")


def test_the_grid_after_choosing_a_translator_leaves_the_message(runs_dir):
    blocks = page.build_page(runs_dir)
    grids = [f for f in blocks.fns.values() if f.name == "show_grid"]
    assert grids
    for grid in grids:
        outputs = grid.fn("pix2pix", 0, None, 1.0)
        assert outputs == (gr_skip(),) * len(grid.outputs)  # the message is among them
        assert grid.fn("dcgan", 0, None, 1.0)[-1] == ""  # a noise run: drawn, message cleared


def gr_skip():
    import gradio

    return gradio.skip()
