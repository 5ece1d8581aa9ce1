// The Firefox leg: two headless Chromium participants and one headless Firefox ESR
// (puppeteer-core over WebDriver BiDi, see harness.mjs) in one room. Every page decodes
// every other's video and audio, Firefox sends all three simulcast layers, they reach
// the server (its per-layer meters, admin API) and the Chromium viewers, and the server
// switches them by tile size, Firefox shares a screen, and chat and
// files go from and to Firefox (the saved bytes' SHA-256 checked in the page).
//
// Outcomes are asserted on what a user would notice: frames and samples decoded
// (RTCPeerConnection.getStats()), messages and files arriving.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { joinByLink, launchFirefoxParticipant, launchParticipant, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { cameraLayersOf, decodeFps, inboundOf, streamOf, waitForNewFrames, waitForVideoFrom } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */
/** @typedef {import('./pagestats.mjs').Inbound} Inbound */

const ROOM = `firefox-${process.pid}`;
/** Two fake cameras and one of Firefox on a shared 2-core machine; a stall reads 0-2. */
const MIN_FPS = 8;
const FILE_BYTES = 3 * 1024 * 1024;

/**
 * Installed before the page's scripts: keeps every blob the page hands to a download
 * link (`saveBlob` in web/files.js), so the test can hash what the browser saved.
 */
function recordSavedBlobs() {
  const w = /** @type {any} */ (window);
  w.e2eSaved = [];
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj) => {
    if (obj instanceof Blob) {
      w.e2eSaved.push(obj);
    }
    return create(obj);
  };
}

/** The SHA-256 of every blob the page saved so far, in the page. */
async function savedHashes() {
  const blobs = /** @type {Blob[]} */ (/** @type {any} */ (window).e2eSaved);
  const out = [];
  for (const b of blobs) {
    const digest = await crypto.subtle.digest('SHA-256', await b.arrayBuffer());
    out.push(Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, '0')).join(''));
  }
  return out;
}

/** @param {Buffer} bytes */
function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The chat entries' sender and text, as shown.
 * @param {Participant} p
 * @returns {Promise<{from: string, text: string}[]>}
 */
function chatEntries(p) {
  return p.page.evaluate(() =>
    [...document.querySelectorAll('[role="log"] li')].map((li) => ({
      from: li.querySelector('.entry-from')?.textContent ?? '',
      text: li.querySelector('.entry-text')?.textContent ?? '',
    })),
  );
}

/**
 * The track view a page reports for `id`'s camera (`lanmeet.view`: the tile size the
 * server is told).
 * @param {Participant} p
 * @param {number} id
 * @returns {Promise<{width: number, height: number} | null>}
 */
function cameraViewOf(p, id) {
  return p.page.evaluate((a) => {
    const lm = /** @type {any} */ (window).lanmeet;
    const mid = lm.conn.tracks.find((/** @type {any} */ t) => t.participant === a && t.source === 'camera' && t.kind === 'video')?.mid;
    return lm.view?.tracks.find((/** @type {any} */ t) => t.mid === mid) ?? null;
  }, id);
}

/**
 * Opens the chat panel if it is closed.
 * @param {Participant} p
 */
async function openChat(p) {
  const toggle = p.page.getByRole('button', { name: 'Chat' });
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') {
    await toggle.click();
  }
}

