#!/usr/bin/env -S node --no-memory-reducer
import { Command, Option } from 'commander';
import { missingServeFlags, SERVE_V8_FLAGS } from '../app/node-flags';
import { Service } from '../app/serve';
import { loadConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { formatSize, parseSize } from '../config/units';
import { LeaseError } from '../storage/lease';
import { configureLogging, log } from '../util/log';
import { lunClone, lunHydrate } from './clone';
import { defragOffline, defragOnline, formatReport } from './defrag';
import { CliError } from './errors';
import { exportImage, importImage } from './image';
import { formatStatus, journalDiscard, journalExport, journalStatus } from './journal';
import { formatInfo, formatList, lunCreate, lunDelete, lunResize, lunStatus } from './lun';
import { lunMove } from './move';
import { formatSnapshots, snapshotCreate, snapshotDelete, snapshotList, snapshotRestore } from './snapshot';

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3, findings: 4, lease: 5 } as const;

const program = new Command();
program
  .name('s3tgt')
  .description('iSCSI target whose disks live in S3')
  .version('0.1.0')
  .addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 failure, 2 usage, 3 configuration error, 4 findings (defrag found corrupt chunks), 5 the LUN is in use (lease).',
  );

const configOption = (): Option => new Option('-c, --config <file>', 'configuration file (YAML)').makeOptionMandatory();

/** Loads the configuration for a command that is not `serve`: logs stay quiet. */
function configFor(file: string) {
  const config = loadConfig(file);
  configureLogging('warn', config.log.format);
  return config;
}

program
  .command('serve')
  .description('run the iSCSI target (SIGTERM/SIGINT: graceful stop; SIGHUP: reload the configuration)')
  .addOption(configOption())
  .action(async (opts: { config: string }) => {
    const config = loadConfig(opts.config);
    configureLogging(config.log.level, config.log.format);
    const missing = missingServeFlags(process.execArgv);
    if (missing.length > 0) {
      log.warn('node started without the V8 options s3tgt serve needs: reads may run at half speed after an idle minute (Node 20, 22)', {
        code: 'SERVE_V8_FLAGS_MISSING',
        missing,
        start: `node ${SERVE_V8_FLAGS.join(' ')} dist/src/cli/main.js serve ...`,
      });
    }
    const service = await Service.start(config);
    let signals = 0;
    const stop = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn('second signal: exiting now, without waiting for the flush', { signal: sig });
        process.exit(EXIT.failure);
      }
      log.info('stopping', { signal: sig });
      service.stop().then(
        () => process.exit(EXIT.ok),
        () => process.exit(EXIT.failure),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    let reloading = Promise.resolve();
    process.on('SIGHUP', () => {
      reloading = reloading.then(async () => {
        try {
          await service.reload(loadConfig(opts.config));
        } catch (e) {
          // A bad file or a LUN that cannot open leaves the running configuration as it was.
          log.error('reload failed; the running configuration is unchanged', { error: (e as Error).message });
        }
      });
    });
  });

program
  .command('check-config')
  .description('validate a configuration file and print what it declares')
  .argument('<file>', 'configuration file (YAML)')
  .action((file: string) => {
    const c = loadConfig(file);
    const luns = c.targets.flatMap((t) => t.luns.map((l) => `  ${t.iqn} LUN ${l.lun}: "${l.name}" ${formatSize(l.sizeBytes)} on ${l.store}`));
    process.stdout.write(
      `${file}: OK\n  portals: ${c.portals.map((p) => `${p.host}:${p.port}`).join(', ')}\n  metrics: ${
        c.metrics.listen ? `${c.metrics.listen.host}:${c.metrics.listen.port}` : 'off'
      }\n${luns.join('\n')}\n`,
    );
  });

const lun = program.command('lun').description('create, list, inspect, grow and delete LUNs in their store');

lun
  .command('list')
  .description('every LUN of the configuration with its state in the store')
  .addOption(configOption())
  .option('--json', 'print JSON')
  .action(async (opts: { config: string; json?: boolean }) => {
    const rows = await lunStatus(configFor(opts.config), undefined, false);
    process.stdout.write(`${opts.json ? JSON.stringify(rows, null, 2) : formatList(rows)}\n`);
  });

