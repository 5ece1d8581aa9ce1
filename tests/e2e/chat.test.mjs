// Chat and file sharing between headless Chromium participants of one room: room
// messages reach everyone and stay text, private messages (by `/msg` and by the picker)
// reach exactly their recipient, a 20 MiB file arrives byte-identical and verified at
// both others with visible progress, a later joiner gets the room history without the
// private messages, and an over-long message is refused visibly.
//
// "Never received" is checked against a later message that must arrive after the
// private one would have: the server delivers each participant's messages in order.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { joinByLink, launchParticipant, scenarioSteps, startServer } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const ROOM = `chat-${process.pid}`;
const FILE_BYTES = 20 * 1024 * 1024;
/** Markup in names and text must show literally. */
const ROOM_TEXT = '<b>x</b> hello room & all';
/** Bytes per second the sender's upload is held to, so its progress is observable. */
const UPLOAD_THROTTLE = 32 * 1024 * 1024;
/** The shared file's SHA-256, once made. */
const FILE_SHA256 = { value: '' };
const FILE_NAME = 'e2e <img src=x onerror=alert(1)> & data.bin';

/** @param {Participant} p */
function chatLog(p) {
  return p.page.getByRole('log', { name: 'Chat messages' });
}

/**
 * The chat entries whose message text is exactly `text`.
 * @param {Participant} p
 * @param {string} text
 */
function entriesWithText(p, text) {
  return chatLog(p).getByRole('listitem').filter({
    has: p.page.locator('.entry-text').getByText(text, { exact: true }),
  });
}

/**
 * Waits until `p` shows exactly one entry with `text` and returns what it shows.
 * @param {Participant} p
 * @param {string} text
 */
async function waitForEntry(p, text, timeout = 10_000) {
  const entry = entriesWithText(p, text);
  await entry.waitFor({ state: 'visible', timeout }).catch((err) => {
    throw new Error(`${p.label} never showed "${text}": ${String(err)}`);
  });
  assert.equal(await entry.count(), 1, `${p.label} shows "${text}" once`);
  return {
    from: await entry.locator('.entry-from').textContent(),
    time: await entry.locator('time').textContent(),
    privateLabel: (await entry.locator('.entry-private').count()) ? await entry.locator('.entry-private').textContent() : null,
  };
}

/**
 * Types into the message box and sends with Enter, or with the Send button.
 * @param {Participant} p
 * @param {string} text
 * @param {'enter' | 'button'} [how]
 */
async function send(p, text, how = 'enter') {
  const box = p.page.getByRole('textbox', { name: 'Message', exact: true });
  await box.fill(text);
  if (how === 'enter') {
    await box.press('Enter');
  } else {
    await p.page.getByRole('button', { name: 'Send', exact: true }).click();
  }
}

/**
 * Records every value a progress bar takes (and whether it was visible then), so a fast
 * transfer's intermediate states are not missed between polls.
 */
function recordProgress() {
  const w = /** @type {any} */ (window);
  w.e2eProgress = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const bar = /** @type {HTMLProgressElement} */ (r.target);
      if (bar instanceof HTMLProgressElement) {
        const text = bar.closest('.transfer')?.querySelector('.transfer-text')?.textContent ?? '';
        w.e2eProgress.push({
          label: bar.getAttribute('aria-label'),
          value: bar.value,
          visible: bar.checkVisibility(),
          text,
          at: performance.now(),
        });
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['value'] });
}

/**
 * Progress values seen with `label` strictly between 0 and 100, while visible.
 * @param {Participant} p
 * @param {string} label
 * @returns {Promise<{value: number, text: string, at: number}[]>}
 */
function midProgress(p, label) {
  return p.page.evaluate(
    (l) => /** @type {any} */ (window).e2eProgress.filter(
      (/** @type {any} */ e) => e.label === l && e.visible && e.value > 0 && e.value < 100,
    ),
    label,
  );
}

/** @param {Buffer | Uint8Array} bytes */
function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A TCP relay to `target` that, once armed with `cutAfter(n)`, destroys the first
 * connection that carries more than `n` bytes towards the browser: a network failure in
 * the middle of a download.
 * @param {URL} target
 */
