import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStorageError } from '../../src/storage/errors';
import { LunLayout } from '../../src/storage/layout';
import { MemoryObjectStore } from '../../src/storage/memory-store';
import { readVolumeInfo } from '../../src/storage/volume-meta';
import { ScsiFixture } from '../lib/scsi-fixture';

const recordError = (key: string, field: RegExp) => (e: unknown) =>
  isStorageError(e) && e.code === 'STORE_ERR_RECORD' && e.message.includes(key) && field.test(e.message);

/**
 * Issue 13, defect 10: records read back from the store are checked like volume.json, field by
 * field, and a bad one is refused with an error naming its key and field (on the commit before,
 * persistent reservations and mode pages were cast from JSON and a bad file was skipped).
 */
describe('records read back from the store (issue 13, defect 10)', () => {
  const records: Array<[string, string, RegExp]> = [
    [
      'persistent-reservations',
      '{"version":1,"generation":3,"aptpl":true,"registrations":[{"nexusId":"n","key":"xyz"}],"reservation":null}',
      /registrations\[0\]\.key/,
    ],
    ['persistent-reservations', '{"version":1,"generation":-1,"aptpl":false,"registrations":[],"reservation":null}', /generation/],
    [
      'persistent-reservations',
      '{"version":1,"generation":1,"aptpl":true,"registrations":[],"reservation":{"holder":"n","type":2}}',
      /reservation\.type/,
    ],
    ['mode-pages', '{"version":1,"pages":{"8":"zz"}}', /pages\.8/],
    ['mode-pages', '{"version":1,"pages":{"99":"00"}}', /pages\.99: no such mode page/],
    ['mode-pages', '[1,2]', /not an object/],
    ['mode-pages', 'not json', /not valid JSON/],
  ];
  for (const [name, body, field] of records) {
    it(`${name}: ${body.slice(0, 60)} is refused, naming the field`, async () => {
      const fx = new ScsiFixture();
      await fx.store.put(fx.volume.layout.recordKey(name), Buffer.from(body));
      await assert.rejects(fx.lu.load(), recordError(`records/${name}.json`, field));
    });
  }

  it('a well-formed record still loads (APTPL registrations come back)', async () => {
    const fx = new ScsiFixture();
    const rec = {
      version: 1,
      generation: 7,
      aptpl: true,
      registrations: [
        { nexusId: 'n1', key: 'abc', initiatorPort: 'iqn.x,i,0x1', transportId: '00ff', relativeTargetPortId: 1, allTargetPorts: false },
      ],
      reservation: { holder: 'n1', type: 5 },
    };
    await fx.store.put(fx.volume.layout.recordKey('persistent-reservations'), Buffer.from(JSON.stringify(rec)));
    await fx.lu.load();
  });

  it('volume.json with a bad field names it', async () => {
    const store = new MemoryObjectStore();
    const layout = new LunLayout('p', 'v');
    await store.put(layout.volumeKey, Buffer.from('{"formatVersion":1,"name":"v","sizeBytes":1.5}'));
    await assert.rejects(readVolumeInfo(store, layout), recordError('p/v/volume.json', /sizeBytes/));
  });
});
