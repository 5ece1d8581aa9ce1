// @ts-check
/**
 * The meeting view (tile grid, controls, notices); the join screen is prejoin.js.
 *
 * Views only render and report clicks through callbacks; app.js decides what happens.
 * All user-provided text goes through `textContent`.
 */

/** @typedef {import('./protocol.js').Participant} Participant */
/** @typedef {import('./roster.js').Roster} Roster */
/** @typedef {import('./roster.js').RosterChange} RosterChange */
/** @typedef {import('./protocol.js').TrackKind} TrackKind */

/** @typedef {import('./protocol.js').TrackSource} TrackSource */
/** @typedef {'grid' | 'speaker'} ViewMode */
/** A tile of a person: a participant id, or 'self'. @typedef {number | 'self'} TileKey */

import { byId, el, icon, initials, remember, remembered } from './dom.js';
import { PresentationTile, RemoteTile, Tile } from './tiles.js';
import { StageLayout, replaceIfChanged } from './layout.js';
import { PageOrder, pageSizeFor } from './paging.js';
import { ConnectionBanner } from './banner.js';
import { onLanguageChange, t } from './i18n.js';
import { SPEAKER_ANNOUNCE_MS, Throttled, announce } from './announce.js';

export { byId, el, icon, initials };

/** The remembered view mode. */
const VIEW_MODE_KEY = 'lanmeet.view';

/** Apple keyboards say Cmd where others say Ctrl. */
const APPLE = /Mac|iPhone|iPad/.test(navigator.platform);

/**
 * The keyboard shortcut of a control: Ctrl (Cmd on Apple keyboards) and a letter.
 * @param {string} letter
 * @returns {{label: string, aria: string}} as shown in a tooltip, and for `aria-keyshortcuts`
 */
function shortcut(letter) {
  return APPLE ? { label: `\u2318${letter}`, aria: `Meta+${letter}` } : { label: `Ctrl+${letter}`, aria: `Control+${letter}` };
}

/**
 * A track that arrived before its participant's tile (the subscribe connection and the
 * signaling messages race); attached when the tile appears.
 * @typedef {object} PendingTrack
 * @property {TrackKind} kind
 * @property {MediaStreamTrack} track
 * @property {TrackSource} source
 * @property {string} mid
 */

