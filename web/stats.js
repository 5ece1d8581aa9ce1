// @ts-check
/**
 * What this participant's connections carry, from `RTCPeerConnection.getStats()`: data
 * rates by kind, the round-trip time to the server, one row per stream, and a
 * connection-quality grade per remote participant. UI-free: the Statistics panel
 * (statspanel.js) and the tiles' quality marks render what `StatsSampler` reports.
 *
 * One `getStats()` per peer connection per second, shared by every reader. Rates come
 * from the difference of two snapshots of the same connection; when the connection is
 * replaced (a reconnect, or a subscribe offer with `new_connection`) the next sample has
 * no rates, only the one after it.
 *
 * The pure functions (`snapshotOf`, `rates`, `streamFigures`, `gradeOf`,
 * `participantGrades`) are unit-tested in tests/web/stats.test.mjs.
 */

/** @typedef {import('./subscribe.js').TrackInfo} TrackInfo */
/** @typedef {import('./publish.js').TrackSource} TrackSource */
/** @typedef {import('./protocol.js').PauseReason} PauseReason */

/** How often a sample is taken. */
export const SAMPLE_INTERVAL_MS = 1000;
/** How many samples the plots keep: the last minute. */
export const HISTORY_LENGTH = 60;

/** What a stream carries, for the rate split. @typedef {'camera' | 'screen' | 'audio'} MediaKind */
/** @type {readonly MediaKind[]} */
export const MEDIA_KINDS = ['camera', 'screen', 'audio'];

/**
 * One RTP stream in a snapshot (an `inbound-rtp` or `outbound-rtp` report).
 * @typedef {object} StreamStats
 * @property {string} id The report's id: the same stream in the next snapshot.
 * @property {'inbound' | 'outbound'} direction
 * @property {'audio' | 'video'} kind
 * @property {string | null} mid The media section, where the browser reports it.
 * @property {string | null} rid The simulcast layer of an outbound camera encoding.
 * @property {number} timestamp The report's clock, ms.
 * @property {number} bytes `bytesReceived` or `bytesSent` (payload).
 * @property {number} packets `packetsReceived` or `packetsSent`.
 * @property {number} packetsLost Inbound only (0 outbound).
 * @property {number} frames `framesDecoded` or `framesEncoded` (0 for audio).
 * @property {number | null} width
 * @property {number | null} height
 * @property {number | null} jitterMs Inbound only.
 * @property {number | null} freezeCount Inbound video, where the browser has it.
 * @property {string | null} limitation `qualityLimitationReason`, outbound video.
 */

/**
 * One `getStats()` of one peer connection, reduced to what the statistics use.
 * @typedef {object} Snapshot
 * @property {StreamStats[]} streams
 * @property {number | null} rttMs Round-trip time of the selected candidate pair.
 */

/**
 * Reduces a stats report to a snapshot.
 * @param {Iterable<Record<string, any>>} report `RTCStatsReport.values()`, or plain objects
 * @param {(trackIdentifier: string) => string | null} [midOfTrack] finds an inbound
 *   stream's media section where the browser's report has no `mid`
 * @returns {Snapshot}
 */
export function snapshotOf(report, midOfTrack = () => null) {
  /** @type {StreamStats[]} */
  const streams = [];
  /** @type {Map<string, Record<string, any>>} */
  const pairs = new Map();
  /** @type {string | null} */
  let selectedPair = null;
  /** @type {number | null} */
  let remoteRtt = null;
  for (const r of report) {
    if (r.type === 'candidate-pair') {
      pairs.set(r.id, r);
    } else if (r.type === 'transport' && r.selectedCandidatePairId) {
      selectedPair = r.selectedCandidatePairId;
    } else if (r.type === 'remote-inbound-rtp' && typeof r.roundTripTime === 'number') {
      remoteRtt = Math.max(remoteRtt ?? 0, r.roundTripTime * 1000);
    } else if (r.type === 'inbound-rtp' || r.type === 'outbound-rtp') {
      const inbound = r.type === 'inbound-rtp';
      streams.push({
        id: String(r.id),
        direction: inbound ? 'inbound' : 'outbound',
        kind: r.kind === 'audio' ? 'audio' : 'video',
        mid: r.mid ?? (inbound && r.trackIdentifier ? midOfTrack(r.trackIdentifier) : null),
        rid: r.rid ?? null,
        timestamp: Number(r.timestamp) || 0,
        bytes: (inbound ? r.bytesReceived : r.bytesSent) ?? 0,
        packets: (inbound ? r.packetsReceived : r.packetsSent) ?? 0,
        packetsLost: inbound ? (r.packetsLost ?? 0) : 0,
        frames: (inbound ? r.framesDecoded : r.framesEncoded) ?? 0,
        width: r.frameWidth ?? null,
        height: r.frameHeight ?? null,
        jitterMs: typeof r.jitter === 'number' ? r.jitter * 1000 : null,
        freezeCount: r.freezeCount ?? null,
        limitation: r.qualityLimitationReason ?? null,
      });
    }
  }
  const pair =
    (selectedPair ? pairs.get(selectedPair) : undefined) ?? [...pairs.values()].find((p) => p.nominated && p.state === 'succeeded');
  const pairRtt = typeof pair?.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  return { streams, rttMs: pairRtt ?? remoteRtt };
}

