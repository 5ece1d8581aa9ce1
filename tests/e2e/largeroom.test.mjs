// A large meeting: load-generator publishers (`lanmeet-loadgen`) and two headless
// Chromium participants in one room. The grid view shows a page of tiles (25 on a
// 1280x800 window); the steps check that every tile on the shown page gets video and the tiles
// off it get none, that "Next page" brings the next page's video within 2 s, and that
// people leaving and joining move no tile that stays off its page.
//
// The load generator's video is synthetic: real RTP with VP8 payload descriptors that
// carry counters rather than pictures, so a browser receives it (bytes and packets in
// getStats) but cannot decode it. Decoding is asserted on the other Chromium's tile,
// whose video is real; for the synthetic tiles the test asserts the bytes that arrive.
//
// Numbers (time to video after a page switch, Chromium's CPU) are printed as test
// diagnostics, never asserted beyond the 2 s the feature promises.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { LOADGEN_BIN, descendants, joinByLink, launchParticipant, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { inboundOf } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

// Load-generator publishers in the room before the churn: 40, two pages of 25 on a
// 1280x800 window (with the two browsers, 42 cameras). The server's offers and the
// browser's answers fit signaling at that size since offers carry only the codecs in use
// and SDP messages may have 256 KiB (docs/large-meetings.md, "Offers that fit"). The run
// takes about 30 s on a 2-core machine. LARGEROOM_PUBLISHERS=12 runs a smaller room on a
// smaller window whose page holds 9 tiles.
const PUBLISHERS = Number(process.env.LARGEROOM_PUBLISHERS ?? 40);
// How many of them leave, and how many new ones join, in the churn step.
const CHURN = Math.min(20, Math.floor(PUBLISHERS / 2));
// Low-bitrate synthetic cameras: the machine runs the server, the load generator and
// two browsers on 2 cores.
const LOADGEN_VIDEO = ['--layers', '1', '--video-kbps', '40', '--fps', '10', '--keyframe-interval', '2', '--audio-pps', '0'];
// The page size follows from the window: tiles at least 160 px wide, at most 25 (25 on
// 1280x800; on 960x600, 12).
const VIEWPORT = PUBLISHERS >= 30 ? { width: 1280, height: 800 } : { width: 960, height: 600 };
const MIN_TILE_WIDTH = 160;
/** The promise of the feature: a page switch brings video within this. */
const SWITCH_MS = 2000;
const ROOM_PREFIX = `large-${process.pid}`;
// `lanmeet-loadgen` names rooms PREFIX-0, PREFIX-1, ...
const ROOM = `${ROOM_PREFIX}-0`;

/**
 * A group of synthetic publishers in one `lanmeet-loadgen` process.
 * @param {Server} server
 * @param {string} namePrefix
 * @param {number} count
 */
function startLoadgen(server, namePrefix, count) {
  const args = [
    '--server', server.url.replace(/\/$/, ''),
    '--room-prefix', ROOM_PREFIX,
    '--name-prefix', namePrefix,
    '--participants', String(count),
    '--join-rate', '20',
    '--warmup', '0',
    '--duration', '600',
    ...LOADGEN_VIDEO,
  ];
  /** @type {string[]} */
  const lines = [];
  const child = spawn(LOADGEN_BIN, args, { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      lines.splice(0, Math.max(0, lines.length - 100));
    });
  }
  return {
    namePrefix,
    lines,
    /** Ends every publisher of the group at once (their sockets close). */
    stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
      }
    },
  };
}

/**
 * What the page shows: the tiles of the shown page and those off it (each with id and
 * name), the page label, and the sizes last reported in `view`. Runs in the page.
 */
function shownTiles() {
  const lm = /** @type {any} */ (window).lanmeet;
  /** @param {string} selector */
  const tiles = (selector) =>
    [...document.querySelectorAll(selector)].map((t) => {
      const tile = /** @type {HTMLElement} */ (t);
      const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
      return {
        id: Number(tile.dataset.participantId),
        name: tile.querySelector('.placeholder-name')?.textContent ?? '',
        videoWidth: video.videoWidth,
        tileWidth: tile.getBoundingClientRect().width,
        currentTime: video.currentTime,
      };
    });
  const pager = /** @type {HTMLElement} */ (document.getElementById('pager'));
  return {
    onPage: tiles('#grid [data-participant-id]'),
    offPage: tiles('#offstage [data-participant-id]'),
    selfOnPage: document.querySelector('#grid [data-self]') !== null,
    label: pager.hidden ? null : (document.getElementById('page-label')?.textContent ?? null),
    /** @type {{mid: string, width: number, height: number}[]} */
    view: lm?.view?.tracks ?? [],
  };
}

