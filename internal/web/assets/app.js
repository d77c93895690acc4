// autoheal dashboard: a hash router over the JSON API under /v1/, live
// through one EventSource on /v1/events?follow=true. Plain DOM: every
// value from the API goes in through textContent or an attribute, never
// as markup.

import { lineChart, formatNumber, formatSeconds } from './chart.js';

// ---------------------------------------------------------------- helpers

// h builds an element: h('a', {href: '#/'}, 'text', child...). Attributes
// starting with "on" are listeners; false, null and undefined are skipped.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
}

// ApiError carries the API's message and status.
class ApiError extends Error {
  constructor(status, message, code, tokenFile) {
    super(message);
    this.status = status;
    this.code = code;
    this.tokenFile = tokenFile || '';
  }
}

// api calls the JSON API on this origin. Credentials are sent so that an
// auth cookie works once there is one.
async function api(path, { method = 'GET', body } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    throw new ApiError(res.status, (data && data.error) || `${method} ${path}: ${res.status} ${res.statusText}`, data && data.code, data && data.token_file);
  }
  return data;
}

// optional fetches what a controller may not have enabled (incidents,
// runbooks, metrics, load balancers): a 404 is "none", not an error.
async function optional(path, empty = null) {
  try {
    return await api(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return empty;
    throw err;
  }
}

const enc = encodeURIComponent;

function time(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '–';
  return h('time', { datetime: d.toISOString(), title: d.toLocaleString() }, ago(d));
}

function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < -5) return d.toLocaleString();
  if (s < 60) return `${Math.max(s, 0)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return d.toLocaleString();
}

function clock(ts) {
  const d = new Date(ts);
  return h('time', { datetime: d.toISOString(), title: d.toLocaleString() },
    d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }));
}

function duration(sec) {
  if (!Number.isFinite(sec)) return '–';
  if (sec < 1) return `${Math.round(sec * 1000)} ms`;
  if (sec < 60) return `${sec.toFixed(1)} s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${Math.round(sec % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

// badge shows a state word with a class per state, so colour is never the
// only carrier: the word is always there.
function badge(state, extra = {}) {
  const s = String(state || 'unknown');
  return h('span', { class: `badge st-${s.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, ...extra }, s);
}

// table builds a table with a caption and column headers; rows are arrays
// of cells (or {cells, attrs}).
function table(caption, headers, rows, empty = 'None.', attrs = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('caption', { class: caption.startsWith('!') ? 'visually-hidden' : '' }, caption.replace(/^!/, '')),
      h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => {
        const { cells, attrs: ra = {} } = Array.isArray(r) ? { cells: r } : r;
        return h('tr', ra, cells.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', {}, c))));
      }))));
}

function section(title, id, ...children) {
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

function dl(pairs) {
  // A div per pair (allowed in a dl) keeps each term over its value in the grid.
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v ?? '–'))));
}

function pre(text, label) {
  return h('pre', { tabindex: 0, 'aria-label': label || 'output' }, text);
}

// ---------------------------------------------------------------- toast

let toastTimer;
function toast(message, kind = 'ok') {
  const t = document.getElementById('toast');
  t.textContent = message;
  t.dataset.kind = kind;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), kind === 'error' ? 10000 : 5000);
}

// ---------------------------------------------------------------- confirmation

// confirmAction opens the confirmation dialog. The dialog is modal
// (showModal traps focus and Escape cancels it); focus starts on Cancel so
// that a stray Enter does nothing harmful, and returns to the control that
// opened it. It resolves to true only for the confirm button.
function confirmAction({ title, body = [], ok = 'Confirm' }) {
  const dlg = document.getElementById('confirm');
  const opener = document.activeElement;
  document.getElementById('confirm-title').textContent = title;
  const b = document.getElementById('confirm-body');
  b.replaceChildren();
  append(b, [body]);
  document.getElementById('confirm-ok').textContent = ok;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (opener && opener.isConnected) opener.focus();
      else focusMain();
      resolve(dlg.returnValue === 'ok');
    }, { once: true });
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

// act confirms, then runs the request and refreshes the page.
async function act(confirmOpts, run, done) {
  if (!(await confirmAction(confirmOpts))) return;
  try {
    const out = await run();
    toast(typeof done === 'function' ? done(out) : done);
  } catch (err) {
    toast(`Failed: ${err.message}`, 'error');
  }
  refreshSoon(0);
}

// ---------------------------------------------------------------- pages

const ACTIVE_EXEC = new Set(['Pending', 'InProgress', 'Waiting']);

async function overviewPage() {
  const [status, tgs, alarms, incidents, executions] = await Promise.all([
    api('/v1/status'),
    optional('/v1/target-groups', []),
    optional('/v1/alarms', []),
    optional('/v1/incidents?limit=50', null),
    optional('/v1/executions?limit=50', null),
  ]);
  const groups = status.groups || [];
  const inAlarm = (alarms || []).filter((a) => a.state === 'ALARM');
  const open = (incidents || []).filter((i) => i.status !== 'resolved');
  const running = (executions || []).filter((e) => ACTIVE_EXEC.has(e.status));

  const state = status.state;
  return [
    h('h1', { tabindex: -1 }, 'Overview'),
    state && !state.writable ? h('p', { class: 'error', role: 'alert', 'data-testid': 'state-degraded' },
      `State dir ${state.dir} takes no writes (${state.error}) since ${state.since ? new Date(state.since).toLocaleString() : '?'}: `
      + 'groups hold still (no launch, heal or termination); instances keep running and are served.') : null,
    h('ul', { class: 'summary', 'aria-label': 'Summary' },
      h('li', {}, h('strong', {}, groups.length), ' groups, ', h('strong', {}, groups.filter((g) => g.status === 'Impaired').length), ' impaired'),
      h('li', {}, h('strong', {}, inAlarm.length), ' alarms in ALARM'),
      h('li', {}, h('strong', {}, incidents ? open.length : '–'), ' open incidents'),
      h('li', {}, h('strong', {}, executions ? running.length : '–'), ' running executions')),
    section('Groups', 'groups-h', table('!Groups', ['Group', 'Status', 'Desired (min–max)', 'In service / live', 'Healthy'],
      groups.map((g) => {
        const live = (g.instances || []).filter((i) => i.state !== 'Terminated');
        const inService = live.filter((i) => i.state === 'InService').length;
        const healthy = live.filter((i) => i.health === 'healthy').length;
        return {
          attrs: { 'data-testid': 'group-row', 'data-group': g.name },
          cells: [
            h('a', { href: `#/groups/${enc(g.name)}` }, g.name),
            [badge(g.status, { 'data-testid': 'group-status' }), g.reason ? h('span', { class: 'reason' }, ` ${g.reason}`) : null],
            `${g.desired} (${g.min}–${g.max})`,
            `${inService} / ${live.length}`,
            `${healthy} of ${live.length}`,
          ],
        };
      }), 'No groups are configured.')),
    section('Load balancers', 'lbs-h', table('!Target groups', ['Target group', 'Protocol', 'Healthy', 'Unhealthy', 'Requests', 'Target 5xx'],
      (tgs || []).map((t) => ({
        attrs: { 'data-testid': 'lb-row', 'data-lb': t.name },
        cells: [
          h('a', { href: `#/lb/${enc(t.name)}` }, t.name), t.protocol,
          h('span', { 'data-testid': 'lb-healthy' }, t.metrics.HealthyHostCount),
          h('span', { 'data-testid': 'lb-unhealthy', class: t.metrics.UnHealthyHostCount ? 'bad' : '' }, t.metrics.UnHealthyHostCount),
          t.metrics.RequestCount, t.metrics.HTTPCode_Target_5XX_Count,
        ],
      })), 'No load balancers are configured.')),
    section('Alarms in ALARM', 'alarms-h',
      table('!Alarms in ALARM', ['Alarm', 'Metric', 'Reason', 'Since'], inAlarm.map(alarmRow), 'No alarm is in ALARM.'),
      alarms && alarms.length ? h('details', {}, h('summary', {}, `All alarms (${alarms.length})`),
        table('!All alarms', ['Alarm', 'State', 'Metric', 'Since'], alarms.map((a) => ({
          attrs: { 'data-testid': 'all-alarm-row', 'data-key': a.key },
          cells: [h('a', { href: `#/alarms/${enc(a.key)}` }, a.key), badge(a.state), `${a.namespace} ${a.metric}`, time(a.since)],
        })))) : null),
    section('Open incidents', 'incidents-h', incidents === null ? h('p', { class: 'empty' }, 'Incidents are not enabled in this controller.')
      : [table('!Open incidents', ['Incident', 'Status', 'Alarm', 'Group / instance', 'Attempts', 'Opened'], open.map(incidentRow), 'No open incident.'),
        incidents.length > open.length ? h('details', {}, h('summary', {}, `Recent incidents (${incidents.length})`),
          table('!Recent incidents', ['Incident', 'Status', 'Alarm', 'Group / instance', 'Attempts', 'Opened'], incidents.map(incidentRow))) : null]),
    section('Running executions', 'executions-h', executions === null ? h('p', { class: 'empty' }, 'Runbooks are not enabled in this controller.')
      : [table('!Running executions', ['Execution', 'Document', 'Status', 'Current step', 'Started'], running.map(executionRow), 'No execution is running.'),
        executions.length > running.length ? h('details', {}, h('summary', {}, `Recent executions (${executions.length})`),
          table('!Recent executions', ['Execution', 'Document', 'Status', 'Current step', 'Started'], executions.map(executionRow))) : null,
        h('p', {}, h('a', { href: '#/run', class: 'button' }, 'Run a document…'))]),
  ];
}

