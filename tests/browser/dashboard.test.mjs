// The dashboard in a real browser (issue 12, point 6): a real `sked dev` on
// 127.0.0.1:0 with a fresh data dir, and Debian's chromium, headless, driven
// by Playwright (playwright-core, pinned by package-lock.json; no browser
// download). tests/browser/run.sh installs the driver and runs this file
// (ctest e2e.browser); it needs SKED_BIN and SKED_BROWSER_MODULES.
//
// Each step is one node:test test, run in order on one browser tab, so a
// failing step names itself and the steps after it still run. Every wait is
// for a condition with a deadline (scaled by SLOW under ASan), never a
// fixed sleep. Screenshots of every page go to SKED_SCREENSHOTS (1280x800;
// the overview also at 390x844 and in the dark theme). The Jobs page's
// first-page time with SKED_BROWSER_JOBS jobs in the store (default
// 100,000) is printed, never asserted: the machine is noisy.
//
// The DOM it relies on is the dashboard's test contract: hash routes, one
// <h1> per page, accessible names (roles, labels), and the data-testid /
// data-task / data-state attributes named below.

import {after, before, describe, it} from 'node:test';
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const SKED_BIN = process.env.SKED_BIN;
const MODULES = process.env.SKED_BROWSER_MODULES;
const CHROMIUM = process.env.SKED_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SKED_SCREENSHOTS || path.resolve('screenshots');
assert.ok(SKED_BIN && MODULES, 'SKED_BIN and SKED_BROWSER_MODULES must be set (run tests/browser/run.sh)');
const {chromium} = createRequire(path.join(MODULES, 'x.js'))('playwright-core');

// Sanitizer builds are several times slower: every deadline scales with
// SLOW (SKED_E2E_SLOW overrides the guess, as in tests/e2e/skedtest.py).
const SLOW = Number(process.env.SKED_E2E_SLOW) ||
  (fs.readFileSync(SKED_BIN).includes('__asan_init') ? 3 : 1);
const N_JOBS = Number(process.env.SKED_BROWSER_JOBS ?? 100000);
const SANITIZER_MARKS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'];

const secs = s => Math.round(s * 1000 * SLOW);
const tag = Math.random().toString(36).slice(2, 8);

// Polls fn() until it returns a truthy value (returned), for at most
// timeout seconds (scaled); the error names what was awaited and the last
// value seen.
async function until(fn, what, timeout = 15) {
  const end = Date.now() + secs(timeout);
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end)
      throw new Error(`timed out after ${secs(timeout) / 1000}s waiting for ${what} ` +
        `(last value: ${JSON.stringify(last)})`);
    await new Promise(r => setTimeout(r, 50));
  }
}

// Where the data dir goes: SKED_BROWSER_TMP, else /dev/shm when it has room,
// else the temp dir. Every job created is a durable commit (an fsync): on a
// RAM disk the same server code makes the jobs about three times faster.
function tmpBase() {
  if (process.env.SKED_BROWSER_TMP) return process.env.SKED_BROWSER_TMP;
  try {
    const st = fs.statfsSync('/dev/shm');
    if (st.bavail * st.bsize >= 2 ** 31) return '/dev/shm';
  } catch { /* none */ }
  return os.tmpdir();
}

// ---- the sked dev process ---------------------------------------------------

let tmp, sked, base, token;
const procOut = [];

// With SKED_TEST_PG_URL (tests/store/pg_harness.sh starts a throwaway
// PostgreSQL and sets it), the dashboard runs on `sked server --store` that
// database and a `sked worker` beside it; else on `sked dev` (SQLite).
const PG_URL = process.env.SKED_TEST_PG_URL || '';
let worker = null;

function spawnSked(args, name) {
  const err = fs.openSync(path.join(tmp, 'sked.stderr.log'), 'a');
  const env = {...process.env};
  for (const k of ['SKED_SERVER', 'SKED_TOKEN', 'SKED_TOKEN_FILE']) delete env[k];
  // Its own process group (detached), so the end can reach whatever it started.
  const p = spawn(SKED_BIN, args, {cwd: tmp, env, detached: true, stdio: ['ignore', 'pipe', err]});
  fs.closeSync(err);
  p.name = name;
  p.exited = new Promise(r => p.on('exit', (code, sig) => r({code, sig})));
  readline.createInterface({input: p.stdout}).on('line', l => procOut.push(l));
  return p;
}

