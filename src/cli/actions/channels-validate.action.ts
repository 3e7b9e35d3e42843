import { formatProblem, loadChannelDir } from '../../channels/channel-loader.js';
import { formatProblem as formatFileProblem } from '../../config/yaml-file.js';
import { channelMappingCheck } from '../channel-mapping-check.js';
import { EXIT } from '../cli-error.js';
import { loadCatalog } from '../mapping-catalog-loader.js';

export interface ChannelsValidateInput {
  dir: string;
  json?: boolean;
  /** Site mapping folder named on the command line; default HL7E_MAPPINGS_DIR or ./mappings. */
  mappings?: string;
}

/**
 * `hl7e channels validate [DIR]`: every channel against the schema, and the message maps each would use
 * (compiled, with every problem at its own file:line and key), plus any mapping file that fails the
 * mapping schema. Exit 1 when there is a problem.
 */
export function channelsValidateAction(input: ChannelsValidateInput, out: (line: string) => void): number {
  const catalog = loadCatalog(input.mappings);
  const mappingCheck = channelMappingCheck(catalog);
  const { channels, problems, warnings } = loadChannelDir(input.dir, {
    checkMapping: mappingCheck.checkMapping,
  });
  const mappingProblems = [...catalog.problems, ...mappingCheck.problems];
  const total = problems.length + mappingProblems.length;
  if (input.json) {
    out(
      JSON.stringify(
        {
          channels: channels.map((c) => ({ name: c.name, file: c.file })),
          problems,
          warnings,
          mappingProblems,
          mappingsChecked: mappingCheck.checked,
        },
        null,
        2,
      ),
    );
  } else {
    for (const c of channels) {
      const { host, port } = c.source.mllp;
      out(`ok       ${c.name} (${c.file}) mllp ${host}:${port}${c.enabled ? '' : ' [disabled]'}`);
    }
    for (const p of problems) out(`invalid  ${formatProblem(p)}`);
    for (const w of warnings) out(`warning  ${formatProblem(w)}`);
    for (const p of mappingProblems) out(`invalid  ${formatFileProblem(p)}`);
    out(`mappings checked: ${[...mappingCheck.checked].sort().join(', ') || '(none)'}`);
    out(
      `${channels.length} channel(s) valid, ${total} problem(s)${warnings.length > 0 ? `, ${warnings.length} warning(s)` : ''}`,
    );
  }
  return total > 0 ? EXIT.problem : EXIT.ok;
}
