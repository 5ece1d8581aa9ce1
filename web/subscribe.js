// @ts-check
/**
 * The subscribe connection: the server offers the other participants' tracks, this
 * browser answers. UI-free; protocol.js owns one per session and routes
 * `subscribe_offer` here.
 *
 * Offers are handled one at a time, in order. An offer marked `new_connection` replaces
 * the peer connection; one that cannot be applied is answered with an empty SDP, so the
 * server offers again.
 */

import { PC_CONFIG } from './publish.js';
import { t } from './i18n.js';

/** @typedef {import('./publish.js').TrackSource} TrackSource */
/** @typedef {'audio' | 'video'} TrackKind */

/**
 * Whose track a media section (`mid`) of the subscribe connection carries.
 * @typedef {object} TrackInfo
 * @property {string} mid
 * @property {number} participant
 * @property {TrackKind} kind
 * @property {TrackSource} [source] Camera, microphone or screen.
 */

export class SubscribeConnection {
  /**
   * @param {(msg: object) => void} send Sends a signaling message.
   */
  constructor(send) {
    this.send = send;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** Mapping of the latest offer. @type {TrackInfo[]} */
    this.tracks = [];
    /** Track ids already reported per mid, to report each remote track once. @type {Map<string, string>} */
    this.reported = new Map();
    /** Offers are handled strictly one after another. @type {Promise<void>} */
    this.queue = Promise.resolve();
    this.closed = false;

    /**
     * A remote track arrived. May be called again for the same participant and source
     * when the server replaces the track.
     * @type {(participantId: number, kind: TrackKind, track: MediaStreamTrack, source: TrackSource, mid: string) => void}
     */
    this.onTrack = () => {};
    /** An offer was answered: `tracks` is the new mapping. @type {(tracks: TrackInfo[]) => void} */
    this.onSubscribed = () => {};
    /** Something failed; the connection goes on. @type {(code: string, message: string) => void} */
    this.onError = () => {};
  }

  /**
   * Queues one offer from the server.
   * @param {string} sdp
   * @param {TrackInfo[]} tracks
   * @param {boolean} newConnection The offer is for a new peer connection.
   */
  offer(sdp, tracks, newConnection) {
    this.queue = this.queue
      .then(() => this.answer(sdp, tracks, newConnection))
      .catch((err) => {
        if (this.closed) {
          return;
        }
        this.onError('bad_sdp', t('error.bad_offer', { reason: describe(err) }));
        // An empty answer tells the server this offer failed; it then offers again on
        // a new connection (a few times at most), instead of waiting for an answer.
        this.send({ type: 'subscribe_answer', sdp: '' });
      });
  }

  /**
   * Applies one offer and sends the answer.
   * @param {string} sdp
   * @param {TrackInfo[]} tracks
   * @param {boolean} newConnection The current peer connection is closed first (its
   *   tracks end; `onTrack` reports the new ones).
   */
  async answer(sdp, tracks, newConnection) {
    if (this.closed) {
      return;
    }
    if (newConnection && this.pc) {
      this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
      this.reported.clear();
    }
    this.tracks = tracks;
    const pc = this.pc ?? this.createPc();
    await pc.setRemoteDescription({ type: 'offer', sdp: uniqueMsids(sdp) });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.closed) {
      return;
    }
    this.send({ type: 'subscribe_answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
    // `track` events fire only for newly receiving transceivers; make sure every mapped
    // section has been reported even if the server moved a section to someone else.
    for (const info of tracks) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === info.mid);
      if (transceiver) {
        this.reportTrack(info.mid, transceiver.receiver.track);
      }
    }
    this.onSubscribed(tracks);
  }

  createPc() {
    const pc = new RTCPeerConnection(PC_CONFIG);
    this.pc = pc;
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      if (mid !== null && !this.closed) {
        this.reportTrack(mid, event.track, event.streams[0]?.id);
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && !this.closed) {
        this.onError('media_failed', t('error.subscribe_failed'));
      }
    };
    return pc;
  }

  /**
   * Tells `onTrack` about a remote track once per (mid, track).
   * @param {string} mid
   * @param {MediaStreamTrack} track
   * @param {string} [streamId] The remote stream id, which is the participant id.
   */
  reportTrack(mid, track, streamId) {
    const info = this.tracks.find((t) => t.mid === mid);
    let participant = info?.participant;
    if (participant === undefined && streamId !== undefined) {
      const parsed = Number.parseInt(streamId.replace(/^\D+/, ''), 10);
      participant = Number.isNaN(parsed) ? undefined : parsed;
    }
    if (participant === undefined) {
      return;
    }
    const key = `${participant}/${info?.source ?? ''}/${track.id}`;
    if (this.reported.get(mid) === key) {
      return;
    }
    this.reported.set(mid, key);
    const kind = info?.kind ?? /** @type {TrackKind} */ (track.kind);
    const source = info?.source ?? (kind === 'audio' ? 'microphone' : 'camera');
    this.onTrack(participant, kind, track, source, mid);
  }

  /** Closes the peer connection for good; its tracks end. */
  close() {
    this.closed = true;
    this.pc?.close();
  }
}

/**
 * Makes each media section's `msid` unique, appending the section's mid to a repeated
 * track id. Chromium refuses an offer in which two sections carry the same msid. The
 * server names each track after its participant and source (`<id>-video`,
 * `<id>-screen`; crates/sfu/src/peer.rs), so its offers should never repeat one; this
 * keeps an offer that does anyway from being refused.
 * @param {string} sdp
 */
export function uniqueMsids(sdp) {
  const sections = sdp.split(/\r\n(?=m=)/);
  const seen = new Set();
  return sections
    .map((section) => {
      const msid = /^a=msid:(\S+ \S+)$/m.exec(section)?.[1];
      if (!msid || !section.startsWith('m=')) {
        return section;
      }
      if (!seen.has(msid)) {
        seen.add(msid);
        return section;
      }
      const mid = /^a=mid:(\S+)$/m.exec(section)?.[1] ?? String(seen.size);
      const unique = `${msid}-${mid}`;
      seen.add(unique);
      return section.split(`msid:${msid}`).join(`msid:${unique}`);
    })
    .join('\r\n');
}

/**
 * A short description of a thrown value.
 * @param {unknown} err
 */
function describe(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
