// A job: its spec (secrets come masked from the server), schedules and
// their next fire times, the explain reasons, its runs with a chart of
// their durations, and the verbs (trigger, pause, resume, edit, delete).
// Live: every event of the job or its runs refreshes what it changes.

import {get, post, del, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, facts, card, button, empty, duration, between, throttle, sequencer,
  confirmButton} from './dom.js';
import {bars} from './chart.js';
import {scheduleText} from './jobs.js';

export function reasons(ex) {
  if (!ex?.reasons?.length) return empty('Nothing is holding it back.');
  return h('ul', {class: 'reasons'}, ex.reasons.map(r =>
    h('li', {}, h('code', {}, r.code), ' ', r.message)));
}

export function runsTable(runs, label = 'Runs') {
  if (!runs.length) return empty('No runs yet.');
  return h('div', {class: 'table-wrap'}, h('table', {'aria-label': label},
    h('thead', {}, h('tr', {}, ['Run', 'State', 'Fire time', 'Started', 'Duration', 'Attempt', 'Exit', 'Reason']
      .map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, runs.map(r => h('tr', {},
      h('td', {}, h('a', {href: `#/runs/${r.id}`}, r.id)),
      h('td', {}, badge(r.state)),
      h('td', {}, time(r.fire_time)),
      h('td', {}, time(r.started_at)),
      h('td', {class: 'num'}, r.started_at ? duration(between(r.started_at, r.finished_at)) : '—'),
      h('td', {class: 'num'}, String(r.attempt)),
      h('td', {class: 'num'}, r.exit_code ?? (r.signal ? `signal ${r.signal}` : '—')),
      h('td', {class: 'reason'}, r.reason || ''))))));
}

const STATE_CLASS = {succeeded: 'c-ok', failed: 'c-bad', canceled: 'c-warn', running: 'c-run'};

export function spec(job) {
  const json = {};
  for (const k of ['type', 'command', 'config', 'env', 'cwd', 'queue', 'priority', 'constraints', 'timeout',
    'retry', 'overlap', 'misfire', 'catch_up_window', 'max_concurrency', 'tags', 'sla', 'alerts'])
    if (job[k] !== undefined && job[k] !== null) json[k] = job[k];
  return h('pre', {class: 'json', 'aria-label': 'Job spec'}, JSON.stringify(json, null, 2));
}

export async function jobPage(root, id) {
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const title = h('h1', {}, id);
  const state = h('span', {'data-testid': 'job-state'});
  const msg = h('p', {role: 'status', class: 'muted'});
  const actions = h('div', {class: 'actions'});
  const factsBox = h('div');
  const schedBox = h('div');
  const explainBox = h('div');
  const chartBox = h('div');
  const runsBox = h('div');
  const specBox = h('div');
  let job = null;

  async function act(label, fn) {
    msg.textContent = '';
    try {
      await fn();
      msg.textContent = label;
      await Promise.all([loadJob(), loadRuns(), loadExplain()]);
    } catch (e) {
      msg.textContent = `${e.field ? `${e.field}: ` : ''}${e.message}`;
    }
  }

  function drawActions() {
    if (!can.write() || !job || job.state === 'deleted') return mount(actions);
    mount(actions,
      button('Trigger now', () => act('Triggered: a run was made.', () => post(`${path}/trigger`))),
      button('Pause', () => act('Paused.', () => post(`${path}/pause`)), {disabled: job.state !== 'active'}),
      button('Resume', () => act('Resumed.', () => post(`${path}/resume`)), {disabled: job.state !== 'paused'}),
      h('a', {href: `#/jobs/${encodeURIComponent(id)}/edit`, class: 'button'}, 'Edit'),
      confirmButton('Delete', 'Delete this job and cancel its runs?', 'Delete job',
        () => act('Deleted.', async () => {
          await del(path);
          location.hash = '#/jobs';
        })));
  }

  const freshJob = sequencer(), freshRuns = sequencer(), freshExplain = sequencer();

  async function loadJob() {
    const current = freshJob();
    try {
      const j = await get(path);
      if (!current()) return;
      job = j;
    } catch (e) {
      if (!current()) return;
      if (e.status === 404) {
        mount(root, h('h1', {}, 'Job not found'), h('p', {}, `No job ${id} that you can see.`));
        job = null;
        return;
      }
      throw e;
    }
    title.textContent = job.name;
    mount(state, badge(job.state));
    mount(factsBox, facts([
      ['State', state], ['Id', h('code', {}, job.id)], ['Namespace', job.namespace], ['Owner', job.owner],
      ['Type', job.type], ['Queue', job.queue], ['Priority', String(job.priority)],
      ['Version', String(job.version)], ['Created', time(job.created_at)], ['Updated', time(job.updated_at)],
      ['Last run', job.last_run ? h('span', {}, h('a', {href: `#/runs/${job.last_run.id}`}, job.last_run.id), ' ',
        badge(job.last_run.state)) : '—'],
    ]));
    mount(specBox, spec(job));
    drawActions();
    if (!job.schedules?.length) {
      mount(schedBox, empty('No schedules: it ran once, when it was created.'));
      return;
    }
    let preview = null;
    try { preview = await get(`${path}/preview`, {n: 5}); } catch { /* shown without */ }
    if (!current()) return;
    mount(schedBox, h('ul', {class: 'plain'}, job.schedules.map((s, i) => h('li', {},
      h('code', {}, scheduleText(s)), ' — next ', time(s.next_fire_at), s.last_fire_at ? h('span', {class: 'muted'},
        ' (last ', time(s.last_fire_at), ')') : null,
      preview ? h('ul', {class: 'fires'}, preview.fire_times.filter(f => f.schedule === i).map(f =>
        h('li', {}, time(f.at), ` ${f.local} ${f.timezone}`, f.dst_shifted ? h('span', {class: 'badge s-warn'}, 'DST shift') : null)))
        : null))));
  }

  async function loadExplain() {
    const current = freshExplain();
    let view;
    try { view = reasons(await get(`${path}/explain`)); } catch (e) { view = empty(e.message); }
    if (current()) mount(explainBox, view);
  }

  async function loadRuns() {
    const current = freshRuns();
    const page = await get('/v1/runs', {job_id: id, limit: 50});
    if (!current()) return;
    mount(runsBox, runsTable(page.items));
    const done = page.items.filter(r => r.started_at).reverse();
    mount(chartBox, done.length ? bars(done.map(r => ({value: between(r.started_at, r.finished_at),
      title: `${r.id}: ${r.state}, ${duration(between(r.started_at, r.finished_at))}`,
      className: STATE_CLASS[r.state] || 'bar'})), {label: `Durations of the last ${done.length} runs`,
    fmt: v => duration(v)}) : empty('No run has started yet.'));
  }

  mount(root,
    h('div', {class: 'title'}, title, h('a', {href: '#/jobs', class: 'muted'}, '← Jobs')),
    actions, msg,
    h('div', {class: 'grid'},
      card('Job', factsBox),
      card('Schedules', schedBox),
      card('Why it is (not) running', explainBox),
      card('Durations', chartBox)),
    card('Runs', runsBox),
    card('Spec', specBox));

  const refreshJob = throttle(() => { loadJob(); loadExplain(); }, 500);
  const refreshRuns = throttle(() => { loadRuns(); loadExplain(); }, 500);
  return events.liveLoad(async () => {
    await loadJob();
    if (job) await Promise.all([loadRuns(), loadExplain()]);
  }, ev => {
    if (ev === null || ev.type.startsWith('job.')) refreshJob();
    if (ev === null || ev.type.startsWith('run.')) refreshRuns();
  }, {job: id});
}

