// The invite dialog: "Copy link" opens it with the room link, a QR code that decodes (with
// jsQR, as a phone camera would read it) to exactly that link, and a Copy button that
// puts the link on the clipboard.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import jsqr from 'jsqr';
import { joinByLink, launchParticipant, scenarioSteps, startServer } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const ROOM = `invite-${process.pid}`;

/** jsQR is CommonJS: its function is the module itself (its types say `default`). */
const jsQR = /** @type {typeof import('jsqr').default} */ (/** @type {unknown} */ (jsqr));

describe('the invite dialog', { timeout: 120_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Participant[]} */
  const people = [];

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(people.map((p) => p.close()));
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => people);

  step('Copy link shows the room link and a QR code of it; Copy puts it on the clipboard', async () => {
    const p = await launchParticipant('A');
    people.push(p);
    await p.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(server.url).origin });
    await joinByLink(p, server, ROOM, 'Ada');
    const link = `${server.url}r/${ROOM}`;

    await p.page.getByRole('button', { name: 'Copy link', exact: true }).click();
    const dialog = p.page.getByRole('dialog', { name: 'Invite people' });
    await dialog.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await dialog.getByLabel('Room link', { exact: true }).inputValue(), link);

    // The QR code, as pixels, decoded the way a phone's camera app would.
    const qr = dialog.getByRole('img', { name: 'QR code of the room link' });
    await qr.waitFor({ state: 'visible' });
    const image = await p.page.evaluate(() => {
      const canvas = /** @type {HTMLCanvasElement} */ (document.querySelector('#invite canvas'));
      const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      return { data: Array.from(data), width, height };
    });
    const decoded = jsQR(Uint8ClampedArray.from(image.data), image.width, image.height);
    assert.ok(decoded, `the QR code (${image.width}x${image.height}) decodes`);
    assert.equal(decoded.data, link, 'the QR code holds the room link');
    const box = await qr.boundingBox();
    assert.ok(box && box.width >= 150, `the QR code is shown large enough to scan: ${JSON.stringify(box)}`);

    await p.page.evaluate(() => navigator.clipboard.writeText('something else'));
    await dialog.getByRole('button', { name: 'Copy link', exact: true }).click();
    await dialog.getByRole('status').filter({ hasText: 'Link copied' }).waitFor({ timeout: 5000 });
    assert.equal(await p.page.evaluate(() => navigator.clipboard.readText()), link, 'the clipboard holds the room link');

    await dialog.getByRole('button', { name: 'Close', exact: true }).click();
    await dialog.waitFor({ state: 'hidden', timeout: 5000 });
  });
});
