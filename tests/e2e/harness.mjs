// Test harness for lanmeet's browser tests: starts the server binary on loopback and
// launches headless Debian Chromium participants with a fake camera and microphone
// (Playwright), and headless Debian Firefox ESR ones (puppeteer-core over WebDriver
// BiDi: Playwright's Firefox needs its own patched build).
//
// Environment:
//   LANMEET_BIN     server binary (default target/release/lanmeet)
//   LANMEET_LOADGEN_BIN  load generator, for the large-room test (default lanmeet-loadgen
//                   next to the server binary)
//   CHROMIUM_PATH   browser (default /usr/bin/chromium)
//   FIREFOX_PATH    browser (default /usr/bin/firefox-esr)
//   RUST_LOG        passed to the server (default info)
//   E2E_VERBOSE=1   print server and browser logs even when tests pass

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const SERVER_BIN = path.resolve(REPO, process.env.LANMEET_BIN ?? 'target/release/lanmeet');
export const LOADGEN_BIN = path.resolve(
  REPO,
  process.env.LANMEET_LOADGEN_BIN ?? path.join(path.dirname(SERVER_BIN), 'lanmeet-loadgen'),
);
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
const VERBOSE = process.env.E2E_VERBOSE === '1';

/** Chromium flags from DESIGN.md: headless, fake devices, loopback ICE candidates. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
  '--autoplay-policy=no-user-gesture-required',
];

/** Keeps the last `limit` lines of a log. */
class LogBuffer {
  /** @param {string} label @param {number} [limit] */
  constructor(label, limit = 400) {
    this.label = label;
    this.limit = limit;
    /** @type {string[]} */
    this.lines = [];
    this.dropped = 0;
    /** A file whose tail belongs to this log (Chromium's stderr). @type {string | null} */
    this.stderrFile = null;
  }

  /** @param {string} line */
  push(line) {
    this.lines.push(line);
    if (this.lines.length > this.limit) {
      this.lines.shift();
      this.dropped++;
    }
    if (VERBOSE) {
      process.stderr.write(`[${this.label}] ${line}\n`);
    }
  }

  dump() {
    const head = this.dropped ? `(${this.dropped} earlier lines dropped)\n` : '';
    let text = `----- ${this.label} -----\n${head}${this.lines.join('\n')}\n`;
    if (this.stderrFile) {
      let stderr = '';
      try {
        stderr = readFileSync(this.stderrFile, 'utf8')
          .split('\n')
          // Complaints about the missing system D-Bus and sound card, and a shell warning
          // from Debian's launcher script, are noise here.
          .filter((line) => !/:ERROR:dbus\/|^\/usr\/bin\/chromium: \d+: \[|^ALSA lib |alsa_util\.cc/.test(line))
          .slice(-200)
          .join('\n');
      } catch {
        stderr = '(none)';
      }
      text += `----- ${this.label}: chromium stderr (${this.stderrFile}) -----\n${stderr}\n`;
    }
    return text;
  }
}

/** Fails loudly, before anything starts, if the binary or the browser is missing. */
export function checkPrerequisites() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}. Install Debian's chromium (apt-get install chromium) ` +
        'or set CHROMIUM_PATH. The browser tests do not download browsers.',
    );
  }
  if (!existsSync(SERVER_BIN)) {
    throw new Error(
      `lanmeet binary not found at ${SERVER_BIN}. Build it (cargo build --release) or set LANMEET_BIN.`,
    );
  }
}

/** @type {string | null} */
let wrapperPath = null;

