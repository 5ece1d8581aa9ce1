// @ts-check
/**
 * Reports to the server how large each received video is shown (`view`), so it can
 * forward the smallest simulcast layer that still looks sharp, and nothing for videos
 * nobody sees.
 *
 * Sizes are the <video> element's box in device pixels (CSS size × devicePixelRatio).
 * A video counts as not visible (0×0) when its tile is hidden or scrolled out of view
 * (IntersectionObserver), its camera is off, or the page is hidden. Changes are
 * coalesced: at most one message every 250 ms, and only when something changed.
 */

/** @typedef {import('./protocol.js').TrackView} TrackView */

/** Shortest time between two `view` messages. */
const MIN_INTERVAL_MS = 250;

/**
 * Where a video track of the subscribe connection is shown.
 * @typedef {object} Placement
 * @property {HTMLVideoElement} video
 * @property {boolean} shown False when the tile shows no video (camera off, not presenting).
 */

export class ViewReporter {
  /**
   * @param {object} options
   * @param {() => string[]} options.mids The subscribe connection's video mids.
   * @param {(mid: string) => Placement | null} options.placement Where a mid is shown.
   * @param {(tracks: TrackView[]) => void} options.send Sends `view`.
   */
  constructor({ mids, placement, send }) {
    this.mids = mids;
    this.placement = placement;
    this.send = send;
    /** Whether each observed video intersects the viewport (after clipping). @type {WeakMap<Element, boolean>} */
    this.intersecting = new WeakMap();
    /** @type {WeakSet<Element>} */
    this.observed = new WeakSet();
    this.lastJson = '';
    this.lastSentAt = -Infinity;
    /** @type {number | null} */
    this.timer = null;
    this.force = false;
    this.stopped = false;

    this.intersections = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        this.intersecting.set(entry.target, entry.isIntersecting);
      }
      this.schedule();
    });
    this.resizes = new ResizeObserver(() => this.schedule());
    this.onVisibility = () => this.schedule();
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  /**
   * Watches a video element's size and visibility. Call it again when the element moved
   * back onto the stage (e.g. its grid page is shown): what the IntersectionObserver last
   * said is forgotten and asked again, so a stale "not visible" does not hold back its
   * video; until the answer comes, its box alone decides.
   * @param {HTMLVideoElement} video
   */
  observe(video) {
    if (this.observed.has(video)) {
      this.intersecting.delete(video);
      this.intersections.unobserve(video);
      this.intersections.observe(video);
      this.schedule();
      return;
    }
    this.observed.add(video);
    this.intersections.observe(video);
    this.resizes.observe(video);
  }

  /**
   * Sends the view soon (coalesced). `force` sends it even if unchanged, e.g. after a
   * new subscribe offer.
   * @param {boolean} [force]
   */
  schedule(force = false) {
    if (this.stopped) {
      return;
    }
    this.force ||= force;
    if (this.timer !== null) {
      return;
    }
    const wait = Math.max(0, this.lastSentAt + MIN_INTERVAL_MS - performance.now());
    this.timer = window.setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  /** The current view. @returns {TrackView[]} */
  measure() {
    const hidden = document.visibilityState === 'hidden';
    const ratio = window.devicePixelRatio || 1;
    return this.mids().map((mid) => {
      const where = hidden ? null : this.placement(mid);
      if (!where || !where.shown || !where.video.isConnected || this.intersecting.get(where.video) === false) {
        return { mid, width: 0, height: 0 };
      }
      const rect = where.video.getBoundingClientRect();
      const onScreen =
        rect.width > 0 && rect.height > 0 && rect.bottom > 0 && rect.right > 0 && rect.top < window.innerHeight && rect.left < window.innerWidth;
      if (!onScreen) {
        return { mid, width: 0, height: 0 };
      }
      return { mid, width: Math.round(rect.width * ratio), height: Math.round(rect.height * ratio) };
    });
  }

  flush() {
    if (this.stopped) {
      return;
    }
    const tracks = this.measure();
    const json = JSON.stringify(tracks);
    if (json === this.lastJson && !this.force) {
      return;
    }
    this.force = false;
    this.lastJson = json;
    this.lastSentAt = performance.now();
    this.send(tracks);
  }

  stop() {
    this.stopped = true;
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    this.intersections.disconnect();
    this.resizes.disconnect();
    document.removeEventListener('visibilitychange', this.onVisibility);
  }
}
