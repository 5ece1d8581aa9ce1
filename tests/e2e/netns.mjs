// Network namespaces for browser tests: a "remote host" on a veth pair whose link from
// the server can be limited with a token bucket (tc tbf), to test constrained networks
// without leaving the machine. Needs root (the tests run as root here and in CI) and
// iproute2 (`ip`, `tc`; scripts/test.sh installs it when missing). This kernel has no
// netem, so there is bandwidth limiting only, no added delay or loss.
//
//   host (server, loopback browsers)                 namespace (one browser)
//   10.77.<n>.1/24  <hostIf> ===== veth ===== <nsIf>  10.77.<n>.2/24, lo up
//                   egress: tbf  (server -> namespace is the limited direction)
//
// Names carry this process's id (`lmns<pid>-<k>`, the veth ends `…h` and `…n`), so
// parallel runs never collide and what a crashed run left is recognisable: every
// namespace or link with the prefix whose process is gone is deleted before a new one is
// made. Everything made here is removed by `destroy()`, and also when the process exits
// or is ended by SIGINT, SIGTERM or SIGHUP (a SIGKILL leaves it for the next run to sweep).

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

const PREFIX = 'lmns';
const NAME_RE = new RegExp(`^${PREFIX}(\\d+)-([0-9a-z])([hn]?)$`);

/**
 * Runs a command and returns its stdout; throws with its stderr on failure.
 * @param {string} cmd
 * @param {string[]} args
 */
function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = /** @type {any} */ (err);
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(e.stderr ?? e.message).trim()}`);
  }
}

/** Like `run`, but ignores failure (for cleanup of things that may be gone already). */
function tryRun(/** @type {string} */ cmd, /** @type {string[]} */ args) {
  try {
    return run(cmd, args);
  } catch {
    return '';
  }
}

/**
 * Why namespaces cannot be used here, or null when they can.
 * @returns {string | null}
 */
export function netnsUnavailable() {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'network namespaces need root (run the tests as root, as CI does)';
  }
  for (const tool of ['ip', 'tc']) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' });
    } catch {
      return `\`${tool}\` not found: install iproute2 (apt-get install iproute2; scripts/test.sh does)`;
    }
  }
  return null;
}

