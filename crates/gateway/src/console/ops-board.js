// nubo's ops console: the checkout board, read every 2 s while it is open. Sagas in progress by
// state and the stuck ones, checkouts by outcome, the stock held; the unfinished orders that need
// a look, oldest update first, each with its last step and a link to its traces; and the events:
// each outbox's backlog, each subscription's lag and dead letters. What the API could not read
// is said in a notice, never taken for "nothing to see".
'use strict';

(() => {
const { $, el, styled, keepFocus, known, when, fact, short, orderTracesHref, api, report, register, state } = Ops;

// The last answer and when it came, the answer drawn last (a poll that changed nothing redraws
// nothing), whether the last request failed, and the request in flight by generation: sign-out
// starts a new one, so an answer that arrives after it is dropped.
const board = { answer: null, at: null, drawn: '', failed: false, generation: 0, busy: null };

const count = (v) => (known(v) ? Math.round(v).toLocaleString() : '–');
const list = (v) => (Array.isArray(v) ? v : []);

/** `{amount_minor, currency}` as the shop shows it, `EUR 9.00`: integer and string work only. */
function money(total) {
  if (!total || !Number.isInteger(total.amount_minor)) return '–';
  const { amount_minor: minor, currency } = total;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch { /* an unknown code: assume cents */ }
  let text = String(Math.abs(minor));
  if (digits > 0) {
    text = text.padStart(digits + 1, '0');
    text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  return `${currency ?? ''} ${minor < 0 ? '-' : ''}${text}`.trim();
}

/** The time of day for today's times, the date and time for older ones. */
function stamp(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso ?? '–';
  return el('time', { datetime: iso, title: when(iso) },
    d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : when(iso));
}

/** How long an order must stand still to be flagged, in words: "a minute". */
function stillFor(seconds) {
  const s = known(seconds) && seconds > 0 ? seconds : 60;
  return s === 60 ? 'a minute' : s % 60 === 0 ? `${s / 60} minutes` : `${s} s`;
}

async function pollBoard() {
  const { generation } = board;
  if (board.busy === generation) return;
  board.busy = generation;
  try {
    const answer = await api('/admin/ops/checkouts');
    if (generation === board.generation) Object.assign(board, { answer: answer ?? {}, at: new Date(), failed: false });
  } catch (error) {
    if (generation === board.generation) { board.failed = true; report(error); }
  } finally { if (board.busy === generation) board.busy = null; }
  if (generation === board.generation && state.view.name === 'checkouts') renderBoard();
}

/** On sign-out: nothing of the last account's board stays, on screen or in memory. */
function forgetBoard() {
  Object.assign(board, { answer: null, at: null, drawn: '', failed: false, generation: board.generation + 1 });
  renderBoard();
}

// ---- The summary: four tiles.
const tile = (key, heading, ...body) => el('div', { class: 'tile', 'data-tile': key },
  el('h4', { id: `tile-${key}` }, heading), ...body);

function sagasTile(sagas) {
  const states = Object.entries(sagas?.in_progress ?? {});
  const most = Math.max(1, ...states.map(([, v]) => v).filter(known));
  const total = states.reduce((n, [, v]) => n + (known(v) ? v : 0), 0);
  return tile('sagas', 'Sagas in progress', el('p', { class: 'big' }, states.length ? count(total) : '–'),
    states.length
      ? el('table', { class: 'mini', 'aria-labelledby': 'tile-sagas' },
        el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'State'), el('th', { scope: 'col', class: 'n' }, 'Sagas'))),
        el('tbody', {}, states.map(([name, v]) => {
          const bar = styled(el('span', { class: 'bar', 'aria-hidden': 'true' }), { width: `${known(v) ? (v / most) * 100 : 0}%` });
          return el('tr', { 'data-state': name, class: v > 0 ? null : 'none' },
            el('th', { scope: 'row' }, name), el('td', { class: 'n' }, el('span', { class: 'bar-cell' }, el('span', { class: 'bar-track' }, bar), count(v))));
        })))
      : el('p', { class: 'hint' }, 'Orders has not reported its sagas yet.'));
}

