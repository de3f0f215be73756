"""GET /v1/workers pages like every other list (issue 7.11): without
`limit` it answers the default page of 100, not the whole pool, and a walk
along next_cursor sees every worker exactly once, in name order. Bad
`limit` and `cursor` get 400 naming the query parameter; `sked workers ls`
still shows the whole pool."""

import unittest
from urllib.parse import quote

from skedtest import SkedTestCase

DEFAULT_PAGE = 100
POOL = 250  # more than two default pages, and not a multiple of one


class TestWorkersList(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()
        self.ids = {}
        # Registered out of name order, so that name order is the server's doing.
        for i in sorted(range(POOL), key=lambda i: (i * 7919) % POOL):
            name = "w-%04d" % i
            v = self.ok("POST", "/v1/workers", {"name": name, "slots": 1}, expect=201)
            self.ids[v["id"]] = name

    def test_default_page_and_cursor_walk(self):
        page = self.ok("GET", "/v1/workers", expect=200)
        self.assertEqual(len(page["items"]), DEFAULT_PAGE)
        self.assertTrue(page["next_cursor"])

        seen, pages, cursor = [], 0, None
        while True:
            path = "/v1/workers" + ("?cursor=" + quote(cursor, safe="") if cursor else "")
            page = self.ok("GET", path, expect=200)
            pages += 1
            self.assertLessEqual(len(page["items"]), DEFAULT_PAGE)
            seen += [(w["id"], w["name"]) for w in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
            self.assertLess(pages, 10, "the cursor walk does not end")
        self.assertEqual(pages, -(-POOL // DEFAULT_PAGE))
        self.assertEqual(len(seen), POOL, "a worker was listed twice or missed")
        self.assertEqual(dict(seen), self.ids)
        names = [n for _, n in seen]
        self.assertEqual(names, sorted(names))

        # Any page size walks the same pool in the same order.
        walked = [(w["id"], w["name"]) for w in self.list_all("/v1/workers", limit=7)]
        self.assertEqual(walked, seen)
        whole = self.ok("GET", "/v1/workers?limit=1000", expect=200)
        self.assertEqual([(w["id"], w["name"]) for w in whole["items"]], seen)
        self.assertIsNone(whole["next_cursor"])

        # The CLI follows the cursors: the whole pool, once.
        v = self.cli_json("workers", "ls")
        self.assertEqual([(w["id"], w["name"]) for w in v["items"]], seen)
        self.assertIsNone(v.get("next_cursor"))
        out = self.cli_ok("workers", "ls")
        for name in ("w-0000", "w-0100", "w-0249"):
            self.assertIn(name, out)

    def test_bad_limit_and_cursor(self):
        for q, field in [("limit=0", "query.limit"), ("limit=1001", "query.limit"),
                         ("limit=ten", "query.limit"), ("cursor=not-a-cursor", "query.cursor"),
                         ("cursor=", "query.cursor")]:
            with self.subTest(q):
                p = self.assert_problem(self.api("GET", "/v1/workers?" + q), 400, field)
                self.assertNotEqual(p.get("detail"), p.get("title"), p)


if __name__ == "__main__":
    unittest.main()
