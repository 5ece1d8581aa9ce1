// @ts-check
/**
 * Roles and moderation in the meeting (docs/PROTOCOL.md, "Roles and moderation"): the
 * Raise hand button, the People panel (everyone sees who the moderators are and whose
 * hands are up, in order; moderators get each person's actions, the room-wide ones and
 * the lobby with Admit / Deny), "muted by" notices, and the waiting message of a joiner
 * in a locked room's lobby. The server enforces every rule; this only asks.
 *
 * The Connection hands it the messages it does not handle itself (`onOther`); it sends
 * through `conn.send`. No strings outside `t()`.
 */

import { t } from './i18n.js';

/** @typedef {import('./protocol.js').Connection} Connection */
/** @typedef {import('./roster.js').Participant} Participant */
/** @typedef {{id: number, name: string}} ParticipantRef */
/** @typedef {'microphone' | 'camera' | 'screen'} Source */

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * @param {string} text
 * @param {string} action data-action, for tests and styling
 * @param {() => void} onClick
 */
function button(text, action, onClick) {
  const b = /** @type {HTMLButtonElement} */ (el('button', 'secondary small', text));
  b.type = 'button';
  b.dataset.action = action;
  b.addEventListener('click', onClick);
  return b;
}

/** The waiting message on the join screen while in a locked room's lobby. */
export class LobbyWait {
  constructor() {
    this.node = el('p', 'lobby-wait');
    this.node.setAttribute('role', 'status');
    this.node.hidden = true;
    document.getElementById('join-form')?.append(this.node);
  }

  show() {
    this.node.textContent = t('moderation.waiting');
    this.node.hidden = false;
  }

  hide() {
    this.node.hidden = true;
  }
}

export class Moderation {
  /**
   * @param {Connection} conn
   * @param {{showNotice: (text: string) => void}} view
   */
  constructor(conn, view) {
    this.conn = conn;
    this.view = view;
    /** Our role, as the server last said. */
    this.role = conn.role ?? 'participant';
    /** Our raised hand, if up. @type {number | null} */
    this.hand = null;
    this.locked = Boolean(conn.locked);
    /** Who waits in the lobby (moderators only). @type {ParticipantRef[]} */
    this.waiting = [];
    /** A moderator switched one of our sources off: the page follows. @type {(source: Source) => void} */
    this.onForcedOff = () => {};
    /** We became a viewer (`false`) or may publish again. @type {(mayPublish: boolean) => void} */
    this.onMayPublish = () => {};

    this.handButton = /** @type {HTMLButtonElement} */ (el('button', 'hand-toggle', t('moderation.raise_hand')));
    this.handButton.type = 'button';
    this.handButton.id = 'raise-hand';
    this.handButton.setAttribute('aria-pressed', 'false');
    this.handButton.addEventListener('click', () => this.conn.send({ type: 'raise_hand', raised: this.hand === null }));
    this.peopleButton = /** @type {HTMLButtonElement} */ (el('button', 'people-toggle', t('moderation.people')));
    this.peopleButton.type = 'button';
    this.peopleButton.setAttribute('aria-expanded', 'false');
    this.peopleButton.setAttribute('aria-controls', 'moderation');
    this.lobbyBadge = el('span', 'badge');
    this.lobbyBadge.hidden = true;
    this.peopleButton.append(this.lobbyBadge);
    this.peopleButton.addEventListener('click', () => this.togglePanel());
    const leave = document.getElementById('leave');
    leave?.before(this.handButton, this.peopleButton);

    this.panel = el('aside', 'moderation-panel');
    this.panel.id = 'moderation';
    this.panel.setAttribute('aria-label', t('moderation.people'));
    this.panel.hidden = true;
    document.getElementById('meeting-view')?.append(this.panel);

    this.unsubscribe = conn.roster.subscribe((change) => {
      if (change.kind === 'self') this.selfChanged(change.participant);
      this.render();
    });
    // Tiles come and go with the layout (pages, speaker view): decorate each new one.
    this.tileObserver = new MutationObserver(() => this.decorateTiles());
    const meeting = document.getElementById('meeting-view');
    if (meeting) this.tileObserver.observe(meeting, { childList: true, subtree: true });
    this.render();
  }

  /** Removes what it added to the page. */
  dispose() {
    this.unsubscribe();
    this.tileObserver.disconnect();
    for (const node of document.querySelectorAll('.tile-menu, .tile-role')) node.remove();
    this.handButton.remove();
    this.peopleButton.remove();
    this.panel.remove();
  }

  togglePanel() {
    this.panel.hidden = !this.panel.hidden;
    this.peopleButton.setAttribute('aria-expanded', String(!this.panel.hidden));
    this.render();
  }

