// Commands on deals, shared by the board and the opportunity page: the deal form (create
// and edit), moving stages, closing won or lost, reopening. Every command names the version
// the user saw (expectedVersion), so a change someone made meanwhile is a visible conflict,
// never silently overwritten.

import { h, field, nextId, replace } from './dom.js';
import { post, patch, enc, Problem } from './api.js';
import { modal, toast } from './dialogs.js';
import { CATEGORY_LABELS, today } from './format.js';

export const COMMON_CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK', 'DKK', 'PLN', 'INR', 'BRL', 'CNY', 'SGD'];
export const LOSS_REASONS = ['Price', 'Timing', 'Competitor', 'No decision', 'Budget', 'Missing features', 'Went silent'];

export const openStages = (p) => (p ? p.stages.filter((s) => s.status === 'open') : []);
export const stageOf = (p, id) => (p ? p.stages.find((s) => s.id === id) : undefined);

const path = (opp, action) => `/opportunities/${enc(opp.id)}${action ? `/${action}` : ''}`;

/** The outcome of a command: the opportunity after it, or null when it is not applied yet. */
function outcome(res) {
  if (res.status === 202) {
    toast('The service took the command; it shows here once applied.');
    return null;
  }
  return res.data;
}

export async function moveStage(opp, stageId) {
  return outcome(await post(path(opp, 'stage'), { stageId, expectedVersion: opp.version }));
}

export async function reopen(opp, stageId) {
  return outcome(await post(path(opp, 'reopen'), { stageId, expectedVersion: opp.version }));
}

export async function update(opp, changes) {
  return outcome(await patch(path(opp), { ...changes, expectedVersion: opp.version }));
}

function datalist(values) {
  const id = nextId('dl');
  return { id, el: h('datalist', { id }, values.map((v) => h('option', { value: v }))) };
}

/** Closing won: the close date (default today) and the final amount. */
export function closeWonDialog(opp) {
  const closeDate = h('input', { type: 'date', name: 'closeDate', value: today() });
  const amount = h('input', { type: 'text', inputmode: 'decimal', name: 'amount', value: opp.amount, autocomplete: 'off' });
  return modal({
    title: `Close “${opp.name}” as won`,
    body: [
      field('Close date', closeDate, { field: 'closeDate' }),
      field(`Amount (${opp.currency})`, amount, { field: 'amount', hint: 'The final amount, as decimal text.' }),
    ],
    submitLabel: 'Mark won',
    async onSubmit() {
      const body = { expectedVersion: opp.version };
      if (closeDate.value) body.closeDate = closeDate.value;
      if (amount.value.trim() && amount.value.trim() !== opp.amount) body.amount = amount.value.trim();
      return outcome(await post(path(opp, 'close-won'), body)) || 'accepted';
    },
  });
}

/** Closing lost asks for the reason (required), the competitor and a note. */
export function closeLostDialog(opp) {
  const reasons = datalist(LOSS_REASONS);
  const reason = h('input', { type: 'text', name: 'reason', list: reasons.id, required: true, autocomplete: 'off' });
  const competitor = h('input', { type: 'text', name: 'competitor', autocomplete: 'off' });
  const note = h('textarea', { name: 'note', rows: 3 });
  return modal({
    title: `Close “${opp.name}” as lost`,
    body: [
      field('Loss reason', reason, { field: 'reason', hint: 'Required. Pick one or type your own.' }), reasons.el,
      field('Competitor', competitor, { field: 'competitor', hint: 'Who won it, if anyone.' }),
      field('Note', note, { field: 'note' }),
    ],
    submitLabel: 'Mark lost',
    danger: true,
    async onSubmit() {
      const body = { expectedVersion: opp.version, reason: reason.value.trim() };
      if (competitor.value.trim()) body.competitor = competitor.value.trim();
      if (note.value.trim()) body.note = note.value;
      return outcome(await post(path(opp, 'close-lost'), body)) || 'accepted';
    },
  });
}

