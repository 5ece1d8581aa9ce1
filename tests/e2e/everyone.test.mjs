// Every person, every screen (issue 18): the page in other languages, for people who use
// a keyboard or a screen reader, and on phones and tablets. One Chromium process serves
// every participant here, each a browser context with its own locale, viewport and touch.
//
// 1. Languages: a browser that prefers German gets the German page (pre-join screen and
//    meeting); the language menu in Settings switches to French at once, and a reload
//    keeps French although the browser still prefers German.
// 2. axe-core finds no moderate, serious or critical violation on the home page, the
//    meeting page with the chat open, the Settings dialog, and the file-sharing controls
//    (an upload row and a shared file's card), in the dark and in the light theme, nor
//    on the stations page, the admin login and the admin dashboard.
// 3. Keyboard only: join (typing name and room, Tab to Join), Ctrl+E switches the camera
//    off, a message typed and sent with Enter reaches the others, Escape closes Settings
//    and the chat, Ctrl+D mutes, and Leave; every focused control shows a focus ring.
//    Screen readers: the live regions said who joined and left, the message, "You are
//    muted", and (at most every 10 s) who speaks.
// 4. Phones and tablets (390×844 touch, 820×1180; upright and sideways): nothing is wider
//    than the screen, the controls are on it, the grid fits, tiles keep 4:3 to 16:9, the
//    own view is small on a phone, the chat opens as a full-screen sheet and closes.
//    Screenshots go to the browser's temporary directory (kept with E2E_VERBOSE=1).
// 5. A page sent to the background (hidden, and frozen as a phone does) and brought
//    back decodes the others' video again.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { AxeBuilder } from '@axe-core/playwright';
import { joinByLink, launchBrowser, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { inboundOf, streamOf, waitForNewFrames, waitForVideoFrom } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */
/** @typedef {import('playwright-core').Page} Page */

const ROOM = `everyone-${process.pid}`;

/**
 * Records every text the page's live regions say (`e2eSaid`), from now on.
 * @param {Participant} p
 */
function recordAnnouncements(p) {
  return p.page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.e2eSaid = [];
    for (const id of ['announcer', 'alerter']) {
      const region = /** @type {HTMLElement} */ (document.getElementById(id));
      new MutationObserver(() => {
        if (region.textContent) {
          w.e2eSaid.push({ text: region.textContent, at: performance.now() });
        }
      }).observe(region, { childList: true, characterData: true, subtree: true });
    }
  });
}

/** @param {Participant} p @returns {Promise<{text: string, at: number}[]>} */
function announcements(p) {
  return p.page.evaluate(() => /** @type {any} */ (window).e2eSaid);
}

/**
 * Switches the page to the light or dark theme, with motion reduced (so no colour is
 * caught halfway through a transition), and waits until it has been drawn so.
 * @param {Page} page
 * @param {'light' | 'dark'} colorScheme
 */
async function theme(page, colorScheme) {
  await page.emulateMedia({ colorScheme, reducedMotion: 'reduce' });
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
}

/**
 * Moderate, serious and critical axe-core violations (WCAG 2.1 A and AA, and best
 * practices) on the page as it is, printed in full either way (minor ones are printed
 * only).
 * @param {Page} page
 * @param {string} what
 */