  get isModerator() {
    return this.role === 'moderator';
  }

  /**
   * The server's word on ourselves.
   * @param {Participant} p
   */
  selfChanged(p) {
    const role = p.role ?? 'participant';
    if (role !== this.role) {
      const wasViewer = this.role === 'viewer';
      this.role = role;
      this.view.showNotice(t(`moderation.you_are_${role}`));
      if (role === 'viewer') this.onMayPublish(false);
      else if (wasViewer) this.onMayPublish(true);
    }
    this.hand = p.hand ?? null;
  }

  /**
   * A message the Connection does not handle itself.
   * @param {any} msg
   * @returns {boolean} whether it was one of ours
   */
  handle(msg) {
    switch (msg?.type) {
      case 'lobby':
        this.waiting = Array.isArray(msg.waiting) ? msg.waiting : [];
        if (this.waiting.length > 0 && this.isModerator) {
          this.view.showNotice(t('moderation.lobby_notice', { count: this.waiting.length }));
        }
        this.render();
        return true;
      case 'moderated':
        this.moderated(msg.by?.name ?? '', msg.action ?? {});
        return true;
      case 'room_state':
        this.locked = Boolean(msg.locked);
        this.render();
        return true;
      default:
        return false;
    }
  }

  /**
   * @param {string} by
   * @param {any} action
   */
  moderated(by, action) {
    if (action.do === 'mute') {
      const source = /** @type {Source} */ (action.source);
      const key = action.block ? 'moderation.muted_blocked_by' : 'moderation.muted_by';
      this.view.showNotice(t(key, { name: by, source: t(`moderation.source_${source}`) }));
      this.onForcedOff(source);
    } else if (action.do === 'allow') {
      this.view.showNotice(t('moderation.allowed_by', { name: by, source: t(`moderation.source_${action.source}`) }));
    } else if (action.do === 'lower_hand') {
      this.view.showNotice(t('moderation.hand_lowered_by', { name: by }));
    }
  }

  /**
   * @param {number} target
   * @param {object} action
   */
  moderate(target, action) {
    this.conn.send({ type: 'moderate', target, action });
  }

  /** @param {'mute_all' | 'lock' | 'unlock' | 'end'} action */
  control(action) {
    this.conn.send({ type: 'room_control', action });
  }

  /**
   * @param {number[]} ids
   * @param {boolean} admit
   */
  admit(ids, admit) {
    this.conn.send({ type: 'admit', ids, admit });
  }

  /**
   * Each remote tile shows a moderator's badge, and for a moderator a menu with that
   * person's actions (the same as in the People panel). Rebuilt only when what it
   * shows changes, since the tile observer sees our own edits too.
   */
  decorateTiles() {
    const { roster } = this.conn;
    for (const tile of document.querySelectorAll('.tile[data-participant-id]')) {
      const node = /** @type {HTMLElement} */ (tile);
      const p = roster.participants.get(Number(node.dataset.participantId));
      if (!p) continue;
      const role = p.role ?? 'participant';
      const key = [role, this.isModerator, p.camera, p.microphone, p.screen, p.name].join('|');
      if (node.dataset.moderation === key) continue;
      node.dataset.moderation = key;
      node.querySelector('.tile-role')?.remove();
      node.querySelector('.tile-menu')?.remove();
      if (role === 'moderator') {
        node.querySelector('.caption')?.append(el('span', 'tile-role role-badge role-moderator', t('moderation.role_moderator')));
      }
      if (this.isModerator) {
        const menu = el('details', 'tile-menu');
        const summary = el('summary', 'tile-menu-button', '\u22ee');
        summary.setAttribute('aria-label', t('moderation.menu_for', { name: p.name }));
        summary.title = t('moderation.menu_for', { name: p.name });
        const box = this.actions(p, role);
        // An action closes the menu.
        box.addEventListener('click', () => menu.removeAttribute('open'));
        menu.append(summary, box);
        node.append(menu);
      }
    }
  }

