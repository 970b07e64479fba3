#!/usr/bin/python3
"""Integration test (suite 'gateway'): SOAP clients that nobody here wrote, each built from the
gateway's own ?wsdl, against the real credvaultd behind the real gateway:

- PHP's SoapClient (php-soap) in WSDL mode, SOAP 1.1 and SOAP 1.2;
- node-soap (npm "soap"), SOAP 1.1 and SOAP 1.2 (forceSoap12Headers).

Each logs in through SoPrincipal.AuthenticateUsernamePassword and drives the seven
UntrustedCredentials operations on Services75, 86 and 88, checking the permission rules of
DESIGN.md §3 and that values arrive as the client's own types (a boolean as a boolean, not an
object). The drivers (tests/frontends/clients/soap-client.{php,js}) only make the calls; the
checks are here. python3-zeep is covered by gateway_zeep_test.py.
"""

import datetime
import sys
import unittest

import clientlib
from gatewaylib import SOAP11, SOAP12, World, ns

VERSIONS = (75, 86, 88)
W = None


def setUpModule():
    global W
    W = World()


def tearDownModule():
    W.finish()


def when(text):
    """An xsd:dateTime as a client returned it ('2024-05-06T07:08:09Z', '…09.000Z', or without
    an offset), as a naive UTC datetime."""
    t = text.replace("Z", "")
    if "." in t:
        t = t.split(".")[0]
    return datetime.datetime.fromisoformat(t)


def items(body):
    """The UntrustedCredentials of a Get response, as a list (an empty array arrives as null,
    {} or a Response without children; node-soap gives one item without its array)."""
    response = (body or {}).get("Response")
    if not response:
        return []
    found = response.get("UntrustedCredentials") or []
    return found if isinstance(found, list) else [found]


