// The admin dashboard (/admin, behind the admin login): the server's data rates over the
// last 10 minutes, live, and its rooms, participants and storage. Reads the admin API
// (docs/monitoring.md): the history once, then one server-sent sample a second; rooms
// every 2 seconds. Plots by the vendored uPlot. Nothing here is secret: the data needs
// the session cookie, which the browser sends by itself (same origin). Its text comes
// from the catalogues through i18n.js, in the language the meeting uses.

import uPlot from './vendor/uplot/uPlot.esm.js';
import { el } from './dom.js';
import { formatNumber, formatTime, language, t, translatePage } from './i18n.js';

/** Points kept in the plots: 10 minutes at one a second. */
const WINDOW = 600;
const PLOT_HEIGHT = 200;
const ROOMS_EVERY_MS = 2000;
const COLORS = {
  sent: '#1f5fbf',
  received: '#c62828',
  video: '#1f5fbf',
  screen: '#7b1fa2',
  audio: '#2e7d32',
  signaling: '#ef6c00',
  files: '#5d4037',
  cpu: '#37474f',
};

/**
 * @typedef {{video: number, screen: number, audio: number, signaling: number, files: number, udp: number}} Bytes
 * @typedef {{at_ms: number, received: Bytes, sent: Bytes, packets_in: number, packets_out: number,
 *   worker_load: number[], cpu: number, rss_bytes: number, rooms: number, participants: number}} ServerSample
 * @typedef {{id: number, name: string, address: string | null, joined_ms: number, camera: boolean,
 *   microphone: boolean, screen: boolean, bytes_in: number | null, bytes_out: number | null, rtt_ms: number | null,
 *   loss_to: number | null, loss_from: number | null, estimate_bps: number | null,
 *   video_layers: number[] | null, video_paused: number | null, video_hidden: number | null}} Member
 * @typedef {{name: string, worker: number, participants: number, members: Member[]}} Room
 * @typedef {{rooms: Room[], storage: {files: number, bytes: number, quota_bytes: number}}} RoomsReply
 * @typedef {{name: string, has_password: boolean, has_moderator_password: boolean, lobby: boolean,
 *   max_participants: number, video: boolean, audio: boolean, screen: boolean, files: string}} PersistentRoom
 */

/**
 * A count with its noun in the chosen language's plural form (`admin.count.<noun>.one`
 * or `.other`).
 * @param {'rooms' | 'participants' | 'tracks' | 'files'} noun
 * @param {number} count
 */
function counted(noun, count) {
  const form = new Intl.PluralRules(language()).select(count) === 'one' ? 'one' : 'other';
  return t(`admin.count.${noun}.${form}`, { count: formatNumber(count) });
}