/**
 * What `p` shows (`shownTiles`) and, per participant, the camera's inbound counters.
 * @param {Participant} p
 */
async function look(p) {
  const [shown, inbound] = await Promise.all([p.page.evaluate(shownTiles), inboundOf(p)]);
  /** @type {Record<number, {bytes: number, packets: number, frames: number}>} */
  const video = {};
  for (const s of inbound.streams) {
    if (s.kind === 'video' && s.participant !== null && s.source !== 'screen') {
      video[s.participant] = { bytes: s.bytesReceived, packets: s.packetsReceived, frames: s.framesDecoded };
    }
  }
  return { ...shown, video };
}

/** @typedef {Awaited<ReturnType<typeof look>>} Look */

/**
 * Waits until the tiles on `p`'s shown page (as in `since`) have received `packets` more
 * video packets each on average than in `since`, and returns what `p` shows then: a
 * window measured by the media the server forwards to this page (a synthetic camera
 * sends about 10 packets a second), not by the wall clock. An average, since a loaded
 * machine may pause a tile's video for a while (low bandwidth).
 * @param {Participant} p
 * @param {Look} since
 * @param {number} packets
 */
async function mediaWindow(p, since, packets) {
  const ids = since.onPage.map((t) => t.id);
  return waitUntil(
    async () => {
      const now = await look(p);
      const more = ids.reduce((sum, id) => sum + (now.video[id]?.packets ?? 0) - (since.video[id]?.packets ?? 0), 0);
      return more >= packets * ids.length ? now : null;
    },
    { timeoutMs: 15_000, intervalMs: 100, message: `${p.label}: ${packets} more video packets per tile of the page` },
  );
}

/**
 * Which of `ids` got video bytes (and, for `decoding`, decoded frames) between two
 * snapshots.
 * @param {Look} a
 * @param {Look} b
 * @param {number[]} ids
 */
function growing(a, b, ids) {
  return ids.filter((id) => (b.video[id]?.bytes ?? 0) > (a.video[id]?.bytes ?? 0));
}

/**
 * Chromium's CPU time (browser, renderers, GPU and utility processes), seconds.
 * @param {Participant} p
 */
function cpuSeconds(p) {
  return treeCpuSeconds(p.pid());
}

/**
 * CPU seconds (user and system) a process and its descendants have used so far.
 * @param {number} root
 */
function treeCpuSeconds(root) {
  let ticks = 0;
  for (const pid of [root, ...descendants(root)]) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks / 100;
}

