// The admin's stations in the browser: an admin signs in to the dashboard and uploads a
// WebM (made here by ffmpeg) as a new station with a description, seeing the upload's
// progress; a viewer on /stations sees it with its description and decodes its frames;
// the admin deletes it and the viewer is told "Station … was removed." with the list.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { launchBrowser, scenarioSteps, startServer, waitUntil } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

/** @param {Participant} p */
async function framesDecoded(p) {
  return p.page.evaluate(async () => {
    const pc = /** @type {any} */ (window).lanmeetStations.pc();
    if (!pc) return 0;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') return s.framesDecoded ?? 0;
    }
    return 0;
  });
}

describe('station admin', { timeout: 120_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {Participant[]} */
  const people = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'lanmeet-e2e-station-admin-'));
  const file = path.join(dir, 'evening-news.webm');

  before(async () => {
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=15:duration=8',
      '-f', 'lavfi', '-i', 'sine=frequency=440:duration=8',
      '-c:v', 'libvpx', '-g', '15', '-b:v', '1500k', '-c:a', 'libopus', file,
    ]);
    server = await startServer();
    browser = await launchBrowser('station-admin');
  });

  after(async () => {
    await Promise.all(people.map((p) => p.close()));
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const step = scenarioSteps(() => server, () => people);

  step('the admin uploads a WebM on the dashboard and sees its progress; it goes on air', async () => {
    const admin = await browser.participant('admin');
    people.push(admin);
    const password = readFileSync(path.join(server.dataDir, 'admin-password'), 'utf8').trim();
    await admin.page.goto(`${server.url}admin`);
    await admin.page.getByLabel('Admin password').fill(password);
    await admin.page.getByRole('button', { name: 'Sign in' }).click();
    const form = admin.page.locator('#stations-form');
    await form.waitFor({ timeout: 10_000 });
    // Every text the progress line shows, recorded as it changes.
    await admin.page.evaluate(() => {
      const line = /** @type {HTMLElement} */ (document.querySelector('.stations-progress'));
      const seen = /** @type {string[]} */ ([]);
      /** @type {any} */ (window).progressSeen = seen;
      new MutationObserver(() => seen.push(line.textContent ?? '')).observe(line, { childList: true, characterData: true, subtree: true });
    });
    await form.getByLabel('Name').fill('news');
    await form.getByLabel('Description').fill('The evening news, on a loop');
    await form.getByLabel('Media file', { exact: true }).setInputFiles(file);
    await form.getByRole('button', { name: 'Create station' }).click();
    await admin.page.getByText('Station news is on air.').waitFor({ timeout: 10_000 });
    const seen = await admin.page.evaluate(() => /** @type {any} */ (window).progressSeen);
    assert.ok(seen.some((/** @type {string} */ s) => /Uploading: \d+ %/.test(s)), `progress shown: ${JSON.stringify(seen)}`);
    const row = admin.page.locator('tr[data-station="news"]');
    await row.getByText('On air').waitFor({ timeout: 5000 });
    await row.getByText('Upload: evening-news.webm').waitFor({ timeout: 5000 });
  }, { setsUp: true });

  step('a viewer on /stations sees it with its description and decodes its frames', async () => {
    const viewer = await browser.participant('viewer');
    people.push(viewer);
    await viewer.page.goto(`${server.url}stations`);
    const entry = viewer.page.locator('button[data-station="news"]');
    await entry.getByText('The evening news, on a loop').waitFor({ timeout: 10_000 });
    await entry.click();
    await waitUntil(async () => (await framesDecoded(viewer)) > 15, { timeoutMs: 10_000, message: 'frames of the new station' });
    // The dashboard counts the viewer.
    const admin = people[0];
    await admin.page.locator('tr[data-station="news"] td').nth(4).getByText('1', { exact: true }).waitFor({ timeout: 5000 });
  });

  step('the admin deletes it; the viewer sees "Station removed" and the list', async () => {
    const [admin, viewer] = people;
    admin.page.once('dialog', (d) => void d.accept());
    await admin.page.getByRole('button', { name: 'Delete news' }).click();
    await admin.page.getByText('Deleted news.').waitFor({ timeout: 10_000 });
    await viewer.page.getByText('Station news was removed.').waitFor({ timeout: 5000 });
    assert.equal(await viewer.page.locator('#st-player').isHidden(), true, 'the player is closed');
    assert.equal(await viewer.page.locator('button[data-station="news"]').count(), 0, 'the list no longer has it');
  });
});
