// @ts-check
/**
 * The Go live page (`/admin/golive`, for a signed-in admin): broadcasts the browser's
 * camera and microphone, or a shared screen, to a live station over WHIP (RFC 9725,
 * docs/stations.md): `POST /whip/<station>` with the offer and the station's bearer
 * token, the answer applied, and `DELETE` on the returned resource to stop. The camera
 * goes out in simulcast with the meeting's own encodings (`publish.js`), so viewers get
 * the layer that fits them, as for a camera in a meeting. The station list and tokens
 * come from `/admin/api/live-stations`.
 */

import { byId, el } from './dom.js';
import { t, translatePage } from './i18n.js';
import { cameraEncodings, DEFAULT_QUALITY, PC_CONFIG, preferVp8 } from './publish.js';

/** The screen's one encoding, as a meeting's screen share. */
const SCREEN_ENCODING = { maxBitrate: 2_500_000, scaleResolutionDownBy: 1 };

/** @type {{ name: string, token: string }[]} */
let live = [];
/** @type {RTCPeerConnection | null} */
let pc = null;
/** @type {MediaStream | null} */
let media = null;
/** @type {string | null} The broadcast's WHIP resource, to DELETE when stopping. */
let resource = null;

const form = byId('gl-form', HTMLFormElement);
const select = byId('gl-station', HTMLSelectElement);
const token = byId('gl-token', HTMLInputElement);
const start = byId('gl-start', HTMLButtonElement);
const stopButton = byId('gl-stop', HTMLButtonElement);
const preview = byId('gl-preview', HTMLVideoElement);

/** @param {string} text */
function say(text) {
  byId('gl-state', HTMLElement).textContent = text;
}

/** @param {boolean} onAir */
function showOnAir(onAir) {
  start.hidden = onAir;
  stopButton.hidden = !onAir;
  select.disabled = onAir;
}

function fillToken() {
  token.value = live.find((s) => s.name === select.value)?.token ?? '';
}

async function loadStations() {
  const resp = await fetch('/admin/api/live-stations', { cache: 'no-store' });
  if (!resp.ok) {
    say(t('golive.failed', { reason: `${resp.status} ${resp.statusText}` }));
    return;
  }
  live = await resp.json();
  select.replaceChildren(
    ...live.map((s) => {
      const option = /** @type {HTMLOptionElement} */ (el('option', '', s.name));
      option.value = s.name;
      return option;
    }),
  );
  const asked = new URLSearchParams(window.location.search).get('station');
  if (asked && live.some((s) => s.name === asked)) select.value = asked;
  fillToken();
  if (!live.length) say(t('golive.none'));
}

/** The chosen source's media: camera and microphone, or a screen (with its audio if shared). */
async function capture() {
  const source = new FormData(form).get('source');
  if (source === 'screen') {
    return { screen: true, stream: await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true }) };
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: true,
  });
  return { screen: false, stream };
}

/**
 * Why a WHIP request was refused, for the user.
 * @param {Response} resp
 */
async function refusal(resp) {
  switch (resp.status) {
    case 401:
      return t('golive.bad_token');
    case 409:
      return t('golive.busy');
    default:
      return t('golive.failed', { reason: (await resp.text()).trim() || `${resp.status}` });
  }
}

async function goLive() {
  const station = select.value;
  if (!station) return;
  say(t('golive.connecting'));
  start.disabled = true;
  try {
    let captured;
    try {
      captured = await capture();
    } catch (err) {
      say(t('golive.no_media', { reason: err instanceof Error ? err.message : String(err) }));
      return;
    }
    media = captured.stream;
    preview.srcObject = media;
    const connection = new RTCPeerConnection(PC_CONFIG);
    pc = connection;
    const audio = media.getAudioTracks()[0];
    const video = media.getVideoTracks()[0];
    if (audio) connection.addTransceiver(audio, { direction: 'sendonly', streams: [media] });
    if (video) {
      const sendEncodings = captured.screen
        ? [SCREEN_ENCODING]
        : cameraEncodings(DEFAULT_QUALITY, video.getSettings().height);
      preferVp8(connection.addTransceiver(video, { direction: 'sendonly', streams: [media], sendEncodings }));
      // The screen picker's own "Stop sharing" ends the broadcast too.
      video.addEventListener('ended', () => void stop());
    }
    await connection.setLocalDescription(await connection.createOffer());
    const resp = await fetch(`/whip/${encodeURIComponent(station)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token.value.trim()}` },
      body: connection.localDescription?.sdp ?? '',
    });
    if (resp.status !== 201) {
      const why = await refusal(resp);
      release();
      say(why);
      return;
    }
    resource = resp.headers.get('Location');
    await connection.setRemoteDescription({ type: 'answer', sdp: await resp.text() });
    connection.addEventListener('connectionstatechange', () => {
      if (pc === connection && connection.connectionState === 'failed') {
        void stop().then(() => say(t('golive.lost')));
      }
    });
    showOnAir(true);
    say(t('golive.on_air', { station }));
  } catch (err) {
    release();
    say(t('golive.failed', { reason: err instanceof Error ? err.message : String(err) }));
  } finally {
    start.disabled = false;
  }
}

/** Closes the connection and the camera or screen. */
function release() {
  pc?.close();
  pc = null;
  for (const track of media?.getTracks() ?? []) track.stop();
  media = null;
  preview.srcObject = null;
  showOnAir(false);
}

async function stop() {
  const ending = resource;
  resource = null;
  release();
  if (ending) await fetch(ending, { method: 'DELETE' }).catch(() => {});
  say(t('golive.stopped'));
}

// For the browser test (tests/e2e/golive.test.mjs) and the console: the broadcast's
// connection, read-only.
/** @type {any} */ (window).lanmeetGoLive = { pcs: () => (pc ? [pc] : []) };

translatePage();
select.addEventListener('change', fillToken);
form.addEventListener('submit', (event) => {
  event.preventDefault();
  void goLive();
});
stopButton.addEventListener('click', () => void stop());
// Leaving the page ends the broadcast rather than leaving the station on air until
// its connection times out.
window.addEventListener('pagehide', () => {
  if (resource) void fetch(resource, { method: 'DELETE', keepalive: true }).catch(() => {});
});
void loadStations();
