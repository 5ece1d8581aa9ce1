// @ts-check
/**
 * The page: the join form and the meeting (tile grid, controls, notices).
 *
 * Views only render and report clicks through callbacks; app.js decides what happens.
 * All user-provided text goes through `textContent`.
 */

/** @typedef {import('./protocol.js').Participant} Participant */
/** @typedef {import('./protocol.js').TrackKind} TrackKind */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Icon outlines (24×24, stroked). */
const ICONS = {
  microphone: 'M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3',
  slash: 'M3 3l18 18',
};

/**
 * An SVG icon, hidden from assistive technology (the control carries the name).
 * @param {(keyof typeof ICONS)[]} names
 */
export function icon(...names) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon ${names.map((n) => `icon-${n}`).join(' ')}`);
  for (const name of names) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ICONS[name]);
    path.setAttribute('class', `path-${name}`);
    svg.append(path);
  }
  return svg;
}

/**
 * Creates an element with a class and optional text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * Finds a required element of the page.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id);
  if (!(node instanceof type)) {
    throw new Error(`index.html lacks #${id}`);
  }
  return node;
}

/**
 * Up to two initials of a name, for the camera-off placeholder.
 * @param {string} name
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0] ?? '').join('').toUpperCase() || '?';
}

/**
 * A stable hue for a name, so each avatar keeps its colour.
 * @param {string} name
 */
function hueOf(name) {
  let h = 0;
  for (const c of name) {
    h = (h * 31 + (c.codePointAt(0) ?? 0)) % 360;
  }
  return h;
}

export class JoinView {
  constructor() {
    this.root = byId('join-view', HTMLElement);
    this.form = byId('join-form', HTMLFormElement);
    this.nameInput = byId('join-name', HTMLInputElement);
    this.roomInput = byId('join-room', HTMLInputElement);
    this.error = byId('join-error', HTMLElement);
    this.button = byId('join-button', HTMLButtonElement);
    /** The user asked to join. @type {(name: string, room: string) => void} */
    this.onSubmit = () => {};
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.onSubmit(this.nameInput.value, this.roomInput.value);
    });
  }

  /**
   * Shows the form, prefilled.
   * @param {{name?: string, room?: string}} values
   */
  show({ name, room }) {
    if (name !== undefined) {
      this.nameInput.value = name;
    }
    if (room !== undefined) {
      this.roomInput.value = room;
    }
    this.setBusy(false);
    this.root.hidden = false;
    document.title = 'lanmeet';
    (this.nameInput.value && this.roomInput.value ? this.button : this.nameInput.value ? this.roomInput : this.nameInput).focus();
  }

  hide() {
    this.root.hidden = true;
  }

  /** @param {boolean} busy */
  setBusy(busy) {
    this.button.disabled = busy;
    this.button.textContent = busy ? 'Joining\u2026' : 'Join';
  }

  /**
   * Shows an error; `field` gets focus and is marked invalid.
   * @param {string} message
   * @param {'name' | 'room' | null} [field]
   */
  showError(message, field = null) {
    this.error.textContent = message;
    this.error.hidden = false;
    for (const input of [this.nameInput, this.roomInput]) {
      input.removeAttribute('aria-invalid');
    }
    const input = field === 'name' ? this.nameInput : field === 'room' ? this.roomInput : null;
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.select();
    }
  }

  clearError() {
    this.error.textContent = '';
    this.error.hidden = true;
    this.nameInput.removeAttribute('aria-invalid');
    this.roomInput.removeAttribute('aria-invalid');
  }
}

/**
 * One tile of the grid: video, camera-off placeholder, name and muted mark.
 */
class Tile {
  /**
   * @param {string} name
   * @param {boolean} self
   */
  constructor(name, self) {
    this.root = el('div', self ? 'tile self' : 'tile');
    this.video = el('video');
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.muted = true;
    this.video.setAttribute('playsinline', '');
    this.video.setAttribute('muted', '');
    this.video.addEventListener('loadeddata', () => this.root.classList.remove('waiting'));

    this.avatar = el('div', 'avatar');
    this.placeholderName = el('div', 'placeholder-name');
    const placeholder = el('div', 'placeholder');
    placeholder.append(this.avatar, this.placeholderName);

    this.nameLabel = el('span', 'name');
    this.mutedMark = el('span', 'muted-mark');
    this.mutedMark.setAttribute('role', 'img');
    this.mutedMark.setAttribute('aria-label', 'muted');
    this.mutedMark.title = 'Microphone off';
    this.mutedMark.append(icon('microphone', 'slash'));
    this.mutedMark.hidden = true;
    const caption = el('div', 'caption');
    caption.append(this.mutedMark, this.nameLabel);

    this.root.append(this.video, placeholder, caption);
    this.root.classList.add('waiting');
    this.setName(name, self);
  }

