// Finds the chart tools (helm, kubeconform) that deploy/tools/install-chart-tools.sh installs:
// $CHART_TOOLS_BIN, then .local/bin of the repository, then PATH.
import { accessSync, constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');
export const HELM_VERSION = 'v3.21.4';
export const KUBECONFORM_VERSION = 'v0.8.0';

const executable = (p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Absolute path of a chart tool; throws with the install command when it is missing. */
export function chartTool(name) {
  const dirs = [
    process.env.CHART_TOOLS_BIN,
    join(repoRoot, '.local/bin'),
    ...(process.env.PATH ?? '').split(delimiter),
  ];
  for (const dir of dirs) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  throw new Error(
    `${name} not found: run \`bash deploy/tools/install-chart-tools.sh\` (installs helm ${HELM_VERSION} and kubeconform ${KUBECONFORM_VERSION} into .local/bin with go install)`,
  );
}
