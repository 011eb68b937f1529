#!/usr/bin/env node
import { Command } from 'commander';
import { serve } from '../app/serve';
import { loadConfig } from '../config/config';
import { ConfigError } from '../config/errors';
import { log } from '../util/log';

/** Exit codes (documented in the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 3 } as const;

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

program.exitOverride((err) => {
  process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
});

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ConfigError) {
    process.stderr.write(`s3tgt: configuration error: ${e.message}\n`);
    process.exit(EXIT.config);
  }
  process.stderr.write(`s3tgt: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(EXIT.failure);
});
