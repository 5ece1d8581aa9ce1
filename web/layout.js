// @ts-check
/**
 * Arranges the tiles on the stage (#grid):
 *
 * - *grid*: every tile the same size, in the rows and columns that give the largest
 *   tiles fitting the area (see `fitGrid`);
 * - *staged* (speaker view, or someone presenting): one tile large in the main area,
 *   the others in a scrollable filmstrip beside it (below it on narrow screens).
 *
 * Which tile is large is the caller's decision (ui.js); this module only places them.
 */

import { el } from './dom.js';
import { MIN_TILE_WIDTH } from './paging.js';
import { t } from './i18n.js';

/** Screens small enough (a phone, upright or sideways) for the own tile to float. */
export const SMALL_SCREEN = '(max-width: 760px), (max-height: 500px)';

export class StageLayout {
  /** @param {HTMLElement} grid */
  constructor(grid) {
    this.grid = grid;
    this.main = el('div', 'stage-main');
    this.strip = el('div', 'filmstrip');
    this.strip.setAttribute('aria-label', t('meeting.filmstrip'));
    this.strip.setAttribute('role', 'group');
    /** @type {HTMLElement | null} */
    this.mainTile = null;
    /** Called after tiles moved or changed size. @type {() => void} */
    this.onChange = () => {};
    /** The grid view's area was measured (it decides the page size). @type {(area: GridArea) => void} */
    this.onGridArea = () => {};
    new ResizeObserver(() => this.fit()).observe(grid);
    this.strip.addEventListener('scroll', () => this.onChange(), { passive: true });
  }

  /**
   * Places the tiles: `main` large with the others in the filmstrip, or all in a grid
   * when `main` is null.
   * @param {HTMLElement[]} tiles every tile, in order (may include `main`)
   * @param {HTMLElement | null} main
   */
  arrange(tiles, main) {
    this.mainTile = main;
    this.grid.classList.toggle('staged', main !== null);
    if (main) {
      this.grid.classList.remove('floating-self');
    }
    if (main) {
      replaceIfChanged(this.main, [main]);
      replaceIfChanged(
        this.strip,
        tiles.filter((t) => t !== main),
      );
      replaceIfChanged(this.grid, [this.main, this.strip]);
    } else {
      replaceIfChanged(this.main, []);
      replaceIfChanged(this.strip, []);
      replaceIfChanged(this.grid, tiles);
    }
    this.fit();
  }

  /** Sizes the tiles for the current area. */
  fit() {
    if (this.mainTile) {
      this.fitMain();
    } else {
      this.fitGrid();
    }
    this.onChange();
  }

  /** The large tile: as large as fits the main area at 16:9. */
  fitMain() {
    const width = this.main.clientWidth;
    const height = this.main.clientHeight;
    if (width <= 0 || height <= 0) {
      return;
    }
    this.main.style.setProperty('--main-width', `${Math.floor(Math.min(width, (height * 16) / 9))}px`);
  }

  /**
   * Chooses the rows and columns that give the largest tiles in the grid area, and their
   * size: a tile is between 4:3 and 16:9, and the video covers it (cropping at most a
   * quarter of its width, never distorting). Letting a tile grow taller than 16:9 fills
   * the height that 16:9 tiles would leave as bands above and below; the rows are
   * centred, the last one too (style.css), so no quarter of the area stays empty.
   * Two people sit side by side on a desktop and stack on a phone held upright.
   */
  fitGrid() {
    const area = this.gridArea();
    if (!area) {
      return;
    }
    // May change the page size, and so the tiles in the grid.
    this.onGridArea(area);
    // On a phone the own camera floats small in a corner rather than taking a tile.
    const tiles = [...this.grid.children];
    const floating = tiles.length > 1 && tiles.some((t) => t.classList.contains('self')) && window.matchMedia(SMALL_SCREEN).matches;
    this.grid.classList.toggle('floating-self', floating);
    const count = tiles.length - (floating ? 1 : 0);
    if (count === 0) {
      return;
    }
    const best = bestGrid(count, area.width, area.height, area.gap, MIN_TILE_WIDTH);
    this.grid.style.setProperty('--cols', String(best.cols));
    this.grid.style.setProperty('--tile-width', `${Math.floor(best.width)}px`);
    this.grid.style.setProperty('--tile-height', `${Math.floor(best.height)}px`);
  }

  /**
   * The grid's content box and the gap between tiles, CSS px; null while it has no size.
   * @returns {GridArea | null}
   */
  gridArea() {
    const style = getComputedStyle(this.grid);
    const gap = parseFloat(style.columnGap) || 0;
    const width = this.grid.clientWidth - (parseFloat(style.paddingLeft) || 0) - (parseFloat(style.paddingRight) || 0);
    const height = this.grid.clientHeight - (parseFloat(style.paddingTop) || 0) - (parseFloat(style.paddingBottom) || 0);
    if (width <= 0 || height <= 0) {
      return null;
    }
    return { width, height, gap };
  }
}

/**
 * The grid's content box and the gap between tiles, CSS px.
 * @typedef {object} GridArea
 * @property {number} width
 * @property {number} height
 * @property {number} gap
 */

/** The narrowest a grid tile may be (width / height): 4:3. */
const MIN_ASPECT = 4 / 3;
/** The widest: the camera's own 16:9. */
const MAX_ASPECT = 16 / 9;

/**
 * The column count, and the tile size, that make `count` tiles largest in a
 * `width` × `height` area with `gap` between them (tiles between 4:3 and 16:9). Tiles
 * narrower than `minWidth` are chosen only when no arrangement avoids them (a page holds
 * no more tiles than fit 16:9 at `minWidth`, see paging.js, so one does).
 * @param {number} count
 * @param {number} width
 * @param {number} height
 * @param {number} gap
 * @param {number} [minWidth]
 * @returns {{cols: number, rows: number, width: number, height: number}}
 */
export function bestGrid(count, width, height, gap, minWidth = 0) {
  const wide = bestOf(count, width, height, gap, minWidth);
  return wide.width > 0 ? wide : bestOf(count, width, height, gap, 0);
}

/**
 * `bestGrid` among arrangements with tiles at least `minWidth` wide; width 0 if none.
 * @param {number} count
 * @param {number} width
 * @param {number} height
 * @param {number} gap
 * @param {number} minWidth
 */
function bestOf(count, width, height, gap, minWidth) {
  let best = { cols: 1, rows: count, width: 0, height: 0 };
  let bestArea = -1;
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const cellWidth = (width - gap * (cols - 1)) / cols;
    const cellHeight = (height - gap * (rows - 1)) / rows;
    if (cellWidth <= 0 || cellHeight <= 0) {
      continue;
    }
    const w = Math.min(cellWidth, cellHeight * MAX_ASPECT);
    const h = Math.min(cellHeight, w / MIN_ASPECT);
    if (w < minWidth) {
      continue;
    }
    // Ties (equal areas) go to fewer columns: the earlier candidate.
    if (w * h > bestArea + 0.5) {
      best = { cols, rows, width: w, height: h };
      bestArea = w * h;
    }
  }
  return best;
}

/**
 * Makes `parent`'s children exactly `children`, touching the page only when they
 * differ (moving a playing video element restarts nothing, but costs a layout).
 * @param {HTMLElement} parent
 * @param {HTMLElement[]} children
 */
export function replaceIfChanged(parent, children) {
  const current = parent.children;
  if (current.length === children.length && children.every((c, i) => current[i] === c)) {
    return;
  }
  parent.replaceChildren(...children);
}
