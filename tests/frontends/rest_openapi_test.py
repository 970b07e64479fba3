#!/usr/bin/python3
"""Integration test (suite 'gateway'): real REST responses of every operation, successes and
failures, against docs/openapi.json, judged by Ajv with ajv-formats
(tests/frontends/clients/openapi-check.js): each status must be declared for its operation,
each body valid against the declared schema, formats included — every date-time carries its
offset, open-ended ones too ("0001-01-01T00:00:00Z")."""

import base64
import json
import os
import unittest

import clientlib
from gatewaylib import World

W = None
OPENAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                       "openapi.json")
AGENT = "/api/v1/Agents/User/"


def setUpModule():
    global W
    W = World()


def tearDownModule():
    W.finish()


def basic(name):
    token = base64.b64encode(("%s:%s" % (name, W.PASSWORDS[name])).encode()).decode()
    return "Basic " + token


class OpenApi(unittest.TestCase):
    def test_every_operation_answers_as_the_document_declares(self):
        responses = []

        def call(name, op, body=None, who="alice", method="POST", query="", ctype=None,
                 raw=None, auth=True, expect=None):
            headers = {"Accept": "application/json"}
            if auth:
                headers["Authorization"] = basic(who)
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if ctype:
                headers["Content-Type"] = ctype
            path = op if op.startswith("/") else AGENT + op
            status, h, got = W.gateway.request(method, path + query, data, headers)
            if expect is not None:
                self.assertEqual(status, expect, (name, got[:300]))
            responses.append({"name": name, "path": path, "method": method.lower(),
                              "status": status, "contentType": h.get("Content-Type"),
                              "body": json.loads(got) if got else None})
            return status, got

        bob = W.ids["bob"]
        secret = "openapi-Secret-1"
        W.secrets.add(secret)
        cred = {"ValidFrom": "2024-05-01T12:00:00.25+02:00", "Comment": "c",
                "SecretValue": secret, "PublicValue": "alice@example.org", "IsActive": True}
        call("create-default", "CreateDefaultUntrustedCredentials", expect=200)
        call("save", "SaveUntrustedCredentials", {"Type": "imap", "Credentials": cred},
             expect=204)
        _, got = call("get", "GetUntrustedCredentials", {"Type": "imap"}, expect=200)
        self.assertEqual(json.loads(got)[0]["ValidFrom"], "2024-05-01T10:00:00.25Z")
        self.assertEqual(json.loads(got)[0]["ValidTo"], "0001-01-01T00:00:00Z")
        call("get-select", "GetUntrustedCredentials", {"Type": "imap"},
             query="?$select=PublicValue", expect=200)
        call("get-empty", "GetUntrustedCredentials", {"Type": "none"}, expect=200)
        call("save-for-associate", "SaveUntrustedCredentialsForAssociate",
             {"AssociateId": bob, "Type": "smtp", "Credentials": cred}, who="admin", expect=204)
        call("get-for-associate-withheld", "GetUntrustedCredentialsForAssociate",
             {"AssociateId": bob, "Type": "smtp"}, who="admin", expect=200)
        call("get-for-associate-system", "GetUntrustedCredentialsForAssociate",
             {"AssociateId": bob, "Type": "smtp"}, who="sys", expect=200)
        call("remove-for-associate", "RemoveUntrustedCredentialsForAssociate",
             {"AssociateId": bob, "Type": "smtp", "PublicValue": "alice@example.org"},
             who="admin", expect=204)
        call("remove", "RemoveUntrustedCredentials",
             {"Type": "imap", "PublicValue": "alice@example.org"}, expect=204)
        # Failures: each status the document declares, with its Error body.
        call("bad-type", "GetUntrustedCredentials", {"Type": 5}, expect=400)
        call("empty-date", "SaveUntrustedCredentials",
             {"Type": "imap", "Credentials": {"ValidFrom": ""}}, expect=400)
        call("no-credentials", "GetUntrustedCredentials", {"Type": "imap"}, auth=False,
             expect=401)
        call("denied", "GetUntrustedCredentialsForAssociate",
             {"AssociateId": bob, "Type": "imap"}, expect=403)
        call("unknown-associate", "GetUntrustedCredentialsForAssociate",
             {"AssociateId": 999999, "Type": "imap"}, who="sys", expect=404)
        call("too-large", "SaveUntrustedCredentials", ctype="application/json",
             raw=b'{"Type":"' + b"x" * (70 * 1024) + b'"}', expect=413)
        call("media-type", "GetUntrustedCredentials", ctype="text/plain", raw=b"Type=imap",
             expect=415)
        # The descriptions and the document itself.
        call("describe", "GetUntrustedCredentials", method="GET", auth=False, expect=200)
        call("list", "/api/v1/Agents/User", method="GET", auth=False, expect=200)
        call("document", "/api/v1/openapi.json", method="GET", auth=False, expect=200)

        verdicts = clientlib.node("openapi-check.js",
                                  {"openapi": os.path.abspath(OPENAPI), "responses": responses})
        self.assertEqual(len(verdicts), len(responses))
        for v in verdicts:
            with self.subTest(response=v["name"]):
                self.assertEqual(v["errors"], [])

    def test_the_validator_refuses_a_date_without_offset(self):
        """The check can fail: a carrier as the gateway used to write an open-ended date."""
        carrier = {"ValidFrom": "0001-01-01T00:00:00", "ValidTo": "2024-05-01T12:00:00Z",
                   "Comment": "", "SecretValue": "", "PublicValue": "p", "IsActive": False,
                   "TableRight": None, "FieldProperties": {}}
        verdicts = clientlib.node("openapi-check.js", {
            "openapi": os.path.abspath(OPENAPI),
            "responses": [{"name": "old", "path": AGENT + "CreateDefaultUntrustedCredentials",
                           "method": "post", "status": 200,
                           "contentType": "application/json; charset=utf-8", "body": carrier},
                          {"name": "undeclared", "path": AGENT + "GetUntrustedCredentials",
                           "method": "post", "status": 418, "contentType": "application/json",
                           "body": {}}]})
        self.assertEqual(len(verdicts[0]["errors"]), 1, verdicts)
        self.assertIn("date-time", verdicts[0]["errors"][0])
        self.assertIn("/ValidFrom", verdicts[0]["errors"][0])
        self.assertIn("not declared", verdicts[1]["errors"][0])


if __name__ == "__main__":
    clientlib.node_modules()
    unittest.main(verbosity=2)