async function axeViolations(page, what) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  for (const v of results.violations) {
    console.log(`axe ${what}: ${v.impact} ${v.id} (${v.nodes.length}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  const counted = ['moderate', 'serious', 'critical'];
  return results.violations.filter((v) => counted.includes(v.impact ?? '')).map((v) => `${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * Presses Tab until `selector` has the focus (at most `limit` times), checking that every
 * control on the way shows a focus ring.
 * @param {Page} page
 * @param {string} selector
 * @param {number} [limit]
 */
async function tabTo(page, selector, limit = 40) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    const state = await page.evaluate((selector) => {
      const active = document.activeElement;
      if (!(active instanceof HTMLElement) || active === document.body) {
        return { here: false, ring: true, what: 'body' };
      }
      const style = getComputedStyle(active);
      const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || style.boxShadow !== 'none';
      return { here: active.matches(selector), ring, what: `${active.tagName.toLowerCase()}#${active.id}.${active.className}` };
    }, selector);
    assert.ok(state.ring, `${state.what} shows a focus ring when focused by keyboard`);
    if (state.here) {
      return;
    }
  }
  throw new Error(`${selector} not reached with ${limit} Tabs`);
}

/**
 * How wide the page lays out (a phone widens it to fit content that does not fit the
 * screen, then shows it shrunk), and every element that sticks out of the screen or is
 * wider than it.
 * @param {Page} page
 * @param {number} vw the screen's width, CSS px
 */
function overflow(page, vw) {
  return page.evaluate((vw) => {
    /** @type {string[]} */
    const out = [];
    for (const node of document.querySelectorAll('#meeting-view *')) {
      const rect = node.getBoundingClientRect();
      if (rect.width === 0 || rect.height === 0 || !(/** @type {HTMLElement} */ (node).checkVisibility?.() ?? true)) {
        continue;
      }
      // Inside a scroller (the filmstrip, a table) an element may extend beyond the screen.
      let clipped = false;
      for (let up = node.parentElement; up && up.id !== 'meeting-view'; up = up.parentElement) {
        const o = getComputedStyle(up).overflowX;
        if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') {
          clipped = up.getBoundingClientRect().right <= vw + 1;
          if (clipped) break;
        }
      }
      if (rect.width > vw + 1 || (!clipped && (rect.left < -1 || rect.right > vw + 1))) {
        out.push(`${node.tagName.toLowerCase()}#${node.id}.${node.className} ${Math.round(rect.left)}..${Math.round(rect.right)}`);
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, layoutWidth: window.innerWidth, out };
  }, vw);
}

/**
 * The boxes of the grid's tiles, the controls and the chat.
 * @param {Page} page
 */
function layoutBoxes(page) {
  return page.evaluate(() => {
    const box = (/** @type {Element} */ e) => {
      const r = e.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    return {
      vw: window.innerWidth,
      vh: window.innerHeight,
      tiles: [...document.querySelectorAll('#grid .tile')].map((t) => ({ self: t.hasAttribute('data-self'), ...box(t) })),
      grid: box(/** @type {Element} */ (document.getElementById('grid'))),
      controls: [...document.querySelectorAll('.controls button, .meeting-header button')]
        .filter((b) => /** @type {HTMLElement} */ (b).checkVisibility())
        .map((b) => ({ name: b.id, ...box(b) })),
    };
  });
}

describe('every person, every screen', { timeout: 420_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let shared;
  /** @type {Participant[]} */
  const everyone = [];
  /** @type {Record<string, number>} */
  const ids = {};
  /** @type {Record<string, Participant>} */
  const people = {};

  /**
   * A participant in the shared browser.
   * @param {string} name
   * @param {import('playwright-core').BrowserContextOptions} [options]
   */
  async function person(name, options = {}) {
    const p = await shared.participant(name, { locale: 'en-US', colorScheme: 'dark', ...options });
    everyone.push(p);
    return p;
  }

  before(async () => {
    server = await startServer();
    shared = await launchBrowser('everyone');
  });

  after(async () => {
    for (const p of everyone) {
      await p.close();
    }
    await shared?.close();
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => everyone);

  step('a browser that prefers German shows the page in German; the language menu switches to French and remembers it', async () => {
    const D = await person('Dora', { locale: 'de-DE' });
    const page = D.page;
    await page.goto(server.url);
    await page.getByRole('button', { name: 'Beitreten', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
    await page.getByRole('textbox', { name: 'Raum', exact: true }).fill(`${ROOM}-de`);
    await page.getByRole('textbox', { name: 'Name', exact: true }).fill('Dora');
    assert.equal(await page.locator('.tagline').textContent(), 'Videokonferenzen in Ihrem lokalen Netzwerk.');
    await page.getByRole('button', { name: 'Beitreten', exact: true }).click();
    await page.getByRole('button', { name: 'Verlassen', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    assert.match((await page.locator('#camera-toggle').getAttribute('title')) ?? '', /^Kamera ein- oder ausschalten \(Ctrl\+E\)$/);
    assert.equal(await page.locator('#chat-input').getAttribute('placeholder'), 'Nachricht an alle');
    assert.equal(await page.locator('#chat-to').textContent(), 'An: Alle');
    assert.equal(await page.locator('.people-empty').textContent(), 'Noch ist niemand sonst hier.');
    // Dates and times in German notation (Intl), e.g. "06.12.2026, 10:31:07".
    await page.getByRole('textbox', { name: 'Nachricht' }).fill('Guten Tag');
    await page.keyboard.press('Enter');
    const time = page.locator('#chat-log .entry time');
    await time.waitFor({ timeout: 10_000 });
    assert.match((await time.getAttribute('title')) ?? '', /^\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}:\d{2}$/);
    assert.match((await time.textContent()) ?? '', /^\d{2}:\d{2}$/);

    // Settings → Sprache → Français: the page changes at once.
    await page.getByRole('button', { name: 'Einstellungen' }).click();
    const menu = page.getByRole('combobox', { name: 'Sprache' });
    await menu.selectOption('fr');
    await page.getByRole('combobox', { name: 'Langue' }).waitFor({ timeout: 5000 });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'fr');
    assert.equal(await page.locator('#camera-toggle .label').textContent(), 'Caméra');
    assert.equal(await page.locator('#chat-input').getAttribute('placeholder'), 'Message à tout le monde');
    assert.match(await page.locator('#camera-toggle .state').textContent() ?? '', /^(Activé|Coupé)$/);
    await page.keyboard.press('Escape');

    // Remembered: the browser still prefers German, the page stays French.
    await page.getByRole('button', { name: 'Quitter', exact: true }).click();
    await page.reload();
    await page.getByRole('button', { name: 'Rejoindre', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'fr');
    await D.close();
    everyone.splice(everyone.indexOf(D), 1);
  });

  step('axe: no moderate, serious or critical violation on the home page (dark and light)', async () => {
    const A = await person('Ada');
    people.A = A;
    await A.page.goto(server.url);
    await A.page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    const background = () => A.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const dark = await axeViolations(A.page, 'home (dark)');
    const darkBackground = await background();
    await theme(A.page, 'light');
    const light = await axeViolations(A.page, 'home (light)');
    assert.notEqual(await background(), darkBackground, 'the light theme applies');
    // Reduced motion (set with the theme): buttons change colour without a transition.
    const transition = () => A.page.locator('#join-button').evaluate((b) => parseFloat(getComputedStyle(b).transitionDuration));
    assert.ok((await transition()) < 0.001, `no transition with reduced motion: ${await transition()} s`);
    await A.page.emulateMedia({ reducedMotion: 'no-preference' });
    assert.ok((await transition()) >= 0.1, 'a transition otherwise');
    await theme(A.page, 'dark');
    assert.deepEqual([...dark, ...light], []);
  }, { setsUp: true });

  step('axe: no moderate, serious or critical violation in the meeting with the chat open, in Settings, and on the file-sharing controls', async () => {
    const { A } = people;
    const B = await person('Ben');
    people.B = B;
    ids.A = await joinByLink(A, server, ROOM, 'Ada');
    await recordAnnouncements(A);
    ids.B = await joinByLink(B, server, ROOM, 'Ben');
    await waitForVideoFrom(A, [ids.B]);
    assert.equal(await A.page.locator('#chat-toggle').getAttribute('aria-expanded'), 'true', 'the chat is open on a wide screen');

    // A message, and a file Ben shares: Ada sees its card, Ben the upload row.
    await B.page.getByRole('textbox', { name: 'Message' }).fill('hello from Ben');
    await B.page.keyboard.press('Enter');
    await A.page.locator('#chat-log .entry-text', { hasText: 'hello from Ben' }).waitFor({ timeout: 10_000 });
    await B.page.locator('#chat-file').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.alloc(50_000, 'x') });
    await A.page.getByRole('button', { name: 'Download notes.txt' }).waitFor({ timeout: 15_000 });
    await B.page.locator('.upload').waitFor({ timeout: 5000 });
    await A.page.getByRole('button', { name: 'Download notes.txt' }).click();
    await A.page.locator('.file-card .transfer-status', { hasText: 'verified' }).waitFor({ timeout: 15_000 });
    assert.match(await A.page.locator('.file-card .file-size').textContent() ?? '', /^48\.8 KiB$/, 'sizes go through Intl');

    const found = [
      ...(await axeViolations(A.page, 'meeting with chat and a shared file (dark)')),
      ...(await axeViolations(B.page, 'meeting with an upload (dark)')),
    ];
    for (const p of [A, B]) {
      await theme(p.page, 'light');
      found.push(...(await axeViolations(p.page, `meeting of ${p.label} (light)`)));
      await theme(p.page, 'dark');
    }

    await A.page.getByRole('button', { name: 'Settings' }).click();
    await A.page.getByRole('dialog', { name: 'Settings' }).waitFor({ timeout: 5000 });
    found.push(...(await axeViolations(A.page, 'Settings dialog')));
    await A.page.keyboard.press('Escape');
    await A.page.getByRole('dialog').waitFor({ state: 'hidden', timeout: 5000 });
    assert.deepEqual(found, []);
  }, { setsUp: true });

  step('axe: no moderate, serious or critical violation on the stations page, the admin login and the admin dashboard', async () => {
    const { A } = people;
    const page = await A.context.newPage();
    try {
      await page.goto(`${server.url}stations`);
      await page.locator('#st-status').waitFor({ state: 'attached', timeout: 10_000 });
      const found = [...(await axeViolations(page, 'stations'))];
      await page.goto(`${server.url}admin`);
      await page.getByLabel('Admin password').waitFor({ timeout: 10_000 });
      found.push(...(await axeViolations(page, 'admin login')));
      await page.getByLabel('Admin password').fill('not the password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor({ timeout: 5000 });
      found.push(...(await axeViolations(page, 'admin login, wrong password')));
      await page.getByLabel('Admin password').fill(readFileSync(path.join(server.dataDir, 'admin-password'), 'utf8').trim());
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator(`section.room[data-room="${ROOM}"] tbody tr`).first().waitFor({ timeout: 10_000 });
      await page.locator('#persistent-rooms p, #persistent-rooms ul').first().waitFor({ timeout: 10_000 });
      found.push(...(await axeViolations(page, 'admin dashboard')));
      assert.deepEqual(found, []);
    } finally {
      await page.close();
    }
  });

  step('keyboard only: join, Ctrl+E camera off, a message with Enter, Escape closes Settings and the chat, Ctrl+D mutes, Leave', async () => {
    const { A, B } = people;
    const K = await person('Kay');
    people.K = K;
    const page = K.page;
    await page.goto(server.url);
    await page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    // The focus starts in the first empty field: the name.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'join-name');
    await page.keyboard.type('Kay');
    await tabTo(page, '#join-room');
    await page.keyboard.type(ROOM);
    await tabTo(page, '#join-button');
    await recordAnnouncements(K);
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    ids.K = await page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you);
    const camera = page.locator('#camera-toggle');
    await waitUntil(async () => (await camera.getAttribute('aria-pressed')) === 'true', { message: 'the camera to be on after joining' });
    assert.equal(await camera.getAttribute('title'), 'Camera on or off (Ctrl+E)');
    assert.equal(await page.locator('#mic-toggle').getAttribute('title'), 'Microphone on or off (Ctrl+D)');
    assert.equal(await camera.getAttribute('aria-keyshortcuts'), 'Control+E');

    await page.keyboard.press('Control+e');
    await waitUntil(async () => (await camera.getAttribute('aria-pressed')) === 'false', { message: 'Ctrl+E to switch the camera off' });
    await waitUntil(async () => (await A.page.locator(`#grid [data-participant-id="${ids.K}"]`).getAttribute('class'))?.includes('camera-off'), {
      message: "Ada to see Kay's camera off",
    });

    // Settings opens with Enter and closes with Escape, the focus back on its button.
    await tabTo(page, '#settings-open');
    await page.keyboard.press('Enter');
    await page.getByRole('dialog', { name: 'Settings' }).waitFor({ timeout: 5000 });
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden', timeout: 5000 });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'settings-open');

    await tabTo(page, '#chat-input');
    await page.keyboard.type('typed, not clicked');
    await page.keyboard.press('Enter');
    for (const p of [A, B]) {
      await p.page.locator('#chat-log .entry', { hasText: 'typed, not clicked' }).locator('.entry-from', { hasText: 'Kay' }).waitFor({ timeout: 10_000 });
    }
    await page.keyboard.press('Escape');
    assert.equal(await page.locator('#chat-toggle').getAttribute('aria-expanded'), 'false', 'Escape closed the chat');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'chat-toggle');

    await page.keyboard.press('Control+d');
    await waitUntil(async () => (await page.locator('#mic-toggle').getAttribute('aria-pressed')) === 'false', { message: 'Ctrl+D to mute' });
    await waitUntil(async () => (await announcements(K)).some((a) => a.text === 'You are muted'), { message: 'K to hear "You are muted"' });

    await tabTo(page, '#leave');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Join', exact: true }).waitFor({ state: 'visible', timeout: 10_000 });
    const said = (await announcements(A)).map((a) => a.text);
    await waitUntil(async () => (await announcements(A)).some((a) => a.text === 'Kay left'), { message: 'Ada to hear that Kay left' });
    assert.ok(said.includes('Ben joined') && said.includes('Kay joined'), `Ada heard the joins: ${JSON.stringify(said)}`);
  });

  step('screen readers hear who speaks, at most every 10 seconds', async () => {
    const { A } = people;
    // Chromium's fake microphone beeps too briefly for the server's speech detection, so
    // the server's word is played into Ada's signaling socket as it would arrive.
    /** @param {number} id */
    const speaker = (id) =>
      A.page.evaluate((id) => {
        const data = JSON.stringify({ type: 'active_speaker', id });
        /** @type {WebSocket} */ (/** @type {any} */ (window).lanmeet.conn.socket).dispatchEvent(new MessageEvent('message', { data }));
      }, id);
    const said = async () => (await announcements(A)).filter((a) => / is speaking$/.test(a.text)).map((a) => a.text);
    const before = (await said()).length;
    await speaker(ids.B);
    await waitUntil(async () => (await said()).length === before + 1, { message: 'Ada to hear who speaks' });
    assert.equal((await said()).at(-1), 'Ben is speaking');
    assert.ok(await A.page.locator(`#grid [data-participant-id="${ids.B}"]`).evaluate((t) => t.classList.contains('speaking')), "Ben's tile is outlined");
    // Ada herself, then Ben again, within seconds: nothing more is said.
    await speaker(ids.A);
    await speaker(ids.B);
    await A.page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 1000)));
    assert.equal((await said()).length, before + 1, `no second announcement within 10 s: ${JSON.stringify(await said())}`);
  });

  // The phone held upright comes last: it stays for the background step.
  const screens = [
    { label: 'tablet upright', viewport: { width: 820, height: 1180 }, phone: false },
    { label: 'tablet sideways', viewport: { width: 1180, height: 820 }, phone: false },
    { label: 'phone sideways', viewport: { width: 844, height: 390 }, phone: true },
    // A 1280×720 window at 200 % zoom: the page gets half the CSS pixels.
    { label: 'desktop at 200% zoom', viewport: { width: 640, height: 360 }, phone: true, desktop: true },
    { label: 'phone upright', viewport: { width: 390, height: 844 }, phone: true },
  ];
  for (const screen of screens) {
    step(`${screen.label} (${screen.viewport.width}×${screen.viewport.height}): everything on screen, tiles in shape, the chat a sheet`, async () => {
      const name = screen.label.replace(/\W+/g, '-');
      const P = await person(name, screen.desktop ? { viewport: screen.viewport, deviceScaleFactor: 2 } : { viewport: screen.viewport, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
      people[name] = P;
      const keep = screen.label === 'phone upright';
      try {
        await onScreen(P, screen);
      } finally {
        if (!keep) {
          await P.close();
          everyone.splice(everyone.indexOf(P), 1);
        }
      }
    });
  }

  /**
   * Joins on a phone or tablet and checks the layout, then the chat sheet.
   * @param {Participant} P
   * @param {{label: string, viewport: {width: number, height: number}, phone: boolean, desktop?: boolean}} screen
   */
  async function onScreen(P, screen) {
    const name = P.label;
    ids[name] = await joinByLink(P, server, ROOM, name);
    await waitForVideoFrom(P, [ids.A, ids.B]);
    const page = P.page;
    /** A tap on a touch screen, a click elsewhere. @param {import('playwright-core').Locator} target */
    const tap = (target) => (screen.desktop ? target.click() : target.tap());
    await page.screenshot({ path: path.join(shared.dir, `${name}-grid.png`) });

    const vw = screen.viewport.width;
    const o = await overflow(page, vw);
    assert.deepEqual(o.out, [], 'no element wider than the screen or off it');
    assert.ok(o.scrollWidth <= vw && o.layoutWidth === vw, `no sideways scrolling: the page is ${o.scrollWidth} px wide, laid out at ${o.layoutWidth}, on ${vw}`);
    const boxes = await layoutBoxes(page);
    for (const c of boxes.controls) {
      assert.ok(c.left >= 0 && c.right <= boxes.vw + 0.5 && c.top >= 0 && c.bottom <= boxes.vh + 0.5, `${c.name} is on the screen: ${JSON.stringify(c)}`);
    }
    const others = boxes.tiles.filter((t) => !t.self);
    const self = /** @type {typeof boxes.tiles[number]} */ (boxes.tiles.find((t) => t.self));
    assert.equal(others.length, 2);
    for (const t of boxes.tiles) {
      assert.ok(t.top >= boxes.grid.top - 0.5 && t.bottom <= boxes.grid.bottom + 0.5 && t.left >= -0.5 && t.right <= boxes.vw + 0.5, `the tile fits the grid: ${JSON.stringify(t)} in ${JSON.stringify(boxes.grid)}`);
    }
    for (const t of others) {
      const ratio = t.width / t.height;
      assert.ok(ratio >= 4 / 3 - 0.02 && ratio <= 16 / 9 + 0.02, `a tile keeps 4:3 to 16:9: ${t.width}×${t.height}`);
    }
    const largest = Math.max(...others.map((t) => t.width * t.height));
    if (screen.phone) {
      assert.ok(self.width * self.height <= largest / 3, `the own view is small on a phone: ${self.width}×${self.height}`);
    } else {
      assert.ok(self.width * self.height <= largest + 1, `the own view is no larger than the others: ${self.width}×${self.height}`);
    }

    // The chat: closed at first on a phone, a full-screen sheet when opened, closed again.
    const toggle = page.locator('#chat-toggle');
    if ((await toggle.getAttribute('aria-expanded')) === 'true') {
      await tap(toggle);
    }
    await tap(toggle);
    await page.getByRole('textbox', { name: 'Message' }).waitFor({ state: 'visible', timeout: 5000 });
    const inChat = await overflow(page, vw);
    assert.deepEqual(inChat.out, [], 'nothing of the chat sticks out');
    const chat = await page.locator('#chat').boundingBox();
    assert.ok(chat, 'the chat shows');
    if (screen.phone) {
      assert.ok(chat.x <= 0.5 && chat.y <= 0.5 && chat.width >= boxes.vw - 0.5 && chat.height >= boxes.vh - 0.5, `the chat covers the screen: ${JSON.stringify(chat)}`);
    }
    assert.ok(chat.x >= -0.5 && chat.x + chat.width <= boxes.vw + 0.5, `the chat is on the screen: ${JSON.stringify(chat)}`);
    await page.screenshot({ path: path.join(shared.dir, `${name}-chat.png`) });
    const close = screen.phone ? page.getByRole('button', { name: 'Close chat' }) : toggle;
    await tap(close);
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.locator('#chat').isVisible(), false, 'the chat closed');
    console.log(`${screen.label}: tiles ${JSON.stringify(boxes.tiles.map((t) => `${Math.round(t.width)}x${Math.round(t.height)}${t.self ? ' (own)' : ''}`))}; screenshots in ${shared.dir}`);

  }

  step('a phone page sent to the background and brought back decodes the others again', async () => {
    const P = people['phone-upright'];
    const page = P.page;
    const cdp = await P.context.newCDPSession(page);
    /** @param {'hidden' | 'visible'} state */
    const setVisibility = (state) =>
      page.evaluate((state) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    await setVisibility('hidden');
    // Hidden, the page asks for no video: the server stops sending it.
    const before = await inboundOf(P);
    await waitUntil(
      async () => {
        const now = await inboundOf(P);
        return [ids.A, ids.B].every((id) => (streamOf(now, id, 'video')?.framesDecoded ?? 0) === (streamOf(before, id, 'video')?.framesDecoded ?? 0));
      },
      { timeoutMs: 10_000, intervalMs: 1000, message: 'video to stop while hidden' },
    ).catch(() => console.log('video kept arriving while hidden (not required)'));
    // A phone freezes a page in the background: timers and tasks stop.
    await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    const frozenAt = Date.now();
    // Frozen, the page runs nothing: not even this times out, it waits.
    const ran = page.evaluate(() => performance.now());
    await waitUntil(() => Date.now() - frozenAt >= 3000, { timeoutMs: 5000, message: 'three seconds in the background' });
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    await ran;
    await setVisibility('visible');
    for (const id of [ids.A, ids.B]) {
      await waitForNewFrames(P, (s) => s.participant === id && s.kind === 'video' && s.source !== 'screen', {
        frames: 30,
        timeoutMs: 20_000,
        message: `the phone to decode participant ${id} again after the background`,
      });
    }
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you), ids['phone-upright'], 'still the same participant: no rejoin needed');
  });
});