function startSked() {
  if (!PG_URL)
    return spawnSked(['dev', '--listen', '127.0.0.1:0', '--data', path.join(tmp, 'data'),
      '--slots', '4'], 'sked dev');
  return spawnSked(['server', '--listen', '127.0.0.1:0', '--store', PG_URL, '--token-file',
    path.join(tmp, 'admin.token')], 'sked server');
}

// The worker of a PostgreSQL run (sked dev has its own).
function startWorker() {
  if (!PG_URL) return null;
  return spawnSked(['worker', '--server', base, '--token-file', path.join(tmp, 'admin.token'),
    '--slots', '4', '--name', 'browser-worker',
    // A root worker refuses to run jobs as root unless told to (CI runs as root).
    ...(process.getuid?.() === 0 ? ['--allow-root'] : [])], 'sked worker');
}

function stderrText() {
  try { return fs.readFileSync(path.join(tmp, 'sked.stderr.log'), 'utf8'); } catch { return ''; }
}

async function line(p, prefix) {
  let gone = false;
  p.exited.then(() => { gone = true; });
  return until(() => {
    const l = procOut.find(x => x.startsWith(prefix));
    if (l) return l.slice(prefix.length).trim();
    if (gone) throw new Error(`${p.name} exited before printing ${prefix}\n${stderrText().slice(-4000)}`);
    return null;
  }, `${p.name} to print ${prefix}`, 30);
}

// SIGTERM, a bounded wait, then SIGKILL to its whole process group (ours).
async function stop(p) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
  let timer;
  const t = new Promise(r => { timer = setTimeout(r, secs(15), 'timeout'); });
  const how = await Promise.race([p.exited, t]);
  clearTimeout(timer);
  try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
  if (how === 'timeout') await p.exited;
}

async function stopSked() {
  await stop(worker);
  await stop(sked);
}
process.on('exit', () => {
  for (const p of [worker, sked])
    if (p) try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
});

// ---- the API, from node --------------------------------------------------------

const agent = new http.Agent({keepAlive: true, maxSockets: 32});

