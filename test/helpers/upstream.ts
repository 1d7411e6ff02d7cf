// A model server for tests: OpenAI-compatible /v1/chat/completions over real HTTP, answering
// by script (text, tool calls, streamed chunks, errors, slow or silent answers) and recording
// every request it receives. No text-generation model can run on these machines; this stands
// in for vLLM / Ollama / llama.cpp's server. When ../shared/openai/openapi.yaml is present,
// what it receives and what it answers are checked against the official spec's schemas.
import { specSchemas } from "./spec";

export type Step =
  | { text: string; pieces?: number; finish?: "stop" | "length" | "content_filter"; usage?: boolean; delayMs?: number }
  /** `splitName`: each name streamed in two pieces, as some servers do. */
  | { toolCalls: { name: string; arguments: string }[]; text?: string; splitName?: boolean }
  | { status: number; body?: unknown; headers?: Record<string, string> }
  /** Never answers: for timeouts and client disconnects. */
  | { hang: true }
  /** Starts a stream, sends `text`, then falls silent. */
  | { stallAfter: string }
  /** Sends a non-streamed answer's headers, then never its body. */
  | { stallBody: true };

export interface Received {
  body: any;
  headers: Headers;
  /** The connection closed before the answer ended (ragd cancelled the request). */
  aborted: boolean;
}

export interface Upstream {
  url: string;
  /** Queues answers for the next requests, in order; when none is queued the answer is "ok". */
  script(...steps: Step[]): void;
  received: Received[];
  /** Forgets queued steps and received requests (between tests). */
  reset(): void;
  /** Schema problems in what was received or sent, when the spec is at hand. */
  problems: string[];
  stop(): Promise<void>;
}

// ---- the spec's schemas

/** Validators for chat completions from the official spec; null when the spec is absent. */
export function chatSchemas() {
  const spec = specSchemas();
  if (!spec) return null;
  return {
    request: (v: unknown) => spec.check("CreateChatCompletionRequest", v),
    response: (v: unknown) => spec.check("CreateChatCompletionResponse", v),
    chunk: (v: unknown) => spec.check("CreateChatCompletionStreamResponse", v),
  };
}

// ---- the server

export async function startUpstream(o: { models?: string[]; model?: string } = {}): Promise<Upstream> {
  const queue: Step[] = [];
  const received: Received[] = [];
  const problems: string[] = [];
  const schemas = chatSchemas();
  let n = 0;

  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (req.method === "GET" && url.pathname === "/v1/models")
        return Response.json({ object: "list", data: (o.models ?? []).map((id) => ({ id, object: "model", created: 0, owned_by: "scripted" })) });
      if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") return new Response("not found", { status: 404 });
      const body = await req.json();
      const rec: Received = { body, headers: req.headers, aborted: false };
      received.push(rec);
      req.signal.addEventListener("abort", () => (rec.aborted = true));
      if (schemas) problems.push(...schemas.request(body).map((p) => `request ${received.length}: ${p}`));
      const step: Step = queue.shift() ?? { text: "ok" };
      const id = `chatcmpl-scripted${++n}`;
      const model = String(body.model ?? o.model ?? "scripted");
      const created = Math.floor(Date.now() / 1000);

      if ("status" in step)
        return Response.json(step.body ?? { error: { message: `scripted ${step.status}`, type: "server_error", param: null, code: null } }, { status: step.status, headers: step.headers });
      if ("hang" in step) {
        await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
        return new Response(null, { status: 499 });
      }
      if ("stallBody" in step) {
        const silent = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode('{"id":"chatcmpl-stalled",'));
          },
          cancel() {
            rec.aborted = true;
          },
        });
        return new Response(silent, { headers: { "content-type": "application/json" } });
      }

      const usage = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
      const text = "text" in step ? (step.text ?? "") : "stallAfter" in step ? step.stallAfter : "";
      const calls = "toolCalls" in step ? step.toolCalls.map((c, i) => ({ id: `call_${n}_${i}`, type: "function" as const, function: c })) : [];
      const finish = calls.length ? "tool_calls" : ("finish" in step && step.finish) || "stop";

      if (!body.stream) {
        const answer = {
          id,
          object: "chat.completion",
          created,
          model,
          choices: [{ index: 0, message: { role: "assistant", content: text || null, refusal: null, ...(calls.length ? { tool_calls: calls } : {}) }, finish_reason: finish, logprobs: null }],
          usage,
        };
        if (schemas) problems.push(...schemas.response(answer).map((p) => `answer ${received.length}: ${p}`));
        return Response.json(answer);
      }

      const chunk = (delta: object, finish_reason: string | null = null, extra: object = {}) => {
        const c = { id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason, logprobs: null }], ...extra };
        if (schemas) problems.push(...schemas.chunk(c).map((p) => `chunk ${received.length}: ${p}`));
        return `data: ${JSON.stringify(c)}\n\n`;
      };
      const pieces = "pieces" in step && step.pieces ? step.pieces : 3;
      const delay = "delayMs" in step ? (step.delayMs ?? 0) : 0;
      const stall = "stallAfter" in step;
      const wantsUsage = body.stream_options?.include_usage === true && !("usage" in step && step.usage === false);
      const enc = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          const send = (s: string) => controller.enqueue(enc.encode(s));
          try {
            send(chunk({ role: "assistant", content: "" }));
            const size = Math.max(1, Math.ceil(text.length / pieces));
            for (let i = 0; i < text.length; i += size) {
              if (delay) await Bun.sleep(delay);
              if (rec.aborted) return;
              send(chunk({ content: text.slice(i, i + size) }));
            }
            if (stall) {
              await new Promise<void>((resolve) => req.signal.addEventListener("abort", () => resolve()));
              return;
            }
            for (const [i, c] of calls.entries()) {
              // the name first, then the arguments in two pieces, as servers stream them
              if ("splitName" in step && step.splitName) {
                const cut = Math.ceil(c.function.name.length / 2);
                send(chunk({ tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.function.name.slice(0, cut), arguments: "" } }] }));
                send(chunk({ tool_calls: [{ index: i, function: { name: c.function.name.slice(cut) } }] }));
              } else send(chunk({ tool_calls: [{ index: i, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] }));
              const half = Math.ceil(c.function.arguments.length / 2);
              send(chunk({ tool_calls: [{ index: i, function: { arguments: c.function.arguments.slice(0, half) } }] }));
              send(chunk({ tool_calls: [{ index: i, function: { arguments: c.function.arguments.slice(half) } }] }));
            }
            send(chunk({}, finish));
            if (wantsUsage) {
              const u = { id, object: "chat.completion.chunk", created, model, choices: [], usage };
              if (schemas) problems.push(...schemas.chunk(u).map((p) => `usage chunk ${received.length}: ${p}`));
              send(`data: ${JSON.stringify(u)}\n\n`);
            }
            send("data: [DONE]\n\n");
            controller.close();
          } catch {
            // the client went away
          }
        },
        cancel() {
          rec.aborted = true;
        },
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}/v1`,
    script: (...steps) => void queue.push(...steps),
    received,
    reset() {
      queue.length = 0;
      received.length = 0;
    },
    problems,
    async stop() {
      await server.stop(true);
    },
  };
}
