#!/usr/bin/python3
"""REST integration test: the real credvaultd and the real credvault-gateway on loopback.

Starts a daemon (onsite mode) in a temporary directory with four associates (alice: user,
bob: user, admin: userAdmin, sys: system), a gateway without and one with a URL prefix, and
for the partner-app rows a second daemon in online mode. Then talks HTTP/1.1 to the gateway:
every operation with every body type, camelCase and PascalCase, the permission table of
DESIGN.md section 3, each authentication scheme, and a hostile corpus that must be answered
with a clear error while nothing is stored.

Usage: rest-gateway-test.py --daemon PATH --ctl PATH --gateway PATH [unittest options]
Only the Python standard library is used.
"""

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import pglib
from gatewaylib import free_port, unix_socket_open, wait_for

ARGS = None
DC_NS = "http://schemas.datacontract.org/2004/07/SuperOffice.CRM.Services"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
AGENT = "/api/v1/Agents/User/"
OPS = ["CreateDefaultUntrustedCredentials", "GetUntrustedCredentials",
       "GetUntrustedCredentialsForAssociate", "SaveUntrustedCredentials",
       "SaveUntrustedCredentialsForAssociate", "RemoveUntrustedCredentials",
       "RemoveUntrustedCredentialsForAssociate"]
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw", "sys": "sys-pw"}
IDS = {"alice": 1, "bob": 2, "admin": 3, "sys": 4}


class Stack:
    """One credvaultd plus gateways, all in one temporary directory."""

    def __init__(self, mode="onsite"):
        self.dir = tempfile.mkdtemp(prefix="credvault-rest-")
        self.socket = os.path.join(self.dir, "vault.sock")
        self.procs = []
        self.logs = []
        self.daemon = self.spawn("daemon", [
            ARGS.daemon, "--state-dir", os.path.join(self.dir, "state"), "--socket", self.socket,
            "--create-key", "--set", "password_ops_limit=1", "--set", "password_mem_limit=8192",
            "--set", "mode=" + mode] + [a for kv in pglib.daemon_settings() for a in ("--set", kv)])
        wait_for(lambda: unix_socket_open(self.socket), what="the daemon's socket")

    def spawn(self, name, argv):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def gateway(self, prefix=None):
        port = free_port()
        argv = [ARGS.gateway, "--vault-socket", self.socket, "--listen", "127.0.0.1:%d" % port]
        if prefix:
            argv += ["--prefix", prefix]
        proc = self.spawn("gateway-%d" % port, argv)
        log = os.path.join(self.dir, "gateway-%d.log" % port)

        # Its start line comes once it listens (a connection could reach another process that
        # took the port; then the gateway says so and exits).
        def started():
            with open(log, errors="replace") as f:
                return " listening on " in f.read() or proc.poll() is not None
        wait_for(started, what="the gateway's start line in " + log)
        assert proc.poll() is None, open(log, errors="replace").read()
        return port

    def ctl(self, *args, stdin=None, env=None, check=True):
        e = dict(os.environ)
        e.pop("CREDVAULT_TICKET", None)
        if env:
            e.update(env)
        r = subprocess.run([ARGS.ctl, "--socket", self.socket] + list(args), input=stdin,
                           capture_output=True, text=True, env=e)
        if check and r.returncode != 0:
            raise RuntimeError("credvaultctl %s: %s" % (" ".join(args), r.stderr))
        return r

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self.logs:
            log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def basic(name, password=None):
    password = PASSWORDS[name] if password is None else password
    return "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()


# ---- body encodings ------------------------------------------------------------------------

def camel(name):
    return name[0].lower() + name[1:]


def encode_json(params, case):
    def conv(d):
        return {case(k): (conv(v) if isinstance(v, dict) else v) for k, v in d.items()}
    return json.dumps(conv(params)).encode()


def encode_xml(params, case):
    root = ET.Element("Request")
    def add(parent, d):
        for k, v in d.items():
            e = ET.SubElement(parent, case(k))
            if isinstance(v, dict):
                add(e, v)
            elif v is None:
                e.set("{%s}nil" % XSI, "true")
            elif isinstance(v, bool):
                e.text = "true" if v else "false"
            else:
                e.text = str(v)
    add(root, params)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def encode_form(params, case):
    pairs = []
    for k, v in params.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                pairs.append(("%s.%s" % (case(k), case(k2)), json.dumps(v2) if isinstance(v2, bool) else str(v2)))
        else:
            pairs.append((case(k), str(v)))
    return urllib.parse.urlencode(pairs).encode()


BODY_TYPES = {
    "application/json": encode_json,
    "text/json": encode_json,
    "application/xml": encode_xml,
    "text/xml": encode_xml,
    "application/x-www-form-urlencoded": encode_form,
}


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