  /**
   * @param {string} name
   * @param {boolean} self
   */
  setName(name, self) {
    this.nameLabel.textContent = self ? `${name} (you)` : name;
    this.placeholderName.textContent = name;
    this.avatar.textContent = initials(name);
    this.avatar.style.setProperty('--hue', String(hueOf(name)));
  }

  /**
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  setState(camera, microphone) {
    this.root.classList.toggle('camera-off', !camera);
    this.mutedMark.hidden = microphone;
  }

  /** @param {MediaStream | null} stream */
  setVideo(stream) {
    if (this.video.srcObject !== stream) {
      this.root.classList.add('waiting');
      this.video.srcObject = stream;
    }
    if (stream) {
      // Autoplay of muted video is always allowed; a rejection here is only an interruption.
      this.video.play().catch(() => {});
    }
  }
}

/** A remote participant's tile, with a separate element for their sound. */
class RemoteTile extends Tile {
  /** @param {Participant} participant */
  constructor(participant) {
    super(participant.name, false);
    this.root.dataset.participantId = String(participant.id);
    // Sound plays through its own element so it keeps playing when the video is off.
    this.audio = el('audio');
    this.audio.autoplay = true;
    this.audio.hidden = true;
    this.root.append(this.audio);
    this.setState(participant.camera, participant.microphone);
  }
}

export class MeetingView {
  constructor() {
    this.root = byId('meeting-view', HTMLElement);
    this.roomName = byId('room-name', HTMLElement);
    this.grid = byId('grid', HTMLElement);
    this.notices = byId('notices', HTMLElement);
    this.copyButton = byId('copy-link', HTMLButtonElement);
    this.copyStatus = byId('copy-status', HTMLElement);
    this.cameraButton = byId('camera-toggle', HTMLButtonElement);
    this.micButton = byId('mic-toggle', HTMLButtonElement);
    this.leaveButton = byId('leave', HTMLButtonElement);
    this.lost = byId('lost', HTMLElement);
    this.lostMessage = byId('lost-message', HTMLElement);
    this.rejoinButton = byId('rejoin', HTMLButtonElement);

    /** @type {Tile | null} */
    this.selfTile = null;
    /** @type {Map<number, RemoteTile>} */
    this.tiles = new Map();
    /**
     * Tracks that arrived before their participant's tile (the subscribe connection and
     * the signaling messages race); attached when the tile appears.
     * @type {Map<number, Map<TrackKind, MediaStreamTrack>>}
     */
    this.pendingTracks = new Map();

    /** @type {() => void} */
    this.onCamera = () => {};
    /** @type {() => void} */
    this.onMicrophone = () => {};
    /** @type {() => void} */
    this.onLeave = () => {};
    /** @type {() => void} */
    this.onRejoin = () => {};
    /** @type {() => void} */
    this.onCopyLink = () => {};

    this.cameraButton.addEventListener('click', () => this.onCamera());
    this.micButton.addEventListener('click', () => this.onMicrophone());
    this.leaveButton.addEventListener('click', () => this.onLeave());
    this.rejoinButton.addEventListener('click', () => this.onRejoin());
    this.copyButton.addEventListener('click', () => this.onCopyLink());

    new ResizeObserver(() => this.layout()).observe(this.grid);
  }

  /**
   * Shows an empty meeting with the own tile.
   * @param {string} room
   * @param {string} name
   */
  show(room, name) {
    this.clear();
    this.roomName.textContent = room;
    document.title = `${room} \u2013 lanmeet`;
    this.selfTile = new Tile(name, true);
    this.selfTile.root.dataset.self = '';
    this.selfTile.video.classList.add('mirrored');
    this.grid.append(this.selfTile.root);
    this.root.hidden = false;
    this.layout();
  }

  hide() {
    this.clear();
    this.root.hidden = true;
  }

  clear() {
    for (const tile of this.tiles.values()) {
      tile.audio.srcObject = null;
    }
    this.tiles.clear();
    this.pendingTracks.clear();
    this.selfTile = null;
    this.grid.replaceChildren();
    this.notices.replaceChildren();
    this.copyStatus.textContent = '';
    this.lost.hidden = true;
  }

  /**
   * Updates the own tile and the control buttons.
   * @param {MediaStream} preview
   * @param {boolean} camera
   * @param {boolean} microphone
   */
  setSelf(preview, camera, microphone) {
    if (this.selfTile) {
      this.selfTile.setState(camera, microphone);
      this.selfTile.setVideo(camera ? preview : null);
    }
    setToggle(this.cameraButton, camera);
    setToggle(this.micButton, microphone);
  }

  /** @param {boolean} busy */
  setTogglesBusy(busy) {
    this.cameraButton.disabled = busy;
    this.micButton.disabled = busy;
  }

