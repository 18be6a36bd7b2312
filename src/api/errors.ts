// One error catalog: every failure a client can see maps to AWS's `__type`, an HTTP
// status and a message that says what to fix.

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number = 400,
    /** Extra members some AWS errors carry (e.g. `reason`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = code;
  }
}

const error = (code: string, status = 400) => (message: string, extra?: Record<string, unknown>) =>
  new ApiError(code, message, status, extra);

// Protocol and authentication.
export const serializationError = error('SerializationException');
export const unknownOperation = error('UnknownOperationException');
export const missingAuthenticationToken = error('MissingAuthenticationTokenException', 403);
export const unrecognizedClient = error('UnrecognizedClientException');
export const invalidSignature = error('InvalidSignatureException');
export const incompleteSignature = error('IncompleteSignatureException');
export const requestTooLarge = error('RequestEntityTooLargeException', 413);
export const accessDenied = error('AccessDeniedException');
export const throttling = error('ThrottlingException');
/** Berth cannot do this now (e.g. its data disk is full): the message names the cause. */
export const serviceUnavailable = error('ServiceUnavailableException', 503);

// ECS.
export const clientException = error('ClientException');
export const invalidParameter = error('InvalidParameterException');
export const serverException = error('ServerException', 500);
export const clusterNotFound = error('ClusterNotFoundException');
export const clusterContainsContainerInstances = error('ClusterContainsContainerInstancesException');
export const clusterContainsServices = error('ClusterContainsServicesException');
export const clusterContainsTasks = error('ClusterContainsTasksException');
export const clusterContainsCapacityProvider = error('ClusterContainsCapacityProviderException');
export const resourceNotFound = error('ResourceNotFoundException');
export const resourceInUse = error('ResourceInUseException');
export const limitExceeded = error('LimitExceededException');
export const unsupportedFeature = error('UnsupportedFeatureException');
export const updateInProgress = error('UpdateInProgressException');
export const serviceNotFound = error('ServiceNotFoundException');
export const serviceNotActive = error('ServiceNotActiveException');
export const platformUnknown = error('PlatformUnknownException');
export const targetNotConnected = error('TargetNotConnectedException');

/** Turns anything thrown into what the client sees; unknown failures never leak details. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError('ServerException', 'An internal error occurred. The request was not completed; try again.', 500);
}
