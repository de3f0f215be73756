// Jobs: the list (paged and filtered on the server, live, with bulk pause
// and resume) and the form that creates or edits a job, with the next fire
// times previewed as a schedule is typed.

import {api, get, post, can, ApiError} from './api.js';
import * as events from './events.js';
import {h, mount, time, badge, field, button, empty, debounce, throttle, pager} from './dom.js';

const PAGE = 50;
const SORTS = [['-created', 'Newest first'], ['created', 'Oldest first'], ['name', 'Name A–Z'],
  ['-name', 'Name Z–A'], ['-priority', 'Highest priority'], ['priority', 'Lowest priority']];

// "0 2 * * * (Europe/Berlin)", "every 15m", "at …"
export function scheduleText(s) {
  if (s.cron) return `${s.cron}${s.timezone && s.timezone !== 'UTC' ? ` (${s.timezone})` : ''}`;
  if (s.every) return `every ${s.every}`;
  if (s.at) return `at ${new Date(s.at).toLocaleString()}`;
  return '';
}

function nextFire(job) {
  const t = (job.schedules || []).map(s => s.next_fire_at).filter(Boolean).sort()[0];
  return t || null;
}

// ---- the list -----------------------------------------------------------------

export async function jobsPage(root) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const state = h('select', {name: 'state'},
    [['', 'Any (not deleted)'], ['active', 'Active'], ['paused', 'Paused'], ['done', 'Done']]
      .map(([v, l]) => h('option', {value: v, selected: q.get('state') === v}, l)));
  const queue = h('input', {type: 'text', name: 'queue', value: q.get('queue') || '', spellcheck: 'false'});
  const tag = h('input', {type: 'text', name: 'tag', value: q.get('tag') || '', spellcheck: 'false'});
  const search = h('input', {type: 'search', name: 'name', value: q.get('name') || '', spellcheck: 'false'});
  const sort = h('select', {name: 'sort'}, SORTS.map(([v, l]) => h('option', {value: v,
    selected: (q.get('sort') || '-created') === v}, l)));
  const pg = pager(() => load());
  const status = pg.status;
  const tbody = h('tbody');
  const selectAll = h('input', {type: 'checkbox', 'aria-label': 'Select every job on this page'});
  const pause = button('Pause selected', () => bulk('pause'), {disabled: true});
  const resume = button('Resume selected', () => bulk('resume'), {disabled: true});
  let rows = [];
  let seq = 0;
  let gone = false; // the page was left: a late answer touches nothing

  const selected = () => rows.filter(r => r.box.checked);
  function updateBulk() {
    const n = selected().length;
    pause.disabled = resume.disabled = n === 0;
    selectAll.checked = n > 0 && n === rows.length;
    selectAll.indeterminate = n > 0 && n < rows.length;
  }
  selectAll.addEventListener('change', () => {
    for (const r of rows) r.box.checked = selectAll.checked;
    updateBulk();
  });

  async function bulk(verb) {
    const picked = selected();
    pause.disabled = resume.disabled = true;
    let failed = [];
    await Promise.all(picked.map(async r => {
      try { await post(`/v1/jobs/${r.job.id}/${verb}`); } catch (e) { failed.push(`${r.job.name}: ${e.message}`); }
    }));
    status.textContent = failed.length ? `Could not ${verb} ${failed.length}: ${failed.join('; ')}`
      : `${verb === 'pause' ? 'Paused' : 'Resumed'} ${picked.length} job${picked.length === 1 ? '' : 's'}.`;
    await load(true);
  }

  function filters() {
    return {state: state.value, queue: queue.value.trim(), tag: tag.value.trim(),
      name: search.value.trim(), sort: sort.value === '-created' ? '' : sort.value};
  }

  // keep: keep the selection (a refresh of the same page)
  async function load(keep = false) {
    const my = ++seq;
    const f = filters();
    const keepIds = new Set(keep ? selected().map(r => r.job.id) : []);
    const t0 = performance.now();
    let page;
    try {
      page = await get('/v1/jobs', {...f, limit: PAGE, cursor: pg.cursor()});
    } catch (e) {
      if (my !== seq || gone) return;
      status.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
      if (e.field === 'query.cursor') pg.reset();
      return;
    }
    if (my !== seq || gone) return; // a newer load started, or the page is gone
    rows = page.items.map(job => {
      const box = h('input', {type: 'checkbox', 'aria-label': `Select ${job.name}`,
        checked: keepIds.has(job.id), onchange: updateBulk});
      const nf = nextFire(job);
      const tr = h('tr', {'data-id': job.id},
        can.write() ? h('td', {}, box) : null,
        h('td', {}, h('a', {href: `#/jobs/${encodeURIComponent(job.id)}`}, job.name)),
        h('td', {}, badge(job.state)),
        h('td', {}, job.type),
        h('td', {}, job.queue),
        h('td', {class: 'sched'}, (job.schedules || []).map(scheduleText).join('; ') || h('span', {class: 'muted'}, 'once')),
        h('td', {}, nf ? time(nf) : h('span', {class: 'muted'}, '—')),
        h('td', {class: 'num'}, String(job.priority)),
        h('td', {}, (job.tags || []).map(t => h('span', {class: 'tag'}, t))),
        h('td', {}, time(job.created_at)));
      return {job, box, tr};
    });
    mount(tbody, rows.map(r => r.tr));
    if (!rows.length) mount(tbody, h('tr', {}, h('td', {colspan: 10}, empty('No jobs match.'))));
    pg.done(page.next_cursor);
    const shown = `Page ${pg.page()}: ${rows.length} job${rows.length === 1 ? '' : 's'}`;
    status.textContent = `${shown} (${Math.round(performance.now() - t0)} ms).`;
    root.dataset.loadedMs = String(Math.round(performance.now() - t0));
    updateBulk();
    // The filters into the address, unless the user has moved on: a list
    // that loads after the hash changed (its hashchange still queued) must
    // not write #/jobs back over the page asked for.
    const qs = new URLSearchParams(Object.entries(f).filter(([, v]) => v)).toString();
    if (root.isConnected && location.hash.split('?')[0] === '#/jobs')
      history.replaceState(null, '', `#/jobs${qs ? `?${qs}` : ''}`);
  }

  const reset = () => { pg.reset(); load(); };
  for (const el of [state, sort]) el.addEventListener('change', reset);
  const typed = debounce(reset, 250);
  for (const el of [queue, tag, search]) el.addEventListener('input', typed);

  mount(root,
    h('div', {class: 'title'}, h('h1', {}, 'Jobs'),
      can.write() ? h('a', {href: '#/jobs/new', class: 'button primary'}, 'New job') : null),
    h('form', {class: 'filters', role: 'search', 'aria-label': 'Filter jobs',
      onsubmit: e => { e.preventDefault(); reset(); }},
    field('State', state), field('Queue', queue), field('Tag', tag), field('Search names', search),
    field('Sort', sort)),
    can.write() ? h('div', {class: 'actions'}, pause, resume) : null,
    h('div', {class: 'table-wrap'}, h('table', {'aria-label': 'Jobs'},
      h('thead', {}, h('tr', {},
        can.write() ? h('th', {}, selectAll) : null,
        ['Name', 'State', 'Type', 'Queue', 'Schedules', 'Next fire', 'Priority', 'Tags', 'Created']
          .map(c => h('th', {scope: 'col'}, c)))),
      tbody)),
    pg.el);

  // Live: a job created, changed or deleted refreshes the page shown (at
  // most twice a second), keeping the selection.
  const refresh = throttle(() => load(true), 500);
  const unsub = events.subscribe(() => refresh(), {kinds: ['job']});
  await load();
  return () => {
    gone = true;
    unsub();
  };
}