function api(method, urlPath, body) {
  const u = new URL(urlPath, base);
  const data = body === undefined ? null : JSON.stringify(body);
  const headers = {Authorization: `Bearer ${token}`, Accept: 'application/json'};
  if (data !== null) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(data);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({host: u.hostname, port: u.port, path: u.pathname + u.search, method,
      headers, agent, timeout: secs(30)}, res => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', c => { text += c; });
      res.on('end', () => {
        let value = text;
        if ((res.headers['content-type'] || '').includes('json') && text)
          try { value = JSON.parse(text); } catch { /* kept as text */ }
        resolve({status: res.statusCode, headers: res.headers, body: value});
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    req.on('error', reject);
    req.end(data ?? undefined);
  });
}

async function ok(method, urlPath, body, expect = [200, 201, 204]) {
  const r = await api(method, urlPath, body);
  assert.ok(expect.includes(r.status), `${method} ${urlPath} -> ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

// A job with no schedule runs once at its creation; these fire only in
// 2099 (or when triggered), so nothing runs but what a step asks for.
const LATER = [{at: '2099-01-01T00:00:00Z'}];
const createJob = (name, command = ['true'], extra = {}) =>
  ok('POST', '/v1/jobs', {name, command, schedules: LATER, ...extra}, [201]);
let liveJob = null; // the job of the live-list step, paused and resumed next

// ---- the browser ------------------------------------------------------------------

let browser, context, page;
const dialogs = [];
const pageErrors = [];
const consoleErrors = [];
const failedRequests = [];

async function shot(name) {
  await page.screenshot({path: path.join(SHOTS, `${name}.png`), animations: 'disabled'});
}

// Opens a hash route in the tab (a hash change: no reload, the app routes).
async function go(route) {
  await page.evaluate(r => { location.hash = r; }, route);
}

const h1 = () => page.getByRole('heading', {level: 1});

async function expectH1(text, timeout = 15) {
  await until(async () => {
    const all = await h1().allTextContents();
    return all.length === 1 && all[0].trim() === text;
  }, `one <h1> "${text}" (on ${page.url()})`, timeout).catch(async e => {
    e.message += `; <h1>s: ${JSON.stringify(await h1().allTextContents())}`;
    throw e;
  });
}

// A marker on the window: still there after a step means the page was not reloaded.
const markNoReload = () => page.evaluate(() => { window.__skedNoReload = true; });
const notReloaded = () => page.evaluate(() => window.__skedNoReload === true);

// One step of the scenario: a failing one leaves a screenshot of the tab
// (failed-<n>.png). A step of the logged-in dashboard is skipped, not failed
// again, when the login step failed.
let loggedIn = false, failed = false, nStep = 0;
function check(name, fn, needsLogin = true) {
  const n = ++nStep;
  it(name, async t => {
    if (needsLogin && !loggedIn) return t.skip('not logged in');
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      await page?.screenshot({path: path.join(SHOTS, `failed-${n}.png`)}).catch(() => {});
      throw e;
    }
  });
}

const jobsTable = () => page.getByRole('table', {name: 'Jobs', exact: true});
const jobLink = name => jobsTable().getByRole('link', {name, exact: true});

before(async () => {
  const t0 = Date.now();
  tmp = fs.mkdtempSync(path.join(tmpBase(), 'sked-browser-'));
  fs.mkdirSync(SHOTS, {recursive: true});
  for (const f of fs.readdirSync(SHOTS))
    if (/^failed-\d+\.png$|^sked-dev\.stderr\.log$/.test(f)) fs.rmSync(path.join(SHOTS, f));
  sked = startSked();
  base = await line(sked, 'listening:');
  const tokenFile = await line(sked, 'admin-token-file:');
  token = fs.readFileSync(tokenFile, 'utf8').trim();
  worker = startWorker();
  if (worker) {
    await until(async () => (await ok('GET', '/v1/workers')).items.some(w => w.state === 'active'),
      'the worker to register', 30);
  }
  console.log(`${sked.name} at ${base} on ${PG_URL ? 'PostgreSQL' : 'SQLite'}, data in ${tmp}, ` +
    `SLOW=${SLOW}, jobs for the timing: ${N_JOBS}`);
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true,
    timeout: secs(60)});
  context = await browser.newContext({viewport: {width: 1280, height: 800},
    colorScheme: 'light', locale: 'en-GB', timezoneId: 'UTC'});
  context.setDefaultTimeout(secs(15));
  page = await context.newPage();
  page.on('dialog', d => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', e => pageErrors.push(String(e.stack || e)));
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('response', r => {
    if (r.status() >= 400) failedRequests.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  console.log(`sked dev and chromium ${browser.version()} up in ${Date.now() - t0} ms`);
});

after(async () => {
  if (consoleErrors.length) console.log(`browser console errors:\n  ${consoleErrors.join('\n  ')}`);
  if (failedRequests.length) console.log(`answers >= 400 the page got (one 401 is the wrong token):\n  ${failedRequests.join('\n  ')}`);
  const t0 = Date.now();
  await browser?.close().catch(() => {});
  agent.destroy();
  await stopSked();
  console.log(`chromium and sked dev stopped in ${Date.now() - t0} ms`);
  const err = stderrText();
  const marks = SANITIZER_MARKS.filter(m => err.includes(m));
  if (marks.length) {
    console.log(err.slice(-8000));
    assert.fail(`sked dev's stderr has sanitizer reports (${marks.join(', ')})`);
  }
  if (failed) {
    fs.writeFileSync(path.join(SHOTS, 'sked-dev.stderr.log'), err);
    console.log(`sked dev's stderr (all of it in ${SHOTS}/sked-dev.stderr.log):\n${err.slice(-4000)}`);
  }
  fs.rmSync(tmp, {recursive: true, force: true});
});

