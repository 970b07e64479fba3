#!/usr/bin/python3
"""Integration test (suite 'gateway'): every WSDL the gateway serves (User.svc and
SoPrincipal.svc, Services75 and 80-88) is valid, checked by tools nobody here wrote:

- the WSDL document against the WSDL 1.1 schema, and each embedded xs:schema against the XML
  Schema for schemas (XMLSchema.xsd) with xmllint; both schema files ship in Debian's
  python3-xmlschema;
- each embedded schema compiles in xmllint (every type it names resolves) and real responses
  of the gateway validate against it: what the WSDL promises is what comes back;
- PHP's SoapClient loads each WSDL in SOAP 1.1 and SOAP 1.2 and finds its operations
  (it refused the SoPrincipal WSDL while its schema had an xs:import after a declaration).
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.dom.minidom as minidom

import clientlib
from gatewaylib import World, envelope, ns, op_xml, credential_xml

VERSIONS = (75, 80, 81, 82, 83, 84, 85, 86, 87, 88)
SERVICES = ("User", "SoPrincipal")
XS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
W = None
TMP = None
_files = itertools.count()


def setUpModule():
    global W, TMP
    W = World()
    TMP = tempfile.mkdtemp(prefix="credvault-wsdl-")
    # XMLSchema.xsd imports xml.xsd by its web address: a catalog maps it to the local copy,
    # and --nonet keeps xmllint off the network.
    with open(os.path.join(TMP, "catalog.xml"), "w") as f:
        f.write('<?xml version="1.0"?>\n<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:'
                'catalog"><uri name="http://www.w3.org/2001/xml.xsd" uri="file://%s"/>'
                '<system systemId="http://www.w3.org/2001/xml.xsd" uri="file://%s"/></catalog>'
                % ((os.path.join(clientlib.XMLSCHEMA_DIR, "XML", "xml_minimal.xsd"),) * 2))


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)
    W.finish()


def xmllint(*args):
    env = dict(os.environ, XML_CATALOG_FILES=os.path.join(TMP, "catalog.xml"))
    r = subprocess.run(["xmllint", "--noout", "--nonet"] + list(args), capture_output=True,
                       text=True, env=env)
    return r.returncode, r.stderr


def fetch(version, service):
    status, _, body = W.gateway.request(
        "GET", "/Remote/Services%d/%s.svc?wsdl" % (version, service))
    assert status == 200, (version, service, status)
    return body


def schemas(wsdl):
    """The embedded xs:schema elements as standalone documents: namespace declarations in
    scope on wsdl:definitions are copied onto each (its QName values use them), and an
    xs:import of another embedded schema gets that schema's file as schemaLocation."""
    doc = minidom.parseString(wsdl)
    root = doc.documentElement
    found = doc.getElementsByTagNameNS(XS, "schema")
    files = {}
    for s in found:
        files[s.getAttribute("targetNamespace")] = os.path.join(TMP, "schema-%d.xsd"
                                                                % next(_files))
    out = []
    for s in found:
        for name, value in root.attributes.items():
            if name.startswith("xmlns:") and not s.hasAttribute(name):
                s.setAttribute(name, value)
        for imp in s.getElementsByTagNameNS(XS, "import"):
            target = files.get(imp.getAttribute("namespace"))
            if target:
                imp.setAttribute("schemaLocation", target)
        path = files[s.getAttribute("targetNamespace")]
        with open(path, "w") as f:
            f.write('<?xml version="1.0" encoding="utf-8"?>\n' + s.toxml())
        out.append((s.getAttribute("targetNamespace"), path))
    return out


