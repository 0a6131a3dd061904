// The TypeScript declarations (web/loader.d.ts, shipped as dist/loader.d.ts) against the Rust
// protocol types (protocol.json, generated and kept current by crates/frame/tests/protocol_json.rs)
// and against what web/loader.js and the React binding handle: names cannot drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pkg, repo, tool } from './helpers.mjs';

const ts = tool('typescript');
const protocol = JSON.parse(readFileSync(join(pkg, 'protocol.json'), 'utf8'));

/** Frame → parent messages the loader consumes itself (not merchant events). */
const INTERNAL_MESSAGES = ['hello', 'resize', 'tokenized', 'tokenizeFailed'];
/** Events only the loader raises. */
const LOADER_EVENTS = ['loaderror'];
/** Envelope and command keys of parent → frame messages (not options). */
const ENVELOPE = ['v', 'channel', 'type', 'field', 'id'];
/** Options only the loader reads (never sent to the frame). */
const LOADER_OPTIONS = ['key', 'title', 'vaultOrigin'];

function parse(file) {
  return ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
}
const loaderDts = parse(join(repo, 'web', 'loader.d.ts'));
const reactDts = parse(join(pkg, 'types', 'react-binding.d.ts'));

function declaration(source, name) {
  const found = source.statements.find(
    (s) => (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s)) && s.name.text === name,
  );
  assert.ok(found, `${name} is declared`);
  return found;
}

/** The property names of an interface (with the interfaces it extends) or type literal. */
function members(source, nodeOrName) {
  const node = typeof nodeOrName === 'string' ? declaration(source, nodeOrName) : nodeOrName;
  if (ts.isTypeAliasDeclaration(node)) return members(source, node.type);
  if (ts.isIntersectionTypeNode(node)) return node.types.flatMap((t) => members(source, t));
  if (ts.isTypeReferenceNode(node)) return members(source, node.typeName.text);
  if (ts.isMappedTypeNode(node)) {
    // `{ [E in keyof T as T[E]]?: … }`: the names are the string literal types of T's properties.
    const constraint = node.typeParameter.constraint;
    assert.ok(ts.isTypeOperatorNode(constraint) && ts.isTypeReferenceNode(constraint.type), 'mapped over keyof T');
    assert.ok(node.nameType && ts.isIndexedAccessTypeNode(node.nameType), 'renamed to T[E]');
    const target = declaration(source, constraint.type.typeName.text);
    return target.members.map((m) => m.type.literal.text).sort();
  }
  let names = [];
  if (ts.isInterfaceDeclaration(node)) {
    for (const h of node.heritageClauses || []) for (const t of h.types) names.push(...members(source, t.expression.text));
  }
  for (const m of node.members || []) if (m.name) names.push(m.name.text);
  return [...new Set(names)].sort();
}

/** The type node of property `prop` of an interface or type literal. */
function propertyType(source, nodeOrName, prop) {
  const node = typeof nodeOrName === 'string' ? declaration(source, nodeOrName) : nodeOrName;
  if (ts.isInterfaceDeclaration(node)) {
    for (const h of node.heritageClauses || []) {
      for (const t of h.types) {
        const inherited = declaration(source, t.expression.text).members.find((m) => m.name && m.name.text === prop);
        if (inherited) return inherited.type;
      }
    }
  }
  const m = node.members.find((x) => x.name && x.name.text === prop);
  assert.ok(m, `${prop} is declared`);
  return m.type;
}

/** The string literals of a union type alias. */
function literals(source, name) {
  const union = declaration(source, name).type;
  return union.types.filter((t) => ts.isLiteralTypeNode(t)).map((t) => t.literal.text);
}

const sorted = (a) => [...a].sort();
const without = (a, drop) => sorted(a.filter((x) => !drop.includes(x)));

test('CardField is the frame\'s fields, in its order', () => {
  assert.deepEqual(literals(loaderDts, 'CardField'), protocol.fields);
  assert.deepEqual(sorted(protocol.fieldTexts), sorted(protocol.fields), 'placeholders/label/ariaLabel take every field');
});

test('CardEvents are the frame\'s events the loader passes on, plus its own', () => {
  const events = Object.keys(protocol.frameEvents);
  assert.deepEqual(members(loaderDts, 'CardEvents'), sorted([...without(events, INTERNAL_MESSAGES), ...LOADER_EVENTS]));
});

