"""Limits end to end, against a real `sked server` on loopback: the
per-token rate limit (429 problem+json with Retry-After, admin tokens and
the worker protocol exempt, bad tokens throttled per address), the caps on
connections in total and per client address, the request header cap, the
idle timeout, and slow clients trickling bytes while fast requests keep
being answered promptly.
"""

import http.client
import socket
import threading
import time
import unittest

from skedtest import SLOW, SkedTestCase, wait_until


def raw_connect(srv, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10 * SLOW)
    s.bind((source, 0))
    s.connect((srv.host, srv.port))
    return s


def served_connection(srv, source="127.0.0.1"):
    """A keep-alive connection the server has accepted and counted: it has
    answered one request on it. A bare connect() only reaches the kernel's
    accept queue, and pool threads accept concurrently, so a later client
    could be counted before it (and a held one refused instead)."""
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=10 * SLOW,
                                   source_address=(source, 0))
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    if r.status != 200:
        raise AssertionError("held connection answered %d" % r.status)
    return c


def closed_by_peer(s, timeout):
    """True if the server closes s (EOF or reset) within timeout seconds."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class TestRateLimit(SkedTestCase):
    def mint(self, name, role):
        """A new standalone token of role, minted by the admin; its secret."""
        v = self.ok("POST", "/v1/tokens", {"name": name, "role": role}, expect=201)
        return v["token"]

    def test_token_over_its_rate_gets_429_with_retry_after(self):
        self.start_server(extra=["--rate-limit", "5/s", "--rate-burst", "5"])
        admin = self.token
        worker_token = self.mint("w", "worker")
        other = self.mint("svc2", "operator")
        self.token = self.mint("svc", "operator")
        statuses = []
        for _ in range(30):
            resp = self.api("GET", "/v1/jobs")
            statuses.append(resp[0])
            if resp[0] == 429:
                break
        # The burst is served, then the token is refused.
        self.assertTrue(all(s == 200 for s in statuses[:5]), statuses)
        self.assertEqual(statuses[-1], 429, statuses)
        v = self.assert_problem(resp, 429)
        self.assertIn("per second", v["detail"])
        retry = resp[1].get("Retry-After")
        self.assertIsNotNone(retry, resp[1])
        self.assertTrue(retry.isdigit() and 1 <= int(retry) <= 2, retry)

        # Writes are refused too.
        st, _, _ = self.api("POST", "/v1/jobs", self.sh_job("true", name="limited"))
        self.assertEqual(st, 429)

        # Other tokens have their own buckets; admin tokens are exempt.
        self.assertEqual(self.api("GET", "/v1/jobs", token=other)[0], 200)
        # (The limited token is not asked again here: at 5/s it earns a call
        # back every 200 ms, and 20 calls can take longer than that on a busy
        # machine, which once made this test fail for no fault of the server.)
        for _ in range(20):
            self.assertEqual(self.api("GET", "/v1/jobs?limit=1", token=admin)[0], 200)

        # The worker protocol is exempt: a worker keeps heartbeating far
        # beyond the rate.
        st, _, w = self.api("POST", "/v1/workers", {"name": "w1", "host": "h", "slots": 1,
                                                     "queues": ["default"], "labels": {}},
                            token=worker_token)
        self.assertEqual(st, 201, w)
        for _ in range(20):
            st, _, v = self.api("POST", "/v1/workers/%s/heartbeat" % w["id"], {"runs": []},
                                token=worker_token)
            self.assertEqual(st, 200, v)

        # Public routes count per client address, not against the token.
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)

        # The bucket refills at the configured rate: after Retry-After the
        # token is served again.
        time.sleep(int(retry))
        self.assertEqual(self.api("GET", "/v1/jobs")[0], 200)

    def test_bad_tokens_are_throttled_per_address(self):
        self.start_server(extra=["--rate-limit", "5/s", "--rate-burst", "5"])
        statuses = []
        for _ in range(30):
            st = self.api("GET", "/v1/jobs", token="sked_not-a-real-token")[0]
            statuses.append(st)
            if st == 429:
                break
        self.assertEqual(statuses[:5], [401] * 5, statuses)
        self.assertEqual(statuses[-1], 429, statuses)
        # A valid token from the same address has its own bucket.
        self.assertEqual(self.api("GET", "/v1/jobs")[0], 200)

    def test_rate_limit_off(self):
        self.start_server(extra=["--rate-limit", "off"])
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10 * SLOW)
        try:
            for _ in range(300):
                conn.request("GET", "/v1/jobs?limit=1",
                             headers={"Authorization": "Bearer " + self.token})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            conn.close()

    def test_bad_rate_option_is_a_usage_error(self):
        p = self.start("server", ["server", "--listen", "127.0.0.1:0", "--store",
                                  "sqlite:%s/sked.db" % self.tmp, "--rate-limit", "fast"])
        self.assertEqual(p.wait_exit(), 2)
        self.assertIn("--rate-limit", p.stderr_text())


class TestConnectionLimits(SkedTestCase):
    def probe(self, timeout=2.0, source="127.0.0.1"):
        """GET /healthz on a fresh connection: the status, or the exception."""
        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=timeout * SLOW,
                                       source_address=(source, 0))
        try:
            c.request("GET", "/healthz")
            return c.getresponse().status
        except Exception as e:  # noqa: BLE001 - the kind of failure is what we report
            return e
        finally:
            c.close()

    def test_max_connections(self):
        self.start_server(extra=["--max-connections", "4", "--threads", "2"])
        held = [served_connection(self.srv) for _ in range(4)]
        try:
            # Every slot is taken: a fifth client is not served...
            self.assertIsInstance(self.probe(timeout=1.0), Exception)
            # ...until one of them leaves.
            held.pop().close()
            self.assertEqual(wait_until(lambda: self.probe() == 200 or None, 10), True)
        finally:
            for s in held:
                s.close()

    def test_max_connections_per_ip(self):
        self.start_server(extra=["--max-connections-per-ip", "3"])
        held = [served_connection(self.srv) for _ in range(3)]
        try:
            r = self.probe()
            self.assertIsInstance(r, Exception)
            # Refused at once (closed), not left to time out.
            self.assertNotIsInstance(r, TimeoutError)
            # Another address is still served (all of 127/8 is loopback).
            self.assertEqual(self.probe(source="127.0.0.2"), 200)
        finally:
            for s in held:
                s.close()
        self.assertEqual(wait_until(lambda: self.probe() == 200 or None, 10), True)

    def test_oversized_headers_are_refused(self):
        self.start_server()
        st, _, _ = self.api("GET", "/v1/jobs", headers={"X-Big": "a" * (200 * 1024)})
        self.assertIn(st, (413, 431))
        self.assertEqual(self.api("GET", "/v1/jobs")[0], 200)

    def test_idle_connection_is_closed(self):
        self.start_server(extra=["--idle-timeout", "1s"])
        s = raw_connect(self.srv)
        try:
            t0 = time.monotonic()
            self.assertTrue(closed_by_peer(s, 10 * SLOW), "an idle connection stayed open")
            self.assertLess(time.monotonic() - t0, 5 * SLOW)
        finally:
            s.close()
        # A connection in use is not cut: a keep-alive client making a
        # request every 0.3 s keeps its connection past the timeout.
        c = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10 * SLOW)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            sock = c.sock
            for _ in range(6):
                time.sleep(0.3)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            self.assertIs(c.sock, sock, "the connection was re-opened")
        finally:
            c.close()

    def test_slow_clients_do_not_delay_others(self):
        # Two threads only, so slow clients would starve everything if they
        # held a thread each.
        self.start_server(extra=["--threads", "2"])
        stop = threading.Event()
        slow = []
        errors = []

        def trickle(s, data):
            try:
                for b in data:
                    if stop.wait(0.25):
                        return
                    s.send(bytes([b]))
            except OSError as e:
                errors.append(e)

        hdr = ("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n" % self.token)
        threads = []
        for i in range(24):
            s = raw_connect(self.srv)
            slow.append(s)
            # Half trickle their headers, half send headers then trickle the body.
            if i % 2:
                s.sendall(hdr.encode())
                data = b"{" + b" " * 399
            else:
                data = hdr.encode()
            t = threading.Thread(target=trickle, args=(s, data), daemon=True)
            t.start()
            threads.append(t)
        try:
            time.sleep(0.5)  # let every slow client get going
            worst = 0.0
            for i in range(60):
                t0 = time.monotonic()
                path = "/healthz" if i % 2 else "/v1/jobs?limit=1"
                st = self.api("GET", path, token=None if i % 2 else self.token, timeout=5)[0]
                worst = max(worst, time.monotonic() - t0)
                self.assertEqual(st, 200)
            self.assertLess(worst, 1.0 * SLOW, "a fast request waited %.2fs" % worst)
            self.assertEqual(errors, [], "a slow client was cut off while sending")
        finally:
            stop.set()
            for t in threads:
                t.join(5)
            for s in slow:
                s.close()


if __name__ == "__main__":
    unittest.main()