/**
 * Bytes per second of each kind and in total, one direction.
 * @typedef {{camera: number, screen: number, audio: number, total: number}} KindRates
 */

/**
 * What one stream did between two snapshots.
 * @typedef {object} StreamFigures
 * @property {StreamStats} stream The later reading.
 * @property {number} bytesPerSecond
 * @property {number} fps Frames decoded (inbound) or encoded (outbound) per second.
 * @property {number | null} lossPercent Inbound: lost of expected packets in the interval.
 */

/**
 * Per-stream figures between two snapshots of the same connection. A stream new in
 * `curr` has none yet; counters that went backwards (a restarted stream) count as 0.
 * @param {Snapshot | null} prev
 * @param {Snapshot} curr
 * @returns {StreamFigures[]}
 */
export function streamFigures(prev, curr) {
  const before = new Map((prev?.streams ?? []).map((s) => [s.id, s]));
  /** @type {StreamFigures[]} */
  const out = [];
  for (const s of curr.streams) {
    const p = before.get(s.id);
    const seconds = p ? (s.timestamp - p.timestamp) / 1000 : 0;
    if (!p || !(seconds > 0)) {
      continue;
    }
    const lost = Math.max(0, s.packetsLost - p.packetsLost);
    const received = Math.max(0, s.packets - p.packets);
    out.push({
      stream: s,
      bytesPerSecond: Math.max(0, s.bytes - p.bytes) / seconds,
      fps: Math.max(0, s.frames - p.frames) / seconds,
      lossPercent: s.direction === 'inbound' && lost + received > 0 ? (100 * lost) / (lost + received) : s.direction === 'inbound' ? 0 : null,
    });
  }
  return out;
}

/**
 * Sums per-stream rates by kind.
 * @param {StreamFigures[]} figures one direction's streams
 * @param {(stream: StreamStats) => MediaKind} kindOf
 * @returns {KindRates}
 */
export function rates(figures, kindOf) {
  const out = { camera: 0, screen: 0, audio: 0, total: 0 };
  for (const f of figures) {
    out[kindOf(f.stream)] += f.bytesPerSecond;
    out.total += f.bytesPerSecond;
  }
  return out;
}

/** @typedef {'good' | 'fair' | 'poor'} Grade */

/**
 * Thresholds of the connection-quality grade. A link is `good` while all of: loss under
 * 2 % (audio stays clean, video repairs by retransmission unnoticed), round trip under
 * 150 ms (conversation feels immediate; a LAN is far below), and the camera at 15 fps
 * or more (smooth; the fake camera and typical webcams send 20-30). `fair` up to 8 %
 * loss, 400 ms and down to 8 fps (usable, visibly degraded); anything worse is `poor`.
 * A figure that is not known (no camera, a paused video) does not count.
 */
export const GRADE_LIMITS = {
  good: { lossPercent: 2, rttMs: 150, fps: 15 },
  fair: { lossPercent: 8, rttMs: 400, fps: 8 },
};

/**
 * The connection-quality grade from loss, round trip and frame rate.
 * @param {{lossPercent: number | null, rttMs: number | null, fps: number | null}} figures
 * @returns {Grade}
 */
export function gradeOf({ lossPercent, rttMs, fps }) {
  /** @param {{lossPercent: number, rttMs: number, fps: number}} limit */
  const within = (limit) =>
    (lossPercent === null || lossPercent < limit.lossPercent) &&
    (rttMs === null || rttMs < limit.rttMs) &&
    (fps === null || fps >= limit.fps);
  return within(GRADE_LIMITS.good) ? 'good' : within(GRADE_LIMITS.fair) ? 'fair' : 'poor';
}

/**
 * One received stream as the table shows it.
 * @typedef {object} InboundRow
 * @property {number} participant
 * @property {TrackSource} source
 * @property {string} mid
 * @property {number | null} width
 * @property {number | null} height
 * @property {number} fps
 * @property {number} bitsPerSecond
 * @property {number} lossPercent
 * @property {number | null} jitterMs
 * @property {number | null} freezeCount
 * @property {number | null} layer The simulcast layer forwarded (`video_state`), 0 lowest.
 * @property {PauseReason | null} paused
 */

/**
 * One simulcast layer of the own camera.
 * @typedef {object} OutboundRow
 * @property {string} rid
 * @property {number | null} width
 * @property {number | null} height
 * @property {number} fps
 * @property {number} bitsPerSecond
 * @property {string | null} limitation
 */

