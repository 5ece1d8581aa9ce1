// @ts-check
/**
 * The connection to a lanmeet server, free of any UI: one signaling WebSocket and two
 * peer connections, as described in docs/PROTOCOL.md.
 *
 * - *publish* (publish.js): this browser offers its microphone, its camera as three
 *   simulcast layers and, while presenting, its screen (`sendonly`); the server answers.
 *   Transceivers are kept for the whole meeting, so switching the camera off and on is
 *   `sender.replaceTrack()` with no renegotiation.
 * - *subscribe*: the server offers the other participants' tracks, this browser answers.
 *   Offers are handled one at a time, in order. An offer marked `new_connection`
 *   replaces the connection; one that cannot be applied is answered with an empty SDP,
 *   so the server offers again.
 *
 * Usage:
 * ```js
 * const conn = new Connection({ room: 'lab', name: 'Ada' });
 * conn.onJoined = (you, room, participants) => { ... };
 * conn.onTrack = (participantId, kind, track, source, mid) => { ... };
 * conn.connect();
 * // once local media is known:
 * conn.setLocalTrack('audio', micTrack);
 * conn.setLocalTrack('video', cameraTrack);
 * await conn.publish();
 * ```
 */

import { PC_CONFIG, PublishConnection } from './publish.js';

/** Protocol version sent in `join`. */
export const PROTOCOL_VERSION = 1;

/** @typedef {import('./publish.js').TrackSource} TrackSource */
/** @typedef {import('./publish.js').Quality} Quality */

/**
 * A participant as the others see it.
 * @typedef {object} Participant
 * @property {number} id Server-assigned id.
 * @property {string} name Display name, unique within the room.
 * @property {boolean} camera Camera on.
 * @property {boolean} microphone Microphone on.
 * @property {boolean} [screen] Sharing the screen (presenting).
 */

/** @typedef {'audio' | 'video'} TrackKind */

/**
 * Whose track a media section (`mid`) of the subscribe connection carries.
 * @typedef {object} TrackInfo
 * @property {string} mid
 * @property {number} participant
 * @property {TrackKind} kind
 * @property {TrackSource} [source] Camera, microphone or screen.
 */

/**
 * The displayed size of one video track of the subscribe connection, in device pixels
 * (0×0: not visible).
 * @typedef {object} TrackView
 * @property {string} mid
 * @property {number} width
 * @property {number} height
 */

/** @typedef {'low_bandwidth' | 'not_visible'} PauseReason */

/**
 * An error reported by the server (or by this module, with a code of its own such as
 * `media_failed` or `bad_message`).
 * @typedef {object} ServerError
 * @property {string} code Machine-readable code, e.g. `name_taken`.
 * @property {string} message Text fit to show to the user.
 * @property {boolean} fatal Whether the connection ends because of it.
 */

/** @typedef {'left' | 'timeout' | 'disconnected'} LeaveReason */

/**
 * A chat message or shared file (see docs/PROTOCOL.md, `chat`). This module only passes
 * chat through; chat.js renders it.
 * @typedef {object} ChatMessage
 * @property {number} ts Server time, milliseconds since the Unix epoch.
 * @property {{id: number, name: string}} from
 * @property {{id: number, name: string}[]} to Private recipients; empty for the room.
 * @property {string} text
 * @property {{name: string, size: number, mime: string, sha256: string, url: string}} [file]
 */

/**
 * How the connection ended.
 * @typedef {object} CloseInfo
 * @property {boolean} byUser `leave()` or `close()` was called.
 * @property {boolean} wasJoined The server had accepted the join.
 * @property {ServerError | null} error The fatal error that ended it, if any.
 */

/**
 * The WebSocket address of the server that served this page.
 * @param {Location} [loc]
 */
