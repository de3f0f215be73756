"""A throwaway PostgreSQL server for sked's cluster-mode end-to-end tests,
plus a test-case base class that runs several `sked server`s on it.

PgCluster initdb's a cluster in a fresh temporary directory and runs it on a
unix socket in that directory only (listen_addresses='', so no TCP port is
ever opened), with fsync and synchronous_commit on, as in production. As
root the cluster belongs to the "postgres" user (PostgreSQL refuses to run as
root); every tool is run through runuser and every call has a hard timeout.
It can be restarted (or stopped and started) mid-test, and close() stops it
with `pg_ctl -m fast` (falling back to immediate) and removes the directory.
An atexit hook closes any cluster a crashed test left running. This is the
Python twin of tests/store/pg_harness.sh.

ClusterTestCase (a SkedTestCase) starts one PgCluster per test class in
setUpClass, gives each test its own database, and adds helpers to start
servers on fixed loopback ports (so a server killed and restarted comes back
at the same URL that workers and the CLI were given) and workers that know
every server.

Standard library only.
"""

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

from skedtest import SkedTestCase

PGBIN = os.environ.get("PGBIN") or "/usr/lib/postgresql/15/bin"
PG_USER = os.environ.get("SKED_PG_USER") or "postgres"
PG_TIMEOUT = float(os.environ.get("SKED_PG_START_TIMEOUT") or 60)

_clusters = []
_clusters_lock = threading.Lock()


def _atexit_close():
    with _clusters_lock:
        cs = list(_clusters)
    for c in cs:
        c.close()


atexit.register(_atexit_close)


class PgError(AssertionError):
    pass


