// Stations in the browser: three stations made here with ffmpeg (10 s, 15 fps, every
// frame a flat grey whose level is its frame number; station "two" tinted blue; and an
// Ogg Opus "radio"), one
// browser process. A viewer decodes the video at the file's rate and its audio; a second
// viewer 5 s later shows the same frame within 0.5 s; Next station shows the other
// station's frames within 1.5 s; playback goes on across the loop point; Next to an
// audio-only (Ogg Opus) station renegotiates and plays its audio, shown as a now-playing
// card with a moving level meter. Last, start and switch are timed over
// LANMEET_STATION_RUNS fresh pages (default 2; `bench/stations-browser.sh` runs 10 on a
// release build): click on a station in the list to its first frame, and Next station to
// the other station's picture; METRIC lines give each run, the median and the worst.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { launchBrowser, scenarioSteps, startServer, waitUntil } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const FPS = 15;
const SECONDS = 10;
const FRAMES = FPS * SECONDS;
const RUNS = Number(process.env.LANMEET_STATION_RUNS ?? 2);

/**
 * A 10 s station file: frame n is grey level 8 + 1.4 n (chroma `cb`), with a sine tone.
 * @param {string} file
 * @param {number} cb
 */
function makeStation(file, cb) {
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=black:size=320x240:rate=${FPS}:duration=${SECONDS},format=yuv420p,geq=lum='8+1.4*N':cb=${cb}:cr=128`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${SECONDS}`,
    '-c:v', 'libvpx', '-g', String(FPS), '-b:v', '500k', '-c:a', 'libopus', file,
  ]);
}

/**
 * Samples the rendered frames for `ms`: [wall-clock ms, frame number, blue tint] per
 * frame, read from the pixels; and the longest gap between frames.
 * @param {import('playwright-core').Page} page
 * @param {number} ms
 * @param {boolean} [untilLoop] stop early once the frame number wrapped
 * @returns {Promise<{samples: [number, number, number][], maxGapMs: number, looped: boolean}>}
 */
function sample(page, ms, untilLoop = false) {
  return page.evaluate(
    ({ ms, untilLoop }) =>
      new Promise((resolve) => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('st-video'));
        const canvas = document.createElement('canvas');
        canvas.width = 8;
        canvas.height = 8;
        const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
        /** @type {[number, number, number][]} */
        const samples = [];
        const end = performance.now() + ms;
        let last = 0;
        let maxGapMs = 0;
        let looped = false;
        const onFrame = () => {
          const now = performance.now();
          if (last) maxGapMs = Math.max(maxGapMs, now - last);
          last = now;
          ctx.drawImage(video, 0, 0, 8, 8);
          const d = ctx.getImageData(0, 0, 8, 8).data;
          let r = 0, g = 0, b = 0;
          for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; b += d[i + 2]; }
          const n = d.length / 4;
          [r, g, b] = [r / n, g / n, b / n];
          // BT.601 limited range: Y = 16 + (65.7 R + 129 G + 25 B) / 256.
          const y = 16 + (65.738 * r + 129.057 * g + 25.064 * b) / 256;
          const frame = (y - 8) / 1.4;
          const prev = samples.at(-1);
          if (prev && frame < prev[1] - 50) looped = true;
          samples.push([performance.timeOrigin + now, frame, b - r]);
          if (now < end && !(untilLoop && looped)) video.requestVideoFrameCallback(onFrame);
          else resolve({ samples, maxGapMs, looped });
        };
        video.requestVideoFrameCallback(onFrame);
      }),
    { ms, untilLoop },
  );
}

/**
 * Resolves with the time (ms, on the page's clock) from `act` (run in the page) to the
 * first frame shown whose blue tint is at least `tint` (station two's frames have about
 * 70; `-Infinity`: any frame), or 0 after 10 s.
 * @param {import('playwright-core').Page} page
 * @param {'one' | 'next'} act click station one in the list, or Next station
 * @param {number} tint
 * @returns {Promise<number>}
 */
function timeToPicture(page, act, tint) {
  return page.evaluate(
    ({ act, tint }) =>
      new Promise((resolve) => {
        const video = /** @type {HTMLVideoElement} */ (document.getElementById('st-video'));
        const canvas = document.createElement('canvas');
        canvas.width = 8;
        canvas.height = 8;
        const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
        let done = false;
        const started = performance.now();
        const onFrame = () => {
          if (done) return;
          ctx.drawImage(video, 0, 0, 8, 8);
          const d = ctx.getImageData(0, 0, 8, 8).data;
          if (d[2] - d[0] >= tint) {
            done = true;
            resolve(performance.now() - started);
          } else video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
        setTimeout(() => {
          done = true;
          resolve(0);
        }, 10_000);
        const target = act === 'one' ? document.querySelector('button[data-station="one"]') : document.getElementById('st-next');
        /** @type {HTMLElement} */ (target).click();
      }),
    { act, tint },
  );
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** @param {Participant} p @param {'audio' | 'video'} kind */
async function inbound(p, kind) {
  return p.page.evaluate(async (kind) => {
    const pc = /** @type {any} */ (window).lanmeetStations.pc();
    if (!pc) return null;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === kind) return { frames: s.framesDecoded ?? 0, samples: s.totalSamplesReceived ?? 0, level: s.audioLevel ?? 0 };
    }
    return null;
  }, kind);
}

