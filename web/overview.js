// Overview: runs per minute by outcome (GET /v1/stats/runs, then counted
// live from the events), fire-lag percentiles and queue depths (GET
// /metrics, for tokens that may read it), the pool's workers and free
// slots, open alerts, and the latest events. Refreshed when events say
// something changed, never on a timer.

import {get, can} from './api.js';
import * as events from './events.js';
import {h, mount, card, time, empty, throttle, badge} from './dom.js';
import {stackedBars} from './chart.js';

const OUTCOMES = [['succeeded', 'c-ok'], ['failed', 'c-bad'], ['canceled', 'c-warn'],
  ['skipped', 'c-muted']];
const TERMINAL = {'run.succeeded': 'succeeded', 'run.failed': 'failed',
  'run.canceled': 'canceled', 'run.skipped': 'skipped'};

// ---- Prometheus text ------------------------------------------------------

export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    out.push({name: m[1], labels, value: Number(m[3])});
  }
  return out;
}

// histogram_quantile over cumulative buckets [{le, count}], as Prometheus
// computes it (linear within the bucket).
export function quantile(q, buckets) {
  const b = buckets.slice().sort((x, y) => x.le - y.le);
  if (!b.length) return null;
  const total = b[b.length - 1].count;
  if (!total) return null;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const {le, count} of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + (le - prevLe) * ((rank - prevCount) / Math.max(count - prevCount, 1e-9));
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

function histogram(samples, name) {
  return samples.filter(s => s.name === `${name}_bucket`)
    .map(s => ({le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value}));
}

// The time of day of an instant, with the UTC instant on hover.
function clock(iso) {
  const d = new Date(iso);
  return h('time', {datetime: iso, title: `${d.toISOString()} (UTC)`}, d.toLocaleTimeString());
}

// What an alert is about, linked when it is a job.
export function subject(a) {
  const s = a.subject || {};
  if (s.kind === 'job') return h('a', {href: `#/jobs/${s.id}`}, s.name || s.id);
  return h('span', {}, `${s.kind || ''} ${s.name || s.id || ''}`.trim());
}

function ms(sec) {
  if (sec === null) return '—';
  return sec < 1 ? `${(sec * 1000).toFixed(sec < 0.01 ? 2 : 1)} ms` : `${sec.toFixed(2)} s`;
}

// ---- the page ---------------------------------------------------------------

export async function overviewPage(root) {
  const runsBox = h('div');
  const lagBox = h('div');
  const queueBox = h('div');
  const workersBox = h('div');
  const alertsBox = h('div');
  const feed = h('ol', {class: 'feed', 'aria-label': 'Latest events', 'aria-live': 'off'},
    h('li', {class: 'muted'}, 'Changes appear here as they happen.'));
  mount(root,
    h('h1', {}, 'Overview'),
    h('div', {class: 'grid'},
      card('Runs per minute', runsBox),
      card('Workers', workersBox),
      card('Fire lag', lagBox),
      card('Queues', queueBox),
      card('Open alerts', alertsBox),
      card('Latest events', feed)));

  // Runs per minute: 60 buckets, the last one the current minute.
  let minutes = [];
  async function loadRuns() {
    try {
      const s = await get('/v1/stats/runs', {minutes: 60});
      minutes = s.minutes.map(m => ({at: new Date(m.at).getTime(), values: {
        succeeded: m.succeeded, failed: m.failed, canceled: m.canceled, skipped: m.skipped}}));
    } catch (e) {
      minutes = [];
      mount(runsBox, empty(`Not available: ${e.message}`));
      return;
    }
    drawRuns();
  }
  function drawRuns() {
    const total = minutes.reduce((s, m) => s + OUTCOMES.reduce((t, [k]) => t + (m.values[k] || 0), 0), 0);
    const last = minutes[minutes.length - 1];
    mount(runsBox,
      h('p', {class: 'big'}, String(total), h('small', {class: 'muted'}, ' runs ended in the last hour')),
      stackedBars(minutes.map(m => ({label: new Date(m.at).toLocaleTimeString([], {hour: '2-digit',
        minute: '2-digit'}), values: m.values})), OUTCOMES,
      {label: `Runs ended per minute over the last hour; this minute: ${last ? OUTCOMES.map(([k]) =>
        `${last.values[k] || 0} ${k}`).join(', ') : 'none'}`}));
  }
  function countRun(ev) {
    const outcome = TERMINAL[ev.type];
    if (!outcome || !minutes.length) return;
    const t = new Date(ev.time).getTime();
    const minute = Math.floor(t / 60000) * 60000;
    let last = minutes[minutes.length - 1];
    while (last.at < minute) {
      minutes.shift();
      last = {at: last.at + 60000, values: {}};
      minutes.push(last);
    }
    const m = minutes.find(x => x.at === minute);
    if (m) m.values[outcome] = (m.values[outcome] || 0) + 1;
    drawRuns();
  }

  async function loadMetrics() {
    if (!can.metrics()) {
      const why = empty('Cluster figures come from GET /metrics, which needs an admin or metrics token.');
      mount(lagBox, why);
      mount(queueBox, why.cloneNode(true));
      return;
    }
    let samples;
    try {
      samples = parseMetrics(await get('/metrics'));
    } catch (e) {
      mount(lagBox, empty(`Not available: ${e.message}`));
      return;
    }
    const fire = histogram(samples, 'sked_fire_lag_seconds');
    const disp = histogram(samples, 'sked_dispatch_lag_seconds');
    const row = (label, b) => h('tr', {}, h('th', {scope: 'row'}, label),
      [0.5, 0.95, 0.99].map(q => h('td', {class: 'num'}, ms(quantile(q, b)))));
    mount(lagBox,
      h('div', {class: 'table-wrap'}, h('table', {class: 'compact', 'aria-label': 'Lag percentiles'},
        h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'p50'), h('th', {}, 'p95'),
          h('th', {}, 'p99'))),
        h('tbody', {}, row('fire → start', fire), row('due → claim', disp)))),
      h('small', {class: 'muted'}, 'This server, since it started.'));
    const depth = {};
    for (const s of samples.filter(x => x.name === 'sked_queue_depth')) {
      const q = (depth[s.labels.queue] ||= {});
      q[s.labels.state] = s.value;
    }
    const states = ['scheduled', 'waiting', 'pending', 'running'];
    const abbr = {scheduled: 'sched.', waiting: 'wait.', pending: 'pend.', running: 'run.'};
    const queues = Object.keys(depth).sort();
    mount(queueBox, queues.length ? h('div', {class: 'table-wrap'}, h('table', {class: 'compact', 'aria-label': 'Queue depths'},
      h('thead', {}, h('tr', {}, h('th', {}, 'queue'), states.map(s => h('th', {class: 'num'},
        h('abbr', {title: s}, abbr[s]))))),
      h('tbody', {}, queues.map(q => h('tr', {}, h('th', {scope: 'row'}, q),
        states.map(s => h('td', {class: 'num'}, String(depth[q][s] || 0))))))))
      : empty('No runs are queued.'));
  }

  async function loadWorkers() {
    try {
      const w = await get('/v1/workers', {limit: 1000});
      const by = {};
      let slots = 0, running = 0;
      for (const x of w.items) {
        by[x.state] = (by[x.state] || 0) + 1;
        if (x.state === 'active') {
          slots += x.slots;
          running += x.running;
        }
      }
      mount(workersBox,
        h('p', {class: 'big'}, String(by.active || 0), h('small', {class: 'muted'}, ' active')),
        h('p', {}, `${Math.max(slots - running, 0)} of ${slots} slots free`),
        h('p', {class: 'muted'}, ['draining', 'lost'].filter(s => by[s]).map(s => `${by[s]} ${s}`)
          .join(', ') || 'none draining or lost'));
    } catch (e) {
      mount(workersBox, empty(`Not available: ${e.message}`));
    }
  }

  async function loadAlerts() {
    try {
      const a = await get('/v1/alerts', {state: 'open', limit: 10});
      mount(alertsBox, a.items.length ? h('ul', {class: 'plain'}, a.items.map(x =>
        h('li', {}, badge(x.condition), ' ', subject(x), ' ', time(x.opened_at))))
        : empty('No open alerts.'));
    } catch (e) {
      mount(alertsBox, empty(`Not available: ${e.message}`));
    }
  }

  function addEvent(ev) {
    const link = ev.run_id ? h('a', {href: `#/runs/${ev.run_id}`}, ev.run_id)
      : ev.job_id ? h('a', {href: `#/jobs/${ev.job_id}`}, ev.job_id)
        : ev.worker_id || ev.alert_id || '';
    feed.prepend(h('li', {}, clock(ev.time), ' ', h('span', {class: 'etype'}, ev.type), ' ', link,
      ev.detail ? h('span', {class: 'muted'}, ` ${ev.detail}`) : null));
    feed.querySelector('li.muted')?.remove();
    while (feed.children.length > 15) feed.lastChild.remove();
  }

  const refresh = throttle(() => { loadMetrics(); loadWorkers(); }, 2000);
  const refreshAlerts = throttle(loadAlerts, 1000);
  const unsub = events.subscribe(ev => {
    if (ev === null) {
      loadRuns(); refresh(); refreshAlerts();
      return;
    }
    addEvent(ev);
    countRun(ev);
    if (ev.type.startsWith('alert.')) refreshAlerts();
    else refresh();
  });
  await Promise.all([loadRuns(), loadMetrics(), loadWorkers(), loadAlerts()]);
  return unsub;
}