// ---- the form -------------------------------------------------------------------

const ZONES = (() => {
  try { return Intl.supportedValuesOf('timeZone'); } catch { return ['UTC']; }
})();
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

// A JSON merge patch (RFC 7386) from a to b: the keys of a that b lacks
// are null; objects on both sides are patched member by member.
function mergePatch(a, b) {
  const obj = v => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!obj(a) || !obj(b)) return b;
  const p = {};
  for (const k of Object.keys(a)) if (!(k in b)) p[k] = null;
  for (const [k, v] of Object.entries(b)) {
    if (k in a && JSON.stringify(a[k]) === JSON.stringify(v)) continue;
    p[k] = obj(a[k]) && obj(v) ? mergePatch(a[k], v) : v;
  }
  return p;
}

// An Idempotency-Key: crypto.randomUUID exists only on https and localhost.
function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return [...crypto.getRandomValues(new Uint8Array(16))].map(x => x.toString(16).padStart(2, '0')).join('');
}

function lines(text) {
  return text.split('\n').map(s => s.trim()).filter(Boolean);
}

// The form's schedule: one of none (once, now), cron, every, at.
function scheduleFields(initial) {
  const kind = h('select', {name: 'schedule'},
    [['none', 'Once, now'], ['cron', 'Cron expression'], ['every', 'Every interval'], ['at', 'Once, at a time']]
      .map(([v, l]) => h('option', {value: v}, l)));
  const cron = h('input', {type: 'text', name: 'cron', placeholder: '0 2 * * *', spellcheck: 'false',
    autocomplete: 'off'});
  const tz = h('input', {type: 'text', name: 'timezone', list: 'zones', value: 'UTC', spellcheck: 'false'});
  const zones = h('datalist', {id: 'zones'}, ZONES.map(z => h('option', {value: z})));
  const every = h('input', {type: 'text', name: 'every', placeholder: '15m', spellcheck: 'false'});
  const at = h('input', {type: 'datetime-local', name: 'at', step: 1});
  const s = initial || null;
  if (s?.cron) { kind.value = 'cron'; cron.value = s.cron; tz.value = s.timezone || 'UTC'; }
  else if (s?.every) { kind.value = 'every'; every.value = s.every; }
  else if (s?.at) {
    kind.value = 'at';
    const d = new Date(s.at);
    at.value = new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }
  const groups = {
    cron: h('div', {class: 'row'}, field('Cron expression', cron, 'minute hour day month weekday'),
      field('Time zone', tz, `Yours: ${LOCAL_ZONE}`), zones),
    every: field('Interval', every, 'e.g. 30s, 15m, 2h'),
    at: field('At (your time zone)', at),
  };
  const box = h('div', {class: 'schedule'});
  const show = () => {
    mount(box, groups[kind.value] || null);
  };
  kind.addEventListener('change', show);
  show();
  // What the form does not show of the schedule (start, end, jitter) is
  // kept; an every's anchor too while it stays an every.
  const base = {};
  for (const [k, v] of Object.entries(s || {}))
    if (!['id', 'next_fire_at', 'last_fire_at', 'cron', 'timezone', 'every', 'anchor', 'at'].includes(k))
      base[k] = v;
  const value = () => {
    switch (kind.value) {
    case 'cron': return [{...base, cron: cron.value.trim(), timezone: tz.value.trim() || 'UTC'}];
    case 'every': return [{...base, every: every.value.trim(), ...(s?.every && s.anchor ? {anchor: s.anchor} : {})}];
    case 'at': return [{...base, at: at.value ? new Date(at.value).toISOString() : ''}];
    default: return null;
    }
  };
  const inputs = {cron, timezone: tz, every, at};
  const watch = [kind, cron, tz, every, at];
  const state = {dirty: false};
  for (const el of watch) el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', () => { state.dirty = true; });
  return {el: h('div', {}, field('Schedule', kind), box), value, kind, inputs, watch, state};
}