/** Reopening a closed deal into an open stage of its pipeline. */
export function reopenDialog(opp, pipeline, stageId) {
  const sel = h('select', { name: 'stageId' }, openStages(pipeline).map((s) => h('option', { value: s.id, selected: s.id === stageId }, s.name)));
  return modal({
    title: `Reopen “${opp.name}”`,
    body: [field('Into stage', sel, { field: 'stageId' })],
    submitLabel: 'Reopen',
    async onSubmit() {
      return (await reopen(opp, sel.value)) || 'accepted';
    },
  });
}

/**
 * dealForm({opp, pipelines, pipelineId, owners, currencies}) builds the fields of a deal.
 * Without opp it is the create form (pipeline, stage, lead and source included); with opp
 * the edit form, whose changes() are only the members that differ from opp.
 */
export function dealForm({ opp, pipelines = [], pipelineId, owners = [], currencies = [] }) {
  const create = !opp;
  const o = opp || {};
  const ownerList = datalist(owners);
  const curList = datalist([...new Set([...currencies, ...COMMON_CURRENCIES])]);
  const c = {
    name: h('input', { type: 'text', name: 'name', value: o.name || '', required: true, autocomplete: 'off' }),
    accountId: h('input', { type: 'text', name: 'accountId', value: o.accountId || '', required: true, autocomplete: 'off', spellcheck: 'false' }),
    ownerId: h('input', { type: 'text', name: 'ownerId', value: o.ownerId || '', required: true, list: ownerList.id, autocomplete: 'off', spellcheck: 'false' }),
    amount: h('input', { type: 'text', name: 'amount', inputmode: 'decimal', value: o.amount || '', required: true, autocomplete: 'off', placeholder: '12500.00' }),
    currency: h('input', { type: 'text', name: 'currency', value: o.currency || currencies[0] || 'USD', required: true, list: curList.id, maxlength: 3, autocomplete: 'off', spellcheck: 'false', class: 'upper' }),
    closeDate: h('input', { type: 'date', name: 'closeDate', value: o.closeDate || '', required: true }),
    nextStep: h('textarea', { name: 'nextStep', rows: 2 }, o.nextStep || ''),
    probability: h('input', { type: 'number', name: 'probability', min: 0, max: 100, step: 1, inputmode: 'numeric',
      value: o.probabilityOverride ? String(o.probabilityOverride.value) : '' }),
    forecastCategory: h('select', { name: 'forecastCategory' },
      h('option', { value: '' }, 'Stage default'),
      ['pipeline', 'best_case', 'commit', 'omitted'].map((k) => h('option', { value: k, selected: o.forecastCategoryOverride?.value === k }, CATEGORY_LABELS[k]))),
  };
  let pipelineSel = null;
  let stageSel = null;
  if (create) {
    c.leadId = h('input', { type: 'text', name: 'leadId', autocomplete: 'off', spellcheck: 'false' });
    c.source = h('input', { type: 'text', name: 'source', autocomplete: 'off' });
    pipelineSel = h('select', { name: 'pipelineId' }, pipelines.map((p) => h('option', { value: p.id, selected: p.id === pipelineId }, p.name)));
    stageSel = h('select', { name: 'stageId' });
    const fillStages = () => {
      const p = pipelines.find((x) => x.id === pipelineSel.value);
      replace(stageSel, ...openStages(p).map((s) => h('option', { value: s.id }, s.name)));
      updateDefaults();
    };
    pipelineSel.addEventListener('change', fillStages);
    stageSel.addEventListener('change', () => updateDefaults());
    c.pipelineId = pipelineSel;
    c.stageId = stageSel;
    queueMicrotask(fillStages);
  }
  function currentStage() {
    if (create) {
      const p = pipelines.find((x) => x.id === pipelineSel.value);
      return stageOf(p, stageSel.value);
    }
    return stageOf(pipelines.find((x) => x.id === o.pipelineId), o.stageId);
  }
  function updateDefaults() {
    const st = currentStage();
    c.probability.placeholder = st ? `Stage default: ${st.probability}%` : 'Stage default';
    c.forecastCategory.options[0].textContent = st ? `Stage default (${CATEGORY_LABELS[st.forecastCategory] || st.forecastCategory})` : 'Stage default';
  }
  if (!create) updateDefaults();
  c.currency.addEventListener('input', () => { c.currency.value = c.currency.value.toUpperCase(); });

  const grid = h('div', { class: 'form-grid' },
    field('Name', c.name, { field: 'name', wide: true }),
    field('Account', c.accountId, { field: 'accountId', hint: 'The Customer 360 account id.' }),
    field('Owner', c.ownerId, { field: 'ownerId' }), ownerList.el,
    field('Amount', c.amount, { field: 'amount', hint: 'Decimal text, e.g. 12500.00' }),
    field('Currency', c.currency, { field: 'currency', hint: 'ISO 4217, e.g. EUR' }), curList.el,
    field('Close date', c.closeDate, { field: 'closeDate' }),
    create ? field('Pipeline', pipelineSel, { field: 'pipelineId' }) : null,
    create ? field('Stage', stageSel, { field: 'stageId' }) : null,
    field('Probability override (%)', c.probability, { field: 'probability', hint: 'Empty: the stage default.' }),
    field('Forecast category', c.forecastCategory, { field: 'forecastCategory' }),
    create ? field('Lead', c.leadId, { field: 'leadId' }) : null,
    create ? field('Source', c.source, { field: 'source' }) : null,
    field('Next step', c.nextStep, { field: 'nextStep', wide: true }),
  );

  function values() {
    const v = {};
    for (const [k, el] of Object.entries(c)) v[k] = el.value.trim();
    v.nextStep = c.nextStep.value;
    return v;
  }

  /** The create body: every filled member. */
  function createBody() {
    const v = values();
    const body = {};
    for (const k of ['name', 'accountId', 'ownerId', 'amount', 'currency', 'closeDate', 'pipelineId', 'stageId', 'leadId', 'source']) {
      if (v[k]) body[k] = v[k];
    }
    if (v.nextStep.trim()) body.nextStep = v.nextStep;
    if (v.probability !== '') body.probability = Number(v.probability);
    if (v.forecastCategory) body.forecastCategory = v.forecastCategory;
    return body;
  }

  /** The PATCH members that differ from the opportunity the form was opened on. */
  function changes() {
    const v = values();
    const out = {};
    for (const k of ['name', 'accountId', 'ownerId', 'amount', 'currency', 'closeDate']) {
      if (v[k] !== (o[k] || '')) out[k] = v[k];
    }
    if (v.nextStep !== (o.nextStep || '')) out.nextStep = v.nextStep.trim() ? v.nextStep : null;
    const prob = o.probabilityOverride ? String(o.probabilityOverride.value) : '';
    if (v.probability !== prob) out.probability = v.probability === '' ? null : Number(v.probability);
    const cat = o.forecastCategoryOverride ? o.forecastCategoryOverride.value : '';
    if (v.forecastCategory !== cat) out.forecastCategory = v.forecastCategory || null;
    return out;
  }

  return { el: grid, controls: c, createBody, changes };
}

/** The create dialog; resolves with the new opportunity (or 'accepted'), or null. */
export function newDealDialog({ pipelines, pipelineId, owners, currencies }) {
  const form = dealForm({ pipelines, pipelineId, owners, currencies });
  return modal({
    title: 'New deal',
    body: form.el,
    submitLabel: 'Create deal',
    async onSubmit() {
      const res = await post('/opportunities', form.createBody());
      return outcome(res) || 'accepted';
    },
  });
}

/** Whether a problem is a version conflict (someone changed the deal meanwhile). */
export const isConflict = (p) => p instanceof Problem && (p.code === 'version_conflict' || p.status === 409);
