import { formatProblem, loadChannelDir } from '../../channels/channel-loader.js';
import { EXIT } from '../cli-error.js';

/** `hl7e channels validate [DIR]`: every problem with file:line and key; exit 1 when there is one. */
export function channelsValidateAction(dir: string, json: boolean, out: (line: string) => void): number {
  const { channels, problems } = loadChannelDir(dir);
  if (json) {
    out(
      JSON.stringify({ channels: channels.map((c) => ({ name: c.name, file: c.file })), problems }, null, 2),
    );
  } else {
    for (const c of channels) {
      const { host, port } = c.source.mllp;
      out(`ok       ${c.name} (${c.file}) mllp ${host}:${port}${c.enabled ? '' : ' [disabled]'}`);
    }
    for (const p of problems) out(`invalid  ${formatProblem(p)}`);
    out(`${channels.length} channel(s) valid, ${problems.length} problem(s)`);
  }
  return problems.length > 0 ? EXIT.problem : EXIT.ok;
}
