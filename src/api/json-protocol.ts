// AWS JSON 1.1 front door: `POST /` with `X-Amz-Target: <prefix>.<Action>`.
import { ApiError, serializationError, unknownOperation } from './errors.js';
import type { Handler, RequestContext } from './context.js';
import { ModelValidator, loadModel } from './model.js';

export interface JsonService {
  /** Short name used in metrics and audit, e.g. `ecs`. */
  name: string;
  targetPrefix: string;
  /** The SigV4 signing name the credential scope must carry. */
  signingName: string;
  validator: ModelValidator;
  handlers: Record<string, Handler>;
  /** Operations present in the model that Berth answers with a clear "not supported". */
  known: Set<string>;
}

export function jsonService(name: string, modelName: string, signingName: string, handlers: Record<string, Handler>): JsonService {
  const model = loadModel(modelName);
  return {
    name,
    targetPrefix: model.metadata.targetPrefix!,
    signingName,
    validator: new ModelValidator(model),
    handlers,
    known: new Set(Object.keys(model.operations)),
  };
}

export function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw serializationError(`The request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw serializationError('The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

/** Runs between validation and the handler: authorization (and the audit's view of the input). */
export type BeforeHandler = (ctx: RequestContext, input: Record<string, unknown>) => void | Promise<void>;

export async function invokeJson(service: JsonService, action: string, ctx: RequestContext, body: Buffer, before?: BeforeHandler): Promise<unknown> {
  const handler = service.handlers[action];
  if (!handler) {
    if (service.known.has(action)) {
      throw new ApiError('UnsupportedFeatureException', `${action} is not supported by Berth yet.`);
    }
    throw unknownOperation(`Unknown operation '${action}' for ${service.targetPrefix}.`);
  }
  const input = parseJsonBody(body);
  service.validator.validateInput(action, input);
  await before?.(ctx, input);
  return handler(ctx, input);
}