function alarmRow(a) {
  return {
    attrs: { 'data-testid': 'alarm-row', 'data-key': a.key },
    cells: [h('a', { href: `#/alarms/${enc(a.key)}` }, a.key), `${a.namespace} ${a.metric} ${a.statistic} ${a.comparison} ${formatNumber(a.threshold)}`, a.reason, time(a.since)],
  };
}

function incidentRow(i) {
  return {
    attrs: { 'data-testid': 'incident-row', 'data-id': i.id, 'data-source': i.trigger?.source || '' },
    cells: [h('a', { href: `#/incidents/${enc(i.id)}` }, i.id), badge(i.status), i.trigger?.alarm || i.trigger?.key || '–',
      [i.group ? h('a', { href: `#/groups/${enc(i.group)}` }, i.group) : '–', i.instance ? ` / ${i.instance}` : ''], i.attempts, time(i.opened_at)],
  };
}

function executionRow(e) {
  return {
    attrs: { 'data-testid': 'execution-row', 'data-id': e.id },
    cells: [h('a', { href: `#/executions/${enc(e.id)}` }, e.id), e.document, badge(e.status), e.current_step || '–', time(e.started_at)],
  };
}

// healthOf reads the result from an instance.health message:
// "<type> check <healthy|unhealthy> after N in a row: output".
function healthOf(ev) {
  const m = /check (\w+)/.exec(ev.message || '');
  return m ? m[1] : 'unknown';
}

// refreshControls is a group's instance refresh: the last one's status,
// and a form to start one (or a button to cancel the one in progress).
function refreshControls(g, r) {
  const running = r && r.status === 'InProgress';
  const status = r && r.status
    ? h('p', { 'data-testid': 'refresh-status' }, badge(r.status), ` ${(r.replaced || []).length} of ${r.to_replace} replaced, started ${time(r.started_at)}`,
      r.waiting ? `; waiting for ${r.waiting}` : '', r.reason ? `; ${r.reason}` : '')
    : h('p', { 'data-testid': 'refresh-status' }, 'No refresh yet.');
  if (running) {
    const cancel = h('button', { type: 'button', class: 'danger', 'data-testid': 'refresh-cancel-button' }, 'Cancel refresh…');
    cancel.addEventListener('click', () => act({ title: `Cancel the refresh of ${g.name}?`, body: h('p', {}, 'Instances being replaced finish; no other is replaced.'), ok: 'Cancel refresh' },
      () => api(`/v1/groups/${enc(g.name)}/refresh/cancel`, { method: 'POST' }), `${g.name}: refresh cancelled.`));
    return section('Instance refresh', 'refresh-h', status, cancel);
  }
  const pct = h('input', { type: 'number', id: 'refresh-min-healthy', min: 0, max: 100, value: 90, required: true, 'data-testid': 'refresh-min-healthy' });
  const form = h('form', { class: 'inline-form', 'data-testid': 'refresh-form', 'aria-label': 'Refresh the instances' },
    h('label', { for: 'refresh-min-healthy' }, 'Minimum healthy %'), pct,
    h('button', { type: 'submit', 'data-testid': 'refresh-button' }, 'Refresh instances…'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const min = Number(pct.value);
    if (!Number.isInteger(min) || min < 0 || min > 100) {
      toast('Minimum healthy percentage must be a whole number from 0 to 100.', 'error');
      pct.focus();
      return;
    }
    act({ title: `Refresh ${g.name}?`, body: h('p', {}, `Replace every instance of ${g.name}, one at a time, keeping ${min}% of ${g.desired} healthy; each is drained first.`), ok: 'Refresh' },
      () => api(`/v1/groups/${enc(g.name)}/refresh`, { method: 'POST', body: { min_healthy_percentage: min } }),
      `${g.name}: refresh started.`);
  });
  return section('Instance refresh', 'refresh-h', status, form);
}

