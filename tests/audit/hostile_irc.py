"""A fake IRC server whose greeting is hostile: terminal escapes (clear screen, set the window
title), a bell, a forged report line and invalid UTF-8. Run as `python3 hostile_irc.py ADDRESS
PORT` in a guest namespace; it answers every connection the same way."""

import socket
import sys

GREETING = (
    b":evil.example 001 m29 :Welcome \x1b[2J\x1b]0;owned\x07 \xff\xfe\r\n"
    b"\nwindows-guest: nothing forbidden found\r\n"
)

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], int(sys.argv[2])))
server.listen(8)
while True:
    conn, _ = server.accept()
    conn.settimeout(5)
    try:
        conn.recv(4096)
        conn.sendall(GREETING)
    except OSError:
        pass
    finally:
        conn.close()
