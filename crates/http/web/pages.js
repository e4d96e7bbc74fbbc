// The console's pages. Each renders into ctx.page from /api/v3 calls; write controls appear only
// when the session says the caller may change that area (never for read-only tokens).

import * as api from './api.js';
import {
  h, s, clear, badge, fmtDate, fmtDateTime, fmtNum, shortUid, showError, showInfo, flash,
  confirmDialog, busy, table, pager, select, card, loading, facts,
} from './ui.js';

const STATUSES = ['Valid', 'Warning', 'Expired', 'Error', 'Unlicensed', 'Unknown'];
const TYPES = ['Subscription', 'Rental', 'Perpetual', 'Evaluation', 'NFR', 'Community', 'NotInstalled', 'Unknown'];
const PAGE_SIZE = 25;
const DAY = 24 * 3600 * 1000;

/**
 * The five license kinds. `query`: the collection takes filter/sort/limit/offset (sites take only
 * select, so the console filters those itself). `used`/`units`: the usage pair over-limit uses.
 */
export const KINDS = {
  sites: { title: 'Cloud Connect sites', one: 'Cloud Connect site', path: '/licensing/sites', uid: 'siteUid', access: 'sites', query: false, units: 'units', used: 'usedUnits', patch: true, remove: null },
  backupServers: { title: 'Backup & Replication', one: 'Backup & Replication server', path: '/licensing/backupServers', uid: 'backupServerUid', access: 'backupServers', query: true, units: 'units', used: 'usedUnits', patch: true, remove: 'sections' },
  voneServers: { title: 'Veeam ONE', one: 'Veeam ONE server', path: '/licensing/voneServers', uid: 'vOneServerUid', access: 'voneServers', query: true, units: 'units', used: 'usedUnits', patch: true, remove: 'whole' },
  vb365Servers: { title: 'Microsoft 365', one: 'Veeam Backup for Microsoft 365 server', path: '/licensing/vb365Servers', uid: 'vb365ServerUid', access: 'vb365Servers', query: true, units: 'licensedUsers', used: 'protectedUsers', patch: true, remove: null },
  console: { title: 'Console', one: 'Console', path: '/licensing/console', uid: null, access: 'console', single: true, patch: false, remove: null },
};

const title = (ctx, text, ...extra) => ctx.page.append(h('header.page-head', h('h1', text), ...extra));

function usage(kind, lic) {
  const used = Number(lic[kind.used]);
  const units = Number(lic[kind.units]);
  return { used, units, over: Number.isFinite(used) && Number.isFinite(units) && used > units };
}

// ---- overview -----------------------------------------------------------------------------

