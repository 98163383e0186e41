// Settings: the pipelines' stages (probability, forecast category, kind, required fields,
// stale days), saved whole with PUT /pipelines/{id}, the API's validation shown beside each
// cell (errors[] names them stages[2].probability and so on); and the FX rates, one
// PUT /fx-rates/{currency} each.

import { h, field, replace } from './dom.js';
import { get, put, pipelines as loadPipelines, forgetPipelines, fxRates, forgetFX, reportingCurrency, enc, Problem } from './api.js';
import { CATEGORY_LABELS } from './format.js';
import { toast, modal } from './dialogs.js';
import { problemSlot, showProblem, clearErrors } from './forms.js';

const REQUIRED = ['name', 'accountId', 'ownerId', 'amount', 'currency', 'closeDate', 'nextStep', 'leadId', 'source'];
const CATEGORIES = ['pipeline', 'best_case', 'commit', 'closed', 'omitted'];
const KINDS = [['open', 'Open'], ['won', 'Won'], ['lost', 'Lost']];

export async function mount(root, { query, setQuery }) {
  const [pipes, rates, reporting] = await Promise.all([loadPipelines(true), fxRates(true), reportingCurrency()]);
  const chosen = query.get('pipeline') || (pipes.find((p) => p.id === 'default') || pipes[0] || {}).id;
  const pipelinePanel = h('section', { class: 'panel', 'aria-labelledby': 'pl-title' });
  const fxPanel = h('section', { class: 'panel', 'aria-labelledby': 'fx-title', id: 'fx-panel' });
  root.append(h('section', { class: 'page page-settings', 'aria-labelledby': 'set-title' },
    h('header', { class: 'page-head' }, h('div', { class: 'page-title' }, h('h1', { id: 'set-title' }, 'Settings'),
      h('p', { class: 'muted' }, 'Pipelines and FX rates. Saving needs an admin token when tokens are configured.'))),
    pipelinePanel, fxPanel));

  renderPipeline(pipelinePanel, pipes, chosen, (id) => setQuery({ pipeline: id }));
  renderFX(fxPanel, rates, reporting);
  root.dataset.ready = 'true';
  return { reload: () => setQuery({ pipeline: chosen }) };
}