// The next fire times of schedules, as the server computes them.
function previewBox() {
  // Only the one-line summary is live: a screen reader says it as the
  // schedule is typed, not the whole table.
  const summary = h('p', {'aria-live': 'polite', class: 'muted'}, 'A schedule shows its next fire times here.');
  const body = h('div');
  const box = h('section', {class: 'card preview', 'aria-label': 'Next fire times'},
    h('h2', {}, 'Next fire times'), summary, body);
  let seq = 0;
  const update = debounce(async schedules => {
    const my = ++seq;
    if (!schedules) {
      summary.textContent = 'Runs once, as soon as it is created.';
      mount(body);
      return;
    }
    try {
      const p = await post('/v1/schedules/preview', {schedules, n: 10});
      if (my !== seq) return;
      const shifts = p.fire_times.filter(f => f.dst_shifted).length;
      summary.textContent = p.fire_times.length
        ? `Next: ${new Date(p.fire_times[0].at).toLocaleString()}${shifts ? `; ${shifts} of these in a daylight-saving shift` : ''}.`
        : 'This schedule has no more fire times.';
      mount(body,
        p.fire_times.length ? h('div', {class: 'table-wrap'}, h('table', {class: 'compact', 'aria-label': 'Next fire times'},
          h('thead', {}, h('tr', {}, h('th', {}, 'UTC'), h('th', {}, 'In the job\'s zone'),
            h('th', {}, 'Your time'), h('th', {}, ''))),
          h('tbody', {}, p.fire_times.map(f => h('tr', {},
            h('td', {}, f.at.replace('.000Z', 'Z')),
            h('td', {}, `${f.local} ${f.timezone}`),
            h('td', {}, time(f.at)),
            h('td', {}, f.dst_shifted ? h('span', {class: 'badge s-warn', title:
              'This fire time falls in a daylight-saving shift: the wall-clock time does not exist or repeats, and sked moved it as its docs say.'},
            'DST shift') : null))))))
          : null);
    } catch (e) {
      if (my !== seq) return;
      summary.textContent = '';
      mount(body, h('p', {class: 'error', role: 'alert'}, e.field ? `${e.field}: ${e.message}` : e.message));
    }
  }, 200);
  return {box, update};
}