async function overview(ctx) {
  title(ctx, 'Fleet overview', h('p.page-sub', 'Licenses across every kind you can see, as the API reports them now.'));
  const holder = h('div', loading());
  ctx.page.append(holder);
  const a = ctx.session.access;
  const kinds = Object.entries(KINDS).filter(([, k]) => !k.single && a[k.access].read);
  const lists = await Promise.all(
    kinds.map(async ([key, k]) => {
      const fields = [k.uid, 'company', 'status', 'type', 'expirationDate', k.units, k.used];
      const sel = fields.map((p) => ({ propertyPath: p }));
      const items = await api.getAll(k.path, { select: sel }, k.query);
      return [key, k, items];
    }),
  );
  let consoleLicense = null;
  if (a.console.read) {
    try {
      consoleLicense = (await api.get('/licensing/console')).data;
    } catch (e) {
      if (e.status !== 404) throw e;
    }
  }
  if (!ctx.current()) return;
  clear(holder);
  if (!kinds.length && !a.console.read) {
    holder.append(h('p.note#no-license-access', `The role ${ctx.session.role} has no access to licenses; the licensing pages are for provider and reseller administrators.`));
  }

  const now = Date.now();
  const all = lists.flatMap(([key, k, items]) => items.map((lic) => ({ key, k, lic })));
  if (consoleLicense) all.push({ key: 'console', k: KINDS.console, lic: consoleLicense });
  const byStatus = {};
  for (const { lic } of all) byStatus[lic.status || 'Unknown'] = (byStatus[lic.status || 'Unknown'] || 0) + 1;
  const stat = (label, value, cls, href) =>
    h('a.stat', { href: href || null, class: cls || '', dataset: { stat: label } }, h('div.stat-value', String(value)), h('div.stat-label', label));
  const expiring = all.filter(({ lic }) => {
    const t = Date.parse(lic.expirationDate);
    return Number.isFinite(t) && t >= now && t <= now + 30 * DAY;
  });
  const over = all.filter(({ k, lic }) => !k.single && usage(k, lic).over);
  holder.append(
    h(
      'div.stats#overview-stats',
      stat('Licenses', all.length, 'stat-total'),
      stat('Valid', byStatus.Valid || 0, 'stat-ok'),
      stat('Warning', byStatus.Warning || 0, 'stat-warn'),
      stat('Expired', byStatus.Expired || 0, 'stat-bad'),
      stat('Expiring in 30 days', expiring.length, 'stat-warn'),
      stat('Over limit', over.length, 'stat-bad'),
    ),
  );

  const countLink = (key, field, value, n) =>
    n ? h('a', { href: `#/licenses/${key}?${field}=${encodeURIComponent(value)}` }, String(n)) : h('span.zero', '0');
  const rows = lists.map(([key, k, items]) => ({ key, k, items }));
  if (consoleLicense) rows.push({ key: 'console', k: KINDS.console, items: [consoleLicense] });
  const matrix = (field, values) =>
    table(
      [
        { label: 'Kind', render: (r) => h('a', { href: '#/licenses/' + r.key }, r.k.title) },
        ...values.map((v) => ({
          label: v,
          class: 'num',
          render: (r) => {
            const n = r.items.filter((l) => (l[field] || 'Unknown') === v).length;
            return r.k.single ? (n ? h('a', { href: '#/licenses/console' }, String(n)) : h('span.zero', '0')) : countLink(r.key, field, v, n);
          },
        })),
        { label: 'Total', class: 'num', render: (r) => String(r.items.length) },
      ],
      rows,
    );
  const usedTypes = TYPES.filter((t) => all.some(({ lic }) => (lic.type || 'Unknown') === t));
  holder.append(
    h('div.grid-2',
      card('Licenses by status', h('div#by-status', matrix('status', STATUSES))),
      card('Licenses by type', h('div#by-type', matrix('type', usedTypes.length ? usedTypes : ['Subscription']))),
    ),
  );
  const link = (x) => x.k.single ? h('a', { href: '#/licenses/console' }, 'Console') : h('a', { href: `#/licenses/${x.key}/${x.lic[x.k.uid]}` }, shortUid(x.lic[x.k.uid]));
  holder.append(
    card(
      'Expiring in the next 30 days',
      h('div#expiring', table(
        [
          { label: 'Kind', render: (x) => x.k.title },
          { label: 'Server', render: link },
          { label: 'Company', render: (x) => x.lic.company || x.lic.licenseeCompany || '—' },
          { label: 'Type', render: (x) => x.lic.type || '—' },
          { label: 'Status', render: (x) => badge(x.lic.status) },
          { label: 'Expires', render: (x) => fmtDate(x.lic.expirationDate) },
        ],
        expiring.sort((x, y) => Date.parse(x.lic.expirationDate) - Date.parse(y.lic.expirationDate)),
        { empty: 'No license expires in the next 30 days.' },
      )),
    ),
    card(
      'Over the licensed amount',
      h('div#over-limit', table(
        [
          { label: 'Kind', render: (x) => x.k.title },
          { label: 'Server', render: link },
          { label: 'Company', render: (x) => x.lic.company || '—' },
          { label: 'Used', class: 'num', render: (x) => fmtNum(x.lic[x.k.used]) },
          { label: 'Licensed', class: 'num', render: (x) => fmtNum(x.lic[x.k.units]) },
          { label: 'Status', render: (x) => badge(x.lic.status) },
        ],
        over,
        { empty: 'Every license is within its licensed amount.' },
      )),
    ),
  );
}

// ---- license lists ------------------------------------------------------------------------

