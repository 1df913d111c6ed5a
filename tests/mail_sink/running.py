"""The lab's mail sink (role mail_sink's program, as the role installs it) running on loopback for
a test: one place for every test that reads what a program mailed."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from vpsfleet import agent_build

PYTHON = "/usr/bin/python3"  # the artifact's interpreter, with Debian's python3-aiosmtpd


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_sink(work: Path) -> Iterator[tuple[int, Path]]:
    """The sink listening on 127.0.0.1 with a throwaway certificate; yields its port and Maildir."""
    if subprocess.run([PYTHON, "-c", "import aiosmtpd"], capture_output=True, check=False).returncode:
        pytest.fail("python3-aiosmtpd is missing: run scripts/setup.sh")
    program = agent_build.built()["vpsfleet-mail-sink"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=sink.test", "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    maildir = work / "maildir"
    for folder in ("tmp", "new", "cur"):
        (maildir / folder).mkdir(parents=True)
    port = free_port()
    process = subprocess.Popen(
        [str(program), "--port", str(port), "--maildir", str(maildir), "--hostname", "sink.test",
         "--listen", "127.0.0.1", "--cert", str(work / "cert.pem"), "--key", str(work / "key.pem")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("mail sink listening on ('127.0.0.1',"), line
        yield port, maildir
    finally:
        process.terminate()
        process.wait(timeout=10)
