// Alerts (open and history, acknowledge) and the audit log (admin).

import {get, post, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, button, field, debounce, throttle, listView} from './dom.js';
import {subject} from './overview.js';

export async function alertsPage(root) {
  const state = h('select', {name: 'state'}, [['open', 'Open'], ['resolved', 'Resolved'], ['', 'All']]
    .map(([v, l]) => h('option', {value: v}, l)));

  async function ack(a) {
    try {
      await post(`/v1/alerts/${a.id}/ack`);
      list.status.textContent = 'Acknowledged.';
    } catch (e) { list.status.textContent = e.message; }
    list.load();
  }

  const list = listView({
    label: 'Alerts', what: 'alert',
    columns: ['Condition', 'About', 'State', 'Detail', 'Opened', 'Resolved', 'Acknowledged'],
    fetch: cursor => get('/v1/alerts', {state: state.value, limit: 50, cursor}),
    emptyText: () => (state.value === 'open' ? 'No open alerts.' : 'No alerts.'),
    row: a => h('tr', {},
      h('td', {}, badge(a.condition)), h('td', {}, subject(a)), h('td', {}, badge(a.state)),
      h('td', {class: 'reason'}, a.detail, a.resolve_detail ? h('div', {class: 'muted'}, a.resolve_detail) : null),
      h('td', {}, time(a.opened_at)), h('td', {}, time(a.resolved_at)),
      h('td', {}, a.acked_by ? h('span', {}, a.acked_by, ' ', time(a.acked_at))
        : can.write() ? button('Acknowledge', () => ack(a), {'aria-label':
          `Acknowledge ${a.condition} alert about ${a.subject?.name || a.subject?.id || ''}`}) : '—')),
  });
  state.addEventListener('change', () => list.reset());

  mount(root, h('h1', {}, 'Alerts'), h('form', {class: 'filters', onsubmit: e => e.preventDefault()},
    field('Show', state)), list.el);
  const refresh = throttle(list.load, 1000);
  return events.liveLoad(list.load, () => refresh(), {kinds: ['alert']});
}

export async function auditPage(root) {
  if (!can.admin()) {
    mount(root, h('h1', {}, 'Audit log'), h('p', {}, 'The audit log is for admins.'));
    return null;
  }
  const actor = h('input', {type: 'text', name: 'actor', spellcheck: 'false'});
  const list = listView({
    label: 'Audit log', what: ['entry', 'entries'],
    columns: ['At', 'Actor', 'Role', 'Call', 'Target', 'Namespace', 'Source', 'Status'],
    fetch: cursor => get('/v1/audit', {actor: actor.value.trim(), limit: 100, cursor}),
    emptyText: 'No entries.',
    row: a => h('tr', {},
      h('td', {}, time(a.at)), h('td', {}, a.actor), h('td', {}, a.role),
      h('td', {}, h('code', {}, `${a.method} ${a.route}`)), h('td', {}, a.target ? h('code', {}, a.target) : '—'),
      h('td', {}, a.namespace || '—'), h('td', {}, a.source || '—'),
      h('td', {class: 'num'}, h('span', {class: a.status >= 400 ? 'badge s-failed' : 'badge s-succeeded'},
        String(a.status)))),
  });
  actor.addEventListener('input', debounce(() => list.reset(), 250));
  mount(root, h('h1', {}, 'Audit log'), h('form', {class: 'filters', role: 'search', onsubmit: e => e.preventDefault()},
    field('Actor', actor)), list.el);
  await list.load();
  return null;
}