export class MeetingView {
  constructor() {
    this.root = byId('meeting-view', HTMLElement);
    this.roomName = byId('room-name', HTMLElement);
    this.grid = byId('grid', HTMLElement);
    this.notices = byId('notices', HTMLElement);
    this.copyButton = byId('copy-link', HTMLButtonElement);
    this.cameraButton = byId('camera-toggle', HTMLButtonElement);
    this.micButton = byId('mic-toggle', HTMLButtonElement);
    this.screenButton = byId('screen-toggle', HTMLButtonElement);
    this.settingsButton = byId('settings-open', HTMLButtonElement);
    this.gridViewButton = byId('view-grid', HTMLButtonElement);
    this.speakerViewButton = byId('view-speaker', HTMLButtonElement);
    this.leaveButton = byId('leave', HTMLButtonElement);
    /** Says when the connection is lost and restored. */
    this.banner = new ConnectionBanner();
    this.lost = byId('lost', HTMLElement);
    this.lostMessage = byId('lost-message', HTMLElement);
    this.rejoinButton = byId('rejoin', HTMLButtonElement);
    this.pager = byId('pager', HTMLElement);
    this.previousPageButton = byId('page-previous', HTMLButtonElement);
    this.nextPageButton = byId('page-next', HTMLButtonElement);
    this.pageLabel = byId('page-label', HTMLElement);
    /** Holds the grid view's tiles that are not on the shown page. */
    this.offstage = byId('offstage', HTMLElement);
    this.stage = new StageLayout(this.grid);
    this.stage.onChange = () => this.onLayoutChange();
    this.stage.onGridArea = (area) => this.setPageSize(pageSizeFor(area.width, area.height, area.gap));
    /** The grid view's order and pages. @type {PageOrder<TileKey>} */
    this.pages = new PageOrder();

    /** @type {Tile | null} */
    this.selfTile = null;
    /** @type {Map<number, RemoteTile>} */
    this.tiles = new Map();
    /** Who is in the room: the tiles follow it. @type {Roster | null} */
    this.roster = null;
    /** Stops following the roster. @type {() => void} */
    this.unsubscribe = () => {};
    /** Shared screens by presenter. @type {Map<number, PresentationTile>} */
    this.screens = new Map();
    /** @type {Map<number, PendingTrack[]>} */
    this.pendingTracks = new Map();
    /** @type {ViewMode} */
    this.mode = storedViewMode();
    /** The pinned tile: a participant id, 'self', or none. @type {number | 'self' | null} */
    this.pinned = null;
    /** The latest remote active speaker. @type {number | null} */
    this.speaker = null;

    /** @type {() => void} */
    this.onCamera = () => {};
    /** @type {() => void} */
    this.onMicrophone = () => {};
    /** @type {() => void} */
    this.onScreen = () => {};
    /** @type {() => void} */
    this.onSettings = () => {};
    /** @type {() => void} */
    this.onLeave = () => {};
    /** @type {() => void} */
    this.onRejoin = () => {};
    /** @type {() => void} */
    this.onCopyLink = () => {};
    /** Tiles moved, appeared or changed size. @type {() => void} */
    this.onLayoutChange = () => {};
    /** A video element to watch for size and visibility. @type {(video: HTMLVideoElement) => void} */
    this.onVideoElement = () => {};

    /** The own microphone's state as last shown (null before the first), to announce changes. @type {boolean | null} */
    this.selfMicrophone = null;
    /** Says who speaks, now and then. @type {Throttled<string>} */
    this.speakerAnnouncer = new Throttled(SPEAKER_ANNOUNCE_MS, (name) => announce(t('announce.speaking', { name })));

    this.cameraButton.addEventListener('click', () => this.onCamera());
    this.micButton.addEventListener('click', () => this.onMicrophone());
    this.screenButton.addEventListener('click', () => this.onScreen());
    this.settingsButton.addEventListener('click', () => this.onSettings());
    this.gridViewButton.addEventListener('click', () => this.setMode('grid'));
    this.speakerViewButton.addEventListener('click', () => this.setMode('speaker'));
    this.leaveButton.addEventListener('click', () => this.onLeave());
    this.rejoinButton.addEventListener('click', () => this.onRejoin());
    this.copyButton.addEventListener('click', () => this.onCopyLink());
    this.previousPageButton.addEventListener('click', () => this.goToPage(this.pages.page - 1));
    this.nextPageButton.addEventListener('click', () => this.goToPage(this.pages.page + 1));
    document.addEventListener('keydown', (event) => this.shortcutPressed(event));
    this.labelShortcuts();
    onLanguageChange(() => this.languageChanged());
  }

  /** Shows the camera and microphone shortcuts in the buttons' tooltips. */
  labelShortcuts() {
    for (const [button, letter, key] of /** @type {const} */ ([
      [this.cameraButton, 'E', 'controls.camera_tip'],
      [this.micButton, 'D', 'controls.microphone_tip'],
    ])) {
      const keys = shortcut(letter);
      button.title = t(key, { shortcut: keys.label });
      button.setAttribute('aria-keyshortcuts', keys.aria);
    }
  }

  /**
   * Ctrl/Cmd+E switches the camera, Ctrl/Cmd+D the microphone, while in the meeting.
   * @param {KeyboardEvent} event
   */
  shortcutPressed(event) {
    if (this.root.hidden || !(APPLE ? event.metaKey : event.ctrlKey) || event.altKey || event.shiftKey) {
      return;
    }
    const key = event.key.toLowerCase();
    const button = key === 'e' ? this.cameraButton : key === 'd' ? this.micButton : null;
    if (!button) {
      return;
    }
    // Not the browser's own meaning of the keys (search, bookmark).
    event.preventDefault();
    if (!button.disabled && !event.repeat) {
      button.click();
    }
  }

  /** Renders the text that is not in index.html again, in the new language. */
  languageChanged() {
    this.labelShortcuts();
    for (const button of [this.cameraButton, this.micButton]) {
      setToggle(button, button.getAttribute('aria-pressed') === 'true');
    }
    if (this.selfTile) {
      this.selfTile.setName(this.selfTile.name, true);
    }
    for (const tile of this.tiles.values()) {
      tile.setName(tile.name, false);
    }
    this.showPager(!this.pager.hidden);
  }

