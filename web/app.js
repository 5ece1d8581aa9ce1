// @ts-check
/**
 * The lanmeet page: routes `/` and `/r/<room>[?name=<name>]` to the pre-join screen
 * (prejoin.js, prefilled from the address; nothing joins before its Join button), and
 * wires the connection (protocol.js), local media (media.js) and the views (ui.js)
 * together.
 */

import { Connection } from './protocol.js';
import { LocalMedia } from './media.js';
import { MeetingView } from './ui.js';
import { JoinView, PreJoin } from './prejoin.js';
import { CHAT_ERROR_CODES, ChatPanel } from './chat.js';
import { validateName, validateRoom } from './validate.js';
import { remember, remembered } from './dom.js';
import { SettingsDialog, loadSettings, saveSettings } from './settings.js';
import { ScreenShare } from './screen.js';
import { ViewReporter } from './viewsize.js';
import { installTestHook } from './testhook.js';
import { StatsSampler } from './stats.js';
import { StatsPanel } from './statspanel.js';
import { t, translatePage } from './i18n.js';
import { LobbyWait, Moderation } from './moderation.js';
import { InviteDialog } from './invite.js';

/** @typedef {import('./protocol.js').ServerError} ServerError */
/** @typedef {import('./protocol.js').ConnectionState} ConnectionState */

const NAME_KEY = 'lanmeet.name';

const joinView = new JoinView();
const preJoin = new PreJoin(joinView);
const meetingView = new MeetingView();
const chatPanel = new ChatPanel();
const settingsDialog = new SettingsDialog();
const inviteDialog = new InviteDialog();
const statsPanel = new StatsPanel();
const lobbyWait = new LobbyWait();

/**
 * Reads the room, the name and whether to show the password field from the address.
 * @returns {{room: string, name: string | null, moderator: boolean}}
 */
function route() {
  const match = /^\/r\/([^/]+)\/?$/.exec(window.location.pathname);
  let room = '';
  if (match) {
    try {
      room = decodeURIComponent(match[1]);
    } catch {
      room = match[1];
    }
  }
  const query = new URLSearchParams(window.location.search);
  // `?moderator`: the password field from the start, for a moderator password in a room
  // whose participants need none (the server does not ask there).
  return { room, name: query.get('name'), moderator: query.has('moderator') };
}

/** @param {string} room */
function roomPath(room) {
  return `/r/${encodeURIComponent(room)}`;
}

/** The remembered name, if the browser allows storage. */
function storedName() {
  return remembered(NAME_KEY) ?? '';
}

/** @param {string} name */
function rememberName(name) {
  remember(NAME_KEY, name);
}

/**
 * Text for an error that ended or prevented a join.
 * @param {ServerError} error
 * @param {string} name
 * @param {string} room
 */
function errorText(error, name, room) {
  if (error.code === 'name_taken' && !error.message) {
    return t('error.name_taken', { name, room });
  }
  // The server's own words say more: a look-alike name names the one it looks like.
  return error.message || t('error.refused', { code: error.code });
}

/**
 * Being in a meeting: from pressing Join until leaving or losing the connection for
 * good. The connection rejoins by itself when it is lost for a while; the session
 * stays.
 */
class Session {
  /**
   * @param {string} name
   * @param {string} room
   * @param {LocalMedia} media the devices to start with: the pre-join screen's until
   *   the server let us in (a refused join leaves them there), then the meeting's
   * @param {Promise<void>} mediaReady settles once `media` opened what it could
   * @param {string} [password] the room's password, when it has one
   */
  constructor(name, room, media, mediaReady, password) {
    this.name = name;
    this.room = room;
    this.password = password;
    this.media = media;
    this.conn = new Connection({ room, name, password: password || undefined });
    this.screen = new ScreenShare({ conn: this.conn, view: meetingView });
    this.viewReporter = new ViewReporter({
      mids: () => this.conn.tracks.filter((t) => t.kind === 'video').map((t) => t.mid),
      placement: (mid) => meetingView.placementOf(mid),
      send: (tracks) => this.conn.sendView(tracks),
    });
    // Whatever connections are current: a rejoin replaces them, the sampler follows.
    this.stats = new StatsSampler(() => ({
      publishPc: this.conn.publishPc,
      subscribePc: this.conn.subscribePc,
      published: this.conn.publisher.trackSources(),
      subscribed: this.conn.tracks,
      cameraOn: (id) => this.conn.roster.get(id)?.camera ?? false,
    }));
    this.ended = false;
    this.joined = false;
    this.soundNoticeShown = false;
    this.mediaReady = mediaReady;
    /** Camera and microphone as they were when the connection ended, for Rejoin. */
    this.wanted = { camera: true, microphone: true };
    /** Roles and moderation, while in the meeting. @type {Moderation | null} */
    this.moderation = null;
    /** The device the user last switched, to undo when the server refuses it. @type {'camera' | 'microphone' | null} */
    this.lastToggle = null;
  }