/**
 * The grade of each remote participant: the loss over their received streams (camera
 * and microphone), the round trip of the subscribe connection, and their camera's
 * frame rate when it is on and not paused by the server.
 * @param {InboundRow[]} rows
 * @param {number | null} rttMs
 * @param {(participant: number) => boolean} cameraOn
 * @returns {Map<number, Grade>}
 */
export function participantGrades(rows, rttMs, cameraOn) {
  /** @type {Map<number, {loss: number[], fps: number | null}>} */
  const by = new Map();
  for (const row of rows) {
    if (row.source === 'screen') {
      continue;
    }
    const entry = by.get(row.participant) ?? { loss: [], fps: null };
    by.set(row.participant, entry);
    entry.loss.push(row.lossPercent);
    if (row.source === 'camera' && cameraOn(row.participant) && row.paused === null) {
      entry.fps = row.fps;
    }
  }
  /** @type {Map<number, Grade>} */
  const out = new Map();
  for (const [id, { loss, fps }] of by) {
    out.set(id, gradeOf({ lossPercent: loss.length ? Math.max(...loss) : null, rttMs, fps }));
  }
  return out;
}

/**
 * One second's statistics.
 * @typedef {object} Sample
 * @property {number} time Seconds since the Unix epoch (the plots' x axis).
 * @property {KindRates} sent Bytes per second sent by kind.
 * @property {KindRates} received Bytes per second received by kind.
 * @property {number | null} rttMs
 * @property {InboundRow[]} inbound
 * @property {OutboundRow[]} outbound The own camera's layers, lowest first.
 * @property {Map<number, Grade>} grades
 */

/**
 * The last minute of samples, column by column (the layout uPlot plots).
 * @typedef {object} History
 * @property {number[]} time
 * @property {Record<MediaKind | 'total', number[]>} sent
 * @property {Record<MediaKind | 'total', number[]>} received
 * @property {(number | null)[]} rttMs
 */

/**
 * What the sampler reads each second: the current connections and what their media
 * sections carry.
 * @typedef {object} SampleSource
 * @property {RTCPeerConnection | null} publishPc
 * @property {RTCPeerConnection | null} subscribePc
 * @property {{mid: string, source: TrackSource}[]} published the publish connection's sections
 * @property {TrackInfo[]} subscribed the subscribe connection's sections
 * @property {(participant: number) => boolean} cameraOn
 */

/** @returns {History} */
function emptyHistory() {
  const columns = () => ({ camera: [], screen: [], audio: [], total: [] });
  return { time: [], sent: columns(), received: columns(), rttMs: [] };
}

/** Layers of the own camera in order, lowest first (publish.js's rids). */
const RID_ORDER = ['q', 'h', 'f'];

/** Samples the current connections every second and keeps the last minute. */
export class StatsSampler {
  /** @param {() => SampleSource} source */
  constructor(source) {
    this.source = source;
    /** @type {History} */
    this.history = emptyHistory();
    /** @type {Sample | null} */
    this.latest = null;
    /** What `video_state` said per subscribe mid. @type {Map<string, {layer: number | null, paused: PauseReason | null}>} */
    this.videoStates = new Map();
    /** @type {Set<(sample: Sample) => void>} */
    this.listeners = new Set();
    /** The previous snapshot of each direction, with the connection it came from. */
    /** @type {{pc: RTCPeerConnection, snapshot: Snapshot} | null} */
    this.lastPublish = null;
    /** @type {{pc: RTCPeerConnection, snapshot: Snapshot} | null} */
    this.lastSubscribe = null;
    /** @type {number | null} */
    this.timer = null;
    this.busy = false;
  }

  start() {
    if (this.timer === null) {
      this.timer = window.setInterval(() => this.tick(), SAMPLE_INTERVAL_MS);
    }
  }

  stop() {
    if (this.timer !== null) {
      window.clearInterval(this.timer);
      this.timer = null;
    }
    this.listeners.clear();
  }

  /**
   * Calls `listener` with every new sample; returns the unsubscribe function.
   * @param {(sample: Sample) => void} listener
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /**
   * Notes the server's `video_state` for a subscribe mid.
   * @param {string} mid
   * @param {number | null} layer
   * @param {PauseReason | null} paused
   */
  videoState(mid, layer, paused) {
    this.videoStates.set(mid, { layer, paused });
  }

  async tick() {
    if (this.busy) {
      return; // the previous getStats() has not answered yet: skip a second
    }
    this.busy = true;
    try {
      const source = this.source();
      const [pub, sub] = await Promise.all([snapshotFor(source.publishPc), snapshotFor(source.subscribePc)]);
      this.record(source, pub, sub);
    } catch (err) {
      console.debug('lanmeet: statistics sample failed', err);
    } finally {
      this.busy = false;
    }
  }