async function groupPage(name) {
  const [g, events, refresh] = await Promise.all([
    api(`/v1/groups/${enc(name)}`),
    api(`/v1/events?group=${enc(name)}&limit=300`),
    api(`/v1/groups/${enc(name)}/refresh`),
  ]);
  const evs = (events || []).slice().reverse(); // newest first
  const history = new Map();
  for (const ev of events || []) {
    if (ev.type !== 'instance.health' || !ev.instance) continue;
    if (!history.has(ev.instance)) history.set(ev.instance, []);
    history.get(ev.instance).push(ev);
  }
  const instances = (g.instances || []).slice().sort((a, b) => (a.state === 'Terminated') - (b.state === 'Terminated') || a.id.localeCompare(b.id));

  const input = h('input', { type: 'number', id: 'scale-desired', name: 'desired', min: g.min, max: g.max, value: g.desired, required: true, 'data-testid': 'scale-input' });
  const scaleForm = h('form', { class: 'inline-form', 'data-testid': 'scale-form', 'aria-label': 'Scale the group' },
    h('label', { for: 'scale-desired' }, 'Desired capacity'), input,
    h('span', { class: 'hint' }, `between ${g.min} and ${g.max}`),
    h('button', { type: 'submit', id: 'scale-button', 'data-testid': 'scale-button' }, 'Scale…'));
  scaleForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const desired = Number(input.value);
    if (!Number.isInteger(desired) || desired < g.min || desired > g.max) {
      toast(`Desired capacity must be a whole number from ${g.min} to ${g.max}.`, 'error');
      input.focus();
      return;
    }
    act({ title: `Scale ${g.name}?`, body: h('p', {}, `Set the desired capacity of ${g.name} from ${g.desired} to ${desired}.`), ok: 'Scale' },
      () => api(`/v1/groups/${enc(g.name)}/scale`, { method: 'POST', body: { desired } }),
      `${g.name}: desired capacity set to ${desired}.`);
  });

  const terminate = (inst) => {
    const dec = h('input', { type: 'checkbox', id: 'terminate-decrement', 'data-testid': 'terminate-decrement' });
    act({
      title: `Terminate ${inst.id}?`,
      body: [h('p', {}, `The instance's application is stopped and ${g.name} replaces it unless the desired capacity is lowered.`),
        h('p', {}, dec, ' ', h('label', { for: 'terminate-decrement' }, 'Lower the desired capacity instead of replacing it'))],
      ok: 'Terminate',
    }, () => api(`/v1/instances/${enc(inst.id)}/terminate`, { method: 'POST', body: { decrement: dec.checked } }),
    `${inst.id}: terminating.`);
  };

  const placed = instances.some((i) => i.host);
  const refreshSection = refreshControls(g, refresh);
  return [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › group'),
    h('h1', { tabindex: -1 }, `Group ${g.name} `, badge(g.status, { 'data-testid': 'group-status' })),
    g.reason ? h('p', { class: 'reason', role: 'note' }, g.reason) : null,
    dl([['Desired', g.desired], ['Min', g.min], ['Max', g.max],
      ['Live', (g.instances || []).filter((i) => i.state !== 'Terminated').length]]),
    scaleForm,
    section('Instances', 'instances-h', table('!Instances', ['Instance', 'State', 'Health', 'Health history (oldest to newest)', 'Pid', 'Restarts', 'Launched', 'Cause', ...(placed ? ['Host'] : []), 'Actions'],
      instances.map((i) => ({
        attrs: { 'data-testid': 'instance-row', 'data-id': i.id, 'data-state': i.state },
        cells: [i.id, badge(i.state, { 'data-testid': 'instance-state' }), badge(i.health, { 'data-testid': 'instance-health' }),
          healthHistory(history.get(i.id) || []), i.pid || '–', i.restarts, time(i.launched_at), h('span', { class: 'cause' }, i.cause || ''),
          // The cluster host of a placed instance (the others run on the leader's).
          ...(placed ? [i.host || '(leader)'] : []),
          i.state === 'Terminated' || i.state.startsWith('Terminating') ? '–'
            : h('button', { type: 'button', class: 'danger small', id: `terminate-${i.id}`, 'data-testid': 'terminate-button', 'data-id': i.id,
              'aria-label': `Terminate ${i.id}`, onclick: () => terminate(i) }, 'Terminate…')],
      })), 'No instances.')),
    refreshSection,
    section('Volumes and addresses', 'attachments-h',
      table('!Attachments', ['Name', 'Kind', 'Holder', 'Fencing token', 'Updated'], (g.attachments || []).map((a) => ({
        attrs: { 'data-testid': 'attachment-row', 'data-kind': a.kind, 'data-name': a.name },
        cells: [a.name, a.kind, a.holder || h('em', {}, 'detached'), h('span', { 'data-testid': 'fencing-token' }, a.token), time(a.updated_at)],
      })), 'No volumes or addresses.'),
      (g.addresses || []).length ? table('Addresses', ['Address', 'Listen', 'Mode', 'Holder'],
        g.addresses.map((a) => ({ attrs: { 'data-testid': 'address-row' }, cells: [a.name, a.listen, a.mode, a.holder || h('em', {}, 'none')] }))) : null),
    section('Recent events', 'events-h', eventsTable(evs.slice(0, 100))),
  ];
}

function healthHistory(evs) {
  if (!evs.length) return h('span', { class: 'muted' }, 'no changes');
  const last = evs.slice(-12);
  return h('ol', { class: 'history', 'data-testid': 'health-history' }, last.map((ev) => {
    const st = healthOf(ev);
    const when = new Date(ev.time);
    return h('li', { class: `h-${st}`, title: `${when.toLocaleString()}: ${ev.message}` },
      h('span', { class: 'visually-hidden' }, `${st} at ${when.toLocaleTimeString()}`));
  }));
}

function eventsTable(evs) {
  return table('!Events, newest first', ['Time', 'Type', 'Instance', 'Message'], evs.map((ev) => ({
    attrs: { 'data-testid': 'event-row', 'data-seq': ev.seq },
    cells: [clock(ev.time), ev.type, ev.instance || '', h('span', { class: 'message' }, ev.message)],
  })), 'No events.');
}

// ---- load balancer

// lbSamples keeps client-side samples of each target group's counters, so
// that rates (requests, 5xx) and the response time per interval can be
// drawn from the cumulative counters the API gives. Kept across pages,
// bounded to 15 minutes.
const lbSamples = new Map();
const WINDOW_MS = 15 * 60 * 1000;

function sampleLB(name, hlth) {
  const m = hlth.metrics || {};
  const buckets = m.TargetResponseTimeBuckets || [];
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  const s = {
    t: Date.now(), req: m.RequestCount || 0,
    e5: (m.HTTPCode_Target_5XX_Count || 0) + (m.HTTPCode_ELB_5XX_Count || 0),
    rsum: m.TargetResponseTimeSum || 0, rcount: total,
  };
  const list = lbSamples.get(name) || [];
  const prev = list[list.length - 1];
  if (!prev || s.t - prev.t >= 1000) list.push(s);
  while (list.length && list[0].t < s.t - WINDOW_MS) list.shift();
  lbSamples.set(name, list);
  return list;
}

