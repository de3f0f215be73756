// The dashboard's shell: log in, the layout (navigation, who is logged
// in, the live indicator, the theme), and the hash router that mounts one
// page at a time. A page is a function (root, params) that renders into
// root and returns a cleanup function; it is unmounted (its streams closed,
// its subscriptions dropped) when the route changes.

import {api, session, can, ApiError} from './api.js';
import * as events from './events.js';
import {h, mount, field, button} from './dom.js';
import {overviewPage} from './overview.js';
import {jobsPage, jobFormPage} from './jobs.js';
import {jobPage} from './job.js';
import {runPage} from './run.js';
import {workflowsPage, workflowPage, workflowRunPage} from './workflows.js';
import {workersPage} from './workers.js';
import {alertsPage, auditPage} from './alerts.js';

const routes = [
  [/^\/overview$/, overviewPage],
  [/^\/jobs$/, jobsPage],
  [/^\/jobs\/new$/, jobFormPage],
  [/^\/jobs\/([^/]+)\/edit$/, jobFormPage],
  [/^\/jobs\/([^/]+)$/, jobPage],
  [/^\/runs\/([^/]+)$/, runPage],
  [/^\/workflows$/, workflowsPage],
  [/^\/workflows\/([^/]+)$/, workflowPage],
  [/^\/workflow-runs\/([^/]+)$/, workflowRunPage],
  [/^\/workers$/, workersPage],
  [/^\/alerts$/, alertsPage],
  [/^\/audit$/, auditPage],
];

const app = document.getElementById('app');
let cleanup = null;
let loginMessage = '';

// ---- theme ---------------------------------------------------------------

function theme() {
  const saved = localStorage.getItem('sked.theme');
  if (saved) return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
}

applyTheme(theme());

// ---- login ---------------------------------------------------------------

function loginPage() {
  const alert = h('p', {role: 'alert', class: 'error'}, loginMessage);
  loginMessage = '';
  const token = h('input', {type: 'password', name: 'token', autocomplete: 'off', required: true,
    spellcheck: 'false'});
  const user = h('input', {type: 'text', name: 'user', autocomplete: 'username', required: true});
  const pass = h('input', {type: 'password', name: 'password', autocomplete: 'current-password',
    required: true});

  async function useToken(t, how) {
    const me = await api('GET', '/v1/whoami', {token: t});
    session.set(t, how);
    session.me = me;
    go('#/overview');
  }

  const withToken = h('form', {class: 'card',
    onsubmit: async e => {
      e.preventDefault();
      alert.textContent = '';
      try {
        await useToken(token.value.trim(), 'token');
      } catch (err) {
        alert.textContent = err.status === 401
          ? 'That token is invalid, revoked or expired.'
          : err.status === 403
            ? 'That token cannot use the dashboard (its role is for workers or metrics).'
            : `Could not log in: ${err.message}`;
      }
    }},
  h('h2', {}, 'With a token'),
  field('Token', token, 'sked dev prints the admin token file; sked tokens create makes others.'),
  h('button', {type: 'submit', class: 'primary'}, 'Log in with token'));

  const withPassword = h('form', {class: 'card',
    onsubmit: async e => {
      e.preventDefault();
      alert.textContent = '';
      try {
        const t = await api('POST', '/v1/login', {body: {user: user.value, password: pass.value},
          noAuth: true});
        pass.value = '';
        await useToken(t.token, 'password');
      } catch (err) {
        alert.textContent = err.status === 401 ? 'Wrong user or password.'
          : err.status === 429 ? 'Too many failed logins for this user; wait a few minutes.'
            : `Could not log in: ${err.message}`;
      }
    }},
  h('h2', {}, 'With a user and password'),
  field('User', user),
  field('Password', pass),
  h('button', {type: 'submit', class: 'primary'}, 'Log in'));

  mount(app, h('main', {class: 'login'},
    h('h1', {}, 'sked'),
    h('p', {class: 'muted'}, 'Log in to see and steer your jobs.'),
    alert, h('div', {class: 'login-forms'}, withToken, withPassword)));
  token.focus();
}

// ---- layout --------------------------------------------------------------

const NAV = [
  ['Overview', '#/overview'],
  ['Jobs', '#/jobs'],
  ['Workflows', '#/workflows'],
  ['Workers', '#/workers'],
  ['Alerts', '#/alerts'],
];