/** Whether process `pid` still runs (a node process, to not be fooled by reused ids). */
function alive(/** @type {number} */ pid) {
  if (pid === process.pid) {
    return true;
  }
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (/** @type {any} */ (err).code !== 'EPERM') {
      return false;
    }
  }
  try {
    return /node/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

/** Names of the network namespaces that exist. */
function namespaces() {
  return tryRun('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter(Boolean);
}

/** Names of the links in the host's namespace. */
function links() {
  return tryRun('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((x) => x !== undefined);
}

/**
 * Deletes namespaces and links with our prefix whose process is gone (left by a run
 * that was killed). Returns what it deleted.
 */
export function sweepStale() {
  /** @type {string[]} */
  const removed = [];
  for (const ns of namespaces()) {
    const m = NAME_RE.exec(ns);
    if (m && !m[3] && !alive(Number(m[1]))) {
      tryRun('ip', ['netns', 'delete', ns]);
      removed.push(`netns ${ns}`);
    }
  }
  // Deleting a namespace deletes its veth end, and with it the host end; a host end whose
  // namespace was never made (crash in between) is left, so sweep links too.
  for (const link of links()) {
    const m = NAME_RE.exec(link);
    if (m && m[3] && !alive(Number(m[1]))) {
      tryRun('ip', ['link', 'delete', link]);
      removed.push(`link ${link}`);
    }
  }
  return removed;
}

/** Third octets of the 10.77.x.0/24 networks on this host's interfaces. */
function subnetsInUse() {
  const used = new Set();
  for (const m of tryRun('ip', ['-o', '-4', 'addr', 'show']).matchAll(/inet 10\.77\.(\d+)\./g)) {
    used.add(Number(m[1]));
  }
  return used;
}

/** @type {Set<Netns>} */
const live = new Set();
let hooksInstalled = false;
let counter = 0;

function installExitHooks() {
  if (hooksInstalled) {
    return;
  }
  hooksInstalled = true;
  process.on('exit', () => {
    for (const ns of [...live]) {
      ns.destroy();
    }
  });
  for (const signal of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    const onSignal = () => {
      for (const ns of [...live]) {
        ns.destroy();
      }
      // Then die of the signal as we would have without this handler, unless someone
      // else (e.g. the test runner) listens for it too and decides.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

/**
 * @typedef {object} Limit
 * @property {number} rateKbit Token rate in kbit/s.
 * @property {number} [burstBytes] Bucket size.
 * @property {number} [latencyMs] Longest a packet may wait in the queue (sets its length).
 */

/**
 * A namespace with a veth pair to the host. `hostIp` is where the namespace reaches the
 * host (the server listens there); `nsIp` is the namespace's own address.
 */
export class Netns {
  /** @param {string} name @param {number} subnet */
  constructor(name, subnet) {
    this.name = name;
    this.hostIf = `${name}h`;
    this.nsIf = `${name}n`;
    this.hostIp = `10.77.${subnet}.1`;
    this.nsIp = `10.77.${subnet}.2`;
    /** @type {Limit | null} */
    this.limit = null;
    this.destroyed = false;
  }

  /**
   * Limits the host -> namespace direction (egress of the host's veth end: what the
   * server sends to the browser in the namespace) to `rateKbit`, replacing any earlier
   * limit.
   *
   * The defaults model a constrained access link rather than an ideal shaper: a bucket of
   * 6 kB lets about four full-size packets (one video frame's worth at low bitrates)
   * through back to back, as a modem's line rate does, without letting the sender exceed
   * the rate for long (6 kB is ~160 ms of tokens at 300 kbit/s); a queue of 150 ms (about
   * 5.6 kB at 300 kbit/s, on top of the bucket) is what a modest home router buffers.
   * Much more would add seconds of delay before drops tell the sender; much less would
   * drop a keyframe's packets even when the average rate fits.
   * @param {Limit} limit
   */
  setLimit({ rateKbit, burstBytes = 6000, latencyMs = 150 }) {
    const verb = this.limit ? 'change' : 'add';
    run('tc', ['qdisc', verb, 'dev', this.hostIf, 'root', 'tbf', 'rate', `${rateKbit}kbit`, 'burst', String(burstBytes), 'latency', `${latencyMs}ms`]);
    this.limit = { rateKbit, burstBytes, latencyMs };
  }

  /** Removes the limit: the link is as fast as the machine again. */
  clearLimit() {
    if (this.limit) {
      run('tc', ['qdisc', 'del', 'dev', this.hostIf, 'root']);
      this.limit = null;
    }
  }

  /** The limit's queue statistics (`tc -s qdisc show`), for logs. */
  qdiscStats() {
    return tryRun('tc', ['-s', 'qdisc', 'show', 'dev', this.hostIf]).trim();
  }

  /** Bytes sent from the host into the namespace so far (the host end's tx counter). */
  bytesToNamespace() {
    const file = `/sys/class/net/${this.hostIf}/statistics/tx_bytes`;
    return existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0;
  }

  /** Command prefix that runs a program inside the namespace. */
  execPrefix() {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** Deletes the namespace and both veth ends (and so the limit). Safe to call twice. */
  destroy() {
    if (this.destroyed) {
      return;
    }
    this.destroyed = true;
    live.delete(this);
    // Deleting the host end deletes the pair and its qdisc; the namespace itself lives on
    // while processes still run in it, but its name is gone.
    tryRun('ip', ['link', 'delete', this.hostIf]);
    tryRun('ip', ['netns', 'delete', this.name]);
  }
}

/**
 * Creates a namespace joined to the host by a veth pair, after sweeping stale ones.
 * @returns {Netns}
 */
export function createNetns() {
  const why = netnsUnavailable();
  if (why) {
    throw new Error(why);
  }
  sweepStale();
  installExitHooks();
  const used = subnetsInUse();
  let subnet = (process.pid % 250) + 1;
  for (let i = 0; used.has(subnet) && i < 254; i++) {
    subnet = (subnet % 254) + 1;
  }
  if (used.has(subnet)) {
    throw new Error('no free 10.77.x.0/24 network for a test namespace');
  }
  const name = `${PREFIX}${process.pid}-${(counter++ % 36).toString(36)}`;
  const ns = new Netns(name, subnet);
  live.add(ns);
  try {
    run('ip', ['netns', 'add', name]);
    run('ip', ['link', 'add', ns.hostIf, 'type', 'veth', 'peer', 'name', ns.nsIf]);
    // No IPv6 link-local addresses: they would appear a moment after the link comes up
    // (after duplicate address detection), and Chromium on the host abandons page loads
    // with net::ERR_NETWORK_CHANGED whenever the host's addresses change.
    run('ip', ['link', 'set', ns.hostIf, 'addrgenmode', 'none']);
    run('ip', ['link', 'set', ns.nsIf, 'netns', name]);
    run('ip', ['-n', name, 'link', 'set', ns.nsIf, 'addrgenmode', 'none']);
    run('ip', ['addr', 'add', `${ns.hostIp}/24`, 'dev', ns.hostIf]);
    run('ip', ['link', 'set', ns.hostIf, 'up']);
    run('ip', ['-n', name, 'addr', 'add', `${ns.nsIp}/24`, 'dev', ns.nsIf]);
    run('ip', ['-n', name, 'link', 'set', ns.nsIf, 'up']);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    ns.destroy();
    throw err;
  }
  return ns;
}

/**
 * Leftovers of this module visible on the host: namespaces and links with the prefix
 * (for a test that checks its own cleanup).
 * @param {number} [pid] Only those of this process.
 */
export function leftovers(pid) {
  const mine = (/** @type {string} */ n) => {
    const m = NAME_RE.exec(n);
    return m !== null && (pid === undefined || Number(m[1]) === pid);
  };
  return [...namespaces().filter(mine).map((n) => `netns ${n}`), ...links().filter(mine).map((n) => `link ${n}`)];
}