function columnsFor(key, k) {
  const cols = [
    { label: 'Server', sort: k.uid, render: (l) => h('a.mono', { href: `#/licenses/${key}/${l[k.uid]}` }, shortUid(l[k.uid])) },
    { label: 'Company', sort: 'company', render: (l) => l.company || '—' },
    { label: 'Type', sort: 'type', render: (l) => l.type || '—' },
    { label: 'Status', sort: 'status', render: (l) => badge(l.status) },
  ];
  if (key === 'vb365Servers') {
    cols.push({ label: 'Users (protected / licensed)', sort: 'protectedUsers', class: 'num', render: (l) => usageCell(k, l) });
  } else {
    cols.push({ label: 'Units (used / licensed)', sort: 'usedUnits', class: 'num', render: (l) => usageCell(k, l) });
  }
  cols.push(
    { label: 'Expires', sort: 'expirationDate', render: (l) => fmtDate(l.expirationDate) },
    { label: 'Auto-update', sort: 'autoUpdateEnabled', render: (l) => (l.autoUpdateEnabled ? 'On' : 'Off') },
  );
  return cols;
}

function usageCell(k, l) {
  const u = usage(k, l);
  return h('span', { class: u.over ? 'over' : '' }, `${fmtNum(l[k.used])} / ${fmtNum(l[k.units])}`);
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b));
}

async function licenses(ctx) {
  const key = ctx.parts[1];
  const k = KINDS[key];
  if (!k) throw new Error('There is no such license kind.');
  if (k.single) return consoleDetail(ctx);
  if (ctx.parts[2]) return licenseDetail(ctx, key, k, ctx.parts[2]);

  const p = ctx.params;
  const status = p.get('status') || '';
  const type = p.get('type') || '';
  const q = p.get('q') || '';
  const sort = p.get('sort') || '';
  const dir = p.get('dir') === 'desc' ? 'desc' : 'asc';
  const offset = Math.max(0, parseInt(p.get('offset') || '0', 10) || 0);
  const state = { status, type, q, sort, dir, offset };
  const nav = (changes) => ctx.go('/licenses/' + key, { ...state, offset: 0, ...changes });

  title(ctx, k.title + ' licenses');
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Company contains…', value: q });
  const controls = h(
    'form.toolbar',
    { on: { submit: (e) => { e.preventDefault(); nav({ q: search.value.trim() }); } } },
    select('status', 'Status', [['', 'All statuses'], ...STATUSES.map((x) => [x, x])], status, (v) => nav({ status: v })),
    select('type', 'Type', [['', 'All types'], ...TYPES.map((x) => [x, x])], type, (v) => nav({ type: v })),
    h('label.field.field-grow', h('span.field-label', 'Search'), search),
    h('button.btn', { type: 'submit' }, 'Search'),
    status || type || q ? h('button.btn.btn-ghost', { type: 'button', on: { click: () => ctx.go('/licenses/' + key) } }, 'Clear') : null,
  );
  const holder = h('div', loading());
  ctx.page.append(card(null, controls, holder));

  const filter = [];
  if (status) filter.push({ property: 'status', operation: 'equals', value: status });
  if (type) filter.push({ property: 'type', operation: 'equals', value: type });
  if (q) filter.push({ property: 'company', operation: 'contains', value: q, collation: 'ignorecase' });
  let items;
  let total;
  if (k.query) {
    const query = { limit: PAGE_SIZE, offset };
    if (filter.length) query.filter = filter;
    if (sort) query.sort = [{ property: sort, direction: dir === 'desc' ? 'descending' : 'ascending', collation: 'ignorecase' }];
    const page = await api.get(k.path, query);
    items = page.data || [];
    total = page.meta && page.meta.pagingInfo ? page.meta.pagingInfo.total : items.length;
  } else {
    // This collection takes no filter or paging parameters; narrow it here.
    let all = (await api.get(k.path)).data || [];
    all = all.filter((l) => (!status || l.status === status) && (!type || l.type === type) && (!q || String(l.company || '').toLowerCase().includes(q.toLowerCase())));
    if (sort) all.sort((a, b) => compare(a[sort], b[sort]) * (dir === 'desc' ? -1 : 1));
    total = all.length;
    items = all.slice(offset, offset + PAGE_SIZE);
  }
  if (!ctx.current()) return;
  clear(holder);
  holder.append(
    table(columnsFor(key, k), items, {
      sort,
      dir,
      onSort: (col) => nav({ sort: col, dir: sort === col && dir === 'asc' ? 'desc' : 'asc' }),
      empty: filter.length ? 'No license matches these filters.' : 'No licenses of this kind yet.',
    }),
    pager(total, offset, PAGE_SIZE, (o) => ctx.go('/licenses/' + key, { ...state, offset: o })),
  );
}

