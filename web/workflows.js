// Workflows: the list, a workflow (its DAG, schedules, runs, verbs) and a
// workflow run (the DAG coloured by each task's state, updated live; retry
// a task with or without its downstream; cancel the run).

import {get, post, del, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, facts, card, button, empty, throttle, sequencer, confirmButton,
  listView} from './dom.js';
import {dag} from './dag.js';
import {scheduleText} from './jobs.js';

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'skipped']);

export async function workflowsPage(root) {
  const list = listView({
    label: 'Workflows', what: 'workflow',
    columns: ['Name', 'State', 'Tasks', 'Schedules', 'Next fire', 'Created'],
    fetch: cursor => get('/v1/workflows', {limit: 50, cursor}),
    emptyText: 'No workflows yet. Submit one with sked workflows apply or POST /v1/workflows.',
    row: w => h('tr', {},
      h('td', {}, h('a', {href: `#/workflows/${w.id}`}, w.name)),
      h('td', {}, badge(w.state)),
      h('td', {class: 'num'}, String(w.tasks.length)),
      h('td', {}, (w.schedules || []).map(scheduleText).join('; ') || h('span', {class: 'muted'}, 'on trigger')),
      h('td', {}, time(w.next_fire_at)),
      h('td', {}, time(w.created_at))),
  });
  mount(root, h('h1', {}, 'Workflows'), list.el);
  const refresh = throttle(list.load, 1000);
  return events.liveLoad(list.load, () => refresh(), {kinds: ['job']});
}

export async function workflowPage(root, id) {
  const path = `/v1/workflows/${encodeURIComponent(id)}`;
  const title = h('h1', {}, id);
  const msg = h('p', {role: 'status', class: 'muted'});
  const actions = h('div', {class: 'actions'});
  const graphBox = h('div', {class: 'graph'});
  const factsBox = h('div');
  const runsBox = h('div');
  let wf = null;

  async function act(label, fn) {
    try {
      const r = await fn();
      msg.textContent = label;
      if (r?.id && label.startsWith('Triggered')) location.hash = `#/workflow-runs/${r.id}`;
      else await load();
    } catch (e) { msg.textContent = `${e.field ? `${e.field}: ` : ''}${e.message}`; }
  }

  const fresh = sequencer();
  async function load() {
    const current = fresh();
    const w = await get(path);
    const runs = await get(`${path}/runs`, {limit: 25});
    if (!current()) return;
    wf = w;
    title.textContent = wf.name;
    mount(graphBox, dag(wf.tasks, {label: `The tasks of ${wf.name} and their dependencies`}));
    mount(factsBox, facts([
      ['State', badge(wf.state)], ['Id', h('code', {}, wf.id)], ['Namespace', wf.namespace],
      ['Tasks', String(wf.tasks.length)],
      ['Schedules', (wf.schedules || []).map(scheduleText).join('; ') || 'on trigger only'],
      ['Next fire', time(wf.next_fire_at)], ['Updated', time(wf.updated_at)],
    ]));
    mount(actions, can.write() ? [
      button('Trigger now', () => act('Triggered.', () => post(`${path}/trigger`))),
      button('Pause', () => act('Paused.', () => post(`${path}/pause`)), {disabled: wf.state !== 'active'}),
      button('Resume', () => act('Resumed.', () => post(`${path}/resume`)), {disabled: wf.state !== 'paused'}),
      confirmButton('Delete', 'Delete this workflow and cancel its runs?', 'Delete workflow',
        () => act('Deleted.', async () => {
          await del(path);
          location.hash = '#/workflows';
        })),
    ] : null);
    mount(runsBox, runs.items.length ? h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Workflow runs'},
      h('thead', {}, h('tr', {}, ['Run', 'State', 'Fire time', 'Tasks', 'Succeeded', 'Failed', 'Skipped', 'Finished']
        .map(c => h('th', {scope: 'col'}, c)))),
      h('tbody', {}, runs.items.map(r => h('tr', {},
        h('td', {}, h('a', {href: `#/workflow-runs/${r.id}`}, r.id)), h('td', {}, badge(r.state)),
        h('td', {}, time(r.fire_time)), h('td', {class: 'num'}, String(r.counts.tasks)),
        h('td', {class: 'num'}, String(r.counts.succeeded)), h('td', {class: 'num'}, String(r.counts.failed)),
        h('td', {class: 'num'}, String(r.counts.skipped)), h('td', {}, time(r.finished_at)))))))
      : empty('No runs yet.'));
  }

  mount(root, h('div', {class: 'title'}, title, h('a', {href: '#/workflows', class: 'muted'}, '← Workflows')),
    actions, msg, card('Graph', graphBox), h('div', {class: 'grid'}, card('Workflow', factsBox)),
    card('Runs', runsBox));
  const refresh = throttle(load, 1000);
  const jobIds = () => new Set([wf?.id, ...(wf?.tasks || []).map(t => t.job_id)]);
  return events.liveLoad(load, ev => {
    if (ev === null || jobIds().has(ev.job_id)) refresh();
  });
}

