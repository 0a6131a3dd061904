// What the documented loader examples (docs/loader.md, README.md) use from the merchant's own
// page without defining it. scripts/check-examples.sh type-checks them against web/loader.d.ts.
declare const payButton: HTMLButtonElement;
declare const errorEl: HTMLElement;
