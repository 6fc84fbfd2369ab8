import { readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../core/errors.js';
import type { Scenario } from './scenario.js';
import { parseScenario } from './scenario.js';

/** The scenarios shipped with muster (src/sim/builtin/NAME.yaml, copied into dist/ by the build). */
export const BUILTIN_SCENARIOS = ['kubeadm', 'noah-stack', 'hadoop-barrier', 'rolling-release'] as const;

/** The text of a built-in scenario. */
export async function builtinScenarioText(name: (typeof BUILTIN_SCENARIOS)[number]): Promise<string> {
  return readFile(new URL(`./builtin/${name}.yaml`, import.meta.url), 'utf8');
}

/**
 * A built-in scenario by name, or a scenario file (YAML or JSON) by path. A
 * file that shares a built-in's name is read when given as a path (`./kubeadm`).
 */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const builtin = BUILTIN_SCENARIOS.find((name) => name === nameOrPath);
  if (builtin) return parseScenario(await builtinScenarioText(builtin), `${builtin} (built-in)`);
  let text: string;
  try {
    text = await readFile(nameOrPath, 'utf8');
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new InvalidArgumentError(
      `cannot read the scenario ${nameOrPath}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message} (built-in scenarios: ${BUILTIN_SCENARIOS.join(', ')})`,
    );
  }
  return parseScenario(text, nameOrPath);
}
