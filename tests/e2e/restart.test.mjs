// Staying in the meeting while the server goes away: two headless Chromium participants
// in one room, then
//
// 1. a restart: the server gets SIGTERM, tells everyone it is restarting and exits by
//    itself; both pages show the notice; the server starts again on the same port and
//    data directory, and both pages are back in the room by themselves (each decodes
//    the other's video again, the chat shows the earlier message exactly once, a
//    switched-off microphone is still off);
// 2. a dropped network: the server is frozen (SIGSTOP), so sockets stay open but
//    nothing answers; both pages notice within 10 s, and rejoin once it thaws.
//
// Prints METRIC lines: how long the pages took to notice, and to be back.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { joinByLink, launchParticipant, scenarioSteps, startServer } from './harness.mjs';
import { waitForVideoFrom as waitForVideoFrames } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const ROOM = `restart-${process.pid}`;
const NAMES = { A: 'Ada', B: 'Bob' };
const MESSAGE = `Before the restart ${process.pid}`;
/** How long a page may take to notice that the server is gone. */
const NOTICE_MS = 10_000;
/** How long both pages may take to be back once the server is. */
const REJOIN_MS = 20_000;

/** @param {string} name @param {number} value @param {string} unit */
function metric(name, value, unit) {
  console.log(`METRIC ${name}=${value.toFixed(0)} ${unit}`);
}

/**
 * Waits until `p` shows the connection banner with exactly `text`.
 * @param {Participant} p
 * @param {string} text
 */
function waitForBanner(p, text, timeout = NOTICE_MS) {
  return p.page.waitForFunction(
    (t) => {
      const banner = document.getElementById('connection-banner');
      return banner?.textContent === t && banner.checkVisibility() && banner.getAttribute('role') === 'status';
    },
    text,
    { timeout, polling: 100 },
  );
}

/**
 * Waits until `p` is joined, shows no lost banner, and decodes and shows video from the
 * participant called `name`; resolves with that participant's (new) id.
 * @param {Participant} p
 * @param {string} name
 * @returns {Promise<number>}
 */
async function waitForVideoFrom(p, name, timeout = REJOIN_MS) {
  const started = Date.now();
  const joined = await p.page.waitForFunction(
    (n) => {
      const lm = /** @type {any} */ (window).lanmeet;
      const banner = document.getElementById('connection-banner');
      if (lm?.state !== 'connected' || banner?.dataset.kind === 'lost') {
        return null;
      }
      const other = [...lm.conn.roster.participants.values()].find((/** @type {any} */ q) => q.name === n);
      return other ? /** @type {number} */ (other.id) : null;
    },
    name,
    { timeout, polling: 100 },
  );
  const id = /** @type {number} */ (await joined.jsonValue());
  const left = () => Math.max(1000, timeout - (Date.now() - started));
  await waitForVideoFrames(p, [id], { timeoutMs: left() });
  await p.page.waitForFunction(
    (i) => (/** @type {HTMLVideoElement | null} */ (document.querySelector(`[data-participant-id="${i}"] video`))?.videoWidth ?? 0) > 0,
    id,
    { timeout: left() },
  );
  return id;
}

/**
 * How many chat entries of `p` read exactly `text`, once one does.
 * @param {Participant} p
 * @param {string} text
 */
async function chatCount(p, text) {
  await p.page.waitForFunction(
    (t) => [...document.querySelectorAll('#chat-log .entry-text')].some((e) => e.textContent === t),
    text,
    { timeout: 10_000 },
  );
  return p.page.evaluate(
    (t) => [...document.querySelectorAll('#chat-log .entry-text')].filter((e) => e.textContent === t).length,
    text,
  );
}

