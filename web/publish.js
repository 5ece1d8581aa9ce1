// @ts-check
/**
 * The publish connection: this browser's microphone, camera (simulcast) and, while
 * presenting, its screen. UI-free; protocol.js owns one and routes `publish_answer` here.
 *
 * - The camera goes out as three simulcast layers, lowest first: rid `q` (a quarter of
 *   the size), `h` (half) and `f` (full). The server tells layers apart by these rids
 *   and forwards each subscriber the one that fits its tile. All three are always
 *   negotiated; a layer that would be under 120 px high for the chosen quality is
 *   switched off with `setParameters` (`active: false`), which needs no renegotiation.
 * - VP8 comes first in the camera's codec preferences: the server reads VP8 payload
 *   descriptors to switch layers on frame boundaries.
 * - The screen gets a third transceiver on the first share (one renegotiation); later
 *   shares reuse it with `replaceTrack`, so they need none.
 * - Offers go out one at a time: the next waits until the previous one is answered.
 */

import { t } from './i18n.js';

/** @typedef {import('./protocol.js').TrackKind} TrackKind */
/** @typedef {'camera' | 'microphone' | 'screen'} TrackSource */
/** @typedef {'240p' | '360p' | '480p' | '720p' | '900p'} Quality */

/**
 * Camera qualities: the top layer's size and bitrate (bit/s), and the size asked of the
 * camera. Chromium sends fewer simulcast layers for small inputs, dropping the *top*
 * ones (2 layers below 960×540, 1 below 480×270), so below 540p the camera still
 * captures 960×540 and the encoder scales every layer down (`scaleResolutionDownBy`).
 */
export const QUALITIES = /** @type {const} */ ({
  '240p': { width: 426, height: 240, maxBitrate: 400_000, capture: { width: 960, height: 540 } },
  '360p': { width: 640, height: 360, maxBitrate: 700_000, capture: { width: 960, height: 540 } },
  '480p': { width: 854, height: 480, maxBitrate: 1_000_000, capture: { width: 960, height: 540 } },
  '720p': { width: 1280, height: 720, maxBitrate: 1_800_000, capture: { width: 1280, height: 720 } },
  '900p': { width: 1600, height: 900, maxBitrate: 2_500_000, capture: { width: 1600, height: 900 } },
});

/** @type {Quality} */
export const DEFAULT_QUALITY = '720p';

/**
 * @param {unknown} value
 * @returns {value is Quality}
 */
export function isQuality(value) {
  return typeof value === 'string' && Object.hasOwn(QUALITIES, value);
}

/** Simulcast layers, lowest first: rid and how much smaller than the top layer. */
const LAYERS = [
  { rid: 'q', divisor: 4 },
  { rid: 'h', divisor: 2 },
  { rid: 'f', divisor: 1 },
];

/** Layers smaller than this are not worth sending: the server would never pick them. */
const MIN_LAYER_HEIGHT = 120;

/** Bitrate of the shared screen: sharp text matters more than motion. */
const SCREEN_MAX_BITRATE = 2_500_000;

/**
 * The camera's simulcast encodings for a quality.
 * @param {Quality} quality
 * @param {number} [sourceHeight] the camera track's height (the quality's capture height
 *   if unknown)
 * @returns {RTCRtpEncodingParameters[]}
 */
export function cameraEncodings(quality, sourceHeight) {
  const { height, maxBitrate, capture } = QUALITIES[quality];
  // The top layer is the quality's height, or the camera's if it cannot do that much.
  const top = Math.max(1, (sourceHeight || capture.height) / height);
  return LAYERS.map(({ rid, divisor }) => {
    const scaleResolutionDownBy = top * divisor;
    const layerHeight = Math.min(height, sourceHeight || height) / divisor;
    // Lower layers by their height: 100 kbit/s up to 180 px (q at 720p), 500 kbit/s from
    // 360 px (h at 720p). The lowest layer is what a slow link gets: with audio it must
    // leave room on a 300 kbit/s link for retransmissions and key frames (at 150 kbit/s,
    // 250 kbit/s with audio, retransmitting losses kept that link overflowing).
    const lower = layerHeight <= 180 ? 100_000 : layerHeight < 360 ? 300_000 : 500_000;
    const bitrate = divisor === 1 ? maxBitrate : lower;
    return { rid, scaleResolutionDownBy, maxBitrate: bitrate, active: layerHeight >= MIN_LAYER_HEIGHT };
  });
}

