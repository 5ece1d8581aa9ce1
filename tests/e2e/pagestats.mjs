// What a participant's browser receives and sends, read from RTCPeerConnection.getStats()
// inside its page: the one place the browser tests summarise inbound streams (frames
// decoded, sizes, bytes, audio samples) and the camera's outbound simulcast layers.
//
// The functions marked "runs in the page" are passed to page.evaluate whole, so they
// use nothing from this module's scope.

import { waitUntil } from './harness.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */

/**
 * Everything the subscribe connection receives, at one moment. Runs in the page.
 *
 * Each inbound RTP stream carries the participant and source it belongs to (from the
 * latest subscribe_offer's tracks, `window.lanmeet.conn.tracks`). Counters a browser
 * does not report read 0, sizes and audio figures null.
 */
export async function readInbound() {
  const lm = /** @type {any} */ (window).lanmeet;
  const at = performance.now();
  if (!lm?.subscribePc || lm.subscribePc.connectionState === 'closed') {
    return { at, transportBytes: 0, rttSeconds: /** @type {number | null} */ (null), streams: [] };
  }
  const pc = /** @type {RTCPeerConnection} */ (lm.subscribePc);
  const report = await pc.getStats();
  /** @type {{mid: string, participant: number, source?: string}[]} */
  const tracks = lm.conn?.tracks ?? [];
  const streams = [];
  let transportBytes = 0;
  /** @type {number | null} */
  let rttSeconds = null;
  for (const r of report.values()) {
    if (r.type === 'transport') {
      transportBytes += r.bytesReceived ?? 0;
    }
    if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime !== undefined) {
      rttSeconds = Math.max(rttSeconds ?? 0, r.currentRoundTripTime);
    }
    if (r.type !== 'inbound-rtp') {
      continue;
    }
    /** @type {string | undefined} */
    let mid = r.mid;
    if (mid === undefined) {
      const t = pc.getTransceivers().find((x) => x.receiver.track.id === r.trackIdentifier);
      mid = t?.mid ?? undefined;
    }
    const info = tracks.find((t) => t.mid === mid);
    streams.push({
      /** @type {'audio' | 'video'} */
      kind: r.kind,
      mid: mid ?? null,
      /** @type {number | null} */
      participant: info ? info.participant : null,
      /** @type {string | null} */
      source: info?.source ?? null,
      /** The stats' own clock, ms. @type {number} */
      timestamp: r.timestamp,
      /** @type {number} */
      framesDecoded: r.framesDecoded ?? 0,
      /** @type {number} */
      framesReceived: r.framesReceived ?? 0,
      /** @type {number} */
      framesDropped: r.framesDropped ?? 0,
      /** @type {number} */
      keyFramesDecoded: r.keyFramesDecoded ?? 0,
      /** @type {number} */
      pliCount: r.pliCount ?? 0,
      /** @type {number} */
      nackCount: r.nackCount ?? 0,
      /** @type {number | null} */
      frameWidth: r.frameWidth ?? null,
      /** @type {number | null} */
      frameHeight: r.frameHeight ?? null,
      /** @type {number | null} */
      freezeCount: r.freezeCount ?? null,
      /** @type {number} */
      bytesReceived: r.bytesReceived ?? 0,
      /** @type {number} */
      packetsReceived: r.packetsReceived ?? 0,
      /** @type {number} */
      packetsLost: r.packetsLost ?? 0,
      /** @type {number | null} */
      totalSamplesReceived: r.totalSamplesReceived ?? null,
      /** @type {number | null} */
      concealedSamples: r.concealedSamples ?? null,
      /** @type {number | null} */
      audioLevel: r.audioLevel ?? null,
      /** Seconds, summed over everything emitted. @type {number} */
      jitterBufferDelay: r.jitterBufferDelay ?? 0,
      /** @type {number} */
      jitterBufferEmittedCount: r.jitterBufferEmittedCount ?? 0,
    });
  }
  return { at, transportBytes, rttSeconds, streams };
}

/** @typedef {Awaited<ReturnType<typeof readInbound>>} Inbound */
/** @typedef {Inbound['streams'][number]} InboundStream */

/**
 * The camera's simulcast layers as the publish connection sends them, sorted by rid.
 * Runs in the page.
 */
