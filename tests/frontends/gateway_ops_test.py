#!/usr/bin/python3
"""Integration test (suite 'gateway'): running credvault in production — the gateway's
/healthz, start-up failures that say what to do (one line, documented exit status, no
stack), and the daemon's socket removed on a clean stop. The real credvaultd,
credvault-gateway and credvaultctl (gatewaylib)."""

import base64
import http.client
import json
import os
import shutil
import ssl
import signal
import socket
import threading
import stat
import subprocess
import time
import unittest

import pglib
from gatewaylib import (Daemon, Gateway, World, binary, free_port, read, unix_socket_open,
                        wait_for)

W = None

EXIT_BAD_KEY = 65
EXIT_UNAVAILABLE = 69
EXIT_NO_PERMISSION = 77
EXIT_CONFIG = 78


def setUpModule():
    global W
    W = World()


def tearDownModule():
    # Every log of every daemon and gateway this module started (not only W's): no secret.
    try:
        for root, _, files in os.walk(W.dir):
            for name in files:
                if name.endswith(".log") and "audit" not in name:
                    text = read(os.path.join(root, name))
                    for secret in W.secrets:
                        assert secret not in text, "%s holds a secret" % name
    finally:
        W.finish()


def run(args, timeout=30, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def assert_one_actionable_line(test, result, status, *needles):
    """A failed start: exit `status`, one line on stderr naming the problem, no KJ report.
    (Informational lines before it, such as where the key came from, may precede it.)"""
    out = result.stdout + result.stderr
    test.assertEqual(result.returncode, status, out)
    lines = [l for l in out.splitlines() if l.strip() and not l.startswith(("<5>", "<6>"))]
    test.assertEqual(len(lines), 1, out)
    for bad in ("Uncaught exception", "stack:", ".c++:", "expected ", "KJ_"):
        test.assertNotIn(bad, out)
    test.assertTrue(lines[0].startswith("<2>"), lines[0])  # journald's "crit"
    for n in needles:
        test.assertIn(n, lines[0])
    return lines[0]



def silent_daemon_socket(name):
    """A Unix socket where a daemon would be, listening and never answering."""
    path = os.path.join(W.dir, name)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(8)
    return path, s

class Health(unittest.TestCase):
    def get(self, gw, path="/healthz", method="GET", headers=None):
        return gw.request(method, path, headers=headers or {})

    def test_healthy_without_authentication(self):
        status, headers, body = self.get(W.gateway)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        self.assertEqual(headers.get("Cache-Control"), "no-store")
        doc = json.loads(body)
        self.assertEqual(doc["status"], "ok")
        self.assertEqual(doc["daemon"], "ok")
        self.assertRegex(doc["version"], r"^\d+\.\d+\.\d+")
        # Nothing about the vault's content, with or without credentials.
        self.assertEqual(sorted(doc), ["daemon", "status", "version"])
        status, _, body = self.get(W.gateway, headers={"Authorization": "Basic c3lzOnN5cy1Qdy00"})
        self.assertEqual(sorted(json.loads(body)), ["daemon", "status", "version"])

    def test_head_and_wrong_method(self):
        status, _, body = self.get(W.gateway, method="HEAD")
        self.assertEqual((status, body), (200, b""))
        status, headers, _ = self.get(W.gateway, method="POST")
        self.assertEqual(status, 405)
        self.assertIn("GET", headers.get("Allow", ""))

    def test_probes_do_not_fill_the_audit_trail(self):
        audit = os.path.join(W.dir, "probe-audit.log")
        d = Daemon(W.dir + "/probe", ["audit_log=" + audit])
        os.makedirs(d.dir, exist_ok=True)
        d.start()
        gw = Gateway(W.dir, d.socket)
        try:
            gw.start()
            for _ in range(5):
                self.assertEqual(self.get(gw)[0], 200)
            d.ctl("whoami", check=False)
            text = read(audit) if os.path.exists(audit) else ""
            self.assertNotIn('"health"', text)
        finally:
            gw.stop()
            d.stop()

    def test_503_while_the_daemon_is_down_and_200_once_it_is_back(self):
        d = Daemon(W.dir + "/down")
        os.makedirs(d.dir, exist_ok=True)
        d.start()
        gw = Gateway(W.dir, d.socket)
        try:
            gw.start()
            self.assertEqual(self.get(gw)[0], 200)
            d.stop()
            status, headers, body = self.get(gw)
            self.assertEqual(status, 503, body)
            doc = json.loads(body)
            self.assertEqual(doc["status"], "unavailable")
            self.assertEqual(doc["daemon"], "unreachable")
            # The REST API says the same rather than 200.
            d.start()
            wait_for(lambda: self.get(gw)[0] == 200, what="healthy again")
        finally:
            gw.stop()
            d.stop()

    def test_a_daemon_that_does_not_answer_is_a_timeout_within_the_deadline(self):
        # A socket that accepts and never answers: the probe must not hang.
        path, s = silent_daemon_socket("silent.sock")
        gw = Gateway(W.dir, path)
        try:
            gw.start()
            t = time.monotonic()
            status, _, body = self.get(gw)
            took = time.monotonic() - t
            self.assertEqual(status, 503)
            self.assertEqual(json.loads(body)["daemon"], "timeout")
            # Not a hang: answered on the gateway's 2 s deadline, far below the client's 30 s
            # (the margin is for a loaded host, where the probe's turn can come seconds late).
            self.assertLess(took, 15.0)
        finally:
            gw.stop()
            s.close()

    def test_concurrent_probes_share_one_daemon_call(self):
        # Unauthenticated /healthz must not become one daemon call per request: requests that
        # arrive while a probe is out share it. Measured at a daemon socket that never answers,
        # by the bytes the gateway sends it: 40 concurrent probes cost what one does.
        path, s = silent_daemon_socket("counting.sock")
        received = [0]
        stop = threading.Event()

        def drain(conn):
            conn.settimeout(0.2)
            with conn:
                while not stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        return
                    received[0] += len(data)

        def accept():
            s.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                except socket.timeout:
                    continue
                threading.Thread(target=drain, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        gw = Gateway(W.dir, path)
        try:
            gw.start()
            self.assertEqual(json.loads(self.get(gw)[2])["daemon"], "timeout")
            one = received[0]
            self.assertGreater(one, 0)
            results = []

            def probe():
                status, _, body = self.get(gw)
                results.append((status, json.loads(body)["daemon"]))

            threads = [threading.Thread(target=probe) for _ in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(results, [(503, "timeout")] * 40)
            forty = received[0] - one
            # One more probe (a second connection may repeat the bootstrap): at most twice
            # what the first cost, where one call per request would be forty times.
            self.assertLessEqual(forty, 2 * one, "%d bytes for 40 probes, %d for one" % (forty, one))
        finally:
            stop.set()
            gw.stop()
            s.close()
            acceptor.join(5)

class DaemonStart(unittest.TestCase):
    def daemon(self, *args, env=None):
        return run([binary("CREDVAULTD")] + list(args), env=env)

    def fresh(self, name):
        d = os.path.join(W.dir, name)
        os.makedirs(d, exist_ok=True)
        return d

    def test_a_config_error_names_file_and_line(self):
        d = self.fresh("cfg")
        conf = os.path.join(d, "credvaultd.conf")
        with open(conf, "w") as f:
            f.write("# test\nlog_level = info  # default\nlgo_level = debug\n")
        r = self.daemon("--config", conf, "--state-dir", d + "/state", "--socket", d + "/s")
        line = assert_one_actionable_line(self, r, EXIT_CONFIG)
        self.assertIn(conf + ":3: unknown setting 'lgo_level' (did you mean 'log_level'?)", line)
        r = self.daemon("--config", "/dev/null", "--set", "ticket_lifetime=5")
        assert_one_actionable_line(self, r, EXIT_CONFIG, "--set: ticket_lifetime must be")

    def test_a_missing_config_file_is_reported_as_such(self):
        r = self.daemon("--config", os.path.join(W.dir, "no-such.conf"))
        assert_one_actionable_line(self, r, EXIT_CONFIG, "no-such.conf does not exist",
                                   "--config")

    def test_key_problems(self):
        d = self.fresh("key")
        key = os.path.join(d, "master.key")
        base = ["--config", "/dev/null", "--state-dir", d + "/state", "--socket", d + "/s",
                "--key-file", key]
        # A vault made with a generated key.
        r = self.daemon("--generate-key", key)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = subprocess.Popen([binary("CREDVAULTD")] + base + ["--create-key"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: unix_socket_open(d + "/s") or p.poll() is not None, what="socket")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)

        os.chmod(key, 0o644)
        r = self.daemon(*base)
        assert_one_actionable_line(self, r, EXIT_BAD_KEY, key, "group or others", "chmod 600")
        os.chmod(key, 0o600)
        r = self.daemon("--generate-key", key)
        assert_one_actionable_line(self, r, 73, "exists already")
        os.rename(key, key + ".orig")
        r = self.daemon(*base)
        assert_one_actionable_line(self, r, EXIT_BAD_KEY, "no master key", "--generate-key")
        # A vault made with one key does not open with another.
        self.assertEqual(self.daemon("--generate-key", key).returncode, 0)
        r = self.daemon(*base)
        assert_one_actionable_line(self, r, EXIT_BAD_KEY, "wrong master key")

    def test_the_socket_is_removed_on_a_clean_stop(self):
        d = self.fresh("sock")
        sock = d + "/credvaultd.sock"
        p = subprocess.Popen([binary("CREDVAULTD"), "--config", "/dev/null", "--state-dir",
                              d + "/state", "--socket", sock, "--create-key"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: unix_socket_open(sock) or p.poll() is not None, what="socket")
        self.assertTrue(stat.S_ISSOCK(os.lstat(sock).st_mode))
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=20), 0)
        self.assertFalse(os.path.exists(sock), "the socket file outlived the daemon")
        # A stale socket left by a crash is replaced at start.
        p = subprocess.Popen([binary("CREDVAULTD"), "--config", "/dev/null", "--state-dir",
                              d + "/state", "--socket", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(sock) or p.poll() is not None, what="socket")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=20)
        self.assertTrue(os.path.exists(sock))
        p = subprocess.Popen([binary("CREDVAULTD"), "--config", "/dev/null", "--state-dir",
                              d + "/state", "--socket", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        def accepts():
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(sock)
                return True
            except OSError:
                return False
            finally:
                c.close()
        try:
            wait_for(accepts, what="the new daemon accepts on the socket")
        finally:
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), 0)
        self.assertFalse(os.path.exists(sock))


class GatewayStart(unittest.TestCase):
    def test_config_errors_and_a_taken_port(self):
        conf = os.path.join(W.dir, "gw-bad.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1:1  # comment\nlisen = x\n")
        r = run([binary("CREDVAULT_GATEWAY"), "--config", conf])
        assert_one_actionable_line(self, r, EXIT_CONFIG,
                                   conf + ":2: unknown setting 'lisen' (did you mean 'listen'?)")
        r = run([binary("CREDVAULT_GATEWAY"), "--config", os.path.join(W.dir, "none.conf")])
        assert_one_actionable_line(self, r, EXIT_CONFIG, "none.conf does not exist")
        r = run([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null", "--set", "max_bdy=1"])
        assert_one_actionable_line(self, r, EXIT_CONFIG, "did you mean 'max_body'")
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        try:
            r = run([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null", "--listen",
                     "127.0.0.1:%d" % taken.getsockname()[1]])
            assert_one_actionable_line(self, r, EXIT_UNAVAILABLE, "in use")
        finally:
            taken.close()


def parse_exposition(text):
    """Prometheus text format 0.0.4 -> {(name, frozenset(labels)): value}; checks that every
    sample's family was declared with # TYPE first and that names follow the conventions."""
    import re
    samples, types = {}, {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, "family declared twice: " + name
            types[name] = kind
            if kind == "counter":
                assert name.endswith("_total"), name
            continue
        if line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), {}
        if m.group(3):
            pos = 0
            for lm in label_re.finditer(m.group(3)):
                assert lm.start() == pos, line
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
            assert pos == len(m.group(3)), line
        family = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        assert family in types, "sample before its # TYPE: " + line
        assert name.startswith("credvault_"), name
        samples[(name, frozenset(labels.items()))] = float(m.group(4))
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


class Metrics(unittest.TestCase):
    def scrape(self, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.getheader("Content-Type").startswith("text/plain; version=0.0.4"))
            return parse_exposition(r.read().decode())
        finally:
            conn.close()

    def test_scrape_and_parse(self):
        d = Daemon(W.dir + "/metrics")
        os.makedirs(d.dir, exist_ok=True)
        d.start()
        d.add_associate("carol", "carol-Pw-5")
        W.secrets.add("carol-Pw-5")
        mport = free_port()
        gw = Gateway(W.dir, d.socket, ["--set", "metrics_listen=127.0.0.1:%d" % mport])
        try:
            gw.start()
            # The public port does not serve /metrics.
            self.assertEqual(gw.request("GET", "/metrics")[0], 404)
            ok = "Basic " + base64.b64encode(b"carol:carol-Pw-5").decode()
            bad = "Basic " + base64.b64encode(b"carol:wrong").decode()
            hdr = {"Content-Type": "application/json"}
            body = json.dumps({"Type": "imap", "Credentials": {"PublicValue": "c@x",
                                                                "SecretValue": "m-Secret-9"}})
            W.secrets.add("m-Secret-9")
            st = gw.request("POST", "/api/v1/Agents/User/SaveUntrustedCredentials", body,
                            dict(hdr, Authorization=ok))[0]
            self.assertEqual(st, 204)
            for _ in range(3):
                st = gw.request("POST", "/api/v1/Agents/User/GetUntrustedCredentials",
                                json.dumps({"Type": "imap"}), dict(hdr, Authorization=ok))[0]
                self.assertEqual(st, 200)
            st = gw.request("POST", "/api/v1/Agents/User/GetUntrustedCredentials",
                            json.dumps({"Type": "imap"}), dict(hdr, Authorization=bad))[0]
            self.assertEqual(st, 401)
            gw.request("GET", "/healthz")
            gw.request("GET", "/no/such/path?secret=x")

            samples, types = self.scrape(mport)
            self.assertEqual(types["credvault_gateway_request_duration_seconds"], "histogram")
            self.assertEqual(value(samples, "credvault_gateway_requests_total", route="rest",
                                   status="200"), 3)
            self.assertEqual(value(samples, "credvault_gateway_requests_total", route="rest",
                                   status="401"), 1)
            self.assertEqual(value(samples, "credvault_gateway_requests_total", route="other",
                                   status="404"), 2)  # /metrics on the public port too
            self.assertEqual(value(samples, "credvault_gateway_auth_total", outcome="success"), 4)
            self.assertEqual(value(samples, "credvault_gateway_auth_total", outcome="failure"), 1)
            self.assertEqual(value(samples, "credvault_gateway_auth_total", outcome="throttled"),
                             0)
            # The histogram: cumulative buckets, +Inf = count.
            op = "GetUntrustedCredentials"
            buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                              if k[0] == "credvault_gateway_request_duration_seconds_bucket"
                              and dict(k[1]).get("operation") == op))
            self.assertEqual(buckets[-1][0], float("inf"))
            self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
            self.assertEqual(buckets[-1][1], value(
                samples, "credvault_gateway_request_duration_seconds_count", operation=op))
            self.assertEqual(buckets[-1][1], 4)
            self.assertGreater(value(samples, "credvault_gateway_request_duration_seconds_sum",
                                     operation=op), 0)
            self.assertGreaterEqual(value(samples, "credvault_gateway_connections_open"), 0)
            self.assertEqual(value(samples, "credvault_gateway_daemon_up"), 1)
            # The daemon's figures (the test runs as root: a front end).
            self.assertEqual(value(samples, "credvault_daemon_credentials"), 1)
            self.assertEqual(value(samples, "credvault_daemon_associates"), 1)
            self.assertGreaterEqual(value(samples, "credvault_daemon_commits_total"), 2)
            self.assertGreaterEqual(value(samples, "credvault_daemon_writes_per_commit"), 1)
            self.assertEqual(value(samples, "credvault_daemon_password_workers"), 2)
            self.assertEqual(value(samples, "credvault_daemon_password_queue_length"), 0)
            self.assertEqual(value(samples, "credvault_daemon_audit_accepting"), 1)
            if pglib.wanted():
                # LMDB's map; a vault in PostgreSQL has none.
                self.assertEqual(value(samples, "credvault_daemon_map_size_bytes"), 0)
            else:
                self.assertGreater(value(samples, "credvault_daemon_map_size_bytes"), 0)
            # No label value comes from the client.
            text = "\n".join(repr(k) for k in samples)
            self.assertNotIn("no/such", text)
            self.assertNotIn("secret", text)

            d.stop()
            samples, _ = self.scrape(mport)
            self.assertEqual(value(samples, "credvault_gateway_daemon_up"), 0)
            self.assertIsNone(value(samples, "credvault_daemon_credentials"))
        finally:
            gw.stop()
            d.stop()

    @unittest.skipIf(os.geteuid() != 0, "needs root to run the gateway as another user")
    def test_a_gateway_run_by_another_user_gets_no_daemon_figures(self):
        # A local user who starts their own gateway (or calls Vault.metrics) is neither a
        # system user nor a configured front end: the daemon refuses.
        mport = free_port()
        gw = Gateway(W.dir, W.daemon.socket, ["--set", "metrics_listen=127.0.0.1:%d" % mport],
                     user=65534)
        try:
            gw.start()
            conn = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            samples, _ = parse_exposition(text)
            self.assertEqual(value(samples, "credvault_gateway_daemon_up"), 1)
            self.assertIsNone(value(samples, "credvault_daemon_credentials"))
            self.assertIn("daemon refused Vault.metrics: not-authenticated", text)
        finally:
            gw.stop()

    def test_metrics_listen_is_loopback_unless_asked(self):
        r = run([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null", "--listen",
                 "127.0.0.1:%d" % free_port(), "--set", "metrics_listen=0.0.0.0:%d" % free_port()])
        assert_one_actionable_line(self, r, EXIT_CONFIG, "metrics_listen", "loopback")


def make_pair(directory, name, key_type="ec"):
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_type == "ec" \
        else ["-newkey", "rsa:2048"]
    r = run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=" + name,
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key,
             "-out", cert] + newkey)
    assert r.returncode == 0, r.stderr
    os.chmod(key, 0o600)
    return cert, key


