"""`ganforge serve`: a local web page over a folder of runs, on the standard library's HTTP server.

    serve("runs")                          # blocks; http://127.0.0.1:8000/
    server = make_server("runs", port=0)   # tests: a free port, then serve_forever() in a thread

It lists the runs under RUNS_DIR, shows a run's curves, latest samples and alarms while it trains,
and explores a trained generator (seed, truncation, class, InfoGAN codes, interpolation) with each
sample's nearest training image. Layout: paths.py (RUNS_DIR and its safe paths), live.py (the live
view), explorer.py and nearest.py (generating through ganforge.api), params.py (checked query
parameters), app.py (routes), page.py (the page), server.py (HTTP).
"""

from .app import MAX_N, MAX_STEPS, App
from .paths import HttpError, RunsRoot
from .server import ServeServer, make_server, serve

__all__ = ["MAX_N", "MAX_STEPS", "App", "HttpError", "RunsRoot", "ServeServer", "make_server", "serve"]