export async function readCameraLayers() {
  const lm = /** @type {any} */ (window).lanmeet;
  const pc = /** @type {RTCPeerConnection | null} */ (lm?.publishPc ?? null);
  if (!pc || pc.connectionState === 'closed') {
    return [];
  }
  const sender = /** @type {RTCRtpSender | undefined} */ (lm.conn?.senders?.video);
  const params = sender?.getParameters();
  const report = await pc.getStats();
  const out = [];
  for (const r of report.values()) {
    // Only the camera's encodings carry a rid; a shared screen's stream has none.
    if (r.type !== 'outbound-rtp' || r.kind !== 'video' || !r.rid) {
      continue;
    }
    const codec = r.codecId ? report.get(r.codecId) : undefined;
    const encoding = params?.encodings.find((e) => e.rid === r.rid);
    out.push({
      /** @type {string} */
      rid: r.rid,
      /** @type {number} */
      frameWidth: r.frameWidth ?? 0,
      /** @type {number} */
      frameHeight: r.frameHeight ?? 0,
      /** @type {number} */
      framesEncoded: r.framesEncoded ?? 0,
      /** @type {number} */
      framesPerSecond: r.framesPerSecond ?? 0,
      /** @type {number} */
      targetBitrate: r.targetBitrate ?? 0,
      /** @type {number} */
      timestamp: r.timestamp,
      /** The encoding is switched on (sender parameters; else the stats' own flag). @type {boolean | null} */
      active: encoding ? encoding.active !== false : (r.active ?? null),
      /** @type {string | null} */
      mimeType: codec?.mimeType ?? null,
      /** @type {string | null} */
      limitation: r.qualityLimitationReason ?? null,
    });
  }
  return out.sort((a, b) => a.rid.localeCompare(b.rid));
}

/** @typedef {Awaited<ReturnType<typeof readCameraLayers>>[number]} CameraLayer */

/**
 * What `p` receives now.
 * @param {Participant} p
 * @returns {Promise<Inbound>}
 */
export function inboundOf(p) {
  return p.page.evaluate(readInbound);
}

/**
 * The camera layers `p` sends now.
 * @param {Participant} p
 * @returns {Promise<CameraLayer[]>}
 */
export function cameraLayersOf(p) {
  return p.page.evaluate(readCameraLayers);
}

/**
 * The camera (video) or microphone (audio) stream received from participant `id`: a
 * shared screen is not it.
 * @param {Inbound} inbound
 * @param {number} id
 * @param {'audio' | 'video'} kind
 * @returns {InboundStream | undefined}
 */
export function streamOf(inbound, id, kind) {
  return inbound.streams.find((s) => s.participant === id && s.kind === kind && s.source !== 'screen');
}

/**
 * Frames decoded per second between two readings of one stream, by the stats' clock.
 * @param {InboundStream} before
 * @param {InboundStream} after
 */
export function decodeFps(before, after) {
  return ((after.framesDecoded - before.framesDecoded) * 1000) / (after.timestamp - before.timestamp);
}

/**
 * Waits until `p` has decoded at least one video frame from each of `ids`; a timeout
 * reports what `p` receives.
 * @param {Participant} p
 * @param {number[]} ids
 * @param {{timeoutMs?: number}} [options]
 */
export async function waitForVideoFrom(p, ids, { timeoutMs = 20_000 } = {}) {
  try {
    await waitUntil(
      async () => {
        const inbound = await inboundOf(p);
        return ids.every((id) => (streamOf(inbound, id, 'video')?.framesDecoded ?? 0) > 0);
      },
      { timeoutMs, intervalMs: 100, message: `${p.label} to decode video from ${JSON.stringify(ids)}` },
    );
  } catch (err) {
    const now = await inboundOf(p).catch((e) => String(e));
    throw new Error(`${err instanceof Error ? err.message : err}; stats now: ${JSON.stringify(now)}`);
  }
}

/**
 * Waits until `p` decodes more than `frames` new frames on the stream `pick` selects,
 * counting from now.
 * @param {Participant} p
 * @param {(s: InboundStream) => boolean} pick
 * @param {{frames: number, timeoutMs?: number, intervalMs?: number, message: string}} options
 */
export async function waitForNewFrames(p, pick, { frames, timeoutMs = 30_000, intervalMs = 100, message }) {
  const decoded = async () => (await inboundOf(p)).streams.find(pick)?.framesDecoded ?? 0;
  const start = await decoded();
  await waitUntil(async () => (await decoded()) > start + frames, { timeoutMs, intervalMs, message });
}