/** @param {number} bytes */
function size(bytes) {
  const units = ['b', 'kib', 'mib', 'gib', 'tib'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  const digits = i === 0 ? 0 : 1;
  const value = formatNumber(v, { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false });
  return t(`admin.size.${units[i]}`, { value });
}

/** @param {number} bytesPerSecond */
function rate(bytesPerSecond) {
  return t('admin.per_second', { value: size(bytesPerSecond) });
}

/**
 * @param {string} title
 * @param {string} unit
 * @param {{label: string, stroke: string}[]} lines
 * @param {number} width
 * @param {boolean} [bytes] the values are bytes per second (ticks as sizes)
 * @returns {uPlot.Options}
 */
function options(title, unit, lines, width, bytes = false) {
  return {
    title,
    width,
    height: PLOT_HEIGHT,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [{}, { label: unit, size: 70, values: (_u, ticks) => ticks.map((v) => (bytes ? rate(v) : formatNumber(v))) }],
    series: [{}, ...lines.map((l) => ({ ...l, width: 2 }))],
  };
}

/** The plots and the series they draw from the samples. */
class Plots {
  /** @param {HTMLElement} area */
  constructor(area) {
    this.area = area;
    /** @type {ServerSample[]} */
    this.samples = [];
    const width = this.width();
    /** @type {{plot: uPlot, pick: ((s: ServerSample) => number)[]}[]} */
    this.plots = [
      {
        plot: new uPlot(
          options(t('admin.plot.rate'), t('admin.unit.bytes'), [
            { label: t('admin.series.sent'), stroke: COLORS.sent },
            { label: t('admin.series.received'), stroke: COLORS.received },
          ], width, true),
          [[], [], []],
          area,
        ),
        pick: [(s) => s.sent.udp, (s) => s.received.udp],
      },
      {
        plot: new uPlot(
          options(t('admin.plot.by_kind'), t('admin.unit.bytes'), [
            { label: t('admin.series.video'), stroke: COLORS.video },
            { label: t('admin.series.screen'), stroke: COLORS.screen },
            { label: t('admin.series.audio'), stroke: COLORS.audio },
            { label: t('admin.series.signaling'), stroke: COLORS.signaling },
            { label: t('admin.series.files'), stroke: COLORS.files },
          ], width, true),
          [[], [], [], [], [], []],
          area,
        ),
        pick: [(s) => s.sent.video, (s) => s.sent.screen, (s) => s.sent.audio, (s) => s.sent.signaling, (s) => s.sent.files],
      },
      {
        plot: new uPlot(
          options(t('admin.plot.packets'), t('admin.unit.packets'), [
            { label: t('admin.series.sent'), stroke: COLORS.sent },
            { label: t('admin.series.received'), stroke: COLORS.received },
          ], width),
          [[], [], []],
          area,
        ),
        pick: [(s) => s.packets_out, (s) => s.packets_in],
      },
      {
        plot: new uPlot(
          options(t('admin.plot.load'), t('admin.unit.load'), [
            { label: t('admin.series.cpu'), stroke: COLORS.cpu },
            { label: t('admin.series.worker'), stroke: COLORS.screen },
          ], width),
          [[], [], []],
          area,
        ),
        pick: [(s) => s.cpu, (s) => Math.max(0, ...s.worker_load)],
      },
    ];
    addEventListener('resize', () => this.fit());
  }

  width() {
    return Math.max(300, this.area.clientWidth - 16);
  }

  fit() {
    for (const { plot } of this.plots) {
      plot.setSize({ width: this.width(), height: PLOT_HEIGHT });
    }
  }

  /** @param {ServerSample[]} samples */
  add(samples) {
    this.samples.push(...samples);
    if (this.samples.length > WINDOW) {
      this.samples.splice(0, this.samples.length - WINDOW);
    }
    const x = this.samples.map((s) => s.at_ms / 1000);
    for (const { plot, pick } of this.plots) {
      plot.setData([x, ...pick.map((f) => this.samples.map(f))]);
    }
  }

  /** Points in each plot, for the tests. */
  points() {
    return this.plots.map(({ plot }) => plot.data[0].length);
  }
}

/** @param {ServerSample | undefined} s */
function showNow(s) {
  const now = document.getElementById('now');
  if (!now || !s) {
    return;
  }
  now.textContent = t('admin.now', {
    sent: rate(s.sent.udp),
    received: rate(s.received.udp),
    out: formatNumber(s.packets_out),
    in: formatNumber(s.packets_in),
    cpu: formatNumber(s.cpu * 100, { maximumFractionDigits: 0 }),
    memory: size(s.rss_bytes),
    rooms: counted('rooms', s.rooms),
    participants: counted('participants', s.participants),
  });
}

/** Per participant: the byte totals of the previous poll, to show rates.
 * @type {Map<number, {at: number, bytesIn: number, bytesOut: number}>} */
const previous = new Map();

/**
 * Bytes per second from and to `m` since the previous poll; null on the first poll and
 * after a replaced connection (its counts start again).
 * @param {Member} m
 * @param {number} at
 * @returns {[number, number] | null}
 */
function memberRates(m, at) {
  const now = { at, bytesIn: m.bytes_in ?? 0, bytesOut: m.bytes_out ?? 0 };
  const before = previous.get(m.id);
  previous.set(m.id, now);
  if (!before || at <= before.at || now.bytesIn < before.bytesIn || now.bytesOut < before.bytesOut) {
    return null;
  }
  const seconds = (at - before.at) / 1000;
  return [(now.bytesIn - before.bytesIn) / seconds, (now.bytesOut - before.bytesOut) / seconds];
}

/**
 * @param {number | null} v
 * @param {string} unit
 */
function figure(v, unit) {
  if (v === null || v === undefined) {
    return '–';
  }
  const digits = unit === '%' ? 1 : 0;
  return t('admin.figure', { value: formatNumber(v, { minimumFractionDigits: digits, maximumFractionDigits: digits }), unit });
}

/**
 * "2 full, 1 low; 1 paused" for the videos a participant receives.
 * @param {Member} m
 */
function videosReceived(m) {
  if (!m.video_layers) {
    return '–';
  }
  const names = ['admin.layer.low', 'admin.layer.medium', 'admin.layer.full'];
  const parts = m.video_layers
    .map((n, i) => (n > 0 ? t('admin.videos.layer', { count: formatNumber(n), layer: t(names[i]) }) : ''))
    .filter(Boolean)
    .reverse();
  const shown = parts.length ? parts.join(', ') : t('admin.videos.none');
  const paused = m.video_paused ? t('admin.videos.paused', { count: formatNumber(m.video_paused) }) : '';
  const hidden = m.video_hidden ? t('admin.videos.hidden', { count: formatNumber(m.video_hidden) }) : '';
  return `${shown}${paused}${hidden}`;
}

/** @param {RoomsReply} reply */
function showRooms(reply) {
  const at = Date.now();
  const area = /** @type {HTMLElement} */ (document.getElementById('rooms'));
  area.replaceChildren();
  if (reply.rooms.length === 0) {
    area.append(el('p', '', t('admin.no_meetings')));
  }
  for (const room of reply.rooms) {
    const section = el('section', 'room');
    section.dataset.room = room.name;
    const rates = room.members.map((m) => memberRates(m, at));
    const tracks = room.members.reduce((n, m) => n + Number(m.camera) + Number(m.microphone) + Number(m.screen), 0);
    const known = rates.every((r) => r !== null);
    const total = (/** @type {0 | 1} */ i) => rate(rates.reduce((n, r) => n + (r ? r[i] : 0), 0));
    const flow = known ? t('admin.room_flow', { in: total(0), out: total(1) }) : '';
    const heading = t('admin.room_heading', {
      room: room.name,
      participants: counted('participants', room.participants),
      tracks: counted('tracks', tracks),
      flow,
      worker: formatNumber(room.worker),
    });
    section.append(el('h3', '', heading));
    const table = el('table');
    const caption = el('caption', 'visually-hidden', t('admin.caption', { room: room.name }));
    const head = el('tr');
    const columns = ['name', 'address', 'joined', 'devices', 'in', 'out', 'rtt', 'loss_to_server', 'loss_to_them', 'estimate', 'videos'];
    for (const column of columns) {
      const th = el('th', '', t(`admin.col.${column}`));
      th.setAttribute('scope', 'col');
      head.append(th);
    }
    table.append(caption, el('thead'), el('tbody'));
    /** @type {HTMLElement} */ (table.querySelector('thead')).append(head);
    const body = /** @type {HTMLElement} */ (table.querySelector('tbody'));
    for (const [i, m] of room.members.entries()) {
      const r = rates[i];
      const [bitIn, bitOut] = r ? [rate(r[0]), rate(r[1])] : ['…', '…'];
      const row = el('tr');
      row.dataset.participant = String(m.id);
      const name = el('th', '', m.name);
      name.setAttribute('scope', 'row');
      const devices =
        [m.camera ? t('admin.device.camera') : '', m.microphone ? t('admin.device.mic') : '', m.screen ? t('admin.device.screen') : '']
          .filter(Boolean)
          .join(', ') || t('admin.device.none');
      row.append(
        name,
        el('td', '', m.address ?? '–'),
        el('td', '', formatTime(m.joined_ms)),
        el('td', '', devices),
        el('td', '', bitIn),
        el('td', '', bitOut),
        el('td', '', figure(m.rtt_ms, 'ms')),
        el('td', '', figure(m.loss_from === null ? null : m.loss_from * 100, '%')),
        el('td', '', figure(m.loss_to === null ? null : m.loss_to * 100, '%')),
        el('td', '', m.estimate_bps ? t('admin.mbps', { value: formatNumber(m.estimate_bps / 1e6, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) }) : '–'),
        el('td', '', videosReceived(m)),
      );
      body.append(row);
    }
    section.append(table);
    area.append(section);
  }
  const s = reply.storage;
  const storage = /** @type {HTMLElement} */ (document.getElementById('storage'));
  storage.textContent = t('admin.storage', { files: counted('files', s.files), used: size(s.bytes), quota: size(s.quota_bytes) });
}

/** Goes to the login form when the session has ended. @param {Response} r */
function signedIn(r) {
  if (r.status === 401) {
    location.assign('/admin/login');
    return false;
  }
  return r.ok;
}

async function pollRooms() {
  try {
    const r = await fetch('/admin/api/rooms', { cache: 'no-store' });
    if (signedIn(r)) {
      showRooms(await r.json());
    }
  } catch (e) {
    console.warn('rooms', e);
  }
}

const PERSISTENT_API = '/admin/api/persistent-rooms';

/** Lists the persistent rooms, each with Edit and Delete. */
async function loadPersistentRooms() {
  const r = await fetch(PERSISTENT_API, { cache: 'no-store' });
  if (!signedIn(r)) {
    return;
  }
  /** @type {PersistentRoom[]} */
  const rooms = await r.json();
  const area = /** @type {HTMLElement} */ (document.getElementById('persistent-rooms'));
  area.replaceChildren();
  if (rooms.length === 0) {
    area.append(el('p', '', t('admin.persistent.none')));
    return;
  }
  const list = el('ul', 'persistent-list');
  for (const room of rooms) {
    const item = el('li');
    item.dataset.room = room.name;
    const sends =
      [room.video ? t('admin.fact.camera') : '', room.audio ? t('admin.fact.microphone') : '', room.screen ? t('admin.fact.screen') : '']
        .filter(Boolean)
        .join(', ') || t('admin.fact.nothing');
    const facts = [
      room.has_password ? t('admin.fact.password') : t('admin.fact.no_password'),
      room.has_moderator_password ? t('admin.fact.moderator_password') : '',
      room.lobby ? t('admin.fact.lobby') : '',
      room.max_participants ? t('admin.fact.at_most', { count: formatNumber(room.max_participants) }) : '',
      t('admin.fact.sends', { what: sends }),
      t('admin.fact.files', { who: t(`admin.fact.who.${room.files}`) }),
    ].filter(Boolean).join('; ');
    const edit = el('button', '', t('admin.edit'));
    edit.type = 'button';
    edit.addEventListener('click', () => fillPersistentForm(room));
    const remove = el('button', '', t('admin.delete'));
    remove.type = 'button';
    remove.addEventListener('click', () => {
      if (confirm(t('admin.confirm_delete', { room: room.name }))) {
        persistentRequest(`${PERSISTENT_API}/${encodeURIComponent(room.name)}`, { method: 'DELETE' }, t('admin.deleted', { room: room.name }));
      }
    });
    item.append(el('strong', '', room.name), ` (${facts}) `, edit, ' ', remove);
    list.append(item);
  }
  area.append(list);
}

/** @param {PersistentRoom} room */
function fillPersistentForm(room) {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('persistent-form'));
  const input = (/** @type {string} */ name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
  input('name').value = room.name;
  input('password').value = '';
  input('moderator_password').value = '';
  input('lobby').checked = room.lobby;
  input('max_participants').value = String(room.max_participants);
  input('video').checked = room.video;
  input('audio').checked = room.audio;
  input('screen').checked = room.screen;
  /** @type {HTMLSelectElement} */ (form.elements.namedItem('files')).value = room.files;
  input('password').focus();
}

/**
 * Sends a change, says how it went, and lists the rooms again.
 * @param {string} url
 * @param {RequestInit} init
 * @param {string} done
 */
async function persistentRequest(url, init, done) {
  const status = /** @type {HTMLElement} */ (document.getElementById('persistent-status'));
  const r = await fetch(url, init);
  if (!signedIn(r)) {
    const reply = await r.json().catch(() => ({}));
    status.textContent = t('admin.not_saved', { reason: reply.error ?? r.statusText });
    return;
  }
  status.textContent = done;
  await loadPersistentRooms();
}

function bindPersistentForm() {
  const form = /** @type {HTMLFormElement} */ (document.getElementById('persistent-form'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const input = (/** @type {string} */ name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
    /** @type {Record<string, unknown>} */
    const body = {
      lobby: input('lobby').checked,
      max_participants: Number(input('max_participants').value) || 0,
      video: input('video').checked,
      audio: input('audio').checked,
      screen: input('screen').checked,
      files: /** @type {HTMLSelectElement} */ (form.elements.namedItem('files')).value,
    };
    // Empty: keep the current one; only spaces: remove it.
    for (const key of ['password', 'moderator_password']) {
      const value = input(key).value;
      if (value !== '') {
        body[key] = value.trim() === '' ? '' : value;
      }
    }
    const name = input('name').value.trim();
    const init = { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    persistentRequest(`${PERSISTENT_API}/${encodeURIComponent(name)}`, init, t('admin.saved', { room: name }));
  });
}

async function start() {
  translatePage();
  const plots = new Plots(/** @type {HTMLElement} */ (document.getElementById('plots')));
  const status = /** @type {HTMLElement} */ (document.getElementById('status'));
  const r = await fetch('/admin/api/history', { cache: 'no-store' });
  if (!signedIn(r)) {
    return;
  }
  /** @type {ServerSample[]} */
  const history = await r.json();
  let last = history.at(-1)?.at_ms ?? 0;
  plots.add(history);
  showNow(history.at(-1));
  const live = new EventSource('/admin/api/live');
  live.addEventListener('sample', (e) => {
    /** @type {ServerSample} */
    const s = JSON.parse(/** @type {MessageEvent} */ (e).data);
    if (s.at_ms > last) {
      last = s.at_ms;
      plots.add([s]);
      showNow(s);
    }
    status.textContent = '';
  });
  live.addEventListener('error', () => {
    status.textContent = t('admin.live_interrupted');
  });
  bindPersistentForm();
  await loadPersistentRooms();
  await pollRooms();
  setInterval(pollRooms, ROOMS_EVERY_MS);
  Object.assign(window, { lanmeetAdmin: { points: () => plots.points(), samples: () => plots.samples.length } });
}

start().catch((e) => {
  const status = document.getElementById('status');
  if (status) {
    status.textContent = t('admin.start_failed', { reason: String(e) });
  }
});