describe('large meeting: pages of the grid view', { timeout: 150_000 }, () => {
  /** @type {Server | undefined} */
  let server;
  /** @type {Participant[]} */
  const browsers = [];
  /** @type {ReturnType<typeof startLoadgen>[]} */
  const loadgens = [];
  /** @type {Map<string, number>} */
  const ids = new Map();
  const step = scenarioSteps(
    () => server,
    () => browsers,
  );

  before(async () => {
    if (!existsSync(LOADGEN_BIN)) {
      throw new Error(
        `lanmeet-loadgen not found at ${LOADGEN_BIN}. Build it ` +
          '(cargo build --release -p lanmeet-loadgen) or set LANMEET_LOADGEN_BIN.',
      );
    }
    server = await startServer();
  });

  after(async () => {
    for (const g of loadgens) {
      g.stop();
    }
    await Promise.all(browsers.map((p) => p.close()));
    await server?.stop();
  });

  /**
   * The SDP sizes (bytes) of the latest subscribe offer and answer `p`'s browser holds,
   * and how many media sections they have.
   * @param {Participant} p
   */
  async function sdpSizes(p) {
    return p.page.evaluate(() => {
      const pc = /** @type {RTCPeerConnection | null} */ (/** @type {any} */ (window).lanmeet?.subscribePc ?? null);
      const offer = pc?.remoteDescription?.sdp ?? '';
      const answer = pc?.localDescription?.sdp ?? '';
      return { offer: offer.length, answer: answer.length, sections: offer.split('\r\nm=').length - 1 };
    });
  }

  /** Everyone the browser shows, on the page or off it. @param {Participant} p */
  async function remoteCount(p) {
    const s = await look(p);
    return s.onPage.length + s.offPage.length;
  }

  /**
   * Waits until every remote tile on `p`'s shown page gets video bytes; returns the
   * milliseconds until each did, from `since`.
   * @param {Participant} p
   * @param {number} since Date.now() of the change
   * @param {number} timeoutMs
   */
  async function videoOnPage(p, since, timeoutMs) {
    /** @type {Map<number, number>} */
    const arrived = new Map();
    let last = await look(p);
    const want = last.onPage.map((t) => t.id);
    await waitUntil(
      async () => {
        const now = await look(p);
        for (const id of growing(last, now, want)) {
          if (!arrived.has(id)) {
            arrived.set(id, Date.now() - since);
          }
        }
        last = now;
        const missing = want.filter((id) => !arrived.has(id));
        if (missing.length > 0) {
          // Thrown, not returned: waitUntil's timeout names what is still missing.
          throw new Error(`missing ${missing.length} of ${want.length}: ${missing.join(', ')}`);
        }
        return true;
      },
      { timeoutMs, intervalMs: 100, message: `${p.label}: video for every tile on the page` },
    );
    return arrived;
  }

  step(
    'two browsers and the synthetic publishers join one room',
    async () => {
      const a = await launchParticipant('ada');
      browsers.push(a);
      await a.page.setViewportSize(VIEWPORT);
      ids.set('ada', await joinByLink(a, /** @type {Server} */ (server), ROOM, 'Ada'));

      const half = PUBLISHERS - CHURN;
      loadgens.push(startLoadgen(/** @type {Server} */ (server), 'a-', CHURN));
      loadgens.push(startLoadgen(/** @type {Server} */ (server), 'b-', half));
      await waitUntil(async () => (await remoteCount(a)) === PUBLISHERS, {
        timeoutMs: 30_000,
        message: `Ada sees ${PUBLISHERS} publishers`,
      }).catch((err) => {
        throw new Error(`${err.message}\nloadgen output:\n${loadgens.flatMap((g) => g.lines).join('\n')}`);
      });

      const b = await launchParticipant('bob');
      browsers.push(b);
      await b.page.setViewportSize(VIEWPORT);
      ids.set('bob', await joinByLink(b, /** @type {Server} */ (server), ROOM, 'Bob'));
      for (const p of browsers) {
        await waitUntil(async () => (await remoteCount(p)) === PUBLISHERS + 1, { timeoutMs: 20_000, message: `${p.label} sees everyone` });
      }
      // Bob's subscribe connection gets every publisher's camera (the load generator
      // sends no audio here) and Ada's camera and microphone: its offers and answers
      // fit signaling.
      await waitUntil(async () => (await sdpSizes(b)).sections >= PUBLISHERS + 2, {
        timeoutMs: 20_000,
        message: `Bob's subscribe connection has every track`,
      });
      const sizes = await sdpSizes(b);
      console.log(`# ${PUBLISHERS} publishers: Bob's latest subscribe offer ${sizes.offer} bytes, answer ${sizes.answer} bytes, ${sizes.sections} sections`);
    },
    { setsUp: true },
  );

  /** Tiles per page, as the first browser shows them. */
  let pageSize = 0;

  step('the grid shows one page of tiles, none narrower than 160 px, with page controls', async () => {
    for (const p of browsers) {
      const s = await look(p);
      const total = PUBLISHERS + 2;
      const size = s.onPage.length + (s.selfOnPage ? 1 : 0);
      pageSize ||= size;
      assert.equal(size, pageSize, `${p.label}: tiles on page 1`);
      assert.ok(size < total && size <= 25, `${p.label}: a page of ${size} tiles for ${total} people`);
      if (VIEWPORT.width === 1280) {
        assert.equal(size, 25);
      }
      const narrow = s.onPage.filter((t) => t.tileWidth < MIN_TILE_WIDTH).map((t) => t.tileWidth);
      assert.deepEqual(narrow, [], `${p.label}: tiles narrower than ${MIN_TILE_WIDTH} px`);
      const pages = Math.ceil(total / size);
      assert.equal(s.label, pages > 1 ? `Page 1 of ${pages}` : null, `${p.label}: page label`);
      const next = p.page.getByRole('button', { name: 'Next page' });
      const previous = p.page.getByRole('button', { name: 'Previous page' });
      assert.equal(await next.isVisible(), pages > 1);
      if (pages > 1) {
        assert.equal(await previous.isDisabled(), true);
      }
    }
    // Bob joined last: in Ada's grid he is off page 1. Pinned people come first: Ada pins
    // him in the speaker view (its filmstrip shows everyone) and goes back to the grid.
    const [a] = browsers;
    const bob = /** @type {number} */ (ids.get('bob'));
    assert.ok((await look(a)).offPage.some((t) => t.id === bob), 'Bob off Ada\'s page 1 before the pin');
    await a.page.getByRole('button', { name: 'Speaker view' }).click();
    await a.page.getByRole('button', { name: 'Pin Bob' }).click();
    await a.page.getByRole('button', { name: 'Grid view' }).click();
    const s = await look(a);
    assert.ok(s.onPage.some((t) => t.id === bob), 'pinned Bob on page 1');
    assert.equal(s.label, `Page 1 of ${Math.ceil((PUBLISHERS + 2) / pageSize)}`);
    // Ada is on page 1 of Bob's grid: she joined first.
    assert.ok((await look(browsers[1])).onPage.some((t) => t.id === ids.get('ada')), 'Ada on Bob\'s page 1');
  });

  step('every tile on the shown page gets video; the other browser decodes; tiles off the page get none', async () => {
    for (const p of browsers) {
      const arrived = await videoOnPage(p, Date.now(), 15_000);
      assert.ok(arrived.size >= pageSize - 1);
      const other = /** @type {number} */ (p.label === 'ada' ? ids.get('bob') : ids.get('ada'));
      // Real video from the other browser: frames decode and the element plays, while
      // the page's tiles get about a second of video (10 packets each).
      const first = await look(p);
      const second = await mediaWindow(p, first, 10);
      assert.ok((second.video[other]?.frames ?? 0) > (first.video[other]?.frames ?? 0), `${p.label}: frames decoded from the other browser`);
      const tile = second.onPage.find((t) => t.id === other);
      assert.ok(tile && tile.videoWidth > 0, `${p.label}: the other browser's video has a size`);
      assert.ok(tile.currentTime > (first.onPage.find((t) => t.id === other)?.currentTime ?? 0), `${p.label}: its video plays`);
      // Off the page: reported 0x0, and no video bytes.
      const off = second.offPage.map((t) => t.id);
      assert.deepEqual(growing(first, second, off), [], `${p.label}: video for tiles off the page`);
      const zero = second.view.filter((/** @type {any} */ v) => v.width === 0).length;
      assert.ok(zero >= off.length, `${p.label}: ${off.length} tiles off the page, ${zero} reported 0x0`);
    }
  });

  step('Chromium CPU with a full page of video', async () => {
    const a = browsers[0];
    const start = cpuSeconds(a);
    const serverPid = /** @type {number} */ (/** @type {Server} */ (server).process.pid);
    const serverStart = treeCpuSeconds(serverPid);
    const t0 = Date.now();
    await delay(5000); // the measurement window
    const seconds = (Date.now() - t0) / 1000;
    const busy = (cpuSeconds(a) - start) / seconds;
    const serverBusy = (treeCpuSeconds(serverPid) - serverStart) / seconds;
    console.log(`# ${a.label}: Chromium CPU, page 1 of ${PUBLISHERS + 1} remote cameras shown (${pageSize} tiles): ${(busy * 100).toFixed(0)}% of a core`);
    console.log(`# server CPU with ${PUBLISHERS + 2} cameras in the room: ${(serverBusy * 100).toFixed(0)}% of a core`);
  });

  /** Ada's shown page before the churn, ids in order. @type {number[]} */
  let adaPage = [];
  /** @type {number[]} */
  let bobPage = [];

  step('Next page: its tiles get video within 2 s, the previous page none', async () => {
    const a = browsers[0];
    const before = await look(a);
    const clicked = Date.now();
    await a.page.getByRole('button', { name: 'Next page' }).click();
    const s = await look(a);
    const pages = Math.ceil((PUBLISHERS + 2) / pageSize);
    assert.equal(s.label, `Page 2 of ${pages}`);
    assert.ok(s.onPage.length > 0 && !s.selfOnPage);
    assert.deepEqual(
      s.onPage.filter((t) => before.onPage.some((b) => b.id === t.id)),
      [],
      'page 2 shares no tile with page 1',
    );
    const arrived = await videoOnPage(a, clicked, SWITCH_MS + 1000);
    const times = [...arrived.values()].sort((x, y) => x - y);
    console.log(
      `# page 1 -> 2: video on all ${times.length} tiles after ${times.at(-1)} ms (median ${times[Math.floor(times.length / 2)]} ms)`,
    );
    assert.ok(/** @type {number} */ (times.at(-1)) <= SWITCH_MS, `slowest tile ${times.at(-1)} ms`);
    // Page 1's tiles: no more video once the view went out and in-flight packets landed
    // (while page 2's tiles got 7 more packets each, about 0.7 s), over the next 15.
    const quiet1 = await mediaWindow(a, await look(a), 7);
    const quiet2 = await mediaWindow(a, quiet1, 15);
    const pageOne = before.onPage.map((t) => t.id);
    assert.deepEqual(growing(quiet1, quiet2, pageOne), [], 'page 1 tiles still getting video');
  });

  step('Previous page: the other browser decodes again within 2 s', async () => {
    const a = browsers[0];
    const bob = /** @type {number} */ (ids.get('bob'));
    const before = await look(a);
    const clicked = Date.now();
    await a.page.getByRole('button', { name: 'Previous page' }).click();
    const frames0 = before.video[bob]?.frames ?? 0;
    await waitUntil(async () => ((await look(a)).video[bob]?.frames ?? 0) > frames0, {
      timeoutMs: SWITCH_MS + 1000,
      intervalMs: 50,
      message: "Bob's frames decoding again on page 1",
    });
    const decodedAfter = Date.now() - clicked;
    const arrived = await videoOnPage(a, clicked, SWITCH_MS + 1000);
    const slowest = Math.max(...arrived.values());
    console.log(`# page 2 -> 1: Bob's video decodes after ${decodedAfter} ms; video on all ${arrived.size} tiles after ${slowest} ms`);
    assert.ok(decodedAfter <= SWITCH_MS, `decoded after ${decodedAfter} ms`);
    assert.ok(slowest <= SWITCH_MS, `slowest tile ${slowest} ms`);
    // Back to page 2 for the churn.
    await a.page.getByRole('button', { name: 'Next page' }).click();
    await videoOnPage(a, Date.now(), SWITCH_MS + 1000);
  });

  step(`${CHURN} publishers join and ${CHURN} leave: no tile that stays changes page`, async () => {
    const [a, b] = browsers;
    adaPage = (await look(a)).onPage.map((t) => t.id);
    bobPage = (await look(b)).onPage.map((t) => t.id);
    const adaLabel = (await look(a)).label;

    loadgens.push(startLoadgen(/** @type {Server} */ (server), 'c-', CHURN));
    for (const p of browsers) {
      await waitUntil(async () => (await remoteCount(p)) === PUBLISHERS + 1 + CHURN, { timeoutMs: 20_000, message: `${p.label} sees the newcomers` });
    }
    const leaving = loadgens[0];
    leaving.stop();
    for (const p of browsers) {
      await waitUntil(
        async () => {
          const s = await look(p);
          return s.onPage.length + s.offPage.length === PUBLISHERS + 1 && ![...s.onPage, ...s.offPage].some((t) => t.name.startsWith(leaving.namePrefix));
        },
        { timeoutMs: 20_000, message: `${p.label}: the leavers gone` },
      );
    }
    for (const [p, was] of /** @type {[Participant, number[]][]} */ ([
      [a, adaPage],
      [b, bobPage],
    ])) {
      const s = await look(p);
      const everyone = new Set([...s.onPage, ...s.offPage].map((t) => t.id));
      const now = s.onPage.map((t) => t.id);
      const moved = was.filter((id) => everyone.has(id) && !now.includes(id));
      assert.deepEqual(moved, [], `${p.label}: tiles that stayed but left the page (before ${JSON.stringify(was)}, after ${JSON.stringify(now)})`);
    }
    assert.equal((await look(a)).label, adaLabel, 'Ada is still on her page');
    // The gaps filled: every tile on the shown page gets video.
    for (const p of browsers) {
      await videoOnPage(p, Date.now(), 10_000);
    }
    const sizes = await sdpSizes(a);
    console.log(`# after the churn: Ada's latest subscribe offer ${sizes.offer} bytes, answer ${sizes.answer} bytes, ${sizes.sections} sections`);
  });
});