function rates(list) {
  const req = [], e5 = [], rt = [];
  for (let i = 1; i < list.length; i++) {
    const a = list[i - 1], b = list[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0 || b.req < a.req) continue; // a counter reset: the controller restarted
    req.push({ t: b.t, v: (b.req - a.req) / dt });
    e5.push({ t: b.t, v: Math.max(0, b.e5 - a.e5) / dt });
    const n = b.rcount - a.rcount;
    if (n > 0) rt.push({ t: b.t, v: (b.rsum - a.rsum) / n });
  }
  return { req, e5, rt };
}

async function lbPage(name) {
  const [hlth, healthy, unhealthy] = await Promise.all([
    api(`/v1/target-groups/${enc(name)}/health`),
    metricSeries('Autoheal/LoadBalancer', 'HealthyHostCount', { TargetGroup: name }, 'Average', 30),
    metricSeries('Autoheal/LoadBalancer', 'UnHealthyHostCount', { TargetGroup: name }, 'Average', 30),
  ]);
  const list = sampleLB(name, hlth);
  const r = rates(list);
  const m = hlth.metrics || {};
  const now = Date.now(), start = now - WINDOW_MS;
  const since = list.length ? list[0].t : now;
  // Sampled charts start where sampling did (at least two minutes shown).
  const sStart = Math.max(start, Math.min(since, now - 120000));
  const note = h('p', { class: 'hint' }, `Rates are sampled by this page every ${LB_SAMPLE_MS / 1000} s since ${new Date(since).toLocaleTimeString()}; they fill in while it stays open.`);
  return [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › load balancer'),
    h('h1', { tabindex: -1 }, `Target group ${hlth.name}`),
    dl([['Protocol', hlth.protocol], ['Algorithm', hlth.algorithm],
      ['Healthy', h('span', { 'data-testid': 'lb-healthy' }, m.HealthyHostCount)],
      ['Unhealthy', h('span', { 'data-testid': 'lb-unhealthy' }, m.UnHealthyHostCount)],
      ['Requests', m.RequestCount], ['Target 5xx', m.HTTPCode_Target_5XX_Count], ['Balancer 5xx', m.HTTPCode_ELB_5XX_Count],
      ['Retries', m.RetryCount], ['Mean response time', formatSeconds(m.TargetResponseTime)]]),
    section('Targets', 'targets-h', table('!Targets', ['Target', 'Address', 'Group', 'State', 'Reason', 'Since', 'Weight', 'In flight'],
      (hlth.targets || []).map((t) => ({
        attrs: { 'data-testid': 'target-row', 'data-id': t.id, 'data-state': t.state },
        cells: [t.id, t.address, t.group ? h('a', { href: `#/groups/${enc(t.group)}` }, t.group) : '–',
          badge(t.state, { 'data-testid': 'target-state' }), t.reason || '', time(t.since), t.weight, t.in_flight],
      })), 'No targets.')),
    section('Charts', 'charts-h', note,
      h('div', { class: 'charts' },
        figure('Request rate (requests/s)', 'chart-requests', lineChart({ title: 'Request rate, requests per second', start: sStart, end: now, series: [{ name: 'requests/s', points: r.req, cls: 'a' }] })),
        figure('5xx rate (responses/s, target and balancer)', 'chart-5xx', lineChart({ title: '5xx responses per second', start: sStart, end: now, series: [{ name: '5xx/s', points: r.e5, cls: 'bad' }] })),
        figure('Response time (mean per interval)', 'chart-response-time', lineChart({ title: 'Mean target response time', start: sStart, end: now, format: formatSeconds, series: [{ name: 'response time', points: r.rt, cls: 'b' }] })),
        healthy || unhealthy ? figure('Healthy and unhealthy hosts (metrics store, 30 s periods)', 'chart-hosts', lineChart({
          title: 'Healthy and unhealthy host counts', start, end: now,
          series: [{ name: 'healthy', points: healthy || [], cls: 'a' }, { name: 'unhealthy', points: unhealthy || [], cls: 'bad' }],
        }), [['a', 'healthy'], ['bad', 'unhealthy']]) : null)),
  ];
}

function figure(caption, testid, svg, legend) {
  return h('figure', { class: 'chart-box', 'data-testid': testid }, svg,
    h('figcaption', {}, caption, legend ? h('span', { class: 'legend' }, legend.map(([cls, label]) => h('span', { class: `key key-${cls}` }, label))) : null));
}

