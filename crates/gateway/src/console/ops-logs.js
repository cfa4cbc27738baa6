// nubo's ops console: the logs. Every service's lines, filtered by service, lowest level, text
// and trace id, kept live (only the lines after the last cursor, every 2 s) and capped at 1000
// rows; a trace id narrows the filter to that trace or opens it. Also what the traces view takes:
// a log line's row, and a service filter that follows the overview.
'use strict';

(() => {
const { $, el, api, report, when, short, traceHref, register, state } = Ops;
const MAX_LOG_ROWS = 1000;

// ---- Logs: filtered, live (after= the last cursor every 2 s), at most 1000 rows kept.
const logs = { after: null, paused: false, generation: 0, busy: null };

function resetLogs() {
  logs.after = null;
  logs.generation += 1;
  $('#logs').tBodies[0].replaceChildren();
  $('#log-state').textContent = 'Loading…';
}

function logQuery() {
  const params = new URLSearchParams({ limit: 500 });
  const filters = { service: '#log-service', level: '#log-level', q: '#log-q', trace_id: '#log-trace' };
  Object.entries(filters).forEach(([name, selector]) => $(selector).value.trim() && params.set(name, $(selector).value.trim()));
  if (logs.after != null) params.set('after', logs.after);
  return params;
}

async function pollLogs() {
  const { generation } = logs;
  if (logs.busy === generation) return;
  logs.busy = generation;
  try {
    const answer = await api(`/admin/ops/logs?${logQuery()}`);
    if (generation !== logs.generation) return;
    logs.after = answer?.next ?? logs.after;
    appendLogs(answer?.lines ?? []);
  } catch (error) { report(error); } finally { if (logs.busy === generation) logs.busy = null; }
}

/** A log line as a row; `withTrace` false leaves out the trace column (a trace's own lines). */
function logRow(line, withTrace = true) {
  const level = String(line.level ?? '').toLowerCase();
  const fields = Object.entries(line.fields ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ');
  return el('tr', { 'data-seq': line.seq, class: `lv-${level}` },
    el('td', { class: 'time' }, el('time', { datetime: line.time }, when(line.time, true))),
    el('td', {}, el('span', { class: `level level-${level}` }, line.level ?? '–')),
    el('td', {}, line.service ?? '–'),
    el('td', { class: 'message' }, line.message ?? '',
      line.target && el('span', { class: 'target' }, line.target),
      fields && el('span', { class: 'fields' }, fields)),
    withTrace && el('td', { class: 'trace-cell' }, line.trace_id ? [
      el('button', { type: 'button', class: 'trace', 'data-trace': line.trace_id, title: line.trace_id },
        el('span', { class: 'vh' }, 'Show only trace '), `${short(line.trace_id)}…`), ' ',
      el('a', { href: traceHref(line.trace_id), class: 'trace-open' }, 'Open', el('span', { class: 'vh' }, ` trace ${short(line.trace_id)}`)),
    ] : '–'));
}

function appendLogs(lines) {
  const wrap = $('#log-wrap');
  const body = $('#logs').tBodies[0];
  const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 40;
  body.append(...lines.map((line) => logRow(line)));
  while (body.rows.length > MAX_LOG_ROWS) body.rows[0].remove();
  if (atBottom && lines.length) wrap.scrollTop = wrap.scrollHeight;
  $('#log-state').textContent = body.rows.length
    ? `${body.rows.length} lines, oldest first${logs.paused ? ' · paused' : ' · live'}`
    : 'No log lines match these filters.';
}
const refilter = () => { resetLogs(); pollLogs(); };

function togglePause() {
  logs.paused = !logs.paused;
  $('#log-pause').textContent = logs.paused ? 'Resume live updates' : 'Pause live updates';
  appendLogs([]);
  if (!logs.paused) pollLogs();
}

/** A service filter's options follow the overview's services, keeping the choice (even one the
 * overview does not list, as a linked search may name). */
function renderServiceOptions(select, chosen = select.value) {
  const names = [...new Set([...(state.overview?.services ?? []).map((s) => s.name), chosen].filter(Boolean))];
  if (names.join() !== [...select.options].slice(1).map((o) => o.value).join()) {
    select.replaceChildren(el('option', { value: '' }, 'All services'), ...names.map((n) => el('option', { value: n }, n)));
  }
  select.value = chosen;
}
const renderLogServices = () => renderServiceOptions($('#log-service'));

register({
  views: { logs: { title: 'Logs', render: renderLogServices, tick: () => { if (!logs.paused) pollLogs(); }, overview: 'once' } },
  forget: resetLogs,
  wire() {
    let typing = null;
    $('#log-filters').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(refilter, 350); });
    $('#log-filters').addEventListener('submit', (event) => { event.preventDefault(); clearTimeout(typing); refilter(); });
    $('#log-pause').addEventListener('click', togglePause);
    $('#logs').addEventListener('click', (event) => {
      const button = event.target.closest('button.trace');
      if (button) { $('#log-trace').value = button.dataset.trace; refilter(); }
    });
  },
});
Object.assign(Ops, { logRow, renderServiceOptions });
})();
