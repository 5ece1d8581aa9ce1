// @ts-check
/**
 * Which tiles the grid view shows: a stable order of everyone, cut into pages.
 *
 * The order is join order, changed only as little as a meeting needs, so that nobody's
 * tile jumps around on the page someone is looking at:
 *
 * - someone joining goes last (onto the shown page only if it has a free place);
 * - someone leaving leaves a gap that the next in order after the shown page fills
 *   (everyone on the shown page stays in place; the pages after it move up by one);
 *   with nobody after the shown page, a gap on it closes up, and a gap on an earlier
 *   page takes the shown page's last tile;
 * - the active speaker or a pinned person who is not on the shown page swaps places
 *   with the least recently speaking tile of the first page. A speaker already on the
 *   shown page stays where they are: speaking changes nothing then.
 *
 * No DOM here: keys are opaque (ui.js uses participant ids and 'self'), and the page
 * size comes from the caller (see `pageSizeFor`).
 */

/** The most tiles a page holds, however large the window. */
export const MAX_PAGE_SIZE = 25;

/** The narrowest a grid tile gets, CSS px: a face and a name still read at this size. */
export const MIN_TILE_WIDTH = 160;

/**
 * How many tiles fit a page in a grid area of `width` × `height` CSS px with `gap`
 * between tiles, none narrower than `MIN_TILE_WIDTH` at 16:9; at least 1, at most
 * `MAX_PAGE_SIZE`.
 * @param {number} width
 * @param {number} height
 * @param {number} gap
 */
export function pageSizeFor(width, height, gap) {
  const minHeight = (MIN_TILE_WIDTH * 9) / 16;
  const cols = Math.floor((width + gap) / (MIN_TILE_WIDTH + gap));
  const rows = Math.floor((height + gap) / (minHeight + gap));
  return Math.max(1, Math.min(MAX_PAGE_SIZE, cols * rows));
}

/** @template K */
export class PageOrder {
  constructor() {
    /** Everyone, in the order the pages show them. @type {K[]} */
    this.order = [];
    /** Tiles per page. */
    this.size = MAX_PAGE_SIZE;
    /** The shown page, from 0. */
    this.page = 0;
    /** When each key last spoke (a counter, larger is later); never: absent. @type {Map<K, number>} */
    this.spoke = new Map();
    this.clock = 0;
  }

  /** @returns {number} */
  get pageCount() {
    return Math.max(1, Math.ceil(this.order.length / this.size));
  }

  /** The keys on the shown page, in order. @returns {K[]} */
  shown() {
    return this.order.slice(this.page * this.size, (this.page + 1) * this.size);
  }

  /** @param {K} key */
  has(key) {
    return this.order.includes(key);
  }

  /** @param {K} key */
  pageOf(key) {
    const index = this.order.indexOf(key);
    return index < 0 ? -1 : Math.floor(index / this.size);
  }

  /** @param {K} key */
  isShown(key) {
    return this.pageOf(key) === this.page;
  }

  /**
   * Adds a key at the end (no-op if present).
   * @param {K} key
   */
  add(key) {
    if (!this.order.includes(key)) {
      this.order.push(key);
    }
  }

  /**
   * Removes a key. If it was on or before the shown page, the first key after the shown
   * page takes its place, so nobody on the shown page moves.
   * @param {K} key
   */
  remove(key) {
    const index = this.order.indexOf(key);
    if (index < 0) {
      return;
    }
    this.spoke.delete(key);
    const start = this.page * this.size;
    const end = start + this.size;
    if (index < end && end < this.order.length) {
      this.order[index] = this.order[end];
      this.order.splice(end, 1);
    } else if (index < start) {
      // Nobody after the shown page: its last tile fills the gap, the rest stay put.
      this.order[index] = /** @type {K} */ (this.order.pop());
    } else {
      this.order.splice(index, 1);
    }
    this.clampPage();
  }

  /**
   * Sets the page size (the window changed). Keeps the first tile of the shown page on
   * the shown page.
   * @param {number} size
   */
  setSize(size) {
    const next = Math.max(1, Math.floor(size));
    if (next === this.size) {
      return;
    }
    const first = this.page * this.size;
    this.size = next;
    this.page = Math.floor(first / next);
    this.clampPage();
  }

  /**
   * Goes to page `page` (clamped). Returns whether the shown page changed.
   * @param {number} page
   */
  goTo(page) {
    const before = this.page;
    this.page = page;
    this.clampPage();
    return this.page !== before;
  }

  clampPage() {
    this.page = Math.max(0, Math.min(this.page, this.pageCount - 1));
  }

  /**
   * Notes that `key` speaks now and brings them onto the first page if they are not on
   * the shown one. Returns whether the order changed.
   * @param {K} key
   * @param {Set<K>} [keep] keys that must stay where they are (the own tile, pinned)
   */
  spoken(key, keep = new Set()) {
    this.spoke.set(key, ++this.clock);
    return this.promote(key, keep);
  }

  /**
   * Brings `key` onto the first page unless it is on the shown page already, by
   * swapping it with the least recently speaking tile there that is not in `keep`.
   * Returns whether the order changed.
   * @param {K} key
   * @param {Set<K>} [keep]
   */
  promote(key, keep = new Set()) {
    const index = this.order.indexOf(key);
    if (index < 0 || this.isShown(key) || index < this.size) {
      return false;
    }
    let victim = -1;
    let victimSpoke = Infinity;
    // From the end of the page: among equally quiet tiles the later joiner goes.
    for (let i = Math.min(this.size, this.order.length) - 1; i >= 0; i--) {
      const candidate = this.order[i];
      if (keep.has(candidate)) {
        continue;
      }
      const spoke = this.spoke.get(candidate) ?? 0;
      if (spoke < victimSpoke) {
        victim = i;
        victimSpoke = spoke;
      }
    }
    if (victim < 0) {
      return false;
    }
    this.order[index] = this.order[victim];
    this.order[victim] = key;
    return true;
  }
}