  start() {
    const { conn } = this;
    conn.onState = (state) => this.connectionChanged(state);
    conn.onWaiting = () => lobbyWait.show();
    conn.onOther = (msg) => this.moderation?.handle(msg);
    conn.roster.subscribe((change) => {
      if (change.kind === 'self') {
        this.screen.selfUpdated(Boolean(change.participant.screen));
      }
    });
    conn.onChatHistory = (messages) => chatPanel.setHistory(messages);
    conn.onChat = (message) => chatPanel.add(message);
    conn.onActiveSpeaker = (id) => meetingView.setActiveSpeaker(id, conn.you);
    chatPanel.onSend = (text, to) => conn.sendChat(text, to);
    conn.onTrack = (id, kind, track, source, mid) => {
      meetingView.attachTrack(id, kind, track, source, mid).catch((err) => this.soundBlocked(err));
    };
    conn.onSubscribed = () => this.viewReporter.schedule(true);
    conn.onVideoState = (mid, participant, layer, paused) => {
      this.stats.videoState(mid, layer, paused);
      const source = conn.tracks.find((t) => t.mid === mid)?.source ?? 'camera';
      meetingView.setPaused(participant, source, paused === 'low_bandwidth');
      if (paused === 'codec') {
        // This browser accepted none of the codecs the track is sent in: say so rather
        // than show a tile that never gets a picture.
        const name = conn.roster.get(participant)?.name ?? '?';
        meetingView.showNotice(t('codecs.unsupported', { name }));
      }
    };
    meetingView.onLayoutChange = () => this.viewReporter.schedule();
    meetingView.onVideoElement = (video) => this.viewReporter.observe(video);
    conn.onError = (error) => {
      if (error.code === 'forbidden' && this.lastToggle) {
        // A moderator blocked what we switched on (or we are a viewer): the server
        // holds it off, so the page does too.
        this.forcedOff(this.lastToggle);
        this.lastToggle = null;
        meetingView.showNotice(error.message);
      } else if (error.code === 'presenter_busy' && this.screen.state === 'asking') {
        this.screen.refused(error.message);
      } else if (this.joined && CHAT_ERROR_CODES.has(error.code)) {
        chatPanel.showServerError(error.message);
      } else if (this.joined) {
        meetingView.showNotice(error.message);
      }
    };
    conn.connect();
  }

  /** @param {ConnectionState} state */
  connectionChanged(state) {
    if (state.kind === 'connected' && !state.rejoined) {
      this.enter(this.conn.room).catch((err) => meetingView.showNotice(String(err)));
    } else if (state.kind === 'connected') {
      chatPanel.joined(this.name, this.conn.token ?? '');
      meetingView.banner.reconnected();
      this.screen.resume();
    } else if (state.kind === 'lost') {
      chatPanel.disconnected();
      meetingView.setActiveSpeaker(null, null);
      meetingView.banner.reconnecting(state.reason === 'restarting' ? t('banner.restarting') : t('banner.connection_lost'));
    } else if (state.kind === 'closed' && !state.byUser) {
      this.end(state.error);
    }
  }

