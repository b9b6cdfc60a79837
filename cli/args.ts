// Command-line parsing shared by the commands: --help, usage errors (exit 2) and required flags.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses argv for `edgeflow <command>`. Returns the values and positionals, or the exit code
 * after printing help (0) or a usage error naming the problem (2).
 */
export function parseCommandLine<O extends Options>(command: string, help: string, argv: string[], options: O, required: (keyof O & string)[] = []) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { ...options, help: { type: 'boolean', short: 'h' } } as O & { help: { type: 'boolean'; short: 'h' } } });
  } catch (error) {
    console.error(`edgeflow ${command}: ${(error as Error).message}\n\n${help}`);
    return 2;
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    return 0;
  }
  const missing = required.filter((flag) => (parsed.values as Record<string, unknown>)[flag] === undefined);
  if (missing.length > 0) {
    console.error(`edgeflow ${command}: ${missing.map((flag) => `--${flag}`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required\n\n${help}`);
    return 2;
  }
  return parsed;
}