lun
  .command('info')
  .description('size, UUID, allocation and lease of one LUN')
  .argument('<name>', 'LUN name (targets[].luns[].name)')
  .addOption(configOption())
  .option('--json', 'print JSON')
  .action(async (name: string, opts: { config: string; json?: boolean }) => {
    const config = configFor(opts.config);
    const [row] = await lunStatus(config, [name], true);
    if (!row) throw new CliError('CLI_ERR_NO_LUN', `no LUN named "${name}" in ${config.file}`);
    process.stdout.write(`${opts.json ? JSON.stringify(row, null, 2) : formatInfo(row)}\n`);
  });

lun
  .command('create')
  .description('create a LUN in its store with the configured size and block size (serve also does this on first use)')
  .argument('<name>', 'LUN name')
  .addOption(configOption())
  .action(async (name: string, opts: { config: string }) => {
    const info = await lunCreate(configFor(opts.config), name);
    process.stdout.write(`created LUN "${name}": ${formatSize(info.sizeBytes)}, ${info.logicalBlockSize}-byte blocks, uuid ${info.uuid}\n`);
  });

lun
  .command('resize')
  .description('grow a LUN (online through the running server when it serves the LUN); set the same size in the configuration')
  .argument('<name>', 'LUN name')
  .requiredOption('-s, --size <size>', 'new size, e.g. 20GiB (multiple of 1 MiB; never smaller)')
  .addOption(configOption())
  .action(async (name: string, opts: { config: string; size: string }) => {
    const size = parseSize(opts.size);
    if (typeof size === 'string') throw new CliError('CLI_ERR_USAGE', `--size: ${size}`);
    const r = await lunResize(configFor(opts.config), name, size);
    process.stdout.write(
      `LUN "${name}": ${formatSize(r.from)} -> ${formatSize(r.to)}${r.online ? ' (online: initiators were told the capacity changed)' : ''}\n`,
    );
  });

lun
  .command('delete')
  .description('delete every object of a LUN (refused while it is served)')
  .argument('<name>', 'LUN name')
  .addOption(configOption())
  .option('--yes', 'really delete (required)')
  .action(async (name: string, opts: { config: string; yes?: boolean }) => {
    if (!opts.yes) throw new CliError('CLI_ERR_USAGE', `deleting LUN "${name}" destroys its data: add --yes`);
    const n = await lunDelete(configFor(opts.config), name);
    process.stdout.write(`deleted LUN "${name}" (${n} objects)\n`);
  });

lun
  .command('clone')
  .description('make LUN NEW (configured, not created yet) a writable clone of a snapshot; no data is copied')
  .argument('<source>', 'LUN@SNAPSHOT')
  .argument('<new>', 'name of the clone (an entry of the configuration)')
  .addOption(configOption())
  .option('--hydrate', 'then copy every chunk it shares into it (server-side), so it no longer depends on the snapshot')
  .action(async (source: string, name: string, opts: { config: string; hydrate?: boolean }) => {
    const config = configFor(opts.config);
    const info = await lunClone(config, source, name);
    process.stdout.write(`created clone "${name}" of ${source}: ${formatSize(info.sizeBytes)}, uuid ${info.uuid}\n`);
    if (opts.hydrate) process.stdout.write(`${hydrated(name, await lunHydrate(config, name))}\n`);
  });

function hydrated(name: string, r: Awaited<ReturnType<typeof lunHydrate>>): string {
  if (r === 'started') return `hydrating "${name}" in the server, in the background: "s3tgt lun info ${name}" says "clone of" until it is done`;
  return `hydrated "${name}": ${r.copied} chunks copied; it no longer depends on its snapshot`;
}

lun
  .command('move')
  .description('cluster: hand a LUN over to another node at a barrier (flush, then the node named takes its lease at once)')
  .argument('<name>', 'LUN name')
  .argument('<node>', 'the node to move it to')
  .addOption(configOption())
  .action(async (name: string, node: string, opts: { config: string }) => {
    const r = await lunMove(configFor(opts.config), name, node);
    process.stdout.write(`moved "${name}" from node ${r.from} to node ${r.to} (${r.seconds.toFixed(2)} s to hand over)\n`);
  });

