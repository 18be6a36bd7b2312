// One error catalog: every failure a client can see maps to AWS's `__type`, an HTTP
// status and a message that says what to fix.

/**
 * Every error code Berth answers with, and its usual HTTP status (AWS's, per service). An
 * ApiError can only carry one of these: a new code is added here, where the next person finds it.
 */
export const ERROR_CODES = {
  // Protocol and authentication, every service.
  SerializationException: 400, UnknownOperationException: 400, MissingAuthenticationTokenException: 403,
  UnrecognizedClientException: 400, InvalidClientTokenId: 403, ExpiredToken: 403, ExpiredTokenException: 403,
  InvalidSignatureException: 400, IncompleteSignatureException: 400, RequestEntityTooLargeException: 413,
  AccessDeniedException: 400, AccessDenied: 403, UnauthorizedOperation: 403, ThrottlingException: 400,
  ServiceUnavailableException: 503,
  // Query protocol (EC2, IAM, STS).
  MissingAction: 400, InvalidAction: 400, UnknownParameter: 400, UnsupportedOperation: 400, DryRunOperation: 412,
  // ECS (and Berth's own admin API, which follows ECS's shapes).
  ClientException: 400, InvalidParameterException: 400, ServerException: 500, ClusterNotFoundException: 400,
  ClusterContainsContainerInstancesException: 400, ClusterContainsServicesException: 400, ClusterContainsTasksException: 400,
  ClusterContainsCapacityProviderException: 400, ResourceNotFoundException: 400, ResourceInUseException: 400,
  LimitExceededException: 400, UnsupportedFeatureException: 400,
  ServiceNotFoundException: 400, ServiceNotActiveException: 400,
  TargetNotConnectedException: 400, NamespaceNotFoundException: 400, ClockNotAdjustableException: 400,
  // ECS Exec sessions (SSM).
  DoesNotExistException: 400,
  // EC2.
  InvalidParameterValue: 400, InvalidParameterCombination: 400, MissingParameter: 400,
  'InvalidInstanceEventWindowId.NotFound': 400, 'InvalidInstanceEventWindow.InUse': 400,
  'InvalidHostID.NotFound': 400, 'InvalidInstanceID.NotFound': 400,
  // CloudWatch Logs.
  ResourceAlreadyExistsException: 400, ValidationException: 400,
  // CloudTrail.
  InvalidLookupAttributesException: 400, InvalidEventCategoryException: 400, InvalidTimeRangeException: 400,
  InvalidMaxResultsException: 400, InvalidNextTokenException: 400,
  // KMS.
  AlreadyExistsException: 400, DisabledException: 400, DryRunOperationException: 412, IncorrectKeyException: 400,
  InvalidAliasNameException: 400, InvalidArnException: 400, InvalidCiphertextException: 400, InvalidKeyUsageException: 400,
  InvalidMarkerException: 400, KMSInvalidStateException: 400, MalformedPolicyDocumentException: 400,
  NotAuthorizedException: 400, NotFoundException: 400, TagException: 400, UnsupportedOperationException: 400,
  // IAM and STS.
  NoSuchEntity: 404, EntityAlreadyExists: 409, DeleteConflict: 409, LimitExceeded: 409, MalformedPolicyDocument: 400,
  UnmodifiableEntity: 400, ValidationError: 400, PackedPolicyTooLarge: 400,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number = ERROR_CODES[code],
    /** Extra members some AWS errors carry (e.g. `reason`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = code;
  }
}

const error = (code: ErrorCode, status: number = ERROR_CODES[code]) => (message: string, extra?: Record<string, unknown>) =>
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
export const clusterNotFound = error('ClusterNotFoundException');
export const clusterContainsContainerInstances = error('ClusterContainsContainerInstancesException');
export const clusterContainsServices = error('ClusterContainsServicesException');
export const clusterContainsTasks = error('ClusterContainsTasksException');
export const clusterContainsCapacityProvider = error('ClusterContainsCapacityProviderException');
export const resourceNotFound = error('ResourceNotFoundException');
export const resourceInUse = error('ResourceInUseException');
export const unsupportedFeature = error('UnsupportedFeatureException');
export const serviceNotFound = error('ServiceNotFoundException');
export const serviceNotActive = error('ServiceNotActiveException');
export const targetNotConnected = error('TargetNotConnectedException');

/** Turns anything thrown into what the client sees; unknown failures never leak details. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError('ServerException', 'An internal error occurred. The request was not completed; try again.', 500);
}
