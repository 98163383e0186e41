// Modal dialogs on the native <dialog> element (focus is kept inside, Escape closes), and
// the toasts of the page.

import { h, field, $ } from './dom.js';
import { problemSlot, showProblem, clearErrors, problemText } from './forms.js';
import { setToken, Problem } from './api.js';

/**
 * modal({title, body, submitLabel, onSubmit(form) → Promise<result>, danger}) → Promise<result|null>.
 * onSubmit may throw a Problem: it is shown in the dialog, which stays open.
 */
export function modal({ title, description, body, submitLabel = 'Save', onSubmit, danger = false, cancelLabel = 'Cancel', onOpen }) {
  return new Promise((resolve) => {
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const slot = problemSlot();
    const submit = h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], type: 'submit' }, submitLabel);
    const cancel = h('button', { class: 'btn', type: 'button' }, cancelLabel);
    const form = h('form', { class: 'dialog-form', novalidate: true },
      h('header', { class: 'dialog-head' }, h('h2', { id: titleId }, title)),
      description ? h('p', { class: 'dialog-desc' }, description) : null,
      slot,
      h('div', { class: 'dialog-body' }, body),
      h('footer', { class: 'dialog-actions' }, cancel, submit));
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, form);
    let result = null;
    const done = () => { dlg.close(); };
    cancel.addEventListener('click', done);
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!onSubmit) { result = true; done(); return; }
      submit.disabled = true;
      submit.setAttribute('aria-busy', 'true');
      clearErrors(form);
      try {
        result = await onSubmit(form);
        done();
      } catch (err) {
        if (err instanceof Problem) showProblem(form, err);
        else showProblem(form, new Problem(0, null, String(err && err.message || err)));
      } finally {
        submit.disabled = false;
        submit.removeAttribute('aria-busy');
      }
    });
    document.body.append(dlg);
    dlg.showModal();
    if (onOpen) onOpen(dlg, submit);
    const firstInput = form.querySelector('input, select, textarea');
    (firstInput || submit).focus();
  });
}

/** Asks for a bearer token; resolves with it (stored for the session) or null. */
export function tokenPrompt(reason) {
  const input = h('input', { type: 'password', autocomplete: 'current-password', spellcheck: 'false', required: true, name: 'token' });
  const remember = h('input', { type: 'checkbox', name: 'remember' });
  return modal({
    title: 'Access token',
    description: `${reason} It is sent in the Authorization header only and kept in this browser (for this tab unless you tick the box).`,
    body: [
      field('Token', input, { field: 'token' }),
      h('label', { class: 'check' }, remember, ' Remember on this device'),
    ],
    submitLabel: 'Use token',
    cancelLabel: 'Not now',
    async onSubmit() {
      const t = input.value.trim();
      if (!t) throw new Problem(400, { title: 'A token is needed', errors: [{ field: 'token', message: 'is required' }] });
      setToken(t, remember.checked);
      document.getElementById('signout').hidden = false;
      return t;
    },
  });
}

/** A toast: a short message that goes away by itself (errors stay until dismissed). */
export function toast(message, { kind = 'info', timeout } = {}) {
  const box = $('#toasts');
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const el = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status' },
    h('p', message), close);
  close.addEventListener('click', () => el.remove());
  box.append(el);
  const ms = timeout ?? (kind === 'error' ? 12000 : 4000);
  if (ms) setTimeout(() => el.remove(), ms);
  return el;
}

export function toastProblem(prefix, p) {
  return toast(`${prefix}: ${problemText(p)}`, { kind: 'error' });
}
