// @ts-check
/**
 * The Statistics panel: live plots of the last minute (data sent and received by kind,
 * round-trip time) and a table of every stream. A non-modal side panel opened from the
 * toolbar; Escape or Close shuts it. It renders what a `StatsSampler` (stats.js)
 * reports and draws only while open. Plots by the vendored uPlot
 * (vendor/uplot/README.md). All user-provided text goes through `textContent`.
 */

import uPlot from './vendor/uplot/uPlot.esm.js';
import { byId, el } from './dom.js';
import { formatNumber, t } from './i18n.js';

/** @typedef {import('./stats.js').StatsSampler} StatsSampler */
/** @typedef {import('./stats.js').Sample} Sample */
/** @typedef {import('./stats.js').History} History */
/** @typedef {import('./stats.js').MediaKind} MediaKind */

/** Sent in blue and received in red (the totals); the kinds alike in both plots. */
const COLORS = { sent: '#4f8cff', received: '#e5484d', camera: '#f5a524', screen: '#a78bfa', audio: '#2dd4bf', rtt: '#d0d4de' };
const PLOT_HEIGHT = 190;
/** The camera's simulcast layers by `video_state` layer number (0 lowest). */
const LAYER_RIDS = ['q', 'h', 'f'];
/** @param {string} rid @returns {string} */
const ridName = (rid) => (LAYER_RIDS.includes(rid) ? t(`stats.layer_${rid}`) : rid);
/** @param {number} layer @returns {string} */
const layerName = (layer) => (LAYER_RIDS[layer] ? ridName(LAYER_RIDS[layer]) : String(layer));
/** @param {'camera' | 'microphone' | 'screen'} source @returns {string} */
const sourceName = (source) => t(`stats.source_${source}`);
/** @param {number} value @param {number} digits */
const fixed = (value, digits) => formatNumber(value, { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** @param {number} bytesPerSecond */
const kbits = (bytesPerSecond) => (bytesPerSecond * 8) / 1000;

/**
 * A rate plot's options: one series per kind and the total.
 * @param {string} title
 * @param {string} total the total's colour
 * @param {number} width
 * @returns {uPlot.Options}
 */
function rateOptions(title, total, width) {
  return {
    title,
    width,
    height: PLOT_HEIGHT,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] } },
    axes: [timeAxis(), axis('kbit/s')],
    series: [
      {},
      { label: t('stats.total'), stroke: total, width: 2 },
      { label: t('stats.camera'), stroke: COLORS.camera, width: 1 },
      { label: t('stats.screen'), stroke: COLORS.screen, width: 1 },
      { label: t('stats.audio'), stroke: COLORS.audio, width: 1 },
    ],
  };
}

/**
 * @param {string} label
 * @returns {uPlot.Axis}
 */
function axis(label) {
  return { label, stroke: '#a0a6b8', grid: { stroke: '#323746', width: 1 }, ticks: { stroke: '#323746', width: 1 } };
}

/**
 * The x axis: clock time as minutes and seconds, on one line.
 * @returns {uPlot.Axis}
 */
function timeAxis() {
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return {
    ...axis(''),
    values: (_u, splits) => splits.map((s) => {
      const d = new Date(s * 1000);
      return `${two(d.getMinutes())}:${two(d.getSeconds())}`;
    }),
  };
}

/**
 * The columns of a rate plot, in kbit/s.
 * @param {History} h
 * @param {'sent' | 'received'} direction
 * @returns {uPlot.AlignedData}
 */
function rateData(h, direction) {
  const d = h[direction];
  return [h.time, d.total.map(kbits), d.camera.map(kbits), d.screen.map(kbits), d.audio.map(kbits)];
}

