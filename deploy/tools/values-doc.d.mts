export declare function valuesTable(): string;
export declare function renderReadme(current: string): Promise<string>;
