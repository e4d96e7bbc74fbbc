// The Tallyman console: login, the sidebar layout and the hash router (#/overview,
// #/licenses/backupServers?status=Expired, #/licenses/backupServers/{uid}, #/reports, #/usage,
// #/organizations). Pages live in pages.js; every datum comes from the public /api/v3.

import * as api from './api.js';
import { h, clear, showError, flash } from './ui.js';
import { KINDS, PAGES } from './pages.js';

const root = document.getElementById('app');
let session = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/overview';
  const [path, search = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  return { parts, params: new URLSearchParams(search) };
}

/** Navigates to a hash route, e.g. go('/licenses/sites', {status: 'Valid'}). */
export function go(path, params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') search.set(k, v);
  const next = '#' + path + (search.toString() ? '?' + search : '');
  if (location.hash === next) render();
  else location.hash = next;
}

function loginPage(message) {
  clear(root);
  root.className = 'app app-login';
  const error = h('div.login-error', { role: 'alert' }, message || '');
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const readOnly = h('input', { name: 'readOnly', type: 'checkbox' });
  const submit = h('button.btn.btn-primary.btn-block', { type: 'submit' }, 'Log in');
  const form = h(
    'form.login-card',
    {
      on: {
        submit: async (e) => {
          e.preventDefault();
          error.textContent = '';
          submit.disabled = true;
          submit.textContent = 'Logging in…';
          try {
            await api.login(user.value.trim(), pass.value, readOnly.checked);
            await start();
          } catch (err) {
            error.textContent = err.message;
            submit.disabled = false;
            submit.textContent = 'Log in';
          }
        },
      },
    },
    h('div.login-brand', h('img', { src: '/assets/favicon.svg', alt: '', width: 40, height: 40 }), h('div', h('div.brand-name', 'Tallyman'), h('div.brand-sub', 'License server console'))),
    h('label.field', h('span.field-label', 'User name'), user),
    h('label.field', h('span.field-label', 'Password'), pass),
    h('label.check', readOnly, h('span', 'Read-only session')),
    error,
    submit,
  );
  root.append(form);
  user.focus();
}

function navLink(href, label, active, extra) {
  return h('a.nav-link', { href: '#' + href, class: active ? 'active' : '', 'aria-current': active ? 'page' : null }, label, extra || null);
}

function layout(parts) {
  clear(root);
  root.className = 'app';
  const where = parts.join('/');
  const a = session.access;
  const licenseLinks = Object.entries(KINDS)
    .filter(([, k]) => a[k.access] && a[k.access].read)
    .map(([key, k]) => navLink('/licenses/' + key, k.title, parts[0] === 'licenses' && parts[1] === key));
  const nav = h(
    'nav.sidebar',
    { 'aria-label': 'Main' },
    h('div.brand', h('img', { src: '/assets/favicon.svg', alt: '', width: 28, height: 28 }), h('span.brand-name', 'Tallyman')),
    h('div.nav-section', navLink('/overview', 'Overview', where === 'overview' || where === '')),
    licenseLinks.length ? h('div.nav-section', h('div.nav-heading', 'Licenses'), licenseLinks) : null,
    h(
      'div.nav-section',
      h('div.nav-heading', 'Usage'),
      a.reports.read ? navLink('/reports', 'Monthly reports', parts[0] === 'reports') : null,
      a.usage.read ? navLink('/usage', 'Live usage', parts[0] === 'usage') : null,
      a.organizations.read ? navLink('/organizations', 'Organizations', parts[0] === 'organizations') : null,
    ),
    h(
      'div.whoami',
      h('div.whoami-name', session.userName),
      h('div.whoami-role', session.role),
      h('div.whoami-org', session.organizationName ? `${session.organizationName} (${session.organizationType})` : ''),
      session.readOnly ? h('span.badge.badge-neutral#read-only-badge', 'Read-only') : null,
      h('button.btn.btn-small.btn-ghost#logout', { type: 'button', on: { click: logout } }, 'Log out'),
    ),
  );
  const main = h('main.main', h('div#flash', { 'aria-live': 'polite' }), h('div#page'));
  root.append(nav, main);
  return document.getElementById('page');
}

function logout() {
  api.clearTokens();
  session = null;
  history.replaceState(null, '', location.pathname);
  loginPage('You are logged out.');
}

let generation = 0;

async function render() {
  if (!session) return;
  const { parts, params } = parseHash();
  const page = layout(parts);
  const mine = ++generation;
  const name = parts[0] || 'overview';
  const renderer = PAGES[name];
  if (!renderer) {
    page.append(h('h1', 'Not found'), h('p', 'There is no such page in the console.'));
    return;
  }
  try {
    await renderer({ page, parts, params, session, go, current: () => mine === generation });
  } catch (e) {
    if (mine === generation) showError(e);
  }
}

async function start() {
  try {
    session = (await api.get('/tallyman/session')).data;
  } catch (e) {
    session = null;
    api.clearTokens();
    loginPage(e.status === 401 ? '' : e.message);
    return;
  }
  flash();
  render();
}

api.onLoggedOut(() => {
  session = null;
  loginPage('Your session has ended. Please log in again.');
});
window.addEventListener('hashchange', () => render());
window.addEventListener('unhandledrejection', (e) => showError(e.reason));

if (api.hasTokens()) start();
else loginPage();
