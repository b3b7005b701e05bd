/**
 * The `lwbs` command. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/config.js';
import { isComposite } from '../lwm2m/codec.js';
import { CodecError } from '../lwm2m/errors.js';
import { recordsToObjects } from '../lwm2m/node.js';
import { DdfError, loadObjectRegistry } from '../lwm2m/ddf.js';
import { codecByNameOrNumber, linkFormatCodec, nodeCodecs } from '../lwm2m/formats/index.js';
import { formatPath, parsePath } from '../lwm2m/path.js';
import { hexToBytes } from '../util/bytes.js';
import { CredentialError } from '../bootstrap/credentials.js';
import { ProfileError } from '../bootstrap/profile.js';
import { StoreError } from '../store/errors.js';
import { AdminTokenError } from '../admin/token.js';
import { registerServeCommand } from './commands/serve.js';
import { CliContext } from './context.js';
import { registerProfileCommand } from './commands/profile.js';
import { registerDeviceCommand } from './commands/device.js';
import { registerDeviceOpsCommands } from './commands/device-ops.js';
import { registerCredentialCommands } from './commands/credential.js';
import { registerRegistryCommand } from './commands/registry.js';
import { registerSessionsCommand } from './commands/sessions.js';
import { registerKeysCommand } from './commands/keys.js';
import { registerSimulateCommand } from './commands/simulate.js';
import { UsageError, UserError } from './errors.js';
import { nodeToJson, nodeToLines, valueToJson } from './render.js';

function readPayload(opts: { hex?: string; file?: string; text?: string }): Uint8Array {
  const given = [opts.hex, opts.file, opts.text].filter((x) => x !== undefined).length;
  if (given > 1) throw new UsageError('give only one of --hex, --file, --text');
  if (opts.hex !== undefined) {
    const bytes = hexToBytes(opts.hex);
    if (bytes === undefined) throw new UsageError('--hex must be pairs of hex digits');
    return bytes;
  }
  if (opts.text !== undefined) return new Uint8Array(Buffer.from(opts.text, 'utf8'));
  const file = opts.file ?? '/dev/stdin';
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('lwbs')
    .description('LwM2M bootstrap server and registration server')
    .option('--data <dir>', 'data directory (overrides dataDir from the config)')
    .showHelpAfterError()
    .exitOverride();
  const ctx = new CliContext(program);
  registerServeCommand(program, ctx);
  registerProfileCommand(program, ctx);
  registerDeviceCommand(program, ctx);
  registerDeviceOpsCommands(program, ctx);
  registerCredentialCommands(program, ctx);
  registerRegistryCommand(program, ctx);
  registerSessionsCommand(program, ctx);
  registerKeysCommand(program, ctx);
  registerSimulateCommand(program, ctx);

  const objects = program.command('objects').description('the LwM2M object model (DDF XML definitions)');
  objects
    .command('list')
    .description('list the objects known, with their versions')
    .option('--objects <dir...>', 'extra folders of DDF XML files')
    .option('--json', 'machine-readable output')
    .action(async (opts: { objects?: string[]; json?: boolean }) => {
      const reg = await loadObjectRegistry(opts.objects ?? []);
      const rows = reg.ids().map((id) => ({ id, name: reg.get(id)!.name, versions: reg.versions(id), resources: reg.get(id)!.resources.size }));
      if (opts.json) return void console.log(JSON.stringify(rows, null, 2));
      for (const r of rows) console.log(`${String(r.id).padStart(5)}  ${r.name.padEnd(32)} ${r.versions.join(', ').padEnd(12)} ${r.resources} resources`);
    });
  objects
    .command('show')
    .description('show the resources of one object')
    .argument('<id>', 'object ID')
    .option('--version <v>', 'object version (default: latest)')
    .option('--objects <dir...>', 'extra folders of DDF XML files')
    .option('--json', 'machine-readable output')
    .action(async (idText: string, opts: { version?: string; objects?: string[]; json?: boolean }) => {
      if (!/^[0-9]+$/.test(idText)) throw new UsageError(`object ID must be a number, got ${JSON.stringify(idText)}`);
      const reg = await loadObjectRegistry(opts.objects ?? []);
      const m = reg.get(Number(idText), opts.version);
      if (!m) throw new UserError(`object ${idText}${opts.version ? ` version ${opts.version}` : ''} is not known`);
      if (opts.json) {
        return void console.log(JSON.stringify({ ...m, resources: [...m.resources.values()] }, null, 2));
      }
      console.log(`${m.id} ${m.name} (version ${m.version}, LwM2M ${m.lwm2mVersion}, ${m.multiple ? 'multiple' : 'single'} instance, ${m.mandatory ? 'mandatory' : 'optional'})`);
      console.log(`  ${m.urn}`);
      for (const r of m.resources.values()) {
        console.log(`  ${String(r.id).padStart(3)}  ${r.name.padEnd(44)} ${(r.operations || '-').padEnd(3)} ${(r.multiple ? 'M' : 'S')} ${(r.mandatory ? 'M' : 'O')} ${r.type.padEnd(9)} ${r.rangeEnumeration}${r.units ? ` ${r.units}` : ''}`);
      }
    });

  program
    .command('formats')
    .description('list the content formats lwbs encodes and decodes')
    .action(() => {
      const all = [...nodeCodecs(), linkFormatCodec].sort((a, b) => a.contentFormat - b.contentFormat);
      for (const c of all) console.log(`${String(c.contentFormat).padStart(5)}  ${c.name.padEnd(18)} ${c.mediaType}`);
    });

  program
    .command('decode')
    .description('decode an LwM2M payload (e.g. captured from the wire) and print its values')
    .requiredOption('-f, --format <format>', 'content format: number (11542) or name (tlv, senml-cbor, link-format, ...)')
    .option('-p, --path <path>', 'request path the payload belongs to (e.g. /3/0); not needed for link-format', '/')
    .option('--hex <hex>', 'payload as hex digits')
    .option('--text <text>', 'payload as text')
    .option('--file <file>', 'payload file (default: standard input)')
    .option('--objects <dir...>', 'extra folders of DDF XML files')
    .option('--json', 'machine-readable output')
    .action(async (opts: { format: string; path: string; hex?: string; text?: string; file?: string; objects?: string[]; json?: boolean }) => {
      const payload = readPayload(opts);
      const key = opts.format.trim().toLowerCase();
      if (key === '40' || key === linkFormatCodec.name) {
        const links = linkFormatCodec.parse(payload);
        return void console.log(JSON.stringify(links, null, opts.json ? 2 : undefined));
      }
      const codec = codecByNameOrNumber(key);
      if (!codec) throw new UsageError(`unknown format ${JSON.stringify(opts.format)}; see \`lwbs formats\``);
      const path = parsePath(opts.path, { lenient: true });
      const reg = await loadObjectRegistry(opts.objects ?? []);
      if (path.length === 0) {
        if (!isComposite(codec)) throw new UsageError(`${codec.name} needs a --path below the root`);
        const records = codec.decodeRecords(payload, reg);
        if (opts.json) return void console.log(JSON.stringify(records.map((r) => ({ path: formatPath(r.path), value: valueToJson(r.value) })), null, 2));
        for (const obj of recordsToObjects(codec.name, records, (o, r) => reg.resource(o, r))) {
          for (const l of nodeToLines([obj.id], obj, reg)) console.log(l);
        }
        return;
      }
      const node = codec.decode(path, payload, reg);
      if (opts.json) return void console.log(JSON.stringify(nodeToJson(node), null, 2));
      for (const l of nodeToLines(path, node, reg)) console.log(l);
    });

  return program;
}

export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; every other commander error is a usage error
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`lwbs: ${e.message}`);
      return 2;
    }
    if (e instanceof UserError || e instanceof AdminTokenError || e instanceof CodecError || e instanceof DdfError || e instanceof ConfigError || e instanceof StoreError || e instanceof ProfileError || e instanceof CredentialError) {
      console.error(`lwbs: ${e.message}`);
      return 1;
    }
    console.error(e);
    return 1;
  }
}

run(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