def tls_context(cafile, **kw):
    ctx = ssl.create_default_context(cafile=cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def peer_cert(port, cafile):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tls_context(cafile).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True), s.version()


@unittest.skipIf(shutil.which("openssl") is None, "needs the openssl CLI")
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = os.path.join(W.dir, "tls")
        os.makedirs(cls.dir, exist_ok=True)
        cls.cert, cls.key = make_pair(cls.dir, "one")
        # The files the gateway reads; the test swaps their content to test a reload.
        cls.live_cert = os.path.join(cls.dir, "live.crt")
        cls.live_key = os.path.join(cls.dir, "live.key")
        shutil.copy(cls.cert, cls.live_cert)
        shutil.copy(cls.key, cls.live_key)
        os.chmod(cls.live_key, 0o600)
        cls.gw = Gateway(W.dir, W.daemon.socket,
                         ["--set", "tls_certificate=" + cls.live_cert,
                          "--set", "tls_key=" + cls.live_key])
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()

    def https(self, method, path, body=None, headers=None, cafile=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.gw.port, timeout=30,
                                           context=tls_context(cafile or self.cert))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def test_curl_with_cacert(self):
        r = run(["curl", "-sS", "--cacert", self.cert, "-o", "-", "-w", "\n%{http_code}",
                 "https://127.0.0.1:%d/healthz" % self.gw.port])
        self.assertEqual(r.returncode, 0, r.stderr)
        body, code = r.stdout.rsplit("\n", 1)
        self.assertEqual(code, "200")
        self.assertEqual(json.loads(body)["status"], "ok")
        # Without the CA, curl refuses the certificate: it is not a public one.
        r = run(["curl", "-sS", "https://127.0.0.1:%d/healthz" % self.gw.port])
        self.assertNotEqual(r.returncode, 0)

    def test_rest_over_https(self):
        auth = "Basic " + base64.b64encode(b"alice:" + W.PASSWORDS["alice"].encode()).decode()
        secret = "tls-rest-Secret-1"
        W.secrets.add(secret)
        cred = {"Type": "imap", "Credentials": {"PublicValue": "alice@tls", "SecretValue": secret,
                                                "IsActive": True}}
        status, _, body = self.https("POST", "/api/v1/Agents/User/SaveUntrustedCredentials",
                                     json.dumps(cred), {"Authorization": auth,
                                                        "Content-Type": "application/json"})
        self.assertEqual(status, 204, body)
        status, _, body = self.https("POST", "/api/v1/Agents/User/GetUntrustedCredentials",
                                     json.dumps({"Type": "imap"}),
                                     {"Authorization": auth, "Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        mine = [c for c in json.loads(body) if c["PublicValue"] == "alice@tls"]
        self.assertEqual([c["SecretValue"] for c in mine], [secret])

    def test_zeep_over_https(self):
        try:
            import requests
            import zeep
            from zeep.transports import Transport
        except ImportError:
            self.skipTest("python3-zeep is not installed")
        session = requests.Session()
        session.trust_env = False  # $REQUESTS_CA_BUNDLE would replace `verify`
        session.verify = self.cert
        base_url = "https://127.0.0.1:%d/Remote/Services88/" % self.gw.port
        principal = zeep.Client(base_url + "SoPrincipal.svc?wsdl",
                                transport=Transport(session=session))
        r = principal.service.AuthenticateUsernamePassword(UserName="bob",
                                                           Password=W.PASSWORDS["bob"])
        self.assertTrue(r.body.AuthenticationSucceeded)
        ticket = r.body.Credentials.Ticket
        W.secrets.add(ticket)
        user = zeep.Client(base_url + "User.svc?wsdl", transport=Transport(session=session))
        # The WSDL names the service at https:// (the request came over TLS).
        self.assertTrue(user.service._binding_options["address"].startswith("https://"),
                        user.service._binding_options)
        g = user.service.GetUntrustedCredentials(Type="imap",
                                                 _soapheaders={"Credentials": {"Ticket": ticket}})
        self.assertTrue(g.header.Succeeded, g.header.ExceptionInfo)

    def test_plain_http_to_the_tls_port_gets_a_clear_answer(self):
        status, headers, body = self.gw.request("GET", "/healthz")
        self.assertEqual(status, 400)
        self.assertIn(b"https://", body)
        self.assertIn(b"HTTPS", body)
        # The port still serves TLS afterwards.
        self.assertEqual(self.https("GET", "/healthz")[0], 200)

    def test_only_tls_1_2_and_later_with_forward_secret_ciphers(self):
        _, version = peer_cert(self.gw.port, self.cert)
        self.assertIn(version, ("TLSv1.2", "TLSv1.3"))
        old = tls_context(self.cert)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLError):
                old.wrap_socket(raw, server_hostname="127.0.0.1")
        # TLS 1.2 without ECDHE (no forward secrecy) is refused too.
        static = tls_context(self.cert)
        static.maximum_version = ssl.TLSVersion.TLSv1_2
        static.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA")
        with socket.create_connection(("127.0.0.1", self.gw.port), timeout=10) as raw:
            with self.assertRaises(ssl.SSLError):
                static.wrap_socket(raw, server_hostname="127.0.0.1")

    def test_sighup_swaps_the_certificate_without_dropping_connections(self):
        two_cert, two_key = make_pair(self.dir, "two")
        before, _ = peer_cert(self.gw.port, self.cert)
        # A keep-alive connection opened before the reload.
        conn = http.client.HTTPSConnection("127.0.0.1", self.gw.port, timeout=30,
                                           context=tls_context(self.cert))
        conn.request("GET", "/healthz")
        self.assertEqual(conn.getresponse().read() and 200, 200)
        try:
            shutil.copy(two_cert, self.live_cert)
            shutil.copy(two_key, self.live_key)
            self.gw.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: peer_cert_or_none(self.gw.port, two_cert) is not None,
                     what="the new certificate")
            after, _ = peer_cert(self.gw.port, two_cert)
            self.assertNotEqual(before, after)
            # The old connection still works, with the old certificate.
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            # A pair that does not load leaves the current one in place.
            with open(self.live_key, "w") as f:
                f.write("not a key\n")
            failed = read(self.gw.logs[-1]).count("TLS reload failed")
            self.gw.proc.send_signal(signal.SIGHUP)
            # Once the gateway has tried (its log says so; a loaded host may take seconds),
            # the current pair still serves.
            wait_for(lambda: read(self.gw.logs[-1]).count("TLS reload failed") > failed,
                     what="the failed reload's log line")
            self.assertEqual(peer_cert(self.gw.port, two_cert)[0], after)
            self.assertIsNone(self.gw.proc.poll())
        finally:
            conn.close()
            shutil.copy(self.cert, self.live_cert)
            shutil.copy(self.key, self.live_key)
            self.gw.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: peer_cert_or_none(self.gw.port, self.cert) is not None,
                     what="the first certificate again")