// ---- license detail -------------------------------------------------------------------------

function licenseFacts(lic, k) {
  const pairs = [
    ['Status', badge(lic.status)],
    ['Status message', lic.statusMessage],
    ['Type', lic.type],
    ['Edition', lic.edition],
    ['Packages', Array.isArray(lic.packages) ? lic.packages.join(', ') : lic.package],
    ['Company', lic.company || lic.licenseeCompany],
    ['Email', lic.email || lic.licenseeEmail],
    ['Contact', lic.contactPerson],
    ['Expires', fmtDateTime(lic.expirationDate)],
    ['Support expires', fmtDateTime(lic.supportExpirationDate)],
    ['License IDs', Array.isArray(lic.licenseIds) ? lic.licenseIds.join(', ') : lic.licenseId],
    ['Support IDs', Array.isArray(lic.supportIds) ? lic.supportIds.join(', ') : lic.supportId],
    ['Cloud Connect', lic.cloudConnect],
  ];
  if (k.units && lic[k.units] !== undefined) pairs.push([k.units === 'licensedUsers' ? 'Users (protected / licensed)' : `Units (used / licensed, ${lic.unitType || 'Points'})`, usageCell(k, lic)]);
  if (lic.sockets !== undefined && lic.sockets !== null) pairs.push(['Sockets (used / licensed)', `${fmtNum(lic.usedSockets)} / ${fmtNum(lic.sockets)}`]);
  if (lic.capacity !== undefined && lic.capacity !== null) pairs.push(['Capacity (used / licensed)', `${fmtNum(lic.usedCapacity)} / ${fmtNum(lic.capacity)}`]);
  if (Array.isArray(lic.sectionTypes)) pairs.push(['Sections', lic.sectionTypes.join(', ') || '—']);
  if (lic.instances !== undefined) pairs.push(['Instances', fmtNum(lic.instances)]);
  if (lic.lastUpdateStatus) pairs.push(['Last update', `${lic.lastUpdateStatus} ${lic.lastUpdateDate ? '(' + fmtDateTime(lic.lastUpdateDate) + ')' : ''} ${lic.lastUpdateMessage || ''}`.trim()]);
  return facts(pairs.filter(([, v]) => v !== undefined));
}

/** The install form: a file picker and a button that PUTs it as the `license` part. */
function installForm(path, onDone) {
  const file = h('input#license-file', { type: 'file', name: 'license', accept: '.lic,.txt,*/*', required: true });
  const submit = h('button.btn.btn-primary#install', { type: 'submit' }, 'Install license');
  return h(
    'form.action-row',
    {
      on: {
        submit: async (e) => {
          e.preventDefault();
          if (!file.files || !file.files[0]) return showError(new Error('Choose a license file first.'));
          const form = new FormData();
          form.append('license', file.files[0], file.files[0].name);
          await busy(submit, 'Installing…', async () => {
            const body = await api.request('PUT', path, { body: form, onPending: () => showInfo('Installing; the server is still working on it…') });
            onDone(body && body.data, 'License installed.');
          });
        },
      },
    },
    h('label.field.field-grow', h('span.field-label', 'License file'), file),
    submit,
  );
}

