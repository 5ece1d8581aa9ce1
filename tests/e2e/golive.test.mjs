// Going live from the browser: an admin signs in, opens /golive, and broadcasts the fake
// camera to the live station "live" over WHIP (simulcast, as in meetings); a viewer on
// /stations/live decodes it. A wrong token and a second broadcaster are refused; Stop
// makes the viewer show "Off air", and going live again brings frames back to the same
// viewer without a reload. One browser process, one server.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { launchBrowser, scenarioSteps, startServer, waitUntil } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

/**
 * Frames the viewer decoded so far, over every video section it has had (each
 * broadcaster's track comes in a section of its own).
 * @param {Participant} p
 */
async function framesDecoded(p) {
  return p.page.evaluate(async () => {
    const pc = /** @type {any} */ (window).lanmeetStations.pc();
    if (!pc) return 0;
    let frames = 0;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded ?? 0;
    }
    return frames;
  });
}

/**
 * Waits until the viewer decodes at least `more` frames beyond `from`.
 * @param {Participant} p
 * @param {number} from
 * @param {number} more
 * @param {string} message
 */
async function framesRise(p, from, more, message) {
  await waitUntil(async () => (await framesDecoded(p)) >= from + more, { timeoutMs: 15_000, message });
  return framesDecoded(p);
}

describe('go live', { timeout: 120_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {Participant} */
  let admin;
  /** @type {Participant} */
  let viewer;
  /** @type {Participant[]} */
  const pages = [];

  before(async () => {
    server = await startServer({ args: ['--live-station', 'live'] });
    browser = await launchBrowser('golive');
  });

  after(async () => {
    await Promise.all(pages.map((p) => p.close()));
    await browser?.close();
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => pages);

  step('an admin signs in, opens /golive with the token filled in, and a wrong token is refused', async () => {
    admin = await browser.participant('admin');
    pages.push(admin);
    const { page } = admin;
    await page.goto(`${server.url}golive`);
    assert.match(page.url(), /\/admin\/login$/, 'the page is for a signed-in admin');
    const password = readFileSync(path.join(server.dataDir, 'admin-password'), 'utf8').trim();
    await page.getByLabel('Admin password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Go live' }).click();
    await page.getByRole('heading', { name: 'Go live' }).waitFor({ timeout: 5000 });
    const token = readFileSync(path.join(server.dataDir, 'live-stations', 'live.token'), 'utf8').trim();
    await waitUntil(async () => (await page.getByLabel('Token').inputValue()) === token, { message: 'the token filled in' });
    assert.equal(await page.getByLabel('Live station').inputValue(), 'live');

    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.getByRole('status').filter({ hasText: 'Wrong token for this station.' }).waitFor({ timeout: 10_000 });
    await page.getByLabel('Token').fill(token);
  }, { setsUp: true });

  step('viewers of the live station see "Off air" before anyone broadcasts', async () => {
    viewer = await browser.participant('viewer');
    pages.push(viewer);
    await viewer.page.goto(`${server.url}stations/live`);
    await waitUntil(async () => (await viewer.page.locator('#st-position').innerText()) === 'Off air', { message: 'Off air shown' });
  }, { setsUp: true });

  step('Go live broadcasts the camera in simulcast; the viewer decodes it', async () => {
    const { page } = admin;
    const clicked = Date.now();
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.getByRole('status').filter({ hasText: 'On air: live' }).waitFor({ timeout: 10_000 });
    await page.getByRole('button', { name: 'Stop' }).waitFor({ timeout: 5000 });
    await framesRise(viewer, 0, 30, 'the viewer decodes the broadcast');
    console.log(`METRIC golive_first_frames_ms ${Date.now() - clicked}`);
    await waitUntil(async () => (await viewer.page.locator('#st-position').innerText()) === 'Live', { message: 'Live shown' });
    // The broadcaster sends three simulcast layers (the upper ones once its bandwidth
    // estimate has ramped up).
    const layers = () =>
      page.evaluate(async () => {
        /** @type {Set<string>} */
        const rids = new Set();
        for (const pc of /** @type {any} */ (window).lanmeetGoLive?.pcs?.() ?? []) {
          for (const s of (await pc.getStats()).values()) {
            if (s.type === 'outbound-rtp' && s.kind === 'video' && s.rid && (s.framesEncoded ?? 0) > 0) rids.add(s.rid);
          }
        }
        return [...rids].sort().join(' ');
      });
    await waitUntil(async () => (await layers()) === 'f h q', { timeoutMs: 20_000, message: 'three simulcast layers sent' });
  });

  step('a second broadcaster is refused while the station is on air', async () => {
    const token = readFileSync(path.join(server.dataDir, 'live-stations', 'live.token'), 'utf8').trim();
    const status = await viewer.page.evaluate(async (token) => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'sendonly' });
      await pc.setLocalDescription(await pc.createOffer());
      const resp = await fetch('/whip/live', {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: pc.localDescription?.sdp,
      });
      pc.close();
      return resp.status;
    }, token);
    assert.equal(status, 409);
  });

  step('Stop takes the station off air; going live again brings frames back without a reload', async () => {
    const { page } = admin;
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByRole('status').filter({ hasText: 'Off air.' }).waitFor({ timeout: 5000 });
    await waitUntil(async () => (await viewer.page.locator('#st-position').innerText()) === 'Off air', { message: 'the viewer shows Off air' });
    const before = await framesDecoded(viewer);
    const url = viewer.page.url();
    const clicked = Date.now();
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.getByRole('status').filter({ hasText: 'On air: live' }).waitFor({ timeout: 10_000 });
    await framesRise(viewer, before, 30, 'the viewer decodes the new broadcast');
    console.log(`METRIC golive_resume_ms ${Date.now() - clicked}`);
    assert.equal(viewer.page.url(), url, 'the viewer stayed on its page');
    await waitUntil(async () => (await viewer.page.locator('#st-position').innerText()) === 'Live', { message: 'Live shown again' });
  });
});
