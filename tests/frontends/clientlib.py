"""Third-party clients for the gateway tests: where they are and how to run them.

Debian's (php-cli, php-soap, libxml2-utils, python3-xmlschema) come from scripts/deps.sh;
npm's (node-soap, Ajv, ajv-formats; tests/frontends/clients/package.json) from
scripts/node-deps.sh, which installs them into a cache directory shared by every build:
$CREDVAULT_NODE_CLIENTS, else ${XDG_CACHE_HOME:-~/.cache}/credvault/node-clients. ./test.sh
runs both. A test whose client is missing skips (exit 77) saying what to run.
"""

import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.join(HERE, "clients")
XMLSCHEMA_DIR = "/usr/lib/python3/dist-packages/xmlschema/schemas"


def skip(message):
    print("skipping: " + message)
    sys.exit(77)


def node_modules():
    """The node_modules directory scripts/node-deps.sh fills, or a skip saying how to fill it."""
    base = os.environ.get("CREDVAULT_NODE_CLIENTS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "credvault", "node-clients")
    modules = os.path.join(base, "node_modules")
    if not shutil.which("node"):
        skip("node is not installed (scripts/deps.sh installs nodejs)")
    if not os.path.isdir(os.path.join(modules, "soap")) or not os.path.isdir(
            os.path.join(modules, "ajv-formats")):
        skip("the npm packages are not in %s: run scripts/node-deps.sh (it needs npm and the "
             "npm registry)" % base)
    return modules


def require_php():
    if not shutil.which("php"):
        skip("php is not installed (scripts/deps.sh installs php-cli and php-soap)")
    r = subprocess.run(["php", "-r", "echo class_exists('SoapClient') ? 'yes' : 'no';"],
                       capture_output=True, text=True)
    if r.stdout.strip() != "yes":
        skip("PHP's soap extension is missing (scripts/deps.sh installs php-soap)")


def run_json(argv, payload, env=None, timeout=60):
    """Runs a driver with `payload` as JSON on stdin; returns its JSON output."""
    r = subprocess.run(argv, input=json.dumps(payload), capture_output=True, text=True,
                       env=env, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("%s exited %d: %s %s" % (os.path.basename(argv[-1]), r.returncode,
                                                      r.stderr[-2000:], r.stdout[-2000:]))
    return json.loads(r.stdout)


def node(script, payload, timeout=60):
    env = dict(os.environ, NODE_PATH=node_modules())
    return run_json(["node", os.path.join(CLIENTS, script)], payload, env=env, timeout=timeout)


def php(script, payload, timeout=60):
    # -d: no php.ini surprises (a distribution's default_socket_timeout, WSDL cache).
    return run_json(["php", "-d", "soap.wsdl_cache_enabled=0", "-d", "display_errors=stderr",
                     os.path.join(CLIENTS, script)], payload, timeout=timeout)
