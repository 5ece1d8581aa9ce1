// The grid view's page order (web/paging.js): pure logic, run by node without a browser.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_PAGE_SIZE, PageOrder, pageSizeFor } from '../../web/paging.js';
import { bestGrid } from '../../web/layout.js';

/** @param {number} count @param {number} size */
function order(count, size) {
  /** @type {PageOrder<number>} */
  const pages = new PageOrder();
  pages.setSize(size);
  for (let i = 0; i < count; i++) {
    pages.add(i);
  }
  return pages;
}

test('page size: tiles never narrower than 160 px, at most 25', () => {
  assert.equal(pageSizeFor(1280, 640, 10), MAX_PAGE_SIZE);
  assert.equal(pageSizeFor(360, 500, 6), 10); // a phone: 2 columns of 5 rows
  assert.equal(pageSizeFor(100, 50, 10), 1);
});

test('joining goes last; the shown page does not move', () => {
  const pages = order(30, 25);
  pages.goTo(1);
  pages.add(30);
  assert.deepEqual(pages.shown(), [25, 26, 27, 28, 29, 30]);
});

test('leaving: the next after the shown page fills the gap, nobody on it moves', () => {
  const pages = order(60, 25);
  pages.goTo(1);
  const before = pages.shown();
  pages.remove(30); // on the shown page
  pages.remove(3); // on an earlier page
  const after = pages.shown();
  for (const [i, key] of before.entries()) {
    if (key !== 30) {
      assert.equal(after[i], key, `position ${i}`);
    }
  }
  assert.equal(after[5], 50); // the next in order took the leaver's place
  assert.equal(pages.pageOf(51), 0); // ...and the next one the gap on page 1
});

test('leaving from the last page: only the page last tile moves', () => {
  const pages = order(30, 25);
  pages.goTo(1);
  pages.remove(2);
  assert.deepEqual(pages.shown(), [25, 26, 27, 28]);
  assert.equal(pages.order[2], 29);
  pages.remove(25);
  pages.remove(26);
  pages.remove(27);
  pages.remove(28);
  assert.equal(pages.page, 0); // the page emptied: back to the last one left
});

test('a speaker off the shown page swaps with the quietest tile of page 1', () => {
  const pages = order(40, 25);
  pages.spoken(0);
  pages.spoken(5);
  assert.equal(pages.spoken(30, new Set([0])), true);
  assert.equal(pages.order[24], 30); // the later joiner among the never-speaking
  assert.equal(pages.order[30], 24);
  // Speaking again, or speaking on the shown page, changes nothing.
  const snapshot = [...pages.order];
  assert.equal(pages.spoken(30), false);
  pages.goTo(1);
  assert.equal(pages.spoken(35), false);
  assert.deepEqual(pages.order, snapshot);
});

test('grid: three tiles on a wide area fill the height, no 16:9 bands', () => {
  const g = bestGrid(3, 1036, 740, 10);
  assert.equal(g.cols, 2);
  assert.equal(Math.round(g.height * 2 + 10), 740);
  assert.ok(g.width / g.height >= 4 / 3 - 1e-9 && g.width / g.height <= 16 / 9 + 1e-9);
  const many = bestGrid(25, 876, 650, 10, 160);
  assert.ok(many.width >= 160, `25 tiles ${many.width} px wide`);
  // 14 tiles in 620x504: 4x4 at 4:3 would be larger, but narrower than 160 px.
  const size = pageSizeFor(620, 504, 10);
  assert.equal(size, 15);
  const fourteen = bestGrid(14, 620, 504, 10, 160);
  assert.ok(fourteen.width >= 160, `14 tiles ${fourteen.width} px wide`);
});
