"""HTTP hello / TCP echo on gevent's StreamServer: a greenlet per
connection, keep-alive, pipelining-safe (the same framing as the Rust
servers: complete requests in the buffer are answered in one write).
usage: python3 server.py http|echo ADDR WORKERS (WORKERS is ignored)"""
import sys

from gevent.server import StreamServer

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 13\r\n\r\nHello, World!")
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def http(sock, _addr):
    buf = b""
    while True:
        data = sock.recv(8192)
        if not data:
            return
        buf += data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            if not head.split(b" ", 1)[0].isalpha():
                sock.sendall(b"".join(out) + BAD)
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            out.append(RESPONSE)
        if out:
            sock.sendall(b"".join(out))
        if len(buf) > 65536:
            return


def echo(sock, _addr):
    while True:
        data = sock.recv(16384)
        if not data:
            return
        sock.sendall(data)


def main():
    kind, addr = sys.argv[1], sys.argv[2]
    host, port = addr.rsplit(":", 1)
    server = StreamServer((host, int(port)), http if kind == "http" else echo, backlog=1024)
    server.serve_forever()


if __name__ == "__main__":
    main()