/** A script that runs Chromium with its stderr appended to $LANMEET_E2E_STDERR. */
function chromiumWrapper() {
  if (!wrapperPath) {
    const dir = freshDir('lanmeet-e2e-bin-');
    wrapperPath = path.join(dir, 'chromium');
    writeFileSync(wrapperPath, '#!/bin/sh\nexec "$LANMEET_E2E_CHROMIUM" "$@" 2>>"$LANMEET_E2E_STDERR"\n');
    chmodSync(wrapperPath, 0o755);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return wrapperPath;
}

/** @type {string | null} */
let netnsWrapperPath = null;

/**
 * Like `chromiumWrapper`, but runs Chromium inside the network namespace named by
 * $LANMEET_E2E_NETNS (`ip netns exec`, as root; see netns.mjs).
 */
function chromiumNetnsWrapper() {
  if (!netnsWrapperPath) {
    const dir = freshDir('lanmeet-e2e-bin-');
    netnsWrapperPath = path.join(dir, 'chromium-netns');
    writeFileSync(
      netnsWrapperPath,
      '#!/bin/sh\nexec ip netns exec "$LANMEET_E2E_NETNS" "$LANMEET_E2E_CHROMIUM" "$@" 2>>"$LANMEET_E2E_STDERR"\n',
    );
    chmodSync(netnsWrapperPath, 0o755);
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return netnsWrapperPath;
}

/** @param {string} prefix */
function freshDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * A running lanmeet server.
 * @typedef {object} Server
 * @property {string} url Base URL ending in `/`, e.g. http://127.0.0.1:41234/
 * @property {number} port The HTTP port.
 * @property {string} dataDir The data directory (the admin password is in `admin-password`).
 * @property {import('node:child_process').ChildProcess} process
 * @property {LogBuffer} log
 * @property {() => Promise<void>} stop
 */

/**
 * Starts `lanmeet serve` on an ephemeral port with a fresh data directory and resolves
 * once it prints its ready line.
 *
 * `listen` (default 127.0.0.1:0) and `publicIps` (the media candidates, default
 * 127.0.0.1) let browsers in a network namespace reach it: e.g. listen 0.0.0.0:0 and
 * public IPs 127.0.0.1 and the namespace's host-side address. With 0.0.0.0 the ready
 * line, and so `url`, names localhost (a secure context for loopback browsers).
 * `dataDir` starts it on a data directory of the caller's, which `stop` keeps (e.g. to
 * start it again on the same port and data, as a restart). `configToml` is written to a
 * config file of its own (the data directory takes only lanmeet's files) and passed as
 * `--config` (e.g. `[[rooms]]`). `args` adds flags, e.g. `--station NAME=FILE`.
 * @param {{timeoutMs?: number, listen?: string, publicIps?: string[], dataDir?: string, configToml?: string, args?: string[]}} [options]
 * @returns {Promise<Server>}
 */
export async function startServer({ timeoutMs = 20_000, listen = '127.0.0.1:0', publicIps = ['127.0.0.1'], dataDir: given, configToml, args: extra = [] } = {}) {
  checkPrerequisites();
  const dataDir = given ?? freshDir('lanmeet-e2e-data-');
  const configArgs = [];
  /** @type {string | null} */
  let configDir = null;
  if (configToml !== undefined) {
    configDir = freshDir('lanmeet-e2e-config-');
    const file = path.join(configDir, 'lanmeet.toml');
    writeFileSync(file, configToml);
    configArgs.push('--config', file);
  }
  const args = [
    'serve',
    '--http',
    '--listen', listen,
    '--udp-port', '0',
    ...publicIps.flatMap((ip) => ['--public-ip', ip]),
    '--data-dir', dataDir,
    // Every browser and the load generator come from one address (loopback): the
    // per-address limits are tested in crates/server/tests/hardening_bounds.rs.
    '--max-connections-per-ip', '4000',
    '--join-burst', '1000',
    '--join-rate', '1000',
    ...configArgs,
    ...extra,
  ];
  const log = new LogBuffer('server', 2000);
  log.push(`$ ${SERVER_BIN} ${args.join(' ')}`);
  const child = spawn(SERVER_BIN, args, {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');

  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`lanmeet printed no "lanmeet ready at" line within ${timeoutMs} ms\n${log.dump()}`));
    }, timeoutMs);
    const onLine = (/** @type {string} */ line) => {
      log.push(line);
      const match = /lanmeet ready at (http\S+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].endsWith('/') ? match[1] : `${match[1]}/`);
      }
    };
    readline.createInterface({ input: /** @type {any} */ (child.stdout) }).on('line', onLine);
    readline.createInterface({ input: /** @type {any} */ (child.stderr) }).on('line', onLine);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${SERVER_BIN}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`lanmeet exited before it was ready (code ${code}, signal ${signal})\n${log.dump()}`));
    });
  });
  child.on('exit', (code, signal) => log.push(`<server exited: code ${code}, signal ${signal}>`));

  return {
    url,
    port: Number(new URL(url).port),
    dataDir,
    process: child,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exited.then(() => true), delay(5000).then(() => false)]);
        if (!killed) {
          log.push('<server ignored SIGTERM for 5 s; sending SIGKILL>');
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (!given) {
        rmSync(dataDir, { recursive: true, force: true });
      }
      if (configDir !== null) {
        rmSync(configDir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * A browser of one participant.
 * @typedef {object} Participant
 * @property {string} label
 * @property {import('playwright-core').BrowserContext} context
 * @property {import('playwright-core').Page} page
 * @property {LogBuffer} log Browser process output and page console.
 * @property {string[]} cspViolations Content-Security-Policy violations any page of this
 *   browser reported and no step has failed on yet (see `scenarioSteps`).
 * @property {() => number} pid The Chromium browser process id.
 * @property {(signal: NodeJS.Signals) => void} signalAll Signals the whole process tree.
 * @property {() => Promise<void>} close
 */

/**
 * Launches a fresh Chromium (own profile directory) for one participant.
 *
 * Options: `netns` runs the browser inside that network namespace (see netns.mjs; it
 * reaches the server at the namespace's host-side address, not localhost); `args` adds
 * Chromium flags, e.g. `--unsafely-treat-insecure-origin-as-secure=http://10.77.1.1:8080`
 * so that a page on plain HTTP off localhost may still use the camera.
 * @param {string} label
 * @param {{netns?: string, args?: string[]}} [options]
 * @returns {Promise<Participant>}
 */
export async function launchParticipant(label, { netns, args = [] } = {}) {
  checkPrerequisites();
  const userDataDir = freshDir(`lanmeet-e2e-${label}-`);
  const log = new LogBuffer(`browser ${label}`);
  // Chromium's stderr goes to a file (through a wrapper script) rather than the test
  // report; `log.dump()` includes it when a test fails.
  const stderrFile = `${userDataDir}.stderr.log`;
  log.stderrFile = stderrFile;
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: netns ? chromiumNetnsWrapper() : chromiumWrapper(),
    env: { ...process.env, LANMEET_E2E_CHROMIUM: CHROMIUM, LANMEET_E2E_STDERR: stderrFile, LANMEET_E2E_NETNS: netns ?? '' },
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    permissions: ['camera', 'microphone'],
    viewport: { width: 1280, height: 720 },
  });
  const { page, cspViolations } = await watchContext(context, log);

  // Chromium names its profile lock after the browser process: "<host>-<pid>".
  const pid = () => {
    const target = readlinkSync(path.join(userDataDir, 'SingletonLock'));
    const found = /-(\d+)$/.exec(target);
    if (!found) {
      throw new Error(`unexpected SingletonLock target ${target}`);
    }
    return Number(found[1]);
  };

  return participantHandle({ label, context, page, log, cspViolations, pid }, async () => {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
    if (!VERBOSE) {
      rmSync(stderrFile, { force: true });
    }
  });
}

/**
 * The participant both launchers return: `signalAll` signals the browser's whole
 * process tree (found from `pid`), and `close` runs `shutdown` once however often it is
 * called.
 * @param {Omit<Participant, 'signalAll' | 'close'>} parts
 * @param {() => Promise<void>} shutdown
 * @returns {Participant}
 */
function participantHandle(parts, shutdown) {
  let closed = false;
  return {
    ...parts,
    signalAll(signal) {
      const root = parts.pid();
      for (const p of [root, ...descendants(root)]) {
        try {
          process.kill(p, signal);
        } catch {
          // Already gone.
        }
      }
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      await shutdown();
    },
  };
}

/**
 * A script run before every page's own that reports what the Content-Security-Policy
 * blocked as a console error (Firefox reports it as an event only; Chromium also logs
 * it itself).
 */
const CSP_REPORTER = `document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at ' + e.sourceFile + ':' + e.lineNumber);
});`;

/**
 * Copies a page's console messages and uncaught errors into `log` (a Playwright or a
 * puppeteer page: both name these events alike).
 * @param {{on(event: string, listener: (arg: any) => void): unknown}} page
 * @param {LogBuffer} log
 */
function logPage(page, log) {
  page.on('console', (msg) => log.push(`console.${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (err) => log.push(`pageerror: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
}

/**
 * Collects what a browser context's pages report: Content-Security-Policy violations
 * (every page of it, the meeting and the admin dashboard; Chromium also logs each as a
 * console error), and the first page's console, errors and crashes into `log`.
 * @param {import('playwright-core').BrowserContext} context
 * @param {LogBuffer} log
 */
async function watchContext(context, log) {
  /** @type {string[]} */
  const cspViolations = [];
  await context.addInitScript(CSP_REPORTER);
  context.on('console', (msg) => {
    const text = msg.text();
    if (/CSP violation|Content Security Policy/.test(text)) {
      cspViolations.push(`${msg.page()?.url() ?? '?'}: ${text}`);
    }
  });
  const page = context.pages()[0] ?? (await context.newPage());
  logPage(page, log);
  page.on('crash', () => log.push('page crashed'));
  return { page, cspViolations };
}

/**
 * One Chromium process shared by several participants, each a fresh browser context
 * (own storage and permissions) with its own viewport, locale, touch and colour scheme:
 * for scenarios about the page itself (layouts, languages, accessibility) that need no
 * process of their own. `participant(label, options)` takes Playwright's context
 * options; the participant's `pid` and `signalAll` are not available.
 * @param {string} label
 */
export async function launchBrowser(label) {
  checkPrerequisites();
  const dir = freshDir(`lanmeet-e2e-${label}-`);
  const stderrFile = path.join(dir, 'stderr.log');
  const browser = await chromium.launch({
    executablePath: chromiumWrapper(),
    env: { ...process.env, LANMEET_E2E_CHROMIUM: CHROMIUM, LANMEET_E2E_STDERR: stderrFile },
    headless: true,
    args: CHROMIUM_ARGS,
  });
  return {
    browser,
    /** A directory for the test's files (screenshots), removed with the browser unless E2E_VERBOSE=1. */
    dir,
    /**
     * @param {string} name
     * @param {import('playwright-core').BrowserContextOptions} [options]
     * @returns {Promise<Participant>}
     */
    async participant(name, options = {}) {
      const log = new LogBuffer(`browser ${label}/${name}`);
      log.stderrFile = stderrFile;
      const context = await browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 1280, height: 720 }, ...options });
      const { page, cspViolations } = await watchContext(context, log);
      const shared = () => {
        throw new Error(`${name} shares its browser process`);
      };
      return { label: name, context, page, log, cspViolations, pid: shared, signalAll: shared, close: () => context.close().catch(() => {}) };
    },
    async close() {
      await browser.close().catch(() => {});
      if (!VERBOSE) {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Firefox preferences that make a headless Firefox behave like the fake-device Chromium:
 * a fake camera and microphone without a prompt, ICE candidates on loopback (which
 * Firefox gathers only when camera and microphone are allowed by default), and autoplay.
 */
export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
  'media.autoplay.default': 0,
};

/**
 * One element found by role and accessible name (or by label), with the few actions the
 * browser tests take, in Playwright's names.
 * @typedef {object} FirefoxLocator
 * @property {(options?: {timeout?: number}) => Promise<void>} click
 * @property {(text: string) => Promise<void>} fill Replaces the value, as a user typing it.
 * @property {(key: string) => Promise<void>} press
 * @property {(options?: {state?: 'visible' | 'attached' | 'hidden' | 'detached', timeout?: number}) => Promise<void>} waitFor
 * @property {(name: string) => Promise<string | null>} getAttribute
 * @property {(file: string) => Promise<void>} setInputFiles
 */

/**
 * A Firefox page behind the part of Playwright's Page API that scenarios written for
 * both browsers use: `evaluate(fn, arg)`, `waitForFunction(fn, arg, {timeout, polling})`,
 * `goto`, `url`, `getByRole(role, {name})`, `getByLabel(name)`, `keyboard.press`.
 * Anything else throws, naming what is missing.
 * @param {import('puppeteer-core').Page} page
 * @returns {import('playwright-core').Page}
 */
function firefoxPage(page) {
  /** @param {string} selector @returns {FirefoxLocator} */
  const locate = (selector) => {
    const handle = async (/** @type {number} */ timeout) => {
      const h = await page.waitForSelector(selector, { timeout, visible: true });
      if (!h) {
        throw new Error(`no element ${selector}`);
      }
      return h;
    };
    return {
      async click({ timeout = 10_000 } = {}) {
        await (await handle(timeout)).click();
      },
      async fill(text) {
        const h = await handle(10_000);
        await h.evaluate((el) => {
          /** @type {HTMLInputElement} */ (el).value = '';
        });
        await h.type(text);
      },
      async press(key) {
        await (await handle(10_000)).press(/** @type {import('puppeteer-core').KeyInput} */ (key));
      },
      async waitFor({ state = 'visible', timeout = 30_000 } = {}) {
        if (state === 'hidden' || state === 'detached') {
          await page.waitForSelector(selector, { timeout, hidden: true });
        } else {
          await page.waitForSelector(selector, { timeout, visible: state === 'visible' });
        }
      },
      async getAttribute(name) {
        return (await handle(10_000)).evaluate((el, n) => el.getAttribute(n), name);
      },
      async setInputFiles(file) {
        const found = await page.waitForSelector(selector, { timeout: 10_000 });
        // The name may belong to the input's <label>: the input is its control.
        const input = await found?.evaluateHandle((el) => (el instanceof HTMLLabelElement ? el.control : el));
        await /** @type {import('puppeteer-core').ElementHandle<HTMLInputElement>} */ (input).uploadFile(file);
      },
    };
  };
  /** ARIA selector values are quoted; a name with a quote would need escaping. @param {string} name */
  const quoted = (name) => {
    if (/["\\]/.test(name)) {
      throw new Error(`accessible name ${name} has a quote or backslash`);
    }
    return `"${name}"`;
  };
  const adapter = {
    /** @param {Function} fn @param {unknown} [arg] */
    evaluate: (fn, arg) => page.evaluate(/** @type {any} */ (fn), arg),
    /**
     * @param {Function} fn @param {unknown} arg
     * @param {{timeout?: number, polling?: number | 'raf'}} [options]
     */
    waitForFunction: async (fn, arg, { timeout = 30_000, polling = 100 } = {}) =>
      page.waitForFunction(/** @type {any} */ (fn), { timeout, polling: polling === 'raf' ? 'raf' : polling }, arg),
    /** @param {string} url */
    goto: async (url) => page.goto(url),
    url: () => page.url(),
    /** @param {string} role @param {{name: string, exact?: boolean}} options */
    getByRole: (role, { name }) => locate(`::-p-aria([name=${quoted(name)}][role="${role}"])`),
    /** @param {string} name */
    getByLabel: (name) => locate(`::-p-aria(${quoted(name)})`),
    keyboard: {
      /** @param {string} key */
      press: (key) => page.keyboard.press(/** @type {import('puppeteer-core').KeyInput} */ (key)),
    },
  };
  return /** @type {any} */ (
    new Proxy(adapter, {
      get(target, prop) {
        if (prop in target) {
          return /** @type {any} */ (target)[prop];
        }
        if (prop === 'then') {
          return undefined;
        }
        throw new Error(`the Firefox page adapter (harness.mjs) has no ${String(prop)}: add it there`);
      },
    })
  );
}

/** @type {Promise<string> | null} */
let display = null;

/**
 * An X display for Firefox's screen capture: a virtual one (Xvfb, 1280x720) started once
 * per test process and stopped when it exits. Headless Firefox has no fake screen
 * source, but captures the X display named by DISPLAY.
 * @returns {Promise<string>}
 */
function virtualDisplay() {
  display ??= new Promise((resolve, reject) => {
    // -displayfd: Xvfb picks a free display number and writes it to file descriptor 3.
    const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x720x24', '-nolisten', 'tcp'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    const log = new LogBuffer('xvfb');
    readline.createInterface({ input: /** @type {any} */ (xvfb.stderr) }).on('line', (line) => log.push(line));
    xvfb.once('error', (err) => reject(new Error(`cannot start Xvfb (apt-get install xvfb): ${err.message}`)));
    xvfb.once('exit', (code) => reject(new Error(`Xvfb exited (code ${code})\n${log.dump()}`)));
    readline.createInterface({ input: /** @type {any} */ (xvfb.stdio[3]) }).once('line', (n) => resolve(`:${n.trim()}`));
    xvfb.unref();
    /** @type {any} */ (xvfb.stdio[3]).unref?.();
    /** @type {any} */ (xvfb.stderr).unref?.();
    process.on('exit', () => xvfb.kill());
  });
  return display;
}

/**
 * Launches a fresh headless Firefox ESR (own temporary profile) for one participant,
 * driven by puppeteer-core over WebDriver BiDi. Its `page` offers the part of
 * Playwright's Page API listed at `firefoxPage`, so helpers that take a participant
 * (joinByLink, pagestats.mjs) take either browser; `context.addInitScript` runs a script
 * before every page's own, as in Chromium. Pages must come from the server:
 * `about:blank` is not a secure context.
 * @param {string} label
 * @returns {Promise<Participant>}
 */
export async function launchFirefoxParticipant(label) {
  checkPrerequisites();
  if (!existsSync(FIREFOX)) {
    throw new Error(
      `Firefox not found at ${FIREFOX}. Install Debian's firefox-esr (apt-get install firefox-esr) ` +
        'or set FIREFOX_PATH. The browser tests do not download browsers.',
    );
  }
  const log = new LogBuffer(`firefox ${label}`);
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    // Headless Firefox has no fake screen: it captures the X display it is given.
    env: { ...process.env, DISPLAY: await virtualDisplay() },
    defaultViewport: { width: 1280, height: 720 },
    extraPrefsFirefox: FIREFOX_PREFS,
  });
  const child = browser.process();
  if (child?.stderr) {
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      // The missing sound card, GLib and the backup service's complaints are noise here.
      if (line.trim() && !/^ALSA lib |GLib-GObject-CRITICAL|BackupService|^\[(Parent|Child) \d+, .*\] WARNING/.test(line)) {
        log.push(`stderr: ${line}`);
      }
    });
  }
  const ppage = (await browser.pages())[0] ?? (await browser.newPage());
  /** @type {string[]} */
  const cspViolations = [];
  await ppage.evaluateOnNewDocument(CSP_REPORTER);
  logPage(ppage, log);
  ppage.on('console', (msg) => {
    if (/CSP violation/.test(msg.text())) {
      cspViolations.push(`${ppage.url()}: ${msg.text()}`);
    }
  });
  const pid = () => {
    if (!child?.pid) {
      throw new Error('puppeteer started no Firefox process of its own');
    }
    return child.pid;
  };
  const context = {
    /** @param {{content: string} | Function} script */
    async addInitScript(script) {
      const content = typeof script === 'function' ? `(${script})()` : script.content;
      await ppage.evaluateOnNewDocument(content);
    },
    close: () => browser.close(),
  };
  return participantHandle(
    { label, context: /** @type {any} */ (context), page: firefoxPage(ppage), log, cspViolations, pid },
    () => browser.close().catch(() => {}),
  );
}