  /**
   * Adds a tile for a participant, or updates theirs.
   * @param {Participant} participant
   */
  upsertParticipant(participant) {
    const tile = this.tiles.get(participant.id);
    if (tile) {
      tile.setName(participant.name, false);
      tile.setState(participant.camera, participant.microphone);
      return;
    }
    const created = new RemoteTile(participant);
    this.tiles.set(participant.id, created);
    this.grid.append(created.root);
    this.layout();
    const pending = this.pendingTracks.get(participant.id);
    this.pendingTracks.delete(participant.id);
    for (const [kind, track] of pending ?? []) {
      this.attachTrack(participant.id, kind, track).catch(() => {});
    }
  }

  /**
   * Highlights the active speaker's tile (the own tile when it is `you`).
   * @param {number | null} id
   * @param {number | null} you
   */
  setActiveSpeaker(id, you) {
    for (const [tileId, tile] of this.tiles) {
      tile.root.classList.toggle('speaking', tileId === id);
    }
    this.selfTile?.root.classList.toggle('speaking', id !== null && id === you);
  }

  /** @param {number} id */
  removeParticipant(id) {
    this.pendingTracks.delete(id);
    const tile = this.tiles.get(id);
    if (!tile) {
      return;
    }
    tile.audio.srcObject = null;
    tile.video.srcObject = null;
    tile.root.remove();
    this.tiles.delete(id);
    this.layout();
  }

  /**
   * Puts a remote track on its participant's tile.
   * @param {number} id
   * @param {TrackKind} kind
   * @param {MediaStreamTrack} track
   * @returns {Promise<void>} rejects if the browser blocked sound from playing
   */
  async attachTrack(id, kind, track) {
    const tile = this.tiles.get(id);
    if (!tile) {
      const pending = this.pendingTracks.get(id) ?? new Map();
      pending.set(kind, track);
      this.pendingTracks.set(id, pending);
      return;
    }
    const stream = new MediaStream([track]);
    if (kind === 'video') {
      tile.setVideo(stream);
    } else {
      tile.audio.srcObject = stream;
      await tile.audio.play();
    }
  }

  /** Tries to start every participant's sound again (after a click). */
  resumeSound() {
    for (const tile of this.tiles.values()) {
      tile.audio.play().catch(() => {});
    }
  }

  /**
   * Shows a notice above the grid.
   * @param {string} text
   * @param {{label: string, action: () => void}} [button] an action offered with it
   */
  showNotice(text, button) {
    const notice = el('div', 'notice');
    notice.append(el('span', 'notice-text', text));
    if (button) {
      const action = el('button', 'notice-action', button.label);
      action.type = 'button';
      action.addEventListener('click', () => {
        notice.remove();
        button.action();
      });
      notice.append(action);
    }
    const dismiss = el('button', 'notice-dismiss', '\u00d7');
    dismiss.type = 'button';
    dismiss.setAttribute('aria-label', 'Dismiss');
    dismiss.addEventListener('click', () => notice.remove());
    notice.append(dismiss);
    this.notices.append(notice);
  }

  /** @param {string} text */
  showCopyStatus(text) {
    this.copyStatus.textContent = text;
    window.setTimeout(() => {
      if (this.copyStatus.textContent === text) {
        this.copyStatus.textContent = '';
      }
    }, 3000);
  }

  /**
   * Shows that the connection is gone, with a Rejoin button.
   * @param {string} message
   */
  showLost(message) {
    this.lostMessage.textContent = message;
    this.lost.hidden = false;
    this.rejoinButton.focus();
  }

  /**
   * Chooses the column count that gives the largest 16:9 tiles fitting the grid area,
   * so two people sit side by side on a desktop and stack on a phone held upright.
   */
  layout() {
    const count = this.grid.children.length;
    if (count === 0) {
      return;
    }
    const style = getComputedStyle(this.grid);
    const gap = parseFloat(style.columnGap) || 0;
    const width = this.grid.clientWidth - (parseFloat(style.paddingLeft) || 0) - (parseFloat(style.paddingRight) || 0);
    const height = this.grid.clientHeight - (parseFloat(style.paddingTop) || 0) - (parseFloat(style.paddingBottom) || 0);
    if (width <= 0 || height <= 0) {
      return;
    }
    let best = { cols: 1, tileWidth: 0 };
    for (let cols = 1; cols <= count; cols++) {
      const rows = Math.ceil(count / cols);
      const byWidth = (width - gap * (cols - 1)) / cols;
      const byHeight = ((height - gap * (rows - 1)) / rows) * (16 / 9);
      const tileWidth = Math.min(byWidth, byHeight);
      if (tileWidth > best.tileWidth) {
        best = { cols, tileWidth };
      }
    }
    this.grid.style.setProperty('--cols', String(best.cols));
    this.grid.style.setProperty('--tile-width', `${Math.floor(best.tileWidth)}px`);
  }
}

/**
 * Shows a toggle button's state: pressed means on.
 * @param {HTMLButtonElement} button
 * @param {boolean} on
 */
function setToggle(button, on) {
  button.setAttribute('aria-pressed', String(on));
  const state = button.querySelector('.state');
  if (state) {
    state.textContent = on ? 'On' : 'Off';
  }
}