class RestTest(unittest.TestCase):
    stack = None
    port = None
    prefixed_port = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        for name in ["alice", "bob", "admin", "sys"]:
            flags = {"admin": ["--user-admin"], "sys": ["--system"]}.get(name, [])
            cls.stack.ctl("associate", "add", name, *flags, "--password-stdin",
                          stdin=PASSWORDS[name] + "\n")
        cls.port = cls.stack.gateway()
        cls.prefixed_port = cls.stack.gateway("/Cust12345")
        cls.tickets = {n: cls.login(n) for n in PASSWORDS}
        cls.tokens = {n: cls.stack.ctl("token", "add", "rest-" + n, "--associate",
                                       str(IDS[n])).stdout.strip() for n in PASSWORDS}

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    @classmethod
    def login(cls, name):
        return cls.stack.ctl("login", name, "--password-stdin",
                             stdin=PASSWORDS[name] + "\n").stdout.strip()

    # ---- HTTP ----------------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, port=None, source=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=30,
                                          source_address=(source, 0) if source else None)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            headers = dict(headers or {})
            if body is not None:
                headers.setdefault("Content-Length", str(len(body)))
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            r = conn.getresponse()
            hdrs = {}
            for k, v in r.getheaders():
                hdrs.setdefault(k.lower(), [])
                hdrs[k.lower()].append(v)
            data = r.read()
            return Response(r.status, {k: ", ".join(v) if k != "www-authenticate" else v
                                       for k, v in hdrs.items()}, data)
        finally:
            conn.close()

    def call(self, op, params=None, auth=None, ctype="application/json", case=str, accept=None,
             query="", raw=None, headers=None, port=None, prefix="", source=None):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = auth
        if accept:
            h["Accept"] = accept
        body = raw
        if body is None and params is not None:
            body = BODY_TYPES[ctype](params, case)
        if body is not None and ctype:
            h["Content-Type"] = ctype + ("; charset=utf-8" if "xml" not in ctype else "")
        return self.request("POST", prefix + AGENT + op + query, body if body is not None else b"",
                            h, port, source)

    def as_user(self, name, op, params=None, **kw):
        return self.call(op, params, auth="SoTicket " + self.tickets[name], **kw)

    def get(self, name, type_, associate=None):
        if associate is None:
            r = self.as_user(name, "GetUntrustedCredentials", {"Type": type_})
        else:
            r = self.as_user(name, "GetUntrustedCredentialsForAssociate",
                             {"AssociateId": associate, "Type": type_})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def stored(self, associate, type_):
        """What the vault holds, read by the system user through credvaultctl."""
        r = self.stack.ctl("--json", "get", type_, "--associate", str(associate))
        return json.loads(r.stdout)

    def assertError(self, r, status, field=None):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.header("content-type").startswith("application/json"), r)
        body = r.json()
        self.assertIn("Message", body)
        self.assertIn("MessageDetail", body)
        if field:
            self.assertIn(field, body["MessageDetail"])
        return body

    # ---- every operation, every body type, both casings ----------------------------------

    def test_every_operation_with_every_body_type_and_casing(self):
        n = 0
        for ctype in BODY_TYPES:
            for case in (str, camel):
                n += 1
                t = "all-%d" % n
                cred = {"ValidFrom": "2024-05-01T14:00:00.25+02:00", "ValidTo": "2030-01-01T00:00:00",
                        "Comment": "c %d" % n, "SecretValue": "s3cr\u00e9t-%d" % n,
                        "PublicValue": "alice@imap-%d" % n, "IsActive": True}
                with self.subTest(ctype=ctype, case=case.__name__):
                    kw = dict(ctype=ctype, case=case)
                    r = self.as_user("alice", "SaveUntrustedCredentials",
                                     {"Type": t, "Credentials": cred}, **kw)
                    self.assertEqual(r.status, 204, r)
                    self.assertEqual(r.body, b"")
                    r = self.as_user("alice", "SaveUntrustedCredentialsForAssociate",
                                     {"AssociateId": 1, "Type": t,
                                      "Credentials": dict(cred, PublicValue="second")}, **kw)
                    self.assertEqual(r.status, 204, r)
                    r = self.as_user("alice", "GetUntrustedCredentials", {"Type": t}, **kw)
                    self.assertEqual(r.status, 200, r)
                    got = {c["PublicValue"]: c for c in r.json()}
                    self.assertEqual(set(got), {"alice@imap-%d" % n, "second"})
                    c = got["alice@imap-%d" % n]
                    self.assertEqual(c, {"ValidFrom": "2024-05-01T12:00:00.25Z",
                                         "ValidTo": "2030-01-01T00:00:00Z", "Comment": "c %d" % n,
                                         "SecretValue": "s3cr\u00e9t-%d" % n,
                                         "PublicValue": "alice@imap-%d" % n, "IsActive": True,
                                         "TableRight": None, "FieldProperties": {}})
                    for aid in (0, 1):
                        r = self.as_user("alice", "GetUntrustedCredentialsForAssociate",
                                         {"AssociateId": aid, "Type": t}, **kw)
                        self.assertEqual(r.status, 200, r)
                        self.assertEqual(len(r.json()), 2)
                    r = self.as_user("alice", "RemoveUntrustedCredentialsForAssociate",
                                     {"AssociateId": 1, "Type": t, "PublicValue": "second"}, **kw)
                    self.assertEqual(r.status, 204, r)
                    r = self.as_user("alice", "RemoveUntrustedCredentials",
                                     {"Type": t, "PublicValue": "alice@imap-%d" % n}, **kw)
                    self.assertEqual(r.status, 204, r)
                    self.assertEqual(self.get("alice", t), [])
                    self.assertEqual(self.stored(1, t), [])
                    r = self.as_user("alice", "CreateDefaultUntrustedCredentials", None, ctype=None)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json()["IsActive"], True)

    def test_create_default_matches_superoffice_shape(self):
        r = self.as_user("bob", "CreateDefaultUntrustedCredentials", ctype=None)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json; charset=utf-8")
        self.assertEqual(list(r.json().keys()), ["ValidFrom", "ValidTo", "Comment", "SecretValue",
                                                 "PublicValue", "IsActive", "TableRight",
                                                 "FieldProperties"])
        self.assertEqual(r.json()["ValidFrom"], "0001-01-01T00:00:00Z")

    def test_secret_value_absent_or_null_keeps_the_stored_secret(self):
        base = {"Type": "keep", "Credentials": {"PublicValue": "p", "SecretValue": "first"}}
        self.assertEqual(self.as_user("bob", "SaveUntrustedCredentials", base).status, 204)
        for creds in ({"PublicValue": "p", "Comment": "x"},
                      {"PublicValue": "p", "SecretValue": None, "Comment": "y"}):
            r = self.as_user("bob", "SaveUntrustedCredentials", {"Type": "keep", "Credentials": creds})
            self.assertEqual(r.status, 204, r)
            got = self.get("bob", "keep")
            self.assertEqual(got[0]["SecretValue"], "first")
            self.assertEqual(got[0]["Comment"], creds["Comment"])
        r = self.call("SaveUntrustedCredentials", ctype="application/xml",
                      auth="SoTicket " + self.tickets["bob"],
                      raw=b'<r xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Type>keep</Type>'
                          b'<Credentials><PublicValue>p</PublicValue><SecretValue i:nil="true"/>'
                          b'</Credentials></r>')
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get("bob", "keep")[0]["SecretValue"], "first")
        self.as_user("bob", "RemoveUntrustedCredentials", {"Type": "keep", "PublicValue": "p"})

    def test_xml_responses_by_accept(self):
        self.as_user("alice", "SaveUntrustedCredentials",
                     {"Type": "xmlresp", "Credentials": {"PublicValue": "p<&>", "SecretValue": "s"}})
        for accept in ("application/xml", "text/xml", "text/html, application/xml;q=0.9"):
            r = self.as_user("alice", "GetUntrustedCredentials", {"Type": "xmlresp"}, accept=accept)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.header("content-type").startswith(accept.split(",")[-1].split(";")[0].strip()), r)
            root = ET.fromstring(r.body)
            self.assertEqual(root.tag, "{%s}ArrayOfUntrustedCredentials" % DC_NS)
            item = root.find("{%s}UntrustedCredentials" % DC_NS)
            self.assertEqual(item.find("{%s}PublicValue" % DC_NS).text, "p<&>")
            self.assertEqual(item.find("{%s}SecretValue" % DC_NS).text, "s")
            self.assertEqual(item.find("{%s}ValidFrom" % DC_NS).text, "0001-01-01T00:00:00Z")
        r = self.as_user("alice", "CreateDefaultUntrustedCredentials", ctype=None, accept="text/xml")
        self.assertEqual(ET.fromstring(r.body).tag, "{%s}UntrustedCredentials" % DC_NS)
        r = self.as_user("alice", "GetUntrustedCredentials", {"Type": 5}, accept="application/xml")
        self.assertEqual(r.status, 400)
        self.assertEqual(ET.fromstring(r.body).tag, "Error")
        self.as_user("alice", "RemoveUntrustedCredentials", {"Type": "xmlresp", "PublicValue": "p<&>"})

    def test_dates_with_and_without_offset_and_fraction(self):
        cases = [("2024-05-01T12:00:00", "2024-05-01T12:00:00Z"),
                 ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
                 ("2024-05-01T14:30:00+02:30", "2024-05-01T12:00:00Z"),
                 ("2024-05-01T07:00:00.1234567-05:00", "2024-05-01T12:00:00.1234567Z"),
                 ("2024-05-01T12:00:00.5", "2024-05-01T12:00:00.5Z"),
                 ("2024-05-01", "2024-05-01T00:00:00Z"),
                 ("0001-01-01T00:00:00", "0001-01-01T00:00:00Z"),
                 ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z")]
        for i, (sent, written) in enumerate(cases):
            with self.subTest(sent=sent):
                r = self.as_user("alice", "SaveUntrustedCredentials",
                                 {"Type": "dates", "Credentials": {"PublicValue": str(i), "ValidTo": sent}})
                self.assertEqual(r.status, 204, r)
                got = {c["PublicValue"]: c for c in self.get("alice", "dates")}
                self.assertEqual(got[str(i)]["ValidTo"], written)
        for i in range(len(cases)):
            self.as_user("alice", "RemoveUntrustedCredentials", {"Type": "dates", "PublicValue": str(i)})

    def test_select_nulls_out_other_fields(self):
        self.as_user("alice", "SaveUntrustedCredentials",
                     {"Type": "sel", "Credentials": {"PublicValue": "p", "SecretValue": "s", "Comment": "c"}})
        for q in ("?$select=PublicValue,comment", "?%24select=publicvalue%2CComment"):
            r = self.as_user("alice", "GetUntrustedCredentials", {"Type": "sel"}, query=q)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), [{"ValidFrom": None, "ValidTo": None, "Comment": "c",
                                         "SecretValue": None, "PublicValue": "p", "IsActive": None,
                                         "TableRight": None, "FieldProperties": None}])
        self.as_user("alice", "RemoveUntrustedCredentials", {"Type": "sel", "PublicValue": "p"})

    def test_simple_parameters_from_the_query_string(self):
        self.as_user("alice", "SaveUntrustedCredentials",
                     {"Type": "q", "Credentials": {"PublicValue": "p"}})
        r = self.call("GetUntrustedCredentialsForAssociate", auth="SoTicket " + self.tickets["alice"],
                      ctype=None, query="?associateId=1&type=q")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(len(r.json()), 1)
        r = self.call("RemoveUntrustedCredentials", auth="SoTicket " + self.tickets["alice"],
                      ctype=None, query="?Type=q&PublicValue=p")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get("alice", "q"), [])

    # ---- DESIGN.md section 3 over REST ------------------------------------------------------

    def seed(self, owner, type_, secret="owner-secret"):
        r = self.as_user("sys", "SaveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS[owner], "Type": type_,
                          "Credentials": {"PublicValue": "p", "SecretValue": secret}})
        self.assertEqual(r.status, 204, r)

    def test_permissions_user(self):
        self.seed("bob", "perm-user")
        # Own credentials: full.
        r = self.as_user("alice", "SaveUntrustedCredentials",
                         {"Type": "perm-user", "Credentials": {"PublicValue": "mine", "SecretValue": "x"}})
        self.assertEqual(r.status, 204)
        self.assertEqual(self.get("alice", "perm-user", 0)[0]["SecretValue"], "x")
        # Another's list, save, remove: denied; nothing changes.
        r = self.as_user("alice", "GetUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["bob"], "Type": "perm-user"})
        self.assertError(r, 403)
        r = self.as_user("alice", "SaveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["bob"], "Type": "perm-user",
                          "Credentials": {"PublicValue": "p", "SecretValue": "evil"}})
        self.assertError(r, 403)
        r = self.as_user("alice", "RemoveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["bob"], "Type": "perm-user", "PublicValue": "p"})
        self.assertError(r, 403)
        self.assertEqual(self.get("sys", "perm-user", IDS["bob"])[0]["SecretValue"], "owner-secret")

    def test_permissions_user_admin(self):
        self.seed("bob", "perm-admin")
        got = self.get("admin", "perm-admin", IDS["bob"])
        self.assertEqual(len(got), 1)
        self.assertEqual(got[0]["SecretValue"], "")  # listed, secret blank
        self.assertEqual(got[0]["PublicValue"], "p")
        # May set a secret for another, never read it.
        r = self.as_user("admin", "SaveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["bob"], "Type": "perm-admin",
                          "Credentials": {"PublicValue": "p", "SecretValue": "set-by-admin"}})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get("admin", "perm-admin", IDS["bob"])[0]["SecretValue"], "")
        self.assertEqual(self.get("bob", "perm-admin")[0]["SecretValue"], "set-by-admin")
        r = self.as_user("admin", "RemoveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["bob"], "Type": "perm-admin", "PublicValue": "p"})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.get("bob", "perm-admin"), [])
        # Own credentials: full.
        self.as_user("admin", "SaveUntrustedCredentials",
                     {"Type": "perm-admin", "Credentials": {"PublicValue": "own", "SecretValue": "a"}})
        self.assertEqual(self.get("admin", "perm-admin")[0]["SecretValue"], "a")

    def test_permissions_system_user(self):
        self.seed("alice", "perm-sys", "alice-secret")
        self.assertEqual(self.get("sys", "perm-sys", IDS["alice"])[0]["SecretValue"], "alice-secret")
        r = self.as_user("sys", "RemoveUntrustedCredentialsForAssociate",
                         {"AssociateId": IDS["alice"], "Type": "perm-sys", "PublicValue": "p"})
        self.assertEqual(r.status, 204)
        self.assertEqual(self.get("alice", "perm-sys"), [])

    def test_permissions_unauthenticated(self):
        self.seed("alice", "perm-anon")
        bodies = {
            "CreateDefaultUntrustedCredentials": None,
            "GetUntrustedCredentials": {"Type": "perm-anon"},
            "GetUntrustedCredentialsForAssociate": {"AssociateId": 1, "Type": "perm-anon"},
            "SaveUntrustedCredentials": {"Type": "perm-anon", "Credentials": {"PublicValue": "x"}},
            "SaveUntrustedCredentialsForAssociate": {"AssociateId": 1, "Type": "perm-anon",
                                                     "Credentials": {"PublicValue": "x"}},
            "RemoveUntrustedCredentials": {"Type": "perm-anon", "PublicValue": "p"},
            "RemoveUntrustedCredentialsForAssociate": {"AssociateId": 1, "Type": "perm-anon",
                                                       "PublicValue": "p"},
        }
        for op, body in bodies.items():
            for auth in (None, "SoTicket 7T:bogus", basic("alice", "wrong"), "Bearer nope"):
                with self.subTest(op=op, auth=auth):
                    r = self.call(op, body, auth=auth)
                    if auth and auth.startswith("Basic") and r.status == 429:
                        continue  # repeated wrong passwords from one client are throttled
                    self.assertError(r, 401)
                    self.assertEqual(len(r.header("www-authenticate")), 3)
        self.assertEqual(len(self.stored(1, "perm-anon")), 1)

    def test_permissions_partner_app_in_online_mode(self):
        online = Stack("online")
        try:
            online.ctl("associate", "add", "carol", "--password-stdin", stdin="carol-pw\n")
            app = online.ctl("app", "add", "partner").stdout.strip()
            port = online.gateway()
            ticket = online.ctl("login", "carol", "--password-stdin", stdin="carol-pw\n",
                                env={}, check=False)
            auths = [basic("carol", "carol-pw")]
            if ticket.returncode == 0:
                auths.append("SoTicket " + ticket.stdout.strip())
            for op in OPS:
                body = None if op.startswith("Create") else {
                    "AssociateId": 0, "Type": "t", "PublicValue": "p",
                    "Credentials": {"PublicValue": "p"}}
                for auth in auths:
                    with self.subTest(op=op, auth=auth[:8]):
                        r = self.call(op, body, auth=auth, headers={"SO-AppToken": app}, port=port)
                        body_ = self.assertError(r, 403)
                        self.assertIn("partner", body_["MessageDetail"])
                        # Without a known application token: not authenticated.
                        r = self.call(op, body, auth=auth, port=port)
                        self.assertIn(r.status, (401, 403), r)
                        r = self.call(op, body, auth=auth, headers={"SO-AppToken": "unknown"},
                                      port=port)
                        self.assertIn(r.status, (401, 403), r)
        finally:
            online.stop()

    # ---- authentication schemes ------------------------------------------------------------

    def test_basic(self):
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("alice"))
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("ALICE", PASSWORDS["alice"]))
        self.assertEqual(r.status, 200, r)  # names are case-insensitive
        r = self.call("GetUntrustedCredentials", {"Type": "x"},
                      auth="bAsIc " + basic("alice").split(" ")[1])
        self.assertEqual(r.status, 200, r)
        for auth in (basic("alice", "nope"), basic("nobody", "x"), "Basic !!!!", "Basic YWxpY2U="):
            self.assertError(self.call("GetUntrustedCredentials", {"Type": "x"}, auth=auth), 401)

    def test_throttling_slows_the_guesser_and_spares_the_owner(self):
        # Someone at 127.0.0.9 guesses bob's password until throttled: 429 with Retry-After.
        statuses = []
        for _ in range(6):
            r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("bob", "guess"),
                          source="127.0.0.9")
            statuses.append(r.status)
        self.assertEqual(statuses[:3], [401, 401, 401], statuses)
        self.assertEqual(statuses[-1], 429, statuses)
        self.assertGreaterEqual(int(r.header("retry-after")), 1)
        # bob, from his own address, is let in at once; the guesser is not, even with the
        # right password.
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("bob"))
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("bob"),
                      source="127.0.0.9")
        self.assertEqual(r.status, 429, r)

    def test_soticket_in_any_case(self):
        t = self.tickets["alice"]
        for scheme in ("SoTicket", "SOTICKET", "soticket", "SOTicket", "sOtIcKeT"):
            r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="%s %s" % (scheme, t))
            self.assertEqual(r.status, 200, (scheme, r))
        self.assertError(self.call("GetUntrustedCredentials", {"Type": "x"},
                                   auth="SoTicket 7T:AAAA"), 401)

    def test_revoked_ticket_stops_working_at_once(self):
        t = self.login("bob")
        self.assertEqual(self.call("GetUntrustedCredentials", {"Type": "x"},
                                   auth="SoTicket " + t).status, 200)
        self.stack.ctl("ticket", "revoke", stdin=t + "\n")
        self.assertError(self.call("GetUntrustedCredentials", {"Type": "x"},
                                   auth="SoTicket " + t), 401)

    def test_bearer(self):
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="Bearer " + self.tokens["bob"])
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="bearer " + self.tokens["bob"])
        self.assertEqual(r.status, 200, r)
        self.assertError(self.call("GetUntrustedCredentials", {"Type": "x"},
                                   auth="Bearer cvt_unknown"), 401)

    def test_unauthorized_answer_names_the_schemes(self):
        r = self.call("GetUntrustedCredentials", {"Type": "x"})
        self.assertError(r, 401)
        schemes = [v.split(" ")[0] for v in r.header("www-authenticate")]
        self.assertEqual(schemes, ["Basic", "SoTicket", "Bearer"])
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="Negotiate abc")
        self.assertError(r, 401)

    # ---- the hostile corpus -----------------------------------------------------------------

    def hostile(self, raw, ctype="application/json", status=400, field=None, op="SaveUntrustedCredentials"):
        r = self.call(op, auth="SoTicket " + self.tickets["alice"], ctype=ctype, raw=raw)
        return self.assertError(r, status, field)

    def test_hostile_corpus_is_refused_and_nothing_is_stored(self):
        secret71 = "a" * 71
        deep = "[" * 100 + "]" * 100
        very_deep = "{\"a\":" * 5000 + "1" + "}" * 5000
        laughs = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
                  '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                  '<r><Type>hostile</Type><Credentials><PublicValue>&c;</PublicValue></Credentials></r>')
        xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               '<r><Type>hostile</Type><Credentials><PublicValue>&x;</PublicValue></Credentials></r>')
        corpus = [
            # (name, body, content type, status, field named in MessageDetail)
            ("truncated", b'{"Type":"hostile","Credentials":{"PublicValue":"p"', None, 400, "JSON"),
            ("trailing comma", b'{"Type":"hostile","Credentials":{"PublicValue":"p",}}', None, 400, "JSON"),
            ("single quotes", b"{'Type':'hostile'}", None, 400, "JSON"),
            ("comment", b'{"Type":"hostile" /* x */}', None, 400, "JSON"),
            ("trailing data", b'{"Type":"hostile","Credentials":{"PublicValue":"p"}} {}', None, 400, "JSON"),
            ("top-level array", b'[{"Type":"hostile"}]', None, 400, "object"),
            ("deep nesting", ('{"Type":"hostile","Credentials":{"PublicValue":"p","X":%s}}' % deep).encode(),
             None, 400, "nesting too deep"),
            ("very deep nesting", very_deep.encode(), None, 400, "nesting too deep"),
            ("huge number", b'{"AssociateId":1e400,"Type":"hostile","Credentials":{"PublicValue":"p"}}',
             None, 400, "AssociateId"),
            ("int32 overflow", b'{"AssociateId":2147483648,"Type":"hostile","Credentials":{"PublicValue":"p"}}',
             None, 400, "AssociateId"),
            ("long number", ('{"AssociateId":%s,"Type":"hostile","Credentials":{"PublicValue":"p"}}' % ("9" * 100)).encode(),
             None, 400, "number too long"),
            ("wrong type string", b'{"Type":5,"Credentials":{"PublicValue":"p"}}', None, 400, "Type"),
            ("wrong type bool", b'{"Type":"hostile","Credentials":{"PublicValue":"p","IsActive":"yes"}}',
             None, 400, "Credentials.IsActive"),
            ("wrong type object", b'{"Type":"hostile","Credentials":[1,2]}', None, 400, "Credentials"),
            ("wrong type secret", b'{"Type":"hostile","Credentials":{"PublicValue":"p","SecretValue":123}}',
             None, 400, "Credentials.SecretValue"),
            ("bad date", b'{"Type":"hostile","Credentials":{"PublicValue":"p","ValidFrom":"2024-13-01"}}',
             None, 400, "Credentials.ValidFrom"),
            ("duplicate key", b'{"Type":"hostile","Type":"other","Credentials":{"PublicValue":"p"}}',
             None, 400, "duplicate"),
            ("duplicate key other case", b'{"Type":"hostile","Credentials":{"PublicValue":"p","publicValue":"q"}}',
             None, 400, "duplicate"),
            ("invalid UTF-8", b'{"Type":"hostile","Credentials":{"PublicValue":"\xff\xfe"}}', None, 400, "UTF-8"),
            ("overlong UTF-8", b'{"Type":"hostile","Credentials":{"PublicValue":"\xc0\xaf"}}', None, 400, "UTF-8"),
            ("lone surrogate", b'{"Type":"hostile","Credentials":{"PublicValue":"\\ud800"}}', None, 400, "surrogate"),
            ("NUL", b'{"Type":"hostile","Credentials":{"PublicValue":"a\\u0000b"}}', None, 400, "U+0000"),
            ("secret too long", ('{"Type":"hostile","Credentials":{"PublicValue":"p","SecretValue":"%s"}}' % secret71).encode(),
             None, 400, "Credentials.SecretValue"),
            ("public value too long", ('{"Type":"hostile","Credentials":{"PublicValue":"%s"}}' % ("p" * 239)).encode(),
             None, 400, "Credentials.PublicValue"),
            ("comment too long", ('{"Type":"hostile","Credentials":{"PublicValue":"p","Comment":"%s"}}' % ("c" * 256)).encode(),
             None, 400, "Credentials.Comment"),
            ("missing credentials", b'{"Type":"hostile"}', None, 400, "Credentials"),
            ("billion laughs", laughs.encode(), "application/xml", 400, "XML"),
            ("XXE", xxe.encode(), "text/xml", 400, "XML"),
            ("undefined entity", b"<r><Type>hostile</Type><Credentials><PublicValue>&x;</PublicValue></Credentials></r>",
             "application/xml", 400, "XML"),
            ("invalid UTF-8 in XML", b"<r><Type>hostile</Type><Credentials><PublicValue>\xff</PublicValue></Credentials></r>",
             "application/xml", 400, "XML"),
            ("duplicate XML element", b"<r><Type>hostile</Type><Credentials><PublicValue>a</PublicValue>"
             b"<publicvalue>b</publicvalue></Credentials></r>", "application/xml", 400, "more than once"),
            ("XML secret too long", ("<r><Type>hostile</Type><Credentials><PublicValue>p</PublicValue><SecretValue>%s"
                                     "</SecretValue></Credentials></r>" % secret71).encode(),
             "application/xml", 400, "Credentials.SecretValue"),
            ("invalid UTF-8 in form", b"Type=hostile&Credentials.PublicValue=%ff", "application/x-www-form-urlencoded",
             400, "form"),
            ("bad escape in form", b"Type=hostile&Credentials.PublicValue=%zz", "application/x-www-form-urlencoded",
             400, "form"),
            ("duplicate form field", b"Type=hostile&type=x&Credentials.PublicValue=p",
             "application/x-www-form-urlencoded", 400, "more than once"),
            ("unsupported type", b"Type=hostile", "text/plain", 415, None),
            ("unsupported charset", b'{"Type":"hostile"}', "application/json; charset=utf-16", 415, None),
            ("REST body limit", b'{"Type":"hostile","Credentials":{"PublicValue":"p","Comment":"' + b"c" * 70000 + b'"}}',
             None, 413, None),
        ]
        for name, body, ctype, status, field in corpus:
            with self.subTest(name=name):
                ct = ctype or "application/json"
                r = self.call("SaveUntrustedCredentialsForAssociate",
                              auth="SoTicket " + self.tickets["alice"],
                              ctype=None, raw=body, headers={"Content-Type": ct})
                self.assertError(r, status, field)
                # Never echo what was sent.
                self.assertNotIn(b"hostile", r.body)
        # Nothing reached the vault.
        self.assertEqual(self.stored(1, "hostile"), [])
        self.assertEqual(self.get("alice", "hostile"), [])
        self.assertEqual(self.stored(1, "other"), [])

    def test_limits_at_the_limit_are_accepted(self):
        creds = {"PublicValue": "p" * 238, "SecretValue": "\u00e9" * 70, "Comment": "c" * 255}
        r = self.as_user("alice", "SaveUntrustedCredentials", {"Type": "limits", "Credentials": creds})
        self.assertEqual(r.status, 204, r)
        got = self.get("alice", "limits")[0]
        self.assertEqual(got["SecretValue"], "\u00e9" * 70)
        self.as_user("alice", "RemoveUntrustedCredentials", {"Type": "limits", "PublicValue": "p" * 238})
        # The REST body limit, at the limit (still a valid request).
        # Unknown members are ignored; each string stays under the JSON string limit.
        pads = b",".join(b'"Pad%d":"%s"' % (i, b"x" * 16000) for i in range(4))
        body = b'{"Type":"limits",' + pads + b',"Last":""}'
        body = body[:-2] + b"y" * (64 * 1024 - len(body)) + b'"}'
        self.assertEqual(len(body), 64 * 1024)
        r = self.call("GetUntrustedCredentials", auth="SoTicket " + self.tickets["alice"], raw=body)
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", auth="SoTicket " + self.tickets["alice"], raw=body + b" ")
        self.assertError(r, 413)

    def test_oversized_body_beyond_the_server_limit(self):
        body = b'{"Type":"big","Pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
        try:
            r = self.call("GetUntrustedCredentials", auth="SoTicket " + self.tickets["alice"], raw=body)
            self.assertEqual(r.status, 413, r)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered 413 and closed before the whole body was sent

    # ---- paths, methods, descriptions -------------------------------------------------------

    def test_get_describes_and_does_not_invoke(self):
        for op in OPS:
            r = self.request("GET", AGENT + op)
            self.assertEqual(r.status, 200, r)
            d = r.json()
            self.assertEqual(d["Name"], op)
            self.assertEqual(d["Method"], "POST")
        r = self.request("GET", AGENT.lower() + OPS[1].upper())
        self.assertEqual(r.status, 200)
        r = self.request("HEAD", AGENT + OPS[1])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        r = self.request("GET", "/api/v1/Agents/User")
        self.assertEqual(len(r.json()), 8)

    def test_unknown_paths_and_wrong_methods(self):
        r = self.request("POST", AGENT + "DeleteEverything", b"{}", {"Content-Type": "application/json"})
        self.assertError(r, 404)
        r = self.request("POST", "/api/v1/Agents/Contact/GetContact", b"")
        self.assertError(r, 404)
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            r = self.request(method, AGENT + OPS[1], b"")
            self.assertError(r, 405)
            self.assertEqual(r.header("allow"), "GET, HEAD, POST")

    def test_openapi_document(self):
        r = self.request("GET", "/api/v1/openapi.json")
        self.assertEqual(r.status, 200)
        doc = r.json()
        self.assertTrue(doc["openapi"].startswith("3."))
        for op in OPS:
            self.assertIn("post", doc["paths"][AGENT + op])
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "docs", "openapi.json"), "rb") as f:
            self.assertEqual(json.loads(f.read()), doc)

    def test_url_prefix(self):
        p = self.prefixed_port
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="SoTicket " + self.tickets["alice"],
                      port=p, prefix="/Cust12345")
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="SoTicket " + self.tickets["alice"],
                      port=p, prefix="/cust12345")
        self.assertEqual(r.status, 200, r)
        r = self.call("GetUntrustedCredentials", {"Type": "x"}, auth="SoTicket " + self.tickets["alice"], port=p)
        self.assertEqual(r.status, 404, r)
        r = self.request("GET", "/Cust12345" + AGENT + OPS[0], port=p)
        self.assertEqual(r.json()["Url"], "/Cust12345" + AGENT + OPS[0])
        r = self.request("GET", "/Cust12345/api/v1/openapi.json", port=p)
        self.assertEqual(r.status, 200)

    def test_every_answer_has_its_own_request_id(self):
        answers = [
            self.as_user("alice", "GetUntrustedCredentials", {"Type": "x"}),            # 200
            self.call("GetUntrustedCredentials", {"Type": "x"}, auth=basic("alice")),   # Basic
            self.call("GetUntrustedCredentials", {"Type": "x"},
                      auth="Bearer " + self.tokens["bob"]),                             # Bearer
            self.call("GetUntrustedCredentials", {"Type": "x"}),                        # 401
            self.call("SaveUntrustedCredentials", auth="SoTicket " + self.tickets["alice"],
                      raw=b"{"),                                                        # 400
            self.request("GET", "/api/v1/openapi.json"),
            self.request("GET", "/nowhere"),                                            # 404
            self.call("GetUntrustedCredentials", {"Type": "x"},
                      headers={"X-Request-Id": "client-picked-2"}),                     # ignored
        ]
        ids = [r.header("x-request-id") for r in answers]
        for r, rid in zip(answers, ids):
            self.assertRegex(rid or "", r"^[0-9a-f]{16}$", r)
        self.assertEqual(len(set(ids)), len(ids), ids)

    def test_responses_are_not_cached(self):
        r = self.as_user("alice", "GetUntrustedCredentials", {"Type": "x"})
        self.assertEqual(r.header("cache-control"), "no-store")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--daemon", required=True)
    parser.add_argument("--ctl", required=True)
    parser.add_argument("--gateway", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
