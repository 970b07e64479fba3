"""Several hosts, one vault, through HTTP: two credvaultd processes on their own sockets sharing
one database of a throw-away PostgreSQL 15 (pglib.py), each with its own credvault-gateway. What
an application behind a load balancer relies on: a save through gateway A (REST, and SOAP) is
read through gateway B; a password change through A fails B's Basic-auth and SoTicket calls at
once; while PostgreSQL is down both gateways' /healthz say 503 "unavailable" and a call is 503,
and once it is back they are healthy again without a restart. Skips (77) without PostgreSQL 15.
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

import pglib
from gatewaylib import Daemon, Gateway, Reply, envelope, op_xml, credential_xml, wait_for, read

ALICE_PW = "alice-Multi-Pw-1"
ALICE_PW2 = "alice-Multi-Pw-2"
SECRET_REST = "rest-through-A-Secret-41c7"
SECRET_SOAP = "soap-through-A-Secret-9d02"
AGENT = "/api/v1/Agents/User/"


def basic(name, password):
    return "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()


class TwoHosts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not pglib.available():
            print("skipping: PostgreSQL 15 is not installed (scripts/deps.sh installs it)")
            sys.exit(77)
        cls.pg = pglib.server()
        cls.dir = tempfile.mkdtemp(prefix="credvault-gw-multi-")
        os.chmod(cls.dir, 0o755)
        settings = ["storage=postgresql", "postgresql=" + cls.pg.fresh_database(),
                    "postgresql_connections=2"]
        cls.secrets = {ALICE_PW, ALICE_PW2, SECRET_REST, SECRET_SOAP}
        cls.daemons, cls.gateways = [], []
        for name in ("a", "b"):
            d = os.path.join(cls.dir, name)
            os.makedirs(d)
            cls.daemons.append(Daemon(d, settings))
        a, b = cls.daemons
        a.start()
        # Host B loads the same master key, as an operator distributes it.
        os.makedirs(os.path.join(b.dir, "state"), mode=0o700)
        shutil.copy(os.path.join(a.dir, "state", "master.key"),
                    os.path.join(b.dir, "state", "master.key"))
        os.chmod(os.path.join(b.dir, "state", "master.key"), 0o600)
        b.start()
        cls.alice = a.add_associate("alice", ALICE_PW)
        for d in cls.daemons:
            gw = Gateway(d.dir, d.socket)
            gw.start()
            cls.gateways.append(gw)

    @classmethod
    def tearDownClass(cls):
        logs = []
        for gw in cls.gateways:
            gw.stop()
            logs += gw.logs
        for d in cls.daemons:
            d.stop()
            logs += d.logs
        for path in logs:
            text = read(path)
            for s in cls.secrets:
                assert s not in text, "%s contains a secret (%s...)" % (path, s[:4])
        shutil.rmtree(cls.dir, ignore_errors=True)

    def rest(self, gw, op, params, auth):
        body = json.dumps(params).encode()
        status, headers, data = gw.request("POST", AGENT + op, body, {
            "Authorization": auth, "Content-Type": "application/json"})
        return status, data

    def soap_login(self, gw, password):
        body = ("<SoPrincipal:AuthenticateUsernamePassword><SoPrincipal:UserName>alice"
                "</SoPrincipal:UserName><SoPrincipal:Password>%s</SoPrincipal:Password>"
                "</SoPrincipal:AuthenticateUsernamePassword>" % password)
        r = Reply(*gw.soap("/Remote/Services86/SoPrincipal.svc",
                           envelope(86, body, prefix="SoPrincipal")))
        self.assertEqual(r.text("AuthenticationSucceeded"), "true", r.raw)
        ticket = r.text("Ticket")
        self.secrets.add(ticket)
        return ticket

    def soap_call(self, gw, ticket, op, **kw):
        return Reply(*gw.soap("/Remote/Services86/User.svc",
                              envelope(86, op_xml(op, **kw), ticket=ticket)))

    def healthz(self, gw):
        status, _, body = gw.request("GET", "/healthz")
        return status, json.loads(body)

    def test_1_a_save_through_a_is_read_through_b_and_a_password_change_ends_b_at_once(self):
        gw_a, gw_b = self.gateways
        # REST with Basic authentication: save through A, read through B.
        status, data = self.rest(gw_a, "SaveUntrustedCredentials", {
            "Type": "imap", "Credentials": {"PublicValue": "alice@example.com",
                                            "SecretValue": SECRET_REST, "IsActive": True}},
            basic("alice", ALICE_PW))
        self.assertEqual(status, 204, data)
        status, data = self.rest(gw_b, "GetUntrustedCredentials", {"Type": "imap"},
                                 basic("alice", ALICE_PW))
        self.assertEqual(status, 200, data)
        got = json.loads(data)
        self.assertEqual([(c["PublicValue"], c["SecretValue"]) for c in got],
                         [("alice@example.com", SECRET_REST)])
        # SOAP with a ticket issued through A, used through B.
        ticket = self.soap_login(gw_a, ALICE_PW)
        r = self.soap_call(gw_a, ticket, "SaveUntrustedCredentials", type_="smtp",
                           credentials=credential_xml(secret=SECRET_SOAP, public="alice-smtp"))
        self.assertTrue(r.succeeded, r.raw)
        r = self.soap_call(gw_b, ticket, "GetUntrustedCredentials", type_="smtp")
        self.assertTrue(r.succeeded, r.raw)
        self.assertEqual([(c["PublicValue"], c["SecretValue"]) for c in r.credentials()],
                         [("alice-smtp", SECRET_SOAP)])
        # B has verified (and may cache) alice's Basic credentials and holds her ticket's
        # session. A password change through A, then at once through B: both refused.
        status, data = self.rest(gw_b, "GetUntrustedCredentials", {"Type": "imap"},
                                 basic("alice", ALICE_PW))
        self.assertEqual(status, 200, data)
        self.daemons[0].ctl("associate", "passwd", "alice", "--password-stdin",
                            stdin=ALICE_PW2 + "\n")
        changed = time.monotonic()
        status, data = self.rest(gw_b, "GetUntrustedCredentials", {"Type": "imap"},
                                 basic("alice", ALICE_PW))
        basic_refused = time.monotonic() - changed
        self.assertEqual(status, 401, data)
        r = self.soap_call(gw_b, ticket, "GetUntrustedCredentials", type_="smtp")
        self.assertFalse(r.succeeded, r.raw)
        status, data = self.rest(gw_b, "GetUntrustedCredentials", {"Type": "imap"},
                                 "SoTicket " + ticket)
        self.assertEqual(status, 401, data)
        # The new password works through B.
        status, data = self.rest(gw_b, "GetUntrustedCredentials", {"Type": "imap"},
                                 basic("alice", ALICE_PW2))
        self.assertEqual(status, 200, data)
        print("[ gateway-multi-host ] B refused the old Basic password %.1f ms after the "
              "change through A" % (basic_refused * 1000))

    def test_2_healthz_says_unavailable_while_postgres_is_down(self):
        for gw in self.gateways:
            status, doc = self.healthz(gw)
            self.assertEqual((status, doc["daemon"]), (200, "ok"), doc)
        self.pg.stop()
        try:
            for gw in self.gateways:
                # A probe answered before the stop may be shared for a moment.
                wait_for(lambda: self.healthz(gw)[0] == 503, what="503")
                status, doc = self.healthz(gw)
                self.assertEqual((status, doc["status"], doc["daemon"]),
                                 (503, "unavailable", "unavailable"), doc)
                status, data = self.rest(gw, "GetUntrustedCredentials", {"Type": "imap"},
                                         basic("alice", ALICE_PW2))
                self.assertEqual(status, 503, data)
        finally:
            self.pg.start()
        for gw in self.gateways:
            wait_for(lambda: self.healthz(gw)[0] == 200, what="healthy again")
            status, data = self.rest(gw, "GetUntrustedCredentials", {"Type": "imap"},
                                     basic("alice", ALICE_PW2))
            self.assertEqual(status, 200, data)
        for d in self.daemons:
            self.assertIsNone(d.proc.poll(), "a daemon exited during the outage")


if __name__ == "__main__":
    unittest.main(verbosity=2)
