// @ts-check
/**
 * The connection to a lanmeet server, free of any UI, as described in docs/PROTOCOL.md.
 * It owns the meeting's state: the signaling WebSocket, the roster (roster.js), the two
 * peer connections of the current session and the liveness of the server.
 *
 * - *publish* (publish.js): this browser offers its microphone, its camera as three
 *   simulcast layers and, while presenting, its screen; the server answers.
 * - *subscribe* (subscribe.js): the server offers the other participants' tracks, this
 *   browser answers.
 * - *liveness* (liveness.js): a `ping` every 2 s; when the server stays silent (it died,
 *   or the Wi-Fi dropped), closes the socket or says `server_closing`, the connection is
 *   *lost*: the session's peer connections close, the roster empties, and the connection
 *   joins again by itself (0.5 s, then doubling up to 3 s between attempts) with the same
 *   name and room, `resume` naming the previous session. Each rejoin is a new session:
 *   new ids, new peer connections, publishing again what was published.
 *
 * A user's `leave()` and a fatal error (a refused join, an unsupported version) end the
 * connection for good; a refused *first* join never retries.
 *
 * Usage:
 * ```js
 * const conn = new Connection({ room: 'lab', name: 'Ada' });
 * conn.onState = (state) => { ... };          // connected, lost, reconnecting, closed
 * conn.roster.subscribe((change) => { ... }); // who is in the room
 * conn.onTrack = (participantId, kind, track, source, mid) => { ... };
 * conn.connect();
 * // once local media is known:
 * conn.setLocalTrack('audio', micTrack);
 * conn.setLocalTrack('video', cameraTrack);
 * await conn.publish();
 * ```
 */

import { PublishConnection } from './publish.js';
import { Roster } from './roster.js';
import { SubscribeConnection } from './subscribe.js';
import { Liveness, TICK_MS, retryDelay } from './liveness.js';
import { t } from './i18n.js';

/** Protocol version sent in `join`. */
export const PROTOCOL_VERSION = 1;

/** WebSocket close code of a server that restarts (RFC 6455 "service restart"). */
export const CLOSE_SERVICE_RESTART = 1012;

/** @typedef {import('./publish.js').TrackSource} TrackSource */
/** @typedef {import('./publish.js').Quality} Quality */
/** @typedef {import('./roster.js').Participant} Participant */
/** @typedef {import('./roster.js').LeaveReason} LeaveReason */
/** @typedef {import('./subscribe.js').TrackKind} TrackKind */
/** @typedef {import('./subscribe.js').TrackInfo} TrackInfo */

/**
 * The displayed size of one video track of the subscribe connection, in device pixels
 * (0×0: not visible).
 * @typedef {object} TrackView
 * @property {string} mid
 * @property {number} width
 * @property {number} height
 */

/** @typedef {'low_bandwidth' | 'not_visible' | 'codec'} PauseReason */

/**
 * An error reported by the server (or by this module, with a code of its own such as
 * `media_failed` or `bad_message`).
 * @typedef {object} ServerError
 * @property {string} code Machine-readable code, e.g. `name_taken`.
 * @property {string} message Text fit to show to the user.
 * @property {boolean} fatal Whether the connection ends because of it.
 */

/**
 * A chat message or shared file (see docs/PROTOCOL.md, `chat`). This module only passes
 * chat through; chat.js renders it.
 * @typedef {object} ChatMessage
 * @property {number} ts Server time, milliseconds since the Unix epoch.
 * @property {{id: number, name: string}} from
 * @property {{id: number, name: string}[]} to Private recipients; empty for the room.
 * @property {string} text
 * @property {{name: string, size: number, mime: string, sha256: string, url: string}} [file]
 * @property {boolean} [notice] A moderation notice written by the server ("Ann removed Bob").
 */

/**
 * Why the connection was lost: the server went silent (`timeout`), closed the socket
 * (`disconnected`), or said it is restarting (`restarting`).
 * @typedef {'timeout' | 'disconnected' | 'restarting'} LossReason
 */

