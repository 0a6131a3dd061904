// Just enough of 'react' for the documented examples to type-check without @types/react.
declare module 'react' {
  type Element = { type: unknown; props: unknown; key: string | null };
  export function createElement<P>(type: (props: P) => unknown, props: P, ...children: unknown[]): Element;
  export function createElement(type: unknown, props?: object | null, ...children: unknown[]): Element;
  export const StrictMode: unknown;
  export function useState<T>(initial: T): [T, (value: T) => void];
}
declare module 'react-dom/client' {
  export function createRoot(el: Element): { render(node: unknown): void; unmount(): void };
}
