#!/usr/bin/env node
import { Command } from 'commander';
import { serve } from '../app/serve';
import { loadConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { LeaseError } from '../storage/lease';
import { configureLogging, log } from '../util/log';
import { defragOffline, defragOnline, formatReport } from './defrag';

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3, findings: 4, lease: 5 } as const;

const program = new Command();
program.name('s3tgt').description('iSCSI target whose disks live in S3').version('0.1.0');

program
  .command('serve')
  .description('run the iSCSI target')
  .requiredOption('-c, --config <file>', 'configuration file (YAML)')
  .action(async (opts: { config: string }) => {
    const config = loadConfig(opts.config);
    const running = await serve(config);
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn('second signal: exiting now', { signal: sig });
        process.exit(EXIT.failure);
      }
      log.info('stopping', { signal: sig });
      running.stop().then(
        () => process.exit(EXIT.ok),
        () => process.exit(EXIT.failure),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });

program
  .command('defrag')
  .description('compact a LUN: delete all-zero chunks and orphans, verify checksums, rebuild the allocation map')
  .argument('<lun>', 'LUN name (targets[].luns[].name)')
  .requiredOption('-c, --config <file>', 'configuration file (YAML)')
  .option('-n, --dry-run', 'report what would be done, change nothing')
  .option('--json', 'print the summary as JSON')
  .option('--online', 'ask the running server (its metrics.listen endpoint) to do it; safe while it serves the LUN')
  .action(async (lun: string, opts: { config: string; dryRun?: boolean; json?: boolean; online?: boolean }) => {
    const config = loadConfig(opts.config);
    configureLogging('warn', config.log.format);
    const report = opts.online
      ? await defragOnline(config, lun, opts.dryRun === true)
      : await defragOffline(config, lun, { dryRun: opts.dryRun === true });
    process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : formatReport(report)}\n`);
    // Corrupt chunks are a finding the admin must act on.
    process.exitCode = report.corrupt.length > 0 ? EXIT.findings : EXIT.ok;
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
  process.exit(e instanceof LeaseError ? EXIT.lease : EXIT.failure);
});