async function licenseDetail(ctx, key, k, uid) {
  const path = `${k.path}/${encodeURIComponent(uid)}`;
  const back = h('a.back', { href: '#/licenses/' + key }, '‹ ' + k.title);
  title(ctx, k.one, back);
  const holder = h('div', loading());
  ctx.page.append(holder);
  const lic = (await api.get(path)).data;
  if (!ctx.current()) return;
  const writable = ctx.session.access[k.access].write;
  const refresh = (fresh, message) => {
    ctx.go(`/licenses/${key}/${uid}`);
    if (message) setTimeout(() => showInfo(message), 0);
  };
  clear(holder);
  holder.append(card(null, h('div.detail-head', h('span.mono', uid), badge(lic.status)), licenseFacts(lic, k)));
  if (!writable) {
    holder.append(h('p.note#read-only-note', ctx.session.readOnly ? 'This session is read-only: licenses can be viewed but not changed.' : 'Your role can view these licenses but not change them.'));
    return;
  }
  const actions = [];
  actions.push(h('div.action', h('h3', 'Install a license file'), installForm(path, refresh)));
  if (k.patch) {
    const toggle = h('input#auto-update', { type: 'checkbox', checked: !!lic.autoUpdateEnabled, role: 'switch' });
    toggle.addEventListener('change', async () => {
      const want = toggle.checked;
      toggle.disabled = true;
      try {
        const body = await api.request('PATCH', path, { json: [{ op: 'replace', path: '/autoUpdateEnabled', value: want }] });
        const now = body && body.data ? !!body.data.autoUpdateEnabled : want;
        toggle.checked = now;
        showInfo(`Automatic update is ${now ? 'on' : 'off'}.`);
      } catch (e) {
        toggle.checked = !want;
        showError(e);
      } finally {
        toggle.disabled = false;
      }
    });
    actions.push(h('div.action', h('h3', 'Automatic update'), h('label.switch', toggle, h('span.switch-track'), h('span', 'Renew this license from the license portal automatically'))));
  }
  const update = h('button.btn#update', { type: 'button' }, 'Update now');
  update.addEventListener('click', () =>
    busy(update, 'Updating…', async () => {
      await api.request('POST', path + '/update', { onPending: () => showInfo('Updating; the server is still working on it…') });
      refresh(null, 'License updated from the license portal.');
    }),
  );
  actions.push(h('div.action', h('h3', 'Update'), h('p.muted', 'Ask the license portal for a newer file for this license ID.'), update));
  if (k.remove) {
    const section = k.remove === 'sections'
      ? h('select#delete-section', { name: 'sectionForDelete' }, [['All', 'Whole license'], ['Socket', 'Socket section'], ['Instance', 'Instance section']].map(([v, t]) => h('option', { value: v }, t)))
      : null;
    const del = h('button.btn.btn-danger#delete', { type: 'button' }, 'Delete license');
    del.addEventListener('click', async () => {
      const which = section ? section.value : 'All';
      const ok = await confirmDialog('Delete license', `Remove ${which === 'All' ? 'the whole license' : 'the ' + which.toLowerCase() + ' section'} from this server?`, 'Delete');
      if (!ok) return;
      await busy(del, 'Deleting…', async () => {
        await api.request('DELETE', path, { query: section ? { sectionForDelete: which } : {} });
        refresh(null, 'License removed.');
      });
    });
    actions.push(h('div.action', h('h3', 'Delete'), h('div.action-row', section ? h('label.field', h('span.field-label', 'Section'), section) : null, del)));
  }
  holder.append(card('Actions', h('div.actions#license-actions', actions)));
}