class Clients(unittest.TestCase):
    """Runs the same script through each client; `typed` says whether the client gives
    schema types (bool, int, date) for body values, `typed_headers` for header values."""

    def script(self, tag, secret_a, secret_b):
        bob = W.ids["bob"]
        pw = W.PASSWORDS
        cred = {"ValidFrom": "2024-05-06T07:08:09Z", "ValidTo": "0001-01-01T00:00:00Z",
                "Comment": "from " + tag, "SecretValue": secret_a, "PublicValue": tag,
                "IsActive": True}
        cred_b = dict(cred, SecretValue=secret_b, Comment="for bob")

        def user(op, who, **args):
            call = {"service": "User", "op": op, "args": args, "appToken": "client-test"}
            if who is not None:
                call["ticket"] = who
            return call

        def login(name, password, keep=None):
            call = {"service": "SoPrincipal", "op": "AuthenticateUsernamePassword",
                    "args": {"UserName": name, "Password": password}, "appToken": "client-test"}
            if keep:
                call["keep"] = keep
            return call

        return [
            login("alice", pw["alice"], "alice"),                                    # 0
            login("bob", pw["bob"], "bob"),                                          # 1
            login("admin", pw["admin"], "admin"),                                    # 2
            login("sys", pw["sys"], "sys"),                                          # 3
            # A wrong password (for a name of its own: the daemon's throttle counts failures
            # per account and client, and this module makes one per client and version).
            login("alice-" + tag, "wrong-" + pw["alice"]),                           # 4
            user("CreateDefaultUntrustedCredentials", "alice"),                      # 5
            user("SaveUntrustedCredentials", "alice", Type="imap", Credentials=cred),  # 6
            user("GetUntrustedCredentials", "alice", Type="imap"),                   # 7
            user("GetUntrustedCredentialsForAssociate", "alice", AssociateId=bob,
                 Type="imap"),                                                       # 8
            user("SaveUntrustedCredentialsForAssociate", "alice", AssociateId=bob,
                 Type="smtp", Credentials=cred_b),                                   # 9
            user("SaveUntrustedCredentialsForAssociate", "admin", AssociateId=bob,
                 Type="smtp", Credentials=cred_b),                                   # 10
            user("GetUntrustedCredentialsForAssociate", "admin", AssociateId=bob,
                 Type="smtp"),                                                       # 11
            user("GetUntrustedCredentials", "bob", Type="smtp"),                     # 12
            user("GetUntrustedCredentialsForAssociate", "sys", AssociateId=bob,
                 Type="smtp"),                                                       # 13
            user("GetUntrustedCredentials", "bob", Type="imap"),                     # 14
            user("RemoveUntrustedCredentialsForAssociate", "admin", AssociateId=bob,
                 Type="smtp", PublicValue=tag),                                      # 15
            user("GetUntrustedCredentials", "bob", Type="smtp"),                     # 16
            user("GetUntrustedCredentialsForAssociate", "alice", AssociateId=0,
                 Type="imap"),                                                       # 17
            user("RemoveUntrustedCredentials", "alice", Type="imap", PublicValue=tag),  # 18
            user("GetUntrustedCredentials", "alice", Type="imap"),                   # 19
            user("GetUntrustedCredentials", {"literal": "7T:bm90LWEtdGlja2V0"},
                 Type="imap"),                                                       # 20
            # node-soap sends a JS Date as an empty element; PHP sends "" as one: refused,
            # not read as open-ended.
            user("SaveUntrustedCredentials", "alice", Type="imap",
                 Credentials=dict(cred, PublicValue=tag + "-date",
                                  ValidFrom={"$date": "2024-05-06T07:08:09Z"}
                                  if tag.startswith("node") else "")),               # 21
            user("GetUntrustedCredentials", "alice", Type="imap"),                   # 22
            user("GetUntrustedCredentials", None, Type="imap"),                      # 23
        ]

    def check(self, client, soap, version, typed, typed_headers):
        tag = "%s-%s-%d" % (client, soap.replace(".", ""), version)
        secret_a, secret_b = "A-%s-Secret" % tag, "B-%s-Secret" % tag
        W.secrets.update((secret_a, secret_b))
        payload = {"base": "http://127.0.0.1:%d/Remote/Services%d/" % (W.gateway.port, version),
                   "ns": ns(version), "soap": soap,
                   "calls": self.script(tag, secret_a, secret_b)}
        run = clientlib.node if client == "node" else clientlib.php
        out = run("soap-client.js" if client == "node" else "soap-client.php", payload)
        for i, r in enumerate(out):
            self.assertNotIn("fault", r, "call %d: %s" % (i, r))
            self.assertEqual(r["envelopeNs"], SOAP12 if soap == "1.2" else SOAP11, i)
            self.no_attribute_objects(r, i)
        for r in out[:4]:
            W.secrets.add(r["body"]["Credentials"]["Ticket"])

        def value(v, expected):
            """A body value: the exact type from typed clients, its text from the others."""
            if typed:
                self.assertIs(type(v), type(expected), (v, expected))
                self.assertEqual(v, expected)
            elif isinstance(expected, bool):
                self.assertEqual(v, "true" if expected else "false")
            else:
                self.assertEqual(v, str(expected))

        def succeeded(r, expected=True):
            h = r["header"]["Succeeded"]
            if typed_headers:
                self.assertIs(h, expected, r)
            else:
                self.assertEqual(h, "true" if expected else "false", r)

        def refused(r, exception_type, field=None):
            succeeded(r, False)
            info = r["header"]["ExceptionInfo"]
            self.assertEqual(info["ExceptionType"], exception_type, r)
            if field:
                self.assertIn(field, info["Message"])
                pair = info["Parameters"]["SoExceptionInfoParametersKeyValuePair"]
                pair = pair[0] if isinstance(pair, list) else pair
                self.assertEqual((pair["Key"], pair["Value"]), ("Field", field))

        # SoPrincipal: tickets, the carrier's typed values, a wrong password is just false.
        alice = out[0]["body"]
        value(alice["AuthenticationSucceeded"], True)
        self.assertIsInstance(alice["Credentials"]["Ticket"], str)
        self.assertTrue(alice["Credentials"]["Ticket"].startswith("7T:"))
        value(alice["Response"]["AssociateId"], W.ids["alice"])
        self.assertEqual(alice["Response"]["UserType"], "InternalAssociate")
        self.assertEqual(out[3]["body"]["Response"]["UserType"], "SystemAssociate")
        succeeded(out[0])
        value(out[4]["body"]["AuthenticationSucceeded"], False)
        self.assertFalse(out[4]["body"].get("Credentials"))
        self.assertNotIn("ExceptionInfo", out[4]["header"] or {})

        # CreateDefault: open-ended dates, empty strings.
        d = out[5]["body"]["Response"]
        succeeded(out[5])
        self.assertEqual(when(d["ValidFrom"]), datetime.datetime(1, 1, 1))
        self.assertEqual(when(d["ValidTo"]), datetime.datetime(1, 1, 1))

        # Save and Get of one's own, with the secret and the types intact.
        succeeded(out[6])
        mine = [c for c in items(out[7]["body"]) if c["PublicValue"] == tag]
        self.assertEqual(len(mine), 1, out[7])
        self.assertEqual(mine[0]["SecretValue"], secret_a)
        self.assertEqual(mine[0]["Comment"], "from " + tag)
        self.assertEqual(when(mine[0]["ValidFrom"]), datetime.datetime(2024, 5, 6, 7, 8, 9))
        self.assertEqual(when(mine[0]["ValidTo"]), datetime.datetime(1, 1, 1))
        value(mine[0]["IsActive"], True)

        # A user may neither read nor write another associate's credentials.
        refused(out[8], "SoAccessDeniedException")
        self.assertEqual(items(out[8]["body"]), [])
        refused(out[9], "SoAccessDeniedException")
        # A userAdmin may write them, and reads them back with the secret blank.
        succeeded(out[10])
        theirs = [c for c in items(out[11]["body"]) if c["PublicValue"] == tag]
        self.assertEqual(len(theirs), 1, out[11])
        self.assertIn(theirs[0]["SecretValue"], ("", None))
        # The owner and a system user read the secret.
        self.assertEqual([c["SecretValue"] for c in items(out[12]["body"])
                          if c["PublicValue"] == tag], [secret_b])
        self.assertEqual([c["SecretValue"] for c in items(out[13]["body"])
                          if c["PublicValue"] == tag], [secret_b])
        # Bob sees only his own: nothing of alice's.
        self.assertEqual([c for c in items(out[14]["body"]) if c["PublicValue"] == tag], [])
        # Remove for another (userAdmin) and for oneself; AssociateId 0 is oneself.
        succeeded(out[15])
        self.assertEqual([c for c in items(out[16]["body"]) if c["PublicValue"] == tag], [])
        self.assertEqual([c["SecretValue"] for c in items(out[17]["body"])
                          if c["PublicValue"] == tag], [secret_a])
        succeeded(out[18])
        self.assertEqual([c for c in items(out[19]["body"]) if c["PublicValue"] == tag], [])
        # No valid ticket: SoSecurityException.
        refused(out[20], "SoSecurityException")
        refused(out[23], "SoSecurityException")
        # An empty dateTime is refused naming the field, and nothing is stored.
        refused(out[21], "ArgumentException", "ValidFrom")
        self.assertEqual([c for c in items(out[22]["body"])
                          if c["PublicValue"] == tag + "-date"], [])

    def no_attribute_objects(self, value, where):
        """node-soap turns an element with attributes into {attributes, $value}: no response
        value may arrive that way."""
        if isinstance(value, dict):
            self.assertFalse({"attributes", "$value", "$attributes"} & set(value), (where, value))
            for v in value.values():
                self.no_attribute_objects(v, where)
        elif isinstance(value, list):
            for v in value:
                self.no_attribute_objects(v, where)

    def run_versions(self, client, soap, typed, typed_headers):
        for version in VERSIONS:
            with self.subTest(client=client, soap=soap, version=version):
                self.check(client, soap, version, typed, typed_headers)

    def test_php_soapclient_soap11(self):
        clientlib.require_php()
        self.run_versions("php", "1.1", typed=True, typed_headers=True)

    def test_php_soapclient_soap12(self):
        clientlib.require_php()
        self.run_versions("php", "1.2", typed=True, typed_headers=True)

    def test_node_soap_soap11(self):
        clientlib.node_modules()
        # node-soap types body values from the WSDL; headers it leaves as text.
        self.run_versions("node", "1.1", typed=True, typed_headers=False)

    def test_node_soap_soap12(self):
        clientlib.node_modules()
        # node-soap maps response values to the WSDL's types only in SOAP 1.1 envelopes (its
        # parser looks for the 1.1 envelope namespace); in 1.2 every value is text.
        self.run_versions("node", "1.2", typed=False, typed_headers=False)


if __name__ == "__main__":
    # "php" or "node": one client family per meson test, so each skips (exit 77) on its own
    # when its client is missing.
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which in ("php", "all"):
        clientlib.require_php()
    if which in ("node", "all"):
        clientlib.node_modules()
    names = [n for n in unittest.TestLoader().getTestCaseNames(Clients)
             if which == "all" or n.startswith("test_" + which)]
    result = unittest.TextTestRunner(verbosity=2).run(
        unittest.TestSuite(Clients(n) for n in names))
    sys.exit(0 if result.wasSuccessful() else 1)
