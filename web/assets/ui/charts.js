// SVG charts, drawn from the API's figures: stacked bars (the forecast's exclusive
// categories), horizontal bars (loss reasons) and a funnel. Each chart is an img with a
// label; the table beside it carries the same figures for screen readers and for exactness.

import { s } from './dom.js';

const W0 = 720;
/** The drawing width: the host's width in CSS pixels, so text draws at its own size. */
const widthOf = (host) => Math.max(320, Math.round((host && host.clientWidth) || W0));

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

/**
 * stackedBars({groups: [{label, parts: [{key, value, title}]}], series: [{key, cls, label}], label})
 * Bars grow up from the axis; each part is a segment in series order.
 */
export function stackedBars({ groups, series, label, height = 260, host }) {
  const W = widthOf(host);
  const padL = 56;
  const padB = 40;
  const padT = 12;
  const innerW = W - padL - 12;
  const innerH = height - padT - padB;
  const totals = groups.map((g) => g.parts.reduce((a, p) => a + Math.max(0, p.value), 0));
  const max = niceMax(Math.max(0, ...totals));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
  for (let i = 0; i <= 4; i++) {
    const y = padT + innerH - (innerH * i) / 4;
    svg.append(s('line', { class: i ? 'grid' : 'axis', x1: padL, x2: W - 12, y1: y, y2: y }));
    svg.append(s('text', { x: padL - 6, y: y + 4, 'text-anchor': 'end' }, compact.format((max * i) / 4)));
  }
  const n = Math.max(groups.length, 1);
  const slot = innerW / n;
  const bw = Math.min(64, slot * 0.62);
  groups.forEach((g, gi) => {
    const x = padL + gi * slot + (slot - bw) / 2;
    let y = padT + innerH;
    for (const se of series) {
      const part = g.parts.find((p) => p.key === se.key);
      const v = part ? Math.max(0, part.value) : 0;
      if (!v) continue;
      const hgt = (innerH * v) / max;
      y -= hgt;
      svg.append(s('rect', { class: se.cls, x, y, width: bw, height: Math.max(hgt, 0.5), rx: 2 },
        s('title', {}, `${g.label} · ${se.label}: ${part.title || compact.format(v)}`)));
    }
    const lab = g.label.length > 14 ? `${g.label.slice(0, 13)}…` : g.label;
    svg.append(s('text', { x: x + bw / 2, y: padT + innerH + 16, 'text-anchor': 'middle' }, lab));
    if (totals[gi] > 0) {
      svg.append(s('text', { class: 'label-strong', x: x + bw / 2, y: y - 4, 'text-anchor': 'middle' }, compact.format(totals[gi])));
    }
  });
  if (!groups.length) svg.append(s('text', { x: W / 2, y: height / 2, 'text-anchor': 'middle' }, 'Nothing in this period'));
  return svg;
}

/** hbars({items: [{label, value, title}], label, cls}) — one bar per item, longest first. */
export function hbars({ items, label, cls = 'fill-accent', host }) {
  const W = widthOf(host);
  const rowH = 26;
  const padL = Math.min(160, W * 0.3);
  const height = Math.max(items.length, 1) * rowH + 10;
  const max = Math.max(1, ...items.map((i) => i.value));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': label });
  items.forEach((it, i) => {
    const y = 5 + i * rowH;
    const w = ((W - padL - 150) * it.value) / max;
    const lab = it.label.length > 22 ? `${it.label.slice(0, 21)}…` : it.label;
    svg.append(s('text', { x: padL - 8, y: y + 16, 'text-anchor': 'end', class: 'label-strong' }, lab));
    svg.append(s('rect', { class: cls, x: padL, y: y + 3, width: Math.max(w, 1), height: rowH - 8, rx: 3 }, s('title', {}, `${it.label}: ${it.title || it.value}`)));
    svg.append(s('text', { x: padL + w + 6, y: y + 16 }, it.title || String(it.value)));
  });
  if (!items.length) svg.append(s('text', { x: W / 2, y: 20, 'text-anchor': 'middle' }, 'None in this period'));
  return svg;
}

/**
 * funnel({stages: [{label, value, note}], label}) — one centred band per stage whose width
 * follows the value (deals that entered the stage), joined by soft connectors; the stage
 * name on the left, the count in the band, the note (conversion) on the right.
 */
export function funnel({ stages, label, host }) {
  const W = widthOf(host);
  const bandH = 34;
  const gap = 12;
  const padL = Math.min(150, W * 0.24);
  const padR = Math.min(130, W * 0.22);
  const height = Math.max(stages.length, 1) * (bandH + gap) + 4;
  const maxW = W - padL - padR;
  const cx = padL + maxW / 2;
  const max = Math.max(1, ...stages.map((x) => x.value));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img', 'aria-label': label });
  const widths = stages.map((x) => Math.max(maxW * 0.06, (maxW * x.value) / max));
  stages.forEach((st, i) => {
    const y = 2 + i * (bandH + gap);
    const w = widths[i];
    if (i + 1 < stages.length) {
      const nw = widths[i + 1];
      const pts = [[cx - w / 2, y + bandH], [cx + w / 2, y + bandH], [cx + nw / 2, y + bandH + gap], [cx - nw / 2, y + bandH + gap]];
      svg.append(s('polygon', { class: 'fill-soft', points: pts.map((p) => p.join(',')).join(' ') }));
    }
    svg.append(s('rect', { class: i % 2 ? 'fill-best' : 'fill-accent', x: cx - w / 2, y, width: w, height: bandH, rx: 4 },
      s('title', {}, `${st.label}: ${st.value} entered${st.note ? `, ${st.note}` : ''}`)));
    svg.append(s('text', { x: padL - 10, y: y + bandH / 2 + 4, 'text-anchor': 'end', class: 'label-strong' }, st.label));
    const inside = w > 40;
    svg.append(s('text', { x: inside ? cx : cx + w / 2 + 6, y: y + bandH / 2 + 4, 'text-anchor': inside ? 'middle' : 'start', class: inside ? 'label-inverse' : 'label-strong' }, String(st.value)));
    if (st.note) svg.append(s('text', { x: W - padR + 12, y: y + bandH / 2 + 4 }, st.note));
  });
  if (!stages.length) svg.append(s('text', { x: W / 2, y: 20, 'text-anchor': 'middle' }, 'No stages'));
  return svg;
}
