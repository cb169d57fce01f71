export declare function exportedFiles(): Promise<Record<string, string>>;
export declare function staleFiles(): Promise<string[]>;