test('event payloads have the frame\'s keys', () => {
  for (const [event, keys] of Object.entries(protocol.frameEvents)) {
    if (INTERNAL_MESSAGES.includes(event) || ['ready', 'change', 'warning'].includes(event)) continue;
    const type = propertyType(loaderDts, 'CardEvents', event);
    const declared = ts.isTypeLiteralNode(type) ? members(loaderDts, type) : [];
    assert.deepEqual(declared, keys, `payload of ${event}`);
  }
  assert.deepEqual(members(loaderDts, 'CardWarning'), protocol.frameEvents.warning);
  assert.equal(propertyType(loaderDts, 'CardEvents', 'ready').typeName.text, 'ChangePayload');
  assert.equal(propertyType(loaderDts, 'CardEvents', 'change').typeName.text, 'ChangePayload');
  assert.deepEqual(protocol.frameEvents.change, ['state']);
});

test('ChangePayload, FieldState, CardError and TokenResult have the Rust shapes', () => {
  assert.deepEqual(members(loaderDts, 'ChangePayload'), protocol.changeState);
  assert.deepEqual(members(loaderDts, propertyType(loaderDts, 'ChangePayload', 'fields')), protocol.fieldStatuses);
  assert.deepEqual(members(loaderDts, 'FieldState'), protocol.fieldStatus);
  assert.deepEqual(members(loaderDts, 'CardError'), protocol.errorInfo);
  assert.deepEqual(members(loaderDts, 'TokenResult'), without(protocol.frameEvents.tokenized, ['id']));
  assert.deepEqual(members(loaderDts, propertyType(loaderDts, 'TokenResult', 'card')), protocol.cardMeta);
});

test('every option is one the frame accepts, or one the loader reads itself', () => {
  const options = members(loaderDts, 'CardOptions');
  assert.deepEqual(without(options, LOADER_OPTIONS), without(protocol.parentMessage, ENVELOPE));
  assert.deepEqual(members(loaderDts, propertyType(loaderDts, 'CardOptions', 'fields')), protocol.fieldOptions);
  const updatable = members(loaderDts, 'CardUpdate');
  for (const k of updatable) assert.ok(protocol.parentMessage.includes(k), `update option ${k} reaches the frame`);
});

test('web/loader.js handles exactly the declared events and fields', () => {
  const js = readFileSync(join(repo, 'web', 'loader.js'), 'utf8');
  const list = (name) => JSON.parse(js.match(new RegExp(`var ${name} = (\\[[^\\]]*\\]);`))[1].replace(/'/g, '"'));
  assert.deepEqual(sorted(list('EVENTS')), members(loaderDts, 'CardEvents'));
  assert.deepEqual(list('FIELDS'), protocol.fields);
});

test('the React binding has a prop for every event', async () => {
  const js = readFileSync(join(pkg, 'src', 'react-binding.js'), 'utf8');
  const block = js.match(/const EVENT_PROPS = \{([^}]*)\}/)[1];
  const pairs = [...block.matchAll(/(\w+): '(\w+)'/g)].map((m) => [m[1], m[2]]);
  assert.deepEqual(sorted(pairs.map((p) => p[0])), members(loaderDts, 'CardEvents'));
  const props = members(reactDts, 'CardElementProps');
  for (const [, prop] of pairs) assert.ok(props.includes(prop), `CardElementProps.${prop}`);
});

test('the split fields have a component per field and a prop for every field event', () => {
  const js = readFileSync(join(pkg, 'src', 'react-binding.js'), 'utf8');
  const block = js.match(/const FIELD_COMPONENTS = \{([^}]*)\}/)[1];
  const pairs = [...block.matchAll(/(\w+): '(\w+)'/g)].map((m) => [m[1], m[2]]);
  assert.deepEqual(pairs.map((p) => p[0]), protocol.fields, 'a component per field, in the frame\'s order');
  const binding = members(reactDts, 'ReactBinding');
  for (const [, component] of pairs) assert.ok(binding.includes(component), `ReactBinding.${component}`);
  // FieldEvents = Pick<CardEvents, …>: the events of one field element.
  const pick = declaration(loaderDts, 'FieldEvents').type;
  assert.equal(pick.typeName.text, 'Pick');
  const fieldEvents = pick.typeArguments[1].types.map((t) => t.literal.text);
  assert.deepEqual(sorted(fieldEvents), members(loaderDts, 'CardEvents'), 'a field element hears every card event');
  const events = js.match(/const EVENT_PROPS = \{([^}]*)\}/)[1];
  const props = Object.fromEntries([...events.matchAll(/(\w+): '(\w+)'/g)].map((m) => [m[1], m[2]]));
  const fieldProps = members(reactDts, 'CardFieldProps');
  const groupProps = members(reactDts, 'CardFieldsProps');
  for (const e of fieldEvents) assert.ok(fieldProps.includes(props[e]), `CardFieldProps.${props[e]}`);
  for (const e of members(loaderDts, 'CardEvents')) assert.ok(groupProps.includes(props[e]), `CardFieldsProps.${props[e]}`);
});