export function socketUrlFor(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * Publishes what this module holds for tests and debugging at `window.lanmeet`.
 * @param {Connection | null} conn
 */
function expose(conn) {
  /** @type {any} */ (window).lanmeet = {
    conn,
    publishPc: conn?.publishPc ?? null,
    subscribePc: conn?.subscribePc ?? null,
    /** The last `view` sent: `{tracks: [{mid, width, height}]}`, or null. */
    get view() {
      return conn?.lastView ?? null;
    },
  };
}

export class Connection {
  /**
   * @param {object} options
   * @param {string} options.room Room to join.
   * @param {string} options.name Display name.
   * @param {string} [options.url] WebSocket URL; defaults to `/ws` on this page's origin.
   */
  constructor({ room, name, url }) {
    this.room = room;
    this.name = name;
    this.url = url ?? socketUrlFor();

    /** Our id once joined. @type {number | null} */
    this.you = null;
    /**
     * Bearer token for file upload and download (`Authorization: Bearer <token>`), valid
     * while joined. @type {string | null}
     */
    this.token = null;
    /** Mapping of the latest subscribe offer. @type {TrackInfo[]} */
    this.tracks = [];
    /** @type {WebSocket | null} */
    this.socket = null;
    /** @type {RTCPeerConnection | null} */
    this.publishPc = null;
    /** @type {RTCPeerConnection | null} */
    this.subscribePc = null;
    this.publisher = new PublishConnection((msg) => this.send(msg));
    this.publisher.onError = (message) => {
      if (!this.closed) {
        this.reportError('media_failed', message, false);
      }
    };
    /** Tracks to send (the publisher's). */
    this.localTracks = this.publisher.localTracks;
    /** The publish connection's camera and microphone senders. */
    this.senders = this.publisher.senders;
    /** The last `view` message sent. @type {{tracks: TrackView[]} | null} */
    this.lastView = null;

    /** Track ids already reported per mid, to report each remote track once. @type {Map<string, string>} */
    this.reported = new Map();
    /** Subscribe offers are handled strictly one after another. @type {Promise<void>} */
    this.subscribeQueue = Promise.resolve();
    this.joined = false;
    this.closed = false;
    this.byUser = false;
    /** @type {ServerError | null} */
    this.fatalError = null;

    // Callbacks: assign before connect().

    /**
     * The server accepted the join.
     * @type {(you: number, room: string, participants: Participant[]) => void}
     */
    this.onJoined = () => {};
    /** Someone entered the room. @type {(participant: Participant) => void} */
    this.onParticipantJoined = () => {};
    /** Someone switched camera or microphone. @type {(participant: Participant) => void} */
    this.onParticipantUpdated = () => {};
    /** Someone left or was removed. @type {(id: number, reason: LeaveReason) => void} */
    this.onParticipantLeft = () => {};
    /**
     * A remote track arrived on the subscribe connection. May be called again for the
     * same participant and source when the server replaces the track. `source` is what
     * it carries (camera, microphone or screen); `mid` its media section.
     * @type {(participantId: number, kind: TrackKind, track: MediaStreamTrack, source: TrackSource, mid: string) => void}
     */
    this.onTrack = () => {};
    /**
     * A subscribe offer was answered: `tracks` is the new mapping of media sections.
     * @type {(tracks: TrackInfo[]) => void}
     */
    this.onSubscribed = () => {};
    /**
     * What the server forwards on a video track changed (`paused` non-null: no video, and
     * why).
     * @type {(mid: string, participant: number, layer: number | null, paused: PauseReason | null) => void}
     */
    this.onVideoState = () => {};
    /** The room's recent chat, right after joining. @type {(messages: ChatMessage[]) => void} */
    this.onChatHistory = () => {};
    /** A new chat message or shared file. @type {(message: ChatMessage) => void} */
    this.onChat = () => {};
    /**
     * The room's active speaker changed (null: nobody, e.g. the speaker left).
     * @type {(id: number | null) => void}
     */
    this.onActiveSpeaker = () => {};
    /** An error; if `fatal`, `onClose` follows. @type {(error: ServerError) => void} */
    this.onError = () => {};
    /** The connection ended; called once. @type {(info: CloseInfo) => void} */
    this.onClose = () => {};
  }

  /** Opens the socket and sends `join`. */
  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    expose(this);
    socket.onopen = () => {
      this.send({ type: 'join', version: PROTOCOL_VERSION, room: this.room, name: this.name });
    };
    socket.onmessage = (event) => {
      if (typeof event.data !== 'string') {
        return;
      }
      /** @type {any} */
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        this.reportError('bad_message', 'The server sent a message that is not JSON.', false);
        return;
      }
      this.handle(msg);
    };
    socket.onclose = () => this.finish();
    // An error event is always followed by a close event; nothing to do here.
    socket.onerror = () => {};
  }

  /**
   * Sets the track sent for `kind` (null sends nothing). Before `publish()` this only
   * records it; afterwards it replaces the sender's track without renegotiation.
   * @param {TrackKind} kind
   * @param {MediaStreamTrack | null} track
   */
  setLocalTrack(kind, track) {
    return this.publisher.setLocalTrack(kind, track);
  }

  /**
   * Creates the publish connection (microphone and simulcast camera, holding the local
   * tracks or none yet) and sends `publish_offer`.
   * @returns {Promise<void>} settles when the server answered
   */
  publish() {
    if (this.closed) {
      return Promise.resolve();
    }
    const answered = this.publisher.start();
    this.publishPc = this.publisher.pc;
    expose(this);
    return answered;
  }

  /**
   * Changes the camera's simulcast layers to suit a capture quality.
   * @param {Quality} quality
   */
  setCameraQuality(quality) {
    return this.publisher.setQuality(quality);
  }

  /**
   * Sends the shared screen (null: stop). The first share renegotiates the publish
   * connection; later ones do not.
   * @param {MediaStreamTrack | null} track
   */
  setScreenTrack(track) {
    return this.publisher.setScreenTrack(track);
  }

  /**
   * Asks to start or stop presenting. The answer is a `participant_updated` about
   * ourselves (`screen`), or an error `presenter_busy`.
   * @param {boolean} active
   */
  sendScreenShare(active) {
    this.send({ type: 'screen_share', active });
  }

  /**
   * Tells the server how large each video track of the subscribe connection is shown.
   * @param {TrackView[]} tracks
   */
  sendView(tracks) {
    this.lastView = { tracks };
    this.send({ type: 'view', tracks });
  }

  /**
   * Announces camera and microphone state to the others.
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  sendMediaState(camera, microphone) {
    this.send({ type: 'media_state', camera, microphone });
  }

  /**
   * Sends a chat message to the room, or privately to the participants in `to`.
   * @param {string} text
   * @param {number[]} [to]
   */
  sendChat(text, to) {
    this.send(to && to.length ? { type: 'chat', text, to } : { type: 'chat', text });
  }

  /** Leaves the room: sends `leave`, then closes everything. */
  leave() {
    if (this.closed) {
      return;
    }
    this.send({ type: 'leave' });
    this.close();
  }

  /** Closes the socket and both peer connections without a `leave` message. */
  close() {
    this.byUser = true;
    // Queued messages (such as `leave`) are still sent before the close frame.
    this.socket?.close(1000);
    this.finish();
  }

  /**
   * Sends one message if the socket is open.
   * @param {object} msg
   */
  send(msg) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(msg));
    }
  }

  /**
   * Dispatches one server message.
   * @param {any} msg
   */
  handle(msg) {
    switch (msg?.type) {
      case 'joined':
        this.you = msg.you;
        this.token = typeof msg.token === 'string' ? msg.token : null;
        this.joined = true;
        this.onJoined(msg.you, msg.room, msg.participants ?? []);
        break;
      case 'participant_joined':
        this.onParticipantJoined(msg.participant);
        break;
      case 'participant_updated':
        this.onParticipantUpdated(msg.participant);
        break;
      case 'participant_left':
        this.onParticipantLeft(msg.id, msg.reason);
        break;
      case 'publish_answer':
        this.publisher.applyAnswer(msg.sdp);
        break;
      case 'subscribe_offer': {
        const { sdp, tracks } = msg;
        const newConnection = msg.new_connection === true;
        this.subscribeQueue = this.subscribeQueue
          .then(() => this.answerSubscribeOffer(sdp, tracks ?? [], newConnection))
          .catch((err) => {
            this.reportError('bad_sdp', `Could not use the server's media offer: ${describe(err)}`, false);
            // An empty answer tells the server this offer failed; it then offers again on
            // a new connection (a few times at most), instead of waiting for an answer.
            this.send({ type: 'subscribe_answer', sdp: '' });
          });
        break;
      }
      case 'chat_history':
        this.onChatHistory(msg.messages ?? []);
        break;
      case 'chat':
        this.onChat(msg.message);
        break;
      case 'active_speaker':
        this.onActiveSpeaker(typeof msg.id === 'number' ? msg.id : null);
        break;
      case 'video_state':
        this.onVideoState(String(msg.mid), msg.participant, msg.layer ?? null, msg.paused ?? null);
        break;
      case 'error':
        if (msg.fatal) {
          this.fatalError = { code: msg.code, message: msg.message, fatal: true };
        }
        this.onError({ code: String(msg.code), message: String(msg.message), fatal: Boolean(msg.fatal) });
        break;
      default:
        // A newer server may send more; the protocol version guards anything essential.
        console.debug('lanmeet: ignoring unknown message', msg?.type);
    }
  }

  /**
   * Applies one subscribe offer and sends the answer.
   * @param {string} sdp
   * @param {TrackInfo[]} tracks
   * @param {boolean} [newConnection] The offer is for a new subscribe connection: the
   *   current one is closed first (its tracks end; `onTrack` reports the new ones).
   */
  async answerSubscribeOffer(sdp, tracks, newConnection = false) {
    if (this.closed) {
      return;
    }
    if (newConnection && this.subscribePc) {
      this.subscribePc.onconnectionstatechange = null;
      this.subscribePc.close();
      this.subscribePc = null;
      this.reported.clear();
    }
    this.tracks = tracks;
    const pc = this.subscribePc ?? this.createSubscribePc();
    await pc.setRemoteDescription({ type: 'offer', sdp: uniqueMsids(sdp) });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
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

  createSubscribePc() {
    const pc = new RTCPeerConnection(PC_CONFIG);
    this.subscribePc = pc;
    expose(this);
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      if (mid !== null) {
        this.reportTrack(mid, event.track, event.streams[0]?.id);
      }
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' && !this.closed) {
        this.reportError('media_failed', 'The connection for the others\u2019 video failed.', false);
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

  /**
   * @param {string} code
   * @param {string} message
   * @param {boolean} fatal
   */
  reportError(code, message, fatal) {
    this.onError({ code, message, fatal });
  }

  /** Tears everything down once and calls `onClose`. */
  finish() {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.publisher.close();
    this.subscribePc?.close();
    if (this.socket && this.socket.readyState !== WebSocket.CLOSED) {
      this.socket.close(1000);
    }
    this.onClose({ byUser: this.byUser, wasJoined: this.joined, error: this.fatalError });
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