/**
 * Puts VP8 first among the transceiver's codecs (keeping the others as fallbacks).
 * @param {RTCRtpTransceiver} transceiver
 */
export function preferVp8(transceiver) {
  const codecs = RTCRtpReceiver.getCapabilities('video')?.codecs;
  if (!codecs || typeof transceiver.setCodecPreferences !== 'function') {
    return;
  }
  const isVp8 = (/** @type {RTCRtpCodec} */ c) => c.mimeType.toLowerCase() === 'video/vp8';
  try {
    transceiver.setCodecPreferences([...codecs.filter(isVp8), ...codecs.filter((c) => !isVp8(c))]);
  } catch (err) {
    console.warn('lanmeet: cannot prefer VP8', err);
  }
}

/** Peer connection settings: LAN only, the server lists its host candidates in its SDP. */
export const PC_CONFIG = /** @type {RTCConfiguration} */ ({
  iceServers: [],
  bundlePolicy: 'max-bundle',
  rtcpMuxPolicy: 'require',
});

export class PublishConnection {
  /**
   * @param {(msg: object) => void} send Sends a signaling message.
   */
  constructor(send) {
    this.send = send;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** Tracks to send; kept even before publishing. @type {Record<TrackKind, MediaStreamTrack | null>} */
    this.localTracks = { audio: null, video: null };
    /** @type {Record<TrackKind, RTCRtpSender | null>} */
    this.senders = { audio: null, video: null };
    /** The screen transceiver's sender, once the first share added it. @type {RTCRtpSender | null} */
    this.screenSender = null;
    /** @type {MediaStreamTrack | null} */
    this.screenTrack = null;
    /** One stream for all local tracks, so the server sees them as one participant's. */
    this.localStream = new MediaStream();
    /** @type {Quality} */
    this.quality = DEFAULT_QUALITY;
    /** How many offers were sent (tests check that a second share needs none). */
    this.offers = 0;
    /** Offers strictly one after another. @type {Promise<void>} */
    this.queue = Promise.resolve();
    /** Settles the outstanding offer when its answer is applied. @type {(() => void) | null} */
    this.answered = null;
    this.closed = false;
    /** The connection failed or an offer could not be made. @type {(message: string) => void} */
    this.onError = () => {};
  }

  /**
   * A fresh publish connection for a new session after a reconnection: the same camera
   * and microphone tracks at the same quality, no peer connection yet, no screen (it is
   * shared again once the server grants it).
   */
  renewed() {
    const next = new PublishConnection(this.send);
    next.quality = this.quality;
    next.onError = this.onError;
    for (const track of Object.values(this.localTracks)) {
      if (track) {
        next.localStream.addTrack(track);
      }
    }
    next.localTracks = { ...this.localTracks };
    return next;
  }

  /**
   * Sets the track sent for `kind` (null sends nothing), without renegotiation.
   * @param {TrackKind} kind
   * @param {MediaStreamTrack | null} track
   */
  async setLocalTrack(kind, track) {
    const previous = this.localTracks[kind];
    if (previous && previous !== track) {
      this.localStream.removeTrack(previous);
    }
    if (track && previous !== track) {
      this.localStream.addTrack(track);
    }
    this.localTracks[kind] = track;
    const sender = this.senders[kind];
    if (sender && !this.closed && sender.track !== track) {
      await sender.replaceTrack(track);
    }
  }