describe('stations', { timeout: 180_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {Participant[]} */
  const viewers = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'lanmeet-e2e-stations-'));
  let openedA = 0;

  before(async () => {
    makeStation(path.join(dir, 'one.webm'), 128);
    makeStation(path.join(dir, 'two.webm'), 200);
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=660:duration=5', '-c:a', 'libopus', path.join(dir, 'radio.ogg')]);
    server = await startServer({
      args: [
        '--station', `one=${path.join(dir, 'one.webm')}`,
        '--station', `two=${path.join(dir, 'two.webm')}`,
        '--station', `radio=${path.join(dir, 'radio.ogg')}`,
      ],
    });
    browser = await launchBrowser('stations');
  });

  after(async () => {
    await Promise.all(viewers.map((p) => p.close()));
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const step = scenarioSteps(() => server, () => viewers);

  step('a viewer opening /stations/one decodes its video at the file rate, and its audio', async () => {
    const a = await browser.participant('A');
    viewers.push(a);
    openedA = Date.now();
    await a.page.goto(`${server.url}stations/one`);
    await waitUntil(async () => ((await inbound(a, 'video'))?.frames ?? 0) > 0, { timeoutMs: 10_000, message: 'a first decoded frame' });
    console.log(`METRIC station_start_ms ${Date.now() - openedA}`);
    const v0 = await inbound(a, 'video');
    const a0 = await inbound(a, 'audio');
    await delay(3000);
    const v1 = await inbound(a, 'video');
    const a1 = await inbound(a, 'audio');
    const rate = ((v1?.frames ?? 0) - (v0?.frames ?? 0)) / 3;
    assert.ok(rate >= FPS * 0.8 && rate <= FPS * 1.2, `decodes ${rate} frames/s, the file has ${FPS}`);
    assert.ok((a1?.samples ?? 0) - (a0?.samples ?? 0) > 48_000, `audio samples arrive: ${JSON.stringify([a0, a1])}`);
    // The list names the station with what is playing, and the player shows mm:ss.
    await a.page.getByText('one.webm', { exact: false }).first().waitFor({ timeout: 5000 });
    assert.match(await a.page.locator('#st-position').innerText(), /^\d\d:\d\d \/ 00:10$/);
  }, { setsUp: true });

  step('a second viewer 5 s later shows the same frame within 0.5 s', async () => {
    const wait = openedA + 5000 - Date.now();
    if (wait > 0) await delay(wait);
    const b = await browser.participant('B');
    viewers.push(b);
    await b.page.goto(`${server.url}stations/one`);
    await waitUntil(async () => ((await inbound(b, 'video'))?.frames ?? 0) > 0, { timeoutMs: 10_000, message: 'B decodes' });
    await delay(1000);
    const [sa, sb] = await Promise.all([sample(viewers[0].page, 2000), sample(b.page, 2000)]);
    /** @type {number[]} */
    const diffs = [];
    for (const [t, frame] of sb.samples) {
      const near = sa.samples.reduce((best, s) => (Math.abs(s[0] - t) < Math.abs(best[0] - t) ? s : best), sa.samples[0]);
      if (Math.abs(near[0] - t) > 70) continue;
      let d = frame - near[1];
      d = ((d % FRAMES) + FRAMES * 1.5) % FRAMES - FRAMES / 2;
      diffs.push(d);
    }
    assert.ok(diffs.length > 10, `paired ${diffs.length} frames`);
    const seen = sb.samples.map((x) => Math.round(x[1]));
    assert.ok(Math.max(...seen) - Math.min(...seen) >= 20, `B's frames advance: ${seen.join(' ')}`);
    diffs.sort((x, y) => x - y);
    const median = diffs[Math.floor(diffs.length / 2)];
    console.log(`METRIC station_viewers_offset_ms ${Math.round((median / FPS) * 1000)}`);
    assert.ok(Math.abs(median) <= FPS * 0.5, `B is ${median} frames from A (at most ${FPS * 0.5})`);
  });

  step('Next station shows the other station within 1.5 s, and it plays across its loop point', async () => {
    const a = viewers[0];
    const clicked = Date.now();
    const switched = a.page.evaluate(
      () =>
        new Promise((resolve) => {
          const video = /** @type {HTMLVideoElement} */ (document.getElementById('st-video'));
          const canvas = document.createElement('canvas');
          canvas.width = 8;
          canvas.height = 8;
          const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d', { willReadFrequently: true }));
          const onFrame = () => {
            ctx.drawImage(video, 0, 0, 8, 8);
            const d = ctx.getImageData(0, 0, 8, 8).data;
            if (d[2] - d[0] > 40) resolve(Date.now());
            else video.requestVideoFrameCallback(onFrame);
          };
          video.requestVideoFrameCallback(onFrame);
        }),
    );
    await a.page.getByRole('button', { name: 'Next station' }).click();
    const shown = /** @type {number} */ (await Promise.race([switched, delay(10_000).then(() => 0)]));
    assert.ok(shown > 0, 'station two never showed');
    console.log(`METRIC station_switch_ms ${shown - clicked}`);
    assert.ok(shown - clicked <= 1500, `switched in ${shown - clicked} ms`);
    assert.equal(await a.page.locator('#st-now').innerText(), 'two');
    // Across the loop point (at most one pass, 10 s): frames keep coming.
    const run = await sample(a.page, 12_000, true);
    assert.ok(run.looped, 'the station looped while watched');
    assert.ok(run.maxGapMs < 1000, `longest gap between frames ${Math.round(run.maxGapMs)} ms`);
    // Only station two's (blue) frames (station one's have none); the darkest ones near
    // the file's start are too dark, the brightest too light, to carry much of it.
    const untinted = run.samples.filter((s) => s[1] >= 15 && s[2] <= 15);
    assert.deepEqual(untinted, [], 'only station two frames after the switch');
  });

  step('Next station to an audio-only station renegotiates, and its audio plays', async () => {
    const a = viewers[0];
    const before = await a.page.evaluate(() => /** @type {any} */ (window).lanmeetStations.pc());
    assert.ok(before !== null);
    await a.page.getByRole('button', { name: 'Next station' }).click();
    await waitUntil(async () => (await a.page.locator('#st-now').innerText()) === 'radio', { timeoutMs: 5000, message: 'the player names radio' });
    /** @type {{samples: number, level: number} | null} */
    let first = null;
    await waitUntil(
      async () => {
        const now = await inbound(a, 'audio');
        const video = await inbound(a, 'video');
        if (!now || video) return false;
        first ??= now;
        return now.samples - first.samples > 24_000 && now.level > 0;
      },
      { timeoutMs: 10_000, message: 'radio audio on a connection without video' },
    );
    // The now-playing card instead of an empty video, and a level meter that moves.
    await a.page.locator('#st-radio').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await a.page.locator('#st-video').isVisible(), false, 'no empty video for a radio station');
    assert.equal(await a.page.locator('#st-radio-station').innerText(), 'radio');
    assert.match(await a.page.locator('#st-radio-title').innerText(), /radio\.ogg/);
    assert.match(await a.page.locator('#st-radio-position').innerText(), /^\d\d:\d\d \/ 00:05$/);
    /** @type {number[]} */
    const levels = [];
    await waitUntil(
      async () => {
        levels.push(await a.page.locator('#st-level').evaluate((m) => /** @type {HTMLMeterElement} */ (m).value));
        return (levels.at(-1) ?? 0) > 0.1;
      },
      { timeoutMs: 5000, message: `the level meter moves for a sine (levels ${levels.join(' ')})` },
    );
  });

  step(`start and switch times over ${RUNS} fresh pages`, async () => {
    /** @type {number[]} */
    const starts = [];
    /** @type {number[]} */
    const switches = [];
    for (let i = 0; i < RUNS; i++) {
      const p = await browser.participant(`run${i}`);
      try {
        await p.page.goto(`${server.url}stations`);
        await p.page.locator('button[data-station="one"]').waitFor({ timeout: 10_000 });
        const start = await timeToPicture(p.page, 'one', -Infinity);
        assert.ok(start > 0, `run ${i}: station one never showed a frame`);
        // Station one's own frames first, so the switch starts from a playing station.
        await delay(500);
        const switched = await timeToPicture(p.page, 'next', 40);
        assert.ok(switched > 0, `run ${i}: station two never showed`);
        console.log(`METRIC station_start_ms ${Math.round(start)}`);
        console.log(`METRIC station_switch_ms ${Math.round(switched)}`);
        starts.push(start);
        switches.push(switched);
      } finally {
        await p.close();
      }
    }
    console.log(`METRIC station_start_median_ms ${Math.round(median(starts))}`);
    console.log(`METRIC station_start_worst_ms ${Math.round(Math.max(...starts))}`);
    console.log(`METRIC station_switch_median_ms ${Math.round(median(switches))}`);
    console.log(`METRIC station_switch_worst_ms ${Math.round(Math.max(...switches))}`);
    assert.ok(Math.max(...starts) <= 1500, `start within 1.5 s: ${starts.map(Math.round).join(', ')} ms`);
    assert.ok(Math.max(...switches) <= 1500, `switch within 1.5 s: ${switches.map(Math.round).join(', ')} ms`);
  });
});
