// nubo's ops console: the fault switches. One form per service (added latency, error rate, an
// outage of the whole service or of some routes, and the service's own knobs), restore all, and
// the audit trail of who changed what.
'use strict';

(() => {
const { $, el, api, refused, report, when, pending, freshOverview, register, state, byService, describeFaults } = Ops;

// ---- Faults: one form per service, filled on first render and after Apply or restore only,
// so a poll never overwrites what an operator is typing.
function faultForm(s) {
  const id = (field) => `fault-${s.name}-${field}`;
  const field = (name, label, attrs, hint) => el('div', { class: 'field' },
    el('label', { for: id(name) }, label),
    el('input', { id: id(name), name, ...attrs, 'aria-describedby': hint ? id(`${name}-hint`) : null }),
    hint && el('span', { class: 'hint', id: id(`${name}-hint`) }, hint));
  const form = el('form', {
    class: 'faults', 'data-service': s.name, 'aria-labelledby': id('title'), novalidate: true,
    onsubmit: (event) => { event.preventDefault(); applyFaults(form); },
  },
  field('latency_ms', 'Added latency (ms)', { type: 'number', min: 0, max: 30000, step: 1, inputmode: 'numeric' }),
  field('error_rate', 'Error rate (0 to 1)', { type: 'number', min: 0, max: 1, step: 0.05, inputmode: 'decimal' }),
  el('div', { class: 'field check' },
    el('input', { id: id('outage'), name: 'outage', type: 'checkbox' }),
    el('label', { for: id('outage') }, 'Outage: the whole service answers 503')),
  field('outage_routes', 'Routes down (path prefixes, comma separated)', { type: 'text', placeholder: '/api/v1/products', spellcheck: 'false' }),
  (s.knobs ?? []).map((k) => field(`knob:${k.name}`, `${k.name}${k.unit ? ` (${k.unit})` : ''}`,
    { type: 'number', min: k.min, max: k.max, step: 'any' }, k.meaning)),
  el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Apply'),
    el('span', { class: 'form-status', role: 'status' })),
  el('div', { class: 'form-problem', role: 'alert', hidden: true }));
  fill(form, s.faults);
  return el('section', { class: 'card fault-card', id: `faults-${s.name}`, 'data-service': s.name },
    el('h3', { id: id('title') }, s.name), el('p', { class: 'faults-now' }), form);
}

function fill(form, f = {}) {
  const field = form.elements;
  field.latency_ms.value = f?.latency_ms ?? 0;
  field.error_rate.value = f?.error_rate ?? 0;
  field.outage.checked = Boolean(f?.outage);
  field.outage_routes.value = (f?.outage_routes ?? []).join(', ');
  for (const input of form.querySelectorAll('input[name^="knob:"]')) input.value = f?.knobs?.[input.name.slice(5)] ?? '';
  showProblem(form, null);
}

function read(form) {
  const field = form.elements;
  const knobs = [...form.querySelectorAll('input[name^="knob:"]')].filter((i) => i.value !== '')
    .map((i) => [i.name.slice(5), Number(i.value)]);
  return {
    latency_ms: Number(field.latency_ms.value || 0), error_rate: Number(field.error_rate.value || 0),
    outage: field.outage.checked, knobs: Object.fromEntries(knobs),
    outage_routes: field.outage_routes.value.split(',').map((r) => r.trim()).filter(Boolean),
  };
}

/** The problem's detail and field errors next to the form, and the named inputs marked invalid. */
function showProblem(form, problem) {
  const box = form.querySelector('.form-problem');
  form.querySelectorAll('[aria-invalid]').forEach((input) => input.removeAttribute('aria-invalid'));
  box.hidden = !problem;
  if (!problem) return box.replaceChildren();
  box.replaceChildren(el('p', {}, problem.message),
    problem.errors.length ? el('ul', {}, problem.errors.map((e) => el('li', {}, `${e.field}: ${e.message}`))) : null);
  for (const e of problem.errors) {
    const name = String(e.field).replace(/^knobs\./, 'knob:');
    form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute('aria-invalid', 'true');
  }
}

async function applyFaults(form) {
  const button = form.querySelector('button[type=submit]');
  const status = form.querySelector('.form-status');
  button.disabled = true;
  status.textContent = 'Applying…';
  try {
    const answer = await api(`/admin/ops/faults/${encodeURIComponent(form.dataset.service)}`, { method: 'PUT', body: read(form) });
    fill(form, answer.faults);
    status.textContent = `Applied at ${new Date().toLocaleTimeString()}.`;
    freshOverview();
  } catch (error) {
    status.textContent = '';
    // A rejected value (422), an unknown service (404): next to the form, where it was asked.
    if (refused(error)) showProblem(form, error);
    else report(error);
  } finally { button.disabled = false; }
}

async function restoreAll() {
  const button = $('#restore-all');
  button.disabled = true;
  try {
    const { restored = [] } = (await api('/admin/ops/faults', { method: 'DELETE' })) ?? {};
    $('#restore-status').textContent = restored.length ? `Restored ${restored.join(', ')}.` : 'No service had a fault on.';
    await freshOverview();
    for (const form of document.querySelectorAll('form.faults')) {
      const s = state.overview?.services.find((x) => x.name === form.dataset.service);
      fill(form, s?.faults ?? {});
      form.querySelector('.form-status').textContent = '';
    }
  } catch (error) { report(error); } finally { button.disabled = false; }
}

function renderFaults() {
  const box = $('#fault-forms');
  const ov = state.overview;
  if (!ov) {
    box.querySelector('.pending')?.replaceChildren(pending());
    return renderAudit(null);
  }
  box.querySelector('.pending')?.remove();
  for (const g of byService(ov.services).values()) {
    const s = g.replicas[0];
    let card = box.querySelector(`.fault-card[data-service="${CSS.escape(s.name)}"]`);
    if (!card) box.append(card = faultForm(s));
    const now = card.querySelector('.faults-now');
    now.textContent = `On now: ${describeFaults(s.faults)}`;
    now.classList.toggle('on', g.faulty);
  }
  if (!box.children.length) box.append(el('p', { class: 'pending' }, 'No service reports to this gateway.'));
  return renderAudit(ov.audit ?? []);
}

function renderAudit(audit) {
  const list = $('#audit');
  if (!audit) return list.replaceChildren(el('li', {}, pending()));
  const at = (a) => Date.parse(a.at) || 0;
  const items = [...audit].sort((a, b) => at(b) - at(a)).map((a) => el('li', {},
    el('time', { datetime: a.at }, when(a.at)), ' · ', el('strong', {}, a.who ?? '–'), ' · ',
    el('span', { class: 'audit-service' }, a.service ?? '–'), ': ', a.what ?? ''));
  return list.replaceChildren(...(items.length ? items : [el('li', {}, 'No fault has been changed yet.')]));
}

register({
  views: { faults: { title: 'Faults', render: renderFaults, overview: 'always' } },
  forget: () => $('#fault-forms').replaceChildren(el('p', { class: 'pending' }, 'Loading…')),
  wire: () => $('#restore-all').addEventListener('click', restoreAll),
});
})();
