// @ts-check
/**
 * Who is in the room, as the server last said: our own id and the others. One Roster
 * belongs to the Connection (protocol.js), which alone changes it; the views read it and
 * subscribe to its changes instead of keeping lists of their own. UI-free.
 */

/**
 * A participant as the others see it.
 * @typedef {object} Participant
 * @property {number} id Server-assigned id.
 * @property {string} name Display name, unique within the room.
 * @property {boolean} camera Camera on.
 * @property {boolean} microphone Microphone on.
 * @property {boolean} [screen] Sharing the screen (presenting).
 * @property {'moderator' | 'participant' | 'viewer'} [role] What it may do in the room.
 * @property {number} [hand] Its raised hand's number (hands go up in this order).
 */

/** @typedef {'left' | 'timeout' | 'disconnected' | 'removed'} LeaveReason */

/**
 * One change of the roster:
 * - `reset`: everyone was replaced (a join or rejoin; empty when the connection was lost);
 * - `joined` / `updated`: someone else entered or changed (camera, microphone, screen);
 * - `left`: someone else went;
 * - `self`: the server's word on ourselves (e.g. `screen` granted or ended).
 * @typedef {{kind: 'reset'}
 *   | {kind: 'joined' | 'updated' | 'self', participant: Participant}
 *   | {kind: 'left', participant: Participant, reason: LeaveReason}} RosterChange
 */

export class Roster {
  constructor() {
    /** Our id while joined (the last one while reconnecting). @type {number | null} */
    this.you = null;
    /** Everyone else, in the order they came. @type {Map<number, Participant>} */
    this.participants = new Map();
    /** @type {Set<(change: RosterChange) => void>} */
    this.listeners = new Set();
  }

  /**
   * Calls `listener` after every change.
   * @param {(change: RosterChange) => void} listener
   * @returns {() => void} stops the calls
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @param {number} id */
  get(id) {
    return this.participants.get(id) ?? null;
  }

  /** The name of someone else who is presenting, if any. */
  presenterName() {
    for (const p of this.participants.values()) {
      if (p.screen) {
        return p.name;
      }
    }
    return null;
  }

  /**
   * Replaces everyone (after `joined`; `you` null and no one when the connection is lost).
   * @param {number | null} you
   * @param {Participant[]} participants
   */
  reset(you, participants) {
    if (you !== null) {
      this.you = you;
    }
    this.participants = new Map(participants.filter((p) => p.id !== you).map((p) => [p.id, p]));
    this.emit({ kind: 'reset' });
  }

  /**
   * Someone entered, or changed (the whole new state).
   * @param {Participant} participant
   */
  upsert(participant) {
    if (participant.id === this.you) {
      this.emit({ kind: 'self', participant });
      return;
    }
    const known = this.participants.has(participant.id);
    this.participants.set(participant.id, participant);
    this.emit({ kind: known ? 'updated' : 'joined', participant });
  }

  /**
   * @param {number} id
   * @param {LeaveReason} reason
   */
  remove(id, reason) {
    const participant = this.participants.get(id);
    if (participant) {
      this.participants.delete(id);
      this.emit({ kind: 'left', participant, reason });
    }
  }

  /** @param {RosterChange} change */
  emit(change) {
    for (const listener of [...this.listeners]) {
      listener(change);
    }
  }
}