class Wsdl(unittest.TestCase):
    def test_every_wsdl_and_schema_is_valid(self):
        wsdl_xsd = os.path.join(clientlib.XMLSCHEMA_DIR, "WSDL", "wsdl.xsd")
        schema_xsd = os.path.join(clientlib.XMLSCHEMA_DIR, "XSD_1.0", "XMLSchema.xsd")
        for version in VERSIONS:
            for service in SERVICES:
                with self.subTest(version=version, service=service):
                    text = fetch(version, service)
                    path = os.path.join(TMP, "%s%d.wsdl" % (service, version))
                    with open(path, "wb") as f:
                        f.write(text)
                    rc, err = xmllint("--schema", wsdl_xsd, path)
                    self.assertEqual(rc, 0, err)
                    embedded = schemas(text)
                    self.assertEqual([t for t, _ in embedded][0], ns(version))
                    for target, schema in embedded:
                        # Structure: against the XML Schema for schemas (imports first, ...).
                        rc, err = xmllint("--schema", schema_xsd, schema)
                        self.assertEqual(rc, 0, (target, err))
                    # Meaning: the service schema compiles (every QName resolves, imports
                    # included) and accepts a value of one of its own elements.
                    instance = os.path.join(TMP, "instance.xml")
                    with open(instance, "w") as f:
                        f.write('<t:Succeeded xmlns:t="%s">true</t:Succeeded>' % ns(version))
                    rc, err = xmllint("--schema", embedded[0][1], instance)
                    self.assertEqual(rc, 0, err)

    def test_an_import_after_a_declaration_is_caught(self):
        # The check above can fail: the SoPrincipal schema as it used to be served.
        text = fetch(86, "SoPrincipal").decode()
        imp = '<xs:import namespace="http://schemas.microsoft.com/2003/10/Serialization/Arrays" />'
        self.assertIn(imp, text)
        moved = text.replace(imp, "").replace('<xs:simpleType name="UserType">',
                                              imp + '<xs:simpleType name="UserType">')
        _, schema = schemas(moved.encode())[0]
        rc, err = xmllint("--schema",
                          os.path.join(clientlib.XMLSCHEMA_DIR, "XSD_1.0", "XMLSchema.xsd"),
                          schema)
        self.assertNotEqual(rc, 0)
        self.assertIn("import", err)

    def test_responses_validate_against_the_served_schema(self):
        """Bodies and headers of real answers (login, each User operation, a failure) are
        valid instances of the WSDL's own element declarations."""
        for version in (75, 86, 88):
            with self.subTest(version=version):
                user_schema = schemas(fetch(version, "User"))[0][1]
                principal_schema = schemas(fetch(version, "SoPrincipal"))[0][1]
                answers = []
                login = envelope(version, "<SoPrincipal:AuthenticateUsernamePassword>"
                                 "<SoPrincipal:UserName>alice</SoPrincipal:UserName>"
                                 "<SoPrincipal:Password>%s</SoPrincipal:Password>"
                                 "</SoPrincipal:AuthenticateUsernamePassword>"
                                 % W.PASSWORDS["alice"], prefix="SoPrincipal")
                _, _, body = W.gateway.soap("/Remote/Services%d/SoPrincipal.svc" % version, login)
                answers.append((principal_schema, body))
                ticket = minidom.parseString(body).getElementsByTagNameNS(
                    ns(version), "Ticket")[0].firstChild.data
                W.secrets.add(ticket)
                wrong = login.replace(W.PASSWORDS["alice"], "wrong-password")
                answers.append((principal_schema, W.gateway.soap(
                    "/Remote/Services%d/SoPrincipal.svc" % version, wrong)[2]))
                public = "wsdl-%d" % version
                secret = "wsdl-%d-Secret" % version
                W.secrets.add(secret)
                for op in (op_xml("CreateDefaultUntrustedCredentials"),
                           op_xml("SaveUntrustedCredentials", type_="imap",
                                  credentials=credential_xml(secret=secret, public=public)),
                           op_xml("GetUntrustedCredentials", type_="imap"),
                           op_xml("GetUntrustedCredentialsForAssociate", associate=0,
                                  type_="imap"),
                           op_xml("GetUntrustedCredentialsForAssociate",
                                  associate=W.ids["bob"], type_="imap"),  # denied
                           op_xml("SaveUntrustedCredentialsForAssociate", associate=0,
                                  type_="smtp", credentials=credential_xml(public=public)),
                           op_xml("RemoveUntrustedCredentialsForAssociate", associate=0,
                                  type_="smtp", public=public),
                           op_xml("RemoveUntrustedCredentials", type_="imap", public=public),
                           op_xml("GetUntrustedCredentials", type_="imap")):  # empty array
                    _, _, body = W.gateway.soap("/Remote/Services%d/User.svc" % version,
                                                envelope(version, op, ticket=ticket))
                    answers.append((user_schema, body))
                for i, (schema, body) in enumerate(answers):
                    doc = minidom.parseString(body)
                    env = doc.documentElement
                    parts = [e for e in env.getElementsByTagNameNS(env.namespaceURI, "Body")[0]
                             .childNodes if e.nodeType == e.ELEMENT_NODE]
                    for h in env.getElementsByTagNameNS(env.namespaceURI, "Header"):
                        parts += [e for e in h.childNodes if e.nodeType == e.ELEMENT_NODE]
                    self.assertTrue(parts)
                    for part in parts:
                        for name, value in env.attributes.items():
                            if name.startswith("xmlns") and not part.hasAttribute(name):
                                part.setAttribute(name, value)
                        path = os.path.join(TMP, "part.xml")
                        with open(path, "w") as f:
                            f.write(part.toxml())
                        rc, err = xmllint("--schema", schema, path)
                        self.assertEqual(rc, 0, (i, part.localName, err))

    def test_php_soapclient_loads_every_wsdl(self):
        urls = ["http://127.0.0.1:%d/Remote/Services%d/%s.svc?wsdl" % (W.gateway.port, v, s)
                for v in VERSIONS for s in SERVICES]
        code = r'''
            $out = [];
            foreach (json_decode(stream_get_contents(STDIN)) as $url) {
                foreach ([SOAP_1_1 => "1.1", SOAP_1_2 => "1.2"] as $v => $name) {
                    try {
                        $c = new SoapClient($url, ["soap_version" => $v,
                                                   "cache_wsdl" => WSDL_CACHE_NONE]);
                        $ops = [];
                        foreach ($c->__getFunctions() as $f) {
                            preg_match('/ (\w+)\(/', $f, $m);
                            $ops[] = $m[1];
                        }
                        sort($ops);
                        $out[] = [$url, $name, $ops];
                    } catch (Throwable $e) {
                        $out[] = [$url, $name, $e->getMessage()];
                    }
                }
            }
            echo json_encode($out);'''
        r = subprocess.run(["php", "-d", "soap.wsdl_cache_enabled=0", "-r", code],
                           input=json.dumps(urls), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        loaded = json.loads(r.stdout)
        self.assertEqual(len(loaded), 2 * len(urls))
        user_ops = sorted(["CreateDefaultUntrustedCredentials", "GetUntrustedCredentials",
                           "GetUntrustedCredentialsForAssociate", "SaveUntrustedCredentials",
                           "SaveUntrustedCredentialsForAssociate", "RemoveUntrustedCredentials",
                           "RemoveUntrustedCredentialsForAssociate"])
        for url, soap, ops in loaded:
            with self.subTest(url=url, soap=soap):
                self.assertEqual(ops, user_ops if "User.svc" in url
                                 else ["AuthenticateUsernamePassword"])


if __name__ == "__main__":
    if not shutil.which("xmllint"):
        clientlib.skip("xmllint is not installed (scripts/deps.sh installs libxml2-utils)")
    if not os.path.exists(os.path.join(clientlib.XMLSCHEMA_DIR, "XSD_1.0", "XMLSchema.xsd")):
        clientlib.skip("XMLSchema.xsd is missing (scripts/deps.sh installs python3-xmlschema)")
    clientlib.require_php()
    unittest.main(verbosity=2)