async function startCuttingRelay(target) {
  let limit = Infinity;
  /** Bumped by `cutAfter`, so every connection counts its bytes from then on. */
  let epoch = 0;
  let cuts = 0;
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    let sent = 0;
    let counted = epoch;
    upstream.on('data', (chunk) => {
      if (counted !== epoch) {
        counted = epoch;
        sent = 0;
      }
      sent += chunk.length;
      if (sent > limit) {
        limit = Infinity;
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.pipe(upstream);
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const port = /** @type {import('node:net').AddressInfo} */ (relay.address()).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    /** Counts bytes afresh on every open connection and cuts the first past `n`. @param {number} n */
    cutAfter(n) {
      limit = n;
      epoch++;
    },
    cuts: () => cuts,
    close() {
      for (const s of sockets) {
        s.destroy();
      }
      relay.close();
    },
  };
}

describe('chat and file sharing', { timeout: 300_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Record<string, Participant>} */
  const people = {};
  const tempDir = mkdtempSync(path.join(tmpdir(), 'lanmeet-e2e-files-'));

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
    rmSync(tempDir, { recursive: true, force: true });
  });

  const step = scenarioSteps(() => server, () => Object.values(people));

  /** @param {string} label */
  async function join(label) {
    const p = await launchParticipant(label);
    people[label] = p;
    await joinByLink(p, server, ROOM, label);
    await p.page.getByRole('textbox', { name: 'Message', exact: true }).waitFor({ state: 'visible', timeout: 5000 });
    return p;
  }

  step('three participants join; the incremental SHA-256 matches crypto.subtle', async () => {
    for (const label of ['A', 'B', 'C']) {
      await join(label);
    }
    // Everyone can pick the two others as private recipients.
    for (const [label, others] of /** @type {[string, string[]][]} */ ([['A', ['B', 'C']], ['B', ['A', 'C']], ['C', ['A', 'B']]])) {
      for (const other of others) {
        await people[label].page.getByRole('checkbox', { name: other, exact: true }).waitFor({ timeout: 5000 });
      }
    }
    // The client's download check (web/files.js) hashes with the vendored @noble/hashes.
    const mismatches = await people.A.page.evaluate(async () => {
      const modules = ['/vendor/noble-hashes/sha2.js', '/vendor/noble-hashes/utils.js'];
      const [{ sha256 }, { bytesToHex }] = await Promise.all(modules.map((m) => import(m)));
      const hex = (/** @type {ArrayBuffer} */ b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
      const bad = [];
      for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 65_536 + 7, 3_000_001]) {
        const data = new Uint8Array(size);
        for (let i = 0; i < size; i += 65_536) {
          crypto.getRandomValues(data.subarray(i, Math.min(size, i + 65_536)));
        }
        const hash = sha256.create();
        // Uneven pieces cross block boundaries in every way.
        for (let i = 0, step = 1; i < size; i += step, step = (step * 7 + 3) % 4099 + 1) {
          hash.update(data.subarray(i, Math.min(size, i + step)));
        }
        const want = hex(await crypto.subtle.digest('SHA-256', data));
        const got = bytesToHex(hash.digest());
        if (got !== want) {
          bad.push({ size, got, want });
        }
      }
      return bad;
    });
    assert.deepEqual(mismatches, [], 'the incremental SHA-256 of web/vendor/noble-hashes agrees with crypto.subtle');
  }, { setsUp: true });

  step('a room message shows for everyone, as text, with sender and time', async () => {
    const { A, B, C } = people;
    await send(A, ROOM_TEXT, 'button');
    for (const p of [A, B, C]) {
      const shown = await waitForEntry(p, ROOM_TEXT);
      assert.equal(shown.from, 'A', `${p.label} names the sender`);
      assert.match(shown.time ?? '', /\d{1,2}[:.]\d{2}/, `${p.label} shows a local time`);
      assert.equal(shown.privateLabel, null, `${p.label}: a room message is not marked private`);
      assert.equal(await chatLog(p).locator('b').count(), 0, `${p.label}: no <b> element was created`);
    }
    assert.equal(await A.page.getByRole('textbox', { name: 'Message', exact: true }).inputValue(), '', 'the box is emptied');
  });

  step('/msg reaches exactly the named participant', async () => {
    const { A, B, C } = people;
    // An unknown name is an inline error and nothing is sent.
    await send(A, '/msg Zed where are you');
    await A.page.getByRole('alert').filter({ hasText: 'No one called \u201cZed\u201d is in the room.' }).waitFor({ timeout: 5000 });

    await send(A, '/msg b hello-b');
    const atB = await waitForEntry(B, 'hello-b');
    assert.deepEqual(atB.from, 'A');
    assert.equal(atB.privateLabel, 'Private to you', 'B sees it marked private');
    const atA = await waitForEntry(A, 'hello-b');
    assert.equal(atA.privateLabel, 'Private to B', 'A sees whom it went to');
    assert.equal(await A.page.getByRole('alert').filter({ hasText: 'Zed' }).count(), 0, 'the error went away');
    assert.equal(await entriesWithText(A, 'where are you').count(), 0, 'the refused /msg was not sent');

    // B answers the room after receiving the private message; C gets that answer only
    // after anything sent to it before.
    await send(B, 'marker-after-msg');
    for (const p of [A, B, C]) {
      await waitForEntry(p, 'marker-after-msg');
    }
    assert.equal(await entriesWithText(C, 'hello-b').count(), 0, 'C never sees the private message to B');
  });

  step('the picker sends privately to the chosen participant only', async () => {
    const { A, B, C } = people;
    await A.page.getByRole('checkbox', { name: 'C', exact: true }).check();
    await A.page.getByText('To: C (private)', { exact: true }).waitFor({ timeout: 2000 });
    await send(A, 'hello-c', 'button');
    const atC = await waitForEntry(C, 'hello-c');
    assert.equal(atC.from, 'A');
    assert.equal(atC.privateLabel, 'Private to you');
    assert.equal((await waitForEntry(A, 'hello-c')).privateLabel, 'Private to C');

    await send(B, 'marker-after-picker');
    for (const p of [A, B, C]) {
      await waitForEntry(p, 'marker-after-picker');
    }
    assert.equal(await entriesWithText(B, 'hello-c').count(), 0, 'B never sees the private message to C');

    // Back to everyone.
    await A.page.getByRole('button', { name: 'Everyone', exact: true }).click();
    await A.page.getByText('To: Everyone', { exact: true }).waitFor({ timeout: 2000 });
    assert.equal(await A.page.getByRole('checkbox', { name: 'C', exact: true }).isChecked(), false);
  });

  step('a 20 MiB file shared with the room downloads byte-identical and verified at both others', async () => {
    const { A, B, C } = people;
    const bytes = randomBytes(FILE_BYTES);
    const want = sha256(bytes);
    FILE_SHA256.value = want;
    const filePath = path.join(tempDir, FILE_NAME);
    writeFileSync(filePath, bytes);
    for (const p of [A, B, C]) {
      await p.page.evaluate(recordProgress);
    }

    // On loopback the upload can finish between two progress events. To see the
    // sender's bar move for sure, Chromium's own network throttling (DevTools protocol)
    // holds A's upload to UPLOAD_THROTTLE bytes per second; downloads are not throttled.
    const cdp = await A.context.newCDPSession(A.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: UPLOAD_THROTTLE,
    });
    const uploadStarted = Date.now();
    await A.page.getByLabel('Share file', { exact: true }).setInputFiles(filePath);
    // The sender sees the upload's progress row, then its confirmation.
    await A.page.getByRole('status').filter({ hasText: `Shared ${FILE_NAME}.` }).waitFor({ timeout: 60_000 });
    const uploadMs = Date.now() - uploadStarted;
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.detach();
    const downloadButton = (/** @type {Participant} */ p) =>
      p.page.getByRole('button', { name: `Download ${FILE_NAME}`, exact: true });
    for (const p of [A, B, C]) {
      await downloadButton(p).waitFor({ timeout: 10_000 });
      const entry = chatLog(p).getByRole('listitem').filter({ has: downloadButton(p) });
      assert.equal(await entry.locator('.file-name').textContent(), FILE_NAME, `${p.label} shows the name as given`);
      assert.equal(await entry.locator('.file-size').textContent(), '20 MiB', `${p.label} shows the size`);
      assert.equal(await entry.locator('.entry-from').textContent(), 'A', `${p.label} shows the sender`);
      assert.equal(await chatLog(p).locator('img').count(), 0, `${p.label}: the file name made no <img> element`);
    }
    const uploadSeen = await midProgress(A, 'Upload progress');
    assert.ok(uploadSeen.length > 0, 'the sender saw upload progress between 0 and 100%');
    assert.match(uploadSeen[0].text, /^\d+% \u00b7 [\d.]+ (B|KiB|MiB) of 20 MiB/, 'upload progress text');
    console.log(`upload (throttled to ${UPLOAD_THROTTLE / 1048576} MiB/s): ${uploadMs} ms, ${uploadSeen.length} progress updates, e.g. "${uploadSeen[Math.floor(uploadSeen.length / 2)].text}"`);

    await Promise.all([B, C].map(async (p) => {
      const started = Date.now();
      const [download] = await Promise.all([
        p.page.waitForEvent('download', { timeout: 60_000 }),
        downloadButton(p).click(),
      ]);
      const entry = chatLog(p).getByRole('listitem').filter({ has: downloadButton(p) });
      await entry.getByRole('status').filter({ hasText: 'verified' }).waitFor({ timeout: 10_000 });
      const ms = Date.now() - started;
      const saved = await download.path();
      assert.ok(saved, `${p.label}: the browser saved the download`);
      const got = readFileSync(saved);
      assert.equal(got.length, FILE_BYTES, `${p.label}: saved size`);
      assert.equal(sha256(got), want, `${p.label}: the saved file is byte-identical`);

      const mid = await midProgress(p, 'Download progress');
      assert.ok(mid.length > 0, `${p.label}: download progress was visible between 0 and 100%`);
      assert.match(mid[0].text, /^\d+% \u00b7 [\d.]+ (B|KiB|MiB) of 20 MiB/, `${p.label}: progress text`);
      console.log(`METRIC download_ms=${ms} download_mib_per_s=${((FILE_BYTES / 1048576) / (ms / 1000)).toFixed(0)} participant=${p.label} progress_updates=${mid.length} e.g. "${mid[Math.floor(mid.length / 2)].text}"`);
    }));
  });

  step('a running download can be cancelled', async () => {
    const { B } = people;
    const button = B.page.getByRole('button', { name: `Download ${FILE_NAME}`, exact: true });
    const entry = chatLog(B).getByRole('listitem').filter({ has: button });
    // Slow enough to press Cancel in the middle.
    const cdp = await B.context.newCDPSession(B.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: 8 * 1024 * 1024,
      uploadThroughput: -1,
    });
    try {
      await button.click();
      await B.page.waitForFunction(
        (name) => [...document.querySelectorAll('#chat-log .entry')].some((e) => {
          const bar = e.querySelector('progress');
          return e.querySelector('.file-name')?.textContent === name && bar instanceof HTMLProgressElement && bar.checkVisibility() && bar.value > 5;
        }),
        FILE_NAME,
        { timeout: 10_000, polling: 20 },
      );
      await entry.getByRole('button', { name: `Cancel download of ${FILE_NAME}`, exact: true }).click();
      await entry.getByRole('status').filter({ hasText: 'Download cancelled.' }).waitFor({ timeout: 5000 });
      assert.equal(await button.isEnabled(), true, 'Download is offered again');
      assert.equal(await entry.getByRole('button', { name: /^Cancel/ }).count(), 0, 'no Cancel once stopped');
    } finally {
      await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 }).catch(() => {});
      await cdp.detach().catch(() => {});
    }
  });

  step('a download cut off by the network resumes with a Range request and is verified', async () => {
    // E reaches the server through a TCP relay that cuts the download's connection once.
    const relay = await startCuttingRelay(new URL(server.url));
    try {
      const E = await launchParticipant('E');
      people.E = E;
      await joinByLink(E, { ...server, url: relay.url }, ROOM, 'E');
      const button = E.page.getByRole('button', { name: `Download ${FILE_NAME}`, exact: true });
      await button.waitFor({ timeout: 10_000 });
      /** @type {string[]} */
      const ranges = [];
      E.page.on('request', (r) => {
        if (r.url().includes('/files/')) {
          ranges.push(r.headers().range ?? '');
        }
      });
      relay.cutAfter(4 * 1024 * 1024);
      const [download] = await Promise.all([E.page.waitForEvent('download', { timeout: 60_000 }), button.click()]);
      const entry = chatLog(E).getByRole('listitem').filter({ has: button });
      await entry.getByRole('status').filter({ hasText: 'verified' }).waitFor({ timeout: 10_000 });
      assert.equal(relay.cuts(), 1, 'the relay cut one connection');
      assert.equal(sha256(readFileSync(await download.path())), FILE_SHA256.value, 'the resumed download is byte-identical');
      console.log(`download requests (Range headers): ${JSON.stringify(ranges)}`);
      assert.equal(ranges[0], '', 'the first request asks for the whole file');
      assert.match(ranges[1] ?? '', /^bytes=[1-9]\d*-$/, 'the next one resumes where it broke off');
      await E.close();
      delete people.E;
    } finally {
      relay.close();
    }
  });

  step('a file dropped on the chat goes privately to the picked participant only', async () => {
    const { A, B, C } = people;
    const name = 'dropped notes.txt';
    const content = `private notes ${process.pid}\n`;
    await B.page.getByRole('checkbox', { name: 'C', exact: true }).check();
    await B.page.evaluate(({ name, content }) => {
      const data = new DataTransfer();
      data.items.add(new File([content], name, { type: 'text/plain' }));
      const chat = /** @type {HTMLElement} */ (document.getElementById('chat-log'));
      chat.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: data }));
      chat.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: data }));
    }, { name, content });
    const button = (/** @type {Participant} */ p) => p.page.getByRole('button', { name: `Download ${name}`, exact: true });
    for (const [p, label] of /** @type {[Participant, string][]} */ ([[B, 'Private to C'], [C, 'Private to you']])) {
      await button(p).waitFor({ timeout: 10_000 });
      const entry = chatLog(p).getByRole('listitem').filter({ has: button(p) });
      assert.equal(await entry.locator('.entry-private').textContent(), label, `${p.label} sees the file marked private`);
    }
    const [download] = await Promise.all([C.page.waitForEvent('download', { timeout: 10_000 }), button(C).click()]);
    await chatLog(C).getByRole('listitem').filter({ has: button(C) }).getByRole('status').filter({ hasText: 'verified' }).waitFor({ timeout: 5000 });
    assert.equal(readFileSync(await download.path(), 'utf8'), content);

    await B.page.getByRole('button', { name: 'Everyone', exact: true }).click();
    await send(B, 'marker-after-drop');
    await waitForEntry(A, 'marker-after-drop');
    assert.equal(await button(A).count(), 0, 'A never sees the private file');
  });

  step('a later joiner gets the room history but no private messages', async () => {
    const D = await join('D');
    const shown = await waitForEntry(D, ROOM_TEXT);
    assert.equal(shown.from, 'A');
    for (const marker of ['marker-after-msg', 'marker-after-picker', 'marker-after-drop']) {
      await waitForEntry(D, marker);
    }
    await D.page.getByRole('button', { name: `Download ${FILE_NAME}`, exact: true }).waitFor({ timeout: 5000 });
    for (const secret of ['hello-b', 'hello-c']) {
      assert.equal(await entriesWithText(D, secret).count(), 0, `D does not get "${secret}"`);
    }
    const order = await chatLog(D).getByRole('listitem').evaluateAll((items) =>
      items.map((i) => i.querySelector('.entry-text')?.textContent ?? i.querySelector('.file-name')?.textContent),
    );
    assert.deepEqual(
      order,
      [ROOM_TEXT, 'marker-after-msg', 'marker-after-picker', FILE_NAME, 'marker-after-drop'],
      'the room history in order, oldest first, without private messages or files',
    );
  });

  step('a message over 4 KiB shows the server\u2019s error and reaches no one', async () => {
    const { A, B, C, D } = people;
    const long = `too-long ${'x'.repeat(4200)}`;
    await send(A, long);
    const alert = A.page.getByRole('alert').filter({ hasText: 'too long' });
    await alert.waitFor({ timeout: 5000 });
    console.log(`too-long alert: ${await alert.textContent()}`);
    assert.match((await alert.textContent()) ?? '', /4096 bytes/, 'the error states the limit');
    assert.equal(
      await A.page.getByRole('textbox', { name: 'Message', exact: true }).inputValue(),
      long,
      'the refused message is back in the box for editing',
    );

    await send(A, 'marker-after-limit');
    for (const p of [A, B, C, D]) {
      await waitForEntry(p, 'marker-after-limit');
      assert.equal(await entriesWithText(p, long).count(), 0, `${p.label} never shows the refused message`);
    }
    assert.equal(await alert.count(), 0, 'the error clears with the next message');
  });
});
