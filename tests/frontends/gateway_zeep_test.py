#!/usr/bin/python3
"""Integration test (suite 'gateway'): a standard SOAP client, python3-zeep, loads the
gateway's ?wsdl for every service and version and calls every operation against the real
credvaultd behind the real gateway."""

import datetime
import sys
import unittest

try:
    import zeep
except ImportError:
    print("skipping: python3-zeep is not installed")
    sys.exit(77)

from gatewaylib import World

VERSIONS = (75, 80, 81, 82, 83, 84, 85, 86, 87, 88)
W = None


def setUpModule():
    global W
    W = World()


def tearDownModule():
    W.finish()


def base(version):
    return "http://127.0.0.1:%d/Remote/Services%d/" % (W.gateway.port, version)


class Zeep(unittest.TestCase):
    def login(self, version, name):
        principal = zeep.Client(base(version) + "SoPrincipal.svc?wsdl")
        r = principal.service.AuthenticateUsernamePassword(UserName=name,
                                                           Password=W.PASSWORDS[name])
        self.assertTrue(r.body.AuthenticationSucceeded)
        ticket = r.body.Credentials.Ticket
        W.secrets.add(ticket)
        return r, ticket

    def test_every_operation_in_every_version(self):
        bob = W.ids["bob"]
        for version in VERSIONS:
            with self.subTest(version=version):
                r, ticket = self.login(version, "sys")
                self.assertEqual(r.body.Response.AssociateId, W.ids["sys"])
                self.assertEqual(r.body.Response.UserType, "SystemAssociate")
                self.assertTrue(r.header.Succeeded)

                user = zeep.Client(base(version) + "User.svc?wsdl")
                self.assertEqual(sorted(user.service._operations.keys()), [
                    "CreateDefaultUntrustedCredentials", "GetUntrustedCredentials",
                    "GetUntrustedCredentialsForAssociate", "RemoveUntrustedCredentials",
                    "RemoveUntrustedCredentialsForAssociate", "SaveUntrustedCredentials",
                    "SaveUntrustedCredentialsForAssociate"])
                h = {"Credentials": {"Ticket": ticket}, "ApplicationToken": "zeep-test"}
                svc = user.service

                d = svc.CreateDefaultUntrustedCredentials(_soapheaders=h)
                self.assertTrue(d.header.Succeeded)
                self.assertEqual(d.body.Response.ValidFrom, datetime.datetime(1, 1, 1))

                secret = "zeep-%d-Secret" % version
                W.secrets.add(secret)
                cred = {"ValidFrom": datetime.datetime(2024, 5, 6, 7, 8, 9,
                                                       tzinfo=datetime.timezone.utc),
                        "ValidTo": datetime.datetime(1, 1, 1), "Comment": "from zeep",
                        "SecretValue": secret, "PublicValue": "me@%d" % version,
                        "IsActive": True}
                s = svc.SaveUntrustedCredentials(Type="imap", Credentials=cred, _soapheaders=h)
                self.assertTrue(s.header.Succeeded, s.header.ExceptionInfo)

                g = svc.GetUntrustedCredentials(Type="imap", _soapheaders=h)
                items = g.body.Response.UntrustedCredentials
                mine = [c for c in items if c.PublicValue == "me@%d" % version]
                self.assertEqual(len(mine), 1)
                self.assertEqual(mine[0].SecretValue, secret)
                self.assertEqual(mine[0].Comment, "from zeep")
                self.assertEqual(mine[0].ValidFrom.replace(tzinfo=None),
                                 datetime.datetime(2024, 5, 6, 7, 8, 9))

                s = svc.SaveUntrustedCredentialsForAssociate(AssociateId=bob, Type="smtp",
                                                             Credentials=cred, _soapheaders=h)
                self.assertTrue(s.header.Succeeded, s.header.ExceptionInfo)
                g = svc.GetUntrustedCredentialsForAssociate(AssociateId=bob, Type="smtp",
                                                            _soapheaders=h)
                self.assertEqual(g.body.Response.UntrustedCredentials[0].SecretValue, secret)

                r1 = svc.RemoveUntrustedCredentialsForAssociate(
                    AssociateId=bob, Type="smtp", PublicValue="me@%d" % version, _soapheaders=h)
                self.assertTrue(r1.header.Succeeded)
                r2 = svc.RemoveUntrustedCredentials(Type="imap", PublicValue="me@%d" % version,
                                                    _soapheaders=h)
                self.assertTrue(r2.header.Succeeded)
                g = svc.GetUntrustedCredentials(Type="imap", _soapheaders=h)
                # An empty array: <Response></Response>, no children and (as WCF writes it)
                # no attributes, which zeep reads as None.
                self.assertIsNone(g.body.Response)

    def test_errors_reach_the_client_as_exception_info(self):
        user = zeep.Client(base(86) + "User.svc?wsdl")
        r = user.service.GetUntrustedCredentials(Type="imap",
                                                 _soapheaders={"Credentials": {"Ticket": "7T:x"}})
        self.assertFalse(r.header.Succeeded)
        self.assertEqual(r.header.ExceptionInfo.ExceptionType, "SoSecurityException")

        _, alice = self.login(86, "alice")
        r = user.service.GetUntrustedCredentialsForAssociate(
            AssociateId=W.ids["bob"], Type="imap", _soapheaders={"Credentials": {"Ticket": alice}})
        self.assertFalse(r.header.Succeeded)
        self.assertEqual(r.header.ExceptionInfo.ExceptionType, "SoAccessDeniedException")

        principal = zeep.Client(base(86) + "SoPrincipal.svc?wsdl")
        r = principal.service.AuthenticateUsernamePassword(UserName="alice", Password="wrong")
        self.assertFalse(r.body.AuthenticationSucceeded)


if __name__ == "__main__":
    unittest.main(verbosity=2)
