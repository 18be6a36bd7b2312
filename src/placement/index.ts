// The placement and capacity-planning core (pure: no I/O, no clock, no Math.random).
export * from './types.js';
export { PlacementEngine, type EngineOptions } from './engine.js';
export { FILTERS, prepareTask, privilegedOnly, type Filter, type InstanceState, type PreparedTask } from './filters.js';
export { compileQuery, queryProblem, queryTarget, attributeMap, QueryError, MAX_EXPRESSION_LENGTH, type CompiledQuery, type QueryTarget, type QueryTargetInput } from './query.js';
export { DEFAULT_STRATEGY, MAX_STRATEGIES, normalizeStrategies, strategyProblem, spreadsOverZones } from './strategies.js';
export { buildFailure, ecsClosestPhrase, ecsUnableToPlace, runTaskFailure, serviceEventMessage, stoppedReason } from './failure.js';
export { assignProviders, splitByStrategy, type SplitItem } from './capacity-split.js';
export { planScaleOut, type PlannedLaunch, type ScaleOutInput, type ScaleOutPlan, type ScaleOutProvider, type SubnetOption, type Unplaceable } from './scale-out.js';
export { decideScaleIn, scaleInDelayMs, DEFAULT_SCALE_IN_AFTER_S, UNDERUTILISED_BELOW, type ScaleInDecision, type ScaleInInput, type ScaleInInstance, type ScaleInTask } from './scale-in.js';
export { cheapestFitting, costEffective, registeredCpu, registeredMemory, selectableTypes, taskEnis, RESERVED_MEMORY_MIB } from './instance-selection.js';
export { placementConstraintsProblem } from './validation.js';
