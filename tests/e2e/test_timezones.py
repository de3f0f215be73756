"""sked's time zones against the system's (issue 7, point 1).

Fire times must follow the zone data the OS keeps current in
/usr/share/zoneinfo. The reference here is Python's zoneinfo, an independent
reader of the same files; sked is asked through sked-tz-helper
(tests/unit/tz_helper.c), which speaks only the public core/schedule.h
contract.

- Every zone the system has (zoneinfo.available_timezones()) is compared
  at each UTC-offset change from 2026 to 2036 (the instant itself and one
  second either side) and twice a month in between, and likewise in
  2150-2151, where both readers compute from the files' POSIX TZ footers
  (sked unrolls a footer into its table only up to 2100). The test says how
  many zones it compared and names every zone that disagrees.
- The same comparison runs on zone files recompiled with `zic -b slim` from
  the system's tzdata.zi: slim files stop their transition table early and
  leave the rest to the POSIX TZ footer, so this covers the footer rules of
  every zone.
- Cron fire times across DST nights in a few zones chosen for their quirks
  (gaps at midnight, half-hour and 45-minute offsets, southern hemisphere,
  a two-hour shift) against a reference written here from the rules sked
  documents: a local time skipped by a gap fires once at the first instant
  after it; a repeated one fires once, at its first occurrence.
"""

import datetime
import os
import shutil
import subprocess
import tempfile
import unittest
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SKED_BIN = os.environ.get("SKED_BIN") or os.path.join(ROOT, "build", "sked")
HELPER = os.environ.get("SKED_TZ_HELPER") or os.path.join(os.path.dirname(SKED_BIN),
                                                          "sked-tz-helper")