  /** @param {string} room */
  async enter(room) {
    this.joined = true;
    lobbyWait.hide();
    this.room = room;
    rememberName(this.name);
    window.history.replaceState(null, '', roomPath(room));
    if (preJoin.media === this.media) {
      preJoin.release();
    }
    joinView.hide();
    const { media, conn } = this;
    media.onTrack = (kind, track) => conn.setLocalTrack(kind, track);
    media.onChange = () => {
      meetingView.setSelf(media.preview, media.camera, media.microphone);
      conn.sendMediaState(media.camera, media.microphone);
    };
    meetingView.show(room, this.name, this.conn.roster);
    this.moderation = new Moderation(conn, meetingView);
    this.moderation.onForcedOff = (source) => this.forcedOff(source);
    this.moderation.onMayPublish = (may) => {
      if (!may) {
        this.forcedOff('camera');
        this.forcedOff('microphone');
      }
    };
    // Before any await: `chat_history` follows `joined` at once.
    chatPanel.start({ roster: this.conn.roster, name: this.name, token: this.conn.token ?? '' });
    meetingView.setSelf(this.media.preview, false, false, false);
    meetingView.onCamera = () => this.toggle('camera');
    meetingView.onMicrophone = () => this.toggle('microphone');
    meetingView.onLeave = () => this.leave();
    meetingView.onRejoin = () => this.rejoin();
    meetingView.onCopyLink = () => this.copyLink();
    meetingView.onScreen = () => this.screen.toggle();
    meetingView.onSettings = () => this.openSettings();
    this.stats.subscribe((sample) => meetingView.setQualities(sample.grades));
    statsPanel.attach(this.stats, (id) => this.conn.roster.get(id)?.name ?? t('stats.participant', { id }));
    this.stats.start();

    await this.mediaReady;
    if (this.ended) {
      return;
    }
    meetingView.setSelf(media.preview, media.camera, media.microphone);
    if (media.notice) {
      meetingView.showNotice(media.notice);
    }
    await conn.setLocalTrack('audio', media.audio);
    await conn.setLocalTrack('video', media.video);
    await conn.setCameraQuality(media.settings.quality);
    try {
      await conn.publish();
    } catch (err) {
      meetingView.showNotice(t('error.publish', { reason: String(err) }));
    }
    conn.sendMediaState(media.camera, media.microphone);
  }

  /** @param {'camera' | 'microphone'} device */
  async toggle(device) {
    const { media } = this;
    this.lastToggle = device;
    meetingView.setTogglesBusy(true);
    try {
      if (device === 'camera') {
        await media.setCamera(!media.camera);
      } else {
        await media.setMicrophone(!media.microphone);
      }
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      meetingView.showNotice(t(device === 'camera' ? 'error.camera_on' : 'error.microphone_on', { reason }));
    } finally {
      meetingView.setTogglesBusy(false);
    }
  }

  /**
   * A moderator switched a source off (the server already stopped forwarding it): the
   * page follows, so its switch shows the truth.
   * @param {'camera' | 'microphone' | 'screen'} source
   */
  forcedOff(source) {
    const { media } = this;
    if (source === 'camera' && media.camera) {
      media.setCamera(false).catch(() => {});
    } else if (source === 'microphone' && media.microphone) {
      media.setMicrophone(false).catch(() => {});
    }
  }

  openSettings() {
    const { media, conn } = this;
    settingsDialog.onQuality = async (quality) => {
      await media.setQuality(quality);
      await conn.setCameraQuality(quality);
      saveSettings(media.settings);
    };
    settingsDialog.onCamera = async (deviceId) => {
      await media.setCameraDevice(deviceId);
      saveSettings(media.settings);
    };
    settingsDialog.onMicrophone = async (deviceId) => {
      await media.setMicrophoneDevice(deviceId);
      saveSettings(media.settings);
    };
    settingsDialog.onProcessing = async (processing) => {
      await media.setAudioProcessing(processing);
      saveSettings(media.settings);
    };
    const inUse = {
      camera: media.video?.getSettings().deviceId ?? '',
      microphone: media.audio?.getSettings().deviceId ?? '',
    };
    settingsDialog.open(media.settings, inUse).catch(() => {});
  }

  /** Ends everything that outlives the connection: capture, reports, dialogs. */
  stopExtras() {
    this.moderation?.dispose();
    this.moderation = null;
    lobbyWait.hide();
    this.screen.dispose();
    this.viewReporter.stop();
    this.stats.stop();
    statsPanel.detach();
    settingsDialog.close();
  }

  /** @param {unknown} err */
  soundBlocked(err) {
    if (err instanceof DOMException && err.name === 'NotAllowedError' && !this.soundNoticeShown) {
      this.soundNoticeShown = true;
      meetingView.showNotice(t('meeting.sound_blocked'), {
        label: t('meeting.enable_sound'),
        action: () => meetingView.resumeSound(),
      });
    }
  }