  /**
   * @param {SampleSource} source
   * @param {{pc: RTCPeerConnection, snapshot: Snapshot} | null} pub
   * @param {{pc: RTCPeerConnection, snapshot: Snapshot} | null} sub
   */
  record(source, pub, sub) {
    // A replaced connection starts again: its counters do not continue the old one's.
    const pubFigures = pub ? streamFigures(this.lastPublish?.pc === pub.pc ? this.lastPublish.snapshot : null, pub.snapshot) : [];
    const subFigures = sub ? streamFigures(this.lastSubscribe?.pc === sub.pc ? this.lastSubscribe.snapshot : null, sub.snapshot) : [];
    this.lastPublish = pub;
    this.lastSubscribe = sub;

    const published = new Map(source.published.map((t) => [t.mid, t.source]));
    const subscribed = new Map(source.subscribed.map((t) => [t.mid, t]));
    /** @param {StreamStats} s @returns {MediaKind} */
    const publishKind = (s) => {
      const src = s.mid !== null ? published.get(s.mid) : undefined;
      return s.kind === 'audio' ? 'audio' : src === 'screen' || (src === undefined && s.rid === null) ? 'screen' : 'camera';
    };
    /** @param {StreamStats} s @returns {MediaKind} */
    const subscribeKind = (s) => (s.kind === 'audio' ? 'audio' : subscribed.get(s.mid ?? '')?.source === 'screen' ? 'screen' : 'camera');

    /** @type {InboundRow[]} */
    const inbound = [];
    for (const f of subFigures) {
      const info = subscribed.get(f.stream.mid ?? '');
      if (!info) {
        continue; // a section the latest offer no longer carries
      }
      const state = this.videoStates.get(info.mid);
      inbound.push({
        participant: info.participant,
        source: info.source ?? (info.kind === 'audio' ? 'microphone' : 'camera'),
        mid: info.mid,
        width: f.stream.width,
        height: f.stream.height,
        fps: f.fps,
        bitsPerSecond: f.bytesPerSecond * 8,
        lossPercent: f.lossPercent ?? 0,
        jitterMs: f.stream.jitterMs,
        freezeCount: f.stream.freezeCount,
        layer: f.stream.kind === 'video' ? (state?.layer ?? null) : null,
        paused: f.stream.kind === 'video' ? (state?.paused ?? null) : null,
      });
    }
    /** @type {OutboundRow[]} */
    const outbound = pubFigures
      .filter((f) => f.stream.kind === 'video' && publishKind(f.stream) === 'camera')
      .map((f) => ({
        rid: f.stream.rid ?? '',
        width: f.stream.width,
        height: f.stream.height,
        fps: f.fps,
        bitsPerSecond: f.bytesPerSecond * 8,
        limitation: f.stream.limitation,
      }))
      .sort((a, b) => RID_ORDER.indexOf(a.rid) - RID_ORDER.indexOf(b.rid));

    const rttMs = sub?.snapshot.rttMs ?? pub?.snapshot.rttMs ?? null;
    /** @type {Sample} */
    const sample = {
      time: Date.now() / 1000,
      sent: rates(pubFigures, publishKind),
      received: rates(subFigures, subscribeKind),
      rttMs,
      inbound,
      outbound,
      grades: participantGrades(inbound, rttMs, source.cameraOn),
    };
    this.push(sample);
  }

  /** @param {Sample} sample */
  push(sample) {
    const h = this.history;
    h.time.push(sample.time);
    for (const key of /** @type {const} */ (['camera', 'screen', 'audio', 'total'])) {
      h.sent[key].push(sample.sent[key]);
      h.received[key].push(sample.received[key]);
    }
    h.rttMs.push(sample.rttMs);
    if (h.time.length > HISTORY_LENGTH) {
      h.time.shift();
      h.rttMs.shift();
      for (const key of /** @type {const} */ (['camera', 'screen', 'audio', 'total'])) {
        h.sent[key].shift();
        h.received[key].shift();
      }
    }
    this.latest = sample;
    for (const listener of this.listeners) {
      listener(sample);
    }
  }
}

/**
 * One snapshot of a connection that is not closed.
 * @param {RTCPeerConnection | null} pc
 * @returns {Promise<{pc: RTCPeerConnection, snapshot: Snapshot} | null>}
 */
async function snapshotFor(pc) {
  if (!pc || pc.connectionState === 'closed') {
    return null;
  }
  const report = await pc.getStats();
  /** @param {string} trackIdentifier */
  const midOfTrack = (trackIdentifier) => pc.getTransceivers().find((t) => t.receiver.track.id === trackIdentifier)?.mid ?? null;
  return { pc, snapshot: snapshotOf(report.values(), midOfTrack) };
}
