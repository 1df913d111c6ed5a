"""vpsfleet-mail-sink: SMTP that refuses mail before STARTTLS and keeps every message it accepts
in a Maildir (the lab's and the tests' stand-in for the provider's relay; role mail_sink). Its
port, Maildir and host name come from the command line (the role's unit). Needs
python3-aiosmtpd."""

from __future__ import annotations

import argparse
import asyncio
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP

CERT = "/etc/mail-sink/cert.pem"
KEY = "/etc/mail-sink/key.pem"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="vpsfleet-mail-sink",
        description="A mail sink: SMTP that refuses mail before STARTTLS and keeps every message "
        "it accepts in a Maildir.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--hostname", required=True)
    parser.add_argument("--listen", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--cert", default=CERT, help=f"certificate, PEM (default {CERT})")
    parser.add_argument("--key", default=KEY, help=f"its private key, PEM (default {KEY})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serves until killed."""
    args = parse(argv)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = Mailbox(args.maildir)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, require_starttls=True, tls_context=context, hostname=args.hostname),
            host=args.listen,
            port=args.port,
        )
    )
    print("mail sink listening on", server.sockets[0].getsockname(), flush=True)
    loop.run_forever()
    return 0
