// Alerts (open and history, acknowledge) and the audit log (admin).

import {get, post, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, button, field, empty, debounce, throttle, pager, sequencer} from './dom.js';
import {subject} from './overview.js';

export async function alertsPage(root) {
  const state = h('select', {name: 'state'}, [['open', 'Open'], ['resolved', 'Resolved'], ['', 'All']]
    .map(([v, l]) => h('option', {value: v}, l)));
  const tbody = h('tbody');
  const pg = pager(() => load());
  const status = pg.status;

  async function ack(a) {
    try {
      await post(`/v1/alerts/${a.id}/ack`);
      status.textContent = 'Acknowledged.';
    } catch (e) { status.textContent = e.message; }
    load();
  }

  const fresh = sequencer();
  async function load() {
    const current = fresh();
    const page = await get('/v1/alerts', {state: state.value, limit: 50, cursor: pg.cursor()});
    if (!current()) return;
    mount(tbody, page.items.length ? page.items.map(a => h('tr', {},
      h('td', {}, badge(a.condition)), h('td', {}, subject(a)), h('td', {}, badge(a.state)),
      h('td', {class: 'reason'}, a.detail, a.resolve_detail ? h('div', {class: 'muted'}, a.resolve_detail) : null),
      h('td', {}, time(a.opened_at)), h('td', {}, time(a.resolved_at)),
      h('td', {}, a.acked_by ? h('span', {}, a.acked_by, ' ', time(a.acked_at))
        : can.write() ? button('Acknowledge', () => ack(a), {'aria-label':
          `Acknowledge ${a.condition} alert about ${a.subject?.name || a.subject?.id || ''}`}) : '—')))
      : h('tr', {}, h('td', {colspan: 7}, empty(state.value === 'open' ? 'No open alerts.' : 'No alerts.'))));
    pg.done(page.next_cursor);
    status.textContent = `Page ${pg.page()}: ${page.items.length} alert${page.items.length === 1 ? '' : 's'}.`;
  }
  state.addEventListener('change', () => { pg.reset(); load(); });

  mount(root, h('h1', {}, 'Alerts'), h('form', {class: 'filters', onsubmit: e => e.preventDefault()},
    field('Show', state)),
  h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Alerts'},
    h('thead', {}, h('tr', {}, ['Condition', 'About', 'State', 'Detail', 'Opened', 'Resolved', 'Acknowledged']
      .map(c => h('th', {scope: 'col'}, c)))), tbody)),
  pg.el);
  const refresh = throttle(load, 1000);
  return events.liveLoad(load, () => refresh(), {kinds: ['alert']});
}

export async function auditPage(root) {
  if (!can.admin()) {
    mount(root, h('h1', {}, 'Audit log'), h('p', {}, 'The audit log is for admins.'));
    return null;
  }
  const actor = h('input', {type: 'text', name: 'actor', spellcheck: 'false'});
  const tbody = h('tbody');
  const pg = pager(() => load());
  const status = pg.status;
  const fresh = sequencer();
  async function load() {
    const current = fresh();
    let page;
    try {
      page = await get('/v1/audit', {actor: actor.value.trim(), limit: 100, cursor: pg.cursor()});
    } catch (e) {
      if (current()) status.textContent = e.message;
      return;
    }
    if (!current()) return;
    mount(tbody, page.items.length ? page.items.map(a => h('tr', {},
      h('td', {}, time(a.at)), h('td', {}, a.actor), h('td', {}, a.role),
      h('td', {}, h('code', {}, `${a.method} ${a.route}`)), h('td', {}, a.target ? h('code', {}, a.target) : '—'),
      h('td', {}, a.namespace || '—'), h('td', {}, a.source || '—'),
      h('td', {class: 'num'}, h('span', {class: a.status >= 400 ? 'badge s-failed' : 'badge s-succeeded'}, String(a.status)))))
      : h('tr', {}, h('td', {colspan: 8}, empty('No entries.'))));
    pg.done(page.next_cursor);
    status.textContent = `Page ${pg.page()}: ${page.items.length} entries.`;
  }
  actor.addEventListener('input', debounce(() => { pg.reset(); load(); }, 250));
  mount(root, h('h1', {}, 'Audit log'), h('form', {class: 'filters', role: 'search', onsubmit: e => e.preventDefault()},
    field('Actor', actor)),
  h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Audit log'},
    h('thead', {}, h('tr', {}, ['At', 'Actor', 'Role', 'Call', 'Target', 'Namespace', 'Source', 'Status']
      .map(c => h('th', {scope: 'col'}, c)))), tbody)),
  pg.el);
  await load();
  return null;
}