  /** "Copy link" opens the invite dialog: the link, a Copy button and a QR code. */
  copyLink() {
    inviteDialog.open(new URL(roomPath(this.room), window.location.origin).href);
  }

  leave() {
    this.ended = true;
    this.stopExtras();
    chatPanel.stop();
    this.conn.leave();
    this.media.stop();
    meetingView.hide();
    // Leaving switches camera and microphone off: they open again only when asked for.
    preJoin.start({ camera: false, microphone: false }, t('join.left'));
    joinView.show({ name: this.name, room: this.room });
  }

  /** Joins again after the connection ended, with the camera and microphone as they were. */
  rejoin() {
    this.ended = true;
    this.stopExtras();
    chatPanel.stop();
    this.conn.close();
    this.media.stop();
    meetingView.hide();
    const media = new LocalMedia(loadSettings());
    startSession(this.name, this.room, media, media.start(this.wanted), this.password);
  }

  /**
   * The connection ended without the user asking.
   * @param {ServerError | null} error
   */
  end(error) {
    if (this.ended) {
      return;
    }
    this.ended = true;
    this.stopExtras();
    this.conn.close();
    chatPanel.stop();
    if (!this.joined) {
      // The pre-join screen keeps its preview: fix the name and press Join again.
      if (preJoin.media !== this.media) {
        const wanted = { camera: this.media.camera, microphone: this.media.microphone };
        this.media.stop();
        preJoin.start(wanted);
      }
      joinView.show({});
      if (error && (error.code === 'password_required' || error.code === 'wrong_password')) {
        joinView.askPassword(error.code === 'wrong_password');
      } else if (error) {
        const field = error.code === 'name_taken' || error.code === 'invalid_name' ? 'name' : null;
        joinView.showError(errorText(error, this.name, this.room), field);
      } else {
        joinView.showError(t('error.unreachable'));
      }
      return;
    }
    this.wanted = { camera: this.media.camera, microphone: this.media.microphone };
    this.media.stop();
    // The camera is released: show the placeholder rather than a frozen black tile.
    meetingView.setSelf(this.media.preview, false, false, false);
    const text = error ? errorText(error, this.name, this.room) : t('meeting.connection_lost');
    meetingView.showLost(text);
  }
}

/** @type {Session | null} */
let session = null;

/**
 * Validates and joins with `media` (the pre-join screen's, or fresh ones for Rejoin).
 * @param {string} rawName
 * @param {string} rawRoom
 * @param {LocalMedia} media
 * @param {Promise<void>} mediaReady settles once `media` opened what it could
 * @param {string} [password] the room's password, when asked for
 */
function startSession(rawName, rawRoom, media, mediaReady, password) {
  const name = validateName(rawName);
  if (!name.ok) {
    joinView.show({});
    joinView.showError(name.error, 'name');
    return;
  }
  const room = validateRoom(rawRoom);
  if (!room.ok) {
    joinView.show({});
    joinView.showError(room.error, 'room');
    return;
  }
  joinView.show({ name: name.value, room: room.value });
  joinView.clearError();
  joinView.setBusy(true);
  session = new Session(name.value, room.value, media, mediaReady, password);
  session.start();
}

function main() {
  translatePage();
  installTestHook(() => session?.conn ?? null, () => session?.stats ?? null, statsPanel);
  const { room, name, moderator } = route();
  joinView.onSubmit = (n, r, p) => {
    // The preview's devices, or (after a join that did not start them) fresh ones.
    if (!preJoin.media) {
      preJoin.start({ camera: true, microphone: true });
    }
    startSession(n, r, /** @type {LocalMedia} */ (preJoin.media), preJoin.ready, p);
  };
  // A room link fills in the form and waits for Join: nobody is in a meeting by
  // following a link.
  joinView.show({ name: name ?? storedName(), room });
  if (moderator) {
    joinView.showPassword();
  }
  preJoin.start({ camera: true, microphone: true });
  // Closing the page is leaving: tell the server at once rather than let it notice.
  window.addEventListener('pagehide', () => {
    if (session && !session.ended) {
      session.ended = true;
      session.conn.leave();
    }
    preJoin.stop();
  });
}

main();
