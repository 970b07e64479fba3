#!/usr/bin/python3
"""Integration tests (suite 'gateway'): the real credvaultd and credvault-gateway, driven
over HTTP with SOAP envelopes — SuperOffice's published examples, DESIGN.md §3's
permission table, envelopes as real clients send them, the HTTP limits, a hostile corpus,
daemon restarts and graceful shutdown. No log may contain a password, ticket or secret."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from gatewaylib import (DATA, SOAP11, SOAP12, Gateway, Reply, World, body_shape,
                        credential_xml, envelope, free_port, ns, op_xml, port_open, read,
                        wait_for)

W = None
PUBLISHED_TICKET = "7T:1234abcxyzExample=="


def setUpModule():
    global W
    W = World()


def tearDownModule():
    W.finish()


def login(world, name, password=None, version=86):
    password = password if password is not None else world.PASSWORDS[name]
    body = ("<SoPrincipal:AuthenticateUsernamePassword><SoPrincipal:UserName>%s"
            "</SoPrincipal:UserName><SoPrincipal:Password>%s</SoPrincipal:Password>"
            "</SoPrincipal:AuthenticateUsernamePassword>" % (name, password))
    env = envelope(version, body, prefix="SoPrincipal")
    r = Reply(*world.gateway.soap("/Remote/Services%d/SoPrincipal.svc" % version, env))
    if r.text("AuthenticationSucceeded") != "true":
        return None, r
    ticket = r.text("Ticket")
    world.secrets.add(ticket)
    return ticket, r


def call(world, ticket, op, version=86, soap=12, **kw):
    env = envelope(version, op_xml(op, **kw), ticket=ticket, soap=soap)
    path = "/Remote/Services%d/User.svc" % version
    return Reply(*world.gateway.soap(path, env, version=soap))


def seed_file(name):
    return read(os.path.join(DATA, name), "rb")


class Published(unittest.TestCase):
    """SuperOffice's published envelopes, as published (only the ticket substituted), give
    the published response shapes."""

    def test_published_examples(self):
        ticket, _ = login(W, "alice")
        for seed, path in (("s86-save-for-associate", "/Remote/Services86/User.svc"),
                           ("s86-get-for-associate", "/Remote/Services86/User.svc"),
                           ("s75-save", "/Remote/Services75/User.svc"),
                           ("s88-save-for-associate", "/Remote/Services88/User.svc")):
            request = seed_file(seed + ".request.xml").replace(PUBLISHED_TICKET.encode(),
                                                              ticket.encode())
            status, headers, body = W.gateway.soap(path, request)
            self.assertEqual(status, 200, seed)
            self.assertTrue(headers["Content-Type"].startswith("application/soap+xml"))
            reply = Reply(status, headers, body)
            self.assertTrue(reply.succeeded, (seed, body))
            expected = seed_file(seed + ".response.xml")
            self.assertEqual(body_shape(body), body_shape(expected), seed)
            # Values of declared types carry no xsi:type (as WCF writes them): node-soap
            # would read an attributed value as an object.
            self.assertNotIn(b"xsi:type", body, seed)
        # The published Save stored (Type "", PublicValue ""): the published Get reads it back
        # with the published values — checked above for 86; the 88 Save replaced its dates.
        r = call(W, ticket, "GetUntrustedCredentials", type_="")
        self.assertEqual(r.credentials()[0]["ValidFrom"], "2025-04-03T11:13:36Z")
        call(W, ticket, "RemoveUntrustedCredentials", type_="", public="")

    def test_response_layout_matches_published_envelope(self):
        ticket, _ = login(W, "alice")
        request = seed_file("s86-get-for-associate.request.xml").replace(
            PUBLISHED_TICKET.encode(), ticket.encode())
        _, _, body = W.gateway.soap("/Remote/Services86/User.svc", request)
        published = seed_file("s86-get-for-associate.response.xml")
        # Same prolog and namespace declarations, in the same order, with the same prefixes.
        self.assertEqual(body.split(b">\n", 2)[:2], published.split(b">\n", 2)[:2])


class Envelopes(unittest.TestCase):
    """Envelopes as real clients send them."""

    def test_soap11_with_action_and_headers_in_header(self):
        ticket, _ = login(W, "alice", version=83)
        for version in (75, 80, 81, 82, 83, 84, 85, 86, 87, 88):
            env = envelope(version, op_xml("GetUntrustedCredentials", type_="x"), ticket=ticket,
                           soap=11, headers_in_header=True)
            action = ns(version) + "/User/GetUntrustedCredentials"
            status, headers, body = W.gateway.soap(
                "/Remote/Services%d/User.svc" % version, env, version=11, action=action)
            r = Reply(status, headers, body)
            self.assertEqual(status, 200)
            self.assertEqual(r.env_ns, SOAP11)
            self.assertTrue(headers["Content-Type"].startswith("text/xml"))
            self.assertTrue(r.succeeded, body)
            self.assertIn(("xmlns:User=\"%s\"" % ns(version)).encode(), body)

    def test_soap12_action_parameter_and_bom_and_other_prefixes(self):
        ticket, _ = login(W, "alice")
        env = ('\ufeff<e:Envelope xmlns:e="%s"><e:Header><c:Credentials xmlns:c="%s">'
               '<c:Ticket>%s</c:Ticket></c:Credentials></e:Header><e:Body>'
               '<GetUntrustedCredentials xmlns="%s"><Type>x</Type></GetUntrustedCredentials>'
               '</e:Body></e:Envelope>' % (SOAP12, ns(86), ticket, ns(86)))
        r = Reply(*W.gateway.soap("/Remote/Services86/User.svc", env,
                                  action=ns(86) + "/User/GetUntrustedCredentials"))
        self.assertTrue(r.succeeded)
        self.assertEqual(r.env_ns, SOAP12)

    def test_action_mismatch_is_a_fault(self):
        ticket, _ = login(W, "alice")
        env = envelope(86, op_xml("GetUntrustedCredentials", type_="x"), ticket=ticket, soap=11)
        status, _, body = W.gateway.soap("/Remote/Services86/User.svc", env, version=11,
                                         action=ns(86) + "/User/SaveUntrustedCredentials")
        self.assertEqual(status, 500)
        self.assertTrue(Reply(status, {}, body).is_fault)

    def test_void_operations_answer_empty_elements(self):
        ticket, _ = login(W, "alice")
        r = call(W, ticket, "SaveUntrustedCredentials", type_="void",
                 credentials=credential_xml(secret="v-secret-1", public="p"))
        W.secrets.add("v-secret-1")
        self.assertTrue(r.succeeded)
        resp = r.find_all("SaveUntrustedCredentialsResponse")[0]
        self.assertEqual(list(resp), [])
        r = call(W, ticket, "RemoveUntrustedCredentials", type_="void", public="p")
        self.assertEqual(list(r.find_all("RemoveUntrustedCredentialsResponse")[0]), [])

    def test_create_default(self):
        ticket, _ = login(W, "alice")
        r = call(W, ticket, "CreateDefaultUntrustedCredentials")
        self.assertTrue(r.succeeded)
        resp = r.find_all("Response")[0]
        self.assertEqual([c.tag.split("}")[1] for c in resp],
                         ["ValidFrom", "ValidTo", "Comment", "SecretValue", "PublicValue",
                          "IsActive"])

    def test_save_without_secret_keeps_the_stored_one(self):
        ticket, _ = login(W, "alice")
        call(W, ticket, "SaveUntrustedCredentials", type_="keep",
             credentials=credential_xml(secret="keep-Secret-9", public="k", comment="one"))
        W.secrets.add("keep-Secret-9")
        r = call(W, ticket, "SaveUntrustedCredentials", type_="keep",
                 credentials=credential_xml(public="k", comment="two", omit_secret=True))
        self.assertTrue(r.succeeded)
        got = call(W, ticket, "GetUntrustedCredentials", type_="keep").credentials()
        self.assertEqual(got[0]["SecretValue"], "keep-Secret-9")
        self.assertEqual(got[0]["Comment"], "two")
        call(W, ticket, "RemoveUntrustedCredentials", type_="keep", public="k")

    def test_wsdl_for_every_service_and_version(self):
        for version in (75, 80, 81, 82, 83, 84, 85, 86, 87, 88):
            for service in ("User", "SoPrincipal"):
                status, headers, body = W.gateway.request(
                    "GET", "/Remote/Services%d/%s.svc?wsdl" % (version, service))
                self.assertEqual(status, 200)
                self.assertIn(('targetNamespace="%s"' % ns(version)).encode(), body)
        status, _, _ = W.gateway.request("GET", "/Remote/Services79/User.svc?wsdl")
        self.assertEqual(status, 404)


class SoPrincipal(unittest.TestCase):
    def test_login_issues_a_ticket_and_wrong_password_says_false(self):
        ticket, r = login(W, "alice")
        self.assertTrue(ticket.startswith("7T:"))
        self.assertEqual(r.text("AssociateId"), str(W.ids["alice"]))
        self.assertEqual(r.text("Associate"), "alice")
        none, bad = login(W, "alice", "wrong-password")
        self.assertIsNone(none)
        self.assertEqual(bad.text("AuthenticationSucceeded"), "false")
        self.assertNotIn(b"7T:", bad.raw)
        none, unknown = login(W, "nobody", "x")
        self.assertEqual(unknown.raw.replace(b"nobody", b""), bad.raw.replace(b"alice", b""))


class Permissions(unittest.TestCase):
    """DESIGN.md §3 through SOAP, every row."""

    @classmethod
    def setUpClass(cls):
        cls.t = {name: login(W, name)[0] for name in ("alice", "bob", "admin", "sys")}
        # bob owns one credential with a secret.
        r = call(W, cls.t["bob"], "SaveUntrustedCredentials", type_="imap",
                 credentials=credential_xml(secret="bob-Imap-Secret", public="bob@x"))
        assert r.succeeded, r.raw
        W.secrets.add("bob-Imap-Secret")
        cls.bob = W.ids["bob"]

    def own_full(self, who):
        t = self.t[who]
        secret = "own-%s-Secret" % who
        W.secrets.add(secret)
        r = call(W, t, "SaveUntrustedCredentials", type_="own",
                 credentials=credential_xml(secret=secret, public=who))
        self.assertTrue(r.succeeded, r.raw)
        got = call(W, t, "GetUntrustedCredentials", type_="own").credentials()
        self.assertEqual(got[0]["SecretValue"], secret)
        got = call(W, t, "GetUntrustedCredentialsForAssociate", associate=0,
                   type_="own").credentials()
        self.assertEqual(got[0]["SecretValue"], secret)
        got = call(W, t, "GetUntrustedCredentialsForAssociate", associate=W.ids[who],
                   type_="own").credentials()
        self.assertEqual(got[0]["SecretValue"], secret)
        r = call(W, t, "RemoveUntrustedCredentialsForAssociate", associate=0, type_="own",
                 public=who)
        self.assertTrue(r.succeeded)
        self.assertEqual(call(W, t, "GetUntrustedCredentials", type_="own").credentials(), [])

    def other(self, who):
        t = self.t[who]
        get = call(W, t, "GetUntrustedCredentialsForAssociate", associate=self.bob, type_="imap")
        save = call(W, t, "SaveUntrustedCredentialsForAssociate", associate=self.bob,
                    type_="set-by-" + who,
                    credentials=credential_xml(secret="set-by-%s-Secret" % who, public="x"))
        W.secrets.add("set-by-%s-Secret" % who)
        remove = call(W, t, "RemoveUntrustedCredentialsForAssociate", associate=self.bob,
                      type_="set-by-" + who, public="x")
        return get, save, remove

    def test_user(self):
        self.own_full("alice")
        get, save, remove = self.other("alice")
        for r in (get, save, remove):
            self.assertFalse(r.succeeded)
            self.assertEqual(r.exception_type, "SoAccessDeniedException")
        self.assertNotIn(b"bob-Imap-Secret", get.raw)

    def test_user_admin(self):
        self.own_full("admin")
        get, save, remove = self.other("admin")
        self.assertTrue(get.succeeded)
        self.assertEqual(get.credentials()[0]["PublicValue"], "bob@x")
        self.assertEqual(get.credentials()[0]["SecretValue"], "")   # never the secret
        self.assertNotIn(b"bob-Imap-Secret", get.raw)
        self.assertTrue(save.succeeded, save.raw)
        self.assertTrue(remove.succeeded)
        # A userAdmin may set a secret for bob (bob reads it), never read it back.
        call(W, self.t["admin"], "SaveUntrustedCredentialsForAssociate", associate=self.bob,
             type_="from-admin", credentials=credential_xml(secret="admin-Set-Secret", public="y"))
        W.secrets.add("admin-Set-Secret")
        mine = call(W, self.t["bob"], "GetUntrustedCredentials", type_="from-admin").credentials()
        self.assertEqual(mine[0]["SecretValue"], "admin-Set-Secret")
        back = call(W, self.t["admin"], "GetUntrustedCredentialsForAssociate", associate=self.bob,
                    type_="from-admin")
        self.assertNotIn(b"admin-Set-Secret", back.raw)
        call(W, self.t["bob"], "RemoveUntrustedCredentials", type_="from-admin", public="y")

    def test_system_user(self):
        self.own_full("sys")
        get, save, remove = self.other("sys")
        self.assertTrue(get.succeeded)
        self.assertEqual(get.credentials()[0]["SecretValue"], "bob-Imap-Secret")
        self.assertTrue(save.succeeded)
        self.assertTrue(remove.succeeded)

    def test_unauthenticated(self):
        for ticket in (None, "7T:not-a-ticket", ""):
            for op, kw in (("GetUntrustedCredentials", {"type_": "imap"}),
                           ("GetUntrustedCredentialsForAssociate",
                            {"associate": self.bob, "type_": "imap"}),
                           ("SaveUntrustedCredentials",
                            {"type_": "imap", "credentials": credential_xml(public="z")}),
                           ("SaveUntrustedCredentialsForAssociate",
                            {"associate": self.bob, "type_": "imap",
                             "credentials": credential_xml(public="z")}),
                           ("RemoveUntrustedCredentialsForAssociate",
                            {"associate": self.bob, "type_": "imap", "public": "bob@x"}),
                           ("CreateDefaultUntrustedCredentials", {})):
                r = call(W, ticket, op, **kw)
                self.assertFalse(r.succeeded, (op, ticket))
                self.assertEqual(r.exception_type, "SoSecurityException")
        # bob's credential is intact.
        got = call(W, self.t["bob"], "GetUntrustedCredentials", type_="imap").credentials()
        self.assertEqual([c["PublicValue"] for c in got], ["bob@x"])

    def test_unknown_associate(self):
        r = call(W, self.t["sys"], "GetUntrustedCredentialsForAssociate", associate=99999,
                 type_="imap")
        self.assertFalse(r.succeeded)
        self.assertIn(r.exception_type, ("SoNotFoundException", "ArgumentException"))


class PartnerApps(unittest.TestCase):
    """Online mode: a partner application may not use the User agent at all."""

    def test_partner_app_is_denied_everything(self):
        world = World(daemon_settings=["mode=online"])
        try:
            app = world.daemon.ctl("app", "add", "partner").stdout.strip().split()[-1]
            world.secrets.add(app)
            body = ("<SoPrincipal:AuthenticateUsernamePassword><SoPrincipal:UserName>alice"
                    "</SoPrincipal:UserName><SoPrincipal:Password>%s</SoPrincipal:Password>"
                    "</SoPrincipal:AuthenticateUsernamePassword>" % world.PASSWORDS["alice"])
            r = Reply(*world.gateway.soap("/Remote/Services86/SoPrincipal.svc",
                                          envelope(86, body, app_token=app, prefix="SoPrincipal")))
            ticket = r.text("Ticket")
            self.assertTrue(ticket, r.raw)
            world.secrets.add(ticket)
            bob = world.ids["bob"]
            for op, kw in (("GetUntrustedCredentials", {"type_": "imap"}),
                           ("GetUntrustedCredentialsForAssociate",
                            {"associate": bob, "type_": "imap"}),
                           ("SaveUntrustedCredentials",
                            {"type_": "imap", "credentials": credential_xml(public="z")}),
                           ("SaveUntrustedCredentialsForAssociate",
                            {"associate": bob, "type_": "imap",
                             "credentials": credential_xml(public="z")}),
                           ("RemoveUntrustedCredentials", {"type_": "imap", "public": "z"}),
                           ("CreateDefaultUntrustedCredentials", {})):
                env = envelope(86, op_xml(op, **kw), ticket=ticket, app_token=app)
                r = Reply(*world.gateway.soap("/Remote/Services86/User.svc", env))
                self.assertFalse(r.succeeded, op)
                self.assertIn("partner app", r.message, op)
            world.scan_logs()
        finally:
            world.close()


class Hostile(unittest.TestCase):
    """Each answered with a clear error, and nothing stored."""

    @classmethod
    def setUpClass(cls):
        cls.ticket, _ = login(W, "alice")

    def stored(self):
        r = W.daemon.ctl("--json", "get", "hostile", "--associate", str(W.ids["alice"]))
        return r.stdout

    def post(self, body, content_type="application/soap+xml"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        return W.gateway.request("POST", "/Remote/Services86/User.svc", body,
                                 {"Content-Type": content_type})

    def save_env(self, credentials=None, extra="", type_="hostile"):
        return envelope(86, "<User:SaveUntrustedCredentials><User:Type>%s</User:Type>%s%s"
                            "</User:SaveUntrustedCredentials>" % (
                                type_, credentials if credentials is not None else
                                credential_xml(secret="h-Secret", public="h"), extra),
                        ticket=self.ticket)

    def expect_fault(self, body, reason, status=400, content_type="application/soap+xml"):
        st, headers, raw = self.post(body, content_type)
        self.assertEqual(st, status, raw)
        r = Reply(st, headers, raw)
        self.assertTrue(r.is_fault, raw)
        self.assertIn(reason, raw.decode())

    def expect_exception(self, body, message):
        st, headers, raw = self.post(body)
        self.assertEqual(st, 200, raw)
        r = Reply(st, headers, raw)
        self.assertFalse(r.succeeded, raw)
        self.assertIn(message, r.message)

    def test_corpus(self):
        before = self.stored()
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                  '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                  + self.save_env().split("?>", 1)[1].replace("h-Secret", "&lol3;"))
        self.expect_fault(laughs, "DTDs are not allowed")
        xxe = ('<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
               + self.save_env().split("?>", 1)[1].replace("h-Secret", "&xxe;"))
        self.expect_fault(xxe, "DTDs are not allowed")
        self.expect_fault(self.save_env().replace("h-Secret", "&xxe;"), "undefined entity")
        deep = self.save_env(extra="<a>" * 5000 + "</a>" * 5000)
        self.expect_fault(deep, "nested too deeply")
        # Above max_soap_body (64 KiB): refused before it is read, still as a SOAP fault (the
        # XML text limit, also 64 KiB, is tested in xml-test).
        huge = self.save_env(credential_xml(comment="c" * (100 * 1024), public="h"))
        self.expect_fault(huge, "too large: the limit is 65536 bytes", status=413)
        self.expect_fault(self.save_env()[:-30], "The request is not a readable XML document")
        self.expect_fault("not xml at all", "text before the root element")
        self.expect_fault(self.save_env().replace("UTF-8", "ISO-8859-1"), "only UTF-8")
        self.expect_fault(b"<a>\xff</a>", "invalid UTF-8")
        self.expect_fault(self.save_env().replace(ns(86), ns(85)), "namespace")
        self.expect_fault(self.save_env().replace("SaveUntrustedCredentials>", "GetUserInfo>"),
                          "not supported")
        self.expect_fault(envelope(86, "", ticket=self.ticket), "Body is empty")
        self.expect_fault(self.save_env(), "Unsupported Content-Type", 415, "application/json")
        # Wrong types, missing and duplicated elements: ExceptionInfo naming the element.
        self.expect_exception(self.save_env(credential_xml(valid_from="yesterday", public="h")),
                              "ValidFrom is not a valid xsd:dateTime")
        self.expect_exception(self.save_env(credential_xml(active="maybe", public="h")),
                              "IsActive is not a valid xsd:boolean")
        # Empty typed values are refused, naming the element; xsi:nil="true" is "absent".
        self.expect_exception(self.save_env(credential_xml(valid_from="", public="h")),
                              "ValidFrom is empty: give an xsd:dateTime")
        self.expect_exception(self.save_env(credential_xml(active="", public="h")),
                              "IsActive is empty: give an xsd:boolean")
        self.expect_exception(envelope(86, op_xml("GetUntrustedCredentialsForAssociate",
                                                  type_="x").replace(
            "<User:Type>", "<User:AssociateId>1e3</User:AssociateId><User:Type>"),
            ticket=self.ticket), "AssociateId is not a valid xsd:int")
        self.expect_exception(self.save_env(credentials=""), "Credentials is required")
        self.expect_exception(self.save_env(extra="<User:Type>again</User:Type>"),
                              "Type appears more than once")
        self.expect_exception(self.save_env(credential_xml(secret="s" * 71, public="h")),
                              "SecretValue is longer than 70 characters")
        self.expect_exception(self.save_env(credential_xml(public="p" * 239)),
                              "PublicValue is longer than 238 characters")
        self.expect_exception(self.save_env(credential_xml(comment="c" * 256, public="h")),
                              "Comment is longer than 255 characters")
        # Too large for the body limit: 413 before any of it is parsed.
        st, _, _ = self.post("<a>" + "x" * (1024 * 1024 + 1) + "</a>")
        self.assertEqual(st, 413)
        self.assertEqual(self.stored(), before)
        self.assertNotIn("h-Secret", self.stored())

    def test_limits_at_the_limit_pass(self):
        env = self.save_env(credential_xml(secret="s" * 70, public="p" * 238, comment="c" * 255))
        st, headers, raw = self.post(env)
        self.assertTrue(Reply(st, headers, raw).succeeded, raw)
        W.secrets.add("s" * 70)
        call(W, self.ticket, "RemoveUntrustedCredentials", type_="hostile", public="p" * 238)


class Http(unittest.TestCase):
    """The HTTP layer over real TCP."""

    def raw(self, port, data, read_until=b"\r\n\r\n", timeout=5):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(data)
        got = b""
        while read_until not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return s, got

    def test_expect_100_continue_is_answered_at_once(self):
        ticket, _ = login(W, "alice")
        body = envelope(86, op_xml("GetUntrustedCredentials", type_="x"), ticket=ticket).encode()
        head = ("POST /Remote/Services86/User.svc HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/soap+xml\r\nContent-Length: %d\r\n"
                "Expect: 100-continue\r\n\r\n" % len(body)).encode()
        # The body is not sent yet: an interim answer that arrives at all was sent "at once",
        # without waiting for the body (a wall-clock bound would only measure the host's load).
        s, got = self.raw(W.gateway.port, head, timeout=30)
        self.assertTrue(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got)
        s.sendall(body)
        rest = b""
        while b"</SOAP-ENV:Envelope>" not in rest:
            rest += s.recv(65536)
        self.assertIn(b"HTTP/1.1 200 OK", rest)
        s.close()

    def test_keep_alive_and_chunked_body(self):
        ticket, _ = login(W, "alice")
        body = envelope(86, op_xml("GetUntrustedCredentials", type_="x"), ticket=ticket).encode()
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                           for i in range(0, len(body), 100)) + b"0\r\n\r\n"
        req = (b"POST /Remote/Services86/User.svc HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked)
        s = socket.create_connection(("127.0.0.1", W.gateway.port), timeout=5)
        for _ in range(3):
            s.sendall(req)
            got = b""
            while got.count(b"</SOAP-ENV:Envelope>") < 1:
                got += s.recv(65536)
            self.assertIn(b"<User:Succeeded>true</User:Succeeded>", got)
        s.close()

    def test_header_limit_and_bad_requests(self):
        status, _, _ = W.gateway.request("GET", "/Remote/Services86/User.svc?wsdl",
                                         headers={"X-Big": "a" * (17 * 1024)})
        self.assertEqual(status, 431)
        s, got = self.raw(W.gateway.port, b"GET / HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got)
        status, _, _ = W.gateway.request("GET", "/nothing")
        self.assertEqual(status, 404)
        status, headers, _ = W.gateway.request("DELETE", "/Remote/Services86/User.svc")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, POST")

    def test_slow_clients_are_cut_off(self):
        gw = Gateway(W.dir, W.daemon.socket, ["--header-timeout", "1", "--idle-timeout", "1"])
        gw.start()
        try:
            # Bounds below the defaults (header 10 s, idle 15 s), so that they show the 1 s
            # settings at work, with seconds of margin for a loaded host.
            s, got = self.raw(gw.port, b"GET /Remote/Services86/User.svc?wsdl HTTP/1.1\r\nHo",
                              timeout=8)
            s.close()
            self.assertTrue(got.startswith(b"HTTP/1.1 408"), got)
            with socket.create_connection(("127.0.0.1", gw.port), timeout=12) as s:
                start = time.monotonic()
                self.assertEqual(s.recv(10), b"")  # idle connection closed
                self.assertLess(time.monotonic() - start, 10)
        finally:
            gw.stop()
            W.gateway.logs.extend(gw.logs)

    def test_prefix(self):
        gw = Gateway(W.dir, W.daemon.socket, ["--prefix", "/Cust12345"])
        gw.start()
        try:
            status, _, body = gw.request("GET", "/Cust12345/Remote/Services86/User.svc?wsdl")
            self.assertEqual(status, 200)
            self.assertIn(b"/Cust12345/Remote/Services86/User.svc\"", body)
            status, _, _ = gw.request("GET", "/Remote/Services86/User.svc?wsdl")
            self.assertEqual(status, 404)
        finally:
            gw.stop()
            W.gateway.logs.extend(gw.logs)

    def test_access_log_lines(self):
        ticket, _ = login(W, "alice")
        call(W, ticket, "GetUntrustedCredentials", type_="x")
        # The line is written once the answer is sent, so it may trail the answer a little.
        wait_for(lambda: "User.GetUntrustedCredentials ok" in read(W.gateway.logs[0]),
                 what="the access log line")
        text = read(W.gateway.logs[0])
        self.assertRegex(text, r"<6>POST /Remote/Services86/User.svc 200 [0-9.]+ms "
                               r"client=127\.0\.0\.1 peer=127\.0\.0\.1:\d+ id=[0-9a-f]{16} in=")
        self.assertIn("User.GetUntrustedCredentials ok", text)
        self.assertNotIn("7T:", text)


REQUEST_ID = re.compile(r"^[0-9a-f]{16}$")


class RequestIds(unittest.TestCase):
    """Every answer names its request; the same id is in the access log line (and, sent on
    the authenticate call, in the daemon's audit records)."""

    def test_every_answer_has_its_own_id_and_the_log_names_it(self):
        ticket, _ = login(W, "alice")
        ids = []
        answers = [
            W.gateway.request("GET", "/Remote/Services86/User.svc?wsdl"),
            W.gateway.request("GET", "/Remote/Services86/Nothing.svc"),      # 404 fault
            W.gateway.request("DELETE", "/Remote/Services86/User.svc"),      # 405
            W.gateway.request("GET", "/nowhere"),                            # 404
            W.gateway.soap("/Remote/Services86/User.svc",
                           envelope(86, op_xml("GetUntrustedCredentials", type_="x"),
                                    ticket=ticket)),
            W.gateway.soap("/Remote/Services86/User.svc",                     # no ticket
                           envelope(86, op_xml("GetUntrustedCredentials", type_="x"))),
        ]
        for status, headers, _ in answers:
            rid = headers.get("X-Request-Id", "")
            self.assertRegex(rid, REQUEST_ID, (status, headers))
            ids.append(rid)
        self.assertEqual(len(set(ids)), len(ids), ids)
        # The line is written once the answer is sent, so it may trail the answer a little.
        wait_for(lambda: all(" id=%s " % rid in read(W.gateway.logs[0]) for rid in ids),
                 what="access log lines")
        log = read(W.gateway.logs[0])
        for rid in ids:
            self.assertEqual(len(re.findall(r" id=%s " % rid, log)), 1, rid)

    def test_the_clients_own_id_is_not_taken(self):
        status, headers, _ = W.gateway.request(
            "GET", "/Remote/Services86/User.svc?wsdl", headers={"X-Request-Id": "client-picked-1"})
        self.assertEqual(status, 200)
        self.assertRegex(headers["X-Request-Id"], REQUEST_ID)
        self.assertNotIn("client-picked-1", read(W.gateway.logs[0]))

    def test_answers_the_server_gives_itself_have_an_id(self):
        s = socket.create_connection(("127.0.0.1", W.gateway.port), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got)
        self.assertRegex(got.decode(), r"\r\nX-Request-Id: [0-9a-f]{16}\r\n")


class WsdlAddress(unittest.TestCase):
    """soap:address is public_url, or the gateway's own address — never the Host header."""

    PATH = "/Remote/Services86/User.svc?wsdl"

    def location(self, body):
        m = re.search(rb'<soap:address location="([^"]*)"', body)
        self.assertIsNotNone(m, body[-400:])
        return m.group(1).decode()

    def test_a_hostile_host_header_is_not_in_the_wsdl(self):
        for host in ("evil.example.com", "evil.example.com:6666", "[2001:db8::66]:80"):
            status, _, body = W.gateway.request("GET", self.PATH, headers={"Host": host})
            self.assertEqual(status, 200)
            self.assertFalse(b"evil.example" in body, self.location(body))
            self.assertFalse(b"2001:db8::66" in body, self.location(body))
            self.assertEqual(self.location(body), "http://127.0.0.1:%d/Remote/Services86/User.svc"
                             % W.gateway.port)

    def test_public_url_from_the_command_line_and_the_file(self):
        conf = os.path.join(W.dir, "public-url.conf")
        with open(conf, "w") as f:
            f.write("public_url = https://Vault.Example.com/cv/   # behind a proxy\n"
                    "prefix = /Cust12345\n")
        for args, expected in (
                (["--public-url", "https://vault.example.com"],
                 "https://vault.example.com/Remote/Services86/SoPrincipal.svc"),
                (["--set", "public_url=http://192.0.2.10:8443"],
                 "http://192.0.2.10:8443/Remote/Services86/SoPrincipal.svc"),
                (["--config", conf],
                 "https://vault.example.com/cv/Cust12345/Remote/Services86/SoPrincipal.svc")):
            gw = Gateway(W.dir, W.daemon.socket, args)
            gw.start()
            try:
                path = "/Remote/Services86/SoPrincipal.svc?wsdl"
                if "--config" in args:
                    path = "/Cust12345" + path
                status, _, body = gw.request("GET", path, headers={"Host": "evil.example.com"})
                self.assertEqual(status, 200, args)
                self.assertEqual(self.location(body), expected)
            finally:
                gw.stop()
                W.gateway.logs.extend(gw.logs)

    def test_a_bad_public_url_stops_the_start_with_one_line(self):
        gw = Gateway(W.dir, W.daemon.socket)
        conf = os.path.join(W.dir, "bad-public-url.conf")
        cases = [
            (["--public-url", "vault.example.com"], "must start with http:// or https://"),
            (["--public-url", "ftp://vault.example.com"], "must start with http:// or https://"),
            (["--set", "public_url=https://vault.example.com/?a=b"], "query or fragment"),
            (["--public-url", "https://vault.example.com/#x"], "query or fragment"),
            (["--public-url", "https://"], "needs a host name"),
            (["--public-url", "https://vault.example.com:99999"], "port"),
            (["--public-url", "https://admin:pw-in-url@vault.example.com"], "user name or password"),
            (["--public-url", "https://vault.example.com/a b"], "path may contain"),
            (["--config", conf], conf + ":2: public_url must not contain a user name or password"),
        ]
        with open(conf, "w") as f:
            f.write("# a gateway.conf\npublic_url = https://admin:pw-in-url@vault.example.com\n")
        for args, reason in cases:
            rc, out = gw.refusal(args)
            self.assertEqual(rc, 78, (args, out))  # EX_CONFIG (docs/operations.md)
            lines = out.splitlines()
            self.assertEqual(len(lines), 1, (args, out))
            self.assertIn("public_url", lines[0])
            self.assertIn(reason, lines[0])
            self.assertTrue(lines[0].startswith("<2>credvault-gateway: "), lines[0])
            self.assertNotIn("pw-in-url", out)  # the value is never repeated


class Hardening(unittest.TestCase):
    """The gateway turns off core dumps and makes itself non-dumpable (no ptrace, no
    /proc/PID/mem for its own uid)."""

    def test_core_dumps_are_off(self):
        limits = read("/proc/%d/limits" % W.gateway.proc.pid)
        self.assertRegex(limits, r"Max core file size\s+0\s+0\s+bytes")

    def test_not_dumpable(self):
        # Not readable from outside directly; observable because the kernel gives the files
        # under /proc/PID of a non-dumpable process (status, environ, mem, ...) to root
        # instead of the process's uid (the directory itself keeps the process's uid). So
        # the gateway must run as someone other than root: as nobody when we are root.
        nobody = 65534
        files = ("status", "environ", "mem")
        if os.getuid() != 0:
            pid = W.gateway.proc.pid
            self.assertEqual(os.stat("/proc/%d" % pid).st_uid, os.getuid())
            for name in files:
                self.assertEqual(os.stat("/proc/%d/%s" % (pid, name)).st_uid, 0, name)
            return
        # Control: an ordinary process of that uid owns those files (else this kernel or
        # container does not show the difference, and the check below would prove nothing).
        control = subprocess.Popen(["sleep", "30"], user=nobody, group=nobody, extra_groups=[])
        try:
            for name in files:
                self.assertEqual(os.stat("/proc/%d/%s" % (control.pid, name)).st_uid, nobody)
        finally:
            control.kill()
            control.wait()
        gw = Gateway(W.dir, W.daemon.socket, user=nobody)
        gw.start()
        try:
            pid = gw.proc.pid
            self.assertRegex(read("/proc/%d/status" % pid), r"\nUid:\s+%d\s" % nobody)
            self.assertEqual(os.stat("/proc/%d" % pid).st_uid, nobody)
            for name in files:
                self.assertEqual(os.stat("/proc/%d/%s" % (pid, name)).st_uid, 0, name)
            status, _, _ = gw.request("GET", "/Remote/Services86/User.svc?wsdl")
            self.assertEqual(status, 200)  # and it serves as nobody
        finally:
            gw.stop()
            W.gateway.logs.extend(gw.logs)


class Lifecycle(unittest.TestCase):
    def test_daemon_restart_and_graceful_shutdown(self):
        world = World()
        try:
            ticket, _ = login(world, "alice")
            self.assertTrue(call(world, ticket, "GetUntrustedCredentials", type_="x").succeeded)
            world.daemon.stop()
            r = call(world, ticket, "GetUntrustedCredentials", type_="x")
            self.assertFalse(r.succeeded)
            self.assertEqual(r.exception_type, "SoServerUnavailableException")
            world.daemon.start()
            # The gateway reconnects; tickets survive the daemon's restart.
            r = call(world, ticket, "GetUntrustedCredentials", type_="x")
            self.assertTrue(r.succeeded, r.raw)
            # SIGTERM: finish and exit 0.
            # Nothing in flight: it exits at once, not on the 10 s drain deadline (the margin is
            # for a loaded host).
            start = time.monotonic()
            self.assertEqual(world.gateway.stop(), 0)
            self.assertLess(time.monotonic() - start, 8)
            log = read(world.gateway.logs[-1])
            self.assertIn("stopped", log)
            world.scan_logs()
        finally:
            world.close()


class SocketActivation(unittest.TestCase):
    def test_systemd_socket_activation(self):
        activate = shutil.which("systemd-socket-activate")
        if not activate:
            self.skipTest("systemd-socket-activate is not installed")
        port = free_port()
        log = os.path.join(W.dir, "gateway-activated.log")
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [activate, "-l", "127.0.0.1:%d" % port, os.environ["CREDVAULT_GATEWAY"],
                 "--config", "/dev/null", "--vault-socket", W.daemon.socket,
                 "--listen", "127.0.0.1:1"],  # ignored: systemd passes the socket
                stdout=out, stderr=subprocess.STDOUT)
        W.gateway.logs.append(log)
        try:
            wait_for(lambda: port_open(port), what="activation socket")
            gw = Gateway(W.dir, W.daemon.socket)
            gw.port = port
            status, _, body = gw.request("GET", "/Remote/Services86/User.svc?wsdl")
            self.assertEqual(status, 200)
            self.assertIn("listening on fd:3", read(log))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=20), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