function renderPipeline(panel, pipes, chosen, choose) {
  const existing = pipes.find((p) => p.id === chosen);
  const model = existing
    ? { id: existing.id, name: existing.name, stages: existing.stages.map((s) => ({ ...s, requiredFields: [...s.requiredFields], staleAfterDays: s.staleAfterDays || 0 })) }
    : { id: chosen || '', name: '', stages: (pipes[0]?.stages || []).map((s) => ({ ...s, requiredFields: [...s.requiredFields], staleAfterDays: s.staleAfterDays || 0 })) };
  const isNew = !existing;
  const sel = h('select', { id: 'settings-pipeline', 'aria-label': 'Pipeline to edit' },
    pipes.map((p) => h('option', { value: p.id, selected: p.id === chosen }, `${p.name} (${p.id})`)),
    isNew ? h('option', { value: chosen, selected: true }, `New: ${chosen}`) : null);
  sel.addEventListener('change', () => choose(sel.value));
  const newBtn = h('button', { class: 'btn', type: 'button' }, '+ New pipeline');
  newBtn.addEventListener('click', () => {
    const idField = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', id: 'new-pipeline-id' });
    modal({
      title: 'New pipeline',
      description: 'It starts with a copy of the stages shown; change them, then save.',
      body: field('Id', idField, { field: 'id', hint: '1 to 100 of letters, digits, . _ -' }),
      submitLabel: 'Continue',
      async onSubmit() {
        const id = idField.value.trim();
        if (!/^[A-Za-z0-9._-]{1,100}$/.test(id)) throw new Problem(422, { title: 'Invalid id', errors: [{ field: 'id', message: 'must be 1 to 100 of letters, digits, . _ -' }] });
        return id;
      },
    }).then((id) => { if (id) choose(id); });
  });
  const nameIn = h('input', { type: 'text', value: model.name, id: 'pl-name', required: true });
  const idIn = isNew ? h('input', { type: 'text', value: model.id, id: 'pl-id', readonly: true }) : null;
  const tbody = h('tbody');
  const tableWrap = h('div', { class: 'table-wrap', dataset: { field: 'stages' }, tabindex: '-1' });
  const slot = problemSlot();
  const save = h('button', { class: 'btn btn-primary', type: 'submit', id: 'save-pipeline' }, 'Save pipeline');
  const add = h('button', { class: 'btn', type: 'button' }, '+ Add stage');

  function num(v) { return v === '' ? undefined : Number(v); }

  function rows() {
    replace(tbody, ...model.stages.map((st, i) => {
      const at = `stages[${i}]`;
      const inp = (key, attrs, set) => {
        const el = h('input', { ...attrs, dataset: { field: `${at}.${key}` }, 'aria-label': `${key} of stage ${i + 1}` });
        el.addEventListener('input', () => set(el.value));
        return h('div', { class: 'cell' }, el);
      };
      const select = (key, options, value, set) => {
        const el = h('select', { dataset: { field: `${at}.${key}` }, 'aria-label': `${key} of stage ${i + 1}` },
          options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
        el.addEventListener('change', () => set(el.value));
        return h('div', { class: 'cell' }, el);
      };
      const summary = h('summary', { dataset: { field: `${at}.requiredFields` }, 'aria-label': `Required fields of stage ${i + 1}` });
      const say = () => { summary.textContent = st.requiredFields.length ? st.requiredFields.join(', ') : 'None'; };
      say();
      const req = h('details', { class: 'req-fields' }, summary,
        h('div', { class: 'req-list', role: 'group', 'aria-label': `Required fields of stage ${i + 1}` },
          REQUIRED.map((f) => {
            const cb = h('input', { type: 'checkbox', checked: st.requiredFields.includes(f) });
            cb.addEventListener('change', () => {
              st.requiredFields = cb.checked ? [...st.requiredFields, f] : st.requiredFields.filter((x) => x !== f);
              say();
            });
            return h('label', cb, f);
          })));
      const move = (d) => () => {
        const j = i + d;
        if (j < 0 || j >= model.stages.length) return;
        [model.stages[i], model.stages[j]] = [model.stages[j], model.stages[i]];
        rows();
      };
      return h('tr', { dataset: { row: String(i) } },
        h('td', inp('id', { type: 'text', value: st.id, size: 12 }, (v) => { st.id = v; })),
        h('td', inp('name', { type: 'text', value: st.name, size: 14 }, (v) => { st.name = v; })),
        h('td', inp('probability', { type: 'number', min: 0, max: 100, value: String(st.probability), inputmode: 'numeric' }, (v) => { st.probability = num(v); })),
        h('td', select('forecastCategory', CATEGORIES.map((c) => [c, CATEGORY_LABELS[c]]), st.forecastCategory, (v) => { st.forecastCategory = v; })),
        h('td', select('status', KINDS, st.status, (v) => { st.status = v; })),
        h('td', h('div', { class: 'cell' }, req)),
        h('td', inp('staleAfterDays', { type: 'number', min: 0, value: String(st.staleAfterDays || 0), inputmode: 'numeric' }, (v) => { st.staleAfterDays = num(v); })),
        h('td', h('div', { class: 'row-actions' },
          h('button', { class: 'btn btn-small', type: 'button', 'aria-label': `Move stage ${i + 1} up`, onclick: move(-1) }, '↑'),
          h('button', { class: 'btn btn-small', type: 'button', 'aria-label': `Move stage ${i + 1} down`, onclick: move(1) }, '↓'),
          h('button', { class: 'btn btn-small', type: 'button', 'aria-label': `Remove stage ${i + 1}`, onclick: () => { model.stages.splice(i, 1); rows(); } }, '×'))));
    }));
  }

  add.addEventListener('click', () => {
    const lastOpen = model.stages.map((s) => s.status).lastIndexOf('open');
    model.stages.splice(lastOpen + 1, 0, { id: '', name: '', probability: 50, forecastCategory: 'pipeline', status: 'open', requiredFields: [], staleAfterDays: 0 });
    rows();
    tbody.children[lastOpen + 1]?.querySelector('input')?.focus();
  });

  tableWrap.append(h('table', { class: 'stages-table', id: 'stages-table' },
    h('caption', 'Stages, in order. Open stages come first; exactly one won stage and at least one lost stage.'),
    h('thead', h('tr', ['Id', 'Name', 'Probability %', 'Category', 'Kind', 'Required fields', 'Stale after (days)', ''].map((t) => h('th', { scope: 'col' }, t)))),
    tbody));
  rows();

  const form = h('form', { novalidate: true, id: 'pipeline-form' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'pl-title' }, 'Pipeline'),
      h('div', { class: 'filters' }, h('label', { class: 'filter' }, h('span', 'Pipeline'), sel), newBtn)),
    slot,
    h('div', { class: 'form-grid' },
      idIn ? field('Id', idIn, { field: 'id' }) : null,
      field('Name', nameIn, { field: 'name' })),
    tableWrap,
    h('div', { class: 'form-actions' }, add, save));
  nameIn.addEventListener('input', () => { model.name = nameIn.value; });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    clearErrors(form);
    try {
      const body = {
        name: model.name,
        stages: model.stages.map((s) => {
          const o = { id: s.id, name: s.name, probability: s.probability, forecastCategory: s.forecastCategory, status: s.status };
          // An empty list is left out: the service then stores and confirms the same nil list
          // (a PUT naming "requiredFields": [] waits 30 s for a confirmation that never
          // matches, then answers 503, though it stored the pipeline).
          if (s.requiredFields.length) o.requiredFields = s.requiredFields;
          if (s.staleAfterDays) o.staleAfterDays = s.staleAfterDays;
          return o;
        }),
      };
      await put(`/pipelines/${enc(model.id)}`, body);
      forgetPipelines();
      toast(`Saved pipeline “${model.name}”.`);
      if (isNew) choose(model.id);
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      // stages[1].requiredFields[0] belongs to the row's required-fields group.
      showProblem(form, err, { alias: (f) => f.replace(/^(stages\[\d+\]\.requiredFields)\[\d+\]$/, '$1') });
    } finally {
      save.disabled = false;
    }
  });
  replace(panel, form);
}