/**
 * All descendants of a process, read from /proc.
 * @param {number} root
 * @returns {number[]}
 */
export function descendants(root) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue;
    }
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command name: state, ppid, ...
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(after[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  /** @type {number[]} */
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = /** @type {number} */ (stack.pop());
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/**
 * Polls `check` until it returns a truthy value, or fails with `message` and the last
 * value seen. For conditions outside a page (inside a page use page.waitForFunction).
 * @template T
 * @param {() => Promise<T> | T} check
 * @param {{timeoutMs?: number, intervalMs?: number, message?: string}} [options]
 * @returns {Promise<Exclude<T, null | undefined | false | 0 | ''>>}
 */
export async function waitUntil(check, { timeoutMs = 10_000, intervalMs = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) {
        return /** @type {Exclude<T, null | undefined | false | 0 | ''>} */ (value);
      }
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message} (last: ${detail})`);
    }
    await delay(intervalMs);
  }
}

/**
 * Logs to print when a test fails.
 * @param {Server | undefined} server
 * @param {Participant[]} participants
 */
export function diagnostics(server, participants) {
  return [server?.log.dump() ?? '', ...participants.map((p) => p.log.dump())].join('\n');
}

/**
 * Presses Join on the pre-join screen (waits until it is shown and enabled).
 * @param {import('playwright-core').Page} page
 */
export async function pressJoin(page) {
  await page.getByRole('button', { name: 'Join', exact: true }).click({ timeout: 10_000 });
}

/**
 * Opens the `/r/<room>?name=<name>` link, which shows the pre-join screen filled in,
 * presses Join, and resolves with the participant id the server gave once joined.
 * @param {Participant} p
 * @param {Server} server
 * @param {string} room
 * @param {string} name
 * @returns {Promise<number>}
 */
export async function joinByLink(p, server, room, name) {
  await p.page.goto(`${server.url}r/${room}?name=${encodeURIComponent(name)}`);
  await pressJoin(p.page);
  await p.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
  return p.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you);
}

/**
 * Makes `step(name, body, {setsUp})`: a test that prints the server's and every
 * browser's logs when it fails. Steps share one scenario and run in order; once a step
 * marked `setsUp` fails, the later ones are skipped rather than failing for that reason.
 * A step also fails when any browser reported a Content-Security-Policy violation
 * during it: the server's policy must fit everything the client does.
 * @param {() => Server | undefined} server
 * @param {() => Participant[]} participants
 */
export function scenarioSteps(server, participants) {
  let setupFailed = '';
  /**
   * @param {string} name
   * @param {() => Promise<void>} body
   * @param {{setsUp?: boolean}} [options]
   */
  return function step(name, body, { setsUp = false } = {}) {
    it(name, async (t) => {
      if (setupFailed) {
        t.skip(`needs the setup, which failed (${setupFailed})`);
        return;
      }
      try {
        await body();
        const violations = participants().flatMap((p) => p.cspViolations.splice(0));
        if (violations.length > 0) {
          throw new Error(`Content-Security-Policy violations:\n${violations.join('\n')}`);
        }
      } catch (err) {
        if (setsUp) {
          setupFailed = name;
        }
        console.error(`\n===== step "${name}" failed; logs follow =====\n${diagnostics(server(), participants())}`);
        throw err;
      }
    });
  };
}

/**
 * Records the names in every `participant_joined` the page receives from now on
 * (`e2eJoined`), read from its signaling socket.
 * @param {Participant} p
 */
export function recordJoins(p) {
  return p.page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.e2eJoined = [];
    /** @type {WebSocket} */ (w.lanmeet.conn.socket).addEventListener('message', (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === 'participant_joined') {
        w.e2eJoined.push(msg.participant.name);
      }
    });
  });
}

/** @param {Participant} p @returns {Promise<string[]>} */
export function joinsSeen(p) {
  return p.page.evaluate(() => /** @type {any} */ (window).e2eJoined);
}
