// Small DOM helpers: elements are built with createElement and textContent only (never HTML
// strings), so nothing the API returns can become markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** h('div.card#id', {attrs, on: {click}}, ...children) */
export function h(spec, attrs, ...children) {
  const [, tag = 'div', rest = ''] = spec.match(/^([a-z0-9]*)(.*)$/i) || [];
  const el = document.createElement(tag || 'div');
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  apply(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element with attributes. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function apply(el, attrs) {
  if (!attrs || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    if (attrs !== undefined && attrs !== null) append(el, [attrs]);
    return;
  }
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === 'class') {
      for (const c of String(value).split(/\s+/).filter(Boolean)) el.classList.add(c);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== 'string') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const STATUS_CLASS = {
  Valid: 'ok',
  Approved: 'ok',
  Finalized: 'ok',
  Success: 'ok',
  Active: 'ok',
  Warning: 'warn',
  ApprovalRequired: 'warn',
  Finalization: 'warn',
  Expired: 'bad',
  Error: 'bad',
  Unlicensed: 'muted',
  NotInstalled: 'muted',
  Unknown: 'muted',
  NotApprovable: 'muted',
};

export function badge(text, kind) {
  const value = text === undefined || text === null || text === '' ? 'Unknown' : String(text);
  return h('span.badge', { class: 'badge-' + (kind || STATUS_CLASS[value] || 'neutral') }, value);
}

export function fmtDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().slice(0, 10);
}

export function fmtDateTime(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function fmtNum(value, digits = 2) {
  if (value === undefined || value === null || value === '') return '—';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return n.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function shortUid(uid) {
  return uid ? String(uid).slice(0, 8) : '—';
}

/** The message area at the top of the page. */
export function flash(kind, message) {
  const area = document.getElementById('flash');
  if (!area) return;
  clear(area);
  if (!message) return;
  const close = h('button.flash-close', { type: 'button', 'aria-label': 'Dismiss', on: { click: () => clear(area) } }, '×');
  area.append(h('div.flash', { class: 'flash-' + kind, role: kind === 'error' ? 'alert' : 'status' }, h('span.flash-text', message), close));
}

export const showError = (e) => flash('error', e && e.message ? e.message : String(e));
export const showInfo = (message) => flash('info', message);

/** A modal confirmation; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = 'Confirm', danger = true) {
  return new Promise((resolve) => {
    const dialog = h('dialog.modal', { 'aria-labelledby': 'modal-title' });
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.append(
      h('h2#modal-title', title),
      h('p', text),
      h(
        'div.modal-actions',
        h('button.btn', { type: 'button', on: { click: () => done(false) } }, 'Cancel'),
        h('button.btn', { type: 'button', class: danger ? 'btn-danger' : 'btn-primary', dataset: { action: 'confirm' }, on: { click: () => done(true) } }, confirmLabel),
      ),
    );
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Runs `action` with `button` disabled and a busy label; errors go to the message area. */
export async function busy(button, label, action) {
  const old = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await action();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    button.disabled = false;
    button.textContent = old;
  }
}

/** A table; columns: [{label, key?, sort?, render(row), class?}]. */
export function table(columns, rows, options = {}) {
  const head = h(
    'tr',
    columns.map((c) => {
      if (!c.sort || !options.onSort) return h('th', { class: c.class }, c.label);
      const active = options.sort === c.sort;
      const arrow = active ? (options.dir === 'desc' ? ' ▼' : ' ▲') : '';
      return h(
        'th',
        { class: [c.class, 'sortable', active ? 'sorted' : ''].filter(Boolean).join(' '), 'aria-sort': active ? (options.dir === 'desc' ? 'descending' : 'ascending') : 'none' },
        h('button.th-sort', { type: 'button', dataset: { sort: c.sort }, on: { click: () => options.onSort(c.sort) } }, c.label + arrow),
      );
    }),
  );
  const body = rows.length
    ? rows.map((row) => h('tr', columns.map((c) => h('td', { class: c.class }, c.render ? c.render(row) : fmtCell(row[c.key])))))
    : [h('tr.empty', h('td', { colSpan: columns.length }, options.empty || 'Nothing to show.'))];
  return h('div.table-wrap', h('table.data', h('thead', head), h('tbody', body)));
}

function fmtCell(value) {
  if (value === undefined || value === null || value === '') return '—';
  if (Array.isArray(value)) return value.join(', ') || '—';
  return String(value);
}

/** Paging controls for a page of `count` items at `offset` out of `total`. */
export function pager(total, offset, limit, go) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return h(
    'div.pager',
    h('span.pager-info', `${first}–${last} of ${total}`),
    h('button.btn.btn-small', { type: 'button', disabled: offset <= 0, dataset: { page: 'prev' }, on: { click: () => go(Math.max(0, offset - limit)) } }, '‹ Previous'),
    h('button.btn.btn-small', { type: 'button', disabled: offset + limit >= total, dataset: { page: 'next' }, on: { click: () => go(offset + limit) } }, 'Next ›'),
  );
}

export function select(name, label, options, value, onChange) {
  return h(
    'label.field',
    h('span.field-label', label),
    h(
      'select',
      { name, on: { change: (e) => onChange(e.target.value) } },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
    ),
  );
}

export function card(title, ...body) {
  return h('section.card', title ? h('h2.card-title', title) : null, ...body);
}

export function loading() {
  return h('div.loading', { role: 'status' }, 'Loading…');
}

/** Definition list of [label, value] pairs. */
export function facts(pairs) {
  return h(
    'dl.facts',
    pairs.map(([label, value]) => [h('dt', label), h('dd', value === undefined || value === null || value === '' ? '—' : value)]),
  );
}
