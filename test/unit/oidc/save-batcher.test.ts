/**
 * Client-credentials token saves made in one turn of the event loop are written together (one
 * statement); each caller waits for its own row, and a failed write fails every caller of it.
 */
import { createSaveBatcher } from '../../../src/oidc/adapter.js';
import type { OidcPayloadRepository, PayloadSave } from '../../../src/store/oidc-payloads.js';

function fakeStore(state = { fail: false }) {
  const calls: { kind: 'upsert' | 'saveAll'; ids: string[] }[] = [];
  const written = (kind: 'upsert' | 'saveAll', ids: string[]) => {
    calls.push({ kind, ids });
    return state.fail ? Promise.reject(new Error('connection terminated')) : Promise.resolve();
  };
  const store = {
    upsert: (_model: string, id: string) => written('upsert', [id]),
    saveAll: (saves: readonly PayloadSave[]) => written('saveAll', saves.map((s) => s.id)),
  } as unknown as OidcPayloadRepository;
  return { store, calls };
}
const save = (id: string): PayloadSave => ({ model: 'ClientCredentials', id, payload: { jti: id } as never, expiresInSeconds: 600 });

it('saves made in one turn go in one statement; a save alone goes as an upsert', async () => {
  const { store, calls } = fakeStore();
  const batched = createSaveBatcher(store);
  await Promise.all([batched(save('a')), batched(save('b')), batched(save('c'))]);
  await batched(save('d'));
  expect(calls).toEqual([
    { kind: 'saveAll', ids: ['a', 'b', 'c'] },
    { kind: 'upsert', ids: ['d'] },
  ]);
});

it('no caller is answered before the statement that writes its row has finished', async () => {
  let finish!: () => void;
  const store = { saveAll: () => new Promise<void>((r) => (finish = r)), upsert: () => Promise.resolve() } as unknown as OidcPayloadRepository;
  const batched = createSaveBatcher(store);
  let answered = 0;
  const both = Promise.all([batched(save('a')).then(() => (answered += 1)), batched(save('b')).then(() => (answered += 1))]);
  await new Promise((r) => setTimeout(r, 20));
  expect(answered).toBe(0);
  finish();
  await both;
  expect(answered).toBe(2);
});

it('a failed write fails every caller in it, and the next turn starts afresh', async () => {
  const state = { fail: true };
  const { store, calls } = fakeStore(state);
  const batched = createSaveBatcher(store);
  const results = await Promise.allSettled([batched(save('a')), batched(save('b'))]);
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  state.fail = false;
  await batched(save('c'));
  expect(calls).toEqual([
    { kind: 'saveAll', ids: ['a', 'b'] },
    { kind: 'upsert', ids: ['c'] },
  ]);
});