function stuckTile(stuck) {
  const bad = known(stuck) && stuck > 0;
  const box = tile('stuck', 'Stuck sagas', el('p', { class: 'big' }, bad && el('span', { 'aria-hidden': 'true' }, '⚠ '), count(stuck)),
    el('p', { class: 'hint' }, !known(stuck) ? 'Unknown: orders has not reported it.'
      : bad ? 'Need a look: in one state longer than orders allows (5 minutes by default).' : 'None: no saga has stayed in one state too long.'));
  box.classList.toggle('alert', bad);
  return box;
}

function checkoutsTile(checkouts = {}) {
  // An outcome orders has not counted yet is absent: zero, once orders reports any.
  const outcomes = [...new Set(['confirmed', 'cancelled', 'rejected', ...Object.keys(checkouts)])];
  const any = Object.keys(checkouts).length > 0;
  return tile('checkouts', 'Checkouts since orders started',
    el('dl', { class: 'facts tally' }, outcomes.flatMap((o) => fact(o[0].toUpperCase() + o.slice(1), any ? count(checkouts[o] ?? 0) : '–'))));
}

const reservationsTile = (held) => tile('reservations', 'Reservations held', el('p', { class: 'big' }, count(held)),
  el('p', { class: 'hint' }, known(held) ? 'Stock set aside for checkouts not finished.' : 'Unknown: inventory has not reported it.'));

// ---- The orders that need a look. On a narrow screen each is a block of lines, whose cells say what they hold.
const label = (text) => el('span', { class: 'cell-label', 'aria-hidden': 'true' }, `${text}: `);

function orderRow(o, slow) {
  const step = o.last_step;
  return el('tr', { 'data-order': o.order_id, class: o.slow ? 'slow' : null },
    el('th', { scope: 'row', class: 'order' }, el('a', {
      href: orderTracesHref(o.order_id), class: 'mono', title: `Order ${o.order_id}: its traces`,
      'aria-label': `Order ${o.order_id}, its traces`, 'data-key': `order:${o.order_id}`,
    }, `${short(o.order_id)}…`)),
    el('td', { class: 'order-status' }, o.status ?? '–',
      o.slow && el('span', { class: 'slow-mark' }, el('span', { 'aria-hidden': 'true' }, '⚠ '), slow)),
    el('td', { class: 'state' }, label('Saga'), o.state ?? '–'),
    el('td', { class: 'step' }, label('Last step'), step
      ? [el('span', { class: `step-name outcome-${String(step.outcome).replace(/\W+/g, '-')}` }, `${step.step ?? '–'} · ${step.outcome ?? '–'}`),
        step.detail && el('span', { class: 'detail' }, step.detail), step.at && el('span', { class: 'detail' }, 'at ', stamp(step.at))]
      : '–'),
    el('td', { class: o.cancel_reason ? 'reason' : 'reason none' }, label('Cancel reason'), o.cancel_reason ?? '–'),
    el('td', { class: 'n total' }, money(o.total)),
    el('td', { class: 'updated' }, label('Last update'), stamp(o.updated_at)));
}

function renderAttention(answer) {
  const orders = [...list(answer?.attention)]
    .sort((a, b) => (Date.parse(a.updated_at) || 0) - (Date.parse(b.updated_at) || 0));
  const slow = `stalled over ${stillFor(answer?.slow_after_seconds)}`;
  const stalled = orders.filter((o) => o.slow).length;
  $('#board-attention-title').textContent = answer ? `Orders that need a look (${orders.length})` : 'Orders that need a look';
  $('#board-attention-hint').textContent = `Unfinished orders (pending or cancelling), oldest update first${
    stalled ? `; ${stalled} ${slow}` : ''}. Select an order for its traces.`;
  const empty = !answer ? (board.failed ? 'The board could not be read yet: the console keeps trying.' : 'Loading…')
    : list(answer.errors).length ? 'The unfinished orders could not all be read: see the notice above.'
      : 'No checkout needs a look: every order has finished.';
  const table = $('#board-attention');
  keepFocus(table, () => table.tBodies[0].replaceChildren(...(orders.length ? orders.map((o) => orderRow(o, slow))
    : [el('tr', {}, el('td', { colspan: 7, class: 'empty-row' }, empty))])));
}

