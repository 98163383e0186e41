// Filter controls shared by the Forecast and Analytics pages.

import { h, nextId } from './dom.js';
import { quarter, today, addDays } from './format.js';
import { COMMON_CURRENCIES } from './deals.js';

/** A segmented control of buttons with aria-pressed; onChange(value). */
export function segmented(label, options, value, onChange, id) {
  const group = h('div', { class: 'seg', role: 'group', 'aria-label': label, id });
  for (const [v, text] of options) {
    const b = h('button', { type: 'button', 'aria-pressed': String(v === value), dataset: { value: v } }, text);
    b.addEventListener('click', () => {
      for (const x of group.children) x.setAttribute('aria-pressed', String(x === b));
      onChange(v);
    });
    group.append(b);
  }
  return group;
}

/** The period named by a query: this/next/last quarter or custom from..to. */
export function periodOf(query, fallback = 'this') {
  const kind = query.get('period') || fallback;
  if (kind === 'custom') {
    const q = quarter(0);
    return { kind, from: query.get('from') || q.from, to: query.get('to') || q.to };
  }
  if (kind === 'last7') return { kind, from: addDays(today(), -6), to: today() };
  if (kind === 'last30') return { kind, from: addDays(today(), -29), to: today() };
  const q = quarter(kind === 'next' ? 1 : kind === 'last' ? -1 : 0);
  return { kind, from: q.from, to: q.to, label: q.label };
}

/** Period picker: the segmented kinds plus from/to inputs shown for custom. */
export function periodPicker(period, kinds, onChange) {
  const from = h('input', { type: 'date', value: period.from, 'aria-label': 'From', id: nextId('from') });
  const to = h('input', { type: 'date', value: period.to, 'aria-label': 'To', id: nextId('to') });
  const custom = h('span', { class: 'custom-period', hidden: period.kind !== 'custom' }, from, ' – ', to);
  const emit = (kind) => onChange({ kind, from: from.value, to: to.value });
  const seg = segmented('Period', kinds, period.kind, (k) => {
    custom.hidden = k !== 'custom';
    if (k === 'custom') { from.focus(); return; }
    emit(k);
  }, 'period');
  from.addEventListener('change', () => emit('custom'));
  to.addEventListener('change', () => emit('custom'));
  return h('div', { class: 'filter' }, h('span', 'Period'), h('div', { class: 'period' }, seg, custom));
}

export function pipelineSelect(pipelines, value, onChange) {
  const sel = h('select', { 'aria-label': 'Pipeline', id: 'f-pipeline' }, h('option', { value: '' }, 'All pipelines'),
    pipelines.map((p) => h('option', { value: p.id, selected: p.id === value }, p.name)));
  sel.addEventListener('change', () => onChange(sel.value));
  return h('label', { class: 'filter' }, h('span', 'Pipeline'), sel);
}

export function ownerSelect(owners, value, onChange) {
  const sel = h('select', { 'aria-label': 'Owner', id: 'f-owner' }, h('option', { value: '' }, 'All owners'),
    [...new Set([...owners, value].filter(Boolean))].sort().map((o) => h('option', { value: o, selected: o === value }, o)));
  sel.addEventListener('change', () => onChange(sel.value));
  return h('label', { class: 'filter' }, h('span', 'Owner'), sel);
}

export function currencySelect(reporting, rates, value, onChange) {
  const have = new Set(rates.map((r) => r.currency));
  const list = [...new Set([reporting, ...have, ...COMMON_CURRENCIES])];
  const sel = h('select', { 'aria-label': 'Currency', id: 'f-currency' },
    list.map((c) => h('option', { value: c, selected: c === value }, c === reporting ? `${c} (reporting)` : have.has(c) ? c : `${c} (no rate)`)));
  sel.addEventListener('change', () => onChange(sel.value));
  return h('label', { class: 'filter' }, h('span', 'Currency'), sel);
}
