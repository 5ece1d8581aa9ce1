// @ts-check
/**
 * The stations page (`/stations`, `/stations/<name>`): the list of stations on air,
 * refreshed every 2 s, and a player. A viewer's socket speaks `list_stations`, `watch`
 * and `stop_watching` (docs/PROTOCOL.md) and answers the station's subscribe offers
 * with the meeting's own subscribe connection; a switch is a second `watch` on the same
 * connection.
 */

import { socketUrlFor } from './protocol.js';
import { SubscribeConnection } from './subscribe.js';
import { byId, el } from './dom.js';
import { t, translatePage, formatNumber } from './i18n.js';
import { RadioCard } from './radio.js';

/**
 * @typedef {object} StationInfo
 * @property {string} name
 * @property {string} description
 * @property {string} playing
 * @property {number} position_ms
 * @property {number} duration_ms
 * @property {number} viewers
 * @property {boolean} video
 * @property {boolean} [live] a live station (a WHIP broadcaster, no file)
 * @property {boolean} [off_air] a live station without a broadcaster now
 */

const LIST_INTERVAL_MS = 2000;

/** @type {StationInfo[]} */
let stations = [];
/** When the latest list arrived (performance.now()). */
let listedAt = 0;
/** @type {string | null} */
let watching = null;
/** @type {string | null} The station asked for, until the server confirms it. */
let wanted = decodeURIComponent(window.location.pathname.split('/')[2] ?? '') || null;
/** @type {SubscribeConnection | null} */
let subscription = null;
/** @type {WebSocket} */
let socket;
/** Set while the status says a watched station was removed, until the next watch. */
let keepStatus = false;

const video = byId('st-video', HTMLVideoElement);
const stream = new MediaStream();
video.srcObject = stream;
const radio = new RadioCard(video);

/**
 * mm:ss of `ms`.
 * @param {number} ms
 */