/**
 * The connection's state, as reported to `onState`:
 * - `connecting`: the first attempt to join;
 * - `connected`: joined (`rejoined` after a loss; the roster is fresh);
 * - `lost`: the server is out of reach; attempts to rejoin follow by themselves;
 * - `reconnecting`: attempt `attempt` (from 1) starts in `delayMs`;
 * - `closed`: for good (`byUser`: `leave()` or `close()`; `wasJoined`: the server had
 *   accepted a join; `error`: the fatal error, if one ended it).
 * @typedef {{kind: 'connecting'}
 *   | {kind: 'connected', rejoined: boolean}
 *   | {kind: 'lost', reason: LossReason, message: string}
 *   | {kind: 'reconnecting', attempt: number, delayMs: number}
 *   | {kind: 'closed', byUser: boolean, wasJoined: boolean, error: ServerError | null}} ConnectionState
 */

/**
 * Refusals of `join` that the server does not make fatal, so that the page may ask for
 * a password and join again; before the first join, they end this connection like a
 * fatal error and the pre-join screen asks.
 */
const JOIN_REFUSALS = ['password_required', 'wrong_password', 'rate_limited'];

/**
 * The WebSocket address of the server that served this page.
 * @param {Location} [loc]
 */
export function socketUrlFor(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class Connection {
  /**
   * @param {object} options
   * @param {string} options.room Room to join.
   * @param {string} options.name Display name.
   * @param {string} [options.url] WebSocket URL; defaults to `/ws` on this page's origin.
   * @param {string} [options.password] The room's password, for a room that has one.
   */
  constructor({ room, name, url, password }) {
    this.room = room;
    this.name = name;
    /** The room's password, when it has one. @type {string | undefined} */
    this.password = password;
    this.url = url ?? socketUrlFor();

    /** Who is in the room. */
    this.roster = new Roster();
    /**
     * Bearer token for file upload and download (`Authorization: Bearer <token>`), valid
     * while joined; also what `resume` names when joining again.
     * @type {string | null}
     */
    this.token = null;
    /** @type {ConnectionState} */
    this.state = { kind: 'connecting' };
    /** @type {WebSocket | null} */
    this.socket = null;
    /** The current socket's liveness. @type {Liveness | null} */
    this.liveness = null;
    /** @type {number | null} */
    this.ticker = null;
    /** @type {number | null} */
    this.retryTimer = null;
    /** Failed attempts since the connection was lost. */
    this.attempts = 0;
    this.pings = 0;
    this.everJoined = false;
    /** `publish()` was called: every later session publishes by itself. */
    this.publishing = false;
    /** The last `media_state` sent, sent again after a rejoin. @type {{camera: boolean, microphone: boolean} | null} */
    this.mediaState = null;
    /** The last `view` message sent. @type {{tracks: TrackView[]} | null} */
    this.lastView = null;
    /** @type {ServerError | null} */
    this.fatalError = null;

    this.publisher = new PublishConnection((msg) => this.send(msg));
    this.publisher.onError = (message) => {
      if (this.state.kind === 'connected') {
        this.reportError('media_failed', message, false);
      }
    };
    this.subscriber = this.newSubscriber();

    // Callbacks: assign before connect().

    /** The connection's state changed. @type {(state: ConnectionState) => void} */
    this.onState = () => {};
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
    /**
     * The room's recent chat, right after each join: it replaces what was shown.
     * @type {(messages: ChatMessage[]) => void}
     */
    this.onChatHistory = () => {};
    /** A new chat message or shared file. @type {(message: ChatMessage) => void} */
    this.onChat = () => {};
    /**
     * The room's active speaker changed (null: nobody, e.g. the speaker left).
     * @type {(id: number | null) => void}
     */
    this.onActiveSpeaker = () => {};
    /** A non-fatal error (fatal ones close: see `onState`). @type {(error: ServerError) => void} */
    this.onError = () => {};
    /** The room is locked: we wait in its lobby until a moderator admits us. @type {() => void} */
    this.onWaiting = () => {};
    /** A message this class does not handle (moderation.js takes its own). @type {(msg: any) => void} */
    this.onOther = () => {};
    /** Our role in the room (`joined`; later changes come as roster `self`). */
    this.role = 'participant';
    /** Whether the room was locked when we joined. */
    this.locked = false;
  }

  /** Our id (the last one while reconnecting), or null before joining. */
  get you() {
    return this.roster.you;
  }

  /** Whether the server accepted the join and the connection is up. */
  get joined() {
    return this.state.kind === 'connected';
  }

  /** The current session's publish peer connection (or the last, closed one). */
  get publishPc() {
    return this.publisher.pc;
  }

  /** The current session's subscribe peer connection (or the last, closed one). */
  get subscribePc() {
    return this.subscriber.pc;
  }

  /** Mapping of the latest subscribe offer. */
  get tracks() {
    return this.subscriber.tracks;
  }

  /** Tracks to send (the publisher's). */
  get localTracks() {
    return this.publisher.localTracks;
  }

  /** The publish connection's camera and microphone senders. */
  get senders() {
    return this.publisher.senders;
  }

  /** Opens the socket and sends `join`. */
  connect() {
    this.setState({ kind: 'connecting' });
    this.ticker = window.setInterval(() => this.tick(), TICK_MS);
    this.open();
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
   * tracks or none yet) and sends `publish_offer`. After a rejoin the connection
   * publishes again by itself.
   * @returns {Promise<void>} settles when the server answered
   */
  publish() {
    this.publishing = true;
    if (this.state.kind !== 'connected') {
      return Promise.resolve();
    }
    return this.publisher.start();
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
   * Announces camera and microphone state to the others (again after each rejoin).
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  sendMediaState(camera, microphone) {
    this.mediaState = { camera, microphone };
    this.send({ type: 'media_state', camera, microphone });
  }

  /**
   * Sends a chat message to the room, or privately to the participants in `to`.
   * @param {string} text
   * @param {number[]} [to]
   * @returns {boolean} whether it went out (not while the connection is lost)
   */
  sendChat(text, to) {
    return this.send(to && to.length ? { type: 'chat', text, to } : { type: 'chat', text });
  }

  /** Leaves the room: sends `leave`, then closes everything. */
  leave() {
    if (this.state.kind === 'closed') {
      return;
    }
    this.send({ type: 'leave' });
    this.close();
  }

  /** Closes the socket and both peer connections without a `leave` message. */
  close() {
    this.finish(true);
  }

  /**
   * Sends one message if the socket is open.
   * @param {object} msg
   * @returns {boolean} whether it was sent
   */
  send(msg) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  /** Opens a socket for one attempt at joining. */
  open() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.liveness = new Liveness(performance.now());
    socket.onopen = () => {
      this.liveness?.heard();
      /** @type {Record<string, unknown>} */
      const join = { type: 'join', version: PROTOCOL_VERSION, room: this.room, name: this.name };
      if (this.token) {
        join.resume = this.token;
      }
      if (this.password) {
        join.password = this.password;
      }
      this.send(join);
      this.tick();
    };
    socket.onmessage = (event) => {
      this.liveness?.heard();
      if (typeof event.data !== 'string') {
        return;
      }
      /** @type {any} */
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        this.reportError('bad_message', t('error.not_json'), false);
        return;
      }
      this.handle(msg);
    };
    socket.onclose = (event) => this.socketClosed(event.code);
    // An error event is always followed by a close event; nothing to do here.
    socket.onerror = () => {};
  }

  /** Drops the current socket without hearing from it again. */
  dropSocket() {
    const socket = this.socket;
    this.socket = null;
    this.liveness = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      if (socket.readyState !== WebSocket.CLOSED) {
        socket.close(1000);
      }
    }
  }

  /** Pings, and notices a silent server. */
  tick() {
    const action = this.liveness?.poll(performance.now(), this.socket?.readyState === WebSocket.OPEN);
    if (action === 'ping') {
      this.send({ type: 'ping', id: ++this.pings });
    } else if (action === 'lost') {
      this.lose('timeout', t('banner.connection_lost'));
    }
  }

  /**
   * The current socket closed.
   * @param {number} code
   */
  socketClosed(code) {
    this.dropSocket();
    if (code === CLOSE_SERVICE_RESTART) {
      this.lose('restarting', t('banner.restarting'));
    } else {
      this.lose('disconnected', t('banner.connection_lost'));
    }
  }

  /**
   * The server is out of reach: ends the session and tries again, or, when the first
   * join failed, gives up.
   * @param {LossReason} reason
   * @param {string} message
   */
  lose(reason, message) {
    this.dropSocket();
    if (this.fatalError || !this.everJoined) {
      this.finish(false);
      return;
    }
    if (this.state.kind === 'connected') {
      this.endSession();
      this.setState({ kind: 'lost', reason, message });
    }
    this.retry();
  }

  /** Schedules the next attempt at joining again. */
  retry() {
    const delayMs = retryDelay(this.attempts++);
    this.setState({ kind: 'reconnecting', attempt: this.attempts, delayMs });
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delayMs);
  }

  /** Closes the session's peer connections and forgets its participants. */
  endSession() {
    this.publisher.close();
    this.subscriber.close();
    this.roster.reset(null, []);
  }

  /**
   * Dispatches one server message.
   * @param {any} msg
   */
  handle(msg) {
    switch (msg?.type) {
      case 'joined':
        this.beginSession(msg);
        break;
      case 'pong':
        break;
      case 'server_closing':
        this.lose('restarting', typeof msg.message === 'string' ? msg.message : t('banner.restarting'));
        break;
      case 'participant_joined':
      case 'participant_updated':
        this.roster.upsert(msg.participant);
        break;
      case 'participant_left':
        this.roster.remove(msg.id, msg.reason);
        break;
      case 'publish_answer':
        this.publisher.applyAnswer(msg.sdp);
        break;
      case 'subscribe_offer':
        this.subscriber.offer(msg.sdp, msg.tracks ?? [], msg.new_connection === true);
        break;
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
        this.serverError({ code: String(msg.code), message: String(msg.message), fatal: Boolean(msg.fatal) });
        break;
      case 'waiting':
        this.onWaiting();
        break;
      case 'removed':
        // Removed, banned, denied or the meeting ended: never rejoin by ourselves, and
        // never with this session's token.
        this.token = null;
        this.fatalError = { code: String(msg.reason ?? 'removed'), message: String(msg.message ?? ''), fatal: true };
        this.finish(false);
        break;
      case 'lobby':
      case 'moderated':
      case 'room_state':
        this.onOther(msg);
        break;
      default:
        // A newer server may send more; the protocol version guards anything essential.
        console.debug('lanmeet: ignoring unknown message', msg?.type);
    }
  }

  /**
   * The server accepted the join: a new session begins.
   * @param {any} msg
   */
  beginSession(msg) {
    const rejoined = this.everJoined;
    this.everJoined = true;
    this.attempts = 0;
    this.token = typeof msg.token === 'string' ? msg.token : null;
    this.role = typeof msg.role === 'string' ? msg.role : 'participant';
    this.locked = Boolean(msg.locked);
    if (typeof msg.room === 'string') {
      this.room = msg.room;
    }
    if (rejoined) {
      this.publisher = this.publisher.renewed();
      this.subscriber = this.newSubscriber();
    }
    this.roster.reset(msg.you, msg.participants ?? []);
    this.setState({ kind: 'connected', rejoined });
    if (rejoined && this.publishing) {
      this.publisher.start().catch(() => {});
    }
    if (rejoined && this.mediaState) {
      this.sendMediaState(this.mediaState.camera, this.mediaState.microphone);
    }
  }

  /** @param {ServerError} error */
  serverError(error) {
    if (!error.fatal && !(!this.everJoined && JOIN_REFUSALS.includes(error.code))) {
      this.onError(error);
    } else if (this.everJoined && error.code === 'name_taken') {
      // Rejoining while the server still holds our previous session under this name
      // (the `resume` token did not reach it): it goes in time; try again.
      console.debug('lanmeet: name still taken while rejoining; trying again');
    } else {
      this.fatalError = error;
      this.finish(false);
    }
  }

  newSubscriber() {
    const subscriber = new SubscribeConnection((msg) => this.send(msg));
    subscriber.onTrack = (...args) => this.onTrack(...args);
    subscriber.onSubscribed = (tracks) => this.onSubscribed(tracks);
    subscriber.onError = (code, message) => this.reportError(code, message, false);
    return subscriber;
  }

  /**
   * @param {string} code
   * @param {string} message
   * @param {boolean} fatal
   */
  reportError(code, message, fatal) {
    this.onError({ code, message, fatal });
  }

  /** @param {ConnectionState} state */
  setState(state) {
    this.state = state;
    this.onState(state);
  }

  /**
   * Tears everything down for good, once.
   * @param {boolean} byUser
   */
  finish(byUser) {
    if (this.state.kind === 'closed') {
      return;
    }
    if (this.ticker !== null) {
      window.clearInterval(this.ticker);
      this.ticker = null;
    }
    if (this.retryTimer !== null) {
      window.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    // Queued messages (such as `leave`) are still sent before the close frame.
    this.dropSocket();
    this.publisher.close();
    this.subscriber.close();
    this.setState({ kind: 'closed', byUser, wasJoined: this.everJoined, error: this.fatalError });
  }
}
