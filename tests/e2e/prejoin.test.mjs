// The pre-join screen. A room link with a name fills in the screen and waits for Join:
// until then the page holds no signaling socket and nobody in the room hears of it, while
// the preview shows the (fake) camera decoding frames and the level meter follows the
// (fake) microphone. What is chosen there is what the meeting starts with: a camera
// switched off before joining reaches the others as a participant without video, and
// the camera is not asked for a second time on joining. Refused devices are said in a
// status line, and joining without them still works.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { joinsSeen, launchParticipant, pressJoin, recordJoins, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { inboundOf, streamOf, waitForVideoFrom } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const ROOM = `prejoin-${process.pid}`;

/**
 * Installed before the page's own scripts: records every WebSocket the page opens
 * (`e2eSockets`, their URLs) and every getUserMedia call (`e2eMediaRequests`, the kinds
 * asked for), so that the test can tell the page stayed off the server and asked for the
 * camera once.
 */
function recordConnections() {
  const w = /** @type {any} */ (window);
  w.e2eSockets = [];
  w.e2eMediaRequests = [];
  const NativeSocket = window.WebSocket;
  w.WebSocket = class extends NativeSocket {
    /** @param {string | URL} url @param {string | string[]} [protocols] */
    constructor(url, protocols) {
      super(url, protocols);
      w.e2eSockets.push(String(url));
    }
  };
  const devices = navigator.mediaDevices;
  if (devices) {
    const native = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (/** @type {MediaStreamConstraints} */ constraints) => {
      w.e2eMediaRequests.push(Object.keys(constraints ?? {}).sort().join('+'));
      return native(constraints);
    };
  }
}

/** Installed before the page's scripts: every camera and microphone request is refused. */
function refuseDevices() {
  navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
}

/** @param {Participant} p @returns {Promise<string[]>} */
function mediaRequests(p) {
  return p.page.evaluate(() => /** @type {any} */ (window).e2eMediaRequests);
}

/** Ids of the remote tiles on the page. @param {Participant} p */
function remoteTileIds(p) {
  return p.page.evaluate(() =>
    [...document.querySelectorAll('#grid [data-participant-id]')].map((t) => Number(/** @type {HTMLElement} */ (t).dataset.participantId)),
  );
}

/**
 * Frames the preview `<video>` presents within `ms` (requestVideoFrameCallback), and its
 * size.
 * @param {Participant} p
 * @param {number} ms
 */
function previewFrames(p, ms) {
  return p.page.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
        let frames = 0;
        const count = () => {
          frames++;
          video.requestVideoFrameCallback(count);
        };
        video.requestVideoFrameCallback(count);
        setTimeout(() => resolve({ frames, width: video.videoWidth, height: video.videoHeight }), ms);
      }),
    ms,
  );
}

/**
 * The microphone meter's readings, every 50 ms for `ms`.
 * @param {Participant} p
 * @param {number} ms
 * @returns {Promise<number[]>}
 */
function meterReadings(p, ms) {
  return p.page.evaluate(
    (ms) =>
      new Promise((resolve) => {
        const meter = /** @type {HTMLMeterElement} */ (document.getElementById('mic-level'));
        /** @type {number[]} */
        const values = [];
        const timer = setInterval(() => values.push(meter.value), 50);
        setTimeout(() => {
          clearInterval(timer);
          resolve(values);
        }, ms);
      }),
    ms,
  );
}