describe('the dashboard in a browser', {concurrency: 1}, () => {
  check('is served at / and loads its files', async () => {
    const r = await fetch(`${base}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    // docs/dashboard.md: scripts from its own origin only (no inline, no eval), no sniffing.
    const csp = r.headers.get('content-security-policy') || '';
    const scriptSrc = (csp.match(/script-src([^;]*)/) || csp.match(/default-src([^;]*)/) || [])[1];
    assert.ok(scriptSrc && /'self'/.test(scriptSrc) && !/unsafe|\*/.test(scriptSrc),
      `Content-Security-Policy: ${csp}`);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const html = await r.text();
    const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map(m => m[1]);
    assert.ok(assets.length >= 2, `index.html names its scripts and styles: ${html.slice(0, 500)}`);
    for (const a of assets) {
      const f = await fetch(base + a);
      assert.equal(f.status, 200, a);
      await f.arrayBuffer();
    }
  }, false);

  check('logs in with the admin token', async () => {
    await page.goto(`${base}/#/login`);
    const tokenBox = page.getByLabel('Token', {exact: true});
    await tokenBox.waitFor();
    await page.getByLabel('User', {exact: true}).waitFor();
    await page.getByLabel('Password', {exact: true}).waitFor();
    await page.getByRole('button', {name: 'Log in', exact: true}).waitFor();
    await shot('login');
    // A wrong token is refused, in an alert, and stays on the login page.
    await tokenBox.fill('sked_not-a-real-token');
    await page.getByRole('button', {name: 'Log in with token'}).click();
    await until(async () => (await page.getByRole('alert').allTextContents()).join('').trim(),
      'an error in role=alert after a wrong token');
    await tokenBox.fill(token);
    await page.getByRole('button', {name: 'Log in with token'}).click();
    const nav = page.getByRole('navigation', {name: 'Main'});
    await nav.waitFor();
    loggedIn = true;
    for (const name of ['Overview', 'Jobs', 'Workflows', 'Workers', 'Alerts', 'Audit'])
      await nav.getByRole('link', {name, exact: true}).waitFor();
    await page.getByRole('button', {name: 'Log out'}).waitFor();
    await expectH1('Overview');
    await until(async () => (await page.getByTestId('live').textContent())?.trim() === 'Live',
      'the live indicator to say Live');
    // The token is not kept in the URL.
    assert.ok(!page.url().includes(token), page.url());
    await shot('overview-first');
  }, false);

  check('shows a job submitted through the API in the Jobs list without a reload', async () => {
    await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: 'Jobs', exact: true})
      .click();
    await expectH1('Jobs');
    await jobsTable().waitFor();
    for (const label of ['State', 'Queue', 'Tag', 'Search names'])
      await page.getByLabel(label, {exact: true}).waitFor();
    await page.getByRole('button', {name: 'Pause selected'}).waitFor();
    await page.getByRole('button', {name: 'Resume selected'}).waitFor();
    await markNoReload();
    const name = `live-${tag}`;
    liveJob = await createJob(name, ['true'], {tags: ['browser']});
    await jobLink(name).waitFor();
    assert.ok(await notReloaded(), 'the page reloaded');
    await shot('jobs');
  });

  check('pauses a job from the list and resumes it from its page', async () => {
    const name = `live-${tag}`;
    const job = liveJob ?? await createJob(name);
    await go('#/jobs');
    await expectH1('Jobs');
    await page.getByRole('checkbox', {name: `Select ${name}`, exact: true}).check();
    await page.getByRole('button', {name: 'Pause selected'}).click();
    await until(async () => (await ok('GET', `/v1/jobs/${job.id}`)).state === 'paused',
      'the API to show the job paused');
    await jobLink(name).click();
    await expectH1(name);
    assert.ok(page.url().endsWith(`#/jobs/${job.id}`), page.url());
    const state = page.getByTestId('job-state');
    await until(async () => (await state.textContent())?.trim() === 'paused', 'job-state paused');
    for (const b of ['Trigger now', 'Resume', 'Delete'])
      await page.getByRole('button', {name: b, exact: true}).waitFor();
    // Edit opens the form: a button, or a link (it navigates) styled as one.
    await page.getByRole('button', {name: 'Edit', exact: true})
      .or(page.getByRole('link', {name: 'Edit', exact: true})).waitFor();
    await page.getByRole('button', {name: 'Resume', exact: true}).click();
    await until(async () => (await ok('GET', `/v1/jobs/${job.id}`)).state === 'active',
      'the API to show the job active again');
    await until(async () => (await state.textContent())?.trim() === 'active', 'job-state active');
    await shot('job');
  });

  check('creates a job from the form, previewing its fire times as the cron is typed', async () => {
    const name = `form-${tag}`;
    await go('#/jobs/new');
    await expectH1('New job');
    await page.getByLabel('Name', {exact: true}).fill(name);
    await page.getByLabel('Command', {exact: true}).fill('echo\nhello');
    await page.getByLabel('Schedule', {exact: true}).selectOption('cron');
    await page.getByLabel('Time zone', {exact: true}).fill('Europe/Berlin');
    const preview = page.getByRole('table', {name: 'Next fire times', exact: true});
    // As typed: each keystroke asks the server; the table follows the last.
    await page.getByLabel('Cron expression', {exact: true}).pressSequentially('30 2 * * 1', {delay: 30});
    await until(async () => {
      const cells = await preview.locator('tbody tr td:nth-child(2)').allTextContents();
      return cells.length === 10 && cells.every(c => /T02:30:00\+0[12]:00 Europe\/Berlin$/.test(c.trim()));
    }, '10 fire times at 02:30 Berlin time in the preview');
    // A bad expression is named, and nothing is created.
    await page.getByLabel('Cron expression', {exact: true}).fill('61 * * * *');
    await until(async () => /schedules\[0\]\.cron/.test((await page.getByRole('alert').allTextContents()).join(' ')),
      'the preview to name schedules[0].cron');
    await page.getByLabel('Cron expression', {exact: true}).fill('30 2 * * 1');
    await until(async () => (await preview.locator('tbody tr').count()) === 10, 'the preview back');
    await shot('job-form');
    await page.getByRole('button', {name: 'Create job', exact: true}).click();
    await expectH1(name);
    const id = page.url().split('#/jobs/')[1];
    const job = await ok('GET', `/v1/jobs/${id}`);
    assert.deepEqual(job.command, ['echo', 'hello']);
    assert.equal(job.schedules[0].cron, '30 2 * * 1');
    assert.equal(job.schedules[0].timezone, 'Europe/Berlin');
  });

  check('edits a job with If-Match: a conflict is shown, secrets and unseen fields are kept', async () => {
    const name = `edit-${tag}`;
    const job = await ok('POST', '/v1/jobs', {name, command: ['true'],
      env: {PLAIN: 'a', DROP: 'b', TOKEN: {secret: 's3cret'}},
      schedules: [{cron: '0 3 * * *', timezone: 'UTC', jitter: '5m'}]}, [201]);
    await go(`#/jobs/${job.id}/edit`);
    await expectH1(`Edit ${name}`);
    const env = page.getByLabel('Environment', {exact: true});
    assert.equal((await env.inputValue()).split('\n').sort().join(' '), 'DROP=b PLAIN=a TOKEN=***');
    await env.fill('PLAIN=a2\nTOKEN=***');
    await page.getByLabel('Priority', {exact: true}).fill('7');
    // Someone else changes the job meanwhile.
    await ok('PATCH', `/v1/jobs/${job.id}`, {tags: ['theirs']});
    await page.getByRole('button', {name: 'Save', exact: true}).click();
    await page.getByText('Someone changed this job since you opened it.').waitFor();
    assert.equal((await ok('GET', `/v1/jobs/${job.id}`)).priority, 0, 'saved despite the conflict');
    await page.getByRole('button', {name: 'Save mine anyway', exact: true}).click();
    await expectH1(name);
    const after = await ok('GET', `/v1/jobs/${job.id}`);
    assert.equal(after.priority, 7);
    assert.deepEqual(after.env, {PLAIN: 'a2', TOKEN: {secret: '***'}}, 'DROP removed, the secret kept masked');
    assert.equal(after.schedules[0].jitter, '5m', 'a field the form does not show is kept');
    assert.equal(after.schedules[0].id, job.schedules[0].id, 'an untouched schedule is not replaced');
    // The secret is still the secret: a new value stays one, never shown.
    await go(`#/jobs/${job.id}/edit`);
    await expectH1(`Edit ${name}`);
    await env.fill('PLAIN=a2\nTOKEN=n3w');
    await page.getByRole('button', {name: 'Save', exact: true}).click();
    await expectH1(name);
    assert.deepEqual((await ok('GET', `/v1/jobs/${job.id}`)).env.TOKEN, {secret: '***'});
  });

  check('follows a running job\'s log live on the run page', async () => {
    const name = `slow-${tag}`;
    const job = await createJob(name,
      ['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 1; done']);
    await go(`#/jobs/${job.id}`);
    await expectH1(name);
    await page.getByRole('button', {name: 'Trigger now', exact: true}).click();
    // The run appears in the job's Runs table; its link (the run id) opens it.
    const runs = page.getByRole('table', {name: 'Runs', exact: true});
    const link = runs.getByRole('link', {name: /^run_/});
    await link.first().waitFor();
    const runId = (await link.first().textContent()).trim();
    await link.first().click();
    await expectH1(`Run ${runId}`);
    await markNoReload();
    const log = page.getByTestId('run-log');
    await log.waitFor();
    const first = await until(async () => {
      const t = await log.textContent().catch(() => '');
      return t.includes('line 1') && t;
    }, 'line 1 in the run log');
    // Seen while the run still runs: the page follows it, not a finished log.
    assert.ok(!first.includes('line 8'), `the log was complete when first seen: ${first}`);
    await page.getByRole('button', {name: 'Cancel run'}).waitFor();
    await until(async () => (await log.textContent()).includes('line 5'), 'line 5 in the run log');
    assert.ok(await notReloaded(), 'the page reloaded');
    await until(async () => (await page.getByTestId('run-state').textContent())?.trim() === 'succeeded',
      'run-state succeeded', 30);
    const text = await log.textContent();
    for (let i = 1; i <= 8; i++) assert.ok(text.includes(`line ${i}`), `line ${i} in ${text}`);
    assert.equal((await ok('GET', `/v1/runs/${runId}`)).state, 'succeeded');
    await shot('run');
  });

  check('draws a workflow run\'s DAG and follows its tasks\' states', async () => {
    const wfName = `wf-${tag}`;
    const wf = await ok('POST', '/v1/workflows', {name: wfName, tasks: [
      {name: 'a', command: ['sh', '-c', 'sleep 3']},
      {name: 'b', command: ['true'], depends_on: ['a']},
    ]}, [201]);
    await go('#/workflows');
    await expectH1('Workflows');
    await page.getByRole('link', {name: wfName, exact: true}).waitFor();
    await shot('workflows');
    await go(`#/workflows/${wf.id}`);
    await expectH1(wfName);
    await shot('workflow');
    const wr = await ok('POST', `/v1/workflows/${wf.id}/trigger`, undefined, [201]);
    await go(`#/workflow-runs/${wr.id}`);
    await expectH1(`Workflow run ${wr.id}`);
    await markNoReload();
    const dag = page.locator('svg[data-testid="dag"]');
    await dag.locator('g[data-task="a"]').waitFor();
    await dag.locator('g[data-task="b"]').waitFor();
    // Polled on every animation frame, so a state shown briefly is seen.
    const state = (task, want, timeout) => page.waitForFunction(([t, w]) =>
      document.querySelector(`svg[data-testid="dag"] g[data-task="${t}"]`)
        ?.getAttribute('data-state') === w, [task, want], {timeout: secs(timeout), polling: 'raf'});
    await state('a', 'running', 15);
    await shot('workflow-run');
    await state('a', 'succeeded', 20);
    await state('b', 'succeeded', 20);
    assert.ok(await notReloaded(), 'the page reloaded');
    const run = await ok('GET', `/v1/workflow-runs/${wr.id}`);
    assert.deepEqual(run.tasks.map(t => [t.name, t.state]), [['a', 'succeeded'], ['b', 'succeeded']]);
  });

  check('retries a failed task with its downstream from the workflow run page', async () => {
    // c fails on its first attempt only (a marker file), so d is skipped; a
    // retry of c with its downstream runs both to success.
    const marker = path.join(tmp, `retry-${tag}`);
    const wf = await ok('POST', '/v1/workflows', {name: `wf-retry-${tag}`, tasks: [
      {name: 'c', command: ['sh', '-c', `test -e ${marker} || { touch ${marker}; exit 3; }`]},
      {name: 'd', command: ['true'], depends_on: ['c']},
    ]}, [201]);
    const wr = await ok('POST', `/v1/workflows/${wf.id}/trigger`, undefined, [201]);
    await go(`#/workflow-runs/${wr.id}`);
    await expectH1(`Workflow run ${wr.id}`);
    const node = t => page.locator(`svg[data-testid="dag"] g[data-task="${t}"]`);
    await until(async () => await node('c').getAttribute('data-state') === 'failed', 'c failed');
    await until(async () => await node('d').getAttribute('data-state') === 'skipped', 'd skipped');
    await page.getByRole('button', {name: 'Retry c and downstream', exact: true}).click();
    await until(async () => await node('d').getAttribute('data-state') === 'succeeded',
      'd to succeed after the retry', 30);
    const run = await ok('GET', `/v1/workflow-runs/${wr.id}`);
    assert.deepEqual(run.tasks.map(t => [t.name, t.state]), [['c', 'succeeded'], ['d', 'succeeded']]);
    assert.equal(run.state, 'succeeded');
  });

  check('shows hostile job names as text, never as markup', async () => {
    const names = ['<img src=x onerror=alert(1)>', '<svg onload="window.__xss=1">'];
    await go('#/jobs');
    await expectH1('Jobs');
    await jobsTable().waitFor();
    // Submitted while the list is open (the live path) ...
    await createJob(names[0]);
    await jobLink(names[0]).waitFor();
    await createJob(names[1]);
    await jobLink(names[1]).waitFor();
    const noMarkup = async where => {
      const found = await page.evaluate(() => ({
        img: document.querySelectorAll('img[src="x"], img[onerror]').length,
        svg: document.querySelectorAll('svg[onload]').length,
        xss: window.__xss ?? null,
      }));
      assert.deepEqual(found, {img: 0, svg: 0, xss: null}, where);
      assert.deepEqual(dialogs, [], `dialogs opened (${where})`);
    };
    await noMarkup('the live list');
    // ... and the list as loaded afresh, and each job's own page.
    await page.reload();
    await expectH1('Jobs');
    for (const n of names) await jobLink(n).waitFor();
    await noMarkup('the reloaded list');
    for (const n of names) {
      await jobLink(n).click();
      await expectH1(n);
      await noMarkup(`the page of ${n}`);
      await page.goBack();
      await expectH1('Jobs');
    }
  });

  check('offers a viewer nothing it may not do, and the server agrees', async () => {
    const viewer = await ok('POST', '/v1/tokens', {name: `viewer-${tag}`, role: 'viewer',
      namespaces: ['*']}, [201]);
    const job = liveJob ?? await createJob(`live-${tag}`);
    // A tab of its own: sessionStorage is per tab, so the admin's stays logged in.
    const ctx = await browser.newContext({viewport: {width: 1280, height: 800}, locale: 'en-GB',
      timezoneId: 'UTC'});
    try {
      const v = await ctx.newPage();
      v.on('dialog', d => { dialogs.push(`viewer ${d.type()}: ${d.message()}`); d.dismiss().catch(() => {}); });
      v.on('pageerror', e => pageErrors.push(String(e.stack || e)));
      await v.goto(`${base}/#/login`);
      await v.getByLabel('Token', {exact: true}).fill(viewer.token);
      await v.getByRole('button', {name: 'Log in with token'}).click();
      const nav = v.getByRole('navigation', {name: 'Main'});
      await nav.getByRole('link', {name: 'Jobs', exact: true}).click();
      await v.getByRole('table', {name: 'Jobs', exact: true}).getByRole('link').first().waitFor();
      assert.equal(await nav.getByRole('link', {name: 'Audit', exact: true}).count(), 0, 'Audit offered');
      for (const b of ['Pause selected', 'Resume selected'])
        assert.equal(await v.getByRole('button', {name: b}).count(), 0, `${b} offered to a viewer`);
      assert.equal(await v.getByRole('link', {name: 'New job'}).count(), 0, 'New job offered');
      assert.equal(await v.getByRole('checkbox').count(), 0, 'rows selectable');
      await v.evaluate(id => { location.hash = `#/jobs/${id}`; }, job.id);
      await v.getByTestId('job-state').getByText(/active|paused/).waitFor();
      for (const b of ['Trigger now', 'Pause', 'Resume', 'Delete'])
        assert.equal(await v.getByRole('button', {name: b, exact: true}).count(), 0, `${b} offered`);
      // Asked anyway, from the page with its token, the server refuses.
      const st = await v.evaluate(async id => (await fetch(`/v1/jobs/${id}/pause`, {method: 'POST',
        headers: {Authorization: `Bearer ${sessionStorage.getItem('sked.token')}`}})).status, job.id);
      assert.equal(st, 403);
      await v.screenshot({path: path.join(SHOTS, 'job-viewer.png')});
    } finally {
      await ctx.close();
    }
  });

  check('renders the other pages, the phone size and the dark theme', async () => {
    for (const [route, title, file] of [['#/workers', 'Workers', 'workers'],
      ['#/alerts', 'Alerts', 'alerts'], ['#/audit', 'Audit log', 'audit']]) {
      await go(route);
      await expectH1(title);
      await shot(file);
    }
    await go('#/overview');
    await expectH1('Overview');
    // By now runs have ended: the overview of the README.
    await until(async () => {
      const t = await page.getByRole('region', {name: 'Runs per minute'}).textContent();
      return /[1-9]\d* runs ended in the last hour/.test(t || '');
    }, 'the overview to count the runs that ended');
    await shot('overview');
    // The first Tab of a fresh load offers the skip link (docs/dashboard.md, Keyboard).
    await page.reload();
    await expectH1('Overview');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()),
      'Skip to content');
    await page.setViewportSize({width: 390, height: 844});
    await page.getByRole('button', {name: 'Log out'}).waitFor();
    await shot('overview-phone');
    await page.setViewportSize({width: 1280, height: 800});
    const dark = page.getByRole('button', {name: 'Dark theme'});
    assert.equal(await dark.getAttribute('aria-pressed'), 'false');
    await dark.click();
    await until(async () => await dark.getAttribute('aria-pressed') === 'true', 'aria-pressed true');
    await shot('overview-dark');
    await dark.click();
    await until(async () => await dark.getAttribute('aria-pressed') === 'false', 'aria-pressed false');
  });

  check('a list left before it loaded does not take the address back', async () => {
    // The Jobs list writes its filters into the address once it has
    // loaded; left before that, it must not write #/jobs over the page the
    // user went to (it did: the hashchange was still queued, and the Jobs
    // page came back). Ten tries, each waiting for the list's answer.
    for (let i = 0; i < 10; i++) {
      const listed = page.waitForResponse(r => new URL(r.url()).pathname === '/v1/jobs' &&
        r.request().method() === 'GET');
      await go('#/jobs');
      await go('#/overview');
      await listed;
      await page.evaluate(() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 0))));
      await expectH1('Overview');
      assert.equal(await page.evaluate(() => location.hash), '#/overview');
    }
  });

  check(`opens the Jobs page's first page with ${N_JOBS} jobs in the store`, async () => {
    // Made through the API, as a user would, 32 requests in flight on
    // keep-alive connections; the tab stays open on the overview meanwhile
    // (the live feed gets every job.created). First, that there is a Jobs page to time.
    await go('#/jobs');
    await jobsTable().waitFor();
    await go('#/overview');
    await expectH1('Overview');
    const t0 = Date.now();
    let next = 0;
    await Promise.all(Array.from({length: 32}, async () => {
      while (next < N_JOBS) {
        const i = next++;
        try {
          await createJob(`bulk-${tag}-${String(i).padStart(6, '0')}`, ['true']);
        } catch (e) {
          next = N_JOBS; // the first failure stops every sender
          throw e;
        }
      }
    }));
    const made = Date.now() - t0;
    console.log(`created ${N_JOBS} jobs through POST /v1/jobs in ${made} ms ` +
      `(${Math.round(N_JOBS / (made / 1000))}/s)`);
    const du = dir => fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    if (!PG_URL) console.log(`store: ${Math.round(du(path.join(tmp, 'data')) / 2 ** 20)} MiB in ${tmp}`);
    const firstRow = () => jobsTable().getByRole('row').filter({has: page.getByRole('link')}).first();
    // In the app: from the overview, a click on Jobs until the first row shows.
    let t = Date.now();
    await page.getByRole('navigation', {name: 'Main'}).getByRole('link', {name: 'Jobs', exact: true})
      .click();
    await firstRow().waitFor({timeout: secs(60)});
    console.log(`jobs first page with ${N_JOBS} jobs: ${Date.now() - t} ms (from the Overview link)`);
    // A fresh load of #/jobs (the page, its scripts and the first page of jobs).
    t = Date.now();
    await page.reload();
    await firstRow().waitFor({timeout: secs(60)});
    console.log(`jobs first page with ${N_JOBS} jobs: ${Date.now() - t} ms (full page load)`);
    const rows = await jobsTable().getByRole('row').count();
    assert.ok(rows > 1 && rows <= 1001, `the first page has a page of rows, not all: ${rows}`);
    const before = await firstRow().textContent();
    t = Date.now();
    await page.getByRole('button', {name: 'Next page'}).click();
    await until(async () => (await firstRow().textContent()) !== before, 'the next page', 60);
    console.log(`jobs next page with ${N_JOBS} jobs: ${Date.now() - t} ms`);
    await shot('jobs-many');
  });

  check('raised no JavaScript error and opened no dialog', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(dialogs, []);
  }, false);
});
