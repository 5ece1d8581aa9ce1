// @ts-check
/**
 * Sharing this browser's screen: asks the server for the presenter's seat, sends the
 * captured track on the publish connection, and stops on the Share screen button, the
 * browser's own "stop sharing" bar (the track ends) or leaving.
 *
 * The order matters: the picker must open inside the click (browsers require a user
 * gesture), and the server must grant the seat (`participant_updated` about ourselves
 * with `screen: true`) before the track is sent; `presenter_busy` refuses it.
 */

import { t } from './i18n.js';

/** Frame rate asked of the capture: enough for scrolling and slides, light on CPU. */
const SCREEN_FRAME_RATE = 15;

/** How long to wait for the server to grant or refuse presenting. */
const GRANT_TIMEOUT_MS = 10_000;

/** @typedef {'idle' | 'asking' | 'sharing'} ScreenState */

export class ScreenShare {
  /**
   * @param {object} deps
   * @param {import('./protocol.js').Connection} deps.conn
   * @param {import('./ui.js').MeetingView} deps.view
   */
  constructor({ conn, view }) {
    this.conn = conn;
    this.view = view;
    /** @type {ScreenState} */
    this.state = 'idle';
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    /** @type {number | null} */
    this.grantTimer = null;
    this.onEnded = () => this.stop();
  }

  /** The Share screen button was pressed. */
  async toggle() {
    if (this.state === 'sharing') {
      await this.stop();
      return;
    }
    if (this.state === 'asking') {
      return;
    }
    const presenter = this.conn.roster.presenterName();
    if (presenter !== null) {
      this.view.showNotice(t('screen.presenting', { name: presenter }));
      return;
    }
    if (!navigator.mediaDevices?.getDisplayMedia) {
      this.view.showNotice(t('screen.unsupported'));
      return;
    }
    this.state = 'asking';
    this.view.setScreenBusy(true);
    /** @type {MediaStream} */
    let stream;
    try {
      // First thing in the click: the picker needs the user's gesture.
      stream = await navigator.mediaDevices.getDisplayMedia({
        video: { frameRate: { ideal: SCREEN_FRAME_RATE, max: 30 } },
        audio: false,
      });
    } catch (err) {
      this.state = 'idle';
      this.view.setScreenBusy(false);
      // Cancelling the picker is a choice, not an error.
      if (!(err instanceof DOMException && err.name === 'NotAllowedError')) {
        this.view.showNotice(t('screen.failed', { reason: err instanceof Error ? err.message : String(err) }));
      }
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || this.state !== 'asking') {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    // Screens are text and lines: keep them sharp rather than smooth.
    track.contentHint = 'detail';
    track.addEventListener('ended', this.onEnded);
    this.track = track;
    this.ask();
  }

  /** Asks the server for the presenter's seat; `selfUpdated` or `refused` answers. */
  ask() {
    this.grantTimer = window.setTimeout(() => this.refused(t('screen.no_answer')), GRANT_TIMEOUT_MS);
    this.conn.sendScreenShare(true);
  }

  /**
   * The server's word on ourselves: `screen` true grants presenting, false ends it.
   * @param {boolean} screen
   */
  async selfUpdated(screen) {
    if (screen && this.state === 'asking' && this.track) {
      this.clearGrantTimer();
      this.state = 'sharing';
      this.view.setScreenBusy(false);
      this.view.setScreenSharing(true);
      try {
        await this.conn.setScreenTrack(this.track);
      } catch (err) {
        this.view.showNotice(t('screen.send_failed', { reason: err instanceof Error ? err.message : String(err) }));
        await this.stop();
      }
    } else if (!screen && this.state === 'sharing') {
      // The server ended it (e.g. after a reconnect): stop capturing too.
      await this.stop({ tellServer: false });
    }
  }

  /**
   * The server refused presenting (`presenter_busy`, naming the presenter).
   * @param {string} message
   */
  refused(message) {
    if (this.state !== 'asking') {
      return;
    }
    this.clearGrantTimer();
    this.releaseTrack();
    this.state = 'idle';
    this.view.setScreenBusy(false);
    this.view.setScreenSharing(false);
    this.view.showNotice(message);
  }

  /**
   * Stops sharing: the track stops, the sender sends nothing, the others are told.
   * @param {{tellServer?: boolean}} [options]
   */
  async stop({ tellServer = true } = {}) {
    const was = this.state;
    this.clearGrantTimer();
    this.releaseTrack();
    this.state = 'idle';
    this.view.setScreenBusy(false);
    this.view.setScreenSharing(false);
    if (was === 'idle') {
      return;
    }
    await this.conn.setScreenTrack(null).catch(() => {});
    if (tellServer) {
      this.conn.sendScreenShare(false);
    }
  }

  /**
   * The connection came back after a loss: a share in progress asks for the presenter's
   * seat again (the server forgot it) and, once granted, goes out on the new publish
   * connection. Someone else may have taken the seat meanwhile: then it ends with
   * `presenter_busy`, as a new share would.
   */
  resume() {
    if (this.state !== 'sharing' || !this.track || this.track.readyState === 'ended') {
      return;
    }
    this.state = 'asking';
    this.view.setScreenBusy(true);
    this.ask();
  }

  /** Leaving: only the capture needs ending; the connection goes anyway. */
  dispose() {
    this.clearGrantTimer();
    this.releaseTrack();
    this.state = 'idle';
  }

  releaseTrack() {
    if (this.track) {
      this.track.removeEventListener('ended', this.onEnded);
      this.track.stop();
      this.track = null;
    }
  }

  clearGrantTimer() {
    if (this.grantTimer !== null) {
      window.clearTimeout(this.grantTimer);
      this.grantTimer = null;
    }
  }
}