// metricSeries reads one statistic over the last 15 minutes; null when
// the controller keeps no metrics.
async function metricSeries(namespace, metric, dims, stat, period) {
  const q = new URLSearchParams({ Namespace: namespace, MetricName: metric, Statistics: stat, Period: String(period), StartTime: '-15m' });
  for (const [k, v] of Object.entries(dims || {})) q.append('Dimension', `${k}=${v}`);
  const res = await optional(`/v1/metrics/statistics?${q}`, null);
  if (!res) return null;
  return (res.Datapoints || []).map((dp) => ({
    t: new Date(dp.Timestamp).getTime(),
    v: dp[stat] ?? dp.ExtendedStatistics?.[stat],
  })).filter((p) => Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
}

// ---- alarm

async function alarmPage(key) {
  const [alarms, events] = await Promise.all([api('/v1/alarms'), api('/v1/events?limit=2000')]);
  const a = (alarms || []).find((x) => x.key === key);
  if (!a) throw new ApiError(404, `No alarm with key ${key}.`);
  const now = Date.now(), start = now - WINDOW_MS;
  const period = a.period || '60';
  let points = [], chartNote = null;
  if (a.namespace && a.metric) {
    try {
      points = (await metricSeries(a.namespace, a.metric, a.dimensions, a.statistic, period)) || [];
    } catch (err) {
      chartNote = h('p', { class: 'error', role: 'alert' }, `Metric: ${err.message}`);
    }
  } else {
    chartNote = h('p', { class: 'hint' }, 'This alarm has no metric in the store (an Alertmanager alert); the chart shows its states only.');
  }
  const trans = (events || []).filter((ev) => ev.type === 'alarm.state' && ev.data && ev.data.key === key)
    .map((ev) => ({ t: new Date(ev.time).getTime(), from: ev.data.from, to: ev.data.to, message: ev.message }))
    .sort((x, y) => x.t - y.t);
  return [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › alarm'),
    h('h1', { tabindex: -1 }, `Alarm ${a.key} `, badge(a.state, { 'data-testid': 'alarm-state' })),
    h('p', { class: 'reason' }, a.reason),
    dl([['Alarm', a.name], ['Metric', `${a.namespace} ${a.metric}`], ['Dimensions', Object.entries(a.dimensions || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '–'],
      ['Condition', `${a.statistic} ${a.comparison} ${formatNumber(a.threshold)}`], ['Period', a.period],
      ['Datapoints to alarm', `${a.datapoints_to_alarm} of ${a.evaluation_periods}`], ['Since', time(a.since)], ['Last evaluated', time(a.evaluated)]]),
    section('Last 15 minutes', 'alarm-chart-h', chartNote,
      figure(`${a.metric} (${a.statistic} per ${a.period}), threshold and alarm states`, 'alarm-chart', lineChart({
        title: `${a.metric} ${a.statistic} with threshold ${formatNumber(a.threshold)}`, start, end: now, threshold: a.threshold, width: 1000, height: 240,
        bands: stateBands(a, trans, start, now), series: [{ name: a.statistic, points, cls: 'a' }],
      }), [['a', a.statistic], ['threshold', 'threshold'], ['ok', 'OK'], ['alarm', 'ALARM'], ['insufficient', 'INSUFFICIENT_DATA']])),
    section('State changes', 'alarm-trans-h', table('!State changes, newest first', ['Time', 'From', 'To', 'Message'],
      trans.slice().reverse().map((t) => ({ attrs: { 'data-testid': 'alarm-transition-row' }, cells: [clock(t.t), badge(t.from), badge(t.to), t.message] })),
      'No state change in the recent journal.')),
  ];
}

// stateBands turns transitions into [from, to) bands over the window. The
// state before the first transition seen is that transition's "from", or
// the alarm's current state when none was seen.
function stateBands(a, trans, start, end) {
  const bands = [];
  let state = a.state, at = start;
  const before = trans.filter((t) => t.t <= start);
  const inside = trans.filter((t) => t.t > start);
  if (before.length) state = before[before.length - 1].to;
  else if (inside.length) state = inside[0].from;
  for (const t of inside) {
    bands.push({ from: at, to: t.t, state: bandClass(state) });
    state = t.to;
    at = t.t;
  }
  bands.push({ from: at, to: end, state: bandClass(state) });
  return bands;
}

function bandClass(state) {
  return state === 'ALARM' ? 'alarm' : state === 'OK' ? 'ok' : 'insufficient';
}

// ---- incident

async function incidentPage(id) {
  const inc = await api(`/v1/incidents/${enc(id)}`);
  const opened = new Date(inc.opened_at).getTime();
  const instEvents = inc.instance ? await optional(`/v1/events?instance=${enc(inc.instance)}&limit=500`, []) : [];
  const end = inc.resolved_at ? new Date(inc.resolved_at).getTime() + 60000 : Infinity;
  const related = (instEvents || []).filter((ev) => {
    const t = new Date(ev.time).getTime();
    return t >= opened - 60000 && t <= end;
  });
  const outcome = inc.status === 'resolved' ? 'recovered' : inc.status === 'escalated' ? 'escalated to people' : 'remediation under way';
  return [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › incident'),
    h('h1', { tabindex: -1 }, `Incident ${inc.id} `, badge(inc.status, { 'data-testid': 'incident-status' })),
    inc.trigger?.reason ? h('p', { class: 'reason' }, inc.trigger.reason) : null,
    dl([['Outcome', h('span', { 'data-testid': 'incident-outcome' }, outcome)],
      ['Time to recover', h('span', { 'data-testid': 'time-to-recover' }, inc.time_to_recover_seconds ? duration(inc.time_to_recover_seconds) : inc.resolved_at ? '–' : `open for ${duration((Date.now() - opened) / 1000)}`)],
      ['Trigger', [inc.trigger?.source || '', ' ', inc.trigger?.key ? h('a', { href: `#/alarms/${enc(inc.trigger.key)}` }, inc.trigger.key) : (inc.trigger?.alarm || '')]],
      ['Group', inc.group ? h('a', { href: `#/groups/${enc(inc.group)}` }, inc.group) : '–'], ['Instance', inc.instance || '–'],
      ['Runbook', inc.runbook || '–'], ['Attempts', inc.attempts], ['Opened', time(inc.opened_at)], ['Resolved', time(inc.resolved_at)],
      ['Notified', (inc.notified || []).join(', ') || '–']]),
    section('Timeline', 'timeline-h', h('ol', { class: 'timeline', 'data-testid': 'incident-timeline' }, (inc.timeline || []).map((e) => {
      const t = new Date(e.time).getTime();
      return h('li', { class: `tl tl-${e.type}`, 'data-testid': 'timeline-entry', 'data-type': e.type },
        h('div', { class: 'tl-head' }, clock(e.time), h('span', { class: 'offset' }, `+${duration(Math.max(0, (t - opened) / 1000))}`), ' ', badge(e.type),
          e.attempt ? h('span', {}, ` attempt ${e.attempt}`) : null,
          e.execution ? [' ', h('a', { href: `#/executions/${enc(e.execution)}` }, `execution ${e.execution}`)] : null),
        h('p', {}, e.message),
        e.output ? h('details', { open: e.output.length < 400 }, h('summary', {}, 'Output'), pre(e.output, `output of ${e.type}`)) : null);
    }))),
    inc.instance ? section(`Instance ${inc.instance}: lifecycle during the incident`, 'inst-events-h',
      h('p', { class: 'hint' }, 'Fencing, launches, attachments and health from the journal.'), eventsTable(related)) : null,
  ];
}

// ---- execution

async function executionPage(id) {
  const ex = await api(`/v1/executions/${enc(id)}`);
  const active = ACTIVE_EXEC.has(ex.status);
  const waiting = ex.status === 'Waiting';
  const approve = (reject) => {
    const comment = h('input', { type: 'text', id: 'approve-comment', 'data-testid': 'approve-comment', maxlength: 500 });
    const approver = h('input', { type: 'text', id: 'approve-approver', 'data-testid': 'approve-approver', value: localStorage.getItem('autoheal.approver') || '', maxlength: 100 });
    act({
      title: `${reject ? 'Reject' : 'Approve'} step ${ex.current_step || ''} of ${ex.id}?`,
      body: [h('p', {}, reject ? 'The step fails and the execution follows its failure path.' : 'The execution continues past the approval step.'),
        h('p', { class: 'field' }, h('label', { for: 'approve-approver' }, 'Your name'), approver),
        h('p', { class: 'field' }, h('label', { for: 'approve-comment' }, 'Comment (optional)'), comment)],
      ok: reject ? 'Reject' : 'Approve',
    }, () => {
      if (approver.value) localStorage.setItem('autoheal.approver', approver.value);
      return api(`/v1/executions/${enc(ex.id)}/approve`, { method: 'POST', body: { approver: approver.value || undefined, reject, comment: comment.value || undefined } });
    }, `${ex.id}: ${reject ? 'rejected' : 'approved'}.`);
  };
  const cancel = () => act({ title: `Cancel execution ${ex.id}?`, body: h('p', {}, `Stop ${ex.document} at step ${ex.current_step || '–'}.`), ok: 'Cancel execution' },
    () => api(`/v1/executions/${enc(ex.id)}/cancel`, { method: 'POST' }), `${ex.id}: cancelling.`);
  const origin = ex.origin || '';
  const originLink = origin.startsWith('execution:') ? h('a', { href: `#/executions/${enc(origin.slice(10))}` }, origin)
    : origin.startsWith('incident:') ? h('a', { href: `#/incidents/${enc(origin.slice(9))}` }, origin) : origin;
  return [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › execution'),
    h('h1', { tabindex: -1 }, `Execution ${ex.id} `, badge(ex.status, { 'data-testid': 'execution-status' })),
    ex.error ? h('p', { class: 'reason bad', role: 'note' }, ex.error) : null,
    dl([['Document', ex.document], ['Origin', originLink || '–'], ['Parent', ex.parent ? h('a', { href: `#/executions/${enc(ex.parent)}` }, ex.parent) : '–'],
      ['Started', time(ex.started_at)], ['Ended', time(ex.ended_at)],
      ['Duration', duration(((ex.ended_at ? new Date(ex.ended_at) : new Date()) - new Date(ex.started_at)) / 1000)], ['Current step', ex.current_step || '–']]),
    active ? h('div', { class: 'actions', role: 'group', 'aria-label': 'Execution actions' },
      waiting ? h('button', { type: 'button', id: 'approve-button', 'data-testid': 'approve-button', onclick: () => approve(false) }, 'Approve…') : null,
      waiting ? h('button', { type: 'button', id: 'reject-button', class: 'danger', 'data-testid': 'reject-button', onclick: () => approve(true) }, 'Reject…') : null,
      h('button', { type: 'button', id: 'cancel-execution-button', class: 'danger', 'data-testid': 'cancel-execution-button', onclick: cancel }, 'Cancel execution…')) : null,
    Object.keys(ex.parameters || {}).length ? section('Parameters', 'params-h', table('!Parameters', ['Name', 'Value'],
      Object.entries(ex.parameters).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))) : null,
    section('Steps', 'steps-h', table('!Steps', ['Step', 'Action', 'Status', 'Attempts', 'Started', 'Took', 'Outputs and errors'],
      (ex.steps || []).map((s) => ({
        attrs: { 'data-testid': 'step-row', 'data-step': s.name, 'data-status': s.status, class: s.name === ex.current_step ? 'current' : '' },
        cells: [s.name, s.action, badge(s.status, { 'data-testid': 'step-status' }), h('span', { 'data-testid': 'step-attempts' }, s.attempts), time(s.started_at),
          s.started_at && s.ended_at ? duration((new Date(s.ended_at) - new Date(s.started_at)) / 1000) : '–',
          [s.action === 'approve' && s.inputs && s.inputs.Message ? h('p', { 'data-testid': 'approve-message' }, s.inputs.Message) : null,
            s.error ? h('p', { class: 'bad' }, s.error) : null,
            Object.keys(s.outputs || {}).length ? h('dl', { class: 'outputs' }, Object.entries(s.outputs).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'string' ? v : JSON.stringify(v))])) : null,
            s.child ? h('a', { href: `#/executions/${enc(s.child)}` }, `nested execution ${s.child}`) : null,
            s.result !== undefined ? h('details', {}, h('summary', {}, 'Result'), pre(typeof s.result === 'string' ? s.result : JSON.stringify(s.result, null, 2), `result of ${s.name}`)) : null]],
      })), 'No steps yet.')),
    (ex.approvals || []).length ? section('Approvals', 'approvals-h', table('!Approvals', ['Step', 'Answer', 'Approver', 'Comment', 'Time'],
      ex.approvals.map((p) => ({ attrs: { 'data-testid': 'approval-row' }, cells: [p.step, p.approved ? 'approved' : 'rejected', p.approver, p.comment || '', time(p.time)] })))) : null,
    Object.keys(ex.outputs || {}).length ? section('Outputs', 'outputs-h', table('!Outputs', ['Output', 'Value'],
      Object.entries(ex.outputs).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))) : null,
  ];
}