async function consoleDetail(ctx) {
  title(ctx, 'Console license');
  const holder = h('div', loading());
  ctx.page.append(holder);
  let lic = null;
  try {
    lic = (await api.get('/licensing/console')).data;
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  let settings = null;
  try {
    settings = (await api.get('/licensing/console/settings')).data;
  } catch {
    settings = null;
  }
  if (!ctx.current()) return;
  clear(holder);
  holder.append(card(null, lic ? licenseFacts(lic, KINDS.console) : h('p', 'No console license is installed.'), settings ? facts([['Automatic update', settings.isAutoUpdateEnabled ? 'On' : 'Off']]) : null));
  if (!ctx.session.access.console.write) {
    holder.append(h('p.note#read-only-note', 'This session cannot change the console license.'));
    return;
  }
  const update = h('button.btn#update', { type: 'button' }, 'Update now');
  update.addEventListener('click', () =>
    busy(update, 'Updating…', async () => {
      await api.request('POST', '/licensing/console/update', { onPending: () => showInfo('Updating…') });
      ctx.go('/licenses/console');
      setTimeout(() => showInfo('Console license updated.'), 0);
    }),
  );
  holder.append(
    card('Actions', h('div.actions#license-actions',
      h('div.action', h('h3', 'Install a license file'), installForm('/licensing/console', () => { ctx.go('/licenses/console'); setTimeout(() => showInfo('License installed.'), 0); })),
      lic ? h('div.action', h('h3', 'Update'), update) : null,
    )),
  );
}

// ---- reports --------------------------------------------------------------------------------

const monthOf = (r) => ((r.reportParameters && r.reportParameters.reportInterval && r.reportParameters.reportInterval.startOfInterval) || '').slice(0, 7);

/** Bar chart of points per month, drawn as inline SVG. */
export function pointsChart(series) {
  const width = 720;
  const height = 240;
  const pad = { left: 56, right: 16, top: 16, bottom: 36 };
  const max = Math.max(4, ...series.map((p) => p.value));
  const step = Math.pow(10, Math.floor(Math.log10(max)));
  const top = Math.ceil(max / step) * step;
  const digits = top / 4 < 10 ? 2 : 0;
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const slot = series.length ? innerW / series.length : innerW;
  const barW = Math.max(4, Math.min(48, slot * 0.6));
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'Points per month' });
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    svg.append(
      s('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'chart-grid' }),
      s('text', { x: pad.left - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'chart-label' }, fmtNum(v, digits)),
    );
  }
  series.forEach((p, i) => {
    const x = pad.left + slot * i + (slot - barW) / 2;
    const bar = s('rect', { x, y: y(p.value), width: barW, height: Math.max(0, pad.top + innerH - y(p.value)), rx: 3, class: 'chart-bar' + (p.status === 'Approved' ? '' : ' chart-bar-pending') });
    bar.append(s('title', {}, `${p.label}: ${fmtNum(p.value)} points (${p.status})`));
    svg.append(bar, s('text', { x: x + barW / 2, y: height - pad.bottom + 18, 'text-anchor': 'middle', class: 'chart-label' }, p.label));
  });
  if (!series.length) svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-label' }, 'No reports yet'));
  return svg;
}

async function downloadCsv(report, button) {
  const id = report.reportParameters.reportId;
  await busy(button, 'Downloading…', async () => {
    const response = await api.request('GET', `/licensing/reports/${id}/csv`, { raw: true });
    const blob = await response.blob();
    const disposition = response.headers.get('Content-Disposition') || '';
    const match = disposition.match(/filename="?([^";]+)"?/);
    const name = match ? match[1] : `license-report-${monthOf(report)}-id${id}.csv`;
    const href = URL.createObjectURL(blob);
    const link = h('a', { href, download: name, class: 'hidden' });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
  });
}