class PgCluster:
    """One throwaway PostgreSQL server on a unix socket in a temp dir."""

    def __init__(self, max_connections=300):
        self.max_connections = max_connections
        self.dir = None
        self.data = None
        self.running = False
        self._as_root = os.geteuid() == 0

    # ---- running tools --------------------------------------------------

    def _run(self, tool, *args, timeout=PG_TIMEOUT, check=True):
        cmd = [os.path.join(PGBIN, tool)] + [str(a) for a in args]
        if self._as_root:
            cmd = ["runuser", "-u", PG_USER, "--"] + cmd
        try:
            cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=timeout, cwd="/")
        except subprocess.TimeoutExpired:
            raise PgError("%s timed out after %.0fs\n%s" % (" ".join(cmd), timeout, self.log_tail()))
        if check and cp.returncode != 0:
            raise PgError("%s -> rc %d\nstdout: %s\nstderr: %s\n%s" % (
                " ".join(cmd), cp.returncode, cp.stdout.decode(errors="replace"),
                cp.stderr.decode(errors="replace"), self.log_tail()))
        return cp

    def log_path(self):
        return os.path.join(self.dir, "server.log") if self.dir else None

    def log_tail(self, nbytes=3000):
        try:
            with open(self.log_path(), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return "postgres log tail:\n" + f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""

    # ---- lifecycle ------------------------------------------------------

    def start(self):
        """initdb + start. Fails (PgError) with the server log on trouble."""
        for tool in ("initdb", "pg_ctl", "createdb", "psql"):
            if not os.access(os.path.join(PGBIN, tool), os.X_OK):
                raise PgError("%s/%s not found (set PGBIN)" % (PGBIN, tool))
        # Short path: the socket path (DIR/.s.PGSQL.5432) must fit in sun_path.
        self.dir = tempfile.mkdtemp(prefix="skedpg.", dir="/tmp")
        self.data = os.path.join(self.dir, "data")
        with _clusters_lock:
            _clusters.append(self)
        if self._as_root:
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        # --no-sync only skips syncing the template files initdb writes; the
        # server runs with fsync=on so commits are as durable as in production.
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.start_server()

    def _opts(self):
        return ("-k %s -c listen_addresses='' -c fsync=on -c synchronous_commit=on "
                "-c max_connections=%d" % (self.dir, self.max_connections))

    def start_server(self):
        """Starts the (stopped) server and waits until it accepts connections."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log_path(), "-w", "-t", int(PG_TIMEOUT),
                  "-o", self._opts(), "start")
        self.running = True

    def stop_server(self, mode="fast"):
        """Stops the server (the data stays). mode: smart, fast or immediate."""
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", int(PG_TIMEOUT), "stop")
        self.running = False

    def restart(self, mode="fast"):
        """pg_ctl restart -m mode: every client connection is cut."""
        self._run("pg_ctl", "-D", self.data, "-l", self.log_path(), "-m", mode, "-w",
                  "-t", int(PG_TIMEOUT), "-o", self._opts(), "restart")
        self.running = True

    def createdb(self, name):
        self._run("createdb", "-h", self.dir, "-U", "postgres", name)
        return name

    def psql(self, db, sql, timeout=30):
        """Runs sql in db; returns stdout (unaligned, tuples only)."""
        cp = self._run("psql", "-h", self.dir, "-U", "postgres", "-d", db, "-X", "-A", "-t",
                       "-v", "ON_ERROR_STOP=1", "-c", sql, timeout=timeout)
        return cp.stdout.decode(errors="replace")

    def url(self, db, **params):
        """A libpq URI for db on this cluster's socket, with extra URL
        parameters (e.g. sked_clock="db")."""
        q = {"host": self.dir}
        q.update(params)
        return "postgresql://postgres@/%s?%s" % (db, urllib.parse.urlencode(q, safe="/"))

    def close(self):
        """Stops the server (fast, else immediate) and removes the dir. Idempotent."""
        if self.dir is None:
            return
        if self.data and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", 30, "stop",
                          timeout=40, check=True)
            except PgError:
                try:
                    self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", 30,
                              "stop", timeout=40, check=False)
                except PgError:
                    pass
        self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        with _clusters_lock:
            if self in _clusters:
                _clusters.remove(self)


def free_port():
    """A loopback TCP port that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class ClusterTestCase(SkedTestCase):
    """SkedTestCase with a PostgreSQL per class and a database per test."""

    pg = None
    _dbseq = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pg = PgCluster()
        try:
            cls.pg.start()
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.pg:
            cls.pg.close()
            cls.pg = None
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.pg.running:
            self.pg.start_server()
        ClusterTestCase._dbseq += 1
        self.db = self.pg.createdb("sked_%s_%d" % (self._testMethodName[5:30].lower(),
                                                  ClusterTestCase._dbseq))
        self.token_file = self.path("admin.token")
        self.servers = {}  # name -> Server (the latest incarnation)
        self.server_specs = {}  # name -> (args, env) to restart with the same flags

    def store_url(self, **params):
        return self.pg.url(self.db, **params)

    def start_pg_server(self, name, store_url=None, lease=None, heartbeat=None, env=None,
                        port=None, extra=()):
        """Starts `sked server` on 127.0.0.1:PORT (a fixed port, picked now
        unless given) on this test's database; every server shares one token
        file, which the first one creates. Returns the Server."""
        port = port or free_port()
        args = ["server", "--listen", "127.0.0.1:%d" % port, "--store",
                store_url or self.store_url(), "--token-file", self.token_file]
        if lease:
            args += ["--lease", lease]
        if heartbeat:
            args += ["--heartbeat", heartbeat]
        args += list(extra)
        self.server_specs[name] = (args, env)
        return self._launch_server(name)

    def _launch_server(self, name, tries=3):
        args, env = self.server_specs[name]
        last = None
        for _ in range(tries):
            proc = self.start(name, args, env=env)
            try:
                srv = self._server_from(proc, timeout=30)
            except AssertionError as e:
                # A port just released may still be held briefly; retry.
                last = e
                proc.close()
                time.sleep(0.3)
                continue
            self.servers[name] = srv
            if self.srv is None:
                self.use(srv)
            return srv
        raise last

    def restart_server(self, name):
        """Starts server `name` again with the same flags (same port)."""
        return self._launch_server(name)

    def server_list(self, names=None):
        names = names or sorted(self.servers)
        return ",".join(self.servers[n].url for n in names)

    def start_cluster_worker(self, name, servers, slots=2, extra=()):
        """`sked worker` given a comma-separated server list; returns (proc, id)."""
        args = ["worker", "--server", servers, "--token-file", self.token_file,
                "--slots", str(slots), "--name", name] + list(extra)
        if os.geteuid() == 0:
            # A root worker refuses to run jobs as root unless told to; these
            # tests' jobs write into the test's own (root-owned) temp dir.
            args += ["--allow-root"]
        proc = self.start(name, args)
        wid = proc.wait_line("worker: registered as", 30)
        self.assertRegex(wid, r"^wrk_")
        return proc, wid