describe('the meeting survives a server restart and a dropped network', { timeout: 180_000 }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'lanmeet-e2e-restart-'));
  /** @type {Server | undefined} */
  let server;
  /** @type {Record<'A' | 'B', Participant>} */
  const people = /** @type {any} */ ({});
  const step = scenarioSteps(
    () => server,
    () => Object.values(people),
  );

  before(async () => {
    server = await startServer({ dataDir });
    const [A, B] = await Promise.all([launchParticipant('A'), launchParticipant('B')]);
    Object.assign(people, { A, B });
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Starts the server again on the same port and data. */
  async function restartServer() {
    const port = /** @type {Server} */ (server).port;
    server = await startServer({ dataDir, listen: `127.0.0.1:${port}` });
  }

  step(
    'two participants see each other, chat, and Bob mutes',
    async () => {
      const { A, B } = people;
      const srv = /** @type {Server} */ (server);
      await joinByLink(A, srv, ROOM, NAMES.A);
      await joinByLink(B, srv, ROOM, NAMES.B);
      await Promise.all([waitForVideoFrom(A, NAMES.B), waitForVideoFrom(B, NAMES.A)]);
      const box = A.page.getByRole('textbox', { name: 'Message', exact: true });
      await box.fill(MESSAGE);
      await box.press('Enter');
      assert.equal(await chatCount(B, MESSAGE), 1);
      await B.page.getByRole('button', { name: 'Microphone', exact: true }).click();
      const idOfB = await waitForVideoFrom(A, NAMES.B);
      await A.page.locator(`[data-participant-id="${idOfB}"] .muted-mark`).waitFor({ state: 'visible', timeout: 5000 });
    },
    { setsUp: true },
  );

  step('a restart: both are told, and are back in the room by themselves', async () => {
    const { A, B } = people;
    const old = /** @type {Server} */ (server);
    const start = performance.now();
    const exited = once(old.process, 'exit');
    old.process.kill('SIGTERM');
    await Promise.all([A, B].map((p) => waitForBanner(p, 'The server is restarting \u2014 reconnecting\u2026')));
    metric('restart_notice_ms', performance.now() - start, 'ms');
    const [code, signal] = await Promise.race([
      exited,
      delay(5000).then(() => assert.fail('the server did not exit within 5 s of SIGTERM')),
    ]);
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'the server exits cleanly');
    metric('restart_exit_ms', performance.now() - start, 'ms');

    await restartServer();
    const back = performance.now();
    const [idOfB] = await Promise.all([waitForVideoFrom(A, NAMES.B), waitForVideoFrom(B, NAMES.A)]);
    metric('restart_rejoin_ms', performance.now() - back, 'ms');
    for (const p of [A, B]) {
      assert.equal(await chatCount(p, MESSAGE), 1, `${p.label} shows the earlier message once`);
      assert.equal(await p.page.getByRole('status').filter({ hasText: 'reconnecting' }).count(), 0);
    }
    await A.page.locator(`[data-participant-id="${idOfB}"] .muted-mark`).waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await B.page.getByRole('button', { name: 'Microphone', exact: true }).getAttribute('aria-pressed'), 'false');
  });

  step('a frozen server (a dropped network) is noticed within 10 s, and rejoined', async () => {
    const { A, B } = people;
    const srv = /** @type {Server} */ (server);
    const start = performance.now();
    srv.process.kill('SIGSTOP');
    try {
      await Promise.all([A, B].map((p) => waitForBanner(p, 'Connection lost \u2014 reconnecting\u2026')));
      metric('freeze_notice_ms', performance.now() - start, 'ms');
    } finally {
      srv.process.kill('SIGCONT');
    }
    const back = performance.now();
    await Promise.all([waitForVideoFrom(A, NAMES.B), waitForVideoFrom(B, NAMES.A)]);
    metric('freeze_rejoin_ms', performance.now() - back, 'ms');
    for (const p of [A, B]) {
      assert.equal(await chatCount(p, MESSAGE), 1, `${p.label} shows the earlier message once`);
      const names = await p.page.locator('#chat-people .person-name').allTextContents();
      assert.deepEqual(names, [p === A ? NAMES.B : NAMES.A], `${p.label} lists only the other, once`);
    }
  });
});
