"""``quantgpu web``: serve the browser workstation on this machine.

Binds to 127.0.0.1 unless told otherwise: patient images must not be served to
the network by accident. Everything runs locally (trame server, headless Slicer,
off-screen rendering); the browser only receives rendered pictures.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..backend import resolve
from ..errors import InputError
from ..output import prepare_output_dir
from ..samples import sample_names

log = logging.getLogger(__name__)


def build_workstation(server=None, backend: str = "auto", output_dir: str | Path | None = None):
    """Create the workstation and its page on ``server`` (a new trame server when None); return it."""
    from trame.app import get_server

    from .panels import find_module_panels
    from .ui import build_page
    from .workstation import Workstation

    chosen = resolve(backend)
    if server is None:
        server = get_server("quantgpu", client_type="vue3")
    if output_dir is None:
        output_dir = Path(tempfile.mkdtemp(prefix="quantgpu-web-"))
    ws = Workstation(server, backend="gpu" if chosen.is_gpu else "cpu", output_dir=prepare_output_dir(output_dir))
    panels = find_module_panels()
    ws.page = build_page(ws, panels)
    ws.panels = panels
    return ws


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    sample: str | None = None,
    backend: str = "auto",
    open_browser: bool = False,
    output_dir: str | Path | None = None,
) -> int:
    """Build the workstation, load ``sample`` when given, print the URL and serve until interrupted."""
    # Check what the user typed before the slow start (Slicer application, views).
    if not 0 <= port <= 65535:
        raise InputError(f"port {port} is outside 0..65535")
    if sample and sample not in sample_names():
        raise InputError(f"unknown sample {sample!r}; choose from {', '.join(sample_names())}")
    resolve(backend)
    ws = build_workstation(backend=backend, output_dir=output_dir)
    if sample:
        ws.load_sample(sample)

    def announce(**_):
        url = f"http://{host}:{ws.server.port}/"
        sys.stdout.write(f"quantgpu web: serving {url} (backend {ws.backend}, output {ws.output_dir}); Ctrl+C stops\n")
        sys.stdout.flush()

    ws.server.controller.on_server_ready.add(announce)
    with _argv_for_trame():
        ws.server.start(
            host=host,
            port=port,
            open_browser=open_browser,
            show_connection_info=False,
            timeout=0,  # keep serving while no browser is connected
            disable_logging=True,
        )
    return 0


@contextlib.contextmanager
def _argv_for_trame() -> Iterator[None]:
    """trame parses ``sys.argv`` for its own options; hide ours (``--sample``...) from it."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved
