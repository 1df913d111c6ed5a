"""Run inside a test namespace: TCP listeners and connection probes for tests/edge.

`probe.py listen PORT...` accepts on every port (0.0.0.0), answers each connection with a line
naming the port, and prints `ready` once all are bound; it runs until killed.
`probe.py connect HOST:PORT[@SOURCE]...` tries each and prints one JSON object: for each target,
`open` (the listener answered), `refused` (a reset: rejected) or `dropped` (no answer at all
before the timeout: the packets were dropped).
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

DROP_TIMEOUT = 1.5  # seconds without any answer: a dropped SYN (never an assertion on timing)


def listen(ports: list[int]) -> None:
    selector = selectors.DefaultSelector()
    for port in ports:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(16)
        selector.register(server, selectors.EVENT_READ, port)
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            conn, _peer = key.fileobj.accept()  # type: ignore[union-attr]
            with conn:
                conn.sendall(f"port {key.data}\n".encode())


def connect(target: str) -> str:
    where, _, source = target.partition("@")
    host, _, port = where.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(DROP_TIMEOUT)
    try:
        if source:
            sock.bind((source, 0))
        sock.connect((host, int(port)))
        answer = sock.recv(64).decode()
        return "open" if answer == f"port {port}\n" else f"unexpected {answer!r}"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "dropped"
    except OSError as err:
        return f"error {err}"
    finally:
        sock.close()


def main(argv: list[str]) -> int:
    if argv[0] == "listen":
        listen([int(p) for p in argv[1:]])
        return 0
    targets = argv[1:]
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        results = list(pool.map(connect, targets))
    print(json.dumps(dict(zip(targets, results, strict=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
