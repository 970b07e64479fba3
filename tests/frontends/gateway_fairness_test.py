#!/usr/bin/python3
"""Integration test (suite 'gateway'): one busy client cannot starve the others.

A "hot" connection pipelines tens of thousands of requests, so that whenever the gateway
reads it the next request is already there and its event loop never runs dry. Other
clients, whose requests the gateway only learns about from epoll, must still be answered
while the hot stream is flowing, not after it. The measure is how many hot answers go by
between sending a request on another connection and receiving its answer: a count, not a
time, so a slow or busy machine does not change the verdict. (Before credvault-gateway
polled epoll regularly, they were answered only when the hot stream ran dry: docs/
performance.md §11.)"""

import socket
import sys
import threading
import unittest

# The main thread must see the reader thread's count promptly (GIL hand-over).
sys.setswitchinterval(0.0005)

from gatewaylib import World

REQUEST = b"GET /fairness-probe HTTP/1.1\r\nHost: gateway\r\n\r\n"
HOT_REQUESTS = 40000
W = None


def setUpModule():
    global W
    W = World()


def tearDownModule():
    W.finish()


def connect():
    s = socket.create_connection(("127.0.0.1", W.gateway.port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answer(s):
    """Reads one whole answer to REQUEST (a 404 with a Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("connection closed: %r" % data)
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([line.split(b":", 1)[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


class HotStream:
    """Pipelines HOT_REQUESTS requests on one connection and counts the answers."""

    def __init__(self, answer_size):
        self.answer_size = answer_size
        self.sock = connect()
        self.received = 0  # bytes
        self.error = None
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader = threading.Thread(target=self._read, daemon=True)

    def answers(self):
        return self.received // self.answer_size

    def start(self):
        self.writer.start()
        self.reader.start()

    def _write(self):
        try:
            self.sock.sendall(REQUEST * HOT_REQUESTS)
        except OSError as e:
            self.error = e

    def _read(self):
        total = self.answer_size * HOT_REQUESTS
        try:
            while self.received < total:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                self.received += len(chunk)
        except OSError as e:
            self.error = e

    def finish(self):
        self.writer.join(120)
        self.reader.join(120)
        self.sock.close()


class Fairness(unittest.TestCase):
    def setUp(self):
        probe = connect()
        probe.sendall(REQUEST)
        answer = read_answer(probe)
        probe.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 404 "), answer[:100])
        self.answer_size = len(answer)

    def wait_until_flowing(self, hot, answers):
        while hot.answers() < answers:
            self.assertIsNone(hot.error)
            self.assertTrue(hot.reader.is_alive(), "hot stream ended early")

    def test_waiting_connections_are_answered_while_a_pipeline_flows(self):
        idle = [connect() for _ in range(8)]  # open before the stream: waits on epoll only
        hot = HotStream(self.answer_size)
        hot.start()
        try:
            self.wait_until_flowing(hot, 2000)
            gaps = []
            for s in idle:
                before = hot.answers()
                s.sendall(REQUEST)
                self.assertTrue(read_answer(s).startswith(b"HTTP/1.1 404 "))
                gaps.append(hot.answers() - before)
            # A newly accepted connection too (the listener is also served through epoll).
            before = hot.answers()
            late = connect()
            late.sendall(REQUEST)
            self.assertTrue(read_answer(late).startswith(b"HTTP/1.1 404 "))
            gaps.append(hot.answers() - before)
            late.close()
            still_flowing = hot.answers() < HOT_REQUESTS
        finally:
            hot.finish()
            for s in idle:
                s.close()
        self.assertIsNone(hot.error)
        self.assertEqual(hot.answers(), HOT_REQUESTS, "the hot stream lost answers")
        # Starved, each waits for the whole rest of the stream (tens of thousands); served
        # in turn, a few hundred hot answers go by at most (one epoll poll per 256 events).
        self.assertTrue(still_flowing, "the stream ended before the others were answered")
        self.assertLess(max(gaps), HOT_REQUESTS // 8, "hot answers between: %s" % gaps)
        print("hot answers between sending and answering on other connections: %s" % gaps,
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
