// A run: its attempts on a timeline (worker, start, end, exit, reason),
// its log (followed live while the run runs: GET .../log?follow=1 streams
// until the run ends), its result and checkpoint, why it is (not)
// running, and cancel.

import {get, post, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, facts, card, button, empty, duration, between, throttle, sequencer} from './dom.js';
import {reasons} from './job.js';

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped']);
const OUTCOME_CLASS = {succeeded: 'c-ok', failed: 'c-bad', timeout: 'c-bad', canceled: 'c-warn',
  lost: 'c-warn'};

function timeline(run) {
  const at = (run.attempts || []).filter(a => a.started_at);
  if (!at.length) return empty('No attempt has started.');
  const t0 = Math.min(...at.map(a => +new Date(a.started_at)));
  const t1 = Math.max(...at.map(a => +(a.finished_at ? new Date(a.finished_at) : new Date())));
  const span = Math.max(t1 - t0, 1);
  const W = 600, row = 22;
  const svg = h('svg:svg', {viewBox: `0 0 ${W} ${at.length * row}`, role: 'img', class: 'timeline',
    'aria-label': `${at.length} attempt${at.length === 1 ? '' : 's'} over ${duration(span)}`},
  at.map((a, i) => {
    const x = ((+new Date(a.started_at) - t0) / span) * (W - 4);
    const w = Math.max((((a.finished_at ? +new Date(a.finished_at) : Date.now()) - +new Date(a.started_at)) / span) * (W - 4), 3);
    return h('svg:rect', {x: x + 2, y: i * row + 3, width: w, height: row - 6, rx: 3,
      class: OUTCOME_CLASS[a.outcome] || 'c-run'},
    h('svg:title', {}, `attempt ${a.n}: ${a.outcome || 'running'}, ${duration(between(a.started_at, a.finished_at))}`));
  }));
  return h('div', {}, svg, h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Attempts'},
    h('thead', {}, h('tr', {}, ['#', 'Worker', 'Started', 'Ended', 'Duration', 'Outcome', 'Exit', 'Reason']
      .map(c => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, run.attempts.map(a => h('tr', {},
      h('td', {class: 'num'}, String(a.n)),
      h('td', {}, a.worker_id ? h('code', {}, a.worker_id) : '—'),
      h('td', {}, time(a.started_at)), h('td', {}, time(a.finished_at)),
      h('td', {class: 'num'}, duration(between(a.started_at, a.finished_at))),
      h('td', {}, a.outcome ? badge(a.outcome) : badge('running')),
      h('td', {class: 'num'}, a.exit_code ?? (a.signal ? `signal ${a.signal}` : '—')),
      h('td', {class: 'reason'}, a.reason || '')))))));
}

