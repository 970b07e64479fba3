#!/usr/bin/python3
"""credvaultctl at a terminal: secrets and passwords are asked for without echo (a new one
twice), through a real pseudo-terminal and the real daemon.

Usage: prompt_test.py CREDVAULTD CREDVAULTCTL   (as root; exit 77 = skipped otherwise)
"""
import os
import pty
import select
import socket
import subprocess
import sys
import tempfile
import time
import unittest

CREDVAULTD, CREDVAULTCTL = sys.argv[1], sys.argv[2]
SECRET = "-prompted\tsecret-9911"
PW_OLD = "prompt-old-Pw-1"
PW_NEW = "prompt-new-Pw-2"


class Terminal:
    """Runs credvaultctl with stdin and stderr on a pty (stdout a pipe)."""

    def __init__(self, sock, *args):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([CREDVAULTCTL, "--socket", sock] + list(args),
                                     stdin=slave, stderr=slave, stdout=subprocess.PIPE)
        os.close(slave)
        self.seen = b""
        self.pos = 0  # what expect() has consumed

    def expect(self, text, timeout=10):
        deadline = time.time() + timeout
        while text.encode() not in self.seen[self.pos:]:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %r on the terminal; saw %r" % (text, self.seen))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:
                    raise AssertionError("terminal closed; saw %r" % self.seen)
        self.pos = self.seen.index(text.encode(), self.pos) + len(text)

    def answer(self, prompt, line):
        self.expect(prompt)
        os.write(self.master, line.encode() + b"\n")

    def finish(self):
        out, _ = self.proc.communicate(timeout=20)
        try:
            while select.select([self.master], [], [], 0.2)[0]:
                self.seen += os.read(self.master, 4096)
        except OSError:
            pass
        os.close(self.master)
        return self.proc.returncode, out


def accepts(path):
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


class Prompts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        d = cls.dir.name
        open(os.path.join(d, "empty.conf"), "w").close()
        cls.sock = os.path.join(d, "s.sock")
        cls.log = open(os.path.join(d, "daemon.log"), "w")
        cls.daemon = subprocess.Popen(
            [CREDVAULTD, "--config", os.path.join(d, "empty.conf"), "--state-dir",
             os.path.join(d, "state"), "--socket", cls.sock, "--create-key", "--set",
             "password_ops_limit=1", "--set", "password_mem_limit=8192"],
            stdout=cls.log, stderr=cls.log)
        # Until it accepts on its socket (the file exists from bind(), before listen()), 30 s
        # at most: a loaded host can take seconds to start it.
        deadline = time.monotonic() + 30
        while not accepts(cls.sock):
            assert cls.daemon.poll() is None, "credvaultd exited: %d" % cls.daemon.returncode
            assert time.monotonic() < deadline, "credvaultd did not listen on its socket in 30 s"
            time.sleep(0.02)
        cls.ctl("associate", "add", "me", "--uid", str(os.getuid()), "--password-stdin",
                stdin=PW_OLD + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.terminate()
        cls.daemon.wait(timeout=20)
        cls.log.close()
        with open(os.path.join(cls.dir.name, "daemon.log")) as f:
            log = f.read()
        for s in (SECRET, PW_OLD, PW_NEW):
            assert s not in log, "%r in the daemon's log" % s
        cls.dir.cleanup()

    @classmethod
    def ctl(cls, *args, stdin=""):
        r = subprocess.run([CREDVAULTCTL, "--socket", cls.sock] + list(args), input=stdin,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("credvaultctl %s: %d %s" % (args, r.returncode, r.stderr))
        return r.stdout

    def test_save_asks_twice_without_echo(self):
        t = Terminal(self.sock, "save", "prompted", "--public", "p@example.test")
        t.answer("Secret (empty: keep the stored one): ", SECRET)
        t.answer("Again, to confirm: ", SECRET)
        rc, out = t.finish()
        self.assertEqual(rc, 0, t.seen)
        self.assertNotIn(b"prompted\tsecret", t.seen)  # never echoed
        self.assertEqual(self.ctl("get", "prompted", "--field", "secret"), SECRET)

    def test_entries_that_differ_are_asked_again(self):
        self.ctl("save", "prompted2", "--public", "p@example.test", stdin="old-secret-7")
        t = Terminal(self.sock, "update", "prompted2", "p@example.test", "--secret-stdin")
        t.answer("New secret: ", "first-try-1")
        t.answer("Again, to confirm: ", "first-try-2")
        t.expect("differ; try again")
        t.answer("New secret: ", "second-try-3")
        t.answer("Again, to confirm: ", "second-try-3")
        rc, _ = t.finish()
        self.assertEqual(rc, 0, t.seen)
        self.assertNotIn(b"try-", t.seen)
        self.assertEqual(self.ctl("get", "prompted2", "--field", "secret"), "second-try-3")

    def test_passwd_and_login_at_a_terminal(self):
        t = Terminal(self.sock, "passwd")
        t.answer("Current password: ", PW_OLD)
        t.answer("New password: ", PW_NEW)
        t.answer("Again, to confirm: ", PW_NEW)
        rc, _ = t.finish()
        self.assertEqual(rc, 0, t.seen)
        self.assertNotIn(PW_NEW.encode(), t.seen)
        t = Terminal(self.sock, "login", "me")
        t.answer("Password: ", PW_NEW)
        rc, out = t.finish()
        self.assertEqual(rc, 0, t.seen)
        self.assertTrue(out.startswith(b"7T:"), out)
        self.assertNotIn(PW_NEW.encode(), t.seen)


if __name__ == "__main__":
    if os.getuid() != 0:
        sys.exit(77)
    unittest.main(argv=sys.argv[:1], verbosity=2)
