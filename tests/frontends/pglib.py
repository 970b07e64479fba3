"""A throw-away PostgreSQL 15 for the gateway tests, as tests/support/postgres.h is for the C++
ones: initdb into a temporary directory, the server on a unix socket there only (no TCP),
fsync on, run as `nobody` when the tests run as root (PostgreSQL refuses root). One server per
test process, started on first use and stopped at exit; a fresh database per daemon.

With CREDVAULT_TEST_STORE=postgresql (set by meson for the *-postgresql runs), daemon_settings()
gives the `--set` values that put a daemon's records in a fresh database; otherwise none.
"""

import atexit
import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"


def wanted():
    return os.environ.get("CREDVAULT_TEST_STORE") == "postgresql"


def available():
    return all(os.access(os.path.join(BIN, b), os.X_OK) for b in ("initdb", "postgres", "psql"))


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the server is killed with the test process if that dies.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class Server:
    def __init__(self):
        if not available():
            raise RuntimeError("PostgreSQL 15 is not installed (scripts/deps.sh installs it)")
        self.user = {}
        base = None
        if os.getuid() == 0:
            pw = pwd.getpwnam("nobody")
            self.user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
            base = "/tmp"  # $TMPDIR may be out of nobody's reach
        self.dir = tempfile.mkdtemp(prefix="credvault-pg-", dir=base)
        os.chmod(self.dir, 0o700)
        if self.user:
            os.chown(self.dir, self.user["user"], self.user["group"])
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.proc = None
        self.databases = 0
        self._run(["initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])
        self.start()
        atexit.register(self.remove)

    def _run(self, argv):
        r = subprocess.run([os.path.join(BIN, argv[0])] + argv[1:], capture_output=True,
                           text=True, cwd="/", **self.user)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (argv[0], r.stdout + r.stderr))
        return r.stdout

    def start(self):
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [os.path.join(BIN, "postgres"), "-D", self.data, "-k", self.dir,
                 "-c", "listen_addresses=", "-c", "fsync=on", "-c", "shared_buffers=32MB",
                 "-c", "max_connections=60", "-c", "log_min_messages=warning"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
                preexec_fn=_die_with_parent, **self.user)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("PostgreSQL exited at start: " + open(self.log).read()[-2000:])
            r = subprocess.run([os.path.join(BIN, "pg_isready"), "-q", "-h", self.dir],
                               capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not start in 30 s")

    def stop(self):
        """Fast shutdown (clients disconnected, everything committed kept)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=60)
        self.proc = None

    def remove(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(timeout=60)
        self.proc = None
        if not os.environ.get("CREDVAULT_KEEP_TEST_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, database):
        return "host=%s user=postgres dbname=%s" % (self.dir, database)

    def psql(self, database, sql):
        return self._run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-d", self.conninfo(database), "-c", sql])

    def fresh_database(self):
        self.databases += 1
        name = "credvault_gw_%d" % self.databases
        self.psql("postgres", "CREATE DATABASE %s TEMPLATE template0" % name)
        return self.conninfo(name)


_server = None


def server():
    global _server
    if _server is None:
        _server = Server()
    return _server


def daemon_settings():
    """`--set` values for a new daemon: a fresh database on PostgreSQL runs, else none."""
    if not wanted():
        return []
    return ["storage=postgresql", "postgresql=" + server().fresh_database(),
            "postgresql_connections=2"]
