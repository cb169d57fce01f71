export declare const repoRoot: string;
export declare const HELM_VERSION: string;
export declare const KUBECONFORM_VERSION: string;
export declare function chartTool(name: 'helm' | 'kubeconform'): string;