export async function runPage(root, id) {
  const path = `/v1/runs/${encodeURIComponent(id)}`;
  const state = h('span', {'data-testid': 'run-state'});
  const msg = h('p', {role: 'status', class: 'muted'});
  const actions = h('div', {class: 'actions'});
  const factsBox = h('div');
  const attemptsBox = h('div');
  const resultBox = h('div');
  const explainBox = h('div');
  const log = h('pre', {'data-testid': 'run-log', class: 'log', tabindex: '0', 'aria-label': 'Log'});
  const logState = h('span', {class: 'muted', role: 'status'});
  let run = null;
  let following = null; // AbortController of the log stream; kept once the log is whole
  let gone = false;
  const fresh = sequencer();

  // The log: read whole once the run has ended, else followed. A follow
  // that ends while the run still goes (a server restart, a proxy's
  // timeout, a task retried) is started again. What is shown is replaced
  // only when the new text arrives, so the log never blinks empty.
  async function loadLog() {
    if (following) return;
    const terminal = TERMINAL.has(run.state);
    if (!terminal && run.state !== 'running') {
      logState.textContent = 'The log starts when the run does.';
      return;
    }
    const mine = following = new AbortController();
    logState.textContent = terminal ? '' : 'Following…';
    const stick = () => log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    let first = true;
    try {
      const url = `${path}/log${terminal ? '' : '?follow=1'}`;
      await events.follow(url, text => {
        const atEnd = stick();
        if (first) log.textContent = '';
        first = false;
        log.append(text);
        if (atEnd) log.scrollTop = log.scrollHeight;
      }, mine.signal);
    } catch (e) {
      if (mine.signal.aborted) return;
      logState.textContent = `The log could not be read: ${e.message}`;
      following = null;
      return;
    }
    if (mine.signal.aborted) return;
    if (first) log.textContent = '';
    let now = run;
    if (!terminal) {
      try { now = await get(path); } catch { /* as it was */ }
      if (mine.signal.aborted || gone) return;
    }
    if (TERMINAL.has(now.state)) {
      // Whole: kept (following stays set, so it is not read again).
      logState.textContent = log.textContent ? '' : 'The run wrote no output.';
      return;
    }
    following = null;
    setTimeout(() => { if (!gone) loadLog(); }, 1000);
  }

  async function load() {
    const current = fresh();
    try {
      const r = await get(path);
      if (!current() || gone) return;
      run = r;
    } catch (e) {
      if (!current() || gone) return;
      if (e.status === 404) {
        mount(root, h('h1', {}, 'Run not found'), h('p', {}, `No run ${id} that you can see.`));
        run = null;
        return;
      }
      throw e;
    }
    mount(state, badge(run.state));
    mount(factsBox, facts([
      ['State', state],
      ['Job', h('a', {href: `#/jobs/${run.job_id}`}, run.job_id)],
      run.parent_id ? ['Part of', h('a', {href: run.array_index === null ? `#/workflow-runs/${run.parent_id}`
        : `#/runs/${run.parent_id}`}, run.parent_id)] : null,
      ['Fire time', time(run.fire_time)], ['Not before', time(run.not_before)],
      ['Queue', run.queue], ['Priority', String(run.priority)], ['Attempt', String(run.attempt)],
      ['Worker', run.worker_id ? h('code', {}, run.worker_id) : '—'],
      ['Started', time(run.started_at)], ['Finished', time(run.finished_at)],
      ['Duration', run.started_at ? duration(between(run.started_at, run.finished_at)) : '—'],
      ['Exit', run.exit_code ?? (run.signal ? `signal ${run.signal}` : '—')],
      ['Reason', run.reason || '—'],
    ]));
    mount(attemptsBox, timeline(run));
    mount(resultBox,
      h('h3', {}, 'Result'), run.result !== undefined
        ? h('pre', {class: 'json', 'data-testid': 'run-result'}, JSON.stringify(run.result, null, 2))
        : empty('No result.'),
      h('h3', {}, 'Checkpoint'), run.checkpoint
        ? h('div', {}, h('p', {class: 'muted'}, `attempt ${run.checkpoint.attempt}, `, time(run.checkpoint.at)),
          h('pre', {class: 'json'}, run.checkpoint.data))
        : empty('No checkpoint.'));
    mount(actions, can.write() && !TERMINAL.has(run.state)
      ? button('Cancel run', async () => {
        try {
          await post(`${path}/cancel`);
          msg.textContent = 'Cancel requested.';
        } catch (e) { msg.textContent = e.message; }
        load();
      }, {class: 'danger', disabled: run.cancel_requested}) : null);
    try { mount(explainBox, reasons(await get(`${path}/explain`))); } catch (e) { mount(explainBox, empty(e.message)); }
    loadLog();
  }

  mount(root,
    h('div', {class: 'title'}, h('h1', {}, `Run ${id}`)),
    actions, msg,
    h('div', {class: 'grid'}, card('Run', factsBox), card('Why', explainBox), card('Result and checkpoint', resultBox)),
    card('Attempts', attemptsBox),
    card('Log', logState, log));
  const refresh = throttle(load, 300);
  const unsub = await events.liveLoad(load, ev => {
    if (ev === null || ev.run_id === id) refresh();
  }, {kinds: ['run']});
  return () => {
    gone = true;
    unsub();
    following?.abort();
  };
}