def peer_cert_or_none(port, cafile):
    try:
        return peer_cert(port, cafile)
    except (ssl.SSLError, OSError):
        return None


@unittest.skipIf(shutil.which("openssl") is None, "needs the openssl CLI")
class TlsStart(unittest.TestCase):
    def gateway(self, *args, env=None):
        return run([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null", "--vault-socket",
                    W.daemon.socket] + list(args), env=env, timeout=10)

    def test_refusals(self):
        d = os.path.join(W.dir, "tls-start")
        os.makedirs(d, exist_ok=True)
        cert, key = make_pair(d, "s")
        other_cert, other_key = make_pair(d, "o")
        port = "127.0.0.1:%d" % free_port()
        os.chmod(key, 0o644)
        r = self.gateway("--listen", port, "--set", "tls_certificate=" + cert,
                         "--set", "tls_key=" + key)
        assert_one_actionable_line(self, r, EXIT_NO_PERMISSION, key, "chmod 600")
        os.chmod(key, 0o600)
        r = self.gateway("--listen", port, "--set", "tls_certificate=" + cert,
                         "--set", "tls_key=" + other_key)
        assert_one_actionable_line(self, r, EXIT_CONFIG, "does not belong to the certificate")
        r = self.gateway("--listen", port, "--set", "tls_certificate=" + cert)
        assert_one_actionable_line(self, r, EXIT_CONFIG, "both tls_certificate and tls_key")
        r = self.gateway("--listen", port, "--set", "tls_certificate=" + key,
                         "--set", "tls_key=" + key)
        assert_one_actionable_line(self, r, EXIT_CONFIG, "no PEM certificate")
        env = dict(os.environ)
        env.pop("CREDENTIALS_DIRECTORY", None)
        r = self.gateway("--listen", port, "--set", "tls_certificate=tls.crt",
                         "--set", "tls_key=tls.key", env=env)
        assert_one_actionable_line(self, r, EXIT_CONFIG, "CREDENTIALS_DIRECTORY", "LoadCredential")
        # Plain HTTP beyond loopback must be asked for.
        r = self.gateway("--listen", "0.0.0.0:%d" % free_port())
        assert_one_actionable_line(self, r, EXIT_CONFIG, "plain HTTP", "tls_certificate",
                                   "plain_http = yes")

    def test_systemd_credentials_and_explicit_plain_http(self):
        d = os.path.join(W.dir, "tls-cred")
        os.makedirs(d, exist_ok=True)
        cert, key = make_pair(d, "c")
        creds = os.path.join(d, "credentials")
        os.makedirs(creds, exist_ok=True)
        shutil.copy(cert, os.path.join(creds, "tls.crt"))
        shutil.copy(key, os.path.join(creds, "tls.key"))
        os.chmod(os.path.join(creds, "tls.key"), 0o400)
        for args, env, scheme in (
                (["--set", "tls_certificate=tls.crt", "--set", "tls_key=tls.key"],
                 {"CREDENTIALS_DIRECTORY": creds}, "https"),
                (["--set", "plain_http=yes"], {}, "http")):
            port = free_port()
            p = subprocess.Popen([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null",
                                  "--vault-socket", W.daemon.socket,
                                  "--listen", "0.0.0.0:%d" % port] + args,
                                 env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: peer_port_open(port) or p.poll() is not None, what="port")
                self.assertIsNone(p.poll())
                if scheme == "https":
                    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                                    context=tls_context(cert))
                else:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/healthz")
                self.assertEqual(c.getresponse().status, 200)
                c.close()
            finally:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=20)


def peer_port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