export async function workflowRunPage(root, id) {
  const path = `/v1/workflow-runs/${encodeURIComponent(id)}`;
  const msg = h('p', {role: 'status', class: 'muted'});
  const actions = h('div', {class: 'actions'});
  const graphBox = h('div', {class: 'graph'});
  const factsBox = h('div');
  const tasksBox = h('div');
  let wr = null;

  async function retry(task, downstream) {
    try {
      await post(`${path}/tasks/${encodeURIComponent(task)}/retry`, {downstream});
      msg.textContent = `Retrying ${task}${downstream ? ' and its downstream tasks' : ''}.`;
    } catch (e) { msg.textContent = e.message; }
    load();
  }

  const fresh = sequencer();
  async function load() {
    const current = fresh();
    const r = await get(path);
    if (!current()) return;
    wr = r;
    mount(graphBox, dag(wr.tasks, {label: `Workflow run ${wr.id}: ${wr.tasks.map(t => `${t.name} ${t.state}`).join(', ')}`}));
    const c = wr.counts;
    mount(factsBox, facts([
      ['State', h('span', {'data-testid': 'workflow-run-state'}, badge(wr.state))],
      ['Workflow', h('a', {href: `#/workflows/${wr.workflow_id}`}, wr.workflow_id)],
      ['Fire time', time(wr.fire_time)], ['Started', time(wr.started_at)], ['Finished', time(wr.finished_at)],
      ['Reason', wr.reason || '—'],
      ['Tasks', Object.entries(c).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ') || '—'],
    ]));
    const writable = can.write() && wr.state !== 'canceled';
    mount(tasksBox, h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Tasks'},
      h('thead', {}, h('tr', {}, ['Task', 'State', 'Attempt', 'Depends on', 'Started', 'Finished', 'Exit', 'Reason', '']
        .map(x => h('th', {scope: 'col'}, x)))),
      h('tbody', {}, wr.tasks.map(t => h('tr', {},
        h('td', {}, t.run_id ? h('a', {href: `#/runs/${t.run_id}`}, t.name) : t.name),
        h('td', {}, badge(t.state)), h('td', {class: 'num'}, String(t.attempt)),
        h('td', {}, (t.depends_on || []).join(', ') || '—'),
        h('td', {}, time(t.started_at)), h('td', {}, time(t.finished_at)),
        h('td', {class: 'num'}, t.exit_code ?? '—'), h('td', {class: 'reason'}, t.reason || ''),
        h('td', {}, writable && ['failed', 'canceled', 'skipped'].includes(t.state) ? [
          button(`Retry ${t.name}`, () => retry(t.name, false)), ' ',
          button(`Retry ${t.name} and downstream`, () => retry(t.name, true)),
        ] : null)))))));
    mount(actions, can.write() && !TERMINAL.has(wr.state) ? button('Cancel workflow run', async () => {
      try {
        await post(`${path}/cancel`);
        msg.textContent = 'Canceled.';
      } catch (e) { msg.textContent = e.message; }
      load();
    }, {class: 'danger'}) : null);
  }

  mount(root, h('div', {class: 'title'}, h('h1', {}, `Workflow run ${id}`)), actions, msg,
    card('Graph', graphBox), h('div', {class: 'grid'}, card('Run', factsBox)), card('Tasks', tasksBox));
  const refresh = throttle(load, 250);
  // Before the first answer the ids are unknown: any run event refreshes.
  const ids = () => new Set([wr?.id, ...(wr?.tasks || []).flatMap(t => [t.run_id, t.job_id])]);
  return events.liveLoad(load, ev => {
    if (ev === null || !wr || ids().has(ev.run_id) || ids().has(ev.job_id)) refresh();
  }, {kinds: ['run']});
}