export async function jobFormPage(root, id) {
  if (!can.write()) {
    mount(root, h('h1', {}, id ? 'Edit job' : 'New job'), h('p', {}, 'Your role cannot change jobs.'));
    return null;
  }
  let job = null, etag = null;
  if (id) {
    const r = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`, {withHeaders: true});
    job = r.data;
    etag = r.headers.get('ETag');
  }
  let types = ['shell', 'http'];
  try {
    const p = await get('/v1/plugins');
    types = p.items.map(t => t.type);
  } catch { /* the built-ins */ }

  const name = h('input', {type: 'text', name: 'name', required: true, value: job?.name || '',
    maxlength: 200, spellcheck: 'false'});
  const type = h('select', {name: 'type'}, types.map(t => h('option', {value: t,
    selected: (job?.type || 'shell') === t}, t)));
  const command = h('textarea', {name: 'command', rows: 3, spellcheck: 'false'},
  );
  command.value = job?.command ? job.command.join('\n') : '';
  const config = h('textarea', {name: 'config', rows: 5, spellcheck: 'false'});
  config.value = job && job.type !== 'shell' ? JSON.stringify(job.config ?? {}, null, 2) : '{}';
  const queue = h('input', {type: 'text', name: 'queue', value: job?.queue || 'default', spellcheck: 'false'});
  const priority = h('input', {type: 'number', name: 'priority', value: job?.priority ?? 0, min: -1000, max: 1000});
  const timeout = h('input', {type: 'text', name: 'timeout', value: job?.timeout || '', placeholder: 'none',
    spellcheck: 'false'});
  const attempts = h('input', {type: 'number', name: 'max_attempts', min: 1,
    value: job?.retry?.max_attempts ?? 1});
  const tags = h('input', {type: 'text', name: 'tags', value: (job?.tags || []).join(', '), spellcheck: 'false'});
  const env = h('textarea', {name: 'env', rows: 3, spellcheck: 'false'});
  env.value = Object.entries(job?.env || {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : '***'}`).join('\n');
  const sched = scheduleFields(job?.schedules?.[0]);
  const preview = previewBox();
  const alert = h('div', {role: 'alert', class: 'error'});
  const controls = {name, type, command, config, queue, priority, timeout, 'retry.max_attempts': attempts,
    tags, env, ...Object.fromEntries(Object.entries(sched.inputs).map(([k, v]) => [`schedules[0].${k}`, v]))};

  const shellOnly = field('Command', command, 'One argument per line, no shell: the first line is the program.');
  const envField = field('Environment', env, 'KEY=value, one per line. A secret shows as ***: leave it to keep it, or type a new value, which stays secret.');
  const configOnly = field('Config (JSON)', config, 'Checked against the type\'s schema when you save.');
  const showType = () => {
    shellOnly.hidden = type.value !== 'shell';
    configOnly.hidden = type.value === 'shell';
  };
  type.addEventListener('change', showType);
  showType();

  const multi = (job?.schedules?.length || 0) > 1;
  const updatePreview = () => preview.update(sched.value());
  for (const el of sched.watch) el.addEventListener(el.tagName === 'SELECT' ? 'change' : 'input', updatePreview);

  // The environment as the form says it: a secret (stored as {"secret":
  // ...}, shown as ***) is sent back masked to keep it, or with its new
  // value still as a secret.
  function envDoc() {
    const e = {};
    for (const l of lines(env.value)) {
      const i = l.indexOf('=');
      const k = i < 0 ? l : l.slice(0, i), v = i < 0 ? '' : l.slice(i + 1);
      const was = job?.env?.[k];
      const secret = was !== undefined && typeof was !== 'string';
      e[k] = secret ? (v === '***' ? was : {secret: v}) : v;
    }
    return e;
  }

  // The job document of the form: the whole of it for a new job; for an
  // edit, a JSON merge patch (RFC 7386) of what changed, in which a key
  // that is gone is null, and the fields of the old type are cleared.
  function doc() {
    const d = {name: name.value.trim(), type: type.value, queue: queue.value.trim() || 'default',
      priority: Number(priority.value || 0), timeout: timeout.value.trim() || null,
      retry: {...(job?.retry || {}), max_attempts: Number(attempts.value || 1)},
      tags: tags.value.split(',').map(s => s.trim()).filter(Boolean), env: envDoc()};
    if (type.value === 'shell') {
      d.command = lines(command.value);
    } else {
      try { d.config = JSON.parse(config.value || '{}'); } catch (e) {
        throw new ApiError(400, {field: 'config', detail: `config is not JSON: ${e.message}`});
      }
    }
    if (!multi && (!job || sched.state.dirty)) {
      const s = sched.value();
      if (s) d.schedules = s;
      else if (job) d.schedules = [];
    }
    if (!job) return d;
    d.env = mergePatch(job.env || {}, d.env);
    if (d.config) d.config = mergePatch(job.type === 'shell' ? {} : job.config || {}, d.config);
    if (job.type !== d.type) {
      if (d.type === 'shell') d.config = null;
      else Object.assign(d, {command: null, cwd: null});
    }
    return d;
  }

  function showError(e) {
    for (const el of Object.values(controls)) el.removeAttribute('aria-invalid');
    const key = e.field ? Object.keys(controls).find(k => e.field === k || e.field.startsWith(`${k}.`) ||
      e.field.startsWith(`${k}[`)) : null;
    if (key) {
      controls[key].setAttribute('aria-invalid', 'true');
      controls[key].focus();
    }
    mount(alert, e.field ? h('strong', {}, `${e.field}: `) : null, e.message);
  }

  // One key for this form: a retried create (a lost answer, a double
  // click) makes one job.
  const idem = newKey();
  async function save(force) {
    mount(alert);
    let body;
    try { body = doc(); } catch (e) { showError(e); return; }
    submit.disabled = true;
    try {
      if (!job) {
        const made = await post('/v1/jobs', body, {headers: {'Idempotency-Key': idem}});
        location.hash = `#/jobs/${made.id}`;
        return;
      }
      const headers = {'Content-Type': 'application/merge-patch+json'};
      if (!force && etag) headers['If-Match'] = etag;
      await api('PATCH', `/v1/jobs/${encodeURIComponent(job.id)}`, {body, headers,
        contentType: 'application/merge-patch+json'});
      location.hash = `#/jobs/${job.id}`;
    } catch (e) {
      if (e.status === 412) {
        mount(alert, 'Someone changed this job since you opened it. ',
          button('Show their version', () => route()), ' ',
          button('Save mine anyway', () => save(true), {class: 'danger'}));
        return;
      }
      showError(e);
    } finally {
      submit.disabled = false;
    }
  }
  const route = () => { window.dispatchEvent(new HashChangeEvent('hashchange')); };
  const submit = h('button', {type: 'submit', class: 'primary'}, job ? 'Save' : 'Create job');

  mount(root,
    h('h1', {}, job ? `Edit ${job.name}` : 'New job'),
    h('div', {class: 'form-grid'},
      h('form', {class: 'card', 'aria-label': job ? 'Edit job' : 'New job',
        onsubmit: e => { e.preventDefault(); save(false); }},
      alert,
      field('Name', name), field('Type', type), shellOnly, configOnly, envField,
      multi ? h('p', {class: 'muted'}, `This job has ${job.schedules.length} schedules; edit them with the API or CLI.`) : sched.el,
      h('div', {class: 'row'}, field('Queue', queue), field('Priority', priority)),
      h('div', {class: 'row'}, field('Timeout', timeout, 'e.g. 30m; empty: none'),
        field('Attempts', attempts, 'retries back off exponentially')),
      field('Tags', tags, 'comma-separated'),
      h('div', {class: 'actions'},
        submit,
        h('a', {href: job ? `#/jobs/${job.id}` : '#/jobs', class: 'button'}, 'Cancel'))),
      preview.box));
  updatePreview();
  name.focus();
  return null;
}