describe('a meeting with Firefox', { timeout: 300_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Record<string, Participant>} */
  const people = {};
  /** @type {Record<string, number>} */
  const ids = {};
  const tempDir = mkdtempSync(path.join(tmpdir(), 'lanmeet-e2e-ff-'));

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
    rmSync(tempDir, { recursive: true, force: true });
  });

  const step = scenarioSteps(() => server, () => Object.values(people));

  step('two Chromium participants and one Firefox join and see each other', async () => {
    const [a, b, f] = await Promise.all([launchParticipant('A'), launchParticipant('B'), launchFirefoxParticipant('F')]);
    Object.assign(people, { A: a, B: b, F: f });
    for (const p of [a, b, f]) {
      await p.context.addInitScript({ content: `(${recordSavedBlobs})();` });
    }
    for (const p of [a, b, f]) {
      ids[p.label] = await joinByLink(p, server, ROOM, p.label);
    }
    assert.equal(new Set(Object.values(ids)).size, 3, `distinct ids: ${JSON.stringify(ids)}`);
    for (const p of [a, b, f]) {
      const others = [a, b, f].filter((q) => q !== p).map((q) => ids[q.label]);
      await p.page.waitForFunction(
        (want) => want.every((id) => document.querySelector(`#grid [data-participant-id="${id}"] video`)),
        others,
        { timeout: 20_000 },
      );
    }
    const agent = await f.page.evaluate(() => navigator.userAgent);
    console.log(`firefox user agent: ${agent}`);
    assert.match(agent, /Firefox\/\d+/);
  }, { setsUp: true });

  step('every page decodes every other\u2019s video and audio', async () => {
    const all = [people.A, people.B, people.F];
    const othersOf = (/** @type {Participant} */ p) => all.filter((q) => q !== p).map((q) => ids[q.label]);
    await Promise.all(all.map((p) => waitForVideoFrom(p, othersOf(p), { timeoutMs: 30_000 })));

    // Rates over a window; right after the joins layers settle, so up to five windows.
    /** @type {Inbound[]} */
    let before1 = await Promise.all(all.map(inboundOf));
    /** @type {Inbound[]} */
    let after1 = before1;
    /** @returns {string[]} */
    const problems = () =>
      all.flatMap((p, i) =>
        othersOf(p).flatMap((id) => {
          const v0 = streamOf(before1[i], id, 'video');
          const v1 = streamOf(after1[i], id, 'video');
          const a0 = streamOf(before1[i], id, 'audio');
          const a1 = streamOf(after1[i], id, 'audio');
          const out = [];
          const fps = v0 && v1 ? decodeFps(v0, v1) : 0;
          if (fps < MIN_FPS) {
            out.push(`${p.label}<-${id} video ${fps.toFixed(1)} fps`);
          }
          const samples = (a1?.totalSamplesReceived ?? 0) - (a0?.totalSamplesReceived ?? 0);
          if (!a0 || !a1 || a1.packetsReceived <= a0.packetsReceived || samples <= 0) {
            out.push(`${p.label}<-${id} audio packets ${a0?.packetsReceived}->${a1?.packetsReceived} samples +${samples}`);
          }
          return out;
        }),
      );
    for (let window = 0; window < 5; window++) {
      before1 = after1;
      await delay(2000); // a measurement window
      after1 = await Promise.all(all.map(inboundOf));
      if (problems().length === 0) {
        break;
      }
      console.log(`window ${window}: not yet: ${problems().join('; ')}`);
    }
    all.forEach((p, i) => {
      for (const id of othersOf(p)) {
        const v0 = streamOf(before1[i], id, 'video');
        const v1 = streamOf(after1[i], id, 'video');
        if (v0 && v1) {
          console.log(`METRIC fps=${decodeFps(v0, v1).toFixed(1)} receiver=${p.label} sender=${id} size=${v1.frameWidth}x${v1.frameHeight}`);
        }
      }
    });
    assert.deepEqual(problems(), [], 'every page decodes every other\u2019s video and audio');
  });

  step('Firefox\u2019s simulcast layers reach the Chromium viewers, switched by tile size', async () => {
    const { A, B, F } = people;
    // Firefox sends all three simulcast layers. Its top layer needs a bandwidth estimate
    // of about 2 Mbit/s, which a successful first probe gives at once; a failed one left
    // it off for 20-30 s (docs/client.md, "Simulcast"), so up to 30 s more here.
    /** @type {import('./pagestats.mjs').CameraLayer[]} */
    let sent = [];
    const layers = await waitUntil(
      async () => {
        sent = await cameraLayersOf(F);
        const l = sent.filter((x) => x.framesEncoded > 0 && x.frameHeight > 0);
        return new Set(l.map((x) => x.frameHeight)).size >= 3 ? l : null;
      },
      { timeoutMs: 30_000, message: 'Firefox to send its three simulcast layers' },
    ).catch((err) => {
      throw new Error(`${err.message}; Firefox sends ${JSON.stringify(sent)}`);
    });
    for (const l of layers) {
      console.log(`METRIC firefox layer rid=${l.rid} size=${l.frameWidth}x${l.frameHeight} codec=${l.mimeType}`);
    }
    const top = Math.max(...layers.map((l) => l.frameHeight));
    const bottom = Math.min(...layers.map((l) => l.frameHeight));
    assert.ok(top > bottom);
    // All three reach the server: its per-layer meters of F's camera (admin API).
    const admin = await A.context.newPage();
    try {
      await admin.goto(`${server.url}admin`);
      await admin.getByLabel('Admin password').fill(readFileSync(path.join(server.dataDir, 'admin-password'), 'utf8').trim());
      await admin.getByRole('button', { name: 'Sign in' }).click();
      await admin.waitForURL(/\/admin$/);
      /** @type {number[] | null} */
      let arriving = null;
      await waitUntil(
        async () => {
          arriving = await admin.evaluate(async (id) => {
            const reply = await (await fetch('/admin/api/rooms', { cache: 'no-store' })).json();
            const member = reply.rooms.flatMap((/** @type {any} */ r) => r.members).find((/** @type {any} */ m) => m.id === id);
            return member?.camera_layers_bps ?? null;
          }, ids.F);
          return arriving?.length === 3 && arriving.every((bps) => bps > 0);
        },
        { timeoutMs: 10_000, message: 'the server to receive all three of F\u2019s layers' },
      ).catch((err) => {
        throw new Error(`${err.message}; layers at the server (bit/s): ${JSON.stringify(arriving)}`);
      });
      console.log(`METRIC firefox layers at the server (bit/s, lowest first): ${JSON.stringify(arriving)}`);
    } finally {
      await admin.close();
    }

    const heightAt = async (/** @type {Participant} */ p) => streamOf(await inboundOf(p), ids.F, 'video')?.frameHeight ?? 0;
    // A pins F (a large tile): A gets F's top layer; B pins A (F goes to the
    // filmstrip, a small tile): B gets a smaller one.
    await A.page.getByRole('button', { name: 'Chat' }).click();
    await B.page.getByRole('button', { name: 'Chat' }).click();
    await A.page.getByRole('button', { name: 'Pin F' }).click();
    await B.page.getByRole('button', { name: 'Pin A' }).click();
    /** @type {number[]} */
    let heights = [];
    const settle = async (/** @type {(a: number, b: number) => boolean} */ ok, /** @type {string} */ message) => {
      try {
        await waitUntil(
          async () => {
            heights = [await heightAt(A), await heightAt(B)];
            return ok(heights[0], heights[1]);
          },
          { timeoutMs: 40_000, intervalMs: 250, message },
        );
      } finally {
        const views = [await cameraViewOf(A, ids.F), await cameraViewOf(B, ids.F)];
        console.log(`METRIC received height of F: A=${heights[0]} B=${heights[1]} (layers ${bottom}..${top}); views ${JSON.stringify(views)}`);
      }
    };
    await settle((a, b) => b > 0 && a > b, 'A (F large) to receive a larger layer of F than B (F small)');
    const large = heights[0];
    const small = heights[1];

    // A pins B instead: F's tile at A shrinks and the server switches A to a smaller layer.
    await A.page.getByRole('button', { name: 'Pin B' }).click();
    await settle((a) => a > 0 && a < large, 'A to receive a smaller layer of F once F\u2019s tile is small');
    const shrunk = heights[0];
    // And back.
    await A.page.getByRole('button', { name: 'Pin F' }).click();
    await settle((a) => a >= large, 'A to receive the large layer of F again');
    console.log(`METRIC firefox layers switched at A: ${large} -> ${shrunk} -> ${heights[0]} (B: ${small}); now sent: ${JSON.stringify(await cameraLayersOf(F))}`);

    // Every viewer keeps decoding F's camera.
    for (const p of [A, B]) {
      await waitForNewFrames(p, (s) => s.participant === ids.F && s.kind === 'video' && s.source === 'camera', {
        frames: 5,
        message: `${p.label} to keep decoding F`,
      });
    }
  });

  step('Firefox shares a screen and both Chromium viewers decode it', async () => {
    const { A, B, F } = people;
    await F.page.getByRole('button', { name: 'Share screen' }).click();
    await F.page.waitForFunction(() => document.getElementById('screen-toggle')?.getAttribute('aria-pressed') === 'true', null, {
      timeout: 15_000,
    });
    for (const p of [A, B]) {
      await waitForNewFrames(p, (s) => s.participant === ids.F && s.kind === 'video' && s.source === 'screen', {
        frames: 5,
        timeoutMs: 30_000,
        message: `${p.label} to decode F's screen`,
      });
      const s = (await inboundOf(p)).streams.find((x) => x.participant === ids.F && x.source === 'screen');
      console.log(`METRIC firefox screen at ${p.label}: ${s?.frameWidth}x${s?.frameHeight}`);
    }
    await F.page.getByRole('button', { name: 'Share screen' }).click();
    await F.page.waitForFunction(() => document.getElementById('screen-toggle')?.getAttribute('aria-pressed') === 'false', null, {
      timeout: 10_000,
    });
  });

  step('chat messages go from and to Firefox', async () => {
    const { A, B, F } = people;
    const sendText = async (/** @type {Participant} */ p, /** @type {string} */ text) => {
      const box = p.page.getByRole('textbox', { name: 'Message' });
      await box.fill(text);
      await box.press('Enter');
    };
    /** @param {Participant} p @param {string} from @param {string} text */
    const shown = (p, from, text) =>
      waitUntil(async () => (await chatEntries(p)).some((e) => e.from === from && e.text === text), {
        message: `${p.label} to show "${text}" from ${from}`,
      });
    // The chats were closed for the layouts above.
    await Promise.all([A, B, F].map(openChat));
    await sendText(F, 'hello from firefox');
    await Promise.all([shown(A, 'F', 'hello from firefox'), shown(B, 'F', 'hello from firefox'), shown(F, 'F', 'hello from firefox')]);
    await sendText(A, 'hello to firefox');
    await shown(F, 'A', 'hello to firefox');
  });

  step('files go from Firefox to Chromium and from Chromium to Firefox, byte-identical', async () => {
    const { A, B, F } = people;
    /**
     * `from` shares a random file; each of `to` downloads it and saves exactly its bytes.
     * @param {Participant} from @param {Participant[]} to @param {string} name
     */
    const share = async (from, to, name) => {
      const bytes = randomBytes(FILE_BYTES);
      const file = path.join(tempDir, name);
      writeFileSync(file, bytes);
      await from.page.getByLabel('Share file').setInputFiles(file);
      for (const p of to) {
        const saved = (await p.page.evaluate(savedHashes)).length;
        await p.page.getByRole('button', { name: `Download ${name}` }).click({ timeout: 20_000 }).catch((err) => {
          throw new Error(`${p.label} shows no Download button for ${name}: ${err}`);
        });
        const hashes = await waitUntil(async () => {
          const h = await p.page.evaluate(savedHashes);
          return h.length > saved ? h : null;
        }, { timeoutMs: 30_000, message: `${p.label} to save ${name}` });
        assert.equal(hashes.at(-1), sha256(bytes), `${p.label} saved ${name} byte-identical`);
        await p.page.waitForFunction(
          (n) => [...document.querySelectorAll('[role="log"] li')].some((li) => li.textContent?.includes(n) && li.textContent.includes('SHA-256 matches')),
          name,
          { timeout: 5000 },
        );
      }
    };
    await share(F, [A, B], 'from-firefox.bin');
    await share(A, [F], 'to-firefox.bin');
  });
});
