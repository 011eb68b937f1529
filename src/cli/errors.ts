/** A command-line failure with a stable code and a message meant for the admin. */
export class CliError extends Error {
  constructor(
    readonly code: 'CLI_ERR_NO_LUN' | 'CLI_ERR_USAGE' | 'CLI_ERR_EXISTS' | 'CLI_ERR_IO',
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