  render() {
    this.decorateTiles();
    this.handButton.setAttribute('aria-pressed', String(this.hand !== null));
    this.handButton.textContent = this.hand === null ? t('moderation.raise_hand') : t('moderation.lower_hand');
    const waiting = this.isModerator ? this.waiting.length : 0;
    this.lobbyBadge.hidden = waiting === 0;
    this.lobbyBadge.textContent = String(waiting);
    if (this.panel.hidden) return;
    const { roster } = this.conn;
    const you = roster.you;
    /** @type {Participant[]} */
    const everyone = [...roster.participants.values()];
    this.panel.replaceChildren();
    this.panel.append(el('h2', 'moderation-title', t('moderation.people')));

    if (this.isModerator && this.waiting.length > 0) {
      const lobby = el('section', 'moderation-lobby');
      lobby.setAttribute('aria-label', t('moderation.lobby'));
      lobby.append(el('h3', undefined, t('moderation.lobby')));
      const list = el('ul', 'moderation-list');
      for (const w of this.waiting) {
        const item = el('li', 'moderation-person');
        item.dataset.id = String(w.id);
        item.append(el('span', 'person-name', w.name));
        item.append(button(t('moderation.admit'), 'admit', () => this.admit([w.id], true)));
        item.append(button(t('moderation.deny'), 'deny', () => this.admit([w.id], false)));
        list.append(item);
      }
      lobby.append(list);
      lobby.append(button(t('moderation.admit_all'), 'admit-all', () => this.admit([], true)));
      lobby.append(button(t('moderation.deny_all'), 'deny-all', () => this.admit([], false)));
      this.panel.append(lobby);
    }

    const hands = everyone.filter((p) => p.hand != null).sort((a, b) => Number(a.hand) - Number(b.hand));
    if (hands.length > 0) {
      const section = el('section', 'moderation-hands');
      section.setAttribute('aria-label', t('moderation.hands'));
      section.append(el('h3', undefined, t('moderation.hands')));
      const list = el('ol', 'moderation-list');
      for (const p of hands) {
        const item = el('li', 'moderation-person');
        item.dataset.id = String(p.id);
        item.append(el('span', 'person-name', p.name));
        if (this.isModerator) {
          item.append(button(t('moderation.lower_their_hand'), 'lower-hand', () => this.moderate(p.id, { do: 'lower_hand' })));
        }
        list.append(item);
      }
      section.append(list);
      this.panel.append(section);
    }

    const people = el('ul', 'moderation-list moderation-people');
    people.setAttribute('aria-label', t('moderation.participants'));
    const self = el('li', 'moderation-person');
    self.append(el('span', 'person-name', t('moderation.you')));
    self.append(el('span', `role-badge role-${this.role}`, t(`moderation.role_${this.role}`)));
    people.append(self);
    for (const p of everyone) {
      const role = p.role ?? 'participant';
      const item = el('li', 'moderation-person');
      item.dataset.id = String(p.id);
      item.append(el('span', 'person-name', p.name));
      item.append(el('span', `role-badge role-${role}`, t(`moderation.role_${role}`)));
      if (p.hand != null) item.append(el('span', 'hand-badge', t('moderation.hand_up')));
      if (this.isModerator) item.append(this.actions(p, role));
      people.append(item);
    }
    this.panel.append(people);
    if (you !== null && this.isModerator) {
      const room = el('section', 'moderation-room');
      room.setAttribute('aria-label', t('moderation.room_actions'));
      room.append(button(t('moderation.mute_all'), 'mute-all', () => this.control('mute_all')));
      room.append(this.locked
        ? button(t('moderation.unlock'), 'unlock', () => this.control('unlock'))
        : button(t('moderation.lock'), 'lock', () => this.control('lock')));
      room.append(button(t('moderation.end'), 'end', () => {
        if (window.confirm(t('moderation.end_confirm'))) this.control('end');
      }));
      this.panel.append(room);
    }
  }

  /**
   * A moderator's actions on one participant.
   * @param {Participant} p
   * @param {string} role
   */
  actions(p, role) {
    const box = el('div', 'moderation-actions');
    /** @param {Source} source @param {boolean} block */
    const mute = (source, block) => () => this.moderate(p.id, { do: 'mute', source, block });
    if (p.microphone) box.append(button(t('moderation.mute_microphone'), 'mute-microphone', mute('microphone', false)));
    if (p.camera) box.append(button(t('moderation.stop_camera'), 'stop-camera', mute('camera', false)));
    if (p.screen) box.append(button(t('moderation.stop_screen'), 'stop-screen', mute('screen', false)));
    box.append(button(t('moderation.block_microphone'), 'block-microphone', mute('microphone', true)));
    box.append(button(t('moderation.block_camera'), 'block-camera', mute('camera', true)));
    box.append(button(t('moderation.allow_all'), 'allow', () => {
      for (const source of ['microphone', 'camera', 'screen']) this.moderate(p.id, { do: 'allow', source });
    }));
    for (const r of ['moderator', 'participant', 'viewer']) {
      if (r !== role) {
        box.append(button(t(`moderation.make_${r}`), `make-${r}`, () => this.moderate(p.id, { do: 'set_role', role: r })));
      }
    }
    box.append(button(t('moderation.remove'), 'remove', () => this.moderate(p.id, { do: 'remove' })));
    box.append(button(t('moderation.remove_ban'), 'ban', () => this.moderate(p.id, { do: 'remove', ban: true })));
    return box;
  }
}
