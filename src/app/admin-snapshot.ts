import { WHOLE_MEDIUM } from '../scsi/watched-volume';
import { StorageError } from '../storage/errors';
import { SnapshotCatalog } from '../storage/snapshots/catalog';
import { createSnapshot, deleteSnapshot, type LiveLun, restoreSnapshot } from '../storage/snapshots/operations';
import { log } from '../util/log';
import type { ServedLun, Service } from './serve';

/**
 * A snapshot operation on a LUN this process serves (the admin endpoint runs one per LUN at a
 * time): create and delete at a barrier of the live volume; a restore (forced: the caller
 * checked) replaces the volume's contents at a barrier, after which every initiator gets a
 * unit attention. Afterwards the LUN's snapshot count is read again (for the metrics).
 */
export async function snapshotOnline(service: Service, lun: ServedLun, op: 'create' | 'delete' | 'restore', snapshot: string): Promise<object> {
  const { lease, preserving } = lun;
  const name = lun.config.name;
  if (!lease || !preserving) throw new StorageError('invalid', `LUN ${name} is a snapshot LUN`, { code: 'STORE_ERR_SNAPSHOT' });
  const { backend, layout } = service.backends.for(lun.config);
  const store = lease.gate.bind(backend.store);
  const live: LiveLun = {
    barrier: (fn) => lun.volume.barrier(fn),
    retarget: (s, fresh) => {
      preserving.retarget(s, fresh);
      if (!fresh) void preserving.loadPreserved().catch((e: unknown) => log.warn('listing a snapshot failed', { lun: name, error: String(e) }));
    },
  };
  try {
    if (op === 'create') return await createSnapshot(store, layout, lun.volume.info, snapshot, live);
    if (op === 'delete') return await deleteSnapshot(store, layout, snapshot, live);
    try {
      // The restore changes the medium behind the SCSI layer: ODX tokens of this LU are
      // cancelled before it starts and again once it is done.
      lun.lu.writes.changed(WHOLE_MEDIUM);
      const restored = await lun.volume.replaceContents(async () => {
        try {
          return await restoreSnapshot(store, layout, lun.volume.info, snapshot);
        } finally {
          // The restore preserved chunks into the newest snapshot through its own store: list again.
          live.retarget((await SnapshotCatalog.load(store, layout)).newest, false);
        }
      });
      log.warn('snapshot restored online (forced)', { lun: name, snapshot, ...restored });
      return restored;
    } finally {
      // The medium changed under every initiator, all of it or part (a restore that failed
      // halfway): UNIT ATTENTION 28h/00h, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
      lun.lu.writes.changed(WHOLE_MEDIUM);
      lun.lu.ua.establish('MediumMayHaveChanged');
    }
  } finally {
    lun.snapshots = (await SnapshotCatalog.load(backend.store, layout)).snapshots.length;
  }
}
