// @ts-check
/**
 * The chat panel: the message log, the people list with its private-recipient picker,
 * the message box ("Message", Enter sends, `/msg <name> <text>` sends privately), file
 * sharing ("Share file" and drag and drop) and the server's chat errors.
 *
 * It renders and keeps chat state only; who is in the room it reads from the connection's
 * roster (roster.js); sending goes through the `onSend` callback, and files through
 * files.js with the participant's bearer token. All user text (names, messages, file
 * names) is set with `textContent`.
 */

import { FileCard, Uploads } from './files.js';
import { byId, el } from './dom.js';
import { formatDateTime, formatList, formatTime, onLanguageChange, t } from './i18n.js';
import { announce } from './announce.js';
import { SMALL_SCREEN } from './layout.js';

/** @typedef {import('./protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('./roster.js').Roster} Roster */
/** @typedef {import('./roster.js').RosterChange} RosterChange */

/**
 * One message in the log.
 * @typedef {object} Entry
 * @property {ChatMessage} message
 * @property {HTMLElement} item
 * @property {FileCard | null} card
 */

/** Server error codes that concern chat; they are shown next to the message box. */
export const CHAT_ERROR_CODES = new Set(['too_large', 'rate_limited', 'unknown_recipient', 'bad_message']);

/** Distance from the bottom (px) within which the log keeps following new messages. */
const FOLLOW_SLACK = 48;

/**
 * Resolves `/msg <name> <text>` against the participants' names, case-insensitively.
 * Names may contain spaces, so the longest name that prefixes the rest wins.
 * @param {string} input Everything the user typed.
 * @param {{id: number, name: string}[]} people Candidates (including oneself).
 * @returns {null | {error: string} | {id: number, name: string, text: string}} null when
 *   the input is not a `/msg` command.
 */
export function parseDirectMessage(input, people) {
  const match = /^\/msg(?:\s+([\s\S]*))?$/i.exec(input.trim());
  if (!match) {
    return null;
  }
  const rest = match[1] ?? '';
  if (!rest) {
    return { error: t('chat.msg_usage') };
  }
  const lower = rest.toLowerCase();
  const found = [...people]
    .sort((a, b) => b.name.length - a.name.length)
    .find((p) => {
      const name = p.name.toLowerCase();
      return lower.startsWith(name) && (lower.length === name.length || /\s/.test(lower[name.length]));
    });
  if (!found) {
    const word = rest.split(/\s+/)[0];
    return { error: t('chat.msg_nobody', { name: word }) };
  }
  const text = rest.slice(found.name.length).trim();
  if (!text) {
    return { error: t('chat.msg_no_text', { name: found.name }) };
  }
  return { id: found.id, name: found.name, text };
}

/**
 * A timestamp as local hours and minutes.
 * @param {number} ts Milliseconds since the Unix epoch.
 */
export function localTime(ts) {
  return formatTime(ts);
}

/** @param {string[]} names */
function listNames(names) {
  return formatList(names);
}

