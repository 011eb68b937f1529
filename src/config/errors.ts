/** A configuration problem, located by file, line and key (e.g. `s3tgt.yaml:12:7 targets[0].luns[0].size`). */
export class ConfigError extends Error {
  readonly code = 'CONFIG_ERR_INVALID';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly key: string,
    readonly detail: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}: ${key ? `${key}: ` : ''}${detail}`);
    this.name = 'ConfigError';
  }
}
