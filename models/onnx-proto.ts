// A minimal ONNX protobuf writer: just the messages a static inference graph needs.
// Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, TensorProto, ...).

class Writer {
  private parts: Uint8Array[] = [];
  private size = 0;

  private push(bytes: Uint8Array) {
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private varint(value: number | bigint) {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }

  private tag(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }

  int(field: number, value: number | bigint) {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  bytes(field: number, value: Uint8Array) {
    this.tag(field, 2);
    this.varint(value.length);
    this.push(value);
    return this;
  }

  string(field: number, value: string) {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (w: Writer) => void) {
    const inner = new Writer();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
type DataTypeId = (typeof DataType)[keyof typeof DataType];

export interface Tensor {
  name: string;
  type: DataTypeId;
  dims: number[];
  data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;
}

export type AttrValue = number | number[] | string | { float: number } | { tensor: Tensor };

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  domain?: string;
}

export interface ValueInfo {
  name: string;
  type: DataTypeId;
  // numbers are fixed sizes, strings are symbolic (batch, sequence)
  shape: (number | string)[];
}

export interface Model {
  graphName: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opsets: Record<string, number>;
  producer: string;
  metadata?: Record<string, string>;
}

function writeTensor(w: Writer, t: Tensor) {
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.type);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeAttr(w: Writer, name: string, value: AttrValue) {
  w.string(1, name);
  if (typeof value === "number") {
    w.int(3, value).int(20, 2);
  } else if (typeof value === "string") {
    w.string(4, value).int(20, 3);
  } else if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    w.int(20, 7);
  } else if ("float" in value) {
    w.float(2, value.float).int(20, 1);
  } else {
    w.message(5, (t) => writeTensor(t, value.tensor)).int(20, 4);
  }
}

function writeValueInfo(w: Writer, v: ValueInfo) {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.type);
      tensor.message(2, (shape) => {
        for (const d of v.shape)
          shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
      });
    }),
  );
}

export function encodeModel(m: Model): Uint8Array {
  const w = new Writer();
  w.int(1, 8); // ir_version 8
  w.string(2, m.producer);
  for (const [domain, version] of Object.entries(m.opsets))
    w.message(8, (o) => {
      if (domain) o.string(1, domain);
      o.int(2, version);
    });
  w.message(7, (g) => {
    m.nodes.forEach((n, i) =>
      g.message(1, (nw) => {
        for (const input of n.inputs) nw.string(1, input);
        for (const output of n.outputs) nw.string(2, output);
        nw.string(3, `${n.op}_${i}`);
        nw.string(4, n.op);
        for (const [k, v] of Object.entries(n.attrs ?? {})) nw.message(5, (a) => writeAttr(a, k, v));
        if (n.domain) nw.string(7, n.domain);
      }),
    );
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const v of m.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of m.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  for (const [key, value] of Object.entries(m.metadata ?? {}))
    w.message(14, (p) => p.string(1, key).string(2, value));
  return w.finish();
}