// ---- The events: outboxes and subscriptions.
function renderEvents(answer) {
  const box = $('#board-events');
  if (!answer) return box.replaceChildren(el('p', {}, board.failed ? 'The board could not be read yet.' : 'Loading…'));
  const outbox = list(answer.outbox);
  const consumers = list(answer.consumers);
  const cols = (...names) => el('thead', {}, el('tr', {}, names.map(([name, n]) => el('th', { scope: 'col', class: n ? 'n' : null }, name))));
  return box.replaceChildren(
    el('h4', { id: 'board-outbox-title' }, 'Outbox backlog: events not yet published'),
    outbox.length ? el('div', { class: 'table-wrap narrow' }, el('table', { id: 'board-outbox', 'aria-labelledby': 'board-outbox-title' },
      cols(['Service'], ['Waiting', true]),
      el('tbody', {}, outbox.map((o) => el('tr', { 'data-service': o.service, class: o.backlog > 0 ? 'waiting' : null },
        el('th', { scope: 'row' }, o.service ?? '–'), el('td', { class: 'n' }, count(o.backlog)))))))
      : el('p', { class: 'hint' }, 'No service has reported an outbox yet.'),
    el('h4', { id: 'board-consumers-title' }, 'Subscriptions'),
    consumers.length ? el('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-labelledby': 'board-consumers-title' },
      el('table', { id: 'board-consumers' },
        cols(['Service'], ['Subscription'], ['Lag', true], ['Handled', true], ['Duplicates', true], ['Retried', true], ['Dead lettered', true]),
        el('tbody', {}, consumers.map((c) => el('tr', { 'data-consumer': c.consumer, 'data-service': c.service, class: c.dead_lettered > 0 ? 'dead' : null },
          el('td', {}, c.service ?? '–'), el('th', { scope: 'row' }, c.consumer ?? '–'),
          [c.lag, c.handled, c.duplicates, c.retried].map((v) => el('td', { class: 'n' }, count(v))),
          el('td', { class: c.dead_lettered > 0 ? 'n bad' : 'n' }, c.dead_lettered > 0 && el('span', { 'aria-hidden': 'true' }, '⚠ '), count(c.dead_lettered)))))))
      : el('p', { class: 'hint' }, 'No subscription has reported yet.'));
}

function renderBoard() {
  const { answer, at, failed } = board;
  $('#board-state').textContent = !answer ? (failed ? 'The board could not be read yet: the console keeps trying.' : 'Loading…')
    : `${failed ? 'Could not refresh: this is the board read' : 'Refreshed every 2 s · read'} at ${at.toLocaleTimeString()}.`;
  const text = JSON.stringify(answer);
  if (answer && text === board.drawn) return;
  board.drawn = answer ? text : '';
  const errors = list(answer?.errors);
  const notice = $('#board-errors');
  notice.hidden = !errors.length;
  notice.replaceChildren(...(errors.length ? [el('p', {}, 'Part of the board could not be read:'), el('ul', {}, errors.map((e) => el('li', {}, String(e))))] : []));
  $('#board-summary').replaceChildren(...(answer
    ? [sagasTile(answer.sagas), stuckTile(answer.sagas?.stuck), checkoutsTile(answer.checkouts ?? {}), reservationsTile(answer.reservations_held)]
    : [el('p', {}, failed ? 'The board could not be read yet.' : 'Loading…')]));
  renderAttention(answer);
  renderEvents(answer);
}

register({
  views: { checkouts: { title: 'Checkouts', render: renderBoard, tick: pollBoard } },
  forget: forgetBoard,
});
})();
