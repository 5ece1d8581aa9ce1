// Roles and moderation in headless Chromium, one server: the first participant is the
// moderator; a raised hand reaches the moderator's People panel; the moderator mutes a
// participant (the others' inbound audio packets from them stop rising, and the
// participant is told who did it), removes and bans another (their tile disappears
// everywhere, they see why, and joining again under the same name is refused), and
// locks the room: a joiner waits ("Waiting for a moderator…") until admitted.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { joinByLink, launchParticipant, pressJoin, scenarioSteps, startServer, waitUntil } from './harness.mjs';
import { inboundOf } from './pagestats.mjs';

/** @typedef {import('./harness.mjs').Participant} Participant */
/** @typedef {import('./harness.mjs').Server} Server */

const ROOM = `moderation-${process.pid}`;

/**
 * Audio packets `p` has received from participant `from` so far.
 * @param {Participant} p
 * @param {number} from
 */
async function audioPacketsFrom(p, from) {
  const { streams } = await inboundOf(p);
  return streams
    .filter((s) => s.kind === 'audio' && s.participant === from)
    .reduce((sum, s) => sum + s.packetsReceived, 0);
}

/**
 * The row of participant `id` in `p`'s People panel.
 * @param {Participant} p
 * @param {number} id
 */
function personRow(p, id) {
  return p.page.locator(`#moderation .moderation-people .moderation-person[data-id="${id}"]`);
}

/** @param {Participant} p */
async function openPeople(p) {
  const panel = p.page.locator('#moderation');
  if (!(await panel.isVisible())) {
    await p.page.getByRole('button', { name: /^People/ }).click();
  }
  await panel.waitFor({ state: 'visible', timeout: 5000 });
}

describe('roles and moderation', { timeout: 240_000 }, () => {
  /** @type {Server} */
  let server;
  /** @type {Record<string, Participant>} */
  const people = {};
  /** @type {Record<string, number>} */
  const ids = {};

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await Promise.all(Object.values(people).map((p) => p.close()));
    await server?.stop();
  });

  const step = scenarioSteps(() => server, () => Object.values(people));

  step('three join; the first is the moderator and everyone sees it', async () => {
    for (const label of ['Ann', 'Bob', 'Cy']) {
      const p = await launchParticipant(label);
      people[label] = p;
      ids[label] = await joinByLink(p, server, ROOM, label);
    }
    await openPeople(people.Bob);
    const annRow = personRow(people.Bob, ids.Ann);
    await annRow.locator('.role-moderator').waitFor({ timeout: 5000 });
    // Bob is no moderator: no actions in his panel, and no menu on the tiles.
    assert.equal(await people.Bob.page.locator('#moderation [data-action="remove"]').count(), 0);
    // Ann's tile carries the moderator badge for the others; only Ann's tiles have menus.
    await people.Bob.page.locator(`[data-participant-id="${ids.Ann}"] .tile-role.role-moderator`).first().waitFor({ timeout: 5000 });
    await people.Ann.page.locator(`[data-participant-id="${ids.Bob}"] .tile-menu`).first().waitFor({ timeout: 5000 });
    assert.equal(await people.Bob.page.locator('.tile-menu').count(), 0, 'a participant has no moderation menu on tiles');
  }, { setsUp: true });

  step('a raised hand reaches the moderator', async () => {
    await people.Cy.page.getByRole('button', { name: 'Raise hand' }).click();
    await openPeople(people.Ann);
    const hands = people.Ann.page.locator('#moderation .moderation-hands .moderation-person');
    await hands.first().waitFor({ timeout: 5000 });
    assert.equal(await hands.first().getAttribute('data-id'), String(ids.Cy));
    await hands.first().locator('[data-action="lower-hand"]').click();
    await hands.first().waitFor({ state: 'detached', timeout: 5000 });
  });

  step('the moderator mutes Bob: his audio stops reaching Cy, and he is told by whom', async () => {
    await waitUntil(async () => (await audioPacketsFrom(people.Cy, ids.Bob)) > 20, {
      timeoutMs: 15_000,
      message: "Cy receives Bob's audio",
    });
    await personRow(people.Ann, ids.Bob).locator('[data-action="mute-microphone"]').click();
    await people.Bob.page.getByText('Your microphone was switched off by Ann.').waitFor({ timeout: 5000 });
    // Let anything in flight arrive, then the count must stand still.
    await waitUntil(async () => {
      const a = await audioPacketsFrom(people.Cy, ids.Bob);
      await new Promise((r) => setTimeout(r, 1000));
      return (await audioPacketsFrom(people.Cy, ids.Bob)) === a;
    }, { timeoutMs: 10_000, message: "Bob's audio stops at Cy" });
    const before = await audioPacketsFrom(people.Cy, ids.Bob);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await audioPacketsFrom(people.Cy, ids.Bob), before, "no audio from Bob after the mute");
    // Chat announces it to everyone.
    await people.Cy.page.getByText("Ann muted Bob's microphone").waitFor({ timeout: 5000 });
  });

  step('the moderator removes and bans Cy: the tile goes, Cy sees why, and cannot come back', async () => {
    const tile = people.Ann.page.locator(`[data-participant-id="${ids.Cy}"]`);
    await tile.first().waitFor({ timeout: 5000 });
    // This time from the menu on Cy's tile.
    const menu = people.Ann.page.locator(`[data-participant-id="${ids.Cy}"] .tile-menu`).first();
    assert.equal(await menu.locator('summary').getAttribute('aria-label'), 'Moderate Cy');
    await menu.locator('summary').click();
    await menu.locator('[data-action="ban"]').click();
    await tile.first().waitFor({ state: 'detached', timeout: 10_000 });
    await people.Bob.page.locator(`[data-participant-id="${ids.Cy}"]`).first().waitFor({ state: 'detached', timeout: 10_000 });
    await people.Cy.page.getByText(/Ann removed you from the room/).waitFor({ timeout: 10_000 });
    // Joining again under the same name is refused while the meeting lasts.
    await people.Cy.page.goto(`${server.url}r/${ROOM}?name=Cy`);
    await pressJoin(people.Cy.page);
    await people.Cy.page.getByRole('alert').filter({ hasText: /cannot come back/ }).waitFor({ timeout: 10_000 });
  });

  step('a locked room keeps a joiner waiting until the moderator admits them', async () => {
    await people.Ann.page.locator('#moderation [data-action="lock"]').click();
    await people.Ann.page.locator('#moderation [data-action="unlock"]').waitFor({ timeout: 5000 });
    const dan = await launchParticipant('Dan');
    people.Dan = dan;
    await dan.page.goto(`${server.url}r/${ROOM}?name=Dan`);
    await pressJoin(dan.page);
    await dan.page.getByText('Waiting for a moderator to let you in').waitFor({ timeout: 10_000 });
    assert.equal(await dan.page.evaluate(() => /** @type {any} */ (window).lanmeet.conn.you), null, 'not in yet');
    const waiting = people.Ann.page.locator('#moderation .moderation-lobby .moderation-person');
    await waiting.first().waitFor({ timeout: 5000 });
    assert.equal(await waiting.first().locator('.person-name').textContent(), 'Dan');
    await waiting.first().locator('[data-action="admit"]').click();
    await dan.page.waitForFunction(() => /** @type {any} */ (window).lanmeet?.conn?.you != null, null, { timeout: 10_000 });
    await people.Bob.page.getByText('Ann let Dan in').waitFor({ timeout: 5000 });
  });
});
