// Workers: the pool, with slots in use, labels, queues, plugin types and
// the last heartbeat; drain (admin). Live on worker and run events.

import {get, post, can} from './api.js';
import * as events from './events.js';
import {h, mount, time, ago, badge, button, throttle, listView} from './dom.js';

export async function workersPage(root) {
  async function drain(w) {
    try {
      await post(`/v1/workers/${w.id}/drain`);
      list.status.textContent = `${w.name} is draining: it finishes its runs and takes no new ones.`;
    } catch (e) { list.status.textContent = e.message; }
    list.load();
  }

  const list = listView({
    label: 'Workers',
    columns: ['Worker', 'State', 'Host', 'Slots', 'Queues', 'Labels', 'Types', 'Heartbeat', ''],
    fetch: cursor => get('/v1/workers', {limit: 100, cursor}),
    emptyText: 'No workers. Start one with sked worker, or sked dev --slots N.',
    row: w => h('tr', {},
      h('td', {}, h('strong', {}, w.name), h('br'), h('code', {class: 'muted'}, w.id)),
      h('td', {}, badge(w.state)),
      h('td', {}, w.host),
      h('td', {class: 'num'}, h('meter', {min: 0, max: w.slots || 1, value: w.running,
        'aria-label': `${w.running} of ${w.slots} slots busy`}), ` ${w.running} / ${w.slots}`),
      h('td', {}, (w.queues || []).map(q => h('span', {class: 'tag'}, q))),
      h('td', {}, Object.entries(w.labels || {}).map(([k, v]) => h('span', {class: 'tag'}, `${k}=${v}`))),
      h('td', {}, ['shell', 'http', ...(w.types || [])].map(t => h('span', {class: 'tag'}, t))),
      h('td', {}, time(w.heartbeat_at), h('br'), h('small', {}, ago(w.heartbeat_at))),
      h('td', {}, can.admin() && w.state === 'active' ? button(`Drain ${w.name}`, () => drain(w)) : null)),
    say: items => {
      const active = items.filter(w => w.state === 'active');
      const slots = active.reduce((s, w) => s + w.slots, 0), busy = active.reduce((s, w) => s + w.running, 0);
      return `${active.length} active on this page, ${busy} of ${slots} slots busy.`;
    },
  });

  mount(root, h('h1', {}, 'Workers'), list.el);
  const refresh = throttle(list.load, 1000);
  return events.liveLoad(list.load, ev => {
    if (ev === null || ev.type.startsWith('worker.') || ['run.started', 'run.succeeded', 'run.failed',
      'run.canceled', 'run.retrying', 'run.requeued'].includes(ev.type)) refresh();
  });
}
