"""`ganforge serve` on the command line: its defaults (127.0.0.1:8000, ./runs), and the errors it
stops with before serving (one line, exit 2); a single run given as RUNS_DIR."""

from __future__ import annotations

import socket

from ganforge.cli import build_parser
from ganforge.serve import ServeServer

from serve_helpers import get, running, train_run


def test_defaults_bind_to_loopback():
    args = build_parser().parse_args(["serve"])
    assert (args.runs, args.host, args.port, args.device, args.threads) == ("runs", "127.0.0.1", 8000, "cpu", 1)


def test_serve_listens_until_ctrl_c(run_cli, tmp_path, monkeypatch):
    seen = []

    def interrupted(self: ServeServer, poll_interval: float = 0.5) -> None:
        seen.append(self.server_address)
        raise KeyboardInterrupt  # Ctrl-C at once

    monkeypatch.setattr(ServeServer, "serve_forever", interrupted)
    code, out, _ = run_cli("serve", tmp_path, "--port", "0")
    host, port = seen[0]
    assert code == 0 and host == "127.0.0.1"
    assert out.strip() == f"serving the runs in {tmp_path.resolve()} at http://127.0.0.1:{port}/ (Ctrl-C to stop)"


def test_errors_before_serving(run_cli, tmp_path):
    code, _, err = run_cli("serve", tmp_path / "nope")
    assert code == 2 and err.strip() == f"ganforge serve: error: {tmp_path / 'nope'}: no such directory of runs"
    code, _, err = run_cli("serve", tmp_path, "--port", "70000")
    assert code == 2 and "--port must be between 0 and 65535" in err
    code, _, err = run_cli("serve", tmp_path, "--threads", "0")
    assert code == 2 and "--threads must be at least 1" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run_cli("serve", tmp_path, "--port", str(taken.getsockname()[1]))
    assert code == 2 and "could not listen on 127.0.0.1:" in err and len(err.strip().splitlines()) == 1


def test_one_run_as_runs_dir(tmp_path):
    run = train_run(tmp_path / "one", steps=2)
    with running(run) as server:
        status, body = get(server, "/api/runs")
        assert status == 200 and [r["name"] for r in body["runs"]] == ["."]
        status, live = get(server, "/api/live?run=.")
        assert status == 200 and live["step"] == 2
        assert get(server, live["sample"]["url"])[0] == 200
        assert get(server, "/api/sample?run=.&nearest=0")[0] == 200
