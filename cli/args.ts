// Command-line parsing shared by the commands: --help, usage errors and required flags.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * A mistake in how a command was called (an unknown or malformed flag, a missing or extra
 * argument). cli/main.ts prints the message and the command's help, and exits 2.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Runs a flag-value parser, turning what it throws into a UsageError with the same message. */
export function flagValue<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * Parses argv for `edgeflow <command>`. Returns the values and positionals, or 0 after printing
 * the help for --help; throws a UsageError naming the problem otherwise.
 */
export function parseCommandLine<O extends Options>(argv: string[], help: string, options: O, required: (keyof O & string)[] = []) {
  const parsed = flagValue(() => parseArgs({ args: argv, allowPositionals: true, options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } } }));
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    return 0;
  }
  const missing = required.filter((flag) => (parsed.values as Record<string, unknown>)[flag] === undefined);
  if (missing.length > 0) throw new UsageError(`${missing.map((flag) => `--${flag}`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required`);
  return parsed;
}