lun
  .command('hydrate')
  .description('copy every chunk a clone still shares with its snapshot into it (server-side; in the background if served): it becomes independent')
  .argument('<name>', 'LUN name of the clone')
  .addOption(configOption())
  .action(async (name: string, opts: { config: string }) => {
    process.stdout.write(`${hydrated(name, await lunHydrate(configFor(opts.config), name))}\n`);
  });

const snapshot = program
  .command('snapshot')
  .description('point-in-time snapshots of a LUN (through the server that serves it, or offline under its lease)');

snapshot
  .command('create')
  .description('take a snapshot: one record; each chunk is copied out (server-side) before its first overwrite')
  .argument('<lun>', 'LUN name')
  .argument('<name>', 'snapshot name')
  .addOption(configOption())
  .action(async (lunName: string, name: string, opts: { config: string }) => {
    const s = await snapshotCreate(configFor(opts.config), lunName, name);
    process.stdout.write(`snapshot "${s.name}" of "${lunName}" taken at ${s.created}${s.online ? ' (online, at a flush barrier)' : ''}\n`);
  });

snapshot
  .command('list')
  .description("a LUN's snapshots, oldest first, with the chunks each preserved")
  .argument('<lun>', 'LUN name')
  .addOption(configOption())
  .option('--json', 'print JSON')
  .action(async (lunName: string, opts: { config: string; json?: boolean }) => {
    const rows = await snapshotList(configFor(opts.config), lunName);
    process.stdout.write(`${opts.json ? JSON.stringify(rows, null, 2) : formatSnapshots(rows)}\n`);
  });

snapshot
  .command('delete')
  .description('delete a snapshot (the older ones keep their contents)')
  .argument('<lun>', 'LUN name')
  .argument('<name>', 'snapshot name')
  .addOption(configOption())
  .action(async (lunName: string, name: string, opts: { config: string }) => {
    const r = await snapshotDelete(configFor(opts.config), lunName, name);
    process.stdout.write(`deleted snapshot "${name}" of "${lunName}": ${r.deleted} objects, ${r.handedOver} chunks handed to the older snapshot\n`);
  });

snapshot
  .command('restore')
  .description('roll a LUN back to a snapshot (newer snapshots keep their contents); a served LUN only with --force')
  .argument('<lun>', 'LUN name')
  .argument('<name>', 'snapshot name')
  .addOption(configOption())
  .option('--yes', 'really roll back (required)')
  .option('--force', 'roll back a LUN while it is served (through the server; initiators get a unit attention, MEDIUM MAY HAVE CHANGED)')
  .action(async (lunName: string, name: string, opts: { config: string; yes?: boolean; force?: boolean }) => {
    if (!opts.yes) throw new CliError('CLI_ERR_USAGE', `restoring overwrites "${lunName}" with snapshot "${name}": add --yes`);
    const r = await snapshotRestore(configFor(opts.config), lunName, name, opts.force === true);
    process.stdout.write(
      `restored "${lunName}" to snapshot "${name}"${r.online ? ' online' : ''}: ${r.restored} chunks copied back, ${r.deleted} deleted\n`,
    );
  });

program
  .command('import')
  .description('copy a raw image file into a LUN (sparse: zero chunks become holes; progress bar on a terminal)')
  .argument('<name>', 'LUN name')
  .argument('<file>', 'raw image')
  .addOption(configOption())
  .action(async (name: string, file: string, opts: { config: string }) => {
    const r = await importImage(configFor(opts.config), name, file);
    process.stdout.write(
      `imported ${formatSize(r.bytes)} into "${name}" in ${r.seconds.toFixed(1)} s: ${r.dataChunks} chunks with data, ${r.holeChunks} holes\n`,
    );
  });