function renderFX(panel, rates, reporting) {
  const tbody = h('tbody');
  const row = (r) => {
    const rateIn = h('input', { type: 'text', inputmode: 'decimal', value: r.rate, dataset: { field: 'rate' }, 'aria-label': `Rate of ${r.currency}`, size: 14 });
    const saveBtn = h('button', { class: 'btn btn-small', type: 'submit' }, 'Save');
    const slot = problemSlot();
    const f = h('form', { class: 'fx-row', novalidate: true, dataset: { currency: r.currency } },
      h('div', { class: 'cell' }, rateIn), slot, saveBtn);
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(f);
      try {
        await put(`/fx-rates/${enc(r.currency)}`, { rate: rateIn.value.trim() });
        forgetFX();
        toast(`Saved the ${r.currency} rate.`);
      } catch (err) {
        if (!(err instanceof Problem)) throw err;
        showProblem(f, err);
      }
    });
    return h('tr', { dataset: { currency: r.currency } }, h('th', { scope: 'row' }, r.currency),
      h('td', r.currency === reporting ? h('span', { class: 'muted' }, '1 — the reporting currency') : f));
  };
  replace(tbody, ...rates.map(row));

  const cur = h('input', { type: 'text', maxlength: 3, class: 'upper', id: 'fx-new-currency', dataset: { field: 'currency' }, autocomplete: 'off' });
  const rate = h('input', { type: 'text', inputmode: 'decimal', id: 'fx-new-rate', dataset: { field: 'rate' }, autocomplete: 'off' });
  const slot = problemSlot();
  const addForm = h('form', { novalidate: true, id: 'fx-add' },
    h('h3', 'Add a rate'), slot,
    h('div', { class: 'form-grid' },
      field('Currency', cur, { field: 'currency', hint: 'ISO 4217, e.g. EUR' }),
      field(`Rate (${reporting} for one unit)`, rate, { field: 'rate', hint: 'e.g. 1.08' })),
    h('div', { class: 'form-actions' }, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Add rate')));
  addForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(addForm);
    const c = cur.value.trim().toUpperCase();
    try {
      if (!c) throw new Problem(422, { title: 'Invalid field', errors: [{ field: 'currency', message: 'is required' }] });
      const res = await put(`/fx-rates/${enc(c)}`, { rate: rate.value.trim() });
      forgetFX();
      toast(`Saved the ${c} rate.`);
      const fresh = await get('/fx-rates');
      replace(tbody, ...fresh.items.map(row));
      cur.value = '';
      rate.value = '';
      return res;
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      showProblem(addForm, err);
    }
  });
  replace(panel, 
    h('h2', { id: 'fx-title' }, 'FX rates'),
    h('p', { class: 'muted' }, `Units of ${reporting} for one unit of each currency. A forecast in a currency without a rate is refused, never guessed.`),
    h('div', { class: 'table-wrap' }, h('table', { id: 'fx-table' },
      h('thead', h('tr', h('th', { scope: 'col' }, 'Currency'), h('th', { scope: 'col' }, 'Rate'))), tbody)),
    addForm);
}