export function clock(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${String(minutes).padStart(2, '0')}:${String(seconds).padStart(2, '0')}`;
}

/** @param {object} msg */
function send(msg) {
  if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

/**
 * The station's position now, from the latest list.
 * @param {StationInfo} s
 */
function positionOf(s) {
  return (s.position_ms + (performance.now() - listedAt)) % Math.max(1, s.duration_ms);
}

function renderList() {
  const list = byId('st-list', HTMLUListElement);
  list.replaceChildren(
    ...stations.map((s) => {
      const button = el('button', 'st-station');
      button.type = 'button';
      button.dataset.station = s.name;
      button.setAttribute('aria-current', String(s.name === watching));
      button.append(
        el('span', 'st-name', s.name),
        el('span', 'st-meta', s.description),
        el('span', 'st-meta', nowPlaying(s)),
        el('span', 'st-meta', t('stations.viewers', { count: formatNumber(s.viewers) })),
      );
      button.addEventListener('click', () => watch(s.name));
      const item = el('li');
      item.append(button);
      return item;
    }),
  );
  if (!keepStatus) byId('st-status', HTMLElement).textContent = stations.length ? '' : t('stations.none');
}

/**
 * What a station plays now, for the list: the file and position, or, for a live
 * station, whether it is on air.
 * @param {StationInfo} s
 */
function nowPlaying(s) {
  if (s.live) return s.off_air ? t('stations.off_air') : t('stations.live');
  return t('stations.playing', { file: s.playing, position: clock(positionOf(s)), duration: clock(s.duration_ms) });
}

function renderPlayer() {
  const player = byId('st-player', HTMLElement);
  player.hidden = watching === null;
  const s = stations.find((x) => x.name === watching);
  byId('st-now', HTMLElement).textContent = s ? s.name : '';
  // A live station off air keeps the viewer in its room: the broadcaster's tracks come
  // back by themselves (a new subscribe offer) when it returns.
  player.classList.toggle('st-off-air', Boolean(s?.live && s.off_air));
  let position = '';
  if (s?.live) position = s.off_air ? t('stations.off_air') : t('stations.live');
  else if (s) position = `${clock(positionOf(s))} / ${clock(s.duration_ms)}`;
  byId('st-position', HTMLElement).textContent = position;
  radio.render(s, s ? clock(positionOf(s)) : '', s ? clock(s.duration_ms) : '');
}

/** @param {string} name */
function watch(name) {
  wanted = name;
  keepStatus = false;
  history.replaceState(null, '', `/stations/${encodeURIComponent(name)}`);
  send({ type: 'watch', station: name });
  void video.play().catch(() => {});
}

/** @param {number} step +1 for the next station, -1 for the previous. */
function step(step) {
  if (!stations.length) return;
  const at = stations.findIndex((s) => s.name === watching);
  const next = stations[(at + step + stations.length) % stations.length];
  watch(next.name);
}

function stop() {
  wanted = null;
  history.replaceState(null, '', '/stations');
  send({ type: 'stop_watching' });
  subscription?.close();
  subscription = null;
  for (const track of stream.getTracks()) stream.removeTrack(track);
  radio.stop();
}

/**
 * Whether `sdp` carries other ICE credentials than the connection's current offer.
 * @param {string} sdp
 */
function newIce(sdp) {
  const current = subscription?.pc?.remoteDescription?.sdp;
  if (!current) return false;
  const ufrag = (/** @type {string} */ text) => /^a=ice-ufrag:(\S+)/m.exec(text)?.[1];
  return ufrag(sdp) !== ufrag(current);
}

/** @param {MessageEvent} event */
function onMessage(event) {
  const msg = JSON.parse(String(event.data));
  switch (msg.type) {
    case 'stations':
      stations = msg.stations;
      listedAt = performance.now();
      watching = msg.watching ?? null;
      renderList();
      renderPlayer();
      break;
    case 'subscribe_offer':
      // An offer that stops an ended station's tracks may come after `station_removed`.
      if (watching === null && wanted === null) break;
      if (!subscription) {
        subscription = new SubscribeConnection(send);
        subscription.onTrack = (_participant, kind, track) => {
          for (const old of stream.getTracks().filter((x) => x.kind === kind)) stream.removeTrack(old);
          stream.addTrack(track);
          if (kind === 'audio') radio.listen(track);
          void video.play().catch(() => {});
        };
        subscription.onError = (_code, message) => {
          byId('st-status', HTMLElement).textContent = message;
        };
      }
      // A switch to a station whose tracks differ makes the server start a new
      // subscribe connection for this viewer: new ICE credentials mean a new connection.
      subscription.offer(msg.sdp, msg.tracks, Boolean(msg.new_connection) || newIce(msg.sdp));
      break;
    case 'station_removed':
      // The server already took this viewer out; the list (without it) follows.
      wanted = null;
      history.replaceState(null, '', '/stations');
      subscription?.close();
      subscription = null;
      for (const track of stream.getTracks()) stream.removeTrack(track);
      byId('st-status', HTMLElement).textContent =
        msg.reason === 'off_air' ? t('stations.offAir', { name: msg.station }) : t('stations.removed', { name: msg.station });
      keepStatus = true;
      break;
    case 'error':
      byId('st-status', HTMLElement).textContent = msg.message;
      if (msg.code === 'unknown_station') {
        wanted = null;
        history.replaceState(null, '', '/stations');
      }
      break;
    default:
      break;
  }
}

function connect() {
  socket = new WebSocket(socketUrlFor());
  socket.addEventListener('open', () => {
    send({ type: 'list_stations' });
    if (wanted) send({ type: 'watch', station: wanted });
  });
  socket.addEventListener('message', onMessage);
  socket.addEventListener('close', () => {
    byId('st-status', HTMLElement).textContent = t('stations.lost');
    subscription?.close();
    subscription = null;
    setTimeout(connect, 2000);
  });
}

// For the browser tests (tests/e2e/stations.test.mjs) and the console: the subscribe
// connection, read-only.
/** @type {any} */ (window).lanmeetStations = { pc: () => subscription?.pc ?? null };

translatePage();
byId('st-prev', HTMLButtonElement).addEventListener('click', () => step(-1));
byId('st-next', HTMLButtonElement).addEventListener('click', () => step(1));
byId('st-stop', HTMLButtonElement).addEventListener('click', stop);
byId('st-full', HTMLButtonElement).addEventListener('click', () => void video.requestFullscreen().catch(() => {}));
byId('st-volume', HTMLInputElement).addEventListener('input', (e) => {
  video.volume = Number(/** @type {HTMLInputElement} */ (e.target).value);
});
setInterval(() => send({ type: 'list_stations' }), LIST_INTERVAL_MS);
setInterval(renderPlayer, 250);
connect();
