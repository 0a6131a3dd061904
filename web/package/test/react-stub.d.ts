// Just enough of 'react' for the documented examples to type-check without @types/react
// (JSX included: elements are checked against the components' declared props).
declare module 'react' {
  type Element = { type: unknown; props: unknown; key: string | null };
  export function createElement<P>(type: (props: P) => unknown, props: P, ...children: unknown[]): Element;
  export function createElement(type: unknown, props?: object | null, ...children: unknown[]): Element;
  export function StrictMode(props: { children?: unknown }): Element;
  export function Fragment(props: { children?: unknown }): Element;
  export function useState<T>(initial: T): [T, (value: T) => void];
}
declare module 'react-dom/client' {
  export function createRoot(el: Element): { render(node: unknown): void; unmount(): void };
}
declare module 'react/jsx-runtime' {
  export namespace JSX {
    type Element = { type: unknown; props: unknown; key: string | null };
    // HTML elements take any attribute (no DOM typings here); components their declared props.
    interface IntrinsicElements {
      [tag: string]: { [attribute: string]: any };
    }
    interface ElementChildrenAttribute {
      children: {};
    }
  }
  export function jsx(type: unknown, props: unknown, key?: string): JSX.Element;
  export function jsxs(type: unknown, props: unknown, key?: string): JSX.Element;
  export const Fragment: unknown;
}