  /**
   * Shows the meeting with the own tile and a tile for everyone in `roster`, and keeps
   * the tiles in step with it.
   * @param {string} room
   * @param {string} name
   * @param {Roster} roster
   */
  show(room, name, roster) {
    this.clear();
    this.roomName.textContent = room;
    document.title = `${room} \u2013 lanmeet`;
    const self = new Tile(name, true);
    self.root.dataset.self = '';
    self.video.classList.add('mirrored');
    self.onPin = () => this.togglePin('self');
    this.selfTile = self;
    this.pages.add('self');
    this.root.hidden = false;
    this.setScreenSharing(false);
    this.roster = roster;
    this.unsubscribe = roster.subscribe((change) => this.rosterChanged(change));
    this.rosterChanged({ kind: 'reset' });
  }

  /** @param {RosterChange} change */
  rosterChanged(change) {
    const roster = /** @type {Roster} */ (this.roster);
    if (change.kind === 'reset') {
      for (const id of [...this.tiles.keys()].filter((id) => !roster.participants.has(id))) {
        this.removeParticipant(id);
      }
      for (const p of roster.participants.values()) {
        this.upsertParticipant(p);
      }
      this.arrange();
    } else if (change.kind === 'joined' || change.kind === 'updated') {
      this.upsertParticipant(change.participant);
      if (change.kind === 'joined') {
        announce(t('announce.joined', { name: change.participant.name }));
      }
    } else if (change.kind === 'left') {
      this.removeParticipant(change.participant.id);
      announce(t('announce.left', { name: change.participant.name }));
    }
  }

  hide() {
    this.clear();
    this.root.hidden = true;
  }

  clear() {
    this.unsubscribe();
    this.unsubscribe = () => {};
    this.roster = null;
    for (const tile of this.tiles.values()) {
      tile.audio.srcObject = null;
    }
    this.tiles.clear();
    this.screens.clear();
    this.pendingTracks.clear();
    this.pinned = null;
    this.speaker = null;
    this.selfTile = null;
    this.pages = new PageOrder();
    this.stage.arrange([], null);
    this.offstage.replaceChildren();
    this.notices.replaceChildren();
    this.lost.hidden = true;
    this.banner.clear();
    this.selfMicrophone = null;
    this.speakerAnnouncer.reset();
  }

  /**
   * Updates the own tile and the control buttons.
   * @param {MediaStream} preview
   * @param {boolean} camera
   * @param {boolean} microphone
   * @param {boolean} [settled] false while the state is a placeholder (before the
   *   devices opened, after they were released): a change to or from it is not announced
   */
  setSelf(preview, camera, microphone, settled = true) {
    if (this.selfTile) {
      this.selfTile.setState(camera, microphone);
      this.selfTile.setVideo(camera ? preview : null);
    }
    setToggle(this.cameraButton, camera);
    setToggle(this.micButton, microphone);
    if (this.selfTile && this.selfMicrophone !== null && this.selfMicrophone !== microphone) {
      announce(t(microphone ? 'announce.unmuted' : 'announce.muted'));
    }
    this.selfMicrophone = this.selfTile && settled ? microphone : null;
  }

  /** @param {boolean} busy */
  setTogglesBusy(busy) {
    this.cameraButton.disabled = busy;
    this.micButton.disabled = busy;
  }

  /** @param {boolean} sharing */
  setScreenSharing(sharing) {
    this.screenButton.setAttribute('aria-pressed', String(sharing));
  }

  /** @param {boolean} busy */
  setScreenBusy(busy) {
    this.screenButton.disabled = busy;
  }

  /**
   * Switches between the grid and the speaker view.
   * @param {ViewMode} mode
   */
  setMode(mode) {
    this.mode = mode;
    remember(VIEW_MODE_KEY, mode);
    this.arrange();
  }

