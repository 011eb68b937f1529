import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { IscsiStats } from '../../src/iscsi/stats';
import { buildRegistry } from '../../src/metrics/registry';
import { CommandStats } from '../../src/scsi/command-stats';
import { StorageError } from '../../src/storage/errors';
import { JournalStats } from '../../src/storage/journal/journal-stats';
import { EXAMPLE_PRICES, monthlyCost } from '../../src/storage/lun-costs';
import { StoreStats } from '../../src/storage/store-stats';
import { VolumeStats } from '../../src/storage/volume-stats';

describe('Prometheus exposition', () => {
  const iscsi = new IscsiStats();
  const commands = new CommandStats();
  const volume = new VolumeStats();
  const store = new StoreStats();
  const costs = store.costsOf('p/x0');
  const journal = new JournalStats();
  const registry = buildRegistry({
    journal: () => ({ usedBytes: 3 << 20, capacityBytes: 1 << 30, backlogBytes: 8192, oldestRecordMs: 1500, stats: journal }),
    iscsi: { stats: iscsi, sessions: () => 2, connections: () => 3 },
    cluster: () => [
      {
        name: 'x0',
        state: 'standby' as const,
        takeovers: 1,
        handoversIn: 2,
        handoversOut: 3,
        fenced: 0,
        lastActivationSeconds: 0.25,
        lastDeactivationSeconds: 0.5,
      },
    ],
    luns: () => [
      {
        target: 'iqn.2026-11.t:x',
        lun: 0,
        name: 'x0',
        commands,
        volume,
        dirtyBytes: 4096,
        cachedBytes: 1 << 20,
        replaySeconds: 0,
        snapshotPreservedChunks: 7,
        snapshotPreservedBytes: 7 << 20,
        snapshots: 2,
        costs,
        allocatedBytes: 3 << 20,
        monthlyCost: monthlyCost(EXAMPLE_PRICES, 2e9, costs, 3600),
      },
    ],
    backends: () => [
      {
        kind: 's3',
        stats: store,
        pool: { inFlight: { foreground: 1, flush: 2, background: 0, control: 1 }, queued: { foreground: 0, flush: 5, background: 0, control: 0 } },
      },
    ],
  });

  it('exports counters, gauges and histograms from the layers counters', async () => {
    iscsi.loginFailed('authentication');
    iscsi.loginFailed('authentication');
    commands.record('READ(10)', 'good', 0.0003);
    commands.record('READ(10)', 'good', 0.002);
    commands.record('READ(10)', 'check-condition', 70);
    store.request('put', 'ok', 0.02, 1 << 20);
    // Attributed by key to the LUN whose root it is under; another LUN's or a bare key is not.
    store.request('put', 'ok', 0.02, 1000, 'p/x0/chunks/0000000000000001');
    store.request('get', 'unavailable', 0.02, 0, 'p/x0/volume.json');
    store.request('deleteMany', 'ok', 0.02, 0, 'p/x0/chunks/0000000000000002');
    store.request('put', 'ok', 0.02, 1000, 'p/x00/chunks/0000000000000001');
    store.retried('put', new StorageError('unavailable', 'slow down'));
    volume.flushLatency.observe(0.5);
    journal.onCommit({ records: 3, bytes: 12552, fsyncMs: 2 });
    const text = await registry.metrics();
    const line = (re: RegExp): void => assert.match(text, re);
    line(/^s3tgt_iscsi_sessions 2$/m);
    line(/^s3tgt_iscsi_connections 3$/m);
    line(/^s3tgt_login_failures_total\{reason="authentication"\} 2$/m);
    line(/^# TYPE s3tgt_scsi_command_seconds histogram$/m);
    const L = 'target="iqn.2026-11.t:x",lun="0",name="x0"';
    line(new RegExp(`^s3tgt_scsi_commands_total\\{${L},command="READ\\(10\\)",status="good"\\} 2$`, 'm'));
    line(new RegExp(`^s3tgt_snapshot_preserved_chunks_total\\{${L}\\} 7$`, 'm'));
    line(new RegExp(`^s3tgt_snapshots\\{${L}\\} 2$`, 'm'));
    line(new RegExp(`^s3tgt_snapshot_preserved_bytes_total\\{${L}\\} ${7 << 20}$`, 'm'));
    // Cumulative buckets: 0.0003 s falls in le=0.0005, 0.002 s in le=0.0025, 70 s only in +Inf.
    line(new RegExp(`^s3tgt_scsi_command_seconds_bucket\\{${L},command="READ\\(10\\)",le="0.00025"\\} 0$`, 'm'));
    line(new RegExp(`^s3tgt_scsi_command_seconds_bucket\\{${L},command="READ\\(10\\)",le="0.0005"\\} 1$`, 'm'));
    line(new RegExp(`^s3tgt_scsi_command_seconds_bucket\\{${L},command="READ\\(10\\)",le="0.0025"\\} 2$`, 'm'));
    line(new RegExp(`^s3tgt_scsi_command_seconds_bucket\\{${L},command="READ\\(10\\)",le="60"\\} 2$`, 'm'));
    line(new RegExp(`^s3tgt_scsi_command_seconds_bucket\\{${L},command="READ\\(10\\)",le="\\+Inf"\\} 3$`, 'm'));
    line(new RegExp(`^s3tgt_scsi_command_seconds_count\\{${L},command="READ\\(10\\)"\\} 3$`, 'm'));
    line(new RegExp(`^s3tgt_cache_dirty_bytes\\{${L}\\} 4096$`, 'm'));
    line(new RegExp(`^s3tgt_flush_seconds_count\\{${L}\\} 1$`, 'm'));
    line(/^s3tgt_store_requests_total\{backend="s3",op="put",outcome="ok"\} 3$/m);
    line(/^s3tgt_store_request_seconds_bucket\{backend="s3",op="put",le="0.025"\} 3$/m);
    line(/^s3tgt_store_retries_total\{backend="s3",op="put"\} 1$/m);
    line(/^s3tgt_store_sent_bytes_total\{backend="s3"\} 1050576$/m);
    line(new RegExp(`^s3tgt_lun_store_requests_total\\{${L},request="PUT"\\} 1$`, 'm'));
    line(new RegExp(`^s3tgt_lun_store_requests_total\\{${L},request="GET"\\} 1$`, 'm'));
    line(new RegExp(`^s3tgt_lun_store_requests_total\\{${L},request="DELETE"\\} 1$`, 'm'));
    line(new RegExp(`^s3tgt_lun_store_sent_bytes_total\\{${L}\\} 1000$`, 'm'));
    line(new RegExp(`^s3tgt_lun_allocated_bytes\\{${L}\\} ${3 << 20}$`, 'm'));
    // 2 GB at $0.023; one PUT in an hour is 720 a month at $0.005 per 1000, one GET 720 at $0.0004.
    line(new RegExp(`^s3tgt_lun_estimated_monthly_cost_dollars\\{${L},component="storage"\\} 0.046$`, 'm'));
    line(new RegExp(`^s3tgt_lun_estimated_monthly_cost_dollars\\{${L},component="requests"\\} 0.003888`, 'm'));
    line(/^s3tgt_pool_queued\{backend="s3",lane="flush"\} 5$/m);
    line(/^s3tgt_process_resident_memory_bytes \d+/m);
    line(/^s3tgt_journal_backlog_bytes 8192$/m);
    line(/^s3tgt_journal_oldest_record_age_seconds 1.5$/m);
    line(/^s3tgt_journal_records_total 3$/m);
    line(/^s3tgt_journal_fsync_seconds_bucket\{le="0.0025"\} 1$/m);
    line(/^s3tgt_alua_state\{name="x0",state="standby"\} 1$/m);
    line(/^s3tgt_alua_state\{name="x0",state="active-optimized"\} 0$/m);
    line(/^s3tgt_cluster_handovers_total\{name="x0",direction="out"\} 3$/m);
    line(/^s3tgt_cluster_activation_seconds\{name="x0"\} 0.25$/m);
  });

  it('every metric the Grafana dashboard queries is exported', async () => {
    const dashboard = readFileSync(path.resolve(__dirname, '../../../config/grafana-dashboard.json'), 'utf8');
    const text = await registry.metrics();
    const used = new Set(dashboard.match(/s3tgt_[a-z0-9_]+/g) ?? []);
    assert.ok(used.size > 10);
    for (const name of used) assert.match(text, new RegExp(`^${name}[{ ]`, 'm'), `${name} (used by the dashboard) is not exported`);
  });

  it('counters follow the source between scrapes', async () => {
    iscsi.loginFailed('authorization');
    const text = await registry.metrics();
    assert.match(text, /^s3tgt_login_failures_total\{reason="authorization"\} 1$/m);
    assert.match(text, /^s3tgt_login_failures_total\{reason="authentication"\} 2$/m);
  });
});