export class ChatPanel {
  constructor() {
    this.panel = byId('chat', HTMLElement);
    this.toggleButton = byId('chat-toggle', HTMLButtonElement);
    this.closeButton = byId('chat-close', HTMLButtonElement);
    this.badge = byId('chat-unread', HTMLElement);
    this.badgeCount = byId('chat-unread-count', HTMLElement);
    this.peopleList = byId('chat-people', HTMLElement);
    this.log = byId('chat-log', HTMLElement);
    /** The entries, a list inside the log (a `role=log` element cannot be the list itself). */
    this.list = byId('chat-entries', HTMLElement);
    this.uploadsBox = byId('chat-uploads', HTMLElement);
    this.error = byId('chat-error', HTMLElement);
    this.toLabel = byId('chat-to', HTMLElement);
    this.everyoneButton = byId('chat-everyone', HTMLButtonElement);
    this.form = byId('chat-form', HTMLFormElement);
    this.input = byId('chat-input', HTMLTextAreaElement);
    this.fileInput = byId('chat-file', HTMLInputElement);

    /** Our id and name; null when not in a room. @type {{id: number, name: string} | null} */
    this.self = null;
    /** Every id we had in this meeting (a rejoin brings a new one), to mark our messages. @type {Set<number>} */
    this.ownIds = new Set();
    /** null while not joined (or reconnecting). @type {string | null} */
    this.token = null;
    /** Who is in the room. @type {Roster | null} */
    this.roster = null;
    /** Stops following the roster. @type {() => void} */
    this.unsubscribe = () => {};
    /** Chosen private recipients. @type {Set<number>} */
    this.chosen = new Set();
    /** @type {Entry[]} */
    this.entries = [];
    this.uploads = new Uploads(this.uploadsBox);
    /** What was last sent, to put back in the box if the server refuses it. */
    this.lastSent = '';
    this.unread = 0;
    this.open = true;
    /** Whether the log keeps showing the newest entry (the user has not scrolled up). */
    this.following = true;

    /**
     * The user sends a message (to the room when `to` is empty); false when it could
     * not go out (the connection is lost).
     * @type {(text: string, to: number[]) => boolean}
     */
    this.onSend = () => false;

    onLanguageChange(() => {
      this.renderPeople();
      this.renderRecipients();
    });
    // Escape closes the chat (a full-screen sheet on a phone) and gives the focus back.
    this.panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.open && !event.isComposing) {
        event.preventDefault();
        this.setOpen(false);
        this.toggleButton.focus();
      }
    });
    this.closeButton.addEventListener('click', () => {
      this.setOpen(false);
      this.toggleButton.focus();
    });
    this.toggleButton.addEventListener('click', () => {
      this.setOpen(!this.open);
      if (this.open) {
        this.input.focus();
      }
    });
    this.log.addEventListener('scroll', () => {
      const log = this.log;
      this.following = log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_SLACK;
    });
    // The log shrinks when an upload row or an error appears below it: stay at the newest.
    new ResizeObserver(() => {
      if (this.following) {
        this.log.scrollTop = this.log.scrollHeight;
      }
    }).observe(this.log);
    this.everyoneButton.addEventListener('click', () => this.clearRecipients());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (event) => {
      // Enter sends; Shift+Enter starts a new line; Enter while composing (IME) does neither.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.input.addEventListener('input', () => this.autosize());
    this.fileInput.addEventListener('change', () => {
      this.share([...(this.fileInput.files ?? [])]);
      this.fileInput.value = '';
    });
    this.panel.addEventListener('dragover', (event) => {
      if (event.dataTransfer?.types.includes('Files')) {
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        this.panel.classList.add('dropping');
      }
    });
    this.panel.addEventListener('dragleave', (event) => {
      if (!(event.relatedTarget instanceof Node) || !this.panel.contains(event.relatedTarget)) {
        this.panel.classList.remove('dropping');
      }
    });
    this.panel.addEventListener('drop', (event) => {
      this.panel.classList.remove('dropping');
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length) {
        event.preventDefault();
        this.share(files);
      }
    });
  }

  /**
   * Starts a fresh chat for a joined room, following its roster.
   * @param {{roster: Roster, name: string, token: string}} session
   */
  start({ roster, name, token }) {
    this.reset();
    this.roster = roster;
    this.unsubscribe = roster.subscribe((change) => this.rosterChanged(change));
    this.joined(name, token);
    // A side panel on wide screens; on a phone it would cover the videos, so it starts closed.
    this.setOpen(!window.matchMedia(SMALL_SCREEN).matches);
  }

  /**
   * Joined, at first or again after the connection was lost: a new id and token.
   * @param {string} name
   * @param {string} token
   */
  joined(name, token) {
    const you = /** @type {Roster} */ (this.roster).you;
    if (you !== null) {
      this.self = { id: you, name };
      this.ownIds.add(you);
    }
    this.token = token;
    this.hideError();
    this.rosterChanged({ kind: 'reset' });
  }

  /** The connection is lost: transfers stop (the token no longer works); the log stays. */
  disconnected() {
    this.token = null;
    this.uploads.clear();
    for (const entry of this.entries) {
      entry.card?.cancel();
    }
  }

  /** Forgets the room. */
  stop() {
    this.disconnected();
    this.unsubscribe();
    this.unsubscribe = () => {};
  }

  reset() {
    this.stop();
    this.self = null;
    this.ownIds.clear();
    this.roster = null;
    this.chosen.clear();
    this.entries = [];
    this.list.replaceChildren();
    this.hideError();
    this.input.value = '';
    this.lastSent = '';
    this.unread = 0;
    this.following = true;
    this.renderUnread();
  }

  /** @param {RosterChange} change */
  rosterChanged(change) {
    if (change.kind === 'self' || change.kind === 'updated') {
      return;
    }
    for (const id of this.chosen) {
      if (!this.roster?.participants.has(id)) {
        this.chosen.delete(id);
      }
    }
    this.renderPeople();
    this.renderRecipients();
  }

  /**
   * The room's history, sent after each join. After a rejoin it replaces the room's
   * messages shown (so none shows twice); private ones, never in the history, stay.
   * @param {ChatMessage[]} messages
   */
  setHistory(messages) {
    const kept = this.entries.filter((e) => e.message.to.length > 0);
    for (const entry of this.entries) {
      if (!kept.includes(entry)) {
        entry.card?.cancel();
      }
    }
    this.entries = [];
    this.list.replaceChildren();
    /** @type {(Entry | ChatMessage)[]} */
    const merged = [...messages, ...kept];
    const ts = (/** @type {Entry | ChatMessage} */ x) => ('item' in x ? x.message.ts : x.ts);
    for (const x of merged.sort((a, b) => ts(a) - ts(b))) {
      if ('item' in x) {
        this.entries.push(x);
        this.list.append(x.item);
      } else {
        this.append(x, false);
      }
    }
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** @param {ChatMessage} message */
  add(message) {
    const own = this.ownIds.has(message.from.id);
    if (own) {
      this.lastSent = '';
    }
    this.append(message, !own);
    // The log is a live region itself while it shows; closed, it is not read out.
    if (!own && !this.open) {
      const from = message.from.name;
      announce(message.file ? t('announce.file', { name: from, file: message.file.name }) : t('announce.message', { name: from, text: message.text }));
    }
  }

  /**
   * Shows an error next to the message box; a refused message goes back into the box.
   * @param {string} message
   */
  showServerError(message) {
    if (this.lastSent && !this.input.value) {
      this.input.value = this.lastSent;
      this.autosize();
    }
    this.lastSent = '';
    this.showError(message);
  }

  /** @param {string} message */
  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    if (!this.open) {
      this.setOpen(true);
    }
  }

  hideError() {
    this.error.textContent = '';
    this.error.hidden = true;
  }

  /** @param {boolean} open */
  setOpen(open) {
    this.open = open;
    this.panel.classList.toggle('closed', !open);
    this.toggleButton.setAttribute('aria-expanded', String(open));
    if (open) {
      this.unread = 0;
      this.renderUnread();
    }
  }

  submit() {
    const raw = this.input.value;
    if (!raw.trim() || !this.self) {
      return;
    }
    const direct = parseDirectMessage(raw, [...this.everyone()]);
    let text = raw;
    let to = [...this.chosen];
    if (direct) {
      if ('error' in direct) {
        this.showError(direct.error);
        return;
      }
      if (direct.id === this.self.id) {
        this.showError(t('chat.msg_self'));
        return;
      }
      text = direct.text;
      to = [direct.id];
    }
    if (!this.onSend(text, to)) {
      this.showError(t('chat.not_connected'));
      return;
    }
    this.hideError();
    this.lastSent = raw;
    this.input.value = '';
    this.autosize();
  }

  /**
   * Shares files with the chosen recipients, or the room.
   * @param {File[]} files
   */
  share(files) {
    if (!this.token) {
      this.showError(t('chat.join_to_share'));
      return;
    }
    this.hideError();
    const to = [...this.chosen];
    const label = to.length ? listNames(to.map((id) => this.nameOf(id))) : t('chat.everyone_lower');
    for (const file of files) {
      this.uploads.start(file, this.token, to, label);
    }
  }

  /** Everyone who can be named in `/msg`, oneself included (to explain that mistake). */
  *everyone() {
    if (this.self) {
      yield this.self;
    }
    for (const { id, name } of this.roster?.participants.values() ?? []) {
      yield { id, name };
    }
  }

  /** @param {number} id */
  nameOf(id) {
    return this.roster?.get(id)?.name ?? `#${id}`;
  }

  clearRecipients() {
    this.chosen.clear();
    this.renderPeople();
    this.renderRecipients();
    this.input.focus();
  }

  renderPeople() {
    const sorted = [...(this.roster?.participants.values() ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    const items = sorted.map(({ id, name }) => {
      const item = el('li', 'person');
      const label = el('label', 'person-label');
      const box = el('input');
      box.type = 'checkbox';
      box.checked = this.chosen.has(id);
      box.dataset.participantId = String(id);
      box.addEventListener('change', () => {
        if (box.checked) {
          this.chosen.add(id);
        } else {
          this.chosen.delete(id);
        }
        this.renderRecipients();
      });
      label.append(box, el('span', 'person-name', name));
      item.append(label);
      return item;
    });
    if (!items.length) {
      items.push(el('li', 'people-empty', t('chat.nobody_else')));
    }
    this.peopleList.replaceChildren(...items);
  }

  renderRecipients() {
    const names = [...this.chosen].map((id) => this.nameOf(id));
    const isPrivate = names.length > 0;
    this.toLabel.textContent = isPrivate ? t('chat.to_private', { names: listNames(names) }) : t('chat.to_everyone');
    this.toLabel.classList.toggle('private', isPrivate);
    this.everyoneButton.hidden = !isPrivate;
    this.form.classList.toggle('private', isPrivate);
    this.input.placeholder = isPrivate ? t('chat.placeholder_private', { names: listNames(names) }) : t('chat.placeholder');
  }

  renderUnread() {
    this.badge.hidden = this.unread === 0;
    this.badgeCount.textContent = String(this.unread);
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  /**
   * Adds one entry to the log.
   * @param {ChatMessage} message
   * @param {boolean} countUnread
   */
  append(message, countUnread) {
    const log = this.log;
    const own = this.ownIds.has(message.from.id);
    const entry = this.entry(message, own);
    this.entries.push(entry);
    this.list.append(entry.item);
    if (this.following || own) {
      log.scrollTop = log.scrollHeight;
      this.following = true;
    }
    if (countUnread && !this.open) {
      this.unread++;
      this.renderUnread();
    }
  }

  /**
   * Renders a message or file entry.
   * @param {ChatMessage} message
   * @param {boolean} own
   * @returns {Entry}
   */
  entry(message, own) {
    const item = el('li', 'entry');
    item.classList.toggle('own', own);
    // A moderation notice: the server's sentence, set apart (style.css, Moderation).
    item.classList.toggle('notice', Boolean(message.notice));
    item.dataset.from = String(message.from.id);
    const meta = el('div', 'entry-meta');
    meta.append(el('span', 'entry-from', message.from.name));
    const time = el('time', 'entry-time', localTime(message.ts));
    time.dateTime = new Date(message.ts).toISOString();
    time.title = formatDateTime(message.ts);
    meta.append(time);
    if (message.to.length) {
      item.classList.add('private');
      item.dataset.private = '';
      meta.append(el('span', 'entry-private', this.privateLabel(message, own)));
    }
    item.append(meta);
    if (message.text) {
      item.append(el('div', 'entry-text', message.text));
    }
    /** @type {FileCard | null} */
    let card = null;
    if (message.file) {
      item.classList.add('file');
      card = new FileCard(message.file, () => this.token);
      item.append(card.root);
    }
    return { message, item, card };
  }

  /**
   * "Private to Bob", or for a recipient "Private to you" / "Private to you and Bob".
   * @param {ChatMessage} message
   * @param {boolean} own
   */
  privateLabel(message, own) {
    if (own) {
      return t('chat.private_to', { names: listNames(message.to.map((p) => p.name)) });
    }
    const others = message.to.filter((p) => !this.ownIds.has(p.id)).map((p) => p.name);
    return others.length ? t('chat.private_to_you_and', { names: listNames(others) }) : t('chat.private_to_you');
  }
}