describe('the pre-join screen', { timeout: 180_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Record<string, Participant>} */
  const people = {};
  /** @type {Record<string, number>} */
  const ids = {};
  /** The camera Bea chose before joining. */
  let chosenCamera = '';

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => Object.values(people));

  /** @param {string} label @param {{refuse?: boolean, args?: string[]}} [options] */
  async function launch(label, { refuse = false, args = [] } = {}) {
    const p = await launchParticipant(label, { args });
    people[label] = p;
    await p.context.addInitScript({ content: `(${recordConnections})();` });
    if (refuse) {
      await p.context.addInitScript({ content: `(${refuseDevices})();` });
    }
    return p;
  }

  step('Ada joins through the form: the meeting uses the preview\u2019s camera and microphone', async () => {
    const A = await launch('A');
    await A.page.goto(server.url);
    await A.page.getByLabel('Name', { exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await A.page.evaluate(() => document.activeElement?.id), 'join-name', 'the Name field has the focus');
    await A.page.getByLabel('Name', { exact: true }).fill('Ada');
    await A.page.getByLabel('Room', { exact: true }).fill(ROOM);
    await pressJoin(A.page);
    await A.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.A = await A.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you);
    await recordJoins(A);
    const camera = A.page.getByRole('button', { name: 'Camera', exact: true });
    await A.page.waitForFunction(() => document.getElementById('camera-toggle')?.getAttribute('aria-pressed') === 'true', null, { timeout: 10_000 });
    assert.equal(await camera.getAttribute('aria-pressed'), 'true');
    assert.deepEqual(await mediaRequests(A), ['audio+video'], 'one request for camera and microphone, by the preview');
  }, { setsUp: true });

  step('a room link shows the pre-join screen, filled in, and joins nobody', async () => {
    const { A } = people;
    // Three fake cameras, to choose between: Chromium's second one is a depth camera
    // (16-bit grey, which WebRTC cannot send), its third delivers MJPEG.
    const B = await launch('B', { args: ['--use-fake-device-for-media-stream=device-count=3'] });
    await B.page.goto(`${server.url}r/${ROOM}?name=${encodeURIComponent('Bea')}`);
    // Until the preview shows the camera (or, as links did before, the page connects).
    await B.page.waitForFunction(
      () => /** @type {any} */ (window).e2eSockets.length > 0 || Number(/** @type {HTMLVideoElement | null} */ (document.getElementById('preview-video'))?.videoWidth) > 0,
      null,
      { timeout: 10_000 },
    );
    const nothingSent = async () => {
      assert.deepEqual(await B.page.evaluate(() => /** @type {any} */ (window).e2eSockets), [], 'no WebSocket before Join');
      assert.equal(await B.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn), null, 'no connection before Join');
      assert.deepEqual(await joinsSeen(A), [], 'Ada was told of nobody');
      assert.deepEqual(await remoteTileIds(A), [], 'Ada sees nobody');
    };
    await nothingSent();
    const join = B.page.getByRole('button', { name: 'Join', exact: true });
    await join.waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await B.page.getByLabel('Name', { exact: true }).inputValue(), 'Bea');
    assert.equal(await B.page.getByLabel('Room', { exact: true }).inputValue(), ROOM);
    assert.equal(await B.page.evaluate(() => document.activeElement?.id), 'join-button', 'the Join button has the focus');

    // The preview decodes the fake camera's frames...
    const preview = await previewFrames(B, 1000);
    console.log(`METRIC preview_frames_per_s=${preview.frames} size=${preview.width}x${preview.height}`);
    assert.ok(preview.frames >= 5, `the preview shows the camera moving: ${JSON.stringify(preview)}`);
    // ...and the meter follows the fake microphone (a beep and silence, alternating).
    const levels = await meterReadings(B, 3000);
    const top = Math.max(...levels);
    const bottom = Math.min(...levels);
    console.log(`METRIC mic_meter_min=${bottom.toFixed(2)} max=${top.toFixed(2)} readings=${levels.length}`);
    assert.ok(top > 0.2 && top - bottom > 0.1, `the microphone meter moves: ${levels.map((l) => l.toFixed(2)).join(' ')}`);
    // Both device choices list the fake devices; choosing the other camera switches the
    // preview to it at once.
    for (const label of ['Camera', 'Microphone']) {
      const options = await B.page.getByRole('combobox', { name: label, exact: true }).locator('option').count();
      assert.ok(options >= 2, `the ${label} choice lists a device besides the default (${options} options)`);
    }
    const cameraChoice = B.page.getByRole('combobox', { name: 'Camera', exact: true });
    const cameras = await cameraChoice
      .locator('option')
      .evaluateAll((options) => options.map((o) => ({ id: /** @type {HTMLOptionElement} */ (o).value, label: o.textContent })));
    const shownCamera = () =>
      B.page.evaluate(() => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
        return /** @type {MediaStream | null} */ (video.srcObject)?.getVideoTracks()[0]?.getSettings().deviceId ?? null;
      });
    const before = await shownCamera();
    const other = cameras.find((c) => c.label === 'fake_device_2' && c.id !== before)?.id;
    assert.ok(other, `a second camera to choose: ${JSON.stringify({ cameras, before })}`);
    await cameraChoice.selectOption(other);
    await waitUntil(async () => (await shownCamera()) === other, { timeoutMs: 10_000, message: 'the preview to show the chosen camera' });
    const switched = await previewFrames(B, 1000);
    assert.ok(switched.frames >= 5, `the preview shows the chosen camera moving: ${JSON.stringify(switched)}`);
    assert.equal(await cameraChoice.inputValue(), other);
    chosenCamera = other;

    // Seconds later, still nothing reached the server: no socket, no announcement, no tile.
    await nothingSent();
  }, { setsUp: true });

  step('a camera switched off before joining: the others see Bea without video', async () => {
    const { A, B } = people;
    const camera = B.page.getByRole('button', { name: 'Camera', exact: true });
    assert.equal(await camera.getAttribute('aria-pressed'), 'true');
    await camera.click();
    await B.page.waitForFunction(() => document.getElementById('preview-camera')?.getAttribute('aria-pressed') === 'false', null, { timeout: 5000 });
    const released = await B.page.evaluate(() => {
      const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
      return video.srcObject === null && document.getElementById('preview-frame')?.classList.contains('camera-off');
    });
    assert.ok(released, 'the preview shows the camera off');

    await pressJoin(B.page);
    await B.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.B = await B.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you);
    assert.equal(await B.page.getByRole('button', { name: 'Camera', exact: true }).getAttribute('aria-pressed'), 'false', 'the meeting starts with the camera off');
    assert.equal(await B.page.getByRole('button', { name: 'Microphone', exact: true }).getAttribute('aria-pressed'), 'true');
    assert.deepEqual(await mediaRequests(B), ['audio+video', 'video'], 'joining asked for no device again (the second request is the chosen camera)');
    assert.equal(
      await B.page.evaluate(() => /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).lanmeet.publishPc).getSenders().filter((s) => s.track?.kind === 'video').length),
      0,
      'Bea sends no video',
    );

    // Ada: a tile for Bea, camera off, with her sound but no picture.
    const tile = A.page.locator(`.tile[data-participant-id="${ids.B}"]`);
    await tile.waitFor({ state: 'attached', timeout: 10_000 });
    await A.page.waitForFunction((id) => document.querySelector(`.tile[data-participant-id="${id}"]`)?.classList.contains('camera-off'), ids.B, {
      timeout: 5000,
    });
    assert.deepEqual(await joinsSeen(A), ['Bea']);
    await waitUntil(async () => (streamOf(await inboundOf(A), ids.B, 'audio')?.bytesReceived ?? 0) > 0, {
      timeoutMs: 15_000,
      message: 'Ada to receive Bea\u2019s sound',
    });
    assert.equal(streamOf(await inboundOf(A), ids.B, 'video')?.framesDecoded ?? 0, 0, 'Ada decodes no video from Bea');
  });

  step('the camera switched on in the meeting reaches the others', async () => {
    const { A, B } = people;
    await B.page.getByRole('button', { name: 'Camera', exact: true }).click();
    await waitForVideoFrom(A, [ids.B]);
    const sent = await B.page.evaluate(() => {
      const pc = /** @type {RTCPeerConnection} */ (/** @type {any} */ (window).lanmeet.publishPc);
      return pc.getSenders().find((s) => s.track?.kind === 'video')?.track?.getSettings().deviceId ?? null;
    });
    assert.equal(sent, chosenCamera, 'the camera chosen before joining is the one sent');
    await A.page.waitForFunction((id) => !document.querySelector(`.tile[data-participant-id="${id}"]`)?.classList.contains('camera-off'), ids.B, {
      timeout: 5000,
    });
  });

  step('refused devices are said in a status line, and joining without them works', async () => {
    const { A } = people;
    const C = await launch('C', { refuse: true });
    await C.page.goto(`${server.url}r/${ROOM}?name=Cy`);
    const status = C.page.getByRole('status').filter({ hasText: /permission denied/i });
    await status.waitFor({ state: 'visible', timeout: 10_000 });
    console.log(`status: ${await status.textContent()}`);
    assert.equal(await status.getAttribute('aria-live'), 'polite');
    for (const name of ['Camera', 'Microphone']) {
      assert.equal(await C.page.getByRole('button', { name, exact: true }).getAttribute('aria-pressed'), 'false', `${name} shows off`);
    }
    assert.deepEqual(await C.page.evaluate(() => /** @type {any} */ (window).e2eSockets), []);

    await pressJoin(C.page);
    await C.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.C = await C.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you);
    await A.page.waitForFunction((id) => document.querySelector(`.tile[data-participant-id="${id}"]`)?.classList.contains('camera-off'), ids.C, {
      timeout: 10_000,
    });
    // Cy, without devices, still sees and hears the others.
    await waitForVideoFrom(C, [ids.A, ids.B]);
  });

  step('Leave returns to the pre-join screen with camera and microphone off', async () => {
    const { C, B } = people;
    await C.close();
    delete people.C;
    await B.page.getByRole('button', { name: 'Leave', exact: true }).click();
    await B.page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 5000 });
    for (const name of ['Camera', 'Microphone']) {
      assert.equal(await B.page.getByRole('button', { name, exact: true }).getAttribute('aria-pressed'), 'false', `${name} is off after leaving`);
    }
    const live = await B.page.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview-video')).srcObject);
    assert.equal(live, null, 'no preview after leaving');
    await B.page.getByRole('status').filter({ hasText: /left the meeting/i }).waitFor({ state: 'visible', timeout: 5000 });
  });
});