START = int(datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
END = int(datetime.datetime(2036, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
FAR = [(2150, 2152)]  # years [from, to) computed from the footer rules alone

# "localtime" is this host's /etc/localtime, not an IANA name: sked refuses
# it so that every server of a cluster reads a schedule the same way.
NOT_ZONES = {"localtime"}

CRON_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Africa/Cairo",
              "America/Havana", "America/Santiago", "Pacific/Chatham", "Antarctica/Troll",
              "America/Mexico_City", "Asia/Tehran"]
CRON_EXPRS = [("*/15 * * * *", 16), ("30 2 * * *", 3), ("0 0 * * *", 3), ("30 1 * * *", 3),
              ("0 12 * * *", 2), ("0 */2 * * *", 6)]


def offset(tz, t):
    return int(datetime.datetime.fromtimestamp(t, tz).utcoffset().total_seconds())


def transitions(tz, lo, hi):
    """Instants in [lo, hi) where tz's UTC offset changes: a daily scan, then
    a bisection to the second."""
    out = []
    t, o = lo, offset(tz, lo)
    while t < hi:
        t2 = min(t + 86400, hi)
        o2 = offset(tz, t2)
        if o2 != o:
            a, b = t, t2
            while b - a > 1:
                m = (a + b) // 2
                if offset(tz, m) == o:
                    a = m
                else:
                    b = m
            out.append(b)
        t, o = t2, o2
    return out


def utc(year):
    return int(datetime.datetime(year, 1, 1, tzinfo=datetime.timezone.utc).timestamp())


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Helper:
    """One sked-tz-helper process; ask() sends a line and reads one back."""

    def __init__(self, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        self.p = subprocess.Popen([HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=e)

    def ask_many(self, lines):
        out, _ = self.p.communicate("".join(line + "\n" for line in lines), timeout=120)
        got = out.splitlines()
        if len(got) != len(lines) or self.p.returncode != 0:
            raise AssertionError("helper answered %d of %d lines and exited %s (a sanitizer "
                                 "report would be on stderr above)"
                                 % (len(got), len(lines), self.p.returncode))
        return got


class TestTimeZones(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HELPER, os.X_OK):
            raise unittest.SkipTest("no sked-tz-helper at %s (build the tree first)" % HELPER)
        cls.zones = sorted(set(zoneinfo.available_timezones()) - NOT_ZONES)
        cls.probes = {}      # zone -> sorted instants to compare
        cls.trans = {}       # zone -> offset changes in [START, END)
        spans = [(START, END)] + [(utc(a), utc(b)) for a, b in FAR]
        samples = []
        for lo, hi in spans:
            t = lo
            while t < hi:  # about twice a month, at varying times of day
                samples.append(t)
                t += 15 * 86400 + 3 * 3600 + 17
        for z in cls.zones:
            tz = zoneinfo.ZoneInfo(z)
            tr = [t for lo, hi in spans for t in transitions(tz, lo, hi)]
            cls.trans[z] = [t for t in tr if t < END]
            pts = set(samples)
            for t in tr:
                pts.update((t - 1, t, t + 1))
            cls.probes[z] = sorted(pts)

    def compare_offsets(self, env=None, label="system zone files"):
        lines = ["off %s %s" % (z, " ".join(map(str, self.probes[z]))) for z in self.zones]
        got = Helper(env).ask_many(lines)
        bad, ninstants = [], 0
        for z, answer in zip(self.zones, got):
            tz = zoneinfo.ZoneInfo(z)
            if not answer.startswith("OK"):
                bad.append("%s: refused: %s" % (z, answer))
                continue
            offs = answer.split()[1:]
            ninstants += len(self.probes[z])
            for t, o in zip(self.probes[z], offs):
                want = offset(tz, t)
                if o != str(want):
                    bad.append("%s: at %s sked says %s s, the system %d s"
                               % (z, iso(t), o, want))
                    break
        print("\n%s: compared %d zones at %d instants (2026-2036, 2150-2152): %d agree, "
              "%d disagree"
              % (label, len(self.zones), ninstants, len(self.zones) - len(bad), len(bad)))
        if bad:
            self.fail("%d of %d zones disagree with the system (%s):\n  %s"
                      % (len(bad), len(self.zones), label, "\n  ".join(bad)))

    def test_offsets_match_system_for_every_zone(self):
        self.assertGreater(len(self.zones), 300, "this system has suspiciously few zones")
        self.compare_offsets()

    def test_offsets_match_with_slim_files(self):
        zic = shutil.which("zic") or ("/usr/sbin/zic" if os.access("/usr/sbin/zic", os.X_OK)
                                      else None)
        src = "/usr/share/zoneinfo/tzdata.zi"
        if not zic or not os.path.exists(src):
            self.skipTest("needs zic and %s" % src)
        with tempfile.TemporaryDirectory(prefix="sked-tz-slim.") as d:
            subprocess.run([zic, "-b", "slim", "-d", d, src], check=True)
            # The comparison only makes sense if the files really are slim:
            # Berlin's table then ends in 1996 and the footer does the rest.
            with open(os.path.join(d, "Europe", "Berlin"), "rb") as f:
                self.assertLess(len(f.read()), 1200, "zic did not write slim files")
            self.compare_offsets({"TZDIR": d}, "slim zone files (zic -b slim)")

    def test_cron_across_dst_nights(self):
        lines, want = [], []
        for z in CRON_ZONES:
            tz = zoneinfo.ZoneInfo(z)
            nights = [t for t in self.trans.get(z, []) if t < START + 5 * 365 * 86400]
            if not nights:  # no DST (any more): a spring and an autumn day anyway
                nights = [START + 90 * 86400, START + 300 * 86400]
            for t in nights:
                for expr, n in CRON_EXPRS:
                    after = t - 3 * 3600 - 7
                    lines.append("cron %s %d %d %s" % (z, after, n, expr))
                    want.append(("%s '%s' after %s" % (z, expr, iso(after)),
                                 reference_cron(expr, tz, after, n)))
        got = Helper().ask_many(lines)
        bad = []
        for (what, ref), answer in zip(want, got):
            if answer != "OK " + " ".join(map(str, ref)):
                bad.append("%s:\n    sked:      %s\n    reference: %s"
                           % (what, fmt_answer(answer), " ".join(map(iso, ref))))
        print("\ncron across DST nights: %d cases in %d zones, %d disagree"
              % (len(lines), len(CRON_ZONES), len(bad)))
        if bad:
            self.fail("%d cron cases disagree:\n  %s" % (len(bad), "\n  ".join(bad)))


def fmt_answer(answer):
    parts = answer.split()
    if not parts or parts[0] != "OK":
        return answer
    return " ".join(p if not p.lstrip("-").isdigit() else iso(int(p)) for p in parts[1:])


def cron_values(field, lo, hi):
    out = set()
    for item in field.split(","):
        base, _, step = item.partition("/")
        a, b = (lo, hi) if base == "*" else (int(base), int(base) if not step else hi)
        out.update(range(a, b + 1, int(step) if step else 1))
    return sorted(out)


def local_to_instant(L, tz):
    """The instant a local time fires at: its first occurrence, or for a
    time skipped by a gap the first instant after the gap."""
    t0 = int(L.replace(tzinfo=tz, fold=0).timestamp())
    if datetime.datetime.fromtimestamp(t0, tz).replace(tzinfo=None) == L:
        return t0
    # In a gap zoneinfo maps fold=0 past the gap and fold=1 before it; the
    # gap starts at the first instant whose local time is later than L.
    lo, hi = int(L.replace(tzinfo=tz, fold=1).timestamp()), t0
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > 1:
        m = (lo + hi) // 2
        if datetime.datetime.fromtimestamp(m, tz).replace(tzinfo=None) > L:
            hi = m
        else:
            lo = m
    return hi


def reference_cron(expr, tz, after, n):
    """The next n fire times after `after` of a cron expression with only
    minute and hour restricted: the smallest instants, each once, of the
    matching local times."""
    minute, hour = expr.split()[:2]
    day0 = datetime.datetime.fromtimestamp(after, tz).replace(tzinfo=None).date()
    fires = set()
    for dd in range(-1, n + 3):
        day = day0 + datetime.timedelta(days=dd)
        for h in cron_values(hour, 0, 23):
            for mi in cron_values(minute, 0, 59):
                t = local_to_instant(datetime.datetime(day.year, day.month, day.day, h, mi), tz)
                if t > after:
                    fires.add(t)
    return sorted(fires)[:n]


if __name__ == "__main__":
    unittest.main()
