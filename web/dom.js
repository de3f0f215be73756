// DOM helpers. Every text the API returns reaches the page through
// textContent or an attribute, never through innerHTML: a job named
// "<img src=x onerror=...>" is shown as those characters.

// h('a', {href: '#/jobs', class: 'x', onclick: fn}, 'text', child, [children])
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'value' && !svg) el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replaces the children of el.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// ---- time ----------------------------------------------------------------

const fmtLocal = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});

// A <time> in the browser's zone, with the UTC instant on hover.
export function time(iso) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  const d = new Date(iso);
  if (isNaN(d)) return h('span', {}, iso);
  return h('time', {datetime: iso, title: d.toISOString().replace('.000Z', 'Z') + ' (UTC)'},
    fmtLocal.format(d));
}

// "3 s ago", "in 2 min"
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const s = Math.round((new Date(iso) - now) / 1000);
  const a = Math.abs(s);
  if (a < 2) return 'just now';
  const v = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min`
    : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s < 0 ? `${v} ago` : `in ${v}`;
}

// relative(iso) that stays true: every span of these is rewritten every
// few seconds (a clock on the page, not a poll of the server).
export function ago(iso) {
  return h('span', {class: 'muted', 'data-rel': iso}, relative(iso));
}
setInterval(() => {
  for (const el of document.querySelectorAll('[data-rel]')) el.textContent = relative(el.dataset.rel);
}, 5000);

export function duration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function between(a, b) {
  if (!a) return null;
  return (b ? new Date(b) : new Date()) - new Date(a);
}

// ---- small widgets -------------------------------------------------------

export function badge(state) {
  return h('span', {class: `badge s-${state || 'none'}`}, state || '—');
}

export function field(label, control, hint) {
  const id = control.id || (control.id = 'f' + Math.random().toString(36).slice(2, 9));
  return h('div', {class: 'field'},
    h('label', {for: id}, label), control, hint ? h('small', {class: 'muted'}, hint) : null);
}

export function button(label, onclick, attrs = {}) {
  return h('button', {type: 'button', ...attrs, onclick}, label);
}

// A definition list of [term, value] pairs.
export function facts(pairs) {
  return h('dl', {class: 'facts'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function card(title, ...body) {
  return h('section', {class: 'card', 'aria-label': title}, h('h2', {}, title), ...body);
}

export function empty(text) {
  return h('p', {class: 'muted empty'}, text);
}

// Debounces fn by ms: the last call wins.
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// Runs fn at most once per ms, trailing call kept: for refreshing a view
// on a burst of events without polling.
export function throttle(fn, ms) {
  let last = 0, timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0 && !timer) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, Math.max(wait, 0));
    }
  };
}

// Previous/next paging over a list's cursors: onPage() loads the page at
// cursor(); it calls done(next_cursor) with the answer.
export function pager(onPage) {
  let cursors = [null];
  let nextCursor = null;
  const status = h('p', {class: 'muted', role: 'status'});
  // Both wait for the page asked for: a double click moves one page.
  const go = move => {
    prev.disabled = next.disabled = true;
    move();
    onPage();
  };
  const prev = button('Previous page', () => go(() => cursors.pop()), {disabled: true});
  const next = button('Next page', () => go(() => cursors.push(nextCursor)), {disabled: true});
  return {
    el: h('div', {class: 'pager'}, prev, status, next),
    status,
    cursor: () => cursors[cursors.length - 1],
    page: () => cursors.length,
    reset() { cursors = [null]; },
    done(nc) {
      nextCursor = nc;
      prev.disabled = cursors.length <= 1;
      next.disabled = !nc;
    },
  };
}

// Orders the answers of a view's loads: const fresh = sequencer(); in a
// load, const current = fresh(); ...await...; if (!current()) return; so
// an older, slower answer never replaces a newer one.
export function sequencer() {
  let n = 0;
  return () => {
    const my = ++n;
    return () => my === n;
  };
}

// A button that asks before it acts: label, then question with
// confirmLabel (the action) and "Keep it".
export function confirmButton(label, question, confirmLabel, action) {
  const box = h('span', {class: 'confirm', hidden: true, role: 'group', 'aria-label': question});
  const open = button(label, () => {
    box.hidden = false;
    yes.focus();
  }, {class: 'danger'});
  const yes = button(confirmLabel, () => { box.hidden = true; action(); }, {class: 'danger'});
  const no = button('Keep it', () => { box.hidden = true; open.focus(); });
  box.append(question, ' ', yes, ' ', no);
  return h('span', {}, open, ' ', box);
}

// A server-paged table: label names it, columns head it, fetch(cursor)
// answers a page ({items, next_cursor}), row(item) draws one. Older answers
// never replace newer ones; a failed load says why in the status line.
// what names the items in the status ("job", or ["entry", "entries"]), or
// say(items) writes it. Returns {el, load, reset (to the first page, then load),
// status}.
export function listView({label, columns, fetch, row, emptyText, what = 'item', say}) {
  const tbody = h('tbody');
  const pg = pager(() => load());
  const fresh = sequencer();
  async function load() {
    const current = fresh();
    let page;
    try {
      page = await fetch(pg.cursor());
    } catch (e) {
      if (!current()) return;
      pg.status.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
      pg.done(null);
      return;
    }
    if (!current()) return;
    pg.done(page.next_cursor);
    const n = page.items.length;
    mount(tbody, n ? page.items.map(row)
      : h('tr', {}, h('td', {colspan: columns.length}, empty(typeof emptyText === 'function' ? emptyText() : emptyText))));
    const [one, many] = Array.isArray(what) ? what : [what, `${what}s`];
    pg.status.textContent = say ? say(page.items) : `Page ${pg.page()}: ${n} ${n === 1 ? one : many}.`;
  }
  const el = h('div', {},
    h('div', {class: 'table-wrap'}, h('table', {'aria-label': label},
      h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col'}, c)))), tbody)),
    pg.el);
  return {el, load, status: pg.status, reset() {
    pg.reset();
    return load();
  }};
}
