// @ts-check
/**
 * Arranges the tiles on the stage (#grid):
 *
 * - *grid*: every tile the same size, in the column count that gives the largest 16:9
 *   tiles fitting the area;
 * - *staged* (speaker view, or someone presenting): one tile large in the main area,
 *   the others in a scrollable filmstrip beside it (below it on narrow screens).
 *
 * Which tile is large is the caller's decision (ui.js); this module only places them.
 */

import { el } from './dom.js';

export class StageLayout {
  /** @param {HTMLElement} grid */
  constructor(grid) {
    this.grid = grid;
    this.main = el('div', 'stage-main');
    this.strip = el('div', 'filmstrip');
    this.strip.setAttribute('aria-label', 'Filmstrip');
    this.strip.setAttribute('role', 'group');
    /** @type {HTMLElement | null} */
    this.mainTile = null;
    /** Called after tiles moved or changed size. @type {() => void} */
    this.onChange = () => {};
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
   * Chooses the column count that gives the largest 16:9 tiles fitting the grid area,
   * so two people sit side by side on a desktop and stack on a phone held upright.
   */
  fitGrid() {
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
 * Makes `parent`'s children exactly `children`, touching the page only when they
 * differ (moving a playing video element restarts nothing, but costs a layout).
 * @param {HTMLElement} parent
 * @param {HTMLElement[]} children
 */
function replaceIfChanged(parent, children) {
  const current = parent.children;
  if (current.length === children.length && children.every((c, i) => current[i] === c)) {
    return;
  }
  parent.replaceChildren(...children);
}