  /**
   * Pins a tile (large in the speaker view), or unpins it if it was pinned. Pinning
   * switches to the speaker view.
   * @param {number | 'self'} id
   */
  togglePin(id) {
    if (this.pinned === id) {
      this.pinned = null;
    } else {
      this.pinned = id;
      this.mode = 'speaker';
      this.pages.promote(id, new Set(['self']));
    }
    this.arrange();
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
      this.screens.get(participant.id)?.setName(participant.name);
      this.arrange();
      return;
    }
    const created = new RemoteTile(participant);
    created.onPin = () => this.togglePin(participant.id);
    this.tiles.set(participant.id, created);
    this.pages.add(participant.id);
    this.onVideoElement(created.video);
    this.arrange();
    const pending = this.pendingTracks.get(participant.id);
    this.pendingTracks.delete(participant.id);
    for (const p of pending ?? []) {
      this.attachTrack(participant.id, p.kind, p.track, p.source, p.mid).catch(() => {});
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
    if (id !== null && id !== you && this.tiles.has(id)) {
      this.speakerAnnouncer.push(/** @type {RemoteTile} */ (this.tiles.get(id)).name);
      this.speaker = id;
      /** @type {Set<TileKey>} */
      const keep = new Set(['self']);
      if (this.pinned !== null) {
        keep.add(this.pinned);
      }
      this.pages.spoken(id, keep);
      this.arrange();
    }
  }

  /** @param {number} id */
  removeParticipant(id) {
    this.pendingTracks.delete(id);
    const screen = this.screens.get(id);
    if (screen) {
      screen.video.srcObject = null;
      this.screens.delete(id);
    }
    if (this.pinned === id) {
      this.pinned = null;
    }
    if (this.speaker === id) {
      this.speaker = null;
    }
    const tile = this.tiles.get(id);
    if (tile) {
      tile.audio.srcObject = null;
      tile.video.srcObject = null;
      this.tiles.delete(id);
    }
    this.pages.remove(id);
    this.arrange();
  }

  /**
   * Puts a remote track on its participant's tile, or a screen on its presentation tile.
   * @param {number} id
   * @param {TrackKind} kind
   * @param {MediaStreamTrack} track
   * @param {TrackSource} [source]
   * @param {string} [mid]
   * @returns {Promise<void>} rejects if the browser blocked sound from playing
   */
  async attachTrack(id, kind, track, source = kind === 'audio' ? 'microphone' : 'camera', mid = '') {
    const tile = this.tiles.get(id);
    if (!tile) {
      const pending = (this.pendingTracks.get(id) ?? []).filter((p) => p.source !== source);
      pending.push({ kind, track, source, mid });
      this.pendingTracks.set(id, pending);
      return;
    }
    if (source === 'screen') {
      let screen = this.screens.get(id);
      if (!screen) {
        screen = new PresentationTile(id);
        this.screens.set(id, screen);
        this.onVideoElement(screen.video);
      }
      screen.mid = mid;
      screen.setName(tile.name);
      screen.setTrack(track);
      this.arrange();
    } else if (kind === 'video') {
      tile.mid = mid;
      tile.setVideo(new MediaStream([track]));
      this.onLayoutChange();
    } else {
      tile.audio.srcObject = new MediaStream([track]);
      await tile.audio.play();
    }
  }

  /**
   * Where a video mid of the subscribe connection is shown, for the view report.
   * @param {string} mid
   * @returns {{video: HTMLVideoElement, shown: boolean} | null}
   */
  placementOf(mid) {
    for (const [id, screen] of this.screens) {
      if (screen.mid === mid) {
        return { video: screen.video, shown: this.presenting(id) };
      }
    }
    for (const tile of this.tiles.values()) {
      if (tile.mid === mid) {
        // Off the shown page, a tile is in the offstage holder: nothing to send it.
        return { video: tile.video, shown: tile.camera && this.grid.contains(tile.root) };
      }
    }
    return null;
  }

  /**
   * Shows each remote participant's connection quality on their tile.
   * @param {Map<number, import('./stats.js').Grade>} grades
   */
  setQualities(grades) {
    for (const [id, tile] of this.tiles) {
      tile.setQuality(grades.get(id) ?? null);
    }
  }

  /**
   * Marks a participant's camera or screen as paused for lack of bandwidth.
   * @param {number} id
   * @param {TrackSource} source
   * @param {boolean} paused
   */
  setPaused(id, source, paused) {
    if (source === 'screen') {
      this.screens.get(id)?.setPaused(paused);
    } else {
      this.tiles.get(id)?.setPaused(paused);
    }
  }

  /** @param {number} id */
  presenting(id) {
    return Boolean(this.roster?.get(id)?.screen) && this.screens.has(id);
  }