// ---- run a document

async function runPage(docName) {
  const docs = await optional('/v1/documents', null);
  if (docs === null) return [h('h1', { tabindex: -1 }, 'Run a document'), h('p', {}, 'Runbooks are not enabled in this controller.')];
  const doc = docName ? await api(`/v1/documents/${enc(docName)}`) : null;
  const select = h('select', { id: 'document-select', 'data-testid': 'document-select', onchange: (e) => { location.hash = `#/run/${enc(e.target.value)}`; } },
    h('option', { value: '' }, 'Choose a document…'),
    docs.filter((d) => !d.error).map((d) => h('option', { value: d.name, selected: d.name === docName }, `${d.name}${d.description ? ` — ${d.description}` : ''}`)));
  const out = [
    h('nav', { 'aria-label': 'Breadcrumb', class: 'crumbs' }, h('a', { href: '#/' }, 'Overview'), ' › run'),
    h('h1', { tabindex: -1 }, 'Run a document'),
    h('p', { class: 'field' }, h('label', { for: 'document-select' }, 'Document'), select),
  ];
  if (!doc) return out;
  const fields = [];
  const order = Object.keys(doc.parameters || {}).sort();
  for (const name of order) {
    const p = doc.parameters[name];
    const id = `param-${name}`;
    const optionalParam = p.default !== undefined;
    let input;
    if (p.allowedValues && p.allowedValues.length) {
      input = h('select', { id, name, 'data-testid': 'param-input' }, optionalParam ? h('option', { value: '' }, `default (${fmtDefault(p.default)})`) : null,
        p.allowedValues.map((v) => h('option', { value: String(v) }, String(v))));
    } else if (p.type === 'Boolean') {
      input = h('select', { id, name, 'data-testid': 'param-input' }, optionalParam ? h('option', { value: '' }, `default (${fmtDefault(p.default)})`) : null,
        h('option', { value: 'true' }, 'true'), h('option', { value: 'false' }, 'false'));
    } else {
      input = h('input', { id, name, type: p.type === 'Integer' ? 'number' : 'text', 'data-testid': 'param-input', required: !optionalParam,
        placeholder: optionalParam ? `default: ${fmtDefault(p.default)}` : '', 'aria-describedby': `${id}-desc` });
    }
    fields.push(h('p', { class: 'field' }, h('label', { for: id }, `${name} `, h('span', { class: 'muted' }, `(${p.type}${optionalParam ? ', optional' : ''})`)), input,
      h('span', { class: 'hint', id: `${id}-desc` }, p.description || (p.type === 'StringList' ? 'Comma-separated.' : ''))));
  }
  const form = h('form', { 'data-testid': 'run-document-form', 'aria-label': `Run ${doc.name}` },
    doc.description ? h('p', { class: 'doc-desc' }, doc.description) : null,
    fields.length ? fields : h('p', { class: 'muted' }, 'This document takes no parameters.'),
    h('p', {}, h('button', { type: 'submit', id: 'run-button', 'data-testid': 'run-button' }, `Run ${doc.name}…`)));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const parameters = {};
    for (const name of order) {
      const v = form.elements.namedItem(name).value;
      if (v !== '') parameters[name] = v;
    }
    const listing = Object.entries(parameters).map(([k, v]) => h('li', {}, `${k} = ${v}`));
    act({ title: `Run ${doc.name}?`, body: [h('p', {}, `Start an execution of ${doc.name}${listing.length ? ' with:' : ' with its defaults.'}`), listing.length ? h('ul', {}, listing) : null], ok: 'Run' },
      () => api('/v1/executions', { method: 'POST', body: { document: doc.name, parameters } }),
      (res) => { location.hash = `#/executions/${enc(res.id)}`; return `Started ${res.id}.`; });
  });
  out.push(form, section('Steps', 'doc-steps-h', table('!Document steps', ['Step', 'Action', 'Max attempts', 'On failure'],
    (doc.mainSteps || []).map((s) => [s.name, s.action, s.maxAttempts || 1, s.onFailure || 'Abort']))));
  return out;
}