  /**
   * Creates the connection (microphone, then the simulcast camera) and sends the offer.
   * @returns {Promise<void>} settles when the offer is answered
   */
  start() {
    if (this.pc || this.closed) {
      return this.queue;
    }
    const pc = new RTCPeerConnection(PC_CONFIG);
    this.pc = pc;
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && !this.closed) {
        this.onError(t('error.publish_failed'));
      }
    };
    const audio = pc.addTransceiver(this.localTracks.audio ?? 'audio', {
      direction: 'sendonly',
      streams: [this.localStream],
    });
    this.senders.audio = audio.sender;
    const video = pc.addTransceiver(this.localTracks.video ?? 'video', {
      direction: 'sendonly',
      streams: [this.localStream],
      sendEncodings: cameraEncodings(this.quality, this.localTracks.video?.getSettings().height),
    });
    preferVp8(video);
    this.senders.video = video.sender;
    return this.negotiate();
  }

  /**
   * Sends a (new) offer once the previous one is answered.
   * @returns {Promise<void>} settles when this offer is answered
   */
  negotiate() {
    this.queue = this.queue.then(() => this.offer()).catch((err) => {
      this.onError(t('error.send_media', { reason: err instanceof Error ? err.message : String(err) }));
    });
    return this.queue;
  }

  async offer() {
    const pc = this.pc;
    if (!pc || this.closed) {
      return;
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const answered = new Promise((resolve) => {
      this.answered = () => resolve(undefined);
    });
    // No trickle: the server is ICE-lite and learns our address from connectivity checks.
    const sdp = pc.localDescription?.sdp ?? offer.sdp ?? '';
    this.offers++;
    this.send({ type: 'publish_offer', sdp, tracks: this.trackSources() });
    await answered;
  }

  /**
   * What each media section carries, for `publish_offer`.
   * @returns {{mid: string, source: TrackSource}[]}
   */
  trackSources() {
    /** @type {{mid: string, source: TrackSource}[]} */
    const out = [];
    for (const t of this.pc?.getTransceivers() ?? []) {
      if (t.mid === null) {
        continue;
      }
      /** @type {TrackSource} */
      const source = t.sender === this.screenSender ? 'screen' : t.sender === this.senders.audio ? 'microphone' : 'camera';
      out.push({ mid: t.mid, source });
    }
    return out;
  }

  /** @param {string} sdp */
  async applyAnswer(sdp) {
    const pc = this.pc;
    const done = this.answered;
    this.answered = null;
    try {
      if (!pc || pc.signalingState !== 'have-local-offer') {
        console.warn('lanmeet: publish_answer without an offer');
        return;
      }
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      this.onError(t('error.bad_answer', { reason: err instanceof Error ? err.message : String(err) }));
    } finally {
      done?.();
    }
  }

  /**
   * Changes the camera's simulcast layers for a quality (the capture size is media.js's).
   * @param {Quality} quality
   */
  async setQuality(quality) {
    this.quality = quality;
    const sender = this.senders.video;
    if (!sender || this.closed) {
      return;
    }
    const params = sender.getParameters();
    if (!params.encodings?.length) {
      // Not negotiated yet: the offer in flight already carries the encodings of the
      // quality at the time; apply this one once it is answered.
      await this.queue;
      if (this.quality === quality && sender.getParameters().encodings?.length) {
        await this.setQuality(quality);
      }
      return;
    }
    const wanted = cameraEncodings(quality, this.localTracks.video?.getSettings().height);
    for (const encoding of params.encodings) {
      const want = wanted.find((w) => w.rid === encoding.rid);
      if (want) {
        encoding.active = want.active;
        encoding.maxBitrate = want.maxBitrate;
        encoding.scaleResolutionDownBy = want.scaleResolutionDownBy;
      }
    }
    await sender.setParameters(params);
  }

  /**
   * Sends a screen track (null: stop sending it). The first call adds the screen
   * transceiver and renegotiates; later calls only replace the track.
   * @param {MediaStreamTrack | null} track
   */
  async setScreenTrack(track) {
    this.screenTrack = track;
    if (this.closed) {
      return;
    }
    if (this.screenSender) {
      await this.screenSender.replaceTrack(track);
      return;
    }
    if (!track || !this.pc) {
      return;
    }
    const transceiver = this.pc.addTransceiver(track, {
      direction: 'sendonly',
      streams: [this.localStream],
      sendEncodings: [{ maxBitrate: SCREEN_MAX_BITRATE, scaleResolutionDownBy: 1 }],
    });
    this.screenSender = transceiver.sender;
    await this.negotiate();
    try {
      const params = /** @type {RTCRtpSendParameters & {degradationPreference?: string}} */ (
        transceiver.sender.getParameters()
      );
      // Text must stay legible: drop frames, never resolution, when the link is tight.
      params.degradationPreference = 'maintain-resolution';
      await transceiver.sender.setParameters(params);
    } catch (err) {
      console.warn('lanmeet: cannot set the screen degradation preference', err);
    }
  }

  close() {
    this.closed = true;
    this.answered?.();
    this.answered = null;
    this.pc?.close();
  }
}
