import winston from 'winston';

/**
 * One winston logger for the process. Structured JSON or human text; secrets are redacted by
 * key name before anything is written, so no call site can leak a CHAP secret by accident.
 */
const SECRET_KEY = /secret|password|chap_r|chap_c|credential|authorization/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  for (const k of Object.keys(info)) {
    if (SECRET_KEY.test(k)) info[k] = '[redacted]';
    else if (typeof info[k] === 'object') info[k] = redact(info[k]);
  }
  return info;
});

export type LogFormat = 'json' | 'text';

function formatFor(format: LogFormat): winston.Logform.Format {
  return format === 'json'
    ? winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
        redactFormat(),
        winston.format.timestamp(),
        winston.format.printf(({ timestamp, level, message, ...rest }) => {
          const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
          return `${String(timestamp)} ${level} ${String(message)}${extra}`;
        }),
      );
}

export const log = winston.createLogger({
  level: process.env.S3TGT_LOG_LEVEL ?? 'info',
  format: formatFor((process.env.S3TGT_LOG_FORMAT as LogFormat | undefined) ?? 'text'),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug', 'verbose', 'silly'] })],
});

export function configureLogging(level: string, format: LogFormat): void {
  log.level = level;
  log.format = formatFor(format);
}