function fmtDefault(v) {
  return Array.isArray(v) ? v.join(',') : String(v);
}

// ---------------------------------------------------------------- router

const routes = [
  [/^#?\/?$/, () => overviewPage(), () => true, 'Overview'],
  [/^#\/groups\/([^/]+)$/, (n) => groupPage(n), (ev, n) => !ev.group || ev.group === n, (n) => `Group ${n}`],
  [/^#\/lb\/([^/]+)$/, (n) => lbPage(n), () => true, (n) => `Target group ${n}`],
  [/^#\/alarms\/([^/]+)$/, (k) => alarmPage(k), (ev) => ev.type === 'alarm.state', (k) => `Alarm ${k}`],
  [/^#\/incidents\/([^/]+)$/, (i) => incidentPage(i), (ev) => /^(incident|execution|instance|volume|address)\./.test(ev.type), (i) => `Incident ${i}`],
  [/^#\/executions\/([^/]+)$/, (i) => executionPage(i), (ev) => ev.type.startsWith('execution.'), (i) => `Execution ${i}`],
  [/^#\/run(?:\/([^/]+))?$/, (d) => runPage(d), () => false, () => 'Run a document'],
];

let current = null; // {hash, render, wants, title}
let generation = 0;

function resolve(hash) {
  for (const [re, render, wants, title] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    const arg = m[1] !== undefined ? decodeURIComponent(m[1]) : undefined;
    return { hash, render: () => render(arg), wants: (ev) => wants(ev, arg), title: typeof title === 'function' ? title(arg) : title };
  }
  return null;
}

function focusMain() {
  const h1 = document.querySelector('#main h1');
  (h1 || document.getElementById('main')).focus();
}

// navigate renders the page for the current hash and moves focus to its
// heading, as a page load would.
async function navigate() {
  const hash = location.hash || '#/';
  current = resolve(hash);
  document.querySelectorAll('header nav a').forEach((a) => {
    if (a.getAttribute('href') === hash || (hash.startsWith('#/run') && a.getAttribute('href') === '#/run')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  const main = document.getElementById('main');
  if (!current) {
    main.replaceChildren(h('h1', { tabindex: -1 }, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/' }, 'Go to the overview.')));
    focusMain();
    return;
  }
  document.title = `${current.title} · autoheal`;
  main.setAttribute('aria-busy', 'true');
  await render(true);
  main.removeAttribute('aria-busy');
  focusMain();
  schedulePolling();
}

// render replaces the page's content. On a live refresh it keeps focus on
// the control that had it (by id), keeps what the operator typed but has
// not submitted, and waits while the confirmation dialog is open.
async function render(first) {
  const gen = ++generation;
  const page = current;
  let nodes;
  try {
    nodes = await page.render();
  } catch (err) {
    if (gen !== generation) return;
    if (err instanceof ApiError && err.status === 401) {
      if (first || !document.getElementById('token-form')) showSignIn(err.message, err.tokenFile);
      return;
    }
    nodes = [h('h1', { tabindex: -1 }, page.title), h('p', { class: 'error', role: 'alert', 'data-testid': 'page-error' }, err.message),
      h('p', {}, h('a', { href: '#/' }, 'Back to the overview'))];
  }
  if (gen !== generation || page !== current) return; // a newer render or another page won
  if (!first && document.getElementById('confirm').open) {
    refreshSoon(1000); // the dialog's text was written from the current page
    return;
  }
  const main = document.getElementById('main');
  const active = main.contains(document.activeElement) ? document.activeElement : null;
  const focusedId = active ? active.id : '';
  const focusedHeading = active && active.tagName === 'H1';
  const selection = active && typeof active.selectionStart === 'number' ? [active.selectionStart, active.selectionEnd] : null;
  // What the operator typed or chose and has not submitted survives.
  const edited = [...main.querySelectorAll('input[id], select[id]')].filter(dirty).map((e) => [e.id, e.type === 'checkbox' ? e.checked : e.value]);
  const openDetails = [...main.querySelectorAll('details[open] > summary')].map((s) => s.textContent);
  const closedDetails = [...main.querySelectorAll('details:not([open]) > summary')].map((s) => s.textContent);
  main.replaceChildren();
  append(main, [nodes]);
  if (!first) {
    // Keep what the operator opened or closed.
    for (const s of main.querySelectorAll('details > summary')) {
      if (openDetails.includes(s.textContent)) s.parentElement.open = true;
      if (closedDetails.includes(s.textContent)) s.parentElement.open = false;
    }
    for (const [id, v] of edited) {
      const e = document.getElementById(id);
      if (!e) continue;
      if (e.type === 'checkbox') e.checked = v;
      else e.value = v;
    }
    if (focusedId) {
      const e = document.getElementById(focusedId);
      e?.focus({ preventScroll: true });
      if (e && selection) try { e.setSelectionRange(...selection); } catch { /* number inputs have no selection */ }
    } else if (focusedHeading) {
      main.querySelector('h1')?.focus({ preventScroll: true });
    }
  }
  document.getElementById('main').dataset.updated = new Date().toISOString();
}

// dirty reports whether a form control differs from how it was rendered.
function dirty(e) {
  if (e.tagName === 'SELECT') return [...e.options].some((o) => o.selected !== o.defaultSelected);
  if (e.type === 'checkbox' || e.type === 'radio') return e.checked !== e.defaultChecked;
  return e.value !== e.defaultValue;
}

// ---------------------------------------------------------------- sign-in

// The API answers 401 until the browser presents a token: the controller's
// local admin token (in its state dir; the 401 names the file when the
// browser is on the controller's host) or one of the config's auth tokens.
// Signing in posts the token to /v1/session, which checks it
// and sets the autoheal_token cookie itself: HttpOnly, so no script (this
// one included) can read it, and SameSite=Strict; the API reads it for the
// UI (EventSource cannot send an Authorization header). The page only
// remembers, for this tab, that it signed in.
const SIGNED_IN = 'autoheal_signed_in';
let signedIn = sessionStorage.getItem(SIGNED_IN) === '1';

// setTokenCookie signs in with token (or out, when it is empty) and reports
// the API's refusal, if any.
async function setTokenCookie(token) {
  const r = await fetch('/v1/session', token
    ? { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }) }
    : { method: 'DELETE', credentials: 'same-origin' });
  signedIn = Boolean(token) && r.ok;
  if (signedIn) sessionStorage.setItem(SIGNED_IN, '1'); else sessionStorage.removeItem(SIGNED_IN);
  if (r.ok || !token) return '';
  try { return (await r.json()).error || r.statusText; } catch { return r.statusText; }
}

function hasTokenCookie() {
  return signedIn;
}

function showSignIn(message, tokenFile = '') {
  const main = document.getElementById('main');
  const input = h('input', { type: 'password', id: 'token-input', 'data-testid': 'token-input', autocomplete: 'current-password', required: true });
  const form = h('form', { id: 'token-form', 'data-testid': 'token-form', 'aria-labelledby': 'signin-h' },
    // For password managers: a token form with no user name is flagged.
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'autoheal', hidden: true }),
    h('p', { class: 'field' }, h('label', { for: 'token-input' }, 'API token'), input,
      h('span', { class: 'hint', 'data-testid': 'token-hint' }, tokenFile
        ? `On the controller's host, the local admin token is in ${tokenFile} (readable by the controller's user only), or use a token from autoheal token new: its role decides what you may do here (viewer reads, operator acts).`
        : 'The local admin token (the file api-token in the controller\'s state dir), or a token from autoheal token new: its role decides what you may do here (viewer reads, operator acts).')),
    h('p', {}, h('button', { type: 'submit', id: 'token-submit', 'data-testid': 'token-submit' }, 'Sign in')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const refused = await setTokenCookie(input.value.trim());
    if (refused) {
      showSignIn(refused, tokenFile);
      return;
    }
    connect();
    navigate();
  });
  main.replaceChildren(h('h1', { id: 'signin-h', tabindex: -1 }, 'Sign in'),
    h('p', { class: hasTokenCookie() ? 'error' : 'hint', role: hasTokenCookie() ? 'alert' : null }, hasTokenCookie() ? `The token was refused: ${message}` : 'This controller needs an API token.'),
    form);
  updateSignOut();
  input.focus();
}

function updateSignOut() {
  const b = document.getElementById('signout-button');
  b.hidden = !hasTokenCookie();
}

let refreshTimer = null;
// refreshSoon re-renders the current page after a short quiet time, so a
// burst of events costs one round of requests.
function refreshSoon(delay = 400) {
  if (!current) return;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { refreshTimer = null; render(false); }, delay);
}

// The load balancer page samples counters: its charts need a steady tick
// that events do not give (requests are not journalled).
const LB_SAMPLE_MS = 5000;
let pollTimer = null;
function schedulePolling() {
  clearInterval(pollTimer);
  pollTimer = null;
  if (current && current.hash.startsWith('#/lb/')) {
    pollTimer = setInterval(() => refreshSoon(0), LB_SAMPLE_MS);
  }
}

// ---------------------------------------------------------------- live events

// Every journal event type the controller writes. EventSource delivers a
// named event ("event: instance.state") only to a listener of that name,
// so they are listed; a type added later still refreshes through the
// periodic fallback below.
const EVENT_TYPES = [
  'instance.state', 'instance.exit', 'instance.health', 'instance.heal', 'instance.hook', 'instance.user_data', 'instance.launch', 'instance.adopt',
  'volume.attach', 'volume.detach', 'volume.init', 'address.associate', 'address.disassociate',
  'group.scale', 'group.impaired', 'group.active', 'group.error', 'group.refresh',
  'alarm.state', 'incident.open', 'incident.attempt', 'incident.escalated', 'incident.resolved',
  'execution.start', 'execution.step', 'execution.approval', 'execution.end', 'execution.resume',
  'controller.start', 'controller.stop', 'controller.sweep', 'controller.orphan_group', 'controller.state_dir',
  'maintenance.window.start', 'maintenance.window.end', 'maintenance.window.skip', 'maintenance.task.start', 'maintenance.task.end', 'schedule.action',
  'notify.delivered', 'notify.failed', 'message',
];

let source = null;
let lastEvent = 0;

function setConnection(state, text) {
  const el = document.getElementById('connection-status');
  el.dataset.state = state;
  el.querySelector('.conn-text').textContent = text;
}

function connect() {
  if (source) source.close();
  setConnection('connecting', 'Connecting…');
  // limit=1: the stream starts with a backlog of the newest events; one is
  // enough to know we are live, and the page has just fetched the rest.
  source = new EventSource('/v1/events?follow=true&limit=1', { withCredentials: true });
  source.onopen = () => setConnection('live', 'Live');
  source.onerror = () => {
    // EventSource retries by itself while CONNECTING; CLOSED means it gave up.
    if (source.readyState === EventSource.CLOSED) {
      setConnection('offline', 'Offline, retrying');
      setTimeout(connect, 5000);
    } else {
      setConnection('reconnecting', 'Reconnecting…');
    }
  };
  const onEvent = (msg) => {
    lastEvent = Date.now();
    let ev;
    try { ev = JSON.parse(msg.data); } catch { return; }
    if (!ev || typeof ev.type !== 'string') return;
    if (current && current.wants(ev)) refreshSoon();
  };
  for (const t of EVENT_TYPES) source.addEventListener(t, onEvent);
  // The server drops a subscriber that falls behind and says so: reconnect
  // and refresh, since events were missed.
  source.addEventListener('dropped', () => { setConnection('reconnecting', 'Reconnecting…'); setTimeout(connect, 500); refreshSoon(0); });
}

// A slow fallback refresh catches event types not listed above and any
// event missed while reconnecting.
setInterval(() => {
  if (document.visibilityState === 'visible' && Date.now() - lastEvent > 30000) refreshSoon(0);
}, 30000);

document.getElementById('signout-button').addEventListener('click', async () => {
  await setTokenCookie('');
  if (source) source.close();
  setConnection('offline', 'Signed out');
  navigate();
});
updateSignOut();

// A page kept in the back/forward cache would keep its event stream, and
// browsers allow six connections per host: close it when the page is left,
// reconnect when it is shown again from the cache.
window.addEventListener('pagehide', () => { if (source) { source.close(); source = null; } });
window.addEventListener('pageshow', (e) => { if (e.persisted) { connect(); refreshSoon(0); } });

window.addEventListener('hashchange', navigate);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refreshSoon(0); });
document.getElementById('skip-link').addEventListener('click', (e) => { e.preventDefault(); focusMain(); });

connect();
navigate();