async function reports(ctx) {
  title(ctx, 'Monthly license usage reports');
  const holder = h('div', loading());
  ctx.page.append(holder);
  const [all, latest, settings] = await Promise.all([
    api.getAll('/licensing/reports'),
    api.get('/licensing/reports/latest', { limit: 500 }).then((r) => r.data || []),
    api.get('/licensing/reports/settings').then((r) => r.data).catch(() => null),
  ]);
  if (!ctx.current()) return;
  clear(holder);
  const writable = ctx.session.access.reports.write;

  const latestCards = latest.map((r) =>
    h('div.mini-card', h('div.mini-title', r.reportParameters.organizationName), h('div.mini-value', fmtNum(r.reportSummary.totalPoints)), h('div.mini-sub', `points in ${monthOf(r)} `, badge(r.reportStatus))),
  );
  const head = [];
  if (writable) {
    const finalize = h('button.btn.btn-primary#finalize', { type: 'button' }, 'Approve waiting reports');
    finalize.addEventListener('click', async () => {
      const ok = await confirmDialog('Approve reports', 'Finalize every report of yours that is waiting for approval? Approved reports never change again.', 'Approve', false);
      if (!ok) return;
      await busy(finalize, 'Approving…', async () => {
        const result = (await api.request('POST', '/licensing/reports/finalization', { onPending: () => showInfo('Approving…') })).data;
        ctx.go('/reports');
        setTimeout(() => flash(result.reportApprovalStatus === 'Finalized' || result.reportApprovalStatus === 'Approved' ? 'info' : 'warn', `${result.reportApprovalStatus}: ${result.message}`), 0);
      });
    });
    head.push(finalize);
  }
  if (settings) {
    const auto = h('input#auto-approve', { type: 'checkbox', checked: !!settings.autoApprove, disabled: !writable, role: 'switch' });
    auto.addEventListener('change', async () => {
      auto.disabled = true;
      try {
        const body = await api.request('PATCH', '/licensing/reports/settings', { json: [{ op: 'replace', path: '/autoApprove', value: auto.checked }] });
        auto.checked = !!body.data.autoApprove;
        showInfo(`New reports are ${auto.checked ? 'approved automatically' : 'kept for approval'}.`);
      } catch (e) {
        auto.checked = !auto.checked;
        showError(e);
      } finally {
        auto.disabled = false;
      }
    });
    head.push(h('label.switch', auto, h('span.switch-track'), h('span', 'Approve new reports automatically')));
  }
  holder.append(card('Latest report of each owner', h('div.action-row', head), h('div.mini-cards#latest-reports', latestCards.length ? latestCards : h('p.muted', 'No reports have been generated yet.'))));

  const owners = [...new Map(all.map((r) => [r.reportParameters.organizationUid, r.reportParameters.organizationName])).entries()];
  const chartBox = h('div.chart-box#points-chart');
  const drawChart = (owner) => {
    const points = all
      .filter((r) => r.reportParameters.organizationUid === owner)
      .map((r) => ({ label: monthOf(r), value: Number(r.reportSummary.totalPoints) || 0, status: r.reportStatus }))
      .sort((a, b) => a.label.localeCompare(b.label))
      .slice(-12);
    clear(chartBox).append(pointsChart(points));
  };
  const ownerSelect = owners.length > 1 ? select('owner', 'Report owner', owners, owners[0][0], drawChart) : null;
  const legend = h('div.legend', h('span', h('span.legend-swatch'), 'Approved'), h('span', h('span.legend-swatch.legend-pending'), 'Waiting for approval'));
  holder.append(card('Points per month', ownerSelect, chartBox, legend));
  drawChart(owners.length ? owners[0][0] : null);

  holder.append(
    card('All reports', h('div#reports-table', table(
      [
        { label: 'ID', class: 'num', render: (r) => String(r.reportParameters.reportId) },
        { label: 'Month', render: monthOf },
        { label: 'Owner', render: (r) => r.reportParameters.organizationName },
        { label: 'Status', render: (r) => badge(r.reportStatus) },
        { label: 'Points', class: 'num', render: (r) => fmtNum(r.reportSummary.totalPoints) },
        { label: 'Generated', render: (r) => fmtDateTime(r.reportParameters.generationDate) },
        {
          label: '',
          render: (r) => {
            const b = h('button.btn.btn-small', { type: 'button', dataset: { csv: String(r.reportParameters.reportId) } }, 'Download CSV');
            b.addEventListener('click', () => downloadCsv(r, b));
            return b;
          },
        },
      ],
      all,
      { empty: 'No reports yet. Reports are generated on the first day of each month.' },
    ))),
  );
}

// ---- live usage -----------------------------------------------------------------------------

async function orgNames(session) {
  const names = new Map([[session.organizationUid, session.organizationName]]);
  if (!session.access.organizations.read) return names;
  try {
    for (const o of await api.getAll('/organizations', { select: [{ propertyPath: 'instanceUid' }, { propertyPath: 'name' }] })) names.set(o.instanceUid, o.name);
  } catch {
    // Names are a convenience; UIDs are shown without them.
  }
  return names;
}