function layout() {
  const nav = h('nav', {'aria-label': 'Main'},
    h('ul', {}, [...NAV, ...(can.admin() ? [['Audit', '#/audit']] : [])].map(([label, href]) =>
      h('li', {}, h('a', {href}, label)))));
  const live = h('span', {'data-testid': 'live', class: 'live', role: 'status'}, 'Connecting');
  events.onStatus(on => {
    live.textContent = on ? 'Live' : 'Reconnecting';
    live.classList.toggle('on', on);
  });
  const dark = button('Dark theme', () => {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('sked.theme', t);
    applyTheme(t);
    dark.setAttribute('aria-pressed', String(t === 'dark'));
  }, {'aria-pressed': String(document.documentElement.dataset.theme === 'dark'), class: 'ghost'});
  const me = session.me;
  const header = h('header', {class: 'top'},
    h('a', {href: '#/overview', class: 'brand'}, 'sked'),
    nav,
    h('div', {class: 'who'}, live,
      h('span', {class: 'muted', title: `token ${me.id}`}, `${me.user || me.name} · ${me.role}`),
      dark,
      button('Log out', logout, {class: 'ghost'})));
  const main = h('main', {id: 'main', tabindex: '-1'});
  mount(app, h('a', {href: '#main', class: 'skip', onclick: e => {
    e.preventDefault();
    main.focus();
  }}, 'Skip to content'), header, main);
  return main;
}

function markNav(path) {
  for (const a of app.querySelectorAll('nav a')) {
    const on = path.startsWith(a.getAttribute('href').slice(1));
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Logging out ends the token too when this page made it (from a password):
// one that was pasted in belongs to whoever made it, who may use it
// elsewhere.
async function logout() {
  events.stop();
  if (session.madeHere() && session.me) {
    try { await api('DELETE', `/v1/tokens/${session.me.id}`); } catch { /* ended anyway */ }
  }
  session.clear();
  session.me = null;
  go('#/login');
}

session.onLogout = msg => {
  events.stop();
  session.me = null;
  loginMessage = msg;
  go('#/login');
};

// Goes to hash: through hashchange when it changes, else at once.
function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---- routing -------------------------------------------------------------

let main = null;
let routeSeq = 0;
let firstRoute = true; // a fresh load: the focus starts at the top, where the skip link is

async function route() {
  const my = ++routeSeq;
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  // A page keeps its filters in the query of the hash: #/jobs?state=paused
  const path = (location.hash.replace(/^#/, '') || '/overview').split('?')[0];
  if (!session.token()) {
    main = null;
    firstRoute = false; // the page after logging in takes the focus
    return loginPage();
  }
  if (!session.me) {
    try {
      session.me = await api('GET', '/v1/whoami');
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) {
        session.clear();
        loginMessage = `Could not log in: ${e.message}`;
      }
      return loginPage();
    }
    if (my !== routeSeq) return;
  }
  if (path === '/login') {
    go('#/overview');
    return;
  }
  if (!main || !main.isConnected) main = layout();
  events.start();
  markNav(path);
  for (const [re, page] of routes) {
    const m = path.match(re);
    if (!m) continue;
    const root = h('div', {class: 'page'});
    mount(main, root);
    let done = null;
    try {
      done = await page(root, ...m.slice(1).map(decodeURIComponent)) || null;
    } catch (e) {
      mount(root, h('h1', {}, 'Something went wrong'), h('p', {role: 'alert', class: 'error'},
        e.message));
    }
    if (my !== routeSeq) {
      // Another route began while this page loaded: it is gone already.
      try { done?.(); } catch (e) { console.error(e); }
      return;
    }
    cleanup = done;
    announce(root, !firstRoute);
    firstRoute = false;
    return;
  }
  mount(main, h('h1', {}, 'Not found'), h('p', {}, 'No page at ', h('code', {}, path), '.'));
}

// Tells keyboard and screen-reader users where they are: the title names
// the page, and after a move from another page the focus goes to its
// heading (unless the page put it in a field already).
function announce(root, moveFocus) {
  const h1 = root.querySelector('h1');
  document.title = h1 ? `${h1.textContent} · sked` : 'sked';
  if (moveFocus && h1 && !root.contains(document.activeElement)) {
    h1.tabIndex = -1;
    h1.focus({preventScroll: true});
  }
}

addEventListener('hashchange', route);
route();
