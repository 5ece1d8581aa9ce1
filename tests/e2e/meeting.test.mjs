// One lanmeet server, several headless Chromium participants in one room. The steps run in
// order and share the meeting: join, media flows, camera and microphone switches, a
// crashed participant, a refused duplicate name, a frozen participant, and leaving.
//
// Outcomes are asserted on what a user would notice: tiles on the page and frames and
// samples actually decoded (RTCPeerConnection.getStats()).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { joinsSeen, launchParticipant, pressJoin, recordJoins, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { cameraLayersOf, decodeFps, inboundOf, readInbound, streamOf, waitForNewFrames, waitForVideoFrom } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */
/** @typedef {import('./pagestats.mjs').Inbound} Inbound */

const ROOM = `e2e-${process.pid}`;
// Chromium's fake camera runs at 20 fps; each browser now encodes three simulcast layers,
// and three browsers share the 2-core CI machine, which cost about 2-5 fps at the first
// seconds (measured 14.2 once). 12 fps is still smooth motion; a stall would read 0-5.
const MIN_FPS = 12;
// A viewer's first remote frame, from pressing Join (on the pre-join screen), and the time from a stream's first
// frame to the layer it settles at. Measured medians are far lower (see the closing note
// of the latency issue and docs/bandwidth.md, "A meeting starts at full quality"); these bounds catch a return of the
// paced start, which took 1.7 s and 7 s.
const FIRST_FRAME_LIMIT_MS = 3000;
const TOP_LAYER_LIMIT_MS = 6000;

/**
 * Installed before the page's own scripts, with `readInbound` (pagestats.mjs) as `read`:
 * notes when the first remote frame decodes (`e2eFirstFrameMs`), and for every received
 * video stream (by mid) when it first decoded a frame and every later change of its
 * decoded height (`e2eHeights`), for 30 s after the page loaded. Times count from the
 * navigation that loaded the page.
 * @param {typeof readInbound} read
 */
function recordFirstFrame(read) {
  const w = /** @type {any} */ (window);
  /** @type {Record<string, {at: number, height: number}[]>} */
  const heights = {};
  w.e2eHeights = heights;
  const timer = setInterval(async () => {
    if (performance.now() > 30_000) {
      clearInterval(timer);
    }
    const { at, streams } = await read();
    for (const s of streams) {
      if (s.kind !== 'video' || !(s.framesDecoded > 0) || !s.frameHeight) {
        continue;
      }
      if (w.e2eFirstFrameMs === undefined) {
        w.e2eFirstFrameMs = at;
      }
      const seen = (heights[String(s.mid)] ??= []);
      if (seen.length === 0 || seen[seen.length - 1].height !== s.frameHeight) {
        seen.push({ at, height: s.frameHeight });
      }
    }
  }, 50);
}

/** @param {Participant} p */
function participantId(p) {
  return p.page.evaluate(() => /** @type {any} */ (window).lanmeet?.conn?.you ?? null);
}

/** Ids of the remote tiles on the page. @param {Participant} p */
function remoteTileIds(p) {
  return p.page.evaluate(() =>
    [...document.querySelectorAll('#grid [data-participant-id]')].map((t) => Number(/** @type {HTMLElement} */ (t).dataset.participantId)),
  );
}

/**
 * Waits until the page shows exactly these remote participants.
 * @param {Participant} p
 * @param {number[]} ids
 * @param {number} [timeoutMs]
 */
async function waitForRemoteTiles(p, ids, timeoutMs = 15_000) {
  const want = [...ids].sort((a, b) => a - b);
  try {
    await p.page.waitForFunction(
      (expected) => {
        const got = [...document.querySelectorAll('#grid [data-participant-id]')]
          .map((t) => Number(/** @type {HTMLElement} */ (t).dataset.participantId))
          .sort((a, b) => a - b);
        return JSON.stringify(got) === JSON.stringify(expected);
      },
      want,
      { timeout: timeoutMs, polling: 50 },
    );
  } catch (err) {
    throw new Error(`${p.label}: expected remote tiles ${JSON.stringify(want)}, have ${JSON.stringify(await remoteTileIds(p))}: ${String(err)}`);
  }
}