export class StatsPanel {
  constructor() {
    this.root = byId('stats', HTMLElement);
    this.toggleButton = byId('stats-toggle', HTMLButtonElement);
    this.closeButton = byId('stats-close', HTMLButtonElement);
    this.plotArea = byId('stats-plots', HTMLElement);
    this.summary = byId('stats-summary', HTMLElement);
    this.rows = byId('stats-rows', HTMLTableSectionElement);
    /** @type {{sent: uPlot, received: uPlot, rtt: uPlot} | null} */
    this.plots = null;
    /** @type {StatsSampler | null} */
    this.sampler = null;
    /** @type {(participant: number) => string} */
    this.nameOf = (id) => t('stats.participant', { id });
    this.unsubscribe = () => {};
    this.toggleButton.addEventListener('click', () => (this.root.hidden ? this.open() : this.close()));
    this.closeButton.addEventListener('click', () => this.close());
    this.root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.close();
      }
    });
    new ResizeObserver(() => this.fit()).observe(this.plotArea);
  }

  /**
   * Follows a sampler (one per meeting).
   * @param {StatsSampler} sampler
   * @param {(participant: number) => string} nameOf
   */
  attach(sampler, nameOf) {
    this.detach();
    this.sampler = sampler;
    this.nameOf = nameOf;
    this.unsubscribe = sampler.subscribe((sample) => {
      if (!this.root.hidden) {
        this.render(sample);
      }
    });
  }

  /** Closes the panel and stops following the sampler. */
  detach() {
    this.unsubscribe();
    this.unsubscribe = () => {};
    this.sampler = null;
    this.close();
    this.rows.replaceChildren();
  }

  open() {
    this.root.hidden = false;
    this.toggleButton.setAttribute('aria-expanded', 'true');
    this.plots ??= this.createPlots();
    const latest = this.sampler?.latest;
    if (latest) {
      this.render(latest);
    }
    this.closeButton.focus();
  }

  close() {
    if (this.root.hidden) {
      return;
    }
    const hadFocus = this.root.contains(document.activeElement);
    this.root.hidden = true;
    this.toggleButton.setAttribute('aria-expanded', 'false');
    if (hadFocus) {
      this.toggleButton.focus();
    }
  }

  /** How many points each plot shows (for the browser tests). */
  pointCounts() {
    const p = this.plots;
    return p ? { sent: p.sent.data[0].length, received: p.received.data[0].length, rtt: p.rtt.data[0].length } : null;
  }

  createPlots() {
    const width = this.plotWidth();
    const sent = new uPlot(rateOptions(t('stats.sent'), COLORS.sent, width), [[], [], [], [], []], this.plotArea);
    const received = new uPlot(rateOptions(t('stats.received'), COLORS.received, width), [[], [], [], [], []], this.plotArea);
    const rtt = new uPlot(
      {
        title: t('stats.rtt_title'),
        width,
        height: PLOT_HEIGHT,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.2)] } },
        axes: [timeAxis(), axis('ms')],
        series: [{}, { label: t('stats.rtt'), stroke: COLORS.rtt, width: 2 }],
      },
      [[], []],
      this.plotArea,
    );
    return { sent, received, rtt };
  }

  plotWidth() {
    return Math.max(240, this.plotArea.clientWidth);
  }

  fit() {
    if (this.plots && !this.root.hidden) {
      const width = this.plotWidth();
      for (const plot of Object.values(this.plots)) {
        plot.setSize({ width, height: PLOT_HEIGHT });
      }
    }
  }

  /** @param {Sample} sample */
  render(sample) {
    const h = this.sampler?.history;
    if (this.plots && h) {
      this.plots.sent.setData(rateData(h, 'sent'));
      this.plots.received.setData(rateData(h, 'received'));
      this.plots.rtt.setData([h.time, h.rttMs]);
    }
    const rtt = sample.rttMs === null ? t('stats.unknown') : t('stats.ms', { value: fixed(sample.rttMs, 1) });
    this.summary.textContent = t('stats.summary', {
      sent: fixed(kbits(sample.sent.total), 0),
      received: fixed(kbits(sample.received.total), 0),
      rtt,
    });
    this.renderTable(sample);
  }

  /** @param {Sample} sample */
  renderTable(sample) {
    /** @type {HTMLTableRowElement[]} */
    const rows = [];
    const order = { camera: 0, screen: 1, microphone: 2 };
    const inbound = [...sample.inbound].sort(
      (a, b) => this.nameOf(a.participant).localeCompare(this.nameOf(b.participant)) || order[a.source] - order[b.source],
    );
    for (const s of inbound) {
      const video = s.source !== 'microphone';
      const layer = !video ? '' : s.paused ? t('stats.paused', { reason: s.paused.replace('_', ' ') }) : s.layer === null ? '' : s.source === 'screen' ? t('stats.single') : layerName(s.layer);
      rows.push(
        row(t('stats.stream', { name: this.nameOf(s.participant), source: sourceName(s.source) }), {
          resolution: video ? size(s.width, s.height) : '',
          fps: video ? fixed(s.fps, 0) : '',
          layer,
          bitrate: fixed(kbits(s.bitsPerSecond / 8), 0),
          loss: fixed(s.lossPercent, 1),
          jitter: s.jitterMs === null ? '' : fixed(s.jitterMs, 0),
          freezes: video && s.freezeCount !== null ? formatNumber(s.freezeCount) : '',
          limitation: '',
        }),
      );
    }
    for (const o of sample.outbound) {
      rows.push(
        row(t('stats.own_stream', { layer: ridName(o.rid) }), {
          resolution: size(o.width, o.height),
          fps: fixed(o.fps, 0),
          layer: ridName(o.rid),
          bitrate: fixed(kbits(o.bitsPerSecond / 8), 0),
          loss: '',
          jitter: '',
          freezes: '',
          limitation: o.limitation ?? '',
        }),
      );
    }
    this.rows.replaceChildren(...rows);
  }
}

/**
 * @param {number | null} width
 * @param {number | null} height
 */
function size(width, height) {
  return width && height ? `${width}\u00d7${height}` : '';
}

/**
 * One table row: the stream as its header cell, then the figures in column order.
 * @param {string} stream
 * @param {{resolution: string, fps: string, layer: string, bitrate: string, loss: string, jitter: string, freezes: string, limitation: string}} cells
 */
function row(stream, cells) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  const th = el('th', '', stream);
  th.setAttribute('scope', 'row');
  tr.append(th);
  for (const key of /** @type {const} */ (['resolution', 'fps', 'layer', 'bitrate', 'loss', 'jitter', 'freezes', 'limitation'])) {
    const td = el('td', key, cells[key] || '\u2013');
    tr.append(td);
  }
  return tr;
}