  /**
   * Places the tiles for the current state: a shared screen is large whenever someone
   * presents; otherwise the speaker view shows the pinned tile, or the active speaker,
   * or the first other person large, with everyone in the filmstrip; the grid view shows
   * the tiles of the shown page alike, and keeps the others offstage.
   */
  arrange() {
    if (!this.selfTile) {
      this.stage.arrange([], null);
      return;
    }
    const people = [this.selfTile, ...this.tiles.values()];
    for (const tile of people) {
      tile.setPinned(this.pinned !== null && tile === this.tileOf(this.pinned));
    }
    const presenter = [...this.screens.keys()].find((id) => this.presenting(id));
    /** @type {HTMLElement | null} */
    let main = null;
    if (presenter !== undefined) {
      main = /** @type {PresentationTile} */ (this.screens.get(presenter)).root;
    } else if (this.mode === 'speaker') {
      const first = this.tiles.values().next().value;
      const chosen =
        (this.pinned !== null ? this.tileOf(this.pinned) : null) ??
        (this.speaker !== null ? this.tiles.get(this.speaker) : null) ??
        first ??
        this.selfTile;
      main = chosen.root;
    }
    this.grid.classList.toggle('presenting', presenter !== undefined);
    this.gridViewButton.setAttribute('aria-pressed', String(this.mode === 'grid'));
    this.speakerViewButton.setAttribute('aria-pressed', String(this.mode === 'speaker'));
    const before = new Set(this.grid.querySelectorAll('.tile'));
    if (main) {
      this.stage.arrange(
        people.map((t) => t.root),
        main,
      );
      replaceIfChanged(this.offstage, []);
    } else {
      const shown = this.pages.shown();
      const onPage = shown.map((key) => /** @type {Tile} */ (this.tileOf(key)).root);
      const offPage = people.filter((t) => !onPage.includes(t.root)).map((t) => t.root);
      // Into the holder first: a tile moved within one task never leaves the document,
      // so its video and sound do not pause.
      replaceIfChanged(this.offstage, offPage);
      this.stage.arrange(onPage, null);
    }
    this.showPager(main === null);
    for (const tile of people) {
      if (!before.has(tile.root) && this.grid.contains(tile.root)) {
        // Back on the stage: what the view report knew of its visibility is stale.
        this.onVideoElement(tile.video);
      }
    }
    for (const tile of people) {
      tile.resume();
    }
    for (const screen of this.screens.values()) {
      screen.resume();
    }
  }

  /**
   * The page controls: shown in the grid view when there is more than one page.
   * @param {boolean} grid
   */
  showPager(grid) {
    const count = this.pages.pageCount;
    this.pager.hidden = !grid || count <= 1;
    this.pageLabel.textContent = t('meeting.page_of', { page: this.pages.page + 1, count });
    this.previousPageButton.disabled = this.pages.page === 0;
    this.nextPageButton.disabled = this.pages.page >= count - 1;
  }

  /**
   * Shows another page of the grid view.
   * @param {number} page from 0
   */
  goToPage(page) {
    if (this.pages.goTo(page)) {
      this.arrange();
    }
  }

  /**
   * How many tiles a page of the grid view holds (from the window size).
   * @param {number} size
   */
  setPageSize(size) {
    if (size !== this.pages.size) {
      this.pages.setSize(size);
      this.arrange();
    }
  }

  /**
   * @param {number | 'self'} id
   * @returns {Tile | null}
   */
  tileOf(id) {
    return id === 'self' ? this.selfTile : (this.tiles.get(id) ?? null);
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
    dismiss.setAttribute('aria-label', t('common.dismiss'));
    dismiss.addEventListener('click', () => notice.remove());
    notice.append(dismiss);
    this.notices.append(notice);
  }

  /**
   * Shows that the connection is gone for good, with a Rejoin button.
   * @param {string} message
   */
  showLost(message) {
    this.banner.clear();
    this.lostMessage.textContent = message;
    this.lost.hidden = false;
    this.rejoinButton.focus();
  }
}

/** The remembered view mode, if the browser allows storage. @returns {ViewMode} */
function storedViewMode() {
  return remembered(VIEW_MODE_KEY) === 'speaker' ? 'speaker' : 'grid';
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
    state.textContent = on ? t('controls.on') : t('controls.off');
  }
}