async function liveUsage(ctx) {
  title(ctx, 'Live usage by organization', h('p.page-sub', 'This month so far, from the latest usage sample of each server, in points (count × weight).'));
  const holder = h('div', loading());
  ctx.page.append(holder);
  const [orgs, names] = await Promise.all([api.getAll('/licensing/usage/organizations'), orgNames(ctx.session)]);
  if (!ctx.current()) return;
  clear(holder);
  const rows = [];
  for (const o of orgs) {
    for (const srv of o.servers || []) {
      for (const w of srv.workloads || []) rows.push({ o, srv, w });
    }
  }
  const totals = orgs.map((o) => ({
    o,
    points: (o.servers || []).flatMap((x) => x.workloads || []).reduce((sum, w) => sum + (Number(w.usedUnits) || 0), 0),
    count: (o.servers || []).flatMap((x) => x.workloads || []).reduce((sum, w) => sum + (Number(w.usedCount) || 0), 0),
  })).sort((a, b) => b.points - a.points);
  holder.append(
    card('Per organization', h('div#usage-orgs', table(
      [
        { label: 'Organization', render: (t) => names.get(t.o.organizationUid) || shortUid(t.o.organizationUid) },
        { label: 'Type', render: (t) => t.o.organizationType },
        { label: 'Servers', class: 'num', render: (t) => String((t.o.servers || []).length) },
        { label: 'Workloads', class: 'num', render: (t) => fmtNum(t.count, 0) },
        { label: 'Points', class: 'num', render: (t) => fmtNum(t.points) },
      ],
      totals,
      { empty: 'No usage has been reported this month.' },
    ))),
    card('Workloads', h('div#usage-workloads', table(
      [
        { label: 'Organization', render: (r) => names.get(r.o.organizationUid) || shortUid(r.o.organizationUid) },
        { label: 'Server', render: (r) => h('span', h('span.mono', shortUid(r.srv.serverUid)), ' ', h('span.muted', r.srv.serverType)) },
        { label: 'Workload', render: (r) => r.w.description },
        { label: 'Used', class: 'num', render: (r) => fmtNum(r.w.usedCount, 0) },
        { label: 'New', class: 'num', render: (r) => fmtNum(r.w.newCount, 0) },
        { label: 'Points', class: 'num', render: (r) => fmtNum(r.w.usedUnits) },
      ],
      rows,
      { empty: 'No usage has been reported this month.' },
    ))),
  );
}

// ---- organizations --------------------------------------------------------------------------

async function organizations(ctx) {
  const p = ctx.params;
  const type = p.get('type') || '';
  const q = p.get('q') || '';
  const sort = p.get('sort') || '';
  const dir = p.get('dir') === 'desc' ? 'desc' : 'asc';
  const offset = Math.max(0, parseInt(p.get('offset') || '0', 10) || 0);
  const state = { type, q, sort, dir, offset };
  const nav = (changes) => ctx.go('/organizations', { ...state, offset: 0, ...changes });
  title(ctx, 'Organizations');
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Name contains…', value: q });
  const controls = h(
    'form.toolbar',
    { on: { submit: (e) => { e.preventDefault(); nav({ q: search.value.trim() }); } } },
    select('type', 'Type', [['', 'All types'], ['Provider', 'Provider'], ['Reseller', 'Reseller'], ['Company', 'Company']], type, (v) => nav({ type: v })),
    h('label.field.field-grow', h('span.field-label', 'Search'), search),
    h('button.btn', { type: 'submit' }, 'Search'),
  );
  const holder = h('div', loading());
  ctx.page.append(card(null, controls, holder));
  const filter = [];
  if (type) filter.push({ property: 'type', operation: 'equals', value: type });
  if (q) filter.push({ property: 'name', operation: 'contains', value: q, collation: 'ignorecase' });
  const query = { limit: PAGE_SIZE, offset };
  if (filter.length) query.filter = filter;
  if (sort) query.sort = [{ property: sort, direction: dir === 'desc' ? 'descending' : 'ascending', collation: 'ignorecase' }];
  const page = await api.get('/organizations', query);
  if (!ctx.current()) return;
  clear(holder);
  holder.append(
    table(
      [
        { label: 'Name', sort: 'name', render: (o) => o.name },
        { label: 'Type', sort: 'type', render: (o) => o.type },
        { label: 'UID', sort: 'instanceUid', render: (o) => h('span.mono', o.instanceUid) },
      ],
      page.data || [],
      { sort, dir, onSort: (col) => nav({ sort: col, dir: sort === col && dir === 'asc' ? 'desc' : 'asc' }), empty: 'No organization matches.' },
    ),
    pager(page.meta.pagingInfo.total, offset, PAGE_SIZE, (o) => ctx.go('/organizations', { ...state, offset: o })),
  );
}

export const PAGES = {
  overview,
  licenses,
  reports,
  usage: liveUsage,
  organizations,
};
