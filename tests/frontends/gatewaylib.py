"""Harness for the gateway integration tests: the REAL credvaultd on a socket in a temporary
directory, the REAL credvault-gateway on a loopback port, associates seeded with the REAL
credvaultctl. Binaries come from $CREDVAULTD, $CREDVAULTCTL and $CREDVAULT_GATEWAY (set by
meson). Standard library only (the zeep test adds python3-zeep).

Every daemon and gateway log is kept; scan_logs() fails if any secret the test used (a
password, ticket or credential value) appears in one.
"""

import http.client
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import pglib

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def ns(version):
    return "http://www.superoffice.net/ws/crm/NetServer/Services%d" % version


def binary(var):
    path = os.environ.get(var)
    if not path or not os.path.exists(path):
        print("skipping: $%s is not set to a built binary" % var)
        sys.exit(77)
    return path


def read(path, mode="r"):
    with open(path, mode, **({} if "b" in mode else {"errors": "replace"})) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unix_socket_open(path):
    """Whether something accepts connections on the Unix socket `path` (the file exists from
    bind(), before listen())."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(path)
        return True
    except OSError:
        return False


def port_open(port):
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def wait_for(predicate, timeout=30.0, what="condition"):
    """Polls `predicate` until it holds; fails naming `what` after `timeout` seconds (generous:
    a loaded CI host can deschedule a starting process for seconds; a pass returns at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


class Daemon:
    """A credvaultd; with CREDVAULT_TEST_STORE=postgresql its records live in a fresh database
    of the process's throw-away PostgreSQL (pglib.py), kept across its restarts."""

    def __init__(self, directory, settings=()):
        self.dir = directory
        self.socket = os.path.join(directory, "credvaultd.sock")
        if pglib.wanted() and not pglib.available():
            print("skipping: PostgreSQL 15 is not installed (scripts/deps.sh installs it)")
            sys.exit(77)
        self.settings = pglib.daemon_settings() + list(settings)
        self.proc = None
        self.logs = []

    def start(self):
        log = os.path.join(self.dir, "credvaultd.%d.log" % len(self.logs))
        self.logs.append(log)
        args = [binary("CREDVAULTD"), "--config", "/dev/null",
                "--state-dir", os.path.join(self.dir, "state"),
                "--socket", self.socket, "--create-key",
                "--set", "password_ops_limit=1", "--set", "password_mem_limit=8192"]
        for s in self.settings:
            args += ["--set", s]
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        with open(log, "w") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: unix_socket_open(self.socket) or self.proc.poll() is not None,
                 what="credvaultd socket")
        assert self.proc.poll() is None, read(log)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def ctl(self, *args, stdin=None, check=True):
        r = subprocess.run([binary("CREDVAULTCTL"), "--socket", self.socket] + list(args),
                           input=stdin, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError("credvaultctl %s: %d %s" % (args, r.returncode, r.stderr))
        return r

    def add_associate(self, name, password, *flags):
        self.ctl("associate", "add", name, "--password-stdin", *flags, stdin=password + "\n")
        out = self.ctl("--json", "associate", "show", name).stdout
        m = re.search(r'"(?:AssociateId|associateId)"\s*:\s*(\d+)', out)
        return int(m.group(1)) if m else None


# Log file numbers, unique in the process: several Gateway objects share a World's directory,
# and a second "gateway.0.log" opened with "w" truncated the first gateway's log under it
# (its later lines landed after a run of NULs, its earlier ones were lost to scan_logs).
_gateway_logs = itertools.count()


class Gateway:
    def __init__(self, directory, vault_socket, args=(), user=None):
        self.dir = directory
        self.vault_socket = vault_socket
        self.args = list(args)
        self.user = user  # a uid to run as (the test must be root), or None
        self.port = None
        self.proc = None
        self.logs = []

    def start(self):
        # free_port() gives the port up before the gateway binds it: a test running beside this
        # one may take it meanwhile. Then (the gateway says so and exits) another port is tried.
        for attempt in range(5):
            self.port = free_port()
            log = os.path.join(self.dir, "gateway.%d.log" % next(_gateway_logs))
            self.logs.append(log)
            with open(log, "w") as out:
                self.proc = subprocess.Popen(
                    [binary("CREDVAULT_GATEWAY"), "--config", "/dev/null",
                     "--vault-socket", self.vault_socket,
                     "--listen", "127.0.0.1:%d" % self.port] + self.args,
                    stdout=out, stderr=subprocess.STDOUT,
                    **({} if self.user is None else {"user": self.user, "group": self.user,
                                                     "extra_groups": []}))

            # Its start line comes once it listens (a connection could reach another process
            # that took the port).
            wait_for(lambda: " listening on " in read(log) or self.proc.poll() is not None,
                     what="the gateway's start line in " + log)
            if self.proc.poll() is None or "in use by another process" not in read(log):
                break
            self.logs.remove(log)  # a start that never served: tests read logs[0] as the first
        assert self.proc.poll() is None, read(log)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=timeout)
            self.proc = None
            return rc
        self.proc = None
        return None

    def refusal(self, args, timeout=20):
        """Starts the gateway with `args` expecting it to refuse: (exit status, stderr)."""
        r = subprocess.run([binary("CREDVAULT_GATEWAY"), "--config", "/dev/null",
                            "--vault-socket", self.vault_socket or "/nonexistent",
                            "--listen", "127.0.0.1:%d" % free_port()] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def request(self, method, path, body=None, headers=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def soap(self, path, envelope, version=12, action=None, extra_headers=None):
        headers = dict(extra_headers or {})
        if version == 11:
            headers["Content-Type"] = "text/xml; charset=utf-8"
            if action is not None:
                headers["SOAPAction"] = '"%s"' % action
        else:
            ct = "application/soap+xml; charset=utf-8"
            if action is not None:
                ct += '; action="%s"' % action
            headers["Content-Type"] = ct
        if isinstance(envelope, str):
            envelope = envelope.encode("utf-8")
        return self.request("POST", path, envelope, headers)


class World:
    """A daemon with four associates (alice: user, bob: user, admin: userAdmin, sys: system)
    and a gateway in front of it."""

    PASSWORDS = {"alice": "alice-Pw-1", "bob": "bob-Pw-2", "admin": "admin-Pw-3",
                 "sys": "sys-Pw-4"}

    def __init__(self, daemon_settings=(), gateway_args=()):
        self.dir = tempfile.mkdtemp(prefix="credvault-gw-")
        os.chmod(self.dir, 0o755)
        self.daemon = Daemon(self.dir, daemon_settings)
        self.gateway = Gateway(self.dir, None, gateway_args)
        self.secrets = set(self.PASSWORDS.values())
        try:
            self.daemon.start()
            self.ids = {}
            for name, flags in (("alice", ()), ("bob", ()), ("admin", ("--user-admin",)),
                                ("sys", ("--system",))):
                self.ids[name] = self.daemon.add_associate(name, self.PASSWORDS[name], *flags)
            self.gateway.vault_socket = self.daemon.socket
            self.gateway.start()
        except BaseException:
            self.close()
            raise

    def close(self, keep=False):
        try:
            self.gateway.stop()
        finally:
            self.daemon.stop()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        return self.daemon.logs + self.gateway.logs

    def finish(self):
        """End of a test module: fails if a log holds a secret, and closes either way."""
        try:
            self.scan_logs()
        finally:
            self.close()

    def scan_logs(self):
        for path in self.logs():
            text = read(path)
            # NULs: two processes wrote one file, and what one wrote is lost to this scan.
            if "\0" in text:
                raise AssertionError("%s was overwritten while in use" % path)
            for secret in self.secrets:
                if secret and secret in text:
                    raise AssertionError("%s contains a secret (%r...)" % (path, secret[:4]))


# ---- envelopes ----------------------------------------------------------------------------

def envelope(version, body, ticket=None, app_token=None, soap=12, headers_in_header=False,
             prefix="User"):
    """A request envelope in the layout of SuperOffice's examples (headers directly under
    Envelope) or, with headers_in_header, inside <Header>."""
    env_ns = SOAP12 if soap == 12 else SOAP11
    hdrs = ""
    if app_token is not None:
        hdrs += "<%s:ApplicationToken>%s</%s:ApplicationToken>" % (prefix, app_token, prefix)
    if ticket is not None:
        hdrs += "<%s:Credentials><%s:Ticket>%s</%s:Ticket></%s:Credentials>" % (
            prefix, prefix, ticket, prefix, prefix)
    if headers_in_header and hdrs:
        hdrs = "<SOAP-ENV:Header>%s</SOAP-ENV:Header>" % hdrs
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<SOAP-ENV:Envelope xmlns:SOAP-ENV="%s" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:%s="%s">%s'
            '<SOAP-ENV:Body>%s</SOAP-ENV:Body></SOAP-ENV:Envelope>'
            % (env_ns, prefix, ns(version), hdrs, body))


def credential_xml(valid_from="2021-03-25T21:36:23Z", valid_to="0001-01-01T00:00:00",
                   comment="", secret="", public="", active="true", omit_secret=False):
    s = ("<User:Credentials xsi:type=\"User:UntrustedCredentials\">"
         "<User:ValidFrom>%s</User:ValidFrom><User:ValidTo>%s</User:ValidTo>"
         "<User:Comment>%s</User:Comment>" % (valid_from, valid_to, comment))
    if not omit_secret:
        s += "<User:SecretValue>%s</User:SecretValue>" % secret
    s += "<User:PublicValue>%s</User:PublicValue><User:IsActive>%s</User:IsActive>" % (
        public, active)
    return s + "</User:Credentials>"


def op_xml(op, associate=None, type_=None, credentials=None, public=None):
    inner = ""
    if associate is not None:
        inner += "<User:AssociateId>%d</User:AssociateId>" % associate
    if type_ is not None:
        inner += "<User:Type>%s</User:Type>" % type_
    if credentials is not None:
        inner += credentials
    if public is not None:
        inner += "<User:PublicValue>%s</User:PublicValue>" % public
    return "<User:%s>%s</User:%s>" % (op, inner, op)


class Reply:
    """A parsed SOAP response."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        self.root = ET.fromstring(body)
        self.env_ns = self.root.tag[1:].split("}")[0]

    def find_all(self, local):
        return [e for e in self.root.iter() if e.tag.endswith("}" + local)]

    def text(self, local):
        found = self.find_all(local)
        return (found[0].text or "") if found else None

    @property
    def succeeded(self):
        s = self.text("Succeeded")
        return s == "true"

    @property
    def exception_type(self):
        return self.text("ExceptionType")

    @property
    def message(self):
        return self.text("Message")

    @property
    def is_fault(self):
        return bool(self.find_all("Fault"))

    def credentials(self):
        out = []
        for c in self.find_all("UntrustedCredentials"):
            item = {}
            for child in c:
                item[child.tag.split("}")[1]] = child.text or ""
            out.append(item)
        return out


def shape(element):
    """Canonical shape of an element tree: names, xsi:nil, trimmed leaf text. Not xsi:type:
    SuperOffice's published examples carry it on every value, the gateway (as WCF) on none."""
    parts = [element.tag]
    t = element.get("{%s}nil" % XSI)
    if t:
        parts.append("[nil=%s]" % t)
    children = list(element)
    if children:
        parts.append("{" + "".join(shape(c) for c in children) + "}")
    else:
        parts.append("(%s)" % (element.text or "").strip())
    return "".join(parts)


def body_shape(xml_bytes):
    root = ET.fromstring(xml_bytes)
    body = [c for c in root if c.tag.endswith("}Body")][0]
    return shape(body)