describe('a meeting of several browsers', { timeout: 300_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Record<string, Participant>} */
  const people = {};
  /** @type {Record<string, number>} */
  const ids = {};

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => Object.values(people));

  /**
   * Launches a browser for `label` that records its first decoded remote frame.
   * @param {string} label
   */
  async function launch(label) {
    const p = await launchParticipant(label);
    people[label] = p;
    await p.context.addInitScript({ content: `(${recordFirstFrame})(${readInbound});` });
    return p;
  }

  /**
   * Joins through the `/r/<room>?name=<name>` link (Join on the pre-join screen) and
   * waits until joined.
   * @param {Participant} p
   * @param {string} name
   */
  async function joinByLink(p, name) {
    await p.page.goto(`${server.url}r/${ROOM}?name=${encodeURIComponent(name)}`);
    await p.page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    await p.page.evaluate(() => {
      /** @type {any} */ (window).e2eJoinPressedMs = performance.now();
    });
    await pressJoin(p.page);
    await p.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids[p.label] = await participantId(p);
  }

  step('three participants join and see each other', async () => {
    const [a, b, c] = await Promise.all(['A', 'B', 'C'].map(launch));

    // A uses the form.
    await a.page.goto(server.url);
    await a.page.getByLabel('Name', { exact: true }).fill('A');
    await a.page.getByLabel('Room', { exact: true }).fill(ROOM);
    await a.page.getByRole('button', { name: 'Join', exact: true }).click();
    await a.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.A = await participantId(a);
    assert.equal(new URL(a.page.url()).pathname, `/r/${ROOM}`, 'the address becomes the room link');
    assert.equal(await a.page.evaluate(() => localStorage.getItem('lanmeet.name')), 'A', 'the name is remembered');

    // B and C follow the room link with a name and press Join.
    await joinByLink(b, 'B');
    await joinByLink(c, 'C');
    assert.equal(new Set([ids.A, ids.B, ids.C]).size, 3, `distinct ids: ${JSON.stringify(ids)}`);

    await Promise.all([
      waitForRemoteTiles(a, [ids.B, ids.C]),
      waitForRemoteTiles(b, [ids.A, ids.C]),
      waitForRemoteTiles(c, [ids.A, ids.B]),
    ]);
    for (const [p, self, others] of /** @type {[Participant, string, string[]][]} */ ([[a, 'A', ['B', 'C']], [b, 'B', ['A', 'C']], [c, 'C', ['A', 'B']]])) {
      const page = p.page;
      assert.equal(await page.locator('[data-self] .caption .name').textContent(), `${self} (you)`);
      for (const other of others) {
        const tile = page.locator(`[data-participant-id="${ids[other]}"]`);
        assert.equal(await tile.locator('.caption .name').textContent(), other, `${self} labels ${other}'s tile`);
        assert.equal(await tile.locator('video').count(), 1, `${self} has a video element for ${other}`);
      }
      // Camera and microphone are on once the fake devices are open.
      await page.waitForFunction(
        () => ['camera-toggle', 'mic-toggle'].every((id) => document.getElementById(id)?.getAttribute('aria-pressed') === 'true'),
        null,
        { timeout: 5000 },
      );
      assert.equal(await page.getByRole('button', { name: 'Camera', exact: true }).getAttribute('aria-pressed'), 'true');
      assert.equal(await page.getByRole('button', { name: 'Microphone', exact: true }).getAttribute('aria-pressed'), 'true');
    }
  }, { setsUp: true });

  step('everyone decodes video and audio from both others', async () => {
    const trio = [people.A, people.B, people.C];
    const othersOf = (/** @type {Participant} */ p) => trio.filter((q) => q !== p).map((q) => ids[q.label]);
    await Promise.all(trio.map((p) => waitForVideoFrom(p, othersOf(p))));

    for (const p of [people.B, people.C]) {
      const ms = await p.page.evaluate(() => {
        const w = /** @type {any} */ (window);
        return typeof w.e2eFirstFrameMs === 'number' ? w.e2eFirstFrameMs - w.e2eJoinPressedMs : null;
      });
      assert.ok(typeof ms === 'number', `${p.label} recorded its first frame`);
      console.log(`METRIC time_to_first_frame_ms=${Math.round(ms)} participant=${p.label}`);
      // Generous for a shared 2-core machine; the closing notes give the medians.
      assert.ok(ms <= FIRST_FRAME_LIMIT_MS, `${p.label}: first remote frame after ${Math.round(ms)} ms`);
    }

    // Measure over fixed windows: a rate, not a wait for a condition. Right after the
    // third join every tile shrinks and each viewer moves to a smaller simulcast layer,
    // which can hold frames back for a second or two; so up to eight windows are taken
    // and the first in which every stream runs smoothly is checked (the last one if
    // none does, which then fails).
    /** @param {Inbound[]} b @param {Inbound[]} a */
    const smooth = (b, a) =>
      trio.every((p, i) =>
        othersOf(p).every((id) => {
          const v0 = streamOf(b[i], id, 'video');
          const v1 = streamOf(a[i], id, 'video');
          return v0 && v1 && decodeFps(v0, v1) >= MIN_FPS;
        }),
      );
    let before1 = await Promise.all(trio.map(inboundOf));
    await delay(2000); // a measurement window
    let after1 = await Promise.all(trio.map(inboundOf));
    for (let window = 1; window < 8 && !smooth(before1, after1); window++) {
      const slow = trio.flatMap((p, i) =>
        othersOf(p).map((id) => {
          const v0 = streamOf(before1[i], id, 'video');
          const v1 = streamOf(after1[i], id, 'video');
          const ms = v0 && v1 ? v1.timestamp - v0.timestamp : 0;
          const fps = v0 && v1 ? decodeFps(v0, v1) : 0;
          // Frames that arrived, bits, and key frame requests tell a stalled sender or
          // link (nothing arrives) from a receiver that cannot decode what arrives.
          const detail = v0 && v1
            ? ` rx=${v1.framesReceived - v0.framesReceived} kbit_s=${Math.round(((v1.bytesReceived - v0.bytesReceived) * 8) / ms)} pli=${v1.pliCount - v0.pliCount}`
            : '';
          return `${p.label}<-${id}:${fps.toFixed(1)}@${v1?.frameHeight}${detail}`;
        }),
      );
      console.log(`METRIC fps_window=${window} not yet smooth (${slow.join(' ')}); measuring again`);
      before1 = after1;
      await delay(2000); // the next measurement window
      after1 = await Promise.all(trio.map(inboundOf));
    }

    trio.forEach((p, i) => {
      const others = othersOf(p);
      for (const id of others) {
        const v0 = streamOf(before1[i], id, 'video');
        const v1 = streamOf(after1[i], id, 'video');
        assert.ok(v0 && v1, `${p.label} has a video stream from ${id}`);
        const fps = decodeFps(v0, v1);
        console.log(`METRIC fps=${fps.toFixed(1)} receiver=${p.label} sender=${id} size=${v1.frameWidth}x${v1.frameHeight}`);
        assert.ok(fps >= MIN_FPS, `${p.label} decodes ${fps.toFixed(1)} fps from ${id}, want >= ${MIN_FPS}`);

        const a0 = streamOf(before1[i], id, 'audio');
        const a1 = streamOf(after1[i], id, 'audio');
        assert.ok(a0 && a1, `${p.label} has an audio stream from ${id}`);
        assert.ok(a1.packetsReceived > a0.packetsReceived, `${p.label}: audio packets from ${id} rise (${a0.packetsReceived} -> ${a1.packetsReceived})`);
        assert.ok(a1.bytesReceived > a0.bytesReceived, `${p.label}: audio bytes from ${id} rise`);
        assert.ok(
          (a1.totalSamplesReceived ?? 0) > (a0.totalSamplesReceived ?? 0) || a1.audioLevel !== null,
          `${p.label}: audio from ${id} is decoded (samples ${a0.totalSamplesReceived} -> ${a1.totalSamplesReceived}, level ${a1.audioLevel})`,
        );
      }
      const videos = after1[i].streams.filter((s) => s.kind === 'video' && others.includes(/** @type {number} */ (s.participant)));
      const audios = after1[i].streams.filter((s) => s.kind === 'audio' && others.includes(/** @type {number} */ (s.participant)));
      assert.equal(videos.length, 2, `${p.label} receives 2 video streams`);
      assert.equal(audios.length, 2, `${p.label} receives 2 audio streams`);
    });

    // Each stream reached the layer it settled at (the top one that fits its tile)
    // soon after its first frame: a meeting starts at full quality, it does not climb
    // for seconds while a bandwidth estimate grows.
    for (const p of [people.B, people.C]) {
      const i = trio.indexOf(p);
      /** @type {Record<string, {at: number, height: number}[]>} */
      const heights = await p.page.evaluate(() => /** @type {any} */ (window).e2eHeights);
      for (const v of after1[i].streams.filter((s) => s.kind === 'video' && othersOf(p).includes(/** @type {number} */ (s.participant)))) {
        const seen = heights[String(v.mid)] ?? [];
        const top = seen.find((x) => x.height >= (v.frameHeight ?? 0));
        assert.ok(seen.length > 0 && top, `${p.label}: no record of ${v.participant}'s video reaching ${v.frameHeight}p: ${JSON.stringify(seen)}`);
        const ms = top.at - seen[0].at;
        console.log(
          `METRIC time_to_top_layer_ms=${Math.round(ms)} participant=${p.label} sender=${v.participant} height=${v.frameHeight} ` +
            `first_frame_ms=${Math.round(seen[0].at)} heights=${seen.map((x) => `${x.height}@${Math.round(x.at)}`).join(',')}`,
        );
        assert.ok(ms <= TOP_LAYER_LIMIT_MS, `${p.label}: ${v.participant}'s video reached ${v.frameHeight}p ${Math.round(ms)} ms after its first frame`);
      }
    }
  });

  step('the Statistics panel plots live rates and lists every stream; every remote tile shows its connection quality', async () => {
    const { A } = people;
    const page = A.page;
    const toggle = page.getByRole('button', { name: 'Statistics', exact: true });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await toggle.getAttribute('aria-controls'), 'stats');
    await toggle.click();
    const panel = page.getByRole('region', { name: 'Statistics' });
    await panel.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');

    // Every plot has points, and the latest second sent and received something.
    await page.waitForFunction(
      () => {
        const lm = /** @type {any} */ (window).lanmeet;
        const n = lm.statsPlotPoints;
        const h = lm.statsHistory;
        return n && n.sent >= 5 && n.received >= 5 && n.rtt >= 5 && h.sent.total.at(-1) > 0 && h.received.total.at(-1) > 0;
      },
      null,
      { timeout: 15_000, polling: 200 },
    );

    // The table: both remote cameras with a size and frames, and the own camera's layers.
    const cameraLayers = (await cameraLayersOf(A)).map((l) => l.rid);
    /** @returns {Promise<string[][]>} */
    const tableRows = () =>
      page.evaluate(() => [...document.querySelectorAll('#stats-rows tr')].map((tr) => [...tr.children].map((c) => c.textContent ?? '')));
    /** @param {string[][]} rows @param {string} name */
    const cameraRow = (rows, name) => rows.find((r) => r[0] === `${name} \u2013 camera`);
    /** @param {string[][]} rows */
    const complete = (rows) =>
      ['B', 'C'].every((name) => {
        const r = cameraRow(rows, name);
        return r && /^\d+\u00d7\d+$/.test(r[1]) && Number(r[2]) > 0;
      }) && rows.filter((r) => r[0].startsWith('You \u2013 camera')).length === cameraLayers.length;
    await waitUntil(async () => complete(await tableRows()), { timeoutMs: 10_000, message: 'the statistics table to list both remote cameras and the own layers' });
    const rows = await tableRows();
    const own = rows.filter((r) => r[0].startsWith('You \u2013 camera'));
    assert.deepEqual(
      own.map((r) => /\((\w)\)$/.exec(r[0])?.[1]).sort(),
      [...cameraLayers].sort(),
      `one row per simulcast layer: ${JSON.stringify(own)}`,
    );
    assert.ok(own.some((r) => /^\d+\u00d7\d+$/.test(r[1]) && Number(r[2]) > 0), `an own layer is sent: ${JSON.stringify(own)}`);
    for (const name of ['B', 'C']) {
      const r = /** @type {string[]} */ (cameraRow(rows, name));
      console.log(`stats row: ${r.join(' | ')}`);
      assert.ok(rows.some((x) => x[0] === `${name} \u2013 audio`), `${name}'s audio has a row`);
    }
    const headers = await page.locator('.stats-table thead th[scope="col"]').allTextContents();
    assert.equal(headers[0], 'Stream');
    assert.equal(await page.locator('.stats-table caption').count(), 1);

    // The sampled rate agrees with the browser's own counters over the same seconds.
    const sampled = await page.evaluate(() => /** @type {any} */ (window).lanmeet.statsHistory.time.at(-1));
    const in0 = await inboundOf(A);
    await page.waitForFunction((t) => /** @type {any} */ (window).lanmeet.statsHistory.time.at(-1) >= t + 4, sampled, { timeout: 10_000, polling: 100 });
    const in1 = await inboundOf(A);
    /** @param {Inbound} x */
    const bytes = (x) => x.streams.reduce((sum, s) => sum + s.bytesReceived, 0);
    /** @param {Inbound} x */
    const stamp = (x) => Math.max(...x.streams.map((s) => s.timestamp));
    const measuredKbit = ((bytes(in1) - bytes(in0)) * 8) / (stamp(in1) - stamp(in0));
    /** @type {{time: number[], received: {total: number[]}}} */
    const h = await page.evaluate(() => /** @type {any} */ (window).lanmeet.statsHistory);
    const inWindow = h.received.total.filter((_, i) => h.time[i] * 1000 > stamp(in0) + 500 && h.time[i] * 1000 <= stamp(in1) + 500);
    const sampledKbit = (inWindow.reduce((a, b) => a + b, 0) / inWindow.length) * 8 / 1000;
    console.log(`METRIC stats_received_kbit_s sampled=${sampledKbit.toFixed(0)} getstats=${measuredKbit.toFixed(0)} samples=${inWindow.length}`);
    assert.ok(inWindow.length >= 2, `samples in the window: ${inWindow.length}`);
    assert.ok(Math.abs(sampledKbit - measuredKbit) <= 0.25 * measuredKbit, `sampled ${sampledKbit.toFixed(0)} kbit/s vs getStats ${measuredKbit.toFixed(0)} kbit/s`);

    // Every remote tile says how its connection is, also with the panel closed.
    for (const name of ['B', 'C']) {
      const mark = page.locator(`[data-participant-id="${ids[name]}"]`).getByRole('img', { name: /^Connection: (good|fair|poor)$/ });
      await mark.waitFor({ state: 'visible', timeout: 5000 });
      console.log(`quality mark for ${name}: ${await mark.getAttribute('aria-label')}`);
    }
    for (const p of [people.B, people.C]) {
      await p.page.waitForFunction(
        () => [...document.querySelectorAll('#grid [data-participant-id]')].every((t) => /^Connection: /.test(t.querySelector('.quality-mark')?.getAttribute('aria-label') ?? '')),
        null,
        { timeout: 5000, polling: 200 },
      );
    }

    // Escape closes the panel and gives the focus back to its control.
    await page.getByRole('button', { name: 'Close statistics' }).focus();
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden', timeout: 2000 });
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'stats-toggle');
  });

  step('the admin dashboard signs in and shows the room, its three participants and live server plots', async () => {
    const password = readFileSync(join(server.dataDir, 'admin-password'), 'utf8').trim();
    const page = await people.A.context.newPage();
    try {
      // Without a session the dashboard sends the browser to the login form.
      await page.goto(`${server.url}admin`);
      assert.match(page.url(), /\/admin\/login$/);
      await page.getByLabel('Admin password').fill(`${password}-wrong`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor({ timeout: 5000 });
      assert.match(page.url(), /\/admin\/login/, 'a wrong password does not sign in');
      await page.getByLabel('Admin password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Server, the last 10 minutes' }).waitFor({ timeout: 5000 });

      const rows = page.locator(`section.room[data-room="${ROOM}"] tbody tr`);
      await waitUntil(async () => (await rows.count()) === 3, { timeoutMs: 10_000, message: 'the dashboard to list the three participants' });
      const names = (await rows.locator('th').allTextContents()).sort();
      assert.deepEqual(names, ['A', 'B', 'C']);
      // Each receives the two others' cameras, at some layer, as the server last told it.
      await waitUntil(
        async () => {
          const cells = await rows.locator('td:last-child').allTextContents();
          const videos = cells.map((c) => [...c.matchAll(/(\d+) (low|medium|full)/g)].reduce((n, m) => n + Number(m[1]), 0));
          return videos.length === 3 && videos.every((n) => n === 2);
        },
        { timeoutMs: 10_000, message: 'every participant to receive two videos (Videos received column)' },
      );
      const heading = await page.locator(`section.room[data-room="${ROOM}"] h3`).textContent();
      assert.match(heading ?? '', /3 participants/);
      // Rates appear from the second poll on, and the history gives the plots points at once.
      await waitUntil(async () => !(await rows.first().locator('td').nth(4).textContent())?.includes('…'), {
        timeoutMs: 10_000,
        message: 'per-participant rates',
      });
      await page.waitForFunction(
        () => {
          const admin = /** @type {any} */ (window).lanmeetAdmin;
          return admin && admin.points().every((/** @type {number} */ n) => n >= 3);
        },
        null,
        { timeout: 10_000, polling: 250 },
      );
      const now = await page.locator('#now').textContent();
      assert.match(now ?? '', /sending [1-9][\d.]* (KiB|MiB)\/s/, `the server sends media: ${now}`);
      console.log(`METRIC dashboard_points=${JSON.stringify(await page.evaluate(() => /** @type {any} */ (window).lanmeetAdmin.points()))} ${now}`);

      // The server's count of bytes sent to B agrees with what B's browser says it received
      // (both connections' transports), over the same 8 s (str0m reports once a second).
      const sentToB = async () =>
        page.evaluate(async (id) => {
          const reply = await (await fetch('/admin/api/rooms', { cache: 'no-store' })).json();
          const member = reply.rooms.flatMap((/** @type {any} */ r) => r.members).find((/** @type {any} */ m) => m.id === id);
          return /** @type {number} */ (member?.bytes_out ?? 0);
        }, ids.B);
      const receivedByB = async () =>
        people.B.page.evaluate(async () => {
          const lm = /** @type {any} */ (window).lanmeet;
          let sum = 0;
          for (const pc of [lm.publishPc, lm.subscribePc]) {
            for (const s of (await pc.getStats()).values()) {
              if (s.type === 'transport') {
                sum += s.bytesReceived;
              }
            }
          }
          return sum;
        });
      // The server's figure moves in steps (str0m reports every second, the worker copies
      // every 500 ms): read both sides right after a step, so neither end is a second stale.
      const afterStep = async () => {
        const first = await sentToB();
        await waitUntil(async () => (await sentToB()) !== first, { timeoutMs: 5000, intervalMs: 20, message: 'the server to report new byte counts' });
        return Promise.all([sentToB(), receivedByB()]);
      };
      const [server0, browser0] = await afterStep();
      await delay(10_000); // the measurement window
      const [server1, browser1] = await afterStep();
      const ratio = (server1 - server0) / Math.max(1, browser1 - browser0);
      console.log(`METRIC dashboard_bytes_to_B=${server1 - server0} browser_B_received=${browser1 - browser0} ratio=${ratio.toFixed(3)}`);
      assert.ok(Math.abs(ratio - 1) <= 0.1, `the dashboard's bytes sent to B are within 10% of what B received (ratio ${ratio.toFixed(3)})`);
    } finally {
      await page.close();
    }
  });

  step('camera off shows the placeholder to the others; camera on brings video back', async () => {
    const { A, B, C } = people;
    const cameraA = A.page.getByRole('button', { name: 'Camera', exact: true });
    const tileSelector = `[data-participant-id="${ids.A}"]`;

    await cameraA.click();
    await A.page.waitForFunction(
      () => document.getElementById('camera-toggle')?.getAttribute('aria-pressed') === 'false',
      null,
      { timeout: 5000 },
    );
    const local = await A.page.evaluate(() => {
      const conn = /** @type {any} */ (window).lanmeet.conn;
      return { sending: conn.senders.video?.track != null, holding: conn.localTracks.video != null };
    });
    assert.deepEqual(local, { sending: false, holding: false }, 'A sends no video track and holds none');

    for (const p of [B, C]) {
      await p.page.waitForFunction(
        (sel) => document.querySelector(sel)?.classList.contains('camera-off') === true,
        tileSelector,
        { timeout: 5000, polling: 50 },
      );
      await p.page.locator(`${tileSelector} .placeholder`).waitFor({ state: 'visible', timeout: 2000 });
    }
    // With the camera off nothing is sent: B's decoder for A stalls. For as long as C's
    // video, on the same server and subscribe connection, takes to advance 30 frames
    // (1.5 s at the fake camera's 20 fps): a clock that shows B's media path runs, where
    // a sleep would pass too while nothing runs at all.
    const s0 = streamOf(await inboundOf(B), ids.A, 'video');
    await waitForNewFrames(B, (s) => s.participant === ids.C && s.kind === 'video', {
      frames: 30,
      timeoutMs: 10_000,
      message: "B to decode 30 more frames of C's video while A's camera is off",
    });
    const s1 = streamOf(await inboundOf(B), ids.A, 'video');
    assert.ok(s0 && s1, 'B still has the video section of A');
    assert.ok(s1.framesDecoded - s0.framesDecoded <= 3, `no video from A while its camera is off (${s0.framesDecoded} -> ${s1.framesDecoded})`);

    await cameraA.click();
    await A.page.waitForFunction(
      () => document.getElementById('camera-toggle')?.getAttribute('aria-pressed') === 'true',
      null,
      { timeout: 5000 },
    );
    for (const p of [B, C]) {
      await p.page.waitForFunction(
        (sel) => document.querySelector(sel)?.classList.contains('camera-off') === false,
        tileSelector,
        { timeout: 5000, polling: 50 },
      );
    }
    const base = s1.framesDecoded;
    await waitUntil(
      async () => (streamOf(await inboundOf(B), ids.A, 'video')?.framesDecoded ?? 0) > base + 10,
      { timeoutMs: 10_000, message: 'B to decode video from A again' },
    );
  });

  step('microphone off shows a muted mark to the others', async () => {
    const { A, B, C } = people;
    const micA = A.page.getByRole('button', { name: 'Microphone', exact: true });
    const mark = (/** @type {Participant} */ p) =>
      p.page.locator(`[data-participant-id="${ids.A}"]`).getByRole('img', { name: 'muted' });

    await micA.click();
    for (const p of [B, C]) {
      await mark(p).waitFor({ state: 'visible', timeout: 5000 });
    }
    assert.equal(await micA.getAttribute('aria-pressed'), 'false');
    await micA.click();
    for (const p of [B, C]) {
      await mark(p).waitFor({ state: 'hidden', timeout: 5000 });
    }
    assert.equal(await micA.getAttribute('aria-pressed'), 'true');
  });

  step('a killed browser disappears from the others within 15 s', async () => {
    const { A, B, C } = people;
    const started = Date.now();
    C.signalAll('SIGKILL');
    await Promise.all([waitForRemoteTiles(A, [ids.B], 15_000), waitForRemoteTiles(B, [ids.A], 15_000)]);
    console.log(`METRIC killed_participant_removed_ms=${Date.now() - started}`);
    // The server also stops forwarding C: the subscribe mapping drops C's sections.
    for (const p of [A, B]) {
      await waitUntil(
        () => p.page.evaluate((c) => !(/** @type {any} */ (window).lanmeet.conn.tracks.some((/** @type {any} */ t) => t.participant === c)), ids.C),
        { timeoutMs: 5000, message: `${p.label}'s subscribe offer to drop C` },
      );
    }
    await C.close();
    delete people.C;
  });

  step('a duplicate name is refused visibly and can be fixed', async () => {
    const { A, B } = people;
    await Promise.all([A, B].map(recordJoins));
    const D = await launch('D');
    await D.page.goto(`${server.url}r/${ROOM}?name=A`);
    await pressJoin(D.page);
    const alert = D.page.getByRole('alert');
    await alert.filter({ hasText: /already in room/i }).waitFor({ state: 'visible', timeout: 10_000 });
    console.log(`duplicate-name alert: ${await alert.textContent()}`);
    assert.equal(await D.page.getByLabel('Name', { exact: true }).inputValue(), 'A', 'the name stays in the form for fixing');

    // Nobody saw a participant appear: no tile now, and (checked below, once D is in)
    // no announcement at all.
    assert.deepEqual(await remoteTileIds(A), [ids.B]);
    assert.deepEqual(await remoteTileIds(B), [ids.A]);

    await D.page.getByLabel('Name', { exact: true }).fill('D');
    await D.page.getByRole('button', { name: 'Join', exact: true }).click();
    await D.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.D = await participantId(D);
    await Promise.all([
      waitForRemoteTiles(D, [ids.A, ids.B]),
      waitForRemoteTiles(A, [ids.B, ids.D]),
      waitForRemoteTiles(B, [ids.A, ids.D]),
    ]);
    assert.equal(await D.page.getByRole('alert').filter({ hasText: /taken/i }).count(), 0, 'the alert is gone');
    // The server handles joins one at a time and sends each participant its messages in
    // order, so an announcement of the refused join would have reached A and B before
    // D's: D's is the only one they got.
    for (const p of [A, B]) {
      assert.deepEqual(await joinsSeen(p), ['D'], `${p.label} was told of D's join only`);
    }
    await waitForVideoFrom(D, [ids.A, ids.B]);
    await waitForVideoFrom(A, [ids.D]);
  });

  step('a frozen browser (no heartbeat answers) is removed within 15 s', async () => {
    const { A, B, D } = people;
    const started = Date.now();
    D.signalAll('SIGSTOP');
    try {
      await Promise.all([waitForRemoteTiles(A, [ids.B], 15_000), waitForRemoteTiles(B, [ids.A], 15_000)]);
      console.log(`METRIC frozen_participant_removed_ms=${Date.now() - started}`);
    } finally {
      D.signalAll('SIGKILL');
      await D.close();
      delete people.D;
    }
  });

  step('Leave returns to the pre-join screen and removes the tile at once', async () => {
    const { A, B } = people;
    await B.page.getByRole('button', { name: 'Leave', exact: true }).click();
    await B.page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await B.page.getByLabel('Room', { exact: true }).inputValue(), ROOM);
    assert.equal(await B.page.getByLabel('Name', { exact: true }).inputValue(), 'B');
    const closed = await B.page.evaluate(() => {
      const lm = /** @type {any} */ (window).lanmeet;
      return [lm.publishPc?.connectionState, lm.subscribePc?.connectionState];
    });
    assert.deepEqual(closed, ['closed', 'closed'], 'both peer connections are closed');
    for (const name of ['Camera', 'Microphone']) {
      const pressed = await B.page.getByRole('button', { name, exact: true }).getAttribute('aria-pressed');
      assert.equal(pressed, 'false', `the pre-join screen shows the ${name.toLowerCase()} off after leaving`);
    }
    await waitForRemoteTiles(A, [], 3000);
  });
});
