// Problems shown where they belong: each entry of a problem's errors[] beside the control
// whose data-field names it (aria-invalid, aria-describedby), the rest and the detail in a
// summary at the top of the form (role=alert), focus on the first bad control.

import { h, nextId, replace, clear } from './dom.js';
import { fieldLabel } from './format.js';

export function clearErrors(root) {
  for (const el of root.querySelectorAll('.field-error')) el.remove();
  for (const el of root.querySelectorAll('[aria-invalid="true"]')) {
    el.removeAttribute('aria-invalid');
    const ids = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && !x.startsWith('err-'));
    if (ids.length) el.setAttribute('aria-describedby', ids.join(' '));
    else el.removeAttribute('aria-describedby');
  }
  for (const el of root.querySelectorAll('.has-error')) el.classList.remove('has-error');
  const sum = root.querySelector('.form-problem');
  if (sum) clear(sum);
  if (sum) sum.hidden = true;
}

function controlFor(root, field) {
  const esc = CSS.escape(field);
  return root.querySelector(`[data-field="${esc}"]`);
}

/**
 * showProblem(root, problem, {alias}) places every field error and returns how many found a
 * control; alias maps an API field name onto the data-field of a control (or null).
 */
export function showProblem(root, problem, { alias } = {}) {
  clearErrors(root);
  const rest = [];
  let first = null;
  let placed = 0;
  for (const e of problem.errors || []) {
    const name = alias ? alias(e.field) ?? e.field : e.field;
    const ctl = name ? controlFor(root, name) : null;
    if (!ctl) {
      rest.push(e);
      continue;
    }
    placed++;
    const id = nextId('err');
    const msg = h('p', { class: 'field-error', id, role: 'alert' }, `${fieldLabel(e.field.replace(/^.*\./, ''))} ${e.message}`);
    const wrap = ctl.closest('.field, .cell') || ctl.parentElement;
    wrap.classList.add('has-error');
    wrap.append(msg);
    ctl.setAttribute('aria-invalid', 'true');
    ctl.setAttribute('aria-describedby', [ctl.getAttribute('aria-describedby'), id].filter(Boolean).join(' '));
    first ||= ctl;
  }
  const sum = root.querySelector('.form-problem');
  if (sum) {
    sum.hidden = false;
    replace(sum, 
      h('p', { class: 'form-problem-title' }, problem.title || 'The service refused this.'),
      problem.detail ? h('p', problem.detail) : null,
      rest.length ? h('ul', rest.map((e) => h('li', h('code', e.field || '—'), ' ', e.message))) : null,
    );
  }
  if (first) first.focus();
  else if (sum) sum.focus();
  return placed;
}

/** The problem summary slot every form starts with. */
export function problemSlot() {
  return h('div', { class: 'form-problem', role: 'alert', tabindex: '-1', hidden: true });
}

/** Text of a problem for a toast or an inline message. */
export function problemText(p) {
  const fields = (p.errors || []).map((e) => `${fieldLabel(e.field)} ${e.message}`);
  return [p.title, p.detail, ...fields].filter(Boolean).join(' — ');
}

/** A problem as a banner: title, detail, and for a missing FX rate the way to fix it. */
export function problemBanner(p, prefix) {
  const fix = p.code === 'missing_fx_rate' ? h('a', { href: '#/settings', class: 'btn btn-small' }, 'Set the rate in Settings') : null;
  return h('div', { class: 'banner banner-error', role: 'alert' },
    h('div', {}, h('p', h('strong', prefix ? `${prefix}: ${p.title}` : p.title)), p.detail ? h('p', p.detail) : null),
    fix);
}