program
  .command('export')
  .description('copy a LUN into a raw image file (sparse: holes are not read and stay holes; progress bar on a terminal)')
  .argument('<name>', 'LUN name')
  .argument('<file>', 'raw image to write')
  .addOption(configOption())
  .option('--snapshot <snapshot>', 'export the LUN as it was when this snapshot was taken')
  .action(async (name: string, file: string, opts: { config: string; snapshot?: string }) => {
    const r = await exportImage(configFor(opts.config), name, file, opts.snapshot);
    process.stdout.write(
      `exported "${name}"${opts.snapshot ? ` at snapshot "${opts.snapshot}"` : ''} (${formatSize(r.bytes)}) to ${file} in ${r.seconds.toFixed(1)} s: ${r.dataChunks} chunks with data, ${r.holeChunks} holes\n`,
    );
  });

program
  .command('defrag')
  .description('compact a LUN: delete all-zero chunks and orphans, verify checksums, rebuild the allocation map')
  .argument('<lun>', 'LUN name (targets[].luns[].name)')
  .addOption(configOption())
  .option('-n, --dry-run', 'report what would be done, change nothing')
  .option('--json', 'print the summary as JSON')
  .option('--online', 'ask the running server (its metrics.listen endpoint) to do it; safe while it serves the LUN')
  .option('--rekey', 'also store every chunk again (snapshots too) sealed with the current key, then drop older keys from the LUN (offline)')
  .action(async (name: string, opts: { config: string; dryRun?: boolean; json?: boolean; online?: boolean; rekey?: boolean }) => {
    const config = configFor(opts.config);
    if (opts.rekey && opts.online) throw new CliError('CLI_ERR_USAGE', "--rekey runs offline (under the LUN's lease): stop serving the LUN first");
    const report = opts.online
      ? await defragOnline(config, name, opts.dryRun === true)
      : await defragOffline(config, name, { dryRun: opts.dryRun === true, rekey: opts.rekey === true });
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
    // Corrupt chunks are a finding the admin must act on.
    process.exitCode = report.corrupt.length > 0 ? EXIT.findings : EXIT.ok;
  });

const journal = program.command('journal').description('the local journal: its state, and records quarantined at a LUN start (docs/journal.md)');

journal
  .command('status')
  .description('segments, the lock holder, records each LUN would replay, quarantined records and why')
  .addOption(configOption())
  .option('--json', 'print JSON')
  .action(async (opts: { config: string; json?: boolean }) => {
    const s = await journalStatus(configFor(opts.config));
    process.stdout.write(`${opts.json ? JSON.stringify(s, null, 2) : formatStatus(s)}\n`);
  });

journal
  .command('export')
  .description("write a LUN's quarantined records at their offsets into a file (sparse overlay, created if missing)")
  .argument('<lun>', 'LUN name')
  .argument('<file>', 'file to write')
  .addOption(configOption())
  .action(async (name: string, file: string, opts: { config: string }) => {
    const r = await journalExport(configFor(opts.config), name, file);
    process.stdout.write(`wrote ${r.records} quarantined records (${formatSize(r.bytes)}) of "${name}" into ${file}\n`);
  });

journal
  .command('discard')
  .description("delete a LUN's quarantined records: its next start serves what S3 holds")
  .argument('<lun>', 'LUN name')
  .addOption(configOption())
  .option('--yes', 'really discard (required)')
  .action(async (name: string, opts: { config: string; yes?: boolean }) => {
    if (!opts.yes) throw new CliError('CLI_ERR_USAGE', `discarding the quarantined records of "${name}" loses what they hold: add --yes`);
    const n = await journalDiscard(configFor(opts.config), name);
    process.stdout.write(`discarded ${n} quarantine files of "${name}"\n`);
  });

program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
});

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`s3tgt: configuration error: ${e.message}\n`);
    process.exit(EXIT.config);
  }
  process.stderr.write(`s3tgt: ${e instanceof Error ? e.message : String(e)}\n`);
  if (e instanceof LeaseError) process.exit(EXIT.lease);
  process.exit(e instanceof CliError && e.code === 'CLI_ERR_USAGE' ? EXIT.usage : EXIT.failure);
});
